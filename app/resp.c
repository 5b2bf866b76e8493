/*
 * Request accessors and response output. A response is either buffered
 * (r->resp_body, sent with Content-Length by resp_finish) or, for GET
 * JSON responses, streamed: the headers go out before the first body byte
 * and the generator writes straight to the sink, so a 1000-row page is
 * never held in memory. Only resp_error() renders error JSON.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "money.h"
#include "router.h"
#include "text.h"

const char *
req_env(struct req *r, const char *name)
{
    return r->src.env ? r->src.env(r->src.ctx, name) : NULL;
}

int
req_failf(struct req *r, enum pay_err e, const char *field, const char *fmt, ...)
{
    r->failed = 1;
    r->err = e;
    r->err_field = field ? arena_strdup(r->arena, field) : NULL;
    r->err_message = NULL;
    if (fmt != NULL) {
        va_list ap;
        va_start(ap, fmt);
        r->err_message = arena_vprintf(r->arena, fmt, ap);
        va_end(ap);
    }
    return errors_get(e)->status;
}

int
req_fail(struct req *r, enum pay_err e, const char *field)
{
    return req_failf(r, e, field, NULL);
}

const char *
req_param(struct req *r, size_t i)
{
    return i < r->nparams ? r->params[i] : NULL;
}

int
req_param_id_or_fail(struct req *r, size_t i, const char *name, int64_t *out)
{
    const char *s = req_param(r, i);
    if (s == NULL || parse_id(s, out) != 0)
        return req_failf(r, PAY_E_INVALID_PARAMETER, name, "%s must be a positive integer%s",
                         name, int_text_problem(s) == INT_LEADING_ZERO
                                   ? " written without leading zeros" : "");
    return 0;
}

const char *
req_query(struct req *r, const char *name)
{
    return query_get(&r->query, name);
}

int
req_query_id_or_fail(struct req *r, const char *name, int required,
                     int64_t *out, int *present)
{
    const char *s = req_query(r, name);
    if (present != NULL)
        *present = s != NULL;
    if (s == NULL) {
        if (required)
            return req_failf(r, PAY_E_MISSING_PARAMETER, name, "%s is required",
                             name);
        return 0;
    }
    if (parse_id(s, out) != 0)
        return req_failf(r, PAY_E_INVALID_PARAMETER, name, "%s must be a positive integer%s",
                         name, int_text_problem(s) == INT_LEADING_ZERO
                                   ? " written without leading zeros" : "");
    return 0;
}

int
req_query_all_known_or_fail(struct req *r)
{
    const char *name = query_first_unused(&r->query);
    if (name != NULL)
        return req_failf(r, PAY_E_UNKNOWN_PARAMETER, name,
                         "unknown query parameter '%s'",
                         text_echo(r->arena, name, 64));
    return 0;
}

void
resp_header(struct req *r, const char *name, const char *value)
{
    struct resp_header *h = arena_alloc(r->arena, sizeof(*h));
    h->name = arena_strdup(r->arena, name);
    h->value = arena_strdup(r->arena, value);
    h->next = r->resp_headers;
    r->resp_headers = h;
}

static int
out_write(struct req *r, const char *p, size_t n)
{
    if (r->out_failed || n == 0)
        return r->out_failed ? -1 : 0;
    if (r->out.write(r->out.ctx, p, n) != 0) {
        r->out_failed = 1;
        return -1;
    }
    return 0;
}

static void
header_line(struct abuf *h, const char *name, const char *value)
{
    abuf_adds(h, name);
    abuf_adds(h, ": ");
    abuf_adds(h, value);
    abuf_adds(h, "\r\n");
}

/* Writes the CGI response head. content_length < 0: not sent. */
static int
send_headers(struct req *r, long content_length)
{
    struct abuf h;
    char        num[MONEY_FMT_MAX];
    abuf_init(&h, r->arena);
    money_format(r->status, 0, num, sizeof(num));
    abuf_adds(&h, "Status: ");
    abuf_adds(&h, num);
    abuf_adds(&h, " ");
    abuf_adds(&h, errors_reason(r->status));
    abuf_adds(&h, "\r\n");
    if (r->resp_type != NULL)
        header_line(&h, "Content-Type", r->resp_type);
    if (content_length >= 0 && r->status != 304) {
        money_format(content_length, 0, num, sizeof(num));
        header_line(&h, "Content-Length", num);
    }
    header_line(&h, "X-Request-Id", r->request_id);
    abuf_adds(&h, "X-Content-Type-Options: nosniff\r\n");
    int cache_set = 0;
    for (struct resp_header *x = r->resp_headers; x != NULL; x = x->next) {
        header_line(&h, x->name, x->value);
        cache_set |= strcasecmp(x->name, "Cache-Control") == 0;
    }
    if (!cache_set) /* payment data must not sit in shared caches */
        abuf_adds(&h, "Cache-Control: no-store\r\n");
    abuf_adds(&h, "\r\n");
    r->headers_sent = 1;
    return out_write(r, h.p, h.len);
}

