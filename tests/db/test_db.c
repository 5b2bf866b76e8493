/*
 * db-level suite (label db): the unit of work and the money core against a
 * real MariaDB, without HTTP. tests/db/run.sh gives it a private database
 * (pay_dbtest, migrated and loaded with tests/fixtures/e2e.json) on the
 * stack fixture's server, through PAY_DB_SOCKET, PAY_DB_USER,
 * PAY_DB_PASSWORD and PAY_DB_NAME.
 *
 * A second connection (plain libmariadb, "the other session") plays the
 * concurrent writer: it takes row locks, kills our connection and reads
 * what was committed.
 */
#include <errno.h>
#include <inttypes.h>
#include <mysql.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "db.h"
#include "db_load.h"
#include "idempotency.h"
#include "ledger.h"
#include "test.h"

#define DBTEST_NAME "test_db"
#include "db/dbtest.h"

static struct db_settings settings;

static void
die(const char *what)
{
    fprintf(stderr, "test_db: %s\n", what);
    exit(2);
}

static MYSQL *
other_connect(void)
{
    MYSQL *m = mysql_init(NULL);
    if (mysql_real_connect(m, NULL, settings.user, settings.password, settings.name,
                           0, settings.socket, 0) == NULL)
        die(mysql_error(m));
    return m;
}

static int64_t
ledger_rows(int64_t customer)
{
    char sql[128];
    snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM ledger WHERE customer_id = %" PRId64,
             customer);
    return other_i64(other, sql);
}

/* One adjustment on a locked customer, as the API would write it. */
static enum db_rc
adjust(struct db_uow *u, struct customer *c, int64_t amount)
{
    struct ledger_row row = {.txn_type = "ADJUSTMENT", .customer_payment_type = "ADJUSTMENT",
                             .amount = amount, .description = "db test"};
    int64_t id;
    return ledger_append(u, c, &row, &id);
}

static long
ms_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (t1.tv_sec - t0->tv_sec) * 1000L + (t1.tv_nsec - t0->tv_nsec) / 1000000L;
}

/* ---- a deadlock: two sessions lock two customers in opposite order ------ */

struct locker {
    pthread_mutex_t mu;
    pthread_cond_t  cv;
    int             holds_second;
    int             result;      /* mysql errno of its second lock, 0 = ok */
};

static void *
locker_main(void *arg)
{
    struct locker *l = arg;
    MYSQL         *m = other_connect();
    other_sql(m, "SET SESSION innodb_lock_wait_timeout = 10");
    other_sql(m, "START TRANSACTION");
    /* Weight: InnoDB rolls back the transaction that changed less, so the
     * unit under test (which only locked) is the victim. */
    other_sql(m, "UPDATE customers SET customer_name = CONCAT(customer_name, '')"
                 " WHERE id BETWEEN 40 AND 60");
    other_sql(m, "SELECT id FROM customers WHERE id = 2 FOR UPDATE");
    pthread_mutex_lock(&l->mu);
    l->holds_second = 1;
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
    l->result = mysql_query(m, "SELECT id FROM customers WHERE id = 1 FOR UPDATE")
                    ? (int)mysql_errno(m) : 0;
    MYSQL_RES *res = mysql_store_result(m);
    if (res != NULL)
        mysql_free_result(res);
    other_sql(m, "ROLLBACK");
    mysql_close(m);
    return NULL;
}

