"""Collection engine benchmark (COLLECTION.md 4-5), next to tests/bench/run.sh.

Against a running stack (PAY_STACK_ENV, collectors = 0; the e2e stack or
tests/stack.sh with default settings):
  1. engine throughput: N integrated refunds (attempts due at once) of one
     customer, then `pay-api attempts run --until-idle --customers C` in one
     process (one collector): attempts submitted and settled per second; the
     sandbox's timeline step (sandbox_step_ms, 50 ms on the test stack) and
     reconcile_ms (2 steps) bound how fast one attempt settles, so this is
     the engine's rate with many attempts in flight, not one attempt's latency.
  2. collection throughput: N invoices, each with a FAILED GO_CARDLESS event
     and an invoice-payment-reprocess (set up over HTTP, not timed), then
     one engine process collects them: submitted to the sandbox, its signed
     webhooks delivered through nginx (SUBMITTED, CONFIRMED, PAID_OUT),
     reconciled; the time until every attempt is PAID_OUT (polled in the
     database), i.e. collection attempts submitted and settled per second.
  3. webhook latency: M signed single-event webhooks, sequentially, against
     GET /healthz and POST /v1/customer-balance-adjustments as baselines
     (p50 / p90 / p99 in ms): one for a reference nobody holds (stored,
     nothing moves), and one per attempt moving SUBMITTED -> CONFIRMED (the
     money applied: invoice, ledger row, event, in one transaction) — what
     a provider's event adds to a payment.
Usage: PAY_STACK_ENV=stack/env python3 tests/bench/collector.py [N] [M] [CUSTOMER]
(CUSTOMER and CUSTOMER + 1: owner 1, GBP; provider 1, GO_CARDLESS, is made ACTIVE.)
"""
import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "e2e"))
from paytest import ENV, post, get, request, sql, sql_one, token  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 300
M = int(sys.argv[2]) if len(sys.argv) > 2 else 200
CID = int(sys.argv[3]) if len(sys.argv) > 3 else 96
TOK = token()
RUN = uuid.uuid4().hex[:8]


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p / 100))]


def add_invoice(cid, amount_minor):
    rows = sql(
        "START TRANSACTION;"
        "SELECT balance, currency_id INTO @b, @cur FROM customers WHERE id = %(c)d FOR UPDATE;"
        "SELECT COALESCE(MAX(id), 0) + 1 INTO @iid FROM invoices WHERE kind = 1 FOR UPDATE;"
        "INSERT INTO invoices (kind, id, customer_id, bill_run_id, invoice_number, invoice_date,"
        " amount) VALUES (1, @iid, %(c)d, 1, CONCAT('BENCH-', @iid), UTC_DATE(), %(a)d);"
        "SET @b = @b - %(a)d;"
        "INSERT INTO ledger (customer_id, txn_type, customer_payment_type, amount,"
        " resulting_balance, currency_id, payment_date, invoice_kind, invoice_id,"
        " invoice_number, bill_run_type) VALUES (%(c)d, 'INVOICE_CREATED', 'INVOICE', -%(a)d,"
        " @b, @cur, UTC_DATE(), 1, @iid, CONCAT('BENCH-', @iid), 'NORMAL');"
        "UPDATE customers SET balance = @b, payments_since_invoice = 0 WHERE id = %(c)d;"
        "COMMIT; SELECT @iid;" % dict(c=cid, a=amount_minor))
    return int(rows[-1][0])


def engine():
    iid = add_invoice(CID, N * 100)
    r = post("/v1/invoice-payments", raw=json.dumps({
        "generatedInvoiceId": iid, "amountInMajorCurrency": N, "description": "bench",
        "paymentMethod": "GO_CARDLESS", "thirdPartyPaymentStatus": "CONFIRMED"}), tok=TOK)
    assert r.status == 201, r.raw
    for i in range(N):
        r = post("/v1/refunds", raw=json.dumps({
            "invoiceId": iid, "billRunType": "NORMAL", "amountInMajorCurrency": 1,
            "paymentMethod": "GO_CARDLESS", "description": "bench %s %d" % (RUN, i)}), tok=TOK)
        assert r.status == 201, r.raw
    t0 = time.time()
    out = subprocess.run([ENV["PAY_BIN"], "--config", ENV["PAY_CONFIG"], "attempts", "run",
                          "--until-idle", "120", "--customers", str(CID)],
                         capture_output=True, text=True)
    dt = time.time() - t0
    settled = int(sql_one("SELECT COUNT(*) FROM refunds WHERE invoice_kind = 1 AND"
                          " invoice_id = %d AND third_party_refund_status = 'REFUND_SETTLED'"
                          % iid))
    handled = int(out.stdout.strip() or 0)
    print("engine: %d refunds settled of %d in %.2f s: %.0f attempts settled/s,"
          " %d engine actions (submit + fetch) = %.0f actions/s"
          % (settled, N, dt, settled / dt, handled, handled / dt))


