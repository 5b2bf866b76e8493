/*
 * Money as int64_t minor units (spec 1.5): exact parsing of JSON number
 * text and query-string decimals, and formatting with a fixed number of
 * decimals. No floating point anywhere.
 */
#ifndef PAY_APP_MONEY_H
#define PAY_APP_MONEY_H

#include <stddef.h>
#include <stdint.h>

/* Largest accepted magnitude, in minor units (10^15). */
#define MONEY_MAX_MINOR 1000000000000000LL

/* Buffer size that always suffices for money_format (with its NUL). */
#define MONEY_FMT_MAX 32

#define MONEY_ESYNTAX    (-1) /* not a well-formed number */
#define MONEY_ERANGE     (-2) /* |value| > MONEY_MAX_MINOR minor units */
#define MONEY_EPRECISION (-3) /* more decimals than the currency has */

/*
 * Parses the raw text s[0..len) of a JSON number (RFC 8259 grammar
 * -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?, nothing else, no
 * whitespace) into minor units with `digits` decimals (0..4). Value based:
 * "10.5", "10.500", "1.05e1" are all 1050 for digits 2. Returns 0 and sets
 * *out, or MONEY_ESYNTAX (also for digits outside 0..4), MONEY_ERANGE when
 * the magnitude exceeds MONEY_MAX_MINOR minor units (any exponent size is
 * handled without overflow), or MONEY_EPRECISION when the value is not a
 * whole number of minor units (range is checked first). "-0" gives 0.
 * *out is untouched on error.
 */
int money_parse(const char *s, size_t len, int digits, int64_t *out);

/*
 * Like money_parse for the NUL-terminated plain decimal s (query strings):
 * grammar -?(0|[1-9][0-9]*)(\.[0-9]+)?, no exponent. Same return codes;
 * NULL s gives MONEY_ESYNTAX.
 */
int money_parse_decimal(const char *s, int digits, int64_t *out);

/*
 * Writes minor with exactly `digits` decimals (0..4) and a NUL into buf:
 * 1050,2 -> "10.50"; -1,2 -> "-0.01"; 5,0 -> "5". Every int64_t value,
 * INT64_MIN included, is written exactly. Returns the length (without the
 * NUL), or -1 if cap is too small (MONEY_FMT_MAX always suffices) or digits
 * is outside 0..4; buf then holds "" when cap > 0.
 */
int money_format(int64_t minor, int digits, char *buf, size_t cap);

/* 10^digits: minor units per major unit (digits 0..4). */
int64_t minor_per_major(int digits);

#endif
