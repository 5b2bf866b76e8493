"""End-to-end tests of POST /webhooks/{paymentProviderId} (COLLECTION.md 5):
signed provider events move collection attempts through the lifecycle, money
at most once; replays, forged or stale signatures, bodies over 1 MiB, unknown
providers, unknown references and another provider's (another tenant's)
references change nothing.

Customers used (nobody else touches them): 99 and 100 (owner 1, GBP). Every
test raises its own fresh invoices and names its events and references with
a run id, so the file passes when run again on the same stack.
"""
import hashlib
import hmac
import json
import os
import time
import uuid

from paytest import *

TOK = token()
RUN = uuid.uuid4().hex[:10]
SECRET = ENV.get("PAY_WEBHOOK_SECRET", "")


def add_invoice(cid, amount_minor):
    rows = sql(
        "START TRANSACTION;"
        "SELECT balance, currency_id INTO @b, @cur FROM customers WHERE id = %(c)d FOR UPDATE;"
        "SELECT COALESCE(MAX(id), 0) + 1 INTO @iid FROM invoices WHERE kind = 1 FOR UPDATE;"
        "INSERT INTO invoices (kind, id, customer_id, bill_run_id, invoice_number,"
        " invoice_date, amount) VALUES (1, @iid, %(c)d, 1, CONCAT('E2E-WH-', @iid), UTC_DATE(),"
        " %(a)d);"
        "SET @b = @b - %(a)d;"
        "INSERT INTO ledger (customer_id, txn_type, customer_payment_type, amount,"
        " resulting_balance, currency_id, payment_date, invoice_kind, invoice_id,"
        " invoice_number, bill_run_type) VALUES (%(c)d, 'INVOICE_CREATED', 'INVOICE', -%(a)d, @b,"
        " @cur, UTC_DATE(), 1, @iid, CONCAT('E2E-WH-', @iid), 'NORMAL');"
        "UPDATE customers SET balance = @b, payments_since_invoice = 0 WHERE id = %(c)d;"
        "COMMIT;"
        "SELECT @iid;" % dict(c=cid, a=amount_minor))
    return int(rows[-1][0])


def provider_key(pid):
    return hmac.new(SECRET.encode(), ("pay-api webhook %d" % pid).encode(),
                    hashlib.sha256).hexdigest()


def signature(pid, body, t=None, key=None):
    t = int(time.time()) if t is None else t
    mac = hmac.new((key or provider_key(pid)).encode(), ("%d." % t).encode() + body,
                   hashlib.sha256).hexdigest()
    return "t=%d,v1=%s" % (t, mac)


def send(pid, events=None, raw=None, sig=None, headers=None):
    body = raw if raw is not None else json.dumps({"events": events}).encode()
    h = {"Content-Type": "application/json",
         "Webhook-Signature": sig if sig is not None else signature(pid, body)}
    h.update(headers or {})
    return request("POST", "/webhooks/%d" % pid, raw=body, headers=h, content_type=None)


def state(cid, iid):
    return dict(
        paid=int(sql_one("SELECT paid FROM invoices WHERE kind = 1 AND id = %d" % iid)),
        balance=int(sql_one("SELECT balance FROM customers WHERE id = %d" % cid)),
        ledger=int(sql_one("SELECT COUNT(*) FROM ledger WHERE customer_id = %d" % cid)),
        events=int(sql_one("SELECT COUNT(*) FROM provider_events")),
        status=sql_one("SELECT GROUP_CONCAT(status ORDER BY id) FROM attempts WHERE kind = 1"
                       " AND invoice_kind = 1 AND invoice_id = %d" % iid))


def attempt(cid, iid, amount, ref, status="SUBMITTED"):
    """An attempt the provider holds: reported SUBMITTED with its reference."""
    r = post("/v1/invoice-payments", raw=json.dumps({
        "generatedInvoiceId": iid, "amountInMajorCurrency": amount / 100,
        "description": "e2e-wh %s" % RUN, "paymentMethod": "GO_CARDLESS",
        "thirdPartyPaymentStatus": status, "thirdPartyPaymentReference": ref}), tok=TOK)
    return r


