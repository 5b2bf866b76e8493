/*
 * String validation for client input (spec 1.7): strict UTF-8, free text
 * without control characters, absolute http(s) URLs and yyyy-MM-dd dates.
 */
#ifndef PAY_APP_TEXT_H
#define PAY_APP_TEXT_H

#include <stddef.h>

struct arena;

/*
 * 1 if s[0..n) is strict UTF-8, else 0. Rejects overlong forms, surrogates
 * (U+D800..U+DFFF), code points above U+10FFFF, truncated sequences, stray
 * continuation bytes and NUL bytes.
 */
int text_utf8_valid(const char *s, size_t n);

/*
 * 1 if s[0..n) is strict UTF-8 (as text_utf8_valid), contains no control
 * character (C0 U+0000..U+001F including tab and newline, DEL U+007F, C1
 * U+0080..U+009F) and has at most max_chars code points; else 0.
 */
int text_valid(const char *s, size_t n, size_t max_chars);

/*
 * 1 if s[0..n) is an absolute http:// or https:// URL (scheme letters in
 * any case) of at most 255 bytes with a non-empty host; else 0. Only
 * printable ASCII is allowed, without space, '"', '\'', '<', '>', '\\',
 * '`', '{', '}', '|', '^'; every '%' must start a %HH escape. The host is
 * a name of [A-Za-z0-9.-_~] or a bracketed IP literal, optionally followed
 * by ":port" (1..5 digits, at most 65535); userinfo ("user@") is refused.
 */
int text_url_valid(const char *s, size_t n);

/*
 * 1 if the NUL-terminated s is exactly "yyyy-MM-dd", a real calendar date
 * (Gregorian leap years) with year 1900..9999; else 0. NULL gives 0.
 */
int text_date_valid(const char *s);

/*
 * A copy of the NUL-terminated s that is safe to echo in a client-facing
 * message: cut to at most max_bytes bytes on a UTF-8 character boundary,
 * with control characters, invalid UTF-8 bytes, quotes and backslashes
 * each replaced by '?'. Allocated in the arena; s NULL gives "".
 */
char *text_echo(struct arena *a, const char *s, size_t max_bytes);

/* Index of s in the NULL-terminated list vals, or -1 (s NULL: -1). */
int enum_index(const char *const *vals, const char *s);

#endif
