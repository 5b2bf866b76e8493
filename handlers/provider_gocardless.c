/*
 * The GoCardless adapter (API version 2015-07-06), used for the payment
 * methods GO_CARDLESS and GC_INSTANT_BANK_PAYMENTS when
 * gocardless_credentials is configured (provider.h).
 *
 *   mandate_flow_start  POST /billing_requests (a mandate request, our flow
 *                       tagged in its metadata), then POST
 *                       /billing_request_flows: the customer enters bank
 *                       details on GoCardless's hosted page
 *                       (authorisation_url), which sends the browser back to
 *                       /mandate/{token}?billing_request=BRQ… (redirect_uri)
 *                       or /mandate/{token}?exit=1 (exit_uri); that page
 *                       then sends it on to the site mandate's returnURL or
 *                       exitURL.
 *   mandate_complete    GET the billing request (it must carry our flow's
 *                       tag and be fulfilled), its mandate and bank account.
 *   mandate_fetch       GET /mandates/{id}.
 *   payment_submit      POST /payments on the mandate with Idempotency-Key;
 *                       a 409 idempotent_creation_conflict is the payment the
 *                       key made before: fetched, and answered as the create.
 *   payment_fetch       GET /payments/{id};  payment_cancel: its cancel action.
 *   refund_submit       POST /refunds of the collected payment (GoCardless
 *                       refunds one payment), total_amount_confirmation from
 *                       a fresh GET of it; same conflict rule.
 *   refund_fetch        GET /refunds/{id}.
 *   payment_checkout    (GC_INSTANT_BANK_PAYMENTS) a payment link paid on
 *                       GoCardless's hosted page: POST /billing_requests
 *                       with a payment_request (amount, currency,
 *                       description; our key in its metadata, which
 *                       GoCardless applies to the payment it makes) and
 *                       Idempotency-Key = the attempt's key, then POST
 *                       /billing_request_flows (redirect_uri /pay/{token},
 *                       exit_uri /pay/{token}?exit=BRQ…). The attempt follows
 *                       the billing request (BRQ…): payment_fetch reads it
 *                       and, once fulfilled, its payment
 *                       (links.payment_request_payment); payment_cancel
 *                       cancels it; the payment's events are mapped to it
 *                       by the key in their resource_metadata.
 *   webhook_parse       Webhook-Signature: hex HMAC-SHA256(webhook_secret,
 *                       raw body), compared in constant time before parsing;
 *                       {"events":[…]} mapped by resource_type and action
 *                       (the table in the README).
 * Errors ({"error":{"type","code","message","request_id","errors":[…]}}):
 * no answer, 5xx, 429 (Retry-After / RateLimit-Reset honoured) and 409 other
 * than a creation conflict are PROVIDER_RETRY; other 4xx PROVIDER_REFUSED.
 * The access token travels only in the Authorization header, never logged.
 */
#include "provider.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "html.h"
#include "http.h"
#include "json.h"
#include "log.h"
#include "token.h"

#define GC_VERSION  "2015-07-06"
#define GC_LIVE     "https://api.gocardless.com"
#define GC_SANDBOX  "https://api-sandbox.gocardless.com"
#define GC_PAY_LIVE    "https://pay.gocardless.com"
#define GC_PAY_SANDBOX "https://pay-sandbox.gocardless.com"
#define GC_TIMEOUT_MS 15000
#define GC_MAX_EVENTS 500
#define GC_CONFLICT 3 /* internal: idempotent_creation_conflict */

static const struct provider_credentials *
creds(void)
{
    return provider_credentials("gocardless");
}

static const char *
base_url(void)
{
    const struct provider_credentials *c = creds();
    if (c->base_url != NULL)
        return c->base_url;
    return strcmp(c->environment, "live") == 0 ? GC_LIVE : GC_SANDBOX;
}

/* ---- status tables ----------------------------------------------------------- */

struct map {
    const char *gc, *ours;
};

