/*
 * `pay-api load FILE.json`: reference data in one transaction. Each entity
 * is described by a table of fields (JSON name, type, column, required);
 * one generic routine validates a record against it and inserts it with a
 * prepared statement. Money fields are parsed from the JSON number text
 * with the minor digits of the record's currency. Raising an invoice also
 * appends its INVOICE_CREATED ledger row and moves the customer's balance.
 * Any bad record aborts the whole load with a message naming it.
 */
#include "db_load.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "ledger.h"
#include "spec.h"
#include "json.h"
#include "money.h"
#include "query.h"
#include "text.h"

/* F_LINK: a non-empty array of distinct ids, written after the record as
 * rows of a link table; values = {table, column for the record's id,
 * column for each listed id, NULL}. */
enum ftype { F_ID, F_INT, F_STR, F_DATE, F_MONEY, F_BOOL, F_ENUM, F_LINK };

struct fdesc {
    const char        *name;     /* JSON field */
    enum ftype         type;
    const char        *column;
    int                required;
    const char *const *values;   /* F_ENUM; F_LINK: see above */
};

struct entity {
    const char         *key;      /* document key */
    const char         *table;
    const struct fdesc *fields;
    int                 kind;     /* invoices: 1 normal, 2 adhoc */
};

static const char *const PROVIDER_OWNERS[] = {
    "payment_provider_owners", "provider_id", "contract_owner_id", NULL};

/*   JSON field                        type     column                              required */
static const struct fdesc owner_f[] = {
    {"id",                            F_ID,    "id",                                1, NULL},
    {"name",                          F_STR,   "name",                              1, NULL},
    {NULL, 0, NULL, 0, NULL}};
static const struct fdesc currency_f[] = {
    {"id",                            F_ID,    "id",                                1, NULL},
    {"code",                          F_STR,   "code",                              1, NULL},
    {"name",                          F_STR,   "name",                              1, NULL},
    {"minorDigits",                   F_INT,   "minor_digits",                      1, NULL},
    {NULL, 0, NULL, 0, NULL}};
static const struct fdesc customer_f[] = {
    {"id",                            F_ID,    "id",                                1, NULL},
    {"contractOwnerId",               F_ID,    "contract_owner_id",                 1, NULL},
    {"customerName",                  F_STR,   "customer_name",                     1, NULL},
    {"customerAccountNumber",         F_STR,   "customer_account_number",           1, NULL},
    {"currencyId",                    F_ID,    "currency_id",                       1, NULL},
    {"creditThreshold",               F_MONEY, "credit_threshold",                  0, NULL},
    {NULL, 0, NULL, 0, NULL}};
static const struct fdesc site_f[] = {
    {"id",                            F_ID,    "id",                                1, NULL},
    {"customerId",                    F_ID,    "customer_id",                       1, NULL},
    {"siteName",                      F_STR,   "site_name",                         1, NULL},
    {"startDate",                     F_DATE,  "start_date",                        1, NULL},
    {"endDate",                       F_DATE,  "end_date",                          0, NULL},
    {"paymentMethod",                 F_ENUM,  "payment_method",                    0, PAYMENT_METHODS},
    {"repaymentPlanAmount",           F_MONEY, "repayment_plan_amount",             0, NULL},
    {"repaymentPlanRemainingPeriods", F_INT,   "repayment_plan_remaining_periods",  0, NULL},
    {NULL, 0, NULL, 0, NULL}};
static const struct fdesc bill_run_f[] = {
    {"id",                            F_ID,    "id",                                1, NULL},
    {"type",                          F_ENUM,  "type",                              1, BILL_RUN_TYPES},
    {"status",                        F_ENUM,  "status",                            1, BILL_RUN_STATUSES},
    {NULL, 0, NULL, 0, NULL}};
static const struct fdesc invoice_f[] = {
    {"id",                            F_ID,    "id",                                1, NULL},
    {"customerId",                    F_ID,    "customer_id",                       1, NULL},
    {"siteId",                        F_ID,    "site_id",                           0, NULL},
    {"billRunId",                     F_ID,    "bill_run_id",                       1, NULL},
    {"invoiceNumber",                 F_STR,   "invoice_number",                    1, NULL},
    {"invoiceDate",                   F_DATE,  "invoice_date",                      1, NULL},
    {"dueDate",                       F_DATE,  "due_date",                          0, NULL},
    {"amount",                        F_MONEY, "amount",                            1, NULL},
    {"autoCollect",                   F_BOOL,  "auto_collect",                      0, NULL},
    {"thirdPartyStatus",              F_ENUM,  "third_party_status",                0, THIRD_PARTY_STATUSES},
    {NULL, 0, NULL, 0, NULL}};