static void
test_sticky_deadlock(struct arena *a)
{
    struct db_uow   u;
    struct customer c1, c2;
    struct locker   l = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
    pthread_t       th;
    int64_t         before = ledger_rows(1);

    db_uow_init(&u, a);
    CHECK(db_tx_begin(&u) == DB_OK, "begin");
    CHECK(customer_load(&u, 1, 1, &c1) == DB_OK, "lock customer 1");
    pthread_create(&th, NULL, locker_main, &l);
    pthread_mutex_lock(&l.mu);
    while (!l.holds_second)
        pthread_cond_wait(&l.cv, &l.mu);
    pthread_mutex_unlock(&l.mu);
    usleep(300 * 1000); /* the other session now waits for customer 1 */

    enum db_rc rc = customer_load(&u, 2, 1, &c2);
    CHECK(rc == DB_RETRY, "the victim of a deadlock gets DB_RETRY (got %d)", rc);
    pthread_join(th, NULL);
    CHECK(l.result == 0, "the other session got its lock once we rolled back (%d)", l.result);

    /* Sticky: the rest of the attempt runs nothing, not even in autocommit. */
    rc = adjust(&u, &c1, 1234);
    CHECK(rc == DB_RETRY, "a statement after the deadlock returns DB_RETRY (got %d)", rc);
    CHECK(customer_load(&u, 3, 0, &c2) == DB_RETRY, "a read too");
    CHECK(db_tx_commit(&u) == DB_RETRY, "commit of the failed unit is refused");
    CHECK(ledger_rows(1) == before, "nothing was written (%" PRId64 " rows, was %" PRId64 ")",
          ledger_rows(1), before);

    /* The retry policy starts the next attempt, which writes exactly once. */
    CHECK(db_uow_retry(&u) == 1, "time is left for another attempt");
    CHECK(u.failed == DB_OK, "the new attempt starts clean");
    CHECK(db_tx_begin(&u) == DB_OK && customer_load(&u, 1, 1, &c1) == DB_OK &&
              adjust(&u, &c1, 1234) == DB_OK && db_tx_commit(&u) == DB_OK,
          "the re-run commits");
    CHECK(ledger_rows(1) == before + 1, "exactly one row after the re-run");
    arena_reset(a);
}

/* ---- a lock wait timeout ------------------------------------------------ */

static void
test_sticky_lock_wait(struct arena *a)
{
    struct db_uow   u;
    struct customer c;
    int64_t         before = ledger_rows(3);

    other_sql(other, "START TRANSACTION");
    other_sql(other, "SELECT id FROM customers WHERE id = 3 FOR UPDATE");
    db_uow_init(&u, a);
    CHECK(db_tx_begin(&u) == DB_OK, "begin");
    enum db_rc rc = customer_load(&u, 3, 1, &c);
    CHECK(rc == DB_RETRY, "a lock wait timeout is DB_RETRY (got %d)", rc);
    other_sql(other, "ROLLBACK");
    /* The lock is free now, but the attempt has failed: nothing runs. */
    CHECK(customer_load(&u, 3, 1, &c) == DB_RETRY, "the unit stays failed");
    CHECK(ledger_rows(3) == before, "nothing written");
    db_uow_reset(&u);
    CHECK(db_tx_begin(&u) == DB_OK && customer_load(&u, 3, 1, &c) == DB_OK &&
              adjust(&u, &c, -500) == DB_OK && db_tx_commit(&u) == DB_OK,
          "a new unit works");
    CHECK(ledger_rows(3) == before + 1, "one row");

    /* No time left: the policy refuses another attempt. */
    db_uow_init(&u, a);
    u.started.tv_sec -= settings.timeout; /* as if the request began long ago */
    other_sql(other, "START TRANSACTION");
    other_sql(other, "SELECT id FROM customers WHERE id = 3 FOR UPDATE");
    CHECK(db_tx_begin(&u) == DB_OK, "begin");
    CHECK(customer_load(&u, 3, 1, &c) == DB_RETRY, "lock wait timeout");
    other_sql(other, "ROLLBACK");
    CHECK(db_uow_retry(&u) == 0, "no attempt past db_timeout");
    CHECK(u.failed == DB_RETRY, "the failure stays");
    db_uow_reset(&u);
    arena_reset(a);
}

/* ---- KILL CONNECTION in the middle of a transaction --------------------- */

