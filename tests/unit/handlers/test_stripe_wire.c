/*
 * Stripe's wire formats (handlers/stripe_wire.c): the Stripe-Signature
 * check against the worked example that openssl, stripe-python and the
 * stripe npm library agree on, secret rotation (several v1), the
 * tolerance; form encoding as stripe-node sends it; the classification of
 * error answers; the event mapping of the README table.
 */
#include "test.h"

#include <string.h>

#include "arena.h"
#include "json.h"
#include "provider.h"
#include "stripe_wire.h"

static struct arena *A;

#define BODY "{\"id\":\"evt_test_1\",\"object\":\"event\",\"api_version\":\"2026-07-29.dahlia\",\"created\":1767225600,\"data\":{\"object\":{\"id\":\"cs_test_1\",\"object\":\"checkout.session\",\"mode\":\"payment\",\"status\":\"complete\",\"payment_status\":\"paid\",\"client_reference_id\":\"pay_42\",\"payment_intent\":\"pi_test_1\",\"metadata\":{\"payment_id\":\"pay_42\"}}},\"livemode\":false,\"pending_webhooks\":1,\"request\":{\"id\":null,\"idempotency_key\":null},\"type\":\"checkout.session.completed\"}"
#define GOOD "8c86c7785cee2034de603ef362205486f8fbf9988875e2fdee4922593c08ea77"
#define SECRET "whsec_test_secret"
#define T0 1767225600LL

static int
check(const char *header, const char *body, long long now, const char **why)
{
    *why = NULL;
    return stripe_signature_check(A, header, SECRET, body, strlen(body), now,
                                  STRIPE_WEBHOOK_TOLERANCE, why);
}

static void
test_signature(void)
{
    const char *why;
    CHECK(strlen(BODY) == 431, "the example body is 431 bytes (%zu)", strlen(BODY));
    CHECK(check("t=1767225600,v1=" GOOD, BODY, T0, &why) == 0, "the worked example verifies");
    CHECK(check("t=1767225600,v1=" GOOD, BODY, T0 + 300, &why) == 0, "accepted at 300 s");
    CHECK(check("t=1767225600,v1=" GOOD, BODY, T0 + 301, &why) != 0, "refused at 301 s");
    CHECK(why != NULL && strstr(why, "tolerance") != NULL, "stale says so: %s", why);
    CHECK(check("t=1767225600,v1=deadbeef,v1=" GOOD ",v0=abc", BODY, T0, &why) == 0,
          "one good v1 among several (secret rotation), v0 ignored");
    CHECK(check("t=1767225600,v1=" GOOD ",v1=deadbeef", BODY, T0, &why) == 0,
          "the good v1 first works too");
    CHECK(check("t=1767225600,v0=" GOOD, BODY, T0, &why) != 0, "v0 alone is refused");
    CHECK(check("v1=" GOOD, BODY, T0, &why) != 0, "no timestamp: refused");
    CHECK(check("t=1767225601,v1=" GOOD, BODY, T0, &why) != 0, "another t: refused");
    CHECK(check("t=1767225600,v1=" GOOD, BODY " ", T0, &why) != 0, "a changed body: refused");
    CHECK(check("t=1767225600,v1=8C86C7785CEE2034DE603EF362205486F8FBF9988875E2FDEE4922593C08EA77",
                BODY, T0, &why) != 0, "upper-case hex is not Stripe's signature");
    CHECK(check("t=1767225600,v1=" GOOD "00", BODY, T0, &why) != 0, "longer: refused");
    CHECK(check("t=,v1=" GOOD, BODY, T0, &why) != 0, "empty t: refused");
    CHECK(check("t=12a,v1=" GOOD, BODY, T0, &why) != 0, "t not a number: refused");
    CHECK(check("", BODY, T0, &why) != 0 && why != NULL, "empty header: refused");
    CHECK(stripe_signature_check(A, NULL, SECRET, BODY, strlen(BODY), T0, 300, &why) != 0,
          "no header: refused");
    CHECK(stripe_signature_check(A, "t=1767225600,v1=" GOOD, "whsec_other", BODY,
                                 strlen(BODY), T0, 300, &why) != 0, "another secret: refused");
    CHECK(stripe_signature_check(A, "t=1767225600,v1=" GOOD, "", BODY, strlen(BODY), T0, 300,
                                 &why) != 0, "no secret: refused");
}

static void
test_form(void)
{
    struct abuf b;
    abuf_init(&b, A);
    stripe_form_add(&b, "mode", "payment");
    stripe_form_add(&b, "line_items[0][price_data][product_data][name]", "Annual membership");
    stripe_form_add(&b, "success_url",
                    "https://pay.example.org/done?session_id={CHECKOUT_SESSION_ID}");
    stripe_form_add(&b, "customer_email", "ann+x@example.org");
    stripe_form_add(&b, "metadata[note]", "a&b=c*'()!");
    stripe_form_add(&b, "description", "");
    CHECK_STR(abuf_str(&b),
              "mode=payment&line_items[0][price_data][product_data][name]=Annual%20membership"
              "&success_url=https%3A%2F%2Fpay.example.org%2Fdone%3Fsession_id%3D%7BCHECKOUT_"
              "SESSION_ID%7D&customer_email=ann%2Bx%40example.org"
              "&metadata[note]=a%26b%3Dc%2A%27%28%29%21&description=",
              "form encoding as stripe-node's");
}