def test_lifecycle_by_webhook(s):
    if not s.check(SECRET, "the stack has a webhook_secret (PAY_WEBHOOK_SECRET in its env)"):
        return
    cid = 99
    iid = add_invoice(cid, 4200)
    ref = "WH-%s-A" % RUN
    s.status(attempt(cid, iid, 4200, ref), 201, "an attempt the provider holds (SUBMITTED)")
    s0 = state(cid, iid)
    r = send(1, [{"id": "ev-%s-1" % RUN, "reference": ref, "status": "CONFIRMED"}])
    if s.status(r, 200, "signed CONFIRMED"):
        s.eq(r.json, {"received": 1, "duplicates": 0, "unknownReferences": 0}, "CONFIRMED: received")
    s1 = state(cid, iid)
    s.eq((s1["paid"] - s0["paid"], s1["balance"] - s0["balance"], s1["ledger"] - s0["ledger"],
          s1["status"]), (4200, 4200, 1, "CONFIRMED"), "CONFIRMED: 42.00 applied once")
    # A replay: the same event id.
    r = send(1, [{"id": "ev-%s-1" % RUN, "reference": ref, "status": "CONFIRMED"}])
    if s.status(r, 200, "replayed event: still 200"):
        s.eq(r.json, {"received": 0, "duplicates": 1, "unknownReferences": 0}, "replay: a duplicate")
    s.eq(state(cid, iid), s1, "replay: nothing changed")
    # PAID_OUT: moves, no money; then a late CONFIRMED (new event id): nothing.
    r = send(1, [{"id": "ev-%s-2" % RUN, "reference": ref, "status": "PAID_OUT"},
                 {"id": "ev-%s-3" % RUN, "reference": ref, "status": "CONFIRMED"}])
    s.status(r, 200, "PAID_OUT then a late CONFIRMED")
    s2 = state(cid, iid)
    s.eq((s2["paid"], s2["ledger"], s2["status"]), (s1["paid"], s1["ledger"], "PAID_OUT"),
         "PAID_OUT and a late CONFIRMED: no money moved, the attempt PAID_OUT")
    # Chargeback, its replay, its cancellation.
    send(1, [{"id": "ev-%s-4" % RUN, "reference": ref, "status": "CHARGED_BACK"}])
    send(1, [{"id": "ev-%s-4" % RUN, "reference": ref, "status": "CHARGED_BACK"}])
    s3 = state(cid, iid)
    s.eq((s3["paid"] - s2["paid"], s3["ledger"] - s2["ledger"], s3["status"]),
         (-4200, 1, "CHARGED_BACK"), "CHARGED_BACK (and its replay): taken back once")
    send(1, [{"id": "ev-%s-5" % RUN, "reference": ref, "status": "CHARGEBACK_CANCELLED"}])
    s4 = state(cid, iid)
    s.eq((s4["paid"] - s3["paid"], s4["status"]), (4200, "CHARGEBACK_CANCELLED"),
         "CHARGEBACK_CANCELLED: applied again")
    s.eq(sql_one("SELECT GROUP_CONCAT(outcome ORDER BY id) FROM provider_events WHERE"
                 " event_id LIKE 'ev-%s-%%'" % RUN),
         "APPLIED,APPLIED,IGNORED,APPLIED,APPLIED", "each event stored once, with its outcome")
    s.eq(int(sql_one("SELECT balance FROM customers WHERE id = %d" % cid)),
         int(sql_one("SELECT SUM(amount) FROM ledger WHERE customer_id = %d" % cid)),
         "balance = sum of the ledger")


