/*
 * Unit tests for app/money.c: exact parsing of JSON number text and
 * query decimals into minor units, and formatting back.
 */
#include "test.h"

#include "money.h"

#include <limits.h>
#include <stdint.h>
#include <string.h>

#define OK 0
#define SYN MONEY_ESYNTAX
#define RNG MONEY_ERANGE
#define PRE MONEY_EPRECISION

struct parse_case {
    const char *s;
    int         digits;
    int         rc;
    int64_t     want; /* checked only when rc == OK */
};

static const struct parse_case json_cases[] = {
    /* plain values, digits 2 */
    {"0", 2, OK, 0},
    {"1", 2, OK, 100},
    {"10.5", 2, OK, 1050},
    {"10.50", 2, OK, 1050},
    {"10.500", 2, OK, 1050},
    {"10.5000000000000000000000000", 2, OK, 1050},
    {"0.01", 2, OK, 1},
    {"0.1", 2, OK, 10},
    {"0.10", 2, OK, 10},
    {"0.001", 2, PRE, 0},
    {"10.005", 2, PRE, 0},
    {"10.001", 2, PRE, 0},
    {"0.30000000000000004", 2, PRE, 0},
    {"0.30000000000000000", 2, OK, 30},
    {"0.3", 2, OK, 30},
    {"123456.78", 2, OK, 12345678},
    {"-1", 2, OK, -100},
    {"-0.01", 2, OK, -1},
    {"-10.50", 2, OK, -1050},
    {"-0", 2, OK, 0},
    {"-0.00", 2, OK, 0},
    {"-0.0e5", 2, OK, 0},
    {"0.000", 2, OK, 0},
    {"0e999999999", 2, OK, 0},
    {"0E-999999999", 2, OK, 0},
    /* exponents */
    {"1e2", 2, OK, 10000},
    {"1E2", 2, OK, 10000},
    {"1E+2", 2, OK, 10000},
    {"1e+2", 2, OK, 10000},
    {"1.0e1", 2, OK, 1000},
    {"1.05e1", 2, OK, 1050},
    {"1050e-2", 2, OK, 1050},
    {"105e-1", 2, OK, 1050},
    {"1e-2", 2, OK, 1},
    {"1e-3", 2, PRE, 0},
    {"10e-3", 2, OK, 1},
    {"10e-4", 2, PRE, 0},
    {"100e-4", 2, OK, 1},
    {"0.0001e2", 2, OK, 1},
    {"0.00001e2", 2, PRE, 0},
    {"1e00", 2, OK, 100},
    {"1e-0", 2, OK, 100},
    {"1e007", 2, OK, 1000000000},   /* exponent digits may have zeros */
    {"-2.5e1", 2, OK, -2500},
    {"1e999999999", 2, RNG, 0},
    {"1e99999999999999999999999999999", 2, RNG, 0},
    {"-1e999999999", 2, RNG, 0},
    {"1e-999999999", 2, PRE, 0},
    {"1e-99999999999999999999999999999", 2, PRE, 0},
    {"1.5e-999999999", 2, PRE, 0},
    /* range: 10^15 minor units is the largest magnitude */
    {"10000000000000", 2, OK, 1000000000000000LL},
    {"10000000000000.00", 2, OK, 1000000000000000LL},
    {"-10000000000000", 2, OK, -1000000000000000LL},
    {"1e13", 2, OK, 1000000000000000LL},
    {"9999999999999.99", 2, OK, 999999999999999LL},
    {"10000000000000.01", 2, RNG, 0},
    {"-10000000000000.01", 2, RNG, 0},
    {"10000000000000.001", 2, RNG, 0},   /* too big beats too precise */
    {"9999999999999.999", 2, PRE, 0},
    {"10000000000001", 2, RNG, 0},
    {"1e14", 2, RNG, 0},
    {"99999999999999999999", 2, RNG, 0},
    {"-99999999999999999999", 2, RNG, 0},
    {"99999999999999999999.5", 2, RNG, 0},
    {"18446744073709551616", 2, RNG, 0}, /* 2^64 */
    {"9223372036854775807", 0, RNG, 0},  /* INT64_MAX */
    /* values that would wrap a 64-bit accumulator to something small */
    {"18446744073709551616", 0, RNG, 0}, /* 2^64 -> 0 */
    {"18446744073709551621", 0, RNG, 0}, /* 2^64 + 5 -> 5 */
    {"-18446744073709551621", 0, RNG, 0},
    {"184467440737095516.21", 2, RNG, 0},
    {"1844674407370955162.1", 1, RNG, 0},
    {"18446744073709551621e0", 0, RNG, 0},
    {"1.8446744073709551621e19", 0, RNG, 0},
    {"18446744073709551621.5", 0, RNG, 0},
    {"1000000000000000", 0, OK, 1000000000000000LL},
    {"1000000000000001", 0, RNG, 0},
    {"100000000000.0000", 4, OK, 1000000000000000LL},
    {"100000000000.0001", 4, RNG, 0},
    /* other digit counts */
    {"5", 0, OK, 5},
    {"5.0", 0, OK, 5},
    {"5.5", 0, PRE, 0},
    {"5e-1", 0, PRE, 0},
    {"50e-1", 0, OK, 5},
    {"1.2345", 4, OK, 12345},
    {"1.23456", 4, PRE, 0},
    {"1.234", 3, OK, 1234},
    {"1.5", 1, OK, 15},
    {"1.55", 1, PRE, 0},
    {"1", 5, SYN, 0},                    /* digits out of 0..4 */
    {"1", -1, SYN, 0},
    /* syntax */
    {"", 2, SYN, 0},
    {"-", 2, SYN, 0},
    {"--1", 2, SYN, 0},
    {"+5", 2, SYN, 0},
    {"01.5", 2, SYN, 0},
    {"00", 2, SYN, 0},
    {"-01", 2, SYN, 0},
    {".5", 2, SYN, 0},
    {"-.5", 2, SYN, 0},
    {"5.", 2, SYN, 0},
    {"5.e2", 2, SYN, 0},
    {"1e", 2, SYN, 0},
    {"1e+", 2, SYN, 0},
    {"1e-", 2, SYN, 0},
    {"1e2.5", 2, SYN, 0},
    {"1ee2", 2, SYN, 0},
    {"e2", 2, SYN, 0},
    {"1.2.3", 2, SYN, 0},
    {" 1", 2, SYN, 0},
    {"1 ", 2, SYN, 0},
    {"1\n", 2, SYN, 0},
    {"\t1", 2, SYN, 0},
    {"1,5", 2, SYN, 0},
    {"1_000", 2, SYN, 0},
    {"0x10", 2, SYN, 0},
    {"NaN", 2, SYN, 0},
    {"Infinity", 2, SYN, 0},
    {"-Infinity", 2, SYN, 0},
    {"1d", 2, SYN, 0},
    {"\"1\"", 2, SYN, 0},
    {"１", 2, SYN, 0},                    /* fullwidth digit */
};

