/*
 * In-process handler suite (label db): the real route table and the real
 * pipeline hooks, driven through router_dispatch against MariaDB (the
 * private pay_dbtest database of tests/db/run.sh), without nginx or
 * FastCGI: a fake source hands in the CGI parameters and the body, a sink
 * collects the response. Every money-moving operation runs here, and after
 * each one the customer's balance must equal the sum of its ledger.
 */
#include <inttypes.h>
#include <mysql.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "arena.h"
#include "auth.h"
#include "collector.h"
#include "db.h"
#include "db_load.h"
#include "handlers.h"
#include "json.h"
#include "list.h"
#include "ledger.h"
#include "log.h"
#include "pipeline.h"
#include "router.h"
#include "test.h"

#define DBTEST_NAME "test_handlers"
#include "db/dbtest.h"

#define SECRET "handler-test-secret-0123456789abcdef-0123456789"

static struct arena *A;   /* the "worker" arena, reset per request */
static struct arena *JA;  /* responses, kept by the test */
static char         *token;

/* ---- one request ---------------------------------------------------------- */

struct fake {
    const char *env[32];
    const char *body;
    size_t      len, pos;
};

static const char *
f_env(void *ctx, const char *name)
{
    struct fake *f = ctx;
    for (size_t i = 0; f->env[i] != NULL; i += 2)
        if (strcmp(f->env[i], name) == 0)
            return f->env[i + 1];
    return NULL;
}

static long
f_read(void *ctx, char *buf, size_t n)
{
    struct fake *f = ctx;
    size_t       k = f->len - f->pos < n ? f->len - f->pos : n;
    memcpy(buf, f->body + f->pos, k);
    f->pos += k;
    return (long)k;
}

static struct abuf out;

static int
f_write(void *ctx, const char *p, size_t n)
{
    (void)ctx;
    abuf_add(&out, p, n);
    return 0;
}

struct res {
    int                status;
    const char        *raw;
    struct json_value *json;
};

static struct res
call_as(const char *method, const char *path, const char *body, const char *type,
        const char *idem, const char *cookie)
{
    char        auth[1024], len[24], uri[512];
    struct fake f = {{NULL}, body, body ? strlen(body) : 0, 0};
    size_t      n = 0;
    snprintf(auth, sizeof(auth), "Bearer %s", token);
    snprintf(uri, sizeof(uri), "%s", path);
    char *query = strchr(uri, '?');
    if (query != NULL)
        *query++ = '\0';
    path = uri;
    snprintf(len, sizeof(len), "%zu", f.len);
#define ENV(k, v) (f.env[n++] = (k), f.env[n++] = (v))
    ENV("REQUEST_METHOD", method);
    ENV("DOCUMENT_URI", path);
    ENV("QUERY_STRING", query ? query : "");
    ENV("HTTP_AUTHORIZATION", auth);
    ENV("REMOTE_ADDR", "127.0.0.1");
    if (body != NULL) {
        ENV("CONTENT_TYPE", type);
        ENV("CONTENT_LENGTH", len);
    }
    if (idem != NULL)
        ENV("HTTP_IDEMPOTENCY_KEY", idem);
    if (cookie != NULL)
        ENV("HTTP_COOKIE", cookie);
#undef ENV
    struct req r;
    abuf_init(&out, JA);
    req_init(&r, A);
    r.src = (struct source){f_env, f_read, &f};
    r.out = (struct sink){f_write, NULL};
    struct res res = {router_dispatch(&r), NULL, NULL};
    arena_reset(A);
    res.raw = abuf_str(&out);
    const char *body_at = strstr(res.raw, "\r\n\r\n");
    const char *err;
    if (body_at != NULL && body_at[4] != '\0' &&
        json_parse(JA, body_at + 4, strlen(body_at + 4), &res.json, &err) != 0)
        res.json = NULL;
    return res;
}

static struct res
call(const char *method, const char *path, const char *body, const char *idem)
{
    return call_as(method, path, body, "application/json", idem, NULL);
}

static const char *
jstr(const struct res *res, const char *key)
{
    struct json_value *v = json_get(res->json, key);
    return v && (v->type == JSON_STRING || v->type == JSON_NUMBER) ? v->str : NULL;
}

#define POST(path, body) call("POST", path, body, NULL)

/* ---- tenant-wide lists at scale -------------------------------------------- */

/* The value of response header `name` (up to the line end) in buf. */
static const char *
header(const struct res *res, const char *name, char *buf, size_t size)
{
    char   key[64];
    snprintf(key, sizeof(key), "\r\n%s: ", name);
    const char *p = strstr(res->raw, key);
    buf[0] = '\0';
    if (p != NULL) {
        p += strlen(key);
        size_t n = strcspn(p, "\r\n");
        snprintf(buf, size, "%.*s", (int)(n < size ? n : size - 1), p);
    }
    return buf;
}

/* The values of field `key` in a list response, comma-separated. */
static void
field_of(const struct res *res, const char *key, char *buf, size_t size)
{
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; res->json && res->json->type == JSON_ARRAY && i < res->json->n; i++) {
        struct json_value *id = json_get(res->json->items[i], key);
        n += (size_t)snprintf(buf + n, n < size ? size - n : 0, "%s%s", i ? "," : "",
                              id && id->type == JSON_NUMBER ? id->str : "?");
    }
}

/* The ids of a list response, comma-separated. */
static void
ids_of(const struct res *res, char *buf, size_t size)
{
    field_of(res, "id", buf, size);
}

