/*
 * /v1/invoice-payments and /v1/adhoc-invoice-payments: payment events on
 * one invoice, and /v1/invoice-payment-reprocess / -cancel. The two
 * invoice kinds differ only in names, so each operation is one generic
 * function over a struct kind.
 * Effect of a new event (spec §4.5): no status or a collected status
 * applies the amount (PAYMENT ledger row; a negative amount is a
 * correction); a reversed status takes it back (PAYMENT_REVERSED); any
 * other status is recorded and becomes the invoice's third-party status.
 * Money moves only with a ledger row, inside one transaction that locks
 * the customer and then the invoice.
 */
#include <inttypes.h>
#include <string.h>

#include "api.h"
#include "collection.h"
#include "handlers.h"
#include "list.h"

#define EVENT_COLS(id_name)                                                   \
    {"id",                      "p.id",                    COL_ID},           \
    {id_name,                   "p.invoice_id",            COL_ID},           \
    {"thirdPartyPaymentStatus", "p.third_party_status",    COL_STR},          \
    {"amountInMajorCurrency",   "p.amount",                COL_MONEY},        \
    {"currencyId",              "p.currency_id",           COL_ID},           \
    {"description",             "p.description",           COL_STR},          \
    {"metaData",                "p.meta_data",             COL_STR},          \
    {"errorInfo",               "p.error_info",            COL_STR},          \
    {"paymentMethod",           "p.payment_method",        COL_STR},          \
    {"paymentDate",             "p.payment_date",          COL_DATE},         \
    {"customerPaymentType",     "p.customer_payment_type", COL_STR},          \
    {"customerPaymentId",       "p.customer_payment_id",   COL_ID}

static const struct col normal_cols[] = {EVENT_COLS("generatedInvoiceId")};
static const struct col adhoc_cols[] = {EVENT_COLS("generatedAdhocInvoiceId")};

/* One table, its tenant on the row (schema 008): a tenant's events of a
 * kind are one range of invoice_payment_owner in id order. */
#define EVENT_FROM "FROM invoice_payments p"
#define EVENT_DIGITS "(SELECT cur.minor_digits FROM currencies cur WHERE cur.id = p.currency_id)"

/* invoice_payment_kind: (invoice_kind, id, contract_owner_id). */
#define EVENT_DENSE_FROM "FROM invoice_payments p FORCE INDEX (invoice_payment_kind)"
/* invoice_payment_owner: (contract_owner_id, invoice_kind, id). */
#define EVENT_SPAN_GROUP "contract_owner_id, invoice_kind"

static const struct resource normal_events = {
    EVENT_FROM, "p.contract_owner_id", EVENT_DIGITS, "p.id",
    normal_cols, sizeof(normal_cols) / sizeof(normal_cols[0]),
    NULL, "normal_events", EVENT_DENSE_FROM, "invoice_payments", EVENT_SPAN_GROUP,
};
static const struct resource adhoc_events = {
    EVENT_FROM, "p.contract_owner_id", EVENT_DIGITS, "p.id",
    adhoc_cols, sizeof(adhoc_cols) / sizeof(adhoc_cols[0]),
    NULL, "adhoc_events", EVENT_DENSE_FROM, "invoice_payments", EVENT_SPAN_GROUP,
};

struct kind {
    int                    kind;
    const char            *id_field;       /* body field / filter */
    const char            *bill_run_param; /* list filter */
    const char            *path;
    const char            *payment_type;   /* customerPaymentType of direct events */
    const struct resource *res;
};

static const struct kind normal = {
    INVOICE_NORMAL, "generatedInvoiceId", "billRunId", "/v1/invoice-payments",
    "INVOICE", &normal_events,
};
static const struct kind adhoc = {
    INVOICE_ADHOC, "generatedAdhocInvoiceId", "adhocBillRunId",
    "/v1/adhoc-invoice-payments", "ADHOC_INVOICE", &adhoc_events,
};

static int events_created(struct req *r, const struct kind *k, int64_t id);