static void
test_parse_json(void)
{
    for (size_t i = 0; i < sizeof(json_cases) / sizeof(json_cases[0]); i++) {
        const struct parse_case *c = &json_cases[i];
        int64_t out = 777;
        int rc = money_parse(c->s, strlen(c->s), c->digits, &out);
        CHECK(rc == c->rc, "money_parse(\"%s\", %d) rc %d want %d", c->s,
              c->digits, rc, c->rc);
        if (c->rc == OK)
            CHECK(out == c->want, "money_parse(\"%s\", %d) = %lld want %lld",
                  c->s, c->digits, (long long)out, (long long)c->want);
        else
            CHECK(out == 777, "money_parse(\"%s\") touched *out on error",
                  c->s);
    }
}

static void
test_parse_len(void)
{
    int64_t out = 0;

    /* Not NUL-terminated: only len bytes count. */
    CHECK(money_parse("10.50,\"x\"", 5, 2, &out) == 0 && out == 1050,
          "length-bounded, got %lld", (long long)out);
    CHECK(money_parse("1e2xyz", 3, 2, &out) == 0 && out == 10000,
          "length-bounded exponent");
    CHECK(money_parse("12", 1, 2, &out) == 0 && out == 100, "first digit");
    CHECK(money_parse("1\0", 2, 2, &out) == SYN, "NUL inside");
    CHECK(money_parse(NULL, 0, 2, &out) == SYN, "NULL");

    /* Long spellings of small values stay exact and cheap. */
    static char buf[20000];
    memcpy(buf, "0.", 2);
    memset(buf + 2, '0', 9997);
    buf[9999] = '1'; /* 10^-9998 */
    CHECK(money_parse(buf, 10000, 2, &out) == PRE, "tiny");
    memcpy(buf, "1.", 2);
    memset(buf + 2, '0', 9998); /* 1.000...0 */
    out = 0;
    CHECK(money_parse(buf, 10000, 2, &out) == OK && out == 100,
          "trailing zeros, got %lld", (long long)out);
    memcpy(buf + 10000, "e-2", 3);
    CHECK(money_parse(buf, 10003, 2, &out) == OK && out == 1,
          "trailing zeros with exponent, got %lld", (long long)out);
    memset(buf, '9', 10000); /* a 10000-digit integer */
    CHECK(money_parse(buf, 10000, 2, &out) == RNG, "huge integer");
}