/* Payment statuses (GET /payments) and payment event actions. */
static const struct map PAYMENT_STATUS[] = {
    {"pending_customer_approval", "PENDING_CUSTOMER_APPROVAL"},
    {"pending_submission", "PENDING_SUBMISSION"},
    {"submitted", "SUBMITTED"},
    {"confirmed", "CONFIRMED"},
    {"paid_out", "PAID_OUT"},
    {"cancelled", "CANCELLED"},
    {"customer_approval_denied", "CUSTOMER_APPROVAL_DENIED"},
    {"failed", "FAILED"},
    {"charged_back", "CHARGED_BACK"},
    {NULL, NULL},
};
static const struct map PAYMENT_ACTION[] = {
    {"created", "CREATED"},
    {"customer_approval_granted", "CUSTOMER_APPROVAL_GRANTED"},
    {"customer_approval_denied", "CUSTOMER_APPROVAL_DENIED"},
    {"submitted", "SUBMITTED"},
    {"confirmed", "CONFIRMED"},
    {"paid_out", "PAID_OUT"},
    {"cancelled", "CANCELLED"},
    {"failed", "FAILED"}, /* FAILED_RETRYING when details.will_attempt_retry */
    {"charged_back", "CHARGED_BACK"},
    {"chargeback_cancelled", "CHARGEBACK_CANCELLED"},
    {"late_failure_settled", "LATE_FAILURE_SETTLED"},
    {"chargeback_settled", "CHARGEBACK_SETTLED"},
    {"resubmission_requested", "RESUBMISSION_REQUESTED"},
    {"surcharge_fee_debited", "SURCHARGE_FEE_DEBITED"},
    {"surcharge_fee_credited", "SURCHARGE_FEE_CREDITED"},
    {NULL, NULL},
};
/* Refund statuses and refund event actions. */
static const struct map REFUND_STATUS[] = {
    {"created", "CREATED"},
    {"pending_submission", "PENDING_SUBMISSION"},
    {"submitted", "SUBMITTED"},
    {"paid", "PAID"},
    {"cancelled", "CANCELLED"},
    {"bounced", "BOUNCED"},
    {"funds_returned", "FUNDS_RETURNED"},
    {NULL, NULL},
};
static const struct map REFUND_ACTION[] = {
    {"created", "CREATED"},
    {"paid", "PAID"},
    {"refund_settled", "REFUND_SETTLED"},
    {"failed", "BOUNCED"},
    {"funds_returned", "FUNDS_RETURNED"},
    {NULL, NULL},
};
/* Mandate statuses and mandate event actions. */
static const struct map MANDATE_STATUS[] = {
    {"pending_customer_approval", "CREATED"},
    {"pending_submission", "PENDING_SUBMISSION"},
    {"submitted", "SUBMITTED"},
    {"active", "ACTIVE"},
    {"failed", "FAILED"},
    {"cancelled", "CANCELLED"},
    {"expired", "EXPIRED"},
    {"consumed", "INACTIVE"},
    {"blocked", "INACTIVE"},
    {"suspended_by_payer", "INACTIVE"},
    {NULL, NULL},
};
static const struct map MANDATE_ACTION[] = {
    {"created", "CREATED"},
    {"customer_approval_granted", "CUSTOMER_APPROVAL_GRANTED"},
    {"customer_approval_skipped", "CUSTOMER_APPROVAL_SKIPPED"},
    {"submitted", "SUBMITTED"},
    {"active", "ACTIVE"},
    {"reinstated", "REINSTATED"},
    {"failed", "FAILED"},
    {"cancelled", "CANCELLED"},
    {"expired", "EXPIRED"},
    {"replaced", "CANCELLED"}, /* the old mandate ends (links.new_mandate) */
    {NULL, NULL},
};

static const char *
map_of(const struct map *m, const char *gc)
{
    for (; gc != NULL && m->gc != NULL; m++)
        if (strcmp(m->gc, gc) == 0)
            return m->ours;
    return NULL;
}

/* ---- calls --------------------------------------------------------------------- */

static const char *
str_of(const struct json_value *v, const char *key)
{
    const struct json_value *s = json_get(v, key);
    return s != NULL && s->type == JSON_STRING ? s->str : NULL;
}

static int64_t
int_of(const struct json_value *v, const char *key, int *ok)
{
    const struct json_value *n = json_get(v, key);
    if (n == NULL || (n->type != JSON_NUMBER && n->type != JSON_STRING) || n->len == 0 ||
        n->len > 18 || strspn(n->str, "0123456789") != n->len) {
        *ok = 0;
        return 0;
    }
    return strtoll(n->str, NULL, 10);
}

struct gc_answer {
    struct json_value *body;        /* the resource under its plural key (2xx) */
    const char        *conflict_id; /* GC_CONFLICT: the resource the key made */
};

/*
 * One API call. 0 with ans->body = the object under `key`; GC_CONFLICT with
 * ans->conflict_id; PROVIDER_RETRY / PROVIDER_REFUSED with out->error (the
 * status, type, reason, message and request id; never a header value).
 */
