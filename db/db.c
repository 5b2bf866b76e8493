/*
 * MariaDB connection, statement cache and typed binding (see db.h).
 * Rules from DEPS.md: connect after fork; MYSQL_OPT_RECONNECT stays off
 * (a silent reconnect invalidates every prepared statement), so on a lost
 * connection we drop the statement cache, fail the unit of work and
 * reconnect at the start of the next one; CLIENT_FOUND_ROWS so affected
 * rows means matched rows; session lock wait < read timeout (= the
 * server's max_statement_time for the API) < nginx fastcgi_read_timeout.
 */
#include "db.h"

#include <dirent.h>
#include <errno.h>
#include <errmsg.h>
#include <mysql.h>
#include <mysqld_error.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"

#define CACHE_SIZE 256

struct cached {
    char       *sql;
    uint64_t    hash;
    MYSQL_STMT *st;
};

static MYSQL             *conn;
static int                conn_tx;   /* a transaction is open on conn */
static int                conn_wsrep; /* conn is to a Galera node */
static int                conn_sync;  /* the session's wsrep_sync_wait */
static int                conn_ro;    /* tx_read_only=1, autocommit=0 (Galera) */
static long long          tx_mark;    /* the open transaction's mark (Galera) */
static int                conn_mark;  /* the session's pay_tx_mark exists */
static int                beginning;  /* db_tx_begin runs: keep conn_ro */
static struct db_settings cfg;
static struct cached      cache[CACHE_SIZE];

static void
cache_clear(void)
{
    for (size_t i = 0; i < CACHE_SIZE; i++) {
        if (cache[i].st != NULL)
            mysql_stmt_close(cache[i].st);
        free(cache[i].sql);
        memset(&cache[i], 0, sizeof(cache[i]));
    }
}

/* Counts dropped connections: a query's statement belongs to the
 * connection of its generation and is freed with it. */
static unsigned conn_gen;

static void
drop_connection(void)
{
    conn_gen++;
    cache_clear();
    if (conn != NULL)
        mysql_close(conn);
    conn = NULL;
    conn_tx = 0;
    conn_wsrep = conn_sync = conn_ro = conn_mark = 0;
}

