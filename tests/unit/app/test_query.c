/*
 * Unit tests for app/query.c: query-string decoding and its failures,
 * lookup and unused-parameter tracking, ids and integers, every filter
 * kind, LIKE escaping, sort/fields against a whitelist and page bounds.
 */
#include "test.h"

#include "arena.h"
#include "query.h"

#include <stdint.h>
#include <string.h>

static struct arena *A;

/* ---- query_parse: successes ---- */

struct qp_ok {
    const char *qs;
    size_t      n;
    const char *pairs[8]; /* name, value, name, value, ... */
};

static void
test_parse_ok(void)
{
    static const struct qp_ok cases[] = {
        {NULL, 0, {NULL}},
        {"", 0, {NULL}},
        {"&", 0, {NULL}},
        {"&&&", 0, {NULL}},
        {"a=1", 1, {"a", "1"}},
        {"a=1&b=2", 2, {"a", "1", "b", "2"}},
        {"a=1&&b=2", 2, {"a", "1", "b", "2"}},
        {"&a=1&", 1, {"a", "1"}},
        {"flag", 1, {"flag", ""}},
        {"flag&x=1", 2, {"flag", "", "x", "1"}},
        {"a=", 1, {"a", ""}},
        {"a=b=c", 1, {"a", "b=c"}},
        {"a==", 1, {"a", "="}},
        {"q=hello+world", 1, {"q", "hello world"}},
        {"a+b=c+d", 1, {"a b", "c d"}},
        {"q=%2B%26%3D%25", 1, {"q", "+&=%"}},
        {"%61%62=%63", 1, {"ab", "c"}},
        {"q=%4a%4A", 1, {"q", "JJ"}},
        {"q=50%25+off", 1, {"q", "50% off"}},
        {"name=J%C3%BCrgen+M%c3%bcller", 1,
         {"name", "J\xC3\xBCrgen M\xC3\xBCller"}},
        {"name=J\xC3\xBCrgen", 1, {"name", "J\xC3\xBCrgen"}},  /* raw UTF-8 */
        {"e=%E2%82%AC", 1, {"e", "\xE2\x82\xAC"}},
        {"p=%F0%9F%98%80", 1, {"p", "\xF0\x9F\x98\x80"}},
        {"sort=amount%3Adesc%2Cid", 1, {"sort", "amount:desc,id"}},
        {"A=1&a=2", 2, {"A", "1", "a", "2"}}, /* case-sensitive */
        {"a=%0A", 1, {"a", "\n"}},      /* controls are the filters' business */
        {"a=;b", 1, {"a", ";b"}},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct qp_ok *c = &cases[i];
        struct query q = {(struct qparam *)1, 99, "untouched"};
        const char  *bad = "untouched";
        int rc = query_parse(A, c->qs, &q, &bad);
        CHECK(rc == 0, "parse case %zu rc %d (%s)", i, rc, bad);
        CHECK(q.n == c->n, "parse case %zu n %zu want %zu", i, q.n, c->n);
        CHECK_STR(bad, "untouched", "parse case %zu bad", i);
        for (size_t k = 0; k < c->n && k < q.n; k++) {
            CHECK_STR(q.v[k].name, c->pairs[2 * k], "case %zu name %zu", i, k);
            CHECK_STR(q.v[k].value, c->pairs[2 * k + 1], "case %zu value %zu",
                      i, k);
            CHECK(q.v[k].used == 0, "case %zu used %zu", i, k);
        }
        if (c->n == 0)
            CHECK(q.v == NULL, "parse case %zu: empty query has v NULL", i);
    }
}

/* ---- query_parse: failures with exact messages ---- */

struct qp_bad {
    const char *qs;
    const char *msg;
    const char *field; /* q.bad_name: the parameter the client must fix */
};

