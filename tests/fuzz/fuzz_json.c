/*
 * fuzz_json: app/json.c (json_parse into the arena tree, json_value_gen).
 *
 * Input: any bytes, handed to json_parse as a request body.
 * Invariants:
 *  - json_parse returns 0 with a tree, or -1 with a non-empty, valid UTF-8,
 *    control-free message (it is shown to the client).
 *  - The tree keeps the documented promises: depth <= JSON_MAX_DEPTH,
 *    strings and keys valid UTF-8 without NUL (len == strlen), numbers of
 *    at most 64 bytes, no duplicate key in an object, json_get finds each
 *    key's own member.
 *  - Round trip: json_value_gen output re-parses, gives an equal tree, and
 *    generating that tree again gives the same bytes.
 */
#include "fuzz_common.h"

#include "json.h"
#include "text.h"

struct outbuf {
    struct abuf b;
};

static void
out_print(void *ctx, const char *s, size_t n)
{
    struct outbuf *o = ctx;
    abuf_add(&o->b, s, n);
}

static void
check_tree(const struct json_value *v, int depth)
{
    FUZZ_CHECK(v != NULL, "NULL node");
    FUZZ_CHECK(depth <= JSON_MAX_DEPTH, "depth %d", depth);
    switch (v->type) {
    case JSON_NULL:
        break;
    case JSON_BOOL:
        FUZZ_CHECK(v->boolean == 0 || v->boolean == 1, "bool %d", v->boolean);
        break;
    case JSON_NUMBER:
        FUZZ_CHECK(v->str != NULL && strlen(v->str) == v->len, "number text");
        FUZZ_CHECK(v->len >= 1 && v->len <= 64, "number length %zu", v->len);
        break;
    case JSON_STRING:
        FUZZ_CHECK(v->str != NULL && strlen(v->str) == v->len,
                   "string has an embedded NUL or wrong len");
        FUZZ_CHECK(ref_utf8_valid((const unsigned char *)v->str, v->len),
                   "string is not strict UTF-8");
        break;
    case JSON_ARRAY:
        FUZZ_CHECK(depth < JSON_MAX_DEPTH, "container at depth %d", depth);
        for (size_t i = 0; i < v->n; i++)
            check_tree(v->items[i], depth + 1);
        break;
    case JSON_OBJECT:
        FUZZ_CHECK(depth < JSON_MAX_DEPTH, "container at depth %d", depth);
        for (size_t i = 0; i < v->n; i++) {
            FUZZ_CHECK(v->keys[i] != NULL, "NULL key");
            FUZZ_CHECK(ref_cstr_utf8(v->keys[i]), "key is not strict UTF-8");
            for (size_t j = 0; j < i; j++)
                FUZZ_CHECK(strcmp(v->keys[i], v->keys[j]) != 0,
                           "duplicate key kept");
            FUZZ_CHECK(json_get(v, v->keys[i]) == v->items[i],
                       "json_get finds another member");
            check_tree(v->items[i], depth + 1);
        }
        break;
    default:
        FUZZ_CHECK(0, "bad type %d", (int)v->type);
    }
}

static int
tree_equal(const struct json_value *x, const struct json_value *y)
{
    if (x->type != y->type)
        return 0;
    switch (x->type) {
    case JSON_NULL:
        return 1;
    case JSON_BOOL:
        return x->boolean == y->boolean;
    case JSON_NUMBER:
    case JSON_STRING:
        return x->len == y->len && memcmp(x->str, y->str, x->len) == 0;
    case JSON_ARRAY:
    case JSON_OBJECT:
        if (x->n != y->n)
            return 0;
        for (size_t i = 0; i < x->n; i++) {
            if (x->type == JSON_OBJECT && strcmp(x->keys[i], y->keys[i]) != 0)
                return 0;
            if (!tree_equal(x->items[i], y->items[i]))
                return 0;
        }
        return 1;
    }
    return 0;
}

static const char *
generate(struct arena *a, const struct json_value *v, size_t *len)
{
    struct outbuf o;
    abuf_init(&o.b, a);
    struct json_gen *g = json_gen_new(a, out_print, &o);
    json_value_gen(g, v);
    *len = o.b.len;
    return abuf_str(&o.b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct arena      *a = fuzz_arena();
    struct json_value *v = NULL, *v2 = NULL;
    const char        *err = NULL, *err2 = NULL;

    if (json_parse(a, (const char *)data, size, &v, &err) != 0) {
        FUZZ_CHECK(err != NULL && *err != '\0', "failure without a message");
        FUZZ_CHECK(text_valid(err, strlen(err), 1000),
                   "error message is not clean text: %s", err);
        arena_reset(a);
        return 0;
    }
    FUZZ_CHECK(v != NULL, "success without a tree");
    check_tree(v, 0);

    size_t      len, len2;
    const char *out = generate(a, v, &len);
    FUZZ_CHECK(len > 0, "empty output");
    if (json_parse(a, out, len, &v2, &err2) != 0)
        FUZZ_CHECK(0, "re-parse of generated JSON failed: %s\n  output: %.*s",
                   err2, (int)(len > 500 ? 500 : len), out);
    FUZZ_CHECK(tree_equal(v, v2), "round trip changed the tree\n  output: %.*s",
               (int)(len > 500 ? 500 : len), out);
    const char *out2 = generate(a, v2, &len2);
    FUZZ_CHECK(len == len2 && memcmp(out, out2, len) == 0,
               "generation is not stable");

    arena_reset(a);
    return 0;
}