static int
events_list_generic(struct req *r, const struct kind *k)
{
    static const char *const bill_run[] = {
        "(SELECT i.bill_run_id FROM invoices i WHERE i.kind = p.invoice_kind"
        " AND i.id = p.invoice_id)", NULL};
    static const char *const cpt[] = {"p.customer_payment_type", NULL};
    static const char *const cp_id[] = {"p.customer_payment_id", NULL};
    static const char *const inv_id[] = {"p.invoice_id", NULL};
    struct list l;
    int         rc;

    if ((rc = list_begin_or_fail(r, k->res, &l)) != 0 ||
        (rc = list_filter_or_fail(&l, k->bill_run_param, FK_STRING, bill_run)) != 0 ||
        (rc = list_enum_filter_or_fail(&l, "customerPaymentType", CUSTOMER_PAYMENT_TYPES,
                                        cpt)) != 0 ||
        (rc = list_filter_or_fail(&l, "customerPaymentId", FK_ID, cp_id)) != 0 ||
        (rc = list_filter_or_fail(&l, k->id_field, FK_ID, inv_id)) != 0)
        return rc;
    list_where_i64(&l, "p.invoice_kind = ?", k->kind);
    return list_run(&l);
}

static int
events_get_generic(struct req *r, const struct kind *k, const char *param)
{
    int64_t id;
    int     rc;
    if ((rc = req_param_id_or_fail(r, 0, param, &id)) != 0)
        return rc;
    /* The id space is shared; an event of the other kind is not found. */
    struct dbq *q = dbq_new(&r->db, "SELECT invoice_kind FROM invoice_payments WHERE id = ?");
    dbq_i64(q, id);
    enum db_rc dr = dbq_one(q);
    if (dr == DB_OK && dbq_col_i64(q, 0) != k->kind)
        dr = DB_NOT_FOUND;
    if (dr != DB_OK)
        return db_fail(r, dr);
    return resource_get(r, k->res, id);
}

/* An integrated method's provider status (COLLECTION.md §3): a report
 * about the invoice's attempt of that method. The attempt named by
 * thirdPartyPaymentReference, else the newest one that is not final of
 * the same method and amount (one payment is one amount), else a new one
 * opened in that status. Money follows the attempt's change of group, so
 * CONFIRMED then PAID_OUT for one payment applies it once. */
static int
events_report_generic(struct req *r, const struct kind *k, struct customer *c,
                      struct invoice *inv, const char *status, const char *method,
                      const char *reference, int64_t amount, const char *description)
{
    struct attempt a;
    enum db_rc     rc = reference != NULL
        ? attempt_find_reference(&r->db, k->kind, inv->id, reference, &a)
        : attempt_find_open(&r->db, k->kind, inv->id, method, amount, &a);
    if (rc != DB_OK && rc != DB_NOT_FOUND)
        return db_fail(r, rc);
    if (rc == DB_OK && (strcmp(a.method, method) != 0 || a.amount != amount))
        return req_failf(r, PAY_E_CONFLICT, "thirdPartyPaymentReference",
                         "the attempt %s is a payment of %s by %s", reference,
                         money_text(r, a.amount, c->digits), a.method);
    int64_t id;
    if (rc == DB_NOT_FOUND) {
        if (attempt_rank(ATTEMPT_COLLECTION, status) < 0) {
            /* Informational, about no attempt: history only. */
            struct invoice_event e = {
                .tp_status = status, .amount = amount, .description = description,
                .payment_method = method, .customer_payment_type = k->payment_type,
            };
            if ((rc = invoice_event_insert(&r->db, inv, c, &e, &id)) != DB_OK)
                return db_fail(r, rc);
            return events_created(r, k, id);
        }
        int64_t provider = 0;
        if ((rc = provider_find(r, c->owner, method, &provider)) != DB_OK &&
            rc != DB_NOT_FOUND)
            return db_fail(r, rc);
        a = (struct attempt){
            .kind = ATTEMPT_COLLECTION, .customer_id = c->id, .invoice_kind = k->kind,
            .invoice_id = inv->id, .provider_id = provider, .method = method,
            .amount = amount, .currency_id = c->currency_id, .description = description,
            .reference = reference,
        };
    }
    struct attempt_report  rep = {.description = description, .posted_amount = amount,
                                  .customer_payment_type = k->payment_type};
    struct attempt_outcome out;
    rc = attempt_advance(&r->db, c, &a, status, &rep, &out);
    if (rc == DB_CONFLICT)
        return req_failf(r, PAY_E_CONFLICT, "amountInMajorCurrency",
                         "at most %s can be taken back from this invoice"
                         " (paid %s, refunded %s)",
                         money_text(r, inv->paid - inv->refunded, c->digits),
                         money_text(r, inv->paid, c->digits),
                         money_text(r, inv->refunded, c->digits));
    if (rc != DB_OK)
        return db_fail(r, rc);
    return events_created(r, k, out.event_id);
}

