/*
 * fuzz_jsonpatch: app/jsonpatch.c (jsonpatch_apply, jsonpatch_get,
 * jsonpatch_pointer_parse, jsonpatch_equal, jsonpatch_copy), the JSON Patch
 * (RFC 6902) applier behind PATCH /v1/payment-providers/{id}.
 *
 * Input: DOC \0 PATCH, both JSON text parsed with json_parse; without a NUL
 * byte the whole input is PATCH and DOC is a fixed payment-provider object
 * (DEFAULT_DOC). Inputs whose DOC or PATCH does not parse are skipped (the
 * parser has its own harness).
 * Invariants:
 *  - the result code is one of the four; on success *out is set, on failure
 *    *out is NULL and err carries the same code, the index of an existing
 *    operation, a member among op/path/from/value (or NULL) and a clean
 *    (valid UTF-8, control-free) message;
 *  - neither DOC nor PATCH is modified (their generated JSON is unchanged)
 *    and the result shares no node with them;
 *  - the result is a valid document: it regenerates to JSON that json_parse
 *    accepts again (so: depth <= JSON_MAX_DEPTH, no duplicate keys, valid
 *    strings), equal to it, with at most JSONPATCH_MAX_NODES values;
 *  - applying the same patch again gives an equal result (deterministic);
 *  - when the last operation is add/replace of a member or index, the
 *    result holds that value at that path; after a remove of an object
 *    member, the member is gone;
 *  - jsonpatch_equal is reflexive on copies and symmetric; on two numbers
 *    that money_parse reads with 4 decimals, it agrees with their values;
 *  - every operation's path/from pointer that parses re-escapes to itself.
 */
#include "fuzz_common.h"

#include "json.h"
#include "jsonpatch.h"
#include "money.h"
#include "text.h"

static const char DEFAULT_DOC[] =
    "{\"id\":3,\"type\":\"STRIPE\",\"name\":\"Stripe UK\",\"status\":\"ACTIVE\","
    "\"directDebitWithName\":null,\"instantBankPayments\":false,"
    "\"retryIfPossible\":true,\"contractOwnerIds\":[1,2],"
    "\"nested\":{\"a~b\":{\"c/d\":[1,2.50,\"x\",{\"\":0}]}},\"amount\":10.50}";

/* ---- helpers -------------------------------------------------------------- */

static void
out_print(void *ctx, const char *s, size_t n)
{
    abuf_add(ctx, s, n);
}

static const char *
gen(struct arena *a, const struct json_value *v, size_t *len)
{
    struct abuf b;
    abuf_init(&b, a);
    struct json_gen *g = json_gen_new(a, out_print, &b);
    json_value_gen(g, v);
    *len = b.len;
    return abuf_str(&b);
}

/* Node pointers of a tree, for the "shares nothing" check. */
struct ptrs {
    const void **p;
    size_t       n, cap;
    struct arena *a;
};

static void
collect(struct ptrs *s, const struct json_value *v)
{
    if (s->n == s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 256;
        s->p = arena_realloc(s->a, s->p, s->cap * sizeof(*s->p), ncap * sizeof(*s->p));
        s->cap = ncap;
    }
    s->p[s->n++] = v;
    if (v->type == JSON_ARRAY || v->type == JSON_OBJECT)
        for (size_t i = 0; i < v->n; i++)
            collect(s, v->items[i]);
}

static int
cmp_ptr(const void *x, const void *y)
{
    uintptr_t a = (uintptr_t) * (const void *const *)x, b = (uintptr_t) * (const void *const *)y;
    return (a > b) - (a < b);
}

static size_t
count_nodes(const struct json_value *v)
{
    size_t n = 1;
    if (v->type == JSON_ARRAY || v->type == JSON_OBJECT)
        for (size_t i = 0; i < v->n; i++)
            n += count_nodes(v->items[i]);
    return n;
}

/* Re-escapes tokens into an RFC 6901 pointer. */
static char *
pointer_join(struct arena *a, const char **t, size_t n)
{
    struct abuf b;
    abuf_init(&b, a);
    for (size_t k = 0; k < n; k++) {
        abuf_add(&b, "/", 1);
        for (const char *c = t[k]; *c; c++) {
            if (*c == '~')
                abuf_adds(&b, "~0");
            else if (*c == '/')
                abuf_adds(&b, "~1");
            else
                abuf_add(&b, c, 1);
        }
    }
    return (char *)abuf_str(&b);
}

