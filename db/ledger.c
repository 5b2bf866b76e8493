/*
 * The money core (see ledger.h): the one place that writes the ledger,
 * customers' balances, invoices' totals and invoice payment events.
 */
#include "ledger.h"

#include <string.h>

enum db_rc
customer_load(struct db_uow *u, int64_t id, int lock, struct customer *c)
{
    /* A locking read locks the customer row alone: the currency
     * (reference data) is read by subqueries, which under READ COMMITTED
     * read without locks, so one statement loads both. */
    struct dbq *q = dbq_new(u, lock
        ? "SELECT c.contract_owner_id, c.currency_id, c.balance, c.total_payments,"
          " c.payments_since_invoice,"
          " (SELECT cur.minor_digits FROM currencies cur WHERE cur.id = c.currency_id),"
          " (SELECT cur.code FROM currencies cur WHERE cur.id = c.currency_id)"
          " FROM customers c WHERE c.id = ? FOR UPDATE"
        : "SELECT c.contract_owner_id, c.currency_id, c.balance, c.total_payments,"
          " c.payments_since_invoice,"
          " (SELECT cur.minor_digits FROM currencies cur WHERE cur.id = c.currency_id),"
          " (SELECT cur.code FROM currencies cur WHERE cur.id = c.currency_id)"
          " FROM customers c WHERE c.id = ?");
    dbq_i64(q, id);
    enum db_rc rc = dbq_one(q);
    if (rc != DB_OK)
        return rc;
    if (dbq_is_null(q, 5) || dbq_is_null(q, 6))
        return DB_ERROR;
    c->id = id;
    c->owner = dbq_col_i64(q, 0);
    c->currency_id = dbq_col_i64(q, 1);
    c->balance = dbq_col_i64(q, 2);
    c->total_payments = dbq_col_i64(q, 3);
    c->payments_since_invoice = dbq_col_i64(q, 4);
    c->digits = (int)dbq_col_i64(q, 5);
    c->currency_code = dbq_col_str(q, 6);
    return DB_OK;
}

struct count_row {
    int64_t block, shard, normal, adhoc, refunds;
};

/* Folds one owner's shard rows of one table (`counted`) of the blocks
 * before `below` into one row per block (shard OWNER_COUNT_FOLDED, schema
 * 015), counts unchanged: the
 * rows are locked in key order and read, deleted one by one by their key
 * (a late writer's row of an old block inserted after the read is a row
 * of its own, left for the next fold), and their sums added to the folded
 * rows. */
static enum db_rc
fold_rows(struct db_uow *u, int64_t owner, enum owner_counted counted, int64_t below,
          int64_t *folded)
{
    struct dbq *q = dbq_new(u, "SELECT block, shard, normal_events, adhoc_events, refund_count"
                               " FROM owner_counts WHERE contract_owner_id = ? AND counted = ?"
                               " AND block < ? AND shard < ? ORDER BY block, shard FOR UPDATE");
    dbq_i64(q, owner);
    dbq_i64(q, counted);
    dbq_i64(q, below);
    dbq_i64(q, OWNER_COUNT_FOLDED);
    enum db_rc        rc = dbq_exec(q);
    struct count_row *rows = NULL;
    size_t            n = 0, cap = 0;
    while (rc == DB_OK && (rc = dbq_fetch(q)) == DB_OK) {
        if (n == cap) {
            struct count_row *b = ARENA_NEW(u->arena, struct count_row, cap ? 2 * cap : 64);
            if (n)
                memcpy(b, rows, n * sizeof(*b));
            rows = b;
            cap = cap ? 2 * cap : 64;
        }
        rows[n++] = (struct count_row){dbq_col_i64(q, 0), dbq_col_i64(q, 1), dbq_col_i64(q, 2),
                                       dbq_col_i64(q, 3), dbq_col_i64(q, 4)};
    }
    if (rc != DB_NOT_FOUND)
        return rc;
    struct count_row sum = {0};
    for (size_t i = 0; i < n; i++) {
        q = dbq_new(u, "DELETE FROM owner_counts WHERE contract_owner_id = ? AND counted = ?"
                       " AND block = ? AND shard = ?");
        dbq_i64(q, owner);
        dbq_i64(q, counted);
        dbq_i64(q, rows[i].block);
        dbq_i64(q, rows[i].shard);
        if ((rc = dbq_exec(q)) != DB_OK)
            return rc;
        sum.normal += rows[i].normal;
        sum.adhoc += rows[i].adhoc;
        sum.refunds += rows[i].refunds;
        if (i + 1 < n && rows[i + 1].block == rows[i].block)
            continue;
        q = dbq_new(u, "INSERT INTO owner_counts (contract_owner_id, counted, block, shard,"
                       " normal_events, adhoc_events, refund_count) VALUES (?,?,?,?,?,?,?)"
                       " ON DUPLICATE KEY UPDATE normal_events = normal_events +"
                       " VALUES(normal_events), adhoc_events = adhoc_events +"
                       " VALUES(adhoc_events), refund_count = refund_count + VALUES(refund_count)");
        dbq_i64(q, owner);
        dbq_i64(q, counted);
        dbq_i64(q, rows[i].block);
        dbq_i64(q, OWNER_COUNT_FOLDED);
        dbq_i64(q, sum.normal);
        dbq_i64(q, sum.adhoc);
        dbq_i64(q, sum.refunds);
        if ((rc = dbq_exec(q)) != DB_OK)
            return rc;
        sum = (struct count_row){0};
    }
    *folded += (int64_t)n;
    return DB_OK;
}

