"""End-to-end tests of POST /v1/payment-provider-payment-link and its landing
page GET/POST /pay/{token} (spec 4.11, 1.7, 3).

The page is driven over plain HTTP like a browser without JavaScript would:
urllib with a cookie jar, the hidden csrf field sent back with the
SameSite=Strict cookie. Money is checked through the API (balances, ledger
rows, invoice payment events) and, where the API has no view, with SQL.

Customers written (nobody else touches them): 61 (invoice target, refusals,
expiry, escaping), 63 (customer target and its allocation), 65 (adhoc
invoice target), 67 (double submit and replay), 78 (owner 2, EUR), 80 (owner
3, JPY: links only, never paid). Every expectation is computed from the state
read first; invoices paid by an earlier run are first corrected back to
unpaid with a negative invoice payment (spec 4.5), so the file passes when
run again on the same stack.

Payment providers: the fixture's ids 1..4 (ACTIVE GO_CARDLESS for owners
1..3, INACTIVE STRIPE for owner 1) are used when they are there and look
like that; otherwise equivalent providers are inserted with SQL.
"""
import hashlib
import http.cookiejar
import json
import re
import threading
import urllib.error
import urllib.parse
import urllib.request

from paytest import *

TOK = token()                                   # contract owners 1 and 2
TOK2 = token(sub="e2e-links-2", owners="2")
TOK3 = token(sub="e2e-links-3", owners="3")
READ = token(sub="e2e-links-read", scope="payments:read")
PATH = "/v1/payment-provider-payment-link"
LINK_FIELDS = {"id", "paymentProviderId", "amountInMajorCurrency", "currencyId", "description",
               "emailAddress", "invoiceId", "adhocInvoiceId", "customerId", "paymentLink"}
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")
D = Decimal


# ---------------------------------------------------------------- providers

# fixture id: (type, status, owners)
WANT = {1: ("GO_CARDLESS", "ACTIVE", {1}), 2: ("GO_CARDLESS", "ACTIVE", {2}),
        3: ("GO_CARDLESS", "ACTIVE", {3}), 4: ("STRIPE", "INACTIVE", {1})}


def provider_matches(pid, typ, status, owners):
    row = sql("SELECT type, status FROM payment_providers WHERE id = %d" % pid)
    got = {int(r[0]) for r in
           sql("SELECT contract_owner_id FROM payment_provider_owners WHERE provider_id = %d" % pid)}
    return bool(row) and row[0][0] == typ and row[0][1] == status and got == owners


def provider(pid):
    """The id of a provider like fixture provider pid: pid itself when the
    fixture (or an earlier run) has it, else one inserted here."""
    typ, status, owners = WANT[pid]
    name = "e2e links provider %d" % pid
    sql("INSERT IGNORE INTO payment_providers (id, type, name, status) VALUES (%d, '%s', '%s', '%s')"
        % (pid, typ, name, status))
    if sql_one("SELECT name FROM payment_providers WHERE id = %d" % pid) == name:
        for o in owners:
            sql("INSERT IGNORE INTO payment_provider_owners VALUES (%d, %d)" % (pid, o))
    if provider_matches(pid, typ, status, owners):
        return pid
    alt = sql_one("SELECT MIN(id) FROM payment_providers WHERE name = '%s (alt)'" % name)
    if alt in (None, "NULL"):
        sql("INSERT INTO payment_providers (type, name, status) VALUES ('%s', '%s (alt)', '%s')"
            % (typ, name, status))
        alt = sql_one("SELECT MAX(id) FROM payment_providers WHERE name = '%s (alt)'" % name)
        for o in owners:
            sql("INSERT IGNORE INTO payment_provider_owners VALUES (%s, %d)" % (alt, o))
    return int(alt)


P1, P2, P3, P4 = provider(1), provider(2), provider(3), provider(4)
P1_TYPE = "GO_CARDLESS"


# ---------------------------------------------------------------- helpers

def dumps(obj):
    """JSON text with Decimal written as the plain number it is (never a float)."""
    if isinstance(obj, Decimal):
        return format(obj, "f")
    if isinstance(obj, dict):
        return "{" + ",".join(json.dumps(k) + ":" + dumps(v) for k, v in obj.items()) + "}"
    return json.dumps(obj)


def create(tok=TOK, **body):
    return post(PATH, raw=dumps(body), tok=tok)


def link(s, what, tok=TOK, **body):
    """Creates a link and returns (response json, token)."""
    body.setdefault("paymentProviderId", P1)
    r = create(tok=tok, **body)
    if not s.status(r, 201, what + ": create link"):
        return {}, None
    url = r.json.get("paymentLink") or ""
    return r.json, url.rsplit("/", 1)[-1]


def balance(cid, tok=TOK):
    r = get("/v1/customer-balances?customer_id=%d" % cid, tok=tok)
    return r.json["balance"]


def ledger_count(cid):
    return int(sql_one("SELECT COUNT(*) FROM ledger WHERE customer_id = %d" % cid))


def invoice_row(kind, iid):
    r = sql("SELECT amount, paid, refunded, payment_status FROM invoices WHERE kind = %d AND id = %d"
            % (kind, iid))[0]
    return {"amount": int(r[0]), "paid": int(r[1]), "refunded": int(r[2]), "status": r[3]}


def unpay_invoice(s, kind, iid):
    """Brings an invoice paid by an earlier run back to unpaid (a negative
    correction event, spec 4.5)."""
    row = invoice_row(kind, iid)
    if row["paid"] > row["refunded"]:
        path, field = (("/v1/invoice-payments", "generatedInvoiceId") if kind == 1 else
                       ("/v1/adhoc-invoice-payments", "generatedAdhocInvoiceId"))
        r = post(path, raw=dumps({field: iid, "paymentMethod": "BACS",
                                  "amountInMajorCurrency": -Decimal(row["paid"] - row["refunded"]).scaleb(-2),
                                  "description": "e2e links: undo an earlier run"}), tok=TOK)
        s.status(r, 201, "reset invoice %d/%d to unpaid" % (kind, iid))


