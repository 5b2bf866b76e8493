/*
 * Shared handler helpers (see api.h): tenancy over the money core's loads
 * and locks, the lock-or-fail prologues of the money-moving handlers, and
 * the mapping of db_rc to the error catalogue.
 */
#include "api.h"

enum db_rc
customer_load_visible(struct req *r, int64_t id, int lock, struct customer *c)
{
    enum db_rc rc = customer_load(&r->db, id, lock, c);
    if (rc == DB_OK && !auth_owner_allowed(&r->principal, c->owner))
        return DB_NOT_FOUND;
    return rc;
}

enum db_rc
invoice_lock_visible(struct req *r, int kind, int64_t id, struct customer *c,
                     struct invoice *inv)
{
    enum db_rc rc = invoice_lock(&r->db, kind, id, c, inv);
    if (rc == DB_OK && !auth_owner_allowed(&r->principal, c->owner))
        return DB_NOT_FOUND;
    return rc;
}

/* Maps the outcome of a prologue's lock: 0, 400 naming the field, or 503. */
static int
locked_or_fail(struct req *r, enum db_rc rc, const char *field)
{
    if (rc == DB_NOT_FOUND)
        return req_failf(r, PAY_E_UNKNOWN_REFERENCE, field, "unknown %s", field);
    return rc == DB_OK ? 0 : db_fail(r, rc);
}

int
customer_lock_or_fail(struct req *r, int64_t id, const char *field, struct customer *c)
{
    enum db_rc rc = db_tx_begin(&r->db);
    if (rc == DB_OK)
        rc = customer_load_visible(r, id, 1, c);
    return locked_or_fail(r, rc, field);
}

int
invoice_lock_or_fail(struct req *r, int kind, int64_t id, const char *field,
                     struct customer *c, struct invoice *inv)
{
    enum db_rc rc = db_tx_begin(&r->db);
    if (rc == DB_OK)
        rc = invoice_lock_visible(r, kind, id, c, inv);
    return locked_or_fail(r, rc, field);
}

int
db_fail(struct req *r, enum db_rc rc)
{
    if (rc == DB_NOT_FOUND)
        return req_failf(r, PAY_E_NOT_FOUND, NULL, "no such object");
    return req_fail(r, PAY_E_UNAVAILABLE, NULL);
}