/* The same rows read directly: GROUP_CONCAT of the ids. */
static void
ids_sql(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void
ids_sql(char *buf, size_t size, const char *fmt, ...)
{
    char    sql[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof(sql), fmt, ap);
    va_end(ap);
    buf[0] = '\0';
    if (mysql_query(other, sql) != 0) {
        fprintf(stderr, "test_handlers: %s: %s\n", sql, mysql_error(other));
        exit(2);
    }
    MYSQL_RES *r = mysql_store_result(other);
    MYSQL_ROW  row;
    size_t     n = 0;
    while (r != NULL && (row = mysql_fetch_row(r)) != NULL)
        n += (size_t)snprintf(buf + n, n < size ? size - n : 0, "%s%s", n ? "," : "", row[0]);
    if (r != NULL)
        mysql_free_result(r);
}

/* EXPLAIN's first row: key and Extra, as "key | extra". */
static void
explain(char *buf, size_t size, const char *sql)
{
    char q[2048];
    snprintf(q, sizeof(q), "EXPLAIN %s", sql);
    buf[0] = '\0';
    if (mysql_query(other, q) != 0) {
        fprintf(stderr, "test_handlers: %s: %s\n", q, mysql_error(other));
        exit(2);
    }
    MYSQL_RES *r = mysql_store_result(other);
    MYSQL_ROW  row = r ? mysql_fetch_row(r) : NULL;
    if (row != NULL)
        snprintf(buf, size, "%s | %s", row[5] ? row[5] : "NULL", row[9] ? row[9] : "");
    printf("# %s\n#   -> %s\n", sql, buf);
    if (r != NULL)
        mysql_free_result(r);
}

/* Generated data (tens of thousands of events over ten new contract
 * owners): every page the API gives, by page number and by following Link
 * next, is the rows an independent query gives; X-Total-Count is the
 * count; and the statements start from the index in the list's order.
 * The generated events straddle a block of the owners' counters (schema
 * 011), so a page number is found by adding up more than one block. */
static void
test_tenant_lists(void)
{
    int64_t base = sql_i64("SELECT MAX(id) FROM contract_owners");
    /* The generator numbers its events after the highest id: a copy of the
     * newest event placed 4000 ids before a block boundary, removed again
     * after the generation, puts the boundary among the generated events. */
    int64_t top = sql_i64("SELECT MAX(id) FROM invoice_payments");
    int64_t bump = (((top >> 15) + 2) << 15) - 4000;
    char    stmt[512];
    sql_do("CREATE TEMPORARY TABLE bump AS SELECT * FROM invoice_payments"
           " WHERE id = (SELECT MAX(id) FROM invoice_payments)");
    snprintf(stmt, sizeof(stmt), "UPDATE bump SET id = %" PRId64 ", ledger_id = NULL,"
             " customer_payment_id = NULL, attempt_id = NULL", bump);
    sql_do(stmt);
    sql_do("INSERT INTO invoice_payments SELECT * FROM bump");
    sql_do("DROP TEMPORARY TABLE bump");
    int gen = db_generate(1200, 12000, 7);
    snprintf(stmt, sizeof(stmt), "DELETE FROM invoice_payments WHERE id = %" PRId64, bump);
    sql_do(stmt);
    if (gen != 0) {
        CHECK(0, "generate the data");
        return;
    }
    CHECK(sql_i64("SELECT COUNT(DISTINCT block) FROM owner_counts WHERE contract_owner_id = %"
                  PRId64 " AND normal_events > 0", base + 1) >= 2,
          "the generated owner's events span more than one block of ids");
    mysql_query(other, "ANALYZE TABLE invoice_payments, customers, refunds");
    mysql_free_result(mysql_store_result(other));
    char *saved = token, err[256], want[16384], got[16384], hdr[1024], owners[256];
    /* One owner, two, and all ten (a token naming many owners: the page's
     * ids are bounded by the blocks that hold it). */
    for (int n = 1; n <= 10; n += n == 1 ? 1 : 8) {
        int64_t o[10];
        size_t  used = 0;
        for (int k = 0; k < n; k++) {
            o[k] = base + 1 + k;
            used += (size_t)snprintf(owners + used, sizeof(owners) - used, "%s%" PRId64,
                                     k ? "," : "", o[k]);
        }
        token = auth_issue("lists", "payments:read", o, (size_t)n, 600, time(NULL), err,
                           sizeof(err));
        int64_t total = sql_i64("SELECT COUNT(*) FROM invoice_payments p JOIN customers c"
                                " ON c.id = p.customer_id WHERE p.invoice_kind = 1"
                                " AND c.contract_owner_id IN (%s)", owners);
        CHECK(total > 1000, "owners %s: generated events to page through (%" PRId64 ")",
              owners, total);
        int64_t size = 100, last = (total + size - 1) / size;
        int64_t pages[] = {1, 2, last / 3, last / 2, 2 * last / 3, last - 1, last};
        for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]); i++) {
            char path[256];
            snprintf(path, sizeof(path), "/v1/invoice-payments?page=%" PRId64
                     "&pageSize=%" PRId64, pages[i], size);
            struct res r = call("GET", path, NULL, NULL);
            CHECK(r.status == 200, "%s: 200 (%d)", path, r.status);
            CHECK(atoll(header(&r, "X-Total-Count", hdr, sizeof(hdr))) == total,
                  "%s: X-Total-Count %s = %" PRId64, path, hdr, total);
            ids_of(&r, got, sizeof(got));
            ids_sql(want, sizeof(want), "SELECT p.id FROM invoice_payments p JOIN customers c"
                    " ON c.id = p.customer_id WHERE p.invoice_kind = 1 AND"
                    " c.contract_owner_id IN (%s) ORDER BY p.id LIMIT %" PRId64
                    " OFFSET %" PRId64, owners, size, (pages[i] - 1) * size);
            CHECK_STR(got, want, "%s: the rows", path);
            /* Link next continues by keyset and gives the next page. */
            header(&r, "Link", hdr, sizeof(hdr));
            if (pages[i] < last) {
                char nextp[256];
                const char *lt = strstr(hdr, ">; rel=\"next\"");
                const char *from = lt ? lt : hdr;
                while (from > hdr && *from != '<')
                    from--;
                snprintf(nextp, sizeof(nextp), "%.*s", lt ? (int)(lt - from - 1) : 0, from + 1);
                CHECK(strstr(nextp, "&after=") != NULL, "%s: Link next carries after: %s",
                      path, nextp);
                r = call("GET", nextp, NULL, NULL);
                ids_of(&r, got, sizeof(got));
                ids_sql(want, sizeof(want), "SELECT p.id FROM invoice_payments p JOIN customers c"
                        " ON c.id = p.customer_id WHERE p.invoice_kind = 1 AND"
                        " c.contract_owner_id IN (%s) ORDER BY p.id LIMIT %" PRId64
                        " OFFSET %" PRId64, owners, size, pages[i] * size);
                CHECK_STR(got, want, "%s: following Link next", nextp);
            } else {
                CHECK(strstr(hdr, "rel=\"next\"") == NULL, "%s: no next on the last page", path);
            }
        }
        /* A malformed continuation is a 400; one for another page is
         * ignored: `page` decides which page is answered. */
        struct res bad = call("GET", "/v1/invoice-payments?page=2&pageSize=10&after=2x",
                              NULL, NULL);
        CHECK(bad.status == 400 && strstr(bad.raw, "\"after\""),
              "after=2x: 400 naming after (%d)", bad.status);
        bad = call("GET", "/v1/invoice-payments?page=3&pageSize=100&after=2.1", NULL, NULL);
        ids_of(&bad, got, sizeof(got));
        ids_sql(want, sizeof(want), "SELECT p.id FROM invoice_payments p JOIN customers c"
                " ON c.id = p.customer_id WHERE p.invoice_kind = 1 AND c.contract_owner_id"
                " IN (%s) ORDER BY p.id LIMIT 100 OFFSET 200", owners);
        CHECK_STR(got, want, "owners %s: page=3 with another page's after is page 3", owners);
        /* Descending, and a filter (the count is then COUNT(*)). */
        struct res r = call("GET", "/v1/invoice-payments?page=3&pageSize=100&sort=id:desc",
                            NULL, NULL);
        ids_of(&r, got, sizeof(got));
        ids_sql(want, sizeof(want), "SELECT p.id FROM invoice_payments p JOIN customers c"
                " ON c.id = p.customer_id WHERE p.invoice_kind = 1 AND c.contract_owner_id"
                " IN (%s) ORDER BY p.id DESC LIMIT 100 OFFSET 200", owners);
        CHECK_STR(got, want, "owners %s: page 3 by id:desc", owners);
        for (int64_t pg = last / 3; pg <= last - 1; pg += last / 3) {
            char path[256];
            snprintf(path, sizeof(path), "/v1/invoice-payments?page=%" PRId64
                     "&pageSize=70&sort=id:desc", pg);
            r = call("GET", path, NULL, NULL);
            ids_of(&r, got, sizeof(got));
            ids_sql(want, sizeof(want), "SELECT p.id FROM invoice_payments p JOIN customers c"
                    " ON c.id = p.customer_id WHERE p.invoice_kind = 1 AND c.contract_owner_id"
                    " IN (%s) ORDER BY p.id DESC LIMIT 70 OFFSET %" PRId64, owners, (pg - 1) * 70);
            CHECK_STR(got, want, "owners %s: %s", owners, path);
            /* Descending, continued by keyset. */
            int64_t prev = (pg - 1) * 70;
            snprintf(path, sizeof(path), "/v1/invoice-payments?page=%" PRId64
                     "&pageSize=70&sort=id:desc&after=%" PRId64 ".%" PRId64, pg + 1, pg + 1,
                     sql_i64("SELECT p.id FROM invoice_payments p JOIN customers c"
                             " ON c.id = p.customer_id WHERE p.invoice_kind = 1 AND"
                             " c.contract_owner_id IN (%s) ORDER BY p.id DESC LIMIT 1"
                             " OFFSET %" PRId64, owners, prev + 69));
            r = call("GET", path, NULL, NULL);
            ids_of(&r, got, sizeof(got));
            ids_sql(want, sizeof(want), "SELECT p.id FROM invoice_payments p JOIN customers c"
                    " ON c.id = p.customer_id WHERE p.invoice_kind = 1 AND c.contract_owner_id"
                    " IN (%s) ORDER BY p.id DESC LIMIT 70 OFFSET %" PRId64, owners, pg * 70);
            CHECK_STR(got, want, "owners %s: %s", owners, path);
        }
        r = call("GET", "/v1/invoice-payments?page=1&pageSize=10&customerPaymentType=CUSTOMER",
                 NULL, NULL);
        CHECK(atoll(header(&r, "X-Total-Count", hdr, sizeof(hdr))) ==
                  sql_i64("SELECT COUNT(*) FROM invoice_payments p JOIN customers c"
                          " ON c.id = p.customer_id WHERE p.invoice_kind = 1 AND"
                          " p.customer_payment_type = 'CUSTOMER' AND c.contract_owner_id"
                          " IN (%s)", owners),
              "owners %s: filtered X-Total-Count %s", owners, hdr);
        free(token);
    }
    token = saved;

    /* The plans (the statements of handlers/list.c for these resources). */
    char plan[512], sql[1024];
    snprintf(sql, sizeof(sql), "SELECT p.id, p.amount FROM invoice_payments p WHERE 1=1"
             " AND p.contract_owner_id IN (%" PRId64 ") AND p.invoice_kind = 1"
             " ORDER BY p.id LIMIT 100", base + 1);
    explain(plan, sizeof(plan), sql);
    CHECK(strncmp(plan, "invoice_payment_owner |", 23) == 0 && !strstr(plan, "filesort"),
          "one tenant's events: the owner index in id order, no sort (%s)", plan);
    snprintf(sql, sizeof(sql), "SELECT p.id FROM invoice_payments p WHERE 1=1"
             " AND p.contract_owner_id IN (%" PRId64 ") AND p.invoice_kind = 1"
             " AND p.id >= 1000 ORDER BY p.id DESC LIMIT 1 OFFSET 5000", base + 1);
    explain(plan, sizeof(plan), sql);
    CHECK(strstr(plan, "invoice_payment_owner") && strstr(plan, "Using index") &&
              !strstr(plan, "filesort"),
          "skipping to a page reads only the owner index (%s)", plan);
    explain(plan, sizeof(plan), "SELECT p.id, p.amount FROM invoice_payments p WHERE 1=1"
            " AND p.invoice_kind = 1 ORDER BY p.id LIMIT 100");
    CHECK(!strstr(plan, "filesort"), "every tenant's events: id order, no sort (%s)", plan);
    snprintf(sql, sizeof(sql), "SELECT block, SUM(normal_events) FROM owner_counts"
             " WHERE counted = 0 AND contract_owner_id IN (%" PRId64 ",%" PRId64 ")"
             " GROUP BY block ORDER BY block", base + 1, base + 2);
    explain(plan, sizeof(plan), sql);
    CHECK(strncmp(plan, "PRIMARY |", 9) == 0,
          "X-Total-Count and the blocks: the owners' counter rows by primary key (%s)", plan);
    snprintf(sql, sizeof(sql), "SELECT p.id FROM invoice_payments p WHERE 1=1"
             " AND p.contract_owner_id IN (%" PRId64 ") AND p.invoice_kind = 1"
             " AND p.id >= 32768 AND p.id < 65536 ORDER BY p.id DESC LIMIT 1 OFFSET 500",
             base + 1);
    explain(plan, sizeof(plan), sql);
    CHECK(strstr(plan, "invoice_payment_owner") && strstr(plan, "Using index") &&
              !strstr(plan, "filesort"),
          "a page's first row: one block of the owner index (%s)", plan);
    snprintf(sql, sizeof(sql), "SELECT p.id FROM invoice_payments p FORCE INDEX"
             " (invoice_payment_kind) WHERE 1=1 AND p.contract_owner_id IN (%" PRId64
             ",%" PRId64 ",%" PRId64 ") AND p.invoice_kind = 1 AND p.id >= 32768"
             " AND p.id < 65536 ORDER BY p.id LIMIT 1 OFFSET 500", base + 1, base + 2, base + 3);
    explain(plan, sizeof(plan), sql);
    CHECK(strstr(plan, "invoice_payment_kind") && strstr(plan, "Using index") &&
              !strstr(plan, "filesort"),
          "a page's first row among many owners' rows: the block in id order (%s)", plan);
    snprintf(sql, sizeof(sql), "SELECT f.id FROM refunds f WHERE 1=1 AND"
             " f.contract_owner_id IN (%" PRId64 ") ORDER BY f.id LIMIT 100", base + 1);
    explain(plan, sizeof(plan), sql);
    CHECK(!strstr(plan, "filesort"), "one tenant's refunds: no sort (%s)", plan);
    snprintf(sql, sizeof(sql), "SELECT m.id FROM site_payment_mandates m WHERE 1=1 AND"
             " m.contract_owner_id IN (%" PRId64 ") ORDER BY m.id LIMIT 100", base + 1);
    explain(plan, sizeof(plan), sql);
    CHECK(strstr(plan, "mandate_owner") && !strstr(plan, "filesort"),
          "one tenant's mandates: the owner index in id order, no sort (%s)", plan);
    snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM site_payment_mandates m WHERE 1=1 AND"
             " m.contract_owner_id IN (%" PRId64 ")", base + 1);
    explain(plan, sizeof(plan), sql);
    CHECK(strstr(plan, "mandate_owner") && strstr(plan, "Using index"),
          "one tenant's mandates counted from the owner index alone (%s)", plan);
    snprintf(sql, sizeof(sql), "SELECT c.id, c.credit_threshold, c.balance FROM customers c WHERE 1=1 AND"
             " c.contract_owner_id IN (%" PRId64 ") AND c.credit_threshold IS NOT NULL"
             " ORDER BY c.id LIMIT 100", base + 1);
    explain(plan, sizeof(plan), sql);
    CHECK(!strstr(plan, "filesort"), "one tenant's credit status: no sort (%s)", plan);

    /* The figures equal the aggregates for every generated customer and
     * owner (and for the fixture's, after the money-moving tests above). */
    CHECK(sql_i64("SELECT COUNT(*) FROM customers c WHERE"
                  " c.total_payments <> (SELECT COALESCE(SUM(amount), 0) FROM ledger l"
                  "   WHERE l.customer_id = c.id AND l.txn_type IN ('PAYMENT','PAYMENT_REVERSED'))"
                  " OR c.payments_since_invoice <> (SELECT COALESCE(SUM(amount), 0) FROM ledger l"
                  "   WHERE l.customer_id = c.id AND l.txn_type IN ('PAYMENT','PAYMENT_REVERSED')"
                  "   AND l.id > (SELECT COALESCE(MAX(n.id), 0) FROM ledger n WHERE"
                  "   n.customer_id = c.id AND n.txn_type IN"
                  "   ('INVOICE_CREATED','ADHOC_INVOICE_CREATED')))") == 0,
          "every customer's payment figures = the aggregates over its ledger");
    CHECK(sql_i64("SELECT COUNT(*) FROM contract_owners o WHERE"
                  " (SELECT COALESCE(SUM(normal_events), 0) FROM owner_counts n"
                  "   WHERE n.contract_owner_id = o.id) <> (SELECT COUNT(*) FROM invoice_payments p"
                  "   WHERE p.contract_owner_id = o.id AND p.invoice_kind = 1)"
                  " OR (SELECT COALESCE(SUM(adhoc_events), 0) FROM owner_counts n"
                  "   WHERE n.contract_owner_id = o.id) <> (SELECT COUNT(*) FROM invoice_payments p"
                  "   WHERE p.contract_owner_id = o.id AND p.invoice_kind = 2)"
                  " OR (SELECT COALESCE(SUM(refund_count), 0) FROM owner_counts n"
                  "   WHERE n.contract_owner_id = o.id) <> (SELECT COUNT(*) FROM refunds f"
                  "   WHERE f.contract_owner_id = o.id)") == 0,
          "every owner's counters = the counts of its events and refunds");
    CHECK(sql_i64("SELECT COUNT(*) FROM invoice_payments p JOIN customers c ON c.id = p.customer_id"
                  " WHERE p.contract_owner_id <> c.contract_owner_id") == 0 &&
          sql_i64("SELECT COUNT(*) FROM refunds f JOIN customers c ON c.id = f.customer_id"
                  " WHERE f.contract_owner_id <> c.contract_owner_id") == 0,
          "events and refunds carry their customer's owner");
    CHECK(sql_i64("SELECT COUNT(*) FROM site_payment_mandates m JOIN sites s ON s.id = m.site_id"
                  " JOIN customers c ON c.id = s.customer_id"
                  " WHERE m.contract_owner_id <> c.contract_owner_id") == 0,
          "mandates carry their site's customer's owner");
}

