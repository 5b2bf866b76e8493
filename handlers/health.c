/* Operational endpoints: /healthz (no database) and /readyz (database). */
#include "db.h"
#include "handlers.h"

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