static const struct parse_case dec_cases[] = {
    {"12.5", 2, OK, 1250},
    {"-3", 2, OK, -300},
    {"0", 2, OK, 0},
    {"-0", 2, OK, 0},
    {"-0.00", 2, OK, 0},
    {"0.01", 2, OK, 1},
    {"10.500", 2, OK, 1050},
    {"10.005", 2, PRE, 0},
    {"0.30000000000000004", 2, PRE, 0},
    {"10000000000000", 2, OK, 1000000000000000LL},
    {"10000000000000.01", 2, RNG, 0},
    {"99999999999999999999", 2, RNG, 0},
    {"1e2", 2, SYN, 0},                  /* no exponent in query values */
    {"1E2", 2, SYN, 0},
    {"", 2, SYN, 0},
    {"+5", 2, SYN, 0},
    {"--1", 2, SYN, 0},
    {"01.5", 2, SYN, 0},
    {".5", 2, SYN, 0},
    {"5.", 2, SYN, 0},
    {" 5", 2, SYN, 0},
    {"5 ", 2, SYN, 0},
    {"5abc", 2, SYN, 0},
    {"12,50", 2, SYN, 0},
    {"7", 0, OK, 7},
    {"7.1", 0, PRE, 0},
    {"7", 9, SYN, 0},
};

static void
test_parse_decimal(void)
{
    for (size_t i = 0; i < sizeof(dec_cases) / sizeof(dec_cases[0]); i++) {
        const struct parse_case *c = &dec_cases[i];
        int64_t out = 777;
        int rc = money_parse_decimal(c->s, c->digits, &out);
        CHECK(rc == c->rc, "money_parse_decimal(\"%s\", %d) rc %d want %d",
              c->s, c->digits, rc, c->rc);
        if (c->rc == OK)
            CHECK(out == c->want,
                  "money_parse_decimal(\"%s\") = %lld want %lld", c->s,
                  (long long)out, (long long)c->want);
        else
            CHECK(out == 777, "decimal \"%s\" touched *out on error", c->s);
    }
    int64_t out;
    CHECK(money_parse_decimal(NULL, 2, &out) == SYN, "NULL");
}

