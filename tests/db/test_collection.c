/*
 * db-level suite (label db) of the collection lifecycle (db/collection.c,
 * COLLECTION.md §1-§2) against a real MariaDB, without HTTP: the rank
 * table, an invoice attempt through every group (money applied once, taken
 * back once, applied again), an account-level attempt spread over normal
 * and adhoc invoices and taken back from them, the refund lifecycle
 * (settle, release, funds returned), a reversal refused when refunds hold
 * the money, and a property test: thousands of random report sequences
 * (duplicates, reordering, replays, chargebacks and their cancellation,
 * refunds racing reversals), first in one process against a model of the
 * rank rule, then from several processes at once; afterwards every attempt
 * holds its money exactly when collected, its ledger rows net to that,
 * every invoice's paid is the sum of its collected attempts, 0 <= refunded
 * <= paid counting reservations, and every balance is the sum of its ledger.
 *
 * tests/db/run.sh gives it the private pay_dbtest database.
 */
#include <inttypes.h>
#include <mysql.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "collection.h"
#include "collector.h"
#include "db.h"
#include "provider.h"
#include "router.h"
#include "ledger.h"
#include "test.h"

#define DBTEST_NAME "test_collection"
#include "db/dbtest.h"

static struct db_settings settings;
static int64_t            next_invoice = 70000;

static void
die(const char *what)
{
    fprintf(stderr, "test_collection: %s\n", what);
    exit(2);
}

/* Raises an invoice the way the loader does (ledger row + balance). */
static int64_t
add_invoice(int64_t cid, int kind, int64_t amount, const char *date)
{
    int64_t id = next_invoice++;
    char    sql[2048];
    snprintf(sql, sizeof(sql),
        "START TRANSACTION;"
        "SELECT balance, currency_id INTO @b, @cur FROM customers WHERE id = %" PRId64 " FOR UPDATE;"
        "INSERT INTO invoices (kind, id, customer_id, bill_run_id, invoice_number, invoice_date,"
        " amount) VALUES (%d, %" PRId64 ", %" PRId64 ", %d, 'DBC-%" PRId64 "', '%s', %" PRId64 ");"
        "SET @b = @b - %" PRId64 ";"
        "INSERT INTO ledger (customer_id, txn_type, customer_payment_type, amount,"
        " resulting_balance, currency_id, payment_date, invoice_kind, invoice_id,"
        " invoice_number, bill_run_type) VALUES (%" PRId64 ", '%s', '%s', -%" PRId64 ", @b, @cur,"
        " '%s', %d, %" PRId64 ", 'DBC-%" PRId64 "', '%s');"
        "UPDATE customers SET balance = @b WHERE id = %" PRId64 ";"
        "COMMIT",
        cid, kind, id, cid, kind == 1 ? 1 : 3, id, date, amount, amount, cid,
        kind == 1 ? "INVOICE_CREATED" : "ADHOC_INVOICE_CREATED",
        kind == 1 ? "INVOICE" : "ADHOC_INVOICE", amount, date, kind, id, id,
        kind == 1 ? "NORMAL" : "ADHOC", cid);
    sql_do(sql);
    return id;
}

static int64_t
paid_of(int kind, int64_t id)
{
    return sql_i64("SELECT paid FROM invoices WHERE kind = %d AND id = %" PRId64, kind, id);
}

/* ---- one report, in its own transaction (the customer locked first) ---- */

struct arena *A;

static enum db_rc
report_once(struct db_uow *u, int64_t attempt_id, const char *status,
            struct attempt_outcome *out, char *status_after)
{
    struct attempt  a;
    struct customer c;
    enum db_rc      rc;
    if ((rc = db_tx_begin(u)) != DB_OK ||
        (rc = attempt_load(u, attempt_id, 0, &a)) != DB_OK ||
        (rc = customer_load(u, a.customer_id, 1, &c)) != DB_OK ||
        (rc = attempt_load(u, attempt_id, 1, &a)) != DB_OK ||
        (rc = attempt_advance(u, &c, &a, status, NULL, out)) != DB_OK)
        return rc;
    if ((rc = db_tx_commit(u)) == DB_OK && status_after != NULL)
        snprintf(status_after, 48, "%s", a.status);
    return rc;
}

/* With the retry policy of the API: a deadlock or lock wait runs it again. */
static enum db_rc
report(int64_t attempt_id, const char *status, struct attempt_outcome *out,
       char *status_after)
{
    struct db_uow u;
    enum db_rc    rc;
    db_uow_init(&u, A);
    for (int tries = 0;; tries++) {
        rc = report_once(&u, attempt_id, status, out, status_after);
        if (rc != DB_RETRY || tries > 20)
            break;
        db_uow_reset(&u);
    }
    db_uow_reset(&u);
    arena_reset(A);
    return rc;
}

/* Opens a collection attempt of an invoice (kind > 0) or of the account
 * (kind 0) in `status`; returns its id. */
static int64_t
open_attempt(int64_t cid, int kind, int64_t invoice, int64_t amount, const char *status)
{
    struct db_uow   u;
    struct customer c;
    struct attempt  a = {.kind = ATTEMPT_COLLECTION, .customer_id = cid,
                         .invoice_kind = kind, .invoice_id = invoice, .method = "GO_CARDLESS",
                         .amount = amount, .description = "db collection test"};
    struct attempt_outcome out;
    db_uow_init(&u, A);
    enum db_rc rc = db_tx_begin(&u);
    if (rc == DB_OK)
        rc = customer_load(&u, cid, 1, &c);
    a.currency_id = c.currency_id;
    if (rc == DB_OK)
        rc = attempt_advance(&u, &c, &a, status, NULL, &out);
    if (rc == DB_OK)
        rc = db_tx_commit(&u);
    db_uow_reset(&u);
    arena_reset(A);
    if (rc != DB_OK)
        die("open_attempt");
    return a.id;
}

/* An integrated refund as refunds.c makes it: reserved, with its attempt. */
static int64_t
reserve_refund(int64_t cid, int kind, int64_t invoice, int64_t amount)
{
    struct db_uow   u;
    struct customer c;
    struct invoice  inv;
    db_uow_init(&u, A);
    enum db_rc rc = db_tx_begin(&u);
    if (rc == DB_OK)
        rc = invoice_lock(&u, kind, invoice, &c, &inv);
    if (rc == DB_OK && amount > inv.paid - inv.refunded)
        rc = DB_CONFLICT;
    int64_t refund_id = 0;
    if (rc == DB_OK) {
        struct refund_row f = {.invoice_kind = kind, .invoice_id = invoice,
                               .status = "PENDING_SUBMISSION", .amount = amount,
                               .payment_method = "GO_CARDLESS"};
        rc = refund_insert(&u, &c, &f, &refund_id);
    }
    struct attempt a = {.kind = ATTEMPT_REFUND, .customer_id = cid, .invoice_kind = kind,
                        .invoice_id = invoice, .method = "GO_CARDLESS", .amount = amount,
                        .currency_id = c.currency_id, .status = "PENDING_SUBMISSION",
                        .due = 1};
    if (rc == DB_OK) {
        a.refund_id = refund_id;
        rc = invoice_update(&u, &inv, 0, amount, amount, NULL);
    }
    if (rc == DB_OK)
        rc = attempt_insert(&u, &a);
    if (rc == DB_OK)
        rc = db_tx_commit(&u);
    db_uow_reset(&u);
    arena_reset(A);
    return rc == DB_OK ? a.id : 0;
}