static void
test_parse_bad(void)
{
    static const struct qp_bad cases[] = {
        {"a=%", "malformed percent-escape in query parameter 'a'", "a"},
        {"a=%4", "malformed percent-escape in query parameter 'a'", "a"},
        {"a=%zz", "malformed percent-escape in query parameter 'a'", "a"},
        {"a=%4g", "malformed percent-escape in query parameter 'a'", "a"},
        {"a=%g4", "malformed percent-escape in query parameter 'a'", "a"},
        {"a=%%41", "malformed percent-escape in query parameter 'a'", "a"},
        {"ok=1&a=x%", "malformed percent-escape in query parameter 'a'", "a"},
        {"%zz=1", "malformed percent-escape in query parameter name '%zz'", NULL},
        {"a%=1", "malformed percent-escape in query parameter name 'a%'", NULL},
        {"a=%00", "query parameter 'a' contains a NUL byte", "a"},
        {"a=x%00y", "query parameter 'a' contains a NUL byte", "a"},
        {"a%00=1", "query parameter name 'a%00' contains a NUL byte", NULL},
        {"a=%C0%AF", "query parameter 'a' is not valid UTF-8", "a"},
        {"a=%ED%A0%80", "query parameter 'a' is not valid UTF-8", "a"},
        {"a=%C3", "query parameter 'a' is not valid UTF-8", "a"},
        {"a=%FF", "query parameter 'a' is not valid UTF-8", "a"},
        {"a=%F4%90%80%80", "query parameter 'a' is not valid UTF-8", "a"},
        {"a=\xFF", "query parameter 'a' is not valid UTF-8", "a"},
        {"%C0%AF=1", "query parameter name '%C0%AF' is not valid UTF-8", NULL},
        {"%ED%A0%80", "query parameter name '%ED%A0%80' is not valid UTF-8", NULL},
        {"a=1&a=2", "query parameter 'a' is given more than once", "a"},
        {"a=1&b=2&a=1", "query parameter 'a' is given more than once", "a"},
        {"a&a", "query parameter 'a' is given more than once", "a"},
        {"a=1&%61=2", "query parameter 'a' is given more than once", "a"},
        {"a+b=1&a%20b=2", "query parameter 'a b' is given more than once", "a b"},
        {"=1", "empty parameter name in query string", NULL},
        {"a=1&=", "empty parameter name in query string", NULL},
        /* echoed names are sanitised in the message, exact in the field */
        {"a%0Ab=%", "malformed percent-escape in query parameter 'a?b'", "a\nb"},
        {"x'y=%zz", "malformed percent-escape in query parameter 'x?y'", "x'y"},
        {"x%22y=%zz", "malformed percent-escape in query parameter 'x?y'", "x\"y"},
        {"%C2%85=%00", "query parameter '?' contains a NUL byte", "\xC2\x85"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct query q;
        const char  *bad = NULL;
        int rc = query_parse(A, cases[i].qs, &q, &bad);
        CHECK(rc == -1, "bad case %zu (%s) rc %d", i, cases[i].qs, rc);
        CHECK_STR(bad, cases[i].msg, "bad case %zu (%s)", i, cases[i].qs);
        if (cases[i].field == NULL)
            CHECK(q.bad_name == NULL, "bad case %zu (%s): field %s", i,
                  cases[i].qs, q.bad_name);
        else
            CHECK_STR(q.bad_name, cases[i].field, "bad case %zu (%s) field", i,
                      cases[i].qs);
    }
}

/* Builds "p0=0&p1=1&..." with n parameters plus `extra` trailing '&'. */
static char *
many_params(size_t n, size_t extra)
{
    struct abuf b;
    abuf_init(&b, A);
    for (size_t i = 0; i < n; i++)
        abuf_printf(&b, "%sp%zu=%zu", i ? "&" : "", i, i);
    for (size_t i = 0; i < extra; i++)
        abuf_adds(&b, "&");
    return (char *)abuf_str(&b);
}

static void
test_parse_limits(void)
{
    struct query q;
    const char  *bad = NULL;

    CHECK(query_parse(A, many_params(64, 0), &q, &bad) == 0 && q.n == 64,
          "64 params");
    CHECK_STR(q.v[63].name, "p63", "last of 64");
    CHECK_STR(q.v[63].value, "63", "last of 64 value");
    CHECK(query_parse(A, many_params(64, 50), &q, &bad) == 0 && q.n == 64,
          "64 params and empty pieces");
    bad = NULL;
    CHECK(query_parse(A, many_params(65, 0), &q, &bad) == -1, "65 params");
    CHECK_STR(bad, "too many query parameters (at most 64)", "65 message");
    bad = NULL;
    CHECK(query_parse(A, many_params(1000, 0), &q, &bad) == -1, "1000 params");
    CHECK_STR(bad, "too many query parameters (at most 64)", "1000 message");

    /* 4096-byte value and name are fine, 4097 is not. */
    struct abuf b;
    abuf_init(&b, A);
    abuf_adds(&b, "v=");
    for (int i = 0; i < 4096; i++)
        abuf_adds(&b, "x");
    CHECK(query_parse(A, abuf_str(&b), &q, &bad) == 0 && q.n == 1 &&
              strlen(q.v[0].value) == 4096,
          "4096-byte value");
    abuf_adds(&b, "x");
    bad = NULL;
    CHECK(query_parse(A, abuf_str(&b), &q, &bad) == -1, "4097-byte value");
    CHECK_STR(bad, "query parameter 'v' is too long", "4097 value message");

    /* The limit is on the decoded length: 4096 "%41" is 4096 bytes. */
    abuf_init(&b, A);
    abuf_adds(&b, "v=");
    for (int i = 0; i < 4096; i++)
        abuf_adds(&b, "%41");
    CHECK(query_parse(A, abuf_str(&b), &q, &bad) == 0 &&
              strlen(q.v[0].value) == 4096 && q.v[0].value[4095] == 'A',
          "4096 decoded bytes");

    abuf_init(&b, A);
    for (int i = 0; i < 4096; i++)
        abuf_adds(&b, "n");
    CHECK(query_parse(A, abuf_str(&b), &q, &bad) == 0 &&
              strlen(q.v[0].name) == 4096,
          "4096-byte name");
    abuf_adds(&b, "n=1");
    bad = NULL;
    CHECK(query_parse(A, abuf_str(&b), &q, &bad) == -1, "4097-byte name");
    char want[128];
    memset(want, 0, sizeof(want));
    strcpy(want, "query parameter name '");
    memset(want + strlen(want), 'n', 64);
    strcat(want, "' is too long");
    CHECK_STR(bad, want, "long name echoed truncated to 64 bytes");

    /* Echo of a long name in a value error is truncated to 64 bytes. */
    abuf_init(&b, A);
    for (int i = 0; i < 100; i++)
        abuf_adds(&b, "k");
    abuf_adds(&b, "=%zz");
    bad = NULL;
    CHECK(query_parse(A, abuf_str(&b), &q, &bad) == -1, "long name bad esc");
    memset(want, 0, sizeof(want));
    strcpy(want, "malformed percent-escape in query parameter '");
    memset(want + strlen(want), 'k', 64);
    strcat(want, "'");
    CHECK_STR(bad, want, "truncated echo");
}

static void
test_get_unused(void)
{
    struct query q;
    const char  *bad = NULL;

    CHECK(query_parse(A, "page=1&pageSize=10&foo=bar&flag", &q, &bad) == 0,
          "parse");
    CHECK_STR(query_first_unused(&q), "page", "all unused");
    CHECK_STR(query_get(&q, "page"), "1", "get page");
    CHECK_STR(query_first_unused(&q), "pageSize", "after page");
    CHECK_STR(query_get(&q, "Page"), NULL, "case-sensitive get");
    CHECK_STR(query_get(&q, "missing"), NULL, "missing");
    CHECK_STR(query_get(&q, "pageSize"), "10", "get pageSize");
    CHECK_STR(query_get(&q, "pageSize"), "10", "get twice");
    CHECK_STR(query_first_unused(&q), "foo", "foo unused");
    CHECK_STR(query_get(&q, "flag"), "", "flag");
    CHECK_STR(query_first_unused(&q), "foo", "still foo");
    CHECK_STR(query_get(&q, "foo"), "bar", "get foo");
    CHECK_STR(query_first_unused(&q), NULL, "all used");

    CHECK(query_parse(A, NULL, &q, &bad) == 0, "NULL query");
    CHECK_STR(query_get(&q, "page"), NULL, "get on empty");
    CHECK_STR(query_first_unused(&q), NULL, "unused on empty");
}

/* ---- parse_id / parse_int_range ---- */

static void
test_ids(void)
{
    static const struct {
        const char *s;
        int         rc;
        int64_t     want;
    } cases[] = {
        {"1", 0, 1},
        {"42", 0, 42},
        {"1000000", 0, 1000000},
        {"9223372036854775807", 0, INT64_MAX},
        {"9223372036854775808", -1, 0},
        {"18446744073709551617", -1, 0},
        {"99999999999999999999999", -1, 0},
        {"0", -1, 0},
        {"00", -1, 0},
        {"01", -1, 0},
        {"-1", -1, 0},
        {"-0", -1, 0},
        {"+1", -1, 0},
        {" 1", -1, 0},
        {"1 ", -1, 0},
        {"1a", -1, 0},
        {"a1", -1, 0},
        {"1.0", -1, 0},
        {"1e3", -1, 0},
        {"0x10", -1, 0},
        {"", -1, 0},
        {"\xEF\xBC\x91", -1, 0}, /* fullwidth 1 */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t out = 777;
        int rc = parse_id(cases[i].s, &out);
        CHECK(rc == cases[i].rc, "parse_id(\"%s\") rc %d", cases[i].s, rc);
        CHECK(out == (cases[i].rc == 0 ? cases[i].want : 777),
              "parse_id(\"%s\") = %lld", cases[i].s, (long long)out);
    }
    int64_t out = 777;
    CHECK(parse_id(NULL, &out) == -1 && out == 777, "parse_id(NULL)");
}

static void
test_int_range(void)
{
    static const struct {
        const char *s;
        int64_t     lo, hi;
        int         rc;
        int64_t     want;
    } cases[] = {
        {"5", 1, 10, 0, 5},
        {"1", 1, 10, 0, 1},
        {"10", 1, 10, 0, 10},
        {"0", 1, 10, -1, 0},
        {"11", 1, 10, -1, 0},
        {"0", 0, 0, 0, 0},
        {"-0", 0, 0, 0, 0},
        {"-5", -10, 10, 0, -5},
        {"-11", -10, 10, -1, 0},
        {"-1", 0, 10, -1, 0},
        {"9223372036854775807", INT64_MIN, INT64_MAX, 0, INT64_MAX},
        {"9223372036854775808", INT64_MIN, INT64_MAX, -1, 0},
        {"-9223372036854775808", INT64_MIN, INT64_MAX, 0, INT64_MIN},
        {"-9223372036854775807", INT64_MIN, INT64_MAX, 0, INT64_MIN + 1},
        {"-9223372036854775809", INT64_MIN, INT64_MAX, -1, 0},
        {"99999999999999999999", INT64_MIN, INT64_MAX, -1, 0},
        {"1000000000", 1, 1000000000, 0, 1000000000},
        {"1000000001", 1, 1000000000, -1, 0},
        {"01", 0, 10, -1, 0},
        {"-01", -10, 10, -1, 0},
        {"00", 0, 10, -1, 0},
        {"+1", 0, 10, -1, 0},
        {"--1", -10, 10, -1, 0},
        {"-", -10, 10, -1, 0},
        {"", 0, 10, -1, 0},
        {" 1", 0, 10, -1, 0},
        {"1 ", 0, 10, -1, 0},
        {"1.5", 0, 10, -1, 0},
        {"1.0", 0, 10, -1, 0},
        {"1e1", 0, 100, -1, 0},
        {"5x", 0, 10, -1, 0},
        {"5", 10, 1, -1, 0}, /* empty range */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t out = 777;
        int rc = parse_int_range(cases[i].s, cases[i].lo, cases[i].hi, &out);
        CHECK(rc == cases[i].rc, "parse_int_range(\"%s\") rc %d", cases[i].s,
              rc);
        CHECK(out == (cases[i].rc == 0 ? cases[i].want : 777),
              "parse_int_range(\"%s\") = %lld", cases[i].s, (long long)out);
    }
    int64_t out = 777;
    CHECK(parse_int_range(NULL, 0, 10, &out) == -1 && out == 777, "NULL");
}

/* ---- filters ---- */

/* Checks that a failed filter_parse left *f reset. */
static void
check_reset(const struct filter *f, const char *what)
{
    CHECK(f->op == FOP_EQ && f->vals == NULL && f->n == 0 && f->id == 0 &&
              f->boolean == 0,
          "filter reset after failure: %s", what);
}

static void
test_filter_string(void)
{
    struct filter f;

    CHECK(filter_parse(A, FK_STRING, "abc", &f) == 0, "eq");
    CHECK(f.op == FOP_EQ && f.n == 1, "eq shape");
    CHECK_STR(f.vals[0], "abc", "eq value");

    CHECK(filter_parse(A, FK_STRING, "J\xC3\xBCrgen M\xC3\xBCller", &f) == 0 &&
              f.op == FOP_EQ,
          "eq unicode with space");
    CHECK_STR(f.vals[0], "J\xC3\xBCrgen M\xC3\xBCller", "eq unicode value");

    CHECK(filter_parse(A, FK_STRING, "in:a,b,c", &f) == 0, "in");
    CHECK(f.op == FOP_IN && f.n == 3, "in shape (n=%zu)", f.n);
    CHECK_STR(f.vals[0], "a", "in 0");
    CHECK_STR(f.vals[1], "b", "in 1");
    CHECK_STR(f.vals[2], "c", "in 2");

    CHECK(filter_parse(A, FK_STRING, "in:only", &f) == 0 && f.op == FOP_IN &&
              f.n == 1,
          "in one");
    CHECK_STR(f.vals[0], "only", "in one value");

    CHECK(filter_parse(A, FK_STRING, "in:a b,like:x,in:y", &f) == 0 &&
              f.n == 3,
          "in items are literal");
    CHECK_STR(f.vals[0], "a b", "in literal 0");
    CHECK_STR(f.vals[1], "like:x", "in literal 1");
    CHECK_STR(f.vals[2], "in:y", "in literal 2");

    CHECK(filter_parse(A, FK_STRING, "like:50%_off", &f) == 0, "like");
    CHECK(f.op == FOP_LIKE && f.n == 1, "like shape");
    CHECK_STR(f.vals[0], "50%_off", "like value");

    CHECK(filter_parse(A, FK_STRING, "like:in:x", &f) == 0 &&
              f.op == FOP_LIKE,
          "like of in:");
    CHECK_STR(f.vals[0], "in:x", "like of in: value");

    /* Prefixes are case-sensitive: anything else is an equality value. */
    CHECK(filter_parse(A, FK_STRING, "IN:a,b", &f) == 0 && f.op == FOP_EQ,
          "IN: is a value");
    CHECK_STR(f.vals[0], "IN:a,b", "IN: value");
    CHECK(filter_parse(A, FK_STRING, "a,b", &f) == 0 && f.op == FOP_EQ &&
              f.n == 1,
          "comma in eq");
    CHECK_STR(f.vals[0], "a,b", "comma in eq value");

    /* 100 items ok, 101 not. */
    struct abuf b;
    abuf_init(&b, A);
    abuf_adds(&b, "in:");
    for (int i = 0; i < 100; i++)
        abuf_printf(&b, "%sv%d", i ? "," : "", i);
    CHECK(filter_parse(A, FK_STRING, abuf_str(&b), &f) == 0 && f.n == 100,
          "100 items");
    CHECK_STR(f.vals[99], "v99", "item 100");
    abuf_adds(&b, ",v100");
    CHECK(filter_parse(A, FK_STRING, abuf_str(&b), &f) == -1, "101 items");
    check_reset(&f, "101 items");

    /* 255 characters ok, 256 not, in every form. */
    char s255[300], s256[300], buf[700];
    memset(s255, 'x', 255);
    s255[255] = '\0';
    memset(s256, 'x', 256);
    s256[256] = '\0';
    CHECK(filter_parse(A, FK_STRING, s255, &f) == 0, "eq 255");
    CHECK(filter_parse(A, FK_STRING, s256, &f) == -1, "eq 256");
    snprintf(buf, sizeof(buf), "like:%s", s255);
    CHECK(filter_parse(A, FK_STRING, buf, &f) == 0, "like 255");
    snprintf(buf, sizeof(buf), "like:%s", s256);
    CHECK(filter_parse(A, FK_STRING, buf, &f) == -1, "like 256");
    snprintf(buf, sizeof(buf), "in:a,%s", s255);
    CHECK(filter_parse(A, FK_STRING, buf, &f) == 0, "in 255");
    snprintf(buf, sizeof(buf), "in:a,%s", s256);
    CHECK(filter_parse(A, FK_STRING, buf, &f) == -1, "in 256");

    static const char *const bad[] = {
        "", "in:", "in:,", "in:a,", "in:,a", "in:a,,b", "like:",
        "a\tb", "a\nb", "\x7F", "\xC2\x85", "\xC0\xAF", "in:ok,a\nb",
        "like:\x01", "in:ok,\xED\xA0\x80",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&f, 0x5A, sizeof(f));
        CHECK(filter_parse(A, FK_STRING, bad[i], &f) == -1,
              "string filter bad %zu", i);
        check_reset(&f, bad[i]);
    }
    CHECK(filter_parse(A, FK_STRING, NULL, &f) == -1, "NULL string filter");
    check_reset(&f, "NULL");
}