static void
gen_print(void *ctx, const char *s, size_t n)
{
    struct req *r = ctx;
    if (r->streaming)
        out_write(r, s, n);
    else
        abuf_add(&r->resp_body, s, n);
}

static struct json_gen *json_begin(struct req *r, int status, int stream)
{
    r->status = status;
    r->resp_type = "application/json; charset=utf-8";
    r->resp_body.len = 0;
    /* HEAD is buffered: its Content-Length is then the one GET would send */
    r->streaming = stream && r->method == PAY_M_GET && !r->head && r->out.write != NULL;
    if (r->streaming)
        send_headers(r, -1);
    return json_gen_new(r->arena, gen_print, r);
}

struct json_gen *resp_json(struct req *r, int status)
{
    return json_begin(r, status, 0);
}

struct json_gen *resp_json_stream(struct req *r, int status)
{
    return json_begin(r, status, 1);
}

int
resp_body(struct req *r, int status, const char *type, const char *body,
          size_t len)
{
    r->status = status;
    r->resp_type = type;
    r->streaming = 0;
    r->resp_body.len = 0;
    abuf_add(&r->resp_body, body, len);
    return status;
}

void
resp_discard(struct req *r)
{
    if (r->headers_sent)
        return;
    r->resp_headers = NULL;
    r->resp_body.len = 0;
    r->resp_type = NULL;
    r->status = 0;
}

void
resp_error(struct req *r)
{
    const struct pay_error *e = errors_get(r->err);
    errors_counted(r->err);
    /* Keep protocol headers (Allow, WWW-Authenticate), drop the rest. */
    struct resp_header *keep = NULL;
    for (struct resp_header *h = r->resp_headers, *next; h != NULL; h = next) {
        next = h->next;
        if (strcmp(h->name, "Allow") == 0 ||
            strcmp(h->name, "WWW-Authenticate") == 0) {
            h->next = keep;
            keep = h;
        }
    }
    r->resp_headers = keep;
    r->streaming = 0;
    r->status = e->status;
    r->resp_type = "application/json; charset=utf-8";
    r->resp_body.len = 0;
    /* 5xx never carry details; those are logged. */
    const char *msg = (e->status >= 500 || r->err_message == NULL)
                          ? e->message : r->err_message;
    if (e->status >= 500 && r->err_message != NULL)
        log_error("error", "%s: %s", e->code, r->err_message);
    struct json_gen *g = json_gen_new(r->arena, gen_print, r);
    json_map_open(g);
    json_key(g, "error");
    json_str(g, errors_reason(e->status));
    json_key(g, "message");
    json_str(g, msg);
    json_key(g, "status");
    json_i64(g, e->status);
    json_key(g, "code");
    json_str(g, e->code);
    if (r->err_field != NULL) {
        json_key(g, "field");
        json_str(g, r->err_field);
    }
    json_key(g, "requestId");
    json_str(g, r->request_id);
    json_map_close(g);
}

int
resp_finish(struct req *r)
{
    if (r->headers_sent)
        return r->out_failed ? -1 : 0;
    if (send_headers(r, (long)r->resp_body.len) != 0)
        return -1;
    if (r->head || r->status == 304)
        return 0;
    return out_write(r, r->resp_body.p, r->resp_body.len);
}