/* Numbers of a tree (at most max). */
static void
numbers(const struct json_value *v, const struct json_value **out, size_t *n,
        size_t max)
{
    if (*n >= max)
        return;
    if (v->type == JSON_NUMBER)
        out[(*n)++] = v;
    if (v->type == JSON_ARRAY || v->type == JSON_OBJECT)
        for (size_t i = 0; i < v->n; i++)
            numbers(v->items[i], out, n, max);
}

/* ---- one input ------------------------------------------------------------ */

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct arena      *a = fuzz_arena();
    const char        *doc_txt = DEFAULT_DOC, *patch_txt = (const char *)data;
    size_t             doc_len = sizeof(DEFAULT_DOC) - 1, patch_len = size;
    struct json_value *doc, *patch, *out = NULL, *out2 = NULL;
    const char        *perr;

    const uint8_t *nul = memchr(data, '\0', size);
    if (nul != NULL) {
        doc_txt = (const char *)data;
        doc_len = (size_t)(nul - data);
        patch_txt = (const char *)nul + 1;
        patch_len = size - doc_len - 1;
    }
    if (json_parse(a, doc_txt, doc_len, &doc, &perr) != 0 ||
        json_parse(a, patch_txt, patch_len, &patch, &perr) != 0) {
        arena_reset(a);
        return 0;
    }

    size_t      dlen, plen, dlen2, plen2;
    const char *dgen = gen(a, doc, &dlen), *pgen = gen(a, patch, &plen);

    struct jsonpatch_error err;
    memset(&err, 0x5A, sizeof(err));
    enum jsonpatch_rc rc = jsonpatch_apply(a, doc, patch, &out, &err);
    FUZZ_CHECK(rc == JSONPATCH_OK || rc == JSONPATCH_E_INVALID ||
               rc == JSONPATCH_E_PATH || rc == JSONPATCH_E_TEST, "rc %d", (int)rc);

    /* inputs untouched */
    const char *dgen2 = gen(a, doc, &dlen2), *pgen2 = gen(a, patch, &plen2);
    FUZZ_CHECK(dlen == dlen2 && memcmp(dgen, dgen2, dlen) == 0, "the document was modified");
    FUZZ_CHECK(plen == plen2 && memcmp(pgen, pgen2, plen) == 0, "the patch was modified");

    if (rc != JSONPATCH_OK) {
        FUZZ_CHECK(out == NULL, "*out set on failure");
        FUZZ_CHECK(err.rc == rc, "err.rc %d, rc %d", (int)err.rc, (int)rc);
        FUZZ_CHECK(err.message != NULL && *err.message != '\0', "no message");
        FUZZ_CHECK(text_valid(err.message, strlen(err.message), 1000),
                   "message is not clean text: %s", err.message);
        FUZZ_CHECK(err.member == NULL || strcmp(err.member, "op") == 0 ||
                   strcmp(err.member, "path") == 0 || strcmp(err.member, "from") == 0 ||
                   strcmp(err.member, "value") == 0, "member '%s'", err.member);
        if (patch->type == JSON_ARRAY)
            FUZZ_CHECK(err.op < patch->n, "op %zu of %zu", err.op, patch->n);
        else
            FUZZ_CHECK(rc == JSONPATCH_E_INVALID, "non-array patch: rc %d", (int)rc);
    } else {
        FUZZ_CHECK(out != NULL, "success without a result");
        FUZZ_CHECK(patch->type == JSON_ARRAY, "a non-array patch applied");

        /* a valid document: regenerates and re-parses to an equal tree */
        size_t             olen;
        const char        *ogen = gen(a, out, &olen);
        struct json_value *back;
        if (json_parse(a, ogen, olen, &back, &perr) != 0)
            FUZZ_CHECK(0, "the result is not a valid document (%s): %.300s", perr, ogen);
        FUZZ_CHECK(jsonpatch_equal(out, back) && jsonpatch_equal(back, out),
                   "the result does not survive a round trip");
        FUZZ_CHECK(count_nodes(out) <= JSONPATCH_MAX_NODES, "%zu nodes", count_nodes(out));

        /* shares nothing with doc or patch */
        struct ptrs in = {NULL, 0, 0, a};
        collect(&in, doc);
        collect(&in, patch);
        qsort(in.p, in.n, sizeof(*in.p), cmp_ptr);
        struct ptrs res = {NULL, 0, 0, a};
        collect(&res, out);
        for (size_t i = 0; i < res.n; i++)
            FUZZ_CHECK(bsearch(&res.p[i], in.p, in.n, sizeof(*in.p), cmp_ptr) == NULL,
                       "the result shares a node with its inputs");

        /* deterministic, and the patch can be applied again */
        enum jsonpatch_rc rc2 = jsonpatch_apply(a, doc, patch, &out2, NULL);
        FUZZ_CHECK(rc2 == JSONPATCH_OK && jsonpatch_equal(out, out2),
                   "second application differs (rc %d)", (int)rc2);

        /* the last operation's effect is visible */
        const struct json_value *last = patch->n ? patch->items[patch->n - 1] : NULL;
        const struct json_value *op = last ? json_get(last, "op") : NULL;
        const struct json_value *path = last ? json_get(last, "path") : NULL;
        const struct json_value *value = last ? json_get(last, "value") : NULL;
        if (op != NULL && path != NULL && path->type == JSON_STRING) {
            size_t plen3 = strlen(path->str);
            int    dash = plen3 >= 2 && strcmp(path->str + plen3 - 2, "/-") == 0;
            if ((strcmp(op->str, "add") == 0 || strcmp(op->str, "replace") == 0) && !dash) {
                const struct json_value *got = jsonpatch_get(a, out, path->str);
                FUZZ_CHECK(got != NULL && jsonpatch_equal(got, value),
                           "after %s, %s does not hold the value", op->str, path->str);
            }
            if (strcmp(op->str, "remove") == 0) {
                const char **t;
                size_t       n;
                if (jsonpatch_pointer_parse(a, path->str, &t, &n) == 0 && n > 0) {
                    const struct json_value *parent =
                        jsonpatch_get(a, out, arena_strndup(a, path->str,
                                                            (size_t)(strrchr(path->str, '/') - path->str)));
                    if (parent != NULL && parent->type == JSON_OBJECT)
                        FUZZ_CHECK(json_get(parent, t[n - 1]) == NULL,
                                   "after remove, %s still exists", path->str);
                }
            }
        }
    }

    /* equality: reflexive on a deep copy, symmetric */
    struct json_value *dc = jsonpatch_copy(a, doc);
    FUZZ_CHECK(jsonpatch_equal(doc, dc) && jsonpatch_equal(patch, jsonpatch_copy(a, patch)),
               "a value differs from its copy");
    FUZZ_CHECK(jsonpatch_equal(doc, patch) == jsonpatch_equal(patch, doc), "asymmetric");
    if (out != NULL)
        FUZZ_CHECK(jsonpatch_equal(doc, out) == jsonpatch_equal(out, doc), "asymmetric");

    /* number equality agrees with money_parse values (4 decimals) */
    const struct json_value *nums[16];
    size_t                   nn = 0;
    numbers(doc, nums, &nn, 8);
    numbers(patch, nums, &nn, 16);
    for (size_t i = 0; i < nn; i++)
        for (size_t j = 0; j < nn; j++) {
            int64_t x, y;
            if (money_parse(nums[i]->str, nums[i]->len, 4, &x) == 0 &&
                money_parse(nums[j]->str, nums[j]->len, 4, &y) == 0)
                FUZZ_CHECK(jsonpatch_equal(nums[i], nums[j]) == (x == y),
                           "%s vs %s: equal %d, values %lld %lld", nums[i]->str,
                           nums[j]->str, jsonpatch_equal(nums[i], nums[j]),
                           (long long)x, (long long)y);
        }

    /* pointers re-escape to themselves */
    if (patch->type == JSON_ARRAY)
        for (size_t i = 0; i < patch->n && i < 8; i++) {
            static const char *const members[] = {"path", "from"};
            for (int m = 0; m < 2; m++) {
                const struct json_value *p = json_get(patch->items[i], members[m]);
                const char             **t;
                size_t                   n;
                if (p == NULL || p->type != JSON_STRING ||
                    jsonpatch_pointer_parse(a, p->str, &t, &n) != 0)
                    continue;
                FUZZ_CHECK(strcmp(pointer_join(a, t, n), p->str) == 0,
                           "pointer '%s' does not re-escape to itself", p->str);
            }
        }

    arena_reset(a);
    return 0;
}