/* ---- the rank table -------------------------------------------------------- */

static void
test_rank_table(void)
{
    static const char *const order[] = {"NEW", "PENDING_SUBMISSION", "SUBMITTED", "FAILED",
                                        "CONFIRMED", "PAID_OUT", "CHARGED_BACK",
                                        "CHARGEBACK_CANCELLED", NULL};
    for (int i = 1; order[i] != NULL; i++)
        CHECK(attempt_rank(ATTEMPT_COLLECTION, order[i - 1]) <
                  attempt_rank(ATTEMPT_COLLECTION, order[i]),
              "%s ranks below %s", order[i - 1], order[i]);
    CHECK(attempt_rank(ATTEMPT_COLLECTION, "SURCHARGE_FEE_DEBITED") < 0 &&
              attempt_rank(ATTEMPT_COLLECTION, "REFUNDED") < 0,
          "informational statuses are outside the lifecycle");
    CHECK(attempt_rank(ATTEMPT_COLLECTION, "CHARGEBACK_CANCELLED") ==
              attempt_rank(ATTEMPT_COLLECTION, "CHARGEBACK_SETTLED"),
          "a chargeback's two outcomes exclude each other (one rank)");
    CHECK(attempt_final(ATTEMPT_COLLECTION, "FAILED") &&
              attempt_final(ATTEMPT_COLLECTION, "CHARGEBACK_SETTLED") &&
              !attempt_final(ATTEMPT_COLLECTION, "PAID_OUT") &&
              !attempt_final(ATTEMPT_COLLECTION, "CHARGED_BACK"),
          "final: failed or a chargeback's outcome; PAID_OUT may still be charged back");
    CHECK(attempt_rank(ATTEMPT_REFUND, "REFUND_SETTLED") ==
              attempt_rank(ATTEMPT_REFUND, "BOUNCED") &&
              attempt_rank(ATTEMPT_REFUND, "FUNDS_RETURNED") >
                  attempt_rank(ATTEMPT_REFUND, "PAID"),
          "refunds: settle, cancel or bounce exclude each other; funds return after");
    /* ATTEMPT_FAILED_SQL lists exactly the failed group. */
    const char *sql = ATTEMPT_FAILED_SQL;
    int         n = 0, bad = 0;
    for (const char *p = sql; (p = strchr(p, '\'')) != NULL; p = strchr(p + 1, '\'') + 1) {
        char word[48];
        const char *e = strchr(p + 1, '\'');
        snprintf(word, sizeof(word), "%.*s", (int)(e - p - 1), p + 1);
        bad += attempt_group_of(ATTEMPT_COLLECTION, word) != AG_FAILED;
        n++;
    }
    CHECK(n == 6 && bad == 0, "ATTEMPT_FAILED_SQL is the failed group (%d words, %d wrong)", n,
          bad);
}

/* ---- one invoice attempt through every group ------------------------------ */

static void
test_invoice_lifecycle(void)
{
    int64_t cid = 90, inv = add_invoice(cid, 1, 8050, "2025-01-01");
    int64_t rows0 = sql_i64("SELECT COUNT(*) FROM ledger WHERE customer_id = 90");
    int64_t id = open_attempt(cid, 1, inv, 8050, "SUBMITTED");
    struct {
        const char *status;
        int64_t     paid, money, rows;
        const char *after;
    } steps[] = {
        {"CONFIRMED",            8050, 8050,  1, "CONFIRMED"},
        {"PAID_OUT",             8050, 0,     1, "PAID_OUT"},
        {"CONFIRMED",            8050, 0,     1, "PAID_OUT"},      /* late */
        {"PAID_OUT",             8050, 0,     1, "PAID_OUT"},      /* duplicate */
        {"SUBMITTED",            8050, 0,     1, "PAID_OUT"},      /* out of order */
        {"SURCHARGE_FEE_DEBITED",8050, 0,     1, "PAID_OUT"},      /* informational */
        {"CHARGED_BACK",         0,    -8050, 2, "CHARGED_BACK"},
        {"CHARGED_BACK",         0,    0,     2, "CHARGED_BACK"},  /* replay */
        {"LATE_FAILURE_SETTLED", 0,    0,     2, "CHARGED_BACK"},  /* its alternative */
        {"CHARGEBACK_CANCELLED", 8050, 8050,  3, "CHARGEBACK_CANCELLED"},
        {"CHARGEBACK_SETTLED",   8050, 0,     3, "CHARGEBACK_CANCELLED"},
        {"PAID_OUT",             8050, 0,     3, "CHARGEBACK_CANCELLED"},
    };
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        struct attempt_outcome out;
        char                   after[48] = "";
        enum db_rc             rc = report(id, steps[i].status, &out, after);
        CHECK(rc == DB_OK, "step %zu %s: ok (%d)", i, steps[i].status, rc);
        CHECK(out.money == steps[i].money, "step %zu %s: money %" PRId64 " (want %" PRId64 ")",
              i, steps[i].status, out.money, steps[i].money);
        CHECK(paid_of(1, inv) == steps[i].paid, "step %zu %s: invoice paid %" PRId64, i,
              steps[i].status, paid_of(1, inv));
        CHECK_STR(after, steps[i].after, "step %zu %s: status after", i, steps[i].status);
        CHECK(sql_i64("SELECT COUNT(*) FROM ledger WHERE customer_id = 90") - rows0 ==
                  steps[i].rows, "step %zu %s: %" PRId64 " money rows", i, steps[i].status,
              steps[i].rows);
        CHECK(out.event_id > 0, "step %zu: every report is an invoice payment event", i);
    }
    CHECK(sql_i64("SELECT COUNT(*) FROM invoice_payments WHERE attempt_id = %" PRId64, id) ==
              (int64_t)(sizeof(steps) / sizeof(steps[0])) + 1,
          "one event per report (and the opening one)");
    CHECK(sql_i64("SELECT third_party_status = 'CHARGEBACK_CANCELLED' FROM invoices"
                  " WHERE kind = 1 AND id = %" PRId64, inv) == 1,
          "the invoice shows the attempt's status");
    CHECK(ledger_ok(cid), "balance = sum of ledger");
}

/* ---- an account-level attempt: normal and adhoc, oldest first ------------- */