/* Where an owner's folding of one table's rows stops: one block below its
 * newest block of that table (or, with no rows of it, the table's newest
 * block), so the block writers are in, and the one before (a late writer
 * that took an id there), keep their shard rows. */
enum db_rc
owner_counts_fold(struct db_uow *u, int64_t owner, int64_t *folded)
{
    static const char *const below_sql[] = {
        [COUNTED_EVENTS] = "SELECT COALESCE((SELECT MAX(block) FROM owner_counts WHERE"
                           " contract_owner_id = ? AND counted = 0), CAST((SELECT"
                           " COALESCE(MAX(id), 0) FROM invoice_payments) >> ? AS SIGNED)) - 1",
        [COUNTED_REFUNDS] = "SELECT COALESCE((SELECT MAX(block) FROM owner_counts WHERE"
                            " contract_owner_id = ? AND counted = 1), CAST((SELECT"
                            " COALESCE(MAX(id), 0) FROM refunds) >> ? AS SIGNED)) - 1",
    };
    enum db_rc rc = DB_OK;
    *folded = 0;
    for (int t = COUNTED_EVENTS; rc == DB_OK && t <= COUNTED_REFUNDS; t++) {
        struct dbq *q = dbq_new(u, below_sql[t]);
        dbq_i64(q, owner);
        dbq_i64(q, OWNER_COUNT_BLOCK_SHIFT);
        if ((rc = dbq_one(q)) == DB_OK)
            rc = fold_rows(u, owner, (enum owner_counted)t, dbq_col_i64(q, 0), folded);
    }
    return rc;
}

enum db_rc
owner_counts_fold_candidates(struct db_uow *u, int64_t after, int64_t *owners, int max,
                             int *n)
{
    /* A superset: owners with shard rows of a table below the bound that
     * table's newest block gives (an owner's own bound is never higher);
     * the bounds first, read from the two primary keys' ends, so nothing
     * is scanned while no block can fold. */
    *n = 0;
    struct dbq *q = dbq_new(u, "SELECT CAST((SELECT COALESCE(MAX(id), 0) FROM invoice_payments)"
                               " >> ? AS SIGNED) - 1, CAST((SELECT COALESCE(MAX(id), 0) FROM"
                               " refunds) >> ? AS SIGNED) - 1");
    dbq_i64(q, OWNER_COUNT_BLOCK_SHIFT);
    dbq_i64(q, OWNER_COUNT_BLOCK_SHIFT);
    enum db_rc rc = dbq_one(q);
    if (rc != DB_OK)
        return rc;
    int64_t events_below = dbq_col_i64(q, 0), refunds_below = dbq_col_i64(q, 1);
    if (events_below <= 0 && refunds_below <= 0)
        return DB_OK;
    q = dbq_new(u, "SELECT DISTINCT contract_owner_id FROM owner_counts WHERE"
                   " contract_owner_id > ? AND shard < ? AND (counted = 0 AND block < ?"
                   " OR counted = 1 AND block < ?) ORDER BY contract_owner_id LIMIT ?");
    dbq_i64(q, after);
    dbq_i64(q, OWNER_COUNT_FOLDED);
    dbq_i64(q, events_below);
    dbq_i64(q, refunds_below);
    dbq_i64(q, max);
    rc = dbq_exec(q);
    while (rc == DB_OK && (rc = dbq_fetch(q)) == DB_OK)
        if (*n < max)
            owners[(*n)++] = dbq_col_i64(q, 0);
    return rc == DB_NOT_FOUND ? DB_OK : rc;
}

