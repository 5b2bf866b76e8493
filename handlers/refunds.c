/*
 * /v1/refunds: money given back on one invoice (spec §4.7). The refundable
 * amount is paid - refunded, checked with the customer and the invoice
 * locked, so concurrent refunds can never exceed it. A manual method
 * refunds at once (MANUALLY_REFUNDED + REFUND ledger row); an integrated
 * one reserves the amount (PENDING_SUBMISSION, counted in refunded and
 * refund_pending) and leaves a refund attempt for the collection engine,
 * which submits it to the contract owner's provider for that method; its
 * lifecycle (db/collection.c) books the REFUND ledger row when it settles
 * and releases the reservation when it is cancelled or bounces.
 */
#include <inttypes.h>
#include <string.h>

#include "api.h"
#include "handlers.h"
#include "list.h"
#include "collection.h"

/*   field                      SQL                              type      */
static const struct col refund_cols[] = {
    {"id",                     "f.id",                          COL_ID},
    {"invoiceId",              "f.invoice_id",                  COL_ID},
    {"customerId",             "f.customer_id",                 COL_ID},
    {"billRunType",            "IF(f.invoice_kind = 2, 'ADHOC', 'NORMAL')", COL_STR},
    {"thirdPartyRefundStatus", "f.third_party_refund_status",   COL_STR},
    {"description",            "f.description",                 COL_STR},
    {"errorInfo",              "f.error_info",                  COL_STR},
    {"paymentMethod",          "f.payment_method",              COL_STR},
    {"amountInMajorCurrency",  "f.amount",                      COL_MONEY},
};

static const struct resource refunds = {
    "FROM refunds f", "f.contract_owner_id",
    "(SELECT cur.minor_digits FROM currencies cur WHERE cur.id = f.currency_id)", "f.id",
    refund_cols, sizeof(refund_cols) / sizeof(refund_cols[0]),
    NULL, "refund_count", NULL, "refunds", "contract_owner_id", /* refund_owner */
};

int
refunds_list(struct req *r)
{
    static const char *const customer[] = {"f.customer_id", NULL};
    static const char *const invoice[] = {"f.invoice_id", NULL};
    static const char *const brt[] = {"IF(f.invoice_kind = 2, 'ADHOC', 'NORMAL')", NULL};
    struct list l;
    int         rc;

    if ((rc = list_begin_or_fail(r, &refunds, &l)) != 0 ||
        (rc = list_filter_or_fail(&l, "customerId", FK_ID, customer)) != 0 ||
        (rc = list_filter_or_fail(&l, "invoiceId", FK_ID, invoice)) != 0 ||
        (rc = list_enum_filter_or_fail(&l, "billRunType", BILL_RUN_TYPES, brt)) != 0)
        return rc;
    return list_run(&l);
}

int
refunds_get(struct req *r)
{
    return resource_get_param(r, &refunds, "refund_id");
}

/* The method of the invoice's last successful (collected, positive)
 * payment in *method: DB_OK, DB_NOT_FOUND when there is none, or an error. */
static DB_MUST_CHECK enum db_rc
last_payment_method(struct req *r, const struct invoice *inv, const char **method)
{
    struct dbq *q = dbq_new(&r->db,
        "SELECT payment_method FROM invoice_payments"
        " WHERE invoice_kind = ? AND invoice_id = ? AND amount > 0"
        " AND payment_method IS NOT NULL"
        " AND (third_party_status IS NULL OR third_party_status IN"
        " ('CONFIRMED','PAID_OUT','MANUALLY_PAID','CHARGEBACK_CANCELLED'))"
        " ORDER BY id DESC LIMIT 1");
    dbq_i64(q, inv->kind);
    dbq_i64(q, inv->id);
    enum db_rc rc = dbq_one(q);
    *method = rc == DB_OK ? dbq_col_str(q, 0) : NULL;
    return rc;
}

