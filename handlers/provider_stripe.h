/*
 * The Stripe adapter and what the collector needs of it beyond the
 * provider_adapter operations (payouts). A payment link is paid on
 * Stripe's hosted Checkout page through the adapter's payment_checkout.
 */
#ifndef PAY_HANDLERS_PROVIDER_STRIPE_H
#define PAY_HANDLERS_PROVIDER_STRIPE_H

#include "provider.h"

/* The Stripe adapter (provider_adapter() returns it for STRIPE,
 * STRIPE_CARD and STRIPE_DD when stripe credentials are configured). */
const struct provider_adapter *provider_stripe_adapter(void);

/* Payouts (README "Stripe"): the collector's part, outside any transaction.
 * Claims one due payout a payout.paid webhook stored (lease_ms), checks at
 * Stripe that it is still paid, lists its charges page by page and moves
 * each charge's collection attempt to PAID_OUT. Returns 1 when it handled
 * one, 0 when none was due (or no Stripe credentials), -1 on a database
 * error. Everything is allocated in r->arena. */
int provider_stripe_payouts(struct req *r, long lease_ms);

#endif