/* One more in the owner's counter `column` (schemas 008, 011, 016), in the
 * customer's shard of the block of the counted row's id. The shard's row
 * usually exists: a plain UPDATE locks just it; the first row of a shard
 * in a block is inserted. No other row is touched: folding old blocks is
 * the collection engine's step (owner_counts_fold), outside money
 * writes; a late write to a folded block inserts a shard row there again,
 * which a later fold folds. */
static enum db_rc
owner_count(struct db_uow *u, const struct customer *c, enum owner_count which,
            int64_t row_id)
{
    static const char *const update[] = {
        [COUNT_NORMAL_EVENTS] = "UPDATE owner_counts SET normal_events = normal_events + 1"
                                " WHERE contract_owner_id = ? AND counted = 0 AND block = ?"
                                " AND shard = ?",
        [COUNT_ADHOC_EVENTS]  = "UPDATE owner_counts SET adhoc_events = adhoc_events + 1"
                                " WHERE contract_owner_id = ? AND counted = 0 AND block = ?"
                                " AND shard = ?",
        [COUNT_REFUNDS]       = "UPDATE owner_counts SET refund_count = refund_count + 1"
                                " WHERE contract_owner_id = ? AND counted = 1 AND block = ?"
                                " AND shard = ?",
    };
    static const char *const insert[] = {
        [COUNT_NORMAL_EVENTS] = "INSERT INTO owner_counts (contract_owner_id, counted, block,"
                                " shard, normal_events) VALUES (?, 0, ?, ?, 1) ON DUPLICATE KEY"
                                " UPDATE normal_events = normal_events + 1",
        [COUNT_ADHOC_EVENTS]  = "INSERT INTO owner_counts (contract_owner_id, counted, block,"
                                " shard, adhoc_events) VALUES (?, 0, ?, ?, 1) ON DUPLICATE KEY"
                                " UPDATE adhoc_events = adhoc_events + 1",
        [COUNT_REFUNDS]       = "INSERT INTO owner_counts (contract_owner_id, counted, block,"
                                " shard, refund_count) VALUES (?, 1, ?, ?, 1) ON DUPLICATE KEY"
                                " UPDATE refund_count = refund_count + 1",
    };
    struct dbq *q = dbq_new(u, update[which]);
    dbq_i64(q, c->owner);
    dbq_i64(q, row_id >> OWNER_COUNT_BLOCK_SHIFT);
    dbq_i64(q, c->id % OWNER_COUNT_SHARDS);
    enum db_rc rc = dbq_exec(q);
    if (rc != DB_OK || dbq_affected(q) > 0)
        return rc;
    q = dbq_new(u, insert[which]);
    dbq_i64(q, c->owner);
    dbq_i64(q, row_id >> OWNER_COUNT_BLOCK_SHIFT);
    dbq_i64(q, c->id % OWNER_COUNT_SHARDS);
    return dbq_exec(q);
}

