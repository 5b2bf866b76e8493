/*
 * Unit tests for app/jsonpatch.c: RFC 6901 pointers (the §5 examples,
 * escapes, malformed pointers), RFC 6902 appendix A examples A.1-A.16,
 * every operation's failure modes (missing members, bad pointers, missing
 * targets, bad indices, move into a child, failed test), JSON equality
 * (numbers by value, unordered objects), all-or-nothing behaviour (the
 * input document and the patch are never modified), and the depth and
 * node limits. Every case runs on one arena, reset between groups.
 */
#include "test.h"

#include "arena.h"
#include "json.h"
#include "jsonpatch.h"

#include <stdlib.h>
#include <string.h>

static struct arena *A;

static struct json_value *
parse(const char *s)
{
    struct json_value *v = NULL;
    const char        *err = NULL;
    if (json_parse(A, s, strlen(s), &v, &err) != 0) {
        printf("test document does not parse: %s: %s\n", s, err);
        exit(2);
    }
    return v;
}

static void
print_cb(void *ctx, const char *s, size_t n)
{
    abuf_add(ctx, s, n);
}

/* Compact serialisation of v (member order kept). */
static const char *
gen(const struct json_value *v)
{
    struct abuf *b = arena_alloc(A, sizeof(*b));
    abuf_init(b, A);
    struct json_gen *g = json_gen_new(A, print_cb, b);
    json_value_gen(g, v);
    return abuf_str(b);
}

/* Applies patch to doc; returns the serialised result, or NULL with *rc
 * and *err set. */
static const char *
apply(const char *doc, const char *patch, enum jsonpatch_rc *rc,
      struct jsonpatch_error *err)
{
    struct json_value *out = (struct json_value *)1;
    *rc = jsonpatch_apply(A, parse(doc), parse(patch), &out, err);
    if (*rc != JSONPATCH_OK) {
        CHECK(out == NULL, "a failed patch leaves *out NULL (%s)", patch);
        return NULL;
    }
    return gen(out);
}

/* The patch succeeds and gives exactly `want` (serialised, member order
 * included). */
static void
ok(const char *doc, const char *patch, const char *want, const char *what)
{
    enum jsonpatch_rc      rc;
    struct jsonpatch_error err;
    const char            *got = apply(doc, patch, &rc, &err);
    CHECK(rc == JSONPATCH_OK, "%s: succeeds (%s)", what,
          rc == JSONPATCH_OK ? "" : err.message);
    if (got != NULL)
        CHECK_STR(got, want, "%s: result", what);
}

/* The patch fails with rc at operation op, naming member. */
static void
bad(const char *doc, const char *patch, enum jsonpatch_rc want, size_t op,
    const char *member, const char *what)
{
    enum jsonpatch_rc      rc;
    struct jsonpatch_error err;
    apply(doc, patch, &rc, &err);
    CHECK(rc == want, "%s: fails with %d (got %d: %s)", what, (int)want,
          (int)rc, err.message ? err.message : "");
    CHECK(err.rc == rc, "%s: err.rc matches the return value", what);
    CHECK(err.op == op, "%s: names operation %zu (got %zu)", what, op, err.op);
    CHECK_STR(err.member, member, "%s: names the member", what);
    CHECK(err.message != NULL && strlen(err.message) > 0,
          "%s: has a message", what);
}

/* ---- RFC 6901 ------------------------------------------------------------ */

