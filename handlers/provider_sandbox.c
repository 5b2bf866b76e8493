/*
 * The sandbox provider: a complete, local stand-in for a payment
 * provider. Its hosted mandate page is this service's own /mandate/{token};
 * mandates become ACTIVE at once. Payments and refunds behave as at a real
 * provider (COLLECTION.md §6): a submission answers pending with a
 * reference, and the outcome follows a timeline from the first call, one
 * step every step_ms, chosen by the amount in minor units (like card
 * networks' test numbers):
 *   payments   PENDING_SUBMISSION, SUBMITTED, CONFIRMED, PAID_OUT;
 *              ending in 13: FAILED after SUBMITTED;
 *              ending in 66: CHARGED_BACK one step after PAID_OUT;
 *              ending in 29: the first call answers 429 (Retry-After 1 s);
 *              ending in 55: the first two calls answer 503;
 *              ending in 41: refused (4xx) for good.
 *   refunds    SUBMITTED, then REFUND_SETTLED; ending in 77: BOUNCED.
 *   cancel     agreed while PENDING_SUBMISSION, refused after.
 * References are prefixed SBX- and, like a real provider answering a
 * repeated idempotent call, derived from the call's idempotency key: the
 * same key gives the same reference and the same result. What it keeps
 * (first call, call count, cancellation) is in table sandbox_calls.
 */
#include "provider.h"

#include <string.h>

#include "api.h"
#include "log.h"
#include "token.h"

static const char *base_url = "http://127.0.0.1:8080";
static int         use_db;
static long        step_ms = 2000;

void
provider_sandbox_configure(int db, long step)
{
    use_db = db;
    step_ms = step > 0 ? step : 1;
}

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

/* What the sandbox remembers of a reference: ms since its first call,
 * the number of calls with its key (this one included when count), and
 * whether it was cancelled. Stateless: at the end of its timeline. */
struct memory {
    long elapsed_ms;
    int  calls;
    int  cancelled;
};

static int
remember(struct req *r, const char *reference, const struct provider_money *m,
         const char *kind, int count, int cancel, struct memory *out)
{
    out->elapsed_ms = 1000L * 1000 * 1000;
    out->calls = 1;
    out->cancelled = 0;
    if (!use_db)
        return 0;
    struct dbq *q;
    if (count || cancel) {
        q = dbq_new(&r->db,
            "INSERT INTO sandbox_calls (reference, idempotency_key, kind, amount)"
            " VALUES (?,?,?,?) ON DUPLICATE KEY UPDATE calls = calls + ?,"
            " cancelled = IF(? = 1, 1, cancelled)");
        dbq_str(q, reference);
        dbq_str(q, m->idempotency_key ? m->idempotency_key : reference);
        dbq_str(q, kind);
        dbq_i64(q, m->amount);
        dbq_i64(q, count ? 1 : 0);
        dbq_i64(q, cancel ? 1 : 0);
        if (dbq_exec(q) != DB_OK)
            goto unavailable;
    }
    q = dbq_new(&r->db,
        "SELECT TIMESTAMPDIFF(MICROSECOND, first_at, UTC_TIMESTAMP(6)) DIV 1000, calls,"
        " cancelled FROM sandbox_calls WHERE reference = ?");
    dbq_str(q, reference);
    enum db_rc rc = dbq_one(q);
    if (rc == DB_NOT_FOUND) {
        out->calls = 0; /* never submitted: unknown at the provider */
        return 0;
    }
    if (rc != DB_OK)
        goto unavailable;
    out->elapsed_ms = (long)dbq_col_i64(q, 0);
    out->calls = (int)dbq_col_i64(q, 1);
    out->cancelled = (int)dbq_col_i64(q, 2);
    return 0;
unavailable:
    /* The provider's side is down: like a network error for the caller. */
    db_uow_reset(&r->db);
    return PROVIDER_RETRY;
}

static int
ends_in(int64_t amount, int two_digits)
{
    return amount % 100 == two_digits;
}

/* Errors chosen by amount, by the call count of the key. */
static int
injected_error(const struct provider_money *m, const struct memory *mem,
               struct provider_result *out)
{
    if (ends_in(m->amount, 41)) {
        out->error = "sandbox: payment refused (amount ending in 41)";
        return PROVIDER_REFUSED;
    }
    if (ends_in(m->amount, 29) && mem->calls <= 1) {
        out->error = "sandbox: 429 Too Many Requests";
        out->retry_after_ms = 1000;
        return PROVIDER_RETRY;
    }
    if (ends_in(m->amount, 55) && mem->calls <= 2) {
        out->error = "sandbox: 503 Service Unavailable";
        return PROVIDER_RETRY;
    }
    return 0;
}

