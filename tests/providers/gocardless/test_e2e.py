"""End to end through nginx on a stack whose GO_CARDLESS provider (1) talks to
the GoCardless double over loopback HTTPS (tests/providers/gocardless/stack.sh):
mandates set up on the double's hosted Billing Request Flow page, invoices
auto-collected on them, webhooks signed the GoCardless way moving payments,
refunds and mandates, and faults of the provider.

Customers (fixture.json, one auto-collect invoice each):
  101  mandate, collection paid out, partial refund settled
  102  collection failed at the bank; then the mandate cancelled: refused (4xx)
  103  collection charged back after paid out
  104  faults: 500, 429 with Retry-After, a create made but its answer lost,
       a hang past the timeout, a closed connection; then duplicate and
       out-of-order webhooks: one payment at the provider, money counted once
  105  the payer leaves the hosted page: exitURL, no mandate
  106  the mandate's webhooks lost: its due invoice waits while the mandate is
       pending; the engine fetches the mandate, finds it ACTIVE, collects
       it once
  109  the engine killed (SIGKILL) while GoCardless holds the answer of its
       create: run again, the conflict names the payment made; one payment
       at the provider, paid once
  111  (provider 2, GC_INSTANT_BANK_PAYMENTS) a payment link paid on the
       hosted page by bank transfer (its flow made without a key); the
       payer leaves it (the
       billing request cancelled, the link payable again), then a new
       attempt with a new key is paid, a stale exit URL changing nothing:
       CONFIRMED, PAID_OUT, one ledger row; a refund of it from the payment
       the request made
  112  (provider 2) the payer's bank declines the authorisation (the request
       stays pending); a refused read of the request fails nothing; the
       request ready_to_fulfil (approved: no new flow, no cancel on exit);
       then fulfilled and its payment failed: the attempt FAILED, nothing
       paid
  (110 is paid in Chromium by browser.mjs)
"""
import hashlib
import hmac
import http.client
import json
import os
import re
import signal
import subprocess
import ssl
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "e2e"))
from paytest import *  # noqa: E402,F403

TOK = token(owners="1")
DOUBLE = urllib.parse.urlsplit(ENV["GC_DOUBLE_URL"])
CTX = ssl.create_default_context(cafile=ENV["GC_DOUBLE_CA"])
RETURN, EXIT = "https://shop.example/return", "https://shop.example/exit"


def double(method, path, body=None, form=None):
    """A request to the double (controls, hosted page), redirects not followed."""
    c = http.client.HTTPSConnection(DOUBLE.hostname, DOUBLE.port, context=CTX, timeout=30)
    headers, data = {}, None
    if body is not None:
        data, headers["Content-Type"] = json.dumps(body), "application/json"
    if form is not None:
        data = urllib.parse.urlencode(form)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    c.request(method, path, body=data, headers=headers)
    r = c.getresponse()
    out = (r.status, r.getheader("Location"), r.read().decode())
    c.close()
    return out


def ctl(name, body=None):
    st, _, text = double("POST" if body is not None else "GET", "/_double/" + name, body)
    return json.loads(text)


