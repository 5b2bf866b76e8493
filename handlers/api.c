/*
 * Shared handler helpers (see api.h). Body readers reject wrong JSON
 * types rather than coercing: "12" is not a number and 12 is not a string.
 */
#include "api.h"

#include <string.h>

#include "money.h"
#include "text.h"
#include "token.h"

const char *const PAYMENT_METHODS[] = {
    "CHEQUE", "DIRECT_DEBIT", "CANCELLED_DD", "CANCELLED_CARD", "CREDIT_CARD",
    "PAYPAL", "BACS", "POST_OFFICE_PAYMENT_CARD", "EZYPAY", "GO_CARDLESS",
    "GC_INSTANT_BANK_PAYMENTS", "STRIPE", "STRIPE_CARD", "STRIPE_DD",
    "FINASTRA", "FAST_PAY", "OTHER", NULL};
const char *const BILL_RUN_TYPES[] = {"NORMAL", "ADHOC", NULL};
const char *const CUSTOMER_PAYMENT_TYPES[] = {
    "CUSTOMER", "INVOICE", "ADHOC_INVOICE", "ADJUSTMENT", "REFUND", NULL};
const char *const TXN_TYPES[] = {
    "INVOICE_CREATED", "ADHOC_INVOICE_CREATED", "PAYMENT", "PAYMENT_REVERSED",
    "REFUND", "ADJUSTMENT", NULL};

const char *const THIRD_PARTY_STATUSES[] = {
    "NEW", "CREATED", "PENDING_CUSTOMER_APPROVAL", "PENDING_SUBMISSION",
    "SUBMITTED", "CONFIRMED", "PAID_OUT", "CANCELLED", "FAILED",
    "FAILED_RETRYING", "CHARGED_BACK", "CUSTOMER_APPROVAL_GRANTED",
    "CUSTOMER_APPROVAL_DENIED", "CHARGEBACK_CANCELLED", "LATE_FAILURE_SETTLED",
    "CHARGEBACK_SETTLED", "SURCHARGE_FEE_DEBITED", "RESUBMISSION_REQUESTED",
    "UNSUPPORTED_PAYMENT_TYPE", "UNAUTHORISED_PAYMENT_TYPE",
    "CUSTOMER_APPROVAL_MISSING", "SURCHARGE_FEE_CREDITED", "MANUALLY_PAID",
    "UNSENT", "REFUNDED", "PARTIALLY_REFUNDED", "REFUND_PENDING", NULL};

static const char *const TP_COLLECTED_SET[] = {
    "CONFIRMED", "PAID_OUT", "MANUALLY_PAID", "CHARGEBACK_CANCELLED", NULL};
static const char *const TP_REVERSED_SET[] = {
    "CHARGED_BACK", "LATE_FAILURE_SETTLED", "CHARGEBACK_SETTLED", NULL};
static const char *const TP_PENDING_SET[] = {
    "NEW", "CREATED", "PENDING_CUSTOMER_APPROVAL", "PENDING_SUBMISSION",
    "SUBMITTED", "CUSTOMER_APPROVAL_GRANTED", "UNSENT", "RESUBMISSION_REQUESTED",
    "FAILED_RETRYING", NULL};
static const char *const TP_FAILED_SET[] = {
    "FAILED", "CANCELLED", "CUSTOMER_APPROVAL_DENIED", "CUSTOMER_APPROVAL_MISSING",
    "UNSUPPORTED_PAYMENT_TYPE", "UNAUTHORISED_PAYMENT_TYPE", NULL};

enum tp_group
tp_group_of(const char *status)
{
    if (status == NULL || enum_index(TP_COLLECTED_SET, status) >= 0)
        return TP_COLLECTED;
    if (enum_index(TP_REVERSED_SET, status) >= 0)
        return TP_REVERSED;
    if (enum_index(TP_PENDING_SET, status) >= 0)
        return TP_PENDING;
    if (enum_index(TP_FAILED_SET, status) >= 0)
        return TP_FAILED;
    return TP_INFO;
}

