/*
 * fuzz_router: the whole request pipeline of app/router.c + app/resp.c,
 * in-process (no FastCGI, no database): router_match and router_dispatch
 * over the real route table of handlers/routes.c (every row, linked, not
 * copied by hand; plus a DELETE and a four-capture route), whose handlers
 * that need the database are replaced by stand-ins (see "the route table"
 * below) doing what the real ones do before touching the database:
 * page/sort/fields/filter parsing, unknown-parameter checks, path ids,
 * body field checks, money parsing, then a JSON answer (streamed for GET).
 * /healthz, /metrics and /v1/openapi.json run their real handlers. Hooks
 * mimic the idempotency/transaction layer.
 *
 * Input: byte 0 = flags, then NUL-separated fields (missing trailing
 * fields and empty fields are absent CGI params), the body last:
 *   REQUEST_METHOD \0 DOCUMENT_URI \0 QUERY_STRING \0 CONTENT_TYPE \0
 *   CONTENT_LENGTH \0 HTTP_AUTHORIZATION \0 HTTP_X_REQUEST_ID \0
 *   HTTP_IDEMPOTENCY_KEY \0 body (the rest, any bytes)
 * flags (low bits): 1 the sink fails after (flags >> 4) * 16 bytes;
 * 2 the source ends after 7 body bytes (a client that went away);
 * 4 the handler asks once to be run again (a transaction conflict); 8 the client is
 * on loopback (REMOTE_ADDR 127.0.0.1, as /metrics requires) and the
 * IDEMPOTENCY_KEY field is sent as If-None-Match instead (/v1/openapi.json).
 * PAY_FUZZ_TRACE=1 in the environment prints every response (handy when
 * writing seed inputs).
 * An Authorization of "@r", "@w", "@a", "@n" or "@x" is replaced by a real
 * token (read, read+write, admin, no tenancy, expired) minted at start-up,
 * so the fuzzer gets past authentication.
 *
 * Invariants (when the sink did not fail):
 *  - the output starts with "Status: NNN Reason\r\n", NNN = the value
 *    router_dispatch returned, 100..599; the head is "Name: value\r\n"
 *    lines of printable ASCII (no header injection) ended by "\r\n\r\n"
 *    and always carries X-Request-Id, X-Content-Type-Options and
 *    Cache-Control; X-Request-Id echoes a sane incoming id only.
 *  - with Content-Length, the body has exactly that many bytes (none for
 *    HEAD); without it (streamed GET), the body is JSON.
 *  - an error (>= 400) body is a JSON object whose status/error/requestId
 *    match the head; 405 has Allow; 401 has WWW-Authenticate; a 5xx never
 *    shows the handler's internal message.
 *  - router_match agrees with router_dispatch's 404/405 decision.
 */
#include "fuzz_common.h"

#include <inttypes.h>
#include <time.h>

#include "auth.h"
#include "errors.h"
#include "handlers.h"
#include "json.h"
#include "log.h"
#include "metrics.h"
#include "money.h"
#include "openapi.h"
#include "query.h"
#include "router.h"
#include "text.h"

#define SECRET "fuzz-router-secret-0123456789abcdef-0123456789ab"
#define SECRET_DETAIL "SECRET-SQL-DETAIL"

/* ---- dummy handlers --------------------------------------------------- */

static int want_retry; /* flag 4: ask for one retry */
static int rerun;      /* the stand-in asked; the again hook answers */

static int
retry_once(struct req *r)
{
    if (want_retry) {
        want_retry = 0;
        rerun = 1;
        return req_fail(r, PAY_E_UNAVAILABLE, NULL);
    }
    return 0;
}

static const char *const LIST_FIELDS[] = {
    "id", "customerId", "amountInMajorCurrency", "resultingCustomerBalance",
    "currencyId", "description", "reference", "type", "paymentDate",
    "customerPaymentType", "invoiceId", "billRunType",
};
#define NLIST (sizeof(LIST_FIELDS) / sizeof(LIST_FIELDS[0]))