static void
test_account_attempt(void)
{
    int64_t cid = 91;
    int64_t before = sql_i64("SELECT balance FROM customers WHERE id = 91");
    /* Pay off what the fixture left open first, so only ours are open. */
    sql_do("UPDATE invoices SET paid = amount WHERE customer_id = 91");
    int64_t adhoc = add_invoice(cid, 2, 3000, "2025-01-01");  /* oldest */
    int64_t normal = add_invoice(cid, 1, 5000, "2025-02-01");
    int64_t id = open_attempt(cid, 0, 0, 6000, "PENDING_SUBMISSION");
    struct attempt_outcome out;
    CHECK(report(id, "CONFIRMED", &out, NULL) == DB_OK && out.money == 6000, "collected");
    CHECK(paid_of(2, adhoc) == 3000 && paid_of(1, normal) == 3000,
          "spread oldest first, adhoc included (adhoc %" PRId64 ", normal %" PRId64 ")",
          paid_of(2, adhoc), paid_of(1, normal));
    CHECK(sql_i64("SELECT COUNT(*) FROM ledger WHERE customer_id = 91 AND txn_type = 'PAYMENT'"
                  " AND amount = 6000 AND invoice_id IS NULL") == 1, "one account PAYMENT row");
    CHECK(report(id, "PAID_OUT", &out, NULL) == DB_OK && out.money == 0, "paid out: no money");
    CHECK(report(id, "CHARGEBACK_SETTLED", &out, NULL) == DB_OK && out.money == -6000,
          "charged back");
    CHECK(paid_of(2, adhoc) == 0 && paid_of(1, normal) == 0, "taken back from both invoices");
    CHECK(sql_i64("SELECT balance FROM customers WHERE id = 91") == before - 8000,
          "the balance is back to owing both invoices");
    CHECK(ledger_ok(cid), "balance = sum of ledger");

    /* Refunds hold money of an invoice: the reversal is refused whole. */
    int64_t id2 = open_attempt(cid, 0, 0, 8000, "CONFIRMED");
    CHECK(paid_of(2, adhoc) == 3000 && paid_of(1, normal) == 5000, "paid both in full");
    CHECK(reserve_refund(cid, 1, normal, 4000) > 0, "a refund of 40.00 reserved on the normal one");
    int64_t rows = sql_i64("SELECT COUNT(*) FROM ledger WHERE customer_id = 91");
    CHECK(report(id2, "CHARGED_BACK", &out, NULL) == DB_CONFLICT,
          "a reversal that would leave paid < refunded is refused");
    CHECK(sql_i64("SELECT COUNT(*) FROM ledger WHERE customer_id = 91") == rows &&
              paid_of(2, adhoc) == 3000 && paid_of(1, normal) == 5000,
          "and nothing was written");
    CHECK(ledger_ok(cid), "balance = sum of ledger");
}

/* ---- refunds -------------------------------------------------------------- */

static void
test_refund_lifecycle(void)
{
    int64_t cid = 92, inv = add_invoice(cid, 1, 10000, "2025-01-01");
    struct attempt_outcome out;
    int64_t pay = open_attempt(cid, 1, inv, 10000, "CONFIRMED");
    CHECK(pay > 0 && paid_of(1, inv) == 10000, "paid");

    int64_t r1 = reserve_refund(cid, 1, inv, 3000);
    CHECK(sql_i64("SELECT refunded * 1000000 + refund_pending FROM invoices WHERE kind = 1"
                  " AND id = %" PRId64, inv) == 3000 * 1000000LL + 3000, "reserved");
    CHECK(report(r1, "SUBMITTED", &out, NULL) == DB_OK && out.money == 0, "submitted");
    CHECK(report(r1, "REFUND_SETTLED", &out, NULL) == DB_OK && out.money == -3000, "settled");
    CHECK(sql_i64("SELECT refunded * 1000000 + refund_pending FROM invoices WHERE kind = 1"
                  " AND id = %" PRId64, inv) == 3000 * 1000000LL, "reservation became refunded");
    CHECK(sql_i64("SELECT COUNT(*) FROM refunds f JOIN ledger l ON l.id = f.ledger_id"
                  " WHERE f.id = (SELECT refund_id FROM attempts WHERE id = %" PRId64 ")"
                  " AND l.txn_type = 'REFUND' AND l.amount = -3000"
                  " AND f.third_party_refund_status = 'REFUND_SETTLED'", r1) == 1,
          "the REFUND row, and the refund shows REFUND_SETTLED");
    CHECK(report(r1, "BOUNCED", &out, NULL) == DB_OK && out.money == 0,
          "a bounce after settling ranks equal: ignored");
    CHECK(report(r1, "FUNDS_RETURNED", &out, NULL) == DB_OK && out.money == 3000,
          "funds returned");
    CHECK(sql_i64("SELECT COUNT(*) FROM ledger WHERE customer_id = 92 AND"
                  " txn_type = 'REFUND_RETURNED' AND amount = 3000") == 1,
          "a REFUND_RETURNED row gives the money back to the account");
    CHECK(sql_i64("SELECT refunded FROM invoices WHERE kind = 1 AND id = %" PRId64, inv) == 0,
          "and it is refundable again");
    CHECK(report(r1, "FUNDS_RETURNED", &out, NULL) == DB_OK && out.money == 0,
          "a replay returns nothing more");

    int64_t r2 = reserve_refund(cid, 1, inv, 2500);
    CHECK(report(r2, "CANCELLED", &out, NULL) == DB_OK && out.money == 0, "cancelled");
    CHECK(sql_i64("SELECT refunded * 1000000 + refund_pending FROM invoices WHERE kind = 1"
                  " AND id = %" PRId64, inv) == 0, "the reservation is released");
    CHECK(report(r2, "REFUND_SETTLED", &out, NULL) == DB_OK && out.money == 0 &&
              report(r2, "FUNDS_RETURNED", &out, NULL) == DB_OK && out.money == 0,
          "a cancelled refund never settles nor returns");
    CHECK(sql_i64("SELECT COUNT(*) FROM ledger WHERE customer_id = 92 AND txn_type LIKE"
                  " 'REFUND%%'") == 2, "only the first refund's two rows");
    CHECK(sql_i64("SELECT payment_status = 'PAID' FROM invoices WHERE kind = 1 AND id = %" PRId64,
                  inv) == 1, "the invoice is PAID again");
    CHECK(ledger_ok(cid), "balance = sum of ledger");
}

/* ---- the property test ---------------------------------------------------- */

static const char *const COLL_STATUSES[] = {
    "NEW", "PENDING_SUBMISSION", "SUBMITTED", "FAILED_RETRYING", "FAILED", "CANCELLED",
    "CONFIRMED", "CONFIRMED", "PAID_OUT", "PAID_OUT", "MANUALLY_PAID", "CHARGED_BACK",
    "CHARGED_BACK", "LATE_FAILURE_SETTLED", "CHARGEBACK_CANCELLED", "CHARGEBACK_SETTLED",
    "SURCHARGE_FEE_DEBITED", "REFUNDED"};
static const char *const REFUND_STATUSES[] = {
    "SUBMITTED", "PAID", "REFUND_SETTLED", "CANCELLED", "BOUNCED", "FUNDS_RETURNED"};
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

