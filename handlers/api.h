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
#include "req.h"

/* NULL-terminated enumerations (spec §2). */
extern const char *const PAYMENT_METHODS[];
extern const char *const BILL_RUN_TYPES[];
extern const char *const CUSTOMER_PAYMENT_TYPES[];
extern const char *const TXN_TYPES[];

/* Index of s in vals, or -1. */
int enum_index(const char *const *vals, const char *s);
/* 1 for methods collected through a provider (spec §2). */
int payment_method_integrated(const char *m);
/* The same set as an SQL list, for `type IN " INTEGRATED_METHODS_SQL "`
 * (a unit test keeps the two equal). */
#define INTEGRATED_METHODS_SQL                                                  \
    "('GO_CARDLESS','GC_INSTANT_BANK_PAYMENTS','STRIPE','STRIPE_CARD',"         \
    "'STRIPE_DD','FINASTRA','EZYPAY','PAYPAL')"
/* STRIPE, STRIPE_CARD, STRIPE_DD: mandates need the Stripe customer id. */
int payment_method_stripe(const char *m);

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

struct customer {
    int64_t     id;
    int64_t     owner;
    int64_t     currency_id;
    int64_t     balance;
    int         digits;
    const char *currency_code;   /* "GBP" */
};

/* Loads a customer visible to the caller; with lock, SELECT ... FOR UPDATE
 * (inside the request's transaction). DB_NOT_FOUND also for other
 * tenants' customers. */
enum db_rc customer_load(struct req *r, int64_t id, int lock,
                         struct customer *c);

struct ledger_row {
    const char *txn_type;
    const char *customer_payment_type;
    int64_t     amount;
    const char *description;
    const char *reference;
    const char *payment_method;
    int         invoice_kind;    /* 0 = none */
    int64_t     invoice_id;
    const char *invoice_number;
    const char *bill_run_type;
};

/* Appends a row to a locked customer's ledger and moves the balance.
 * Returns the new row id in *id. */
enum db_rc ledger_append(struct req *r, struct customer *c,
                         const struct ledger_row *row, int64_t *id);

/* The ACTIVE payment provider of this type serving the contract owner
 * (lowest id), or 0 when there is none. */
int64_t provider_find(struct req *r, int64_t owner, const char *type);

/* A mandate for the site is in place (a completed flow or an attached
 * mandate): the site is now paid by that payment method (mandates.c). */
enum db_rc mandate_site_method(struct req *r, int64_t site_id, const char *method);

/* After a mandate is set up with a provider that syncs instant bank
 * payments: collects what the customer owes through it (mandates.c). */
enum db_rc mandate_instant_payment(struct req *r, int64_t customer_id,
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

/* SQL assignment that re-derives invoices.payment_status from paid,
 * refunded, refund_pending and third_party_status (spec §3). Use it last
 * in an UPDATE's SET list (MariaDB evaluates assignments left to right). */
#define INVOICE_STATUS_SQL                                                    \
    "payment_status = CASE"                                                   \
    " WHEN refund_pending > 0 THEN 'REFUND_PENDING'"                          \
    " WHEN refunded > 0 AND refunded >= paid THEN 'REFUNDED'"                 \
    " WHEN refunded > 0 THEN 'PART_REFUNDED'"                                 \
    " WHEN paid >= amount AND paid > 0 THEN 'PAID'"                           \
    " WHEN paid > 0 THEN 'PARTIALLY_PAID'"                                    \
    " WHEN third_party_status IN ('NEW','CREATED','PENDING_CUSTOMER_APPROVAL',"\
    "'PENDING_SUBMISSION','SUBMITTED','CUSTOMER_APPROVAL_GRANTED','UNSENT',"  \
    "'RESUBMISSION_REQUESTED','FAILED_RETRYING') THEN 'PENDING'"              \
    " ELSE 'UNPAID' END"

/* Invoice kinds (invoices.kind). */
#define INVOICE_NORMAL 1
#define INVOICE_ADHOC  2

/* ThirdPartyPaymentStatus and its groups (spec §2). */
extern const char *const THIRD_PARTY_STATUSES[];
enum tp_group { TP_COLLECTED, TP_REVERSED, TP_PENDING, TP_FAILED, TP_INFO };
enum tp_group tp_group_of(const char *status);

struct invoice {
    int         kind;
    int64_t     id;
    int64_t     customer_id;
    int64_t     amount;
    int64_t     paid;
    int64_t     refunded;
    int64_t     refund_pending;
    int         auto_collect;
    const char *number;
    const char *tp_status;   /* latest third-party status, may be NULL */
};

/* Inside the request's transaction: locks the invoice's customer, then the
 * invoice (always in that order, so concurrent writers never deadlock).
 * DB_NOT_FOUND for an unknown invoice or another tenant's. */
enum db_rc invoice_lock(struct req *r, int kind, int64_t id, struct customer *c,
                        struct invoice *inv);
/* Moves the invoice's totals, optionally sets its third-party status, and
 * re-derives its payment status. */
enum db_rc invoice_update(struct req *r, const struct invoice *inv,
                          int64_t paid_delta, int64_t refunded_delta,
                          int64_t pending_delta, const char *tp_status);

/* One payment event on an invoice (table invoice_payments). */
struct invoice_event {
    const char *tp_status;            /* NULL: none given */
    int64_t     amount;
    const char *description;
    const char *payment_method;
    const char *customer_payment_type;
    int64_t     customer_payment_id;  /* 0: none */
    int64_t     ledger_id;            /* 0: none */
    int         status_not_applicable;/* a manual payment sent with a provider
                                         status: recorded as sent, but the money
                                         is applied at once and the invoice's
                                         third-party status stays */
};
enum db_rc invoice_event_insert(struct req *r, const struct invoice *inv,
                                const struct customer *c,
                                const struct invoice_event *e, int64_t *id);
/* Change of invoices.paid caused by an event (spec §4.5): the amount for
 * no status or a collected one, minus its magnitude for a reversed one,
 * 0 otherwise. */
int64_t invoice_event_effect(const char *tp_status, int64_t amount);
/* Records event e on a locked invoice of a locked customer: the PAYMENT /
 * PAYMENT_REVERSED ledger row when money moves (e->ledger_id is set), the
 * event itself, and the invoice's totals and statuses. The caller has
 * checked that paid stays >= refunded. */
enum db_rc invoice_event_record(struct req *r, struct customer *c,
                                const struct invoice *inv, struct invoice_event *e,
                                int64_t *id);

/* A payment against the customer account (customer_payments.c): the
 * PAYMENT ledger row, then allocation over open invoices of the bill run
 * type, oldest first. *ledger_id gets the PAYMENT row. */
enum db_rc customer_payment_record(struct req *r, struct customer *c,
                                   int64_t amount, const char *method,
                                   const char *description, const char *reference,
                                   const char *bill_run_type, int64_t *ledger_id);
