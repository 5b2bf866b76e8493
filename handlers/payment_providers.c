/*
 * /v1/payment-providers: the systems that collect money (spec §4.1).
 * A provider serves one or more contract owners (payment_provider_owners).
 * Tenancy: a caller sees a provider when it serves at least one of the
 * caller's contract owners, and sees in contractOwnerIds only those
 * owners; owners hidden from the caller are kept untouched by a PATCH
 * (the caller can neither see nor remove them).
 * PATCH is RFC 6902: the provider becomes a JSON document (the GET
 * shape, with the caller's view of contractOwnerIds), app/jsonpatch.c
 * applies the patch to a copy, and the result goes through the very
 * validation a create body goes through (provider_read_or_fail) before
 * one transaction, holding the provider row FOR UPDATE, writes it back.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "handlers.h"
#include "jsonpatch.h"
#include "list.h"

#define OWNERS_SQL                                                            \
    "(SELECT GROUP_CONCAT(o.contract_owner_id ORDER BY o.contract_owner_id)" \
    " FROM payment_provider_owners o WHERE o.provider_id = p.id)"

/*   field                                        SQL                                type      */
static const struct col provider_cols[] = {
    {"id",                                         "p.id",                            COL_ID},
    {"type",                                       "p.type",                          COL_STR},
    {"name",                                       "p.name",                          COL_STR},
    {"directDebitWithName",                        "p.direct_debit_with_name",        COL_STR},
    {"status",                                     "p.status",                        COL_STR},
    {"creditorIdentifier",                         "p.creditor_identifier",           COL_STR},
    {"instantBankPayments",                        "p.instant_bank_payments",         COL_BOOL},
    {"retryIfPossible",                            "p.retry_if_possible",             COL_BOOL},
    {"acceptExternalPayments",                     "p.accept_external_payments",      COL_BOOL},
    {"contractOwnerIds",                           OWNERS_SQL,                        COL_OWNER_IDS},
    {"syncInstantBankPaymentsWithMandateCreation", "p.sync_ibp_with_mandate_creation", COL_BOOL},
};

static const struct resource providers = {
    "FROM payment_providers p",
    "SELECT o.contract_owner_id FROM payment_provider_owners o WHERE o.provider_id = p.id",
    NULL, "p.id",
    provider_cols, sizeof(provider_cols) / sizeof(provider_cols[0]),
    NULL, NULL, NULL, NULL, NULL,
};


/* The boolean fields (default false) and their columns, in one order. */
#define NFLAGS 4
static const char *const FLAG_FIELDS[NFLAGS] = {
    "instantBankPayments", "retryIfPossible", "acceptExternalPayments",
    "syncInstantBankPaymentsWithMandateCreation"};

/* Body fields of a create; a patched document also carries "id". */
static const char *const CREATE_FIELDS[] = {
    "type", "name", "directDebitWithName", "status", "creditorIdentifier",
    "instantBankPayments", "retryIfPossible", "acceptExternalPayments",
    "contractOwnerIds", "syncInstantBankPaymentsWithMandateCreation", NULL};
static const char *const PATCHED_FIELDS[] = {
    "id", "type", "name", "directDebitWithName", "status", "creditorIdentifier",
    "instantBankPayments", "retryIfPossible", "acceptExternalPayments",
    "contractOwnerIds", "syncInstantBankPaymentsWithMandateCreation", NULL};

struct provider {
    const char *type, *name, *dd_name, *status, *creditor;
    int         flags[NFLAGS];
    int64_t    *owners;  /* sorted ascending, distinct */
    size_t      nowners;
};

/* ---- reading and validating a provider object ----------------------------- */

static int
cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int
flag_or_fail(struct req *r, const char *name, int *out)
{
    const struct json_value *v = json_get(r->json, name);
    *out = 0;
    if (v == NULL || v->type == JSON_NULL)
        return 0;
    if (v->type != JSON_BOOL)
        return req_failf(r, PAY_E_INVALID_FIELD, name, "%s must be true or false",
                         name);
    *out = v->boolean != 0;
    return 0;
}

/* contractOwnerIds: a non-empty array of distinct ids of contract owners
 * the caller may see (whether they exist is checked in the database). */
