"""End to end through nginx against a stack whose stripe_credentials point
at the Stripe double (tests/providers/stripe/stack.sh): a payment link paid
on the hosted Checkout page, a declined card and an expired Session, a
refund, a dispute -> chargeback, a Bacs mandate set up through the API's
mandate flow (Checkout in setup mode, back to the flow's page: SUBMITTED,
then ACTIVE from mandate.updated) and the invoice auto-collected
off-session with it (and a failing one), faults (500 and 429 from Stripe, webhooks delivered twice and
in reverse order, the collector killed while Stripe holds the answer of its
create), payouts (paid: the charges' attempts PAID_OUT; failed: nothing):
the right statuses, ledger rows and invoices, and never more than one create
per idempotency key at Stripe.

    PAY_STACK_ENV=DIR/env python3 tests/providers/stripe/test_stripe_e2e.py
"""
import hashlib
import hmac
import json
import os
import re
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import http.cookiejar

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "e2e"))
from paytest import *  # noqa: E402,F401,F403
import faultlib as fl  # noqa: E402

DOUBLE = ENV["STRIPE_DOUBLE_URL"]
CTX = ssl.create_default_context(cafile=ENV["STRIPE_DOUBLE_CA"])
API_KEY = ENV["STRIPE_API_KEY"]
TOK = token(owners="1")
PROVIDER = 4          # the fixture's STRIPE provider of contract owner 1
D = Decimal


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **k):
        return None


class Page:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body
        self.raw = body

    def header(self, k):
        return self.headers.get(k)

    def csrf(self):
        m = re.search(r'name="csrf" value="([^"]+)"', self.body)
        return m.group(1) if m else None

    def __repr__(self):
        return "<%d %s %r>" % (self.status, self.header("Location"), self.body[:200])


class Browser:
    """Keeps cookies, follows no redirect, trusts the double's test CA."""

    def __init__(self):
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), NoRedirect,
            urllib.request.HTTPSHandler(context=CTX))

    def open(self, method, url, fields=None, headers=None):
        data = urllib.parse.urlencode(fields).encode() if fields is not None else None
        req = urllib.request.Request(url, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/x-www-form-urlencoded")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with self.opener.open(req, timeout=30) as r:
                return Page(r.status, r.headers, r.read().decode("utf-8", "replace"))
        except urllib.error.HTTPError as e:
            return Page(e.code, e.headers, e.read().decode("utf-8", "replace"))

    def get(self, url):
        return self.open("GET", url)

    def post(self, url, fields, headers=None):
        return self.open("POST", url, fields, headers)


def stripe(method, path, fields=None):
    """A call to the double's Stripe API, as a Stripe client makes it."""
    data = urllib.parse.urlencode(fields or {}).encode() if method == "POST" else None
    req = urllib.request.Request(DOUBLE + path, data=data, method=method)
    req.add_header("Authorization", "Bearer " + API_KEY)
    req.add_header("Stripe-Version", "2026-07-29.dahlia")
    try:
        with urllib.request.urlopen(req, timeout=30, context=CTX) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as e:
        return json.loads(e.read())


def control(path, body=None):
    req = urllib.request.Request(DOUBLE + "/_double/" + path, method="POST" if body is not None else "GET",
                                 data=json.dumps(body).encode() if body is not None else None)
    with urllib.request.urlopen(req, timeout=30, context=CTX) as r:
        return json.loads(r.read())


def wait(what, fn, timeout=60):
    end = time.time() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.time() > end:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.2)


def attempt_of_link(link_id):
    rows = sql("SELECT id, status, provider_reference, idempotency_key FROM attempts"
               " WHERE payment_link_id = %d ORDER BY id DESC LIMIT 1" % link_id)
    return dict(zip(("id", "status", "reference", "key"), rows[0])) if rows else None


def attempt(aid):
    r = sql("SELECT status, provider_reference, idempotency_key, COALESCE(error_info, '')"
            " FROM attempts WHERE id = %s" % aid)[0]
    return dict(zip(("status", "reference", "key", "error"), r))


def invoice_paid(kind, iid):
    return int(sql_one("SELECT paid FROM invoices WHERE kind = %d AND id = %d" % (kind, iid)))


def payments_of(aid):
    """Payment events of the attempt that moved money (a ledger row)."""
    return int(sql_one("SELECT COUNT(*) FROM invoice_payments WHERE attempt_id = %s"
                       " AND third_party_status = 'CONFIRMED' AND ledger_id IS NOT NULL" % aid))


