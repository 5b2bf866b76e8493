/*
 * fuzz_query: app/query.c (query_parse, query_get/query_first_unused,
 * filter_parse for every filter kind, filter_like_pattern, sort_parse,
 * fields_parse, page_parse, parse_id, parse_int_range).
 *
 * Input: a raw QUERY_STRING (a C string: it ends at the first NUL byte).
 * Invariants:
 *  - query_parse agrees with an independent reference parser written from
 *    query.h (same accept/reject decision, same decoded names and values in
 *    the same order); every name/value is valid UTF-8, NUL-terminated,
 *    <= QUERY_MAX_LEN bytes; at most QUERY_MAX_PARAMS parameters, names
 *    unique; every `bad` message is valid UTF-8 without control characters
 *    and short (it echoes at most 64 bytes of input); the parameter name it
 *    blames (q.bad_name), when there is one, is valid UTF-8 and at most
 *    QUERY_MAX_LEN bytes.
 *  - For every decoded value (and name): filter_parse of each kind either
 *    fails leaving *f reset, or yields 1..FILTER_MAX_IN valid values that
 *    obey the kind's syntax; filter_like_pattern escapes exactly '\\', '%',
 *    '_' and unescapes back to its input; parse_id agrees with a reference;
 *    sort_parse/fields_parse stay within the whitelist and SORT_MAX_KEYS,
 *    without duplicate sort keys; page_parse results are within range.
 */
#include "fuzz_common.h"

#include <inttypes.h>

#include "query.h"
#include "text.h"

static const char *const NAMES[] = {
    "id", "customerId", "amountInMajorCurrency", "paymentDate",
    "description", "reference", "type", "invoiceNumber", "currencyId",
    "billRunType", "customerPaymentType", "resultingCustomerBalance",
};
#define NNAMES (sizeof(NAMES) / sizeof(NAMES[0]))

/* ---- reference query-string parser (from the contract in query.h) ------- */

struct ref_param {
    char  *name, *value;
    size_t nlen, vlen;
};

static int
hexv(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* 0 ok, -1 bad escape or decoded NUL */
static int
ref_decode(struct arena *a, const char *s, size_t n, char **out, size_t *len)
{
    char  *d = arena_alloc(a, n + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            d[o++] = ' ';
        } else if (s[i] == '%') {
            if (i + 2 >= n)
                return -1;
            int h = hexv((unsigned char)s[i + 1]), l = hexv((unsigned char)s[i + 2]);
            if (h < 0 || l < 0 || (h == 0 && l == 0))
                return -1;
            d[o++] = (char)(h * 16 + l);
            i += 2;
        } else {
            d[o++] = s[i];
        }
    }
    d[o] = '\0';
    *out = d;
    *len = o;
    return 0;
}

/* Returns the number of params (>= 0) or -1 when the string is refused. */
static long
ref_query(struct arena *a, const char *qs, struct ref_param *out)
{
    size_t n = strlen(qs), k = 0, pieces = 0;

    for (size_t i = 0, start = 0; i <= n; i++) {
        if (i == n || qs[i] == '&') {
            if (i > start)
                pieces++;
            start = i + 1;
        }
    }
    if (pieces > QUERY_MAX_PARAMS)
        return -1;
    for (size_t i = 0, start = 0; i <= n; i++) {
        if (i != n && qs[i] != '&')
            continue;
        const char *p = qs + start;
        size_t      len = i - start;
        start = i + 1;
        if (len == 0)
            continue;
        const char *eq = memchr(p, '=', len);
        size_t      nraw = eq ? (size_t)(eq - p) : len;
        if (nraw == 0)
            return -1;
        struct ref_param *rp = &out[k];
        if (ref_decode(a, p, nraw, &rp->name, &rp->nlen) != 0)
            return -1;
        if (rp->nlen > QUERY_MAX_LEN ||
            !ref_utf8_valid((unsigned char *)rp->name, rp->nlen))
            return -1;
        if (eq) {
            if (ref_decode(a, eq + 1, len - nraw - 1, &rp->value, &rp->vlen) != 0)
                return -1;
        } else {
            rp->value = "";
            rp->vlen = 0;
        }
        if (rp->vlen > QUERY_MAX_LEN ||
            !ref_utf8_valid((unsigned char *)rp->value, rp->vlen))
            return -1;
        for (size_t j = 0; j < k; j++)
            if (strcmp(out[j].name, rp->name) == 0)
                return -1;
        k++;
    }
    return (long)k;
}

