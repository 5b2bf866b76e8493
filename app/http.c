/*
 * Outgoing HTTPS (http.h) on libcurl, the only file that knows libcurl.
 *
 * One easy handle per process, made lazily and kept: libcurl keeps its
 * connection cache (and TLS sessions) in it, so a collector's successive
 * calls to one provider reuse the connection. A handle inherited through
 * fork() belongs to the parent's connections: the child abandons it (never
 * cleans it up, which would close the parent's TLS sessions) and makes its
 * own.
 *
 * What is logged: method, the URL without its query, status, the
 * provider's request id, duration and libcurl's error text. Never a header
 * value or a body.
 */
#include "http.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "log.h"

#define HTTP_MAX_ANSWER (4u * 1024 * 1024)
#define HTTP_MAX_RETRY_AFTER_MS (24L * 3600 * 1000)

static CURL *handle;
static CURL *inherited;
static pid_t handle_pid;
static int   global_done;

static CURL *
get_handle(void)
{
    pid_t me = getpid();
    if (handle != NULL && handle_pid == me) {
        curl_easy_reset(handle); /* options go, the connection cache stays */
        return handle;
    }
    if (handle != NULL)
        inherited = handle; /* the parent's: abandoned on purpose, kept reachable */
    handle = NULL;
    if (!global_done) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            return NULL;
        global_done = 1;
    }
    handle = curl_easy_init();
    handle_pid = me;
    return handle;
}

struct sink {
    struct abuf body;
    int         too_big;
    struct http_call *c;
    struct arena     *a;
    char              rid_name[64];
    size_t            rid_len;
    const char       *retry_after;
    const char       *rate_reset;   /* RateLimit-Reset (GoCardless: an HTTP-date) */
};

static size_t
on_body(char *p, size_t size, size_t n, void *arg)
{
    struct sink *s = arg;
    size_t       len = size * n;
    if (s->body.len + len > HTTP_MAX_ANSWER) {
        s->too_big = 1;
        return 0; /* aborts the transfer */
    }
    abuf_add(&s->body, p, len);
    return len;
}

/* The value of header line p[0..len) if its name is `name`, trimmed, in the arena. */
static const char *
header_value(struct arena *a, const char *p, size_t len, const char *name, size_t name_len)
{
    if (len <= name_len || p[name_len] != ':' || strncasecmp(p, name, name_len) != 0)
        return NULL;
    const char *v = p + name_len + 1, *e = p + len;
    while (v < e && (*v == ' ' || *v == '\t'))
        v++;
    while (e > v && isspace((unsigned char)e[-1]))
        e--;
    return arena_strndup(a, v, (size_t)(e - v));
}

static size_t
on_header(char *p, size_t size, size_t n, void *arg)
{
    struct sink *s = arg;
    size_t       len = size * n;
    if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
        /* A new answer (after a 100 Continue): forget the previous one's. */
        s->retry_after = NULL;
        s->rate_reset = NULL;
        s->c->request_id = NULL;
        return len;
    }
    const char *v;
    if ((v = header_value(s->a, p, len, "Retry-After", 11)) != NULL)
        s->retry_after = v;
    else if ((v = header_value(s->a, p, len, "RateLimit-Reset", 15)) != NULL)
        s->rate_reset = v;
    else if (s->rid_len && (v = header_value(s->a, p, len, s->rid_name, s->rid_len)) != NULL)
        s->c->request_id = strlen(v) <= 200 ? v : arena_strndup(s->a, v, 200);
    return len;
}

long
http_retry_after_ms(const char *v, long long now)
{
    if (v == NULL)
        return 0;
    while (*v == ' ' || *v == '\t')
        v++;
    if (*v == '\0')
        return 0;
    long long ms;
    if (isdigit((unsigned char)*v)) {
        char     *end;
        long long s = strtoll(v, &end, 10);
        while (*end == ' ' || *end == '\t')
            end++;
        if (*end != '\0' || s < 0)
            return 0;
        ms = s > HTTP_MAX_RETRY_AFTER_MS / 1000 ? HTTP_MAX_RETRY_AFTER_MS : s * 1000;
    } else {
        time_t t = curl_getdate(v, NULL);
        if (t == (time_t)-1)
            return 0;
        long long d = (long long)t - now;
        if (d <= 0)
            return 0;
        ms = d > HTTP_MAX_RETRY_AFTER_MS / 1000 ? HTTP_MAX_RETRY_AFTER_MS : d * 1000;
    }
    return (long)ms;
}

