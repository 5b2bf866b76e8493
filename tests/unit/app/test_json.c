/*
 * Unit tests for app/json.c: the arena-backed parser (shapes, raw number
 * text, escapes, duplicate keys, the depth limit, hostile nesting, NUL and
 * invalid UTF-8, comments, trailing garbage), json_get, and the generator
 * helpers (json_money, json_str escaping, json_i64, json_value_gen round
 * trips). Every case runs on one arena that is reset between cases.
 */
#include "test.h"

#include "arena.h"
#include "json.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct arena *A;

static int
parse(const char *s, size_t n, struct json_value **out, const char **err)
{
    *out = NULL;
    *err = NULL;
    return json_parse(A, s, n, out, err);
}

static int
parse_str(const char *s, struct json_value **out, const char **err)
{
    return parse(s, strlen(s), out, err);
}

/* ---- shapes ---------------------------------------------------------------- */

static void
test_shapes(void)
{
    struct json_value *v;
    const char        *err;

    arena_reset(A);
    const char *doc = "{\"a\": 1, \"b\": \"x\", \"c\": [true, false, null],"
                      " \"d\": {\"e\": \"f\", \"g\": []}, \"h\": {}}";
    CHECK(parse_str(doc, &v, &err) == 0, "parses a nested object: %s", err ? err : "");
    if (v == NULL)
        return;
    CHECK(v->type == JSON_OBJECT && v->n == 5, "root object with 5 members (%zu)", v->n);
    static const char *const keys[] = {"a", "b", "c", "d", "h"};
    for (size_t i = 0; i < 5 && i < v->n; i++)
        CHECK_STR(v->keys[i], keys[i], "member %zu keeps document order", i);

    struct json_value *a = json_get(v, "a");
    CHECK(a && a->type == JSON_NUMBER && strcmp(a->str, "1") == 0 && a->len == 1,
          "a is the number 1");
    struct json_value *b = json_get(v, "b");
    CHECK(b && b->type == JSON_STRING && strcmp(b->str, "x") == 0 && b->len == 1,
          "b is the string x");
    struct json_value *c = json_get(v, "c");
    CHECK(c && c->type == JSON_ARRAY && c->n == 3, "c is an array of 3");
    if (c && c->n == 3) {
        CHECK(c->items[0]->type == JSON_BOOL && c->items[0]->boolean == 1, "c[0] true");
        CHECK(c->items[1]->type == JSON_BOOL && c->items[1]->boolean == 0, "c[1] false");
        CHECK(c->items[2]->type == JSON_NULL, "c[2] null");
        CHECK(c->keys == NULL, "arrays have no keys");
    }
    struct json_value *d = json_get(v, "d");
    CHECK(d && d->type == JSON_OBJECT && d->n == 2, "d is an object of 2");
    struct json_value *e = json_get(d, "e");
    CHECK(e && e->type == JSON_STRING && strcmp(e->str, "f") == 0, "d.e is \"f\"");
    struct json_value *g = json_get(d, "g");
    CHECK(g && g->type == JSON_ARRAY && g->n == 0, "d.g is an empty array");
    struct json_value *h = json_get(v, "h");
    CHECK(h && h->type == JSON_OBJECT && h->n == 0, "h is an empty object");

    /* json_get */
    CHECK(json_get(v, "zz") == NULL, "json_get of a missing key is NULL");
    CHECK(json_get(v, "A") == NULL, "json_get is case-sensitive");
    CHECK(json_get(c, "a") == NULL, "json_get on an array is NULL");
    CHECK(json_get(a, "a") == NULL, "json_get on a number is NULL");
    CHECK(json_get(NULL, "a") == NULL, "json_get(NULL) is NULL");
    CHECK(json_get(d, "e") == e, "json_get finds a nested member on its object");

    /* Large arrays and objects (container growth). */
    arena_reset(A);
    char *big = malloc(200000);
    size_t n = 0;
    big[n++] = '[';
    for (int i = 0; i < 20000; i++)
        n += (size_t)snprintf(big + n, 200000 - n, "%s%d", i ? "," : "", i);
    big[n++] = ']';
    CHECK(parse(big, n, &v, &err) == 0 && v->type == JSON_ARRAY && v->n == 20000,
          "array of 20000 numbers");
    if (v && v->n == 20000)
        CHECK(strcmp(v->items[0]->str, "0") == 0 && strcmp(v->items[19999]->str, "19999") == 0,
              "first and last items of the big array");
    arena_reset(A);
    n = 0;
    big[n++] = '{';
    for (int i = 0; i < 5000; i++)
        n += (size_t)snprintf(big + n, 200000 - n, "%s\"k%d\":%d", i ? "," : "", i, i);
    big[n++] = '}';
    CHECK(parse(big, n, &v, &err) == 0 && v->type == JSON_OBJECT && v->n == 5000,
          "object of 5000 distinct members: %s", err ? err : "");
    struct json_value *k = json_get(v, "k4999");
    CHECK(k && strcmp(k->str, "4999") == 0, "json_get finds the last of 5000 members");
    free(big);

    /* Scalars at the top level. */
    static const struct {
        const char    *doc;
        enum json_type t;
        const char    *text;
    } top[] = {
        {"\"s\"", JSON_STRING, "s"}, {"true", JSON_BOOL, NULL},
        {"null", JSON_NULL, NULL},   {"42", JSON_NUMBER, "42"},
        {" [] ", JSON_ARRAY, NULL},  {"\n{}\t", JSON_OBJECT, NULL},
    };
    for (size_t i = 0; i < sizeof(top) / sizeof(top[0]); i++) {
        arena_reset(A);
        int rc = parse_str(top[i].doc, &v, &err);
        CHECK(rc == 0 && v && v->type == top[i].t, "top-level '%s' parses (%s)",
              top[i].doc, err ? err : "ok");
        if (rc == 0 && top[i].text)
            CHECK_STR(v->str, top[i].text, "top-level '%s' text", top[i].doc);
    }
}