/* parse_id reference: [1-9][0-9]* <= INT64_MAX */
static int
ref_parse_id(const char *s, int64_t *v)
{
    if (s[0] < '1' || s[0] > '9')
        return -1;
    unsigned __int128 acc = 0;
    for (size_t i = 0; s[i] != '\0'; i++) {
        if (s[i] < '0' || s[i] > '9' || i >= 20)
            return -1;
        acc = acc * 10 + (unsigned)(s[i] - '0');
    }
    if (acc > (unsigned __int128)INT64_MAX)
        return -1;
    *v = (int64_t)acc;
    return 0;
}

/* ---- checks --------------------------------------------------------------- */

static void
check_bad(const char *bad)
{
    FUZZ_CHECK(bad != NULL && *bad != '\0', "failure without a message");
    FUZZ_CHECK(ref_cstr_utf8(bad), "message is not UTF-8: %s", bad);
    FUZZ_CHECK(text_valid(bad, strlen(bad), 400),
               "message has control characters or is long: %s", bad);
    FUZZ_CHECK(strlen(bad) <= 64 + 100, "message longer than 64 echoed bytes "
               "plus fixed text (%zu): %s", strlen(bad), bad);
}

static void
check_filters(struct arena *a, const char *text)
{
    static const enum filter_kind kinds[] = {FK_STRING, FK_ID, FK_BOOL, FK_DATE};
    struct filter f;

    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        enum filter_kind k = kinds[i];
        memset(&f, 0xA5, sizeof(f));
        if (filter_parse(a, k, text, &f) != 0) {
            FUZZ_CHECK(f.n == 0 && f.vals == NULL && f.op == FOP_EQ &&
                       f.id == 0 && f.boolean == 0,
                       "failed filter_parse(%d) left *f set", (int)k);
            continue;
        }
        FUZZ_CHECK(f.n >= 1 && f.n <= FILTER_MAX_IN, "n %zu", f.n);
        for (size_t j = 0; j < f.n; j++) {
            FUZZ_CHECK(f.vals[j] != NULL && ref_cstr_utf8(f.vals[j]),
                       "value %zu not UTF-8", j);
            FUZZ_CHECK(f.vals[j][0] != '\0', "empty value");
        }
        switch (k) {
        case FK_STRING:
            FUZZ_CHECK(f.op == FOP_EQ || f.op == FOP_IN || f.op == FOP_LIKE,
                       "op %d", (int)f.op);
            if (f.op != FOP_IN)
                FUZZ_CHECK(f.n == 1, "n %zu", f.n);
            for (size_t j = 0; j < f.n; j++) {
                FUZZ_CHECK(text_valid(f.vals[j], strlen(f.vals[j]), 255),
                           "string value not valid text");
                if (f.op == FOP_IN)
                    FUZZ_CHECK(strchr(f.vals[j], ',') == NULL, "comma in item");
            }
            if (f.op == FOP_EQ)
                FUZZ_CHECK(strcmp(f.vals[0], text) == 0, "eq value differs");
            if (f.op == FOP_LIKE)
                FUZZ_CHECK(strncmp(text, "like:", 5) == 0 &&
                           strcmp(f.vals[0], text + 5) == 0, "like value");
            break;
        case FK_ID: {
            int64_t v;
            FUZZ_CHECK(f.op == FOP_EQ && f.n == 1, "id op/n");
            FUZZ_CHECK(ref_parse_id(text, &v) == 0 && v == f.id && f.id > 0,
                       "id %" PRId64 " from '%s'", f.id, text);
            FUZZ_CHECK(strcmp(f.vals[0], text) == 0, "id text");
            break;
        }
        case FK_BOOL:
            FUZZ_CHECK(f.op == FOP_EQ && f.n == 1, "bool op/n");
            FUZZ_CHECK((strcmp(text, "true") == 0 && f.boolean == 1) ||
                       (strcmp(text, "false") == 0 && f.boolean == 0),
                       "bool from '%s'", text);
            break;
        case FK_DATE:
            FUZZ_CHECK(f.n == 1 && text_date_valid(f.vals[0]), "date value");
            FUZZ_CHECK((f.op == FOP_EQ && strcmp(f.vals[0], text) == 0) ||
                       (f.op == FOP_LT && strncmp(text, "lt:", 3) == 0 &&
                        strcmp(f.vals[0], text + 3) == 0) ||
                       (f.op == FOP_GT && strncmp(text, "gt:", 3) == 0 &&
                        strcmp(f.vals[0], text + 3) == 0),
                       "date op %d from '%s'", (int)f.op, text);
            break;
        }
    }
    FUZZ_CHECK(filter_parse(a, FK_STRING, NULL, &f) == -1, "NULL accepted");
}

