/*
 * struct req: one HTTP request and its response, as handlers see it.
 * Everything reachable from a req lives in r->arena and dies at the end of
 * the request. Handlers read input through the accessors here and produce
 * output through resp_* (resp.c); they never touch FastCGI.
 */
#ifndef PAY_APP_REQ_H
#define PAY_APP_REQ_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "arena.h"
#include "auth.h"
#include "db.h"
#include "errors.h"
#include "json.h"
#include "query.h"

enum pay_method {
    PAY_M_GET = 1, PAY_M_POST = 2, PAY_M_PATCH = 4, PAY_M_PUT = 8,
    PAY_M_DELETE = 16, PAY_M_HEAD = 32, PAY_M_OPTIONS = 64, PAY_M_OTHER = 128
};

#define REQ_MAX_PARAMS 4
#define REQ_BODY_MAX   (64 * 1024)
/* Providers' webhooks (R_BIG_BODY): a GoCardless batch of events or a
 * Stripe event with its full objects can exceed 64 KiB. The same 1 MiB is
 * client_max_body_size of nginx's /webhooks/ location and LimitRequestBody
 * of Apache's. */
#define REQ_BIG_BODY_MAX (1024 * 1024)

/* Where response bytes go (FastCGI stream, or a buffer in tests). */
struct sink {
    int (*write)(void *ctx, const char *p, size_t n); /* 0 or -1 */
    void *ctx;
};

/* How the request's raw input is obtained (fcgi.c, or tests). */
struct source {
    const char *(*env)(void *ctx, const char *name);   /* CGI param or NULL */
    long (*read)(void *ctx, char *buf, size_t n);       /* bytes read, <n on EOF */
    void *ctx;
};

struct resp_header {
    struct resp_header *next;
    const char         *name;
    const char         *value;
};

struct route;

struct req {
    struct arena *arena;
    struct source src;
    struct sink   out;

    /* Request line and the headers the pipeline uses. */
    int         method;        /* PAY_M_GET for a HEAD request (see head) */
    int         head;          /* HEAD: served by the GET route, headers only
                                  (RFC 9110 9.3.2) */
    const char *method_name;   /* as received: "HEAD" stays "HEAD" */
    const char *path;          /* DOCUMENT_URI: normalised, no query */
    const char *query_string;
    const char *content_type;
    const char *authorization;
    const char *idempotency_key;
    char        request_id[72];
    const char *call_key;      /* provider_call_key's random basis, made once
                                  per request (kept over handler re-runs) */
    struct timespec started;   /* CLOCK_MONOTONIC, set by router_dispatch */

    /* Filled by the pipeline before the handler runs. */
    const struct route *route;
    int                 route_index;
    const char         *params[REQ_MAX_PARAMS];
    size_t              nparams;
    struct query        query;
    struct principal    principal;
    const char         *body;
    size_t              body_len;
    struct json_value  *json;

    /* Response. */
    int                 status;
    const char         *resp_type;      /* Content-Type */
    struct resp_header *resp_headers;
    struct abuf         resp_body;      /* buffered body */
    int                 streaming;      /* body goes straight to out */
    int                 headers_sent;
    int                 out_failed;

    /* Recorded catalogue error (req_fail). */
    int           failed;
    enum pay_err  err;
    const char   *err_field;
    const char   *err_message;

    /* The request's database unit of work (db/db.h); the router only
     * starts it, the layers above use it. */
    struct db_uow db;
    /* State owned by the layers above the framework (idempotency claim). */
    void *idem;
    int   commit_failed; /* the run's transaction did not commit */
};

/* CGI parameter (e.g. "HTTP_ORIGIN", "REMOTE_ADDR") or NULL. */
const char *req_env(struct req *r, const char *name);
/* Microseconds since router_dispatch started this request. */
long req_elapsed_us(const struct req *r);

/* Records catalogue error e (optionally naming a field) and returns its
 * HTTP status, for `return req_fail(...)`. */
int req_fail(struct req *r, enum pay_err e, const char *field);
/* Same with a specific human message (printf-style). */
int req_failf(struct req *r, enum pay_err e, const char *field,
              const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Path capture number i (in pattern order). */
const char *req_param(struct req *r, size_t i);
/* Path capture i as a positive id: 0, or records 400 and returns it. */
int req_param_id_or_fail(struct req *r, size_t i, const char *name,
                         int64_t *out);

/* Query parameter (marks it as known). */
const char *req_query(struct req *r, const char *name);
/* Required positive id query parameter: 0, or records 400/returns it. */
int req_query_id_or_fail(struct req *r, const char *name, int required,
                         int64_t *out, int *present);
/* 0 if every query parameter was used, else records 400 naming one. */
int req_query_all_known_or_fail(struct req *r);

/* Response: adds a header (copied into the arena). */
void resp_header(struct req *r, const char *name, const char *value);
/* Starts a JSON response with this status and returns a generator whose
 * output goes to the response body, buffered and sent with a
 * Content-Length (single objects, POST answers). */
struct json_gen *resp_json(struct req *r, int status);
/* The same for long GET answers (lists): the body is streamed to the
 * client as it is generated, the headers go first, so everything
 * header-related must be set before calling this. Not for POSTs, whose
 * answers must stay buffered until the transaction commits. */
struct json_gen *resp_json_stream(struct req *r, int status);
/* A complete non-JSON body (HTML pages, openapi, metrics). */
int resp_body(struct req *r, int status, const char *type, const char *body,
              size_t len);
/* Renders the recorded error as the response (error JSON). */
void resp_error(struct req *r);
/* Sends headers (if not sent) and any buffered body. 0 or -1. */
int resp_finish(struct req *r);
/* Discards an unsent response (headers and body) to start again. */
void resp_discard(struct req *r);

#endif
