/*
 * fuzz_text: app/text.c (text_utf8_valid, text_valid, text_url_valid,
 * text_date_valid, text_echo).
 *
 * Input: first byte = a limit (max_chars for text_valid, max_bytes for
 * text_echo: the byte value, so 0..255), the rest is the text (bytes for
 * the (s, n) functions, a C string cut at the first NUL for the others).
 * Invariants:
 *  - text_utf8_valid agrees with an independent strict UTF-8 checker
 *    (Unicode table 3-7); text_valid agrees with that checker plus a
 *    control-character and code-point count reference.
 *  - text_url_valid: accepted URLs are <= 255 bytes of allowed printable
 *    ASCII, start with http:// or https:// (any case), have a non-empty
 *    host, no userinfo, a valid port, and only %HH escapes.
 *  - text_date_valid agrees with a reference calendar (1900..9999).
 *  - text_echo returns valid UTF-8 with no control character, quote or
 *    backslash, at most max_bytes bytes; input that is already clean and
 *    short enough comes back unchanged.
 */
#include "fuzz_common.h"

#include <ctype.h>
#include <strings.h>

#include "text.h"

/* Reference: strict UTF-8, no C0/DEL/C1, at most max code points. */
static int
ref_text_valid(const unsigned char *s, size_t n, size_t max)
{
    size_t chars = 0;
    if (!ref_utf8_valid(s, n))
        return 0;
    for (size_t i = 0; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            chars++;
        if (s[i] < 0x20 || s[i] == 0x7F)
            return 0;
        if (s[i] == 0xC2 && i + 1 < n && s[i + 1] <= 0x9F)
            return 0;
    }
    return chars <= max;
}

static int
ref_date_valid(const char *s)
{
    int y, m, d;
    if (strlen(s) != 10)
        return 0;
    for (int i = 0; i < 10; i++) {
        if (i == 4 || i == 7) {
            if (s[i] != '-')
                return 0;
        } else if (s[i] < '0' || s[i] > '9') {
            return 0;
        }
    }
    y = atoi(s);
    m = atoi(s + 5);
    d = atoi(s + 8);
    if (y < 1900 || y > 9999 || m < 1 || m > 12 || d < 1)
        return 0;
    int leap = (y % 4 == 0 && y % 100 != 0) || (y % 400 == 0);
    int dim = m == 2 ? 28 + leap : (m == 4 || m == 6 || m == 9 || m == 11) ? 30 : 31;
    return d <= dim;
}

static void
check_url(const char *s, size_t n)
{
    if (!text_url_valid(s, n))
        return;
    FUZZ_CHECK(n <= 255, "URL of %zu bytes accepted", n);
    size_t start = 0;
    if (n >= 8 && strncasecmp(s, "https://", 8) == 0)
        start = 8;
    else if (n >= 7 && strncasecmp(s, "http://", 7) == 0)
        start = 7;
    FUZZ_CHECK(start != 0, "URL without http(s) scheme accepted: %.*s", (int)n, s);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        FUZZ_CHECK(c > 0x20 && c < 0x7F && !strchr("\"'<>\\`{}|^", c),
                   "byte 0x%02x accepted in URL", c);
        if (c == '%')
            FUZZ_CHECK(i + 2 < n && isxdigit((unsigned char)s[i + 1]) &&
                       isxdigit((unsigned char)s[i + 2]), "bad %% escape");
    }
    size_t end = start;
    while (end < n && s[end] != '/' && s[end] != '?' && s[end] != '#')
        end++;
    const char *host = s + start;
    size_t      hlen = end - start;
    FUZZ_CHECK(hlen > 0, "empty authority accepted");
    FUZZ_CHECK(memchr(host, '@', hlen) == NULL, "userinfo accepted");
    /* the port, if any, is the part after the last ':' outside brackets */
    const char *rb = memchr(host, ']', hlen);
    const char *from = rb ? rb + 1 : host;
    const char *colon = memchr(from, ':', hlen - (size_t)(from - host));
    if (host[0] == '[') {
        FUZZ_CHECK(rb != NULL && rb > host + 1, "bad IP literal accepted");
        for (const char *p = host + 1; p < rb; p++)
            FUZZ_CHECK(isxdigit((unsigned char)*p) || *p == ':' || *p == '.',
                       "byte '%c' in IP literal", *p);
        FUZZ_CHECK(rb + 1 == host + hlen || rb[1] == ':', "junk after ']'");
    }
    else
        FUZZ_CHECK(colon != host, "empty host accepted");
    if (colon != NULL) {
        size_t plen = hlen - (size_t)(colon + 1 - host);
        FUZZ_CHECK(plen >= 1 && plen <= 5, "port length %zu", plen);
        long port = 0;
        for (size_t i = 0; i < plen; i++) {
            FUZZ_CHECK(isdigit((unsigned char)colon[1 + i]), "port digit");
            port = port * 10 + (colon[1 + i] - '0');
        }
        FUZZ_CHECK(port <= 65535, "port %ld accepted", port);
    }
}

static void
check_echo(struct arena *a, const char *cs, size_t max)
{
    char  *e = text_echo(a, cs, max);
    size_t n = strlen(e);
    FUZZ_CHECK(n <= max, "text_echo gave %zu bytes for max %zu", n, max);
    FUZZ_CHECK(ref_utf8_valid((const unsigned char *)e, n),
               "text_echo output is not UTF-8");
    FUZZ_CHECK(ref_echo_safe(e), "text_echo output has a control/quote/backslash");
    size_t in = strlen(cs);
    if (in <= max && ref_text_valid((const unsigned char *)cs, in, (size_t)-1) &&
        ref_echo_safe(cs))
        FUZZ_CHECK(strcmp(e, cs) == 0, "clean input changed by text_echo");
    /* the output never grows past the input (one byte per invalid byte) */
    FUZZ_CHECK(n <= in, "text_echo output longer than input");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    struct arena *a = fuzz_arena();
    size_t        limit = data[0];
    const char   *s = (const char *)data + 1;
    size_t        n = size - 1;

    int got = text_utf8_valid(s, n);
    int want = ref_utf8_valid((const unsigned char *)s, n);
    FUZZ_CHECK(got == want, "text_utf8_valid = %d, reference %d", got, want);

    got = text_valid(s, n, limit);
    want = ref_text_valid((const unsigned char *)s, n, limit);
    FUZZ_CHECK(got == want, "text_valid(max %zu) = %d, reference %d", limit, got, want);
    got = text_valid(s, n, 255);
    want = ref_text_valid((const unsigned char *)s, n, 255);
    FUZZ_CHECK(got == want, "text_valid(max 255) = %d, reference %d", got, want);

    check_url(s, n);

    char *cs = fuzz_cstr(a, (const uint8_t *)s, n);
    got = text_date_valid(cs);
    want = ref_date_valid(cs);
    FUZZ_CHECK(got == want, "text_date_valid('%.20s') = %d, reference %d", cs, got, want);
    FUZZ_CHECK(text_date_valid(NULL) == 0, "NULL date");

    check_echo(a, cs, limit);
    check_echo(a, cs, 64);
    FUZZ_CHECK(strcmp(text_echo(a, NULL, 10), "") == 0, "text_echo(NULL)");

    arena_reset(a);
    return 0;
}