static void
check_like(struct arena *a, const char *text)
{
    char  *p = filter_like_pattern(a, text);
    size_t n = strlen(p), o = 0;
    char  *back = arena_alloc(a, n + 1);

    FUZZ_CHECK(n >= 2 && p[0] == '%' && p[n - 1] == '%', "not %%...%%: %s", p);
    for (size_t i = 1; i + 1 < n; i++) {
        if (p[i] == '\\') {
            FUZZ_CHECK(i + 2 < n && (p[i + 1] == '\\' || p[i + 1] == '%' ||
                                     p[i + 1] == '_'),
                       "stray escape at %zu in %s", i, p);
            back[o++] = p[++i];
        } else {
            FUZZ_CHECK(p[i] != '%' && p[i] != '_', "unescaped wildcard in %s", p);
            back[o++] = p[i];
        }
    }
    back[o] = '\0';
    FUZZ_CHECK(strcmp(back, text) == 0, "pattern does not unescape to input");
    if (ref_cstr_utf8(text))
        FUZZ_CHECK(ref_cstr_utf8(p), "pattern of UTF-8 is not UTF-8");
}

static void
check_sort_fields(struct arena *a, const char *text)
{
    struct sort_key *keys = (struct sort_key *)1;
    size_t           nkeys = 99;
    const char      *bad = NULL;
    unsigned char    sel[NNAMES];

    if (sort_parse(a, text, NAMES, NNAMES, &keys, &nkeys, &bad) == 0) {
        FUZZ_CHECK(nkeys >= 1 && nkeys <= SORT_MAX_KEYS && keys != NULL,
                   "nkeys %zu", nkeys);
        for (size_t i = 0; i < nkeys; i++) {
            FUZZ_CHECK(keys[i].field < NNAMES, "field %zu", keys[i].field);
            FUZZ_CHECK(keys[i].desc == 0 || keys[i].desc == 1, "desc");
            for (size_t j = 0; j < i; j++)
                FUZZ_CHECK(keys[i].field != keys[j].field, "duplicate key");
        }
    } else {
        FUZZ_CHECK(keys == NULL && nkeys == 0, "keys set on failure");
        check_bad(bad);
    }

    memset(sel, 0, sizeof(sel));
    bad = NULL;
    if (fields_parse(a, text, NAMES, NNAMES, sel, &bad) == 0) {
        size_t count = 0;
        for (size_t i = 0; i < NNAMES; i++) {
            FUZZ_CHECK(sel[i] <= 1, "selected[%zu] = %u", i, sel[i]);
            count += sel[i];
        }
        FUZZ_CHECK(count >= 1, "fields accepted without a field");
    } else {
        check_bad(bad);
    }
}

