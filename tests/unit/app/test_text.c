/*
 * Unit tests for app/text.c: strict UTF-8, free-text validation, URLs,
 * dates and the client-safe echo.
 */
#include "test.h"

#include "arena.h"
#include "text.h"

#include <string.h>

struct bytes_case {
    const char *s;
    size_t      n; /* 0: use strlen */
    int         want;
};

/* Length of a case: explicit when it holds NUL bytes. */
static size_t
case_len(const struct bytes_case *c)
{
    return c->n ? c->n : strlen(c->s);
}

static void
test_utf8(void)
{
    static const struct bytes_case cases[] = {
        {"", 0, 1},
        {"hello", 0, 1},
        {"caf\xC3\xA9", 0, 1},                 /* é */
        {"\xE2\x82\xAC", 0, 1},                /* € */
        {"\xF0\x9F\x98\x80", 0, 1},            /* U+1F600 */
        {"\xF4\x8F\xBF\xBF", 0, 1},            /* U+10FFFF */
        {"\xEF\xBF\xBF", 0, 1},                /* U+FFFF */
        {"\xED\x9F\xBF", 0, 1},                /* U+D7FF */
        {"\xEE\x80\x80", 0, 1},                /* U+E000 */
        {"\xC2\x80", 0, 1},                    /* U+0080 (C1, but UTF-8) */
        {"\xE0\xA0\x80", 0, 1},                /* U+0800 smallest 3-byte */
        {"\xF0\x90\x80\x80", 0, 1},            /* U+10000 smallest 4-byte */
        {"\x7F", 0, 1},                        /* DEL is valid UTF-8 */
        {"a\tb\n", 0, 1},                      /* controls are valid UTF-8 */
        {"a\0b", 3, 0},                        /* NUL byte */
        {"\0", 1, 0},
        {"\xC0\xAF", 0, 0},                    /* overlong '/' */
        {"\xC1\xBF", 0, 0},                    /* overlong */
        {"\xE0\x80\xAF", 0, 0},                /* overlong 3-byte */
        {"\xE0\x9F\xBF", 0, 0},                /* overlong 3-byte (U+07FF) */
        {"\xF0\x80\x80\xAF", 0, 0},            /* overlong 4-byte */
        {"\xF0\x8F\xBF\xBF", 0, 0},            /* overlong 4-byte (U+FFFF) */
        {"\xC0\x80", 0, 0},                    /* overlong NUL */
        {"\xED\xA0\x80", 0, 0},                /* U+D800 */
        {"\xED\xBF\xBF", 0, 0},                /* U+DFFF */
        {"\xED\xA0\xBD\xED\xB8\x80", 0, 0},    /* CESU surrogate pair */
        {"\xF4\x90\x80\x80", 0, 0},            /* U+110000 */
        {"\xF5\x80\x80\x80", 0, 0},
        {"\xF8\x88\x80\x80\x80", 0, 0},        /* 5-byte form */
        {"\xFE", 0, 0},
        {"\xFF", 0, 0},
        {"\x80", 0, 0},                        /* lone continuation */
        {"a\xBF", 0, 0},
        {"\xC3", 0, 0},                        /* truncated 2-byte */
        {"\xE2\x82", 0, 0},                    /* truncated 3-byte */
        {"\xF0\x9F\x98", 0, 0},                /* truncated 4-byte */
        {"\xC3(", 0, 0},                       /* bad continuation */
        {"\xE2(\xA1", 0, 0},
        {"\xF0\x9F(\x80", 0, 0},
        {"\xE2\x82\xAC\xE2\x82", 0, 0},        /* good then truncated */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct bytes_case *c = &cases[i];
        CHECK(text_utf8_valid(c->s, case_len(c)) == c->want,
              "utf8 case %zu", i);
    }
    /* The length bounds the scan: a valid prefix of an invalid string. */
    CHECK(text_utf8_valid("ab\xFF", 2) == 1, "prefix");
    CHECK(text_utf8_valid("\xE2\x82\xAC", 2) == 0, "cut inside a char");
    CHECK(text_utf8_valid(NULL, 0) == 1, "NULL empty");
}

struct text_case {
    const char *s;
    size_t      n;
    size_t      max;
    int         want;
};

