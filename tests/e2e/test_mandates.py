"""End-to-end tests of the mandate operations (spec 4.2-4.4, 1.7) and the
sandbox provider's hosted mandate page GET/POST /mandate/{flowToken}:

  POST/GET /v1/site-payment-mandates
  GET /v1/payment-provider-mandates/{paymentMethod}/{mandateReference}
  GET /v1/instant-bank-payment-for-mandate

The page is driven over plain HTTP like a browser without JavaScript would
(urllib with a cookie jar, redirects not followed so the 303 can be seen).

Sites written (nobody else touches them): 91 (customer 69, owner 1: the main
flow), 92 and 93 (customer 70, owner 1: expiry, INACTIVE provider, refusals,
the Stripe flow),
102 (customer 77, owner 2: instant bank payment with FINASTRA). Site 91's
payment method is put back to its fixture value first and customer 77's
balance is set to an exact debt first, so the file passes when run again on
the same stack.

Payment providers: the fixture's ids 1, 2, 4, 5 are used when they are
there and look as expected, otherwise equivalent providers are inserted with
SQL. Provider 5 (FINASTRA, owner 2, instantBankPayments) gets
syncInstantBankPaymentsWithMandateCreation set with SQL for the instant
payment case and its old value back afterwards; the flow is pointed at it
with SQL (owner 2's direct debit provider is GoCardless, id 2).
"""
import datetime
import http.cookiejar
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request

from paytest import *

TOK = token()                                   # contract owners 1 and 2
TOK1 = token(sub="e2e-mandates-1", owners="1")
TOK2 = token(sub="e2e-mandates-2", owners="2")
TOK3 = token(sub="e2e-mandates-3", owners="3")
READ = token(sub="e2e-mandates-read", scope="payments:read")
PATH = "/v1/site-payment-mandates"
FIELDS = {"id", "siteId", "returnURL", "redirectURL", "exitURL", "flowToken", "mandateReference",
          "thirdPartyCustomerReference"}
PM_FIELDS = {"mandateReference", "thirdPartyCustomerReference", "createdAt", "emailAddress",
             "firstName", "lastName", "companyName", "addressLine1", "addressLine2",
             "addressLine3", "city", "region", "postcode", "countryCode", "telephoneNumber",
             "status"}
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")
RETURN = "https://shop.example/mandate/return?site=91"
EXIT = "https://shop.example/mandate/exit"
D = Decimal


# ---------------------------------------------------------------- providers

# fixture id: (type, status, owners, instant bank payments)
WANT = {1: ("GO_CARDLESS", "ACTIVE", {1}, 0), 2: ("GO_CARDLESS", "ACTIVE", {2}, 0),
        4: ("STRIPE", "INACTIVE", {1}, 0), 5: ("FINASTRA", "ACTIVE", {2}, 1)}


def provider_matches(pid, typ, status, owners, instant):
    row = sql("SELECT type, status, instant_bank_payments FROM payment_providers WHERE id = %d" % pid)
    got = {int(r[0]) for r in
           sql("SELECT contract_owner_id FROM payment_provider_owners WHERE provider_id = %d" % pid)}
    return (bool(row) and row[0][0] == typ and row[0][1] == status and got == owners
            and int(row[0][2]) >= instant)


def provider(pid):
    """The id of a provider like fixture provider pid: pid itself when the
    fixture (or an earlier run) has it, else one inserted here."""
    typ, status, owners, instant = WANT[pid]
    name = "e2e mandates provider %d" % pid
    flags = "%d, %d" % (instant, instant)      # instant_bank_payments, retry_if_possible
    sql("INSERT IGNORE INTO payment_providers (id, type, name, status, instant_bank_payments,"
        " retry_if_possible) VALUES (%d, '%s', '%s', '%s', %s)" % (pid, typ, name, status, flags))
    if sql_one("SELECT name FROM payment_providers WHERE id = %d" % pid) == name:
        for o in owners:
            sql("INSERT IGNORE INTO payment_provider_owners VALUES (%d, %d)" % (pid, o))
    if provider_matches(pid, typ, status, owners, instant):
        return pid
    alt = sql_one("SELECT MIN(id) FROM payment_providers WHERE name = '%s (alt)'" % name)
    if alt in (None, "NULL"):
        sql("INSERT INTO payment_providers (type, name, status, instant_bank_payments,"
            " retry_if_possible) VALUES ('%s', '%s (alt)', '%s', %s)" % (typ, name, status, flags))
        alt = sql_one("SELECT MAX(id) FROM payment_providers WHERE name = '%s (alt)'" % name)
        for o in owners:
            sql("INSERT IGNORE INTO payment_provider_owners VALUES (%s, %d)" % (alt, o))
    return int(alt)


P1, P2, P4, P5 = provider(1), provider(2), provider(4), provider(5)


# ---------------------------------------------------------------- helpers

def dumps(obj):
    if isinstance(obj, Decimal):
        return format(obj, "f")
    if isinstance(obj, dict):
        return "{" + ",".join(json.dumps(k) + ":" + dumps(v) for k, v in obj.items()) + "}"
    return json.dumps(obj)


def today():
    return datetime.datetime.now(datetime.timezone.utc).date().isoformat()


def create(tok=TOK, **body):
    return post(PATH, raw=dumps(body), tok=tok)


def start(s, what, site, tok=TOK, **body):
    body.setdefault("returnURL", RETURN)
    r = create(tok=tok, siteId=site, **body)
    s.status(r, 201, what + ": create site payment mandate")
    return r.json or {}


def mandates(siteId, tok=TOK):
    r = get(PATH + "?page=1&pageSize=1000&siteId=%d" % siteId, tok=tok)
    return r.json if isinstance(r.json, list) else []


def mandate(mid, site, tok=TOK):
    for m in mandates(site, tok):
        if m.get("id") == mid:
            return m
    return {}


def add_adhoc_invoice(cid, amount_minor, date):
    """Raises an adhoc invoice straight in the database, the way the loader
    does (ledger row, balance); returns its id."""
    rows = sql(
        "START TRANSACTION;"
        "SELECT balance, currency_id INTO @b, @cur FROM customers WHERE id = %(c)d FOR UPDATE;"
        "SELECT COALESCE(MAX(id), 0) + 1 INTO @iid FROM invoices WHERE kind = 2 FOR UPDATE;"
        "INSERT INTO invoices (kind, id, customer_id, bill_run_id, invoice_number,"
        " invoice_date, amount) VALUES (2, @iid, %(c)d, 3, CONCAT('E2E-MD-', @iid),"
        " '%(d)s', %(a)d);"
        "SET @b = @b - %(a)d;"
        "INSERT INTO ledger (customer_id, txn_type, customer_payment_type, amount,"
        " resulting_balance, currency_id, payment_date, invoice_kind, invoice_id,"
        " invoice_number, bill_run_type) VALUES (%(c)d, 'ADHOC_INVOICE_CREATED',"
        " 'ADHOC_INVOICE', -%(a)d, @b, @cur, UTC_DATE(), 2, @iid, CONCAT('E2E-MD-', @iid),"
        " 'ADHOC');"
        "UPDATE customers SET balance = @b, payments_since_invoice = 0 WHERE id = %(c)d;"
        "COMMIT;"
        "SELECT @iid;" % dict(c=cid, a=amount_minor, d=date))
    return int(rows[-1][0])