/* ---- numbers keep their raw text ------------------------------------------ */

static void
test_numbers(void)
{
    static const char *const nums[] = {
        "10.50", "1e2", "-0", "0", "-0.0", "1E+2", "1e-7", "10.500", "0.1",
        "-1.5E-3", "123456789012345678901234567890", "9223372036854775808",
        "-9223372036854775809", "1.7976931348623157e309",
        "0.30000000000000000000000000001",
    };
    for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
        char doc[128];
        snprintf(doc, sizeof(doc), "{\"amount\":%s}", nums[i]);
        struct json_value *v;
        const char        *err;
        arena_reset(A);
        int rc = parse_str(doc, &v, &err);
        CHECK(rc == 0, "%s parses: %s", doc, err ? err : "");
        struct json_value *a = rc == 0 ? json_get(v, "amount") : NULL;
        CHECK(a && a->type == JSON_NUMBER, "%s is a number", nums[i]);
        if (a) {
            CHECK_STR(a->str, nums[i], "number text is kept exactly");
            CHECK(a->len == strlen(nums[i]), "number len (%zu)", a->len);
        }
    }
    static const char *const bad[] = {
        "[01]", "[1.]", "[.5]", "[+1]", "[1e]", "[-]", "[NaN]", "[Infinity]",
        "[0x10]", "[1.2.3]", "[--1]",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct json_value *v;
        const char        *err;
        arena_reset(A);
        CHECK(parse_str(bad[i], &v, &err) == -1 && err && *err,
              "malformed number %s is rejected", bad[i]);
    }
    /* Over-long number text is refused rather than kept. */
    char doc[200] = "[";
    memset(doc + 1, '7', 150);
    strcpy(doc + 151, "]");
    struct json_value *v;
    const char        *err;
    arena_reset(A);
    CHECK(parse_str(doc, &v, &err) == -1, "a 150-digit number is rejected");
}

/* ---- strings ---------------------------------------------------------------- */

static void
test_strings(void)
{
    static const struct {
        const char *doc;
        const char *want;
        size_t      len;
    } ok[] = {
        {"\"plain\"", "plain", 5},
        {"\"\"", "", 0},
        {"\"a\\nb\\tc\\r\\\\\\\"\\/\"", "a\nb\tc\r\\\"/", 9},
        {"\"\\u00e9\"", "\xc3\xa9", 2},
        {"\"\\u20AC\"", "\xe2\x82\xac", 3},
        {"\"\\ud83d\\ude00\"", "\xf0\x9f\x98\x80", 4},
        {"\"\xc3\xa9t\xc3\xa9\"", "\xc3\xa9t\xc3\xa9", 5},
        {"\"\xf0\x9f\x98\x80\"", "\xf0\x9f\x98\x80", 4},
        {"\"\\u0001\"", "\x01", 1},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        struct json_value *v;
        const char        *err;
        arena_reset(A);
        int rc = parse_str(ok[i].doc, &v, &err);
        CHECK(rc == 0 && v && v->type == JSON_STRING, "string %s parses (%s)",
              ok[i].doc, err ? err : "ok");
        if (rc == 0) {
            CHECK(v->len == ok[i].len && memcmp(v->str, ok[i].want, ok[i].len) == 0 &&
                      v->str[v->len] == '\0',
                  "string %s decodes to %zu bytes (got %zu)", ok[i].doc, ok[i].len,
                  v->len);
        }
    }
}