def events(path, **filters):
    filters.update(page=1, pageSize=1000, sort="id:desc")
    r = get(path + "?" + urllib.parse.urlencode(filters), tok=TOK)
    return r.json if isinstance(r.json, list) else []


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


class Page:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def header(self, name):
        return self.headers.get(name)

    def headers_all(self, name):
        return self.headers.get_all(name) or []

    def csrf(self):
        m = re.search(r'<input type="hidden" name="csrf" value="([^"]*)">', self.body)
        return m.group(1) if m else None

    def receipt(self):
        m = re.search(r'id="receipt-reference">([^<]*)<', self.body)
        return m.group(1) if m else None

    def __repr__(self):
        return "<%d %s>" % (self.status, self.body[:200])


class Browser:
    """A cookie-keeping HTTP client that does not follow redirects."""

    def __init__(self):
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar),
                                                  NoRedirect)

    def open(self, method, url, data=None, headers=None):
        req = urllib.request.Request(url, data=data, method=method)
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with self.opener.open(req, timeout=30) as r:
                return Page(r.status, r.headers, r.read().decode("utf-8", "replace"))
        except urllib.error.HTTPError as e:
            return Page(e.code, e.headers, e.read().decode("utf-8", "replace"))

    def get(self, url, headers=None):
        return self.open("GET", url, headers=headers)

    def post(self, url, fields, headers=None):
        h = {"Content-Type": "application/x-www-form-urlencoded", "Origin": BASE}
        h.update(headers or {})
        h = {k: v for k, v in h.items() if v is not None}
        return self.open("POST", url, urllib.parse.urlencode(fields).encode(), h)

    def cookie(self, name):
        for c in self.jar:
            if c.name == name:
                return c.value
        return None


def _plain(url, data, headers):
    req = urllib.request.Request(url, data=data, method="POST")
    for k, v in headers.items():
        req.add_header(k, v)
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(req, timeout=30) as r:
            return Page(r.status, r.headers, r.read().decode("utf-8", "replace"))
    except urllib.error.HTTPError as e:
        return Page(e.code, e.headers, e.read().decode("utf-8", "replace"))


def pay_and_settle(s, b, url, fields, what, headers=None):
    """Presses Pay (COLLECTION.md 3): the POST makes an attempt and sends the
    browser to the page (303), which shows "processing" and reloads itself;
    once the collection engine has the provider's answer the page is the
    receipt (410: the link is used). Returns (POST response, final page)."""
    p = b.post(url, fields, headers=headers)
    s.eq((p.status, p.header("Location")), (303, urllib.parse.urlparse(url).path),
         what + ": POST -> 303 to the link's page")
    g = b.get(url)
    s.check(g.status == 200 and 'id="processing"' in g.body and "<form" not in g.body,
            what + ": the page shows processing", g)
    s.eq(g.header("Refresh"), "2", what + ": the processing page reloads itself")
    run_engine([int(sql_one("SELECT customer_id FROM payment_links WHERE token_hash = SHA2('%s', 256)"
                            % url.rsplit("/", 1)[-1]))])
    return p, b.get(url)


def newest_event_with_money(kind, iid):
    r = sql("SELECT id FROM invoice_payments WHERE invoice_kind = %d AND invoice_id = %d"
            " AND ledger_id IS NOT NULL ORDER BY id DESC LIMIT 1" % (kind, iid))
    return int(r[0][0]) if r else None


def html_escape(t):
    return (t.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("'", "&#39;"))


def check_page_headers(s, p, what):
    csp = p.header("Content-Security-Policy") or ""
    s.eq(p.header("Content-Type"), "text/html; charset=utf-8", what + ": Content-Type")
    m = re.search(r"style-src 'nonce-([A-Za-z0-9+/_=-]{16,})'", csp)
    s.check(m is not None, what + ": CSP allows styles by a nonce", csp)
    if m:
        s.check('<style nonce="%s">' % m.group(1) in p.body,
                what + ": the page's <style> carries the CSP nonce")
    s.check("default-src 'none'" in csp, what + ": CSP default-src 'none'", csp)
    s.check("unsafe-inline" not in csp and "unsafe-eval" not in csp,
            what + ": CSP without unsafe-inline / unsafe-eval", csp)
    s.check("frame-ancestors 'none'" in csp, what + ": CSP frame-ancestors 'none'", csp)
    s.check("form-action 'self'" in csp, what + ": CSP form-action 'self'", csp)
    s.eq(p.header("X-Frame-Options"), "DENY", what + ": X-Frame-Options DENY")
    s.eq(p.headers_all("X-Content-Type-Options"), ["nosniff"], what + ": nosniff, once")
    s.check(p.header("Referrer-Policy") in ("no-referrer", "same-origin", "strict-origin"),
            what + ": Referrer-Policy keeps the token URL from other sites",
            p.header("Referrer-Policy"))
    s.check("<script" not in p.body.lower(), what + ": no script on the page")
    s.check('name="viewport"' in p.body, what + ": viewport meta for phones")
    return m.group(1) if m else None


# ---------------------------------------------------------------- tests