enum db_rc
ledger_append(struct db_uow *u, struct customer *c, const struct ledger_row *row,
              int64_t *id)
{
    int64_t balance = c->balance + row->amount;
    struct dbq *q = dbq_new(u,
        "INSERT INTO ledger (customer_id, txn_type, customer_payment_type, amount,"
        " resulting_balance, currency_id, description, reference, payment_method,"
        " payment_date, invoice_kind, invoice_id, invoice_number, bill_run_type)"
        " VALUES (?,?,?,?,?,?,?,?,?,COALESCE(?, UTC_DATE()),?,?,?,?)");
    dbq_i64(q, c->id);
    dbq_str(q, row->txn_type);
    dbq_str(q, row->customer_payment_type);
    dbq_i64(q, row->amount);
    dbq_i64(q, balance);
    dbq_i64(q, c->currency_id);
    dbq_str(q, row->description);
    dbq_str(q, row->reference);
    dbq_str(q, row->payment_method);
    dbq_str(q, row->payment_date);
    if (row->invoice_kind) {
        dbq_i64(q, row->invoice_kind);
        dbq_i64(q, row->invoice_id);
    } else {
        dbq_null(q);
        dbq_null(q);
    }
    dbq_str(q, row->invoice_number);
    dbq_str(q, row->bill_run_type);
    enum db_rc rc = dbq_exec(q);
    if (rc != DB_OK)
        return rc;
    *id = dbq_insert_id(q);
    /* The customer's maintained figures (schema 008), absolute values:
     * the row is locked, so c holds what is stored. */
    int64_t paid = c->total_payments, since = c->payments_since_invoice;
    if (strcmp(row->txn_type, "PAYMENT") == 0 ||
        strcmp(row->txn_type, "PAYMENT_REVERSED") == 0) {
        paid += row->amount;
        since += row->amount;
    } else if (strcmp(row->txn_type, "INVOICE_CREATED") == 0 ||
               strcmp(row->txn_type, "ADHOC_INVOICE_CREATED") == 0) {
        since = 0;
    }
    q = dbq_new(u, "UPDATE customers SET balance = ?, total_payments = ?,"
                   " payments_since_invoice = ? WHERE id = ?");
    dbq_i64(q, balance);
    dbq_i64(q, paid);
    dbq_i64(q, since);
    dbq_i64(q, c->id);
    if ((rc = dbq_exec(q)) != DB_OK)
        return rc;
    c->balance = balance;
    c->total_payments = paid;
    c->payments_since_invoice = since;
    return DB_OK;
}

enum db_rc
invoice_lock(struct db_uow *u, int kind, int64_t id, struct customer *c,
             struct invoice *inv)
{
    struct dbq *q = dbq_new(u, "SELECT customer_id FROM invoices WHERE kind = ? AND id = ?");
    dbq_i64(q, kind);
    dbq_i64(q, id);
    enum db_rc rc = dbq_one(q);
    if (rc != DB_OK)
        return rc;
    if ((rc = customer_load(u, dbq_col_i64(q, 0), 1, c)) != DB_OK)
        return rc;
    q = dbq_new(u, "SELECT customer_id, amount, paid, refunded, refund_pending,"
                   " auto_collect, invoice_number, third_party_status"
                   " FROM invoices WHERE kind = ? AND id = ? FOR UPDATE");
    dbq_i64(q, kind);
    dbq_i64(q, id);
    if ((rc = dbq_one(q)) != DB_OK)
        return rc;
    inv->kind = kind;
    inv->id = id;
    inv->customer_id = dbq_col_i64(q, 0);
    inv->amount = dbq_col_i64(q, 1);
    inv->paid = dbq_col_i64(q, 2);
    inv->refunded = dbq_col_i64(q, 3);
    inv->refund_pending = dbq_col_i64(q, 4);
    inv->auto_collect = (int)dbq_col_i64(q, 5);
    inv->number = dbq_col_str(q, 6);
    inv->tp_status = dbq_col_str(q, 7);
    /* Invoices never change customer; this guards the lock order. */
    return inv->customer_id == c->id ? DB_OK : DB_ERROR;
}

