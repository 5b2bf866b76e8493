/*
 * /v1/customer-payments: the customer's ledger (statement) and payments
 * against the customer account. A payment is one transaction with the
 * customer row locked: the PAYMENT ledger row, then the amount spread over
 * the customer's open invoices of the bill run type, oldest invoice date
 * first (then lowest id), one invoice payment event per invoice touched;
 * what is left stays on the balance as credit.
 */
#include <inttypes.h>
#include <string.h>

#include "api.h"
#include "handlers.h"
#include "list.h"

/*   field                       SQL                     type      */
static const struct col ledger_cols[] = {
    {"id",                       "l.id",                    COL_ID},
    {"customerId",               "l.customer_id",           COL_ID},
    {"amountInMajorCurrency",    "l.amount",                COL_MONEY},
    {"resultingCustomerBalance", "l.resulting_balance",     COL_MONEY},
    {"currencyId",               "l.currency_id",           COL_ID},
    {"description",              "l.description",           COL_STR},
    {"reference",                "l.reference",             COL_STR},
    {"type",                     "l.payment_method",        COL_STR},
    {"paymentDate",              "l.payment_date",          COL_DATE},
    {"customerPaymentType",      "l.customer_payment_type", COL_STR},
    {"txnType",                  "l.txn_type",              COL_STR},
    {"invoiceNumber",            "l.invoice_number",        COL_STR},
    {"invoiceId",                "l.invoice_id",            COL_ID},
    {"billRunType",              "l.bill_run_type",         COL_STR},
};

static const struct resource ledger = {
    "FROM ledger l JOIN customers c ON c.id = l.customer_id"
    " JOIN currencies cur ON cur.id = c.currency_id",
    "c.contract_owner_id", "cur.minor_digits", "l.id",
    ledger_cols, sizeof(ledger_cols) / sizeof(ledger_cols[0]),
    NULL, NULL, NULL, NULL, NULL,
};

int
customer_payments_list(struct req *r)
{
    static const char *const text[] = {"l.description", "l.reference",
                                       "l.invoice_number", NULL};
    static const char *const cpt[] = {"l.customer_payment_type", NULL};
    struct list l;
    int64_t     customer;
    int         rc;

    if ((rc = list_begin_or_fail(r, &ledger, &l)) != 0 ||
        (rc = req_query_id_or_fail(r, "customer_id", 1, &customer, NULL)) != 0 ||
        (rc = list_filter_or_fail(&l, "filter", FK_STRING, text)) != 0 ||
        (rc = list_enum_filter_or_fail(&l, "customerPaymentType", CUSTOMER_PAYMENT_TYPES,
                                        cpt)) != 0)
        return rc;
    list_where_i64(&l, "l.customer_id = ?", customer);

    static const struct {
        const char *param, *cond;
    } excl[] = {{"excludeDebits", "l.amount >= 0"}, {"excludeCredits", "l.amount < 0"}};
    for (size_t i = 0; i < 2; i++) {
        const char   *v = req_query(r, excl[i].param);
        struct filter f;
        if (v == NULL)
            continue;
        if (filter_parse(r->arena, FK_BOOL, v, &f) != 0)
            return req_failf(r, PAY_E_INVALID_PARAMETER, excl[i].param,
                             "%s must be true or false", excl[i].param);
        if (f.boolean)
            list_where(&l, excl[i].cond);
    }
    return list_run(&l);
}

int
customer_payments_get(struct req *r)
{
    return resource_get_param(r, &ledger, "customer_payment_id");
}

int
customer_payments_create(struct req *r)
{
    static const char *const fields[] = {
        "customerId", "amountInMajorCurrency", "type", "description",
        "reference", "billRunType", NULL};
    const char     *amount_text, *type, *description, *reference, *brt;
    int64_t         customer_id, amount, id;
    struct customer c;
    enum db_rc      rc;
    int             st;

    if ((st = body_object_or_fail(r, fields)) != 0 ||
        (st = body_id_or_fail(r, "customerId", 1, &customer_id, NULL)) != 0 ||
        (st = body_number_or_fail(r, "amountInMajorCurrency", &amount_text)) != 0 ||
        (st = body_enum_or_fail(r, "type", 1, PAYMENT_METHODS, &type)) != 0 ||
        (st = body_str_or_fail(r, "description", 0, 255, &description)) != 0 ||
        (st = body_str_or_fail(r, "reference", 0, 255, &reference)) != 0 ||
        (st = body_enum_or_fail(r, "billRunType", 0, BILL_RUN_TYPES, &brt)) != 0)
        return st;
    if (brt == NULL)
        brt = "NORMAL";

    if ((st = customer_lock_or_fail(r, customer_id, "customerId", &c)) != 0)
        return st;
    int64_t unit = minor_per_major(c.digits);
    if ((st = body_money_or_fail(r, "amountInMajorCurrency", amount_text, c.digits,
                                 1, 10000000 * unit - 1, 0, &amount)) != 0)
        return st;

    if ((rc = customer_payment_record(&r->db, &c, amount, type, description, reference,
                                      brt, &id)) != DB_OK)
        return db_fail(r, rc);
    resp_header(r, "Location",
                arena_printf(r->arena, "/v1/customer-payments/%" PRId64, id));
    return resource_get(r, &ledger, id);
}
