/*
 * Process-shared counters for GET /metrics (Prometheus text format):
 * requests by route and status, a latency histogram by route, database
 * errors and worker restarts. The block is mapped MAP_SHARED by the master
 * before it forks, so every worker adds to the same counters (atomic adds)
 * and any worker can render the totals.
 */
#ifndef PAY_APP_METRICS_H
#define PAY_APP_METRICS_H

#include <stddef.h>

#include "arena.h"

/* Maps the shared block for nroutes routes (call once, before fork). */
void metrics_init(size_t nroutes);
/* One finished request: route index (-1 when no route matched), final
 * status and duration. */
void metrics_request(int route, int status, long duration_us);
void metrics_db_error(void);
void metrics_worker_restart(void);
/* One call of the collection engine to a provider: outcome 0 ok, 1 retry
 * (network, 5xx, 429), 2 refused (4xx); its duration. */
void metrics_provider_call(int outcome, long duration_us);
/* Webhooks: 0 an event received, 1 a request rejected (forged, stale,
 * malformed), 2 an event already received (a replay). */
void metrics_webhook(int what);
/* Appends the exposition text; route_name(i) gives route i's label. */
void metrics_render(struct abuf *b, const char *(*route_name)(size_t i),
                    const char *(*route_method)(size_t i));

#endif
