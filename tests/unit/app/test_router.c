/*
 * Unit tests for app/router.c (route compile/match and the dispatch
 * pipeline), driven in-process: a small route table of our own whose
 * handlers record what ran, a fake struct source (CGI params from an array
 * of name/value pairs, the body from a buffer, counting reads) and a sink
 * collecting the CGI response in a buffer. No FastCGI, no database; hooks
 * are NULL. R_AUTH routes use auth_init with a test-only HS256 secret.
 */
#include "test.h"

#include "arena.h"
#include "auth.h"
#include "json.h"
#include "log.h"
#include "router.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SECRET "router-test-secret-0123456789abcdef-0123456789"

/* ---- what the handlers saw ------------------------------------------------ */

static struct {
    char   ran[32];
    size_t nparams;
    char   params[REQ_MAX_PARAMS][64];
    int    json_type; /* -1: r->json NULL */
    char   json_name[64];
    size_t body_len;
    char   sub[64];
    char   qa[64];
} seen;

static void
record(struct req *r, const char *name)
{
    snprintf(seen.ran, sizeof(seen.ran), "%s", name);
    seen.nparams = r->nparams;
    for (size_t i = 0; i < r->nparams && i < REQ_MAX_PARAMS; i++)
        snprintf(seen.params[i], sizeof(seen.params[i]), "%s", r->params[i]);
    seen.json_type = r->json ? (int)r->json->type : -1;
    struct json_value *v = json_get(r->json, "name");
    snprintf(seen.json_name, sizeof(seen.json_name), "%s",
             v && v->type == JSON_STRING ? v->str : "");
    seen.body_len = r->body_len;
    snprintf(seen.sub, sizeof(seen.sub), "%s", r->principal.sub ? r->principal.sub : "");
    const char *qa = req_query(r, "a");
    snprintf(seen.qa, sizeof(seen.qa), "%s", qa ? qa : "");
}

static int
h_list(struct req *r)
{
    record(r, "list");
    return resp_body(r, 200, "text/plain", "list", 4);
}

static int
h_create(struct req *r)
{
    record(r, "create");
    struct json_gen *g = resp_json(r, 201);
    json_map_open(g);
    json_key(g, "created");
    json_bool(g, 1);
    json_map_close(g);
    return 201;
}

static int
h_get(struct req *r)
{
    record(r, "get");
    struct json_gen *g = resp_json_stream(r, 200); /* GET: streamed */
    json_map_open(g);
    json_key(g, "id");
    json_str(g, req_param(r, 0));
    json_map_close(g);
    return 200;
}

static int
h_delete(struct req *r)
{
    record(r, "delete");
    return 204;
}

static int
h_patch(struct req *r)
{
    record(r, "patch");
    return resp_body(r, 200, "text/plain", "patched", 7);
}

static int
h_sub(struct req *r)
{
    record(r, "sub");
    return resp_body(r, 200, "text/plain", "sub", 3);
}

static int
h_lit(struct req *r)
{
    record(r, "lit");
    return resp_body(r, 200, "text/plain", "lit", 3);
}

static int
h_health(struct req *r)
{
    record(r, "health");
    return resp_body(r, 200, "text/plain", "ok", 2);
}

static int
h_fail(struct req *r)
{
    record(r, "fail");
    return req_fail(r, PAY_E_NOT_FOUND, "widgetId");
}

static int
h_boom(struct req *r)
{
    record(r, "boom");
    return req_failf(r, PAY_E_INTERNAL, NULL, "secret sql detail: %s", "SELECT 1");
}

static int
h_query(struct req *r)
{
    record(r, "query");
    return resp_body(r, 200, "text/plain", "q", 1);
}

static int
h_secure(struct req *r)
{
    record(r, "secure");
    return resp_body(r, 200, "text/plain", "secure", 6);
}

static int
h_secure_w(struct req *r)
{
    record(r, "secure_w");
    return resp_body(r, 200, "text/plain", "written", 7);
}

/* The test's own scope words and bits: the framework knows no scope names. */
#define SCOPE_READ  1u
#define SCOPE_WRITE 2u
static const struct auth_scope scopes[] = {
    {"router:read", SCOPE_READ, 0},
    {"router:write", SCOPE_WRITE, 0},
};

/*  method         pattern                 handler     flags             scope */
static const struct route table[] = {
    {PAY_M_GET,    "/v1/x",                h_list,     0,                0},
    {PAY_M_POST,   "/v1/x",                h_create,   R_JSON,           0},
    {PAY_M_GET,    "/v1/x/:id",            h_get,      0,                0},
    {PAY_M_DELETE, "/v1/x/:id",            h_delete,   0,                0},
    {PAY_M_PATCH,  "/v1/x/:id",            h_patch,    R_JSON,           0},
    {PAY_M_GET,    "/v1/x/:id/y/:yid",     h_sub,      0,                0},
    {PAY_M_GET,    "/v1/a/b",              h_lit,      0,                0},
    {PAY_M_GET,    "/healthz",             h_health,   0,                0},
    {PAY_M_GET,    "/v1/fail",             h_fail,     0,                0},
    {PAY_M_GET,    "/v1/boom",             h_boom,     0,                0},
    {PAY_M_GET,    "/v1/q",                h_query,    0,                0},
    {PAY_M_GET,    "/v1/secure",           h_secure,   R_AUTH,           SCOPE_READ},
    {PAY_M_POST,   "/v1/secure",           h_secure_w, R_AUTH | R_JSON,  SCOPE_WRITE},
    {PAY_M_POST,   "/v1/big",              h_create,   R_RAW_JSON | R_BIG_BODY, 0},
};
#define NTABLE (sizeof(table) / sizeof(table[0]))

/* ---- fake source and sink ------------------------------------------------- */