enum db_rc
invoice_update(struct db_uow *u, const struct invoice *inv, int64_t paid_delta,
               int64_t refunded_delta, int64_t pending_delta, const char *tp_status)
{
    struct dbq *q = dbq_new(u,
        "UPDATE invoices SET paid = paid + ?, refunded = refunded + ?,"
        " refund_pending = refund_pending + ?,"
        " third_party_status = COALESCE(?, third_party_status), " INVOICE_STATUS_SQL
        " WHERE kind = ? AND id = ?");
    dbq_i64(q, paid_delta);
    dbq_i64(q, refunded_delta);
    dbq_i64(q, pending_delta);
    dbq_str(q, tp_status);
    dbq_i64(q, inv->kind);
    dbq_i64(q, inv->id);
    return dbq_exec(q);
}

int64_t
invoice_event_effect(const char *tp_status, int64_t amount)
{
    switch (tp_group_of(tp_status)) {
    case TP_COLLECTED: return amount;
    case TP_REVERSED:  return amount < 0 ? amount : -amount;
    default:           return 0;
    }
}

enum db_rc
invoice_event_record(struct db_uow *u, struct customer *c, const struct invoice *inv,
                     struct invoice_event *e, int64_t *id)
{
    const char *applied = e->status_not_applicable ? NULL : e->tp_status;
    int64_t     moved = invoice_event_effect(applied, e->amount);
    enum db_rc  rc;
    if (moved != 0) {
        struct ledger_row row = {
            .txn_type = moved < 0 && tp_group_of(applied) == TP_REVERSED
                            ? "PAYMENT_REVERSED" : "PAYMENT",
            .customer_payment_type = e->customer_payment_type, .amount = moved,
            .description = e->description, .payment_method = e->payment_method,
            .invoice_kind = inv->kind, .invoice_id = inv->id,
            .invoice_number = inv->number,
            .bill_run_type = inv->kind == INVOICE_ADHOC ? "ADHOC" : "NORMAL",
        };
        if ((rc = ledger_append(u, c, &row, &e->ledger_id)) != DB_OK)
            return rc;
    }
    if ((rc = invoice_event_insert(u, inv, c, e, id)) != DB_OK)
        return rc;
    return invoice_update(u, inv, moved, 0, 0, applied);
}

enum db_rc
invoice_event_insert(struct db_uow *u, const struct invoice *inv,
                     const struct customer *c, const struct invoice_event *e,
                     int64_t *id)
{
    struct dbq *q = dbq_new(u,
        "INSERT INTO invoice_payments (invoice_kind, invoice_id, customer_id,"
        " contract_owner_id, third_party_status, amount, currency_id, description,"
        " payment_method, payment_date, customer_payment_type, customer_payment_id,"
        " ledger_id, attempt_id) VALUES (?,?,?,?,?,?,?,?,?,UTC_DATE(),?,?,?,?)");
    dbq_i64(q, inv->kind);
    dbq_i64(q, inv->id);
    dbq_i64(q, c->id);
    dbq_i64(q, c->owner);
    dbq_str(q, e->tp_status);
    dbq_i64(q, e->amount);
    dbq_i64(q, c->currency_id);
    dbq_str(q, e->description);
    dbq_str(q, e->payment_method);
    dbq_str(q, e->customer_payment_type);
    dbq_id(q, e->customer_payment_id);
    dbq_id(q, e->ledger_id);
    dbq_id(q, e->attempt_id);
    enum db_rc rc = dbq_exec(q);
    if (rc != DB_OK)
        return rc;
    int64_t row_id = dbq_insert_id(q);
    if (id != NULL)
        *id = row_id;
    return owner_count(u, c, inv->kind == INVOICE_ADHOC ? COUNT_ADHOC_EVENTS
                                                         : COUNT_NORMAL_EVENTS, row_id);
}

enum db_rc
refund_insert(struct db_uow *u, const struct customer *c, const struct refund_row *f,
              int64_t *id)
{
    struct dbq *q = dbq_new(u,
        "INSERT INTO refunds (invoice_kind, invoice_id, customer_id, contract_owner_id,"
        " third_party_refund_status, amount, currency_id, description,"
        " payment_method, ledger_id) VALUES (?,?,?,?,?,?,?,?,?,?)");
    dbq_i64(q, f->invoice_kind);
    dbq_i64(q, f->invoice_id);
    dbq_i64(q, c->id);
    dbq_i64(q, c->owner);
    dbq_str(q, f->status);
    dbq_i64(q, f->amount);
    dbq_i64(q, c->currency_id);
    dbq_str(q, f->description);
    dbq_str(q, f->payment_method);
    dbq_id(q, f->ledger_id);
    enum db_rc rc = dbq_exec(q);
    if (rc != DB_OK)
        return rc;
    *id = dbq_insert_id(q);
    return owner_count(u, c, COUNT_REFUNDS, *id);
}

