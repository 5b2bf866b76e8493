/* Stripe's wire formats (see stripe_wire.h). */
#include "stripe_wire.h"

#include <stdlib.h>
#include <string.h>

#include "token.h"

#define STRIPE_MAX_V1 8

int
stripe_signature_check(struct arena *a, const char *header, const char *secret,
                       const char *body, size_t n, long long now, long tolerance,
                       const char **why)
{
    const char *v1[STRIPE_MAX_V1];
    int         nv1 = 0, have_t = 0;
    long long   t = 0;
    if (secret == NULL || *secret == '\0') {
        *why = "no webhook secret is configured";
        return -1;
    }
    if (header == NULL || *header == '\0' || strlen(header) > 2048) {
        *why = "missing or malformed Stripe-Signature";
        return -1;
    }
    /* Items "key=value" separated by commas. */
    for (const char *p = header; *p;) {
        size_t      len = strcspn(p, ",");
        const char *eq = memchr(p, '=', len);
        if (eq != NULL) {
            size_t      klen = (size_t)(eq - p), vlen = len - klen - 1;
            const char *v = eq + 1;
            if (klen == 1 && *p == 't') {
                if (have_t || vlen == 0 || vlen > 12 ||
                    strspn(v, "0123456789") != vlen) {
                    *why = "missing or malformed Stripe-Signature";
                    return -1;
                }
                t = strtoll(v, NULL, 10);
                have_t = 1;
            } else if (klen == 2 && strncmp(p, "v1", 2) == 0 && nv1 < STRIPE_MAX_V1) {
                v1[nv1++] = arena_strndup(a, v, vlen);
            }
        }
        p += len;
        if (*p == ',')
            p++;
    }
    if (!have_t) {
        *why = "Stripe-Signature has no timestamp";
        return -1;
    }
    if (nv1 == 0) {
        *why = "Stripe-Signature has no v1 signature";
        return -1;
    }
    struct abuf signed_part;
    abuf_init(&signed_part, a);
    abuf_printf(&signed_part, "%lld.", t);
    abuf_add(&signed_part, body ? body : "", n);
    const char *want = token_hmac_sha256_hex(a, secret, strlen(secret), signed_part.p,
                                             signed_part.len);
    int ok = 0;
    for (int i = 0; i < nv1; i++) /* every one compared: no early exit */
        ok |= token_equal(want, v1[i]);
    if (!ok) {
        *why = "no Stripe-Signature v1 signature matches";
        return -1;
    }
    if (now - t > tolerance || t - now > tolerance) {
        *why = "the Stripe-Signature timestamp is outside the tolerance";
        return -1;
    }
    return 0;
}

static void
form_escape(struct abuf *b, const char *s, int brackets)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~' ||
            (brackets && (c == '[' || c == ']'))) {
            abuf_add(b, p, 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            abuf_add(b, e, 3);
        }
    }
}

void
stripe_form_add(struct abuf *b, const char *key, const char *value)
{
    if (b->len > 0)
        abuf_adds(b, "&");
    form_escape(b, key, 1);
    abuf_adds(b, "=");
    form_escape(b, value ? value : "", 0);
}

static const char *
str_member(const struct json_value *o, const char *key)
{
    const struct json_value *v = o ? json_get(o, key) : NULL;
    return v != NULL && v->type == JSON_STRING ? v->str : NULL;
}

static int
eq(const char *a, const char *b)
{
    return a != NULL && strcmp(a, b) == 0;
}

int
stripe_classify(struct arena *a, long status, const char *body, const char *should_retry,
                const char **what)
{
    *what = NULL;
    if (status >= 200 && status < 300)
        return 0;
    const char *type = NULL, *code = NULL, *msg = NULL;
    struct json_value *doc = NULL;
    const char        *err;
    if (body != NULL && *body &&
        json_parse(a, body, strlen(body), &doc, &err) == 0 && doc->type == JSON_OBJECT) {
        const struct json_value *e = json_get(doc, "error");
        if (e != NULL && e->type == JSON_OBJECT) {
            type = str_member(e, "type");
            code = str_member(e, "code");
            msg = str_member(e, "message");
        }
    }
    if (status == 0)
        *what = "no answer from Stripe";
    else
        *what = arena_printf(a, "stripe %ld %s%s%s: %.160s", status, type ? type : "error",
                             code ? "/" : "", code ? code : "", msg ? msg : "");
    if (eq(should_retry, "true"))
        return 1;
    if (eq(should_retry, "false"))
        return 2;
    if (status == 0 || status == 409 || status == 429 || status >= 500)
        return 1;
    if (eq(type, "rate_limit_error") || eq(type, "api_error") || eq(code, "rate_limit") ||
        eq(code, "lock_timeout") || eq(code, "idempotency_key_in_use"))
        return 1;
    return 2; /* invalid_request_error, card_error, idempotency_error, auth... */
}

const char *
stripe_payment_intent_status(const struct json_value *pi, int *more)
{
    const char *s = str_member(pi, "status");
    *more = 1;
    if (eq(s, "requires_payment_method")) {
        const struct json_value *e = json_get(pi, "last_payment_error");
        if (e != NULL && e->type == JSON_OBJECT) {
            *more = 0;
            return eq(str_member(e, "code"), "authentication_required")
                       ? "CUSTOMER_APPROVAL_MISSING" : "FAILED";
        }
        return "CREATED";
    }
    if (eq(s, "requires_confirmation"))
        return "CREATED";
    if (eq(s, "requires_action"))
        return "PENDING_CUSTOMER_APPROVAL";
    if (eq(s, "processing") || eq(s, "requires_capture"))
        return "SUBMITTED";
    *more = 0;
    if (eq(s, "succeeded"))
        return "CONFIRMED";
    if (eq(s, "canceled"))
        return "CANCELLED";
    return NULL;
}