static void
test_classify(void)
{
    const char *what;
    CHECK(stripe_classify(A, 200, "{}", NULL, &what) == 0 && what == NULL, "200 is success");
    CHECK(stripe_classify(A, 0, NULL, NULL, &what) == 1, "no answer: retry");
    CHECK(stripe_classify(A, 500, "{\"error\":{\"type\":\"api_error\",\"message\":\"x\"}}",
                          NULL, &what) == 1, "500 api_error: retry");
    CHECK(what != NULL && strstr(what, "api_error") != NULL, "what names the type: %s", what);
    CHECK(stripe_classify(A, 429, "{\"error\":{\"type\":\"invalid_request_error\","
                          "\"code\":\"rate_limit\"}}", NULL, &what) == 1, "429: retry");
    CHECK(stripe_classify(A, 400, "{\"error\":{\"type\":\"invalid_request_error\","
                          "\"code\":\"rate_limit\"}}", NULL, &what) == 1,
          "400 with code rate_limit: retry");
    CHECK(stripe_classify(A, 409, "{\"error\":{\"type\":\"idempotency_error\","
                          "\"code\":\"idempotency_key_in_use\"}}", NULL, &what) == 1,
          "409 key in use: retry");
    CHECK(stripe_classify(A, 400, "{\"error\":{\"type\":\"idempotency_error\","
                          "\"message\":\"Keys for idempotent requests can only be used with"
                          " the same parameters\"}}", NULL, &what) == 2,
          "400 idempotency_error (other parameters): refused");
    CHECK(stripe_classify(A, 402, "{\"error\":{\"type\":\"card_error\","
                          "\"code\":\"card_declined\"}}", NULL, &what) == 2, "402: refused");
    CHECK(stripe_classify(A, 404, "{\"error\":{\"type\":\"invalid_request_error\","
                          "\"code\":\"resource_missing\"}}", NULL, &what) == 2, "404: refused");
    CHECK(stripe_classify(A, 401, "not json", NULL, &what) == 2, "401: refused");
    CHECK(stripe_classify(A, 500, "{}", "false", &what) == 2, "Stripe-Should-Retry: false wins");
    CHECK(stripe_classify(A, 400, "{}", "true", &what) == 1, "Stripe-Should-Retry: true wins");
}

static struct stripe_mapped
mapped(const char *json)
{
    struct json_value   *v = NULL;
    const char          *err;
    struct stripe_mapped m = {0};
    CHECK(json_parse(A, json, strlen(json), &v, &err) == 0, "event parses: %s", json);
    CHECK(stripe_event_map(v, &m) == 0, "event maps: %s", json);
    return m;
}

#define EV(type, obj) "{\"id\":\"evt_1\",\"object\":\"event\",\"type\":\"" type "\"," \
                      "\"data\":{\"object\":" obj "}}"