struct open_invoice {
    int64_t     id;
    int64_t     outstanding;
};

/* Spreads `amount` over the customer's open invoices of this kind. */
static enum db_rc
allocate(struct db_uow *u, struct customer *c, int kind, int64_t amount,
         int64_t payment_id, const char *method, const char *description)
{
    struct dbq *q = dbq_new(u,
        "SELECT id, amount - paid FROM invoices"
        " WHERE customer_id = ? AND kind = ? AND is_open = 1"
        " ORDER BY invoice_date, id FOR UPDATE");
    dbq_i64(q, c->id);
    dbq_i64(q, kind);
    enum db_rc rc = dbq_exec(q);
    if (rc != DB_OK)
        return rc;
    struct abuf rows;
    abuf_init(&rows, u->arena);
    int64_t need = 0;
    while ((rc = dbq_fetch(q)) == DB_OK) {
        struct open_invoice inv = {dbq_col_i64(q, 0), dbq_col_i64(q, 1)};
        if (need < amount)
            abuf_add(&rows, &inv, sizeof(inv));
        need += inv.outstanding;
    }
    if (rc != DB_NOT_FOUND)
        return rc;

    const struct open_invoice *inv = (const struct open_invoice *)rows.p;
    size_t n = rows.len / sizeof(*inv);
    for (size_t i = 0; i < n && amount > 0; i++) {
        int64_t apply = inv[i].outstanding < amount ? inv[i].outstanding : amount;
        if (apply <= 0)
            continue;
        struct invoice       target = {.kind = kind, .id = inv[i].id};
        struct invoice_event e = {
            .amount = apply, .description = description, .payment_method = method,
            .customer_payment_type = "CUSTOMER", .customer_payment_id = payment_id,
        };
        if ((rc = invoice_event_insert(u, &target, c, &e, NULL)) != DB_OK ||
            (rc = invoice_update(u, &target, apply, 0, 0, NULL)) != DB_OK)
            return rc;
        amount -= apply;
    }
    return DB_OK;
}

enum db_rc
customer_payment_record(struct db_uow *u, struct customer *c, int64_t amount,
                        const char *method, const char *description,
                        const char *reference, const char *bill_run_type,
                        int64_t *ledger_id)
{
    struct ledger_row row = {
        .txn_type = "PAYMENT", .customer_payment_type = "CUSTOMER",
        .amount = amount, .description = description, .reference = reference,
        .payment_method = method, .bill_run_type = bill_run_type,
    };
    enum db_rc rc = ledger_append(u, c, &row, ledger_id);
    if (rc != DB_OK)
        return rc;
    return allocate(u, c,
                    strcmp(bill_run_type, "ADHOC") == 0 ? INVOICE_ADHOC : INVOICE_NORMAL,
                    amount, *ledger_id, method, description);
}

enum db_rc
invoice_raise(struct db_uow *u, struct customer *c, const struct invoice *inv,
              const char *invoice_date)
{
    int               adhoc = inv->kind == INVOICE_ADHOC;
    struct ledger_row row = {
        .txn_type = adhoc ? "ADHOC_INVOICE_CREATED" : "INVOICE_CREATED",
        .customer_payment_type = adhoc ? "ADHOC_INVOICE" : "INVOICE",
        .amount = -inv->amount, .invoice_kind = inv->kind, .invoice_id = inv->id,
        .invoice_number = inv->number, .bill_run_type = adhoc ? "ADHOC" : "NORMAL",
        .payment_date = invoice_date,
    };
    int64_t    id;
    enum db_rc rc = ledger_append(u, c, &row, &id);
    if (rc != DB_OK)
        return rc;
    return invoice_update(u, inv, 0, 0, 0, NULL);
}