struct pt_attempt {
    int64_t id, invoice, amount;
    int     kind;        /* 0 account-level, 1 normal */
    char    model[48];   /* the rank rule's status (single-process run) */
};

/* The model of the rank rule: move only to a strictly higher rank; a
 * refund that never left stays released; a reversal refused (conflict)
 * moves nothing. */
static void
model_apply(int kind, char *cur, const char *status, enum db_rc rc)
{
    if (rc != DB_OK)
        return;
    int nr = attempt_rank(kind, status), cr = attempt_rank(kind, cur);
    if (kind == ATTEMPT_REFUND && attempt_group_of(kind, cur) == AG_RELEASED)
        return;
    if (nr >= 0 && nr > cr)
        snprintf(cur, 48, "%s", status);
}

/* Every invariant, over the customers [lo, hi]. */
static void
check_invariants(const char *tag, int64_t lo, int64_t hi)
{
    CHECK(sql_i64("SELECT COUNT(*) FROM customers c WHERE c.id BETWEEN %" PRId64 " AND %" PRId64
                  " AND c.balance <> (SELECT COALESCE(SUM(amount), 0) FROM ledger l"
                  " WHERE l.customer_id = c.id)", lo, hi) == 0,
          "%s: every balance = sum of its ledger", tag);
    CHECK(sql_i64("SELECT COUNT(*) FROM attempts t WHERE t.kind = 1 AND t.customer_id BETWEEN"
                  " %" PRId64 " AND %" PRId64 " AND ((t.applied_ledger_id IS NOT NULL) <>"
                  " (t.status IN ('CONFIRMED','PAID_OUT','MANUALLY_PAID','CHARGEBACK_CANCELLED')))",
                  lo, hi) == 0,
          "%s: an attempt holds money exactly when collected", tag);
    /* Invoice attempts: their money rows net to what they hold. */
    CHECK(sql_i64("SELECT COUNT(*) FROM attempts t WHERE t.kind = 1 AND t.invoice_kind IS NOT NULL"
                  " AND t.customer_id BETWEEN %" PRId64 " AND %" PRId64
                  " AND (SELECT COALESCE(SUM(l.amount), 0) FROM invoice_payments p JOIN ledger l"
                  " ON l.id = p.ledger_id WHERE p.attempt_id = t.id) <>"
                  " IF(t.applied_ledger_id IS NULL, 0, t.amount)", lo, hi) == 0,
          "%s: every invoice attempt's ledger rows net to its money (applied once)", tag);
    /* Account attempts: PAYMENT and PAYMENT_REVERSED rows of its events' payments. */
    CHECK(sql_i64("SELECT COUNT(*) FROM attempts t WHERE t.kind = 1 AND t.invoice_kind IS NULL"
                  " AND t.customer_id BETWEEN %" PRId64 " AND %" PRId64
                  " AND (SELECT COALESCE(SUM(p.amount), 0) FROM invoice_payments p"
                  " WHERE p.attempt_id = t.id) > IF(t.applied_ledger_id IS NULL, 0, t.amount)",
                  lo, hi) == 0,
          "%s: an account attempt never spreads more than it holds", tag);
    CHECK(sql_i64("SELECT COUNT(*) FROM invoices i WHERE i.customer_id BETWEEN %" PRId64
                  " AND %" PRId64 " AND i.invoice_number LIKE 'DBC-%%' AND i.paid <>"
                  " (SELECT COALESCE(SUM(t.amount), 0) FROM attempts t WHERE t.kind = 1"
                  " AND t.invoice_kind = i.kind AND t.invoice_id = i.id"
                  " AND t.applied_ledger_id IS NOT NULL) +"
                  " (SELECT COALESCE(SUM(p.amount), 0) FROM invoice_payments p JOIN attempts t"
                  " ON t.id = p.attempt_id WHERE t.invoice_kind IS NULL"
                  " AND p.invoice_kind = i.kind AND p.invoice_id = i.id)", lo, hi) == 0,
          "%s: every invoice's paid = its collected attempts", tag);
    CHECK(sql_i64("SELECT COUNT(*) FROM invoices WHERE customer_id BETWEEN %" PRId64
                  " AND %" PRId64 " AND NOT (0 <= refunded AND refunded <= paid"
                  " AND 0 <= refund_pending AND refund_pending <= refunded)", lo, hi) == 0,
          "%s: 0 <= refunded <= paid on every invoice, reservations counted", tag);
    CHECK(sql_i64("SELECT COUNT(*) FROM invoices i WHERE i.customer_id BETWEEN %" PRId64
                  " AND %" PRId64 " AND i.invoice_number LIKE 'DBC-%%' AND i.refunded <>"
                  " (SELECT COALESCE(SUM(f.amount), 0) FROM refunds f WHERE f.invoice_kind = i.kind"
                  " AND f.invoice_id = i.id AND f.third_party_refund_status IN"
                  " ('PENDING_SUBMISSION','SUBMITTED','PAID','REFUND_SETTLED'))", lo, hi) == 0,
          "%s: refunded = refunds pending or settled (released and returned ones not)", tag);
    CHECK(sql_i64("SELECT COUNT(*) FROM refunds f WHERE f.customer_id BETWEEN %" PRId64
                  " AND %" PRId64 " AND (SELECT COALESCE(SUM(l.amount), 0) FROM ledger l"
                  " WHERE l.customer_id = f.customer_id AND l.txn_type IN ('REFUND',"
                  "'REFUND_RETURNED') AND l.id = f.ledger_id) <> IF(f.third_party_refund_status"
                  " IN ('PAID','REFUND_SETTLED','FUNDS_RETURNED') AND f.ledger_id IS NOT NULL,"
                  " -f.amount, 0)", lo, hi) == 0,
          "%s: a refund has its REFUND row exactly when it left", tag);
}

/* One process's share of random reports over the attempts (and refunds
 * reserved and reported along the way). */