def balance(cid):
    r = get("/v1/customer-balances?customer_id=%d" % cid, tok=TOK)
    return r.json["balance"] if r.json else None


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


class Page:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def header(self, name):
        return self.headers.get(name)

    def csrf(self):
        m = re.search(r'<input type="hidden" name="csrf" value="([^"]*)">', self.body)
        return m.group(1) if m else None

    def input_value(self, name):
        m = re.search(r'<input[^>]*name="%s"[^>]*>' % name, self.body)
        v = re.search(r'value="([^"]*)"', m.group(0)) if m else None
        return v.group(1) if v else None

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

    def get(self, url):
        return self.open("GET", url)

    def post(self, url, fields, headers=None):
        h = {"Content-Type": "application/x-www-form-urlencoded", "Origin": BASE,
             "Sec-Fetch-Site": "same-origin"}
        h.update(headers or {})
        return self.open("POST", url, urllib.parse.urlencode(fields).encode(), h)


def plain_post(url, fields, headers):
    req = urllib.request.Request(url, data=urllib.parse.urlencode(fields).encode(), method="POST")
    req.add_header("Content-Type", "application/x-www-form-urlencoded")
    for k, v in headers.items():
        req.add_header(k, v)
    try:
        with urllib.request.build_opener(NoRedirect).open(req, timeout=30) as r:
            return Page(r.status, r.headers, r.read().decode("utf-8", "replace"))
    except urllib.error.HTTPError as e:
        return Page(e.code, e.headers, e.read().decode("utf-8", "replace"))


def bank(name="Jane Doe", sort="12-34-56", acct="12345678"):
    return {"accountHolderName": name, "sortCode": sort, "accountNumber": acct}


def complete(s, what, m, details=None):
    """Runs the hosted page: GET the form, POST the details; returns the POST page."""
    b = Browser()
    p = b.get(m.get("redirectURL", ""))
    s.eq(p.status, 200, what + ": GET the mandate page")
    f = dict(bank() if details is None else details, csrf=p.csrf() or "")
    return b.post(m.get("redirectURL", ""), f)


# ---------------------------------------------------------------- tests

def test_create_and_list(s):
    m = start(s, "site 91", 91, exitURL=EXIT)
    s.eq(set(m.keys()), FIELDS, "mandate: fields")
    s.check(isinstance(m.get("id"), int) and m["id"] > 0, "mandate: id", m.get("id"))
    s.eq(m.get("siteId"), 91, "mandate: siteId")
    s.eq(m.get("returnURL"), RETURN, "mandate: returnURL")
    s.eq(m.get("exitURL"), EXIT, "mandate: exitURL")
    tok = m.get("flowToken") or ""
    s.check(TOKEN_RE.match(tok) is not None, "flowToken: 43 base64url characters", tok)
    s.eq(m.get("redirectURL"), BASE + "/mandate/" + tok, "redirectURL = base URL /mandate/{flowToken}")
    s.eq(m.get("mandateReference"), None, "no mandateReference before the flow completes")
    r = create(siteId=91, returnURL=RETURN)
    loc = r.header("Location") or ""
    s.eq(loc, "/v1/site-payment-mandates/%s" % (r.json or {}).get("id"), "201 Location: the new mandate")
    g = get(loc, tok=TOK)
    s.eq((g.status, g.json), (200, r.json), "GET Location: the object the 201 answered with")
    s.eq(get(loc + "?fields=id,siteId", tok=TOK).json, {"id": (r.json or {}).get("id"), "siteId": 91},
         "GET by id with fields")
    s.error(get(loc, tok=TOK2), 404, "NOT_FOUND", "owner 2 cannot get owner 1's mandate by id")
    s.error(get(PATH + "/0", tok=TOK), 400, "INVALID_PARAMETER", "mandate id 0: 400")
    s.error(get(PATH + "/999999999", tok=TOK), 404, "NOT_FOUND", "unknown mandate id: 404")
    m2 = start(s, "site 91 again", 91)
    s.check(m2.get("flowToken") and m2.get("flowToken") != tok, "each flow has its own token")
    s.eq(m2.get("exitURL"), None, "exitURL absent: null")
    r = create(siteId=91, returnURL="http://127.0.0.1:9/x", redirectURL="https://evil.example/x")
    s.status(r, 201, "redirectURL given in the body")
    s.check((r.json or {}).get("redirectURL", "").startswith(BASE + "/mandate/"),
            "redirectURL is always the provider's hosted page", (r.json or {}).get("redirectURL"))
    long_url = "https://shop.example/" + "r" * (255 - len("https://shop.example/"))
    r = create(siteId=91, returnURL=long_url)
    s.status(r, 201, "returnURL of exactly 255 characters")

    # list, siteId filter, tenancy
    items = mandates(91)
    s.check(m.get("id") in [i.get("id") for i in items], "list ?siteId=91 has the new mandate")
    s.check(all(i.get("siteId") == 91 for i in items), "list ?siteId=91: only site 91")
    s.check(all(set(i) == FIELDS for i in items), "list items: fields")
    got = [i for i in items if i.get("id") == m.get("id")]
    s.eq(got[0] if got else None, m, "listed mandate = created mandate")
    r = get(PATH + "?page=1&pageSize=1000", tok=TOK)
    s.status(r, 200, "list without filter")
    s.check(m.get("id") in [i.get("id") for i in r.json or []], "full list has the mandate")
    s.eq(mandates(91, tok=TOK2), [], "owner 2 does not see site 91's mandates")
    r = get(PATH + "?page=1&pageSize=1000", tok=TOK2)
    sites1 = {int(x[0]) for x in sql("SELECT s.id FROM sites s JOIN customers c ON c.id ="
                                     " s.customer_id WHERE c.contract_owner_id <> 2")}
    s.check(r.status == 200 and not any(i.get("siteId") in sites1 for i in r.json or []),
            "owner 2's list has only owner 2's sites")
    s.eq(mandates(91, tok=TOK3), [], "owner 3 does not see site 91's mandates")
    s.eq(len(mandates(91, tok=READ)) >= 1, True, "payments:read may list")
    for bad in ["abc", "0", "-1", "in:91,92"]:
        r = get(PATH + "?page=1&pageSize=10&siteId=" + urllib.parse.quote(bad), tok=TOK)
        s.error(r, 400, "INVALID_PARAMETER", "siteId=%s -> 400" % bad, field="siteId")
    s.status(get(PATH + "?pageSize=10", tok=TOK), 400, "list without page -> 400")
    r = get(PATH + "?page=1&pageSize=10&siteId=91&fields=id,flowToken", tok=TOK)
    s.check(r.status == 200 and all(set(i) == {"id", "flowToken"} for i in r.json or []),
            "fields=id,flowToken")