static int
gc_call(struct req *r, const char *method, const char *path, const char *body,
        const char *idem, const char *key, struct gc_answer *ans, struct provider_result *out)
{
    const struct provider_credentials *c = creds();
    struct http_header h[6];
    size_t             nh = 0;
    h[nh++] = (struct http_header){"Authorization",
                                   arena_printf(r->arena, "Bearer %s", c->api_key)};
    h[nh++] = (struct http_header){"GoCardless-Version", GC_VERSION};
    h[nh++] = (struct http_header){"Accept", "application/json"};
    if (body != NULL)
        h[nh++] = (struct http_header){"Content-Type", "application/json"};
    if (idem != NULL)
        h[nh++] = (struct http_header){"Idempotency-Key", idem};
    struct http_call call = {
        .method = method, .url = arena_printf(r->arena, "%s%s", base_url(), path),
        .headers = h, .nheaders = nh, .body = body, .body_len = body ? strlen(body) : 0,
        .ca_file = c->ca_file, .connect_timeout_ms = 5000, .timeout_ms = GC_TIMEOUT_MS,
        .request_id_header = "X-Request-Id",
    };
    ans->body = NULL;
    ans->conflict_id = NULL;
    if (http_do(r->arena, &call) != 0) {
        out->error = arena_printf(r->arena, "gocardless: %s %s: no answer (%s)", method, path,
                                  call.error ? call.error : "network error");
        return PROVIDER_RETRY;
    }
    struct json_value *doc = NULL;
    const char        *err = NULL;
    int parsed = call.resp_len > 0 &&
                 json_parse(r->arena, call.resp, call.resp_len, &doc, &err) == 0 &&
                 doc->type == JSON_OBJECT;
    if (call.status >= 200 && call.status < 300) {
        struct json_value *res = parsed ? json_get(doc, key) : NULL;
        if (res == NULL || res->type != JSON_OBJECT || str_of(res, "id") == NULL) {
            out->error = arena_printf(r->arena, "gocardless: %s %s: %ld without a %s resource"
                                      " (request id %s)", method, path, call.status, key,
                                      call.request_id ? call.request_id : "-");
            return PROVIDER_RETRY; /* what the official clients retry too */
        }
        ans->body = res;
        return 0;
    }
    /* The error envelope; "error" may also be a bare string. */
    const struct json_value *e = parsed ? json_get(doc, "error") : NULL;
    const char *type = NULL, *reason = NULL, *message = NULL, *rid = call.request_id;
    if (e != NULL && e->type == JSON_OBJECT) {
        type = str_of(e, "type");
        message = str_of(e, "message");
        if (str_of(e, "request_id") != NULL)
            rid = str_of(e, "request_id");
        const struct json_value *errs = json_get(e, "errors");
        if (errs != NULL && errs->type == JSON_ARRAY && errs->n > 0) {
            reason = str_of(errs->items[0], "reason");
            const struct json_value *links = json_get(errs->items[0], "links");
            if (reason != NULL && strcmp(reason, "idempotent_creation_conflict") == 0 &&
                links != NULL)
                ans->conflict_id = str_of(links, "conflicting_resource_id");
        }
    } else if (e != NULL && e->type == JSON_STRING) {
        message = e->str;
    }
    out->error = arena_printf(r->arena, "gocardless: %s %s: %ld %s/%s: %.200s (request id %s)",
                              method, path, call.status, type ? type : "-",
                              reason ? reason : "-", message ? message : "no message",
                              rid ? rid : "-");
    log_warn("gocardless", "%s", out->error);
    if (call.status == 409 && reason != NULL &&
        strcmp(reason, "idempotent_creation_conflict") == 0) {
        if (ans->conflict_id != NULL)
            return GC_CONFLICT;
        return PROVIDER_RETRY; /* malformed: asked again later */
    }
    out->retry_after_ms = call.retry_after_ms;
    return http_class(&call) == 1 ? PROVIDER_RETRY : PROVIDER_REFUSED;
}

/* A JSON body built with json_gen. */
struct body {
    struct abuf      b;
    struct json_gen *g;
};

static void
body_print(void *ctx, const char *s, size_t n)
{
    abuf_add(ctx, s, n);
}

static struct json_gen *
body_begin(struct req *r, struct body *b, const char *envelope)
{
    abuf_init(&b->b, r->arena);
    b->g = json_gen_new(r->arena, body_print, &b->b);
    json_map_open(b->g);
    json_key(b->g, envelope);
    json_map_open(b->g);
    return b->g;
}

static const char *
body_end(struct body *b)
{
    json_map_close(b->g);
    json_map_close(b->g);
    return abuf_str(&b->b);
}