def test_create_shape(s):
    before = int(sql_one("SELECT COUNT(*) FROM payment_links"))
    r = create(paymentProviderId=P1, amountInMajorCurrency=D("12.50"), description="Invoice 181",
               emailAddress="payer@example.com", invoiceId=181)
    s.status(r, 201, "create link for invoice 181")
    j = r.json or {}
    s.eq(set(j.keys()), LINK_FIELDS, "link: fields")
    s.check(isinstance(j.get("id"), int) and j["id"] > 0, "link: id", j.get("id"))
    s.eq(j.get("paymentProviderId"), P1, "link: paymentProviderId")
    s.eq(j.get("amountInMajorCurrency"), D("12.50"), "link: amount")
    s.check('"amountInMajorCurrency":12.50' in r.raw.replace(" ", ""), "link: amount text 12.50",
            r.raw)
    s.eq(j.get("currencyId"), 1, "link: currencyId GBP")
    s.eq(j.get("description"), "Invoice 181", "link: description")
    s.eq(j.get("emailAddress"), "payer@example.com", "link: emailAddress")
    s.eq((j.get("invoiceId"), j.get("adhocInvoiceId"), j.get("customerId")), (181, None, None),
         "link: invoiceId set, the other targets null")
    url = j.get("paymentLink") or ""
    s.check(url.startswith(BASE + "/pay/"), "paymentLink = base URL + /pay/", url)
    tok = url[len(BASE + "/pay/"):]
    s.check(TOKEN_RE.match(tok) is not None, "paymentLink token: 43 base64url characters", tok)
    s.eq(r.header("Location"), url, "201 Location: the link itself (= paymentLink)")
    s.eq(int(sql_one("SELECT COUNT(*) FROM payment_links")), before + 1, "one payment_links row")

    # Only a hash of the token is stored.
    hits = sql_one("SELECT COUNT(*) FROM payment_links WHERE CONCAT_WS('|', token_hash,"
                   " description, COALESCE(email_address, ''), COALESCE(receipt_reference, ''))"
                   " LIKE BINARY '%%%s%%'" % tok)
    s.eq(hits, "0", "the token text appears nowhere in payment_links")
    h = sql_one("SELECT token_hash FROM payment_links WHERE id = %d" % j.get("id", 0)) or ""
    s.check(re.fullmatch(r"[0-9a-f]{64}", h) is not None and h != tok,
            "the row holds a 64-hex-digit hash, not the token", h)
    s.eq(h, hashlib.sha256(tok.encode()).hexdigest(), "the hash is SHA-256 of the token")

    # Two links, two different tokens; other targets and owners.
    _, tok2 = link(s, "second link", amountInMajorCurrency=D("12.50"), description="x",
                   invoiceId=181)
    s.check(tok2 and tok2 != tok, "each link gets its own token")
    r = create(paymentProviderId=P1, amountInMajorCurrency=D("1"), description="adhoc",
               adhocInvoiceId=61)
    s.status(r, 201, "adhocInvoiceId target")
    s.eq(((r.json or {}).get("invoiceId"), (r.json or {}).get("adhocInvoiceId"),
          (r.json or {}).get("customerId")), (None, 61, None), "adhoc link: targets")
    s.eq((r.json or {}).get("emailAddress"), None, "no emailAddress: null")
    s.eq((r.json or {}).get("amountInMajorCurrency"), D("1.00"), "amount 1 -> 1.00")
    s.check('"amountInMajorCurrency":1.00' in r.raw.replace(" ", ""), "amount text 1.00", r.raw)
    r = create(paymentProviderId=P1, amountInMajorCurrency=D("0.01"), description="c",
               customerId=61)
    s.status(r, 201, "customerId target, amount 0.01 (the minimum)")
    s.eq((r.json or {}).get("customerId"), 61, "customer link: customerId")
    r = create(paymentProviderId=P1, amountInMajorCurrency=D("100000"), description="max",
               customerId=61)
    s.status(r, 201, "amount 100000 (the maximum)")
    r = create(tok=TOK2, paymentProviderId=P2, amountInMajorCurrency=D("3.30"), description="EUR",
               customerId=78)
    s.status(r, 201, "owner 2 link for customer 78")
    s.eq((r.json or {}).get("currencyId"), 2, "owner 2 link: EUR")
    r = create(tok=TOK3, paymentProviderId=P3, amountInMajorCurrency=D("500"), description="JPY",
               customerId=80)
    s.status(r, 201, "owner 3 JPY link")
    s.check('"amountInMajorCurrency":500,' in (r.raw or "").replace(" ", ""),
            "JPY amount written without decimals", r.raw)