static int
owners_or_fail(struct req *r, struct provider *p)
{
    static const char *const f = "contractOwnerIds";
    const struct json_value *v = json_get(r->json, f);
    if (v == NULL || v->type == JSON_NULL)
        return req_failf(r, PAY_E_MISSING_FIELD, f, "%s is required", f);
    if (v->type != JSON_ARRAY)
        return req_failf(r, PAY_E_INVALID_FIELD, f,
                         "%s must be an array of contract owner ids", f);
    if (v->n == 0)
        return req_failf(r, PAY_E_INVALID_FIELD, f,
                         "%s must list at least one contract owner", f);
    if (v->n > AUTH_MAX_OWNERS)
        return req_failf(r, PAY_E_INVALID_FIELD, f,
                         "%s must list at most %d contract owners", f, AUTH_MAX_OWNERS);
    p->nowners = v->n;
    p->owners = ARENA_NEW(r->arena, int64_t, v->n);
    for (size_t i = 0; i < v->n; i++)
        if (v->items[i]->type != JSON_NUMBER ||
            parse_id(v->items[i]->str, &p->owners[i]) != 0)
            return req_failf(r, PAY_E_INVALID_FIELD, f,
                             "%s must hold positive integer ids", f);
    qsort(p->owners, p->nowners, sizeof(*p->owners), cmp_i64);
    for (size_t i = 0; i < p->nowners; i++) {
        if (i > 0 && p->owners[i] == p->owners[i - 1])
            return req_failf(r, PAY_E_INVALID_FIELD, f,
                             "%s lists contract owner %" PRId64 " twice", f,
                             p->owners[i]);
        if (!auth_owner_allowed(&r->principal, p->owners[i]))
            return req_failf(r, PAY_E_UNKNOWN_REFERENCE, f,
                             "unknown contract owner %" PRId64, p->owners[i]);
    }
    return 0;
}

static int
read_fields(struct req *r, const char *const *allowed, struct provider *p)
{
    int rc;
    if ((rc = body_object_or_fail(r, allowed)) != 0 ||
        (rc = body_enum_or_fail(r, "type", 1, PAYMENT_METHODS, &p->type)) != 0 ||
        (rc = body_str_or_fail(r, "name", 1, 255, &p->name)) != 0 ||
        (rc = body_str_or_fail(r, "directDebitWithName", 0, 255, &p->dd_name)) != 0 ||
        (rc = body_enum_or_fail(r, "status", 1, PROVIDER_STATUSES, &p->status)) != 0 ||
        (rc = body_str_or_fail(r, "creditorIdentifier", 0, 255, &p->creditor)) != 0)
        return rc;
    for (size_t i = 0; i < NFLAGS; i++)
        if ((rc = flag_or_fail(r, FLAG_FIELDS[i], &p->flags[i])) != 0)
            return rc;
    return owners_or_fail(r, p);
}

/* Validates obj as a provider (the create body, or a patched document)
 * with the body readers of api.c, which read r->json. */
static int
provider_read_or_fail(struct req *r, struct json_value *obj,
                      const char *const *allowed, struct provider *p)
{
    struct json_value *saved = r->json;
    memset(p, 0, sizeof(*p));
    r->json = obj;
    int rc = read_fields(r, allowed, p);
    r->json = saved;
    return rc;
}

/* Every owner must exist (they are sorted and distinct). */
static int
owners_exist_or_fail(struct req *r, const struct provider *p)
{
    struct abuf sql;
    abuf_init(&sql, r->arena);
    abuf_adds(&sql, "SELECT id FROM contract_owners WHERE id IN (");
    for (size_t i = 0; i < p->nowners; i++)
        abuf_adds(&sql, i ? ",?" : "?");
    abuf_adds(&sql, ") ORDER BY id");
    struct dbq *q = dbq_new(&r->db, abuf_str(&sql));
    for (size_t i = 0; i < p->nowners; i++)
        dbq_i64(q, p->owners[i]);
    enum db_rc rc = dbq_exec(q);
    if (rc != DB_OK)
        return db_fail(r, rc);
    size_t i = 0;
    while ((rc = dbq_fetch(q)) == DB_OK && i < p->nowners &&
           dbq_col_i64(q, 0) == p->owners[i])
        i++;
    if (rc != DB_OK && rc != DB_NOT_FOUND)
        return db_fail(r, rc);
    dbq_done(q);
    if (i < p->nowners)
        return req_failf(r, PAY_E_UNKNOWN_REFERENCE, "contractOwnerIds",
                         "unknown contract owner %" PRId64, p->owners[i]);
    return 0;
}

