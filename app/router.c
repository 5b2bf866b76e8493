/*
 * Route table compile/match and the request pipeline (one function, one
 * exit): request id → route (404/405) → auth + scope → query parse →
 * body checks (415/413 before reading, then read + parse) → hooks.before
 * (idempotency) → handler (re-run on deadlock) → hooks.after (commit) →
 * error rendering → flush → access log. Guards are route flags, not code
 * in handlers.
 */
#include "router.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "log.h"
#include "metrics.h"
#include "text.h"

#define MAX_SEGS 8

struct compiled {
    const struct route *rt;
    size_t              nsegs;
    const char         *segs[MAX_SEGS]; /* literal, or NULL for a capture */
};

static struct compiled     *routes;
static size_t               nroutes;
static struct router_hooks  hooks;
static int                  no_route = -1;
volatile int               *router_current_route = &no_route;

static const struct {
    int         m;
    const char *name;
} methods[] = {
    {PAY_M_GET, "GET"},       {PAY_M_POST, "POST"},   {PAY_M_PATCH, "PATCH"},
    {PAY_M_PUT, "PUT"},       {PAY_M_DELETE, "DELETE"}, {PAY_M_HEAD, "HEAD"},
    {PAY_M_OPTIONS, "OPTIONS"},
};

const char *
router_method_name(int m)
{
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (methods[i].m == m)
            return methods[i].name;
    return "?";
}

/* Splits a path into segments in place; -1 when too many / malformed. */
static int
split(char *p, const char **segs, size_t *n)
{
    *n = 0;
    if (*p != '/')
        return -1;
    if (p[1] == '\0')
        return 0;
    while (*p == '/') {
        *p++ = '\0';
        if (*n == MAX_SEGS)
            return -1;
        segs[(*n)++] = p;
        p += strcspn(p, "/");
    }
    return 0;
}

void
router_init(const struct route *table, size_t n, const struct router_hooks *h)
{
    routes = calloc(n, sizeof(*routes));
    if (routes == NULL)
        fatal("out of memory");
    nroutes = n;
    if (h != NULL)
        hooks = *h;
    for (size_t i = 0; i < n; i++) {
        const struct route *rt = &table[i];
        struct compiled    *c = &routes[i];
        c->rt = rt;
        if (rt->handler == NULL || rt->pattern == NULL)
            fatal("route %zu: missing handler or pattern", i);
        if (strcmp(router_method_name(rt->method), "?") == 0)
            fatal("route %s: bad method", rt->pattern);
        if ((rt->flags & (R_JSON | R_JSON_PATCH | R_FORM | R_RAW_JSON)) && rt->method == PAY_M_GET)
            fatal("route %s: a GET route cannot take a body", rt->pattern);
        if ((rt->flags & R_AUTH) && rt->scope == 0)
            fatal("route %s: R_AUTH without a scope", rt->pattern);
        char *copy = strdup(rt->pattern);
        if (copy == NULL || split(copy, c->segs, &c->nsegs) != 0)
            fatal("route %s: bad pattern", rt->pattern);
        size_t captures = 0;
        for (size_t s = 0; s < c->nsegs; s++) {
            if (c->segs[s][0] == '\0')
                fatal("route %s: empty segment", rt->pattern);
            if (c->segs[s][0] == ':') {
                c->segs[s] = NULL;
                captures++;
            }
        }
        if (captures > REQ_MAX_PARAMS)
            fatal("route %s: too many captures", rt->pattern);
        for (size_t j = 0; j < i; j++)
            if (table[j].method == rt->method &&
                strcmp(table[j].pattern, rt->pattern) == 0)
                fatal("route %s %s: duplicate", router_method_name(rt->method),
                      rt->pattern);
    }
}

size_t
router_count(void)
{
    return nroutes;
}

const struct route *
router_get(size_t i)
{
    return i < nroutes ? routes[i].rt : NULL;
}

int
router_match(struct req *r, const char **allow)
{
    const char *segs[MAX_SEGS];
    size_t      n;
    char       *path = arena_strdup(r->arena, r->path ? r->path : "");
    struct abuf methods_ok;

    if (split(path, segs, &n) != 0)
        return -1;
    abuf_init(&methods_ok, r->arena);
    for (size_t i = 0; i < nroutes; i++) {
        struct compiled *c = &routes[i];
        if (c->nsegs != n)
            continue;
        size_t np = 0, s;
        for (s = 0; s < n; s++) {
            if (c->segs[s] == NULL) {
                if (segs[s][0] == '\0')
                    break;
                r->params[np++] = segs[s];
            } else if (strcmp(c->segs[s], segs[s]) != 0) {
                break;
            }
        }
        if (s < n)
            continue;
        if (c->rt->method == r->method) {
            r->nparams = np;
            return (int)i;
        }
        if (methods_ok.len)
            abuf_adds(&methods_ok, ", ");
        abuf_adds(&methods_ok, router_method_name(c->rt->method));
    }
    if (methods_ok.len == 0)
        return -1;
    *allow = abuf_str(&methods_ok);
    return -2;
}