static int
random_run(unsigned seed, struct pt_attempt *at, size_t n, int steps, int use_model,
           int64_t cid_lo, int64_t cid_n)
{
    int bad = 0;
    srand(seed);
    struct pt_attempt refunds[256];
    size_t            nref = 0;
    for (int s = 0; s < steps; s++) {
        int dice = rand() % 10;
        if (dice == 0 && nref < NELEM(refunds)) {
            /* Refunds race reversals: reserve some of what an invoice holds. */
            struct pt_attempt *p = &at[rand() % n];
            if (p->kind == 0)
                continue;
            int64_t amount = 1 + rand() % 2000;
            int64_t id = reserve_refund(cid_lo + (int64_t)((p - at) % cid_n), 1, p->invoice, amount);
            if (id > 0) {
                refunds[nref] = (struct pt_attempt){.id = id, .amount = amount};
                snprintf(refunds[nref].model, 48, "PENDING_SUBMISSION");
                nref++;
            }
        } else if (dice <= 2 && nref > 0) {
            struct pt_attempt *r = &refunds[rand() % nref];
            const char        *st = REFUND_STATUSES[rand() % NELEM(REFUND_STATUSES)];
            struct attempt_outcome out;
            enum db_rc             rc = report(r->id, st, &out, NULL);
            bad += rc != DB_OK;
            if (use_model)
                model_apply(ATTEMPT_REFUND, r->model, st, rc);
        } else {
            struct pt_attempt *p = &at[rand() % n];
            const char        *st = COLL_STATUSES[rand() % NELEM(COLL_STATUSES)];
            int                times = rand() % 4 == 0 ? 2 : 1;   /* replays */
            for (int k = 0; k < times; k++) {
                struct attempt_outcome out;
                char                   after[48] = "";
                enum db_rc             rc = report(p->id, st, &out, after);
                bad += rc != DB_OK && rc != DB_CONFLICT;
                if (use_model) {
                    model_apply(ATTEMPT_COLLECTION, p->model, st, rc);
                    if (rc == DB_OK && strcmp(after, p->model) != 0)
                        bad++;
                }
            }
        }
    }
    if (use_model)
        for (size_t i = 0; i < nref; i++) {
            struct attempt a;
            struct db_uow  u;
            db_uow_init(&u, A);
            if (attempt_load(&u, refunds[i].id, 0, &a) != DB_OK ||
                strcmp(a.status, refunds[i].model) != 0)
                bad++;
            db_uow_reset(&u);
            arena_reset(A);
        }
    return bad;
}

static void
make_attempts(struct pt_attempt *at, size_t n, int64_t cid_lo, int64_t cid_n)
{
    for (size_t i = 0; i < n; i++) {
        int64_t cid = cid_lo + (int64_t)(i % (size_t)cid_n);
        at[i].amount = 1000 + rand() % 9000;
        at[i].kind = i % 5 == 4 ? 0 : 1;
        if (at[i].kind == 1) {
            at[i].invoice = add_invoice(cid, 1, at[i].amount, "2025-03-01");
        } else {
            add_invoice(cid, 2, at[i].amount / 2 + 1, "2025-02-01");
            add_invoice(cid, 1, at[i].amount, "2025-03-01");
        }
        at[i].id = open_attempt(cid, at[i].kind, at[i].invoice, at[i].amount, "NEW");
        snprintf(at[i].model, 48, "NEW");
    }
}

static void
test_property_sequential(void)
{
    static struct pt_attempt at[500];
    unsigned                 seed = (unsigned)time(NULL);
    srand(seed);
    make_attempts(at, NELEM(at), 93, 3);
    int bad = random_run(seed, at, NELEM(at), 4000, 1, 93, 3);
    CHECK(bad == 0, "500 attempts, 4,000 random reports (seed %u): every status is the rank"
          " rule's and nothing failed (%d wrong)", seed, bad);
    check_invariants("sequential", 93, 95);
}