static int
events_created(struct req *r, const struct kind *k, int64_t id)
{
    resp_header(r, "Location", arena_printf(r->arena, "%s/%" PRId64, k->path, id));
    int status_code = resource_get(r, k->res, id);
    return status_code == 200 ? 201 : status_code;
}

static int
events_create_generic(struct req *r, const struct kind *k)
{
    const char *const fields[] = {
        k->id_field, "amountInMajorCurrency", "description", "paymentMethod",
        "thirdPartyPaymentStatus", "thirdPartyPaymentReference", NULL};
    const char     *amount_text, *description, *method, *status, *reference;
    int64_t         invoice_id, amount, id;
    struct customer c;
    struct invoice  inv;
    enum db_rc      rc;
    int             st;

    if ((st = body_object_or_fail(r, fields)) != 0 ||
        (st = body_id_or_fail(r, k->id_field, 1, &invoice_id, NULL)) != 0 ||
        (st = body_number_or_fail(r, "amountInMajorCurrency", &amount_text)) != 0 ||
        (st = body_str_or_fail(r, "description", 1, 255, &description)) != 0 ||
        (st = body_enum_or_fail(r, "paymentMethod", 1, PAYMENT_METHODS, &method)) != 0 ||
        (st = body_enum_or_fail(r, "thirdPartyPaymentStatus", 0,
                                THIRD_PARTY_STATUSES, &status)) != 0 ||
        (st = body_str_or_fail(r, "thirdPartyPaymentReference", 0, 128, &reference)) != 0)
        return st;
    /* Manual payments are recorded after the fact: the public reference
     * calls a provider's status "not applicable" to them, and its own
     * sample sends NEW with CHEQUE. It is kept as sent, and the payment is
     * applied at once (COLLECTION.md 3). */
    int not_applicable = !payment_method_integrated(method) && status != NULL &&
                         strcmp(status, "MANUALLY_PAID") != 0;
    if (reference != NULL && (status == NULL || !payment_method_integrated(method)))
        return req_failf(r, PAY_E_INVALID_FIELD, "thirdPartyPaymentReference",
                         "thirdPartyPaymentReference names a provider's payment: it"
                         " needs an integrated paymentMethod and a thirdPartyPaymentStatus");

    if ((st = invoice_lock_or_fail(r, k->kind, invoice_id, k->id_field, &c, &inv)) != 0)
        return st;
    int64_t limit = 100000 * minor_per_major(c.digits);
    if ((st = body_money_or_fail(r, "amountInMajorCurrency", amount_text, c.digits,
                                 -limit, limit, 0, &amount)) != 0)
        return st;
    /* A provider's status for a positive amount is about an attempt; a
     * negative amount stays a correction, applied at once [decision]. */
    if (payment_method_integrated(method) && status != NULL && amount > 0)
        return events_report_generic(r, k, &c, &inv, status, method, reference, amount,
                                     description);
    if (reference != NULL)
        return req_failf(r, PAY_E_INVALID_FIELD, "thirdPartyPaymentReference",
                         "a correction (negative amount) names no provider payment");

    int64_t moved = invoice_event_effect(not_applicable ? NULL : status, amount);
    if (moved < 0 && (inv.paid + moved < inv.refunded || inv.paid + moved < 0))
        return req_failf(r, PAY_E_CONFLICT, "amountInMajorCurrency",
                         "at most %s can be taken back from this invoice"
                         " (paid %s, refunded %s)",
                         money_text(r, inv.paid - inv.refunded, c.digits),
                         money_text(r, inv.paid, c.digits),
                         money_text(r, inv.refunded, c.digits));
    struct invoice_event e = {
        .tp_status = status, .amount = amount, .description = description,
        .payment_method = method, .customer_payment_type = k->payment_type,
        .status_not_applicable = not_applicable,
    };
    if ((rc = invoice_event_record(&r->db, &c, &inv, &e, &id)) != DB_OK)
        return db_fail(r, rc);
    return events_created(r, k, id);
}