/* A list operation up to the point where the real one builds SQL. */
static int
h_list(struct req *r)
{
    int64_t          pg, ps, id;
    const char      *bad = NULL;
    struct sort_key *keys;
    size_t           nkeys;
    unsigned char    sel[NLIST];
    struct filter    f;
    static const struct {
        const char      *name;
        enum filter_kind kind;
    } filters[] = {
        {"filter", FK_STRING}, {"customerPaymentType", FK_STRING},
        {"billRunId", FK_STRING}, {"billRunType", FK_STRING},
        {"customerPaymentId", FK_ID}, {"generatedInvoiceId", FK_ID},
        {"invoiceId", FK_ID}, {"excludeDebits", FK_BOOL},
        {"excludeCredits", FK_BOOL}, {"paymentDate", FK_DATE},
        {"adhocBillRunId", FK_STRING}, {"generatedAdhocInvoiceId", FK_ID},
        {"customerId", FK_ID}, {"percentageDifference", FK_STRING},
        {"siteId", FK_ID}, {"mandateReference", FK_STRING},
        {"paymentMethod", FK_STRING},
    };

    if (retry_once(r))
        return 503;
    if (page_parse(req_query(r, "page"), req_query(r, "pageSize"), &pg, &ps, &bad))
        return req_failf(r, PAY_E_INVALID_PARAMETER, "page", "%s", bad);
    if (sort_parse(r->arena, req_query(r, "sort"), LIST_FIELDS, NLIST, &keys,
                   &nkeys, &bad))
        return req_failf(r, PAY_E_INVALID_PARAMETER, "sort", "%s", bad);
    memset(sel, 0, sizeof(sel));
    if (fields_parse(r->arena, req_query(r, "fields"), LIST_FIELDS, NLIST, sel, &bad))
        return req_failf(r, PAY_E_INVALID_PARAMETER, "fields", "%s", bad);
    for (size_t i = 0; i < sizeof(filters) / sizeof(filters[0]); i++) {
        const char *v = req_query(r, filters[i].name);
        if (v != NULL && filter_parse(r->arena, filters[i].kind, v, &f) != 0)
            return req_failf(r, PAY_E_INVALID_PARAMETER, filters[i].name,
                             "%s has an invalid value '%s'", filters[i].name,
                             text_echo(r->arena, v, 64));
        if (v != NULL && f.op == FOP_LIKE)
            (void)filter_like_pattern(r->arena, f.vals[0]);
    }
    int rc = req_query_id_or_fail(r, "customer_id", 0, &id, NULL);
    if (rc != 0)
        return rc;
    if ((rc = req_query_all_known_or_fail(r)) != 0)
        return rc;
    resp_header(r, "X-Total-Count", "1");
    struct json_gen *g = resp_json(r, 200);
    json_array_open(g);
    json_map_open(g);
    for (size_t i = 0; i < NLIST; i++) {
        int any = 0;
        for (size_t k = 0; k < NLIST; k++)
            any |= sel[k];
        if (any && !sel[i])
            continue;
        json_key(g, LIST_FIELDS[i]);
        if (i == 2)
            json_money(g, pg * 100 + ps, 2);
        else
            json_i64(g, (int64_t)i);
    }
    json_map_close(g);
    json_array_close(g);
    return 200;
}

/* GET by id: path id, only `fields` allowed. */
static int
h_get(struct req *r)
{
    int64_t     id;
    const char *bad = NULL;
    unsigned char sel[NLIST];
    int         rc;

    if ((rc = req_param_id_or_fail(r, 0, "id", &id)) != 0)
        return rc;
    memset(sel, 0, sizeof(sel));
    if (fields_parse(r->arena, req_query(r, "fields"), LIST_FIELDS, NLIST, sel, &bad))
        return req_failf(r, PAY_E_INVALID_PARAMETER, "fields", "%s", bad);
    if ((rc = req_query_all_known_or_fail(r)) != 0)
        return rc;
    if (id == 404)
        return req_failf(r, PAY_E_NOT_FOUND, NULL, "no such object");
    if (id == 500)
        return req_failf(r, PAY_E_INTERNAL, NULL, "%s", SECRET_DETAIL);
    struct json_gen *g = resp_json(r, 200);
    json_map_open(g);
    json_key(g, "id");
    json_i64(g, id);
    json_key(g, "param");
    json_str(g, req_param(r, 0));
    json_map_close(g);
    return 200;
}