void
req_init(struct req *r, struct arena *a)
{
    memset(r, 0, sizeof(*r));
    r->arena = a;
    r->route_index = -1;
    abuf_init(&r->resp_body, a);
}

static int
parse_method(const char *m)
{
    if (m == NULL)
        return PAY_M_OTHER;
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (strcmp(methods[i].name, m) == 0)
            return methods[i].m;
    return PAY_M_OTHER;
}

/* Echo a sane incoming X-Request-Id, else make a fresh random one. */
static void
set_request_id(struct req *r)
{
    const char *in = req_env(r, "HTTP_X_REQUEST_ID");
    if (in != NULL) {
        size_t n = strlen(in);
        if (n >= 1 && n <= 64 &&
            strspn(in, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                       "0123456789._-") == n) {
            memcpy(r->request_id, in, n + 1);
            return;
        }
    }
    unsigned char rnd[16];
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
        memset(rnd, 0, sizeof(rnd));
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < sizeof(rnd); i++) {
        r->request_id[2 * i] = hex[rnd[i] >> 4];
        r->request_id[2 * i + 1] = hex[rnd[i] & 15];
    }
    r->request_id[2 * sizeof(rnd)] = '\0';
}

/* "application/json" or "application/json; charset=utf-8" (any case). */
static int
content_type_is(const char *ct, const char *want)
{
    if (ct == NULL)
        return 0;
    size_t n = strlen(want);
    if (strncasecmp(ct, want, n) != 0)
        return 0;
    ct += n;
    while (*ct == ' ')
        ct++;
    if (*ct == '\0')
        return 1;
    if (*ct != ';')
        return 0;
    ct++;
    while (*ct == ' ')
        ct++;
    return strcasecmp(ct, "charset=utf-8") == 0 ||
           strcasecmp(ct, "charset=\"utf-8\"") == 0;
}