static void
test_filter_other(void)
{
    struct filter f;

    CHECK(filter_parse(A, FK_ID, "42", &f) == 0 && f.op == FOP_EQ &&
              f.id == 42 && f.n == 1,
          "id");
    CHECK_STR(f.vals[0], "42", "id text");
    CHECK(filter_parse(A, FK_ID, "9223372036854775807", &f) == 0 &&
              f.id == INT64_MAX,
          "id max");
    static const char *const bad_ids[] = {
        "0", "-1", "01", "abc", "", "in:1,2", "1,2", "9223372036854775808",
        " 1",
    };
    for (size_t i = 0; i < sizeof(bad_ids) / sizeof(bad_ids[0]); i++) {
        memset(&f, 0x5A, sizeof(f));
        CHECK(filter_parse(A, FK_ID, bad_ids[i], &f) == -1, "bad id %s",
              bad_ids[i]);
        check_reset(&f, bad_ids[i]);
    }

    CHECK(filter_parse(A, FK_BOOL, "true", &f) == 0 && f.op == FOP_EQ &&
              f.boolean == 1,
          "true");
    CHECK(filter_parse(A, FK_BOOL, "false", &f) == 0 && f.op == FOP_EQ &&
              f.boolean == 0 && f.n == 1,
          "false");
    CHECK_STR(f.vals[0], "false", "false text");
    static const char *const bad_bools[] = {
        "TRUE", "True", "1", "0", "yes", "", "true ", "falsey", "t",
    };
    for (size_t i = 0; i < sizeof(bad_bools) / sizeof(bad_bools[0]); i++) {
        memset(&f, 0x5A, sizeof(f));
        CHECK(filter_parse(A, FK_BOOL, bad_bools[i], &f) == -1, "bad bool %s",
              bad_bools[i]);
        check_reset(&f, bad_bools[i]);
    }

    CHECK(filter_parse(A, FK_DATE, "2024-01-31", &f) == 0 && f.op == FOP_EQ &&
              f.n == 1,
          "date eq");
    CHECK_STR(f.vals[0], "2024-01-31", "date eq value");
    CHECK(filter_parse(A, FK_DATE, "lt:2024-02-29", &f) == 0 && f.op == FOP_LT,
          "date lt");
    CHECK_STR(f.vals[0], "2024-02-29", "date lt value");
    CHECK(filter_parse(A, FK_DATE, "gt:1900-01-01", &f) == 0 && f.op == FOP_GT,
          "date gt");
    CHECK_STR(f.vals[0], "1900-01-01", "date gt value");
    static const char *const bad_dates[] = {
        "2023-02-29", "lt:2023-02-29", "gt:2024-13-01", "lt:", "gt:", "",
        "LT:2024-01-01", "le:2024-01-01", "eq:2024-01-01", "2024-1-1",
        "lt:lt:2024-01-01", "in:2024-01-01,2024-01-02", "like:2024",
        "2024-01-01T00:00:00Z", "lt: 2024-01-01",
    };
    for (size_t i = 0; i < sizeof(bad_dates) / sizeof(bad_dates[0]); i++) {
        memset(&f, 0x5A, sizeof(f));
        CHECK(filter_parse(A, FK_DATE, bad_dates[i], &f) == -1, "bad date %s",
              bad_dates[i]);
        check_reset(&f, bad_dates[i]);
    }

    CHECK(filter_parse(A, FK_ID, NULL, &f) == -1, "NULL id");
    CHECK(filter_parse(A, FK_BOOL, NULL, &f) == -1, "NULL bool");
    CHECK(filter_parse(A, FK_DATE, NULL, &f) == -1, "NULL date");
    CHECK(filter_parse(A, (enum filter_kind)99, "x", &f) == -1, "bad kind");
}