def creates(key):
    return control("state")["creates"].get(key, 0)


def unpaid_invoice(cid):
    kind, iid, amount = sql("SELECT kind, id, amount FROM invoices WHERE customer_id = %d AND paid = 0"
                            " AND refunded = 0 AND kind = 1 ORDER BY id LIMIT 1" % cid)[0]
    return int(kind), int(iid), int(amount)


def make_link(s, cid, what):
    kind, iid, amount = unpaid_invoice(cid)
    r = post("/v1/payment-provider-payment-link", raw=json.dumps(
        {"paymentProviderId": PROVIDER, "amountInMajorCurrency": float(D(amount).scaleb(-2)),
         "description": what, "invoiceId": iid}), tok=TOK)
    s.status(r, 201, what + ": link created")
    url = r.json["paymentLink"]
    return url, r.json["id"], iid, amount


def press_pay(s, b, url, what):
    """The link's page, then Pay: the browser is sent to Stripe's Checkout."""
    page = b.get(url)
    s.check(page.status == 200, what + ": the link's page", page)
    b.csrf = page.csrf()
    p = b.post(url, {"csrf": b.csrf}, {"Origin": BASE})
    loc = p.header("Location") or ""
    s.check(p.status == 303 and loc.startswith(DOUBLE + "/c/pay/cs_"),
            what + ": Pay sends the browser to Stripe Checkout", p)
    return loc


def pay_on_checkout(s, b, url, checkout, what, card="4242424242424242"):
    page = b.get(checkout)
    s.check(page.status == 200 and 'id="checkout"' in page.body, what + ": Stripe's hosted page", page)
    s.check("csrf" not in page.body and "pay_csrf" not in str(page.headers),
            what + ": nothing of ours on Stripe's page")
    done = b.post(checkout, {"card": card})
    s.eq((done.status, done.header("Location")), (303, url), what + ": back to the link's page")
    receipt = wait(what + " receipt", lambda: (lambda g: g if g.status == 410 else None)(b.get(url)))
    s.check("Payment received" in receipt.body, what + ": the receipt", receipt)
    return receipt


# ---------------------------------------------------------------- tests

def setup(s):
    sql("UPDATE payment_providers SET status = 'ACTIVE' WHERE id = %d" % PROVIDER)
    control("config", {"webhookUrl": "%s/webhooks/%d" % (BASE, PROVIDER)})
    s.eq(sql_one("SELECT type FROM payment_providers WHERE id = %d" % PROVIDER), "STRIPE",
         "the provider is a STRIPE one")


STATE = {}


def test_link_paid_through_checkout(s):
    b = Browser()
    url, link_id, iid, amount = make_link(s, 1, "Invoice by Stripe Checkout")
    checkout = press_pay(s, b, url, "link")
    a = attempt_of_link(link_id)
    cs = checkout.rsplit("/", 1)[-1]
    s.eq(a["reference"], cs, "the attempt follows the Checkout Session")
    # A second press (double click, or back from Stripe): the same Session.
    p = b.post(url, {"csrf": b.csrf}, {"Origin": BASE})
    s.eq((p.status, p.header("Location")), (303, urllib.parse.urlparse(url).path),
         "a second press: to the link's page (the payment is in progress)")
    g = b.get(url)
    s.eq((g.status, g.header("Location")), (303, checkout), "the page sends back to the open Session")
    s.eq(creates(a["key"]), 1, "one Checkout Session created for the key")
    sess = stripe("GET", "/v1/checkout/sessions/" + cs)
    s.eq((sess["amount_total"], sess["currency"], sess["mode"]), (amount, "gbp", "payment"),
         "the Session asks the link's amount in minor units")
    s.eq(sess["client_reference_id"], a["key"], "client_reference_id is the attempt's key")
    # A declined card: Stripe's page says so, nothing moves here.
    declined = b.post(checkout, {"card": "4000000000000002"})
    s.check(declined.status == 200 and 'id="error"' in declined.body, "declined card shown by Stripe")
    s.eq(invoice_paid(1, iid), 0, "declined: the invoice is not paid")
    pay_on_checkout(s, b, url, checkout, "link")
    a = wait("CONFIRMED", lambda: (lambda x: x if x["status"] == "CONFIRMED" else None)(attempt(a["id"])))
    s.eq(invoice_paid(1, iid), amount, "the invoice is paid")
    s.eq(payments_of(a and attempt_of_link(link_id)["id"]), 1, "one payment event for the attempt")
    # The signed checkout.session.completed arrived (applied, or ignored when
    # the collector's fetch of the Session was first).
    ev = wait("completed event", lambda: sql("SELECT outcome FROM provider_events WHERE provider_id = %d"
                                             " AND provider_reference = '%s'" % (PROVIDER, cs)), 30)
    s.check(all(o[0] in ("APPLIED", "IGNORED") for o in ev), "the Stripe event was accepted", ev)
    STATE["paid"] = (iid, attempt_of_link(link_id)["id"], sess)


