/*
 * Operational endpoints: /healthz (no database), /readyz (database) and
 * /metrics (Prometheus text, loopback clients only; nginx also restricts it).
 */
#include <string.h>

#include "db.h"
#include "handlers.h"
#include "metrics.h"

int
health_live(struct req *r)
{
    static const char ok[] = "{\"status\":\"ok\"}";
    return resp_body(r, 200, "application/json; charset=utf-8", ok, sizeof(ok) - 1);
}

int
health_ready(struct req *r)
{
    static const char ok[] = "{\"status\":\"ready\"}";
    if (db_ping() != 0)
        return req_failf(r, PAY_E_UNAVAILABLE, NULL, "database unreachable");
    return resp_body(r, 200, "application/json; charset=utf-8", ok, sizeof(ok) - 1);
}

static const char *
route_pattern(size_t i)
{
    return router_get(i)->pattern;
}

static const char *
route_method(size_t i)
{
    return router_method_name(router_get(i)->method);
}

int
metrics_get(struct req *r)
{
    const char *peer = req_env(r, "REMOTE_ADDR");
    if (peer == NULL || (strcmp(peer, "127.0.0.1") != 0 && strcmp(peer, "::1") != 0))
        return req_failf(r, PAY_E_FORBIDDEN, NULL, "metrics are served to localhost only");
    struct abuf b;
    abuf_init(&b, r->arena);
    metrics_render(&b, route_pattern, route_method);
    return resp_body(r, 200, "text/plain; version=0.0.4; charset=utf-8", abuf_str(&b), b.len);
}