static void
test_pointers(void)
{
    arena_reset(A);
    struct json_value *doc = parse(
        "{\"foo\": [\"bar\", \"baz\"], \"\": 0, \"a/b\": 1, \"c%d\": 2,"
        " \"e^f\": 3, \"g|h\": 4, \"i\\\\j\": 5, \"k\\\"l\": 6, \" \": 7,"
        " \"m~n\": 8}");
    static const struct {
        const char *ptr, *want;
    } cases[] = {
        {"/foo", "[\"bar\",\"baz\"]"}, {"/foo/0", "\"bar\""}, {"/", "0"},
        {"/a~1b", "1"}, {"/c%d", "2"}, {"/e^f", "3"}, {"/g|h", "4"},
        {"/i\\j", "5"}, {"/k\"l", "6"}, {"/ ", "7"}, {"/m~0n", "8"},
        {"/foo/1", "\"baz\""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct json_value *v = jsonpatch_get(A, doc, cases[i].ptr);
        CHECK(v != NULL, "RFC 6901 example %s resolves", cases[i].ptr);
        if (v != NULL)
            CHECK_STR(gen(v), cases[i].want, "RFC 6901 example %s", cases[i].ptr);
    }
    CHECK(jsonpatch_get(A, doc, "") == doc, "\"\" is the whole document");

    static const char *const unresolved[] = {
        "/foo/2", "/foo/-", "/foo/01", "/foo/-1", "/foo/+1", "/foo/1e0",
        "/foo/ 1", "/nope", "/foo/0/x", "/a/b", "/m~1n", "foo", "/m~2n",
        "/m~", "#/foo", "/foo/99999999999999999999",
    };
    for (size_t i = 0; i < sizeof(unresolved) / sizeof(unresolved[0]); i++)
        CHECK(jsonpatch_get(A, doc, unresolved[i]) == NULL,
              "%s does not resolve", unresolved[i]);

    const char **t;
    size_t       n;
    CHECK(jsonpatch_pointer_parse(A, "", &t, &n) == 0 && n == 0,
          "\"\" parses to no tokens");
    CHECK(jsonpatch_pointer_parse(A, "/", &t, &n) == 0 && n == 1 &&
              strcmp(t[0], "") == 0, "\"/\" is one empty token");
    CHECK(jsonpatch_pointer_parse(A, "/a//b/", &t, &n) == 0 && n == 4 &&
              strcmp(t[0], "a") == 0 && strcmp(t[1], "") == 0 &&
              strcmp(t[2], "b") == 0 && strcmp(t[3], "") == 0,
          "empty tokens are kept");
    CHECK(jsonpatch_pointer_parse(A, "/~01/~10", &t, &n) == 0 && n == 2 &&
              strcmp(t[0], "~1") == 0 && strcmp(t[1], "/0") == 0,
          "~01 unescapes to ~1 and ~10 to /0 (~1 first, then ~0)");
    CHECK(jsonpatch_pointer_parse(A, "a/b", &t, &n) == -1,
          "a pointer must start with /");
    CHECK(jsonpatch_pointer_parse(A, "/a~", &t, &n) == -1, "a lone ~ is refused");
    CHECK(jsonpatch_pointer_parse(A, "/a~a", &t, &n) == -1, "~a is refused");
    CHECK(jsonpatch_pointer_parse(A, NULL, &t, &n) == -1, "NULL is refused");
}

/* ---- RFC 6902 appendix A ------------------------------------------------- */

static void
test_appendix_a(void)
{
    arena_reset(A);
    ok("{\"foo\":\"bar\"}",
       "[{\"op\":\"add\",\"path\":\"/baz\",\"value\":\"qux\"}]",
       "{\"foo\":\"bar\",\"baz\":\"qux\"}", "A.1 adding an object member");
    ok("{\"foo\":[\"bar\",\"baz\"]}",
       "[{\"op\":\"add\",\"path\":\"/foo/1\",\"value\":\"qux\"}]",
       "{\"foo\":[\"bar\",\"qux\",\"baz\"]}", "A.2 adding an array element");
    ok("{\"baz\":\"qux\",\"foo\":\"bar\"}",
       "[{\"op\":\"remove\",\"path\":\"/baz\"}]",
       "{\"foo\":\"bar\"}", "A.3 removing an object member");
    ok("{\"foo\":[\"bar\",\"qux\",\"baz\"]}",
       "[{\"op\":\"remove\",\"path\":\"/foo/1\"}]",
       "{\"foo\":[\"bar\",\"baz\"]}", "A.4 removing an array element");
    ok("{\"baz\":\"qux\",\"foo\":\"bar\"}",
       "[{\"op\":\"replace\",\"path\":\"/baz\",\"value\":\"boo\"}]",
       "{\"baz\":\"boo\",\"foo\":\"bar\"}", "A.5 replacing a value");
    ok("{\"foo\":{\"bar\":\"baz\",\"waldo\":\"fred\"},\"qux\":{\"corge\":\"grault\"}}",
       "[{\"op\":\"move\",\"from\":\"/foo/waldo\",\"path\":\"/qux/thud\"}]",
       "{\"foo\":{\"bar\":\"baz\"},\"qux\":{\"corge\":\"grault\",\"thud\":\"fred\"}}",
       "A.6 moving a value");
    ok("{\"foo\":[\"all\",\"grass\",\"cows\",\"eat\"]}",
       "[{\"op\":\"move\",\"from\":\"/foo/1\",\"path\":\"/foo/3\"}]",
       "{\"foo\":[\"all\",\"cows\",\"eat\",\"grass\"]}",
       "A.7 moving an array element");
    ok("{\"baz\":\"qux\",\"foo\":[\"a\",2,\"c\"]}",
       "[{\"op\":\"test\",\"path\":\"/baz\",\"value\":\"qux\"},"
       "{\"op\":\"test\",\"path\":\"/foo/1\",\"value\":2}]",
       "{\"baz\":\"qux\",\"foo\":[\"a\",2,\"c\"]}", "A.8 testing a value: success");
    bad("{\"baz\":\"qux\"}",
        "[{\"op\":\"test\",\"path\":\"/baz\",\"value\":\"bar\"}]",
        JSONPATCH_E_TEST, 0, "value", "A.9 testing a value: error");
    ok("{\"foo\":\"bar\"}",
       "[{\"op\":\"add\",\"path\":\"/child\",\"value\":{\"grandchild\":{}}}]",
       "{\"foo\":\"bar\",\"child\":{\"grandchild\":{}}}",
       "A.10 adding a nested member object");
    ok("{\"foo\":\"bar\"}",
       "[{\"op\":\"add\",\"path\":\"/baz\",\"value\":\"qux\",\"xyz\":123}]",
       "{\"foo\":\"bar\",\"baz\":\"qux\"}", "A.11 ignoring unrecognized elements");
    bad("{\"foo\":\"bar\"}",
        "[{\"op\":\"add\",\"path\":\"/baz/bat\",\"value\":\"qux\"}]",
        JSONPATCH_E_PATH, 0, "path", "A.12 adding to a nonexistent target");

    /* A.13: duplicate "op" members are refused by the parser already. */
    struct json_value *v = NULL;
    const char        *err = NULL;
    const char        *a13 = "[{\"op\":\"add\",\"path\":\"/baz\",\"value\":\"qux\","
                             "\"op\":\"remove\"}]";
    CHECK(json_parse(A, a13, strlen(a13), &v, &err) != 0,
          "A.13 invalid JSON Patch document (duplicate op) does not parse");

    ok("{\"/\":9,\"~1\":10}",
       "[{\"op\":\"test\",\"path\":\"/~01\",\"value\":10}]",
       "{\"/\":9,\"~1\":10}", "A.14 ~ escape ordering");
    bad("{\"/\":9,\"~1\":10}",
        "[{\"op\":\"test\",\"path\":\"/~01\",\"value\":\"10\"}]",
        JSONPATCH_E_TEST, 0, "value", "A.15 comparing strings and numbers");
    ok("{\"foo\":[\"bar\"]}",
       "[{\"op\":\"add\",\"path\":\"/foo/-\",\"value\":[\"abc\",\"def\"]}]",
       "{\"foo\":[\"bar\",[\"abc\",\"def\"]]}", "A.16 adding an array value");
}

/* ---- each operation -------------------------------------------------------- */

static void
test_add(void)
{
    arena_reset(A);
    ok("{\"a\":1}", "[{\"op\":\"add\",\"path\":\"/a\",\"value\":2}]",
       "{\"a\":2}", "add replaces an existing member");
    ok("[1,2]", "[{\"op\":\"add\",\"path\":\"/0\",\"value\":0}]", "[0,1,2]",
       "add inserts at index 0");
    ok("[1,2]", "[{\"op\":\"add\",\"path\":\"/2\",\"value\":3}]", "[1,2,3]",
       "add at index n appends");
    ok("[]", "[{\"op\":\"add\",\"path\":\"/-\",\"value\":1}]", "[1]",
       "add /- appends to an empty array");
    ok("{\"a\":1}", "[{\"op\":\"add\",\"path\":\"\",\"value\":[1]}]", "[1]",
       "add \"\" replaces the whole document");
    ok("{}", "[{\"op\":\"add\",\"path\":\"/\",\"value\":1}]", "{\"\":1}",
       "add / adds the empty key");
    ok("{}", "[{\"op\":\"add\",\"path\":\"/a~1b~0c\",\"value\":1}]",
       "{\"a/b~c\":1}", "add unescapes the key");
    ok("{\"a\":1}", "[{\"op\":\"add\",\"path\":\"/b\",\"value\":null}]",
       "{\"a\":1,\"b\":null}", "add accepts a null value");
    ok("{\"a\":[]}",
       "[{\"op\":\"add\",\"path\":\"/a/-\",\"value\":{\"x\":[]}},"
       "{\"op\":\"add\",\"path\":\"/a/0/x/-\",\"value\":1},"
       "{\"op\":\"add\",\"path\":\"/a/0/y\",\"value\":true}]",
       "{\"a\":[{\"x\":[1],\"y\":true}]}", "later operations see earlier ones");
    ok("{\"n\":1}", "[{\"op\":\"add\",\"path\":\"/m\",\"value\":1.50e+3}]",
       "{\"n\":1,\"m\":1.50e+3}", "number text is kept exactly");

    bad("[1,2]", "[{\"op\":\"add\",\"path\":\"/3\",\"value\":3}]",
        JSONPATCH_E_PATH, 0, "path", "add past the end of an array");
    bad("[1,2]", "[{\"op\":\"add\",\"path\":\"/-1\",\"value\":3}]",
        JSONPATCH_E_PATH, 0, "path", "add at a negative index");
    bad("[1,2]", "[{\"op\":\"add\",\"path\":\"/01\",\"value\":3}]",
        JSONPATCH_E_PATH, 0, "path", "add at an index with a leading zero");
    bad("[1,2]", "[{\"op\":\"add\",\"path\":\"/x\",\"value\":3}]",
        JSONPATCH_E_PATH, 0, "path", "add at a non-numeric array index");
    bad("{\"a\":\"s\"}", "[{\"op\":\"add\",\"path\":\"/a/b\",\"value\":3}]",
        JSONPATCH_E_PATH, 0, "path", "add below a string");
    bad("{\"a\":5}", "[{\"op\":\"add\",\"path\":\"/a/0\",\"value\":3}]",
        JSONPATCH_E_PATH, 0, "path", "add below a number");
    bad("{}", "[{\"op\":\"add\",\"path\":\"/a\"}]",
        JSONPATCH_E_INVALID, 0, "value", "add without value");
}

static void
test_remove(void)
{
    arena_reset(A);
    ok("[1,2,3]", "[{\"op\":\"remove\",\"path\":\"/2\"}]", "[1,2]",
       "remove the last array element");
    ok("{\"a\":{\"b\":1,\"c\":2}}", "[{\"op\":\"remove\",\"path\":\"/a/b\"}]",
       "{\"a\":{\"c\":2}}", "remove a nested member");
    ok("{\"a\":null}", "[{\"op\":\"remove\",\"path\":\"/a\"}]", "{}",
       "remove a member whose value is null");
    ok("{\"a\":1,\"b\":2,\"c\":3}", "[{\"op\":\"remove\",\"path\":\"/a\"},"
       "{\"op\":\"add\",\"path\":\"/a\",\"value\":4}]",
       "{\"b\":2,\"c\":3,\"a\":4}", "remove keeps the others' order");
    bad("{\"a\":1}", "[{\"op\":\"remove\",\"path\":\"/b\"}]",
        JSONPATCH_E_PATH, 0, "path", "remove a missing member");
    bad("[1]", "[{\"op\":\"remove\",\"path\":\"/1\"}]",
        JSONPATCH_E_PATH, 0, "path", "remove past the end");
    bad("[1]", "[{\"op\":\"remove\",\"path\":\"/-\"}]",
        JSONPATCH_E_PATH, 0, "path", "remove /- (no element there)");
    bad("{\"a\":1}", "[{\"op\":\"remove\",\"path\":\"\"}]",
        JSONPATCH_E_INVALID, 0, "path", "remove the whole document");
    bad("{\"a\":1}", "[{\"op\":\"remove\",\"path\":\"/a/b\"}]",
        JSONPATCH_E_PATH, 0, "path", "remove below a number");
}

static void
test_replace(void)
{
    arena_reset(A);
    ok("{\"a\":[1,2]}", "[{\"op\":\"replace\",\"path\":\"/a/1\",\"value\":{}}]",
       "{\"a\":[1,{}]}", "replace an array element");
    ok("{\"a\":1}", "[{\"op\":\"replace\",\"path\":\"\",\"value\":\"x\"}]",
       "\"x\"", "replace the whole document");
    ok("{\"a\":1}", "[{\"op\":\"replace\",\"path\":\"/a\",\"value\":null}]",
       "{\"a\":null}", "replace with null");
    bad("{\"a\":1}", "[{\"op\":\"replace\",\"path\":\"/b\",\"value\":1}]",
        JSONPATCH_E_PATH, 0, "path", "replace a missing member");
    bad("[1]", "[{\"op\":\"replace\",\"path\":\"/-\",\"value\":1}]",
        JSONPATCH_E_PATH, 0, "path", "replace /-");
    bad("[1]", "[{\"op\":\"replace\",\"path\":\"/1\",\"value\":1}]",
        JSONPATCH_E_PATH, 0, "path", "replace past the end");
    bad("{\"a\":1}", "[{\"op\":\"replace\",\"path\":\"/a\"}]",
        JSONPATCH_E_INVALID, 0, "value", "replace without value");
}

static void
test_move_copy(void)
{
    arena_reset(A);
    ok("{\"a\":1,\"b\":2}", "[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/b\"}]",
       "{\"b\":1}", "move onto an existing member replaces it");
    ok("{\"a\":[1,2,3]}", "[{\"op\":\"move\",\"from\":\"/a/0\",\"path\":\"/a/-\"}]",
       "{\"a\":[2,3,1]}", "move an element to the end");
    ok("{\"a\":{\"b\":1}}", "[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/a\"}]",
       "{\"a\":{\"b\":1}}", "move onto itself is a no-op");
    ok("{\"a\":{\"b\":{\"c\":1}}}",
       "[{\"op\":\"move\",\"from\":\"/a/b\",\"path\":\"/a\"}]",
       "{\"a\":{\"c\":1}}", "move a child over its parent");
    ok("{\"a\":{\"b\":1}}", "[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/ab\"}]",
       "{\"ab\":{\"b\":1}}", "a string prefix is not a pointer prefix");
    bad("{\"a\":{\"b\":1}}", "[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/a/c\"}]",
        JSONPATCH_E_INVALID, 0, "from", "move into its own child");
    bad("{\"a\":1}", "[{\"op\":\"move\",\"from\":\"\",\"path\":\"/b\"}]",
        JSONPATCH_E_INVALID, 0, "from", "move the whole document into a child");
    bad("{\"a\":1}", "[{\"op\":\"move\",\"from\":\"/x\",\"path\":\"/b\"}]",
        JSONPATCH_E_PATH, 0, "from", "move from a missing member");
    bad("{\"a\":1}", "[{\"op\":\"move\",\"from\":\"/x\",\"path\":\"/x\"}]",
        JSONPATCH_E_PATH, 0, "from", "move a missing member onto itself");
    bad("{\"a\":1}", "[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/x/y\"}]",
        JSONPATCH_E_PATH, 0, "path", "move to a missing parent");
    bad("{\"a\":1}", "[{\"op\":\"move\",\"path\":\"/b\"}]",
        JSONPATCH_E_INVALID, 0, "from", "move without from");
    bad("{\"a\":1}", "[{\"op\":\"move\",\"from\":1,\"path\":\"/b\"}]",
        JSONPATCH_E_INVALID, 0, "from", "move with a non-string from");
    bad("{\"a\":1}", "[{\"op\":\"move\",\"from\":\"a\",\"path\":\"/b\"}]",
        JSONPATCH_E_INVALID, 0, "from", "move with a malformed from");

    ok("{\"a\":[1]}", "[{\"op\":\"copy\",\"from\":\"/a\",\"path\":\"/b\"},"
       "{\"op\":\"add\",\"path\":\"/b/-\",\"value\":2}]",
       "{\"a\":[1],\"b\":[1,2]}", "copy is deep: changing the copy leaves the source");
    ok("{\"a\":1}", "[{\"op\":\"copy\",\"from\":\"\",\"path\":\"/b\"}]",
       "{\"a\":1,\"b\":{\"a\":1}}", "copy the whole document into a member");
    ok("[1,2]", "[{\"op\":\"copy\",\"from\":\"/1\",\"path\":\"/0\"}]", "[2,1,2]",
       "copy inserts into an array");
    bad("{\"a\":1}", "[{\"op\":\"copy\",\"from\":\"/b\",\"path\":\"/c\"}]",
        JSONPATCH_E_PATH, 0, "from", "copy from a missing member");
    bad("{\"a\":1}", "[{\"op\":\"copy\",\"path\":\"/c\"}]",
        JSONPATCH_E_INVALID, 0, "from", "copy without from");
    bad("{\"a\":[1]}", "[{\"op\":\"copy\",\"from\":\"/a\",\"path\":\"/a/5\"}]",
        JSONPATCH_E_PATH, 0, "path", "copy to a bad index");
}

static void
test_test_op(void)
{
    arena_reset(A);
    static const struct {
        const char *doc, *value;
        int         equal;
    } cases[] = {
        {"1", "1.0", 1}, {"1", "1e0", 1}, {"10", "1e1", 1}, {"100", "1E+2", 1},
        {"0.5", "5e-1", 1}, {"0", "-0", 1}, {"0", "0.000e5", 1},
        {"-1.50", "-1.5", 1}, {"12.5", "125e-1", 1}, {"1", "2", 0},
        {"1", "-1", 0}, {"1.5", "15", 0}, {"100", "10", 0},
        {"1e400", "1e400", 1}, {"1e400", "10e399", 1},
        {"0", "0e5999999999999999999999999", 1}, {"0", "-0.0e-99999999999999999999", 1},
        {"1", "1e99999999999999999999", 0},
        {"1e99999999999999999999", "1e99999999999999999999", 1},
        {"\"a\"", "\"a\"", 1}, {"\"a\"", "\"A\"", 0}, {"\"\\u00e9\"", "\"\xc3\xa9\"", 1},
        {"true", "true", 1}, {"true", "false", 0}, {"null", "null", 1},
        {"null", "false", 0}, {"0", "false", 0}, {"\"1\"", "1", 0},
        {"[1,2]", "[1,2]", 1}, {"[1,2]", "[2,1]", 0}, {"[1]", "[1,1]", 0},
        {"{\"a\":1,\"b\":[2]}", "{\"b\":[2.0],\"a\":1}", 1},
        {"{\"a\":1}", "{\"a\":1,\"b\":2}", 0}, {"{\"a\":1}", "{\"b\":1}", 0},
        {"{}", "[]", 0}, {"{\"a\":{\"b\":null}}", "{\"a\":{}}", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *patch = arena_printf(A, "[{\"op\":\"test\",\"path\":\"\","
                                         "\"value\":%s}]", cases[i].value);
        enum jsonpatch_rc rc;
        struct jsonpatch_error err;
        apply(cases[i].doc, patch, &rc, &err);
        CHECK(rc == (cases[i].equal ? JSONPATCH_OK : JSONPATCH_E_TEST),
              "test %s against %s is %s", cases[i].value, cases[i].doc,
              cases[i].equal ? "equal" : "different");
        CHECK(jsonpatch_equal(parse(cases[i].doc), parse(cases[i].value)) ==
                  cases[i].equal,
              "jsonpatch_equal(%s, %s)", cases[i].doc, cases[i].value);
    }
    ok("{\"a\":null}", "[{\"op\":\"test\",\"path\":\"/a\",\"value\":null}]",
       "{\"a\":null}", "test null against null");
    bad("{\"a\":1}", "[{\"op\":\"test\",\"path\":\"/b\",\"value\":null}]",
        JSONPATCH_E_PATH, 0, "path", "test a missing member");
    bad("{\"a\":1}", "[{\"op\":\"test\",\"path\":\"/a\"}]",
        JSONPATCH_E_INVALID, 0, "value", "test without value");
    bad("[1]", "[{\"op\":\"test\",\"path\":\"/-\",\"value\":1}]",
        JSONPATCH_E_PATH, 0, "path", "test /-");
}

/* ---- malformed patches ----------------------------------------------------- */

static void
test_malformed(void)
{
    arena_reset(A);
    enum jsonpatch_rc      rc;
    struct jsonpatch_error err;
    apply("{}", "{\"op\":\"add\",\"path\":\"/a\",\"value\":1}", &rc, &err);
    CHECK(rc == JSONPATCH_E_INVALID && err.member == NULL,
          "a patch that is an object, not an array, is refused");
    apply("{}", "null", &rc, &err);
    CHECK(rc == JSONPATCH_E_INVALID, "a null patch is refused");
    ok("{\"a\":1}", "[]", "{\"a\":1}", "an empty patch changes nothing");

    bad("{}", "[1]", JSONPATCH_E_INVALID, 0, NULL, "an operation that is a number");
    bad("{}", "[[]]", JSONPATCH_E_INVALID, 0, NULL, "an operation that is an array");
    bad("{}", "[{\"path\":\"/a\",\"value\":1}]", JSONPATCH_E_INVALID, 0, "op",
        "an operation without op");
    bad("{}", "[{\"op\":1,\"path\":\"/a\"}]", JSONPATCH_E_INVALID, 0, "op",
        "an op that is not a string");
    bad("{}", "[{\"op\":\"ADD\",\"path\":\"/a\",\"value\":1}]",
        JSONPATCH_E_INVALID, 0, "op", "op names are case-sensitive");
    bad("{}", "[{\"op\":\"merge\",\"path\":\"/a\",\"value\":1}]",
        JSONPATCH_E_INVALID, 0, "op", "an unknown op");
    bad("{}", "[{\"op\":\"add\",\"value\":1}]", JSONPATCH_E_INVALID, 0, "path",
        "add without path");
    bad("{}", "[{\"op\":\"remove\"}]", JSONPATCH_E_INVALID, 0, "path",
        "remove without path");
    bad("{}", "[{\"op\":\"add\",\"path\":null,\"value\":1}]",
        JSONPATCH_E_INVALID, 0, "path", "a null path");
    bad("{}", "[{\"op\":\"add\",\"path\":[\"a\"],\"value\":1}]",
        JSONPATCH_E_INVALID, 0, "path", "an array path");
    bad("{}", "[{\"op\":\"add\",\"path\":\"a\",\"value\":1}]",
        JSONPATCH_E_INVALID, 0, "path", "a path without the leading /");
    bad("{}", "[{\"op\":\"add\",\"path\":\"/a~2\",\"value\":1}]",
        JSONPATCH_E_INVALID, 0, "path", "a path with a bad ~ escape");
    bad("{}", "[{\"op\":\"add\",\"path\":\"#/a\",\"value\":1}]",
        JSONPATCH_E_INVALID, 0, "path", "a URI-fragment path");

    /* The failing operation is named, and earlier ones do not stick. */
    struct json_value *doc = parse("{\"a\":1,\"l\":[1,2]}");
    struct json_value *patch = parse(
        "[{\"op\":\"replace\",\"path\":\"/a\",\"value\":2},"
        "{\"op\":\"add\",\"path\":\"/l/0\",\"value\":{\"n\":[0]}},"
        "{\"op\":\"add\",\"path\":\"/l/0/n/-\",\"value\":9},"
        "{\"op\":\"remove\",\"path\":\"/b\"}]");
    const char        *doc_before = gen(doc), *patch_before = gen(patch);
    struct json_value *out = NULL;
    rc = jsonpatch_apply(A, doc, patch, &out, &err);
    CHECK(rc == JSONPATCH_E_PATH && err.op == 3 && out == NULL,
          "the fourth operation fails (op %zu)", err.op);
    CHECK(err.message && strstr(err.message, "operation 3 (remove)") != NULL,
          "the message names the operation: %s", err.message);
    CHECK_STR(gen(doc), doc_before, "a failed patch leaves the document unchanged");
    CHECK_STR(gen(patch), patch_before, "a failed patch leaves the patch unchanged");

    patch = parse("[{\"op\":\"add\",\"path\":\"/l/-\",\"value\":{\"n\":[0]}},"
                  "{\"op\":\"add\",\"path\":\"/l/2/n/-\",\"value\":9},"
                  "{\"op\":\"replace\",\"path\":\"/a\",\"value\":[]},"
                  "{\"op\":\"add\",\"path\":\"/a/-\",\"value\":3}]");
    patch_before = gen(patch);
    rc = jsonpatch_apply(A, doc, patch, &out, &err);
    CHECK(rc == JSONPATCH_OK && out != NULL, "the second patch succeeds");
    if (out != NULL)
        CHECK_STR(gen(out), "{\"a\":[3],\"l\":[1,2,{\"n\":[0,9]}]}",
                  "the second patch's result");
    CHECK_STR(gen(doc), doc_before, "a successful patch leaves the input unchanged");
    CHECK_STR(gen(patch), patch_before,
              "values added from the patch are copies (patch unchanged)");
    rc = jsonpatch_apply(A, doc, patch, &out, &err);
    CHECK(rc == JSONPATCH_OK && out && strcmp(gen(out),
              "{\"a\":[3],\"l\":[1,2,{\"n\":[0,9]}]}") == 0,
          "the same patch applied again gives the same result");

    apply("{}", "[{\"op\":\"add\",\"path\":\"/a\",\"value\":1},"
                "{\"op\":\"add\",\"path\":\"/x~\",\"value\":1}]", &rc, &err);
    CHECK(err.message && strstr(err.message, "\"/x~\"") != NULL,
          "the bad pointer is echoed: %s", err.message ? err.message : "");
    apply("{}", "[{\"op\":\"test\",\"path\":\"/\\u0001\\\"x\",\"value\":1}]", &rc, &err);
    CHECK(err.message && strchr(err.message, '\x01') == NULL,
          "control characters are not echoed: %s", err.message ? err.message : "");
}

/* ---- limits ---------------------------------------------------------------- */

static void
test_limits(void)
{
    arena_reset(A);
    /* The parser caps documents at JSON_MAX_DEPTH containers, so a patch
     * value is at most 30 deep; deeper results come from the path. */
    struct abuf doc, zeros;
    abuf_init(&doc, A);
    abuf_init(&zeros, A);
    abuf_adds(&doc, "{\"a\":");
    for (int i = 0; i < JSON_MAX_DEPTH - 2; i++)
        abuf_adds(&doc, "[");
    for (int i = 0; i < JSON_MAX_DEPTH - 2; i++)
        abuf_adds(&doc, "]");
    abuf_adds(&doc, "}");                  /* 31 containers */
    for (int i = 0; i < JSON_MAX_DEPTH - 3; i++)
        abuf_adds(&zeros, "/0");           /* /a + this: the innermost array */
    const char *d = abuf_str(&doc), *z = abuf_str(&zeros);
    enum jsonpatch_rc      rc;
    struct jsonpatch_error err;
    apply(d, arena_printf(A, "[{\"op\":\"add\",\"path\":\"/a%s/-\",\"value\":[]}]",
                          z), &rc, &err);
    CHECK(rc == JSONPATCH_OK, "a result exactly %d deep is allowed (%s)",
          JSON_MAX_DEPTH, rc ? err.message : "");
    bad(d, arena_printf(A, "[{\"op\":\"add\",\"path\":\"/a%s/-\",\"value\":[[]]}]", z),
        JSONPATCH_E_INVALID, 0, "path", "a result one level deeper is refused");
    bad(d, arena_printf(A, "[{\"op\":\"copy\",\"from\":\"/a\",\"path\":\"/a%s/-\"}]", z),
        JSONPATCH_E_INVALID, 0, "path", "copy cannot exceed the depth either");
    bad(d, arena_printf(A, "[{\"op\":\"move\",\"from\":\"/b\",\"path\":\"/a%s/-\"}]", z),
        JSONPATCH_E_PATH, 0, "from", "move from a missing member (deep target)");
    bad(d, arena_printf(A, "[{\"op\":\"replace\",\"path\":\"/a%s\",\"value\":[[[[]]]]}]",
                        z + 2), JSONPATCH_E_INVALID, 0, "value",
        "replace cannot exceed the depth");

    /* copy "" doubles the document each time: the node budget stops it. */
    struct abuf bomb;
    abuf_init(&bomb, A);
    abuf_adds(&bomb, "[");
    for (int i = 0; i < 40; i++)
        abuf_printf(&bomb, "%s{\"op\":\"copy\",\"from\":\"\",\"path\":\"/%d\"}",
                    i ? "," : "", i);
    abuf_adds(&bomb, "]");
    size_t before = arena_footprint(A);
    struct json_value *out = NULL;
    rc = jsonpatch_apply(A, parse("{\"x\":[1,2,3,4,5,6,7,8]}"),
                         parse(abuf_str(&bomb)), &out, &err);
    CHECK(rc == JSONPATCH_E_INVALID && out == NULL && err.op < 20 &&
              strstr(err.message, "values") != NULL,
          "a copy bomb is refused by the node budget (%s)",
          err.message ? err.message : "");
    CHECK(arena_footprint(A) - before < (size_t)64 << 20,
          "the copy bomb stayed within a bounded amount of memory");
    CHECK(jsonpatch_copy(A, NULL) == NULL, "copying NULL gives NULL");
}

int
main(void)
{
    A = arena_create(64 * 1024);
    test_pointers();
    test_appendix_a();
    test_add();
    test_remove();
    test_replace();
    test_move_copy();
    test_test_op();
    test_malformed();
    test_limits();
    arena_destroy(A);
    return TEST_DONE();
}