static void
test_like_pattern(void)
{
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"abc", "%abc%"},
        {"", "%%"},
        {"50%_off", "%50\\%\\_off%"},
        {"a\\b", "%a\\\\b%"},
        {"%%%", "%\\%\\%\\%%"},
        {"___", "%\\_\\_\\_%"},
        {"\\", "%\\\\%"},
        {"J\xC3\xBCrgen", "%J\xC3\xBCrgen%"},
        {"it's", "%it's%"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        CHECK_STR(filter_like_pattern(A, cases[i].in), cases[i].want,
                  "like pattern %zu", i);
}

/* ---- sort / fields ---- */

static const char *const NAMES[] = {
    "id", "amount", "createdDate", "status", "reference", "customerId",
    "currency", "f7", "f8", "f9", "f10", "f11",
};
#define NNAMES (sizeof(NAMES) / sizeof(NAMES[0]))

static void
test_sort_ok(void)
{
    struct sort_key *keys = (struct sort_key *)1;
    size_t           n = 99;
    const char      *bad = "untouched";

    CHECK(sort_parse(A, NULL, NAMES, NNAMES, &keys, &n, &bad) == 0 &&
              keys == NULL && n == 0,
          "NULL sort");

    CHECK(sort_parse(A, "amount", NAMES, NNAMES, &keys, &n, &bad) == 0 &&
              n == 1 && keys[0].field == 1 && keys[0].desc == 0,
          "one key");
    CHECK(sort_parse(A, "amount:asc", NAMES, NNAMES, &keys, &n, &bad) == 0 &&
              n == 1 && keys[0].field == 1 && keys[0].desc == 0,
          "asc");
    CHECK(sort_parse(A, "amount:desc,id", NAMES, NNAMES, &keys, &n, &bad) ==
                  0 &&
              n == 2 && keys[0].field == 1 && keys[0].desc == 1 &&
              keys[1].field == 0 && keys[1].desc == 0,
          "two keys");
    CHECK(sort_parse(A, "status:asc,createdDate:desc", NAMES, NNAMES, &keys,
                     &n, &bad) == 0 &&
              n == 2 && keys[0].field == 3 && keys[0].desc == 0 &&
              keys[1].field == 2 && keys[1].desc == 1,
          "asc and desc");
    CHECK(sort_parse(A, "id:DESC,amount:Asc,status:dEsC", NAMES, NNAMES, &keys,
                     &n, &bad) == 0 &&
              n == 3 && keys[0].desc == 1 && keys[1].desc == 0 && keys[2].desc == 1,
          "the direction in any case");
    CHECK(sort_parse(A, "id,amount,createdDate,status,reference,customerId,"
                        "currency,f7,f8:desc,f9",
                     NAMES, NNAMES, &keys, &n, &bad) == 0 &&
              n == 10 && keys[9].field == 9 && keys[8].desc == 1,
          "ten keys");
    CHECK_STR(bad, "untouched", "no message on success");
}

