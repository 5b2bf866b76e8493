/*
 * Attempts and their lifecycle (see collection.h). The rank table below is
 * the one place that orders the statuses; README.md shows the same table.
 * Money moves only in attempt_advance, on a change of group, and the
 * attempt row remembers what is applied (applied_ledger_id for
 * collections, the refund's status for refunds), so a duplicate, late or
 * replayed report can never apply or take back money a second time.
 */
#include "collection.h"

#include <string.h>

#include "token.h"

/*
 * The rank table [decision]. An attempt only ever moves to a strictly
 * higher rank, so duplicates (equal rank) and late or out-of-order events
 * (lower rank) change nothing. Alternatives that exclude each other share
 * a rank, and the first to arrive wins: a payment fails or is collected;
 * a chargeback is cancelled or settled; a refund settles, is cancelled or
 * bounces. Statuses not listed (SURCHARGE_FEE_*, REFUNDED, ...) are
 * informational: recorded, never moving an attempt.
 */
struct rank_row {
    int                kind;
    const char        *status;
    int                rank;
    enum attempt_group group;
};

#define C ATTEMPT_COLLECTION
#define R ATTEMPT_REFUND
static const struct rank_row RANKS[] = {
    /* kind  status                        rank  group        */
    {C, "NEW",                             0,  AG_PENDING},
    {C, "CREATED",                         1,  AG_PENDING},
    {C, "UNSENT",                          1,  AG_PENDING},
    {C, "RESUBMISSION_REQUESTED",          1,  AG_PENDING},
    {C, "PENDING_CUSTOMER_APPROVAL",       2,  AG_PENDING},
    {C, "CUSTOMER_APPROVAL_GRANTED",       3,  AG_PENDING},
    {C, "PENDING_SUBMISSION",              4,  AG_PENDING},
    {C, "SUBMITTED",                       5,  AG_PENDING},
    {C, "FAILED_RETRYING",                 5,  AG_PENDING},
    {C, "FAILED",                          6,  AG_FAILED},
    {C, "CANCELLED",                       6,  AG_FAILED},
    {C, "CUSTOMER_APPROVAL_DENIED",        6,  AG_FAILED},
    {C, "CUSTOMER_APPROVAL_MISSING",       6,  AG_FAILED},
    {C, "UNSUPPORTED_PAYMENT_TYPE",        6,  AG_FAILED},
    {C, "UNAUTHORISED_PAYMENT_TYPE",       6,  AG_FAILED},
    {C, "CONFIRMED",                       7,  AG_COLLECTED},
    {C, "MANUALLY_PAID",                   7,  AG_COLLECTED},
    {C, "PAID_OUT",                        8,  AG_COLLECTED},
    {C, "CHARGED_BACK",                    9,  AG_REVERSED},
    {C, "LATE_FAILURE_SETTLED",            9,  AG_REVERSED},
    {C, "CHARGEBACK_CANCELLED",            10, AG_COLLECTED},
    {C, "CHARGEBACK_SETTLED",              10, AG_REVERSED},
    {R, "CREATED",                         0,  AG_PENDING},
    {R, "PENDING_SUBMISSION",              1,  AG_PENDING},
    {R, "SUBMITTED",                       2,  AG_PENDING},
    {R, "PAID",                            3,  AG_SETTLED},
    {R, "REFUND_SETTLED",                  3,  AG_SETTLED},
    {R, "CANCELLED",                       3,  AG_RELEASED},
    {R, "BOUNCED",                         3,  AG_RELEASED},
    {R, "FUNDS_RETURNED",                  4,  AG_RETURNED},
};
#undef C
#undef R
#define TOP_RANK_COLLECTION 10
#define TOP_RANK_REFUND     4

static const struct rank_row *
rank_find(int kind, const char *status)
{
    if (status == NULL)
        return NULL;
    for (size_t i = 0; i < sizeof(RANKS) / sizeof(RANKS[0]); i++)
        if (RANKS[i].kind == kind && strcmp(RANKS[i].status, status) == 0)
            return &RANKS[i];
    return NULL;
}

int
attempt_rank(int kind, const char *status)
{
    const struct rank_row *r = rank_find(kind, status);
    return r ? r->rank : -1;
}

enum attempt_group
attempt_group_of(int kind, const char *status)
{
    const struct rank_row *r = rank_find(kind, status);
    return r ? r->group : AG_NONE;
}