/* ---- database ------------------------------------------------------------- */

/* Inserts (*id == 0) or updates provider *id, and makes its owners exactly
 * p->owners. Inside the request's transaction. */
static enum db_rc
provider_save(struct req *r, const struct provider *p, int64_t *id)
{
    struct dbq *q = dbq_new(&r->db, *id == 0
        ? "INSERT INTO payment_providers (type, name, direct_debit_with_name,"
          " status, creditor_identifier, instant_bank_payments, retry_if_possible,"
          " accept_external_payments, sync_ibp_with_mandate_creation)"
          " VALUES (?,?,?,?,?,?,?,?,?)"
        : "UPDATE payment_providers SET type = ?, name = ?,"
          " direct_debit_with_name = ?, status = ?, creditor_identifier = ?,"
          " instant_bank_payments = ?, retry_if_possible = ?,"
          " accept_external_payments = ?, sync_ibp_with_mandate_creation = ?"
          " WHERE id = ?");
    enum db_rc rc;
    dbq_str(q, p->type);
    dbq_str(q, p->name);
    dbq_str(q, p->dd_name);
    dbq_str(q, p->status);
    dbq_str(q, p->creditor);
    for (size_t i = 0; i < NFLAGS; i++)
        dbq_i64(q, p->flags[i]);
    if (*id != 0)
        dbq_i64(q, *id);
    if ((rc = dbq_exec(q)) != DB_OK)
        return rc;
    if (*id == 0) {
        *id = dbq_insert_id(q);
    } else {
        q = dbq_new(&r->db, "DELETE FROM payment_provider_owners WHERE provider_id = ?");
        dbq_i64(q, *id);
        if ((rc = dbq_exec(q)) != DB_OK)
            return rc;
    }
    for (size_t i = 0; i < p->nowners; i++) {
        q = dbq_new(&r->db, "INSERT INTO payment_provider_owners"
                       " (provider_id, contract_owner_id) VALUES (?,?)");
        dbq_i64(q, *id);
        dbq_i64(q, p->owners[i]);
        if ((rc = dbq_exec(q)) != DB_OK)
            return rc;
    }
    return DB_OK;
}

/* Locks provider id (FOR UPDATE) and loads it as the caller sees it; the
 * owners hidden from the caller go to *hidden. DB_NOT_FOUND also when
 * the caller sees none of its owners. */
static enum db_rc
provider_lock(struct req *r, int64_t id, struct provider *p,
                  int64_t **hidden, size_t *nhidden)
{
    memset(p, 0, sizeof(*p));
    struct dbq *q = dbq_new(&r->db,
        "SELECT type, name, direct_debit_with_name, status, creditor_identifier,"
        " instant_bank_payments, retry_if_possible, accept_external_payments,"
        " sync_ibp_with_mandate_creation FROM payment_providers"
        " WHERE id = ? FOR UPDATE");
    dbq_i64(q, id);
    enum db_rc rc = dbq_one(q);
    if (rc != DB_OK)
        return rc;
    p->type = dbq_col_str(q, 0);
    p->name = dbq_col_str(q, 1);
    p->dd_name = dbq_col_str(q, 2);
    p->status = dbq_col_str(q, 3);
    p->creditor = dbq_col_str(q, 4);
    for (size_t i = 0; i < NFLAGS; i++)
        p->flags[i] = dbq_col_i64(q, 5 + i) != 0;

    q = dbq_new(&r->db, "SELECT contract_owner_id FROM payment_provider_owners"
                   " WHERE provider_id = ? ORDER BY contract_owner_id FOR UPDATE");
    dbq_i64(q, id);
    if ((rc = dbq_exec(q)) != DB_OK)
        return rc;
    struct abuf seen, other;
    abuf_init(&seen, r->arena);
    abuf_init(&other, r->arena);
    while ((rc = dbq_fetch(q)) == DB_OK) {
        int64_t o = dbq_col_i64(q, 0);
        abuf_add(auth_owner_allowed(&r->principal, o) ? &seen : &other, &o, sizeof(o));
    }
    if (rc != DB_NOT_FOUND)
        return rc;
    p->owners = (int64_t *)(void *)seen.p;
    p->nowners = seen.len / sizeof(int64_t);
    *hidden = (int64_t *)(void *)other.p;
    *nhidden = other.len / sizeof(int64_t);
    return p->nowners > 0 ? DB_OK : DB_NOT_FOUND;
}

