/*
 * Stripe's wire formats, as pure functions (no network, no database), so
 * that the adapter (provider_stripe.c) and its unit tests share them:
 *   - the Stripe-Signature header of a webhook;
 *   - form encoding of request parameters (nested keys in brackets);
 *   - the class of an answer (retry later / refused for good);
 *   - the mapping of Stripe events to our statuses (README table).
 */
#ifndef PAY_HANDLERS_STRIPE_WIRE_H
#define PAY_HANDLERS_STRIPE_WIRE_H

#include <stddef.h>

#include "arena.h"
#include "json.h"

/* The API version every request is made against (Stripe-Version). */
#define STRIPE_API_VERSION "2026-07-29.dahlia"
/* Seconds a signed webhook stays acceptable after its t=. */
#define STRIPE_WEBHOOK_TOLERANCE 300

/*
 * Checks "t=<unix>,v1=<hex>[,v1=<hex>...]" (other schemes such as v0 are
 * ignored) over "<t>.<body>" with HMAC-SHA256 keyed by the whole endpoint
 * secret, each v1 compared in constant time; accepted when any v1 matches
 * and now - t <= tolerance (Stripe's libraries accept a t in the future;
 * so does this, up to the same tolerance). Returns 0, or -1 with *why.
 */
int stripe_signature_check(struct arena *a, const char *header, const char *secret,
                           const char *body, size_t n, long long now, long tolerance,
                           const char **why);

/* Appends "&key=value" ("key=value" when b is empty), both
 * percent-encoded except for unreserved characters and the brackets of
 * nested keys, as stripe-node sends them. */
void stripe_form_add(struct abuf *b, const char *key, const char *value);

/*
 * Class of an answer: 0 for 2xx; 1 (retry later) for no answer (status
 * 0), 409 (a concurrent request with the same key, lock_timeout), 429,
 * 5xx, rate_limit / api_error / lock_timeout / idempotency_key_in_use
 * bodies, or Stripe-Should-Retry: true; 2 (refused for good) for other
 * 4xx (invalid_request_error, card_error, idempotency_error...) or
 * Stripe-Should-Retry: false. *what gets "type/code: message" of the
 * error body (or NULL), for errorInfo.
 */
int stripe_classify(struct arena *a, long status, const char *body, const char *should_retry,
                    const char **what);

/* One Stripe event in our vocabulary: the reference (the Checkout
 * Session, PaymentIntent or Refund id the attempt holds, or the Mandate id)
 * and the status. kind: 0 not ours (ignored), 1 about a collection, 2 about
 * a refund, 3 about a mandate (mandate.updated: its MandateStatus). */
struct stripe_mapped {
    int         kind;
    const char *reference;
    const char *status;
};
/* Maps a parsed event (its "type" and "data.object"). Returns 0, or -1
 * when the event is malformed. Unmapped types give kind 0. */
int stripe_event_map(const struct json_value *event, struct stripe_mapped *out);

/* Our collection status of a PaymentIntent / Checkout Session / Refund
 * object (fetches for reconciliation); NULL when unknown. *more: the
 * provider will report further changes. */
const char *stripe_payment_intent_status(const struct json_value *pi, int *more);
const char *stripe_session_status(const struct json_value *cs, int *more);
const char *stripe_refund_status(const struct json_value *re, int *more);
/* Our MandateStatus of a Mandate object; NULL without a status. */
const char *stripe_mandate_status(const struct json_value *md);

#endif