int
invoice_payments_list(struct req *r)
{
    return events_list_generic(r, &normal);
}

int
invoice_payments_get(struct req *r)
{
    return events_get_generic(r, &normal, "invoice_payment_id");
}

int
invoice_payments_create(struct req *r)
{
    return events_create_generic(r, &normal);
}

int
adhoc_invoice_payments_list(struct req *r)
{
    return events_list_generic(r, &adhoc);
}

int
adhoc_invoice_payments_get(struct req *r)
{
    return events_get_generic(r, &adhoc, "adhoc_invoice_payment_id");
}

int
adhoc_invoice_payments_create(struct req *r)
{
    return events_create_generic(r, &adhoc);
}

/* How the engine collects an invoice again (COLLECTION.md §3): through the
 * provider and mandate of the invoice's site when its payment method is an
 * integrated one, else through the method of the invoice's newest attempt.
 * With provider_id given (provider reprocess) that provider is used. Sets
 * *method NULL when nothing can collect the invoice. */
static DB_MUST_CHECK enum db_rc
collection_route(struct req *r, const struct customer *c, const struct invoice *inv,
                 int64_t provider_id, const char **method, int64_t *provider,
                 const char **mandate)
{
    *method = NULL;
    *provider = 0;
    *mandate = NULL;
    struct dbq *q = dbq_new(&r->db,
        "SELECT s.payment_method, (SELECT m.mandate_reference FROM site_payment_mandates m"
        " WHERE m.site_id = s.id AND m.mandate_reference IS NOT NULL"
        " ORDER BY m.id DESC LIMIT 1) FROM invoices i JOIN sites s ON s.id = i.site_id"
        " WHERE i.kind = ? AND i.id = ?");
    dbq_i64(q, inv->kind);
    dbq_i64(q, inv->id);
    enum db_rc rc = dbq_one(q);
    if (rc != DB_OK && rc != DB_NOT_FOUND)
        return rc;
    if (rc == DB_OK && payment_method_integrated(dbq_col_str(q, 0))) {
        *method = dbq_col_str(q, 0);
        *mandate = dbq_col_str(q, 1);
    }
    if (provider_id != 0) {
        q = dbq_new(&r->db, "SELECT type FROM payment_providers WHERE id = ?");
        dbq_i64(q, provider_id);
        if ((rc = dbq_one(q)) != DB_OK)
            return rc;
        if (*method == NULL || strcmp(*method, dbq_col_str(q, 0)) != 0)
            *mandate = NULL;
        *method = dbq_col_str(q, 0);
        *provider = provider_id;
        return DB_OK;
    }
    if (*method == NULL) {
        q = dbq_new(&r->db, "SELECT payment_method, COALESCE(provider_id, 0) FROM attempts"
                       " WHERE invoice_kind = ? AND invoice_id = ? AND kind = 1"
                       " ORDER BY id DESC LIMIT 1");
        dbq_i64(q, inv->kind);
        dbq_i64(q, inv->id);
        rc = dbq_one(q);
        if (rc == DB_NOT_FOUND)
            return DB_OK;
        if (rc != DB_OK)
            return rc;
        *method = dbq_col_str(q, 0);
    }
    rc = provider_find(r, c->owner, *method, provider);
    return rc == DB_NOT_FOUND ? DB_OK : rc; /* none ACTIVE: it waits for one */
}