static const struct fdesc provider_f[] = {
    {"id",                            F_ID,    "id",                                1, NULL},
    {"type",                          F_ENUM,  "type",                              1, PAYMENT_METHODS},
    {"name",                          F_STR,   "name",                              1, NULL},
    {"directDebitWithName",           F_STR,   "direct_debit_with_name",            0, NULL},
    {"status",                        F_ENUM,  "status",                            1, PROVIDER_STATUSES},
    {"creditorIdentifier",            F_STR,   "creditor_identifier",               0, NULL},
    {"instantBankPayments",           F_BOOL,  "instant_bank_payments",             0, NULL},
    {"retryIfPossible",               F_BOOL,  "retry_if_possible",                 0, NULL},
    {"acceptExternalPayments",        F_BOOL,  "accept_external_payments",          0, NULL},
    {"syncInstantBankPaymentsWithMandateCreation", F_BOOL, "sync_ibp_with_mandate_creation", 0, NULL},
    {"contractOwnerIds",              F_LINK,  NULL,                                1, PROVIDER_OWNERS},
    {NULL, 0, NULL, 0, NULL}};

static const struct entity entities[] = {
    {"contractOwners", "contract_owners", owner_f,    0},
    {"currencies",     "currencies",      currency_f, 0},
    {"customers",      "customers",       customer_f, 0},
    {"sites",          "sites",           site_f,     0},
    {"billRuns",       "bill_runs",       bill_run_f, 0},
    {"invoices",       "invoices",        invoice_f,  1},
    {"adhocInvoices",  "invoices",        invoice_f,  2},
    {"paymentProviders", "payment_providers", provider_f, 0},
};
#define NENTITIES (sizeof(entities) / sizeof(entities[0]))

static struct db_uow u; /* the load: one unit of work, one transaction */

static int
fail(const char *what, size_t i, const struct json_value *rec, const char *msg)
{
    const struct json_value *id = json_get(rec, "id");
    fprintf(stderr, "load: %s[%zu]%s%s%s: %s\n", what, i,
            id && id->type == JSON_NUMBER ? " (id " : "",
            id && id->type == JSON_NUMBER ? id->str : "",
            id && id->type == JSON_NUMBER ? ")" : "", msg);
    return -1;
}

/* Minor digits of the currency of a customer already in the database. */
static int
customer_digits(int64_t customer, int *digits)
{
    struct dbq *q = dbq_new(&u, "SELECT cur.minor_digits FROM customers c"
                                " JOIN currencies cur ON cur.id = c.currency_id"
                                " WHERE c.id = ?");
    dbq_i64(q, customer);
    if (dbq_one(q) != DB_OK)
        return -1;
    *digits = (int)dbq_col_i64(q, 0);
    return 0;
}

static int
currency_digits(int64_t currency, int *digits)
{
    struct dbq *q = dbq_new(&u, "SELECT minor_digits FROM currencies WHERE id = ?");
    dbq_i64(q, currency);
    if (dbq_one(q) != DB_OK)
        return -1;
    *digits = (int)dbq_col_i64(q, 0);
    return 0;
}

/* Raises the invoice just inserted: its creation row in the ledger (the
 * customer's balance moves) and its derived payment status. */
static int
ledger_invoice(const struct entity *e, int64_t id, int64_t customer,
               int64_t amount, const char *number, const char *date)
{
    struct customer c;
    struct invoice  inv = {.kind = e->kind, .id = id, .customer_id = customer,
                           .amount = amount, .number = number};
    if (customer_load(&u, customer, 1, &c) != DB_OK)
        return -1;
    return invoice_raise(&u, &c, &inv, date) == DB_OK ? 0 : -1;
}

/* 1 if v is a non-empty array of distinct positive ids (F_LINK). */
static int
link_valid(const struct json_value *v)
{
    int64_t a, b;
    if (v->type != JSON_ARRAY || v->n == 0)
        return 0;
    for (size_t k = 0; k < v->n; k++) {
        if (v->items[k]->type != JSON_NUMBER || parse_id(v->items[k]->str, &a) != 0)
            return 0;
        for (size_t j = 0; j < k; j++)
            if (parse_id(v->items[j]->str, &b) == 0 && a == b)
                return 0;
    }
    return 1;
}