def test_refund(s):
    if "paid" not in STATE:
        return s.check(False, "no paid link to refund")
    iid, aid, sess = STATE["paid"]
    r = post("/v1/refunds", raw=json.dumps({"invoiceId": iid, "billRunType": "NORMAL",
                                            "amountInMajorCurrency": 20.00, "paymentMethod": "STRIPE",
                                            "description": "partial refund"}), tok=TOK)
    s.status(r, 201, "refund created")
    rid = r.json["id"]
    raid = sql_one("SELECT id FROM attempts WHERE refund_id = %d" % rid)
    ra = wait("refund PAID", lambda: (lambda x: x if x["status"] == "PAID" else None)(attempt(raid)), 60)
    s.check(ra["reference"].startswith("re_"), "the refund's reference is Stripe's refund", ra)
    re_ = stripe("GET", "/v1/refunds/" + ra["reference"])
    pi = stripe("GET", "/v1/checkout/sessions/" + sess["id"])["payment_intent"]
    s.eq((re_["amount"], re_["payment_intent"], re_["status"]), (2000, pi, "succeeded"),
         "Stripe refunded 20.00 of the Checkout payment")
    s.eq(creates(ra["key"]), 1, "one refund created for the key")
    g = get("/v1/refunds/%d" % rid, tok=TOK)
    s.eq(g.json.get("thirdPartyRefundStatus"), "PAID", "the API shows the refund PAID")


def test_expired_session_then_try_again(s):
    b = Browser()
    url, link_id, iid, amount = make_link(s, 2, "Link whose Session expires")
    checkout = press_pay(s, b, url, "expiring")
    first = attempt_of_link(link_id)
    stripe("POST", "/v1/checkout/sessions/%s/expire" % checkout.rsplit("/", 1)[-1])
    wait("CANCELLED", lambda: attempt(first["id"])["status"] == "CANCELLED")
    page = b.get(url)
    s.check(page.status == 200 and 'id="payment-failed"' in page.body, "the page offers to try again", page)
    again = press_pay(s, b, url, "try again")
    s.check(again != checkout, "a new Session for the new attempt")
    second = attempt_of_link(link_id)
    s.check(second["key"] != first["key"], "the new attempt has a new key")
    pay_on_checkout(s, b, url, again, "try again")
    s.eq(invoice_paid(1, iid), amount, "paid once, by the second Session")
    s.eq(payments_of(second["id"]), 1, "one payment event")
    STATE["dispute"] = (iid, second["id"], amount)


def test_dispute_is_a_chargeback(s):
    if "dispute" not in STATE:
        return s.check(False, "no paid link to dispute")
    iid, aid, amount = STATE["dispute"]
    cs = attempt(aid)["reference"]
    pi = stripe("GET", "/v1/checkout/sessions/" + cs)["payment_intent"]
    control("dispute", {"payment_intent": pi, "reason": "fraudulent"})
    wait("CHARGED_BACK", lambda: attempt(aid)["status"] == "CHARGED_BACK")
    s.eq(invoice_paid(1, iid), 0, "the chargeback takes the payment back from the invoice")


def stripe_dd_only():
    """The contract owner's Direct Debit provider is the Stripe one here."""
    sql("UPDATE payment_providers SET status = 'INACTIVE' WHERE id <> %d AND id IN"
        " (SELECT provider_id FROM payment_provider_owners WHERE contract_owner_id = 1)" % PROVIDER)


