/*
 * Per-process MariaDB access: one connection opened after fork, a cache of
 * prepared statements keyed by SQL text, typed binding of parameters and
 * results, and the mapping of MariaDB errors to db_rc. Knows nothing of
 * HTTP; callers never see MariaDB error numbers or SQL text.
 *
 * Work is done in units (struct db_uow): one attempt at a piece of work,
 * in autocommit or inside one transaction. A unit that hits a deadlock,
 * a lock wait timeout or a lost connection is failed for good: every later
 * statement of the same unit returns that code without running, until
 * db_uow_retry() or db_uow_reset() starts a new unit. A lost connection is
 * reconnected only at the start of a unit, never in the middle of one, so
 * nothing of a failed transaction can be written in autocommit later.
 */
#ifndef PAY_DB_DB_H
#define PAY_DB_DB_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "arena.h"

#define DB_MUST_CHECK __attribute__((warn_unused_result))

enum db_rc { DB_OK = 0, DB_NOT_FOUND, DB_CONFLICT, DB_RETRY, DB_ERROR };

/* One unit of work. All memory of its statements comes from `arena`. */
struct db_uow {
    struct arena   *arena;
    struct timespec started;  /* CLOCK_MONOTONIC: the retry budget's start */
    enum db_rc      failed;   /* DB_OK, or the sticky DB_RETRY / DB_ERROR */
    int             in_tx;
    int             causal;   /* reads wait for the cluster (db_uow_causal) */
};

/* Starts a unit of work whose statements allocate from a. */
static inline void
db_uow_init(struct db_uow *u, struct arena *a)
{
    memset(u, 0, sizeof(*u));
    u->arena = a;
    clock_gettime(CLOCK_MONOTONIC, &u->started);
}

struct db_settings {
    const char *host, *socket, *user, *password, *name;
    int         port, timeout, lock_wait;
    /* Seconds after which the server aborts a statement (max_statement_time;
     * 0 = never). The API sets it to `timeout`, the client's read timeout:
     * a statement the client has given up on does not run on. */
    int         statement_limit;
    /* On a Galera cluster: the wsrep_sync_wait mask of the units marked
     * causal (db_uow_causal), so their reads see every commit the cluster
     * made before they started, through whichever node (0 = none). Others
     * read the local node's state. Ignored on a standalone server. */
    int         causal_sync_wait;
};

/* Remembers the settings (process lifetime) and connects. 0 or -1; a
 * failed connect is retried by the next unit of work. */
int db_open(const struct db_settings *s);
void db_close(void);
/* 0 when the server answers. */
int db_ping(void);
/* 0 when the server can serve the application: it answers and, when it is
 * a Galera node, belongs to the primary component and is synced. -1 with
 * a short reason in *why otherwise. */
int db_ready(const char **why);
/* Marks the unit's reads causal (see causal_sync_wait): applied lazily,
 * before the unit's next statement, only when the session differs. */
static inline void
db_uow_causal(struct db_uow *u, int on)
{
    u->causal = on;
}
/* Runs a fixed statement of the unit (session settings); never request data. */
DB_MUST_CHECK enum db_rc db_exec_fixed(struct db_uow *u, const char *sql);

/* A prepared statement in use. Parameters are bound in order with the
 * dbq_* binders; results are bound automatically from the metadata. */
struct dbq;

struct dbq *dbq_new(struct db_uow *u, const char *sql);
/* A read prepared for this use only and closed when its rows are read
 * (or at the arena's reset), never cached: for statements MariaDB runs
 * worse when a cached statement is executed again (handlers/list.c's
 * statements with an IN list of several owners). dbq_insert_id and
 * dbq_affected are not for it. */
struct dbq *dbq_new_fresh(struct db_uow *u, const char *sql);
void dbq_i64(struct dbq *q, int64_t v);
void dbq_str(struct dbq *q, const char *s);      /* NULL binds NULL */
void dbq_strn(struct dbq *q, const char *s, size_t n);
void dbq_null(struct dbq *q);
void dbq_id(struct dbq *q, int64_t id);           /* an optional id: 0 binds NULL */
/* Executes. DB_RETRY (deadlock, lock wait timeout; on Galera also the
 * certification failure of a write-set, at any statement or at COMMIT),
 * a lost connection and a node outside the primary component (DB_ERROR)
 * roll the transaction back and fail the unit. */
DB_MUST_CHECK enum db_rc dbq_exec(struct dbq *q);
/* Next row: DB_OK, DB_NOT_FOUND at the end, or an error. */
DB_MUST_CHECK enum db_rc dbq_fetch(struct dbq *q);
/* Executes and fetches exactly one row (DB_NOT_FOUND when none). The
 * statement is released after the row has been read. */
DB_MUST_CHECK enum db_rc dbq_one(struct dbq *q);
size_t dbq_ncols(struct dbq *q);
int dbq_is_null(struct dbq *q, size_t col);
int64_t dbq_col_i64(struct dbq *q, size_t col);
/* Column as text (NUL-terminated, arena); NULL when SQL NULL. */
const char *dbq_col_str(struct dbq *q, size_t col);
int64_t dbq_insert_id(struct dbq *q);
int64_t dbq_affected(struct dbq *q);
/* Releases the result set so the connection can run other statements. */
void dbq_done(struct dbq *q);

/* The unit's transaction. A failed unit cannot begin or commit. A
 * transaction its unit left open (neither committed nor rolled back) is
 * rolled back before the next unit's first statement. */
DB_MUST_CHECK enum db_rc db_tx_begin(struct db_uow *u);
/* DB_OK when the open transaction is still the one begun (always off a
 * Galera cluster); else the unit fails with DB_RETRY (the cluster aborted
 * it and later statements ran outside it), or the error reading that. */
DB_MUST_CHECK enum db_rc db_tx_intact(struct db_uow *u);
DB_MUST_CHECK enum db_rc db_tx_commit(struct db_uow *u);
void db_tx_rollback(struct db_uow *u);

/* The one retry policy: 1 when the unit failed with DB_RETRY and one more
 * full lock wait still ends within db_timeout of the unit's start (so the
 * front end never gives up on work that could commit later); the unit is
 * then reset for the next attempt. 0 otherwise (the failure stays). */
int db_uow_retry(struct db_uow *u);
/* Ends the unit (rolls back what is open) and starts the next one on the
 * same arena and clock. */
void db_uow_reset(struct db_uow *u);

/* Applies db/schema/NNN_*.sql files not yet recorded in
 * schema_migrations. Prints what it does. 0 or -1. */
int db_migrate(const char *dir);
/* Whether the schema is the one this binary was built for: 0 when the
 * newest migration recorded is `latest`; 1 when it is older (or none) or
 * newer, with the reason in why; -1 when it cannot be read now (no
 * connection, a cluster node not ready). */
int db_schema_check(const char *latest, char *why, size_t n);

#endif