def test_create_validation(s):
    before = int(sql_one("SELECT COUNT(*) FROM site_payment_mandates"))

    def bad(what, body, field=None, code=None, status=400, tok=TOK):
        r = post(PATH, raw=body if isinstance(body, str) else dumps(body), tok=tok)
        if code:
            s.error(r, status, code, what, field=field)
        else:
            s.status(r, status, what)
            if field is not None and r.json:
                s.eq(r.json.get("field"), field, what + " (field)")

    bad("returnURL missing", {"siteId": 91}, "returnURL", "MISSING_FIELD")
    for url in ["javascript:alert(1)", "JavaScript:alert(1)", "ftp://shop.example/x", "/relative",
                "shop.example/x", "data:text/html,hi", "https://", "http://",
                "https://" + "a" * 250 + ".example", "https://shop example/x",
                "https://shop.example/\u0001", "", "//shop.example/x"]:
        bad("returnURL %r" % url[:40], {"siteId": 91, "returnURL": url}, "returnURL")
    bad("returnURL not a string", {"siteId": 91, "returnURL": 5}, "returnURL")
    bad("exitURL javascript:", {"siteId": 91, "returnURL": RETURN, "exitURL": "javascript:x()"},
        "exitURL")
    bad("exitURL too long", {"siteId": 91, "returnURL": RETURN, "exitURL": "https://e.example/" + "x" * 240},
        "exitURL")
    bad("redirectURL javascript:", {"siteId": 91, "returnURL": RETURN, "redirectURL": "javascript:x()"},
        "redirectURL")
    bad("siteId missing", {"returnURL": RETURN}, "siteId", "MISSING_FIELD")
    bad("unknown site", {"siteId": 999999, "returnURL": RETURN}, "siteId", "UNKNOWN_REFERENCE")
    bad("another tenant's site (105, owner 3)", {"siteId": 105, "returnURL": RETURN}, "siteId",
        "UNKNOWN_REFERENCE")
    bad("owner 1's site with an owner 2 token", {"siteId": 91, "returnURL": RETURN}, "siteId",
        "UNKNOWN_REFERENCE", tok=TOK2)
    bad("siteId 0", {"siteId": 0, "returnURL": RETURN}, "siteId")
    bad("siteId as string", {"siteId": "91", "returnURL": RETURN}, "siteId")
    bad("unknown field", {"siteId": 91, "returnURL": RETURN, "mandateRef": "x"},
        "mandateRef", "UNKNOWN_FIELD")
    bad("read-only token", {"siteId": 91, "returnURL": RETURN}, status=403, tok=READ)
    bad("no token", {"siteId": 91, "returnURL": RETURN}, status=401, tok=None)
    s.eq(int(sql_one("SELECT COUNT(*) FROM site_payment_mandates")), before,
         "no mandate stored by a refusal")


