/*
 * Shared metrics block (see metrics.h). Counters are plain uint64 slots
 * updated with __atomic_fetch_add; a reader may see a request counted in
 * one series a moment before another, which Prometheus tolerates.
 */
#include "metrics.h"

#include <stdint.h>
#include <sys/mman.h>

#include "log.h"

#define NCLASSES 6   /* status class 1xx..5xx, plus "other" */
static const long buckets_us[] = {1000, 5000, 10000, 25000, 50000, 100000,
                                  250000, 500000, 1000000};
#define NBUCKETS (sizeof(buckets_us) / sizeof(buckets_us[0]))

struct route_stats {
    uint64_t by_class[NCLASSES];
    uint64_t le[NBUCKETS];   /* cumulative: duration <= bucket */
    uint64_t count;
    uint64_t sum_us;
};

struct shared {
    uint64_t           db_errors;
    uint64_t           worker_restarts;
    uint64_t           provider_calls[3];   /* ok, retry, refused */
    uint64_t           provider_call_us;
    uint64_t           webhooks[3];         /* received, rejected, duplicate */
    size_t             nroutes;
    struct route_stats routes[]; /* nroutes + 1 (last: unmatched) */
};

static struct shared *m;

void
metrics_init(size_t nroutes)
{
    size_t size = sizeof(*m) + (nroutes + 1) * sizeof(struct route_stats);
    void  *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                    -1, 0);
    if (p == MAP_FAILED)
        fatal("cannot map the metrics block");
    m = p;
    m->nroutes = nroutes;
}

static void
add(uint64_t *slot, uint64_t v)
{
    __atomic_fetch_add(slot, v, __ATOMIC_RELAXED);
}

void
metrics_request(int route, int status, long duration_us)
{
    if (m == NULL)
        return;
    struct route_stats *s =
        &m->routes[route >= 0 && (size_t)route < m->nroutes ? (size_t)route : m->nroutes];
    int cls = status >= 100 && status < 600 ? status / 100 - 1 : 5;
    add(&s->by_class[cls], 1);
    for (size_t i = 0; i < NBUCKETS; i++)
        if (duration_us <= buckets_us[i])
            add(&s->le[i], 1);
    add(&s->count, 1);
    add(&s->sum_us, duration_us > 0 ? (uint64_t)duration_us : 0);
}

void
metrics_db_error(void)
{
    if (m != NULL)
        add(&m->db_errors, 1);
}

void
metrics_worker_restart(void)
{
    if (m != NULL)
        add(&m->worker_restarts, 1);
}

void
metrics_provider_call(int outcome, long duration_us)
{
    if (m == NULL || outcome < 0 || outcome > 2)
        return;
    add(&m->provider_calls[outcome], 1);
    add(&m->provider_call_us, duration_us > 0 ? (uint64_t)duration_us : 0);
}

void
metrics_webhook(int what)
{
    if (m != NULL && what >= 0 && what <= 2)
        add(&m->webhooks[what], 1);
}

static uint64_t
get(const uint64_t *slot)
{
    return __atomic_load_n(slot, __ATOMIC_RELAXED);
}