/* The payment's status on its timeline. */
static void
payment_now(const struct provider_money *m, const struct memory *mem,
            struct provider_result *out)
{
    long step = mem->elapsed_ms / step_ms;
    out->more = 1;
    if (mem->cancelled) {
        out->status = "CANCELLED";
        out->more = 0;
    } else if (step < 1) {
        out->status = "PENDING_SUBMISSION";
    } else if (step < 2) {
        out->status = "SUBMITTED";
    } else if (ends_in(m->amount, 13)) {
        out->status = "FAILED";
        out->more = 0;
    } else if (step < 3) {
        out->status = "CONFIRMED";
    } else if (ends_in(m->amount, 66)) {
        out->status = step < 4 ? "PAID_OUT" : "CHARGED_BACK";
        out->more = step < 4;
    } else {
        out->status = "PAID_OUT";
        out->more = 0;
    }
}

static void
refund_now(const struct provider_money *m, const struct memory *mem,
           struct provider_result *out)
{
    out->more = mem->elapsed_ms < step_ms;
    out->status = out->more ? "SUBMITTED" : ends_in(m->amount, 77) ? "BOUNCED"
                                                                   : "REFUND_SETTLED";
}

static int
sandbox_payment_submit(struct req *r, const struct provider_money *m,
                       struct provider_result *out)
{
    struct memory mem;
    int           rc;
    out->reference = sandbox_reference(r, "PAY", m->idempotency_key);
    if ((rc = remember(r, out->reference, m, "PAY", 1, 0, &mem)) != 0 ||
        (rc = injected_error(m, &mem, out)) != 0)
        return rc;
    payment_now(m, &mem, out);
    return 0;
}

static int
sandbox_payment_fetch(struct req *r, const char *reference, const struct provider_money *m,
                      struct provider_result *out)
{
    struct memory mem;
    int           rc;
    out->reference = reference;
    if ((rc = remember(r, reference, m, "PAY", 0, 0, &mem)) != 0)
        return rc;
    if (mem.calls == 0) {
        out->error = "sandbox: unknown payment";
        return PROVIDER_REFUSED;
    }
    payment_now(m, &mem, out);
    return 0;
}

static int
sandbox_payment_cancel(struct req *r, const char *reference, const struct provider_money *m,
                       struct provider_result *out)
{
    struct memory mem;
    int           rc;
    out->reference = reference;
    if ((rc = remember(r, reference, m, "PAY", 0, 0, &mem)) != 0)
        return rc;
    payment_now(m, &mem, out);
    if (mem.calls == 0 || strcmp(out->status, "PENDING_SUBMISSION") != 0) {
        out->error = "sandbox: the payment is already submitted to the bank";
        return PROVIDER_REFUSED;
    }
    if ((rc = remember(r, reference, m, "PAY", 0, 1, &mem)) != 0)
        return rc;
    payment_now(m, &mem, out);
    return 0;
}

static int
sandbox_refund_submit(struct req *r, const struct provider_money *m,
                      struct provider_result *out)
{
    struct memory mem;
    int           rc;
    out->reference = sandbox_reference(r, "RF", m->idempotency_key);
    if ((rc = remember(r, out->reference, m, "RF", 1, 0, &mem)) != 0)
        return rc;
    refund_now(m, &mem, out);
    return 0;
}

static int
sandbox_refund_fetch(struct req *r, const char *reference, const struct provider_money *m,
                     struct provider_result *out)
{
    struct memory mem;
    int           rc;
    out->reference = reference;
    if ((rc = remember(r, reference, m, "RF", 0, 0, &mem)) != 0)
        return rc;
    if (mem.calls == 0) {
        out->error = "sandbox: unknown refund";
        return PROVIDER_REFUSED;
    }
    refund_now(m, &mem, out);
    return 0;
}

static const struct provider_adapter sandbox = {
    "sandbox",
    sandbox_flow_start,
    sandbox_mandate_complete,
    sandbox_mandate_fetch,
    sandbox_payment_submit,
    sandbox_refund_submit,
    sandbox_payment_fetch,
    sandbox_refund_fetch,
    sandbox_payment_cancel,
};

const struct provider_adapter *
provider_adapter(const char *type)
{
    (void)type; /* no integrated adapters yet: the sandbox serves all types */
    return &sandbox;
}