static int
check_auth(struct req *r)
{
    const char  *why = NULL;
    enum auth_rc rc = auth_verify_bearer(r->arena, r->authorization, time(NULL),
                                         &r->principal, &why);
    switch (rc) {
    case AUTH_OK:
        break;
    case AUTH_MISSING:
        resp_header(r, "WWW-Authenticate", "Bearer");
        return req_failf(r, PAY_E_UNAUTHENTICATED, NULL,
                         "Authorization: Bearer token required");
    case AUTH_NO_TENANCY:
        return req_failf(r, PAY_E_FORBIDDEN, NULL,
                         "token has no contractOwnerIds claim");
    default:
        resp_header(r, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
        return req_failf(r, PAY_E_UNAUTHENTICATED, NULL, "invalid token: %s",
                         why ? why : "rejected");
    }
    unsigned missing = r->route->scope & ~r->principal.scopes;
    if (missing != 0) {
        const char *name = auth_scope_name(missing);
        resp_header(r, "WWW-Authenticate", "Bearer error=\"insufficient_scope\"");
        return req_failf(r, PAY_E_INSUFFICIENT_SCOPE, NULL, "token lacks scope %s",
                         name ? name : "for this route");
    }
    return 0;
}

/* 413 naming the route's limit (the catalogue's message is the 64 KiB one). */
static int
too_large(struct req *r, size_t max)
{
    if (max == REQ_BODY_MAX)
        return req_fail(r, PAY_E_TOO_LARGE, NULL);
    return req_failf(r, PAY_E_TOO_LARGE, NULL, "Request body exceeds %zu MiB", max >> 20);
}

/* Content-Type and length checks happen before a byte is read. */
static int
read_body(struct req *r)
{
    unsigned    f = r->route->flags;
    const char *want = (f & (R_JSON | R_RAW_JSON)) ? "application/json"
                       : (f & R_JSON_PATCH) ? "application/json-patch+json"
                                            : "application/x-www-form-urlencoded";
    const char *cl = req_env(r, "CONTENT_LENGTH");
    size_t      len = 0;

    if (cl != NULL && *cl != '\0') {
        if (strspn(cl, "0123456789") != strlen(cl) || strlen(cl) > 9)
            return req_failf(r, PAY_E_BAD_REQUEST, NULL, "bad Content-Length");
        len = strtoul(cl, NULL, 10);
    }
    size_t max = (f & R_BIG_BODY) ? REQ_BIG_BODY_MAX : REQ_BODY_MAX;
    if (len > max)
        return too_large(r, max);
    if (!content_type_is(r->content_type, want))
        return req_failf(r, PAY_E_MEDIA_TYPE, NULL, "Content-Type must be %s",
                         want);
    char *buf;
    long  got;
    if (cl == NULL || *cl == '\0') {
        /* No CONTENT_LENGTH: Apache's mod_proxy_fcgi passes a chunked body
         * that way. FastCGI ends the stdin stream explicitly, so read to its
         * end, one byte past the limit to tell a body that is too large. */
        buf = arena_alloc(r->arena, max + 2);
        got = r->src.read(r->src.ctx, buf, max + 1);
        if (got > (long)max)
            return too_large(r, max);
        if (got < 0)
            return req_failf(r, PAY_E_BAD_REQUEST, NULL, "request body truncated");
        len = (size_t)got;
    } else {
        buf = arena_alloc(r->arena, len + 1);
        got = len ? r->src.read(r->src.ctx, buf, len) : 0;
        if (got < 0 || (size_t)got != len)
            return req_failf(r, PAY_E_BAD_REQUEST, NULL, "request body truncated");
    }
    buf[len] = '\0';
    r->body = buf;
    r->body_len = len;
    if (f & (R_FORM | R_RAW_JSON))
        return 0;
    if (len == 0)
        return req_failf(r, PAY_E_INVALID_JSON, NULL, "a JSON body is required");
    const char *err = NULL;
    if (json_parse(r->arena, buf, len, &r->json, &err) != 0)
        return req_failf(r, PAY_E_INVALID_JSON, NULL, "%s", err);
    return 0;
}

/*
 * RFC 9110 12.5.1: the weight Accept gives application/json is the q of its
 * most specific matching range (application/json, else the application
 * wildcard, else the any-type wildcard); q=0 excludes it. An absent, empty
 * or entirely unparsable header accepts anything. Returns 1 when a JSON
 * response is acceptable.
 */
static int
accepts_json(const char *accept)
{
    int best = -1, q_best = 1000, parsed = 0; /* specificity 0..2, q in 1/1000 */

    for (const char *p = accept; p != NULL && *p != '\0';) {
        size_t      n = strcspn(p, ","), tn;
        const char *e = p + n, *t = p, *semi;
        while (t < e && (*t == ' ' || *t == '\t'))
            t++;
        semi = memchr(t, ';', (size_t)(e - t));
        tn = (size_t)((semi ? semi : e) - t);
        while (tn > 0 && (t[tn - 1] == ' ' || t[tn - 1] == '\t'))
            tn--;
        int spec = (tn == 16 && strncasecmp(t, "application/json", 16) == 0) ? 2
                 : (tn == 13 && strncasecmp(t, "application/*", 13) == 0)    ? 1
                 : (tn == 3 && strncmp(t, "*/*", 3) == 0)                     ? 0 : -1;
        parsed |= memchr(t, '/', tn) != NULL;
        if (spec > best) {
            int q = 1000;
            for (const char *a = semi; a != NULL && a < e; a = memchr(a + 1, ';', (size_t)(e - a - 1))) {
                const char *v = a + 1;
                while (v < e && *v == ' ')
                    v++;
                if (e - v >= 2 && (v[0] == 'q' || v[0] == 'Q') && v[1] == '=') {
                    v += 2;                 /* qvalue: 0[.ddd] or 1[.000] */
                    q = (*v == '1') ? 1000 : 0;
                    if (*v == '0' && v + 1 < e && v[1] == '.')
                        for (int k = 0, m = 100; k < 3 && v + 2 + k < e &&
                             v[2 + k] >= '0' && v[2 + k] <= '9'; k++, m /= 10)
                            q += (v[2 + k] - '0') * m;
                }
            }
            best = spec;
            q_best = q;
        }
        p = *e ? e + 1 : e;
    }
    if (!parsed)
        return 1;
    return best >= 0 && q_best > 0;
}

static int
prepare(struct req *r)
{
    const char *allow = NULL;
    const char *bad = NULL;

    int i = router_match(r, &allow);
    if (i == -1)
        return req_failf(r, PAY_E_NOT_FOUND, NULL, "no such path");
    if (i == -2) {
        resp_header(r, "Allow", allow);
        return req_failf(r, PAY_E_METHOD, NULL, "%s is not allowed here; use %s",
                         text_echo(r->arena, r->method_name, 16), allow);
    }
    r->route_index = i;
    r->route = routes[i].rt;
    *router_current_route = i; /* from here on a crash is blamed on it */
    /* Authentication first: a caller without a valid token learns nothing
     * about what else is wrong with its request. */
    int rc;
    if ((r->route->flags & R_AUTH) && (rc = check_auth(r)) != 0)
        return rc;
    /* The API answers JSON only (the pages answer HTML and /healthz, /metrics
     * text: they are not negotiated). */
    if (strncmp(r->route->pattern, "/v1/", 4) == 0 &&
        !accepts_json(req_env(r, "HTTP_ACCEPT")))
        return req_failf(r, PAY_E_NOT_ACCEPTABLE, NULL,
                         "this API answers application/json, which Accept excludes");
    if (query_parse(r->arena, r->query_string, &r->query, &bad) != 0)
        return req_failf(r, PAY_E_INVALID_PARAMETER, r->query.bad_name, "%s", bad);
    if (r->route->flags & (R_JSON | R_JSON_PATCH | R_FORM | R_RAW_JSON)) {
        /* Body routes take no query parameters. */
        if (r->query.n > 0)
            return req_failf(r, PAY_E_UNKNOWN_PARAMETER, r->query.v[0].name,
                             "unknown query parameter '%s'",
                             text_echo(r->arena, r->query.v[0].name, 64));
        if ((rc = read_body(r)) != 0)
            return rc;
    }
    return 0;
}

long
req_elapsed_us(const struct req *r)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (t1.tv_sec - r->started.tv_sec) * 1000000L +
           (t1.tv_nsec - r->started.tv_nsec) / 1000;
}