/* A row that commits between a list's reads (after the counts, and again
 * before the page's rows are read: the hook of handlers/list.c): the page
 * still ends at the id its Link next continues after, so no row is
 * skipped. Ascending, a page whose first row is counted from its block's
 * start and whose last row lies in the upper half of the newest block;
 * descending, the first page. The rows are copies of the owner's newest
 * event, removed again afterwards (the counters are not touched). */
static int64_t anchor_rows[8];
static size_t  nanchor_rows;

static void
anchor_insert(void)
{
    int64_t id = sql_i64("SELECT MAX(id) + 1 FROM invoice_payments");
    char    stmt[512];
    if (nanchor_rows == sizeof(anchor_rows) / sizeof(anchor_rows[0]))
        return;
    sql_do("CREATE TEMPORARY TABLE anchor AS SELECT * FROM invoice_payments"
           " WHERE id = (SELECT MAX(id) FROM invoice_payments)");
    snprintf(stmt, sizeof(stmt), "UPDATE anchor SET id = %" PRId64 ", ledger_id = NULL,"
             " customer_payment_id = NULL, attempt_id = NULL", id);
    sql_do(stmt);
    sql_do("INSERT INTO invoice_payments SELECT * FROM anchor");
    sql_do("DROP TEMPORARY TABLE anchor");
    anchor_rows[nanchor_rows++] = id;
}

