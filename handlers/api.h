/*
 * Shared vocabulary of the handlers: the enumerations of spec §2, typed
 * body-field readers (*_or_fail: record a catalogue error and return its
 * status), the customer lookup with tenancy, and the ledger append that
 * every money movement goes through.
 */
#ifndef PAY_HANDLERS_API_H
#define PAY_HANDLERS_API_H

#include <stdint.h>

#include "db.h"
#include "ledger.h"
#include "req.h"
#include "spec.h"

/* The body must be a JSON object whose keys are all in allowed[], except
 * keys whose value is null (null means absent). */
int body_object_or_fail(struct req *r, const char *const *allowed);
/* Positive integer id field. *present (may be NULL) tells if it was there. */
int body_id_or_fail(struct req *r, const char *name, int required, int64_t *out,
                    int *present);
/* String field: valid UTF-8, no control characters, <= max_chars; ""
 * is a value (required means present, not non-empty). */
int body_str_or_fail(struct req *r, const char *name, int required,
                     size_t max_chars, const char **out);
/* String field that must be one of vals[]. */
int body_enum_or_fail(struct req *r, const char *name, int required,
                      const char *const *vals, const char **out);
/* Raw number text of a required money field (checked later, once the
 * currency's digits are known, by body_money_or_fail). */
int body_number_or_fail(struct req *r, const char *name, const char **text);
/* Money: `text` from body_number_or_fail, parsed with the currency's digits
 * and checked against [lo, hi] minor units (and != 0 unless allow_zero). */
int body_money_or_fail(struct req *r, const char *name, const char *text,
                       int digits, int64_t lo, int64_t hi, int allow_zero,
                       int64_t *out);
/* Minor units as major-unit text with the currency's decimals ("10.50"),
 * in the request's arena, for messages. */
const char *money_text(struct req *r, int64_t minor, int digits);
/* 10^digits (digits 0..4). */
int64_t minor_per_major(int digits);

/* customer_load / invoice_lock (db/ledger.h) for the caller: DB_NOT_FOUND
 * also for another tenant's customer or invoice. */
DB_MUST_CHECK enum db_rc customer_load_visible(struct req *r, int64_t id, int lock,
                                               struct customer *c);
DB_MUST_CHECK enum db_rc invoice_lock_visible(struct req *r, int kind, int64_t id,
                                              struct customer *c, struct invoice *inv);

/* The ACTIVE payment provider of this type serving the contract owner
 * (lowest id) in *id: DB_OK, DB_NOT_FOUND when there is none, or an error. */
DB_MUST_CHECK enum db_rc provider_find(struct req *r, int64_t owner, const char *type,
                                       int64_t *id);

/* A mandate for the site is in place (a completed flow or an attached
 * mandate): the site is now paid by that payment method (mandates.c). */
DB_MUST_CHECK enum db_rc mandate_site_method(struct req *r, int64_t site_id, const char *method);

/* After a mandate is set up with a provider that syncs instant bank
 * payments: collects what the customer owes through it (mandates.c). */
DB_MUST_CHECK enum db_rc mandate_instant_payment(struct req *r, int64_t customer_id,
                                   const char *method, const char *mandate_reference,
                                   const char *idempotency_key);

/*
 * The idempotency key of the provider call that does `what` ("refund",
 * "link-payment", ...) for this request: "pay-api-<what>-<64 hex>". The hex
 * is the SHA-256 of, in order of preference: `capability`, the single-use
 * token of a page (with what the customer entered, when the call depends on
 * it), the same for every press of its button; the caller's sub,
 * Idempotency-Key and the body's SHA-256 (the same for every retry of the
 * request); or random bytes made once per request (the same for every
 * re-run of the handler).
 */
const char *provider_call_key(struct req *r, const char *what, const char *capability);

/* Maps a failed db_rc to the catalogue (503; 404 for DB_NOT_FOUND). */
int db_fail(struct req *r, enum db_rc rc);

#endif