static void
test_sticky_killed(struct arena *a)
{
    struct db_uow   u;
    struct customer c;
    int64_t         before = ledger_rows(4);

    db_uow_init(&u, a);
    struct dbq *q = dbq_new(&u, "SELECT CONNECTION_ID()");
    CHECK(dbq_one(q) == DB_OK, "connection id");
    int64_t id = dbq_col_i64(q, 0);
    CHECK(db_tx_begin(&u) == DB_OK && customer_load(&u, 4, 1, &c) == DB_OK, "lock customer 4");
    CHECK(adjust(&u, &c, 700) == DB_OK, "a write inside the transaction");
    char kill[64];
    snprintf(kill, sizeof(kill), "KILL CONNECTION %" PRId64, id);
    other_sql(other, kill);
    usleep(100 * 1000);

    enum db_rc rc = adjust(&u, &c, 800);
    CHECK(rc == DB_ERROR, "the next statement finds the connection gone (got %d)", rc);
    /* No reconnect in the middle of the unit: nothing runs in autocommit. */
    CHECK(adjust(&u, &c, 900) == DB_ERROR, "later statements fail too");
    CHECK(db_tx_commit(&u) == DB_ERROR, "commit fails");
    CHECK(ledger_rows(4) == before, "nothing was written (%" PRId64 " vs %" PRId64 ")",
          ledger_rows(4), before);

    /* The next unit reconnects and writes once. */
    db_uow_reset(&u);
    q = dbq_new(&u, "SELECT CONNECTION_ID()");
    CHECK(dbq_one(q) == DB_OK && dbq_col_i64(q, 0) != id, "a new connection");
    CHECK(db_tx_begin(&u) == DB_OK && customer_load(&u, 4, 1, &c) == DB_OK &&
              adjust(&u, &c, 700) == DB_OK && db_tx_commit(&u) == DB_OK,
          "the re-run commits");
    CHECK(ledger_rows(4) == before + 1, "exactly one row after the re-run");
    CHECK(other_i64(other, "SELECT balance FROM customers WHERE id = 4") ==
              other_i64(other, "SELECT SUM(amount) FROM ledger WHERE customer_id = 4"),
          "balance = sum of the ledger");
    arena_reset(a);
}

/* ---- an idempotency claim whose connection died ------------------------- */

static int64_t
conn_id(struct db_uow *u)
{
    struct dbq *q = dbq_new(u, "SELECT CONNECTION_ID()");
    return dbq_one(q) == DB_OK ? dbq_col_i64(q, 0) : -1;
}

static void
test_claim_of_dead_connection(struct arena *a)
{
    struct db_uow      u;
    struct idem_record rec;
    const char        *sub = "dbtest", *key = "claim-of-dead-connection";

    other_sql(other, "DELETE FROM idempotency_keys WHERE sub = 'dbtest'");
    db_uow_init(&u, a);
    int64_t holder = conn_id(&u);
    CHECK(idem_claim(&u, sub, key, "h") == DB_OK, "claim");
    /* The other session plays a second worker: the claim is in progress
     * while its connection lives. */
    CHECK(other_i64(other, "SELECT COUNT(*) FROM idempotency_keys WHERE sub = 'dbtest'"
                           " AND state = 0") == 1, "the claim is committed");
    CHECK(idem_lookup(&u, sub, key, &rec) == DB_OK && !rec.holder_gone,
          "a live holder: in progress");

    char kill[64];
    snprintf(kill, sizeof(kill), "KILL CONNECTION %" PRId64, holder);
    other_sql(other, kill);
    for (int i = 0; i < 100 && sql_i64("SELECT COUNT(*) FROM information_schema.PROCESSLIST"
                                       " WHERE ID = %" PRId64, holder) > 0; i++)
        usleep(20 * 1000);
    /* This unit finds its connection gone; the next one reconnects: a new
     * connection, which does not hold the claim. */
    CHECK(conn_id(&u) == -1, "the holder's connection is gone");
    db_uow_reset(&u);
    int64_t now = conn_id(&u);
    CHECK(now > 0 && now != holder, "a new connection");
    CHECK(idem_lookup(&u, sub, key, &rec) == DB_OK && rec.holder_gone && rec.claim_age < 60,
          "the holder's connection is gone: abandoned at once, long before the lease");
    CHECK(idem_store(&u, sub, key, 201, NULL, "{}", 2) == DB_CONFLICT,
          "a connection that does not hold the claim cannot complete it");
    CHECK(idem_release(&u, sub, key) == DB_OK &&
              other_i64(other, "SELECT COUNT(*) FROM idempotency_keys WHERE sub = 'dbtest'") == 1,
          "nor release it");
    CHECK(idem_take_over(&u, sub, key, rec.claimed_at) == DB_OK, "taken over");
    CHECK(idem_take_over(&u, sub, key, rec.claimed_at) == DB_CONFLICT,
          "a second take-over of the same abandoned claim loses");
    CHECK(idem_lookup(&u, sub, key, &rec) == DB_OK && !rec.holder_gone,
          "held again by a live connection");
    CHECK(idem_store(&u, sub, key, 201, NULL, "{}", 2) == DB_OK, "the new holder completes it");
    CHECK(other_i64(other, "SELECT COUNT(*) FROM idempotency_keys WHERE sub = 'dbtest'"
                           " AND state = 1 AND status = 201") == 1, "stored once");
    db_uow_reset(&u);
    other_sql(other, "DELETE FROM idempotency_keys WHERE sub = 'dbtest'");
    arena_reset(a);
}