static const char *const INTEGRATED[] = {
    "GO_CARDLESS", "GC_INSTANT_BANK_PAYMENTS", "STRIPE", "STRIPE_CARD",
    "STRIPE_DD", "FINASTRA", "EZYPAY", "PAYPAL", NULL};

int
enum_index(const char *const *vals, const char *s)
{
    if (s == NULL)
        return -1;
    for (int i = 0; vals[i] != NULL; i++)
        if (strcmp(vals[i], s) == 0)
            return i;
    return -1;
}

int
payment_method_integrated(const char *m)
{
    return enum_index(INTEGRATED, m) >= 0;
}

int
payment_method_stripe(const char *m)
{
    return m != NULL && strncmp(m, "STRIPE", 6) == 0;
}

const char *
provider_call_key(struct req *r, const char *what, const char *capability)
{
    const char *basis = capability;
    if (basis == NULL && r->idempotency_key != NULL) /* the body too: a key the
        client reuses for another request after a 5xx is another operation */
        basis = arena_printf(r->arena, "%s\n%s\n%s",
                             r->principal.sub ? r->principal.sub : "", r->idempotency_key,
                             token_sha256_hex(r->arena, r->body ? r->body : "",
                                              r->body_len));
    if (basis == NULL) {
        if (r->call_key == NULL)
            r->call_key = token_random(r->arena, 24);
        basis = r->call_key;
    }
    return arena_printf(r->arena, "pay-api-%s-%s", what,
                        token_sha256_hex(r->arena, basis, strlen(basis)));
}

int
body_object_or_fail(struct req *r, const char *const *allowed)
{
    const struct json_value *b = r->json;
    if (b == NULL || b->type != JSON_OBJECT)
        return req_failf(r, PAY_E_INVALID_JSON, NULL,
                         "the request body must be a JSON object");
    /* null means absent (a generated client sends its whole model, the
     * server-assigned "id": null included); only a field with a value
     * must be known. */
    for (size_t i = 0; i < b->n; i++)
        if (b->items[i]->type != JSON_NULL && enum_index(allowed, b->keys[i]) < 0)
            return req_failf(r, PAY_E_UNKNOWN_FIELD, b->keys[i],
                             "unknown field '%s'",
                             text_echo(r->arena, b->keys[i], 64));
    return 0;
}

/* Fetches a field; NULL when absent or JSON null. */
static const struct json_value *
field(struct req *r, const char *name)
{
    const struct json_value *v = json_get(r->json, name);
    return (v == NULL || v->type == JSON_NULL) ? NULL : v;
}

static int
missing(struct req *r, const char *name)
{
    return req_failf(r, PAY_E_MISSING_FIELD, name, "%s is required", name);
}

int
body_id_or_fail(struct req *r, const char *name, int required, int64_t *out,
                int *present)
{
    const struct json_value *v = field(r, name);
    if (present != NULL)
        *present = v != NULL;
    if (v == NULL)
        return required ? missing(r, name) : 0;
    if (v->type != JSON_NUMBER || parse_id(v->str, out) != 0)
        return req_failf(r, PAY_E_INVALID_FIELD, name,
                         "%s must be a positive integer", name);
    return 0;
}

int
body_str_or_fail(struct req *r, const char *name, int required,
                 size_t max_chars, const char **out)
{
    const struct json_value *v = field(r, name);
    *out = NULL;
    if (v == NULL)
        return required ? missing(r, name) : 0;
    if (v->type != JSON_STRING)
        return req_failf(r, PAY_E_INVALID_FIELD, name, "%s must be a string", name);
    if (!text_valid(v->str, v->len, max_chars))
        return req_failf(r, PAY_E_INVALID_FIELD, name,
                         "%s must be at most %zu characters without control characters",
                         name, max_chars);
    /* "" is a value: texts are 0..max characters (spec 1.7), required
     * only means present. */
    *out = v->str;
    return 0;
}

