/*
 * What the payment-link page needs of the Stripe adapter beyond the
 * provider_adapter operations: a link is paid on Stripe's hosted Checkout
 * page, so the page (not the collection engine) opens the Checkout
 * Session, before its transaction, and sends the browser there.
 */
#ifndef PAY_HANDLERS_PROVIDER_STRIPE_H
#define PAY_HANDLERS_PROVIDER_STRIPE_H

#include "provider.h"

/* The Stripe adapter (provider_adapter() returns it for STRIPE,
 * STRIPE_CARD and STRIPE_DD when stripe credentials are configured). */
const struct provider_adapter *provider_stripe_adapter(void);

/* 1 when payments of this PaymentMethod type go through Stripe for real. */
int provider_stripe_serves(const char *type);

/* Opens (or, for the same m->idempotency_key, finds again) the Checkout
 * Session of a payment-link payment of type `type`; the customer comes
 * back to return_url whether they pay or go back. 0 with out->reference
 * (the Session id), out->status and *url (Stripe's hosted page), or
 * PROVIDER_RETRY / PROVIDER_REFUSED with out->error. */
int provider_stripe_checkout(struct req *r, const char *type, const struct provider_money *m,
                             const char *return_url, struct provider_result *out,
                             const char **url);

/* The origin of Stripe's hosted Checkout pages (https://checkout.stripe.com,
 * or the base URL's when one is configured, for tests). */
const char *provider_stripe_checkout_origin(struct req *r);

/* Stripe's hosted page of a Checkout Session while it can still be paid,
 * else NULL (completed, expired, or Stripe unreachable). */
const char *provider_stripe_checkout_url(struct req *r, const char *reference);

/* Payouts (README "Stripe"): the collector's part, outside any transaction.
 * Claims one due payout a payout.paid webhook stored (lease_ms), checks at
 * Stripe that it is still paid, lists its charges page by page and moves
 * each charge's collection attempt to PAID_OUT. Returns 1 when it handled
 * one, 0 when none was due (or no Stripe credentials), -1 on a database
 * error. Everything is allocated in r->arena. */
int provider_stripe_payouts(struct req *r, long lease_ms);

#endif