/* A new collection attempt for what the invoice still owes, due at once
 * for the engine; its RESUBMISSION_REQUESTED event carries the notes.
 * Without any way to collect, the event alone is recorded. */
static int
requeue_generic(struct req *r, const struct kind *k, struct customer *c,
                struct invoice *inv, int64_t provider_id, const char *notes, int64_t *id)
{
    const char *method, *mandate;
    int64_t     provider;
    enum db_rc  rc = collection_route(r, c, inv, provider_id, &method, &provider, &mandate);
    if (rc != DB_OK)
        return db_fail(r, rc);
    if (method == NULL) {
        struct invoice_event e = {
            .tp_status = "RESUBMISSION_REQUESTED", .amount = inv->amount - inv->paid,
            .description = notes, .customer_payment_type = k->payment_type,
        };
        rc = invoice_event_record(&r->db, c, inv, &e, id);
        return rc == DB_OK ? 0 : db_fail(r, rc);
    }
    struct attempt a = {
        .kind = ATTEMPT_COLLECTION, .customer_id = c->id, .invoice_kind = k->kind,
        .invoice_id = inv->id, .provider_id = provider, .method = method,
        .mandate_reference = mandate, .amount = inv->amount - inv->paid,
        .currency_id = c->currency_id, .description = notes, .due = 1,
    };
    struct attempt_report  rep = {.description = notes, .exact_description = 1,
                                  .customer_payment_type = k->payment_type};
    struct attempt_outcome out;
    if ((rc = attempt_advance(&r->db, c, &a, "RESUBMISSION_REQUESTED", &rep, &out)) != DB_OK)
        return db_fail(r, rc);
    *id = out.event_id;
    return 0;
}

/* Cancel (COLLECTION.md §3): an attempt the provider never saw is
 * cancelled at once; one the provider holds is left to the engine, which
 * asks the provider (202, the attempt's latest event). Without an attempt,
 * the CANCELLED event alone is recorded. */
static int
cancel_generic(struct req *r, const struct kind *k, struct customer *c,
               struct invoice *inv, const char *notes, int64_t *id)
{
    struct attempt a;
    struct dbq    *q = dbq_new(&r->db,
        "SELECT id FROM attempts WHERE invoice_kind = ? AND invoice_id = ? AND kind = 1"
        " AND status = ? ORDER BY id DESC LIMIT 1");
    dbq_i64(q, inv->kind);
    dbq_i64(q, inv->id);
    dbq_str(q, inv->tp_status);
    enum db_rc rc = dbq_one(q);
    if (rc == DB_OK)
        rc = attempt_load(&r->db, dbq_col_i64(q, 0), 1, &a);
    if (rc == DB_NOT_FOUND) {
        struct invoice_event e = {
            .tp_status = "CANCELLED", .amount = inv->amount - inv->paid,
            .description = notes, .customer_payment_type = k->payment_type,
        };
        rc = invoice_event_record(&r->db, c, inv, &e, id);
        return rc == DB_OK ? 0 : db_fail(r, rc);
    }
    if (rc != DB_OK)
        return db_fail(r, rc);
    if (a.reference == NULL && a.calls == 0) {
        struct attempt_report  rep = {.description = notes, .exact_description = 1,
                                      .posted_amount = inv->amount - inv->paid,
                                      .customer_payment_type = k->payment_type};
        struct attempt_outcome out;
        if (rep.posted_amount <= 0)
            rep.posted_amount = 0;
        if ((rc = attempt_advance(&r->db, c, &a, "CANCELLED", &rep, &out)) != DB_OK)
            return db_fail(r, rc);
        *id = out.event_id;
        return 0;
    }
    q = dbq_new(&r->db, "UPDATE attempts SET cancel_requested = 1,"
                   " next_action_at = UTC_TIMESTAMP(6) WHERE id = ?");
    dbq_i64(q, a.id);
    if ((rc = dbq_exec(q)) != DB_OK)
        return db_fail(r, rc);
    q = dbq_new(&r->db, "SELECT MAX(id) FROM invoice_payments WHERE attempt_id = ?");
    dbq_i64(q, a.id);
    if ((rc = dbq_one(q)) != DB_OK)
        return db_fail(r, rc);
    *id = dbq_col_i64(q, 0);
    return 0;
}