def test_flow(s):
    sql("UPDATE sites SET payment_method = 'CREDIT_CARD' WHERE id = 91")   # the fixture's value
    m = start(s, "flow", 91, exitURL=EXIT)
    url = m.get("redirectURL", "")
    b = Browser()
    p = b.get(url)
    s.eq(p.status, 200, "GET mandate page")
    s.eq(p.header("Content-Type"), "text/html; charset=utf-8", "mandate page: HTML")
    csp = p.header("Content-Security-Policy") or ""
    s.check("default-src 'none'" in csp and "unsafe-inline" not in csp
            and re.search(r"style-src 'nonce-[^']+'", csp), "mandate page: CSP with a nonce", csp)
    s.check("https://shop.example" in csp.split("form-action", 1)[-1].split(";")[0],
            "CSP form-action allows the returnURL origin (the 303 after the POST)", csp)
    s.eq(p.header("X-Frame-Options"), "DENY", "mandate page: X-Frame-Options DENY")
    s.eq(p.header("X-Content-Type-Options"), "nosniff", "mandate page: nosniff")
    s.check("<script" not in p.body.lower(), "mandate page: no script")
    s.check(re.search(r'<form method="post" action="/mandate/%s"' % re.escape(m.get("flowToken", "")),
                      p.body) is not None, "mandate page: POST form to itself")
    for name in ["accountHolderName", "sortCode", "accountNumber", "csrf"]:
        s.check('name="%s"' % name in p.body, "mandate page: field " + name)
    s.check("Acme Energy" in p.body and "Site 91" in p.body, "mandate page: owner and site")
    s.check('type="submit"' in p.body, "mandate page: submit button")

    # CSRF refusals leave the flow untouched
    csrf = p.csrf()
    for what, hdr in [("no cookie", {"Origin": BASE}),
                      ("evil Origin", {"Origin": "https://evil.example", "Cookie": "pay_csrf=" + csrf}),
                      ("Sec-Fetch-Site cross-site",
                       {"Sec-Fetch-Site": "cross-site", "Cookie": "pay_csrf=" + csrf})]:
        r = plain_post(url, dict(bank(), csrf=csrf), hdr)
        s.eq(r.status, 403, "mandate POST with %s -> 403" % what)
    r = plain_post(url, dict(bank(), csrf="x" * len(csrf)), {"Cookie": "pay_csrf=" + csrf, "Origin": BASE})
    s.eq(r.status, 403, "mandate POST with a wrong csrf -> 403")
    s.eq(mandate(m.get("id"), 91).get("mandateReference"), None, "refused POSTs: no mandate")

    # Invalid details: 422, the message and the form again; the flow stays open.
    for what, details, needle in [
            ("bad sort code (5 digits)", bank(sort="12-34-5"), "sort code"),
            ("bad sort code (letters)", bank(sort="12-34-5a"), "sort code"),
            ("bad sort code (7 digits)", bank(sort="1234567"), "sort code"),
            ("bad account number (7 digits)", bank(acct="1234567"), "account number"),
            ("bad account number (dots)", bank(acct="1234.5678"), "account number"),
            ("no name", bank(name=""), "name")]:
        p = b.post(url, dict(details, csrf=p.csrf() or ""))
        s.eq(p.status, 422, what + " -> 422")
        err = re.search(r'<p class="error" role="alert">([^<]*)</p>', p.body)
        s.check(err is not None and needle in err.group(1).lower(),
                what + ": error message about the " + needle, err.group(1) if err else p.body[-400:])
        s.check('name="sortCode"' in p.body and p.csrf(), what + ": the form again")
        if details["accountHolderName"]:
            s.eq(p.input_value("accountHolderName"), "Jane Doe", what + ": the name is kept")
    s.eq(mandate(m.get("id"), 91).get("mandateReference"), None, "422s: no mandate yet")

    # Valid: 303 to returnURL (spaces and dashes allowed in the numbers).
    p = b.post(url, dict(bank(name="Jane Doe", sort="12 34-56", acct="1234 5678"), csrf=p.csrf()))
    s.eq(p.status, 303, "valid details -> 303")
    s.eq(p.header("Location"), RETURN, "303 Location = returnURL")
    after = mandate(m.get("id"), 91)
    ref = after.get("mandateReference")
    s.check(isinstance(ref, str) and len(ref) > 0, "the mandate now has a mandateReference", after)
    s.eq(sql_one("SELECT payment_method FROM sites WHERE id = 91"), "GO_CARDLESS",
         "site 91's payment method is now the provider's type")
    r = get("/v1/customer-balances?customer_id=69", tok=TOK)
    s.eq(((r.json or {}).get("paymentMethodSummary") or {}).get("paymentMethod"), "GO_CARDLESS",
         "customer 69's payment method summary shows GO_CARDLESS")
    s.eq(sql_one("SELECT COUNT(*) FROM provider_mandates WHERE account_holder_name = 'Jane Doe'"
                 " AND sort_code = '123456' AND mandate_reference = '%s'" % (ref or "")), "1",
         "the provider holds the mandate (sort code digits only)")
    s.eq(sql_one("SELECT COUNT(*) FROM provider_mandates WHERE mandate_reference = '%s'"
                 " AND account_number_last4 <> '5678'" % (ref or "")), "0",
         "only the account number's last four digits are kept")

    # Single use
    g = b.get(url)
    s.eq(g.status, 410, "flow token used: GET -> 410")
    s.check("<form" not in g.body, "410 page: no form")
    ck = next((c.value for c in b.jar if c.name == "pay_csrf"), "")
    p2 = b.post(url, dict(bank(name="Mallory"), csrf=ck))
    s.eq(p2.status, 410, "flow token used: POST -> 410")
    s.eq(mandate(m.get("id"), 91).get("mandateReference"), ref, "second POST: reference unchanged")

    # The provider's view
    pm_path = "/v1/payment-provider-mandates/GO_CARDLESS/" + urllib.parse.quote(ref or "x")
    r = get(pm_path, tok=TOK)
    s.status(r, 200, "GET payment-provider-mandates/GO_CARDLESS/{ref}")
    j = r.json or {}
    s.eq(set(j.keys()), PM_FIELDS, "provider mandate: fields")
    s.eq(j.get("mandateReference"), ref, "provider mandate: mandateReference")
    s.eq(j.get("status"), "ACTIVE", "provider mandate: ACTIVE")
    s.eq((j.get("firstName"), j.get("lastName")), ("Jane", "Doe"),
         "provider mandate: names split from the holder name")
    s.check(re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z", j.get("createdAt") or ""),
            "provider mandate: createdAt RFC 3339 UTC", j.get("createdAt"))
    s.status(get(pm_path + "?contractOwnerId=1", tok=TOK), 200, "contractOwnerId=1 -> 200")
    s.status(get(pm_path + "?contractOwnerId=2", tok=TOK), 404, "contractOwnerId=2 -> 404")
    s.error(get(pm_path + "?contractOwnerId=abc", tok=TOK), 400, "INVALID_PARAMETER",
            "contractOwnerId=abc -> 400", field="contractOwnerId")
    s.status(get(pm_path, tok=TOK2), 404, "owner 2 token: another owner's mandate -> 404")
    s.status(get(pm_path, tok=TOK1), 200, "owner 1 token -> 200")
    s.status(get(pm_path, tok=READ), 200, "payments:read may get it")
    s.status(get(pm_path), 401, "no token -> 401")
    s.error(get("/v1/payment-provider-mandates/GO_CARDLESS/SBX-MD-unknown", tok=TOK), 404,
            "NOT_FOUND", "unknown mandate -> 404")
    s.status(get("/v1/payment-provider-mandates/FINASTRA/" + urllib.parse.quote(ref or "x"),
                 tok=TOK), 404, "the reference under another method -> 404")
    s.error(get("/v1/payment-provider-mandates/STRIPE/" + urllib.parse.quote(ref or "x"), tok=TOK),
            400, "MISSING_PARAMETER", "Stripe method without thirdPartyCustomerReference -> 400",
            field="thirdPartyCustomerReference")
    s.status(get("/v1/payment-provider-mandates/STRIPE_DD/x", tok=TOK), 400,
             "STRIPE_DD without thirdPartyCustomerReference -> 400")
    s.status(get("/v1/payment-provider-mandates/STRIPE/x?thirdPartyCustomerReference=cus_1",
                 tok=TOK), 404, "Stripe with thirdPartyCustomerReference, unknown -> 404")
    s.status(get(pm_path + "?thirdPartyCustomerReference=" + "c" * 101, tok=TOK), 400,
             "thirdPartyCustomerReference of 101 chars -> 400")
    # thirdPartyCustomerReference is matched only for Stripe methods: for a
    # GoCardless mandate it never hides it, and an empty value is absent
    r = get(pm_path + "?thirdPartyCustomerReference=cus_anything", tok=TOK)
    s.status(r, 200, "GO_CARDLESS with a thirdPartyCustomerReference -> 200 (not matched)")
    s.eq((r.json or {}).get("mandateReference"), ref, "GO_CARDLESS with a customer id: the mandate")
    s.status(get(pm_path + "?thirdPartyCustomerReference=", tok=TOK), 200,
             "GO_CARDLESS with an empty thirdPartyCustomerReference -> 200")
    s.error(get("/v1/payment-provider-mandates/STRIPE/x?thirdPartyCustomerReference=", tok=TOK),
            400, "MISSING_PARAMETER", "Stripe with an empty thirdPartyCustomerReference -> 400",
            field="thirdPartyCustomerReference")
    s.error(get("/v1/payment-provider-mandates/BITCOIN/x", tok=TOK), 400, "INVALID_PARAMETER",
            "unknown paymentMethod -> 400", field="paymentMethod")
    s.status(get(pm_path + "?foo=1", tok=TOK), 400, "unknown query parameter -> 400")


