/*
 * The sandbox provider: a complete, local stand-in for a payment
 * provider. Its hosted mandate page is this service's own /mandate/{token};
 * mandates become ACTIVE at once; payments are CONFIRMED and refunds
 * REFUND_SETTLED synchronously. References are prefixed SBX- and, like a
 * real provider answering a repeated idempotent call, derived from the
 * call's idempotency key: the same key gives the same reference.
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

/* "SBX-<kind>-" and 16 hex digits of SHA-256("<kind>\n<key>"). */
static const char *
sandbox_reference(struct req *r, const char *kind, const char *key)
{
    const char *basis = arena_printf(r->arena, "%s\n%s", kind, key);
    return arena_printf(r->arena, "SBX-%s-%.16s", kind,
                        token_sha256_hex(r->arena, basis, strlen(basis)));
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
    out->reference = sandbox_reference(r, "MD", d->idempotency_key);
    /* Stripe mandates belong to a Stripe customer (spec §4.2): the fetch
     * needs its id as thirdPartyCustomerReference. */
    if (payment_method_stripe(d->payment_method))
        out->customer_reference = sandbox_reference(r, "CUS", d->idempotency_key);
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
    out->status = "CONFIRMED";
    out->reference = sandbox_reference(r, "PAY", m->idempotency_key);
    return 0;
}

static int
sandbox_refund_submit(struct req *r, const struct provider_money *m,
                      struct provider_result *out)
{
    out->status = "REFUND_SETTLED";
    out->reference = sandbox_reference(r, "RF", m->idempotency_key);
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