/* Two captures (payment-provider-mandates/{method}/{reference}). */
static int
h_get2(struct req *r)
{
    const char *m = req_param(r, 0), *ref = req_param(r, 1);
    if (!text_valid(m, strlen(m), 64) || !text_valid(ref, strlen(ref), 255))
        return req_failf(r, PAY_E_INVALID_PARAMETER, "mandateReference",
                         "bad mandate reference '%s'", text_echo(r->arena, ref, 64));
    int rc = req_query_all_known_or_fail(r);
    if (rc != 0)
        return rc;
    struct json_gen *g = resp_json(r, 200);
    json_map_open(g);
    json_key(g, "paymentMethod");
    json_str(g, m);
    json_key(g, "mandateReference");
    json_str(g, ref);
    json_map_close(g);
    return 200;
}

/* A create: JSON object, known fields only, money and text checks. */
static int
h_create(struct req *r)
{
    static const char *const known[] = {
        "customerId", "amountInMajorCurrency", "type", "description",
        "reference", "billRunType", "invoiceId", "generatedInvoiceId",
        "paymentMethod", "notes", "metaData", "returnURL", "paymentDate",
        "generatedAdhocInvoiceId", "thirdPartyPaymentStatus", "paymentProviderId",
        "emailAddress", "adhocInvoiceId", "siteId", "redirectURL", "exitURL",
    };
    const struct json_value *b = r->json;
    int64_t                  amount = 0, id = 0;

    if (retry_once(r))
        return 503;
    if (b == NULL || b->type != JSON_OBJECT)
        return req_failf(r, PAY_E_INVALID_JSON, NULL, "the body must be a JSON object");
    for (size_t i = 0; i < b->n; i++) {
        size_t k;
        for (k = 0; k < sizeof(known) / sizeof(known[0]); k++)
            if (strcmp(b->keys[i], known[k]) == 0)
                break;
        if (k == sizeof(known) / sizeof(known[0]))
            return req_failf(r, PAY_E_UNKNOWN_FIELD, b->keys[i],
                             "unknown field '%s'", text_echo(r->arena, b->keys[i], 64));
    }
    struct json_value *v = json_get(b, "amountInMajorCurrency");
    if (v != NULL) {
        if (v->type != JSON_NUMBER)
            return req_fail(r, PAY_E_INVALID_FIELD, "amountInMajorCurrency");
        int rc = money_parse(v->str, v->len, 2, &amount);
        if (rc != 0)
            return req_failf(r, PAY_E_INVALID_AMOUNT, "amountInMajorCurrency",
                             "amountInMajorCurrency %s", rc == MONEY_EPRECISION
                             ? "has too many decimals" : "is not a valid amount");
    }
    v = json_get(b, "customerId");
    if (v != NULL && (v->type != JSON_NUMBER || parse_id(v->str, &id) != 0))
        return req_fail(r, PAY_E_INVALID_FIELD, "customerId");
    static const char *const texts[] = {"description", "reference", "notes"};
    for (size_t i = 0; i < 3; i++) {
        v = json_get(b, texts[i]);
        if (v != NULL && (v->type != JSON_STRING || !text_valid(v->str, v->len, 255)))
            return req_fail(r, PAY_E_INVALID_FIELD, texts[i]);
    }
    v = json_get(b, "returnURL");
    if (v != NULL && (v->type != JSON_STRING || !text_url_valid(v->str, v->len)))
        return req_fail(r, PAY_E_INVALID_FIELD, "returnURL");
    v = json_get(b, "paymentDate");
    if (v != NULL && (v->type != JSON_STRING || !text_date_valid(v->str)))
        return req_fail(r, PAY_E_INVALID_FIELD, "paymentDate");
    if (id == 409)
        return req_failf(r, PAY_E_CONFLICT, NULL, "conflict");

    resp_header(r, "Location", arena_printf(r->arena, "%s/%" PRId64, r->path, id));
    struct json_gen *g = resp_json(r, 201);
    json_map_open(g);
    json_key(g, "id");
    json_i64(g, id);
    json_key(g, "amountInMajorCurrency");
    json_money(g, amount, 2);
    json_key(g, "echo");
    json_value_gen(g, b);
    json_map_close(g);
    return 201;
}