def test_create_validation(s):
    ok = {"paymentProviderId": P1, "amountInMajorCurrency": D("5.00"), "description": "ok"}

    def bad(what, body, field=None, code=None, status=400, tok=TOK):
        r = post(PATH, raw=body if isinstance(body, str) else dumps(body), tok=tok)
        if code:
            s.error(r, status, code, what, field=field)
        else:
            s.status(r, status, what)
            if field is not None and r.json:
                s.eq(r.json.get("field"), field, what + " (field)")
        return r

    before = int(sql_one("SELECT COUNT(*) FROM payment_links"))
    bad("no target", dict(ok))
    bad("invoiceId and customerId", dict(ok, invoiceId=181, customerId=61))
    bad("invoiceId and adhocInvoiceId", dict(ok, invoiceId=181, adhocInvoiceId=61))
    bad("all three targets", dict(ok, invoiceId=181, adhocInvoiceId=61, customerId=61))
    bad("invoiceId null counts as absent", dict(ok, invoiceId=None))
    bad("INACTIVE provider", dict(ok, paymentProviderId=P4, customerId=61),
        "paymentProviderId", "INVALID_FIELD")
    bad("another owner's provider", dict(ok, paymentProviderId=P2, customerId=61),
        "paymentProviderId", "INVALID_FIELD")
    bad("owner 3's provider for an invoice of owner 1", dict(ok, paymentProviderId=P3, invoiceId=181),
        "paymentProviderId", "INVALID_FIELD")
    bad("unknown provider", dict(ok, paymentProviderId=999999, customerId=61), "paymentProviderId")
    # An ACTIVE provider of a manual method cannot collect through the page;
    # it exists only for this check (never seen by another test file).
    manual = int(sql("INSERT INTO payment_providers (type, name, status) VALUES"
                     " ('CHEQUE', 'e2e links manual', 'ACTIVE');"
                     " INSERT INTO payment_provider_owners (provider_id, contract_owner_id)"
                     " VALUES (LAST_INSERT_ID(), 1); SELECT LAST_INSERT_ID()")[0][0])
    try:
        r = bad("ACTIVE CHEQUE provider", dict(ok, paymentProviderId=manual, customerId=61),
                "paymentProviderId", "INVALID_FIELD")
        s.check("not CHEQUE" in (r.json or {}).get("message", ""), "the message names the type", r)
    finally:
        sql("DELETE FROM payment_provider_owners WHERE provider_id = %d;"
            " DELETE FROM payment_providers WHERE id = %d" % (manual, manual))
    bad("provider missing", {"amountInMajorCurrency": D("5.00"), "description": "x",
                             "customerId": 61}, "paymentProviderId", "MISSING_FIELD")
    bad("provider 0", dict(ok, paymentProviderId=0, customerId=61), "paymentProviderId")
    bad("provider as string", dict(ok, paymentProviderId=str(P1), customerId=61), "paymentProviderId")
    for amount in ["0", "0.00", "-1.00", "100000.01", "1.234", '"5.00"', "null", "true"]:
        bad("amount %s" % amount, '{"paymentProviderId":%d,"amountInMajorCurrency":%s,'
            '"description":"x","customerId":61}' % (P1, amount), "amountInMajorCurrency")
    bad("amount missing", {"paymentProviderId": P1, "description": "x", "customerId": 61},
        "amountInMajorCurrency", "MISSING_FIELD")
    bad("JPY amount with decimals", {"paymentProviderId": P3, "amountInMajorCurrency": D("1.5"),
                                     "description": "x", "customerId": 80},
        "amountInMajorCurrency", tok=TOK3)
    bad("description missing", {"paymentProviderId": P1, "amountInMajorCurrency": D("1.00"),
                                "customerId": 61}, "description", "MISSING_FIELD")
    bad("description 256 chars", dict(ok, description="d" * 256, customerId=61), "description")
    bad("description with a control character", dict(ok, description="a\u0007b", customerId=61),
        "description")
    for email in ["not-an-email", "a@b", "a b@example.com", "@example.com", "a@@example.com",
                  "a@example.com.", "a@.example.com", "<a@example.com>", ""]:
        bad("emailAddress %r" % email, dict(ok, emailAddress=email, customerId=61), "emailAddress")
    bad("unknown customerId", dict(ok, customerId=999999), "customerId", "UNKNOWN_REFERENCE")
    bad("unknown invoiceId", dict(ok, invoiceId=999999), "invoiceId", "UNKNOWN_REFERENCE")
    bad("unknown adhocInvoiceId", dict(ok, adhocInvoiceId=999999), "adhocInvoiceId",
        "UNKNOWN_REFERENCE")
    bad("another owner's customer (80)", dict(ok, customerId=80), "customerId", "UNKNOWN_REFERENCE")
    bad("another owner's invoice (240)", dict(ok, invoiceId=240), "invoiceId", "UNKNOWN_REFERENCE")
    bad("owner 2 token, customer of owner 1", dict(ok, paymentProviderId=P2, customerId=61),
        "customerId", "UNKNOWN_REFERENCE", tok=TOK2)
    bad("unknown body field", dict(ok, customerId=61, amount=5), "amount", "UNKNOWN_FIELD")
    bad("body not an object", "[]")
    bad("read-only token", dict(ok, customerId=61), status=403, tok=READ)
    bad("no token", dict(ok, customerId=61), status=401, tok=None)
    r = post(PATH, raw="paymentProviderId=1", tok=TOK, content_type="application/x-www-form-urlencoded")
    s.status(r, 415, "form body to the API -> 415")
    s.eq(int(sql_one("SELECT COUNT(*) FROM payment_links")), before, "no link stored by a refusal")
    # a description is 0..255 characters: "" is one, not a missing field
    r = create(**dict(ok, description="", customerId=61))
    if s.status(r, 201, "description empty: accepted"):
        s.eq(r.json.get("description"), "", "description empty: kept as \"\"")


def test_landing_page(s):
    desc = "Energy bill March"
    j, tok = link(s, "page", amountInMajorCurrency=D("45.25"), description=desc, invoiceId=183,
                  emailAddress="p@example.com")
    if not tok:
        return
    b = Browser()
    p = b.get(j["paymentLink"])
    s.eq(p.status, 200, "GET landing page")
    nonce = check_page_headers(s, p, "landing page")
    s.check("Acme Energy" in p.body, "page shows the contract owner's name")
    s.check(desc in p.body, "page shows the description")
    s.check("GBP 45.25" in p.body, "page shows the amount with its currency", p.body[-800:])
    s.check("INV-000183" in p.body, "page shows the invoice number")
    s.check(re.search(r'<form method="post" action="/pay/%s">' % re.escape(tok), p.body) is not None,
            "page has a POST form to itself")
    s.check(re.search(r'<button type="submit">Pay[^<]*</button>', p.body) is not None,
            "page has a Pay button")
    cookie = b.cookie("pay_csrf")
    s.check(cookie is not None and p.csrf() == cookie, "csrf field equals the pay_csrf cookie")
    sc = p.header("Set-Cookie") or ""
    s.check("SameSite=Strict" in sc and "HttpOnly" in sc and "Path=/" in sc,
            "pay_csrf cookie: SameSite=Strict, HttpOnly, Path=/", sc)
    # Secure exactly when the service is reached over https:// (an http://
    # public_base_url needs allow_insecure_http, the development flag).
    attrs = [a.strip() for a in sc.split(";")]
    if BASE.startswith("https://"):
        s.check("Secure" in attrs, "over HTTPS the pay_csrf cookie is Secure", sc)
    else:
        s.check("Secure" not in attrs, "over plain HTTP (development) the cookie is not Secure", sc)
    p2 = Browser().get(j["paymentLink"])
    nonce2 = check_page_headers(s, p2, "second GET")
    s.check(nonce and nonce2 and nonce != nonce2, "a new CSP nonce per response")
    s.check(p2.csrf() and p2.csrf() != p.csrf(), "a new csrf value per page")

    # Owner 2, EUR
    j2, tok2 = link(s, "owner 2 page", tok=TOK2, paymentProviderId=P2,
                    amountInMajorCurrency=D("3.30"), description="Water", customerId=78)
    if tok2:
        p = Browser().get(j2["paymentLink"])
        s.eq(p.status, 200, "owner 2 page")
        s.check("Borealis Water" in p.body and "EUR 3.30" in p.body and "Water" in p.body,
                "owner 2 page: owner, amount in EUR, description")
    # Owner 3, JPY
    j3, tok3 = link(s, "owner 3 page", tok=TOK3, paymentProviderId=P3,
                    amountInMajorCurrency=D("500"), description="Phone", customerId=80)
    if tok3:
        p = Browser().get(j3["paymentLink"])
        s.eq(p.status, 200, "owner 3 page")
        s.check("Cobalt Telecom" in p.body and "JPY 500<" in p.body,
                "owner 3 page: owner and JPY 500 without decimals")