/* http:// is allowed to loopback only (test doubles without TLS). */
static int
url_allowed(const char *u)
{
    if (strncmp(u, "https://", 8) == 0)
        return 1;
    static const char *const loop[] = {"http://127.0.0.1:", "http://127.0.0.1/",
                                       "http://localhost:", "http://localhost/",
                                       "http://[::1]:", "http://[::1]/"};
    for (size_t i = 0; i < sizeof(loop) / sizeof(loop[0]); i++)
        if (strncmp(u, loop[i], strlen(loop[i])) == 0)
            return 1;
    return 0;
}

static long
ms_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (long)((t1.tv_sec - t0->tv_sec) * 1000 + (t1.tv_nsec - t0->tv_nsec) / 1000000);
}

int
http_do(struct arena *a, struct http_call *c)
{
    c->status = 0;
    c->resp = NULL;
    c->resp_len = 0;
    c->retry_after_ms = 0;
    c->request_id = NULL;
    c->error = NULL;
    const char *path = c->url ? arena_strndup(a, c->url, strcspn(c->url, "?#")) : "";
    if (c->url == NULL || c->method == NULL || !url_allowed(c->url)) {
        c->error = "refused URL (https:// only)";
        log_error("http", "%s %s: %s", c->method ? c->method : "?", path, c->error);
        return -1;
    }
    CURL *h = get_handle();
    if (h == NULL) {
        c->error = "cannot initialise libcurl";
        return -1;
    }
    struct sink s = {.c = c, .a = a};
    abuf_init(&s.body, a);
    if (c->request_id_header && strlen(c->request_id_header) < sizeof(s.rid_name)) {
        s.rid_len = strlen(c->request_id_header);
        memcpy(s.rid_name, c->request_id_header, s.rid_len + 1);
    }
    struct curl_slist *hdrs = NULL, *t;
    int                oom = 0;
    for (size_t i = 0; i < c->nheaders && !oom; i++) {
        const char *line = arena_printf(a, "%s: %s", c->headers[i].name, c->headers[i].value);
        if ((t = curl_slist_append(hdrs, line)) == NULL)
            oom = 1;
        else
            hdrs = t;
    }
    if (!oom && (t = curl_slist_append(hdrs, "Expect:")) != NULL) /* no 100-continue wait */
        hdrs = t;
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(h, CURLOPT_URL, c->url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    if (c->ca_file != NULL && *c->ca_file)
        curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                     c->connect_timeout_ms > 0 ? c->connect_timeout_ms : 5000L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->timeout_ms > 0 ? c->timeout_ms : 30000L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "pay-api");
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &s);
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, ""); /* what libcurl can decode */
    if (strcmp(c->method, "GET") == 0) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else {
        if (strcmp(c->method, "POST") != 0)
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, c->method);
        if (c->body != NULL || strcmp(c->method, "POST") == 0) {
            curl_easy_setopt(h, CURLOPT_POST, 1L);
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)c->body_len);
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, c->body ? c->body : "");
        }
    }
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CURLcode rc = oom ? CURLE_OUT_OF_MEMORY : curl_easy_perform(h);
    curl_slist_free_all(hdrs);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
    long took = ms_since(&t0);
    if (rc != CURLE_OK) {
        c->request_id = NULL;
        c->error = s.too_big ? "answer over 4 MiB"
                   : errbuf[0] ? arena_strdup(a, errbuf)
                               : curl_easy_strerror(rc);
        log_warn("http", "%s %s: no answer after %ld ms: %s", c->method, path, took, c->error);
        return -1;
    }
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    c->status = status;
    c->resp = (char *)abuf_str(&s.body);
    c->resp_len = s.body.len;
    /* A 429 without Retry-After: when the rate limit resets. */
    c->retry_after_ms = http_retry_after_ms(
        s.retry_after ? s.retry_after : status == 429 ? s.rate_reset : NULL, (long long)time(NULL));
    log_msg(status >= 500 ? LOG_WARN : LOG_INFO, "http", "%s %s: %ld in %ld ms, request id %s",
            c->method, path, status, took, c->request_id ? c->request_id : "-");
    return 0;
}

int
http_class(const struct http_call *c)
{
    long s = c->status;
    if (s >= 200 && s < 300)
        return 0;
    if (s == 0 || s == 408 || s == 409 || s == 425 || s == 429 || s >= 500)
        return 1;
    return 2;
}
