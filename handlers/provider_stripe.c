/*
 * The Stripe adapter (STRIPE, STRIPE_CARD, STRIPE_DD), over Stripe's v1
 * REST API (form-encoded requests, JSON answers, Stripe-Version pinned on
 * every call, Bearer secret key; README "Stripe"):
 *   payment links   a Checkout Session in payment mode, opened by the
 *                   payment page (payment_checkout): card or bank
 *                   details are entered on Stripe's hosted page only;
 *   mandates        a Checkout Session in setup mode (Bacs / SEPA) for the
 *                   hosted page; the mandate's status from GET /v1/mandates;
 *   collections     a PaymentIntent confirmed off-session with the
 *                   mandate's PaymentMethod;
 *   refunds         POST /v1/refunds against the PaymentIntent that paid;
 *   cancel          expire the Session / cancel the PaymentIntent;
 *   webhooks        Stripe-Signature over the raw body, events mapped to
 *                   our statuses (stripe_wire.c); disputes are chargebacks;
 *   payouts         payout.paid stored (stripe_payouts), its charges listed
 *                   by the collector (balance transactions of the payout)
 *                   and their attempts moved to PAID_OUT.
 * Every create carries the attempt's idempotency key as Idempotency-Key, so
 * a repeated call (a retry, a collector killed between call and record)
 * gets Stripe's stored first answer instead of a second charge. Nothing
 * here runs inside a database transaction: the few reads it makes are
 * single statements, finished before the call.
 */
#include "provider_stripe.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "api.h"
#include "handlers.h"
#include "html.h"
#include "http.h"
#include "json.h"
#include "log.h"
#include "stripe_wire.h"
#include "token.h"

#define STRIPE_LIVE_URL "https://api.stripe.com"

static const struct provider_credentials *
creds(void)
{
    return provider_credentials("stripe");
}

/* One call. 0 with *doc (the parsed answer), or PROVIDER_RETRY /
 * PROVIDER_REFUSED with out->error (and out->retry_after_ms); *doc is also
 * set for a refused answer with a JSON error body. */
static int
stripe_call(struct req *r, const char *method, const char *path, const char *form,
            const char *idem_key, struct json_value **doc, struct provider_result *out)
{
    const struct provider_credentials *c = creds();
    *doc = NULL;
    if (c == NULL) {
        out->error = "stripe: no credentials configured";
        return PROVIDER_REFUSED;
    }
    struct http_header h[5];
    size_t             nh = 0;
    h[nh++] = (struct http_header){"Authorization",
                                   arena_printf(r->arena, "Bearer %s", c->api_key)};
    h[nh++] = (struct http_header){"Stripe-Version", STRIPE_API_VERSION};
    h[nh++] = (struct http_header){"Accept", "application/json"};
    if (form != NULL)
        h[nh++] = (struct http_header){"Content-Type", "application/x-www-form-urlencoded"};
    if (idem_key != NULL)
        h[nh++] = (struct http_header){"Idempotency-Key", idem_key};
    struct http_call call = {
        .method = method,
        .url = arena_printf(r->arena, "%s%s", c->base_url ? c->base_url : STRIPE_LIVE_URL, path),
        .headers = h, .nheaders = nh, .body = form, .body_len = form ? strlen(form) : 0,
        .ca_file = c->ca_file, .connect_timeout_ms = 5000, .timeout_ms = 20000,
        .request_id_header = "Request-Id",
    };
    http_do(r->arena, &call);
    const char *what = NULL;
    int cls = stripe_classify(r->arena, call.status, call.resp, NULL, &what);
    if (call.status == 0)
        what = arena_printf(r->arena, "stripe: %s", call.error ? call.error : "no answer");
    if (call.status != 0 && call.resp != NULL && call.resp_len > 0) {
        const char *err;
        if (json_parse(r->arena, call.resp, call.resp_len, doc, &err) != 0)
            *doc = NULL;
    }
    if (cls == 0) {
        if (*doc == NULL || (*doc)->type != JSON_OBJECT) {
            out->error = "stripe: unreadable answer";
            return PROVIDER_RETRY;
        }
        return 0;
    }
    out->error = what;
    out->retry_after_ms = call.retry_after_ms;
    log_warn("stripe", "%s %s: %s (request %s)", method, path, what,
             call.request_id ? call.request_id : "-");
    return cls == 1 ? PROVIDER_RETRY : PROVIDER_REFUSED;
}

static const char *
str_of(const struct json_value *o, const char *key)
{
    const struct json_value *v = o != NULL && o->type == JSON_OBJECT ? json_get(o, key) : NULL;
    return v != NULL && v->type == JSON_STRING ? v->str : NULL;
}