static void
test_sort_bad(void)
{
    static const struct {
        const char *text, *msg;
    } cases[] = {
        {"", "empty item in sort"},
        {",", "empty item in sort"},
        {"amount,", "empty item in sort"},
        {",amount", "empty item in sort"},
        {"amount,,id", "empty item in sort"},
        {":desc", "empty item in sort"},
        {"foo", "unknown sort field 'foo'"},
        {"amount,foo:desc", "unknown sort field 'foo'"},
        {"Amount", "unknown sort field 'Amount'"},
        {" amount", "unknown sort field ' amount'"},
        {"a\nb", "unknown sort field 'a?b'"},
        {"o'neil", "unknown sort field 'o?neil'"},
        {"amount:down",
         "invalid sort direction in 'amount:down' (use :asc or :desc)"},
        {"amount:", "invalid sort direction in 'amount:' (use :asc or :desc)"},
        {"amount:DESCENDING",
         "invalid sort direction in 'amount:DESCENDING' (use :asc or :desc)"},
        {"amount:desc:asc",
         "invalid sort direction in 'amount:desc:asc' (use :asc or :desc)"},
        {"amount: desc",
         "invalid sort direction in 'amount: desc' (use :asc or :desc)"},
        {"amount,amount:desc", "sort field 'amount' is given more than once"},
        {"id:desc,amount,id", "sort field 'id' is given more than once"},
        {"id,amount,createdDate,status,reference,customerId,currency,f7,f8,"
         "f9,f10",
         "too many sort fields (at most 10)"},
        {",,,,,,,,,,,,", "too many sort fields (at most 10)"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sort_key *keys = (struct sort_key *)1;
        size_t           n = 99;
        const char      *bad = NULL;
        int rc = sort_parse(A, cases[i].text, NAMES, NNAMES, &keys, &n, &bad);
        CHECK(rc == -1, "sort bad %zu rc %d", i, rc);
        CHECK_STR(bad, cases[i].msg, "sort bad %zu (%s)", i, cases[i].text);
        CHECK(keys == NULL && n == 0, "sort bad %zu leaves no keys", i);
    }

    /* An unknown long name is echoed truncated to 64 bytes. */
    char text[200], want[200];
    memset(text, 'z', 150);
    text[150] = '\0';
    strcpy(want, "unknown sort field '");
    memset(want + strlen(want), 'z', 64);
    strcpy(want + strlen("unknown sort field '") + 64, "'");
    struct sort_key *keys;
    size_t           n;
    const char      *bad = NULL;
    CHECK(sort_parse(A, text, NAMES, NNAMES, &keys, &n, &bad) == -1,
          "long unknown");
    CHECK_STR(bad, want, "long unknown echo");
}

static void
test_fields(void)
{
    unsigned char sel[NNAMES];
    const char   *bad = "untouched";

    memset(sel, 0, sizeof(sel));
    CHECK(fields_parse(A, NULL, NAMES, NNAMES, sel, &bad) == 0, "NULL fields");
    for (size_t i = 0; i < NNAMES; i++)
        CHECK(sel[i] == 0, "NULL selects nothing (%zu)", i);

    memset(sel, 0, sizeof(sel));
    CHECK(fields_parse(A, "id,amount", NAMES, NNAMES, sel, &bad) == 0,
          "two fields");
    for (size_t i = 0; i < NNAMES; i++)
        CHECK(sel[i] == (i <= 1), "two fields sel[%zu]=%d", i, sel[i]);

    memset(sel, 0, sizeof(sel));
    CHECK(fields_parse(A, "status,status,f11", NAMES, NNAMES, sel, &bad) == 0,
          "duplicates");
    for (size_t i = 0; i < NNAMES; i++)
        CHECK(sel[i] == (i == 3 || i == 11), "dup sel[%zu]=%d", i, sel[i]);
    CHECK_STR(bad, "untouched", "no message on success");

    static const struct {
        const char *text, *msg;
    } cases[] = {
        {"", "empty item in fields"},
        {",", "empty item in fields"},
        {"id,", "empty item in fields"},
        {",id", "empty item in fields"},
        {"id,,amount", "empty item in fields"},
        {"foo", "unknown field 'foo' in fields"},
        {"id,foo", "unknown field 'foo' in fields"},
        {"amount:desc", "unknown field 'amount:desc' in fields"},
        {"ID", "unknown field 'ID' in fields"},
        {"id ", "unknown field 'id ' in fields"},
        {"x\"y", "unknown field 'x?y' in fields"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memset(sel, 0, sizeof(sel));
        bad = NULL;
        CHECK(fields_parse(A, cases[i].text, NAMES, NNAMES, sel, &bad) == -1,
              "fields bad %zu", i);
        CHECK_STR(bad, cases[i].msg, "fields bad %zu (%s)", i, cases[i].text);
    }

    char text[200], want[200];
    memset(text, 'q', 150);
    text[150] = '\0';
    strcpy(want, "unknown field '");
    memset(want + strlen(want), 'q', 64);
    strcpy(want + strlen("unknown field '") + 64, "' in fields");
    bad = NULL;
    CHECK(fields_parse(A, text, NAMES, NNAMES, sel, &bad) == -1, "long field");
    CHECK_STR(bad, want, "long field echo");
}

/* ---- page / pageSize ---- */

static void
test_page(void)
{
    static const struct {
        const char *page, *size;
        const char *msg; /* NULL: success */
        int64_t     pg, ps;
    } cases[] = {
        {"1", "10", NULL, 1, 10},
        {"1", "1", NULL, 1, 1},
        {"7", "1000", NULL, 7, 1000},
        {"1000000000", "50", NULL, 1000000000, 50},
        {NULL, "10", "page is required", 0, 0},
        {"", "10", "page is required", 0, 0},
        {NULL, NULL, "page is required", 0, 0},
        {"1", NULL, "pageSize is required", 0, 0},
        {"1", "", "pageSize is required", 0, 0},
        {"0", "10", "page must be between 1 and 1000000000", 0, 0},
        {"-1", "10", "page must be between 1 and 1000000000", 0, 0},
        {"1000000001", "10", "page must be between 1 and 1000000000", 0, 0},
        {"99999999999999999999", "10",
         "page must be between 1 and 1000000000", 0, 0},
        {"abc", "10", "page must be a decimal integer", 0, 0},
        {"1.5", "10", "page must be a decimal integer", 0, 0},
        {"01", "10", "page must be written without leading zeros", 0, 0},
        {"00", "10", "page must be written without leading zeros", 0, 0},
        {"-01", "10", "page must be written without leading zeros", 0, 0},
        {" 1", "10", "page must be a decimal integer", 0, 0},
        {"+1", "10", "page must be a decimal integer", 0, 0},
        {"-", "10", "page must be a decimal integer", 0, 0},
        {"abc", NULL, "page must be a decimal integer", 0, 0},
        {"1", "0", "pageSize must be between 1 and 1000", 0, 0},
        {"1", "1001", "pageSize must be between 1 and 1000", 0, 0},
        {"1", "-5", "pageSize must be between 1 and 1000", 0, 0},
        {"1", "x", "pageSize must be a decimal integer", 0, 0},
        {"1", "10.0", "pageSize must be a decimal integer", 0, 0},
        {"1", "99999999999999999999",
         "pageSize must be between 1 and 1000", 0, 0},
        {"1", "010", "pageSize must be written without leading zeros", 0, 0},
        {"01", "010", "page must be written without leading zeros", 0, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t     pg = 777, ps = 777;
        const char *bad = NULL;
        int rc = page_parse(cases[i].page, cases[i].size, &pg, &ps, &bad);
        if (cases[i].msg == NULL) {
            CHECK(rc == 0, "page case %zu rc %d (%s)", i, rc, bad);
            CHECK(pg == cases[i].pg && ps == cases[i].ps,
                  "page case %zu got %lld/%lld", i, (long long)pg,
                  (long long)ps);
            CHECK(bad == NULL, "page case %zu set bad", i);
        } else {
            CHECK(rc == -1, "page case %zu rc %d", i, rc);
            CHECK_STR(bad, cases[i].msg, "page case %zu", i);
        }
    }
}

int
main(void)
{
    A = arena_create(1024);
    test_parse_ok();
    test_parse_bad();
    test_parse_limits();
    test_get_unused();
    test_ids();
    test_int_range();
    test_filter_string();
    test_filter_other();
    test_like_pattern();
    test_sort_ok();
    test_sort_bad();
    test_fields();
    test_page();
    arena_destroy(A);
    return TEST_DONE();
}