struct fake_src {
    const char *const *env; /* name, value, ..., NULL */
    const char        *body;
    size_t             len, pos;
    int                reads;
};

static const char *
f_env(void *ctx, const char *name)
{
    struct fake_src *f = ctx;
    for (size_t i = 0; f->env[i] != NULL; i += 2)
        if (strcmp(f->env[i], name) == 0)
            return f->env[i + 1];
    return NULL;
}

static long
f_read(void *ctx, char *buf, size_t n)
{
    struct fake_src *f = ctx;
    f->reads++;
    size_t k = f->len - f->pos < n ? f->len - f->pos : n;
    memcpy(buf, f->body + f->pos, k);
    f->pos += k;
    return (long)k;
}

static char   out_buf[256 * 1024];
static size_t out_len;
static int    out_fail;

static int
f_write(void *ctx, const char *p, size_t n)
{
    (void)ctx;
    if (out_fail || out_len + n > sizeof(out_buf))
        return -1;
    memcpy(out_buf + out_len, p, n);
    out_len += n;
    return 0;
}

/* ---- one request ---------------------------------------------------------- */

static struct arena *A;  /* the "worker" arena */
static struct arena *JA; /* for parsing response bodies in the test */

struct res {
    int                ret;    /* router_dispatch's return */
    int                status; /* from the Status: line */
    int                reads;
    const char        *raw;    /* whole output, NUL-terminated */
    const char        *head;   /* header block (without the blank line) */
    const char        *body;
    size_t             body_len;
    struct json_value *json;   /* body parsed, or NULL */
};

static struct res
run_body(const char *const *env, const char *body, size_t len)
{
    struct fake_src f = {env, body, len, 0, 0};
    struct req      r;
    struct res      res;

    memset(&seen, 0, sizeof(seen));
    memset(&res, 0, sizeof(res));
    out_len = 0;
    arena_reset(JA);
    req_init(&r, A);
    r.src.env = f_env;
    r.src.read = f_read;
    r.src.ctx = &f;
    r.out.write = f_write;
    r.out.ctx = NULL;
    res.ret = router_dispatch(&r);
    arena_reset(A); /* as the worker does: nothing may outlive it */

    res.reads = f.reads;
    char *raw = arena_strndup(JA, out_buf, out_len);
    res.raw = raw;
    if (sscanf(raw, "Status: %d ", &res.status) != 1)
        res.status = -1;
    char *sep = strstr(raw, "\r\n\r\n");
    if (sep != NULL) {
        res.head = arena_strndup(JA, raw, (size_t)(sep - raw) + 2);
        res.body = sep + 4;
        res.body_len = out_len - (size_t)(sep + 4 - raw);
        const char *err;
        if (res.body_len > 0 &&
            json_parse(JA, res.body, res.body_len, &res.json, &err) != 0)
            res.json = NULL;
    } else {
        res.head = "";
        res.body = "";
    }
    return res;
}

static struct res
run(const char *const *env)
{
    return run_body(env, NULL, 0);
}

/* Header value (first occurrence, exact name) or NULL; arena memory. */
static const char *
header(const struct res *res, const char *name)
{
    size_t      n = strlen(name);
    const char *p = res->head;
    while (p != NULL && *p != '\0') {
        const char *eol = strstr(p, "\r\n");
        if (eol == NULL)
            break;
        if ((size_t)(eol - p) > n + 1 && strncmp(p, name, n) == 0 && p[n] == ':' &&
            p[n + 1] == ' ')
            return arena_strndup(JA, p + n + 2, (size_t)(eol - p) - n - 2);
        p = eol + 2;
    }
    return NULL;
}

static const char *
jstr(const struct res *res, const char *key)
{
    struct json_value *v = json_get(res->json, key);
    return v && v->type == JSON_STRING ? v->str : NULL;
}

static int
is_hex_id(const char *s)
{
    if (s == NULL || strlen(s) != 32)
        return 0;
    for (; *s; s++)
        if (!isxdigit((unsigned char)*s) || isupper((unsigned char)*s))
            return 0;
    return 1;
}

/* Checks the complete shape of an error response. */
static void
check_error(const struct res *res, int status, const char *reason,
            const char *code, const char *field, const char *what)
{
    char line[96];
    snprintf(line, sizeof(line), "Status: %d %s\r\n", status, reason);
    CHECK(strncmp(res->raw, line, strlen(line)) == 0,
          "%s: output starts with \"Status: %d %s\" (got %.*s)", what, status,
          reason, (int)strcspn(res->raw, "\r\n"), res->raw);
    CHECK(res->ret == status, "%s: router_dispatch returns %d (got %d)", what,
          status, res->ret);
    CHECK(seen.ran[0] == '\0', "%s: no handler ran (ran %s)", what, seen.ran);
    CHECK_STR(header(res, "Content-Type"), "application/json; charset=utf-8",
              "%s: Content-Type", what);
    const char *cl = header(res, "Content-Length");
    CHECK(cl != NULL && strtoul(cl, NULL, 10) == res->body_len,
          "%s: Content-Length %s matches the body (%zu)", what, cl ? cl : "(none)",
          res->body_len);
    const char *rid = header(res, "X-Request-Id");
    CHECK(rid != NULL && *rid != '\0', "%s: X-Request-Id header", what);

    const struct json_value *j = res->json;
    CHECK(j != NULL && j->type == JSON_OBJECT, "%s: body is a JSON object: %s",
          what, res->body);
    if (j == NULL || j->type != JSON_OBJECT)
        return;
    CHECK(j->n == (field ? 6u : 5u), "%s: exactly %d members (got %zu)", what,
          field ? 6 : 5, j->n);
    CHECK_STR(jstr(res, "error"), reason, "%s: error is the reason phrase", what);
    CHECK_STR(jstr(res, "code"), code, "%s: code", what);
    const struct json_value *st = json_get(j, "status");
    char want[8];
    snprintf(want, sizeof(want), "%d", status);
    CHECK(st != NULL && st->type == JSON_NUMBER && strcmp(st->str, want) == 0,
          "%s: status member is the number %d", what, status);
    const char *msg = jstr(res, "message");
    CHECK(msg != NULL && *msg != '\0', "%s: non-empty message", what);
    CHECK_STR(jstr(res, "requestId"), rid, "%s: requestId equals X-Request-Id", what);
    if (field)
        CHECK_STR(jstr(res, "field"), field, "%s: field", what);
    else
        CHECK(json_get(j, "field") == NULL, "%s: no field member", what);
}

