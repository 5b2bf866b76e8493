/*
 * /v1/customer-credit-status (spec §4.10): one row per customer with a
 * credit threshold, computed from integer money in SQL:
 *   billAmount           = -balance when negative, else 0
 *   valueDifference      = threshold - billAmount
 *   percentageDifference = billAmount / threshold * 100, two decimals,
 *                          rounded half-up: in hundredths of a percent,
 *                          (2 * bill * 10000 + threshold) DIV (2 * threshold)
 *                          (exact: both operands are non-negative integers)
 *   openBillRunValue     = the customer's invoices in OPEN bill runs
 */
#include <string.h>

#include "api.h"
#include "handlers.h"
#include "list.h"
#include "money.h"

#define BILL "GREATEST(-c.balance, 0)"
#define PCT                                                                   \
    "IF(c.credit_threshold > 0, (2 * " BILL " * 10000 + c.credit_threshold)"  \
    " DIV (2 * c.credit_threshold), NULL)"
#define PCT_TEXT                                                              \
    "CONCAT(" PCT " DIV 100, '.', LPAD(" PCT " MOD 100, 2, '0'))"

/*   field                   SQL                                       type          */
static const struct col credit_cols[] = {
    {"customerId",           "c.id",                                   COL_ID},
    {"creditThreshold",      "c.credit_threshold",                     COL_MONEY},
    {"billAmount",           BILL,                                     COL_MONEY},
    {"valueDifference",      "c.credit_threshold - " BILL,             COL_MONEY},
    {"percentageDifference", PCT,                                      COL_HUNDREDTHS},
    {"openBillRunValue",
     "(SELECT COALESCE(SUM(i.amount), 0) FROM invoices i JOIN bill_runs b"
     " ON b.id = i.bill_run_id WHERE i.customer_id = c.id AND b.status = 'OPEN')",
                                                                       COL_MONEY},
};

static const struct resource credit = {
    "FROM customers c", "c.contract_owner_id",
    "(SELECT cur.minor_digits FROM currencies cur WHERE cur.id = c.currency_id)", "c.id",
    credit_cols, sizeof(credit_cols) / sizeof(credit_cols[0]),
    "SELECT COUNT(*) FROM customers WHERE credit_threshold IS NOT NULL", NULL, NULL,
    "customers", "contract_owner_id", /* customer_owner */
};

/* Plain values and in: lists compare numerically (hundredths); like:
 * matches the two-decimal text form. */
static int
percentage_filter_or_fail(struct list *l)
{
    struct req   *r = l->r;
    const char   *text = req_query(r, "percentageDifference");
    struct filter f;
    if (text == NULL)
        return 0;
    l->filtered = 1;
    if (filter_parse(r->arena, FK_STRING, text, &f) != 0)
        goto bad;
    if (f.op == FOP_LIKE) {
        list_where_str(l, PCT_TEXT " LIKE ? ESCAPE '\\\\'",
                       filter_like_pattern(r->arena, f.vals[0]));
        return 0;
    }
    struct abuf cond;
    int64_t    *v = ARENA_NEW(r->arena, int64_t, f.n);
    abuf_init(&cond, r->arena);
    abuf_adds(&cond, PCT " IN (");
    for (size_t i = 0; i < f.n; i++) {
        if (money_parse_decimal(f.vals[i], 2, &v[i]) != 0)
            goto bad;
        abuf_adds(&cond, i ? ",?" : "?");
    }
    abuf_adds(&cond, ")");
    list_where(l, abuf_str(&cond));
    for (size_t i = 0; i < f.n; i++)
        list_bind_i64(l, v[i]);
    return 0;
bad:
    return req_failf(r, PAY_E_INVALID_PARAMETER, "percentageDifference",
                     "percentageDifference must be a number with at most two"
                     " decimals, in:a,b or like:text");
}

int
customer_credit_status_list(struct req *r)
{
    static const char *const customer[] = {"c.id", NULL};
    struct list l;
    int         rc;

    if ((rc = list_begin_or_fail(r, &credit, &l)) != 0 ||
        (rc = list_filter_or_fail(&l, "customerId", FK_ID, customer)) != 0 ||
        (rc = percentage_filter_or_fail(&l)) != 0)
        return rc;
    list_where(&l, "c.credit_threshold IS NOT NULL");
    return list_run(&l);
}