/* A path segment from an id the provider gave: letters and digits only. */
static int
id_ok(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    return n > 0 && n <= 64 &&
           strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

static int
fetch(struct req *r, const char *plural, const char *id, struct gc_answer *ans,
      struct provider_result *out)
{
    if (!id_ok(id)) {
        out->error = arena_printf(r->arena, "gocardless: not a %s id", plural);
        return PROVIDER_REFUSED;
    }
    int rc = gc_call(r, "GET", arena_printf(r->arena, "/%s/%s", plural, id), NULL, NULL,
                     plural, ans, out);
    return rc == GC_CONFLICT ? PROVIDER_RETRY : rc;
}

/* A create; a conflict answers with the resource its key made first. */
static int
create(struct req *r, const char *plural, const char *body, const char *idem,
       struct gc_answer *ans, struct provider_result *out)
{
    int rc = gc_call(r, "POST", arena_printf(r->arena, "/%s", plural), body, idem, plural, ans,
                     out);
    if (rc == GC_CONFLICT) {
        log_info("gocardless", "%s: the idempotency key made %s before: fetched", plural,
                 ans->conflict_id);
        out->error = NULL;
        rc = fetch(r, plural, ans->conflict_id, ans, out);
    }
    return rc;
}

/* ---- payments and refunds ------------------------------------------------------- */

static int is_billing_request(const char *ref);
static int billing_request_result(struct req *r, const struct json_value *br,
                                  struct provider_result *out);

static int
payment_result(struct req *r, const struct json_value *p, struct provider_result *out)
{
    const char *st = str_of(p, "status");
    out->reference = str_of(p, "id");
    out->status = map_of(PAYMENT_STATUS, st);
    if (out->status == NULL) {
        out->error = arena_printf(r->arena, "gocardless: payment status %.40s unknown",
                                  st ? st : "(none)");
        return PROVIDER_RETRY;
    }
    out->more = strcmp(out->status, "PAID_OUT") != 0 && strcmp(out->status, "FAILED") != 0 &&
                strcmp(out->status, "CANCELLED") != 0 &&
                strcmp(out->status, "CUSTOMER_APPROVAL_DENIED") != 0 &&
                strcmp(out->status, "CHARGED_BACK") != 0;
    return 0;
}

static int
refund_result(struct req *r, const struct json_value *f, struct provider_result *out)
{
    const char *st = str_of(f, "status");
    out->reference = str_of(f, "id");
    out->status = map_of(REFUND_STATUS, st);
    if (out->status == NULL) {
        out->error = arena_printf(r->arena, "gocardless: refund status %.40s unknown",
                                  st ? st : "(none)");
        return PROVIDER_RETRY;
    }
    out->more = strcmp(out->status, "PAID") != 0 && strcmp(out->status, "CANCELLED") != 0 &&
                strcmp(out->status, "BOUNCED") != 0 &&
                strcmp(out->status, "FUNDS_RETURNED") != 0;
    return 0;
}

/* Our idempotency key in metadata (at most 3 keys, values up to 500). */
static void
metadata(struct json_gen *g, const struct provider_money *m)
{
    json_key(g, "metadata");
    json_map_open(g);
    json_key(g, "pay_api_key");
    json_str(g, m->idempotency_key);
    json_map_close(g);
}

/* What a payment (or a billing request's payment_request) is: amount,
 * currency, description, our key in metadata. */
static void
payment_fields(struct json_gen *g, const struct provider_money *m)
{
    json_key(g, "amount");
    json_i64(g, m->amount);
    json_key(g, "currency");
    json_str(g, m->currency_code);
    if (m->description != NULL && *m->description) {
        json_key(g, "description");
        json_str(g, m->description);
    }
    metadata(g, m);
}

static int
gc_payment_submit(struct req *r, const struct provider_money *m, struct provider_result *out)
{
    if (m->mandate_reference == NULL || !id_ok(m->mandate_reference)) {
        out->error = "gocardless: a payment needs the customer's GoCardless mandate";
        return PROVIDER_REFUSED;
    }
    struct body      b;
    struct json_gen *g = body_begin(r, &b, "payments");
    payment_fields(g, m);
    json_key(g, "links");
    json_map_open(g);
    json_key(g, "mandate");
    json_str(g, m->mandate_reference);
    json_map_close(g);
    struct gc_answer ans;
    int rc = create(r, "payments", body_end(&b), m->idempotency_key, &ans, out);
    return rc != 0 ? rc : payment_result(r, ans.body, out);
}

static int
gc_payment_fetch(struct req *r, const char *reference, const struct provider_money *m,
                 struct provider_result *out)
{
    (void)m;
    struct gc_answer ans;
    if (is_billing_request(reference)) {
        /* The request exists (GoCardless named it): a refusal to read it
         * (credentials, permissions) says nothing of the payment, which the
         * payer may have made; failing the attempt would let the link be
         * paid twice. Asked again later. */
        int rc = fetch(r, "billing_requests", reference, &ans, out);
        if (rc == PROVIDER_REFUSED && id_ok(reference)) {
            log_warn("gocardless", "billing request %s: the read refused, asked again later",
                     reference);
            return PROVIDER_RETRY;
        }
        return rc != 0 ? rc : billing_request_result(r, ans.body, out);
    }
    int rc = fetch(r, "payments", reference, &ans, out);
    return rc != 0 ? rc : payment_result(r, ans.body, out);
}

static int
gc_payment_cancel(struct req *r, const char *reference, const struct provider_money *m,
                  struct provider_result *out)
{
    (void)m;
    out->reference = reference;
    if (!id_ok(reference)) {
        out->error = "gocardless: not a payment id";
        return PROVIDER_REFUSED;
    }
    struct gc_answer ans;
    const char *plural = is_billing_request(reference) ? "billing_requests" : "payments";
    int rc = gc_call(r, "POST", arena_printf(r->arena, "/%s/%s/actions/cancel", plural, reference),
                     "{\"data\":{}}", NULL, plural, &ans, out);
    if (rc == GC_CONFLICT)
        rc = PROVIDER_RETRY;
    if (rc != 0)
        return rc;
    return is_billing_request(reference) ? billing_request_result(r, ans.body, out)
                                         : payment_result(r, ans.body, out);
}

static int
gc_refund_submit(struct req *r, const struct provider_money *m, struct provider_result *out)
{
    if (m->payment_reference == NULL) {
        out->error = "gocardless: no collected GoCardless payment of this customer to refund";
        return PROVIDER_REFUSED;
    }
    /* An instant bank payment's attempt holds its billing request: the
     * payment is the one the request made. */
    const char      *pm = m->payment_reference;
    struct gc_answer ans;
    int              rc, ok = 1;
    if (is_billing_request(pm)) {
        if ((rc = fetch(r, "billing_requests", pm, &ans, out)) != 0)
            return rc;
        const struct json_value *links = json_get(ans.body, "links");
        pm = links ? str_of(links, "payment_request_payment") : NULL;
        if (pm == NULL) {
            out->error = "gocardless: the billing request made no payment to refund";
            return PROVIDER_REFUSED;
        }
    }
    /* The payment as it is now: what was refunded of it already. */
    if ((rc = fetch(r, "payments", pm, &ans, out)) != 0)
        return rc;
    int64_t amount = int_of(ans.body, "amount", &ok),
            refunded = json_get(ans.body, "amount_refunded") ? int_of(ans.body,
                                                                      "amount_refunded", &ok)
                                                             : 0;
    if (!ok) {
        out->error = "gocardless: the payment's amounts are unreadable";
        return PROVIDER_RETRY;
    }
    struct body      b;
    struct json_gen *g = body_begin(r, &b, "refunds");
    json_key(g, "amount");
    json_i64(g, m->amount);
    json_key(g, "total_amount_confirmation");
    json_i64(g, refunded + m->amount);
    metadata(g, m);
    json_key(g, "links");
    json_map_open(g);
    json_key(g, "payment");
    json_str(g, pm);
    json_map_close(g);
    const char *body = body_end(&b);
    if (refunded + m->amount > amount)
        log_info("gocardless", "refund of %s over what is left of it: the provider decides"
                 " (a repeated call answers the refund its key made)", pm);
    rc = create(r, "refunds", body, m->idempotency_key, &ans, out);
    return rc != 0 ? rc : refund_result(r, ans.body, out);
}

static int
gc_refund_fetch(struct req *r, const char *reference, const struct provider_money *m,
                struct provider_result *out)
{
    (void)m;
    struct gc_answer ans;
    int rc = fetch(r, "refunds", reference, &ans, out);
    return rc != 0 ? rc : refund_result(r, ans.body, out);
}

/* ---- mandates ------------------------------------------------------------------- */

static int
mandate_result(struct req *r, const struct json_value *md, struct provider_result *out)
{
    const char *st = str_of(md, "status");
    out->reference = str_of(md, "id");
    out->status = map_of(MANDATE_STATUS, st);
    if (out->status == NULL) {
        out->error = arena_printf(r->arena, "gocardless: mandate status %.40s unknown",
                                  st ? st : "(none)");
        return PROVIDER_RETRY;
    }
    return 0;
}

static int
gc_mandate_fetch(struct req *r, const char *reference, struct provider_result *out)
{
    struct gc_answer ans;
    int rc = fetch(r, "mandates", reference, &ans, out);
    return rc != 0 ? rc : mandate_result(r, ans.body, out);
}

/* The tag of a flow in its billing request's metadata: never the token. */
static const char *
flow_tag(struct req *r, const char *tok)
{
    const char *basis = arena_printf(r->arena, "gocardless flow\n%s", tok);
    return token_sha256_hex(r->arena, basis, strlen(basis));
}

/* A Billing Request Flow (GoCardless's hosted page) of billing request
 * brq: its authorisation_url, or NULL with out->error. Created without an
 * Idempotency-Key: GoCardless has no read of a flow to answer a key's
 * conflict with, and a flow is cheap, moves no money and another one of
 * the same request is as good (a lost answer or a second press makes a
 * new one). */
static const char *
flow_create(struct req *r, const char *brq, const char *redirect_uri, const char *exit_uri,
            struct provider_result *out)
{
    struct body      b;
    struct json_gen *g = body_begin(r, &b, "billing_request_flows");
    json_key(g, "redirect_uri");
    json_str(g, redirect_uri);
    json_key(g, "exit_uri");
    json_str(g, exit_uri);
    json_key(g, "links");
    json_map_open(g);
    json_key(g, "billing_request");
    json_str(g, brq);
    json_map_close(g);
    struct gc_answer ans;
    if (gc_call(r, "POST", "/billing_request_flows", body_end(&b), NULL,
                "billing_request_flows", &ans, out) != 0)
        return NULL;
    const char *url = str_of(ans.body, "authorisation_url");
    if (url == NULL || (strncmp(url, "https://", 8) != 0)) {
        out->error = "gocardless: a billing request flow without an https authorisation_url";
        log_warn("gocardless", "billing request flow %s without an https authorisation_url",
                 str_of(ans.body, "id") ? str_of(ans.body, "id") : "-");
        return NULL;
    }
    return url;
}

static const char *
gc_flow_start(struct req *r, const char *tok)
{
    struct provider_result out = {0};
    struct body            b;
    struct json_gen       *g = body_begin(r, &b, "billing_requests");
    json_key(g, "mandate_request");
    json_map_open(g);
    json_key(g, "currency");
    json_str(g, "GBP");
    json_map_close(g);
    json_key(g, "metadata");
    json_map_open(g);
    json_key(g, "pay_api_flow");
    json_str(g, flow_tag(r, tok));
    json_map_close(g);
    struct gc_answer ans;
    if (create(r, "billing_requests", body_end(&b), provider_call_key(r, "gc-billing-request", tok),
               &ans, &out) != 0)
        return NULL;
    const char *brq = str_of(ans.body, "id");
    if (!id_ok(brq))
        return NULL;
    const char *page = arena_printf(r->arena, "%s/mandate/%s", provider_public_base_url(), tok);
    return flow_create(r, brq, arena_printf(r->arena, "%s?billing_request=%s", page, brq),
                       arena_printf(r->arena, "%s?exit=1", page), &out);
}

static int
gc_mandate_complete(struct req *r, const struct mandate_details *d, struct provider_result *out)
{
    if (d->flow_token == NULL || d->flow_reference == NULL) {
        out->error = "gocardless: bank details are entered on GoCardless's page";
        return PROVIDER_REFUSED;
    }
    struct gc_answer ans;
    int              rc = fetch(r, "billing_requests", d->flow_reference, &ans, out);
    if (rc != 0)
        return rc;
    const struct json_value *meta = json_get(ans.body, "metadata");
    const char              *tag = meta ? str_of(meta, "pay_api_flow") : NULL;
    if (tag == NULL || !token_equal(tag, flow_tag(r, d->flow_token))) {
        out->error = "gocardless: the billing request is not this flow's";
        return PROVIDER_REFUSED;
    }
    const char *st = str_of(ans.body, "status");
    if (st == NULL || strcmp(st, "fulfilled") != 0) {
        out->error = arena_printf(r->arena, "gocardless: billing request %.20s",
                                  st ? st : "without status");
        return st != NULL && (strcmp(st, "cancelled") == 0 || strcmp(st, "failed") == 0)
                   ? PROVIDER_REFUSED : PROVIDER_RETRY;
    }
    const struct json_value *links = json_get(ans.body, "links");
    const char *md = links ? str_of(links, "mandate_request_mandate") : NULL;
    const char *cu = links ? str_of(links, "customer") : NULL;
    const char *ba = links ? str_of(links, "customer_bank_account") : NULL;
    if ((rc = gc_mandate_fetch(r, md, out)) != 0)
        return rc;
    out->customer_reference = cu;
    struct provider_result bank = {0};
    if (ba != NULL && fetch(r, "customer_bank_accounts", ba, &ans, &bank) == 0) {
        out->account_holder_name = str_of(ans.body, "account_holder_name");
        out->account_number_ending = str_of(ans.body, "account_number_ending");
    }
    return 0;
}


/* ---- instant bank payments ------------------------------------------------------- */

/* An attempt paid on the hosted page follows its billing request. */
static int
is_billing_request(const char *ref)
{
    return ref != NULL && strncmp(ref, "BRQ", 3) == 0;
}

/* The status of an instant bank payment's billing request: waiting for the
 * payer; fulfilled (the payment's own status, fetched); or ended. */
static int
billing_request_result(struct req *r, const struct json_value *br, struct provider_result *out)
{
    const char *st = str_of(br, "status"), *id = str_of(br, "id");
    out->more = 1;
    if (st != NULL && strcmp(st, "pending") == 0)
        out->status = "PENDING_CUSTOMER_APPROVAL";
    else if (st != NULL &&
             (strcmp(st, "ready_to_fulfil") == 0 || strcmp(st, "fulfilling") == 0))
        out->status = "CUSTOMER_APPROVAL_GRANTED"; /* every action done, the bank's too */
    else if (st != NULL && strcmp(st, "fulfilled") == 0) {
        const struct json_value *links = json_get(br, "links");
        const char *pm = links ? str_of(links, "payment_request_payment") : NULL;
        struct gc_answer ans;
        int rc = fetch(r, "payments", pm, &ans, out);
        if (rc == 0)
            rc = payment_result(r, ans.body, out);
        out->reference = id;
        return rc == PROVIDER_REFUSED ? PROVIDER_RETRY : rc; /* it has one */
    } else if (st != NULL && (strcmp(st, "cancelled") == 0 || strcmp(st, "failed") == 0)) {
        out->status = strcmp(st, "failed") == 0 ? "FAILED" : "CANCELLED";
        out->more = 0;
    } else {
        out->error = arena_printf(r->arena, "gocardless: billing request status %.40s unknown",
                                  st ? st : "(none)");
        return PROVIDER_RETRY;
    }
    out->reference = id;
    return 0;
}

static int
gc_checkout(struct req *r, const char *type, const struct provider_money *m,
            const char *return_url, struct provider_result *out, const char **url)
{
    (void)type;
    struct body      b;
    struct json_gen *g = body_begin(r, &b, "billing_requests");
    json_key(g, "payment_request");
    json_map_open(g);
    payment_fields(g, m); /* the metadata: applied to the payment made when fulfilled */
    json_map_close(g);
    metadata(g, m);
    struct gc_answer ans;
    int rc = create(r, "billing_requests", body_end(&b), m->idempotency_key, &ans, out);
    if (rc != 0)
        return rc;
    const char *brq = str_of(ans.body, "id");
    if (!id_ok(brq) || (rc = billing_request_result(r, ans.body, out)) != 0)
        return rc != 0 ? rc : PROVIDER_RETRY;
    if (strcmp(out->status, "PENDING_CUSTOMER_APPROVAL") != 0) {
        out->error = arena_printf(r->arena, "gocardless: billing request %s is no longer"
                                  " payable", brq);
        return PROVIDER_REFUSED;
    }
    *url = flow_create(r, brq, return_url, arena_printf(r->arena, "%s?exit=%s", return_url, brq),
                       out);
    out->reference = brq;
    return *url != NULL ? 0 : PROVIDER_RETRY;
}

/* The hosted page again (a new flow) while the request waits for the payer. */
static const char *
gc_checkout_url(struct req *r, const char *reference, const char *return_url)
{
    struct provider_result out = {0};
    struct gc_answer       ans;
    if (!is_billing_request(reference) ||
        fetch(r, "billing_requests", reference, &ans, &out) != 0 ||
        billing_request_result(r, ans.body, &out) != 0 ||
        strcmp(out.status, "PENDING_CUSTOMER_APPROVAL") != 0)
        return NULL;
    return flow_create(r, reference, return_url,
                       arena_printf(r->arena, "%s?exit=%s", return_url, reference), &out);
}

static const char *
gc_checkout_origin(struct req *r)
{
    const struct provider_credentials *c = creds();
    if (c->base_url != NULL)
        return html_origin(r->arena, c->base_url);
    return strcmp(c->environment, "live") == 0 ? GC_PAY_LIVE : GC_PAY_SANDBOX;
}

/* The reference an event about payment pm moves: pm itself, unless pm was
 * made by fulfilling an instant bank payment's billing request, whose
 * attempt (of this provider) follows that request. Such a payment carries
 * the key of a link's attempt in its metadata, which the event repeats
 * (resource_metadata); an event without it leaves the attempt to the
 * engine's fetch of the request. NULL when the database cannot say (the
 * webhook is answered 503 and sent again). */
static const char *
payment_event_reference(struct req *r, const char *pm, const struct json_value *e)
{
    const struct json_value *md = json_get(e, "resource_metadata");
    const char *key = md != NULL && md->type == JSON_OBJECT ? str_of(md, "pay_api_key") : NULL;
    const char *pid = req_param(r, 0);
    if (key == NULL || strncmp(key, "pay-api-link-payment-", 21) != 0 || pid == NULL)
        return pm;
    struct dbq *q = dbq_new(&r->db, "SELECT provider_reference FROM attempts"
                                    " WHERE provider_id = ? AND idempotency_key = ?"
                                    " AND provider_reference LIKE 'BRQ%' LIMIT 1");
    dbq_i64(q, strtoll(pid, NULL, 10)); /* /webhooks/{id}, checked by the caller */
    dbq_str(q, key);
    enum db_rc  rc = dbq_one(q);
    const char *brq = rc == DB_OK ? arena_strdup(r->arena, dbq_col_str(q, 0))
                      : rc == DB_NOT_FOUND ? pm : NULL;
    db_uow_reset(&r->db);
    return brq;
}

/* ---- webhooks -------------------------------------------------------------------- */

static int
gc_webhook_parse(struct req *r, struct webhook_event **out, size_t *nout, const char **why)
{
    const char *secret = creds()->webhook_secret;
    const char *sig = req_env(r, "HTTP_WEBHOOK_SIGNATURE");
    if (sig == NULL || strlen(sig) != 64 ||
        strspn(sig, "0123456789abcdefABCDEF") != 64)
        return *why = "missing or malformed Webhook-Signature", 403;
    char lower[65];
    for (int i = 0; i < 65; i++)
        lower[i] = (char)(sig[i] >= 'A' && sig[i] <= 'F' ? sig[i] - 'A' + 'a' : sig[i]);
    const char *want = token_hmac_sha256_hex(r->arena, secret, strlen(secret),
                                             r->body ? r->body : "", r->body_len);
    if (!token_equal(want, lower))
        return *why = "the signature does not match", 403;

    struct json_value *doc = NULL;
    const char        *err = NULL;
    if (r->body_len == 0 || json_parse(r->arena, r->body, r->body_len, &doc, &err) != 0)
        return *why = arena_printf(r->arena, "invalid JSON: %s", err ? err : "empty body"), 400;
    const struct json_value *events = json_get(doc, "events");
    if (events == NULL || events->type != JSON_ARRAY || events->n > GC_MAX_EVENTS)
        return *why = "events must be an array", 400;
    struct webhook_event *ev = arena_alloc(r->arena, (events->n + 1) * sizeof(*ev));
    size_t                n = 0;
    for (size_t i = 0; i < events->n; i++) {
        const struct json_value *e = events->items[i];
        const char *id = str_of(e, "id"), *type = str_of(e, "resource_type"),
                   *action = str_of(e, "action");
        const struct json_value *links = json_get(e, "links");
        if (e->type != JSON_OBJECT || id == NULL || type == NULL || action == NULL ||
            strlen(id) > 128 || *id == '\0')
            return *why = arena_printf(r->arena, "event %zu needs id, resource_type and"
                                       " action", i), 400;
        const char *status = NULL, *ref = NULL;
        if (strcmp(type, "payments") == 0) {
            status = map_of(PAYMENT_ACTION, action);
            ref = links ? str_of(links, "payment") : NULL;
            const struct json_value *details = json_get(e, "details");
            const struct json_value *retry = details ? json_get(details, "will_attempt_retry")
                                                     : NULL;
            if (status != NULL && strcmp(action, "failed") == 0 && retry != NULL &&
                retry->type == JSON_BOOL && retry->boolean)
                status = "FAILED_RETRYING";
            if (status != NULL && ref != NULL &&
                (ref = payment_event_reference(r, ref, e)) == NULL)
                return *why = "the payment's attempt could not be read", 503;
        } else if (strcmp(type, "billing_requests") == 0) {
            /* An instant bank payment's request: failed or cancelled ends
             * its attempt; once fulfilled, its payment's events follow. */
            status = strcmp(action, "failed") == 0      ? "FAILED"
                     : strcmp(action, "cancelled") == 0 ? "CANCELLED" : NULL;
            ref = links ? str_of(links, "billing_request") : NULL;
        } else if (strcmp(type, "refunds") == 0) {
            status = map_of(REFUND_ACTION, action);
            ref = links ? str_of(links, "refund") : NULL;
        } else if (strcmp(type, "mandates") == 0) {
            status = map_of(MANDATE_ACTION, action);
            ref = links ? str_of(links, "mandate") : NULL;
        }
        if (status == NULL)
            continue; /* other billing request actions, payouts…: nothing of ours moves */
        if (ref == NULL || *ref == '\0' || strlen(ref) > 128)
            return *why = arena_printf(r->arena, "event %.128s has no %s link", id, type), 400;
        ev[n++] = (struct webhook_event){id, ref, status};
    }
    *out = ev;
    *nout = n;
    return 0;
}

/* The operations both GoCardless adapters share. */
#define GC_OPS                                                                 \
    "gocardless", gc_flow_start, gc_mandate_complete, gc_mandate_fetch,        \
        gc_payment_submit, gc_refund_submit, gc_payment_fetch, gc_refund_fetch, \
        gc_payment_cancel, gc_webhook_parse

static const struct provider_adapter gocardless = {
    GC_OPS,
    NULL, /* payment links: a Direct Debit payment, submitted by the engine */
    NULL,
    NULL,
};

/* GC_INSTANT_BANK_PAYMENTS: the same, and payment links on the hosted page
 * (invoices are still auto-collected by Direct Debit on the mandate). */
static const struct provider_adapter gocardless_ibp = {
    GC_OPS,
    gc_checkout,
    gc_checkout_url,
    gc_checkout_origin,
};

const struct provider_adapter *
provider_gocardless_adapter(void)
{
    return &gocardless;
}

const struct provider_adapter *
provider_gocardless_ibp_adapter(void)
{
    return &gocardless_ibp;
}