def test_attacks(s):
    if not SECRET:
        return
    cid = 100
    iid = add_invoice(cid, 3100)
    ref = "WH-%s-B" % RUN
    s.status(attempt(cid, iid, 3100, ref), 201, "an attempt the provider holds")
    ev = [{"id": "ev-%s-atk" % RUN, "reference": ref, "status": "CONFIRMED"}]
    body = json.dumps({"events": ev}).encode()
    before = state(cid, iid)
    good = signature(1, body)
    t, mac = good.split(",")
    forged = "%s,v1=%s" % (t, mac[3:-1] + ("0" if mac[-1] != "0" else "1"))
    cases = [
        ("forged signature (last hex digit changed)", 1, body, forged, 403),
        ("signed with another provider's key", 1, body, signature(1, body, key=provider_key(2)), 403),
        ("signed with a guessed key", 1, body, signature(1, body, key="0" * 64), 403),
        ("a body changed after signing", 1, body.replace(b"CONFIRMED", b"PAID_OUT"), good, 403),
        ("stale timestamp (20 minutes old)", 1, body,
         signature(1, body, t=int(time.time()) - 1200), 403),
        ("timestamp from the future (20 minutes)", 1, body,
         signature(1, body, t=int(time.time()) + 1200), 403),
        ("no signature", 1, body, "", 403),
        ("malformed signature", 1, body, "v1=abc", 403),
        ("unknown provider id", 999999999, body, signature(999999999, body), 404),
    ]
    for what, pid, b, sig, want in cases:
        r = send(pid, raw=b, sig=sig)
        s.eq(r.status, want, "%s -> %d" % (what, want))
        s.eq(state(cid, iid), before, "%s: nothing changed or stored" % what)
    # /webhooks/ takes up to 1 MiB (64 KiB elsewhere): a signed body over it.
    big = json.dumps({"events": ev, "pad": "x" * (1024 * 1024)}).encode()
    r = send(1, raw=big)
    s.error(r, 413, "BODY_TOO_LARGE", "a body over 1 MiB -> 413")
    if r.json is not None:
        s.eq(r.json.get("message"), "Request body exceeds 1 MiB", "the 413 names the 1 MiB limit")
    s.eq(state(cid, iid), before, "oversized body: nothing changed")
    r = send(1, raw=b'{"events": [', sig=signature(1, b'{"events": ['))
    s.eq(r.status, 400, "a signed body that is not JSON -> 400")
    r = request("POST", "/webhooks/1", raw=body, headers={"Webhook-Signature": good},
                content_type="text/plain")
    s.eq(r.status, 415, "not application/json -> 415")
    # Another tenant's provider (2, owner 2) naming our attempt's reference
    # (it is provider 1's): stored as unknown, nothing moves.
    r = send(2, [{"id": "ev-%s-t2" % RUN, "reference": ref, "status": "CONFIRMED"}])
    if s.status(r, 200, "provider 2 names provider 1's reference: 200"):
        s.eq(r.json, {"received": 0, "duplicates": 0, "unknownReferences": 1},
             "another provider's reference: unknown here")
    after = state(cid, iid)
    s.eq({k: after[k] for k in ("paid", "balance", "ledger", "status")},
         {k: before[k] for k in ("paid", "balance", "ledger", "status")},
         "another tenant's reference: no money, no status change")
    r = send(1, [{"id": "ev-%s-unk" % RUN, "reference": "NO-SUCH-%s" % RUN, "status": "PAID_OUT"}])
    if s.status(r, 200, "unknown reference: 200 (the provider would retry forever)"):
        s.eq(r.json.get("unknownReferences"), 1, "unknown reference: counted")
    s.eq(sql_one("SELECT outcome FROM provider_events WHERE event_id = 'ev-%s-unk'" % RUN),
         "UNKNOWN_REFERENCE", "unknown reference: stored")
    # And the genuine event still works.
    r = send(1, ev)
    s.status(r, 200, "the genuine event")
    s.eq(state(cid, iid)["paid"] - before["paid"], 3100, "the genuine event applied 31.00")
    m = get("/metrics")
    s.check(all(("payapi_webhooks_total{outcome=\"%s\"}" % o) in m.raw
                for o in ("received", "rejected", "duplicate")), "webhook metrics exported")


COLLECTED = ("CONFIRMED", "PAID_OUT", "MANUALLY_PAID", "CHARGEBACK_CANCELLED")
STATUSES = ["PENDING_SUBMISSION", "SUBMITTED", "CONFIRMED", "CONFIRMED", "PAID_OUT", "PAID_OUT",
            "FAILED", "CHARGED_BACK", "CHARGED_BACK", "LATE_FAILURE_SETTLED",
            "CHARGEBACK_CANCELLED", "CHARGEBACK_SETTLED", "SURCHARGE_FEE_DEBITED"]