static void
test_text_valid(void)
{
    static const struct text_case cases[] = {
        {"", 0, 255, 1},
        {"", 0, 0, 1},
        {"Invoice 42 - June, paid (part).", 0, 255, 1},
        {"Zahlung f\xC3\xBCr M\xC3\xA4rz", 0, 255, 1},
        {"\xE6\x94\xAF\xE4\xBB\x98", 0, 255, 1},      /* 支付 */
        {"\xF0\x9F\x92\xB7", 0, 255, 1},              /* emoji */
        {"a\tb", 0, 255, 0},                          /* tab */
        {"a\nb", 0, 255, 0},                          /* newline */
        {"a\rb", 0, 255, 0},
        {"\x01", 0, 255, 0},
        {"\x1F", 0, 255, 0},
        {"\x1B[31m", 0, 255, 0},                      /* ESC */
        {"a\x7F", 0, 255, 0},                         /* DEL */
        {"\xC2\x80", 0, 255, 0},                      /* U+0080 C1 */
        {"\xC2\x85", 0, 255, 0},                      /* NEL */
        {"\xC2\x9F", 0, 255, 0},                      /* U+009F C1 */
        {"\xC2\xA0", 0, 255, 1},                      /* NBSP is fine */
        {"a\0b", 3, 255, 0},
        {"\xC0\xAF", 0, 255, 0},                      /* invalid UTF-8 */
        {"\xED\xA0\x80", 0, 255, 0},
        {"abc", 0, 3, 1},
        {"abcd", 0, 3, 0},
        /* counts characters, not bytes: 3 chars in 9 bytes */
        {"\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC", 0, 3, 1},
        {"\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC", 0, 3, 0},
        {"x", 0, 0, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct text_case *c = &cases[i];
        size_t n = c->n ? c->n : strlen(c->s);
        CHECK(text_valid(c->s, n, c->max) == c->want, "text case %zu", i);
    }

    /* 255 / 256 characters, ASCII and multi-byte. */
    char buf[256 * 4 + 1];
    memset(buf, 'a', 256);
    CHECK(text_valid(buf, 255, 255) == 1, "255 ascii chars");
    CHECK(text_valid(buf, 256, 255) == 0, "256 ascii chars");
    for (int i = 0; i < 256; i++)
        memcpy(buf + i * 4, "\xF0\x9F\x98\x80", 4);
    CHECK(text_valid(buf, 255 * 4, 255) == 1, "255 4-byte chars");
    CHECK(text_valid(buf, 256 * 4, 255) == 0, "256 4-byte chars");
}

static void
test_url(void)
{
    static const struct {
        const char *s;
        int         want;
    } cases[] = {
        {"https://example.com", 1},
        {"http://example.com", 1},
        {"https://example.com/", 1},
        {"https://example.com/pay/return?id=42&ok=1#top", 1},
        {"HTTPS://Example.COM/x", 1},
        {"https://example.com:8443/x", 1},
        {"https://localhost", 1},
        {"https://127.0.0.1/x", 1},
        {"https://[::1]:8080/x", 1},
        {"https://[2001:db8::1]/", 1},
        {"https://a.b-c_d~e.example/x%20y", 1},
        {"https://example.com?x=1", 1},
        {"https://example.com#frag", 1},
        {"https://example.com/a(b)!$*+,;=:@", 1},
        {"", 0},
        {"example.com", 0},
        {"//example.com/x", 0},
        {"ftp://example.com", 0},
        {"javascript:alert(1)", 0},
        {"data:text/html,hi", 0},
        {"https:example.com", 0},
        {"https:/example.com", 0},
        {"https://", 0},
        {"https:///path", 0},
        {"https://?q=1", 0},
        {"https://#x", 0},
        {"https://:443/", 0},
        {"https://example.com:/x", 0},                 /* empty port */
        {"https://example.com:65536/", 0},
        {"https://example.com:123456/", 0},
        {"https://example.com:8a/", 0},
        {"https://example.com:65535/", 1},
        {"https://user:pw@example.com/", 0},          /* userinfo */
        {"https://bank.com@evil.example/", 0},
        {"https://[]/", 0},
        {"https://[::1/", 0},
        {"https://[::1]x/", 0},
        {"https://[zz::1]/", 0},
        {"https://exa mple.com", 0},                   /* space */
        {"https://example.com/a b", 0},
        {"https://example.com/\"x\"", 0},
        {"https://example.com/'x'", 0},
        {"https://example.com/<script>", 0},
        {"https://example.com/a\\b", 0},
        {"https://example.com/`x`", 0},
        {"https://example.com/{x}", 0},
        {"https://example.com/a|b", 0},
        {"https://example.com/a^b", 0},
        {"https://example.com/\x7F", 0},
        {"https://example.com/\t", 0},
        {"https://example.com/caf\xC3\xA9", 0},       /* non-ASCII */
        {"https://ex\xC3\xA4mple.com/", 0},
        {"https://example.com/%", 0},                  /* bad escape */
        {"https://example.com/%4", 0},
        {"https://example.com/%zz", 0},
        {"https://example.com/%4a%4A", 1},
        {"https://exa%6dple.com/", 0},                 /* % in host */
        {" https://example.com", 0},
        {"https://example.com ", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        CHECK(text_url_valid(cases[i].s, strlen(cases[i].s)) == cases[i].want,
              "url case %zu: %s", i, cases[i].s);
    }

    /* 255 bytes is the limit. */
    char buf[300];
    memcpy(buf, "https://example.com/", 20);
    memset(buf + 20, 'a', sizeof(buf) - 20);
    CHECK(text_url_valid(buf, 255) == 1, "255 bytes");
    CHECK(text_url_valid(buf, 256) == 0, "256 bytes");
    /* Embedded NUL within n. */
    CHECK(text_url_valid("https://a.com/\0x", 16) == 0, "NUL inside");
    CHECK(text_url_valid(NULL, 0) == 0, "NULL");
}

static void
test_date(void)
{
    static const struct {
        const char *s;
        int         want;
    } cases[] = {
        {"2024-01-31", 1},
        {"2024-02-29", 1},  /* leap year */
        {"2023-02-28", 1},
        {"2023-02-29", 0},  /* not a leap year */
        {"2000-02-29", 1},  /* divisible by 400 */
        {"1900-02-29", 0},  /* divisible by 100 only */
        {"2100-02-29", 0},
        {"2400-02-29", 1},
        {"1900-01-01", 1},
        {"1899-12-31", 0},
        {"9999-12-31", 1},
        {"0000-01-01", 0},
        {"2024-04-30", 1},
        {"2024-04-31", 0},
        {"2024-06-31", 0},
        {"2024-09-31", 0},
        {"2024-11-31", 0},
        {"2024-12-31", 1},
        {"2024-13-01", 0},
        {"2024-00-10", 0},
        {"2024-01-00", 0},
        {"2024-01-32", 0},
        {"2024-1-01", 0},
        {"2024-01-1", 0},
        {"24-01-01", 0},
        {"2024/01/01", 0},
        {"2024-01-01 ", 0},
        {" 2024-01-01", 0},
        {"2024-01-01T00:00:00Z", 0},
        {"20240101", 0},
        {"2024-0a-01", 0},
        {"+024-01-01", 0},
        {"2024--1-01", 0},
        {"", 0},
        {"10000-01-01", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        CHECK(text_date_valid(cases[i].s) == cases[i].want, "date case %zu: %s",
              i, cases[i].s);
    }
    CHECK(text_date_valid(NULL) == 0, "NULL date");
}

static void
test_echo(void)
{
    struct arena *a = arena_create(4096);

    CHECK_STR(text_echo(a, "status", 64), "status", "plain");
    CHECK_STR(text_echo(a, NULL, 64), "", "NULL");
    CHECK_STR(text_echo(a, "a\nb\tc\x7F", 64), "a?b?c?", "controls");
    CHECK_STR(text_echo(a, "\xC2\x85x", 64), "?x", "C1");
    CHECK_STR(text_echo(a, "it's \"q\" a\\b", 64), "it?s ?q? a?b", "quotes");
    CHECK_STR(text_echo(a, "a\xFF\xC0\xAFz", 64), "a???z", "invalid bytes");
    CHECK_STR(text_echo(a, "abcdef", 4), "abcd", "truncated");
    CHECK_STR(text_echo(a, "abcdef", 0), "", "max 0");
    /* Cut on a character boundary: "ab€" is 5 bytes, max 4 gives "ab". */
    CHECK_STR(text_echo(a, "ab\xE2\x82\xAC", 4), "ab", "char boundary");
    CHECK_STR(text_echo(a, "ab\xE2\x82\xAC", 5), "ab\xE2\x82\xAC", "fits");

    char big[200];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    const char *e = text_echo(a, big, 64);
    CHECK(strlen(e) == 64, "64 bytes, got %zu", strlen(e));
    arena_destroy(a);
}

int
main(void)
{
    test_utf8();
    test_text_valid();
    test_url();
    test_date();
    test_echo();
    return TEST_DONE();
}
