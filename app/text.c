/*
 * String validation (see text.h): one strict UTF-8 decoder shared by the
 * validators, a small URL checker and a calendar date checker.
 */
#include "text.h"

#include "arena.h"

#include <stdint.h>
#include <string.h>

#define URL_MAX 255

/*
 * Decodes one strict UTF-8 sequence at s[*i] (i < n), stores the code
 * point in *cp and advances *i. Returns 0 (leaving *i alone) on an invalid
 * or truncated sequence or a NUL byte.
 */
static int
utf8_next(const unsigned char *s, size_t n, size_t *i, uint32_t *cp)
{
    size_t   at = *i;
    uint32_t c = s[at];
    size_t   need;
    unsigned lo = 0x80, hi = 0xBF;

    if (c == 0)
        return 0;
    if (c < 0x80) {
        *cp = c;
        *i = at + 1;
        return 1;
    }
    if (c < 0xC2) {
        /* stray continuation byte, or overlong two-byte form C0/C1 */
        return 0;
    } else if (c < 0xE0) {
        need = 1;
        c &= 0x1F;
    } else if (c < 0xF0) {
        need = 2;
        if (c == 0xE0)
            lo = 0xA0; /* overlong */
        else if (c == 0xED)
            hi = 0x9F; /* surrogates */
        c &= 0x0F;
    } else if (c < 0xF5) {
        need = 3;
        if (c == 0xF0)
            lo = 0x90; /* overlong */
        else if (c == 0xF4)
            hi = 0x8F; /* above U+10FFFF */
        c &= 0x07;
    } else {
        return 0;
    }
    if (n - at - 1 < need)
        return 0;
    for (size_t k = 1; k <= need; k++) {
        unsigned b = s[at + k];
        if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF))
            return 0;
        c = (c << 6) | (b & 0x3F);
    }
    *cp = c;
    *i = at + 1 + need;
    return 1;
}

/* 1 if the code point is a C0 control, DEL or a C1 control. */
static int
is_control(uint32_t cp)
{
    return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F);
}

int
text_utf8_valid(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t   i = 0;
    uint32_t cp;

    if (s == NULL)
        return n == 0;
    while (i < n) {
        if (!utf8_next(u, n, &i, &cp))
            return 0;
    }
    return 1;
}

int
text_valid(const char *s, size_t n, size_t max_chars)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t   i = 0, chars = 0;
    uint32_t cp;

    if (s == NULL)
        return n == 0;
    while (i < n) {
        if (!utf8_next(u, n, &i, &cp) || is_control(cp))
            return 0;
        if (++chars > max_chars)
            return 0;
    }
    return 1;
}

/* 1 if c is an ASCII hex digit. */
static int
is_hex(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
           (c >= 'A' && c <= 'F');
}

/* 1 if c is an ASCII letter or digit. */
static int
is_alnum(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
           (c >= 'A' && c <= 'Z');
}

/* 1 if the printable ASCII byte c may appear anywhere in a URL. */
static int
url_char_ok(unsigned char c)
{
    if (c <= 0x20 || c >= 0x7F)
        return 0;
    return strchr("\"'<>\\`{}|^", c) == NULL;
}

/* Case-insensitive check that s[0..n) starts with the lowercase prefix p. */
static int
has_prefix_ci(const char *s, size_t n, const char *p)
{
    size_t pl = strlen(p);

    if (n < pl)
        return 0;
    for (size_t i = 0; i < pl; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c - 'A' + 'a');
        if (c != (unsigned char)p[i])
            return 0;
    }
    return 1;
}

/* 1 if s[0..n) is a valid ":port" suffix body (1..5 digits, <= 65535). */
static int
port_ok(const char *s, size_t n)
{
    unsigned v = 0;

    if (n == 0 || n > 5)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    return v <= 65535;
}

/* 1 if the authority s[0..n) is host[:port] with a non-empty host. */
static int
authority_ok(const char *s, size_t n)
{
    size_t i = 0;

    if (n == 0)
        return 0;
    if (s[0] == '[') {
        /* IP literal: hex digits, ':' and '.' (IPv6 / IPv4-mapped). */
        i = 1;
        while (i < n && s[i] != ']') {
            unsigned char c = (unsigned char)s[i];
            if (!is_hex(c) && c != ':' && c != '.')
                return 0;
            i++;
        }
        if (i >= n || i == 1)
            return 0;
        i++; /* past ']' */
    } else {
        while (i < n && s[i] != ':') {
            unsigned char c = (unsigned char)s[i];
            if (!is_alnum(c) && c != '.' && c != '-' && c != '_' && c != '~')
                return 0;
            i++;
        }
        if (i == 0)
            return 0;
    }
    if (i == n)
        return 1;
    if (s[i] != ':')
        return 0;
    return port_ok(s + i + 1, n - i - 1);
}

int
text_url_valid(const char *s, size_t n)
{
    size_t start, end;

    if (s == NULL || n > URL_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!url_char_ok(c))
            return 0;
        if (c == '%' &&
            (n - i < 3 || !is_hex((unsigned char)s[i + 1]) ||
             !is_hex((unsigned char)s[i + 2])))
            return 0;
    }
    if (has_prefix_ci(s, n, "https://"))
        start = 8;
    else if (has_prefix_ci(s, n, "http://"))
        start = 7;
    else
        return 0;
    end = start;
    while (end < n && s[end] != '/' && s[end] != '?' && s[end] != '#')
        end++;
    return authority_ok(s + start, end - start);
}

/* 1 if year y (Gregorian) is a leap year. */
static int
is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int
text_date_valid(const char *s)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30,
                                  31, 31, 30, 31, 30, 31};
    int y = 0, m, d, dim;

    if (s == NULL || strlen(s) != 10 || s[4] != '-' || s[7] != '-')
        return 0;
    for (int i = 0; i < 10; i++) {
        if (i == 4 || i == 7)
            continue;
        if (s[i] < '0' || s[i] > '9')
            return 0;
    }
    for (int i = 0; i < 4; i++)
        y = y * 10 + (s[i] - '0');
    m = (s[5] - '0') * 10 + (s[6] - '0');
    d = (s[8] - '0') * 10 + (s[9] - '0');
    if (y < 1900 || m < 1 || m > 12 || d < 1)
        return 0;
    dim = mdays[m - 1] + (m == 2 && is_leap(y));
    return d <= dim;
}

char *
text_echo(struct arena *a, const char *s, size_t max_bytes)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t   n, i = 0, o = 0;
    uint32_t cp;
    char    *out;

    if (s == NULL)
        return arena_strdup(a, "");
    n = strlen(s);
    out = arena_alloc(a, (n < max_bytes ? n : max_bytes) + 1);
    while (i < n) {
        size_t at = i;
        if (!utf8_next(u, n, &i, &cp)) {
            /* one invalid byte becomes one '?' */
            if (o + 1 > max_bytes)
                break;
            out[o++] = '?';
            i = at + 1;
            continue;
        }
        if (is_control(cp) || cp == '"' || cp == '\'' || cp == '\\') {
            if (o + 1 > max_bytes)
                break;
            out[o++] = '?';
            continue;
        }
        if (o + (i - at) > max_bytes)
            break;
        memcpy(out + o, s + at, i - at);
        o += i - at;
    }
    out[o] = '\0';
    return out;
}

int
enum_index(const char *const *vals, const char *s)
{
    if (s == NULL)
        return -1;
    for (int i = 0; vals[i] != NULL; i++)
        if (strcmp(vals[i], s) == 0)
            return i;
    return -1;
}