/* PATCH with a JSON Patch body (the applier does not exist yet). */
static int
h_patch(struct req *r)
{
    int64_t id;
    int     rc;
    if ((rc = req_param_id_or_fail(r, 0, "payment_provider_id", &id)) != 0)
        return rc;
    if (r->json == NULL || r->json->type != JSON_ARRAY)
        return req_failf(r, PAY_E_INVALID_JSON, NULL, "a JSON Patch is an array");
    struct json_gen *g = resp_json(r, 200);
    json_value_gen(g, r->json);
    return 200;
}

/* The landing/mandate page form post: the body is decoded with
 * query_parse, as handlers/pages.c does. */
static int
h_form(struct req *r)
{
    struct query form;
    const char  *bad = NULL;
    if (query_parse(r->arena, r->body, &form, &bad) != 0)
        return resp_body(r, 400, "text/html; charset=utf-8", "<p>bad form</p>", 15);
    const char *csrf = query_get(&form, "csrf");
    if (csrf == NULL || strcmp(csrf, "fuzz-csrf") != 0)
        return resp_body(r, 403, "text/html; charset=utf-8", "<p>expired</p>", 14);
    const char *name = query_get(&form, "accountHolderName");
    char *page = arena_printf(r->arena, "<p>%zu bytes for %s by %s</p>", r->body_len,
                              text_echo(r->arena, req_param(r, 0), 64),
                              text_echo(r->arena, name, 64));
    return resp_body(r, 200, "text/html; charset=utf-8", page, strlen(page));
}

static int
h_page(struct req *r)
{
    /* a handler's Cache-Control replaces the no-store default */
    resp_header(r, "Cache-Control", "private, max-age=0");
    if (r->query_string != NULL && strcmp(r->query_string, "etag") == 0)
        return resp_body(r, 304, NULL, "", 0); /* no Content-Length, no body */
    return resp_body(r, 200, "text/html; charset=utf-8", "<p>pay</p>", 10);
}

static int
h_health(struct req *r)
{
    return resp_body(r, 200, "application/json", "{\"status\":\"ok\"}", 15);
}

static int
h_nocontent(struct req *r)
{
    int64_t id;
    int     rc = req_param_id_or_fail(r, 0, "id", &id);
    return rc ? rc : 204;
}

/* ---- the route table: handlers/routes.c with stand-in handlers ---------- */

/*
 * The seam between the pipeline and the database is the handler pointer.
 * The real handlers run SQL on the worker's MariaDB connection, which a
 * fuzzer must not reach (there is none, and an iteration must be fast and
 * repeatable). So at start-up every row of the real routes_table is
 * copied as it is (method, pattern, flags, scope, order) and only its
 * handler is swapped for the stand-in of its shape (stand_in below), which
 * checks its input as the real handlers do before their first statement.
 * The handlers that never touch the database (health_live, metrics_get,
 * openapi_get) stay real. router_dispatch reaches handlers only through
 * the table, so the real ones of the other rows are linked (routes.c
 * names them) but never called.
 *
 * Why not stub the handlers at link time: a second definition of every
 * handler for the fuzz target would break the fuzz build each time a
 * handler is added, until its stub is written; here a new row of
 * routes.c is fuzzed at once with the stand-in of its shape.
 */
static handler_fn
stand_in(const struct route *rt)
{
    size_t caps = 0; /* segments that are :captures */
    for (const char *p = rt->pattern; *p != '\0'; p++)
        caps += p[0] == '/' && p[1] == ':';

    if (rt->handler == health_live || rt->handler == metrics_get ||
        rt->handler == openapi_get)
        return rt->handler;
    if (rt->method == PAY_M_DELETE || rt->method == PAY_M_PUT)
        return h_nocontent;
    if (rt->flags & R_FORM)
        return h_form;         /* POST /pay/:token, /mandate/:token */
    if (rt->flags & R_JSON_PATCH)
        return h_patch;
    if (rt->flags & R_JSON)
        return h_create;
    if (!(rt->flags & R_AUTH))
        return caps > 0 ? h_page : h_health; /* the pages; /readyz */
    return caps >= 2 ? h_get2 : caps == 1 ? h_get : h_list;
}

