/*
 * Outgoing HTTPS to the payment providers' APIs (libcurl, used only by
 * http.c). TLS verification is always on: ca_file replaces the system CA
 * store (tests use a CA they make themselves), it never turns checks off.
 * Each process keeps one connection cache, so a collector reuses its
 * connections between calls. Header values (which carry the API key) and
 * bodies are never logged; the provider's request id is.
 */
#ifndef PAY_APP_HTTP_H
#define PAY_APP_HTTP_H

#include <stddef.h>

#include "arena.h"

struct http_header {
    const char *name;
    const char *value;
};

struct http_call {
    /* in */
    const char *method;                  /* "GET", "POST", "DELETE" */
    const char *url;                     /* https:// (http:// only to loopback) */
    const struct http_header *headers;
    size_t      nheaders;
    const char *body;                    /* NULL: none */
    size_t      body_len;
    const char *ca_file;                 /* NULL: the system CAs */
    long        connect_timeout_ms;      /* 0: 5000 */
    long        timeout_ms;              /* whole call; 0: 30000 */
    const char *request_id_header;       /* e.g. "X-Request-Id", "Request-Id" */
    /* out */
    long        status;                  /* HTTP status; 0 when no answer came */
    char       *resp;                    /* answer body (arena), NUL-terminated */
    size_t      resp_len;
    long        retry_after_ms;          /* Retry-After (seconds or a date; for a 429
                                          * without it RateLimit-Reset), 0: none */
    const char *request_id;              /* value of request_id_header, or NULL */
    const char *error;                   /* status 0: what failed (no secrets) */
};

/* Makes the call; the answer lives in `a`. Returns 0 when an HTTP answer
 * came (whatever its status), -1 when none did (DNS, connect, TLS,
 * timeout, reset): c->error says which. Answers over 4 MiB are cut off and
 * count as no answer. */
int http_do(struct arena *a, struct http_call *c);

/* PROVIDER_RETRY / PROVIDER_REFUSED style class of a finished call:
 * 0 for 2xx; 1 (retry later) for no answer, 408, 409 with a conflict the
 * caller resolves itself excepted, 425, 429, 5xx; 2 (permanent) for the
 * other 4xx. */
int http_class(const struct http_call *c);

/* A Retry-After value (delta seconds, or an HTTP-date compared with `now`,
 * Unix seconds) in milliseconds, at most a day; 0 when absent, malformed
 * or already past. */
long http_retry_after_ms(const char *value, long long now);

#endif