/* Reprocess and cancel: guarded by a precondition on the invoice's latest
 * third-party status. */
static int
transition_generic(struct req *r, int cancel)
{
    static const char *const fields[] = {"invoiceId", "billRunType", "notes", NULL};
    const char     *brt, *notes;
    int64_t         invoice_id, id = 0;
    struct customer c;
    struct invoice  inv;
    int             st;

    if ((st = body_object_or_fail(r, fields)) != 0 ||
        (st = body_id_or_fail(r, "invoiceId", 1, &invoice_id, NULL)) != 0 ||
        (st = body_enum_or_fail(r, "billRunType", 1, BILL_RUN_TYPES, &brt)) != 0 ||
        (st = body_str_or_fail(r, "notes", 0, 255, &notes)) != 0)
        return st;
    const struct kind *k = strcmp(brt, "ADHOC") == 0 ? &adhoc : &normal;
    if ((st = invoice_lock_or_fail(r, k->kind, invoice_id, "invoiceId", &c, &inv)) != 0)
        return st;

    enum tp_group g = inv.tp_status ? tp_group_of(inv.tp_status) : TP_INFO;
    int allowed = cancel ? g == TP_PENDING && strcmp(inv.tp_status, "SUBMITTED") != 0
                         : g == TP_FAILED && inv.paid < inv.amount;
    if (!allowed)
        return req_failf(r, PAY_E_CONFLICT, "invoiceId",
                         "invoice %" PRId64 " cannot be %s: its third-party status is %s%s",
                         invoice_id, cancel ? "cancelled" : "reprocessed",
                         inv.tp_status ? inv.tp_status : "none",
                         !cancel && g == TP_FAILED ? " and it is fully paid" : "");
    if ((st = cancel ? cancel_generic(r, k, &c, &inv, notes, &id)
                     : requeue_generic(r, k, &c, &inv, 0, notes, &id)) != 0)
        return st;
    st = resource_get(r, k->res, id);
    return st == 200 && cancel ? 202 : st;
}

int
invoice_payment_reprocess_create(struct req *r)
{
    return transition_generic(r, 0);
}

int
invoice_payment_cancel_create(struct req *r)
{
    return transition_generic(r, 1);
}

/* POST /v1/payment-provider-reprocess: every invoice (of owners the caller
 * may see) whose newest collection attempt went through that provider and
 * failed, and which is not fully paid, gets a new attempt through that
 * provider, as the single-invoice reprocess does; a provider with
 * retryIfPossible false requeues nothing. Invoices are locked in
 * (customer, kind, id) order so two runs cannot deadlock each other. */