int
attempt_final(int kind, const char *status)
{
    const struct rank_row *r = rank_find(kind, status);
    if (r == NULL)
        return 0;
    if (kind == ATTEMPT_REFUND)
        return r->rank == TOP_RANK_REFUND || r->group == AG_RELEASED;
    return r->rank == TOP_RANK_COLLECTION || r->group == AG_FAILED;
}

/* ---- storage --------------------------------------------------------------- */

#define ATTEMPT_COLS                                                            \
    "SELECT id, kind, customer_id, COALESCE(invoice_kind, 0),"                  \
    " COALESCE(invoice_id, 0), COALESCE(refund_id, 0), COALESCE(provider_id, 0),"\
    " payment_method, mandate_reference, amount, currency_id, description,"     \
    " idempotency_key, provider_reference, status,"                             \
    " COALESCE(applied_ledger_id, 0), cancel_requested, calls, error_info,"     \
    " COALESCE(payment_link_id, 0) FROM attempts "

static void
attempt_read(struct dbq *q, struct attempt *a)
{
    memset(a, 0, sizeof(*a));
    a->id = dbq_col_i64(q, 0);
    a->kind = (int)dbq_col_i64(q, 1);
    a->customer_id = dbq_col_i64(q, 2);
    a->invoice_kind = (int)dbq_col_i64(q, 3);
    a->invoice_id = dbq_col_i64(q, 4);
    a->refund_id = dbq_col_i64(q, 5);
    a->provider_id = dbq_col_i64(q, 6);
    a->method = dbq_col_str(q, 7);
    a->mandate_reference = dbq_col_str(q, 8);
    a->amount = dbq_col_i64(q, 9);
    a->currency_id = dbq_col_i64(q, 10);
    a->description = dbq_col_str(q, 11);
    a->idem_key = dbq_col_str(q, 12);
    a->reference = dbq_col_str(q, 13);
    a->status = dbq_col_str(q, 14);
    a->applied_ledger_id = dbq_col_i64(q, 15);
    a->cancel_requested = (int)dbq_col_i64(q, 16);
    a->calls = (int)dbq_col_i64(q, 17);
    a->error_info = dbq_col_str(q, 18);
    a->payment_link_id = dbq_col_i64(q, 19);
}

static enum db_rc
attempt_one(struct dbq *q, struct attempt *a)
{
    enum db_rc rc = dbq_one(q);
    if (rc == DB_OK)
        attempt_read(q, a);
    return rc;
}

enum db_rc
attempt_insert(struct db_uow *u, struct attempt *a)
{
    if (a->idem_key == NULL)
        a->idem_key = arena_printf(u->arena, "pay-att-%s", token_random(u->arena, 24));
    struct dbq *q = dbq_new(u,
        "INSERT INTO attempts (kind, customer_id, invoice_kind, invoice_id, refund_id,"
        " provider_id, payment_method, mandate_reference, amount, currency_id,"
        " description, idempotency_key, provider_reference, status, error_info,"
        " payment_link_id, next_action_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,"
        " IF(? = 1, UTC_TIMESTAMP(6), NULL))");
    dbq_i64(q, a->kind);
    dbq_i64(q, a->customer_id);
    dbq_id(q, a->invoice_kind);
    dbq_id(q, a->invoice_id);
    dbq_id(q, a->refund_id);
    dbq_id(q, a->provider_id);
    dbq_str(q, a->method);
    dbq_str(q, a->mandate_reference);
    dbq_i64(q, a->amount);
    dbq_i64(q, a->currency_id);
    dbq_str(q, a->description);
    dbq_str(q, a->idem_key);
    dbq_str(q, a->reference);
    dbq_str(q, a->status);
    dbq_str(q, a->error_info);
    dbq_id(q, a->payment_link_id);
    dbq_i64(q, a->due ? 1 : 0);
    enum db_rc rc = dbq_exec(q);
    if (rc == DB_OK)
        a->id = dbq_insert_id(q);
    return rc;
}

enum db_rc
attempt_load(struct db_uow *u, int64_t id, int lock, struct attempt *a)
{
    struct dbq *q = dbq_new(u, lock ? ATTEMPT_COLS "WHERE id = ? FOR UPDATE"
                                    : ATTEMPT_COLS "WHERE id = ?");
    dbq_i64(q, id);
    return attempt_one(q, a);
}

