/*
 * Every handler, the vocabulary of the route table (routes.c). A handler
 * takes the request and returns the HTTP status (or what req_fail
 * returned).
 */
#ifndef PAY_HANDLERS_HANDLERS_H
#define PAY_HANDLERS_HANDLERS_H

#include <stddef.h>

#include "auth.h"
#include "router.h"

/* Scope bits of the route table's scope column (spec 1.2). */
#define PAY_SCOPE_READ  1u   /* GET */
#define PAY_SCOPE_WRITE 2u   /* POST, PATCH */

int health_live(struct req *r);
int health_ready(struct req *r);
int metrics_get(struct req *r);
int openapi_get(struct req *r);
int customer_payments_list(struct req *r);
int customer_payments_create(struct req *r);
int customer_payments_get(struct req *r);
int customer_balances_get(struct req *r);
int customer_balance_adjustments_create(struct req *r);
int invoice_payments_list(struct req *r);
int invoice_payments_create(struct req *r);
int invoice_payments_get(struct req *r);
int adhoc_invoice_payments_list(struct req *r);
int adhoc_invoice_payments_create(struct req *r);
int adhoc_invoice_payments_get(struct req *r);
int invoice_payment_reprocess_create(struct req *r);
int invoice_payment_cancel_create(struct req *r);
int payment_providers_list(struct req *r);
int payment_providers_create(struct req *r);
int payment_providers_get(struct req *r);
int payment_providers_update(struct req *r);
int payment_provider_reprocess_create(struct req *r);
int refunds_list(struct req *r);
int refunds_create(struct req *r);
int refunds_get(struct req *r);
int customer_credit_status_list(struct req *r);
int payment_links_create(struct req *r);
int site_payment_mandates_list(struct req *r);
int site_payment_mandates_create(struct req *r);
int site_payment_mandates_get(struct req *r);
int provider_mandates_get(struct req *r);
int instant_bank_payments_list(struct req *r);
int pages_pay_get(struct req *r);
int pages_pay_post(struct req *r);
int pages_mandate_get(struct req *r);
int pages_mandate_post(struct req *r);
int webhooks_receive(struct req *r);

/* Webhooks (webhooks.c): the server's webhook_secret (process lifetime;
 * empty: webhooks are refused), and the key a provider signs with. */
void webhooks_configure(const char *secret);
const char *webhooks_provider_key(struct arena *a, int64_t provider_id);
/* One event of a provider in our vocabulary, applied as a webhook's is (in
 * its own transaction, stored by (provider, event id): a repeat changes
 * nothing; retried on a deadlock). *outcome: APPLIED, IGNORED, DUPLICATE,
 * UNKNOWN_REFERENCE or CONFLICT. For events a provider reports only through
 * a later fetch (Stripe's payouts). */
struct webhook_event;
enum db_rc webhooks_apply(struct req *r, int64_t provider_id, const struct webhook_event *ev,
                          const char **outcome);

/* THE route table and its length. */
extern const struct route routes_table[];
extern const size_t routes_count;

/* The scope words of the API and what each grants, handed to auth_init()
 * by main.c (the framework knows no scope names). */
extern const struct auth_scope routes_scopes[];
extern const size_t routes_nscopes;

#endif
