/*
 * The GoCardless adapter's webhook_parse (handlers/provider_gocardless.c)
 * on the example delivery GoCardless's documentation signs with
 * "test-webhook-secret-1" (two events): the signature is checked over the
 * raw bytes in either hex case, a changed byte, another secret or a
 * malformed header is refused (403) before parsing, and the events come out
 * in our vocabulary; malformed but authentic bodies are 400; events of
 * resources we do not follow are skipped; a billing request (an instant bank
 * payment) that fails or is cancelled ends its attempt.
 */
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arena.h"
#include "api.h"
#include "provider.h"
#include "req.h"
#include "router.h"
#include "token.h"

static const char *signature;

static const char *
env(void *ctx, const char *name)
{
    (void)ctx;
    return strcmp(name, "HTTP_WEBHOOK_SIGNATURE") == 0 ? signature : NULL;
}

static const char EXAMPLE[] =
    "{\"events\":[{\"id\":\"EV0000TEST0001\",\"created_at\":\"2026-12-01T10:15:02.118Z\","
    "\"resource_type\":\"payments\",\"action\":\"confirmed\",\"links\":{\"payment\":"
    "\"PM0000TEST0001\"},\"details\":{\"origin\":\"gocardless\",\"cause\":\"payment_confirmed\","
    "\"description\":\"Payment collected (example text).\"},\"metadata\":{},"
    "\"resource_metadata\":{\"attempt\":\"att_42\"}},{\"id\":\"EV0000TEST0002\",\"created_at\":"
    "\"2026-12-01T10:15:03.554Z\",\"resource_type\":\"mandates\",\"action\":\"cancelled\","
    "\"links\":{\"mandate\":\"MD0000TEST0001\"},\"details\":{\"origin\":\"bank\",\"cause\":"
    "\"bank_account_closed\",\"description\":\"Bank account closed (example text).\","
    "\"scheme\":\"bacs\",\"reason_code\":\"ADDACS-B\"},\"metadata\":{}}],\"meta\":"
    "{\"webhook_id\":\"WB0000TEST0001\"}}";
static const char EXAMPLE_SIG[] =
    "027e97241c2ba94cc3516a577e6b97dfc7bfa931c39711f55ab665f5e132c53c";

static struct arena *A;
static const struct provider_adapter *gc;

static int
parse(const char *body, const char *sig, struct webhook_event **ev, size_t *n, const char **why)
{
    struct req r;
    req_init(&r, A);
    r.src.env = env;
    r.body = body;
    r.body_len = strlen(body);
    signature = sig;
    *ev = NULL;
    *n = 0;
    *why = NULL;
    return gc->webhook_parse(&r, ev, n, why);
}

static const char *
sign(const char *body)
{
    return token_hmac_sha256_hex(A, "test-webhook-secret-1", 21, body, strlen(body));
}