def service_get(url):
    """GET on pay-api through nginx without following redirects."""
    u = urllib.parse.urlsplit(url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    c.request("GET", u.path + ("?" + u.query if u.query else ""))
    r = c.getresponse()
    out = (r.status, r.getheader("Location"), r.read().decode())
    c.close()
    return out


def wait_for(fn, what, s, timeout=90):
    """Polls fn() until true (generous deadline: a loaded machine is slow)."""
    end = time.time() + timeout
    while time.time() < end:
        v = fn()
        if v:
            return v
        time.sleep(0.2)
    s.check(False, "in time: " + what)
    return None


def mandate_status(ref):
    return sql_one("SELECT status FROM provider_mandates WHERE mandate_reference = '%s'" % ref)


def invoice_paid(cid):
    return int(sql_one("SELECT paid FROM invoices WHERE customer_id = %d" % cid))


def attempt(cid, kind=1):
    rows = sql("SELECT id, status, COALESCE(provider_reference, ''), idempotency_key"
               " FROM attempts WHERE customer_id = %d AND kind = %d ORDER BY id DESC LIMIT 1"
               % (cid, kind))
    return rows[0] if rows else None


def setup_mandate(s, cid, leave=False):
    """The site mandate, the double's hosted page, the way back: the mandate."""
    r = post("/v1/site-payment-mandates", {"siteId": cid, "returnURL": RETURN, "exitURL": EXIT},
             TOK)
    if not s.status(r, 201, "site mandate %d created" % cid):
        return None
    url = urllib.parse.urlsplit(r.json.get("redirectURL") or "")
    s.eq("%s://%s" % (url.scheme, url.netloc), ENV["GC_DOUBLE_URL"],
         "redirectURL is the GoCardless hosted page")
    page = url.path + "?" + url.query
    st, _, html = double("GET", page)
    s.check(st == 200 and "account_number" in html, "the hosted page asks for bank details")
    form = {"account_holder_name": "Payer %d" % cid, "branch_code": "20-00-00",
            "account_number": "5577%04d" % cid, "do": "exit" if leave else "confirm"}
    st, back, _ = double("POST", page, form=form)
    s.eq(st, 303, "the hosted page sends the payer back")
    s.check(back and back.startswith(ENV["PAY_BASE_URL"] + "/mandate/"),
            "back to this service's /mandate/{token}", back)
    st, final, _ = service_get(back)
    s.eq((st, final), (303, EXIT if leave else RETURN),
         "then on to the site's %s" % ("exitURL" if leave else "returnURL"))
    return sql_one("SELECT mandate_reference FROM site_payment_mandates WHERE site_id = %d"
                   " ORDER BY id DESC LIMIT 1" % cid)


def activate(s, ref):
    for action in ("submitted", "active"):
        ctl("simulate", {"resource": "mandates", "id": ref, "action": action})
    wait_for(lambda: mandate_status(ref) == "ACTIVE", "mandate %s ACTIVE by webhook" % ref, s)


def collect(s, cid, ref):
    """Auto-collection by the engine: one GoCardless payment on the mandate."""
    run_engine([cid], until_idle=5)
    a = attempt(cid)
    if not s.check(a is not None and a[2].startswith("PM"), "customer %d: a GoCardless payment"
                   % cid, a):
        return None
    pm = ctl("state")["payments"].get(a[2])
    s.check(pm and pm["links"]["mandate"] == ref, "the payment is on the customer's mandate")
    s.eq(a[1], "PENDING_SUBMISSION", "attempt pending submission")
    return a


def events_for(st, ref):
    return [e for e in st["events"].values() if ref in e["links"].values()]


def test_collect_and_refund(s):
    ref = setup_mandate(s, 101)
    if not s.check(ref and ref.startswith("MD"), "customer 101: a GoCardless mandate", ref):
        return
    s.eq(mandate_status(ref), "PENDING_SUBMISSION", "recorded as GoCardless reports it")
    r = get("/v1/payment-provider-mandates/GO_CARDLESS/%s" % ref, TOK)
    s.status(r, 200, "the mandate is readable through the API")
    activate(s, ref)
    a = collect(s, 101, ref)
    if a is None:
        return
    s.eq(invoice_paid(101), 0, "nothing counted before the bank confirms")
    for action in ("submitted", "confirmed"):
        ctl("simulate", {"resource": "payments", "id": a[2], "action": action})
    wait_for(lambda: invoice_paid(101) == 4200, "invoice 1010 paid 42.00 on confirmed", s)
    ctl("simulate", {"resource": "payments", "id": a[2], "action": "paid_out"})
    wait_for(lambda: attempt(101)[1] == "PAID_OUT", "attempt PAID_OUT", s)
    s.eq(invoice_paid(101), 4200, "paid out: still 42.00, once")

    r = post("/v1/refunds", {"invoiceId": 1010, "billRunType": "NORMAL",
                             "amountInMajorCurrency": 10.5, "description": "gc refund",
                             "paymentMethod": "GO_CARDLESS"}, TOK)
    if not s.status(r, 201, "refund of 10.50 accepted"):
        return
    run_engine([101], until_idle=5)
    rf = attempt(101, 2)
    if not s.check(rf and rf[2].startswith("RF"), "a GoCardless refund", rf):
        return
    grf = ctl("state")["refunds"][rf[2]]
    s.eq((grf["amount"], grf["links"]["payment"]), (1050, a[2]), "refund of the collected payment")
    for action in ("paid", "refund_settled"):
        ctl("simulate", {"resource": "refunds", "id": rf[2], "action": action})
    wait_for(lambda: attempt(101, 2)[1] in ("PAID", "REFUND_SETTLED"), "refund settled", s)
    r = get("/v1/refunds/%s" % r.json["id"], TOK)
    s.check(r.json and r.json.get("thirdPartyRefundStatus") in ("PAID", "REFUND_SETTLED"),
            "the refund's status through the API", r.json)


def test_failure(s):
    ref = setup_mandate(s, 102)
    if not ref:
        return
    activate(s, ref)
    a = collect(s, 102, ref)
    if a is None:
        return
    for action in ("submitted", "failed"):
        ctl("simulate", {"resource": "payments", "id": a[2], "action": action})
    wait_for(lambda: attempt(102)[1] == "FAILED", "attempt FAILED by webhook", s)
    s.eq(invoice_paid(102), 0, "a failed collection pays nothing")
    # The mandate is cancelled at GoCardless, its event held back: the
    # reprocessed collection (auto-collection tries a due invoice once) is
    # refused for good (422 mandate_is_inactive).
    ctl("hold", {"on": True})
    ctl("simulate", {"resource": "mandates", "id": ref, "action": "cancelled"})
    r = post("/v1/invoice-payment-reprocess", {"invoiceId": 1020, "billRunType": "NORMAL"}, TOK)
    s.status(r, 200, "the failed invoice reprocessed")
    run_engine([102], until_idle=5)
    b = attempt(102)
    s.check(b and b[0] != a[0] and b[1] == "FAILED", "the next attempt is refused: FAILED", b)
    err = sql_one("SELECT error_info FROM attempts WHERE id = %s" % b[0]) if b else ""
    s.check("mandate_is_inactive" in (err or "") and "request id" in (err or ""),
            "errorInfo: GoCardless's reason and request id", err)
    ctl("hold", {"on": False})
    wait_for(lambda: mandate_status(ref) == "CANCELLED", "mandate CANCELLED by webhook", s)


def test_chargeback(s):
    ref = setup_mandate(s, 103)
    if not ref:
        return
    activate(s, ref)
    a = collect(s, 103, ref)
    if a is None:
        return
    for action in ("submitted", "confirmed", "paid_out"):
        ctl("simulate", {"resource": "payments", "id": a[2], "action": action})
    wait_for(lambda: invoice_paid(103) == 6310, "paid 63.10", s)
    ctl("simulate", {"resource": "payments", "id": a[2], "action": "charged_back"})
    wait_for(lambda: attempt(103)[1] == "CHARGED_BACK", "attempt CHARGED_BACK", s)
    s.eq(invoice_paid(103), 0, "the chargeback takes the 63.10 back")


def test_faults(s):
    ref = setup_mandate(s, 104)
    if not ref:
        return
    activate(s, ref)
    for kind in (500, 429, "lost", "hang", "close"):
        ctl("fault", {"method": "POST", "prefix": "/payments", "kind": kind, "count": 1,
                      "retry_after": 1, "seconds": 40})
    deadline = time.time() + 150
    while time.time() < deadline:
        run_engine([104], until_idle=5)
        a = attempt(104)
        if a and a[2]:
            break
    a = attempt(104)
    if not s.check(a and a[2].startswith("PM"), "after the faults: a payment", a):
        return
    st = ctl("state")
    s.eq(st["creates"].get("payments %s" % a[3]), 6,
         "six creates with the attempt's one Idempotency-Key")
    mine = [p for p in st["payments"].values() if p["links"].get("mandate") == ref]
    s.eq(len(mine), 1, "one payment at the provider (no double collection)")
    s.eq(mine[0]["id"] if mine else None, a[2], "the conflict resolved to the lost create's payment")

    # Events held back, then delivered in reverse order, then again.
    ctl("hold", {"on": True})
    for action in ("submitted", "confirmed", "paid_out"):
        ctl("simulate", {"resource": "payments", "id": a[2], "action": action})
    evs = sorted((e for e in events_for(ctl("state"), a[2])
                  if e["action"] in ("submitted", "confirmed", "paid_out")),
                 key=lambda e: e["id"])
    s.eq([e["action"] for e in evs], ["submitted", "confirmed", "paid_out"], "three events")
    r = ctl("resend", {"events": [e["id"] for e in reversed(evs)]})
    s.eq(r.get("status"), 200, "out of order: answered 200")
    ledger = sql_one("SELECT COUNT(*) FROM ledger WHERE customer_id = 104")
    r = ctl("resend", {"events": [evs[1]["id"], evs[1]["id"]]})
    s.eq(r.get("status"), 200, "a duplicate: answered 200")
    ctl("hold", {"on": False})
    wait_for(lambda: ctl("state")["outbox"] == 0, "held events delivered", s)
    s.eq(attempt(104)[1], "PAID_OUT", "PAID_OUT whatever the order")
    s.eq(invoice_paid(104), 2500, "25.00 counted once")
    s.eq(sql_one("SELECT COUNT(*) FROM ledger WHERE customer_id = 104"), ledger,
         "no ledger row from the repeats")
    s.eq(sql_one("SELECT COUNT(*) FROM provider_events WHERE provider_reference = '%s'"
                 " AND event_id IN ('%s')" % (a[2], "','".join(e["id"] for e in evs))), "3",
         "each event stored once")

    # A webhook not signed with the endpoint's secret changes nothing.
    body = json.dumps({"events": [{"id": "EVFORGED1", "resource_type": "payments",
                                   "action": "charged_back", "links": {"payment": a[2]}}]})
    bad = hmac.new(b"not-the-secret", body.encode(), hashlib.sha256).hexdigest()
    r = request("POST", "/webhooks/1", raw=body, headers={"Webhook-Signature": bad})
    s.eq(r.status, 403, "a forged GoCardless webhook: 403")
    good = hmac.new(ENV["GC_WEBHOOK_SECRET"].encode(), body.encode(), hashlib.sha256).hexdigest()
    r = request("POST", "/webhooks/1", raw=body,
                headers={"Webhook-Signature": good}, content_type="text/plain")
    s.eq(r.status, 415, "not application/json: 415")
    s.eq(invoice_paid(104), 2500, "nothing moved")


def test_engine_killed_while_create_in_flight(s):
    """The engine process is killed between GoCardless's create and the
    recording of its answer (the double made the payment and holds the
    answer); the next run, once the lease ends, creates with the same key:
    the 409 idempotent_creation_conflict names the payment already made."""
    ref = setup_mandate(s, 109)
    if not ref:
        return
    activate(s, ref)
    ctl("fault", {"method": "POST", "prefix": "/payments", "kind": "hold", "count": 1, "seconds": 120})
    p = subprocess.Popen([ENV["PAY_BIN"], "--config", ENV["PAY_CONFIG"], "attempts", "run",
                          "--until-idle", "60", "--customers", "109"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        held = wait_for(lambda: ctl("state")["held"] == 1, "the create held at GoCardless", s, 60)
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait(30)
    ctl("release", {})
    if not held:
        return
    a = attempt(109)
    s.eq(a[2], "", "killed before its answer was recorded")
    mine = [x for x in ctl("state")["payments"].values() if x["links"].get("mandate") == ref]
    s.eq(len(mine), 1, "GoCardless made the payment before the kill")
    run_engine([109], until_idle=5)
    a = attempt(109)
    st = ctl("state")
    mine = [x for x in st["payments"].values() if x["links"].get("mandate") == ref]
    s.eq(len(mine), 1, "one payment at GoCardless for the key")
    s.eq(st["creates"].get("payments %s" % a[3]), 2, "two creates with the attempt's one key")
    s.eq((a[1], a[2]), ("PENDING_SUBMISSION", mine[0]["id"] if mine else None),
         "the attempt records the payment made before the kill")
    s.eq(sql_one("SELECT COUNT(*) FROM attempts WHERE customer_id = 109 AND kind = 1"), "1",
         "one attempt")
    for action in ("submitted", "confirmed"):
        ctl("simulate", {"resource": "payments", "id": a[2], "action": action})
    wait_for(lambda: invoice_paid(109) == 3100, "invoice 1090 paid on confirmed", s)
    s.eq(sql_one("SELECT COUNT(*) FROM ledger WHERE customer_id = 109 AND txn_type = 'PAYMENT'"), "1",
         "paid once")


def gc_sign(body, secret=None):
    return hmac.new((secret or ENV["GC_WEBHOOK_SECRET"]).encode(), body, hashlib.sha256).hexdigest()


def test_webhook_attacks(s):
    """The GoCardless scheme at /webhooks/1: only the endpoint secret's HMAC of
    the exact bytes is accepted, before anything is parsed or stored."""
    run = str(int(time.time() * 1000))
    ev = {"id": "EVATK" + run, "resource_type": "payments", "action": "confirmed",
          "links": {"payment": "PMNOSUCH" + run}}
    body = json.dumps({"events": [ev], "meta": {"webhook_id": "WBATK" + run}}).encode()
    good = gc_sign(body)
    stored = lambda: sql_one("SELECT COUNT(*) FROM provider_events WHERE event_id = '%s'"
                             % ev["id"])
    cases = [("another secret", body, gc_sign(body, "x" * 32)),
             ("last hex digit changed", body, good[:-1] + ("0" if good[-1] != "0" else "1")),
             ("truncated", body, good[:63]),
             ("with a sha256= prefix", body, "sha256=" + good),
             ("the sandbox scheme", body, "t=%d,v1=%s" % (time.time(), good)),
             ("no signature", body, None),
             ("the body changed after signing", body.replace(b"confirmed", b"paid_out"), good),
             ("a space appended", body + b" ", good)]
    for what, b, sig in cases:
        r = request("POST", "/webhooks/1", raw=b, headers={"Webhook-Signature": sig} if sig else {})
        s.eq(r.status, 403, "%s: 403" % what)
    s.eq(stored(), "0", "nothing stored from refused deliveries")
    r = request("POST", "/webhooks/1", raw=body, headers={"Webhook-Signature": good.upper()})
    if s.status(r, 200, "the genuine delivery (upper-case hex) is accepted"):
        s.eq(r.json, {"received": 0, "duplicates": 0, "unknownReferences": 1},
             "an unknown payment: stored, counted as unknown")
    r = request("POST", "/webhooks/1", raw=body, headers={"Webhook-Signature": good})
    s.check(r.status == 200 and r.json.get("duplicates") == 1, "a replay: duplicate", r.json)
    s.eq(stored(), "1", "stored once")
    junk = b'{"events": ['
    r = request("POST", "/webhooks/1", raw=junk, headers={"Webhook-Signature": gc_sign(junk)})
    s.eq(r.status, 400, "signed but not JSON: 400")
    other = json.dumps({"events": [{"id": "EVX" + run, "resource_type": "payouts",
                                    "action": "paid", "links": {"payout": "PO1"}}]}).encode()
    r = request("POST", "/webhooks/1", raw=other, headers={"Webhook-Signature": gc_sign(other)})
    s.check(r.status == 200 and r.json.get("received") == 0, "a payout event: skipped", r.json)


def mandate_fetches(ref):
    return sum(1 for q in ctl("state")["requests"]
               if q["method"] == "GET" and q["path"] == "/mandates/" + ref)


def test_mandate_by_fetch(s):
    ref = setup_mandate(s, 106)
    if not s.check(ref and ref.startswith("MD"), "customer 106: a GoCardless mandate", ref):
        return
    run_engine([106], until_idle=0)
    s.check(mandate_fetches(ref) >= 1, "the engine fetched the pending mandate")
    s.eq(mandate_status(ref), "PENDING_SUBMISSION", "still pending at GoCardless: pending here")
    s.eq(attempt(106), None, "a due invoice on a pending mandate: no collection")

    # The bank activates it; both webhooks are lost for good.
    ctl("hold", {"on": True})
    for action in ("submitted", "active"):
        ctl("simulate", {"resource": "mandates", "id": ref, "action": action})
    dropped = ctl("drop", {"id": ref}).get("dropped", [])
    ctl("hold", {"on": False})
    s.check(len(dropped) >= 2, "the double lost the mandate's submitted and active events",
            dropped)
    s.eq(mandate_status(ref), "PENDING_SUBMISSION", "no webhook came")

    def fetched_and_collected():
        run_engine([106], until_idle=0)
        a = attempt(106)
        return mandate_status(ref) == "ACTIVE" and a is not None and a[2].startswith("PM") and a
    a = wait_for(fetched_and_collected, "mandate ACTIVE by fetch, then collected", s)
    if not a:
        return
    pm = ctl("state")["payments"].get(a[2])
    s.check(pm and pm["links"]["mandate"] == ref and pm["amount"] == 6100,
            "61.00 collected on the mandate", pm)
    n = mandate_fetches(ref)
    run_engine([106], until_idle=0)
    s.eq(mandate_fetches(ref), n, "an ACTIVE mandate is fetched no more")


def test_exit(s):
    ref = setup_mandate(s, 105, leave=True)
    s.check(ref in (None, "NULL"), "leaving the hosted page records no mandate", ref)


class Payer:
    """A payer's browser on the link's page: its CSRF cookie kept, redirects
    not followed."""

    def __init__(self):
        self.cookie = None

    def req(self, method, url, form=None):
        u = urllib.parse.urlsplit(url)
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        headers, data = {}, None
        if self.cookie:
            headers["Cookie"] = self.cookie
        if form is not None:
            data = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Origin"] = ENV["PAY_BASE_URL"]
        c.request(method, u.path + ("?" + u.query if u.query else ""), body=data, headers=headers)
        r = c.getresponse()
        if r.getheader("Set-Cookie"):
            self.cookie = r.getheader("Set-Cookie").split(";", 1)[0]
        out = (r.status, r.getheader("Location"), r.read().decode())
        c.close()
        return out

    def press_pay(self, s, url, what):
        """The link's page, then Pay: 303 to GoCardless's hosted page."""
        st, _, html = self.req("GET", url)
        m = re.search(r'name="csrf" value="([^"]+)"', html)
        if not s.check(st == 200 and m, what + ": the link's page with its Pay button", st):
            return None
        st, hosted, _ = self.req("POST", url, {"csrf": m.group(1)})
        s.check(st == 303 and (hosted or "").startswith(ENV["GC_DOUBLE_URL"] + "/billing/static/flow"),
                what + ": Pay sends the payer to GoCardless's hosted page", (st, hosted))
        return hosted


def ibp_link(s, cid, what):
    """A payment link of the GC_INSTANT_BANK_PAYMENTS provider (2) for the
    customer's invoice."""
    iid, amount = (int(x) for x in sql("SELECT id, amount FROM invoices WHERE customer_id = %d"
                                       % cid)[0])
    r = post("/v1/payment-provider-payment-link", raw=json.dumps(
        {"paymentProviderId": 2, "amountInMajorCurrency": amount / 100.0, "description": what,
         "invoiceId": iid}), tok=TOK)
    s.status(r, 201, what + ": link created")
    return r.json["paymentLink"], r.json["id"], amount


def link_attempts(link_id):
    return sql("SELECT id, status, COALESCE(provider_reference, ''), idempotency_key"
               " FROM attempts WHERE payment_link_id = %s ORDER BY id" % link_id)


def hosted_press(s, hosted, action, back, what):
    u = urllib.parse.urlsplit(hosted)
    st, html_loc, html = double("GET", u.path + "?" + u.query)
    s.check(st == 200 and "Pay with your bank" in html, what + ": the hosted payment page", st)
    st, loc, _ = double("POST", u.path + "?" + u.query, form={"do": action})
    s.eq((st, loc), (303, back), what + ": the hosted page sends the payer back")


def test_ibp_exit_then_paid(s):
    url, link_id, amount = ibp_link(s, 111, "Instant bank payment 111")
    p = Payer()
    seen = len(ctl("state")["requests"])
    hosted = p.press_pay(s, url, "first press")
    if not hosted:
        return
    first = link_attempts(link_id)
    s.check(len(first) == 1 and first[0][2].startswith("BRQ"),
            "the attempt follows the billing request", first)
    state = ctl("state")
    brq = state["billing_requests"].get(first[0][2]) or {}
    s.eq((brq.get("payment_request") or {}).get("amount"), amount,
         "the billing request asks the link's amount in minor units")
    s.eq([b["id"] for b in state["billing_requests"].values()
          if (b.get("metadata") or {}).get("pay_api_key") == first[0][3]], [first[0][2]],
         "one billing request made with the attempt's key")
    # GoCardless cannot read a flow back: flows carry no key (a lost answer
    # or a second press makes another one).
    flows = [q for q in state["requests"][seen:] if q["method"] == "POST" and
             q["path"] == "/billing_request_flows"]
    s.check(flows and all(q["idempotencyKey"] is None for q in flows),
            "flows are created without an Idempotency-Key", flows)
    # The payer leaves GoCardless's page (its exit URL names the request):
    # the request is cancelled there by the engine, the link can be paid
    # again; the page at the exit URL does not refresh itself.
    back = url + "?exit=" + first[0][2]
    hosted_press(s, hosted, "exit", back, "exit")
    st, loc, _ = p.req("GET", back)
    s.eq((st, loc), (303, urllib.parse.urlsplit(url).path), "the exit URL: on to the link's page")
    st, loc, html = p.req("GET", url)
    s.check(st == 200 and 'id="processing"' in html, "back from the exit: processing",
            (st, loc))
    run_engine([111], until_idle=0)
    wait_for(lambda: link_attempts(link_id)[0][1] == "CANCELLED", "the attempt CANCELLED", s)
    s.eq(ctl("state")["billing_requests"][first[0][2]]["status"], "cancelled",
         "the billing request cancelled at GoCardless")
    hosted = p.press_pay(s, url, "second press")
    if not hosted:
        return
    both = link_attempts(link_id)
    s.check(len(both) == 2 and both[1][3] != both[0][3] and both[1][2].startswith("BRQ")
            and both[1][2] != both[0][2], "a new attempt, key and billing request", both)
    st, loc, _ = p.req("GET", back)
    s.eq((st, loc), (303, urllib.parse.urlsplit(url).path), "the first exit URL again: 303")
    s.eq(sql_one("SELECT cancel_requested FROM attempts WHERE id = %s" % both[1][0]), "0",
         "a stale exit URL does not cancel the newer attempt")
    hosted_press(s, hosted, "confirm", url, "pay")
    st, _, html = p.req("GET", url)
    s.check(st == 200 and 'id="processing"' in html, "back from paying: processing", st)
    brq = ctl("state")["billing_requests"][both[1][2]]
    pm = brq["links"].get("payment_request_payment")
    s.check(brq["status"] == "fulfilled" and pm, "fulfilled: a payment", brq)
    s.eq(ctl("state")["payments"][pm]["metadata"].get("pay_api_key"), both[1][3],
         "the payment carries the attempt's key")
    run_engine([111], until_idle=0)  # the fetch: the request fulfilled, its payment pending
    s.eq(sql_one("SELECT paid FROM invoices WHERE customer_id = 111"), "0",
         "nothing counted before GoCardless confirms")
    ctl("simulate", {"resource": "payments", "id": pm, "action": "confirmed"})
    wait_for(lambda: link_attempts(link_id)[1][1] == "CONFIRMED", "CONFIRMED by webhook", s)
    s.eq(int(sql_one("SELECT paid FROM invoices WHERE customer_id = 111")), amount,
         "the invoice paid")
    ctl("simulate", {"resource": "payments", "id": pm, "action": "paid_out"})
    wait_for(lambda: link_attempts(link_id)[1][1] == "PAID_OUT", "PAID_OUT by webhook", s)
    s.eq(sql("SELECT amount, payment_method, invoice_id FROM ledger WHERE customer_id = 111"
             " AND txn_type = 'PAYMENT'"), [[str(amount), "GC_INSTANT_BANK_PAYMENTS", "1110"]],
         "one ledger row: the payment of the invoice")
    st, _, html = p.req("GET", url)
    s.check(st == 410 and "Payment received" in html, "the link shows the receipt", st)
    s.eq(sql_one("SELECT COUNT(*) FROM provider_events WHERE provider_id = 2 AND"
                 " provider_reference = '%s' AND outcome = 'APPLIED' AND status IN"
                 " ('CONFIRMED', 'PAID_OUT')" % both[1][2]), "2",
         "the payment's confirmed and paid_out events moved the attempt")
    creates = ctl("state")["creates"]
    s.eq([creates.get("billing_requests %s" % a[3]) for a in both], [1, 1],
         "one create per key")
    # A refund is paid back from the payment the billing request made.
    r = post("/v1/refunds", {"invoiceId": 1110, "billRunType": "NORMAL",
                             "amountInMajorCurrency": 2.0, "description": "ibp refund",
                             "paymentMethod": "GC_INSTANT_BANK_PAYMENTS"}, TOK)
    if s.status(r, 201, "a refund of 2.00 accepted"):
        run_engine([111], until_idle=0)
        rf = attempt(111, 2)
        grf = ctl("state")["refunds"].get(rf[2] if rf else "") or {}
        s.eq((grf.get("amount"), (grf.get("links") or {}).get("payment")), (200, pm),
             "refunded from the payment the billing request made")


def test_ibp_declined(s):
    url, link_id, amount = ibp_link(s, 112, "Instant bank payment 112")
    p = Payer()
    hosted = p.press_pay(s, url, "press")
    if not hosted:
        return
    u = urllib.parse.urlsplit(hosted)
    st, _, html = double("POST", u.path + "?" + u.query, form={"do": "decline"})
    s.check(st == 200 and 'id="declined"' in html, "the bank declines: GoCardless's page says so",
            st)
    brq = link_attempts(link_id)[0][2]
    s.eq(ctl("state")["billing_requests"][brq]["status"], "pending", "the request stays pending")
    # A refused read of the request (403) says nothing of the payment.
    ctl("fault", {"method": "GET", "prefix": "/billing_requests/" + brq, "kind": 403})
    run_engine([112], until_idle=0)
    s.check(any(q["path"] == "/billing_requests/" + brq and q.get("status") == 403
                for q in ctl("state")["requests"]), "the engine's read was refused")
    s.check(link_attempts(link_id)[0][1] in ("NEW", "PENDING_CUSTOMER_APPROVAL"),
            "a refused read fails nothing", link_attempts(link_id))
    # The payer's bank authorised it (ready_to_fulfil): approved, so no new
    # flow and no cancel when the exit URL is followed.
    ctl("simulate", {"resource": "billing_requests", "id": brq, "action": "ready_to_fulfil"})
    sql("UPDATE attempts SET next_action_at = UTC_TIMESTAMP(6) WHERE payment_link_id = %s"
        % link_id)
    run_engine([112], until_idle=0)
    s.eq(link_attempts(link_id)[0][1], "CUSTOMER_APPROVAL_GRANTED", "ready_to_fulfil: approved")
    st, loc, html = p.req("GET", url)
    s.check(st == 200 and 'id="processing"' in html, "approved: processing, no new flow",
            (st, loc))
    p.req("GET", url + "?exit=" + brq)
    s.eq(sql_one("SELECT cancel_requested FROM attempts WHERE payment_link_id = %s" % link_id),
         "0", "approved: the exit URL cancels nothing")
    ctl("simulate", {"resource": "billing_requests", "id": brq,
                     "action": "fulfilled_payment_failed"})
    wait_for(lambda: link_attempts(link_id)[0][1] == "FAILED", "FAILED by webhook", s)
    s.eq(sql_one("SELECT paid FROM invoices WHERE customer_id = 112"), "0", "nothing paid")
    s.eq(sql_one("SELECT COUNT(*) FROM ledger WHERE customer_id = 112 AND txn_type = 'PAYMENT'"),
         "0", "no payment in the ledger")
    s.eq(sql_one("SELECT COUNT(*) FROM provider_events WHERE provider_id = 2 AND"
                 " provider_reference = '%s' AND status = 'FAILED' AND outcome = 'APPLIED'"
                 % brq), "1", "the failed event of the payment the request made moved it")
    st, _, html = p.req("GET", url)
    s.check(st == 200 and 'id="payment-failed"' in html, "the link can be paid again", st)


def test_credentials_stay_secret(s):
    logs = ""
    for name in ("pay-api.log", "pay-api.out"):
        p = os.path.join(os.path.dirname(ENV["PAY_CONFIG"]), "logs", name)
        if os.path.exists(p):
            logs += open(p, errors="replace").read()
    s.check("POST %s/billing_requests: 201" % ENV["GC_DOUBLE_URL"] in logs and
            "request id " in logs, "provider calls are logged with GoCardless's request id")
    s.check("sandbox_double_token" not in logs, "the access token is never logged")
    s.check(ENV["GC_WEBHOOK_SECRET"] not in logs, "the webhook secret is never logged")
    m = get("/metrics")
    s.check("sandbox_double_token" not in m.raw, "nor exported in /metrics")


Suite().run([test_collect_and_refund, test_failure, test_chargeback, test_faults,
             test_mandate_by_fetch, test_engine_killed_while_create_in_flight,
             test_webhook_attacks, test_exit, test_ibp_exit_then_paid, test_ibp_declined,
             test_credentials_stay_secret])