/* ---- the provider as a JSON document (the GET shape) ---------------------- */

static struct json_value *
doc_value(struct arena *a, enum json_type t, const char *text)
{
    struct json_value *v = arena_zalloc(a, sizeof(*v));
    v->type = (t == JSON_STRING && text == NULL) ? JSON_NULL : t;
    if (text != NULL) {
        v->str = arena_strdup(a, text);
        v->len = strlen(text);
    }
    return v;
}

static struct json_value *
doc_bool(struct arena *a, int b)
{
    struct json_value *v = doc_value(a, JSON_BOOL, NULL);
    v->boolean = b;
    return v;
}

static void
doc_member(struct json_value *obj, const char *key, struct json_value *v)
{
    obj->keys[obj->n] = key;
    obj->items[obj->n++] = v;
}

static struct json_value *
provider_doc(struct arena *a, int64_t id, const struct provider *p)
{
    size_t             n = sizeof(provider_cols) / sizeof(provider_cols[0]);
    struct json_value *d = doc_value(a, JSON_OBJECT, NULL);
    struct json_value *owners = doc_value(a, JSON_ARRAY, NULL);

    d->keys = ARENA_NEW(a, const char *, n);
    d->items = ARENA_NEW(a, struct json_value *, n);
    owners->items = ARENA_NEW(a, struct json_value *, p->nowners);
    for (size_t i = 0; i < p->nowners; i++)
        owners->items[owners->n++] =
            doc_value(a, JSON_NUMBER, arena_printf(a, "%" PRId64, p->owners[i]));
    /* The order of provider_cols, so a patched document reads like a GET. */
    doc_member(d, "id", doc_value(a, JSON_NUMBER, arena_printf(a, "%" PRId64, id)));
    doc_member(d, "type", doc_value(a, JSON_STRING, p->type));
    doc_member(d, "name", doc_value(a, JSON_STRING, p->name));
    doc_member(d, "directDebitWithName", doc_value(a, JSON_STRING, p->dd_name));
    doc_member(d, "status", doc_value(a, JSON_STRING, p->status));
    doc_member(d, "creditorIdentifier", doc_value(a, JSON_STRING, p->creditor));
    for (size_t i = 0; i < 3; i++)
        doc_member(d, FLAG_FIELDS[i], doc_bool(a, p->flags[i]));
    doc_member(d, "contractOwnerIds", owners);
    doc_member(d, FLAG_FIELDS[3], doc_bool(a, p->flags[3]));
    return d;
}

/* ---- handlers ------------------------------------------------------------- */

int
payment_providers_list(struct req *r)
{
    static const char *const type[] = {"p.type", NULL};
    static const char *const ibp[] = {"p.instant_bank_payments", NULL};
    static const char *const retry[] = {"p.retry_if_possible", NULL};
    struct list l;
    int64_t     owner;
    int         present, rc;

    if ((rc = list_begin_or_fail(r, &providers, &l)) != 0 ||
        (rc = list_enum_filter_or_fail(&l, "type", PAYMENT_METHODS, type)) != 0 ||
        (rc = req_query_id_or_fail(r, "contractOwnerId", 0, &owner, &present)) != 0 ||
        (rc = list_filter_or_fail(&l, "instantBankPayments", FK_BOOL, ibp)) != 0 ||
        (rc = list_filter_or_fail(&l, "retryIfPossible", FK_BOOL, retry)) != 0)
        return rc;
    /* An owner the caller may not see matches nothing: the filter must
     * not reveal which providers serve it. */
    if (present && !auth_owner_allowed(&r->principal, owner))
        list_where(&l, "1 = 0");
    else if (present)
        list_where_i64(&l, "EXISTS (SELECT 1 FROM payment_provider_owners fo"
                           " WHERE fo.provider_id = p.id AND fo.contract_owner_id = ?)",
                       owner);
    return list_run(&l);
}