/* Writes the rows of an F_LINK field for record id. */
static int
link_insert(const struct fdesc *f, int64_t id, const struct json_value *v)
{
    const char *sql = arena_printf(u.arena, "INSERT INTO %s (%s, %s) VALUES (?, ?)",
                                   f->values[0], f->values[1], f->values[2]);
    for (size_t k = 0; k < v->n; k++) {
        int64_t other;
        struct dbq *q = dbq_new(&u, sql);
        parse_id(v->items[k]->str, &other);
        dbq_i64(q, id);
        dbq_i64(q, other);
        if (dbq_exec(q) != DB_OK)
            return -1;
    }
    return 0;
}

static int
load_record(const struct entity *e, size_t i, const struct json_value *rec)
{
    char        msg[160];
    struct abuf cols, marks;
    int         digits = -1;

    if (rec->type != JSON_OBJECT)
        return fail(e->key, i, rec, "not an object");
    for (size_t k = 0; k < rec->n; k++) {
        size_t f = 0;
        while (e->fields[f].name && strcmp(e->fields[f].name, rec->keys[k]) != 0)
            f++;
        if (e->fields[f].name == NULL) {
            snprintf(msg, sizeof(msg), "unknown field \"%.60s\"", rec->keys[k]);
            return fail(e->key, i, rec, msg);
        }
    }
    /* Money needs the currency first. */
    const struct json_value *cur = json_get(rec, "currencyId");
    const struct json_value *cus = json_get(rec, "customerId");
    int64_t ref;
    if (cur && cur->type == JSON_NUMBER && parse_id(cur->str, &ref) == 0)
        currency_digits(ref, &digits);
    else if (cus && cus->type == JSON_NUMBER && parse_id(cus->str, &ref) == 0)
        customer_digits(ref, &digits);

    struct value {
        int         is_str;
        int64_t     n;
        const char *s;
    } vals[16];
    size_t      nv = 0;
    int64_t     id = 0, customer = 0, amount = 0;
    const char *number = NULL, *date = NULL;
    const struct fdesc      *link_f = NULL;
    const struct json_value *link_v = NULL;

    abuf_init(&cols, u.arena);
    abuf_init(&marks, u.arena);
    if (e->kind) {
        abuf_adds(&cols, "kind, ");
        abuf_adds(&marks, "?, ");
        vals[nv++] = (struct value){0, e->kind, NULL};
    }
    for (const struct fdesc *f = e->fields; f->name; f++) {
        const struct json_value *v = json_get(rec, f->name);
        if (v == NULL || v->type == JSON_NULL) {
            if (f->required) {
                snprintf(msg, sizeof(msg), "%s is required", f->name);
                return fail(e->key, i, rec, msg);
            }
            continue;
        }
        if (f->type == F_LINK) {
            if (!link_valid(v)) {
                snprintf(msg, sizeof(msg), "%s must be a non-empty array of"
                         " distinct ids", f->name);
                return fail(e->key, i, rec, msg);
            }
            link_f = f;
            link_v = v;
            continue;
        }
        int64_t n = 0;
        int     ok = 0, is_str = 0;
        switch (f->type) {
        case F_ID:
            ok = v->type == JSON_NUMBER && parse_id(v->str, &n) == 0;
            break;
        case F_INT:
            ok = v->type == JSON_NUMBER &&
                 parse_int_range(v->str, 0, 1000000000, &n) == 0;
            break;
        case F_BOOL:
            ok = v->type == JSON_BOOL;
            n = v->boolean;
            break;
        case F_STR:
            ok = v->type == JSON_STRING && v->len > 0 && text_valid(v->str, v->len, 255);
            is_str = 1;
            break;
        case F_DATE:
            ok = v->type == JSON_STRING && text_date_valid(v->str);
            is_str = 1;
            break;
        case F_ENUM:
            for (size_t k = 0; v->type == JSON_STRING && f->values[k]; k++)
                ok |= strcmp(f->values[k], v->str) == 0;
            is_str = 1;
            break;
        case F_LINK: /* written after the record, above */
            break;
        case F_MONEY:
            if (digits < 0) {
                snprintf(msg, sizeof(msg), "%s: unknown currency or customer", f->name);
                return fail(e->key, i, rec, msg);
            }
            ok = v->type == JSON_NUMBER &&
                 money_parse(v->str, v->len, digits, &n) == 0 && n >= 0;
            break;
        }
        if (!ok) {
            snprintf(msg, sizeof(msg), "%s has an invalid value", f->name);
            return fail(e->key, i, rec, msg);
        }
        if (strcmp(f->name, "id") == 0)
            id = n;
        else if (strcmp(f->name, "customerId") == 0)
            customer = n;
        else if (strcmp(f->name, "amount") == 0)
            amount = n;
        else if (strcmp(f->name, "invoiceNumber") == 0)
            number = v->str;
        else if (strcmp(f->name, "invoiceDate") == 0)
            date = v->str;
        vals[nv++] = (struct value){is_str, n, v->str};
        abuf_printf(&cols, "%s, ", f->column);
        abuf_adds(&marks, "?, ");
    }
    cols.len -= 2;
    marks.len -= 2;
    struct dbq *ins = dbq_new(&u, arena_printf(u.arena, "INSERT INTO %s (%.*s) VALUES (%.*s)",
                                               e->table, (int)cols.len, cols.p,
                                               (int)marks.len, marks.p));
    for (size_t k = 0; k < nv; k++) {
        if (vals[k].is_str)
            dbq_str(ins, vals[k].s);
        else
            dbq_i64(ins, vals[k].n);
    }
    enum db_rc rc = dbq_exec(ins);
    if (rc == DB_CONFLICT)
        return fail(e->key, i, rec, "duplicate id or code");
    if (rc != DB_OK)
        return fail(e->key, i, rec, "rejected by the database (unknown reference?)");
    if (e->kind && ledger_invoice(e, id, customer, amount, number, date) != 0)
        return fail(e->key, i, rec, "could not write the ledger row");
    if (link_f != NULL && link_insert(link_f, id, link_v) != 0) {
        snprintf(msg, sizeof(msg), "%s: rejected by the database (unknown id?)",
                 link_f->name);
        return fail(e->key, i, rec, msg);
    }
    return 0;
}

