/*
 * What the handlers share: the body readers (app/body.h), the money core
 * and the vocabulary (db/ledger.h, db/spec.h) as the caller may see them
 * (tenancy), the lock-or-fail prologues of money-moving handlers, and the
 * mapping of db_rc to the error catalogue.
 */
#ifndef PAY_HANDLERS_API_H
#define PAY_HANDLERS_API_H

#include <stdint.h>

#include "body.h"
#include "db.h"
#include "ledger.h"
#include "money.h"
#include "provider.h"
#include "req.h"
#include "spec.h"

/* customer_load / invoice_lock (db/ledger.h) for the caller: DB_NOT_FOUND
 * also for another tenant's customer or invoice. */
DB_MUST_CHECK enum db_rc customer_load_visible(struct req *r, int64_t id, int lock,
                                               struct customer *c);
DB_MUST_CHECK enum db_rc invoice_lock_visible(struct req *r, int kind, int64_t id,
                                              struct customer *c, struct invoice *inv);

/* The prologue of a money-moving handler: begins the request's
 * transaction and locks the customer (customer_lock_or_fail) or the
 * invoice with its customer (invoice_lock_or_fail), as the caller may see
 * them. 0, or the status of the recorded error: 400 UNKNOWN_REFERENCE
 * naming the body field `field` for an unknown (or another tenant's)
 * object, 503 for a database failure. */
int customer_lock_or_fail(struct req *r, int64_t id, const char *field,
                          struct customer *c);
int invoice_lock_or_fail(struct req *r, int kind, int64_t id, const char *field,
                         struct customer *c, struct invoice *inv);

/* A mandate for the site is in place (a completed flow or an attached
 * mandate): the site is now paid by that payment method (mandates.c). */
DB_MUST_CHECK enum db_rc mandate_site_method(struct req *r, int64_t site_id, const char *method);

/* After a mandate is set up with a provider that syncs instant bank
 * payments: collects what the customer owes through it (mandates.c). */
DB_MUST_CHECK enum db_rc mandate_instant_payment(struct req *r, int64_t customer_id,
                                   const char *method, const char *mandate_reference,
                                   const char *idempotency_key);

/* Maps a failed db_rc to the catalogue (503; 404 for DB_NOT_FOUND). */
int db_fail(struct req *r, enum db_rc rc);

#endif