static void
test_events(void)
{
    struct stripe_mapped m;
    struct json_value   *v;
    const char          *err;
    m = mapped(BODY);
    CHECK(m.kind == 1, "checkout completed is about a collection");
    CHECK_STR(m.reference, "cs_test_1", "its reference is the session");
    CHECK_STR(m.status, "CONFIRMED", "paid: CONFIRMED");
    m = mapped(EV("checkout.session.completed", "{\"id\":\"cs_2\",\"mode\":\"payment\","
                  "\"status\":\"complete\",\"payment_status\":\"unpaid\"}"));
    CHECK_STR(m.status, "CUSTOMER_APPROVAL_GRANTED", "unpaid (delayed debit)");
    m = mapped(EV("checkout.session.completed", "{\"id\":\"cs_3\",\"mode\":\"setup\","
                  "\"status\":\"complete\"}"));
    CHECK(m.kind == 0, "setup mode moves no attempt");
    m = mapped(EV("checkout.session.async_payment_failed", "{\"id\":\"cs_2\",\"mode\":\"payment\"}"));
    CHECK_STR(m.status, "FAILED", "async failure");
    m = mapped(EV("checkout.session.expired", "{\"id\":\"cs_2\",\"mode\":\"payment\"}"));
    CHECK_STR(m.status, "CANCELLED", "expired");
    m = mapped(EV("payment_intent.processing", "{\"id\":\"pi_1\",\"status\":\"processing\"}"));
    CHECK(m.kind == 1 && strcmp(m.reference, "pi_1") == 0, "PI events name the PI");
    CHECK_STR(m.status, "SUBMITTED", "processing");
    m = mapped(EV("payment_intent.succeeded", "{\"id\":\"pi_1\"}"));
    CHECK_STR(m.status, "CONFIRMED", "succeeded");
    m = mapped(EV("payment_intent.payment_failed", "{\"id\":\"pi_1\",\"last_payment_error\":"
                  "{\"code\":\"insufficient_funds\"}}"));
    CHECK_STR(m.status, "FAILED", "failed");
    m = mapped(EV("payment_intent.payment_failed", "{\"id\":\"pi_1\",\"last_payment_error\":"
                  "{\"code\":\"authentication_required\"}}"));
    CHECK_STR(m.status, "CUSTOMER_APPROVAL_MISSING", "off-session card needs the customer");
    m = mapped(EV("charge.dispute.created", "{\"id\":\"dp_1\",\"status\":\"needs_response\","
                  "\"payment_intent\":\"pi_1\",\"charge\":\"ch_1\"}"));
    CHECK(m.kind == 1 && strcmp(m.reference, "pi_1") == 0, "a dispute names its PI");
    CHECK_STR(m.status, "CHARGED_BACK", "dispute created: CHARGED_BACK");
    m = mapped(EV("charge.dispute.created", "{\"id\":\"dp_1\",\"status\":\"warning_needs_response\","
                  "\"payment_intent\":\"pi_1\"}"));
    CHECK(m.kind == 0, "an inquiry moves nothing");
    m = mapped(EV("charge.dispute.closed", "{\"id\":\"dp_1\",\"status\":\"lost\","
                  "\"payment_intent\":\"pi_1\"}"));
    CHECK_STR(m.status, "CHARGEBACK_SETTLED", "lost");
    m = mapped(EV("charge.dispute.closed", "{\"id\":\"dp_1\",\"status\":\"won\","
                  "\"payment_intent\":\"pi_1\"}"));
    CHECK_STR(m.status, "CHARGEBACK_CANCELLED", "won");
    m = mapped(EV("refund.updated", "{\"id\":\"re_1\",\"status\":\"succeeded\"}"));
    CHECK(m.kind == 2 && strcmp(m.reference, "re_1") == 0, "refund events name the refund");
    CHECK_STR(m.status, "PAID", "refund succeeded");
    m = mapped(EV("refund.failed", "{\"id\":\"re_1\",\"status\":\"failed\","
                  "\"failure_balance_transaction\":\"txn_1\"}"));
    CHECK_STR(m.status, "FUNDS_RETURNED", "failed, money back in the balance");
    m = mapped(EV("refund.created", "{\"id\":\"re_1\",\"status\":\"pending\","
                  "\"pending_reason\":\"charge_pending\"}"));
    CHECK_STR(m.status, "PENDING_SUBMISSION", "waiting for the charge");
    m = mapped(EV("charge.refunded", "{\"id\":\"ch_1\",\"refunded\":true}"));
    CHECK(m.kind == 0, "charge.refunded is informational (refund.* carry the refund)");
    m = mapped(EV("mandate.updated", "{\"id\":\"mandate_1\",\"status\":\"active\"}"));
    CHECK(m.kind == 3 && strcmp(m.reference, "mandate_1") == 0, "mandate events name it");
    CHECK_STR(m.status, "ACTIVE", "an accepted Bacs mandate");
    m = mapped(EV("mandate.updated", "{\"id\":\"mandate_1\",\"status\":\"pending\"}"));
    CHECK_STR(m.status, "SUBMITTED", "a Bacs mandate waiting for the bank");
    m = mapped(EV("mandate.updated", "{\"id\":\"mandate_1\",\"status\":\"inactive\","
                  "\"payment_method_details\":{\"bacs_debit\":{\"network_status\":"
                  "\"refused\"}}}"));
    CHECK_STR(m.status, "FAILED", "refused by the bank");
    m = mapped(EV("mandate.updated", "{\"id\":\"mandate_1\",\"status\":\"inactive\","
                  "\"payment_method_details\":{\"bacs_debit\":{\"network_status\":"
                  "\"revoked\"}}}"));
    CHECK_STR(m.status, "CANCELLED", "revoked by the customer");
    m = mapped(EV("mandate.updated", "{\"id\":\"mandate_1\",\"status\":\"inactive\"}"));
    CHECK_STR(m.status, "INACTIVE", "inactive otherwise");
    m = mapped(EV("customer.updated", "{\"id\":\"cus_1\"}"));
    CHECK(m.kind == 0, "customer events are informational");
    const char *bad = "{\"id\":\"evt_1\",\"type\":\"payment_intent.succeeded\"}";
    CHECK(json_parse(A, bad, strlen(bad), &v, &err) == 0, "parses");
    CHECK(stripe_event_map(v, &m) == -1, "no data.object: malformed");
}

int
main(void)
{
    A = arena_create(1 << 16);
    test_signature();
    test_form();
    test_classify();
    test_events();
    return TEST_DONE();
}