static void
check_ids(const char *text)
{
    int64_t v = -7, r = -7;
    int     rc = parse_id(text, &v), rrc = ref_parse_id(text, &r);
    FUZZ_CHECK(rc == rrc, "parse_id('%s') = %d, reference %d", text, rc, rrc);
    if (rc == 0)
        FUZZ_CHECK(v == r, "parse_id value %" PRId64 " vs %" PRId64, v, r);
    else
        FUZZ_CHECK(v == -7, "parse_id wrote *out on failure");

    int64_t x = 0;
    if (parse_int_range(text, INT64_MIN, INT64_MAX, &x) == 0) {
        /* the canonical spelling of x must be the text ("-0" aside) */
        char buf[32];
        snprintf(buf, sizeof(buf), "%" PRId64, x);
        FUZZ_CHECK(strcmp(buf, text) == 0 || strcmp(text, "-0") == 0,
                   "parse_int_range('%s') = %" PRId64, text, x);
    }
    FUZZ_CHECK(parse_id(NULL, &v) == -1, "parse_id(NULL)");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct arena     *a = fuzz_arena();
    char             *qs = fuzz_cstr(a, data, size);
    struct query      q;
    const char       *bad = NULL;
    struct ref_param *ref = ARENA_NEW(a, struct ref_param, strlen(qs) / 2 + 2);

    int  rc = query_parse(a, qs, &q, &bad);
    long rn = ref_query(a, qs, ref);
    FUZZ_CHECK((rc == 0) == (rn >= 0),
               "query_parse says %d, reference says %ld (bad: %s)", rc, rn,
               bad ? bad : "-");
    if (rc != 0) {
        check_bad(bad);
        if (q.bad_name != NULL) /* the error's `field`: a decoded name */
            FUZZ_CHECK(ref_cstr_utf8(q.bad_name) && strlen(q.bad_name) <= QUERY_MAX_LEN,
                       "field is not a valid parameter name (%zu bytes)",
                       strlen(q.bad_name));
        arena_reset(a);
        return 0;
    }
    FUZZ_CHECK(q.n == (size_t)rn, "n %zu vs reference %ld", q.n, rn);
    FUZZ_CHECK(q.n <= QUERY_MAX_PARAMS, "n %zu", q.n);
    for (size_t i = 0; i < q.n; i++) {
        const struct qparam *p = &q.v[i];
        FUZZ_CHECK(strlen(p->name) == ref[i].nlen &&
                   memcmp(p->name, ref[i].name, ref[i].nlen) == 0,
                   "name %zu differs from reference", i);
        FUZZ_CHECK(strlen(p->value) == ref[i].vlen &&
                   memcmp(p->value, ref[i].value, ref[i].vlen) == 0,
                   "value %zu differs from reference", i);
        FUZZ_CHECK(p->name[0] != '\0' && strlen(p->name) <= QUERY_MAX_LEN &&
                   strlen(p->value) <= QUERY_MAX_LEN, "lengths");
        FUZZ_CHECK(ref_cstr_utf8(p->name) && ref_cstr_utf8(p->value), "UTF-8");
        FUZZ_CHECK(p->used == 0, "used before query_get");
    }

    /* every parameter is then looked at the way the list handlers do */
    for (size_t i = 0; i < q.n; i++) {
        const char *name = q.v[i].name, *value = q.v[i].value;
        FUZZ_CHECK(query_get(&q, name) == value, "query_get");
        check_filters(a, value);
        check_like(a, value);
        check_ids(value);
        check_sort_fields(a, value);
        if (i < 4) { /* names too, but bounded: they are the same kind of text */
            check_filters(a, name);
            check_sort_fields(a, name);
        }
    }
    FUZZ_CHECK(query_first_unused(&q) == NULL, "all used, still one unused");
    FUZZ_CHECK(query_get(&q, "") == NULL, "empty name found");

    /* page/pageSize: as given, and the first two values as a pair */
    int64_t pg = -1, ps = -1;
    bad = NULL;
    const char *page = query_get(&q, "page"), *size_p = query_get(&q, "pageSize");
    for (int round = 0; round < 2; round++) {
        if (page_parse(page, size_p, &pg, &ps, &bad) == 0) {
            FUZZ_CHECK(pg >= 1 && pg <= PAGE_MAX && ps >= 1 && ps <= PAGE_SIZE_MAX,
                       "page %" PRId64 " pageSize %" PRId64, pg, ps);
        } else {
            FUZZ_CHECK(bad != NULL &&
                       (strcmp(bad, "page is required") == 0 ||
                        strcmp(bad, "pageSize is required") == 0 ||
                        strcmp(bad, "page must be between 1 and 1000000000") == 0 ||
                        strcmp(bad, "pageSize must be between 1 and 1000") == 0 ||
                        strcmp(bad, "page must be a decimal integer") == 0 ||
                        strcmp(bad, "pageSize must be a decimal integer") == 0 ||
                        strcmp(bad, "page must be written without leading zeros") == 0 ||
                        strcmp(bad, "pageSize must be written without leading zeros") == 0),
                       "page_parse message: %s", bad ? bad : "(null)");
            if (strstr(bad, "leading zeros") != NULL)
                FUZZ_CHECK(int_text_problem(strncmp(bad, "pageSize", 8) == 0 ? size_p : page) ==
                           INT_LEADING_ZERO, "leading-zero message for %s", bad);
        }
        page = q.n > 0 ? q.v[0].value : NULL;
        size_p = q.n > 1 ? q.v[1].value : NULL;
    }

    arena_reset(a);
    return 0;
}