int
main(void)
{
    A = arena_create(1 << 16);
    char dir[] = "/tmp/pay-test-gcwh-XXXXXX", path[128], err[256];
    if (mkdtemp(dir) == NULL)
        return 1;
    snprintf(path, sizeof(path), "%s/gc", dir);
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return 1;
    fputs("api_key = sandbox_x\nwebhook_secret = test-webhook-secret-1\nenvironment = sandbox\n",
          f);
    fclose(f);
    chmod(path, 0600);
    CHECK(provider_credentials_load("gocardless", path, err, sizeof(err)) == 0, "creds (%s)", err);
    unlink(path);
    rmdir(dir);
    gc = provider_adapter("GO_CARDLESS");
    CHECK(gc != provider_sandbox_adapter() && gc->webhook_parse != NULL,
          "with credentials GO_CARDLESS is served by GoCardless");
    const struct provider_adapter *ibp = provider_adapter("GC_INSTANT_BANK_PAYMENTS");
    CHECK(ibp != provider_sandbox_adapter() && ibp->webhook_parse == gc->webhook_parse &&
              ibp->payment_submit == gc->payment_submit,
          "and GC_INSTANT_BANK_PAYMENTS, its invoices collected by Direct Debit the same way");
    CHECK(gc->payment_checkout == NULL && ibp->payment_checkout != NULL &&
              ibp->checkout_url != NULL && ibp->checkout_origin != NULL,
          "payment links: on GoCardless's hosted page for instant bank payments only");
    CHECK(provider_adapter("STRIPE") == provider_sandbox_adapter(), "STRIPE keeps the sandbox");
    if (gc == provider_sandbox_adapter() || gc->webhook_parse == NULL)
        return TEST_DONE();

    CHECK_STR(sign(EXAMPLE), EXAMPLE_SIG, "the documented signature of the example");
    struct webhook_event *ev;
    size_t                n;
    const char           *why;
    CHECK(parse(EXAMPLE, EXAMPLE_SIG, &ev, &n, &why) == 0, "the example is accepted (%s)",
          why ? why : "-");
    CHECK(n == 2, "two events (%zu)", n);
    if (n == 2) {
        CHECK_STR(ev[0].id, "EV0000TEST0001", "event 1 id");
        CHECK_STR(ev[0].reference, "PM0000TEST0001", "event 1 payment");
        CHECK_STR(ev[0].status, "CONFIRMED", "payments.confirmed: CONFIRMED");
        CHECK_STR(ev[1].reference, "MD0000TEST0001", "event 2 mandate");
        CHECK_STR(ev[1].status, "CANCELLED", "mandates.cancelled: CANCELLED");
    }
    char upper[65];
    for (int i = 0; i < 65; i++)
        upper[i] = (char)(EXAMPLE_SIG[i] >= 'a' && EXAMPLE_SIG[i] <= 'f' ? EXAMPLE_SIG[i] - 32
                                                                         : EXAMPLE_SIG[i]);
    CHECK(parse(EXAMPLE, upper, &ev, &n, &why) == 0 && n == 2, "upper-case hex too");

    char *changed = arena_strdup(A, EXAMPLE);
    changed[strlen(changed) - 5] = 'X';
    CHECK(parse(changed, EXAMPLE_SIG, &ev, &n, &why) == 403 && n == 0, "a changed byte: 403");
    char wrong[65];
    memcpy(wrong, EXAMPLE_SIG, 65);
    wrong[63] = wrong[63] == '0' ? '1' : '0';
    CHECK(parse(EXAMPLE, wrong, &ev, &n, &why) == 403, "last hex digit changed: 403");
    CHECK(parse(EXAMPLE, token_hmac_sha256_hex(A, "other", 5, EXAMPLE, strlen(EXAMPLE)), &ev,
                &n, &why) == 403, "another secret: 403");
    CHECK(parse(EXAMPLE, NULL, &ev, &n, &why) == 403, "no header: 403");
    CHECK(parse(EXAMPLE, "sha256=abc", &ev, &n, &why) == 403, "malformed header: 403");
    CHECK(parse(EXAMPLE, "", &ev, &n, &why) == 403 && why != NULL, "empty header: 403, says why");

    const char *notjson = "{\"events\":[";
    CHECK(parse(notjson, sign(notjson), &ev, &n, &why) == 400, "authentic, not JSON: 400");
    const char *noarray = "{\"events\":{}}";
    CHECK(parse(noarray, sign(noarray), &ev, &n, &why) == 400, "events not an array: 400");
    const char *noid = "{\"events\":[{\"resource_type\":\"payments\",\"action\":\"paid_out\","
                       "\"links\":{\"payment\":\"PM1\"}}]}";
    CHECK(parse(noid, sign(noid), &ev, &n, &why) == 400, "an event without id: 400");
    const char *nolink = "{\"events\":[{\"id\":\"EV1\",\"resource_type\":\"payments\","
                         "\"action\":\"paid_out\",\"links\":{}}]}";
    CHECK(parse(nolink, sign(nolink), &ev, &n, &why) == 400, "a payment event without link: 400");

    const char *mixed =
        "{\"events\":["
        "{\"id\":\"EV1\",\"resource_type\":\"payments\",\"action\":\"failed\",\"links\":"
        "{\"payment\":\"PM1\"},\"details\":{\"will_attempt_retry\":true}},"
        "{\"id\":\"EV2\",\"resource_type\":\"payments\",\"action\":\"failed\",\"links\":"
        "{\"payment\":\"PM2\"},\"details\":{\"will_attempt_retry\":false}},"
        "{\"id\":\"EV3\",\"resource_type\":\"payments\",\"action\":\"charged_back\",\"links\":"
        "{\"payment\":\"PM3\"}},"
        "{\"id\":\"EV4\",\"resource_type\":\"billing_requests\",\"action\":\"fulfilled\","
        "\"links\":{\"billing_request\":\"BRQ1\"}},"
        "{\"id\":\"EV5\",\"resource_type\":\"refunds\",\"action\":\"failed\",\"links\":"
        "{\"refund\":\"RF1\"}},"
        "{\"id\":\"EV6\",\"resource_type\":\"refunds\",\"action\":\"refund_settled\",\"links\":"
        "{\"refund\":\"RF2\"}},"
        "{\"id\":\"EV7\",\"resource_type\":\"mandates\",\"action\":\"active\",\"links\":"
        "{\"mandate\":\"MD1\"}},"
        "{\"id\":\"EV8\",\"resource_type\":\"payouts\",\"action\":\"paid\",\"links\":"
        "{\"payout\":\"PO1\"}},"
        "{\"id\":\"EV9\",\"resource_type\":\"payments\",\"action\":\"late_failure_settled\","
        "\"links\":{\"payment\":\"PM4\"}},"
        "{\"id\":\"EV10\",\"resource_type\":\"payments\",\"action\":\"chargeback_cancelled\","
        "\"links\":{\"payment\":\"PM3\"}},"
        "{\"id\":\"EV11\",\"resource_type\":\"billing_requests\",\"action\":\"failed\","
        "\"links\":{\"billing_request\":\"BRQ2\"}},"
        "{\"id\":\"EV12\",\"resource_type\":\"billing_requests\",\"action\":\"cancelled\","
        "\"links\":{\"billing_request\":\"BRQ3\"}},"
        "{\"id\":\"EV13\",\"resource_type\":\"billing_requests\",\"action\":\"flow_exited\","
        "\"links\":{\"billing_request\":\"BRQ3\"}},"
        "{\"id\":\"EV14\",\"resource_type\":\"payments\",\"action\":\"confirmed\","
        "\"links\":{\"payment\":\"PM5\"},\"resource_metadata\":{\"pay_api_key\":\"pay-api-autocollect-1\"}}"
        "]}";
    CHECK(parse(mixed, sign(mixed), &ev, &n, &why) == 0, "a mixed batch (%s)", why ? why : "-");
    static const char *const want[][2] = {
        {"PM1", "FAILED_RETRYING"}, {"PM2", "FAILED"},         {"PM3", "CHARGED_BACK"},
        {"RF1", "BOUNCED"},         {"RF2", "REFUND_SETTLED"}, {"MD1", "ACTIVE"},
        {"PM4", "LATE_FAILURE_SETTLED"}, {"PM3", "CHARGEBACK_CANCELLED"},
        {"BRQ2", "FAILED"},         {"BRQ3", "CANCELLED"},     {"PM5", "CONFIRMED"}};
    CHECK(n == 11, "billing requests' failed / cancelled kept, their other actions and payouts"
          " skipped (%zu left)", n);
    for (size_t i = 0; i < n && i < 11; i++) {
        CHECK_STR(ev[i].reference, want[i][0], "event %zu reference", i);
        CHECK_STR(ev[i].status, want[i][1], "event %zu status", i);
    }
    arena_destroy(A);
    return TEST_DONE();
}