/* The request with rows committing between its reads (anchor_remove
 * removes them). got: the page's ids; *after: the id of its Link next. */
static void
anchored_call(const char *path, char *got, size_t size, int64_t *after)
{
    char hdr[1024];
    list_between_reads = anchor_insert;
    struct res r = call("GET", path, NULL, NULL);
    list_between_reads = NULL;
    CHECK(r.status == 200 && nanchor_rows == 2, "%s: 200 (%d), two rows committed meanwhile"
          " (%zu)", path, r.status, nanchor_rows);
    ids_of(&r, got, size);
    const char *next = strstr(header(&r, "Link", hdr, sizeof(hdr)), ">; rel=\"next\"");
    const char *at = next;
    while (at != NULL && at > hdr && *at != '<' && strncmp(at, "after=", 6) != 0)
        at--;
    *after = at != NULL && strncmp(at, "after=", 6) == 0 && strchr(at, '.')
                 ? atoll(strchr(at, '.') + 1) : 0;
}

static void
anchor_remove(void)
{
    char stmt[128];
    for (size_t i = 0; i < nanchor_rows; i++) {
        snprintf(stmt, sizeof(stmt), "DELETE FROM invoice_payments WHERE id = %" PRId64,
                 anchor_rows[i]);
        sql_do(stmt);
    }
    nanchor_rows = 0;
}

static void
test_list_anchor(void)
{
    int64_t owner = sql_i64("SELECT contract_owner_id FROM invoice_payments"
                            " WHERE id = (SELECT MAX(id) FROM invoice_payments)");
    int64_t top = sql_i64("SELECT MAX(id) FROM invoice_payments");
    int64_t kind = sql_i64("SELECT invoice_kind FROM invoice_payments WHERE id = %" PRId64, top);
    int64_t n = sql_i64("SELECT COUNT(*) FROM invoice_payments WHERE contract_owner_id = %"
                        PRId64 " AND invoice_kind = 1 AND id >> 15 = %" PRId64, owner, top >> 15);
    int64_t total = sql_i64("SELECT COUNT(*) FROM invoice_payments WHERE contract_owner_id = %"
                            PRId64 " AND invoice_kind = 1", owner);
    CHECK(kind == 1 && n >= 200 && ((top + 2) >> 15) == (top >> 15),
          "the newest event is a normal one of owner %" PRId64 " with %" PRId64
          " events in its block, room for two more", owner, n);
    if (kind != 1 || n < 200)
        return;
    char   *saved = token, err[256], path[256], got[8192], want[8192];
    int64_t after, prior = total - n, size = 50, page = 1;
    token = auth_issue("anchor", "payments:read", &owner, 1, 600, time(NULL), err, sizeof(err));
    /* The first page whose last row is in the newest block's upper half. */
    while (page * size - 1 < prior + n / 2)
        page++;
    CHECK((page - 1) * size < prior + n / 2 && page * size < total,
          "page %" PRId64 " starts in the block's lower half and has a next", page);
    snprintf(path, sizeof(path), "/v1/invoice-payments?page=%" PRId64 "&pageSize=%" PRId64,
             page, size);
    anchored_call(path, got, sizeof(got), &after);
    ids_sql(want, sizeof(want), "SELECT id FROM invoice_payments WHERE contract_owner_id = %"
            PRId64 " AND invoice_kind = 1 ORDER BY id LIMIT %" PRId64 " OFFSET %" PRId64,
            owner, size, (page - 1) * size);
    CHECK_STR(got, want, "%s: the page's rows", path);
    const char *comma = strrchr(got, ',');
    CHECK(comma != NULL && after == atoll(comma + 1),
          "%s: Link next continues after the page's last row (%" PRId64 ", page %s)", path,
          after, got);
    anchor_remove();

    snprintf(path, sizeof(path), "/v1/invoice-payments?page=1&pageSize=%" PRId64
             "&sort=id:desc", size);
    anchored_call(path, got, sizeof(got), &after);
    comma = strrchr(got, ',');
    int64_t first = atoll(got);
    ids_sql(want, sizeof(want), "SELECT id FROM invoice_payments WHERE contract_owner_id = %"
            PRId64 " AND invoice_kind = 1 AND id <= %" PRId64 " ORDER BY id DESC LIMIT %"
            PRId64, owner, first, size);
    CHECK(first >= top, "%s: the page starts at the newest row (%" PRId64 ")", path, first);
    CHECK_STR(got, want, "%s: the page's rows are the list's from its first", path);
    CHECK(comma != NULL && after == atoll(comma + 1),
          "%s: Link next continues after the page's last row (%" PRId64 ", page %s)", path,
          after, got);
    anchor_remove();
    free(token);
    token = saved;
}

/* Index entries and rows the server has read in id or key order
 * (Handler_read_next + Handler_read_prev): a request's reads, as nothing
 * else runs against the database meanwhile. */
static int64_t
rows_read(void)
{
    return sql_i64("SELECT SUM(VARIABLE_VALUE) FROM information_schema.GLOBAL_STATUS WHERE"
                   " VARIABLE_NAME IN ('HANDLER_READ_NEXT', 'HANDLER_READ_PREV')");
}

/* GET path, 12 times (a cached statement is executed again); *reads the
 * most rows the database read for one of them. */
static struct res
measured_call(const char *path, int64_t *reads)
{
    struct res r = {0};
    *reads = 0;
    for (int i = 0; i < 12; i++) {
        int64_t before = rows_read();
        r = call("GET", path, NULL, NULL);
        int64_t n = rows_read() - before;
        *reads = n > *reads ? n : *reads;
    }
    return r;
}