/* ---- rejected documents --------------------------------------------------- */

static void
test_rejects(void)
{
    static const struct {
        const char *doc;
        size_t      len;     /* 0: strlen */
        const char *needle;  /* substring of err, or NULL */
        const char *what;
    } bad[] = {
        /* duplicate keys */
        {"{\"a\":1,\"a\":2}", 0, "duplicate", "duplicate key"},
        {"{\"a\":1,\"b\":2,\"a\":3}", 0, "duplicate", "duplicate key, not adjacent"},
        {"{\"x\":{\"k\":1,\"k\":null}}", 0, "duplicate", "duplicate key in a nested object"},
        {"[{\"k\":1,\"k\":1}]", 0, "duplicate", "duplicate key in an array element"},
        {"{\"\":1,\"\":2}", 0, "duplicate", "duplicate empty key"},
        {"{\"\\u0061\":1,\"a\":2}", 0, "duplicate", "duplicate key spelt with an escape"},
        /* NUL */
        {"\"a\\u0000b\"", 0, "NUL", "\\u0000 in a string"},
        {"{\"a\\u0000\":1}", 0, "NUL", "\\u0000 in a key"},
        {"[\"a\0b\"]", 7, NULL, "raw NUL byte in a string"},
        {"[1]\0", 4, NULL, "raw NUL byte after the document"},
        /* invalid UTF-8 */
        {"\"\xff\"", 0, NULL, "0xFF byte"},
        {"\"\xc3\"", 0, NULL, "truncated 2-byte sequence"},
        {"\"\xc0\xaf\"", 0, NULL, "overlong encoding of '/'"},
        {"\"\xe0\x80\xaf\"", 0, NULL, "3-byte overlong"},
        {"\"\xed\xa0\x80\"", 0, NULL, "UTF-8-encoded surrogate"},
        {"\"\xf4\x90\x80\x80\"", 0, NULL, "code point above U+10FFFF"},
        {"\"\x80\"", 0, NULL, "stray continuation byte"},
        {"{\"\xff\":1}", 0, NULL, "invalid UTF-8 in a key"},
        /* Escaped surrogates that do not form a pair encode no character:
         * they must be refused like their raw UTF-8 form above, not turned
         * into '?' or combined with an unrelated escape. */
        {"\"\\udc00\"", 0, NULL, "lone low surrogate escape"},
        {"\"\\ud800\"", 0, NULL, "lone high surrogate escape"},
        {"\"\\ud800x\"", 0, NULL, "high surrogate escape followed by a letter"},
        {"\"\\ud800\\u0041\"", 0, NULL, "high surrogate escape followed by \\u0041"},
        /* comments */
        {"/* c */ {}", 0, NULL, "block comment before"},
        {"{} // c", 0, NULL, "line comment after"},
        {"{\"a\":1 /* c */}", 0, NULL, "block comment inside"},
        {"[1, // c\n 2]", 0, NULL, "line comment inside"},
        /* trailing garbage */
        {"{} x", 0, NULL, "garbage after the document"},
        {"{}{}", 0, NULL, "two documents"},
        {"[1]]", 0, NULL, "extra closing bracket"},
        {"1 2", 0, NULL, "two numbers"},
        {"\"a\" \"b\"", 0, NULL, "two strings"},
        /* other syntax */
        {"", 0, NULL, "empty input"},
        {"   ", 0, NULL, "whitespace only"},
        {"{", 0, NULL, "unterminated object"},
        {"[1,2", 0, NULL, "unterminated array"},
        {"\"abc", 0, NULL, "unterminated string"},
        {"[1,]", 0, NULL, "trailing comma in an array"},
        {"{\"a\":1,}", 0, NULL, "trailing comma in an object"},
        {"{'a':1}", 0, NULL, "single quotes"},
        {"{a:1}", 0, NULL, "unquoted key"},
        {"{\"a\"}", 0, NULL, "key without value"},
        {"{\"a\" 1}", 0, NULL, "missing colon"},
        {"[tru]", 0, NULL, "truncated literal"},
        {"[True]", 0, NULL, "capitalised literal"},
        {"[\"a\x01\"]", 0, NULL, "raw control character in a string"},
        {"[\"\\x41\"]", 0, NULL, "invalid escape"},
        {"[\"\\u12\"]", 0, NULL, "short \\u escape"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct json_value *v = NULL;
        const char        *err = NULL;
        size_t             len = bad[i].len ? bad[i].len : strlen(bad[i].doc);
        arena_reset(A);
        int rc = parse(bad[i].doc, len, &v, &err);
        CHECK(rc == -1, "rejects %s", bad[i].what);
        CHECK(err != NULL && *err != '\0', "%s: an error message is given", bad[i].what);
        if (bad[i].needle && err)
            CHECK(strstr(err, bad[i].needle) != NULL, "%s: message mentions %s (%s)",
                  bad[i].what, bad[i].needle, err);
    }

    /* The same key in different objects is fine. */
    static const char *const fine[] = {
        "{\"a\":{\"a\":1}}", "[{\"a\":1},{\"a\":2}]", "{\"a\":1,\"A\":2}",
        "{\"a\":1,\"aa\":2,\"a \":3}",
    };
    for (size_t i = 0; i < sizeof(fine) / sizeof(fine[0]); i++) {
        struct json_value *v;
        const char        *err;
        arena_reset(A);
        CHECK(parse_str(fine[i], &v, &err) == 0, "accepts %s (%s)", fine[i],
              err ? err : "ok");
    }
}

/* ---- depth ----------------------------------------------------------------- */

/* depth levels of open, then a leaf, then the closes; malloc'd. */
static char *
nested(int depth, const char *open, const char *close, const char *leaf, size_t *len)
{
    size_t lo = strlen(open), lc = strlen(close), ll = strlen(leaf);
    char  *s = malloc((size_t)depth * (lo + lc) + ll + 1);
    size_t n = 0;
    for (int i = 0; i < depth; i++, n += lo)
        memcpy(s + n, open, lo);
    memcpy(s + n, leaf, ll);
    n += ll;
    for (int i = 0; i < depth; i++, n += lc)
        memcpy(s + n, close, lc);
    s[n] = '\0';
    *len = n;
    return s;
}

static void
test_depth(void)
{
    static const struct {
        const char *open, *close, *leaf, *what;
    } kinds[] = {
        {"[", "]", "1", "arrays"},
        {"{\"k\":", "}", "1", "objects"},
        {"[{\"k\":", "}]", "1", "arrays and objects"},
        {"[", "]", "", "empty innermost array"},
    };
    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        /* Mixed kinds nest two levels per step. */
        int    per = strchr(kinds[k].open + 1, '{') || strchr(kinds[k].open + 1, '[') ? 2 : 1;
        size_t len;
        char  *ok = nested(JSON_MAX_DEPTH / per, kinds[k].open, kinds[k].close,
                           kinds[k].leaf, &len);
        struct json_value *v;
        const char        *err;
        arena_reset(A);
        CHECK(parse(ok, len, &v, &err) == 0, "depth %d of %s is accepted (%s)",
              JSON_MAX_DEPTH, kinds[k].what, err ? err : "ok");
        free(ok);

        char *deep = per == 1 ? nested(JSON_MAX_DEPTH + 1, kinds[k].open,
                                       kinds[k].close, kinds[k].leaf, &len)
                              : nested(JSON_MAX_DEPTH / 2, kinds[k].open,
                                       kinds[k].close, "[1]", &len);
        arena_reset(A);
        CHECK(parse(deep, len, &v, &err) == -1, "depth %d of %s is rejected",
              JSON_MAX_DEPTH + 1, kinds[k].what);
        CHECK(err && strstr(err, "deep") != NULL, "depth error says so (%s)",
              err ? err : "");
        free(deep);
    }
    CHECK(JSON_MAX_DEPTH == 32, "JSON_MAX_DEPTH is 32");

    /* 100,000 nested arrays: rejected fast, no crash, memory reclaimed. */
    arena_reset(A);
    size_t base = arena_footprint(A);
    size_t len;
    char  *bomb = nested(100000, "[", "]", "", &len);
    struct json_value *v;
    const char        *err;
    clock_t t0 = clock();
    int     rc = parse(bomb, len, &v, &err);
    double  secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    CHECK(rc == -1, "100,000 nested arrays are rejected");
    CHECK(secs < 0.5, "and quickly (%.3f s)", secs);
    free(bomb);
    /* Unterminated: only opening brackets. */
    bomb = malloc(100000);
    memset(bomb, '[', 100000);
    arena_reset(A);
    CHECK(parse(bomb, 100000, &v, &err) == -1, "100,000 unclosed [ are rejected");
    memset(bomb, '{', 100000);
    arena_reset(A);
    CHECK(parse(bomb, 100000, &v, &err) == -1, "100,000 unclosed { are rejected");
    free(bomb);
    arena_reset(A);
    CHECK(arena_footprint(A) == base, "the arena returns to its first chunk (%zu)",
          arena_footprint(A));
}