/* After the real rows, two shapes the pipeline supports that routes.c does
 * not use (yet): a DELETE answering 204 with the write scope, and four
 * captures. */
/*  method         pattern                                       handler      flags   scope */
static const struct route extra_rows[] = {
    {PAY_M_DELETE, "/v1/payment-providers/:payment_provider_id", h_nocontent, R_AUTH, PAY_SCOPE_WRITE},
    {PAY_M_PUT,    "/v1/a/:b/:c/:d/:e",                          h_nocontent, 0,      0},
};
#define NEXTRA (sizeof(extra_rows) / sizeof(extra_rows[0]))

static struct route *table; /* routes_table with stand-ins, then extra_rows */
static size_t        ntable;

static void
table_init(void)
{
    ntable = routes_count + NEXTRA;
    table = calloc(ntable, sizeof(*table));
    if (table == NULL)
        abort();
    for (size_t i = 0; i < routes_count; i++) {
        table[i] = routes_table[i];
        table[i].handler = stand_in(&routes_table[i]);
    }
    memcpy(table + routes_count, extra_rows, sizeof(extra_rows));
}

/* ---- hooks (idempotency + transaction layer stand-ins) -------------------- */

static int
hook_before(struct req *r)
{
    const char *k = r->idempotency_key;
    if (k == NULL)
        return 0;
    if (strcmp(k, "replay") == 0) {
        resp_header(r, "Idempotent-Replayed", "true");
        return resp_body(r, 201, "application/json; charset=utf-8", "{}", 2);
    }
    if (strcmp(k, "busy") == 0)
        return req_fail(r, PAY_E_IDEM_IN_PROGRESS, NULL);
    if (!text_valid(k, strlen(k), 255))
        return req_failf(r, PAY_E_BAD_REQUEST, "Idempotency-Key",
                         "bad Idempotency-Key '%s'", text_echo(r->arena, k, 64));
    return 0;
}

static int
hook_again(struct req *r, int status)
{
    (void)r;
    (void)status;
    int again = rerun;
    rerun = 0;
    return again;
}

static int
hook_after(struct req *r, int status)
{
    (void)r;
    return status;
}

static const struct router_hooks hooks = {hook_before, hook_again, hook_after};

/* ---- fake source and sink ------------------------------------------------- */

#define NFIELDS 8
static const char *const FIELD_NAMES[NFIELDS] = {
    "REQUEST_METHOD", "DOCUMENT_URI", "QUERY_STRING", "CONTENT_TYPE",
    "CONTENT_LENGTH", "HTTP_AUTHORIZATION", "HTTP_X_REQUEST_ID",
    "HTTP_IDEMPOTENCY_KEY",
};

struct src {
    const char *field[NFIELDS];
    const char *body;
    size_t      len, pos;
    int         short_reads;
    int         loopback; /* flag 8 */
};

static const char *
src_env(void *ctx, const char *name)
{
    struct src *s = ctx;
    if (s->loopback) {
        if (strcmp(name, "REMOTE_ADDR") == 0)
            return "127.0.0.1";
        if (strcmp(name, "HTTP_IF_NONE_MATCH") == 0)
            return s->field[7];
        if (strcmp(name, "HTTP_IDEMPOTENCY_KEY") == 0)
            return NULL;
    }
    for (size_t i = 0; i < NFIELDS; i++)
        if (strcmp(FIELD_NAMES[i], name) == 0)
            return s->field[i];
    return NULL;
}

static long
src_read(void *ctx, char *buf, size_t n)
{
    struct src *s = ctx;
    size_t      k = s->len - s->pos;
    if (k > n)
        k = n;
    if (s->short_reads && k > 7)
        k = 7; /* the client went away: a short read is EOF */
    if (k == 0)
        return 0;
    memcpy(buf, s->body + s->pos, k);
    s->pos += k;
    return (long)k;
}

struct fsink {
    struct abuf b;
    int         fail_after; /* -1: never */
};