enum db_rc
attempt_find_open(struct db_uow *u, int invoice_kind, int64_t invoice_id,
                  const char *method, int64_t amount, struct attempt *a)
{
    /* Newest first; the finality test is the rank table's, in C. */
    struct dbq *q = dbq_new(u, ATTEMPT_COLS
        "WHERE invoice_kind = ? AND invoice_id = ? AND kind = 1"
        " AND payment_method = ? AND amount = ? ORDER BY id DESC FOR UPDATE");
    dbq_i64(q, invoice_kind);
    dbq_i64(q, invoice_id);
    dbq_str(q, method);
    dbq_i64(q, amount);
    enum db_rc rc = dbq_exec(q);
    if (rc != DB_OK)
        return rc;
    while ((rc = dbq_fetch(q)) == DB_OK) {
        attempt_read(q, a);
        if (!attempt_final(ATTEMPT_COLLECTION, a->status)) {
            dbq_done(q);
            return DB_OK;
        }
    }
    return rc;
}

enum db_rc
attempt_find_reference(struct db_uow *u, int invoice_kind, int64_t invoice_id,
                       const char *reference, struct attempt *a)
{
    struct dbq *q = dbq_new(u, ATTEMPT_COLS
        "WHERE provider_reference = ? AND invoice_kind = ? AND invoice_id = ?"
        " AND kind = 1 ORDER BY id DESC LIMIT 1 FOR UPDATE");
    dbq_str(q, reference);
    dbq_i64(q, invoice_kind);
    dbq_i64(q, invoice_id);
    return attempt_one(q, a);
}

enum db_rc
attempt_find_refund(struct db_uow *u, int64_t refund_id, struct attempt *a)
{
    struct dbq *q = dbq_new(u, ATTEMPT_COLS
        "WHERE refund_id = ? AND kind = 2 ORDER BY id DESC LIMIT 1 FOR UPDATE");
    dbq_i64(q, refund_id);
    return attempt_one(q, a);
}

enum db_rc
attempt_schedule(struct db_uow *u, const struct attempt *a, long delay_ms,
                 const char *error_info, int count_call)
{
    struct dbq *q = dbq_new(u,
        "UPDATE attempts SET provider_reference = COALESCE(?, provider_reference),"
        " next_action_at = IF(? < 0, NULL,"
        " UTC_TIMESTAMP(6) + INTERVAL ? * 1000 MICROSECOND),"
        " lease_until = NULL, error_info = COALESCE(?, error_info),"
        " calls = calls + ?, updated_at = UTC_TIMESTAMP(6) WHERE id = ?");
    dbq_str(q, a->reference);
    dbq_i64(q, delay_ms);
    dbq_i64(q, delay_ms < 0 ? 0 : delay_ms);
    dbq_str(q, error_info);
    dbq_i64(q, count_call ? 1 : 0);
    dbq_i64(q, a->id);
    return dbq_exec(q);
}

/* ---- money ----------------------------------------------------------------- */

static const char *
brt_of(int invoice_kind)
{
    return invoice_kind == INVOICE_ADHOC ? "ADHOC" : "NORMAL";
}

static const char *
direct_cpt(int invoice_kind)
{
    return invoice_kind == INVOICE_ADHOC ? "ADHOC_INVOICE" : "INVOICE";
}

/* Locks an invoice row of the (already locked) customer. */
static enum db_rc
invoice_row_lock(struct db_uow *u, const struct customer *c, int kind, int64_t id,
                 struct invoice *inv)
{
    struct customer again;
    enum db_rc      rc = invoice_lock(u, kind, id, &again, inv);
    if (rc == DB_OK && again.id != c->id)
        rc = DB_ERROR;
    return rc;
}

/* A collection of an invoice enters collected (sign +1) or leaves it for
 * reversed (sign -1). */
static enum db_rc
invoice_money(struct db_uow *u, struct customer *c, struct attempt *a,
              struct invoice *inv, const char *status, int sign, const char *desc,
              int64_t *ledger_id)
{
    struct ledger_row row = {
        .txn_type = sign > 0 ? "PAYMENT" : "PAYMENT_REVERSED",
        .customer_payment_type = direct_cpt(a->invoice_kind),
        .amount = sign * a->amount, .description = desc,
        .reference = a->reference, .payment_method = a->method,
        .invoice_kind = inv->kind, .invoice_id = inv->id,
        .invoice_number = inv->number, .bill_run_type = brt_of(inv->kind),
    };
    enum db_rc rc = ledger_append(u, c, &row, ledger_id);
    if (rc == DB_OK)
        rc = invoice_update(u, inv, sign * a->amount, 0, 0, status);
    return rc;
}

struct share {
    int     kind;
    int64_t id, amount;
};