int
refunds_create(struct req *r)
{
    static const char *const fields[] = {"invoiceId", "billRunType",
        "amountInMajorCurrency", "description", "paymentMethod", NULL};
    const char     *brt, *amount_text, *description, *method;
    int64_t         invoice_id, amount, id, ledger_id = 0;
    struct customer c;
    struct invoice  inv;
    enum db_rc      rc;
    int             st;

    if ((st = body_object_or_fail(r, fields)) != 0 ||
        (st = body_id_or_fail(r, "invoiceId", 1, &invoice_id, NULL)) != 0 ||
        (st = body_enum_or_fail(r, "billRunType", 1, BILL_RUN_TYPES, &brt)) != 0 ||
        (st = body_number_or_fail(r, "amountInMajorCurrency", &amount_text)) != 0 ||
        (st = body_str_or_fail(r, "description", 0, 255, &description)) != 0 ||
        (st = body_enum_or_fail(r, "paymentMethod", 0, PAYMENT_METHODS, &method)) != 0)
        return st;
    int kind = strcmp(brt, "ADHOC") == 0 ? INVOICE_ADHOC : INVOICE_NORMAL;

    if ((st = invoice_lock_or_fail(r, kind, invoice_id, "invoiceId", &c, &inv)) != 0)
        return st;
    if ((st = body_money_or_fail(r, "amountInMajorCurrency", amount_text, c.digits, 1,
                                 100000 * minor_per_major(c.digits), 0, &amount)) != 0)
        return st;
    if (method == NULL || inv.auto_collect) {
        rc = last_payment_method(r, &inv, &method);
        if (rc != DB_OK && rc != DB_NOT_FOUND)
            return db_fail(r, rc);
        if (method == NULL)
            return req_failf(r, PAY_E_INVALID_FIELD, "paymentMethod",
                             "paymentMethod is required: the invoice has no"
                             " successful payment to take it from");
    }
    if (amount > inv.paid - inv.refunded)
        return req_failf(r, PAY_E_CONFLICT, "amountInMajorCurrency",
                         "the amount exceeds what is refundable on this invoice"
                         " (%s)", money_text(r, inv.paid - inv.refunded, c.digits));

    /* Manual: refunded at once. Integrated: a refund attempt for the
     * engine (COLLECTION.md §3), the amount reserved until it settles,
     * through the contract owner's ACTIVE provider of that method (none:
     * it waits for one, until the expiry cancels it). */
    int integrated = payment_method_integrated(method);
    const char *status = integrated ? "PENDING_SUBMISSION" : "MANUALLY_REFUNDED";
    int64_t     provider = 0;
    if (integrated) {
        rc = provider_find(r, c.owner, method, &provider);
        if (rc != DB_OK && rc != DB_NOT_FOUND)
            return db_fail(r, rc);
    } else {
        struct ledger_row row = {
            .txn_type = "REFUND", .customer_payment_type = "REFUND",
            .amount = -amount, .description = description,
            .payment_method = method, .invoice_kind = kind, .invoice_id = inv.id,
            .invoice_number = inv.number, .bill_run_type = brt,
        };
        if ((rc = ledger_append(&r->db, &c, &row, &ledger_id)) != DB_OK)
            return db_fail(r, rc);
    }
    struct refund_row f = {
        .invoice_kind = kind, .invoice_id = inv.id, .status = status,
        .amount = amount, .description = description, .payment_method = method,
        .ledger_id = ledger_id,
    };
    if ((rc = refund_insert(&r->db, &c, &f, &id)) != DB_OK)
        return db_fail(r, rc);
    if ((rc = invoice_update(&r->db, &inv, 0, amount, integrated ? amount : 0, NULL)) != DB_OK)
        return db_fail(r, rc);
    if (integrated) {
        struct attempt a = {
            .kind = ATTEMPT_REFUND, .customer_id = c.id, .invoice_kind = kind,
            .invoice_id = inv.id, .refund_id = id, .provider_id = provider,
            .method = method, .amount = amount, .currency_id = c.currency_id,
            .description = description, .status = status, .due = 1,
        };
        if ((rc = attempt_insert(&r->db, &a)) != DB_OK)
            return db_fail(r, rc);
    }
    resp_header(r, "Location", arena_printf(r->arena, "/v1/refunds/%" PRId64, id));
    st = resource_get(r, &refunds, id);
    return st == 200 ? 201 : st;
}