const char *
stripe_session_status(const struct json_value *cs, int *more)
{
    const char *s = str_member(cs, "status"), *paid = str_member(cs, "payment_status");
    *more = 1;
    if (eq(s, "open"))
        return "PENDING_CUSTOMER_APPROVAL";
    if (eq(s, "complete")) {
        if (eq(paid, "paid")) {
            *more = 0;
            return "CONFIRMED";
        }
        return "CUSTOMER_APPROVAL_GRANTED"; /* a delayed debit, still processing */
    }
    *more = 0;
    if (eq(s, "expired"))
        return "CANCELLED";
    return NULL;
}

const char *
stripe_refund_status(const struct json_value *re, int *more)
{
    const char *s = str_member(re, "status"), *why = str_member(re, "pending_reason");
    *more = 1;
    if (eq(s, "pending"))
        return eq(why, "charge_pending") || eq(why, "insufficient_funds")
                   ? "PENDING_SUBMISSION" : "SUBMITTED";
    if (eq(s, "requires_action"))
        return "PENDING_SUBMISSION";
    *more = 0;
    if (eq(s, "succeeded"))
        return "PAID";
    if (eq(s, "canceled"))
        return "CANCELLED";
    if (eq(s, "failed")) {
        const struct json_value *fbt = json_get(re, "failure_balance_transaction");
        return fbt != NULL && fbt->type == JSON_STRING ? "FUNDS_RETURNED" : "BOUNCED";
    }
    return NULL;
}

/* A Mandate's status in ours (README table). */
const char *
stripe_mandate_status(const struct json_value *md)
{
    const char              *s = str_member(md, "status");
    const struct json_value *d = md ? json_get(md, "payment_method_details") : NULL;
    const struct json_value *bacs =
        d != NULL && d->type == JSON_OBJECT ? json_get(d, "bacs_debit") : NULL;
    const char *net = str_member(bacs, "network_status");
    if (s == NULL)
        return NULL;
    if (eq(s, "active"))
        return "ACTIVE";
    if (eq(s, "pending"))
        return "SUBMITTED";
    if (eq(net, "refused"))
        return "FAILED";
    if (eq(net, "revoked"))
        return "CANCELLED";
    return "INACTIVE";
}

int
stripe_event_map(const struct json_value *event, struct stripe_mapped *out)
{
    memset(out, 0, sizeof(*out));
    const char              *type = str_member(event, "type");
    const struct json_value *data = event ? json_get(event, "data") : NULL;
    const struct json_value *obj = data ? json_get(data, "object") : NULL;
    if (type == NULL || obj == NULL || obj->type != JSON_OBJECT ||
        str_member(event, "id") == NULL)
        return -1;
    int more;
    if (strncmp(type, "checkout.session.", 17) == 0) {
        if (!eq(str_member(obj, "mode"), "payment"))
            return 0; /* setup mode: the mandate is fetched, no attempt moves */
        out->kind = 1;
        out->reference = str_member(obj, "id");
        if (eq(type, "checkout.session.completed"))
            out->status = stripe_session_status(obj, &more);
        else if (eq(type, "checkout.session.async_payment_succeeded"))
            out->status = "CONFIRMED";
        else if (eq(type, "checkout.session.async_payment_failed"))
            out->status = "FAILED";
        else if (eq(type, "checkout.session.expired"))
            out->status = "CANCELLED";
    } else if (strncmp(type, "payment_intent.", 15) == 0) {
        out->kind = 1;
        out->reference = str_member(obj, "id");
        if (eq(type, "payment_intent.processing"))
            out->status = "SUBMITTED";
        else if (eq(type, "payment_intent.succeeded"))
            out->status = "CONFIRMED";
        else if (eq(type, "payment_intent.requires_action"))
            out->status = "PENDING_CUSTOMER_APPROVAL";
        else if (eq(type, "payment_intent.canceled"))
            out->status = "CANCELLED";
        else if (eq(type, "payment_intent.payment_failed")) {
            const struct json_value *e = json_get(obj, "last_payment_error");
            out->status = e != NULL && eq(str_member(e, "code"), "authentication_required")
                              ? "CUSTOMER_APPROVAL_MISSING" : "FAILED";
        }
    } else if (strncmp(type, "charge.dispute.", 15) == 0) {
        const char *st = str_member(obj, "status");
        if (st != NULL && strncmp(st, "warning_", 8) == 0 && !eq(type, "charge.dispute.closed"))
            return 0; /* an inquiry: no money has moved */
        out->kind = 1;
        out->reference = str_member(obj, "payment_intent");
        if (eq(type, "charge.dispute.created") || eq(type, "charge.dispute.funds_withdrawn"))
            out->status = "CHARGED_BACK";
        else if (eq(type, "charge.dispute.funds_reinstated"))
            out->status = "CHARGEBACK_CANCELLED";
        else if (eq(type, "charge.dispute.closed"))
            out->status = eq(st, "lost") ? "CHARGEBACK_SETTLED"
                        : eq(st, "won") || eq(st, "warning_closed") || eq(st, "prevented")
                            ? "CHARGEBACK_CANCELLED" : NULL;
    } else if (eq(type, "mandate.updated")) {
        out->kind = 3;
        out->reference = str_member(obj, "id");
        out->status = stripe_mandate_status(obj);
    } else if (strncmp(type, "refund.", 7) == 0 || eq(type, "charge.refund.updated")) {
        out->kind = 2;
        out->reference = str_member(obj, "id");
        out->status = stripe_refund_status(obj, &more);
    }
    if (out->status == NULL || out->reference == NULL)
        out->kind = 0; /* informational (charge.*, customer.*, ...) */
    return 0;
}