static void
test_property_concurrent(void)
{
    enum { PROCS = 4 };
    static struct pt_attempt at[200];
    unsigned                 seed = (unsigned)time(NULL) ^ 0x5a5a;
    srand(seed);
    make_attempts(at, NELEM(at), 96, 3);
    db_close(); /* children connect after fork */
    pid_t pids[PROCS];
    for (int p = 0; p < PROCS; p++) {
        pids[p] = fork();
        if (pids[p] == 0) {
            A = arena_create(1 << 16);
            if (db_open(&settings) != 0)
                _exit(3);
            int bad = random_run(seed + (unsigned)p, at, NELEM(at), 1000, 0, 96, 3);
            db_close();
            _exit(bad ? 1 : 0);
        }
    }
    int failed = 0;
    for (int p = 0; p < PROCS; p++) {
        int st;
        waitpid(pids[p], &st, 0);
        failed += !(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    if (db_open(&settings) != 0)
        die("db_open");
    CHECK(failed == 0, "4 processes x 1,000 random reports on the same 200 attempts (seed %u):"
          " every report committed or was refused as a conflict (%d processes failed)", seed,
          failed);
    check_invariants("concurrent", 96, 98);
}

/* ---- the engine against the sandbox provider ------------------------------ */

static const char *
status_of(int64_t id, char *buf)
{
    struct db_uow  u;
    struct attempt a;
    db_uow_init(&u, A);
    snprintf(buf, 48, "%s", attempt_load(&u, id, 0, &a) == DB_OK ? a.status : "?");
    db_uow_reset(&u);
    arena_reset(A);
    return buf;
}

static int64_t
sandbox_calls(int64_t attempt_id)
{
    return sql_i64("SELECT COALESCE(SUM(s.calls), 0) FROM sandbox_calls s JOIN attempts t"
                   " ON t.idempotency_key = s.idempotency_key WHERE t.id = %" PRId64, attempt_id);
}

/* Passes until nothing is due within `ms`, at most `limit_ms`. */
static void
engine_until_idle(long limit_ms)
{
    struct timespec t0, t1, nap = {0, 20 * 1000000L};
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        while (collector_pass(A, 16) > 0)
            ;
        if (sql_i64("SELECT COUNT(*) FROM attempts WHERE next_action_at IS NOT NULL"
                    " AND next_action_at < UTC_TIMESTAMP(6) + INTERVAL 3 SECOND") == 0)
            return;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if ((t1.tv_sec - t0.tv_sec) * 1000L + (t1.tv_nsec - t0.tv_nsec) / 1000000L > limit_ms)
            return;
        nanosleep(&nap, NULL);
    }
}

static int64_t
due_attempt(int64_t cid, int64_t invoice, int64_t amount)
{
    struct db_uow   u;
    struct customer c;
    struct attempt  a = {.kind = ATTEMPT_COLLECTION, .customer_id = cid, .invoice_kind = 1,
                         .invoice_id = invoice, .method = "GO_CARDLESS", .amount = amount,
                         .description = "engine test", .due = 1};
    struct attempt_outcome out;
    db_uow_init(&u, A);
    enum db_rc rc = db_tx_begin(&u);
    if (rc == DB_OK)
        rc = customer_load(&u, cid, 1, &c);
    a.currency_id = c.currency_id;
    if (rc == DB_OK)
        rc = attempt_advance(&u, &c, &a, "RESUBMISSION_REQUESTED", NULL, &out);
    if (rc == DB_OK)
        rc = db_tx_commit(&u);
    db_uow_reset(&u);
    arena_reset(A);
    if (rc != DB_OK)
        die("due_attempt");
    return a.id;
}

static void
test_engine(void)
{
    struct collector_settings cs = {
        .poll_ms = 20, .lease_ms = 300, .reconcile_ms = 40, .backoff_ms = 100,
        .backoff_max_ms = 400, .max_calls = 4, .refund_expiry_days = 7,
        .autocollect_every_ms = 60000};
    collector_configure(&cs);
    provider_sandbox_configure(1, 30, NULL);
    /* GO_CARDLESS provider 1 serves owner 1 (customers 90-99): ACTIVE. */
    sql_do("UPDATE payment_providers SET status = 'ACTIVE' WHERE id = 1");
    int64_t cid = 99;
    struct {
        int64_t     amount;
        const char *want;
        int64_t     paid;
        int64_t     calls_at_most;
    } cases[] = {
        {10000, "PAID_OUT", 10000, 50},
        {10013, "FAILED", 0, 50},            /* the bank fails it */
        {10066, "CHARGED_BACK", 0, 50},      /* paid out, then charged back */
        {10029, "PAID_OUT", 10029, 2},       /* 429 with Retry-After, then submitted again */
        {10055, "PAID_OUT", 10055, 3},       /* 503 twice, then submitted again */
        {10041, "FAILED", 0, 1},             /* refused (4xx): at once */
    };
    enum { N = sizeof(cases) / sizeof(cases[0]) };
    int64_t inv[N], id[N];
    char    buf[48];
    for (int i = 0; i < N; i++) {
        inv[i] = add_invoice(cid, 1, cases[i].amount, "2025-04-01");
        id[i] = due_attempt(cid, inv[i], cases[i].amount);
    }
    int64_t rows0 = sql_i64("SELECT COUNT(*) FROM ledger WHERE customer_id = 99");
    engine_until_idle(20000);
    for (int i = 0; i < N; i++) {
        CHECK_STR(status_of(id[i], buf), cases[i].want, "amount %" PRId64 ": status",
                  cases[i].amount);
        CHECK(paid_of(1, inv[i]) == cases[i].paid, "amount %" PRId64 ": paid %" PRId64,
              cases[i].amount, paid_of(1, inv[i]));
        CHECK(sql_i64("SELECT COUNT(DISTINCT s.reference) FROM sandbox_calls s JOIN attempts t"
                      " ON t.idempotency_key = s.idempotency_key WHERE t.id = %" PRId64, id[i]) == 1,
              "amount %" PRId64 ": one payment at the provider (one key, one reference)",
              cases[i].amount);
        CHECK(sandbox_calls(id[i]) <= cases[i].calls_at_most, "amount %" PRId64 ": %" PRId64
              " submissions", cases[i].amount, sandbox_calls(id[i]));
    }
    CHECK(sql_i64("SELECT COUNT(*) FROM attempts WHERE id = %" PRId64 " AND error_info LIKE"
                  "'%%refused%%'", id[5]) == 1, "the refusal is in errorInfo");
    /* 3 collected: one PAYMENT row each. The charged back one nets to 0: its
     * PAYMENT and PAYMENT_REVERSED, or neither when a fetch saw the
     * chargeback before any collected status (nothing was applied). */
    int64_t moved = sql_i64("SELECT COUNT(*) FROM ledger WHERE customer_id = 99") - rows0;
    CHECK(moved == 3 || moved == 5, "money rows: 3 payments (+ a pair for the chargeback):"
          " %" PRId64, moved);
    CHECK(sql_i64("SELECT COALESCE(SUM(amount), 0) FROM ledger WHERE customer_id = 99 AND"
                  " invoice_id = %" PRId64 " AND txn_type LIKE 'PAYMENT%%'", inv[2]) == 0,
          "the charged back payment nets to 0 in the ledger");

    /* Killed between the provider call and recording its answer: the call
     * is made again with the same key; the provider answers its first
     * result and the money is applied once. */
    int64_t inv2 = add_invoice(cid, 1, 7000, "2025-04-02");
    int64_t a2 = due_attempt(cid, inv2, 7000);
    {
        struct req     r;
        struct attempt a;
        req_init(&r, A);
        db_uow_init(&r.db, A);
        CHECK(attempt_load(&r.db, a2, 0, &a) == DB_OK, "load");
        struct provider_money  m = {a.amount, "GBP", a.description, a.idem_key, 1, NULL, NULL};
        struct provider_result res = {0};
        CHECK(provider_adapter("GO_CARDLESS")->payment_submit(&r, &m, &res) == 0,
              "a call whose answer is lost");
        db_uow_reset(&r.db);
        arena_reset(A);
        /* ...and its claim's lease runs out. */
        sql_do("UPDATE attempts SET next_action_at = UTC_TIMESTAMP(6) - INTERVAL 1 SECOND"
               " WHERE id = (SELECT id FROM (SELECT MAX(id) AS id FROM attempts) x)");
    }
    engine_until_idle(20000);
    CHECK_STR(status_of(a2, buf), "PAID_OUT", "the lost answer: asked again, collected");
    CHECK(paid_of(1, inv2) == 7000, "applied once (paid %" PRId64 ")", paid_of(1, inv2));
    CHECK(sandbox_calls(a2) == 2, "two calls with one key at the provider (%" PRId64 ")",
          sandbox_calls(a2));

    /* A refund the bank bounces, and one that settles. */
    int64_t r1 = reserve_refund(cid, 1, inv[0], 2077), r2 = reserve_refund(cid, 1, inv[0], 3000);
    engine_until_idle(20000);
    CHECK_STR(status_of(r1, buf), "BOUNCED", "refund ending in 77: BOUNCED");
    CHECK_STR(status_of(r2, buf), "REFUND_SETTLED", "refund: REFUND_SETTLED");
    CHECK(sql_i64("SELECT refunded * 1000000 + refund_pending FROM invoices WHERE kind = 1"
                  " AND id = %" PRId64, inv[0]) == 3000 * 1000000LL,
          "the bounced one released, the settled one refunded");

    /* No ACTIVE provider: it waits; an operator cancel releases a refund. */
    sql_do("UPDATE payment_providers SET status = 'INACTIVE' WHERE id = 1");
    int64_t r3 = reserve_refund(cid, 1, inv[3], 1000);
    engine_until_idle(3000);
    CHECK_STR(status_of(r3, buf), "PENDING_SUBMISSION", "no ACTIVE provider: it waits");
    CHECK(sql_i64("SELECT error_info LIKE 'waiting for an ACTIVE%%' FROM attempts WHERE id = %"
                  PRId64, r3) == 1, "and says why in errorInfo");
    /* The expiry: as if created 8 days ago. */
    sql_do("UPDATE attempts SET created_at = created_at - INTERVAL 8 DAY,"
           " next_action_at = UTC_TIMESTAMP(6) WHERE id = (SELECT id FROM"
           " (SELECT MAX(id) AS id FROM attempts WHERE kind = 2) x)");
    engine_until_idle(3000);
    CHECK_STR(status_of(r3, buf), "CANCELLED", "after the expiry: CANCELLED");
    CHECK(sql_i64("SELECT refund_pending FROM invoices WHERE kind = 1 AND id = %" PRId64, inv[3]) ==
              0, "its reservation released");
    sql_do("UPDATE payment_providers SET status = 'ACTIVE' WHERE id = 1");
    check_invariants("engine", 99, 99);
}

/* ---- a mandate still pending at the provider --------------------------------- */

/* Customer 88 (owner 1), a GO_CARDLESS site whose mandate the provider
 * holds as SUBMITTED: its due autoCollect invoice gets no attempt, and a
 * collection made on the mandate anyway (a reprocess) is not submitted but
 * waits; the engine's mandate fetch (the sandbox answers ACTIVE) makes it
 * ACTIVE and ends its fetches; then the waiting collection is submitted
 * and collected, and a mandate already final is not fetched. */
static void
test_mandate_pending(void)
{
    int64_t cid = 88;
    char    buf[48];
    sql_do("INSERT INTO sites (id, customer_id, site_name, start_date, payment_method) VALUES"
           " (78801, 88, 'DBC pending mandate', '2025-01-01', 'GO_CARDLESS')");
    sql_do("INSERT INTO provider_mandates (payment_method, mandate_reference, contract_owner_id,"
           " provider_id, status, account_holder_name, sort_code, account_number_last4) VALUES"
           " ('GO_CARDLESS', 'MD-DBC-PENDING', 1, 1, 'SUBMITTED', 'A Payer', '123456', '5678'),"
           " ('GO_CARDLESS', 'MD-DBC-DONE', 1, 1, 'CANCELLED', 'A Payer', '123456', '5678')");
    sql_do("INSERT INTO site_payment_mandates (site_id, contract_owner_id, provider_id,"
           " return_url, flow_token, flow_expires_at, flow_completed_at, mandate_reference)"
           " VALUES (78801, 1, 1, 'https://shop.example/', REPEAT('c', 43), UTC_TIMESTAMP(),"
           " UTC_TIMESTAMP(), 'MD-DBC-DONE'), (78801, 1, 1, 'https://shop.example/',"
           " REPEAT('b', 43), UTC_TIMESTAMP(), UTC_TIMESTAMP(), 'MD-DBC-PENDING')");
    int64_t inv = add_invoice(cid, 1, 4200, "2025-06-01"),
            inv2 = add_invoice(cid, 1, 1800, "2025-06-01");
    char sql[256];
    snprintf(sql, sizeof(sql), "UPDATE invoices SET site_id = 78801, auto_collect = 1,"
             " due_date = UTC_DATE() WHERE kind = 1 AND id IN (%" PRId64 ", %" PRId64 ")",
             inv, inv2);
    sql_do(sql);
    collector_only_customers("88");
    CHECK(collector_autocollect(A) == 0, "pending mandate: no auto-collection");

    /* A collection on the pending mandate (as a reprocess makes it). */
    int64_t id = due_attempt(cid, inv, 4200);
    sql_do("UPDATE attempts SET mandate_reference = 'MD-DBC-PENDING' WHERE customer_id = 88");
    CHECK(collector_pass(A, 16) == 1, "the engine takes the collection");
    CHECK(sandbox_calls(id) == 0 && sql_i64("SELECT provider_reference IS NULL AND error_info"
          " LIKE 'waiting for mandate MD-DBC-PENDING to become ACTIVE%%' AND next_action_at"
          " IS NOT NULL FROM attempts WHERE id = %" PRId64, id) == 1,
          "pending mandate: not submitted, waiting (%s)", status_of(id, buf));

    CHECK(collector_mandates(A, 64) == 1, "the engine fetches the pending mandate (only it)");
    CHECK(sql_i64("SELECT status = 'ACTIVE' AND next_check_at IS NULL AND checks = 1 FROM"
                  " provider_mandates WHERE mandate_reference = 'MD-DBC-PENDING'") == 1,
          "the fetch made the mandate ACTIVE and ended its fetches");
    CHECK(sql_i64("SELECT next_check_at IS NULL AND checks = 0 FROM provider_mandates"
                  " WHERE mandate_reference = 'MD-DBC-DONE'") == 1,
          "a cancelled mandate is not fetched");
    CHECK(collector_mandates(A, 64) == 0, "nothing left to fetch");

    sql_do("UPDATE attempts SET next_action_at = UTC_TIMESTAMP(6) WHERE customer_id = 88");
    engine_until_idle(20000);
    CHECK(strcmp(status_of(id, buf), "PAID_OUT") == 0 && sandbox_calls(id) >= 1 &&
          paid_of(1, inv) == 4200, "once ACTIVE, the collection is submitted and paid (%s)",
          buf);
    CHECK(collector_autocollect(A) == 1, "ACTIVE mandate: the other due invoice is collected");
    engine_until_idle(20000);
    CHECK(paid_of(1, inv2) == 1800, "the auto-collection paid it");
    collector_only_customers(NULL);
    check_invariants("pending mandate", 88, 88);
}

/* ---- auto-collect on the due date ---------------------------------------- */

/* Customer 89 (owner 1) with a GO_CARDLESS site and an ACTIVE mandate:
 * autoCollect invoices due today or earlier (normal and adhoc) get one
 * attempt each and are collected; one due tomorrow, one not autoCollect
 * and one of a site without a mandate get none; a failed auto-collection
 * is not made again by the next run; a second run makes nothing. */
static void
test_autocollect(void)
{
    int64_t cid = 89;
    sql_do("INSERT INTO sites (id, customer_id, site_name, start_date, payment_method) VALUES"
           " (79001, 89, 'DBC auto', '2025-01-01', 'GO_CARDLESS'),"
           " (79002, 89, 'DBC no mandate', '2025-01-01', 'GO_CARDLESS')");
    sql_do("INSERT INTO provider_mandates (payment_method, mandate_reference, contract_owner_id,"
           " provider_id, status, account_holder_name, sort_code, account_number_last4) VALUES"
           " ('GO_CARDLESS', 'MD-DBC-AUTO', 1, 1, 'ACTIVE', 'A Payer', '123456', '5678')");
    sql_do("INSERT INTO site_payment_mandates (site_id, contract_owner_id, provider_id,"
           " return_url, flow_token, flow_expires_at, flow_completed_at, mandate_reference)"
           " VALUES (79001, (SELECT contract_owner_id FROM customers WHERE id = 89), 1,"
           " 'https://shop.example/', REPEAT('a', 43), UTC_TIMESTAMP(), UTC_TIMESTAMP(),"
           " 'MD-DBC-AUTO')");
    struct {
        int         kind;
        int64_t     amount;
        int64_t     site;
        int         autocollect, due_in_days;
        const char *want; /* the attempt's final status; NULL: no attempt */
    } cases[] = {
        {1, 4000, 79001, 1, 0, "PAID_OUT"},   /* due today */
        {2, 2500, 79001, 1, -3, "PAID_OUT"},  /* adhoc, overdue */
        {1, 3013, 79001, 1, -1, "FAILED"},    /* the sandbox fails it */
        {1, 1500, 79001, 1, 1, NULL},         /* due tomorrow */
        {1, 1600, 79001, 0, -1, NULL},        /* not autoCollect */
        {1, 1700, 79002, 1, -1, NULL},        /* no mandate on its site */
    };
    enum { N = sizeof(cases) / sizeof(cases[0]) };
    int64_t inv[N];
    char    sql[512];
    for (int i = 0; i < N; i++) {
        inv[i] = add_invoice(cid, cases[i].kind, cases[i].amount, "2025-06-01");
        snprintf(sql, sizeof(sql), "UPDATE invoices SET site_id = %" PRId64 ", auto_collect = %d,"
                 " due_date = UTC_DATE() + INTERVAL %d DAY WHERE kind = %d AND id = %" PRId64,
                 cases[i].site, cases[i].autocollect, cases[i].due_in_days, cases[i].kind, inv[i]);
        sql_do(sql);
    }
    collector_only_customers("89");
    CHECK(collector_autocollect(A) == 3, "auto-collect: three invoices due with a mandate");
    engine_until_idle(20000);
    CHECK(collector_autocollect(A) == 0,
          "the next run makes nothing (collected, or failed since the due date)");
    engine_until_idle(5000);
    collector_only_customers(NULL);
    for (int i = 0; i < N; i++) {
        snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM attempts WHERE kind = 1 AND"
                 " invoice_kind = %d AND invoice_id = %" PRId64, cases[i].kind, inv[i]);
        int64_t n = sql_i64("%s", sql);
        CHECK(n == (cases[i].want ? 1 : 0), "auto-collect, amount %" PRId64 ": %" PRId64
              " attempts", cases[i].amount, n);
        if (cases[i].want == NULL)
            continue;
        snprintf(sql, sizeof(sql), "SELECT status = '%s' AND mandate_reference = 'MD-DBC-AUTO'"
                 " FROM attempts WHERE kind = 1 AND invoice_kind = %d AND invoice_id = %" PRId64,
                 cases[i].want, cases[i].kind, inv[i]);
        CHECK(sql_i64("%s", sql) == 1, "auto-collect, amount %" PRId64 ": %s through the"
              " site's mandate", cases[i].amount, cases[i].want);
        int64_t want_paid = strcmp(cases[i].want, "PAID_OUT") == 0 ? cases[i].amount : 0;
        CHECK(paid_of(cases[i].kind, inv[i]) == want_paid, "auto-collect, amount %" PRId64
              ": paid %" PRId64, cases[i].amount, paid_of(cases[i].kind, inv[i]));
    }
    check_invariants("auto-collect", 89, 89);
}