def test_csrf_refusals_then_invoice_payment(s):
    cid, iid = 61, 182
    unpay_invoice(s, 1, iid)
    inv = invoice_row(1, iid)
    amount = Decimal(inv["amount"]).scaleb(-2)
    desc = "Invoice INV-000182 by link"
    j, tok = link(s, "invoice link", amountInMajorCurrency=amount, description=desc, invoiceId=iid)
    if not tok:
        return
    url = j["paymentLink"]
    b = Browser()
    page = b.get(url)
    csrf = page.csrf()
    bal0, rows0 = balance(cid), ledger_count(cid)
    ev0 = len(events("/v1/invoice-payments", generatedInvoiceId=iid))

    cookie_hdr = "pay_csrf=%s" % csrf
    refusals = [
        ("no cookie", {"csrf": csrf}, {"Origin": BASE}),
        ("wrong csrf field", {"csrf": csrf[:-2] + ("AA" if csrf[-2:] != "AA" else "BB")},
         {"Origin": BASE, "Cookie": cookie_hdr}),
        ("no csrf field", {}, {"Origin": BASE, "Cookie": cookie_hdr}),
        ("Origin https://evil.example", {"csrf": csrf},
         {"Origin": "https://evil.example", "Cookie": cookie_hdr}),
        ("Origin null", {"csrf": csrf}, {"Origin": "null", "Cookie": cookie_hdr}),
        ("Origin of another port", {"csrf": csrf},
         {"Origin": "http://127.0.0.1:1", "Cookie": cookie_hdr}),
        ("Sec-Fetch-Site cross-site", {"csrf": csrf},
         {"Sec-Fetch-Site": "cross-site", "Cookie": cookie_hdr}),
        ("Sec-Fetch-Site same-site", {"csrf": csrf},
         {"Sec-Fetch-Site": "same-site", "Cookie": cookie_hdr}),
    ]
    for what, fields, headers in refusals:
        p = _plain(url, urllib.parse.urlencode(fields).encode(),
                   dict(headers, **{"Content-Type": "application/x-www-form-urlencoded"}))
        s.eq(p.status, 403, "POST with %s -> 403" % what)
        s.check(p.receipt() is None, "POST with %s: no receipt" % what)
    p = _plain(url, json.dumps({"csrf": csrf}).encode(),
               {"Content-Type": "application/json", "Cookie": cookie_hdr, "Origin": BASE})
    s.check(p.status in (403, 415), "POST with a JSON body is refused", p.status)
    s.eq(balance(cid), bal0, "refused POSTs: balance unchanged")
    s.eq(ledger_count(cid), rows0, "refused POSTs: no ledger row")
    s.eq(invoice_row(1, iid)["paid"], inv["paid"], "refused POSTs: invoice not paid")
    s.eq(sql_one("SELECT paid_at IS NULL FROM payment_links WHERE id = %d" % j["id"]), "1",
         "refused POSTs: link still unused")
    s.eq(b.get(url).status, 200, "after the refusals the link still shows its form")

    # The real thing: cookie + matching field + our Origin (as a browser sends).
    page = b.get(url)
    _, p = pay_and_settle(s, b, url, {"csrf": page.csrf()}, "correct POST",
                          headers={"Sec-Fetch-Site": "same-origin", "Origin": BASE})
    s.eq(p.status, 410, "after the provider's answer: the receipt (410, the link is used)")
    ref = p.receipt()
    s.check(ref is not None and len(ref) > 0, "receipt has a reference", p.body[:500])
    check_page_headers(s, p, "receipt")
    s.check("Payment received" in p.body and "GBP " + format(amount, "f") in p.body
            and desc in p.body and "Acme Energy" in p.body,
            "receipt shows owner, description and amount")
    s.eq(balance(cid), bal0 + amount, "balance grew by exactly the amount")
    s.eq(ledger_count(cid), rows0 + 1, "exactly one new ledger row")
    inv2 = invoice_row(1, iid)
    s.eq(inv2["paid"], inv["amount"], "invoice paid in full")
    s.eq(inv2["status"], "PAID", "invoice payment status PAID")
    evs = events("/v1/invoice-payments", generatedInvoiceId=iid)
    s.check(len(evs) > ev0, "the attempt's reports are invoice payment events", len(evs))
    money = newest_event_with_money(1, iid)
    e = [x for x in evs if x["id"] == money][0] if money else {}
    s.eq(sql_one("SELECT COUNT(*) FROM invoice_payments WHERE ledger_id IS NOT NULL AND"
                 " attempt_id = (SELECT MAX(id) FROM attempts WHERE payment_link_id = %d)"
                 % j["id"]), "1", "exactly one event of the link's attempt moved money")
    s.check(e.get("thirdPartyPaymentStatus") in ("CONFIRMED", "PAID_OUT"),
            "the event that moved the money is CONFIRMED (or PAID_OUT when the engine"
            " saw that first)", e)
    s.check(any(x.get("thirdPartyPaymentStatus") == "PAID_OUT" for x in evs),
            "a PAID_OUT event (the sandbox's last step; a late event may come after it)")
    s.eq(sql_one("SELECT status FROM attempts WHERE payment_link_id = %d" % j["id"]), "PAID_OUT",
         "the link's attempt: PAID_OUT")
    s.eq(e.get("amountInMajorCurrency"), amount, "event amount")
    s.eq(e.get("generatedInvoiceId"), iid, "event invoice")
    s.eq(e.get("paymentMethod"), P1_TYPE, "event paymentMethod = the provider's type")
    s.eq(e.get("customerPaymentType"), "INVOICE", "event customerPaymentType INVOICE")
    s.eq(e.get("currencyId"), 1, "event currencyId")
    s.eq(e.get("description"), desc, "event description = the link's")
    rows = get("/v1/customer-payments?customer_id=%d&page=1&pageSize=1&sort=id:desc" % cid, tok=TOK)
    row = rows.json[0] if isinstance(rows.json, list) and rows.json else {}
    s.eq((row.get("txnType"), row.get("amountInMajorCurrency"), row.get("invoiceId")),
         ("PAYMENT", amount, iid), "ledger: a PAYMENT row of the amount for the invoice")
    s.eq(row.get("resultingCustomerBalance"), bal0 + amount, "ledger: resulting balance")

    # Used: the receipt again, never a second payment.
    g = b.get(url)
    s.eq(g.receipt(), ref, "GET after payment shows the same receipt")
    s.eq(g.status, 410, "GET after payment: 410 (a used link), with the receipt")
    s.check("<form" not in g.body, "GET after payment: no Pay form")
    p = b.post(url, {"csrf": page.csrf()})
    s.eq((p.status, p.receipt()), (410, ref), "POST after payment: 410 with the same receipt")
    s.eq(balance(cid), bal0 + amount, "POST after payment: nothing paid twice")


