/*
 * Payment provider adapters: the one interface through which handlers
 * talk to GoCardless, Stripe, Finastra… Handlers never know which
 * provider they talk to. The built-in sandbox adapter (provider_sandbox.c)
 * implements every operation locally, so mandate set-up, payments and
 * refunds work end to end without any outside service; it serves every
 * provider type unless an integrated adapter for that type is registered
 * in provider_adapter() (provider.c) and its credentials are configured
 * (GoCardless: provider_gocardless.c).
 *
 * An integrated adapter must implement these operations:
 *   mandate_flow_start  where to send the customer to enter bank details
 *                       (the provider's hosted page) for a flow token;
 *   mandate_complete    turn the collected (or provider-reported) details
 *                       into a mandate reference and status;
 *   mandate_fetch       current status of a mandate at the provider;
 *   payment_submit      collect an amount (synchronous confirmation or a
 *                       pending status, later updated through events);
 *   refund_submit       pay an amount back;
 *   payment_fetch, refund_fetch
 *                       the current status of a payment / refund by its
 *                       reference (reconciliation when an event is late);
 *   payment_cancel      cancel a payment not yet submitted to the bank.
 * Payments, refunds and their cancellation are made only by the collection
 * engine (handlers/collector.c), outside any database transaction, and an
 * attempt may be tried again (a retry after an error, a collector killed
 * between the call and recording its answer).
 * So the three calls that create something at the provider carry an
 * idempotency_key (provider_call_key): the same for every run of the same
 * operation, different for different operations. An adapter passes it to
 * its provider's idempotency mechanism, so the second call returns the
 * first call's result instead of acting twice.
 */
#ifndef PAY_HANDLERS_PROVIDER_H
#define PAY_HANDLERS_PROVIDER_H

#include <stdint.h>

#include "db.h"
#include "req.h"

struct mandate_details {
    const char *account_holder_name;
    const char *sort_code;       /* 6 digits */
    const char *account_number;  /* 8 digits */
    const char *payment_method;  /* the provider's type (PaymentMethod) */
    const char *idempotency_key;
    /* Details entered on the provider's own hosted page instead: */
    const char *flow_token;      /* our flow's token (the site mandate's) */
    const char *flow_reference;  /* the provider's flow (GoCardless billing request) */
};

struct provider_money {
    int64_t     amount;          /* minor units */
    const char *currency_code;
    const char *description;
    const char *idempotency_key;
    int64_t     provider_id;     /* the configured provider (webhooks' address) */
    const char *mandate_reference; /* payments: the mandate collected on, or NULL */
    const char *payment_reference; /* refunds: the provider's collected payment of the
                                    * customer it can be paid back from, or NULL */
};

/* Return values of the calls: 0, or one of these. */
#define PROVIDER_RETRY   1  /* network error, 5xx, 429: try again later */
#define PROVIDER_REFUSED 2  /* 4xx: the provider will never do it */

struct provider_result {
    const char *status;          /* ThirdPartyPaymentStatus / RefundStatus / MandateStatus */
    int         more;            /* the provider will report further changes */
    long        retry_after_ms;  /* PROVIDER_RETRY: the provider's Retry-After (0: none) */
    const char *error;           /* PROVIDER_RETRY / _REFUSED: what it said */
    const char *reference;       /* provider's reference of the payment, refund or mandate */
    const char *customer_reference; /* mandate_complete: the provider's customer id
                                     * (Stripe's, thirdPartyCustomerReference), or NULL */
    const char *account_holder_name;   /* mandate_complete from a hosted page: what */
    const char *account_number_ending; /* the provider tells of the account, or NULL */
};

/* One event of a provider's webhook, in our vocabulary. */
struct webhook_event {
    const char *id;          /* the provider's event id (dedupe) */
    const char *reference;   /* the payment's, refund's or mandate's reference */
    const char *status;      /* ThirdPartyPaymentStatus / RefundStatus / MandateStatus */
};

/* A mandate's status as its provider reports it (a webhook event or a
 * fetch), in the caller's transaction: it moves forward only (a late or
 * repeated report never takes a cancelled mandate back to ACTIVE;
 * REINSTATED is the one way back), *moved says whether it did; reaching a
 * final status (ACTIVE and after) ends the engine's fetches of it.
 * DB_NOT_FOUND when the reference is no mandate of this provider
 * (webhooks.c). */
DB_MUST_CHECK enum db_rc mandate_status_forward(struct db_uow *u, int64_t provider_id,
                                                const char *reference, const char *status,
                                                int *moved);