def bacs_mandate(s, site, account):
    """A Bacs mandate set up for the site through the API's flow: Checkout in
    setup mode on Stripe's page, back to the flow's page (recorded pending,
    SUBMITTED), then ACTIVE from Stripe's mandate.updated webhook."""
    stripe_dd_only()
    r = post("/v1/site-payment-mandates", raw=json.dumps(
        {"siteId": site, "returnURL": "https://example.org/back", "exitURL": "https://example.org/exit"}),
        tok=TOK)
    s.status(r, 201, "mandate flow created")
    hosted, tok = (r.json or {}).get("redirectURL") or "", (r.json or {}).get("flowToken") or ""
    # Stripe's timeline held: the mandate stays pending until advanced below.
    control("config", {"stepMs": 3600000})
    try:
        b = Browser()
        done = b.post(hosted, {"name": "Dee Dee", "sort_code": "108800", "account_number": account})
        back = done.header("Location") or ""
        s.check(done.status == 303 and back.startswith("%s/mandate/%s?billing_request=cs_" % (BASE, tok)),
                "mandate set up on Stripe's page, back to the flow's page", done)
        page = b.get(back)
        s.eq((page.status, page.header("Location")), (303, "https://example.org/back"),
             "the flow's page records the mandate and goes on to returnURL")
        row = sql("SELECT m.mandate_reference, m.third_party_customer_reference, p.status,"
                  " p.account_holder_name, p.account_number_last4, s.payment_method"
                  " FROM site_payment_mandates m JOIN provider_mandates p"
                  " ON p.mandate_reference = m.mandate_reference JOIN sites s ON s.id = m.site_id"
                  " WHERE m.flow_token = '%s'" % tok)
        s.check(len(row) == 1, "the flow's mandate is recorded", row)
        mandate, cus, status, holder, last4, method = row[0]
        s.eq((status, holder, last4, method), ("SUBMITTED", "Dee Dee", account[-4:], "STRIPE"),
             "a pending Bacs mandate, with the details Stripe tells of the account")
        md = stripe("GET", "/v1/mandates/" + mandate)
        s.eq(md.get("status"), "pending", "Stripe's mandate is pending")
        control("advance", {})
    finally:
        control("config", {"stepMs": 500})
    # The webhook makes it ACTIVE, unless the engine's fetch of the pending
    # mandate got there first (then the event is stored as IGNORED).
    wait("mandate ACTIVE and mandate.updated stored", lambda: sql_one(
        "SELECT status FROM provider_mandates WHERE mandate_reference = '%s'" % mandate) == "ACTIVE"
        and sql_one("SELECT COUNT(*) FROM provider_events WHERE provider_id = %d AND"
                    " provider_reference = '%s' AND status = 'ACTIVE'" % (PROVIDER, mandate)) != "0",
        30)
    s.eq(sql("SELECT outcome FROM provider_events WHERE provider_id = %d AND provider_reference"
             " = '%s' AND status = 'ACTIVE'" % (PROVIDER, mandate))[0][0] in ("APPLIED", "IGNORED"),
         True, "mandate.updated stored once, applied unless the fetch was first")
    s.eq(sql_one("SELECT COUNT(*) FROM provider_events WHERE provider_id = %d AND provider_reference"
                 " = '%s' AND status = 'ACTIVE'" % (PROVIDER, mandate)), "1",
         "mandate.updated stored once")
    return cus, mandate


def auto_collect(s, cid, account, what):
    kind, iid, amount = unpaid_invoice(cid)
    site = int(sql_one("SELECT site_id FROM invoices WHERE kind = 1 AND id = %d" % iid))
    # None of the customer's invoices is collected before the mandate is
    # ACTIVE (the flow makes the site's method STRIPE as soon as it returns).
    sql("UPDATE invoices SET auto_collect = 0 WHERE customer_id = %d" % cid)
    cus, mandate = bacs_mandate(s, site, account)
    sql("UPDATE invoices SET auto_collect = (kind = 1 AND id = %d), due_date = UTC_DATE() - INTERVAL 1 DAY"
        " WHERE customer_id = %d" % (iid, cid))
    aid = wait(what + ": auto-collection attempt", lambda: sql_one(
        "SELECT id FROM attempts WHERE kind = 1 AND invoice_kind = 1 AND invoice_id = %d" % iid), 30)
    return aid, iid, amount, mandate