def test_expired_inactive_unknown(s):
    # Expired flow
    m = start(s, "to expire", 92)
    b = Browser()
    p = b.get(m.get("redirectURL", ""))
    sql("UPDATE site_payment_mandates SET flow_expires_at = UTC_TIMESTAMP() - INTERVAL 1 MINUTE"
        " WHERE id = %d" % m.get("id", 0))
    g = b.get(m.get("redirectURL", ""))
    s.eq(g.status, 410, "expired flow: GET -> 410")
    s.check("expired" in g.body.lower() and "<form" not in g.body, "expired flow: a clear page")
    g = b.post(m.get("redirectURL", ""), dict(bank(), csrf=p.csrf() or ""))
    s.eq(g.status, 410, "expired flow: POST -> 410")
    s.eq(mandate(m.get("id"), 92).get("mandateReference"), None, "expired flow: no mandate")

    # The provider is INACTIVE: the page sends the customer to exitURL.
    m = start(s, "inactive provider", 93, exitURL=EXIT)
    b = Browser()
    p = b.get(m.get("redirectURL", ""))
    sql("UPDATE site_payment_mandates SET provider_id = %d WHERE id = %d" % (P4, m.get("id", 0)))
    g = b.get(m.get("redirectURL", ""))
    s.eq(g.status, 303, "provider INACTIVE: GET -> 303")
    s.eq(g.header("Location"), EXIT, "provider INACTIVE: sent to exitURL")
    g = b.post(m.get("redirectURL", ""), dict(bank(), csrf=p.csrf() or ""))
    s.eq((g.status, g.header("Location")), (303, EXIT), "provider INACTIVE: POST -> 303 exitURL")
    s.eq(mandate(m.get("id"), 93).get("mandateReference"), None, "provider INACTIVE: no mandate")

    # Unknown and malformed flow tokens
    for what, t in [("unknown", "A" * 43), ("short", "abc"), ("44 chars", "A" * 44),
                    ("bad characters", "A" * 42 + "."), ("trailing path", "A" * 43 + "/x")]:
        g = Browser().get(BASE + "/mandate/" + t)
        s.eq(g.status, 404, "%s flow token -> 404" % what)


def test_stripe_customer_reference(s):
    """A Stripe mandate needs the Stripe customer id (spec 4.2): the sandbox
    gives one, the mandate carries it as thirdPartyCustomerReference, and the
    provider-mandate fetch, which requires it for Stripe, finds the mandate.
    The flow of site 93 is pointed at fixture provider 4 (STRIPE, owner 1),
    made ACTIVE for the moment; its status and the site's method are put back."""
    old = sql("SELECT payment_method IS NULL, COALESCE(payment_method, '') FROM sites"
              " WHERE id = 93")[0]
    m = start(s, "stripe flow", 93)
    sql("UPDATE site_payment_mandates SET provider_id = %d WHERE id = %d" % (P4, m.get("id", 0)))
    sql("UPDATE payment_providers SET status = 'ACTIVE' WHERE id = %d" % P4)
    try:
        p = complete(s, "stripe flow", m)
    finally:
        sql("UPDATE payment_providers SET status = 'INACTIVE' WHERE id = %d" % P4)
        sql("UPDATE sites SET payment_method = %s WHERE id = 93"
            % ("NULL" if old[0] == "1" else "'%s'" % old[1]))
    s.eq((p.status, p.header("Location")), (303, RETURN), "stripe flow: completed, sent to returnURL")
    got = get("/v1/site-payment-mandates/%d" % m.get("id", 0), tok=TOK).json or {}
    ref, cus = got.get("mandateReference") or "", got.get("thirdPartyCustomerReference") or ""
    s.check(ref and cus.startswith("SBX-CUS-"),
            "stripe mandate: a mandateReference and a Stripe customer id", got)
    # The provider call carries an idempotency key made from the flow token and
    # the details entered (bank() as submitted, the sort code's digits), so
    # pressing the button again could never set up a second mandate.
    flow_tok = m.get("flowToken") or ""
    s.eq(m.get("redirectURL", "").rsplit("/", 1)[-1], flow_tok, "the page's token is the flowToken")
    basis = "\n".join([flow_tok, "Jane Doe", "123456", "12345678"])
    s.eq((ref, cus), (sandbox_reference("MD", "mandate", basis),
                      sandbox_reference("CUS", "mandate", basis)),
         "stripe mandate: references follow the call's idempotency key (token and details)")
    base = "/v1/payment-provider-mandates/STRIPE/" + ref
    s.error(get(base, tok=TOK), 400, "MISSING_PARAMETER", "stripe fetch without the customer id",
            field="thirdPartyCustomerReference")
    r = get(base + "?thirdPartyCustomerReference=" + cus, tok=TOK)
    s.status(r, 200, "stripe fetch with the customer id")
    s.eq(((r.json or {}).get("thirdPartyCustomerReference"), (r.json or {}).get("status")),
         (cus, "ACTIVE"), "stripe fetch: the customer id, ACTIVE")
    s.error(get(base + "?thirdPartyCustomerReference=cus_other", tok=TOK), 404, "NOT_FOUND",
            "stripe fetch with another customer id: 404")
    flow = get("/v1/site-payment-mandates?page=1&pageSize=1000&siteId=91",
                             tok=TOK).json or []
    done = [x for x in flow if x.get("mandateReference")]
    s.check(done and all(x.get("thirdPartyCustomerReference") is None for x in done),
            "GoCardless mandates (site 91) carry no customer id", done[:2])


def test_browser_like_post(s):
    """The form POST exactly as a browser sends it from the page: under the
    page's own referrer policy "no-referrer" the Fetch standard makes the
    browser send Origin: null (tests/browser/flows.mjs does it for real)."""
    m = start(s, "browser-like POST", 92, returnURL="https://shop.example/back-92")
    b = Browser()
    page = b.get(m.get("redirectURL", ""))
    meta = re.search(r'<meta name="referrer" content="([^"]*)">', page.body)
    policy = (page.header("Referrer-Policy") or (meta.group(1) if meta else "")).split(",")[-1]
    origin = "null" if policy.strip().lower() == "no-referrer" else BASE
    p = b.post(m.get("redirectURL", ""), dict(bank(), csrf=page.csrf() or ""),
               headers={"Origin": origin, "Sec-Fetch-Site": "same-origin",
                        "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"})
    s.eq((p.status, p.header("Location")), (303, "https://shop.example/back-92"),
         "browser-like POST (Origin: %s, Sec-Fetch-Site: same-origin) -> 303 returnURL" % origin)
    s.check(mandate(m.get("id"), 92).get("mandateReference"), "browser-like POST: mandate made")


