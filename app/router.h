/*
 * Route table compilation, matching and THE request pipeline.
 * The table itself lives in handlers/routes.c and is handed to
 * router_init() by main.c, so the framework never includes handlers.
 */
#ifndef PAY_APP_ROUTER_H
#define PAY_APP_ROUTER_H

#include "req.h"

typedef int (*handler_fn)(struct req *r);

/* Route flags. */
#define R_AUTH       0x01u /* bearer token + scope required */
#define R_JSON       0x02u /* application/json body parsed before the handler */
#define R_JSON_PATCH 0x04u /* application/json-patch+json body */
#define R_IDEMPOTENT 0x08u /* honours Idempotency-Key */
#define R_FORM       0x10u /* application/x-www-form-urlencoded body (pages) */
#define R_RAW_JSON   0x20u /* application/json body read but not parsed: the
                              handler checks a signature over the raw bytes first */
#define R_BIG_BODY   0x40u /* body up to REQ_BIG_BODY_MAX instead of REQ_BODY_MAX
                              (providers' webhooks; the fronts allow as much
                              on that location only) */

struct route {
    int         method;   /* one PAY_M_* */
    const char *pattern;  /* "/v1/x/:id": literal segments and :captures */
    handler_fn  handler;
    unsigned    flags;
    unsigned    scope;    /* scope bits needed (with R_AUTH): all of them
                             must be granted by the token's scope words,
                             see struct auth_scope */
};

/* Hooks supplied by the layers above (DB transaction + idempotency).
 * before: runs after parsing, before the handler; returns 0 to go on or
 *         an HTTP status when it produced the response itself (replay or
 *         error). again: after each run of the handler with its status;
 *         commits a successful run's transaction there, so that a conflict
 *         found at COMMIT (a Galera certification failure) is retried like
 *         one found at a statement; 1 to discard the response and run the
 *         handler again (a transaction conflict with time left). after: runs
 *         after the last run with its status, before the response is sent
 *         (commit/rollback, store idempotent response); returns the final
 *         status. Each may be NULL. */
struct router_hooks {
    int (*before)(struct req *r);
    int (*again)(struct req *r, int status);
    int (*after)(struct req *r, int status);
};

/* Validates and compiles the table (process lifetime). Aborts start-up
 * via fatal() on duplicates, bad patterns or bad flags. */
void router_init(const struct route *table, size_t n,
                 const struct router_hooks *hooks);
/* Number of routes and route i (for /metrics, openapi checks). */
size_t router_count(void);
const struct route *router_get(size_t i);

/* "GET", "POST", … for a PAY_M_* value ("?" if unknown). */
const char *router_method_name(int m);

/* Finds the route: returns its index, -1 for no path match (404) or -2
 * for a path match with another method (405; *allow gets the Allow
 * header value, arena memory). Captures go to r->params. */
int router_match(struct req *r, const char **allow);

/* The whole pipeline for one request whose raw fields are set in r
 * (method, path, query_string, headers, src/out). Always produces a
 * response. Returns the final HTTP status. */
int router_dispatch(struct req *r);

/* Initialises r for a new request on arena a. */
void req_init(struct req *r, struct arena *a);

/* Index of the route being served by this process, -1 when idle
 * (written to shared memory for the master's crash log). */
extern volatile int *router_current_route;

#endif