def browser_origin(page):
    """The Origin header a browser sends when this page's form posts to itself:
    under the page's own referrer policy "no-referrer" the Fetch standard
    serialises it as "null" (Chromium and Firefox do so); else our origin."""
    meta = re.search(r'<meta name="referrer" content="([^"]*)">', page.body)
    policy = (page.header("Referrer-Policy") or (meta.group(1) if meta else "")).split(",")[-1]
    return "null" if policy.strip().lower() == "no-referrer" else BASE


def test_browser_like_post(s):
    """The form POST exactly as a browser sends it from the page: the cookie,
    the field, Sec-Fetch-Site: same-origin and the Origin the page's referrer
    policy makes the browser send (tests/browser/flows.mjs does it for real)."""
    cid, amount = 61, D("0.25")
    j, tok = link(s, "browser-like POST", amountInMajorCurrency=amount,
                  description="Browser-like POST", customerId=cid)
    if not tok:
        return
    b = Browser()
    page = b.get(j["paymentLink"])
    bal0, rows0 = balance(cid), ledger_count(cid)
    origin = browser_origin(page)
    post, p = pay_and_settle(s, b, j["paymentLink"], {"csrf": page.csrf()},
                             "browser-like POST (Origin: %s, Sec-Fetch-Site: same-origin)" % origin,
                             headers={"Origin": origin, "Sec-Fetch-Site": "same-origin",
                                      "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"})
    s.check(p.receipt(), "browser-like POST: receipt reference")
    s.eq((balance(cid), ledger_count(cid)), (bal0 + amount, rows0 + 1), "browser-like POST: paid once")
    if post.status != 303:    # leave no payable link behind
        sql("UPDATE payment_links SET expires_at = UTC_TIMESTAMP() - INTERVAL 1 MINUTE WHERE id = %d"
            % j["id"])


def test_empty_csrf_never_matches(s):
    """An empty cookie and an empty field are equal strings, but no page ever
    issued them: such a POST (e.g. after a cookie was planted by a sibling
    site, with no Origin header) must be refused and pay nothing."""
    cid = 61
    j, tok = link(s, "empty csrf link", amountInMajorCurrency=D("0.50"), description="Empty csrf",
                  customerId=cid)
    if not tok:
        return
    bal0, rows0 = balance(cid), ledger_count(cid)
    for what, hdr in [("with our Origin", {"Origin": BASE}), ("without Origin", {})]:
        p = _plain(j["paymentLink"], b"csrf=", dict(hdr, **{
            "Content-Type": "application/x-www-form-urlencoded", "Cookie": "pay_csrf="}))
        s.eq(p.status, 403, "POST with an empty csrf field and an empty pay_csrf cookie (%s) -> 403"
             % what)
    s.eq((balance(cid), ledger_count(cid)), (bal0, rows0), "empty csrf: nothing paid")
    # clean up: an unpaid link must not stay payable by this hole on a shared stack
    sql("UPDATE payment_links SET expires_at = UTC_TIMESTAMP() - INTERVAL 1 MINUTE WHERE id = %d"
        % j["id"])