/* An account-level collection enters collected: one PAYMENT row on the
 * account, spread over the customer's open invoices, normal and adhoc
 * alike, oldest invoice date first (then id); the rest is credit. */
static enum db_rc
account_apply(struct db_uow *u, struct customer *c, struct attempt *a,
              const char *status, const char *desc, int64_t *ledger_id)
{
    struct ledger_row row = {
        .txn_type = "PAYMENT", .customer_payment_type = "CUSTOMER",
        .amount = a->amount, .description = desc,
        .reference = a->reference, .payment_method = a->method,
    };
    enum db_rc rc = ledger_append(u, c, &row, ledger_id);
    if (rc != DB_OK)
        return rc;
    struct dbq *q = dbq_new(u,
        "SELECT kind, id, amount - paid FROM invoices"
        " WHERE customer_id = ? AND is_open = 1"
        " ORDER BY invoice_date, id, kind FOR UPDATE");
    dbq_i64(q, c->id);
    if ((rc = dbq_exec(q)) != DB_OK)
        return rc;
    struct abuf rows;
    abuf_init(&rows, u->arena);
    int64_t left = a->amount;
    while ((rc = dbq_fetch(q)) == DB_OK) {
        struct share s = {(int)dbq_col_i64(q, 0), dbq_col_i64(q, 1), dbq_col_i64(q, 2)};
        if (left > 0 && s.amount > 0) {
            if (s.amount > left)
                s.amount = left;
            left -= s.amount;
            abuf_add(&rows, &s, sizeof(s));
        }
    }
    if (rc != DB_NOT_FOUND)
        return rc;
    const struct share *s = (const struct share *)rows.p;
    for (size_t i = 0; i < rows.len / sizeof(*s); i++) {
        struct invoice       inv = {.kind = s[i].kind, .id = s[i].id};
        struct invoice_event e = {
            .tp_status = status, .amount = s[i].amount, .description = desc,
            .payment_method = a->method, .customer_payment_type = "CUSTOMER",
            .customer_payment_id = *ledger_id, .attempt_id = a->id,
        };
        if ((rc = invoice_event_insert(u, &inv, c, &e, NULL)) != DB_OK ||
            (rc = invoice_update(u, &inv, s[i].amount, 0, 0, status)) != DB_OK)
            return rc;
    }
    return DB_OK;
}

/* An account-level collection leaves collected: what it paid on each
 * invoice is taken back from that invoice, then the PAYMENT_REVERSED row.
 * DB_CONFLICT (before any write) when an invoice has refunded too much. */
static enum db_rc
account_reverse(struct db_uow *u, struct customer *c, struct attempt *a,
                const char *status, const char *desc)
{
    struct dbq *q = dbq_new(u,
        "SELECT invoice_kind, invoice_id, SUM(amount) FROM invoice_payments"
        " WHERE attempt_id = ? AND customer_payment_id = ?"
        " GROUP BY invoice_kind, invoice_id ORDER BY invoice_kind, invoice_id");
    dbq_i64(q, a->id);
    dbq_i64(q, a->applied_ledger_id);
    enum db_rc rc = dbq_exec(q);
    if (rc != DB_OK)
        return rc;
    struct abuf rows;
    abuf_init(&rows, u->arena);
    while ((rc = dbq_fetch(q)) == DB_OK) {
        struct share s = {(int)dbq_col_i64(q, 0), dbq_col_i64(q, 1), dbq_col_i64(q, 2)};
        abuf_add(&rows, &s, sizeof(s));
    }
    if (rc != DB_NOT_FOUND)
        return rc;
    const struct share *s = (const struct share *)rows.p;
    size_t              n = rows.len / sizeof(*s);
    struct invoice     *inv = arena_alloc(u->arena, (n ? n : 1) * sizeof(*inv));
    for (size_t i = 0; i < n; i++) {
        if ((rc = invoice_row_lock(u, c, s[i].kind, s[i].id, &inv[i])) != DB_OK)
            return rc;
        if (inv[i].paid - s[i].amount < inv[i].refunded)
            return DB_CONFLICT;
    }
    struct ledger_row row = {
        .txn_type = "PAYMENT_REVERSED", .customer_payment_type = "CUSTOMER",
        .amount = -a->amount, .description = desc,
        .reference = a->reference, .payment_method = a->method,
    };
    int64_t lid;
    if ((rc = ledger_append(u, c, &row, &lid)) != DB_OK)
        return rc;
    for (size_t i = 0; i < n; i++) {
        struct invoice_event e = {
            .tp_status = status, .amount = -s[i].amount, .description = desc,
            .payment_method = a->method, .customer_payment_type = "CUSTOMER",
            .customer_payment_id = lid, .attempt_id = a->id,
        };
        if ((rc = invoice_event_insert(u, &inv[i], c, &e, NULL)) != DB_OK ||
            (rc = invoice_update(u, &inv[i], -s[i].amount, 0, 0, status)) != DB_OK)
            return rc;
    }
    return DB_OK;
}