def test_invoice_auto_collected_with_faults(s):
    # Stripe hangs past the adapter's timeout, then answers 500, then 429,
    # to the first creates; webhooks come twice and in reverse order.
    before = len(control("state")["requests"])
    control("faults", {"path": "^/v1/payment_intents$", "kind": "hang", "count": 1})
    control("faults", {"path": "^/v1/payment_intents$", "kind": "500", "count": 1})
    control("faults", {"path": "^/v1/payment_intents$", "kind": "429", "count": 1})
    # Then Stripe makes the PaymentIntent but the answer is lost on the way:
    # the next try with the same key gets the stored answer, no second charge.
    control("faults", {"path": "^/v1/payment_intents$", "kind": "lost", "count": 1})
    control("config", {"duplicate": True, "reverse": True})
    try:
        aid, iid, amount, mandate = auto_collect(s, 3, "00012345", "good debit")
        a = wait("CONFIRMED", lambda: (lambda x: x if x["status"] == "CONFIRMED" else None)(attempt(aid)), 90)
    finally:
        control("reset", {})
        control("config", {"webhookUrl": "%s/webhooks/%d" % (BASE, PROVIDER)})
    pi = stripe("GET", "/v1/payment_intents/" + a["reference"])
    s.eq((pi["amount"], pi["mandate"], pi["status"]), (amount, mandate, "succeeded"),
         "an off-session PaymentIntent with the site's mandate")
    st = control("state")
    creates_ = [r for r in st["requests"][before:] if r["method"] == "POST"
                and r["path"] == "/v1/payment_intents"]
    s.eq(sql_one("SELECT COUNT(*) FROM attempts WHERE kind = 1 AND invoice_kind = 1 AND invoice_id = %d"
                 % iid), "1", "one attempt for the invoice")
    s.check(len(creates_) >= 5 and [r["status"] for r in creates_][:3] == [0, 500, 429]
            and creates_[3].get("lost") and creates_[4]["status"] == 200
            and all(r["key"] == a["key"] for r in creates_),
            "the collector retried after a timeout, a 500, a 429 and a lost answer, same key",
            [(r["key"][-8:], r["status"], r.get("lost")) for r in creates_])
    tries = creates_
    s.eq(st["creates"].get(a["key"]), 1, "one PaymentIntent created for the key")
    s.check(all(r["version"] == "2026-07-29.dahlia" for r in tries), "Stripe-Version pinned")
    s.eq(invoice_paid(1, iid), amount, "the invoice is paid once")
    s.eq(payments_of(aid), 1, "one payment event despite duplicate webhooks")
    STATE["collected"] = (aid, iid, amount, a["reference"])
    wait("events of the debit delivered twice",
         lambda: sum(1 for e in control("state")["events"] if e["object"] == a["reference"]
                     and e["deliveries"] >= 2) >= 2, 30)


def test_collector_killed_while_create_in_flight(s):
    # Stripe creates the PaymentIntent and holds its answer; the collector is
    # killed (SIGKILL) while it waits; the master starts a new one, which
    # claims the attempt when the lease ends and asks again with the same key.
    before = len(control("state")["requests"])
    control("faults", {"path": "^/v1/payment_intents$", "kind": "hold", "count": 1, "seconds": 120})
    try:
        aid, iid, amount, mandate = auto_collect(s, 7, "00012345", "killed collector")
        wait("the create held at Stripe", lambda: control("state")["held"] == 1, 60)
        key = attempt(aid)["key"]
        s.eq(creates(key), 1, "Stripe made the PaymentIntent before the kill")
        old = fl.collectors()
        s.eq(len(old), 1, "one collector process")
        s.check(fl.kill_child(old[0], fl.master_pid()), "the collector killed (SIGKILL) mid-call")
        new = wait("the collector respawned", lambda: [p for p in fl.collectors() if p not in old], 30)
        s.check(len(new) == 1, "the master started a new collector", new)
        s.check(attempt(aid)["reference"] in (None, "NULL"),
                "the answer was never recorded by the killed collector", attempt(aid))
        a = wait("CONFIRMED", lambda: (lambda x: x if x["status"] == "CONFIRMED" else None)(attempt(aid)), 90)
    finally:
        control("reset", {})
        control("config", {"webhookUrl": "%s/webhooks/%d" % (BASE, PROVIDER)})
    tries = [r for r in control("state")["requests"][before:] if r["method"] == "POST"
             and r["path"] == "/v1/payment_intents" and r["key"] == key]
    s.check(len(tries) >= 2 and tries[0].get("held") and tries[-1]["status"] == 200,
            "asked again with the same key after the kill", [(r["status"], r.get("held")) for r in tries])
    s.eq(creates(key), 1, "one PaymentIntent created for the key")
    s.eq(sql_one("SELECT COUNT(*) FROM attempts WHERE provider_reference = '%s'" % a["reference"]), "1",
         "the provider's payment recorded once")
    s.eq(sql_one("SELECT COUNT(*) FROM attempts WHERE kind = 1 AND invoice_kind = 1 AND invoice_id = %d"
                 % iid), "1", "one attempt for the invoice")
    s.eq(invoice_paid(1, iid), amount, "the invoice is paid once")
    s.eq(payments_of(aid), 1, "one payment (ledger row) for the attempt")
    STATE["killed"] = (aid, iid, amount, a["reference"])