/* A token naming a few owners whose rows all lie far below the tables'
 * newest (two owners of test_tenant_lists' data, under a second generated
 * data set's events and customers): the newest-first page and the credit
 * status's first and last pages read about the owners' rows, not the
 * other owners' rows above them (the optimizer, counting on a match among
 * the first rows it reads, walks the primary key down from the table's
 * end unless the statement bounds the ids on both sides). */
static void
test_owner_subset_reads(void)
{
    int64_t base = sql_i64("SELECT MAX(id) FROM contract_owners") - 10;
    if (db_generate(1200, 12000, 8) != 0) {
        CHECK(0, "generate the data above");
        return;
    }
    mysql_query(other, "ANALYZE TABLE invoice_payments, customers");
    mysql_free_result(mysql_store_result(other));
    int64_t o[2] = {base + 1, base + 2};
    char    owners[64], *saved = token, err[256], got[16384], want[16384];
    snprintf(owners, sizeof(owners), "%" PRId64 ",%" PRId64, o[0], o[1]);
    token = auth_issue("subset", "payments:read", o, 2, 600, time(NULL), err, sizeof(err));
    int64_t events_above = sql_i64("SELECT COUNT(*) FROM invoice_payments WHERE id > (SELECT"
                                   " MAX(id) FROM invoice_payments WHERE contract_owner_id"
                                   " IN (%s))", owners);
    int64_t customers_above = sql_i64("SELECT COUNT(*) FROM customers WHERE id > (SELECT"
                                      " MAX(id) FROM customers WHERE contract_owner_id IN (%s))", owners);
    int64_t owned = sql_i64("SELECT COUNT(*) FROM customers WHERE contract_owner_id IN (%s)",
                            owners);
    int64_t owned_events = sql_i64("SELECT COUNT(*) FROM invoice_payments WHERE"
                                   " contract_owner_id IN (%s)", owners);
    CHECK(events_above > 10000 && customers_above > 1000,
          "other owners' rows above owners %s: %" PRId64 " events, %" PRId64 " customers",
          owners, events_above, customers_above);
    int64_t    reads;
    struct res r = measured_call("/v1/invoice-payments?page=1&pageSize=20&sort=id:desc", &reads);
    ids_of(&r, got, sizeof(got));
    ids_sql(want, sizeof(want), "SELECT id FROM invoice_payments WHERE contract_owner_id IN"
            " (%s) AND invoice_kind = 1 ORDER BY id DESC LIMIT 20", owners);
    CHECK(r.status == 200, "newest first: 200 (%d)", r.status);
    CHECK_STR(got, want, "newest first: the owners' newest events");
    CHECK(reads < owned_events / 4, "newest first: %" PRId64 " rows read (the owners have %"
          PRId64 " events, others %" PRId64 " above them)", reads, owned_events, events_above);
    int64_t with_threshold = sql_i64("SELECT COUNT(*) FROM customers WHERE contract_owner_id"
                                     " IN (%s) AND credit_threshold IS NOT NULL", owners);
    char    path[128];
    snprintf(path, sizeof(path), "/v1/customer-credit-status?pageSize=5&page=%" PRId64,
             (with_threshold + 4) / 5);
    const char *paths[] = {"/v1/customer-credit-status?pageSize=5&page=1", path};
    for (size_t i = 0; i < 2; i++) {
        r = measured_call(paths[i], &reads);
        field_of(&r, "customerId", got, sizeof(got));
        ids_sql(want, sizeof(want), "SELECT id FROM customers WHERE contract_owner_id IN (%s)"
                " AND credit_threshold IS NOT NULL ORDER BY id LIMIT 5 OFFSET %" PRId64,
                owners, i ? (with_threshold - 1) / 5 * 5 : 0);
        CHECK(r.status == 200, "%s: 200 (%d)", paths[i], r.status);
        CHECK_STR(got, want, "%s: the owners' customers", paths[i]);
        if (i == 1) /* the first page's count reads the owners' customers anyway */
            CHECK(reads < owned * 2, "%s: %" PRId64 " rows read (the owners have %" PRId64
                  " customers, others %" PRId64 " above them)", paths[i], reads, owned,
                  customers_above);
    }
    free(token);
    token = saved;
}

/* One owner's counter rows per table and block,
 * "e<block>:normal/adhoc/refunds,…" for the events' rows, "r<block>:…" for
 * the refunds'. */
static void
owner_blocks(char *buf, size_t size, int64_t owner)
{
    ids_sql(buf, size, "SELECT CONCAT(IF(counted = 1, 'r', 'e'), block, ':', SUM(normal_events),"
            " '/', SUM(adhoc_events), '/', SUM(refund_count)) FROM owner_counts WHERE"
            " contract_owner_id = %" PRId64 " GROUP BY counted, block ORDER BY counted, block",
            owner);
}

/* Folds the owner's old blocks in a transaction of its own (as the
 * collection engine does); the number of shard rows folded, -1 on error. */
static int64_t
fold(int64_t owner)
{
    struct db_uow u;
    int64_t       folded = -1;
    db_uow_init(&u, A);
    enum db_rc rc = db_tx_begin(&u);
    if (rc == DB_OK)
        rc = owner_counts_fold(&u, owner, &folded);
    if (rc == DB_OK)
        rc = db_tx_commit(&u);
    db_uow_reset(&u);
    arena_reset(A);
    return rc == DB_OK ? folded : -1;
}

/* Folding: an owner's shard rows of each table's blocks below its newest
 * block of that table - 1 become one row per block with the same sums;
 * the newer blocks keep theirs; refunds in low blocks hold nothing of the
 * events back (the tables number their ids apart); a late write to a
 * folded block is folded again by the next fold; a fold with nothing to
 * do changes nothing (no count lost or doubled). */
static void
test_owner_counts_fold(void)
{
    const int64_t o = 990001; /* counter rows only: no customer of this owner */
    char          before[1024], after[1024];
    sql_do("DELETE FROM owner_counts WHERE contract_owner_id = 990001");
    sql_do("INSERT INTO owner_counts (contract_owner_id, counted, block, shard, normal_events,"
           " adhoc_events, refund_count) VALUES (990001,0,0,1,3,1,0), (990001,0,0,2,2,0,0),"
           " (990001,0,0,5,7,0,0), (990001,0,0,64,10,2,0), (990001,0,1,1,4,0,0),"
           " (990001,0,2,3,1,0,0), (990001,0,3,4,6,1,0), (990001,1,0,2,0,0,1),"
           " (990001,1,0,64,0,0,3), (990001,1,1,3,0,0,2)");
    owner_blocks(before, sizeof(before), o);
    CHECK_STR(before, "e0:22/3/0,e1:4/0/0,e2:1/0/0,e3:6/1/0,r0:0/0/4,r1:0/0/2",
              "the owner's blocks");
    /* Newest events in block 3: blocks 0 and 1 fold; newest refunds in
     * block 1: none of them. */
    CHECK(fold(o) == 4, "event blocks 0 and 1: four shard rows folded");
    owner_blocks(after, sizeof(after), o);
    CHECK_STR(after, before, "every block's sums unchanged by the fold");
    CHECK(sql_i64("SELECT COUNT(*) FROM owner_counts WHERE contract_owner_id = 990001 AND"
                  " counted = 0 AND block <= 1") == 2 &&
              sql_i64("SELECT normal_events * 10000 + adhoc_events * 100 + refund_count FROM"
                      " owner_counts WHERE contract_owner_id = 990001 AND counted = 0 AND"
                      " block = 0 AND shard = 64") == 220300,
          "event blocks 0 and 1 are one folded row each, with the sums");
    CHECK(sql_i64("SELECT COUNT(*) FROM owner_counts WHERE contract_owner_id = 990001 AND"
                  " shard < 64 AND (counted = 0 AND block >= 2 OR counted = 1)") == 4,
          "event blocks 2 (the margin) and 3 and every refund block keep their shard rows");
    /* A late writer of event block 0 (an id taken there, committed after
     * the fold): its counter lands in a shard row again, the next fold
     * adds it. */
    sql_do("INSERT INTO owner_counts (contract_owner_id, counted, block, shard, normal_events)"
           " VALUES (990001, 0, 0, 5, 1)"
           " ON DUPLICATE KEY UPDATE normal_events = normal_events + 1");
    const char *late = "e0:23/3/0,e1:4/0/0,e2:1/0/0,e3:6/1/0,r0:0/0/4,r1:0/0/2";
    owner_blocks(after, sizeof(after), o);
    CHECK_STR(after, late, "the late write counts at once");
    CHECK(fold(o) == 1, "the late write's shard row is folded");
    owner_blocks(after, sizeof(after), o);
    CHECK_STR(after, late, "counted once after its fold");
    CHECK(fold(o) == 0, "nothing more to fold");
    owner_blocks(after, sizeof(after), o);
    CHECK_STR(after, late, "a fold with nothing to do: the same");
    /* A refund in refund block 3: the refund blocks below 2 fold. */
    sql_do("INSERT INTO owner_counts (contract_owner_id, counted, block, shard, refund_count)"
           " VALUES (990001, 1, 3, 2, 1)");
    CHECK(fold(o) == 2, "refund blocks 0 and 1: two shard rows folded");
    owner_blocks(after, sizeof(after), o);
    CHECK_STR(after, "e0:23/3/0,e1:4/0/0,e2:1/0/0,e3:6/1/0,r0:0/0/4,r1:0/0/2,r3:0/0/1",
              "every block's sums unchanged");
    CHECK(sql_i64("SELECT COUNT(*) FROM owner_counts WHERE contract_owner_id = 990001 AND"
                  " shard < 64") == 3, "event blocks 2 and 3 and refund block 3 keep theirs");
    sql_do("DELETE FROM owner_counts WHERE contract_owner_id = 990001");
}

