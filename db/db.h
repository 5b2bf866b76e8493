/*
 * Per-worker MariaDB access: one connection opened after fork, a cache of
 * prepared statements keyed by SQL text, typed binding of parameters and
 * results, transactions, and the mapping of MariaDB errors to db_rc.
 * Handlers never see MariaDB error numbers or SQL text.
 */
#ifndef PAY_DB_DB_H
#define PAY_DB_DB_H

#include <stddef.h>
#include <stdint.h>

#include "req.h"

enum db_rc { DB_OK = 0, DB_NOT_FOUND, DB_CONFLICT, DB_RETRY, DB_ERROR };

struct db_settings {
    const char *host, *socket, *user, *password, *name;
    int         port, timeout, lock_wait;
};

/* Remembers the settings (process lifetime) and connects. 0 or -1; a
 * failed connect is retried lazily by the next query. */
int db_open(const struct db_settings *s);
void db_close(void);
/* 0 when the server answers. */
int db_ping(void);
/* Runs a fixed statement (BEGIN/COMMIT, migrations); never request data. */
enum db_rc db_exec_fixed(const char *sql);

/* A prepared statement in use. Parameters are bound in order with the
 * dbq_* binders; results are bound automatically from the metadata. All
 * memory comes from the arena of r. */
struct dbq;

struct dbq *dbq_new(struct req *r, const char *sql);
void dbq_i64(struct dbq *q, int64_t v);
void dbq_str(struct dbq *q, const char *s);      /* NULL binds NULL */
void dbq_strn(struct dbq *q, const char *s, size_t n);
void dbq_null(struct dbq *q);
/* Executes; on deadlock/lock timeout sets r->retry and returns DB_RETRY. */
enum db_rc dbq_exec(struct dbq *q);
/* Next row: DB_OK, DB_NOT_FOUND at the end, or an error. */
enum db_rc dbq_fetch(struct dbq *q);
/* Executes and fetches exactly one row (DB_NOT_FOUND when none). The
 * statement is released after the row has been read. */
enum db_rc dbq_one(struct dbq *q);
size_t dbq_ncols(struct dbq *q);
int dbq_is_null(struct dbq *q, size_t col);
int64_t dbq_col_i64(struct dbq *q, size_t col);
/* Column as text (NUL-terminated, arena); NULL when SQL NULL. */
const char *dbq_col_str(struct dbq *q, size_t col);
int64_t dbq_insert_id(struct dbq *q);
int64_t dbq_affected(struct dbq *q);
/* Releases the result set so the connection can run other statements. */
void dbq_done(struct dbq *q);

/* Transaction bound to the request: rolled back at request end unless
 * committed (arena defer). */
enum db_rc db_tx_begin(struct req *r);
enum db_rc db_tx_commit(struct req *r);
void db_tx_rollback(struct req *r);

/* Applies db/schema/NNN_*.sql files not yet recorded in
 * schema_migrations. Prints what it does. 0 or -1. */
int db_migrate(const char *dir);

#endif