/* ---- kill -9 of the collector under load --------------------------------- */

/* Collectors killed with SIGKILL every 200 ms while 40 attempts are in
 * flight (between claim and call, between call and record, anywhere):
 * afterwards every attempt is collected, once, with one payment at the
 * provider (the same key gives the same reference), and none is lost. */
static void
test_engine_kill(void)
{
    enum { N = 40 };
    struct collector_settings cs = {
        .poll_ms = 10, .lease_ms = 300, .reconcile_ms = 30, .backoff_ms = 50,
        .backoff_max_ms = 200, .max_calls = 50, .refund_expiry_days = 7,
        .autocollect_every_ms = 3600000};
    collector_configure(&cs);
    provider_sandbox_configure(1, 40, NULL);
    int64_t cid = 100, inv[N], id[N], amount[N];
    for (int i = 0; i < N; i++) {
        amount[i] = 2000 + i * 100 + (i % 5 == 0 ? 29 : i % 7 == 0 ? 55 : 0);
        inv[i] = add_invoice(cid, 1, amount[i], "2025-05-01");
        id[i] = due_attempt(cid, inv[i], amount[i]);
    }
    db_close(); /* children connect after fork */
    struct timespec start, now, step = {0, 200 * 1000000L};
    clock_gettime(CLOCK_MONOTONIC, &start);
    int kills = 0;
    for (;;) {
        pid_t pid = fork();
        if (pid == 0) {
            A = arena_create(1 << 16);
            if (db_open(&settings) != 0)
                _exit(3);
            for (;;)
                if (collector_pass(A, 4) <= 0)
                    nanosleep(&(struct timespec){0, 10 * 1000000L}, NULL);
        }
        nanosleep(&step, NULL);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        kills++;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec >= 6)
            break;
    }
    if (db_open(&settings) != 0)
        die("db_open");
    /* Recovery: a collector that is left alone. */
    engine_until_idle(30000);
    int bad_status = 0, bad_paid = 0, bad_refs = 0, bad_rows = 0;
    char buf[48];
    for (int i = 0; i < N; i++) {
        bad_status += strcmp(status_of(id[i], buf), "PAID_OUT") != 0;
        bad_paid += paid_of(1, inv[i]) != amount[i];
        bad_refs += sql_i64("SELECT COUNT(DISTINCT s.reference) FROM sandbox_calls s JOIN attempts t"
                            " ON t.idempotency_key = s.idempotency_key WHERE t.id = %" PRId64,
                            id[i]) != 1;
        bad_rows += sql_i64("SELECT COUNT(*) FROM ledger WHERE customer_id = 100 AND"
                            " txn_type = 'PAYMENT' AND invoice_id = %" PRId64, inv[i]) != 1;
    }
    CHECK(kills >= 10, "the collector was killed %d times", kills);
    CHECK(bad_status == 0, "every attempt settled after recovery (%d not PAID_OUT)", bad_status);
    CHECK(bad_paid == 0 && bad_rows == 0,
          "every invoice paid exactly once (%d wrong amounts, %d wrong PAYMENT row counts)",
          bad_paid, bad_rows);
    CHECK(bad_refs == 0, "one payment per attempt at the provider (%d with another count)",
          bad_refs);
    CHECK(sql_i64("SELECT COUNT(*) FROM sandbox_calls s JOIN attempts t ON t.idempotency_key"
                  " = s.idempotency_key WHERE t.customer_id = 100 AND t.amount %% 100 = 29"
                  " AND s.calls < 2") == 0,
          "the provider counted the calls per key (a 429 was submitted again, same key)");
    check_invariants("kill -9", 100, 100);
}

int
main(void)
{
    const char *name = getenv("PAY_DB_NAME");
    settings = (struct db_settings){
        .socket = getenv("PAY_DB_SOCKET"), .user = getenv("PAY_DB_USER"),
        .password = getenv("PAY_DB_PASSWORD"), .name = name,
        .timeout = 10, .lock_wait = 5};
    if (settings.socket == NULL || settings.user == NULL || name == NULL ||
        strcmp(name, "pay_dbtest") != 0)
        die("run me through tests/db/run.sh (PAY_DB_* of a private pay_dbtest database)");
    if (db_open(&settings) != 0)
        die("db_open");
    other = mysql_init(NULL);
    if (mysql_real_connect(other, NULL, settings.user, settings.password, name, 0,
                           settings.socket, CLIENT_MULTI_STATEMENTS) == NULL)
        die(mysql_error(other));
    A = arena_create(1 << 16);

    test_rank_table();
    test_invoice_lifecycle();
    test_account_attempt();
    test_refund_lifecycle();
    test_property_sequential();
    test_property_concurrent();
    test_engine();
    test_autocollect();
    test_mandate_pending();
    test_engine_kill();

    arena_destroy(A);
    db_close();
    mysql_close(other);
    return TEST_DONE();
}