/* ---- a transaction left open by its unit -------------------------------- */

static void
test_abandoned_tx(struct arena *a)
{
    struct db_uow   u;
    struct customer c;
    int64_t         before = ledger_rows(5);

    db_uow_init(&u, a);
    CHECK(db_tx_begin(&u) == DB_OK && customer_load(&u, 5, 1, &c) == DB_OK &&
              adjust(&u, &c, 100) == DB_OK, "work left uncommitted");
    /* The next unit (say the next request) must not commit it. */
    db_uow_init(&u, a);
    struct dbq *q = dbq_new(&u, "SELECT @@in_transaction");
    CHECK(dbq_one(q) == DB_OK && dbq_col_i64(q, 0) == 0, "rolled back before the next unit");
    CHECK(ledger_rows(5) == before, "nothing of it was committed");
    arena_reset(a);
}

/* ---- another customer of the same currency is not blocked -------------- */

static void
test_no_shared_lock(struct arena *a, pid_t child, int go_fd, int done_fd)
{
    struct db_uow   u;
    struct customer c;
    char            res[64] = "";

    db_uow_init(&u, a);
    CHECK(db_tx_begin(&u) == DB_OK && customer_load(&u, 6, 1, &c) == DB_OK,
          "customer 6 locked (GBP, owner 1)");
    /* The customer's statement reads its currency too, without locking it. */
    char sql[160];
    snprintf(sql, sizeof(sql), "SELECT id FROM currencies WHERE id = %" PRId64 " FOR UPDATE",
             c.currency_id);
    other_sql(other, "SET SESSION innodb_lock_wait_timeout = 1");
    CHECK(c.digits == 2 && strcmp(c.currency_code, "GBP") == 0 &&
              mysql_query(other, sql) == 0,
          "the currency (%s) is loaded and not locked: %s", c.currency_code, mysql_error(other));
    mysql_free_result(mysql_store_result(other));
    other_sql(other, "SET SESSION innodb_lock_wait_timeout = DEFAULT");
    if (write(go_fd, "g", 1) != 1)
        die("pipe");
    ssize_t n = read(done_fd, res, sizeof(res) - 1);
    res[n > 0 ? n : 0] = '\0';
    long ms = -1;
    int  rc = -1;
    sscanf(res, "%d %ld", &rc, &ms);
    CHECK(rc == DB_OK, "a payment of customer 7 (same owner and currency) commits (rc %d)", rc);
    CHECK(ms >= 0 && ms < 1000, "at once, not after a lock wait (%ld ms)", ms);
    db_tx_rollback(&u);
    waitpid(child, NULL, 0);
    arena_reset(a);
}

/* The child: its own connection (made after fork), one payment. */
static void
child_payment(int go_fd, int done_fd)
{
    char c;
    if (read(go_fd, &c, 1) != 1)
        _exit(1);
    struct arena   *a = arena_create(1 << 16);
    struct db_uow   u;
    struct customer cu;
    struct timespec t0;
    int64_t         id;
    if (db_open(&settings) != 0)
        _exit(1);
    db_uow_init(&u, a);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    enum db_rc rc = db_tx_begin(&u);
    if (rc == DB_OK)
        rc = customer_load(&u, 7, 1, &cu);
    if (rc == DB_OK)
        rc = customer_payment_record(&u, &cu, 1000, "BACS", "db test", NULL, "NORMAL", &id);
    if (rc == DB_OK)
        rc = db_tx_commit(&u);
    dprintf(done_fd, "%d %ld", (int)rc, ms_since(&t0));
    _exit(0);
}