struct provider_adapter {
    const char *name;
    const char *(*mandate_flow_start)(struct req *r, const char *flow_token);
    int (*mandate_complete)(struct req *r, const struct mandate_details *d,
                            struct provider_result *out);
    int (*mandate_fetch)(struct req *r, const char *reference,
                         struct provider_result *out);
    int (*payment_submit)(struct req *r, const struct provider_money *m,
                          struct provider_result *out);
    int (*refund_submit)(struct req *r, const struct provider_money *m,
                         struct provider_result *out);
    int (*payment_fetch)(struct req *r, const char *reference, const struct provider_money *m,
                         struct provider_result *out);
    int (*refund_fetch)(struct req *r, const char *reference, const struct provider_money *m,
                        struct provider_result *out);
    int (*payment_cancel)(struct req *r, const char *reference, const struct provider_money *m,
                          struct provider_result *out);
    /* A webhook in the provider's own scheme (COLLECTION.md 5): checks the
     * signature over the raw body r->body in constant time, before parsing
     * it, then maps the provider's events to ours (*ev, *n in r->arena).
     * Returns 0; 403 when forged or stale; 400 when authentic but
     * malformed; 503 when what it stores could not be stored (answered
     * as a database failure, so the provider sends it again); *why says
     * why. NULL: the sandbox's own scheme. */
    int (*webhook_parse)(struct req *r, struct webhook_event **ev, size_t *n,
                         const char **why);
    /* Optional (NULL: a payment link's payment is submitted by the engine
     * like any other): a payment link paid on the provider's hosted page.
     * The payment page opens it before its transaction (or, for the same
     * m->idempotency_key, finds it again); the payer comes back to
     * return_url, having paid or not, or to return_url?exit=<out->reference>
     * after leaving the hosted page (the attempt following that reference
     * is then cancelled at the provider, if the payer has not approved it). 0
     * with out->reference (what the attempt follows through payment_fetch,
     * payment_cancel and webhooks), out->status and *url (the hosted page),
     * or PROVIDER_RETRY / PROVIDER_REFUSED with out->error. */
    int (*payment_checkout)(struct req *r, const char *type, const struct provider_money *m,
                            const char *return_url, struct provider_result *out,
                            const char **url);
    /* With payment_checkout: the hosted page of that reference while the
     * payer can still pay there, else NULL (paid, ended, or the provider
     * unreachable); and the origin of the hosted pages (the payment page's
     * form-action). */
    const char *(*checkout_url)(struct req *r, const char *reference, const char *return_url);
    const char *(*checkout_origin)(struct req *r);
};

/*
 * Credentials of an integrated provider, read at start from the file the
 * configuration names (`gocardless_credentials`, `stripe_credentials`;
 * `key = value` lines: api_key, webhook_secret, environment = live |
 * sandbox, base_url (tests), ca_file (tests)); the file must not be
 * readable by others. Never stored in the database, answered, logged or
 * exported. No file configured: that provider type keeps the sandbox.
 */
struct provider_credentials {
    const char *api_key;         /* GoCardless access token / Stripe secret key */
    const char *webhook_secret;  /* the provider's webhook endpoint secret */
    const char *environment;     /* "live" or "sandbox" */
    const char *base_url;        /* NULL: the provider's URL for environment */
    const char *ca_file;         /* NULL: the system CAs */
};
/* name: "gocardless" or "stripe". NULL when none is configured. */
const struct provider_credentials *provider_credentials(const char *name);
/* Reads the credentials file of `name` (once, at start). Returns 0, or -1
 * with a message in err (file readable or writable by group or others, not
 * a regular file, unknown or repeated key, a required key missing, a bad
 * value); the message never quotes a secret. */
int provider_credentials_load(const char *name, const char *path, char *err, size_t errlen);

/* The adapter serving providers of this PaymentMethod type: an integrated
 * one when its credentials are configured, else the sandbox. */
const struct provider_adapter *provider_adapter(const char *type);
/* The built-in sandbox adapter (provider_sandbox.c). */
const struct provider_adapter *provider_sandbox_adapter(void);
/* GoCardless (provider_gocardless.c): Direct Debit, and instant bank
 * payments (payment links paid on GoCardless's hosted page). */
const struct provider_adapter *provider_gocardless_adapter(void);
const struct provider_adapter *provider_gocardless_ibp_adapter(void);

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

/* The ACTIVE payment provider of this type serving the contract owner
 * (lowest id) in *id: DB_OK, DB_NOT_FOUND when there is none, or an error. */
DB_MUST_CHECK enum db_rc provider_find(struct req *r, int64_t owner, const char *type,
                                       int64_t *id);

/* The sandbox keeps what a provider keeps (table sandbox_calls) through
 * the request's unit of work when on (the server and the collector);
 * off, it is stateless and every reference is at the end of its timeline
 * (unit tests). step_ms is the time between two steps of its timeline;
 * ca_file (NULL or "": the system CAs) verifies an https:// base URL. */
void provider_sandbox_configure(int use_db, long step_ms, const char *ca_file);
/* Sends the sandbox's due webhook events, signed with the provider's key,
 * to <public base URL>/webhooks/<provider id> (through nginx), outside any
 * transaction; a failed delivery is tried again later (reconciliation by
 * fetch covers a lost one). Returns how many were delivered. */
int provider_sandbox_deliver(struct req *r, int max);
/* Limits delivery to events of these customers' attempts ("12,13"; NULL:
 * all), for `pay-api attempts run --customers` on a shared test stack. */
void provider_sandbox_deliver_only(const char *customers);

/* Configured public base URL (no trailing slash), for links and pages. */
void provider_set_public_base_url(const char *url);
const char *provider_public_base_url(void);

#endif