/* A payment counts its event in its own shard row only: with every other
 * counter row of the owner held by another transaction (refunds in
 * flight), a payment whose event opens its shard's row in a new block
 * commits at once, and folds nothing. Then the engine's fold step folds
 * owner 1's old event blocks while its refunds are all in the refund ids'
 * block 0, then its old refund blocks once a refund is blocks on, each
 * time leaving its counters equal to its counts. */
static void
test_payment_counts_own_row(MYSQL *locker)
{
    int64_t newest = sql_i64("SELECT MAX(id) >> 15 FROM invoice_payments");
    CHECK(sql_i64("SELECT COUNT(*) FROM owner_counts WHERE contract_owner_id = 1 AND"
                  " counted = 0 AND shard = 11 AND block >= %" PRId64, newest) == 0,
          "customer 11's event will open its shard's row of a new block");
    int64_t shard_rows = sql_i64("SELECT COUNT(*) FROM owner_counts WHERE contract_owner_id = 1"
                                 " AND shard < 64");
    CHECK(shard_rows > 1, "owner 1 has shard rows");
    /* Read committed, as the API's transactions: record locks only. */
    int held = mysql_query(locker, "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
                   == 0 && mysql_query(locker, "START TRANSACTION") == 0 &&
               mysql_query(locker, "SELECT block FROM owner_counts WHERE contract_owner_id = 1"
                                   " FOR UPDATE") == 0;
    MYSQL_RES *res = mysql_store_result(locker);
    CHECK(held && res != NULL && mysql_num_rows(res) == (uint64_t)sql_i64(
              "SELECT COUNT(*) FROM owner_counts WHERE contract_owner_id = 1"),
          "another transaction holds every counter row of owner 1");
    if (res != NULL)
        mysql_free_result(res);
    int64_t    events = sql_i64("SELECT COUNT(*) FROM invoice_payments WHERE"
                                " contract_owner_id = 1");
    struct res r = POST("/v1/customer-payments",
                        "{\"customerId\":11,\"amountInMajorCurrency\":1.25,"
                        "\"type\":\"BACS\",\"description\":\"next block\"}");
    CHECK(r.status == 200, "the payment commits while they are held: 200 (got %d: %.200s)",
          r.status, r.raw);
    CHECK(mysql_query(locker, "ROLLBACK") == 0, "the holder lets go");
    CHECK(sql_i64("SELECT COUNT(*) FROM invoice_payments WHERE contract_owner_id = 1") ==
              events + 1, "the payment paid an open invoice: one more event");
    int64_t block = sql_i64("SELECT MAX(id) >> 15 FROM invoice_payments WHERE"
                            " contract_owner_id = 1");
    CHECK(block >= newest && sql_i64("SELECT normal_events FROM owner_counts WHERE"
                                     " contract_owner_id = 1 AND counted = 0 AND block = %"
                                     PRId64 " AND shard = 11", block) == 1,
          "the event is counted in its shard's new row");
    CHECK(sql_i64("SELECT COUNT(*) FROM owner_counts WHERE contract_owner_id = 1 AND"
                  " shard < 64") == shard_rows + 1, "no other row was folded");
    const char *counts_ok =
        "SELECT (SELECT COUNT(*) FROM invoice_payments WHERE contract_owner_id = 1 AND"
        " invoice_kind = 1) = (SELECT SUM(normal_events) FROM owner_counts WHERE"
        " contract_owner_id = 1) AND (SELECT COUNT(*) FROM invoice_payments WHERE"
        " contract_owner_id = 1 AND invoice_kind = 2) = (SELECT SUM(adhoc_events) FROM"
        " owner_counts WHERE contract_owner_id = 1) AND (SELECT COUNT(*) FROM refunds WHERE"
        " contract_owner_id = 1) = (SELECT SUM(refund_count) FROM owner_counts WHERE"
        " contract_owner_id = 1 AND counted = 1)";
    CHECK(sql_i64("%s", counts_ok) == 1, "owner 1's counters = its counts");
    /* Event ids two blocks on: a payment there lets the engine fold owner
     * 1's event rows below that block - 1 (the one just written included),
     * though its refunds are all in the refund ids' block 0. */
    char sql[256], before[4096], after[4096], refund_rows[4096], refund_rows_after[4096];
    const char *refund_rows_sql = "SELECT CONCAT(block, ':', shard, ':', refund_count) FROM"
                                  " owner_counts WHERE contract_owner_id = 1 AND counted = 1"
                                  " ORDER BY block, shard";
    snprintf(sql, sizeof(sql), "ALTER TABLE invoice_payments AUTO_INCREMENT = %" PRId64,
             (block + 2) << 15);
    sql_do(sql);
    r = POST("/v1/customer-payments", "{\"customerId\":11,\"amountInMajorCurrency\":1.25,"
                                      "\"type\":\"BACS\",\"description\":\"two blocks on\"}");
    CHECK(r.status == 200 && sql_i64("SELECT MAX(id) >> 15 FROM invoice_payments WHERE"
                                     " contract_owner_id = 1") == block + 2,
          "a payment two event blocks on (got %d: %.200s)", r.status, r.raw);
    CHECK(sql_i64("SELECT COUNT(*) FROM owner_counts WHERE contract_owner_id = 1 AND"
                  " counted = 0 AND shard < 64 AND block <= %" PRId64, block) > 0 &&
              sql_i64("SELECT MAX(id) >> 15 FROM refunds WHERE contract_owner_id = 1") == 0,
          "owner 1 has event shard rows to fold, and its refunds are in refund block 0");
    ids_sql(refund_rows, sizeof(refund_rows), "%s", refund_rows_sql);
    owner_blocks(before, sizeof(before), 1);
    CHECK(collector_fold_counts(A) > 0, "the engine's fold step folds owner 1's old events");
    arena_reset(A);
    owner_blocks(after, sizeof(after), 1);
    CHECK_STR(after, before, "every block's sums unchanged by the engine's fold");
    CHECK(sql_i64("SELECT COUNT(*) FROM owner_counts WHERE contract_owner_id = 1 AND"
                  " counted = 0 AND shard < 64 AND block <= %" PRId64, block) == 0 &&
              sql_i64("SELECT COUNT(*) FROM owner_counts WHERE contract_owner_id = 1 AND"
                      " counted = 0 AND shard < 64 AND block > %" PRId64, block) == 1,
          "the event blocks below the newest - 1 are folded, the newest not");
    ids_sql(refund_rows_after, sizeof(refund_rows_after), "%s", refund_rows_sql);
    CHECK_STR(refund_rows_after, refund_rows, "the refund rows (their newest block) untouched");
    CHECK(sql_i64("%s", counts_ok) == 1, "owner 1's counters = its counts after it");
    /* A refund two refund blocks on: owner 1's refund rows of block 0 fold. */
    CHECK(sql_i64("SELECT COUNT(*) FROM owner_counts WHERE contract_owner_id = 1 AND"
                  " counted = 1 AND shard < 64 AND block = 0") > 0,
          "owner 1 has refund shard rows in refund block 0");
    sql_do("ALTER TABLE refunds AUTO_INCREMENT = 65536");
    r = POST("/v1/refunds", "{\"invoiceId\":34,\"billRunType\":\"NORMAL\","
                            "\"amountInMajorCurrency\":1,\"paymentMethod\":\"CHEQUE\"}");
    CHECK(r.status == 201 && sql_i64("SELECT MAX(id) >> 15 FROM refunds") == 2,
          "a refund in refund block 2 (got %d: %.200s)", r.status, r.raw);
    owner_blocks(before, sizeof(before), 1);
    CHECK(collector_fold_counts(A) > 0, "the engine's fold step folds owner 1's old refunds");
    arena_reset(A);
    owner_blocks(after, sizeof(after), 1);
    CHECK_STR(after, before, "every block's sums unchanged by the refunds' fold");
    CHECK(sql_i64("SELECT COUNT(*) FROM owner_counts WHERE contract_owner_id = 1 AND"
                  " counted = 1 AND shard < 64 AND block < 1") == 0 &&
              sql_i64("SELECT COUNT(*) FROM owner_counts WHERE contract_owner_id = 1 AND"
                      " counted = 1 AND shard < 64 AND block = 2") == 1,
          "refund block 0 is folded, the newest refund block not");
    CHECK(sql_i64("%s", counts_ok) == 1, "owner 1's counters = its counts after both folds");
    char hdr[64];
    r = call("GET", "/v1/invoice-payments?page=1&pageSize=5", NULL, NULL);
    CHECK(atoll(header(&r, "X-Total-Count", hdr, sizeof(hdr))) ==
              sql_i64("SELECT COUNT(*) FROM invoice_payments WHERE contract_owner_id = 1 AND"
                      " invoice_kind = 1"), "X-Total-Count: %s", hdr);
    r = call("GET", "/v1/refunds?page=1&pageSize=5", NULL, NULL);
    CHECK(atoll(header(&r, "X-Total-Count", hdr, sizeof(hdr))) ==
              sql_i64("SELECT COUNT(*) FROM refunds WHERE contract_owner_id = 1"),
          "refunds X-Total-Count: %s", hdr);
}

/* ---- the money-moving operations ------------------------------------------ */

static void
test_customer_payment(void)
{
    int64_t before = sql_i64("SELECT balance FROM customers WHERE id = 11");
    int64_t rows = sql_i64("SELECT COUNT(*) FROM ledger WHERE customer_id = 11");
    const char *body = "{\"customerId\":11,\"amountInMajorCurrency\":150.25,"
                       "\"type\":\"BACS\",\"description\":\"in-process\"}";
    struct res r = call("POST", "/v1/customer-payments", body, "hk-1");
    CHECK(r.status == 200, "customer payment 200 (got %d: %.200s)", r.status, r.raw);
    CHECK(strcmp(jstr(&r, "amountInMajorCurrency") ? jstr(&r, "amountInMajorCurrency") : "",
                 "150.25") == 0, "amount written back exactly");
    CHECK(sql_i64("SELECT balance FROM customers WHERE id = 11") == before + 15025,
          "balance moved by 150.25");
    /* 245.75 of invoices is open: 120.00 and 30.25 of the second one paid. */
    CHECK(sql_i64("SELECT paid FROM invoices WHERE kind = 1 AND id = 31") == 12000 &&
              sql_i64("SELECT paid FROM invoices WHERE kind = 1 AND id = 32") == 3025,
          "spread oldest first");
    CHECK(ledger_ok(11), "balance = sum of ledger");
    struct res again = call("POST", "/v1/customer-payments", body, "hk-1");
    CHECK(again.status == 200 && strstr(again.raw, "Idempotent-Replayed: true") != NULL,
          "the same key replays");
    CHECK(sql_i64("SELECT COUNT(*) FROM ledger WHERE customer_id = 11") == rows + 1,
          "one PAYMENT row for both");
}

static void
test_adjustment(void)
{
    struct res r = POST("/v1/customer-balance-adjustments",
                        "{\"customerId\":12,\"amountInMajorCurrency\":-7.5,"
                        "\"description\":\"fee\"}");
    CHECK(r.status == 200, "adjustment 200 (got %d)", r.status);
    CHECK(sql_i64("SELECT COUNT(*) FROM ledger WHERE customer_id = 12 AND"
                  " txn_type = 'ADJUSTMENT' AND amount = -750") == 1, "ADJUSTMENT row");
    CHECK(ledger_ok(12), "balance = sum of ledger");
}

static void
test_invoice_payments_and_refunds(void)
{
    struct res r = POST("/v1/invoice-payments",
                        "{\"generatedInvoiceId\":34,\"amountInMajorCurrency\":100,"
                        "\"description\":\"cheque\",\"paymentMethod\":\"CHEQUE\"}");
    CHECK(r.status == 201, "invoice payment 201 (got %d: %.200s)", r.status, r.raw);
    CHECK(sql_i64("SELECT paid FROM invoices WHERE kind = 1 AND id = 34") == 10000, "paid");
    r = POST("/v1/adhoc-invoice-payments",
             "{\"generatedAdhocInvoiceId\":12,\"amountInMajorCurrency\":30,"
             "\"description\":\"cash\",\"paymentMethod\":\"OTHER\"}");
    CHECK(r.status == 201, "adhoc invoice payment 201 (got %d)", r.status);
    CHECK(sql_i64("SELECT payment_status = 'PAID' FROM invoices WHERE kind = 2 AND id = 12") == 1,
          "adhoc invoice PAID");

    r = POST("/v1/refunds", "{\"invoiceId\":34,\"billRunType\":\"NORMAL\","
                            "\"amountInMajorCurrency\":40,\"paymentMethod\":\"CHEQUE\"}");
    CHECK(r.status == 201, "manual refund 201 (got %d: %.200s)", r.status, r.raw);
    CHECK(sql_i64("SELECT refunded FROM invoices WHERE kind = 1 AND id = 34") == 4000, "refunded");
    int64_t rows = sql_i64("SELECT COUNT(*) FROM ledger WHERE customer_id = 12");
    r = POST("/v1/refunds", "{\"invoiceId\":34,\"billRunType\":\"NORMAL\","
                            "\"amountInMajorCurrency\":60.01,\"paymentMethod\":\"CHEQUE\"}");
    CHECK(r.status == 409, "more than refundable: 409 (got %d)", r.status);
    CHECK(sql_i64("SELECT COUNT(*) FROM ledger WHERE customer_id = 12") == rows &&
              sql_i64("SELECT refunded FROM invoices WHERE kind = 1 AND id = 34") == 4000,
          "and nothing changed");
    CHECK(ledger_ok(12), "balance = sum of ledger");
}

static void
test_reprocess_cancel(void)
{
    struct res r = POST("/v1/invoice-payments",
                        "{\"generatedInvoiceId\":37,\"amountInMajorCurrency\":120,"
                        "\"description\":\"dd\",\"paymentMethod\":\"GO_CARDLESS\","
                        "\"thirdPartyPaymentStatus\":\"FAILED\"}");
    CHECK(r.status == 201, "failed event 201 (got %d: %.200s)", r.status, r.raw);
    r = POST("/v1/invoice-payment-reprocess",
             "{\"invoiceId\":37,\"billRunType\":\"NORMAL\",\"notes\":\"again\"}");
    CHECK(r.status == 200, "reprocess 200 (got %d: %.200s)", r.status, r.raw);
    r = POST("/v1/invoice-payment-cancel", "{\"invoiceId\":37,\"billRunType\":\"NORMAL\"}");
    CHECK(r.status == 202, "cancel of the queued collection 202 (got %d: %.200s)", r.status,
          r.raw);
    r = POST("/v1/payment-provider-reprocess", "{\"paymentProviderId\":1}");
    CHECK(r.status == 200 && jstr(&r, "reprocessedInvoiceCount") != NULL,
          "provider reprocess 200 (got %d: %.200s)", r.status, r.raw);
    CHECK(sql_i64("SELECT paid FROM invoices WHERE kind = 1 AND id = 37") == 0,
          "no money moved");
    CHECK(ledger_ok(13), "balance = sum of ledger");
}

/* ---- a payment link paid on its page, twice ---------------------------------- */

/* The text after `key` up to one of the characters in `end`, or "". */
static const char *
between(const char *s, const char *key, const char *end)
{
    const char *p = s ? strstr(s, key) : NULL;
    if (p == NULL)
        return "";
    p += strlen(key);
    return arena_strndup(JA, p, strcspn(p, end));
}

static void
test_payment_link_page(void)
{
    struct res r = POST("/v1/payment-provider-payment-link",
                        "{\"paymentProviderId\":1,\"amountInMajorCurrency\":12.34,"
                        "\"description\":\"in-process link\",\"customerId\":15}");
    CHECK(r.status == 201, "link 201 (got %d: %.200s)", r.status, r.raw);
    const char *link = jstr(&r, "paymentLink");
    const char *tok = link ? strrchr(link, '/') : NULL;
    if (tok == NULL)
        return;
    tok++;
    char path[160];
    snprintf(path, sizeof(path), "/pay/%s", tok);
    int64_t rows = sql_i64("SELECT COUNT(*) FROM ledger WHERE customer_id = 15");

    /* The page, its CSRF cookie and the same value in the form. */
    struct res page = call_as("GET", path, NULL, NULL, NULL, NULL);
    const char *cookie = between(page.raw, "Set-Cookie: pay_csrf=", ";\r");
    const char *field = between(page.raw, "name=\"csrf\" value=\"", "\"");
    CHECK(page.status == 200 && *cookie && strcmp(cookie, field) == 0,
          "the page sets a CSRF cookie equal to its form field (%d)", page.status);
    char form[160], jar[160];
    snprintf(form, sizeof(form), "csrf=%s", field);
    snprintf(jar, sizeof(jar), "pay_csrf=%s", cookie);
    const char *type = "application/x-www-form-urlencoded";
    /* Pay hands the payment to the engine and sends the browser back to
     * the page (303), which shows "processing" until the provider answers;
     * a second press finds the attempt and goes to the same page. */
    struct res paid = call_as("POST", path, form, type, NULL, jar);
    CHECK(paid.status == 303, "pressing Pay answers 303 to the page (got %d)", paid.status);
    struct res again = call_as("POST", path, form, type, NULL, jar);
    CHECK(again.status == 303 || again.status == 410,
          "pressing it again makes no second payment (got %d)", again.status);
    CHECK(sql_i64("SELECT COUNT(*) FROM attempts WHERE customer_id = 15"
                  " AND amount = 1234") == 1, "one collection attempt for the link");
    CHECK(sql_i64("SELECT COUNT(*) FROM ledger WHERE customer_id = 15") <= rows + 1,
          "at most one ledger row for two presses");
    CHECK(ledger_ok(15), "balance = sum of ledger");
    struct res forged = call_as("POST", path, form, type, NULL, "pay_csrf=other");
    CHECK(forged.status == 403, "a form without the matching cookie is refused (got %d)",
          forged.status);
}

/* ---- a conflict re-runs the handler, which writes once -------------------- */

static void *
hold_lock(void *arg)
{
    MYSQL *m = arg;
    if (mysql_query(m, "START TRANSACTION") != 0 ||
        mysql_query(m, "SELECT id FROM customers WHERE id = 14 FOR UPDATE") != 0)
        return NULL;
    MYSQL_RES *res = mysql_store_result(m);
    if (res != NULL)
        mysql_free_result(res);
    usleep(1500 * 1000); /* longer than one lock wait (1 s) */
    if (mysql_query(m, "ROLLBACK") != 0)
        return NULL;
    return NULL;
}

static void
test_rerun_after_conflict(MYSQL *m)
{
    int64_t   rows = sql_i64("SELECT COUNT(*) FROM ledger WHERE customer_id = 14");
    pthread_t th;
    pthread_create(&th, NULL, hold_lock, m);
    usleep(200 * 1000);
    struct res r = POST("/v1/customer-payments",
                        "{\"customerId\":14,\"amountInMajorCurrency\":1,\"type\":\"BACS\"}");
    pthread_join(th, NULL);
    CHECK(r.status == 200, "a payment that waited out a lock wait timeout runs again: 200"
          " (got %d: %.200s)", r.status, r.raw);
    CHECK(sql_i64("SELECT COUNT(*) FROM ledger WHERE customer_id = 14") == rows + 1,
          "and is written exactly once");
    CHECK(ledger_ok(14), "balance = sum of ledger");
}

int
main(void)
{
    const char *name = getenv("PAY_DB_NAME");
    struct db_settings s = {
        .socket = getenv("PAY_DB_SOCKET"), .user = getenv("PAY_DB_USER"),
        .password = getenv("PAY_DB_PASSWORD"), .name = name, .timeout = 10,
        .lock_wait = 1};
    if (s.socket == NULL || s.user == NULL || name == NULL || strcmp(name, "pay_dbtest") != 0) {
        fprintf(stderr, "test_handlers: run me through tests/db/run.sh\n");
        return 2;
    }
    char  err[256];
    struct auth_settings as = {.alg = "HS256", .secret = SECRET, .scopes = routes_scopes,
                               .nscopes = routes_nscopes};
    if (auth_init(&as, err, sizeof(err)) != 0 || db_open(&s) != 0) {
        fprintf(stderr, "test_handlers: set-up: %s\n", err);
        return 2;
    }
    int64_t owners[] = {1};
    token = auth_issue("inproc", "payments:read payments:write", owners, 1, 600,
                       time(NULL), err, sizeof(err));
    log_open(NULL, LOG_ERROR);
    router_init(routes_table, routes_count, &pipeline_hooks);
    A = arena_create(1 << 16);
    JA = arena_create(1 << 16);
    other = mysql_init(NULL);
    MYSQL *locker = mysql_init(NULL);
    if (mysql_real_connect(other, NULL, s.user, s.password, name, 0, s.socket, 0) == NULL ||
        mysql_real_connect(locker, NULL, s.user, s.password, name, 0, s.socket, 0) == NULL) {
        fprintf(stderr, "test_handlers: connect: %s\n", mysql_error(other));
        return 2;
    }

    test_customer_payment();
    test_adjustment();
    test_invoice_payments_and_refunds();
    test_reprocess_cancel();
    test_payment_link_page();
    test_rerun_after_conflict(locker);
    test_tenant_lists();
    test_list_anchor();
    test_owner_subset_reads();
    test_owner_counts_fold();
    test_payment_counts_own_row(locker);

    mysql_close(locker);
    mysql_close(other);
    free(token);
    arena_destroy(JA);
    arena_destroy(A);
    db_close();
    auth_shutdown();
    return TEST_DONE();
}