def ledger_payments(cid):
    return int(sql_one("SELECT COUNT(*) FROM ledger WHERE customer_id = %d AND txn_type LIKE 'PAYMENT%%'"
                       % cid))


def test_payouts(s):
    if "collected" not in STATE or "killed" not in STATE or "paid" not in STATE:
        return s.check(False, "no collected payments to pay out")
    aid, iid, amount, pi = STATE["collected"]
    kaid, kiid, kamount, kpi = STATE["killed"]
    link_aid = STATE["paid"][1]
    link_pi = stripe("GET", "/v1/checkout/sessions/" + STATE["paid"][2]["id"])["payment_intent"]
    ledger_before = (ledger_payments(3), ledger_payments(7), ledger_payments(1))
    # A payout that fails at the bank: nothing is paid out.
    failed = control("payout", {"payment_intents": [kpi], "outcome": "failed"})
    wait("the failed payout stored", lambda: sql_one(
        "SELECT status FROM stripe_payouts WHERE payout_id = '%s'" % failed["id"]) == "FAILED", 30)
    # A paid automatic payout of the auto-collected debit and the Checkout payment.
    paid = control("payout", {"payment_intents": [pi, link_pi]})
    s.eq(paid["amount"], amount + int(STATE["paid"][2]["amount_total"]), "the payout's amount")
    wait("PAID_OUT", lambda: attempt(aid)["status"] == "PAID_OUT" and attempt(link_aid)["status"] == "PAID_OUT", 60)
    s.eq(sql_one("SELECT status FROM stripe_payouts WHERE payout_id = '%s'" % paid["id"]), "DONE",
         "the payout's charges are done")
    s.eq(attempt(kaid)["status"], "CONFIRMED", "the failed payout paid nothing out")
    s.eq((invoice_paid(1, iid), invoice_paid(1, kiid)), (amount, kamount), "invoices unchanged")
    s.eq(sql_one("SELECT COUNT(*) FROM invoice_payments WHERE attempt_id = %s AND third_party_status ="
                 " 'PAID_OUT' AND ledger_id IS NULL" % aid), "1", "one PAID_OUT event, no money moved")
    s.eq(payments_of(aid), 1, "still one payment for the attempt")
    s.eq((ledger_payments(3), ledger_payments(7), ledger_payments(1)), ledger_before, "no ledger row from payouts")
    s.eq(sql_one("SELECT COUNT(*) FROM provider_events WHERE provider_id = %d AND event_id LIKE '%s/%%'"
                 " AND outcome = 'APPLIED'" % (PROVIDER, paid["id"])), "2", "one stored event per charge")


def test_failing_debit(s):
    aid, iid, amount, mandate = auto_collect(s, 4, "22222227", "failing debit")
    a = wait("FAILED", lambda: (lambda x: x if x["status"] == "FAILED" else None)(attempt(aid)), 60)
    sql("UPDATE invoices SET auto_collect = 0 WHERE customer_id = 4")
    s.eq(invoice_paid(1, iid), 0, "a failed debit pays nothing")
    pi = stripe("GET", "/v1/payment_intents/" + a["reference"])
    s.eq(pi["last_payment_error"]["code"], "insufficient_funds", "Stripe's reason")