/* A refund's money: booked when it settles, the reservation released when
 * it never left, given back to the account when it came back. */
static enum db_rc
refund_money(struct db_uow *u, struct customer *c, struct attempt *a,
             struct invoice *inv, enum attempt_group from, enum attempt_group to,
             int64_t *money)
{
    enum db_rc rc = DB_OK;
    int64_t    lid = 0;
    int        pending = from == AG_NONE || from == AG_PENDING;
    if (pending && to == AG_SETTLED) {
        struct ledger_row row = {
            .txn_type = "REFUND", .customer_payment_type = "REFUND",
            .amount = -a->amount, .description = a->description,
            .reference = a->reference, .payment_method = a->method,
            .invoice_kind = inv->kind, .invoice_id = inv->id,
            .invoice_number = inv->number, .bill_run_type = brt_of(inv->kind),
        };
        if ((rc = ledger_append(u, c, &row, &lid)) == DB_OK)
            rc = invoice_update(u, inv, 0, 0, -a->amount, NULL);
        *money = -a->amount;
    } else if (pending && (to == AG_RELEASED || to == AG_RETURNED)) {
        rc = invoice_update(u, inv, 0, -a->amount, -a->amount, NULL);
    } else if (from == AG_SETTLED && to == AG_RETURNED) {
        struct ledger_row row = {
            .txn_type = "REFUND_RETURNED", .customer_payment_type = "REFUND",
            .amount = a->amount, .description = a->description,
            .reference = a->reference, .payment_method = a->method,
            .invoice_kind = inv->kind, .invoice_id = inv->id,
            .invoice_number = inv->number, .bill_run_type = brt_of(inv->kind),
        };
        if ((rc = ledger_append(u, c, &row, &lid)) == DB_OK)
            rc = invoice_update(u, inv, 0, -a->amount, 0, NULL);
        *money = a->amount;
    }
    if (rc != DB_OK)
        return rc;
    struct dbq *q = dbq_new(u,
        "UPDATE refunds SET third_party_refund_status = ?,"
        " ledger_id = COALESCE(?, ledger_id), error_info = COALESCE(?, error_info)"
        " WHERE id = ?");
    dbq_str(q, a->status);
    dbq_id(q, to == AG_SETTLED ? lid : 0);
    dbq_str(q, a->error_info);
    dbq_i64(q, a->refund_id);
    return dbq_exec(q);
}

enum db_rc
attempt_advance(struct db_uow *u, struct customer *c, struct attempt *a,
                const char *status, const struct attempt_report *rep,
                struct attempt_outcome *out)
{
    static const struct attempt_report none;
    struct invoice inv;
    enum db_rc     rc;

    if (rep == NULL)
        rep = &none;
    memset(out, 0, sizeof(*out));
    if (a->customer_id != c->id)
        return DB_ERROR; /* the lock order: this customer is the locked one */
    int                new_rank = attempt_rank(a->kind, status);
    int                cur_rank = a->id ? attempt_rank(a->kind, a->status) : -1;
    enum attempt_group from = a->id ? attempt_group_of(a->kind, a->status) : AG_NONE;
    enum attempt_group to = attempt_group_of(a->kind, status);
    if (a->id == 0 && new_rank < 0)
        return DB_ERROR; /* an attempt is opened only in a lifecycle status */
    int moves = new_rank >= 0 && new_rank > cur_rank;
    if (a->kind == ATTEMPT_REFUND && from == AG_RELEASED)
        moves = 0; /* a refund that never left cannot come back */

    if (a->invoice_kind != 0 &&
        (rc = invoice_row_lock(u, c, a->invoice_kind, a->invoice_id, &inv)) != DB_OK)
        return rc;
    if (rep->reference != NULL && a->reference == NULL)
        a->reference = rep->reference;