static void
test_format(void)
{
    static const struct {
        int64_t     minor;
        int         digits;
        const char *want;
    } cases[] = {
        {1050, 2, "10.50"},
        {-1, 2, "-0.01"},
        {0, 2, "0.00"},
        {1, 2, "0.01"},
        {10, 2, "0.10"},
        {99, 2, "0.99"},
        {100, 2, "1.00"},
        {-100, 2, "-1.00"},
        {-1050, 2, "-10.50"},
        {5, 0, "5"},
        {0, 0, "0"},
        {-5, 0, "-5"},
        {5, 1, "0.5"},
        {12345, 4, "1.2345"},
        {1, 4, "0.0001"},
        {-1, 4, "-0.0001"},
        {1, 3, "0.001"},
        {1000000000000000LL, 2, "10000000000000.00"},
        {-1000000000000000LL, 2, "-10000000000000.00"},
        {INT64_MAX, 2, "92233720368547758.07"},
        {INT64_MIN, 2, "-92233720368547758.08"},
        {INT64_MAX, 0, "9223372036854775807"},
        {INT64_MIN, 0, "-9223372036854775808"},
        {INT64_MIN, 4, "-922337203685477.5808"},
        {INT64_MIN + 1, 2, "-92233720368547758.07"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char buf[MONEY_FMT_MAX];
        memset(buf, 'Z', sizeof(buf));
        int n = money_format(cases[i].minor, cases[i].digits, buf, sizeof(buf));
        CHECK_STR(buf, cases[i].want, "format case %zu", i);
        CHECK(n == (int)strlen(cases[i].want), "format case %zu length %d", i,
              n);
    }

    /* cap: exactly enough (length + NUL), one short, zero. */
    char buf[8];
    memset(buf, 'Z', sizeof(buf));
    CHECK(money_format(1050, 2, buf, 6) == 5, "exact cap");
    CHECK_STR(buf, "10.50", "exact cap text");
    memset(buf, 'Z', sizeof(buf));
    CHECK(money_format(1050, 2, buf, 5) == -1, "cap one short");
    CHECK(buf[0] == '\0' && buf[1] == 'Z', "short cap leaves \"\"");
    CHECK(money_format(1050, 2, NULL, 0) == -1, "cap 0");
    /* the sign counts: "-10.50" needs 7 bytes */
    memset(buf, 'Z', sizeof(buf));
    CHECK(money_format(-1050, 2, buf, 7) == 6, "negative exact cap");
    CHECK_STR(buf, "-10.50", "negative exact cap text");
    memset(buf, 'Z', sizeof(buf));
    CHECK(money_format(-1050, 2, buf, 6) == -1, "negative cap one short");
    CHECK(buf[0] == '\0', "negative short cap leaves \"\"");
    CHECK(money_format(-5, 0, buf, 2) == -1, "\"-5\" needs 3 bytes");
    CHECK(money_format(-5, 0, buf, 3) == 2, "\"-5\" in 3 bytes");
    CHECK_STR(buf, "-5", "\"-5\" text");
    CHECK(money_format(1050, 5, buf, sizeof(buf)) == -1, "digits 5");
    CHECK(money_format(1050, -1, buf, sizeof(buf)) == -1, "digits -1");
    char big[MONEY_FMT_MAX];
    CHECK(money_format(INT64_MIN, 4, big, sizeof(big)) == 21,
          "INT64_MIN fits in MONEY_FMT_MAX");
}

static void
test_round_trip(void)
{
    static const int64_t values[] = {
        0, 1, -1, 9, 10, 99, 100, 101, 1050, -1050, 123456789,
        999999999999999LL, 1000000000000000LL, -1000000000000000LL,
    };
    for (int digits = 0; digits <= 4; digits++) {
        for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
            char    buf[MONEY_FMT_MAX];
            int64_t back = 777, back2 = 777;
            int     n = money_format(values[i], digits, buf, sizeof(buf));
            CHECK(n > 0, "format %lld/%d", (long long)values[i], digits);
            CHECK(money_parse(buf, (size_t)n, digits, &back) == 0 &&
                      back == values[i],
                  "round trip %s/%d -> %lld", buf, digits, (long long)back);
            CHECK(money_parse_decimal(buf, digits, &back2) == 0 &&
                      back2 == values[i],
                  "decimal round trip %s/%d", buf, digits);
        }
    }
}

int
main(void)
{
    test_parse_json();
    test_parse_len();
    test_parse_decimal();
    test_format();
    test_round_trip();
    return TEST_DONE();
}