def test_instant_bank_payment(s):
    cid, site = 77, 102
    old_sync = sql_one("SELECT sync_ibp_with_mandate_creation FROM payment_providers WHERE id = %d"
                       % P5)
    sql("UPDATE payment_providers SET sync_ibp_with_mandate_creation = 1 WHERE id = %d" % P5)
    try:
        # customer 77 owes exactly 12.34
        bal = balance(cid)
        if bal != D("-12.34"):
            r = post("/v1/customer-balance-adjustments",
                     raw=dumps({"customerId": cid, "amountInMajorCurrency": D("-12.34") - bal,
                                "description": "e2e mandates: owes 12.34"}), tok=TOK)
            s.status(r, 200, "set customer 77's balance")
        s.eq(balance(cid), D("-12.34"), "customer 77 owes 12.34")
        rows0 = int(sql_one("SELECT COUNT(*) FROM ledger WHERE customer_id = %d" % cid))

        m = start(s, "FINASTRA flow", site, returnURL="https://water.example/back")
        sql("UPDATE site_payment_mandates SET provider_id = %d WHERE id = %d" % (P5, m.get("id", 0)))
        b = Browser()
        form = b.get(m.get("redirectURL", ""))
        details = dict(bank(name="John Smith", sort="654321", acct="87654321"),
                       csrf=form.csrf() or "")
        p = b.post(m.get("redirectURL", ""), details)
        page = "/mandate/%s" % m.get("flowToken", "")
        s.eq((p.status, p.header("Location")), (303, page),
             "FINASTRA flow with an instant payment: 303 to the payment's page")
        g = Browser().get(BASE + page)
        s.eq((g.status, g.header("Refresh")), (200, "2"),
             "the payment's page: 200, reloads itself while processing")
        s.check('id="processing"' in g.body and "Direct Debit is set up" in g.body and
                "12.34" in g.body and "water.example" not in g.body,
                "the payment's page: processing, 12.34, no way back yet", g.body[-600:])
        again = b.post(m.get("redirectURL", ""), details)
        s.eq((again.status, again.header("Location")), (303, page),
             "the form submitted again (a double click): 303 to the payment's page")
        ref = mandate(m.get("id"), site).get("mandateReference")
        s.check(ref, "FINASTRA flow: mandateReference", ref)
        s.eq(sql_one("SELECT payment_method FROM sites WHERE id = %d" % site), "FINASTRA",
             "site 102's payment method is now FINASTRA")
        r = get("/v1/payment-provider-mandates/FINASTRA/%s?contractOwnerId=2" % ref, tok=TOK2)
        s.eq(((r.json or {}).get("status"), (r.json or {}).get("lastName")), ("ACTIVE", "Smith"),
             "FINASTRA provider mandate ACTIVE")

        ibp = "/v1/instant-bank-payment-for-mandate?" + urllib.parse.urlencode(
            {"mandateReference": ref or "x", "paymentMethod": "FINASTRA"})
        # The instant bank payment is an account-level attempt for the
        # collection engine (COLLECTION.md 3): listed at once, collected
        # when the provider reports it.
        r = get(ibp, tok=TOK)
        s.eq([(x.get("amountInMajorCurrency"), x.get("reference")) for x in r.json or []],
             [(D("12.34"), None)], "instant payment listed before the engine ran, no reference yet")
        s.eq(balance(cid), D("-12.34"), "nothing collected before the provider answers")
        run_engine([cid])
        r = get(ibp, tok=TOK)
        s.status(r, 200, "GET instant-bank-payment-for-mandate")
        items = r.json if isinstance(r.json, list) else []
        s.eq(len(items), 1, "one instant bank payment")
        it = items[0] if items else {}
        s.eq(set(it.keys()), {"mandateReference", "amountInMajorCurrency", "description",
                              "paymentMethod", "reference", "creationDate"}, "instant payment: fields")
        s.eq(it.get("mandateReference"), ref, "instant payment: mandateReference")
        s.eq(it.get("amountInMajorCurrency"), D("12.34"), "instant payment: the whole debt")
        s.check('"amountInMajorCurrency":12.34' in r.raw.replace(" ", ""), "amount text 12.34", r.raw)
        s.eq(it.get("paymentMethod"), "FINASTRA", "instant payment: paymentMethod")
        s.eq(it.get("reference"), sandbox_reference("PAY", "mandate-payment", m.get("flowToken", "")),
             "instant payment: reference follows its idempotency key (flow token)")
        s.check(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", it.get("creationDate") or "") is not None,
                "instant payment: creationDate is an RFC 3339 date-time in UTC", it.get("creationDate"))
        s.eq((it.get("creationDate") or "")[:10], today(), "instant payment: creationDate today (UTC)")
        s.eq(balance(cid), D("0.00"), "the debt is collected: balance 0.00")
        g = Browser().get(BASE + page)
        s.eq((g.status, g.header("Refresh")), (200, None), "the payment's page once collected")
        s.check('id="payment-received"' in g.body and 'id="processing"' not in g.body and
                ('id="payment-reference">%s<' % it.get("reference")) in g.body and
                'id="continue" href="https://water.example/back"' in g.body,
                "the payment's page: received, its reference, Continue to the returnURL",
                g.body[-700:])
        s.eq(int(sql_one("SELECT COUNT(*) FROM ledger WHERE customer_id = %d" % cid)), rows0 + 1,
             "one ledger row for the collection")
        r = get("/v1/customer-payments?customer_id=%d&page=1&pageSize=1&sort=id:desc" % cid, tok=TOK)
        row = r.json[0] if isinstance(r.json, list) and r.json else {}
        s.eq((row.get("txnType"), row.get("amountInMajorCurrency"), row.get("type"),
              row.get("reference")), ("PAYMENT", D("12.34"), "FINASTRA", it.get("reference")),
             "ledger: a FINASTRA PAYMENT of 12.34 with the instant payment's reference")
        r = get(ibp, tok=TOK2)
        s.eq(len(r.json or []) if r.status == 200 else -1, 1, "owner 2 token sees it")
        r = get(ibp, tok=TOK1)
        s.eq((r.status, r.json), (200, []),
             "owner 1 token: owner 2's mandate has no instant payments it may see (200 [])")

        # Nothing owed: a new mandate collects nothing.
        m = start(s, "FINASTRA flow, nothing owed", site, returnURL="https://water.example/back")
        sql("UPDATE site_payment_mandates SET provider_id = %d WHERE id = %d" % (P5, m.get("id", 0)))
        p = complete(s, "FINASTRA flow, nothing owed", m, bank(name="John Smith"))
        s.eq((p.status, p.header("Location")), (303, "https://water.example/back"),
             "second FINASTRA flow, nothing to pay: 303 to returnURL")
        g = Browser().get(BASE + "/mandate/%s" % m.get("flowToken", ""))
        s.eq(g.status, 410, "nothing was paid: the used flow answers 410")
        run_engine([cid])
        ref2 = mandate(m.get("id"), site).get("mandateReference")
        s.check(ref2 and ref2 != ref, "second FINASTRA flow: a new reference")
        r = get("/v1/instant-bank-payment-for-mandate?" + urllib.parse.urlencode(
            {"mandateReference": ref2 or "x", "paymentMethod": "FINASTRA"}), tok=TOK)
        s.eq((r.status, r.json), (200, []), "nothing owed: no instant payment")
        s.eq(balance(cid), D("0.00"), "nothing owed: balance still 0.00")

        # A payment the sandbox fails (minor units ending in 13): the page
        # shows the failure; the mandate stays set up, nothing is collected.
        r = post("/v1/customer-balance-adjustments",
                 raw=dumps({"customerId": cid, "amountInMajorCurrency": D("-10.13"),
                            "description": "e2e mandates: owes 10.13"}), tok=TOK)
        s.status(r, 200, "customer 77 owes 10.13")
        m = start(s, "FINASTRA flow, failing payment", site, returnURL="https://water.example/back")
        sql("UPDATE site_payment_mandates SET provider_id = %d WHERE id = %d" % (P5, m.get("id", 0)))
        p = complete(s, "FINASTRA flow, failing payment", m, bank(name="John Smith"))
        page = "/mandate/%s" % m.get("flowToken", "")
        s.eq((p.status, p.header("Location")), (303, page), "failing payment: 303 to its page")
        run_engine([cid])
        g = Browser().get(BASE + page)
        s.eq((g.status, g.header("Refresh")), (200, None), "failing payment: its page, final")
        s.check('id="payment-failed"' in g.body and "did not go through" in g.body and
                'href="https://water.example/back"' in g.body and "10.13" in g.body,
                "failing payment: the failure shown, Continue to the returnURL", g.body[-700:])
        s.eq(balance(cid), D("-10.13"), "failing payment: nothing collected")
        r = post("/v1/customer-balance-adjustments",
                 raw=dumps({"customerId": cid, "amountInMajorCurrency": D("10.13"),
                            "description": "e2e mandates: owes nothing again"}), tok=TOK)
        s.status(r, 200, "customer 77 owes nothing again")

        # The debt is an adhoc invoice: the instant payment pays it (account
        # level: the oldest open invoices first, normal and adhoc alike; this
        # one is dated before the fixture's open invoices of customer 77).
        aid = add_adhoc_invoice(cid, 507, "2000-01-01")
        s.eq(balance(cid), D("-5.07"), "customer 77 owes an adhoc invoice of 5.07")
        m = start(s, "FINASTRA flow, adhoc debt", site, returnURL="https://water.example/back")
        sql("UPDATE site_payment_mandates SET provider_id = %d WHERE id = %d" % (P5, m.get("id", 0)))
        p = complete(s, "FINASTRA flow, adhoc debt", m, bank(name="John Smith"))
        s.eq(p.status, 303, "adhoc debt: 303")
        run_engine([cid])
        s.eq(sql("SELECT amount, paid FROM invoices WHERE kind = 2 AND id = %d" % aid),
             [["507", "507"]], "adhoc debt: the instant payment paid the adhoc invoice")
        s.eq(balance(cid), D("0.00"), "adhoc debt: balance 0.00")
    finally:
        sql("UPDATE payment_providers SET sync_ibp_with_mandate_creation = %s WHERE id = %d"
            % (old_sync or 0, P5))

    base = "/v1/instant-bank-payment-for-mandate"
    s.error(get(base + "?paymentMethod=FINASTRA", tok=TOK), 400, "MISSING_PARAMETER",
            "mandateReference missing -> 400", field="mandateReference")
    s.error(get(base + "?mandateReference=x", tok=TOK), 400, "MISSING_PARAMETER",
            "paymentMethod missing -> 400", field="paymentMethod")
    s.status(get(base, tok=TOK), 400, "both missing -> 400")
    s.error(get(base + "?mandateReference=x&paymentMethod=BITCOIN", tok=TOK), 400,
            "INVALID_PARAMETER", "paymentMethod=BITCOIN -> 400", field="paymentMethod")
    s.status(get(base + "?mandateReference=x&paymentMethod=FINASTRA&x=1", tok=TOK), 400,
             "unknown query parameter -> 400")
    s.status(get(base + "?mandateReference=x&paymentMethod=FINASTRA"), 401, "no token -> 401")
    # the contract says "200 array": an unknown mandate has no instant payments
    r = get(base + "?mandateReference=SBX-MD-unknown&paymentMethod=FINASTRA", tok=TOK)
    s.eq((r.status, r.json), (200, []), "unknown mandate -> 200 []")


