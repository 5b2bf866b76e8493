/*
 * Exact money parsing and formatting (see money.h). A number is read as a
 * string of decimal digits D and a power of ten; leading and trailing
 * zeros of D are dropped so the check is on the value, not the spelling,
 * and the exponent is clamped so absurd exponents cost nothing.
 */
#include "money.h"

#include <limits.h>
#include <string.h>

#define MONEY_MAX_DIGITS 4
/* Exponents beyond this magnitude are clamped: the answer is the same. */
#define EXP_CLAMP 1000000000000LL
/* Inputs longer than this are refused outright (keeps arithmetic small). */
#define LEN_MAX ((size_t)INT32_MAX)
/* Decimal digits of MONEY_MAX_MINOR (10^15). */
#define MAX_MAG10 16

/* 1 if c is an ASCII decimal digit. */
static int
is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* The digits of a number: the integer part followed by the fraction. */
struct digits {
    const char *ip; /* integer part */
    size_t      ni;
    const char *fp; /* fraction part */
    size_t      nf;
};

/* Digit k (0-based) of the concatenated integer and fraction digits. */
static int
digit_at(const struct digits *d, size_t k)
{
    return k < d->ni ? d->ip[k] - '0' : d->fp[k - d->ni] - '0';
}

/* Value of the count digits starting at index from (count <= 18). */
static uint64_t
digits_value(const struct digits *d, size_t from, size_t count)
{
    uint64_t v = 0;

    for (size_t k = 0; k < count; k++)
        v = v * 10 + (uint64_t)digit_at(d, from + k);
    return v;
}

/*
 * Shared parser: the JSON number grammar, with the exponent part only
 * when allow_exp is set. See money_parse for the return codes.
 */
static int
parse_core(const char *s, size_t len, int digits, int allow_exp, int64_t *out)
{
    struct digits d;
    size_t  i = 0, total, first, last, nd, tz;
    int     neg = 0;
    int64_t exp = 0, shift, mag10;

    if (s == NULL || digits < 0 || digits > MONEY_MAX_DIGITS || len > LEN_MAX)
        return MONEY_ESYNTAX;
    if (i < len && s[i] == '-') {
        neg = 1;
        i++;
    }
    if (i >= len || !is_digit(s[i]))
        return MONEY_ESYNTAX;
    d.ip = s + i;
    if (s[i] == '0') {
        i++;
    } else {
        while (i < len && is_digit(s[i]))
            i++;
    }
    d.ni = (size_t)(s + i - d.ip);
    d.fp = s + i;
    d.nf = 0;
    if (i < len && s[i] == '.') {
        i++;
        d.fp = s + i;
        while (i < len && is_digit(s[i]))
            i++;
        d.nf = (size_t)(s + i - d.fp);
        if (d.nf == 0)
            return MONEY_ESYNTAX;
    }
    if (allow_exp && i < len && (s[i] == 'e' || s[i] == 'E')) {
        int eneg = 0;
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-')) {
            eneg = s[i] == '-';
            i++;
        }
        if (i >= len || !is_digit(s[i]))
            return MONEY_ESYNTAX;
        while (i < len && is_digit(s[i])) {
            if (exp < EXP_CLAMP)
                exp = exp * 10 + (s[i] - '0');
            i++;
        }
        if (eneg)
            exp = -exp;
    }
    if (i != len)
        return MONEY_ESYNTAX;

    /* Significant digits: drop leading and trailing zeros. */
    total = d.ni + d.nf;
    first = 0;
    while (first < total && digit_at(&d, first) == 0)
        first++;
    if (first == total) {
        *out = 0; /* zero, whatever its sign or exponent */
        return 0;
    }
    last = total - 1;
    while (digit_at(&d, last) == 0)
        last--;
    nd = last - first + 1;
    tz = total - 1 - last;

    /* minor = D' * 10^shift, D' having nd digits and no trailing zero. */
    shift = exp - (int64_t)d.nf + digits + (int64_t)tz;
    mag10 = (int64_t)nd + shift; /* digits of the integer part of minor */
    if (mag10 > MAX_MAG10)
        return MONEY_ERANGE;
    if (shift >= 0) {
        uint64_t v = digits_value(&d, first, nd);
        for (int64_t k = 0; k < shift; k++)
            v *= 10;
        if (v > (uint64_t)MONEY_MAX_MINOR)
            return MONEY_ERANGE;
        *out = neg ? -(int64_t)v : (int64_t)v;
        return 0;
    }
    /* A fraction of a minor unit remains: too big or too precise. */
    if (mag10 > 0 &&
        digits_value(&d, first, (size_t)mag10) >= (uint64_t)MONEY_MAX_MINOR)
        return MONEY_ERANGE;
    return MONEY_EPRECISION;
}

int
money_parse(const char *s, size_t len, int digits, int64_t *out)
{
    return parse_core(s, len, digits, 1, out);
}

int
money_parse_decimal(const char *s, int digits, int64_t *out)
{
    if (s == NULL)
        return MONEY_ESYNTAX;
    return parse_core(s, strlen(s), digits, 0, out);
}

int
money_format(int64_t minor, int digits, char *buf, size_t cap)
{
    char     tmp[24];
    size_t   nt = 0, len, o = 0;
    uint64_t mag;

    if (digits < 0 || digits > MONEY_MAX_DIGITS) {
        if (cap > 0)
            buf[0] = '\0';
        return -1;
    }
    /* Magnitude in unsigned arithmetic: exact for INT64_MIN too. */
    mag = minor < 0 ? (uint64_t)0 - (uint64_t)minor : (uint64_t)minor;
    do {
        tmp[nt++] = (char)('0' + mag % 10);
        mag /= 10;
    } while (mag != 0);
    while (nt < (size_t)digits + 1)
        tmp[nt++] = '0';
    len = (minor < 0) + nt + (digits > 0);
    if (cap < len + 1) {
        if (cap > 0)
            buf[0] = '\0';
        return -1;
    }
    if (minor < 0)
        buf[o++] = '-';
    while (nt > (size_t)digits)
        buf[o++] = tmp[--nt];
    if (digits > 0) {
        buf[o++] = '.';
        while (nt > 0)
            buf[o++] = tmp[--nt];
    }
    buf[o] = '\0';
    return (int)o;
}

int64_t
minor_per_major(int digits)
{
    int64_t m = 1;
    while (digits-- > 0)
        m *= 10;
    return m;
}
