/*
 * Idempotency keys of provider calls (handlers/api.c provider_call_key) and
 * the sandbox adapter's answers to them (handlers/provider_sandbox.c): a
 * key is the same for every run of one operation and different for
 * different operations, and the sandbox, like a provider honouring
 * idempotency keys, gives the same reference for the same key. Also: the
 * SQL list of integrated methods matches payment_method_integrated.
 */
#include "test.h"

#include <string.h>

#include "api.h"
#include "arena.h"
#include "provider.h"
#include "req.h"
#include "router.h"
#include "token.h"

static struct arena *A;

static void
new_req(struct req *r, const char *sub, const char *idem)
{
    req_init(r, A);
    r->principal.sub = sub;
    r->idempotency_key = idem;
}

static const char *
hex_of(const char *s)
{
    return token_sha256_hex(A, s, strlen(s));
}

static void
test_keys(void)
{
    struct req r, r2;

    /* A page's token: the key depends on the token alone. */
    new_req(&r, "alice", "k1");
    CHECK_STR(provider_call_key(&r, "link-payment", "tok123"),
              arena_printf(A, "pay-api-link-payment-%s", hex_of("tok123")),
              "capability key");
    new_req(&r2, NULL, NULL);
    CHECK_STR(provider_call_key(&r2, "link-payment", "tok123"),
              provider_call_key(&r, "link-payment", "tok123"),
              "capability key: the same for another press of the button");
    CHECK(strcmp(provider_call_key(&r, "mandate", "tok123"),
                 provider_call_key(&r, "mandate-payment", "tok123")) != 0,
          "two calls of one page have different keys");

    /* The client's Idempotency-Key, scoped by the caller's sub, with the
     * request body (a key reused for another body is another operation). */
    new_req(&r, "alice", "k1");
    new_req(&r2, "alice", "k1");
    r.body = r2.body = "{\"amountInMajorCurrency\":5}";
    r.body_len = r2.body_len = strlen(r.body);
    const char *k = provider_call_key(&r, "refund", NULL);
    CHECK_STR(k, arena_printf(A, "pay-api-refund-%s",
                              hex_of(arena_printf(A, "alice\nk1\n%s", hex_of(r.body)))),
              "Idempotency-Key key");
    CHECK_STR(provider_call_key(&r2, "refund", NULL), k,
              "the same for a retry of the request with the key");
    r2.body = "{\"amountInMajorCurrency\":6}";
    CHECK(strcmp(provider_call_key(&r2, "refund", NULL), k) != 0,
          "the same Idempotency-Key with another body gives another key");
    new_req(&r2, "bob", "k1");
    CHECK(strcmp(provider_call_key(&r2, "refund", NULL), k) != 0,
          "another caller's same Idempotency-Key gives another key");
    new_req(&r2, "alice", "k2");
    CHECK(strcmp(provider_call_key(&r2, "refund", NULL), k) != 0,
          "another Idempotency-Key gives another key");

    /* Neither: random, made once per request. */
    new_req(&r, "alice", NULL);
    new_req(&r2, "alice", NULL);
    k = provider_call_key(&r, "refund", NULL);
    CHECK(strncmp(k, "pay-api-refund-", 15) == 0 && strlen(k) == 15 + 64,
          "random key shape: %s", k);
    CHECK_STR(provider_call_key(&r, "refund", NULL), k,
              "the same for a re-run of the handler in one request");
    CHECK(strcmp(provider_call_key(&r2, "refund", NULL), k) != 0,
          "another request without a key gets another key");
}

static void
test_sandbox(void)
{
    struct req r;
    new_req(&r, "alice", NULL);
    const struct provider_adapter *p = provider_adapter("GO_CARDLESS");
    struct provider_money  m1 = {1050, "GBP", "x", "pay-api-refund-a", 0, NULL, NULL};
    struct provider_money  m2 = {1050, "GBP", "x", "pay-api-refund-b", 0, NULL, NULL};
    struct provider_result a = {0}, b = {0}, c = {0};

    CHECK(p->refund_submit(&r, &m1, &a) == 0 && p->refund_submit(&r, &m1, &b) == 0 &&
              p->refund_submit(&r, &m2, &c) == 0,
          "sandbox refunds succeed");
    CHECK_STR(a.status, "REFUND_SETTLED", "sandbox refund status");
    CHECK(a.reference && strncmp(a.reference, "SBX-RF-", 7) == 0 &&
              strlen(a.reference) == 7 + 16,
          "sandbox refund reference shape: %s", a.reference);
    CHECK_STR(b.reference, a.reference, "same key, same refund reference");
    CHECK(c.reference && strcmp(c.reference, a.reference) != 0,
          "another key, another refund reference");

    struct provider_result d = {0}, e = {0};
    CHECK(p->payment_submit(&r, &m1, &d) == 0 && p->payment_submit(&r, &m1, &e) == 0,
          "sandbox payments succeed");
    /* Stateless (no database): every reference is at the end of its
     * timeline. */
    CHECK_STR(d.status, "PAID_OUT", "sandbox payment status at the end of its timeline");
    CHECK_STR(e.reference, d.reference, "same key, same payment reference");
    CHECK(d.reference && strncmp(d.reference, "SBX-PAY-", 8) == 0 &&
              strcmp(d.reference + 8, a.reference + 7) != 0,
          "a payment and a refund with one key have different references");

    struct mandate_details md = {"Ann Lee", "123456", "12345678", "STRIPE",
                                 "pay-api-mandate-x", NULL, NULL};
    struct provider_result f = {0}, g = {0};
    CHECK(p->mandate_complete(&r, &md, &f) == 0 && p->mandate_complete(&r, &md, &g) == 0,
          "sandbox mandates succeed");
    CHECK_STR(g.reference, f.reference, "same key, same mandate reference");
    CHECK_STR(g.customer_reference, f.customer_reference,
              "same key, same Stripe customer reference");
    CHECK(f.customer_reference && strncmp(f.customer_reference, "SBX-CUS-", 8) == 0,
          "Stripe mandate has a customer reference: %s", f.customer_reference);
}

/* INTEGRATED_METHODS_SQL lists exactly the methods payment_method_integrated
 * accepts. */
static void
test_integrated_sql(void)
{
    size_t n = 0;
    for (size_t i = 0; PAYMENT_METHODS[i] != NULL; i++) {
        const char *quoted = arena_printf(A, "'%s'", PAYMENT_METHODS[i]);
        int         listed = strstr(INTEGRATED_METHODS_SQL, quoted) != NULL;
        CHECK(listed == payment_method_integrated(PAYMENT_METHODS[i]),
              "%s: in INTEGRATED_METHODS_SQL %d, integrated %d", PAYMENT_METHODS[i],
              listed, payment_method_integrated(PAYMENT_METHODS[i]));
        n += listed;
    }
    size_t quotes = 0;
    for (const char *c = INTEGRATED_METHODS_SQL; *c; c++)
        quotes += *c == '\'';
    CHECK(n > 0 && quotes == 2 * n, "the SQL list names only payment methods (%zu, %zu quotes)",
          n, quotes);
}

int
main(void)
{
    A = arena_create(1024);
    test_keys();
    test_sandbox();
    test_integrated_sql();
    arena_destroy(A);
    return TEST_DONE();
}