/* ---- generator ---------------------------------------------------------------- */

static char   gbuf[65536];
static size_t glen;

static void
gprint(void *ctx, const char *s, size_t n)
{
    (void)ctx;
    if (glen + n < sizeof(gbuf)) {
        memcpy(gbuf + glen, s, n);
        glen += n;
    }
    gbuf[glen] = '\0';
}

static struct json_gen *
gen(void)
{
    arena_reset(A);
    glen = 0;
    gbuf[0] = '\0';
    return json_gen_new(A, gprint, NULL);
}

static void
test_money(void)
{
    static const struct {
        int64_t     minor;
        int         digits;
        const char *want;
    } cases[] = {
        {1050, 2, "10.50"},  {-1, 2, "-0.01"},    {0, 2, "0.00"},     {5, 0, "5"},
        {0, 0, "0"},         {-100, 0, "-100"},   {1, 2, "0.01"},     {100, 2, "1.00"},
        {-1050, 2, "-10.50"}, {12345, 4, "1.2345"}, {5, 3, "0.005"},  {-5, 1, "-0.5"},
        {999999999999999LL, 2, "9999999999999.99"},
        {INT64_MAX, 2, "92233720368547758.07"},
        {INT64_MIN, 2, "-92233720368547758.08"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct json_gen *g = gen();
        json_array_open(g);
        json_money(g, cases[i].minor, cases[i].digits);
        json_array_close(g);
        char want[64];
        snprintf(want, sizeof(want), "[%s]", cases[i].want);
        CHECK_STR(gbuf, want, "json_money(%lld, %d)", (long long)cases[i].minor,
                  cases[i].digits);
    }
    struct json_gen *g = gen();
    json_array_open(g);
    json_money(g, 100, 5); /* digits out of range */
    json_array_close(g);
    CHECK_STR(gbuf, "[null]", "json_money with 5 digits writes null");

    /* In an object, after keys. */
    g = gen();
    json_map_open(g);
    json_key(g, "amount");
    json_money(g, 1050, 2);
    json_key(g, "jpy");
    json_money(g, 1050, 0);
    json_map_close(g);
    CHECK_STR(gbuf, "{\"amount\":10.50,\"jpy\":1050}", "money members in an object");
}

static void
test_gen_scalars(void)
{
    static const struct {
        const char *in;
        size_t      len; /* 0: strlen */
        const char *want;
    } strs[] = {
        {"plain", 0, "\"plain\""},
        {"", 0, "\"\""},
        {"q\"b\\s", 0, "\"q\\\"b\\\\s\""},
        {"nl\ntab\tcr\r", 0, "\"nl\\ntab\\tcr\\r\""},
        {"\x01\x1f", 0, "\"\\u0001\\u001F\""},
        {"\b\f", 0, "\"\\b\\f\""},
        {"a/b", 0, "\"a/b\""},
        {"\xc3\xa9\xe2\x82\xac", 0, "\"\xc3\xa9\xe2\x82\xac\""}, /* UTF-8 as is */
        {"</script>", 0, "\"</script>\""},
        {"x\0y", 3, "\"x\\u0000y\""},
    };
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
        struct json_gen *g = gen();
        json_array_open(g);
        if (strs[i].len)
            json_strn(g, strs[i].in, strs[i].len);
        else
            json_str(g, strs[i].in);
        json_array_close(g);
        char want[128];
        snprintf(want, sizeof(want), "[%s]", strs[i].want);
        CHECK_STR(gbuf, want, "json_str escaping case %zu", i);
    }

    /* NULL and invalid UTF-8 become null; the document stays well formed. */
    struct json_gen *g = gen();
    json_array_open(g);
    json_str(g, NULL);
    json_str(g, "\xff\xfe");
    json_strn(g, "ok", 2);
    json_array_close(g);
    CHECK_STR(gbuf, "[null,null,\"ok\"]", "NULL and invalid UTF-8 give null");

    g = gen();
    json_array_open(g);
    json_i64(g, 0);
    json_i64(g, -42);
    json_i64(g, INT64_MAX);
    json_i64(g, INT64_MIN);
    json_bool(g, 1);
    json_bool(g, 7);
    json_bool(g, 0);
    json_null(g);
    json_array_close(g);
    CHECK_STR(gbuf, "[0,-42,9223372036854775807,-9223372036854775808,true,true,false,null]",
              "json_i64, json_bool, json_null");
}