/* ---- statement cache and long text ------------------------------------- */

static void
test_statement_cache(struct arena *a)
{
    struct db_uow u;
    char          sql[96];
    int           bad = 0;

    static const char *const open_sql =
        "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS"
        " WHERE VARIABLE_NAME = 'PREPARED_STMT_COUNT'";
    int64_t open0 = other_i64(other, open_sql); /* other sessions' too */

    db_uow_init(&u, a);
    /* More distinct statements than the cache holds, twice over. */
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < 600; i++) {
            snprintf(sql, sizeof(sql), "SELECT %d + ?", i);
            struct dbq *q = dbq_new(&u, sql);
            dbq_i64(q, 1000);
            if (dbq_one(q) != DB_OK || dbq_col_i64(q, 0) != 1000 + i)
                bad++;
        }
    CHECK(bad == 0, "600 statements, evicted and prepared again, answer right (%d wrong)", bad);
    int64_t open = other_i64(other, open_sql);
    CHECK(open0 >= 0 && open - open0 <= 256,
          "statements held stay within the cache's 256 (%" PRId64 " more)", open - open0);
    arena_reset(a);
}

/* This process's connection (db.c's) counters: index entries read in key
 * order (Handler_read_next + _prev), statements prepared, statements
 * closed. Other sessions do not move them. */
struct session_counts {
    int64_t reads, prepared, closed;
};

static struct session_counts
session_counts(struct arena *a)
{
    struct session_counts c = {-1, -1, -1};
    struct db_uow         u;
    db_uow_init(&u, a);
    struct dbq *q = dbq_new(&u, "SELECT SUM(IF(VARIABLE_NAME IN ('HANDLER_READ_NEXT',"
                                " 'HANDLER_READ_PREV'), VARIABLE_VALUE, 0)),"
                                " SUM(IF(VARIABLE_NAME = 'COM_STMT_PREPARE', VARIABLE_VALUE, 0)),"
                                " SUM(IF(VARIABLE_NAME = 'COM_STMT_CLOSE', VARIABLE_VALUE, 0))"
                                " FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME IN"
                                " ('HANDLER_READ_NEXT', 'HANDLER_READ_PREV', 'COM_STMT_PREPARE',"
                                " 'COM_STMT_CLOSE')");
    if (dbq_one(q) == DB_OK)
        c = (struct session_counts){atoll(dbq_col_str(q, 0)), atoll(dbq_col_str(q, 1)),
                                    atoll(dbq_col_str(q, 2))};
    db_uow_reset(&u);
    return c;
}

/* MIN/MAX per group over an IN list (handlers/list.c's owner span): two
 * index dives per group, not a read of every matching row, on each of
 * several uses; a fresh statement is prepared for its use and closed when
 * its rows are read (at 10 M rows MariaDB re-planned the re-executed
 * cached form into a range scan of every matching row: tests/bench). */