#define ENV(...) ((const char *const[]){__VA_ARGS__, NULL})

/* ---- table compile ------------------------------------------------------ */

static void
test_table(void)
{
    CHECK(router_count() == NTABLE, "router_count is the table size (%zu)",
          router_count());
    CHECK(router_get(0) == &table[0] && router_get(NTABLE - 1) == &table[NTABLE - 1],
          "router_get returns the table rows");
    CHECK(router_get(NTABLE) == NULL, "router_get past the end is NULL");
}

/* ---- exact matches and captures ------------------------------------------ */

static void
test_match(void)
{
    static const struct {
        const char *method, *path, *ran;
        size_t      np;
        const char *p0, *p1;
        int         status;
    } cases[] = {
        {"GET",    "/v1/x",          "list",   0, NULL, NULL, 200},
        {"GET",    "/v1/x/42",       "get",    1, "42", NULL, 200},
        {"DELETE", "/v1/x/abc",      "delete", 1, "abc", NULL, 204},
        {"GET",    "/v1/x/7/y/9",    "sub",    2, "7", "9", 200},
        {"GET",    "/v1/x/a.b-c/y/Z","sub",    2, "a.b-c", "Z", 200},
        {"GET",    "/v1/a/b",        "lit",    0, NULL, NULL, 200},
        {"GET",    "/healthz",       "health", 0, NULL, NULL, 200},
        {"GET",    "/v1/x/y",        "get",    1, "y", NULL, 200},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct res res = run(ENV("REQUEST_METHOD", cases[i].method, "DOCUMENT_URI",
                                 cases[i].path));
        CHECK_STR(seen.ran, cases[i].ran, "%s %s runs its handler", cases[i].method,
                  cases[i].path);
        CHECK(res.status == cases[i].status && res.ret == cases[i].status,
              "%s %s answers %d (got %d/%d)", cases[i].method, cases[i].path,
              cases[i].status, res.status, res.ret);
        CHECK(seen.nparams == cases[i].np, "%s %s: %zu captures (got %zu)",
              cases[i].method, cases[i].path, cases[i].np, seen.nparams);
        if (cases[i].p0)
            CHECK_STR(seen.params[0], cases[i].p0, "%s %s: first capture",
                      cases[i].method, cases[i].path);
        if (cases[i].p1)
            CHECK_STR(seen.params[1], cases[i].p1, "%s %s: second capture",
                      cases[i].method, cases[i].path);
        CHECK(header(&res, "X-Request-Id") != NULL, "%s %s: X-Request-Id",
              cases[i].method, cases[i].path);
    }

    /* Buffered response: text body with Content-Length. */
    struct res res = run(ENV("REQUEST_METHOD", "GET", "DOCUMENT_URI", "/healthz"));
    CHECK(strncmp(res.raw, "Status: 200 OK\r\n", 16) == 0, "200 status line");
    CHECK_STR(header(&res, "Content-Type"), "text/plain", "handler's Content-Type");
    CHECK_STR(header(&res, "Content-Length"), "2", "Content-Length of \"ok\"");
    CHECK(res.body_len == 2 && memcmp(res.body, "ok", 2) == 0, "body \"ok\"");

    /* 204 from a handler that wrote nothing. */
    res = run(ENV("REQUEST_METHOD", "DELETE", "DOCUMENT_URI", "/v1/x/5"));
    CHECK(strncmp(res.raw, "Status: 204 No Content\r\n", 24) == 0,
          "204 status line (%.30s)", res.raw);
    CHECK(res.body_len == 0, "204 has no body");

    /* GET JSON is streamed: no Content-Length, body is the document. */
    res = run(ENV("REQUEST_METHOD", "GET", "DOCUMENT_URI", "/v1/x/42"));
    CHECK_STR(header(&res, "Content-Type"), "application/json; charset=utf-8",
              "streamed JSON Content-Type");
    CHECK(header(&res, "Content-Length") == NULL, "streamed JSON has no Content-Length");
    CHECK(res.body_len == 11 && memcmp(res.body, "{\"id\":\"42\"}", 11) == 0,
          "streamed JSON body {\"id\":\"42\"} (%.*s)", (int)res.body_len, res.body);

    /* Query parameters reach GET handlers. */
    res = run(ENV("REQUEST_METHOD", "GET", "DOCUMENT_URI", "/v1/q", "QUERY_STRING",
                  "a=hello+there&b=2"));
    CHECK(res.status == 200 && strcmp(seen.qa, "hello there") == 0,
          "GET handler sees decoded query parameter a (%s)", seen.qa);
}

/* ---- 404: no trailing slash, no prefix, no empty captures ---------------- */