static void
test_roundtrip(void)
{
    static const char *const docs[] = {
        "{\"a\":[1,2.50,-0,1e2,1E-3],\"b\":{\"c\":null,\"d\":true,\"e\":false},"
        "\"s\":\"x\\ny\\\"z\",\"u\":\"\xc3\xa9\xf0\x9f\x98\x80\"}",
        "[]",
        "{}",
        "[[[]],{},[{}]]",
        "\"top\"",
        "10.50",
        "{\"amount\":123456789012345678901234567890}",
        "{\"k\":\"\\u0001\"}",
    };
    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        struct json_value *v;
        const char        *err;
        struct json_gen *g = gen(); /* resets A: parse after */
        int                rc = parse_str(docs[i], &v, &err);
        CHECK(rc == 0, "round-trip doc %zu parses (%s)", i, err ? err : "ok");
        if (rc != 0)
            continue;
        json_value_gen(g, v);
        CHECK_STR(gbuf, docs[i], "json_value_gen reproduces doc %zu", i);
    }
    /* With whitespace in the input, the output is the compact form. */
    struct json_value *v;
    const char        *err;
    struct json_gen *g = gen();
    CHECK(parse_str(" { \"a\" : [ 1 , 2 ] ,\n \"b\" : \"c\" } ", &v, &err) == 0,
          "spaced doc parses");
    json_value_gen(g, v);
    CHECK_STR(gbuf, "{\"a\":[1,2],\"b\":\"c\"}", "json_value_gen writes compact JSON");

    g = gen();
    json_value_gen(g, NULL);
    CHECK_STR(gbuf, "null", "json_value_gen(NULL) writes null");

    /* The generated text parses back to the same tree. */
    g = gen();
    json_map_open(g);
    json_key(g, "amount");
    json_money(g, -1, 2);
    json_key(g, "text");
    json_str(g, "a\"\n\\");
    json_map_close(g);
    char copy[256];
    size_t cn = glen < sizeof(copy) - 1 ? glen : sizeof(copy) - 1;
    memcpy(copy, gbuf, cn);
    copy[cn] = '\0';
    CHECK(parse_str(copy, &v, &err) == 0, "generated JSON parses back (%s)", copy);
    struct json_value *amt = json_get(v, "amount"), *txt = json_get(v, "text");
    CHECK(amt && strcmp(amt->str, "-0.01") == 0, "money survives the round trip");
    CHECK(txt && strcmp(txt->str, "a\"\n\\") == 0, "escaped text survives the round trip");
}

/* ---- steady state ---------------------------------------------------------- */

static void
test_no_growth(void)
{
    arena_reset(A);
    size_t      base = arena_footprint(A);
    const char *docs[] = {"{\"a\":[1,2,3],\"b\":{\"c\":\"d\"}}", "{\"a\":1,\"a\":2}",
                          "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
                          "{\"x\": \"\xff\"}", "[1,2"};
    size_t      differ = 0;
    for (int i = 0; i < 20000; i++) {
        struct json_value *v;
        const char        *err;
        parse_str(docs[i % 5], &v, &err);
        arena_reset(A);
        differ += arena_footprint(A) != base;
    }
    CHECK(differ == 0, "20,000 parses (good and bad) leave the footprint constant");
}

int
main(void)
{
    A = arena_create(16 * 1024);
    test_shapes();
    test_numbers();
    test_strings();
    test_rejects();
    test_depth();
    test_money();
    test_gen_scalars();
    test_roundtrip();
    test_no_growth();
    arena_destroy(A);
    return TEST_DONE();
}
