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
 * (first call, call count, cancellation) is in table sandbox_calls; the
 * events of the timeline go into its outbox (sandbox_webhooks) and are sent
 * signed to /webhooks/{provider} through the public URL by
 * provider_sandbox_deliver, which the collector calls between passes.
 */
#include "provider.h"

#include <inttypes.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "handlers.h"
#include "http.h"
#include "log.h"
#include "token.h"

static const char *base_url = "http://127.0.0.1:8080";
static int         use_db;
static long        step_ms = 2000;
static const char *ca_file;  /* for an https:// base_url; NULL: the system CAs */

void
provider_sandbox_configure(int db, long step, const char *ca)
{
    use_db = db;
    step_ms = step > 0 ? step : 1;
    ca_file = ca != NULL && ca[0] != '\0' ? ca : NULL;
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

/* Queues the events of a reference's timeline (once: the outbox is keyed
 * by reference and status), each due at its step after now. */
static void
enqueue(struct req *r, const struct provider_money *m, const char *reference,
        const char *const *statuses)
{
    if (!use_db || m->provider_id == 0)
        return;
    for (int k = 0; statuses[k] != NULL; k++) {
        struct dbq *q = dbq_new(&r->db,
            "INSERT IGNORE INTO sandbox_webhooks (provider_id, reference, status, due_at)"
            " VALUES (?,?,?, UTC_TIMESTAMP(6) + INTERVAL ? * 1000 MICROSECOND)");
        dbq_i64(q, m->provider_id);
        dbq_str(q, reference);
        dbq_str(q, statuses[k]);
        dbq_i64(q, (int64_t)step_ms * (k + 1));
        if (dbq_exec(q) != DB_OK) {
            db_uow_reset(&r->db); /* reconciliation by fetch still settles it */
            return;
        }
    }
}

static void
enqueue_payment(struct req *r, const struct provider_money *m, const char *reference)
{
    static const char *const failed[] = {"SUBMITTED", "FAILED", NULL};
    static const char *const charged[] = {"SUBMITTED", "CONFIRMED", "PAID_OUT",
                                          "CHARGED_BACK", NULL};
    static const char *const normal[] = {"SUBMITTED", "CONFIRMED", "PAID_OUT", NULL};
    enqueue(r, m, reference, ends_in(m->amount, 13) ? failed
                             : ends_in(m->amount, 66) ? charged : normal);
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
    if (mem.elapsed_ms < step_ms)
        enqueue_payment(r, m, out->reference);
    return 0;
}

/* A fetch: the reference's status on its timeline (now), the call not
 * counted; refused as unknown when it was never submitted. */
static int
fetch(struct req *r, const char *reference, const struct provider_money *m, const char *kind,
      void (*now)(const struct provider_money *, const struct memory *,
                  struct provider_result *),
      const char *unknown, struct provider_result *out)
{
    struct memory mem;
    int           rc;
    out->reference = reference;
    if ((rc = remember(r, reference, m, kind, 0, 0, &mem)) != 0)
        return rc;
    if (mem.calls == 0) {
        out->error = unknown;
        return PROVIDER_REFUSED;
    }
    now(m, &mem, out);
    return 0;
}

static int
sandbox_payment_fetch(struct req *r, const char *reference, const struct provider_money *m,
                      struct provider_result *out)
{
    return fetch(r, reference, m, "PAY", payment_now, "sandbox: unknown payment", out);
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
    if (use_db) {
        struct dbq *q = dbq_new(&r->db, "DELETE FROM sandbox_webhooks WHERE reference = ?"
                                        " AND sent_at IS NULL");
        dbq_str(q, reference);
        static const char *const cancelled[] = {"CANCELLED", NULL};
        if (dbq_exec(q) == DB_OK)
            enqueue(r, m, reference, cancelled);
        else
            db_uow_reset(&r->db);
    }
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
    if (mem.elapsed_ms < step_ms) {
        static const char *const bounced[] = {"BOUNCED", NULL};
        static const char *const settled[] = {"REFUND_SETTLED", NULL};
        enqueue(r, m, out->reference, ends_in(m->amount, 77) ? bounced : settled);
    }
    return 0;
}

static int
sandbox_refund_fetch(struct req *r, const char *reference, const struct provider_money *m,
                     struct provider_result *out)
{
    return fetch(r, reference, m, "RF", refund_now, "sandbox: unknown refund", out);
}

/* ---- delivery of the outbox ------------------------------------------------ */

/* POST of one signed event to base_url's webhook endpoint through the one
 * HTTP client (app/http.c); the status code, or -1 when no answer came. */
static int
post_event(struct arena *a, const char *path, const char *sig, const char *body, size_t n)
{
    const struct http_header h[] = {{"Content-Type", "application/json"},
                                    {"Webhook-Signature", sig}};
    struct http_call c = {
        .method = "POST", .url = arena_printf(a, "%s%s", base_url, path),
        .headers = h, .nheaders = sizeof(h) / sizeof(h[0]), .body = body, .body_len = n,
        .ca_file = ca_file, .connect_timeout_ms = 3000, .timeout_ms = 5000,
    };
    return http_do(a, &c) == 0 ? (int)c.status : -1;
}

static const char *deliver_only; /* FIND_IN_SET list of customers, or NULL */

void
provider_sandbox_deliver_only(const char *customers)
{
    deliver_only = customers;
}

int
provider_sandbox_deliver(struct req *r, int max)
{
    if (!use_db)
        return 0;
    struct db_uow *u = &r->db;
    struct out {
        int64_t     id, provider;
        const char *reference, *status;
    };
    struct out *due = arena_alloc(r->arena, (size_t)max * sizeof(*due));
    int         n = 0;
    /* Claim: a short transaction marks them sent (a sender killed after
     * this loses them: the collector's reconciliation covers that). */
    enum db_rc rc = db_tx_begin(u);
    struct dbq *q = NULL;
    if (rc == DB_OK) {
        q = dbq_new(u, "SELECT w.id, w.provider_id, w.reference, w.status FROM sandbox_webhooks w"
                       " WHERE w.sent_at IS NULL AND w.due_at <= UTC_TIMESTAMP(6)"
                       " AND (? IS NULL OR EXISTS (SELECT 1 FROM attempts t WHERE"
                       " t.provider_reference = w.reference AND FIND_IN_SET(t.customer_id, ?)))"
                       " ORDER BY w.due_at, w.id LIMIT ? FOR UPDATE SKIP LOCKED");
        dbq_str(q, deliver_only);
        dbq_str(q, deliver_only);
        dbq_i64(q, max);
        rc = dbq_exec(q);
    }
    while (rc == DB_OK && (rc = dbq_fetch(q)) == DB_OK && n < max) {
        /* Column text lives in the statement's buffers: copied per row. */
        due[n] = (struct out){dbq_col_i64(q, 0), dbq_col_i64(q, 1),
                              arena_strdup(r->arena, dbq_col_str(q, 2)),
                              arena_strdup(r->arena, dbq_col_str(q, 3))};
        n++;
    }
    if (rc == DB_NOT_FOUND)
        rc = DB_OK;
    for (int i = 0; rc == DB_OK && i < n; i++) {
        q = dbq_new(u, "UPDATE sandbox_webhooks SET sent_at = UTC_TIMESTAMP(6),"
                       " tries = tries + 1 WHERE id = ?");
        dbq_i64(q, due[i].id);
        rc = dbq_exec(q);
    }
    if (rc == DB_OK)
        rc = db_tx_commit(u);
    db_uow_reset(u);
    if (rc != DB_OK)
        return 0;
    int sent = 0;
    for (int i = 0; i < n; i++) {
        const char *body = arena_printf(r->arena,
            "{\"events\":[{\"id\":\"%s:%s\",\"reference\":\"%s\",\"status\":\"%s\"}]}",
            due[i].reference, due[i].status, due[i].reference, due[i].status);
        const char *key = webhooks_provider_key(r->arena, due[i].provider);
        if (key == NULL)
            continue;
        long long   t = (long long)time(NULL);
        const char *signed_part = arena_printf(r->arena, "%lld.%s", t, body);
        const char *sig = arena_printf(r->arena, "t=%lld,v1=%s", t,
                                       token_hmac_sha256_hex(r->arena, key, strlen(key),
                                                             signed_part, strlen(signed_part)));
        int status = post_event(r->arena, arena_printf(r->arena, "/webhooks/%" PRId64,
                                                       due[i].provider), sig, body, strlen(body));
        if (status >= 200 && status < 300) {
            sent++;
            continue;
        }
        /* Not delivered: again in a second, up to 10 tries. */
        log_warn("sandbox", "webhook %s:%s not delivered (%d)", due[i].reference,
                 due[i].status, status);
        q = dbq_new(u, "UPDATE sandbox_webhooks SET sent_at = IF(tries >= 10, sent_at, NULL),"
                       " due_at = UTC_TIMESTAMP(6) + INTERVAL 1 SECOND WHERE id = ?");
        dbq_i64(q, due[i].id);
        if (dbq_exec(q) != DB_OK)
            db_uow_reset(u);
    }
    return sent;
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
    NULL, /* webhooks: the sandbox's own scheme (webhooks.c) */
    NULL, /* payment links: submitted by the engine */
    NULL,
    NULL,
};

const struct provider_adapter *
provider_sandbox_adapter(void)
{
    return &sandbox;
}