def collections():
    cid = CID + 1
    sql("UPDATE payment_providers SET status = 'ACTIVE' WHERE id = 1")
    iids = []
    for i in range(N):
        iid = add_invoice(cid, (10 + i) * 100)   # whole pounds: the sandbox's plain timeline
        r = post("/v1/invoice-payments", raw=json.dumps({
            "generatedInvoiceId": iid, "amountInMajorCurrency": 10 + i,
            "description": "bench", "paymentMethod": "GO_CARDLESS",
            "thirdPartyPaymentStatus": "FAILED"}), tok=TOK)
        assert r.status == 201, r.raw
        r = post("/v1/invoice-payment-reprocess", raw=json.dumps({
            "invoiceId": iid, "billRunType": "NORMAL"}), tok=TOK)
        assert r.status == 200, r.raw
        iids.append(iid)
    ids = ",".join(map(str, iids))
    settled_sql = ("SELECT COUNT(*) FROM attempts WHERE kind = 1 AND invoice_kind = 1 AND"
                   " invoice_id IN (%s) AND status = 'PAID_OUT'" % ids)
    t0 = time.time()
    proc = subprocess.Popen([ENV["PAY_BIN"], "--config", ENV["PAY_CONFIG"], "attempts", "run",
                             "--until-idle", "120", "--customers", str(cid)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    settled = 0
    while time.time() - t0 < 150:
        settled = int(sql_one(settled_sql))
        if settled == N:
            break
        time.sleep(0.05)
    dt = time.time() - t0
    proc.wait()
    hooks = sql("SELECT COUNT(*), SUM(e.outcome = 'APPLIED') FROM provider_events e JOIN"
                " attempts t ON t.id = e.attempt_id WHERE t.kind = 1 AND"
                " t.invoice_kind = 1 AND t.invoice_id IN (%s)" % ids)[0]
    print("collections: %d of %d PAID_OUT in %.2f s: %.0f collection attempts submitted and"
          " settled/s; %s webhooks received through nginx, %s of them applied"
          % (settled, N, dt, settled / dt, hooks[0], hooks[1]))


def signed(key, events):
    body = json.dumps({"events": events}).encode()
    t = int(time.time())
    sig = "t=%d,v1=%s" % (t, hmac.new(key.encode(), b"%d." % t + body,
                                      hashlib.sha256).hexdigest())
    return body, sig


def webhooks():
    secret = ENV["PAY_WEBHOOK_SECRET"]
    key = hmac.new(secret.encode(), b"pay-api webhook 1", hashlib.sha256).hexdigest()
    lat = {"GET /healthz": [], "POST /v1/customer-balance-adjustments": [],
           "POST /webhooks/1 (one event)": [],
           "POST /webhooks/1 (CONFIRMED: money applied)": []}
    refs = []
    for i in range(M):
        iid = add_invoice(CID, 2000 + i)
        ref = "BENCH-%s-%d" % (RUN, i)
        r = post("/v1/invoice-payments", raw=json.dumps({
            "generatedInvoiceId": iid, "amountInMajorCurrency": (2000 + i) / 100,
            "description": "bench", "paymentMethod": "GO_CARDLESS",
            "thirdPartyPaymentStatus": "SUBMITTED", "thirdPartyPaymentReference": ref}),
            tok=TOK)
        assert r.status == 201, r.raw
        refs.append(ref)
    for i in range(M):
        t0 = time.time()
        get("/healthz")
        lat["GET /healthz"].append(time.time() - t0)
        t0 = time.time()
        post("/v1/customer-balance-adjustments", raw=json.dumps({
            "customerId": CID, "amountInMajorCurrency": 0.01, "description": "bench"}), tok=TOK)
        lat["POST /v1/customer-balance-adjustments"].append(time.time() - t0)
        body, sig = signed(key, [{"id": "bench-%s-%d" % (RUN, i),
                                  "reference": "BENCH-NONE", "status": "PAID_OUT"}])
        t0 = time.time()
        r = request("POST", "/webhooks/1", raw=body, headers={"Webhook-Signature": sig})
        lat["POST /webhooks/1 (one event)"].append(time.time() - t0)
        assert r.status == 200, r.raw
        body, sig = signed(key, [{"id": "bench-%s-c%d" % (RUN, i), "reference": refs[i],
                                  "status": "CONFIRMED"}])
        t0 = time.time()
        r = request("POST", "/webhooks/1", raw=body, headers={"Webhook-Signature": sig})
        lat["POST /webhooks/1 (CONFIRMED: money applied)"].append(time.time() - t0)
        assert r.status == 200 and r.json.get("received") == 1, r.raw
    for k, xs in lat.items():
        print("%-46s p50 %6.1f ms  p90 %6.1f ms  p99 %6.1f ms" %
              (k, 1000 * pct(xs, 50), 1000 * pct(xs, 90), 1000 * pct(xs, 99)))


engine()
collections()
webhooks()
