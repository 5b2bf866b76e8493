/*
 * /v1/customer-balances (the account summary) and
 * /v1/customer-balance-adjustments (manual ADJUSTMENT ledger rows).
 * Summaries look at live sites only: no end date, or one in the future.
 */
#include <inttypes.h>

#include "api.h"
#include "handlers.h"

#define LIVE_SITE " customer_id = ? AND (end_date IS NULL OR end_date > UTC_DATE())"

/* Emits {"<value_key>":…, "summaryType":…} from a COUNT(DISTINCT)/MIN row. */
static void
summary(struct json_gen *g, int64_t distinct, void (*value)(struct json_gen *, struct dbq *, int),
        struct dbq *q, int digits)
{
    json_map_open(g);
    value(g, distinct == 1 ? q : NULL, digits);
    json_key(g, "summaryType");
    json_str(g, distinct == 0 ? "NONE" : distinct == 1 ? "SINGLE" : "MULTIPLE");
    json_map_close(g);
}

static void
method_value(struct json_gen *g, struct dbq *q, int digits)
{
    (void)digits;
    json_key(g, "paymentMethod");
    json_str(g, q ? dbq_col_str(q, 1) : NULL);
}

static void
plan_value(struct json_gen *g, struct dbq *q, int digits)
{
    json_key(g, "repaymentPlanAmount");
    if (q)
        json_money(g, dbq_col_i64(q, 1), digits);
    else
        json_null(g);
    json_key(g, "repaymentPlanRemainingPeriods");
    if (q)
        json_i64(g, dbq_col_i64(q, 2));
    else
        json_null(g);
}

int
customer_balances_get(struct req *r)
{
    int64_t         id;
    struct customer c;
    int             st;
    enum db_rc      rc;

    if ((st = req_query_id_or_fail(r, "customer_id", 1, &id, NULL)) != 0 ||
        (st = req_query_all_known_or_fail(r)) != 0)
        return st;
    if ((rc = customer_load_visible(r, id, 0, &c)) != DB_OK)
        return db_fail(r, rc);

    /* totalPayments and totalPaymentsSinceLastInvoice are the figures
     * the money core keeps on the customer row (schema 008). */
    struct dbq *methods = dbq_new(&r->db,
        "SELECT COUNT(DISTINCT payment_method), MIN(payment_method) FROM sites"
        " WHERE" LIVE_SITE " AND payment_method IS NOT NULL");
    dbq_i64(methods, id);
    struct dbq *plans = dbq_new(&r->db,
        "SELECT COUNT(DISTINCT repayment_plan_amount, repayment_plan_remaining_periods),"
        " MIN(repayment_plan_amount), MIN(repayment_plan_remaining_periods) FROM sites"
        " WHERE" LIVE_SITE " AND repayment_plan_amount > 0");
    dbq_i64(plans, id);
    if ((rc = dbq_one(methods)) != DB_OK ||
        (rc = dbq_one(plans)) != DB_OK)
        return db_fail(r, rc == DB_NOT_FOUND ? DB_ERROR : rc);

    struct json_gen *g = resp_json(r, 200);
    json_map_open(g);
    json_key(g, "id");
    json_i64(g, id);
    json_key(g, "customerId");
    json_i64(g, id);
    json_key(g, "balance");
    json_money(g, c.balance, c.digits);
    json_key(g, "totalPayments");
    json_money(g, c.total_payments, c.digits);
    json_key(g, "totalPaymentsSinceLastInvoice");
    json_money(g, c.payments_since_invoice, c.digits);
    json_key(g, "paymentMethodSummary");
    summary(g, dbq_col_i64(methods, 0), method_value, methods, c.digits);
    json_key(g, "repaymentPlanSummary");
    summary(g, dbq_col_i64(plans, 0), plan_value, plans, c.digits);
    json_map_close(g);
    return 200;
}

int
customer_balance_adjustments_create(struct req *r)
{
    static const char *const fields[] = {"customerId", "amountInMajorCurrency",
                                         "description", NULL};
    const char     *amount_text, *description;
    int64_t         customer_id, amount, id;
    struct customer c;
    enum db_rc      rc;
    int             st;

    if ((st = body_object_or_fail(r, fields)) != 0 ||
        (st = body_id_or_fail(r, "customerId", 1, &customer_id, NULL)) != 0 ||
        (st = body_number_or_fail(r, "amountInMajorCurrency", &amount_text)) != 0 ||
        (st = body_str_or_fail(r, "description", 0, 255, &description)) != 0)
        return st;
    if ((st = customer_lock_or_fail(r, customer_id, "customerId", &c)) != 0)
        return st;
    int64_t limit = 100000 * minor_per_major(c.digits);
    if ((st = body_money_or_fail(r, "amountInMajorCurrency", amount_text, c.digits,
                                 -limit, limit, 0, &amount)) != 0)
        return st;
    struct ledger_row row = {
        .txn_type = "ADJUSTMENT", .customer_payment_type = "ADJUSTMENT",
        .amount = amount, .description = description,
    };
    if ((rc = ledger_append(&r->db, &c, &row, &id)) != DB_OK)
        return db_fail(r, rc);

    struct json_gen *g = resp_json(r, 200);
    json_map_open(g);
    json_key(g, "id");
    json_i64(g, id);
    json_key(g, "customerId");
    json_i64(g, customer_id);
    json_key(g, "amountInMajorCurrency");
    json_money(g, amount, c.digits);
    json_key(g, "currencyId");
    json_i64(g, c.currency_id);
    json_key(g, "description");
    json_str(g, description);
    json_map_close(g);
    return 200;
}
