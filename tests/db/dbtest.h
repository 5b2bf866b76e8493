/*
 * Helpers the db-level suites (tests/db/test_*.c) share: SQL through a second,
 * plain libmariadb session ("the other session"), which reads only what was
 * committed and plays the concurrent writer. Each suite defines DBTEST_NAME
 * (its name in messages) before including this and connects `other` itself.
 * A failed statement ends the suite with exit status 2 (a setup error, not a
 * failed check).
 */
#ifndef PAY_TESTS_DBTEST_H
#define PAY_TESTS_DBTEST_H

#include <inttypes.h>
#include <mysql.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#ifndef DBTEST_NAME
#error "define DBTEST_NAME (the suite's name in messages) before including dbtest.h"
#endif

static MYSQL *other;

static inline void
dbtest_fail(MYSQL *m, const char *sql)
{
    fprintf(stderr, DBTEST_NAME ": %s: %s\n", sql, mysql_error(m));
    exit(2);
}

/* Runs sql on m and drops whatever results it gives. */
static inline void
other_sql(MYSQL *m, const char *sql)
{
    if (mysql_query(m, sql) != 0)
        dbtest_fail(m, sql);
    while (1) {
        MYSQL_RES *res = mysql_store_result(m);
        if (res != NULL)
            mysql_free_result(res);
        if (mysql_next_result(m) != 0)
            break;
    }
}

/* The first column of the first row of sql on m as an integer; -1 when there
 * is no row or it is NULL. */
static inline int64_t
other_i64(MYSQL *m, const char *sql)
{
    if (mysql_query(m, sql) != 0)
        dbtest_fail(m, sql);
    MYSQL_RES *res = mysql_store_result(m);
    MYSQL_ROW  row = res ? mysql_fetch_row(res) : NULL;
    int64_t    v = row && row[0] ? strtoll(row[0], NULL, 10) : -1;
    if (res != NULL)
        mysql_free_result(res);
    return v;
}

static inline void
sql_do(const char *sql)
{
    other_sql(other, sql);
}

static inline int64_t sql_i64(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* other_i64 on the other session, the statement formatted like printf. */
static inline int64_t
sql_i64(const char *fmt, ...)
{
    char    sql[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof(sql), fmt, ap);
    va_end(ap);
    return other_i64(other, sql);
}

/* The customer's balance equals the sum of its ledger rows. */
static inline int
ledger_ok(int64_t customer)
{
    return sql_i64("SELECT balance FROM customers WHERE id = %" PRId64, customer) ==
           sql_i64("SELECT COALESCE(SUM(amount), 0) FROM ledger WHERE customer_id = %" PRId64,
                   customer);
}

#endif