static void
test_not_found(void)
{
    static const char *const paths[] = {
        "/v1/x/",            /* trailing slash (and an empty capture) */
        "/v1/x//",           /* empty segment where the capture is */
        "/v1/x/1/extra",     /* prefix of a longer path */
        "/v1/x/1/y",
        "/v1/x/1/y/",        /* empty last capture */
        "/v1/x//y/9",        /* empty first capture */
        "/v1/a/b/",
        "/v1/a",
        "/v1/a/b/c",
        "/v1",
        "/v1/",
        "/",
        "",
        "/V1/x",             /* case-sensitive */
        "/v1/X",
        "/healthz/",
        "//v1/x",
        "/v1//x",
        "v1/x",              /* not absolute */
        "/a/b/c/d/e/f/g/h/i/j/k", /* more segments than any route */
        "/nothing",
    };
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        struct res res = run(ENV("REQUEST_METHOD", "GET", "DOCUMENT_URI", paths[i]));
        char       what[80];
        snprintf(what, sizeof(what), "GET \"%s\"", paths[i]);
        check_error(&res, 404, "Not Found", "NOT_FOUND", NULL, what);
        CHECK(header(&res, "Allow") == NULL, "%s: 404 has no Allow header", what);
    }
    /* No DOCUMENT_URI at all. */
    struct res res = run(ENV("REQUEST_METHOD", "GET"));
    check_error(&res, 404, "Not Found", "NOT_FOUND", NULL, "GET without DOCUMENT_URI");
    /* An unrecognised method on an unknown path is still "unknown path"
     * (spec 1.3: unknown path -> 404), not a 405. */
    res = run(ENV("REQUEST_METHOD", "BREW", "DOCUMENT_URI", "/nothing"));
    check_error(&res, 404, "Not Found", "NOT_FOUND", NULL, "BREW /nothing");
    /* A 404 for POST to an unknown path does not read the body. */
    res = run_body(ENV("REQUEST_METHOD", "POST", "DOCUMENT_URI", "/v1/nope",
                       "CONTENT_TYPE", "application/json", "CONTENT_LENGTH", "2"),
                   "{}", 2);
    check_error(&res, 404, "Not Found", "NOT_FOUND", NULL, "POST to unknown path");
    CHECK(res.reads == 0, "404: the body is never read (%d reads)", res.reads);
}

/* ---- 405 with Allow ------------------------------------------------------- */

