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
    const char *why;
    if (db_ready(&why) != 0)
        return req_failf(r, PAY_E_UNAVAILABLE, NULL, "%s", why);
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

/* The collection engine's queue, from the database (COLLECTION.md §4):
 * attempts by kind and status, how many are due, the oldest due one's age.
 * Left out when the database does not answer. */
static void
attempts_render(struct req *r, struct abuf *b)
{
    struct dbq *q = dbq_new(&r->db, "SELECT IF(kind = 1, 'collection', 'refund'), status,"
                                    " COUNT(*) FROM attempts GROUP BY kind, status"
                                    " ORDER BY kind, status");
    if (dbq_exec(q) != DB_OK)
        return;
    abuf_adds(b, "# HELP payapi_attempts Collection attempts by kind and status.\n"
                 "# TYPE payapi_attempts gauge\n");
    while (dbq_fetch(q) == DB_OK)
        abuf_printf(b, "payapi_attempts{kind=\"%s\",status=\"%s\"} %s\n", dbq_col_str(q, 0),
                    dbq_col_str(q, 1), dbq_col_str(q, 2));
    q = dbq_new(&r->db, "SELECT COUNT(*), COALESCE(TIMESTAMPDIFF(SECOND, MIN(next_action_at),"
                        " UTC_TIMESTAMP(6)), 0) FROM attempts"
                        " WHERE next_action_at <= UTC_TIMESTAMP(6)");
    if (dbq_one(q) != DB_OK)
        return;
    abuf_printf(b, "# HELP payapi_attempts_due Attempts due for the engine now.\n"
                   "# TYPE payapi_attempts_due gauge\n"
                   "payapi_attempts_due %s\n"
                   "# HELP payapi_attempts_oldest_due_seconds Age of the oldest due attempt.\n"
                   "# TYPE payapi_attempts_oldest_due_seconds gauge\n"
                   "payapi_attempts_oldest_due_seconds %s\n",
                dbq_col_str(q, 0), dbq_col_str(q, 1));
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
    attempts_render(r, &b);
    return resp_body(r, 200, "text/plain; version=0.0.4; charset=utf-8", abuf_str(&b), b.len);
}