static void
test_fresh_statement(struct arena *a)
{
    other_sql(other, "CREATE OR REPLACE TABLE span_probe (id BIGINT PRIMARY KEY,"
                     " o BIGINT NOT NULL, k TINYINT NOT NULL, KEY span_probe_ok (o, k, id))");
    other_sql(other, "INSERT INTO span_probe SELECT seq, seq % 20, 1 + seq % 2"
                     " FROM seq_1_to_200000");
    other_sql(other, "ANALYZE TABLE span_probe");
    (void)session_counts(a); /* its own statement prepared and cached */
    for (int i = 0; i < 3; i++) {
        struct db_uow u;
        db_uow_init(&u, a);
        struct session_counts c0 = session_counts(a);
        struct dbq *q = dbq_new_fresh(&u, "SELECT MIN(id), MAX(id) FROM span_probe"
                                          " WHERE o IN (?,?,?) GROUP BY o, k");
        dbq_i64(q, 3);
        dbq_i64(q, 7);
        dbq_i64(q, 11);
        int64_t lo = INT64_MAX, hi = 0, groups = 0;
        enum db_rc rc = dbq_exec(q);
        while (rc == DB_OK && (rc = dbq_fetch(q)) == DB_OK) {
            lo = dbq_col_i64(q, 0) < lo ? dbq_col_i64(q, 0) : lo;
            hi = dbq_col_i64(q, 1) > hi ? dbq_col_i64(q, 1) : hi;
            groups++;
        }
        struct session_counts c2 = session_counts(a);
        CHECK(rc == DB_NOT_FOUND && groups == 3 && lo == 3 && hi == 199991,
              "use %d: the groups' span (%d, %" PRId64 " groups, %" PRId64 "-%" PRId64 ")",
              i + 1, (int)rc, groups, lo, hi);
        CHECK(c0.reads >= 0 && c2.reads - c0.reads < 100,
              "use %d: two dives per group (%" PRId64 " entries read in key order; 30,000 rows"
              " match)", i + 1, c2.reads - c0.reads);
        CHECK(c2.prepared == c0.prepared + 1 && c2.closed == c0.closed + 1,
              "use %d: prepared for the use (+%" PRId64 "), closed after its rows (+%" PRId64
              ")", i + 1, c2.prepared - c0.prepared, c2.closed - c0.closed);
        db_uow_reset(&u);
        arena_reset(a);
    }
    other_sql(other, "DROP TABLE span_probe");
}

static void
test_long_text(struct arena *a)
{
    struct db_uow u;
    db_uow_init(&u, a);
    /* Rows alternate long and short text: a long one is fetched again into
     * a buffer of its size, and the next row uses the short buffers. */
    struct dbq *q = dbq_new(&u,
        "SELECT n, REPEAT(CHAR(64 + n), IF(n % 2 = 1, 5000 + n, n)), n * 2"
        " FROM (SELECT 1 AS n UNION ALL SELECT 2 UNION ALL SELECT 3"
        " UNION ALL SELECT 4 UNION ALL SELECT 5) t ORDER BY n");
    CHECK(dbq_exec(q) == DB_OK, "exec");
    int rows = 0, bad = 0;
    enum db_rc rc;
    while ((rc = dbq_fetch(q)) == DB_OK) {
        int64_t     n = dbq_col_i64(q, 0);
        const char *s = dbq_col_str(q, 1);
        size_t      want = n % 2 == 1 ? (size_t)(5000 + n) : (size_t)n;
        if (s == NULL || strlen(s) != want || s[0] != (char)(64 + n) ||
            s[want - 1] != (char)(64 + n) || dbq_col_i64(q, 2) != n * 2)
            bad++;
        rows++;
    }
    CHECK(rc == DB_NOT_FOUND && rows == 5 && bad == 0, "5 rows, %d wrong", bad);
    q = dbq_new(&u, "SELECT REPEAT('z', 70000)");
    CHECK(dbq_one(q) == DB_OK && strlen(dbq_col_str(q, 0)) == 70000, "70,000 characters in one");
    arena_reset(a);
}

/* ---- a statement the client gave up on stops in the server ------------- */

static void
test_statement_limit(struct arena *a)
{
    struct db_settings s = settings;
    struct db_uow      u;
    struct timespec    t0;

    s.timeout = 2;          /* the client's read timeout ... */
    s.statement_limit = 2;  /* ... and the server's limit, as the API sets them */
    db_close();
    if (db_open(&s) != 0)
        die("db_open");
    db_uow_init(&u, a);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct dbq *q = dbq_new(&u, "SELECT COUNT(*) + ? FROM seq_1_to_100000 a, seq_1_to_100000 b");
    dbq_i64(q, 1);
    enum db_rc rc = dbq_one(q);
    long ms = ms_since(&t0);
    CHECK(rc == DB_ERROR, "a statement past the limit fails (got %d)", rc);
    CHECK(ms < 4000, "after about the limit (%ld ms)", ms);
    CHECK(u.failed == DB_ERROR, "and fails its unit");
    usleep(1000 * 1000);
    int64_t running = other_i64(other, "SELECT COUNT(*) FROM information_schema.PROCESSLIST"
                                       " WHERE INFO LIKE 'SELECT COUNT(*) + ? FROM seq_1_to_100000%'");
    CHECK(running == 0, "within a second nothing of it runs in the server (%" PRId64 ")",
          running);
    db_close();
    if (db_open(&settings) != 0)
        die("db_open");
    arena_reset(a);
}