int
body_enum_or_fail(struct req *r, const char *name, int required,
                  const char *const *vals, const char **out)
{
    const struct json_value *v = field(r, name);
    *out = NULL;
    if (v == NULL || (v->type == JSON_STRING && v->len == 0))
        return required ? missing(r, name) : 0;
    if (v->type != JSON_STRING || enum_index(vals, v->str) < 0)
        return req_failf(r, PAY_E_INVALID_FIELD, name, "%s has an unknown value",
                         name);
    *out = vals[enum_index(vals, v->str)];
    return 0;
}

int
body_number_or_fail(struct req *r, const char *name, const char **text)
{
    const struct json_value *v = field(r, name);
    if (v == NULL)
        return missing(r, name);
    if (v->type != JSON_NUMBER)
        return req_failf(r, PAY_E_INVALID_FIELD, name, "%s must be a JSON number",
                         name);
    *text = v->str;
    return 0;
}

int64_t
minor_per_major(int digits)
{
    int64_t m = 1;
    while (digits-- > 0)
        m *= 10;
    return m;
}

int
body_money_or_fail(struct req *r, const char *name, const char *text,
                   int digits, int64_t lo, int64_t hi, int allow_zero,
                   int64_t *out)
{
    int rc = money_parse(text, strlen(text), digits, out);
    if (rc == MONEY_EPRECISION)
        return req_failf(r, PAY_E_INVALID_AMOUNT, name,
                         "%s has more than %d decimals", name, digits);
    if (rc != 0 || *out < lo || *out > hi || (!allow_zero && *out == 0))
        return req_failf(r, PAY_E_INVALID_AMOUNT, name,
                         "%s must be between %s and %s%s", name,
                         money_text(r, lo, digits), money_text(r, hi, digits),
                         allow_zero ? "" : " and not 0");
    return 0;
}

const char *
money_text(struct req *r, int64_t minor, int digits)
{
    char buf[MONEY_FMT_MAX];
    money_format(minor, digits, buf, sizeof(buf));
    return arena_strdup(r->arena, buf);
}

enum db_rc
customer_load(struct req *r, int64_t id, int lock, struct customer *c)
{
    struct dbq *q = dbq_new(r, lock
        ? "SELECT c.contract_owner_id, c.currency_id, c.balance, cur.minor_digits,"
          " cur.code FROM customers c JOIN currencies cur ON cur.id = c.currency_id"
          " WHERE c.id = ? FOR UPDATE"
        : "SELECT c.contract_owner_id, c.currency_id, c.balance, cur.minor_digits,"
          " cur.code FROM customers c JOIN currencies cur ON cur.id = c.currency_id"
          " WHERE c.id = ?");
    dbq_i64(q, id);
    enum db_rc rc = dbq_one(q);
    if (rc != DB_OK)
        return rc;
    c->id = id;
    c->owner = dbq_col_i64(q, 0);
    c->currency_id = dbq_col_i64(q, 1);
    c->balance = dbq_col_i64(q, 2);
    c->digits = (int)dbq_col_i64(q, 3);
    c->currency_code = dbq_col_str(q, 4);
    if (!auth_owner_allowed(&r->principal, c->owner))
        return DB_NOT_FOUND;
    return DB_OK;
}

enum db_rc
ledger_append(struct req *r, struct customer *c, const struct ledger_row *row,
              int64_t *id)
{
    int64_t balance = c->balance + row->amount;
    struct dbq *q = dbq_new(r,
        "INSERT INTO ledger (customer_id, txn_type, customer_payment_type, amount,"
        " resulting_balance, currency_id, description, reference, payment_method,"
        " payment_date, invoice_kind, invoice_id, invoice_number, bill_run_type)"
        " VALUES (?,?,?,?,?,?,?,?,?,UTC_DATE(),?,?,?,?)");
    dbq_i64(q, c->id);
    dbq_str(q, row->txn_type);
    dbq_str(q, row->customer_payment_type);
    dbq_i64(q, row->amount);
    dbq_i64(q, balance);
    dbq_i64(q, c->currency_id);
    dbq_str(q, row->description);
    dbq_str(q, row->reference);
    dbq_str(q, row->payment_method);
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
    q = dbq_new(r, "UPDATE customers SET balance = ? WHERE id = ?");
    dbq_i64(q, balance);
    dbq_i64(q, c->id);
    if ((rc = dbq_exec(q)) != DB_OK)
        return rc;
    c->balance = balance;
    return DB_OK;
}

