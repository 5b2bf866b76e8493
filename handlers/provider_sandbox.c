/*
 * The sandbox provider: a complete, local stand-in for a payment
 * provider. Its hosted mandate page is this service's own /mandate/{token};
 * mandates become ACTIVE at once; payments are CONFIRMED and refunds
 * REFUND_SETTLED synchronously. References are random and prefixed SBX-.
 */
#include "provider.h"

#include <string.h>

#include "api.h"
#include "token.h"

static const char *base_url = "http://127.0.0.1:8080";

void
provider_set_public_base_url(const char *url)
{
    base_url = url;
}

const char *
provider_public_base_url(void)
{
    return base_url;
}

static const char *
sandbox_reference(struct req *r, const char *kind)
{
    return arena_printf(r->arena, "SBX-%s-%s", kind, token_random(r->arena, 9));
}

static const char *
sandbox_flow_start(struct req *r, const char *flow_token)
{
    return arena_printf(r->arena, "%s/mandate/%s", base_url, flow_token);
}

static int
sandbox_mandate_complete(struct req *r, const struct mandate_details *d,
                         struct provider_result *out)
{
    out->status = "ACTIVE";
    out->reference = sandbox_reference(r, "MD");
    /* Stripe mandates belong to a Stripe customer (spec §4.2): the fetch
     * needs its id as thirdPartyCustomerReference. */
    if (payment_method_stripe(d->payment_method))
        out->customer_reference = sandbox_reference(r, "CUS");
    return 0;
}

static int
sandbox_mandate_fetch(struct req *r, const char *reference,
                      struct provider_result *out)
{
    (void)r;
    out->status = "ACTIVE";
    out->reference = reference;
    return 0;
}

static int
sandbox_payment_submit(struct req *r, const struct provider_money *m,
                       struct provider_result *out)
{
    (void)m;
    out->status = "CONFIRMED";
    out->reference = sandbox_reference(r, "PAY");
    return 0;
}

static int
sandbox_refund_submit(struct req *r, const struct provider_money *m,
                      struct provider_result *out)
{
    (void)m;
    out->status = "REFUND_SETTLED";
    out->reference = sandbox_reference(r, "RF");
    return 0;
}

static const struct provider_adapter sandbox = {
    "sandbox",
    sandbox_flow_start,
    sandbox_mandate_complete,
    sandbox_mandate_fetch,
    sandbox_payment_submit,
    sandbox_refund_submit,
};

const struct provider_adapter *
provider_adapter(const char *type)
{
    (void)type; /* no integrated adapters yet: the sandbox serves all types */
    return &sandbox;
}