static int
connect_now(void)
{
    unsigned int tmo = (unsigned)cfg.timeout, ctmo = 3;
    my_bool      off = 0;
    char         init[96];

    conn = mysql_init(NULL);
    if (conn == NULL)
        return -1;
    mysql_options(conn, MYSQL_OPT_CONNECT_TIMEOUT, &ctmo);
    mysql_options(conn, MYSQL_OPT_READ_TIMEOUT, &tmo);
    mysql_options(conn, MYSQL_OPT_WRITE_TIMEOUT, &tmo);
    mysql_options(conn, MYSQL_OPT_RECONNECT, &off);
    mysql_options(conn, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    mysql_options(conn, MYSQL_INIT_COMMAND,
                  "SET SESSION sql_mode='STRICT_ALL_TABLES,NO_ZERO_DATE,"
                  "NO_ZERO_IN_DATE,ERROR_FOR_DIVISION_BY_ZERO,"
                  "NO_ENGINE_SUBSTITUTION', time_zone='+00:00'");
    snprintf(init, sizeof(init), "SET SESSION innodb_lock_wait_timeout=%d,"
             " max_statement_time=%d", cfg.lock_wait, cfg.statement_limit);
    mysql_options(conn, MYSQL_INIT_COMMAND, init);
    mysql_options(conn, MYSQL_INIT_COMMAND,
                  "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED");
    const char *host = (cfg.socket && *cfg.socket) ? NULL : cfg.host;
    if (mysql_real_connect(conn, host, cfg.user, cfg.password, cfg.name,
                           (unsigned)cfg.port,
                           (cfg.socket && *cfg.socket) ? cfg.socket : NULL,
                           CLIENT_FOUND_ROWS) == NULL) {
        log_error("db", "connect failed: %s", mysql_error(conn));
        mysql_close(conn);
        conn = NULL;
        return -1;
    }
    conn_wsrep = conn_sync = conn_ro = conn_mark = 0;
    if (mysql_query(conn, "SELECT @@GLOBAL.wsrep_on") == 0) {
        MYSQL_RES *res = mysql_store_result(conn);
        MYSQL_ROW  row = res ? mysql_fetch_row(res) : NULL;
        conn_wsrep = row != NULL && row[0] != NULL && strcmp(row[0], "1") == 0;
        if (res != NULL)
            mysql_free_result(res);
    }
    return 0;
}

int
db_open(const struct db_settings *s)
{
    cfg = *s;
    return connect_now();
}

void
db_close(void)
{
    drop_connection();
}

int
db_ping(void)
{
    if (conn == NULL && connect_now() != 0)
        return -1;
    if (mysql_ping(conn) != 0) {
        drop_connection();
        return -1;
    }
    return 0;
}

int
db_ready(const char **why)
{
    *why = "database unreachable";
    if (db_ping() != 0)
        return -1;
    if (!conn_wsrep)
        return 0;
    /* A Galera node: ready when in the primary component and synced (a
     * joiner, a blocked donor or a partitioned node refuses statements
     * with ER_UNKNOWN_COM_ERROR, or serves stale data). */
    static const char sql[] =
        "SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_ready',"
        " 'wsrep_cluster_status', 'wsrep_local_state_comment')";
    if (mysql_query(conn, sql) != 0) {
        drop_connection();
        return -1;
    }
    MYSQL_RES *res = mysql_store_result(conn);
    if (res == NULL)
        return -1;
    int       good = 0;
    MYSQL_ROW row;
    while ((row = mysql_fetch_row(res)) != NULL) {
        if (row[0] == NULL || row[1] == NULL)
            continue;
        if ((strcmp(row[0], "wsrep_ready") == 0 && strcmp(row[1], "ON") == 0) ||
            (strcmp(row[0], "wsrep_cluster_status") == 0 && strcmp(row[1], "Primary") == 0) ||
            (strcmp(row[0], "wsrep_local_state_comment") == 0 && strcmp(row[1], "Synced") == 0))
            good++;
    }
    mysql_free_result(res);
    if (good != 3) {
        *why = "database node not in the primary component or not synced";
        return -1;
    }
    return 0;
}

/* Maps a MariaDB error number to db_rc; *sticky when the error fails the
 * whole unit (a lost connection, an aborted statement). */
static enum db_rc
map_error(unsigned err, const char *what, const char *msg, int *sticky)
{
    *sticky = 0;
    switch (err) {
    case ER_LOCK_DEADLOCK:
    case ER_LOCK_WAIT_TIMEOUT:
        log_warn("db", "%s: %s", what, msg);
        return DB_RETRY;
    case ER_DUP_ENTRY:
        return DB_CONFLICT;
    case ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION: /* see db_tx_begin */
        log_warn("db", "%s: transaction aborted by the cluster", what);
        return DB_RETRY;
    case ER_UNKNOWN_COM_ERROR: /* Galera: "WSREP has not yet prepared node" */
    case ER_ERROR_DURING_COMMIT: /* Galera: lost the primary component */
        log_error("db", "%s: database node not serving: %s", what, msg);
        metrics_db_error();
        *sticky = 1; /* the statement's transaction is gone or unknown */
        return DB_ERROR;
    case ER_STATEMENT_TIMEOUT:
        log_error("db", "%s: statement aborted after %d s", what, cfg.statement_limit);
        metrics_db_error();
        *sticky = 1; /* aborted mid-transaction: fail the unit */
        return DB_ERROR;
    case CR_SERVER_GONE_ERROR:
    case CR_SERVER_LOST:
    case CR_CONNECTION_ERROR:
    case CR_CONN_HOST_ERROR:
    case CR_COMMANDS_OUT_OF_SYNC:
    case 2055: /* CR_SERVER_LOST_EXTENDED */
        log_error("db", "%s: connection lost: %s", what, msg);
        metrics_db_error();
        drop_connection();
        *sticky = 1;
        return DB_ERROR;
    default:
        log_error("db", "%s: error %u: %s", what, err, msg);
        metrics_db_error();
        return DB_ERROR;
    }
}

/* Runs a fixed statement on the connection, discarding any result. */
static enum db_rc
exec_on_conn(const char *sql, int *sticky)
{
    *sticky = 0;
    if (mysql_real_query(conn, sql, strlen(sql)) != 0)
        return map_error(mysql_errno(conn), "query", mysql_error(conn), sticky);
    MYSQL_RES *res = mysql_store_result(conn);
    if (res != NULL)
        mysql_free_result(res);
    while (mysql_more_results(conn) && mysql_next_result(conn) == 0) {
        res = mysql_store_result(conn);
        if (res != NULL)
            mysql_free_result(res);
    }
    if (mysql_errno(conn) != 0)
        return map_error(mysql_errno(conn), "query", mysql_error(conn), sticky);
    return DB_OK;
}

/* A deadlock rolls the whole transaction back, a lock wait timeout only
 * the statement: roll back explicitly either way, at once (the locks go
 * now, and a later START TRANSACTION cannot commit half of the work). */
static void
rollback_conn(void)
{
    int sticky;
    if (conn_tx && conn != NULL && exec_on_conn("ROLLBACK", &sticky) != DB_OK)
        log_warn("db", "rollback failed");
    conn_tx = 0;
}

static void
rollback_now(struct db_uow *u)
{
    if (u->in_tx)
        rollback_conn();
    u->in_tx = 0;
}

/* A statement of the unit's transaction ran outside it: on a Galera node
 * a transaction aborted by a replicated write-set (brute-force abort) is
 * reported to the text protocol's next statement as a deadlock, but a
 * prepared statement may run on after it (see db_tx_begin): the unit
 * fails as after a deadlock, and whatever ran after the abort is rolled
 * back. */
static enum db_rc
vanished(struct db_uow *u, const char *sql)
{
    log_warn("db", "transaction aborted by the cluster before: %.60s", sql);
    rollback_now(u);
    u->failed = DB_RETRY;
    return DB_RETRY;
}

/* Records the outcome of a failed statement: DB_RETRY, a lost connection
 * and an aborted statement fail the whole unit (sticky), the others are
 * the statement's own result. */
static enum db_rc
unit_error(struct db_uow *u, unsigned err, const char *what, const char *msg)
{
    int        sticky;
    enum db_rc rc = map_error(err, what, msg, &sticky);
    if (rc == DB_RETRY || sticky) {
        rollback_now(u);
        u->failed = rc;
    }
    return rc;
}

/* The connection for the next statement of u: NULL (and the unit failed)
 * when the unit has failed already, or when the connection went away in
 * the middle of it. Reconnects only at the start of a unit. */
static MYSQL *
unit_conn(struct db_uow *u)
{
    if (u->failed != DB_OK)
        return NULL;
    if (conn == NULL && (u->in_tx || connect_now() != 0)) {
        u->in_tx = 0;
        u->failed = DB_ERROR;
        return NULL;
    }
    if (conn_tx && !u->in_tx) {
        log_warn("db", "rolling back a transaction left open");
        rollback_conn();
    }
    if (conn_ro && !u->in_tx && !beginning) {
        int sticky;
        enum db_rc rc = DB_OK;
        /* autocommit=1 would commit a transaction still open. */
        if (conn->server_status & SERVER_STATUS_IN_TRANS)
            rc = exec_on_conn("ROLLBACK", &sticky);
        if (rc == DB_OK)
            rc = exec_on_conn("SET SESSION tx_read_only=0, autocommit=1", &sticky);
        if (rc != DB_OK) {
            u->failed = rc;
            return NULL;
        }
        conn_ro = 0;
    }
    int want = conn_wsrep && u->causal ? cfg.causal_sync_wait : 0;
    if (want != conn_sync && !u->in_tx) {
        char set[48];
        int  sticky;
        snprintf(set, sizeof(set), "SET SESSION wsrep_sync_wait=%d", want);
        enum db_rc rc = exec_on_conn(set, &sticky);
        if (rc != DB_OK) {
            u->failed = rc;
            return NULL;
        }
        conn_sync = want;
    }
    return conn;
}

enum db_rc
db_exec_fixed(struct db_uow *u, const char *sql)
{
    int sticky;
    if (unit_conn(u) == NULL)
        return u->failed;
    enum db_rc rc = exec_on_conn(sql, &sticky);
    if (rc == DB_RETRY || sticky) {
        rollback_now(u);
        u->failed = rc;
    }
    return rc;
}

/* FNV-1a: statement cache key. */
static uint64_t
hash_sql(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* sql prepared on the connection; NULL (the unit failed, or the prepare
 * error is logged) when it cannot be. */
static MYSQL_STMT *
stmt_prepare(struct db_uow *u, const char *sql)
{
    MYSQL_STMT *st = mysql_stmt_init(conn);
    if (st == NULL)
        return NULL;
    if (mysql_stmt_prepare(st, sql, strlen(sql)) != 0) {
        unsigned err = mysql_stmt_errno(st);
        log_error("db", "prepare failed (%u): %s", err, mysql_stmt_error(st));
        mysql_stmt_close(st);
        (void)unit_error(u, err, "prepare", "");
        return NULL;
    }
    return st;
}

/* The cached statement for sql, prepared on first use; NULL when it
 * cannot be had. A fresh one (dbq_new_fresh) is prepared for one use. */
static MYSQL_STMT *
stmt_get(struct db_uow *u, const char *sql, int fresh)
{
    if (unit_conn(u) == NULL)
        return NULL;
    if (fresh)
        return stmt_prepare(u, sql);
    uint64_t h = hash_sql(sql);
    size_t   i = h % CACHE_SIZE;
    for (size_t k = 0; k < CACHE_SIZE; k++, i = (i + 1) % CACHE_SIZE) {
        if (cache[i].st == NULL)
            break;
        if (cache[i].hash == h && strcmp(cache[i].sql, sql) == 0)
            return cache[i].st;
    }
    if (cache[i].st != NULL) { /* table full: start over */
        cache_clear();
        i = h % CACHE_SIZE;
    }
    MYSQL_STMT *st = stmt_prepare(u, sql);
    if (st == NULL)
        return NULL;
    cache[i].sql = strdup(sql);
    cache[i].hash = h;
    cache[i].st = st;
    if (cache[i].sql == NULL) {
        log_error("db", "out of memory");
        abort();
    }
    return st;
}

/* ---- typed statements ----------------------------------------------------- */

struct dbq {
    struct db_uow *u;
    const char   *sql;
    MYSQL_STMT   *st;
    MYSQL_BIND   *params;
    size_t        np, pcap;
    MYSQL_BIND   *cols;
    size_t        nc;
    unsigned long *lens;
    my_bool      *nulls;
    my_bool      *errs;
    int64_t      *ints;
    int           executed, has_result;
    int           fresh;         /* st is this query's own (closed on release) */
    unsigned      gen;           /* conn_gen when st was taken */
};

struct dbq *
dbq_new(struct db_uow *u, const char *sql)
{
    struct dbq *q = arena_zalloc(u->arena, sizeof(*q));
    q->u = u;
    q->sql = sql;
    return q;
}

struct dbq *
dbq_new_fresh(struct db_uow *u, const char *sql)
{
    struct dbq *q = dbq_new(u, sql);
    q->fresh = 1;
    return q;
}

static MYSQL_BIND *
next_param(struct dbq *q)
{
    if (q->np == q->pcap) {
        size_t ncap = q->pcap ? q->pcap * 2 : 8;
        q->params = arena_realloc(q->u->arena, q->params,
                                  q->pcap * sizeof(MYSQL_BIND),
                                  ncap * sizeof(MYSQL_BIND));
        q->pcap = ncap;
    }
    MYSQL_BIND *b = &q->params[q->np++];
    memset(b, 0, sizeof(*b));
    return b;
}

void
dbq_i64(struct dbq *q, int64_t v)
{
    MYSQL_BIND *b = next_param(q);
    int64_t    *p = arena_alloc(q->u->arena, sizeof(*p));
    *p = v;
    b->buffer_type = MYSQL_TYPE_LONGLONG;
    b->buffer = p;
}

void
dbq_strn(struct dbq *q, const char *s, size_t n)
{
    MYSQL_BIND *b = next_param(q);
    if (s == NULL) {
        b->buffer_type = MYSQL_TYPE_NULL;
        return;
    }
    unsigned long *len = arena_alloc(q->u->arena, sizeof(*len));
    *len = (unsigned long)n;
    b->buffer_type = MYSQL_TYPE_STRING;
    b->buffer = (void *)s;
    b->buffer_length = *len;
    b->length = len;
}

void
dbq_str(struct dbq *q, const char *s)
{
    dbq_strn(q, s, s ? strlen(s) : 0);
}

void
dbq_null(struct dbq *q)
{
    dbq_strn(q, NULL, 0);
}

void
dbq_id(struct dbq *q, int64_t id)
{
    if (id != 0)
        dbq_i64(q, id);
    else
        dbq_null(q);
}

static void
release(void *arg)
{
    struct dbq *q = arg;
    /* A statement of a dropped connection is already freed. */
    if (q->st != NULL && q->has_result && q->gen == conn_gen)
        mysql_stmt_free_result(q->st);
    q->has_result = 0;
    if (q->fresh && q->st != NULL) { /* (mysql_close detached it, if dropped) */
        mysql_stmt_close(q->st);
        q->st = NULL;
    }
}

static int
is_int_type(enum enum_field_types t)
{
    return t == MYSQL_TYPE_TINY || t == MYSQL_TYPE_SHORT ||
           t == MYSQL_TYPE_LONG || t == MYSQL_TYPE_LONGLONG ||
           t == MYSQL_TYPE_INT24 || t == MYSQL_TYPE_YEAR;
}

/* Binds result columns: integers as LONGLONG, the rest as text. */
static void
bind_results(struct dbq *q, MYSQL_RES *meta)
{
    struct arena *a = q->u->arena;
    q->nc = mysql_num_fields(meta);
    MYSQL_FIELD *f = mysql_fetch_fields(meta);
    q->cols = arena_zalloc(a, q->nc * sizeof(MYSQL_BIND));
    q->lens = arena_zalloc(a, q->nc * sizeof(unsigned long));
    q->nulls = arena_zalloc(a, q->nc * sizeof(my_bool));
    q->errs = arena_zalloc(a, q->nc * sizeof(my_bool));
    q->ints = arena_zalloc(a, q->nc * sizeof(int64_t));
    for (size_t i = 0; i < q->nc; i++) {
        MYSQL_BIND *b = &q->cols[i];
        b->length = &q->lens[i];
        b->is_null = &q->nulls[i];
        b->error = &q->errs[i];
        if (is_int_type(f[i].type)) {
            b->buffer_type = MYSQL_TYPE_LONGLONG;
            b->buffer = &q->ints[i];
        } else {
            b->buffer_type = MYSQL_TYPE_STRING;
            b->buffer_length = 288;
            b->buffer = arena_alloc(a, b->buffer_length + 1); /* + NUL */
        }
    }
    mysql_stmt_bind_result(q->st, q->cols);
}

enum db_rc
dbq_exec(struct dbq *q)
{
    if (q->fresh)
        release(q); /* a fresh query run again: its first statement closed */
    q->st = stmt_get(q->u, q->sql, q->fresh);
    q->gen = conn_gen;
    if (q->st == NULL)
        return q->u->failed != DB_OK ? q->u->failed : DB_ERROR;
    if (q->fresh)
        arena_defer(q->u->arena, release, q);
    if (mysql_stmt_param_count(q->st) != q->np) {
        log_error("db", "parameter count mismatch (%lu vs %zu) for: %.200s",
                  mysql_stmt_param_count(q->st), q->np, q->sql);
        return DB_ERROR;
    }
    if (q->np > 0 && mysql_stmt_bind_param(q->st, q->params) != 0)
        return unit_error(q->u, mysql_stmt_errno(q->st), "bind",
                          mysql_stmt_error(q->st));
    if (mysql_stmt_execute(q->st) != 0)
        return unit_error(q->u, mysql_stmt_errno(q->st), "execute",
                          mysql_stmt_error(q->st));
    q->executed = 1;
    if (q->u->in_tx && !(conn->server_status & SERVER_STATUS_IN_TRANS))
        return vanished(q->u, q->sql);
    MYSQL_RES *meta = mysql_stmt_result_metadata(q->st);
    if (meta != NULL) {
        bind_results(q, meta);
        mysql_free_result(meta);
        q->has_result = 1;
        if (!q->fresh)
            arena_defer(q->u->arena, release, q);
    }
    return DB_OK;
}

enum db_rc
dbq_fetch(struct dbq *q)
{
    if (q->u->failed != DB_OK)
        return q->u->failed;
    if (!q->has_result)
        return DB_NOT_FOUND;
    if (q->gen != conn_gen) /* its connection was dropped meanwhile */
        return DB_ERROR;
    int rc = mysql_stmt_fetch(q->st);
    if (rc == MYSQL_NO_DATA) {
        release(q);
        return DB_NOT_FOUND;
    }
    if (rc == 1) {
        /* An error while rows stream in may be recorded on the connection
         * (the server aborted the statement) rather than the statement. */
        if (mysql_stmt_errno(q->st) == 0 && conn != NULL && mysql_errno(conn) != 0)
            return unit_error(q->u, mysql_errno(conn), "fetch", mysql_error(conn));
        return unit_error(q->u, mysql_stmt_errno(q->st), "fetch",
                          mysql_stmt_error(q->st));
    }
    if (rc == MYSQL_DATA_TRUNCATED) {
        /* Re-read long text columns into buffers of their real size. */
        for (size_t i = 0; i < q->nc; i++) {
            MYSQL_BIND *b = &q->cols[i];
            if (!q->errs[i] || b->buffer_type != MYSQL_TYPE_STRING)
                continue;
            MYSQL_BIND one = *b;
            one.buffer_length = q->lens[i] + 1;
            one.buffer = arena_alloc(q->u->arena, one.buffer_length);
            if (mysql_stmt_fetch_column(q->st, &one, (unsigned)i, 0) != 0)
                return DB_ERROR;
            b->buffer = one.buffer;
            b->buffer_length = one.buffer_length;
        }
        /* The next fetch rebinds the original (short) buffers. */
        mysql_stmt_bind_result(q->st, q->cols);
    }
    return DB_OK;
}

enum db_rc
dbq_one(struct dbq *q)
{
    enum db_rc rc = dbq_exec(q);
    if (rc != DB_OK)
        return rc;
    rc = dbq_fetch(q);
    if (rc == DB_OK) {
        /* Keep this row's values: copy text columns, then release. */
        for (size_t i = 0; i < q->nc; i++) {
            MYSQL_BIND *b = &q->cols[i];
            if (b->buffer_type == MYSQL_TYPE_STRING && !q->nulls[i])
                b->buffer = arena_strndup(q->u->arena, b->buffer, q->lens[i]);
        }
        release(q);
    }
    return rc;
}

size_t
dbq_ncols(struct dbq *q)
{
    return q->nc;
}

int
dbq_is_null(struct dbq *q, size_t col)
{
    return col >= q->nc || q->nulls[col];
}

int64_t
dbq_col_i64(struct dbq *q, size_t col)
{
    if (col >= q->nc || q->nulls[col])
        return 0;
    if (q->cols[col].buffer_type == MYSQL_TYPE_LONGLONG)
        return q->ints[col];
    return strtoll(dbq_col_str(q, col), NULL, 10);
}

const char *
dbq_col_str(struct dbq *q, size_t col)
{
    if (col >= q->nc || q->nulls[col])
        return NULL;
    MYSQL_BIND *b = &q->cols[col];
    if (b->buffer_type == MYSQL_TYPE_LONGLONG)
        return arena_printf(q->u->arena, "%lld", (long long)q->ints[col]);
    char *s = b->buffer;
    size_t n = q->lens[col] < b->buffer_length ? q->lens[col] : b->buffer_length;
    s[n] = '\0';
    return s;
}

int64_t
dbq_insert_id(struct dbq *q)
{
    return (int64_t)mysql_stmt_insert_id(q->st);
}

int64_t
dbq_affected(struct dbq *q)
{
    return (int64_t)mysql_stmt_affected_rows(q->st);
}

void
dbq_done(struct dbq *q)
{
    release(q);
}

/* ---- transactions -------------------------------------------------------- */

/* On a Galera node a transaction aborted by a replicated write-set (a
 * brute-force abort) is reported to the next text-protocol statement as a
 * deadlock, but a prepared statement sent after the abort may run on
 * outside it. So a write transaction there runs in a session with
 * autocommit=0 (such a statement opens a new transaction instead of
 * committing on its own) and tx_read_only=1 (that new transaction cannot
 * write; the explicit one is READ WRITE), and it first sets its own mark,
 * a number no earlier transaction of the session wrote, in the session's
 * temporary table. Before COMMIT a text-protocol statement reads the mark
 * back: an aborted transaction's update is rolled back with it, so a
 * different number (or the deadlock the read reports) means the work did
 * not all run in this transaction: it is rolled back and run again, and
 * nothing of it commits. */
enum db_rc
db_tx_begin(struct db_uow *u)
{
    enum db_rc rc = DB_OK;
    beginning = 1;
    if (unit_conn(u) == NULL)
        rc = u->failed;
    else if (conn_wsrep && !conn_mark) {
        /* The session's mark: a temporary table (never replicated) whose
         * one row each write transaction updates. */
        if ((rc = db_exec_fixed(u, "CREATE TEMPORARY TABLE IF NOT EXISTS pay_tx_mark"
                                   " (id TINYINT PRIMARY KEY, n BIGINT NOT NULL)"
                                   " ENGINE=InnoDB")) == DB_OK &&
            (rc = db_exec_fixed(u, "REPLACE INTO pay_tx_mark VALUES (1, 0)")) == DB_OK)
            conn_mark = 1;
    }
    if (rc == DB_OK && conn_wsrep && !conn_ro &&
        (rc = db_exec_fixed(u, "SET SESSION tx_read_only=1, autocommit=0")) == DB_OK)
        conn_ro = 1;
    if (rc == DB_OK)
        rc = db_exec_fixed(u, conn_wsrep ? "START TRANSACTION READ WRITE" : "START TRANSACTION");
    beginning = 0;
    if (rc != DB_OK)
        return rc;
    u->in_tx = conn_tx = 1;
    if (conn_wsrep) {
        char mark[64];
        snprintf(mark, sizeof(mark), "UPDATE pay_tx_mark SET n = %lld", ++tx_mark);
        if ((rc = db_exec_fixed(u, mark)) != DB_OK) {
            rollback_now(u);
            return rc;
        }
    }
    return DB_OK;
}

/* The session's transaction mark as the open transaction sees it (text
 * protocol); -1 when it cannot be read. */
static enum db_rc
read_mark(struct db_uow *u, long long *n)
{
    *n = -1;
    if (unit_conn(u) == NULL)
        return u->failed;
    if (mysql_query(conn, "SELECT n FROM pay_tx_mark") != 0)
        return unit_error(u, mysql_errno(conn), "transaction mark", mysql_error(conn));
    MYSQL_RES *res = mysql_store_result(conn);
    if (res == NULL)
        return unit_error(u, mysql_errno(conn), "transaction mark", mysql_error(conn));
    MYSQL_ROW row = mysql_fetch_row(res);
    if (row != NULL && row[0] != NULL)
        *n = strtoll(row[0], NULL, 10);
    mysql_free_result(res);
    return DB_OK;
}

enum db_rc
db_tx_intact(struct db_uow *u)
{
    if (u->failed != DB_OK)
        return u->failed;
    if (!u->in_tx || !conn_wsrep)
        return DB_OK;
    /* A transaction the cluster aborted may be reported to no statement
     * (see db_tx_begin): what ran after the abort ran outside it. */
    long long  n;
    enum db_rc rc = read_mark(u, &n);
    if (rc != DB_OK) {
        rollback_now(u);
        return rc;
    }
    if (n != tx_mark || !(conn->server_status & SERVER_STATUS_IN_TRANS))
        return vanished(u, n != tx_mark ? "mark lost" : "transaction gone");
    return DB_OK;
}

enum db_rc
db_tx_commit(struct db_uow *u)
{
    if (!u->in_tx && u->failed == DB_OK)
        return DB_OK;
    /* A COMMIT after an unreported abort would commit whatever ran after
     * it: make sure the work ran in this transaction. */
    enum db_rc rc = db_tx_intact(u);
    if (rc != DB_OK)
        return rc;
    rc = db_exec_fixed(u, "COMMIT");
    if (rc != DB_OK)
        rollback_now(u);
    u->in_tx = conn_tx = 0;
    return rc;
}

void
db_tx_rollback(struct db_uow *u)
{
    rollback_now(u);
}

void
db_uow_reset(struct db_uow *u)
{
    rollback_now(u);
    u->failed = DB_OK;
}

int
db_uow_retry(struct db_uow *u)
{
    if (u->failed != DB_RETRY)
        return 0;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long ms = (now.tv_sec - u->started.tv_sec) * 1000L +
              (now.tv_nsec - u->started.tv_nsec) / 1000000L;
    if (ms + cfg.lock_wait * 1000L > cfg.timeout * 1000L) {
        log_warn("db", "no time left for another attempt (%ld ms so far)", ms);
        return 0;
    }
    db_uow_reset(u);
    return 1;
}

/* ---- migrations ---------------------------------------------------------- */

static int
cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *
slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf != NULL && fread(buf, 1, (size_t)n, f) == (size_t)n)
        buf[n] = '\0';
    else {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    return buf;
}

int
db_schema_check(const char *latest, char *why, size_t n)
{
    struct db_uow u; /* a fixed statement only: no arena needed */
    db_uow_init(&u, NULL);
    if (unit_conn(&u) == NULL)
        return -1;
    if (mysql_query(conn, "SELECT COALESCE(MAX(version), '') FROM schema_migrations") != 0) {
        if (mysql_errno(conn) != ER_NO_SUCH_TABLE)
            return -1;
        snprintf(why, n, "no migration is applied (the binary's newest is %s)", latest);
        return 1;
    }
    MYSQL_RES *res = mysql_store_result(conn);
    MYSQL_ROW  row = res != NULL ? mysql_fetch_row(res) : NULL;
    int        rc = row == NULL || row[0] == NULL ? -1 : 0;
    int        order = rc == 0 ? strcmp(row[0], latest) : 0;
    if (order != 0) {
        snprintf(why, n, "the database's newest migration is %s, the binary's %s (%s)", row[0],
                 latest, order < 0 ? "run pay-api migrate" : "this binary is older than the"
                                                             " schema");
        rc = 1;
    }
    if (res != NULL)
        mysql_free_result(res);
    return rc;
}

int
db_migrate(const char *dir)
{
    struct db_uow u; /* fixed statements only: no arena needed */
    db_uow_init(&u, NULL);
    if (unit_conn(&u) == NULL)
        return -1;
    if (db_exec_fixed(&u, "CREATE TABLE IF NOT EXISTS schema_migrations ("
                      " version VARCHAR(191) PRIMARY KEY,"
                      " applied_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP"
                      ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4") != DB_OK)
        return -1;
    DIR *d = opendir(dir);
    if (d == NULL) {
        fprintf(stderr, "cannot open %s: %s\n", dir, strerror(errno));
        return -1;
    }
    char          *names[512];
    size_t         n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < 512) {
        size_t len = strlen(e->d_name);
        if (len > 4 && strcmp(e->d_name + len - 4, ".sql") == 0)
            names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof(names[0]), cmp_names);
    int rc = 0;
    mysql_set_server_option(conn, MYSQL_OPTION_MULTI_STATEMENTS_ON);
    for (size_t i = 0; i < n && rc == 0; i++) {
        char check[512];
        /* File names are ours ([0-9a-z_.]), never request data. */
        if (strspn(names[i], "0123456789abcdefghijklmnopqrstuvwxyz_.") !=
            strlen(names[i])) {
            fprintf(stderr, "bad migration file name %s\n", names[i]);
            rc = -1;
            break;
        }
        snprintf(check, sizeof(check),
                 "SELECT 1 FROM schema_migrations WHERE version='%s'", names[i]);
        if (mysql_query(conn, check) != 0) {
            rc = -1;
            break;
        }
        MYSQL_RES *res = mysql_store_result(conn);
        int        done = res != NULL && mysql_num_rows(res) > 0;
        if (res != NULL)
            mysql_free_result(res);
        if (done)
            continue;
        char path[1024];
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        char *sql = slurp(path);
        if (sql == NULL) {
            fprintf(stderr, "cannot read %s\n", path);
            rc = -1;
            break;
        }
        printf("applying %s\n", names[i]);
        if (db_exec_fixed(&u, sql) != DB_OK) {
            fprintf(stderr, "migration %s failed: %s\n", names[i], mysql_error(conn));
            rc = -1;
        } else {
            snprintf(check, sizeof(check),
                     "INSERT INTO schema_migrations (version) VALUES ('%s')",
                     names[i]);
            if (db_exec_fixed(&u, check) != DB_OK)
                rc = -1;
        }
        free(sql);
    }
    mysql_set_server_option(conn, MYSQL_OPTION_MULTI_STATEMENTS_OFF);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    return rc;
}