/* ---- the loader writes through the money core --------------------------- */

static void
test_loader(void)
{
    char path[] = "/tmp/pay-dbtest-XXXXXX";
    int  fd = mkstemp(path);
    if (fd < 0)
        die("mkstemp");
    /* An invoice raised with a pending third-party status, and an adhoc one. */
    dprintf(fd, "{\"invoices\":[{\"id\":9001,\"customerId\":8,\"billRunId\":1,"
                "\"invoiceNumber\":\"DBT-9001\",\"invoiceDate\":\"2025-06-01\","
                "\"amount\":12.34,\"thirdPartyStatus\":\"SUBMITTED\"}],"
                "\"adhocInvoices\":[{\"id\":9002,\"customerId\":8,\"billRunId\":3,"
                "\"invoiceNumber\":\"DBT-9002\",\"invoiceDate\":\"2025-06-02\","
                "\"amount\":5}]}");
    close(fd);
    int64_t before = other_i64(other, "SELECT balance FROM customers WHERE id = 8");
    CHECK(db_load_file(path) == 0, "load");
    unlink(path);
    CHECK(other_i64(other, "SELECT COUNT(*) FROM invoices WHERE kind = 1 AND id = 9001"
                           " AND payment_status = 'PENDING'") == 1,
          "a loaded invoice with a pending status is PENDING, as the API derives it");
    CHECK(other_i64(other, "SELECT COUNT(*) FROM invoices WHERE kind = 2 AND id = 9002"
                           " AND payment_status = 'UNPAID'") == 1, "the adhoc one UNPAID");
    CHECK(other_i64(other, "SELECT COUNT(*) FROM ledger WHERE customer_id = 8 AND"
                           " ((invoice_kind = 1 AND invoice_id = 9001 AND amount = -1234 AND"
                           " txn_type = 'INVOICE_CREATED' AND payment_date = '2025-06-01') OR"
                           " (invoice_kind = 2 AND invoice_id = 9002 AND amount = -500 AND"
                           " txn_type = 'ADHOC_INVOICE_CREATED'))") == 2,
          "each has its creation row, dated the invoice date");
    CHECK(other_i64(other, "SELECT balance FROM customers WHERE id = 8") == before - 1734,
          "the balance moved by both");
    CHECK(other_i64(other, "SELECT balance FROM customers WHERE id = 8") ==
              other_i64(other, "SELECT SUM(amount) FROM ledger WHERE customer_id = 8"),
          "balance = sum of the ledger");
}

int
main(void)
{
    const char *name = getenv("PAY_DB_NAME");
    settings = (struct db_settings){
        .socket = getenv("PAY_DB_SOCKET"), .user = getenv("PAY_DB_USER"),
        .password = getenv("PAY_DB_PASSWORD"), .name = name,
        .timeout = 10, .lock_wait = 1};
    if (settings.socket == NULL || settings.user == NULL || name == NULL ||
        strcmp(name, "pay_dbtest") != 0)
        die("run me through tests/db/run.sh (PAY_DB_* of a private pay_dbtest database)");

    /* The child of test_no_shared_lock is forked before any connection. */
    int go[2], done[2];
    if (pipe(go) != 0 || pipe(done) != 0)
        die("pipe");
    pid_t child = fork();
    if (child == 0) {
        close(go[1]);
        close(done[0]);
        child_payment(go[0], done[1]);
    }
    close(go[0]);
    close(done[1]);

    if (db_open(&settings) != 0)
        die("db_open");
    other = other_connect();
    struct arena *a = arena_create(1 << 16);

    test_sticky_deadlock(a);
    test_sticky_lock_wait(a);
    test_sticky_killed(a);
    test_abandoned_tx(a);
    test_claim_of_dead_connection(a);
    test_no_shared_lock(a, child, go[1], done[0]);
    test_statement_cache(a);
    test_fresh_statement(a);
    test_long_text(a);
    test_statement_limit(a);
    test_loader();

    arena_destroy(a);
    db_close();
    mysql_close(other);
    return TEST_DONE();
}