enum db_rc
invoice_lock(struct req *r, int kind, int64_t id, struct customer *c,
             struct invoice *inv)
{
    struct dbq *q = dbq_new(r, "SELECT customer_id FROM invoices WHERE kind = ? AND id = ?");
    dbq_i64(q, kind);
    dbq_i64(q, id);
    enum db_rc rc = dbq_one(q);
    if (rc != DB_OK)
        return rc;
    if ((rc = customer_load(r, dbq_col_i64(q, 0), 1, c)) != DB_OK)
        return rc;
    q = dbq_new(r, "SELECT customer_id, amount, paid, refunded, refund_pending,"
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
invoice_update(struct req *r, const struct invoice *inv, int64_t paid_delta,
               int64_t refunded_delta, int64_t pending_delta, const char *tp_status)
{
    struct dbq *q = dbq_new(r,
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
invoice_event_record(struct req *r, struct customer *c, const struct invoice *inv,
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
        if ((rc = ledger_append(r, c, &row, &e->ledger_id)) != DB_OK)
            return rc;
    }
    if ((rc = invoice_event_insert(r, inv, c, e, id)) != DB_OK)
        return rc;
    return invoice_update(r, inv, moved, 0, 0, applied);
}

enum db_rc
invoice_event_insert(struct req *r, const struct invoice *inv,
                     const struct customer *c, const struct invoice_event *e,
                     int64_t *id)
{
    struct dbq *q = dbq_new(r,
        "INSERT INTO invoice_payments (invoice_kind, invoice_id, customer_id,"
        " third_party_status, amount, currency_id, description, payment_method,"
        " payment_date, customer_payment_type, customer_payment_id, ledger_id)"
        " VALUES (?,?,?,?,?,?,?,?,UTC_DATE(),?,?,?)");
    dbq_i64(q, inv->kind);
    dbq_i64(q, inv->id);
    dbq_i64(q, c->id);
    dbq_str(q, e->tp_status);
    dbq_i64(q, e->amount);
    dbq_i64(q, c->currency_id);
    dbq_str(q, e->description);
    dbq_str(q, e->payment_method);
    dbq_str(q, e->customer_payment_type);
    if (e->customer_payment_id)
        dbq_i64(q, e->customer_payment_id);
    else
        dbq_null(q);
    if (e->ledger_id)
        dbq_i64(q, e->ledger_id);
    else
        dbq_null(q);
    enum db_rc rc = dbq_exec(q);
    if (rc == DB_OK && id != NULL)
        *id = dbq_insert_id(q);
    return rc;
}

int64_t
provider_find(struct req *r, int64_t owner, const char *type)
{
    struct dbq *q = dbq_new(r,
        "SELECT p.id FROM payment_providers p JOIN payment_provider_owners o"
        " ON o.provider_id = p.id WHERE o.contract_owner_id = ? AND p.type = ?"
        " AND p.status = 'ACTIVE' ORDER BY p.id LIMIT 1");
    dbq_i64(q, owner);
    dbq_str(q, type);
    return dbq_one(q) == DB_OK ? dbq_col_i64(q, 0) : 0;
}

int
db_fail(struct req *r, enum db_rc rc)
{
    if (rc == DB_NOT_FOUND)
        return req_failf(r, PAY_E_NOT_FOUND, NULL, "no such object");
    return req_fail(r, PAY_E_UNAVAILABLE, NULL);
}