    /* Refuse a reversal the invoices cannot take before writing anything. */
    int apply = 0, reverse = 0;
    if (moves && a->kind == ATTEMPT_COLLECTION) {
        apply = to == AG_COLLECTED && a->applied_ledger_id == 0;
        reverse = to == AG_REVERSED && a->applied_ledger_id != 0;
        if (reverse && a->invoice_kind != 0 &&
            (inv.paid - a->amount < inv.refunded || inv.paid - a->amount < 0))
            return DB_CONFLICT;
    }
    if (a->id == 0) {
        a->status = status;
        if ((rc = attempt_insert(u, a)) != DB_OK)
            return rc;
    }

    /* Ledger rows and events carry the report's description (the event that
     * moved the money), else the attempt's. */
    const char *desc = rep->description || rep->exact_description ? rep->description
                                                                  : a->description;
    int64_t     lid = 0;
    if (moves) {
        a->status = status;
        if (rep->error_info != NULL)
            a->error_info = rep->error_info;
        if (a->kind == ATTEMPT_REFUND) {
            rc = refund_money(u, c, a, &inv, from, to, &out->money);
        } else if (apply) {
            rc = a->invoice_kind ? invoice_money(u, c, a, &inv, status, 1, desc, &lid)
                                 : account_apply(u, c, a, status, desc, &lid);
            a->applied_ledger_id = lid;
            out->money = a->amount;
            if (rc == DB_OK && a->payment_link_id != 0) {
                /* The link is used once its payment is collected. */
                struct dbq *q = dbq_new(u,
                    "UPDATE payment_links SET paid_at = COALESCE(paid_at, UTC_TIMESTAMP()),"
                    " receipt_reference = COALESCE(receipt_reference, ?) WHERE id = ?");
                dbq_str(q, a->reference);
                dbq_i64(q, a->payment_link_id);
                rc = dbq_exec(q);
            }
        } else if (reverse) {
            rc = a->invoice_kind ? invoice_money(u, c, a, &inv, status, -1, desc, &lid)
                                 : account_reverse(u, c, a, status, desc);
            a->applied_ledger_id = 0;
            out->money = -a->amount;
        } else if (a->invoice_kind) {
            rc = invoice_update(u, &inv, 0, 0, 0, status);
        }
        if (rc != DB_OK) /* DB_CONFLICT: account_reverse refused before writing */
            return rc;
        struct dbq *q = dbq_new(u,
            "UPDATE attempts SET status = ?, applied_ledger_id = ?,"
            " provider_reference = COALESCE(provider_reference, ?),"
            " error_info = COALESCE(?, error_info),"
            " next_action_at = IF(?, next_action_at, NULL),"
            " updated_at = UTC_TIMESTAMP(6) WHERE id = ?");
        dbq_str(q, status);
        dbq_id(q, a->applied_ledger_id);
        dbq_str(q, a->reference);
        dbq_str(q, rep->error_info);
        /* Only a final status ends the reconciliation: after CONFIRMED the
         * provider still owes PAID_OUT (and may charge back), so a lost
         * event is fetched when it is overdue; the provider's answer to
         * that fetch says whether more is to come. */
        dbq_i64(q, attempt_final(a->kind, status) ? 0 : 1);
        dbq_i64(q, a->id);
        if ((rc = dbq_exec(q)) != DB_OK)
            return rc;
        out->moved = 1;
    } else if (rep->reference != NULL) {
        struct dbq *q = dbq_new(u, "UPDATE attempts SET provider_reference ="
                                   " COALESCE(provider_reference, ?) WHERE id = ?");
        dbq_str(q, rep->reference);
        dbq_i64(q, a->id);
        if ((rc = dbq_exec(q)) != DB_OK)
            return rc;
    }

    /* An invoice's collection attempt reports every event on the invoice,
     * moved or not (an ignored one is history, not money). */
    if (a->kind == ATTEMPT_COLLECTION && a->invoice_kind != 0) {
        struct invoice_event e = {
            .tp_status = status,
            .amount = rep->posted_amount ? rep->posted_amount : a->amount,
            .description = desc,
            .payment_method = a->method,
            .customer_payment_type = rep->customer_payment_type
                                         ? rep->customer_payment_type
                                         : direct_cpt(a->invoice_kind),
            .ledger_id = lid, .attempt_id = a->id,
        };
        if ((rc = invoice_event_insert(u, &inv, c, &e, &out->event_id)) != DB_OK)
            return rc;
        if (rep->error_info != NULL) {
            struct dbq *q = dbq_new(u, "UPDATE invoice_payments SET error_info = ?"
                                       " WHERE id = ?");
            dbq_str(q, rep->error_info);
            dbq_i64(q, out->event_id);
            if ((rc = dbq_exec(q)) != DB_OK)
                return rc;
        }
    }
    return DB_OK;
}