static char *
read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    struct abuf b;
    char        chunk[65536];
    size_t      n;
    abuf_init(&b, u.arena);
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        abuf_add(&b, chunk, n);
    fclose(f);
    *len = b.len;
    return (char *)abuf_str(&b);
}

int
db_load_file(const char *path)
{
    struct arena *a = arena_create(1 << 20);
    db_uow_init(&u, a);
    size_t             len;
    const char        *err;
    struct json_value *doc;
    char              *buf = read_file(path, &len);
    int                rc = -1;

    if (buf == NULL) {
        fprintf(stderr, "load: cannot read %s\n", path);
    } else if (json_parse(a, buf, len, &doc, &err) != 0) {
        fprintf(stderr, "load: %s: %s\n", path, err);
    } else if (doc->type != JSON_OBJECT) {
        fprintf(stderr, "load: %s: the document must be a JSON object\n", path);
    } else if (db_tx_begin(&u) == DB_OK) {
        rc = 0;
        for (size_t k = 0; k < doc->n && rc == 0; k++) {
            size_t e = 0;
            while (e < NENTITIES && strcmp(entities[e].key, doc->keys[k]) != 0)
                e++;
            if (e == NENTITIES) {
                fprintf(stderr, "load: unknown section \"%.60s\"\n", doc->keys[k]);
                rc = -1;
            }
        }
        size_t total = 0;
        for (size_t e = 0; e < NENTITIES && rc == 0; e++) {
            const struct json_value *list = json_get(doc, entities[e].key);
            if (list == NULL)
                continue;
            if (list->type != JSON_ARRAY) {
                fprintf(stderr, "load: %s must be an array\n", entities[e].key);
                rc = -1;
                break;
            }
            for (size_t i = 0; i < list->n && rc == 0; i++)
                rc = load_record(&entities[e], i, list->items[i]);
            total += list->n;
        }
        if (rc == 0 && db_tx_commit(&u) != DB_OK)
            rc = -1;
        db_tx_rollback(&u);
        if (rc == 0)
            printf("loaded %zu records from %s\n", total, path);
        else
            fprintf(stderr, "load: nothing was written\n");
    }
    arena_destroy(a);
    return rc;
}