static int
requeue_failed_invoices(struct req *r, int64_t provider_id, const char *notes,
                        int64_t *count)
{
    enum db_rc rc;
    struct abuf list;
    abuf_init(&list, r->arena);
    struct dbq *q = dbq_new(&r->db,
        "SELECT i.kind, i.id, c.contract_owner_id FROM attempts t"
        " JOIN invoices i ON i.kind = t.invoice_kind AND i.id = t.invoice_id"
        " JOIN customers c ON c.id = i.customer_id"
        " WHERE t.provider_id = ? AND t.kind = 1 AND i.paid < i.amount"
        " AND t.status IN " ATTEMPT_FAILED_SQL
        " AND t.id = (SELECT MAX(n.id) FROM attempts n WHERE n.kind = 1"
        " AND n.invoice_kind = t.invoice_kind AND n.invoice_id = t.invoice_id)"
        " ORDER BY i.customer_id, i.kind, i.id");
    dbq_i64(q, provider_id);
    if ((rc = dbq_exec(q)) != DB_OK)
        return db_fail(r, rc);
    while ((rc = dbq_fetch(q)) == DB_OK) {
        if (!auth_owner_allowed(&r->principal, dbq_col_i64(q, 2)))
            continue;
        int64_t pair[2] = {dbq_col_i64(q, 0), dbq_col_i64(q, 1)};
        abuf_add(&list, pair, sizeof(pair));
    }
    if (rc != DB_NOT_FOUND)
        return db_fail(r, rc);

    const int64_t *pairs = (const int64_t *)list.p;
    for (size_t i = 0; i < list.len / sizeof(int64_t[2]); i++) {
        struct customer    c;
        struct invoice     inv;
        const struct kind *k = pairs[2 * i] == INVOICE_ADHOC ? &adhoc : &normal;
        if ((rc = invoice_lock_visible(r, k->kind, pairs[2 * i + 1], &c, &inv)) != DB_OK)
            return db_fail(r, rc);
        /* Re-check under the lock: still failed through this provider. */
        q = dbq_new(&r->db, "SELECT COALESCE(provider_id, 0), status FROM attempts"
                       " WHERE invoice_kind = ? AND invoice_id = ? AND kind = 1"
                       " ORDER BY id DESC LIMIT 1");
        dbq_i64(q, inv.kind);
        dbq_i64(q, inv.id);
        if ((rc = dbq_one(q)) != DB_OK)
            return db_fail(r, rc);
        if (dbq_col_i64(q, 0) != provider_id ||
            attempt_group_of(ATTEMPT_COLLECTION, dbq_col_str(q, 1)) != AG_FAILED ||
            inv.paid >= inv.amount)
            continue;
        int64_t id;
        int     st;
        if ((st = requeue_generic(r, k, &c, &inv, provider_id, notes, &id)) != 0)
            return st;
        (*count)++;
    }
    return 0;
}

int
payment_provider_reprocess_create(struct req *r)
{
    static const char *const fields[] = {"paymentProviderId", "notes", NULL};
    const char *notes;
    int64_t     provider_id;
    enum db_rc  rc;
    int         st;

    if ((st = body_object_or_fail(r, fields)) != 0 ||
        (st = body_id_or_fail(r, "paymentProviderId", 1, &provider_id, NULL)) != 0 ||
        (st = body_str_or_fail(r, "notes", 0, 255, &notes)) != 0)
        return st;
    if ((rc = db_tx_begin(&r->db)) != DB_OK)
        return db_fail(r, rc);
    struct dbq *q = dbq_new(&r->db, "SELECT retry_if_possible FROM payment_providers"
                               " WHERE id = ? FOR UPDATE");
    dbq_i64(q, provider_id);
    rc = dbq_one(q);
    int visible = 0;
    if (rc == DB_OK) {
        struct dbq *o = dbq_new(&r->db, "SELECT contract_owner_id FROM payment_provider_owners"
                                   " WHERE provider_id = ?");
        dbq_i64(o, provider_id);
        if ((rc = dbq_exec(o)) != DB_OK)
            return db_fail(r, rc);
        while ((rc = dbq_fetch(o)) == DB_OK)
            visible |= auth_owner_allowed(&r->principal, dbq_col_i64(o, 0));
        if (rc != DB_NOT_FOUND)
            return db_fail(r, rc);
        rc = DB_OK;
    }
    if (rc == DB_NOT_FOUND || (rc == DB_OK && !visible))
        return req_failf(r, PAY_E_UNKNOWN_REFERENCE, "paymentProviderId",
                         "unknown paymentProviderId");
    if (rc != DB_OK)
        return db_fail(r, rc);
    /* retryIfPossible false: nothing to requeue (spec §4.6). */
    int64_t count = 0;
    if (dbq_col_i64(q, 0) != 0 &&
        (st = requeue_failed_invoices(r, provider_id, notes, &count)) != 0)
        return st;
    struct json_gen *g = resp_json(r, 200);
    json_map_open(g);
    json_key(g, "reprocessedInvoiceCount");
    json_i64(g, count);
    json_map_close(g);
    return 200;
}