/* An id we put into a URL path: Stripe's ids are [A-Za-z0-9_]. */
static int
id_ok(const char *id)
{
    return id != NULL && *id && strlen(id) <= 128 &&
           strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") ==
               strlen(id);
}

static const char *
lower(struct arena *a, const char *s)
{
    char *l = arena_strdup(a, s ? s : "");
    for (char *p = l; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return l;
}

/* The debit scheme of a currency: Bacs for GBP, SEPA for EUR. */
static const char *
debit_type(const char *currency)
{
    return currency != NULL && strcasecmp(currency, "EUR") == 0 ? "sepa_debit" : "bacs_debit";
}

/* ---- payment links: Checkout in payment mode ------------------------------------ */

static int
stripe_checkout(struct req *r, const char *type, const struct provider_money *m,
                const char *return_url, struct provider_result *out, const char **url)
{
    struct abuf f;
    abuf_init(&f, r->arena);
    stripe_form_add(&f, "mode", "payment");
    stripe_form_add(&f, "line_items[0][price_data][currency]", lower(r->arena, m->currency_code));
    stripe_form_add(&f, "line_items[0][price_data][unit_amount]",
                    arena_printf(r->arena, "%" PRId64, m->amount));
    stripe_form_add(&f, "line_items[0][price_data][product_data][name]",
                    m->description && *m->description ? m->description : "Payment");
    stripe_form_add(&f, "line_items[0][quantity]", "1");
    if (strcmp(type, "STRIPE_CARD") == 0)
        stripe_form_add(&f, "payment_method_types[0]", "card");
    else if (strcmp(type, "STRIPE_DD") == 0)
        stripe_form_add(&f, "payment_method_types[0]", debit_type(m->currency_code));
    stripe_form_add(&f, "success_url", return_url);
    stripe_form_add(&f, "cancel_url", return_url);
    stripe_form_add(&f, "client_reference_id", m->idempotency_key);
    stripe_form_add(&f, "metadata[pay_api_key]", m->idempotency_key);
    stripe_form_add(&f, "payment_intent_data[metadata][pay_api_key]", m->idempotency_key);
    struct json_value *cs;
    int rc = stripe_call(r, "POST", "/v1/checkout/sessions", abuf_str(&f), m->idempotency_key,
                         &cs, out);
    if (rc != 0)
        return rc;
    int more;
    out->reference = str_of(cs, "id");
    out->status = stripe_session_status(cs, &more);
    out->more = more;
    *url = str_of(cs, "url");
    if (!id_ok(out->reference) || out->status == NULL || *url == NULL ||
        strncmp(*url, "https://", 8) != 0) {
        out->error = "stripe: the Checkout Session has no id, status or https url";
        return PROVIDER_RETRY;
    }
    return 0;
}

static const char *
stripe_checkout_origin(struct req *r)
{
    const struct provider_credentials *c = creds();
    return c != NULL && c->base_url != NULL ? html_origin(r->arena, c->base_url)
                                            : "https://checkout.stripe.com";
}

static const char *
stripe_checkout_url(struct req *r, const char *reference, const char *return_url)
{
    (void)return_url; /* the Session's own */
    struct provider_result res = {0};
    struct json_value     *cs;
    if (!id_ok(reference) ||
        stripe_call(r, "GET", arena_printf(r->arena, "/v1/checkout/sessions/%s", reference),
                    NULL, NULL, &cs, &res) != 0)
        return NULL;
    const char *url = str_of(cs, "url");
    return strcmp(str_of(cs, "status") ? str_of(cs, "status") : "", "open") == 0 && url &&
                   strncmp(url, "https://", 8) == 0 ? url : NULL;
}

/* ---- mandates: Checkout in setup mode ----------------------------------------------- */

static const char *
stripe_flow_start(struct req *r, const char *flow_token)
{
    struct provider_result res = {0};
    struct json_value     *cus, *cs;
    const char *key = provider_call_key(r, "stripe-customer", flow_token);
    struct abuf f;
    abuf_init(&f, r->arena);
    stripe_form_add(&f, "metadata[pay_api_flow]", key);
    if (stripe_call(r, "POST", "/v1/customers", abuf_str(&f), key, &cus, &res) != 0 ||
        !id_ok(str_of(cus, "id")))
        return NULL;
    const char *back = arena_printf(r->arena, "%s/mandate/%s", provider_public_base_url(),
                                    flow_token);
    abuf_init(&f, r->arena);
    stripe_form_add(&f, "mode", "setup");
    stripe_form_add(&f, "customer", str_of(cus, "id"));
    stripe_form_add(&f, "payment_method_types[0]", "bacs_debit");
    /* Back to the flow's page: done (with the Session, which names the
     * mandate) or left (on to the site's exitURL). */
    stripe_form_add(&f, "success_url",
                    arena_printf(r->arena, "%s?billing_request={CHECKOUT_SESSION_ID}", back));
    stripe_form_add(&f, "cancel_url", arena_printf(r->arena, "%s?exit=1", back));
    stripe_form_add(&f, "setup_intent_data[metadata][pay_api_flow]", key);
    if (stripe_call(r, "POST", "/v1/checkout/sessions", abuf_str(&f),
                    provider_call_key(r, "stripe-setup", flow_token), &cs, &res) != 0)
        return NULL;
    const char *url = str_of(cs, "url");
    return url != NULL && strncmp(url, "https://", 8) == 0 ? url : NULL;
}

static int
stripe_mandate_fetch(struct req *r, const char *reference, struct provider_result *out)
{
    struct json_value *md;
    int                rc;
    if (!id_ok(reference)) {
        out->error = "stripe: not a Stripe mandate id";
        return PROVIDER_REFUSED;
    }
    if ((rc = stripe_call(r, "GET", arena_printf(r->arena, "/v1/mandates/%s", reference), NULL,
                          NULL, &md, out)) != 0)
        return rc;
    out->reference = reference;
    out->status = stripe_mandate_status(md);
    out->more = out->status != NULL && strcmp(out->status, "SUBMITTED") == 0;
    if (out->status == NULL) {
        out->error = "stripe: the mandate has no status";
        return PROVIDER_RETRY;
    }
    return 0;
}

/* The mandate of a completed setup-mode Checkout Session: its id, status,
 * customer, and the account holder's name and account number ending of
 * its PaymentMethod (*holder, *ending; NULL when Stripe gives none). */
static int
mandate_of_session(struct req *r, const char *session, struct provider_result *out,
                   const char **holder, const char **ending)
{
    struct json_value *cs;
    int                rc;
    *holder = *ending = NULL;
    if (!id_ok(session) || strncmp(session, "cs_", 3) != 0) {
        out->error = "stripe: mandates are set up on Stripe's Checkout page";
        return PROVIDER_REFUSED;
    }
    if ((rc = stripe_call(r, "GET",
                          arena_printf(r->arena, "/v1/checkout/sessions/%s"
                                                 "?expand[]=setup_intent.mandate"
                                                 "&expand[]=setup_intent.payment_method",
                                       session),
                          NULL, NULL, &cs, out)) != 0)
        return rc;
    const struct json_value *si = json_get(cs, "setup_intent");
    const struct json_value *md = si && si->type == JSON_OBJECT ? json_get(si, "mandate") : NULL;
    if (md == NULL || md->type != JSON_OBJECT || !id_ok(str_of(md, "id"))) {
        out->error = "stripe: the Checkout Session has no mandate (not completed)";
        return PROVIDER_REFUSED;
    }
    out->reference = str_of(md, "id");
    out->customer_reference = str_of(cs, "customer");
    out->status = stripe_mandate_status(md);
    const struct json_value *pm = json_get(si, "payment_method");
    if (pm != NULL && pm->type == JSON_OBJECT) {
        const struct json_value *bd = json_get(pm, "billing_details");
        const char              *type = str_of(pm, "type");
        *holder = str_of(bd, "name");
        *ending = type ? str_of(json_get(pm, type), "last4") : NULL;
    }
    return out->status ? 0 : PROVIDER_RETRY;
}

/* The customer's bank details are entered on Stripe's page, never here:
 * the flow is completed from the Checkout Session the customer comes back
 * with, named by the return to the flow's page (success_url above; passed
 * in mandate_details.flow_reference here). */
static int
stripe_mandate_complete(struct req *r, const struct mandate_details *d,
                        struct provider_result *out)
{
    const char *holder, *ending;
    int         rc = mandate_of_session(r, d->flow_reference, out, &holder, &ending);
    if (rc == 0) {
        out->account_holder_name = holder;
        out->account_number_ending = ending;
    }
    return rc;
}

/* ---- collections: off-session PaymentIntents ---------------------------------------- */

/* The attempt an idempotency key belongs to: its link (0: none), mandate
 * reference, customer and invoice. -1 when not found. */
struct attempt_ctx {
    int64_t     link_id, customer_id, invoice_id;
    int         invoice_kind;
    const char *mandate;
};

static int
attempt_ctx(struct req *r, const char *key, struct attempt_ctx *x)
{
    memset(x, 0, sizeof(*x));
    struct dbq *q = dbq_new(&r->db,
        "SELECT COALESCE(payment_link_id, 0), mandate_reference, customer_id,"
        " COALESCE(invoice_kind, 0), COALESCE(invoice_id, 0)"
        " FROM attempts WHERE idempotency_key = ?");
    dbq_str(q, key);
    enum db_rc rc = dbq_one(q);
    if (rc == DB_OK) {
        x->link_id = dbq_col_i64(q, 0);
        x->mandate = dbq_col_str(q, 1) ? arena_strdup(r->arena, dbq_col_str(q, 1)) : NULL;
        x->customer_id = dbq_col_i64(q, 2);
        x->invoice_kind = (int)dbq_col_i64(q, 3);
        x->invoice_id = dbq_col_i64(q, 4);
    }
    db_uow_reset(&r->db);
    return rc == DB_OK ? 0 : -1;
}

static void
result_of_pi(const struct json_value *pi, struct provider_result *out)
{
    int more;
    out->reference = str_of(pi, "id");
    out->status = stripe_payment_intent_status(pi, &more);
    out->more = more;
}

static int
stripe_payment_submit(struct req *r, const struct provider_money *m,
                      struct provider_result *out)
{
    struct attempt_ctx x;
    struct json_value *md, *pm, *pi;
    int                rc;
    if (attempt_ctx(r, m->idempotency_key, &x) != 0) {
        out->error = "stripe: no attempt holds this key";
        return PROVIDER_RETRY;
    }
    if (x.link_id != 0) {
        out->error = "stripe: a payment link is paid on Stripe's Checkout page";
        return PROVIDER_REFUSED;
    }
    if (!id_ok(x.mandate)) {
        out->error = "stripe: no Stripe mandate to collect with";
        return PROVIDER_REFUSED;
    }
    /* The mandate names the PaymentMethod; the PaymentMethod its customer. */
    if ((rc = stripe_call(r, "GET", arena_printf(r->arena, "/v1/mandates/%s", x.mandate), NULL,
                          NULL, &md, out)) != 0)
        return rc;
    const char *st = str_of(md, "status"), *pm_id = str_of(md, "payment_method");
    if (st == NULL || strcmp(st, "inactive") == 0 || !id_ok(pm_id)) {
        out->error = "stripe: the mandate is not usable (inactive)";
        return PROVIDER_REFUSED;
    }
    if ((rc = stripe_call(r, "GET", arena_printf(r->arena, "/v1/payment_methods/%s", pm_id),
                          NULL, NULL, &pm, out)) != 0)
        return rc;
    const char *type = str_of(pm, "type"), *customer = str_of(pm, "customer");
    struct abuf f;
    abuf_init(&f, r->arena);
    stripe_form_add(&f, "amount", arena_printf(r->arena, "%" PRId64, m->amount));
    stripe_form_add(&f, "currency", lower(r->arena, m->currency_code));
    if (customer != NULL)
        stripe_form_add(&f, "customer", customer);
    stripe_form_add(&f, "payment_method", pm_id);
    stripe_form_add(&f, "payment_method_types[0]", type ? type : debit_type(m->currency_code));
    if (type == NULL || strcmp(type, "card") != 0)
        stripe_form_add(&f, "mandate", x.mandate);
    stripe_form_add(&f, "off_session", "true");
    stripe_form_add(&f, "confirm", "true");
    if (m->description != NULL && *m->description)
        stripe_form_add(&f, "description", m->description);
    stripe_form_add(&f, "metadata[pay_api_key]", m->idempotency_key);
    rc = stripe_call(r, "POST", "/v1/payment_intents", abuf_str(&f), m->idempotency_key, &pi, out);
    if (rc == PROVIDER_REFUSED && pi != NULL) {
        /* A declined confirmation still created the PaymentIntent: its
         * reference and failed status are the answer. */
        const struct json_value *e = json_get(pi, "error");
        const struct json_value *failed = e && e->type == JSON_OBJECT
                                              ? json_get(e, "payment_intent") : NULL;
        if (failed != NULL && failed->type == JSON_OBJECT && id_ok(str_of(failed, "id"))) {
            result_of_pi(failed, out);
            if (out->status != NULL)
                return 0;
        }
    }
    if (rc != 0)
        return rc;
    result_of_pi(pi, out);
    if (!id_ok(out->reference) || out->status == NULL) {
        out->error = "stripe: the PaymentIntent has no id or known status";
        return PROVIDER_RETRY;
    }
    return 0;
}

static int
stripe_payment_fetch(struct req *r, const char *reference, const struct provider_money *m,
                     struct provider_result *out)
{
    struct json_value *o;
    int                rc, more = 0;
    (void)m;
    out->reference = reference;
    if (!id_ok(reference)) {
        out->error = "stripe: not a Stripe reference";
        return PROVIDER_REFUSED;
    }
    int session = strncmp(reference, "cs_", 3) == 0;
    if ((rc = stripe_call(r, "GET",
                          arena_printf(r->arena, session ? "/v1/checkout/sessions/%s"
                                                         : "/v1/payment_intents/%s", reference),
                          NULL, NULL, &o, out)) != 0)
        return rc;
    out->status = session ? stripe_session_status(o, &more) : stripe_payment_intent_status(o, &more);
    out->more = more;
    if (out->status == NULL) {
        out->error = "stripe: unknown status";
        return PROVIDER_RETRY;
    }
    return 0;
}

static int
stripe_payment_cancel(struct req *r, const char *reference, const struct provider_money *m,
                      struct provider_result *out)
{
    struct json_value *o;
    int                rc, more = 0;
    out->reference = reference;
    if (!id_ok(reference)) {
        out->error = "stripe: not a Stripe reference";
        return PROVIDER_REFUSED;
    }
    int session = strncmp(reference, "cs_", 3) == 0;
    if ((rc = stripe_call(r, "POST",
                          arena_printf(r->arena, session ? "/v1/checkout/sessions/%s/expire"
                                                         : "/v1/payment_intents/%s/cancel",
                                       reference),
                          "", arena_printf(r->arena, "%s-cancel", m->idempotency_key), &o,
                          out)) != 0)
        return rc;
    out->status = session ? stripe_session_status(o, &more) : stripe_payment_intent_status(o, &more);
    out->more = more;
    return out->status ? 0 : PROVIDER_RETRY;
}

/* ---- refunds ---------------------------------------------------------------------------- */

/* The PaymentIntent that paid what the refund gives back: the newest
 * collected attempt through Stripe of the refund's invoice (else of its
 * customer) of at least the amount; a Checkout Session names its PI. */
static const char *
paying_intent(struct req *r, const struct provider_money *m, struct provider_result *out)
{
    struct attempt_ctx x;
    if (attempt_ctx(r, m->idempotency_key, &x) != 0)
        return NULL;
    struct dbq *q = dbq_new(&r->db,
        "SELECT provider_reference FROM attempts WHERE kind = 1 AND customer_id = ?"
        " AND provider_reference IS NOT NULL AND amount >= ? AND status IN"
        " ('CONFIRMED','PAID_OUT','CHARGEBACK_CANCELLED')"
        " AND payment_method IN ('STRIPE','STRIPE_CARD','STRIPE_DD')"
        " ORDER BY (invoice_kind <=> ? AND invoice_id <=> ?) DESC, id DESC LIMIT 1");
    dbq_i64(q, x.customer_id);
    dbq_i64(q, m->amount);
    dbq_i64(q, x.invoice_kind);
    dbq_i64(q, x.invoice_id);
    const char *ref = dbq_one(q) == DB_OK ? arena_strdup(r->arena, dbq_col_str(q, 0)) : NULL;
    db_uow_reset(&r->db);
    if (ref == NULL || !id_ok(ref) || strncmp(ref, "cs_", 3) != 0)
        return ref;
    struct json_value *cs;
    if (stripe_call(r, "GET", arena_printf(r->arena, "/v1/checkout/sessions/%s", ref), NULL,
                    NULL, &cs, out) != 0)
        return NULL;
    return str_of(cs, "payment_intent");
}

static int
stripe_refund_submit(struct req *r, const struct provider_money *m,
                     struct provider_result *out)
{
    struct json_value *re;
    int                rc, more;
    const char        *pi = paying_intent(r, m, out);
    if (pi == NULL || !id_ok(pi)) {
        if (out->error != NULL)
            return PROVIDER_RETRY;
        out->error = "stripe: no payment through Stripe to refund";
        return PROVIDER_REFUSED;
    }
    struct abuf f;
    abuf_init(&f, r->arena);
    stripe_form_add(&f, "payment_intent", pi);
    stripe_form_add(&f, "amount", arena_printf(r->arena, "%" PRId64, m->amount));
    stripe_form_add(&f, "metadata[pay_api_key]", m->idempotency_key);
    if ((rc = stripe_call(r, "POST", "/v1/refunds", abuf_str(&f), m->idempotency_key, &re,
                          out)) != 0)
        return rc;
    out->reference = str_of(re, "id");
    out->status = stripe_refund_status(re, &more);
    out->more = more;
    if (!id_ok(out->reference) || out->status == NULL) {
        out->error = "stripe: the Refund has no id or known status";
        return PROVIDER_RETRY;
    }
    return 0;
}

static int
stripe_refund_fetch(struct req *r, const char *reference, const struct provider_money *m,
                    struct provider_result *out)
{
    struct json_value *re;
    int                rc, more;
    (void)m;
    out->reference = reference;
    if (!id_ok(reference)) {
        out->error = "stripe: not a Stripe refund id";
        return PROVIDER_REFUSED;
    }
    if ((rc = stripe_call(r, "GET", arena_printf(r->arena, "/v1/refunds/%s", reference), NULL,
                          NULL, &re, out)) != 0)
        return rc;
    out->status = stripe_refund_status(re, &more);
    out->more = more;
    return out->status ? 0 : PROVIDER_RETRY;
}

/* ---- webhooks -------------------------------------------------------------------------- */

/* A dispute names the PaymentIntent; a payment link's attempt holds its
 * Checkout Session: the Session of a PaymentIntent no attempt holds, when
 * Stripe has one (else the PaymentIntent, an unknown reference). */
static const char *
checkout_of(struct req *r, const char *pi)
{
    struct dbq *q = dbq_new(&r->db, "SELECT 1 FROM attempts WHERE provider_reference = ?"
                                    " LIMIT 1");
    dbq_str(q, pi);
    enum db_rc rc = dbq_one(q);
    db_uow_reset(&r->db);
    if (rc != DB_NOT_FOUND || !id_ok(pi))
        return pi;
    struct provider_result   res = {0};
    struct json_value       *list;
    if (stripe_call(r, "GET", arena_printf(r->arena, "/v1/checkout/sessions?payment_intent=%s",
                                           pi), NULL, NULL, &list, &res) != 0)
        return pi;
    const struct json_value *data = json_get(list, "data");
    if (data == NULL || data->type != JSON_ARRAY || data->n != 1 ||
        !id_ok(str_of(data->items[0], "id")))
        return pi;
    return str_of(data->items[0], "id");
}

/* ---- payouts ---------------------------------------------------------------------------- */

/* A payout event, in the webhook: stored by one statement, nothing fetched
 * (the collector lists the payout's charges later). payout.paid makes a due
 * row (a repeat changes nothing); payout.failed / payout.canceled make it
 * FAILED unless its charges were already paid out, so nothing is ever paid
 * out from a payout that did not reach the bank. Other payout.* events (and
 * manual payouts, whose charges Stripe does not list) are acknowledged. */
static int
payout_event(struct req *r, const char *type, const struct json_value *po, const char **why)
{
    const char *id = str_of(po, "id");
    if (!id_ok(id) || strncmp(id, "po_", 3) != 0) {
        *why = "a payout event without a payout id";
        return 400;
    }
    int paid = strcmp(type, "payout.paid") == 0;
    int failed = strcmp(type, "payout.failed") == 0 || strcmp(type, "payout.canceled") == 0;
    const struct json_value *automatic = json_get(po, "automatic");
    if (!paid && !failed)
        return 0;
    if (paid && (automatic == NULL || automatic->type != JSON_BOOL || !automatic->boolean)) {
        log_info("stripe", "payout %s is a manual payout: its charges are not listed", id);
        return 0;
    }
    const char *p = req_param(r, 0);
    struct dbq *q = dbq_new(&r->db, paid
        ? "INSERT INTO stripe_payouts (provider_id, payout_id, status, next_action_at)"
          " VALUES (?, ?, 'PAID', UTC_TIMESTAMP(6)) ON DUPLICATE KEY UPDATE payout_id = payout_id"
        : "INSERT INTO stripe_payouts (provider_id, payout_id, status) VALUES (?, ?, 'FAILED')"
          " ON DUPLICATE KEY UPDATE next_action_at = NULL, status = IF(status = 'DONE', 'DONE', 'FAILED')");
    dbq_i64(q, p ? strtoll(p, NULL, 10) : 0);
    dbq_str(q, id);
    enum db_rc rc = dbq_exec(q);
    db_uow_reset(&r->db);
    if (rc != DB_OK) {
        *why = "the payout could not be stored";
        return 503;
    }
    log_info("stripe", "payout %s: %s", id, paid ? "paid, its charges are listed next" : type);
    return 0;
}

/* Sets the payout row's fields after a step (single statements). */
static void
payout_done(struct req *r, int64_t row, const char *status, const char *error, long next_ms)
{
    struct dbq *q = dbq_new(&r->db,
        "UPDATE stripe_payouts SET status = ?, error_info = ?, calls = calls + (? > 0),"
        " next_action_at = IF(? < 0, NULL, UTC_TIMESTAMP(6) + INTERVAL ? * 1000 MICROSECOND)"
        " WHERE id = ?");
    dbq_str(q, status);
    if (error)
        dbq_str(q, arena_printf(r->arena, "%.250s", error));
    else
        dbq_null(q);
    dbq_i64(q, error != NULL && next_ms >= 0);
    dbq_i64(q, next_ms);
    dbq_i64(q, next_ms < 0 ? 0 : next_ms);
    dbq_i64(q, row);
    if (dbq_exec(q) != DB_OK)
        log_warn("stripe", "payout row %" PRId64 ": not updated; tried again after the lease",
                 row);
    db_uow_reset(&r->db);
}

/* The charges of one page of the payout, each charge's attempt moved to
 * PAID_OUT by a stored event "<payout>/<balance transaction>". Returns 0,
 * or -1 (a database error: the page is done again later). */
static int
payout_page(struct req *r, int64_t provider, const char *payout, const struct json_value *data,
            const char **last)
{
    for (size_t i = 0; i < data->n; i++) {
        const struct json_value *bt = data->items[i];
        const char              *txn = str_of(bt, "id");
        const struct json_value *ch = json_get(bt, "source");
        const char              *pi = str_of(ch, "payment_intent");
        if (!id_ok(txn))
            continue;
        *last = txn;
        if (!id_ok(pi) || strcmp(str_of(bt, "type") ? str_of(bt, "type") : "", "charge") != 0)
            continue; /* not a charge of a PaymentIntent: nothing of ours */
        struct webhook_event ev = {arena_printf(r->arena, "%s/%s", payout, txn),
                                   checkout_of(r, pi), "PAID_OUT"};
        const char *outcome = NULL;
        if (strlen(ev.id) > 128 || strlen(ev.reference) > 128)
            continue;
        if (webhooks_apply(r, provider, &ev, &outcome) != DB_OK)
            return -1;
    }
    return 0;
}

int
provider_stripe_payouts(struct req *r, long lease_ms)
{
    if (creds() == NULL)
        return 0;
    struct db_uow *u = &r->db;
    enum db_rc     rc = db_tx_begin(u);
    struct dbq    *q = NULL;
    if (rc == DB_OK) {
        q = dbq_new(u, "SELECT id, provider_id, payout_id, starting_after, calls FROM stripe_payouts"
                       " WHERE status = 'PAID' AND next_action_at <= UTC_TIMESTAMP(6)"
                       " ORDER BY next_action_at LIMIT 1 FOR UPDATE SKIP LOCKED");
        rc = dbq_one(q);
    }
    if (rc != DB_OK) {
        db_uow_reset(u);
        return rc == DB_NOT_FOUND ? 0 : -1;
    }
    int64_t     row = dbq_col_i64(q, 0), provider = dbq_col_i64(q, 1);
    const char *payout = arena_strdup(r->arena, dbq_col_str(q, 2));
    const char *after = dbq_col_str(q, 3) ? arena_strdup(r->arena, dbq_col_str(q, 3)) : NULL;
    int         calls = (int)dbq_col_i64(q, 4);
    q = dbq_new(u, "UPDATE stripe_payouts SET next_action_at = UTC_TIMESTAMP(6)"
                   " + INTERVAL ? * 1000 MICROSECOND WHERE id = ?");
    dbq_i64(q, lease_ms);
    dbq_i64(q, row);
    if ((rc = dbq_exec(q)) != DB_OK || (rc = db_tx_commit(u)) != DB_OK) {
        db_uow_reset(u);
        return -1;
    }
    db_uow_reset(u); /* nothing open while Stripe is on the line */

    long                   retry = calls >= 16 ? 3600000L : 1000L << (calls < 12 ? calls : 12);
    struct provider_result res = {0};
    struct json_value     *po, *list;
    int prc = id_ok(payout) ? stripe_call(r, "GET", arena_printf(r->arena, "/v1/payouts/%s",
                                                                 payout), NULL, NULL, &po, &res)
                            : PROVIDER_REFUSED;
    const char *st = prc == 0 ? str_of(po, "status") : NULL;
    if (prc != 0 || st == NULL || strcmp(st, "paid") != 0) {
        /* A payout that failed after all (or was cancelled) pays nothing out. */
        int gone = prc == PROVIDER_REFUSED || (st && (strcmp(st, "failed") == 0 ||
                                                      strcmp(st, "canceled") == 0));
        payout_done(r, row, gone ? "FAILED" : "PAID",
                    res.error ? res.error : arena_printf(r->arena, "the payout is %s",
                                                         st ? st : "unknown"),
                    gone ? -1 : retry);
        return 1;
    }
    for (;;) {
        struct abuf path;
        abuf_init(&path, r->arena);
        abuf_printf(&path, "/v1/balance_transactions?payout=%s&type=charge&limit=100"
                           "&expand%%5B%%5D=data.source", payout);
        if (after != NULL && id_ok(after))
            abuf_printf(&path, "&starting_after=%s", after);
        if ((prc = stripe_call(r, "GET", abuf_str(&path), NULL, NULL, &list, &res)) != 0) {
            payout_done(r, row, prc == PROVIDER_REFUSED ? "FAILED" : "PAID", res.error,
                        prc == PROVIDER_REFUSED ? -1 : retry);
            return 1;
        }
        const struct json_value *data = json_get(list, "data"), *more = json_get(list, "has_more");
        const char              *last = after;
        if (data == NULL || data->type != JSON_ARRAY) {
            payout_done(r, row, "PAID", "stripe: the balance transactions are no list", retry);
            return 1;
        }
        if (payout_page(r, provider, payout, data, &last) != 0)
            return -1; /* the lease ends; the page is done again (events are stored once) */
        int go_on = more != NULL && more->type == JSON_BOOL && more->boolean && data->n > 0 &&
                    last != after;
        q = dbq_new(u, "UPDATE stripe_payouts SET starting_after = ?, calls = 0,"
                       " error_info = NULL, status = ?, next_action_at = IF(? , UTC_TIMESTAMP(6)"
                       " + INTERVAL ? * 1000 MICROSECOND, NULL) WHERE id = ?");
        dbq_str(q, last);
        dbq_str(q, go_on ? "PAID" : "DONE");
        dbq_i64(q, go_on);
        dbq_i64(q, lease_ms);
        dbq_i64(q, row);
        rc = dbq_exec(q);
        db_uow_reset(u);
        if (rc != DB_OK)
            return -1;
        if (!go_on)
            break;
        after = last;
    }
    log_info("stripe", "payout %s: its charges are PAID_OUT", payout);
    return 1;
}

static int
stripe_webhook_parse(struct req *r, struct webhook_event **ev, size_t *n, const char **why)
{
    const struct provider_credentials *c = creds();
    *ev = NULL;
    *n = 0;
    if (c == NULL || c->webhook_secret == NULL) {
        *why = "no Stripe webhook secret is configured";
        return 403;
    }
    if (stripe_signature_check(r->arena, req_env(r, "HTTP_STRIPE_SIGNATURE"), c->webhook_secret,
                               r->body, r->body_len, (long long)time(NULL),
                               STRIPE_WEBHOOK_TOLERANCE, why) != 0)
        return 403;
    struct json_value *doc = NULL;
    const char        *err = NULL;
    if (r->body_len == 0 || json_parse(r->arena, r->body, r->body_len, &doc, &err) != 0) {
        *why = arena_printf(r->arena, "invalid JSON: %s", err ? err : "empty body");
        return 400;
    }
    struct stripe_mapped m;
    const char          *id = str_of(doc, "id");
    if (doc->type != JSON_OBJECT || stripe_event_map(doc, &m) != 0 || id == NULL ||
        strlen(id) > 128) {
        *why = "not a Stripe event (id, type, data.object)";
        return 400;
    }
    const char *type = str_of(doc, "type");
    int         payout = strncmp(type, "payout.", 7) == 0;
    if (m.kind == 0 && !payout)
        return 0; /* informational: acknowledged, nothing to move */
    const struct json_value *live = json_get(doc, "livemode");
    int want_live = c->environment != NULL && strcmp(c->environment, "live") == 0;
    if (live == NULL || live->type != JSON_BOOL || live->boolean != want_live) {
        /* An event of the other mode (test vs live): acknowledged, never applied. */
        log_warn("stripe", "event %.128s: livemode does not match environment %s; ignored", id,
                 c->environment ? c->environment : "-");
        return 0;
    }
    if (payout)
        return payout_event(r, type, json_get(json_get(doc, "data"), "object"), why);
    if (strlen(m.reference) > 128) {
        *why = "the event's object id is too long";
        return 400;
    }
    if (strncmp(m.reference, "pi_", 3) == 0)
        m.reference = checkout_of(r, m.reference);
    *ev = arena_alloc(r->arena, sizeof(**ev));
    **ev = (struct webhook_event){id, m.reference, m.status};
    *n = 1;
    return 0;
}

static const struct provider_adapter stripe = {
    "stripe",
    stripe_flow_start,
    stripe_mandate_complete,
    stripe_mandate_fetch,
    stripe_payment_submit,
    stripe_refund_submit,
    stripe_payment_fetch,
    stripe_refund_fetch,
    stripe_payment_cancel,
    stripe_webhook_parse,
    stripe_checkout,
    stripe_checkout_url,
    stripe_checkout_origin,
};

const struct provider_adapter *
provider_stripe_adapter(void)
{
    return &stripe;
}