def test_mandate_flow_opens_checkout_setup(s):
    stripe_dd_only()
    site = int(sql_one("SELECT id FROM sites WHERE customer_id = 5 ORDER BY id LIMIT 1"))
    r = post("/v1/site-payment-mandates", raw=json.dumps(
        {"siteId": site, "returnURL": "https://example.org/back", "exitURL": "https://example.org/exit"}),
        tok=TOK)
    s.status(r, 201, "mandate flow created")
    hosted = (r.json or {}).get("redirectURL") or ""
    s.check(hosted.startswith(DOUBLE + "/c/pay/cs_"), "the flow's hosted page is Stripe Checkout", hosted)
    sess = stripe("GET", "/v1/checkout/sessions/" + hosted.rsplit("/", 1)[-1])
    tok = r.json.get("flowToken") or ""
    s.eq((sess.get("mode"), sess.get("payment_method_types")), ("setup", ["bacs_debit"]),
         "Checkout in setup mode for Bacs")
    s.check(str(sess.get("customer", "")).startswith("cus_"), "for a Stripe Customer made for the flow")
    s.eq(sess.get("success_url"), "%s/mandate/%s?billing_request={CHECKOUT_SESSION_ID}" % (BASE, tok),
         "back to the flow's page with the Session")
    s.eq(sess.get("cancel_url"), "%s/mandate/%s?exit=1" % (BASE, tok), "left: the flow's page, exit")
    b = Browser()
    page = b.get(hosted)
    s.check('id="account_number"' in page.body, "bank details are asked on Stripe's page", page)
    done = b.post(hosted, {"name": "Flo Flow", "sort_code": "108800", "account_number": "00012345"})
    s.eq((done.status, done.header("Location")),
         (303, "%s/mandate/%s?billing_request=%s" % (BASE, tok, sess["id"])), "back to the flow's page")
    si = stripe("GET", "/v1/checkout/sessions/%s?expand[]=setup_intent" % sess["id"])["setup_intent"]
    s.check(str(si.get("mandate", "")).startswith("mandate_"), "Stripe holds a Bacs mandate for it")


def test_forged_webhooks(s):
    body = json.dumps({"id": "evt_forged", "object": "event", "type": "payment_intent.succeeded",
                       "data": {"object": {"id": "pi_x"}}})
    now = int(time.time())
    for what, hdr in [("no signature", None), ("bad v1", "t=%d,v1=%s" % (now, "0" * 64)),
                      ("v0 only", "t=%d,v0=%s" % (now, "0" * 64))]:
        h = {"Content-Type": "application/json"}
        if hdr:
            h["Stripe-Signature"] = hdr
        r = post("/webhooks/%d" % PROVIDER, raw=body, headers=h)
        s.eq(r.status, 403, "webhook with %s refused" % what)
    s.eq(sql_one("SELECT COUNT(*) FROM provider_events WHERE event_id = 'evt_forged'"), "0",
         "nothing stored from forged webhooks")
    # Signed here with the endpoint secret (an implementation independent of
    # the double's): a rotation header with one good v1 passes, a stale t does
    # not, and an event of live mode is acknowledged but never applied.
    creds = dict(l.split(" = ", 1) for l in open(os.path.join(os.path.dirname(ENV["PAY_STACK_DIR"]),
                                                              "stripe.credentials")).read().splitlines())
    secret = creds["webhook_secret"].encode()

    def signed(body, t, extra=""):
        mac = hmac.new(secret, ("%d." % t).encode() + body.encode(), hashlib.sha256).hexdigest()
        return {"Content-Type": "application/json", "Stripe-Signature": "t=%d,v1=%s,v1=%s%s"
                % (t, "ab" * 32, mac, extra)}
    pi = sql_one("SELECT provider_reference FROM attempts WHERE provider_reference LIKE 'pi_%%'"
                 " AND status = 'CONFIRMED' ORDER BY id LIMIT 1")
    live = json.dumps({"id": "evt_live_1", "object": "event", "type": "payment_intent.payment_failed",
                       "livemode": True, "data": {"object": {"id": pi, "last_payment_error": {"code": "x"}}}})
    r = post("/webhooks/%d" % PROVIDER, raw=live, headers=signed(live, int(time.time()) - 301))
    s.eq(r.status, 403, "a stale timestamp (301 s) is refused")
    r = post("/webhooks/%d" % PROVIDER, raw=live, headers=signed(live, int(time.time()), ",v0=00"))
    s.eq(r.status, 200, "several v1 (one good) and a v0: accepted")
    s.eq(sql_one("SELECT status FROM attempts WHERE provider_reference = '%s'" % pi), "CONFIRMED",
         "a live-mode event on a test-mode stack moves nothing")


Suite().run([setup, test_link_paid_through_checkout, test_refund, test_expired_session_then_try_again,
             test_dispute_is_a_chargeback, test_invoice_auto_collected_with_faults,
             test_collector_killed_while_create_in_flight, test_payouts, test_failing_debit,
             test_mandate_flow_opens_checkout_setup, test_forged_webhooks])