static void
test_method_not_allowed(void)
{
    static const struct {
        const char *method, *path, *allow;
    } cases[] = {
        {"PUT",    "/v1/x",       "GET, POST"},
        {"DELETE", "/v1/x",       "GET, POST"},
        {"POST",   "/v1/x/5",     "GET, DELETE, PATCH"},
        {"PUT",    "/v1/x/5",     "GET, DELETE, PATCH"},
        {"POST",   "/v1/x/5/y/6", "GET"},
        {"DELETE", "/healthz",    "GET"},
        {"OPTIONS","/v1/a/b",     "GET"},
        {"PATCH",  "/v1/secure",  "GET, POST"},
        /* An unrecognised method on an existing resource is still a 405,
         * and RFC 9110 15.5.6 requires Allow on every 405. */
        {"BREW",   "/v1/x",       "GET, POST"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct res res = run(ENV("REQUEST_METHOD", cases[i].method, "DOCUMENT_URI",
                                 cases[i].path));
        char       what[80];
        snprintf(what, sizeof(what), "%s %s", cases[i].method, cases[i].path);
        check_error(&res, 405, "Method Not Allowed", "METHOD_NOT_ALLOWED", NULL, what);
        CHECK_STR(header(&res, "Allow"), cases[i].allow, "%s: Allow lists the methods",
                  what);
    }
    /* 405 on a body route's path never reads the body. */
    struct res res = run_body(ENV("REQUEST_METHOD", "PUT", "DOCUMENT_URI", "/v1/x",
                                  "CONTENT_TYPE", "application/json",
                                  "CONTENT_LENGTH", "2"),
                              "{}", 2);
    CHECK(res.status == 405 && res.reads == 0, "405: body not read (%d, %d reads)",
          res.status, res.reads);
}

/* ---- HEAD and content negotiation ----------------------------------------- */

/* HEAD is answered by the GET route (RFC 9110 9.3.2): the same status and
 * headers, a Content-Length equal to GET's body, and no body. */
static void
test_head(void)
{
    static const char *const paths[] = {"/v1/x/5", "/v1/x", "/v1/nope/1"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        struct res get = run(ENV("REQUEST_METHOD", "GET", "DOCUMENT_URI", paths[i]));
        size_t     get_len = get.body_len;
        char       get_type[64];
        int        get_status = get.status;
        snprintf(get_type, sizeof(get_type), "%s",
                 header(&get, "Content-Type") ? header(&get, "Content-Type") : "");
        struct res head = run(ENV("REQUEST_METHOD", "HEAD", "DOCUMENT_URI", paths[i]));
        char       len[32];
        snprintf(len, sizeof(len), "%zu", get_len);
        CHECK(head.status == get_status, "HEAD %s: status %d like GET's %d", paths[i],
              head.status, get_status);
        CHECK(head.body_len == 0, "HEAD %s: no body (%zu bytes)", paths[i], head.body_len);
        CHECK_STR(header(&head, "Content-Length"), len, "HEAD %s: GET's Content-Length",
                  paths[i]);
        CHECK_STR(header(&head, "Content-Type"), get_type, "HEAD %s: GET's Content-Type",
                  paths[i]);
    }
    struct res res = run(ENV("REQUEST_METHOD", "HEAD", "DOCUMENT_URI", "/v1/x/5"));
    CHECK(res.status == 200 && strcmp(seen.ran, "get") == 0,
          "HEAD runs the GET handler (%d, %s)", res.status, seen.ran);
}

/* Accept that excludes application/json (and every wildcard) on a /v1
 * route is 406 with the JSON error body; other routes are not negotiated. */
static void
test_accept(void)
{
    static const struct {
        const char *accept;
        int         status;
    } cases[] = {
        {"application/json", 200},
        {"APPLICATION/JSON; charset=utf-8", 200},
        {"*/*", 200},
        {"application/*", 200},
        {"text/html, application/*;q=0.1", 200},
        {"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", 200},
        {"application/json;q=0.001", 200},
        {"", 200},
        {"garbage", 200},
        {"text/html", 406},
        {"text/*", 406},
        {"application/xml, text/plain", 406},
        {"application/json;q=0", 406},
        {"application/json;q=0.000, text/html", 406},
        {"application/json;q=0, */*", 406},
        {"*/*;q=0", 406},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct res res = run(ENV("REQUEST_METHOD", "GET", "DOCUMENT_URI", "/v1/x/5",
                                 "HTTP_ACCEPT", cases[i].accept));
        char what[128];
        snprintf(what, sizeof(what), "Accept: %s", cases[i].accept);
        if (cases[i].status == 406)
            check_error(&res, 406, "Not Acceptable", "NOT_ACCEPTABLE", NULL, what);
        else
            CHECK(res.status == 200, "%s: 200 (%d)", what, res.status);
    }
    struct res res = run(ENV("REQUEST_METHOD", "GET", "DOCUMENT_URI", "/healthz",
                             "HTTP_ACCEPT", "text/html"));
    CHECK(res.status == 200, "/healthz is not negotiated (%d)", res.status);
}

/* ---- R_JSON body pipeline ------------------------------------------------- */

static void
test_body(void)
{
    static const char ok_body[] = "{\"name\":\"widget\",\"n\":[1,2]}";
    char              n_ok[16];
    snprintf(n_ok, sizeof(n_ok), "%zu", sizeof(ok_body) - 1);

    struct res res = run_body(ENV("REQUEST_METHOD", "POST", "DOCUMENT_URI", "/v1/x",
                                  "CONTENT_TYPE", "application/json",
                                  "CONTENT_LENGTH", n_ok),
                              ok_body, sizeof(ok_body) - 1);
    CHECK(res.status == 201, "valid JSON POST answers 201 (got %d)", res.status);
    CHECK_STR(seen.ran, "create", "valid JSON POST runs the handler");
    CHECK(seen.json_type == JSON_OBJECT, "r->json is the parsed object (%d)",
          seen.json_type);
    CHECK_STR(seen.json_name, "widget", "r->json member name");
    CHECK(seen.body_len == sizeof(ok_body) - 1, "r->body_len (%zu)", seen.body_len);
    CHECK_STR(header(&res, "Content-Length"), "16", "POST JSON is buffered with Content-Length");
    CHECK(res.body_len == 16 && memcmp(res.body, "{\"created\":true}", 16) == 0,
          "POST response body");

    /* Content types. */
    static const struct {
        const char *ct;
        int         ok;
    } cts[] = {
        {"application/json", 1},
        {"application/json; charset=utf-8", 1},
        {"application/json;charset=UTF-8", 1},
        {"Application/JSON", 1},
        {"text/plain", 0},
        {"text/json", 0},
        {"application/jsonx", 0},
        {"application/json-patch+json", 0},
        {"application/x-www-form-urlencoded", 0},
        {"application/json; charset=latin1", 0},
        {"", 0},
        {NULL, 0},
    };
    for (size_t i = 0; i < sizeof(cts) / sizeof(cts[0]); i++) {
        const char *ct = cts[i].ct;
        res = ct ? run_body(ENV("REQUEST_METHOD", "POST", "DOCUMENT_URI", "/v1/x",
                                "CONTENT_TYPE", ct, "CONTENT_LENGTH", n_ok),
                            ok_body, sizeof(ok_body) - 1)
                 : run_body(ENV("REQUEST_METHOD", "POST", "DOCUMENT_URI", "/v1/x",
                                "CONTENT_LENGTH", n_ok),
                            ok_body, sizeof(ok_body) - 1);
        char what[96];
        snprintf(what, sizeof(what), "Content-Type \"%s\"", ct ? ct : "(none)");
        if (cts[i].ok) {
            CHECK(res.status == 201 && strcmp(seen.ran, "create") == 0,
                  "%s is accepted (got %d)", what, res.status);
        } else {
            check_error(&res, 415, "Unsupported Media Type", "UNSUPPORTED_MEDIA_TYPE",
                        NULL, what);
            CHECK(res.reads == 0, "%s: 415 before reading the body (%d reads)", what,
                  res.reads);
        }
    }

    /* Length limit, checked before reading. */
    res = run_body(ENV("REQUEST_METHOD", "POST", "DOCUMENT_URI", "/v1/x",
                       "CONTENT_TYPE", "application/json", "CONTENT_LENGTH", "70000"),
                   ok_body, sizeof(ok_body) - 1);
    check_error(&res, 413, "Payload Too Large", "BODY_TOO_LARGE", NULL,
                "CONTENT_LENGTH 70000");
    CHECK(res.reads == 0, "413 is answered before the body is read (%d reads)",
          res.reads);
    res = run_body(ENV("REQUEST_METHOD", "POST", "DOCUMENT_URI", "/v1/x",
                       "CONTENT_TYPE", "application/json", "CONTENT_LENGTH", "65537"),
                   ok_body, sizeof(ok_body) - 1);
    CHECK(res.status == 413 && res.reads == 0, "CONTENT_LENGTH 65537 is 413 unread (%d)",
          res.status);
    res = run_body(ENV("REQUEST_METHOD", "POST", "DOCUMENT_URI", "/v1/x",
                       "CONTENT_TYPE", "application/json",
                       "CONTENT_LENGTH", "99999999999999999999"),
                   ok_body, sizeof(ok_body) - 1);
    CHECK(res.status >= 400 && res.status < 500 && res.status != 404 && res.reads == 0,
          "a 20-digit CONTENT_LENGTH is refused unread (%d)", res.status);

    /* Exactly 64 KiB is allowed. */
    {
        enum { BIG = 64 * 1024 };
        char *big = malloc(BIG);
        memset(big, 'x', BIG);
        memcpy(big, "{\"name\":\"", 9);
        memcpy(big + BIG - 2, "\"}", 2);
        res = run_body(ENV("REQUEST_METHOD", "POST", "DOCUMENT_URI", "/v1/x",
                           "CONTENT_TYPE", "application/json", "CONTENT_LENGTH", "65536"),
                       big, BIG);
        CHECK(res.status == 201 && seen.body_len == BIG,
              "a 65536-byte JSON body is accepted (got %d, %zu)", res.status,
              seen.body_len);
        free(big);
    }

    /* A route with R_BIG_BODY (providers' webhooks): up to 1 MiB, with or
     * without CONTENT_LENGTH; over it a 413 naming that limit. */
    {
        enum { MIB = 1024 * 1024 };
        char *big = malloc(MIB + 1);
        memset(big, ' ', MIB + 1);
        big[0] = '{';
        big[MIB - 1] = '}';
        res = run_body(ENV("REQUEST_METHOD", "POST", "DOCUMENT_URI", "/v1/big",
                           "CONTENT_TYPE", "application/json", "CONTENT_LENGTH", "1048576"),
                       big, MIB);
        CHECK(res.status == 201 && seen.body_len == MIB,
              "R_BIG_BODY: a 1 MiB body is accepted (got %d, %zu)", res.status, seen.body_len);
        res = run_body(ENV("REQUEST_METHOD", "POST", "DOCUMENT_URI", "/v1/big",
                           "CONTENT_TYPE", "application/json"), big, MIB);
        CHECK(res.status == 201 && seen.body_len == MIB,
              "R_BIG_BODY: 1 MiB without CONTENT_LENGTH is accepted (got %d, %zu)", res.status,
              seen.body_len);
        res = run_body(ENV("REQUEST_METHOD", "POST", "DOCUMENT_URI", "/v1/big",
                           "CONTENT_TYPE", "application/json", "CONTENT_LENGTH", "1048577"),
                       big, MIB + 1);
        check_error(&res, 413, "Payload Too Large", "BODY_TOO_LARGE", NULL,
                    "R_BIG_BODY: CONTENT_LENGTH 1048577");
        CHECK(res.reads == 0, "R_BIG_BODY: 413 before the body is read (%d reads)", res.reads);
        const struct json_value *m = json_get(res.json, "message");
        CHECK(m != NULL && m->type == JSON_STRING &&
                  strcmp(m->str, "Request body exceeds 1 MiB") == 0,
              "R_BIG_BODY: the 413 names the 1 MiB limit");
        res = run_body(ENV("REQUEST_METHOD", "POST", "DOCUMENT_URI", "/v1/big",
                           "CONTENT_TYPE", "application/json"), big, MIB + 1);
        check_error(&res, 413, "Payload Too Large", "BODY_TOO_LARGE", NULL,
                    "R_BIG_BODY: 1 MiB + 1 byte without CONTENT_LENGTH");
        free(big);
    }

    /* No CONTENT_LENGTH (Apache's mod_proxy_fcgi with a chunked body): the
     * FastCGI stdin stream is read to its end, at most 64 KiB. */
    res = run_body(ENV("REQUEST_METHOD", "POST", "DOCUMENT_URI", "/v1/x",
                       "CONTENT_TYPE", "application/json"),
                   ok_body, sizeof(ok_body) - 1);
    CHECK(res.status == 201 && seen.body_len == sizeof(ok_body) - 1,
          "a body without CONTENT_LENGTH is read to the end of the stream (%d, %zu)",
          res.status, seen.body_len);
    {
        enum { HUGE_BODY = 70000 };
        char *big = malloc(HUGE_BODY);
        memset(big, ' ', HUGE_BODY);
        res = run_body(ENV("REQUEST_METHOD", "POST", "DOCUMENT_URI", "/v1/x",
                           "CONTENT_TYPE", "application/json"),
                       big, HUGE_BODY);
        check_error(&res, 413, "Payload Too Large", "BODY_TOO_LARGE", NULL,
                    "70000 bytes without CONTENT_LENGTH");
        free(big);
    }
    res = run_body(ENV("REQUEST_METHOD", "POST", "DOCUMENT_URI", "/v1/x",
                       "CONTENT_TYPE", "application/json"), "", 0);
    check_error(&res, 400, "Bad Request", "INVALID_JSON", NULL,
                "no CONTENT_LENGTH and an empty stream");

    /* Malformed Content-Length. */
    static const char *const bad_cl[] = {"abc", "-1", "1e3", "12 ", " 12", "0x10"};
    for (size_t i = 0; i < sizeof(bad_cl) / sizeof(bad_cl[0]); i++) {
        res = run_body(ENV("REQUEST_METHOD", "POST", "DOCUMENT_URI", "/v1/x",
                           "CONTENT_TYPE", "application/json", "CONTENT_LENGTH",
                           bad_cl[i]),
                       ok_body, sizeof(ok_body) - 1);
        char what[64];
        snprintf(what, sizeof(what), "CONTENT_LENGTH \"%s\"", bad_cl[i]);
        check_error(&res, 400, "Bad Request", "BAD_REQUEST", NULL, what);
    }

    /* Body shorter than announced. */
    res = run_body(ENV("REQUEST_METHOD", "POST", "DOCUMENT_URI", "/v1/x",
                       "CONTENT_TYPE", "application/json", "CONTENT_LENGTH", "100"),
                   "{}", 2);
    check_error(&res, 400, "Bad Request", "BAD_REQUEST", NULL, "truncated body");

    /* Bad and empty JSON. */
    static const struct {
        const char *body, *cl;
    } bad_json[] = {
        {"{", "1"},
        {"{\"name\":}", "9"},
        {"[1,]", "4"},
        {"{} x", "4"},
        {"{\"a\":1,\"a\":2}", "13"},
        {"", "0"},
        {"", NULL},
        {"   ", "3"},
    };
    for (size_t i = 0; i < sizeof(bad_json) / sizeof(bad_json[0]); i++) {
        const char *b = bad_json[i].body;
        res = bad_json[i].cl
                  ? run_body(ENV("REQUEST_METHOD", "POST", "DOCUMENT_URI", "/v1/x",
                                 "CONTENT_TYPE", "application/json", "CONTENT_LENGTH",
                                 bad_json[i].cl),
                             b, strlen(b))
                  : run_body(ENV("REQUEST_METHOD", "POST", "DOCUMENT_URI", "/v1/x",
                                 "CONTENT_TYPE", "application/json"),
                             b, strlen(b));
        char what[80];
        snprintf(what, sizeof(what), "body '%s' (CONTENT_LENGTH %s)", b,
                 bad_json[i].cl ? bad_json[i].cl : "absent");
        check_error(&res, 400, "Bad Request", "INVALID_JSON", NULL, what);
    }

    /* Query parameters on a body route. */
    res = run_body(ENV("REQUEST_METHOD", "POST", "DOCUMENT_URI", "/v1/x",
                       "QUERY_STRING", "debug=1", "CONTENT_TYPE", "application/json",
                       "CONTENT_LENGTH", n_ok),
                   ok_body, sizeof(ok_body) - 1);
    check_error(&res, 400, "Bad Request", "UNKNOWN_PARAMETER", "debug",
                "query parameter on a POST route");
    CHECK(res.reads == 0, "query on a body route is refused before reading (%d)",
          res.reads);
    res = run_body(ENV("REQUEST_METHOD", "POST", "DOCUMENT_URI", "/v1/x",
                       "QUERY_STRING", "", "CONTENT_TYPE", "application/json",
                       "CONTENT_LENGTH", n_ok),
                   ok_body, sizeof(ok_body) - 1);
    CHECK(res.status == 201, "an empty QUERY_STRING is fine on a POST route (%d)",
          res.status);

    /* Malformed query on a GET route. */
    res = run(ENV("REQUEST_METHOD", "GET", "DOCUMENT_URI", "/v1/q", "QUERY_STRING",
                  "a=%zz"));
    check_error(&res, 400, "Bad Request", "INVALID_PARAMETER", "a", "query a=%zz");
    res = run(ENV("REQUEST_METHOD", "GET", "DOCUMENT_URI", "/v1/q", "QUERY_STRING",
                  "%zz=1"));
    check_error(&res, 400, "Bad Request", "INVALID_PARAMETER", NULL, "query %zz=1");

    /* PATCH with a capture and a JSON body. */
    res = run_body(ENV("REQUEST_METHOD", "PATCH", "DOCUMENT_URI", "/v1/x/77",
                       "CONTENT_TYPE", "application/json", "CONTENT_LENGTH", n_ok),
                   ok_body, sizeof(ok_body) - 1);
    CHECK(res.status == 200 && strcmp(seen.ran, "patch") == 0 &&
              strcmp(seen.params[0], "77") == 0 && seen.json_type == JSON_OBJECT,
          "PATCH /v1/x/77 gets its capture and the parsed body");

    /* A GET route never reads a body even if one is announced. */
    res = run_body(ENV("REQUEST_METHOD", "GET", "DOCUMENT_URI", "/v1/x",
                       "CONTENT_TYPE", "application/json", "CONTENT_LENGTH", "2"),
                   "{}", 2);
    CHECK(res.status == 200 && res.reads == 0 && seen.json_type == -1,
          "GET route: body ignored, r->json NULL");
}

/* ---- request ids ---------------------------------------------------------- */

static void
test_request_id(void)
{
    static const char *const echo[] = {
        "abc-123", "A.b_C-9", "x",
        "0123456789012345678901234567890123456789012345678901234567890123", /* 64 */
    };
    for (size_t i = 0; i < sizeof(echo) / sizeof(echo[0]); i++) {
        struct res res = run(ENV("REQUEST_METHOD", "GET", "DOCUMENT_URI", "/nope",
                                 "HTTP_X_REQUEST_ID", echo[i]));
        CHECK_STR(header(&res, "X-Request-Id"), echo[i], "X-Request-Id %s is echoed",
                  echo[i]);
        CHECK_STR(jstr(&res, "requestId"), echo[i], "requestId %s in the error body",
                  echo[i]);
    }
    static const char *const fresh[] = {
        "", "has space", "a/b", "quote\"d", "new\nline", "\xc3\xa9t\xc3\xa9",
        "01234567890123456789012345678901234567890123456789012345678901234", /* 65 */
    };
    for (size_t i = 0; i < sizeof(fresh) / sizeof(fresh[0]); i++) {
        struct res res = run(ENV("REQUEST_METHOD", "GET", "DOCUMENT_URI", "/nope",
                                 "HTTP_X_REQUEST_ID", fresh[i]));
        const char *rid = header(&res, "X-Request-Id");
        CHECK(is_hex_id(rid), "unsafe X-Request-Id #%zu replaced by a fresh id (%s)",
              i, rid ? rid : "(none)");
        CHECK_STR(jstr(&res, "requestId"), rid, "fresh id #%zu also in the body", i);
    }
    struct res  r1 = run(ENV("REQUEST_METHOD", "GET", "DOCUMENT_URI", "/healthz"));
    const char *id1 = header(&r1, "X-Request-Id");
    char        keep[80];
    snprintf(keep, sizeof(keep), "%s", id1 ? id1 : "");
    struct res  r2 = run(ENV("REQUEST_METHOD", "GET", "DOCUMENT_URI", "/healthz"));
    const char *id2 = header(&r2, "X-Request-Id");
    CHECK(is_hex_id(keep) && is_hex_id(id2), "fresh ids are 32 lowercase hex digits");
    CHECK(id2 != NULL && strcmp(keep, id2) != 0, "two fresh ids differ (%s, %s)", keep,
          id2 ? id2 : "");
}

/* ---- handler errors ------------------------------------------------------- */

static void
test_handler_errors(void)
{
    struct res res = run(ENV("REQUEST_METHOD", "GET", "DOCUMENT_URI", "/v1/fail"));
    /* check_error expects no handler to have run; here one did. */
    CHECK_STR(seen.ran, "fail", "the failing handler ran");
    seen.ran[0] = '\0';
    check_error(&res, 404, "Not Found", "NOT_FOUND", "widgetId", "req_fail in a handler");

    res = run(ENV("REQUEST_METHOD", "GET", "DOCUMENT_URI", "/v1/boom"));
    seen.ran[0] = '\0';
    check_error(&res, 500, "Internal Server Error", "INTERNAL_ERROR", NULL,
                "500 from a handler");
    CHECK(strstr(res.body, "secret") == NULL && strstr(res.body, "SELECT") == NULL,
          "5xx bodies never carry the detail message: %s", res.body);
    CHECK_STR(jstr(&res, "message"), "Internal error", "5xx message is the catalogue's");

    /* The sink failing must not crash the pipeline. */
    out_fail = 1;
    res = run(ENV("REQUEST_METHOD", "GET", "DOCUMENT_URI", "/v1/x/1"));
    out_fail = 0;
    CHECK(res.ret == 200 && out_len == 0, "a failing sink is survived (ret %d)", res.ret);
}

/* ---- auth ------------------------------------------------------------------ */

static char *
mint(const char *scope)
{
    int64_t owners[] = {1};
    char    err[256] = "";
    char   *tok = auth_issue("router-tester", scope, owners, 1, 600, time(NULL), err,
                             sizeof(err));
    CHECK(tok != NULL, "auth_issue(%s): %s", scope, err);
    return tok;
}

static void
test_auth(void)
{
    struct auth_settings s = {"HS256", SECRET, NULL, NULL, NULL, NULL, NULL, scopes, 2};
    char                 err[256] = "";
    CHECK(auth_init(&s, err, sizeof(err)) == 0, "auth_init: %s", err);

    struct res res = run(ENV("REQUEST_METHOD", "GET", "DOCUMENT_URI", "/v1/secure"));
    check_error(&res, 401, "Unauthorized", "UNAUTHENTICATED", NULL, "no token");
    CHECK_STR(header(&res, "WWW-Authenticate"), "Bearer", "401 carries WWW-Authenticate");

    res = run(ENV("REQUEST_METHOD", "GET", "DOCUMENT_URI", "/v1/secure",
                  "HTTP_AUTHORIZATION", "Bearer not.a.token"));
    check_error(&res, 401, "Unauthorized", "UNAUTHENTICATED", NULL, "garbage token");
    const char *wa = header(&res, "WWW-Authenticate");
    CHECK(wa != NULL && strstr(wa, "invalid_token") != NULL,
          "bad token: WWW-Authenticate says invalid_token (%s)", wa ? wa : "(none)");

    char *rd = mint("router:read payments:write"), *wr = mint("router:read router:write");
    char  hdr_rd[2048], hdr_wr[2048];
    snprintf(hdr_rd, sizeof(hdr_rd), "Bearer %s", rd ? rd : "");
    snprintf(hdr_wr, sizeof(hdr_wr), "Bearer %s", wr ? wr : "");

    res = run(ENV("REQUEST_METHOD", "GET", "DOCUMENT_URI", "/v1/secure",
                  "HTTP_AUTHORIZATION", hdr_rd));
    CHECK(res.status == 200 && strcmp(seen.ran, "secure") == 0,
          "read token on a read route runs the handler (%d)", res.status);
    CHECK_STR(seen.sub, "router-tester", "handler sees the principal");

    res = run_body(ENV("REQUEST_METHOD", "POST", "DOCUMENT_URI", "/v1/secure",
                       "HTTP_AUTHORIZATION", hdr_rd, "CONTENT_TYPE", "application/json",
                       "CONTENT_LENGTH", "2"),
                   "{}", 2);
    check_error(&res, 403, "Forbidden", "INSUFFICIENT_SCOPE", NULL, "read token on write");
    CHECK(strstr(res.body, "token lacks scope router:write") != NULL,
          "403 names the configured scope word (%s)", res.body);
    CHECK(res.reads == 0, "403 before the body is read (%d)", res.reads);

    res = run_body(ENV("REQUEST_METHOD", "POST", "DOCUMENT_URI", "/v1/secure",
                       "HTTP_AUTHORIZATION", hdr_wr, "CONTENT_TYPE", "application/json",
                       "CONTENT_LENGTH", "2"),
                   "{}", 2);
    CHECK(res.status == 200 && strcmp(seen.ran, "secure_w") == 0,
          "write token on the write route (%d)", res.status);

    /* Auth comes before the body checks. */
    res = run_body(ENV("REQUEST_METHOD", "POST", "DOCUMENT_URI", "/v1/secure",
                       "CONTENT_TYPE", "text/plain", "CONTENT_LENGTH", "70000"),
                   "{}", 2);
    CHECK(res.status == 401 && res.reads == 0,
          "no token + oversized body: 401 first, nothing read (%d)", res.status);
    free(rd);
    free(wr);
}

int
main(void)
{
    log_open(NULL, LOG_ERROR); /* keep access-log lines out of the output */
    A = arena_create(16 * 1024);
    JA = arena_create(16 * 1024);
    router_init(table, NTABLE, NULL);

    test_table();
    test_match();
    test_not_found();
    test_method_not_allowed();
    test_body();
    test_request_id();
    test_handler_errors();
    test_head();
    test_accept();
    test_auth();

    arena_destroy(A);
    arena_destroy(JA);
    auth_shutdown();
    return TEST_DONE();
}