def held_mandate(typ, owner, pid, status="ACTIVE", customer=None, ref=None):
    """A mandate the provider holds, set up outside this API (by default with
    a fresh reference)."""
    ref = ref or "EXT-" + os.urandom(6).hex()
    sql("INSERT INTO provider_mandates (payment_method, mandate_reference, contract_owner_id,"
        " provider_id, third_party_customer_reference, status, account_holder_name, sort_code,"
        " account_number_last4) VALUES ('%s', '%s', %d, %d, %s, '%s', 'Ext Holder', '112233',"
        " '4321')" % (typ, ref, owner, pid, "'%s'" % customer if customer else "NULL", status))
    return ref


def site_method(site):
    return sql("SELECT payment_method IS NULL, COALESCE(payment_method, '') FROM sites"
               " WHERE id = %d" % site)[0]


def put_site_method(site, old):
    sql("UPDATE sites SET payment_method = %s WHERE id = %d"
        % ("NULL" if old[0] == "1" else "'%s'" % old[1], site))


def test_attach_existing_mandate(s):
    """A body with mandateReference attaches a mandate that a provider of the
    site's owner already holds (the public reference's way): no flow, the
    site's payment method becomes the mandate's; unknown, foreign or
    unusable mandates change nothing."""
    site = 92
    old_method, old_102 = site_method(site), site_method(102)
    typ = "GO_CARDLESS"
    ref = held_mandate(typ, 1, P1)
    try:
        sql("UPDATE sites SET payment_method = NULL WHERE id = %d" % site)
        r = create(siteId=site, returnURL=RETURN, mandateReference=ref)
        s.status(r, 201, "attach: 201")
        j = r.json or {}
        s.eq((j.get("siteId"), j.get("mandateReference"), j.get("redirectURL")),
             (site, ref, None), "attach: the reference, no hosted page to visit")
        s.check(TOKEN_RE.match(j.get("flowToken") or ""), "attach: a flowToken all the same", j)
        s.eq(r.header("Location"), "%s/%s" % (PATH, j.get("id")), "attach: Location")
        s.eq(sql_one("SELECT payment_method FROM sites WHERE id = %d" % site), typ,
             "attach: the site's payment method is the provider's")
        got = get("%s/%s" % (PATH, j.get("id")), tok=TOK)
        s.eq((got.json or {}).get("mandateReference"), ref, "attach: GET shows the reference")
        s.eq(Browser().get(BASE + "/mandate/" + (j.get("flowToken") or "x")).status, 410,
             "attach: its flow page is already used (410)")

        before = int(sql_one("SELECT COUNT(*) FROM site_payment_mandates"))
        sql("UPDATE sites SET payment_method = NULL WHERE id = %d" % site)

        def refused(what, status, code, field, tok=TOK, site_id=site, **extra):
            body = dict({"siteId": site_id, "returnURL": RETURN}, **extra)
            s.error(create(tok=tok, **body), status, code, what, field=field)

        refused("unknown mandateReference", 400, "UNKNOWN_REFERENCE", "mandateReference",
                mandateReference="EXT-nobody-holds-this")
        refused("another owner's mandate (site of owner 2)", 400, "UNKNOWN_REFERENCE",
                "mandateReference", site_id=102, mandateReference=ref)
        refused("mandateReference with a space", 400, "INVALID_FIELD", "mandateReference",
                mandateReference="EXT 1")
        refused("mandateReference of 65 characters", 400, "INVALID_FIELD", "mandateReference",
                mandateReference="E" * 65)
        refused("mandateReference not a string", 400, "INVALID_FIELD", "mandateReference",
                mandateReference=5)
        refused("thirdPartyCustomerReference without a mandateReference", 400, "INVALID_FIELD",
                "thirdPartyCustomerReference", thirdPartyCustomerReference="cus_1")
        refused("thirdPartyCustomerReference that is not the mandate's", 400, "INVALID_FIELD",
                "thirdPartyCustomerReference", mandateReference=ref,
                thirdPartyCustomerReference="cus_other")
        for st in ["CANCELLED", "EXPIRED", "FAILED", "INACTIVE", "NEW"]:
            refused("a %s mandate" % st, 409, "CONFLICT", "mandateReference",
                    mandateReference=held_mandate(typ, 1, P1, status=st))
        s.eq(int(sql_one("SELECT COUNT(*) FROM site_payment_mandates")), before,
             "refused attaches store no site mandate")
        s.eq(sql_one("SELECT payment_method IS NULL FROM sites WHERE id = %d" % site), "1",
             "refused attaches leave the site's payment method alone")
        for st in ["CREATED", "PENDING_SUBMISSION", "SUBMITTED", "REINSTATED",
                   "CUSTOMER_APPROVAL_GRANTED", "CUSTOMER_APPROVAL_SKIPPED"]:
            r = create(siteId=site, returnURL=RETURN,
                       mandateReference=held_mandate(typ, 1, P1, status=st))
            s.status(r, 201, "a %s mandate can be attached" % st)

        # Any integrated provider of the owner: Stripe (provider 4, INACTIVE,
        # which does not matter for a mandate that exists), where the Stripe
        # customer id is required and must match (spec 4.2) ...
        sref = held_mandate("STRIPE", 1, P4, customer="cus_ext1")
        refused("stripe: no thirdPartyCustomerReference", 400, "MISSING_FIELD",
                "thirdPartyCustomerReference", mandateReference=sref)
        refused("stripe: another customer", 400, "INVALID_FIELD",
                "thirdPartyCustomerReference", mandateReference=sref,
                thirdPartyCustomerReference="cus_ext2")
        r = create(siteId=site, returnURL=RETURN, mandateReference=sref,
                   thirdPartyCustomerReference="cus_ext1")
        s.status(r, 201, "stripe: attached with its customer id")
        s.eq(((r.json or {}).get("mandateReference"),
              (r.json or {}).get("thirdPartyCustomerReference")), (sref, "cus_ext1"),
             "stripe: reference and customer id")
        s.eq(sql_one("SELECT payment_method FROM sites WHERE id = %d" % site), "STRIPE",
             "stripe: the site's payment method is the mandate's")
        # ... and FINASTRA for owner 2 (whose GoCardless provider has a lower id).
        fref = held_mandate("FINASTRA", 2, P5)
        r = create(tok=TOK2, siteId=102, returnURL=RETURN, mandateReference=fref)
        s.status(r, 201, "owner 2: a FINASTRA mandate attached")
        s.eq(sql_one("SELECT payment_method FROM sites WHERE id = 102"), "FINASTRA",
             "owner 2: the site's payment method is FINASTRA")
        # One reference under two payment methods: the customer id tells which.
        dref = "EXT-" + os.urandom(6).hex()
        held_mandate("GO_CARDLESS", 2, P2, customer="CU-gc", ref=dref)
        held_mandate("FINASTRA", 2, P5, customer="CU-fin", ref=dref)
        refused("a reference of two payment methods, no customer id", 409, "CONFLICT",
                "mandateReference", tok=TOK2, site_id=102, mandateReference=dref)
        refused("a reference of two payment methods, another customer id", 400,
                "INVALID_FIELD", "thirdPartyCustomerReference", tok=TOK2, site_id=102,
                mandateReference=dref, thirdPartyCustomerReference="CU-other")
        r = create(tok=TOK2, siteId=102, returnURL=RETURN, mandateReference=dref,
                   thirdPartyCustomerReference="CU-fin")
        s.status(r, 201, "a reference of two payment methods, with the FINASTRA customer id")
        s.eq(sql_one("SELECT payment_method FROM sites WHERE id = 102"), "FINASTRA",
             "the customer id chose the FINASTRA mandate")
        # One bank account, one customer: a mandate attached to a site of customer
        # 70 (site 92) cannot be attached to customer 69's site 91, but can be to
        # customer 70's other site 93.
        old_91, old_93 = site_method(91), site_method(93)
        try:
            refused("a mandate attached to another customer's site", 409, "CONFLICT",
                    "mandateReference", site_id=91, mandateReference=ref)
            s.eq(site_method(91), old_91, "refused: site 91's payment method unchanged")
            r = create(siteId=93, returnURL=RETURN, mandateReference=ref)
            s.status(r, 201, "the same customer's other site may use the mandate")
        finally:
            put_site_method(91, old_91)
            put_site_method(93, old_93)
        # A mandate of a provider that no longer serves the owner is unknown.
        sql("DELETE FROM payment_provider_owners WHERE provider_id = %d AND contract_owner_id = 2"
            % P5)
        try:
            refused("a provider that no longer serves the owner", 400, "UNKNOWN_REFERENCE",
                    "mandateReference", tok=TOK2, site_id=102, mandateReference=fref)
        finally:
            sql("INSERT IGNORE INTO payment_provider_owners VALUES (%d, 2)" % P5)
    finally:
        put_site_method(site, old_method)
        put_site_method(102, old_102)


if __name__ == "__main__":
    Suite().run([test_create_and_list, test_create_validation, test_flow,
                 test_expired_inactive_unknown, test_stripe_customer_reference,
                 test_browser_like_post, test_instant_bank_payment,
                 test_attach_existing_mandate])