void
metrics_render(struct abuf *b, const char *(*route_name)(size_t i),
               const char *(*route_method)(size_t i))
{
    static const char *const classes[] = {"1xx", "2xx", "3xx", "4xx", "5xx", "other"};
    if (m == NULL)
        return;
    abuf_adds(b, "# HELP payapi_requests_total Requests by route and status class.\n"
                 "# TYPE payapi_requests_total counter\n");
    for (size_t r = 0; r <= m->nroutes; r++) {
        const char *name = r < m->nroutes ? route_name(r) : "unmatched";
        const char *meth = r < m->nroutes ? route_method(r) : "";
        for (int c = 0; c < NCLASSES; c++) {
            uint64_t v = get(&m->routes[r].by_class[c]);
            if (v > 0)
                abuf_printf(b, "payapi_requests_total{method=\"%s\",route=\"%s\",status=\"%s\"} %llu\n",
                            meth, name, classes[c], (unsigned long long)v);
        }
    }
    abuf_adds(b, "# HELP payapi_request_duration_seconds Request latency by route.\n"
                 "# TYPE payapi_request_duration_seconds histogram\n");
    for (size_t r = 0; r <= m->nroutes; r++) {
        const struct route_stats *s = &m->routes[r];
        uint64_t                  n = get(&s->count);
        if (n == 0)
            continue;
        const char *name = r < m->nroutes ? route_name(r) : "unmatched";
        const char *meth = r < m->nroutes ? route_method(r) : "";
        for (size_t i = 0; i < NBUCKETS; i++)
            abuf_printf(b, "payapi_request_duration_seconds_bucket{method=\"%s\",route=\"%s\","
                           "le=\"%ld.%06ld\"} %llu\n", meth, name, buckets_us[i] / 1000000,
                        buckets_us[i] % 1000000, (unsigned long long)get(&s->le[i]));
        uint64_t sum = get(&s->sum_us);
        abuf_printf(b, "payapi_request_duration_seconds_bucket{method=\"%s\",route=\"%s\","
                       "le=\"+Inf\"} %llu\n"
                       "payapi_request_duration_seconds_sum{method=\"%s\",route=\"%s\"} %llu.%06llu\n"
                       "payapi_request_duration_seconds_count{method=\"%s\",route=\"%s\"} %llu\n",
                    meth, name, (unsigned long long)n, meth, name,
                    (unsigned long long)(sum / 1000000), (unsigned long long)(sum % 1000000),
                    meth, name, (unsigned long long)n);
    }
    abuf_printf(b, "# HELP payapi_db_errors_total Database errors seen by workers.\n"
                   "# TYPE payapi_db_errors_total counter\n"
                   "payapi_db_errors_total %llu\n"
                   "# HELP payapi_worker_restarts_total Workers respawned after dying.\n"
                   "# TYPE payapi_worker_restarts_total counter\n"
                   "payapi_worker_restarts_total %llu\n",
                (unsigned long long)get(&m->db_errors),
                (unsigned long long)get(&m->worker_restarts));
    uint64_t calls = get(&m->provider_calls[0]) + get(&m->provider_calls[1]) +
                     get(&m->provider_calls[2]);
    uint64_t us = get(&m->provider_call_us);
    abuf_printf(b, "# HELP payapi_provider_calls_total Calls of the collection engine to"
                   " payment providers, by outcome.\n"
                   "# TYPE payapi_provider_calls_total counter\n"
                   "payapi_provider_calls_total{outcome=\"ok\"} %llu\n"
                   "payapi_provider_calls_total{outcome=\"retry\"} %llu\n"
                   "payapi_provider_calls_total{outcome=\"refused\"} %llu\n"
                   "# HELP payapi_provider_call_duration_seconds Time spent in provider calls.\n"
                   "# TYPE payapi_provider_call_duration_seconds summary\n"
                   "payapi_provider_call_duration_seconds_sum %llu.%06llu\n"
                   "payapi_provider_call_duration_seconds_count %llu\n",
                (unsigned long long)get(&m->provider_calls[0]),
                (unsigned long long)get(&m->provider_calls[1]),
                (unsigned long long)get(&m->provider_calls[2]),
                (unsigned long long)(us / 1000000), (unsigned long long)(us % 1000000),
                (unsigned long long)calls);
    abuf_printf(b, "# HELP payapi_webhooks_total Provider webhook events by outcome.\n"
                   "# TYPE payapi_webhooks_total counter\n"
                   "payapi_webhooks_total{outcome=\"received\"} %llu\n"
                   "payapi_webhooks_total{outcome=\"rejected\"} %llu\n"
                   "payapi_webhooks_total{outcome=\"duplicate\"} %llu\n",
                (unsigned long long)get(&m->webhooks[0]),
                (unsigned long long)get(&m->webhooks[1]),
                (unsigned long long)get(&m->webhooks[2]));
}