int
payment_providers_get(struct req *r)
{
    return resource_get_param(r, &providers, "payment_provider_id");
}

int
payment_providers_create(struct req *r)
{
    struct provider p;
    int64_t         id = 0;
    enum db_rc      rc;
    int             st;

    const struct json_value *idv = json_get(r->json, "id");
    if (idv != NULL && idv->type != JSON_NULL) /* null means absent */
        return req_failf(r, PAY_E_INVALID_FIELD, "id",
                         "id is assigned by the server and cannot be given");
    if ((st = provider_read_or_fail(r, r->json, CREATE_FIELDS, &p)) != 0)
        return st;
    if ((rc = db_tx_begin(&r->db)) != DB_OK)
        return db_fail(r, rc);
    if ((st = owners_exist_or_fail(r, &p)) != 0)
        return st;
    if ((rc = provider_save(r, &p, &id)) != DB_OK)
        return db_fail(r, rc);
    resp_header(r, "Location",
                arena_printf(r->arena, "/v1/payment-providers/%" PRId64, id));
    st = resource_get(r, &providers, id);
    return st == 200 ? 201 : st;
}

/* Maps a failed patch to the catalogue; field is a JSON Pointer into the
 * request body ("/2/path"). */
static int
patch_fail(struct req *r, const struct jsonpatch_error *e)
{
    const char *field = NULL;
    if (e->member != NULL)
        field = arena_printf(r->arena, "/%zu/%s", e->op, e->member);
    else if (r->json != NULL && r->json->type == JSON_ARRAY)
        field = arena_printf(r->arena, "/%zu", e->op);
    switch (e->rc) {
    case JSONPATCH_E_TEST:
        return req_failf(r, PAY_E_CONFLICT, field, "%s", e->message);
    case JSONPATCH_E_PATH:
        return req_failf(r, PAY_E_INVALID_FIELD, field, "%s", e->message);
    default:
        return req_failf(r, PAY_E_BAD_REQUEST, field, "%s", e->message);
    }
}

int
payment_providers_update(struct req *r)
{
    struct provider        cur, p;
    struct jsonpatch_error err;
    struct json_value     *out;
    int64_t                id, *hidden = NULL;
    size_t                 nhidden = 0;
    enum db_rc             rc;
    int                    st;

    if ((st = req_param_id_or_fail(r, 0, "payment_provider_id", &id)) != 0)
        return st;
    if ((rc = db_tx_begin(&r->db)) != DB_OK)
        return db_fail(r, rc);
    if ((rc = provider_lock(r, id, &cur, &hidden, &nhidden)) != DB_OK)
        return db_fail(r, rc);

    struct json_value *doc = provider_doc(r->arena, id, &cur);
    if (jsonpatch_apply(r->arena, doc, r->json, &out, &err) != JSONPATCH_OK)
        return patch_fail(r, &err);
    if (out->type != JSON_OBJECT)
        return req_failf(r, PAY_E_INVALID_JSON, NULL,
                         "the patched payment provider must be a JSON object");
    /* Equal as `test` compares (7.0 is 7): the id did not change. */
    const struct json_value *idv = json_get(out, "id");
    if (idv == NULL || !jsonpatch_equal(idv, json_get(doc, "id")))
        return req_failf(r, PAY_E_INVALID_FIELD, "id", "id cannot be changed or removed");
    if ((st = provider_read_or_fail(r, out, PATCHED_FIELDS, &p)) != 0 ||
        (st = owners_exist_or_fail(r, &p)) != 0)
        return st;

    /* The caller's owners as patched, plus those it cannot see. */
    if (nhidden > 0) {
        int64_t *all = ARENA_NEW(r->arena, int64_t, p.nowners + nhidden);
        memcpy(all, p.owners, p.nowners * sizeof(*all));
        memcpy(all + p.nowners, hidden, nhidden * sizeof(*all));
        qsort(all, p.nowners + nhidden, sizeof(*all), cmp_i64);
        p.owners = all;
        p.nowners += nhidden;
    }
    if ((rc = provider_save(r, &p, &id)) != DB_OK)
        return db_fail(r, rc);
    return resource_get(r, &providers, id);
}