int
router_dispatch(struct req *r)
{
    int status;

    clock_gettime(CLOCK_MONOTONIC, &r->started);
    db_uow_init(&r->db, r->arena);
    r->method_name = req_env(r, "REQUEST_METHOD");
    r->method = parse_method(r->method_name);
    if (r->method == PAY_M_HEAD) { /* the GET route answers it, without a body */
        r->head = 1;
        r->method = PAY_M_GET;
    }
    if (r->method_name == NULL)
        r->method_name = "?";
    r->path = req_env(r, "DOCUMENT_URI");
    r->query_string = req_env(r, "QUERY_STRING");
    r->content_type = req_env(r, "CONTENT_TYPE");
    r->authorization = req_env(r, "HTTP_AUTHORIZATION");
    r->idempotency_key = req_env(r, "HTTP_IDEMPOTENCY_KEY");
    set_request_id(r);
    log_set_request_id(r->request_id);

    /* A request sees what the caller wrote before through any host of a
     * cluster (db_causal_reads). Writes too: certification rejects a write
     * of a stale row, but not a refusal or a 404 decided on one (a refund
     * of a payment this node has not applied yet). */
    db_uow_causal(&r->db, 1);
    status = prepare(r);
    if (status == 0) {
        if (hooks.before != NULL && (r->route->flags & R_IDEMPOTENT))
            status = hooks.before(r);
        for (int attempt = 1; status == 0; attempt++) {
            status = r->route->handler(r);
            if (r->headers_sent || hooks.again == NULL || !hooks.again(r, status))
                break;
            log_warn("router", "transaction conflict, running again (%d)", attempt);
            resp_discard(r);
            r->failed = 0;
            status = 0;
        }
        if (hooks.after != NULL)
            status = hooks.after(r, status);
    }
    *router_current_route = -1;
    if (r->failed && !r->headers_sent)
        resp_error(r);
    else if (r->failed)
        log_error("router", "response cut short after streaming began: %s",
                  r->err_message ? r->err_message : errors_get(r->err)->code);
    else if (status >= 100)
        r->status = status;
    if (r->status == 0)
        r->status = 500;
    resp_finish(r);
    long us = req_elapsed_us(r);
    metrics_request(r->route != NULL ? r->route_index : -1, r->status, us);
    log_info("access", "%s %s %d %ldus route=%s", r->method_name,
             r->path ? r->path : "-", r->status, us,
             r->route ? r->route->pattern : "-");
    log_set_request_id(NULL);
    return r->status;
}