def test_adhoc_invoice_payment(s):
    cid, aid = 65, 65
    unpay_invoice(s, 2, aid)
    inv = invoice_row(2, aid)
    bal0 = balance(cid)
    ev0 = len(events("/v1/adhoc-invoice-payments", generatedAdhocInvoiceId=aid))
    j, tok = link(s, "adhoc link", amountInMajorCurrency=D("10.00"), description="Adhoc part",
                  adhocInvoiceId=aid)
    if not tok:
        return
    b = Browser()
    _, p = pay_and_settle(s, b, j["paymentLink"], {"csrf": b.get(j["paymentLink"]).csrf()},
                          "adhoc")
    s.eq(p.status, 410, "adhoc: receipt")
    s.check(p.receipt(), "adhoc: receipt reference")
    s.eq(balance(cid), bal0 + D("10.00"), "adhoc: balance +10.00")
    inv2 = invoice_row(2, aid)
    s.eq(inv2["paid"], inv["paid"] + 1000, "adhoc: invoice paid +10.00")
    s.eq(inv2["status"], "PARTIALLY_PAID", "adhoc: PARTIALLY_PAID")
    evs = events("/v1/adhoc-invoice-payments", generatedAdhocInvoiceId=aid)
    s.check(len(evs) > ev0, "adhoc: the attempt's reports are adhoc invoice payment events")
    e = ([x for x in evs if x.get("thirdPartyPaymentStatus") == "PAID_OUT"] or [{}])[0]
    s.eq((e.get("thirdPartyPaymentStatus"), e.get("amountInMajorCurrency"),
          e.get("generatedAdhocInvoiceId"), e.get("customerPaymentType")),
         ("PAID_OUT", D("10.00"), aid, "ADHOC_INVOICE"),
         "adhoc: the PAID_OUT event (a late event may come after it)")


def test_customer_payment_with_allocation(s):
    cid, amount = 63, D("100.00")
    bal0 = balance(cid)
    # An account-level attempt pays the oldest open invoices, normal and adhoc
    # alike (COLLECTION.md 2).
    unpaid = [((int(r[2]), int(r[0])), int(r[1])) for r in
              sql("SELECT id, amount - paid, kind FROM invoices WHERE customer_id = %d"
                  " AND paid < amount ORDER BY invoice_date, id, kind" % cid)]
    j, tok = link(s, "customer link", amountInMajorCurrency=amount, description="Account payment",
                  customerId=cid)
    if not tok:
        return
    b = Browser()
    _, p = pay_and_settle(s, b, j["paymentLink"], {"csrf": b.get(j["paymentLink"]).csrf()},
                          "customer target")
    s.eq(p.status, 410, "customer target: receipt")
    ref = p.receipt()
    s.eq(balance(cid), bal0 + amount, "customer target: balance +100.00")
    r = get("/v1/customer-payments?customer_id=%d&page=1&pageSize=1&sort=id:desc" % cid, tok=TOK)
    row = r.json[0] if isinstance(r.json, list) and r.json else {}
    s.eq(row.get("txnType"), "PAYMENT", "customer target: newest ledger row is a PAYMENT")
    s.eq(row.get("customerPaymentType"), "CUSTOMER", "customer target: customerPaymentType CUSTOMER")
    s.eq(row.get("amountInMajorCurrency"), amount, "customer target: ledger amount")
    s.eq(row.get("type"), P1_TYPE, "customer target: type = the provider's")
    s.eq(row.get("reference"), ref, "customer target: ledger reference = receipt reference")
    s.eq(ref, sandbox_reference("PAY", "link-payment", tok),
         "the provider call's idempotency key is made from the link's token")
    s.eq(row.get("resultingCustomerBalance"), bal0 + amount, "customer target: resulting balance")
    s.eq(row.get("description"), "Account payment", "customer target: description")
    # Allocation: oldest unpaid NORMAL invoices first.
    want, left = {}, int(amount * 100)
    for iid, open_ in unpaid:
        if left <= 0:
            break
        take = min(open_, left)
        want[iid] = Decimal(take).scaleb(-2)
        left -= take
    evs = events("/v1/invoice-payments", customerPaymentId=row.get("id", 0))
    got = {(1, e["generatedInvoiceId"]): e["amountInMajorCurrency"] for e in evs}
    adhoc_evs = events("/v1/adhoc-invoice-payments", customerPaymentId=row.get("id", 0))
    got.update({(2, e["generatedAdhocInvoiceId"]): e["amountInMajorCurrency"] for e in adhoc_evs})
    evs = evs + adhoc_evs
    s.eq(got, want, "customer target: spread over the oldest unpaid invoices, adhoc too")
    s.check(all(e.get("customerPaymentType") == "CUSTOMER" and
                e.get("thirdPartyPaymentStatus") in ("CONFIRMED", "PAID_OUT") for e in evs),
            "allocation events: CUSTOMER, confirmed", evs)