static int
sink_write(void *ctx, const char *p, size_t n)
{
    struct fsink *s = ctx;
    if (s->fail_after >= 0 && s->b.len + n > (size_t)s->fail_after)
        return -1;
    abuf_add(&s->b, p, n);
    return 0;
}

/* ---- checks --------------------------------------------------------------- */

static const char *
head_value(const char *head, const char *name)
{
    size_t nl = strlen(name);
    for (const char *l = head; l != NULL && *l != '\0';) {
        const char *e = strstr(l, "\r\n");
        if (e == NULL)
            break;
        if ((size_t)(e - l) > nl + 1 && strncmp(l, name, nl) == 0 &&
            l[nl] == ':' && l[nl + 1] == ' ')
            return l + nl + 2;
        l = e + 2;
    }
    return NULL;
}

static size_t
value_len(const char *v)
{
    return (size_t)(strstr(v, "\r\n") - v);
}

static int
sane_request_id(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    return n >= 1 && n <= 64 &&
           strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                     "0123456789._-") == n;
}

static void
check_output(struct arena *a, const struct src *in, int ret, const char *out,
             size_t len, const char *method)
{
    FUZZ_CHECK(ret >= 100 && ret <= 599, "status %d", ret);
    FUZZ_CHECK(len >= 12 && memcmp(out, "Status: ", 8) == 0, "no Status line");
    char want[64];
    snprintf(want, sizeof(want), "Status: %d %s\r\n", ret, errors_reason(ret));
    FUZZ_CHECK(strncmp(out, want, strlen(want)) == 0,
               "head does not start with '%s'", want);
    const char *end = NULL;
    for (size_t i = 0; i + 4 <= len; i++)
        if (memcmp(out + i, "\r\n\r\n", 4) == 0) {
            end = out + i;
            break;
        }
    FUZZ_CHECK(end != NULL, "head not terminated");
    size_t hlen = (size_t)(end - out) + 2; /* keep the last line's CRLF */
    char  *head = arena_strndup(a, out, hlen);
    /* every line: Name: value, printable ASCII only */
    for (const char *l = head; *l != '\0';) {
        const char *e = strstr(l, "\r\n");
        FUZZ_CHECK(e != NULL, "unterminated header line");
        const char *colon = memchr(l, ':', (size_t)(e - l));
        FUZZ_CHECK(colon != NULL && colon > l, "header line without a name: %.*s",
                   (int)(e - l), l);
        for (const char *c = l; c < e; c++)
            FUZZ_CHECK(*c >= 0x20 && *c < 0x7f,
                       "byte 0x%02x in a header line (injection?): %.*s",
                       (unsigned char)*c, (int)(e - l), l);
        for (const char *c = l; c < colon; c++)
            FUZZ_CHECK((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') ||
                       (*c >= '0' && *c <= '9') || *c == '-', "header name");
        l = e + 2;
    }
    const char *rid = head_value(head, "X-Request-Id");
    FUZZ_CHECK(rid != NULL && head_value(head, "X-Content-Type-Options") &&
               head_value(head, "Cache-Control"), "a standard header is missing");
    char *rid_s = arena_strndup(a, rid, value_len(rid));
    const char *in_rid = in->field[6];
    if (sane_request_id(in_rid))
        FUZZ_CHECK(strcmp(rid_s, in_rid) == 0, "sane X-Request-Id not echoed");
    else
        FUZZ_CHECK(strlen(rid_s) == 32 && strspn(rid_s, "0123456789abcdef") == 32,
                   "X-Request-Id '%s' is not a fresh id", rid_s);

    const char *body = end + 4;
    size_t      blen = len - (size_t)(body - out);
    const char *cl = head_value(head, "Content-Length");
    const char *ct = head_value(head, "Content-Type");
    int         is_head = method && strcmp(method, "HEAD") == 0;
    if (cl != NULL) {
        long n = strtol(cl, NULL, 10);
        FUZZ_CHECK(blen == (is_head ? 0 : (size_t)n),
                   "Content-Length %ld but %zu body bytes", n, blen);
    } else if (ret == 304) {
        FUZZ_CHECK(blen == 0, "304 with a body");
    } else {
        FUZZ_CHECK(ret == 200 && ct != NULL, "no Content-Length on a non-streamed answer");
    }
    const char *cc = head_value(head, "Cache-Control"), *cc2 = cc ? head_value(cc, "Cache-Control") : NULL;
    FUZZ_CHECK(cc2 == NULL, "two Cache-Control headers");
    struct json_value *j = NULL;
    const char        *err;
    int json_ct = ct != NULL && strncmp(ct, "application/json", 16) == 0;
    /* The OpenAPI document (over 200 KB) is compared byte for byte instead
     * of parsed: the build refuses one that is not valid JSON, and parsing
     * it under ASan takes some 50 times as long as a whole other request. */
    int openapi_doc = blen == openapi_json_len && memcmp(body, openapi_json, blen) == 0;
    if (json_ct && !is_head && ret != 204 && !openapi_doc)
        FUZZ_CHECK(json_parse(a, body, blen, &j, &err) == 0,
                   "JSON body does not parse (%s): %.*s", err,
                   (int)(blen > 300 ? 300 : blen), body);
    /* error JSON (resp_error); the form pages answer errors in HTML */
    if (ret >= 400 && !is_head && (json_ct || ct == NULL)) {
        FUZZ_CHECK(j != NULL && j->type == JSON_OBJECT, "error body is not an object");
        struct json_value *st = json_get(j, "status"), *er = json_get(j, "error"),
                          *ri = json_get(j, "requestId"), *co = json_get(j, "code"),
                          *me = json_get(j, "message");
        FUZZ_CHECK(st && st->type == JSON_NUMBER && atoi(st->str) == ret, "status member");
        FUZZ_CHECK(er && er->type == JSON_STRING && strcmp(er->str, errors_reason(ret)) == 0,
                   "error member");
        FUZZ_CHECK(ri && ri->type == JSON_STRING && strcmp(ri->str, rid_s) == 0, "requestId");
        FUZZ_CHECK(co && co->type == JSON_STRING && me && me->type == JSON_STRING,
                   "code/message");
        if (ret >= 500)
            FUZZ_CHECK(strstr(me->str, SECRET_DETAIL) == NULL, "5xx leaks detail");
    }
    if (ret == 405)
        FUZZ_CHECK(head_value(head, "Allow") != NULL, "405 without Allow");
    if (ret == 401)
        FUZZ_CHECK(head_value(head, "WWW-Authenticate") != NULL,
                   "401 without WWW-Authenticate");
}

/* ---- one input ------------------------------------------------------------ */

static char *tokens[5]; /* @r @w @a @n @x */
static int   trace;     /* PAY_FUZZ_TRACE=1: print each response (corpus work) */

static void
init_once(void)
{
    static int done;
    if (done)
        return;
    done = 1;
    log_open("/dev/null", LOG_ERROR);
    trace = getenv("PAY_FUZZ_TRACE") != NULL;
    struct auth_settings s;
    char                 err[256];
    memset(&s, 0, sizeof(s));
    s.alg = "HS256";
    s.secret = SECRET;
    s.scopes = routes_scopes; /* the API's own scope words */
    s.nscopes = routes_nscopes;
    if (auth_init(&s, err, sizeof(err)) != 0) {
        fprintf(stderr, "auth_init: %s\n", err);
        abort();
    }
    static const int64_t owners[] = {1, 2};
    time_t               now = time(NULL);
    tokens[0] = auth_issue("fuzz-r", "payments:read", owners, 2, 10L * 365 * 86400, now, err, sizeof(err));
    tokens[1] = auth_issue("fuzz-w", "payments:read payments:write", owners, 2, 10L * 365 * 86400, now, err, sizeof(err));
    tokens[2] = auth_issue("fuzz-a", "payments:admin", NULL, 0, 10L * 365 * 86400, now, err, sizeof(err));
    tokens[3] = auth_issue("fuzz-n", "payments:read payments:write", NULL, 0, 10L * 365 * 86400, now, err, sizeof(err));
    tokens[4] = auth_issue("fuzz-x", "payments:read payments:write", owners, 2, 60, 1000000, err, sizeof(err));
    for (int i = 0; i < 5; i++)
        if (tokens[i] == NULL) {
            fprintf(stderr, "auth_issue: %s\n", err);
            abort();
        }
    table_init();
    metrics_init(ntable);
    router_init(table, ntable, &hooks);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init_once();
    if (size == 0)
        return 0;
    struct arena *a = fuzz_arena();
    unsigned      flags = data[0];
    struct src    in;
    memset(&in, 0, sizeof(in));

    /* split the fields */
    size_t pos = 1;
    for (size_t i = 0; i < NFIELDS && pos <= size; i++) {
        const uint8_t *nul = memchr(data + pos, '\0', size - pos);
        size_t         n = nul ? (size_t)(nul - (data + pos)) : size - pos;
        if (n > 0)
            in.field[i] = arena_strndup(a, (const char *)data + pos, n);
        pos += n + 1;
    }
    if (pos < size) {
        in.len = size - pos;
        char *b = arena_alloc(a, in.len); /* exact size: over-reads are caught */
        memcpy(b, data + pos, in.len);
        in.body = b;
    }
    const char *auth = in.field[5];
    if (auth != NULL && auth[0] == '@' && auth[1] != '\0' && auth[2] == '\0') {
        const char *which = strchr("rwanx", auth[1]);
        if (which != NULL)
            in.field[5] = arena_printf(a, "Bearer %s", tokens[which - "rwanx"]);
    }
    in.short_reads = (flags & 2) != 0;
    in.loopback = (flags & 8) != 0;
    want_retry = (flags & 4) != 0;

    /* router_match on its own, as router_dispatch will see the request */
    struct req r;
    req_init(&r, a);
    r.path = in.field[1];
    r.method = PAY_M_OTHER;
    static const char *const mnames[] = {"GET", "POST", "PATCH", "PUT",
                                         "DELETE", "HEAD", "OPTIONS"};
    for (int i = 0; i < 7; i++)
        if (in.field[0] != NULL && strcmp(in.field[0], mnames[i]) == 0)
            r.method = 1 << i; /* PAY_M_GET .. PAY_M_OPTIONS */
    if (r.method == PAY_M_HEAD) /* dispatch serves HEAD with the GET route */
        r.method = PAY_M_GET;
    const char *allow = NULL;
    int         mi = router_match(&r, &allow);
    FUZZ_CHECK(mi >= -2 && mi < (int)ntable, "router_match %d", mi);
    if (mi >= 0) {
        FUZZ_CHECK(table[mi].method == r.method, "matched another method");
        FUZZ_CHECK(r.nparams <= REQ_MAX_PARAMS, "nparams %zu", r.nparams);
        for (size_t i = 0; i < r.nparams; i++)
            FUZZ_CHECK(r.params[i] != NULL && r.params[i][0] != '\0' &&
                       strchr(r.params[i], '/') == NULL, "capture %zu", i);
    } else if (mi == -2) {
        FUZZ_CHECK(allow != NULL && *allow != '\0', "405 without Allow");
    }
    /* an unknown method is matched by path like any other (404, or 405
     * with Allow listing the methods of that path) */
    int expect = mi == -1 ? 404 : mi == -2 ? 405 : 0;

    /* the whole pipeline */
    struct fsink out;
    abuf_init(&out.b, a);
    out.fail_after = (flags & 1) ? (int)(flags >> 4) * 16 : -1;
    req_init(&r, a);
    r.src.env = src_env;
    r.src.read = src_read;
    r.src.ctx = &in;
    r.out.write = sink_write;
    r.out.ctx = &out;
    int ret = router_dispatch(&r);
    FUZZ_CHECK(ret == r.status, "returned %d, r.status %d", ret, r.status);
    if (expect != 0)
        FUZZ_CHECK(ret == expect, "router_match says %d, dispatch answered %d", expect, ret);
    if (trace)
        fprintf(stderr, "---- %s %s -> %d\n%.*s\n", in.field[0] ? in.field[0] : "-",
                in.field[1] ? in.field[1] : "-", ret,
                (int)(out.b.len > 600 ? 600 : out.b.len), out.b.p ? out.b.p : "");
    if (out.fail_after < 0)
        check_output(a, &in, ret, out.b.p ? out.b.p : "", out.b.len, in.field[0]);

    arena_reset(a);
    return 0;
}