def test_property_concurrent(s):
    """Random event sequences per attempt (duplicates, reordering, replays,
    chargebacks and their cancellation, refunds racing reversals) sent at
    once through the API (thirdPartyPaymentReference) and the webhook
    endpoint by 8 threads. Afterwards, whatever order they were applied in:
    every attempt holds its money exactly when collected, applied once
    (its ledger rows net to it), every invoice's paid is its attempt's
    money, 0 <= refunded <= paid, balance = sum of the ledger."""
    if not SECRET:
        return
    import random
    import threading
    seed = int(os.environ.get("PAY_SEED") or time.time())
    rng = random.Random(seed)
    cid = 100
    atts = []
    for i in range(40):
        amount = rng.randint(20, 200) * 100
        iid = add_invoice(cid, amount)
        ref = "WH-%s-P%d" % (RUN, i)
        if s.status(attempt(cid, iid, amount, ref, "PENDING_SUBMISSION"), 201,
                    "property: attempt %d" % i):
            atts.append((iid, amount, ref))
    sent, lock = [], threading.Lock()
    ops = []
    for n in range(3000):
        iid, amount, ref = rng.choice(atts)
        x = rng.random()
        if x < 0.45:
            ops.append(("webhook", ref, rng.choice(STATUSES), "ev-%s-p%d" % (RUN, n)))
        elif x < 0.55:
            ops.append(("replay", None, None, None))
        elif x < 0.85:
            ops.append(("api", (iid, amount, ref), rng.choice(STATUSES), None))
        else:
            ops.append(("refund", (iid, amount), None, None))
    nxt = [0]
    codes = {}

    def worker():
        while True:
            with lock:
                i = nxt[0]
                nxt[0] += 1
                if i >= len(ops):
                    return
                kind, a, st, evid = ops[i]
                if kind == "replay":
                    if not sent:
                        continue
                    kind, a, st, evid = "webhook", *rng.choice(sent)
            if kind == "webhook":
                with lock:
                    sent.append((a, st, evid))
                r = send(1, [{"id": evid, "reference": a, "status": st}])
            elif kind == "api":
                r = attempt(cid, a[0], a[1], a[2], st)
            else:
                r = post("/v1/refunds", raw=json.dumps({
                    "invoiceId": a[0], "billRunType": "NORMAL",
                    "amountInMajorCurrency": rng.randint(1, 20),
                    "paymentMethod": "CHEQUE", "description": "e2e-wh prop"}), tok=TOK)
            with lock:
                codes[(kind, r.status)] = codes.get((kind, r.status), 0) + 1

    threads = [threading.Thread(target=worker) for _ in range(8)]
    t0 = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("webhook property: seed %d, %d operations in %.1f s: %s"
          % (seed, len(ops), time.time() - t0, dict(sorted(codes.items()))))
    s.eq(sorted(k for k in codes if k[1] not in (200, 201, 409)), [],
         "every answer is 2xx or (a refund or a chargeback the refunds prevent) 409")
    s.check(codes.get(("webhook", 200), 0) > 1000, "many webhooks applied", codes)
    bad = []
    for iid, amount, ref in atts:
        st, held, net = sql("SELECT t.status, t.applied_ledger_id IS NOT NULL,"
                            " (SELECT COALESCE(SUM(l.amount), 0) FROM invoice_payments p JOIN"
                            " ledger l ON l.id = p.ledger_id WHERE p.attempt_id = t.id)"
                            " FROM attempts t WHERE t.provider_reference = '%s'" % ref)[0]
        paid, refunded = (int(x) for x in sql("SELECT paid, refunded FROM invoices WHERE kind = 1"
                                              " AND id = %d" % iid)[0])
        want = amount if st in COLLECTED else 0
        if (held == "1") != (st in COLLECTED) or int(net) != want or paid != want or \
                not 0 <= refunded <= paid:
            bad.append((ref, st, held, net, paid, refunded))
    s.eq(bad[:3], [], "seed %d: every attempt holds its money exactly when collected, once;"
                      " paid = it; 0 <= refunded <= paid (%d wrong)" % (seed, len(bad)))
    s.eq(int(sql_one("SELECT balance FROM customers WHERE id = %d" % cid)),
         int(sql_one("SELECT SUM(amount) FROM ledger WHERE customer_id = %d" % cid)),
         "balance = sum of the ledger")
    s.eq(sql_one("SELECT COUNT(*) FROM (SELECT event_id FROM provider_events WHERE event_id LIKE"
                 " 'ev-%s-p%%' GROUP BY provider_id, event_id HAVING COUNT(*) > 1) x" % RUN), "0",
         "every event stored once, replays included")


Suite().run([test_lifecycle_by_webhook, test_attacks, test_property_concurrent])