def test_double_submit_and_replay(s):
    cid, amount = 67, D("7.77")
    bal0, rows0 = balance(cid), ledger_count(cid)
    j, tok = link(s, "double submit link", amountInMajorCurrency=amount, description="Double",
                  customerId=cid)
    if not tok:
        return
    url = j["paymentLink"]
    b = Browser()
    csrf = b.get(url).csrf()
    hdr = {"Content-Type": "application/x-www-form-urlencoded", "Origin": BASE,
           "Cookie": "pay_csrf=" + csrf}
    data = urllib.parse.urlencode({"csrf": csrf}).encode()
    results = [None, None]
    gate = threading.Barrier(2)

    def go(i):
        gate.wait()
        results[i] = _plain(url, data, hdr)

    ts = [threading.Thread(target=go, args=(i,)) for i in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    s.eq(sorted(r.status if r else None for r in results), [303, 303],
         "two POSTs at once: one makes the attempt, the other finds it in progress (303 both)")
    s.eq(sql_one("SELECT COUNT(*) FROM attempts WHERE payment_link_id = %d" % j["id"]), "1",
         "two POSTs at once: one attempt")
    run_engine([cid])
    results = [_plain(url, data, hdr) for _ in range(2)]
    refs = [r.receipt() if r else None for r in results]
    s.check(refs[0] and refs[0] == refs[1], "two POSTs at once: the same receipt", refs)
    s.eq(ledger_count(cid), rows0 + 1, "two POSTs at once: exactly one ledger row")
    s.eq(balance(cid), bal0 + amount, "two POSTs at once: paid once")
    p = _plain(url, data, hdr)
    s.eq((p.status, p.receipt()), (410, refs[0]), "replayed POST: 410 with the same receipt")
    s.eq(ledger_count(cid), rows0 + 1, "replayed POST: no new ledger row")
    s.eq(balance(cid), bal0 + amount, "replayed POST: balance unchanged")
    g = Browser().get(url)
    s.eq(g.receipt(), refs[0], "GET (new browser) after payment: the receipt")
    s.eq(sql_one("SELECT COUNT(*) FROM ledger WHERE customer_id = %d AND reference = '%s'"
                 % (cid, (refs[0] or "").replace("'", ""))), "1",
         "one ledger row carries the receipt reference")


def test_failure_and_try_again(s):
    """A payment the provider fails (the sandbox fails amounts ending in 13):
    the page shows the failure and lets the customer try again, which is a
    new attempt (a new key); no money moves."""
    cid, amount = 61, D("0.13")
    j, tok = link(s, "failing link", amountInMajorCurrency=amount, description="Fails",
                  customerId=cid)
    if not tok:
        return
    url = j["paymentLink"]
    b = Browser()
    bal0, rows0 = balance(cid), ledger_count(cid)
    _, p = pay_and_settle(s, b, url, {"csrf": b.get(url).csrf()}, "failing payment")
    s.eq(p.status, 200, "failed payment: the page again (200)")
    s.check('id="payment-failed"' in p.body and "try again" in p.body.lower() and
            "<form" in p.body and p.receipt() is None,
            "failed payment: the failure, no receipt, and the Pay button again", p.body[-800:])
    s.eq((balance(cid), ledger_count(cid)), (bal0, rows0), "failed payment: no money moved")
    _, p = pay_and_settle(s, b, url, {"csrf": p.csrf()}, "try again")
    s.check('id="payment-failed"' in p.body, "tried again: fails again (same amount)")
    keys = [x[0] for x in sql("SELECT idempotency_key FROM attempts WHERE payment_link_id = %d"
                              " ORDER BY id" % j["id"])]
    s.eq((len(keys), len(set(keys))), (2, 2), "two tries: two attempts with their own keys")
    s.eq((balance(cid), ledger_count(cid)), (bal0, rows0), "tried again: still no money moved")
    sql("UPDATE payment_links SET expires_at = UTC_TIMESTAMP() - INTERVAL 1 MINUTE WHERE id = %d"
        % j["id"])


def test_expired_unknown_malformed(s):
    cid = 61
    j, tok = link(s, "to expire", amountInMajorCurrency=D("2.00"), description="Expiring",
                  customerId=cid)
    if not tok:
        return
    url = j["paymentLink"]
    b = Browser()
    csrf = b.get(url).csrf()
    sql("UPDATE payment_links SET expires_at = UTC_TIMESTAMP() - INTERVAL 1 MINUTE WHERE id = %d"
        % j["id"])
    bal0, rows0 = balance(cid), ledger_count(cid)
    g = b.get(url)
    s.eq(g.status, 410, "expired link: GET -> 410")
    s.check("expired" in g.body.lower() and "<form" not in g.body, "expired page says so, no form")
    check_page_headers(s, g, "410 page")
    p = b.post(url, {"csrf": csrf})
    s.eq(p.status, 410, "expired link: POST -> 410")
    s.eq((balance(cid), ledger_count(cid)), (bal0, rows0), "expired link: nothing paid")

    for what, t in [("unknown token", "A" * 43), ("unknown token 2", tok[:-1] + ("B" if tok[-1] != "B" else "C"))]:
        g = Browser().get(BASE + "/pay/" + t)
        s.eq(g.status, 404, what + " -> 404")
        s.check("<form" not in g.body and "not" in g.body.lower(), what + ": a clear page")
        s.eq(g.header("Content-Type"), "text/html; charset=utf-8", what + ": HTML")
    for what, t in [("short", "abc"), ("42 chars", tok[:42]), ("44 chars", tok + "A"),
                    ("padding", tok[:42] + "="), ("dot", tok[:42] + "."),
                    ("percent-encoded", tok[:40] + "%2F"), ("trailing path", tok + "/x"),
                    ("query only", "?t=" + tok), ("unicode", tok[:42] + "%C3%A9")]:
        g = Browser().get(BASE + "/pay/" + t)
        s.eq(g.status, 404, "malformed token (%s) -> 404" % what)
    g = _plain(BASE + "/pay/abc", b"csrf=x", {"Content-Type": "application/x-www-form-urlencoded"})
    s.eq(g.status, 404, "POST to a malformed token -> 404")


def test_description_escaped(s):
    desc = "<script>alert(1)</script> \"><img src=x onerror=alert(2)> & 'q'"
    j, tok = link(s, "hostile description", amountInMajorCurrency=D("1.00"), description=desc,
                  customerId=61)
    if not tok:
        return
    s.eq(j.get("description"), desc, "API echoes the description as given")
    p = Browser().get(j["paymentLink"])
    s.eq(p.status, 200, "hostile description: page")
    body = p.body.lower()
    s.check("<script" not in body, "no <script> element on the page")
    s.check("<img" not in body, "no <img> element on the page")
    s.check(html_escape(desc) in p.body, "description shown HTML-escaped", p.body[-700:])


if __name__ == "__main__":
    Suite().run([test_create_shape, test_create_validation, test_landing_page,
                 test_csrf_refusals_then_invoice_payment, test_browser_like_post,
                 test_empty_csrf_never_matches,
                 test_adhoc_invoice_payment,
                 test_customer_payment_with_allocation, test_double_submit_and_replay,
                 test_failure_and_try_again,
                 test_expired_unknown_malformed, test_description_escaped])
