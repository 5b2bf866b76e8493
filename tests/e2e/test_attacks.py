"""End-to-end security attack suite, generated from THE route table.

handlers/routes.c is parsed (every method + pattern) and every route must
have a rule in SPEC below: a route added without one fails the file. The
request shapes (query parameters, body fields) come from
handlers/openapi.json, so a new parameter or body field is attacked as
soon as it is documented. Five categories:

 1. IDOR: objects of contract owners 2 and 3 (ledger rows, invoice and
    adhoc invoice payments, refunds, providers, site and provider
    mandates, customers, sites, invoices) asked for with an owner-1 token:
    a get answers exactly like a nonexistent id (status, code, message), a
    list never shows them and X-Total-Count does not count them, a create
    that references them is refused (400 UNKNOWN_REFERENCE or the route's
    documented 4xx) and writes nothing, a PATCH is a 404.
 2. SQL injection: payloads in every query parameter of every GET route,
    every path parameter, every body field of every POST/PATCH route (and
    form field of the HTML pages) and in Idempotency-Key: never 5xx, never
    slower than 2 s (SLEEP/BENCHMARK never run), a string stored verbatim
    when it is legitimate data, and the row counts / money sums of every
    table move exactly as much as one valid request moves them.
 3. HTML / script in every stored string: escaped on the HTML pages
    (payment link landing page and receipt, mandate page), verbatim in JSON.
 4. Response headers of every route (valid request and an error) and of
    nginx's own errors: no version, nosniff, X-Request-Id, strict CSP and
    X-Frame-Options on HTML, Cache-Control no-store on JSON (the OpenAPI
    document excepted), no Set-Cookie on the API, no CORS grant.
 5. Method confusion (405 + Allow computed from the route table), unknown
    paths (404 JSON), HTTP/1.0 and absolute-URI request lines, dot
    segments and encoded slashes (4xx JSON or exactly the caller's own
    data, never another tenant's).

Data written: customers 90-94 (owner 1) only, plus two "attack tenant"
customers created here with SQL (9002: owner 2, EUR; 9003: owner 3, JPY)
with their own site and invoices, so owner-2/3 objects exist without
touching another file's customers. Providers made here are INACTIVE and of
the manual type OTHER (never chosen for mandates, links or refunds); those
made by the body sweep are deleted at the end. Contract owner 1's name is
replaced by hostile HTML for the page-escaping checks and restored in a
finally block (and at the start, should an earlier run have been killed).
Everything is found-or-created, so the file passes when run twice.
"""
import collections
import http.cookiejar
import json
import os
import re
import secrets
import socket
import time
import unicodedata
import urllib.error
import urllib.parse
import urllib.request
from decimal import Decimal

from paytest import *

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
RUN = "atk" + secrets.token_hex(4)
D = Decimal

T1 = token(sub="e2e-attacks", owners="1")
T2 = token(sub="e2e-attacks-2", owners="2")
T3 = token(sub="e2e-attacks-3", owners="3")
ADM = token(sub="e2e-attacks-admin", scope="payments:read payments:write payments:admin",
            owners=None)

A2, A3 = 9002, 9003            # attack-tenant customers (owner 2 EUR, owner 3 JPY)
MISSING = 999999999            # an id nothing has
SLOW = 4.0                     # seconds: any answer slower ran the payloads' SLEEP(5)
                               # (a stall of the test VM alone stays under it)

CATS = ["1 IDOR", "2 SQL injection", "3 HTML/script escaping", "4 response headers",
        "5 method/path confusion"]
COUNTS = collections.OrderedDict((c, 0) for c in CATS)

PAYLOADS = [
    "' OR 1=1 --",
    "1' UNION SELECT password FROM mysql.user --",
    "1; DROP TABLE ledger",
    "\\' OR \\'1\\'=\\'1",
    "%' OR '%'='",
    ") OR (1=1",
    "' AND SLEEP(5) --",
    "1) OR SLEEP(5)#",
    "' OR BENCHMARK(200000000,SHA1('x')) --",
    '" OR ""="',
    "1 OR 1=1",
    "1/**/OR/**/1=1",
    "x'; UPDATE customers SET balance = 0; --",
    "\uff07 OR 1=1 --",
]

LEAK_RE = re.compile(r"(?i)error in your sql syntax|mariadb server version|check the manual"
                     r"|errno|\bER_[A-Z_]{3,}|/work/|/usr/|/tmp/|\.c:\d+|segmentation|stack trace")
RID_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")
VERSION_RE = re.compile(r"(?i)nginx/\d|mariadb|mysql|php|fastcgi|libfcgi|openresty")
RUN_RE = re.compile(r"[A-Za-z0-9_-]{16,}")


def unrandom(text):
    """text without its random values (CSP nonce, CSRF cookie, flow and link
    tokens): runs of 16 or more base64url characters mixing lower case with
    upper case or digits. Such a run may spell a product name or an internal
    word by chance ("...PhpB...", "...ErrNo..."); error constants such as
    ER_WARN_DATA_OUT_OF_RANGE have no lower case and stay."""
    return RUN_RE.sub(lambda m: "" if re.search(r"[a-z]", m[0]) and re.search(r"[A-Z0-9]", m[0])
                      else m[0], text)

HOSTILE = "<script>alert(\"x\")</script><img src=x onerror=alert('y')> & \"q\" 'a' </dd>"
HOSTILE_OWNER = "ATK-OWNER <script>alert(1)</script> & \"Co\" 'Ltd' <svg onload=alert(2)>"
HOSTILE_SITE = "ATK-SITE <script>alert(3)</script> & \"s\" 'x' <iframe src=//evil>"
HOSTILE_INVOICE = "ATK<b>\"&'</b><i>"


def hit(cat, n=1):
    COUNTS[cat] += n


def html_escape(t):
    return (t.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("'", "&#39;"))


def jdump(obj):
    """JSON text with Decimal written as the plain number it is."""
    if isinstance(obj, Decimal):
        return format(obj, "f")
    if isinstance(obj, dict):
        return "{" + ",".join(json.dumps(k) + ":" + jdump(v) for k, v in obj.items()) + "}"
    if isinstance(obj, (list, tuple)):
        return "[" + ",".join(jdump(v) for v in obj) + "]"
    return json.dumps(obj)


def jpost(path, body, tok=T1, headers=None):
    return post(path, raw=jdump(body), tok=tok, headers=headers)


def qs(params):
    return urllib.parse.urlencode(params, quote_via=urllib.parse.quote)


def sq(text):
    """A SQL string literal (for the test's own SQL only)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def timed(fn):
    t0 = time.monotonic()
    r = fn()
    return r, time.monotonic() - t0


def body_of(r):
    return r.raw if hasattr(r, "raw") else r.body


# ---------------------------------------------------------------- the route table

Route = collections.namedtuple("Route", "method pattern handler flags scope")


def parse_routes():
    with open(os.path.join(REPO, "handlers", "routes.c")) as f:
        text = re.sub(r"/\*.*?\*/", "", f.read(), flags=re.S)
    rows = re.findall(r'\{\s*PAY_M_([A-Z]+)\s*,\s*"([^"]*)"\s*,\s*(\w+)\s*,\s*([^,{}]+?)\s*,'
                      r'\s*(\w+)\s*\}', text)
    return [Route(*r) for r in rows]


ROUTES = parse_routes()
with open(os.path.join(REPO, "handlers", "openapi.json")) as f:
    OPENAPI = json.load(f)


def key(rt):
    return "%s %s" % (rt.method, rt.pattern)


def openapi_op(rt):
    tpl = re.sub(r":(\w+)", r"{\1}", rt.pattern)
    return OPENAPI["paths"].get(tpl, {}).get(rt.method.lower())


def resolve(obj):
    while isinstance(obj, dict) and "$ref" in obj:
        node = OPENAPI
        for part in obj["$ref"].lstrip("#/").split("/"):
            node = node[part]
        obj = node
    return obj


def query_params(rt):
    op = openapi_op(rt) or {}
    out = []
    for p in op.get("parameters", []):
        p = resolve(p)
        if p.get("in") == "query":
            out.append(p["name"])
    return out


def body_fields(rt):
    """(field, schema type) of the documented request body."""
    op = openapi_op(rt) or {}
    rb = op.get("requestBody")
    if not rb:
        return []
    content = rb.get("content", {})
    sch = resolve(next(iter(content.values()))["schema"])
    if sch.get("type") == "array":
        sch = resolve(sch["items"])
    return [(name, resolve(p).get("type", "any")) for name, p in sch.get("properties", {}).items()]


def captures(pattern):
    return re.findall(r":(\w+)", pattern)


def fill(pattern, vals):
    return re.sub(r":(\w+)", lambda m: urllib.parse.quote(str(vals[m.group(1)]), safe=""), pattern)


def matches(pattern, path):
    ps = pattern.strip("/").split("/")
    xs = path.split("?")[0].strip("/").split("/")
    if len(ps) != len(xs):
        return False
    return all(p.startswith(":") and x != "" or p == x for p, x in zip(ps, xs))


def expected_allow(path):
    return sorted({rt.method for rt in ROUTES if matches(rt.pattern, path)})


# ---------------------------------------------------------------- HTTP helpers

def raw_http(data, timeout=20):
    u = urllib.parse.urlsplit(BASE)
    with socket.create_connection((u.hostname, u.port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        while True:
            try:
                c = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not c:
                break
            chunks.append(c)
    resp = b"".join(chunks)
    head, _, body = resp.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    try:
        status = int(lines[0].split(" ")[1])
    except (IndexError, ValueError):
        return 0, [], resp
    hdrs = []
    for line in lines[1:]:
        k, _, v = line.partition(":")
        hdrs.append((k.strip(), v.strip()))
    if any(k.lower() == "transfer-encoding" and "chunked" in v for k, v in hdrs):
        out, rest = b"", body
        while rest:
            n, _, rest = rest.partition(b"\r\n")
            try:
                n = int(n.split(b";")[0], 16)
            except ValueError:
                break
            if n == 0:
                break
            out, rest = out + rest[:n], rest[n + 2:]
        body = out
    return status, hdrs, body


def host():
    return urllib.parse.urlsplit(BASE).netloc


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


class Page:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body
        self.raw = body
        try:
            self.json = json.loads(body)
        except ValueError:
            self.json = None

    def header(self, name):
        return self.headers.get(name)

    def csrf(self):
        m = re.search(r'<input type="hidden" name="csrf" value="([^"]*)">', self.body)
        return m.group(1) if m else None

    def __repr__(self):
        return "<%d %s>" % (self.status, self.body[:200])


class Browser:
    """Cookie-keeping client that does not follow redirects."""

    def __init__(self):
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar),
                                                  NoRedirect)

    def open(self, method, url, data=None, headers=None):
        req = urllib.request.Request(url if url.startswith("http") else BASE + url,
                                     data=data, method=method)
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
        h = {"Content-Type": "application/x-www-form-urlencoded", "Origin": BASE,
             "Sec-Fetch-Site": "same-origin"}
        h.update(headers or {})
        return self.open("POST", url, urllib.parse.urlencode(fields).encode(), h)


# ---------------------------------------------------------------- database state

SNAP_SQL = ("SELECT (SELECT COUNT(*) FROM ledger), (SELECT COALESCE(SUM(amount), 0) FROM ledger),"
            " (SELECT COUNT(*) FROM invoice_payments), (SELECT COUNT(*) FROM refunds),"
            " (SELECT COUNT(*) FROM payment_providers), (SELECT COUNT(*) FROM payment_provider_owners),"
            " (SELECT COUNT(*) FROM site_payment_mandates),"
            " (SELECT COUNT(*) FROM site_payment_mandates WHERE flow_completed_at IS NOT NULL),"
            " (SELECT COUNT(*) FROM provider_mandates), (SELECT COUNT(*) FROM payment_links),"
            " (SELECT COUNT(*) FROM payment_links WHERE paid_at IS NOT NULL),"
            " (SELECT COALESCE(SUM(balance), 0) FROM customers), (SELECT COUNT(*) FROM customers),"
            " (SELECT COALESCE(SUM(paid), 0) + COALESCE(SUM(refunded), 0) FROM invoices),"
            " (SELECT COUNT(*) FROM instant_bank_payments), (SELECT COUNT(*) FROM sites),"
            " (SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE()),"
            " (SELECT COUNT(*) FROM contract_owners)")
SNAP_NAMES = ["ledger", "ledger sum", "invoice_payments", "refunds", "payment_providers",
              "payment_provider_owners", "site_payment_mandates", "completed flows",
              "provider_mandates", "payment_links", "paid links", "customers balance sum",
              "customers", "invoices paid+refunded", "instant_bank_payments", "sites", "tables",
              "contract_owners"]


def snap():
    return tuple(int(x) for x in sql(SNAP_SQL)[0])


def delta(a, b):
    return {n: y - x for n, x, y in zip(SNAP_NAMES, a, b) if y != x}


def sql_ids(query):
    return [int(r[0]) for r in sql(query)]


# ---------------------------------------------------------------- fixtures made here

FX = {}


def restore_owner_name():
    with open(os.path.join(REPO, "tests", "fixtures", "e2e.json")) as f:
        names = {o["id"]: o["name"] for o in json.load(f)["contractOwners"]}
    cur = sql_one("SELECT name FROM contract_owners WHERE id = 1")
    if cur is not None and cur.startswith("ATK-OWNER"):
        sql("UPDATE contract_owners SET name = %s WHERE id = 1" % sq(names.get(1, "Acme Energy")))


def cleanup_providers():
    sql("DELETE o FROM payment_provider_owners o JOIN payment_providers p ON p.id = o.provider_id"
        " WHERE p.creditor_identifier = 'atk-cleanup' OR p.name = 'atk-cleanup'")
    sql("DELETE FROM payment_providers WHERE creditor_identifier = 'atk-cleanup'"
        " OR name = 'atk-cleanup'")


def add_invoice(cid, kind, amount_minor, number):
    """Invoice + its (ADHOC_)INVOICE_CREATED ledger row + the balance, as the loader does."""
    txn, cpt, brt, bill_run = (("INVOICE_CREATED", "INVOICE", "NORMAL", 2) if kind == 1 else
                               ("ADHOC_INVOICE_CREATED", "ADHOC_INVOICE", "ADHOC", 3))
    rows = sql(
        "START TRANSACTION;"
        "SELECT balance, currency_id INTO @b, @cur FROM customers WHERE id = %(c)d FOR UPDATE;"
        "SELECT COALESCE(MAX(id), 0) + 1 INTO @iid FROM invoices WHERE kind = %(k)d FOR UPDATE;"
        "INSERT INTO invoices (kind, id, customer_id, bill_run_id, invoice_number,"
        " invoice_date, amount) VALUES (%(k)d, @iid, %(c)d, %(br)d, %(n)s, '2025-01-10', %(a)d);"
        "SET @b = @b - %(a)d;"
        "INSERT INTO ledger (customer_id, txn_type, customer_payment_type, amount,"
        " resulting_balance, currency_id, payment_date, invoice_kind, invoice_id,"
        " invoice_number, bill_run_type) VALUES (%(c)d, '%(t)s', '%(cpt)s', -%(a)d, @b,"
        " @cur, '2025-01-10', %(k)d, @iid, %(n)s, '%(brt)s');"
        "UPDATE customers SET balance = @b, payments_since_invoice = 0 WHERE id = %(c)d;"
        "COMMIT;"
        "SELECT @iid;" % dict(c=cid, k=kind, a=amount_minor, n=sq(number), t=txn, cpt=cpt,
                              brt=brt, br=bill_run))
    return int(rows[-1][0])


def find_or_add_invoice(cid, kind, amount_minor, number):
    got = sql_one("SELECT MIN(id) FROM invoices WHERE customer_id = %d AND kind = %d"
                  " AND invoice_number = %s" % (cid, kind, sq(number)))
    if got not in (None, "NULL"):
        return int(got)
    return add_invoice(cid, kind, amount_minor, number)


def find_or_add_site(cid, name):
    got = sql_one("SELECT MIN(id) FROM sites WHERE customer_id = %d AND site_name = %s"
                  % (cid, sq(name)))
    if got not in (None, "NULL"):
        return int(got)
    sql("START TRANSACTION; SELECT COALESCE(MAX(id), 0) + 1 INTO @sid FROM sites FOR UPDATE;"
        " INSERT INTO sites (id, customer_id, site_name, start_date) VALUES"
        " (@sid, %d, %s, '2024-01-01'); COMMIT;" % (cid, sq(name)))
    return int(sql_one("SELECT MIN(id) FROM sites WHERE customer_id = %d AND site_name = %s"
                       % (cid, sq(name))))


def first_id(query):
    got = sql_one(query)
    return None if got in (None, "NULL") else int(got)


def complete_flow(flow_token, name="Atk Person"):
    b = Browser()
    p = b.get("/mandate/" + flow_token)
    return b.post("/mandate/" + flow_token, {"csrf": p.csrf() or "", "accountHolderName": name,
                                            "sortCode": "12-34-56", "accountNumber": "12345678"})


def ensure_tenant(s, cid, owner, cur, tok, unit):
    """Customer cid of contract owner `owner` with a site, a normal and an adhoc
    invoice, an invoice payment of each kind, a customer payment, a refund and a
    completed mandate flow: found when an earlier run made them."""
    sql("INSERT IGNORE INTO customers (id, contract_owner_id, customer_name,"
        " customer_account_number, currency_id) VALUES (%d, %d, 'Attack tenant %d',"
        " 'ATK-%d', %d)" % (cid, owner, owner, cid, cur))
    t = {"customer": cid, "owner": owner, "tok": tok}
    t["site"] = find_or_add_site(cid, "Attack tenant site")
    t["invoice"] = find_or_add_invoice(cid, 1, 5000 * unit, "ATK-T%d-N" % cid)
    t["adhoc"] = find_or_add_invoice(cid, 2, 5000 * unit, "ATK-T%d-A" % cid)
    for kind, field, path, name in ((1, "generatedInvoiceId", "/v1/invoice-payments", "event"),
                                    (2, "generatedAdhocInvoiceId", "/v1/adhoc-invoice-payments",
                                     "adhoc_event")):
        inv = t["invoice"] if kind == 1 else t["adhoc"]
        t[name] = first_id("SELECT MIN(id) FROM invoice_payments WHERE customer_id = %d"
                           " AND invoice_kind = %d AND customer_payment_type <> 'CUSTOMER'"
                           % (cid, kind))
        if t[name] is None:
            r = jpost(path, {field: inv, "amountInMajorCurrency": 10, "description": "atk tenant",
                             "paymentMethod": "CHEQUE"}, tok=tok)
            s.status(r, 201, "setup: tenant %d %s" % (cid, name))
            t[name] = (r.json or {}).get("id")
    t["payment"] = first_id("SELECT MIN(id) FROM ledger WHERE customer_id = %d AND txn_type ="
                            " 'PAYMENT' AND customer_payment_type = 'CUSTOMER'" % cid)
    if t["payment"] is None:
        r = jpost("/v1/customer-payments", {"customerId": cid, "amountInMajorCurrency": 5,
                                            "type": "BACS", "description": "atk tenant"}, tok=tok)
        s.status(r, 200, "setup: tenant %d customer payment" % cid)
        t["payment"] = (r.json or {}).get("id")
    t["refund"] = first_id("SELECT MIN(id) FROM refunds WHERE customer_id = %d" % cid)
    if t["refund"] is None:
        r = jpost("/v1/refunds", {"invoiceId": t["invoice"], "billRunType": "NORMAL",
                                  "amountInMajorCurrency": 1, "paymentMethod": "CHEQUE",
                                  "description": "atk tenant"}, tok=tok)
        s.status(r, 201, "setup: tenant %d refund" % cid)
        t["refund"] = (r.json or {}).get("id")
    row = sql("SELECT id, flow_token, mandate_reference FROM site_payment_mandates"
              " WHERE site_id = %d AND mandate_reference IS NOT NULL ORDER BY id LIMIT 1" % t["site"])
    if not row:
        r = jpost("/v1/site-payment-mandates", {"siteId": t["site"],
                                                "returnURL": "https://tenant.example/done"}, tok=tok)
        s.status(r, 201, "setup: tenant %d site mandate" % cid)
        ft = (r.json or {}).get("flowToken") or ""
        p = complete_flow(ft)
        s.status(p, 303, "setup: tenant %d mandate flow completed" % cid)
        row = sql("SELECT id, flow_token, mandate_reference FROM site_payment_mandates"
                  " WHERE flow_token = %s" % sq(ft))
    t["mandate"], t["flow_token"], t["mandate_ref"] = int(row[0][0]), row[0][1], row[0][2]
    t["mandate_method"] = sql_one("SELECT payment_method FROM provider_mandates WHERE"
                                  " mandate_reference = %s" % sq(t["mandate_ref"]))
    return t


def find_or_create_provider(s, creditor, owners, tok, name=None):
    pid = first_id("SELECT MIN(id) FROM payment_providers WHERE creditor_identifier = %s"
                   % sq(creditor))
    if pid is None:
        r = jpost("/v1/payment-providers", {"type": "OTHER", "name": name or creditor,
                                            "status": "INACTIVE", "creditorIdentifier": creditor,
                                            "contractOwnerIds": owners}, tok=tok)
        s.status(r, 201, "setup: provider %s" % creditor)
        pid = (r.json or {}).get("id")
    return pid


def own_state(s):
    """Owner-1 objects used as the valid twin of every attack."""
    F = FX
    F["own_ledger"] = first_id("SELECT MIN(id) FROM ledger WHERE customer_id = 90")
    F["own_ledger2"] = first_id("SELECT MAX(id) FROM ledger WHERE customer_id = 90")
    F["inv91"] = int(sql_one("SELECT MIN(id) FROM invoices WHERE customer_id = 91 AND kind = 1"))
    F["adh91"] = int(sql_one("SELECT MIN(id) FROM invoices WHERE customer_id = 91 AND kind = 2"))
    F["inv92"] = int(sql_one("SELECT MIN(id) FROM invoices WHERE customer_id = 92 AND kind = 1"))
    # refundable money on customer 91's invoice for this run's refunds
    r = jpost("/v1/invoice-payments", {"generatedInvoiceId": F["inv91"], "amountInMajorCurrency": 1,
                                       "description": "atk refundable", "paymentMethod": "CHEQUE"})
    s.status(r, 201, "setup: pay 1.00 on customer 91's invoice")
    F["own_event"] = (r.json or {}).get("id")
    r = jpost("/v1/adhoc-invoice-payments", {"generatedAdhocInvoiceId": F["adh91"],
                                             "amountInMajorCurrency": D("0.01"),
                                             "description": "atk", "paymentMethod": "CHEQUE"})
    s.status(r, 201, "setup: adhoc payment on customer 91")
    F["own_adhoc_event"] = (r.json or {}).get("id")
    r = jpost("/v1/refunds", {"invoiceId": F["inv91"], "billRunType": "NORMAL",
                              "amountInMajorCurrency": D("0.01"), "paymentMethod": "CHEQUE"})
    s.status(r, 201, "setup: refund on customer 91")
    F["own_refund"] = (r.json or {}).get("id")
    F["p1"] = first_id("SELECT MIN(p.id) FROM payment_providers p JOIN payment_provider_owners o"
                       " ON o.provider_id = p.id WHERE o.contract_owner_id = 1 AND p.status ="
                       " 'ACTIVE' AND p.type = 'GO_CARDLESS'")
    F["site94"] = int(sql_one("SELECT MIN(id) FROM sites WHERE customer_id = 94"))
    row = sql("SELECT m.flow_token, m.mandate_reference, m.id FROM site_payment_mandates m"
              " WHERE m.site_id = %d AND m.return_url = 'https://own.example/done'"
              " AND m.mandate_reference IS NOT NULL ORDER BY m.id LIMIT 1" % F["site94"])
    if not row:
        r = jpost("/v1/site-payment-mandates", {"siteId": F["site94"],
                                                "returnURL": "https://own.example/done"})
        s.status(r, 201, "setup: own site mandate")
        ft = (r.json or {}).get("flowToken") or ""
        s.status(complete_flow(ft), 303, "setup: own mandate flow completed")
        row = sql("SELECT flow_token, mandate_reference, id FROM site_payment_mandates"
                  " WHERE flow_token = %s" % sq(ft))
    F["own_ref"] = row[0][1]
    F["own_mandate"] = int(row[0][2])
    F["own_method"] = sql_one("SELECT payment_method FROM provider_mandates WHERE"
                              " mandate_reference = %s" % sq(F["own_ref"]))
    F["hostile_site"] = find_or_add_site(94, HOSTILE_SITE)
    F["hostile_invoice"] = find_or_add_invoice(93, 1, 50000, HOSTILE_INVOICE)


def new_link(s, what, **over):
    body = {"paymentProviderId": FX["p1"], "amountInMajorCurrency": D("0.01"),
            "description": "atk link", "customerId": 93}
    body.update(over)
    r = jpost("/v1/payment-provider-payment-link", body)
    s.status(r, 201, what + ": link created")
    return r, ((r.json or {}).get("paymentLink") or "/x").rsplit("/", 1)[-1]


def new_flow(s, what, site=None):
    r = jpost("/v1/site-payment-mandates", {"siteId": site or FX["site94"],
                                            "returnURL": "https://own.example/back"})
    s.status(r, 201, what + ": flow created")
    return (r.json or {}).get("flowToken") or "x"


def test_setup(s):
    restore_owner_name()
    cleanup_providers()
    FX["t2"] = ensure_tenant(s, A2, 2, 2, T2, 100)
    FX["t3"] = ensure_tenant(s, A3, 3, 3, T3, 1)
    tenants = [FX["t2"], FX["t3"]]
    # providers serving none of owner 1's: the fixture's 2, 3, 5 (and whatever else)
    FX["other_providers"] = sql_ids(
        "SELECT provider_id FROM payment_provider_owners GROUP BY provider_id"
        " HAVING SUM(contract_owner_id = 1) = 0 ORDER BY provider_id")
    for owner, tok in ((2, T2), (3, T3)):
        if not first_id("SELECT MIN(provider_id) FROM payment_provider_owners GROUP BY provider_id"
                        " HAVING SUM(contract_owner_id = %d) > 0 AND SUM(contract_owner_id = 1) = 0"
                        % owner):
            FX["other_providers"].append(find_or_create_provider(s, "atk-tenant-%d" % owner,
                                                                 [owner], tok))
    FX["shared_provider"] = find_or_create_provider(s, "atk-shared", [1, 2], ADM,
                                                    "atk shared provider")
    sql("INSERT IGNORE INTO payment_provider_owners VALUES (%d, 2)" % FX["shared_provider"])
    FX["patch_target"] = find_or_create_provider(s, "atk-patch-target", [1], T1,
                                                 "atk patch target")
    own_state(s)
    FX["other_ledger"] = [first_id("SELECT MIN(id) FROM ledger WHERE customer_id = %d" % c)
                          for c in (31, 39)] + [t["payment"] for t in tenants]
    FX["other_customers"] = [31, 39, A2, A3]
    FX["other_threshold_customers"] = sql_ids(
        "SELECT id FROM customers WHERE contract_owner_id <> 1 AND credit_threshold IS NOT NULL")
    FX["other_sites"] = [t["site"] for t in tenants] + [
        int(sql_one("SELECT MIN(id) FROM sites WHERE customer_id = 31"))]
    FX["other_invoices"] = [t["invoice"] for t in tenants] + [
        int(sql_one("SELECT MIN(id) FROM invoices WHERE customer_id = 31 AND kind = 1"))]
    FX["other_adhoc"] = [t["adhoc"] for t in tenants] + [
        int(sql_one("SELECT MIN(id) FROM invoices WHERE customer_id = 31 AND kind = 2"))]
    for k in ("own_ledger", "own_event", "own_adhoc_event", "own_refund", "p1", "own_ref",
              "own_mandate"):
        s.check(FX.get(k) is not None, "setup: %s exists" % k, FX.get(k))
    for t in tenants:
        for k in ("event", "adhoc_event", "payment", "refund", "mandate", "mandate_ref"):
            s.check(t.get(k) is not None, "setup: tenant %d %s exists" % (t["customer"], k))
    s.check(len(FX["other_providers"]) >= 2, "setup: providers of owners 2 and 3",
            FX["other_providers"])


# ---------------------------------------------------------------- the rules per route

def sig(r):
    """What a client can tell two answers apart by (request id aside)."""
    j = r.json if isinstance(r.json, dict) else {}
    msg = j.get("message")
    if isinstance(msg, str):
        msg = re.sub(r"\d+", "N", msg)
    return (r.status, j.get("error"), j.get("code"), msg, j.get("field"), tuple(sorted(j)),
            r.header("Content-Type"), r.header("WWW-Authenticate"))


def idor_public(s, rt, spec):
    """No tenant data: the same answer with any token or none."""
    path = spec["path"]
    answers = []
    for tok in (None, T1, T2):
        r = get(path, tok=tok)
        hit(CATS[0])
        s.status(r, 200, "%s is public (token %s)" % (path, bool(tok)))
        answers.append(r.raw)
    if path != "/metrics":  # metrics count requests: they move between calls
        s.check(answers[0] == answers[1] == answers[2], "%s: same answer for every tenant" % path)
    else:
        s.check(not re.search(r"/v1/[a-z-]+/\d", answers[0]),
                "/metrics: labels are route patterns, never ids", answers[0][:300])


def idor_get_by_id(fmt, others, owner_check=True):
    def rule(s, rt, spec):
        ref = get(fmt % MISSING, tok=T1)
        hit(CATS[0])
        s.error(ref, 404, "NOT_FOUND", "%s: nonexistent id" % rt.pattern)
        for oid, otok in others():
            r = get(fmt % oid, tok=T1)
            hit(CATS[0])
            s.eq(sig(r), sig(ref),
                 "%s: another tenant's id %s answers like a nonexistent one" % (rt.pattern, oid))
            r = get(fmt % oid + "?fields=id", tok=T1)
            hit(CATS[0])
            s.status(r, 404, "%s?fields=id: another tenant's id %s" % (rt.pattern, oid))
            if owner_check and otok is not None:
                s.status(get(fmt % oid, tok=otok), 200,
                         "%s: id %s is real (its owner sees it)" % (rt.pattern, oid))
    return rule


def tenants():
    return [FX["t2"], FX["t3"]]


def list_all(path, params, tok=T1, sort="id"):
    p = dict(params, page="1", pageSize="1000", sort=sort + ":desc")
    r = get(path + "?" + qs(p), tok=tok)
    hit(CATS[0])
    return r, (r.json if isinstance(r.json, list) else [])


def idor_list(path, base, filters, forbidden, id_key, total_sql, hidden_text=lambda: []):
    """Unfiltered: forbidden ids absent, X-Total-Count = the caller's rows,
    none of hidden_text() (tokens, references) anywhere in the body.
    Each filter naming another tenant's object: empty, X-Total-Count 0."""
    def rule(s, rt, spec):
        r, items = list_all(path, base, sort=id_key)
        if s.status(r, 200, "%s: owner-1 list" % path):
            got = {x.get(id_key) for x in items}
            bad = got & set(forbidden())
            s.eq(sorted(bad), [], "%s: no other tenant's objects listed" % path)
            s.eq(r.header("X-Total-Count"), sql_one(total_sql),
                 "%s: X-Total-Count counts only owner 1's rows" % path)
            for t in forbidden():
                s.check(("\"%s\":%s," % (id_key, t)) not in r.raw.replace(" ", ""),
                        "%s: id %s not in the body" % (path, t))
            for text in hidden_text():
                s.check(text not in r.raw, "%s: another tenant's %r not in the body"
                        % (path, text[:12] + "..."))
        for param, values in filters():
            for v in values:
                p = dict(base, page="1", pageSize="1000")
                p[param] = str(v)
                r = get(path + "?" + qs(p), tok=T1)
                hit(CATS[0])
                if s.status(r, 200, "%s?%s=%s (another tenant's)" % (path, param, v)):
                    s.eq((r.json, r.header("X-Total-Count")), ([], "0"),
                         "%s?%s=%s: empty, X-Total-Count 0" % (path, param, v))
    return rule


def idor_post(path, cases):
    """cases() -> [(what, body, status, code, field, id)]: each refused and
    answered exactly like its twin whose id is one that does not exist."""
    def rule(s, rt, spec):
        for what, body, status, code, field, oid in cases():
            before = snap()
            r = jpost(path, body, tok=T1)
            hit(CATS[0])
            s.error(r, status, code, "%s %s" % (path, what), field=field)
            twin = dict(body)
            twin[field] = [MISSING] if isinstance(body.get(field), list) else MISSING
            ref = jpost(path, twin, tok=T1)
            hit(CATS[0])
            s.eq(sig(r), sig(ref), "%s %s: answered like a nonexistent %s" % (path, what, field))
            s.eq(delta(before, snap()), {}, "%s %s: nothing written" % (path, what))
    return rule


def idor_capability(kind):
    """/pay and /mandate: the unguessable token is the capability; a wrong,
    truncated or neighbouring token shows the not-found page and writes nothing."""
    def rule(s, rt, spec):
        real = FX["t2"]["flow_token"] if kind == "mandate" else FX.get("idor_link_token", "")
        fakes = [secrets.token_urlsafe(32), real[:-1] + ("A" if real[-1:] != "A" else "B"),
                 real[:42], real + "A", real.upper() if real != real.upper() else real.lower()]
        for fake in fakes:
            before = snap()
            path = "/%s/%s" % (kind, urllib.parse.quote(fake, safe=""))
            if rt.method == "GET":
                p = Browser().get(path)
            else:
                p = Browser().post(path, {"csrf": "x" * 32}, headers={"Cookie": "pay_csrf=" + "x" * 32})
            hit(CATS[0])
            s.status(p, 404, "%s %s with a guessed token" % (rt.method, rt.pattern))
            s.eq(delta(before, snap()), {}, "%s %s guessed token: nothing written"
                 % (rt.method, rt.pattern))
        if kind == "pay" and real:
            n = sql_one("SELECT COUNT(*) FROM payment_links WHERE token_hash = %s OR token_hash = %s"
                        % (sq(real), sq(real.lower())))
            s.eq(n, "0", "payment link tokens are not stored in clear")
    return rule


def idor_patch(s, rt, spec):
    path = "/v1/payment-providers/%s"
    rename = [{"op": "replace", "path": "/name", "value": "pwned by owner 1"}]
    ref = request("PATCH", path % MISSING, raw=jdump(rename), tok=T1,
                  content_type="application/json-patch+json")
    hit(CATS[0])
    s.error(ref, 404, "NOT_FOUND", "PATCH a nonexistent provider")
    for pid in FX["other_providers"]:
        name = sql_one("SELECT name FROM payment_providers WHERE id = %d" % pid)
        before = snap()
        for what, ops in (("rename", rename),
                          ("test its real name", [{"op": "test", "path": "/name", "value": name}]),
                          ("add owner 1", [{"op": "add", "path": "/contractOwnerIds/-", "value": 1}])):
            r = request("PATCH", path % pid, raw=jdump(ops), tok=T1,
                        content_type="application/json-patch+json")
            hit(CATS[0])
            s.eq(sig(r), sig(ref), "PATCH provider %d (%s) as owner 1: like a"
                 " nonexistent provider" % (pid, what))
        s.eq(sql_one("SELECT name FROM payment_providers WHERE id = %d" % pid), name,
             "provider %d: name unchanged" % pid)
        s.eq(delta(before, snap()), {}, "PATCH provider %d: nothing written" % pid)
    # the shared provider (owners 1 and 2): owner 1 sees only itself and can
    # neither reveal, remove nor add owner 2
    sp = FX["shared_provider"]
    r = get(path % sp, tok=T1)
    hit(CATS[0])
    s.eq((r.json or {}).get("contractOwnerIds"), [1], "shared provider: owner 1 sees [1] only")
    for what, ops, want in (
            ("test for the hidden owner", [{"op": "test", "path": "/contractOwnerIds",
                                            "value": [1, 2]}], 409),
            ("test hidden owner by index", [{"op": "test", "path": "/contractOwnerIds/1",
                                             "value": 2}], None),
            ("replace owners with [1]", [{"op": "replace", "path": "/contractOwnerIds",
                                          "value": [1]}], 200),
            ("add owner 2", [{"op": "add", "path": "/contractOwnerIds/-", "value": 2}], 400),
            ("add owner 3", [{"op": "replace", "path": "/contractOwnerIds", "value": [1, 3]}], 400)):
        r = request("PATCH", path % sp, raw=jdump(ops), tok=T1,
                    content_type="application/json-patch+json")
        hit(CATS[0])
        if want is None:
            s.check(400 <= r.status < 500, "shared provider: %s refused" % what, r)
        else:
            s.status(r, want, "shared provider: %s" % what)
        s.check("2" not in json.dumps((r.json or {}).get("contractOwnerIds", [])),
                "shared provider: %s never shows owner 2" % what, r.raw[:200])
        owners = sql_ids("SELECT contract_owner_id FROM payment_provider_owners WHERE"
                         " provider_id = %d ORDER BY 1" % sp)
        s.eq(owners, [1, 2], "shared provider after '%s': owner 2 kept, owner 3 not added" % what)


def idor_customer_balances(s, rt, spec):
    ref = get("/v1/customer-balances?customer_id=%d" % MISSING, tok=T1)
    hit(CATS[0])
    s.error(ref, 404, "NOT_FOUND", "customer-balances of a nonexistent customer")
    for cid in FX["other_customers"]:
        r = get("/v1/customer-balances?customer_id=%d" % cid, tok=T1)
        hit(CATS[0])
        s.eq(sig(r), sig(ref), "customer-balances of customer %d: like a"
             " nonexistent one" % cid)


def idor_provider_mandates(s, rt, spec):
    ref = get("/v1/payment-provider-mandates/GO_CARDLESS/NOPE-%s" % RUN, tok=T1)
    hit(CATS[0])
    s.error(ref, 404, "NOT_FOUND", "provider mandate that does not exist")
    for t in tenants():
        base = "/v1/payment-provider-mandates/%s/%s" % (t["mandate_method"], t["mandate_ref"])
        for q in ("", "?contractOwnerId=1", "?contractOwnerId=%d" % t["owner"]):
            r = get(base + q, tok=T1)
            hit(CATS[0])
            s.eq(sig(r), sig(ref), "provider mandate of owner %d%s: like a nonexistent one"
                 % (t["owner"], q))
        s.status(get(base, tok=t["tok"]), 200, "provider mandate of owner %d: real" % t["owner"])


def idor_instant(s, rt, spec):
    ref = get("/v1/instant-bank-payment-for-mandate?" + qs(
        {"mandateReference": "NOPE-" + RUN, "paymentMethod": "GO_CARDLESS"}), tok=T1)
    hit(CATS[0])
    s.eq((ref.status, ref.json), (200, []), "instant payments of a nonexistent mandate: 200 []")
    for t in tenants():
        q = qs({"mandateReference": t["mandate_ref"], "paymentMethod": t["mandate_method"]})
        r = get("/v1/instant-bank-payment-for-mandate?" + q, tok=T1)
        hit(CATS[0])
        s.eq(sig(r), sig(ref), "instant payments of owner %d's mandate: like a nonexistent one"
             % t["owner"])
        s.status(get("/v1/instant-bank-payment-for-mandate?" + q, tok=t["tok"]), 200,
                 "instant payments of owner %d's mandate: its owner sees them" % t["owner"])


def idor_customer_payments_list(s, rt, spec):
    for cid in FX["other_customers"]:
        for extra in ({}, {"excludeDebits": "true"}, {"filter": "like:a"},
                      {"customerPaymentType": "in:CUSTOMER,INVOICE"}, {"sort": "amountInMajorCurrency:desc"}):
            p = dict({"customer_id": cid, "page": "1", "pageSize": "100"}, **extra)
            r = get("/v1/customer-payments?" + qs(p), tok=T1)
            hit(CATS[0])
            if s.status(r, 200, "ledger of customer %d %s" % (cid, extra)):
                s.eq((r.json, r.header("X-Total-Count")), ([], "0"),
                     "ledger of customer %d %s: empty, X-Total-Count 0" % (cid, extra))
    r = get("/v1/customer-payments?" + qs({"customer_id": A2, "page": "1", "pageSize": "5"}), tok=T2)
    s.check(r.status == 200 and len(r.json or []) > 0, "ledger of %d: its owner sees it" % A2, r)


def provider_total_sql():
    return ("SELECT COUNT(DISTINCT provider_id) FROM payment_provider_owners"
            " WHERE contract_owner_id = 1")


def idor_providers_list(s, rt, spec):
    idor_list("/v1/payment-providers", {},
              lambda: [("contractOwnerId", [2, 3])],
              lambda: FX["other_providers"], "id", provider_total_sql())(s, rt, spec)
    r, items = list_all("/v1/payment-providers", {})
    s.check(all(x.get("contractOwnerIds") == [1] for x in items),
            "providers list: contractOwnerIds shows only owner 1", [x.get("contractOwnerIds")
                                                                    for x in items][:20])
    s.check(FX["shared_provider"] in [x.get("id") for x in items], "shared provider is listed")
    r, items = list_all("/v1/payment-providers", {"fields": "id,contractOwnerIds"})
    s.check(all(x.get("contractOwnerIds") == [1] for x in items),
            "providers list ?fields=contractOwnerIds: only owner 1")
    for typ in ("FINASTRA", "like:a", "in:GO_CARDLESS,FINASTRA,OTHER"):
        r, items = list_all("/v1/payment-providers", {"type": typ})
        s.eq(sorted({x.get("id") for x in items} & set(FX["other_providers"])), [],
             "providers ?type=%s: no other tenant's provider" % typ)


RULES_IDOR = {}


def build_spec():
    """One entry per route: the valid request of that route, and its rules."""
    F = FX
    t2, t3 = F["t2"], F["t3"]
    ev = lambda name, kind: lambda: [(t[name], t["tok"]) for t in tenants()] + (
        [(F["own_adhoc_event"], None)] if kind == 1 else [(F["own_event"], None)])
    spec = {
        "GET /healthz": dict(path="/healthz", idor=idor_public),
        "GET /readyz": dict(path="/readyz", idor=idor_public),
        "GET /metrics": dict(path="/metrics", idor=idor_public),
        "GET /v1/openapi.json": dict(path="/v1/openapi.json", idor=idor_public),
        "GET /v1/customer-payments": dict(
            query={"customer_id": "90", "page": "1", "pageSize": "5"},
            texty={"filter": ("description", "reference", "invoiceNumber"),
                   "customerPaymentType": ("customerPaymentType",)},
            idor=idor_customer_payments_list),
        "POST /v1/customer-payments": dict(
            body=lambda: {"customerId": 90, "amountInMajorCurrency": D("0.01"), "type": "CHEQUE",
                          "description": "atk", "reference": "atk", "billRunType": "NORMAL"},
            ok=200, echo=("description", "reference"),
            idor=idor_post("/v1/customer-payments", lambda: [
                ("customer %d" % c, {"customerId": c, "amountInMajorCurrency": 1, "type": "CHEQUE"},
                 400, "UNKNOWN_REFERENCE", "customerId", c) for c in F["other_customers"]])),
        "GET /v1/customer-payments/:customer_payment_id": dict(
            params={"customer_payment_id": F["own_ledger"]},
            idor=idor_get_by_id("/v1/customer-payments/%s",
                                lambda: [(i, T2 if n % 2 == 0 else T3)
                                         for n, i in enumerate(F["other_ledger"])])),
        "GET /v1/customer-balances": dict(query={"customer_id": "90"}, idor=idor_customer_balances),
        "POST /v1/customer-balance-adjustments": dict(
            body=lambda: {"customerId": 90, "amountInMajorCurrency": D("0.01"), "description": "atk"},
            ok=200, echo=("description",),
            idor=idor_post("/v1/customer-balance-adjustments", lambda: [
                ("customer %d" % c, {"customerId": c, "amountInMajorCurrency": 1},
                 400, "UNKNOWN_REFERENCE", "customerId", c) for c in F["other_customers"]])),
        "GET /v1/invoice-payments": dict(
            query={"page": "1", "pageSize": "5"},
            texty={"billRunId": None, "customerPaymentType": ("customerPaymentType",)},
            idor=idor_list("/v1/invoice-payments", {},
                           lambda: [("generatedInvoiceId", F["other_invoices"]),
                                    ("customerPaymentId", [t["payment"] for t in tenants()])],
                           lambda: [t[k] for t in tenants() for k in ("event", "adhoc_event")],
                           "id", "SELECT COUNT(*) FROM invoice_payments p JOIN customers c ON c.id ="
                           " p.customer_id WHERE p.invoice_kind = 1 AND c.contract_owner_id = 1")),
        "POST /v1/invoice-payments": dict(
            body=lambda: {"generatedInvoiceId": F["inv91"], "amountInMajorCurrency": D("0.01"),
                          "description": "atk", "paymentMethod": "CHEQUE",
                          "thirdPartyPaymentStatus": "MANUALLY_PAID"},
            ok=201, echo=("description",),
            idor=idor_post("/v1/invoice-payments", lambda: [
                ("invoice %d" % i, {"generatedInvoiceId": i, "amountInMajorCurrency": 1,
                                    "description": "x", "paymentMethod": "CHEQUE"},
                 400, "UNKNOWN_REFERENCE", "generatedInvoiceId", i) for i in F["other_invoices"]])),
        "GET /v1/invoice-payments/:invoice_payment_id": dict(
            params={"invoice_payment_id": F["own_event"]},
            idor=idor_get_by_id("/v1/invoice-payments/%s", ev("event", 1))),
        "GET /v1/adhoc-invoice-payments": dict(
            query={"page": "1", "pageSize": "5"},
            texty={"adhocBillRunId": None, "customerPaymentType": ("customerPaymentType",)},
            idor=idor_list("/v1/adhoc-invoice-payments", {},
                           lambda: [("generatedAdhocInvoiceId", F["other_adhoc"]),
                                    ("customerPaymentId", [t["payment"] for t in tenants()])],
                           lambda: [t[k] for t in tenants() for k in ("event", "adhoc_event")],
                           "id", "SELECT COUNT(*) FROM invoice_payments p JOIN customers c ON c.id ="
                           " p.customer_id WHERE p.invoice_kind = 2 AND c.contract_owner_id = 1")),
        "POST /v1/adhoc-invoice-payments": dict(
            body=lambda: {"generatedAdhocInvoiceId": F["adh91"], "amountInMajorCurrency": D("0.01"),
                          "description": "atk", "paymentMethod": "CHEQUE",
                          "thirdPartyPaymentStatus": "MANUALLY_PAID"},
            ok=201, echo=("description",),
            idor=idor_post("/v1/adhoc-invoice-payments", lambda: [
                ("adhoc invoice %d" % i, {"generatedAdhocInvoiceId": i, "amountInMajorCurrency": 1,
                                          "description": "x", "paymentMethod": "CHEQUE"},
                 400, "UNKNOWN_REFERENCE", "generatedAdhocInvoiceId", i) for i in F["other_adhoc"]])),
        "GET /v1/adhoc-invoice-payments/:adhoc_invoice_payment_id": dict(
            params={"adhoc_invoice_payment_id": F["own_adhoc_event"]},
            idor=idor_get_by_id("/v1/adhoc-invoice-payments/%s", ev("adhoc_event", 2))),
        "POST /v1/invoice-payment-reprocess": dict(
            body=lambda: {"invoiceId": F["inv92"], "billRunType": "NORMAL", "notes": "atk"},
            prepare=lambda: ensure_tp("failed"), ok=200, echo=("notes:description",),
            idor=idor_post("/v1/invoice-payment-reprocess", lambda: [
                ("invoice %d/%s" % (i, brt), {"invoiceId": i, "billRunType": brt},
                 400, "UNKNOWN_REFERENCE", "invoiceId", i)
                for brt, ids in (("NORMAL", F["other_invoices"]), ("ADHOC", F["other_adhoc"]))
                for i in ids])),
        "POST /v1/invoice-payment-cancel": dict(
            body=lambda: {"invoiceId": F["inv92"], "billRunType": "NORMAL", "notes": "atk"},
            prepare=lambda: ensure_tp("pending"), ok=202, echo=("notes:description",),
            idor=idor_post("/v1/invoice-payment-cancel", lambda: [
                ("invoice %d/%s" % (i, brt), {"invoiceId": i, "billRunType": brt},
                 400, "UNKNOWN_REFERENCE", "invoiceId", i)
                for brt, ids in (("NORMAL", F["other_invoices"]), ("ADHOC", F["other_adhoc"]))
                for i in ids])),
        "GET /v1/payment-providers": dict(
            query={"page": "1", "pageSize": "5"}, texty={"type": ("type",)},
            idor=idor_providers_list),
        "POST /v1/payment-providers": dict(
            body=lambda: {"type": "OTHER", "name": "atk-cleanup", "directDebitWithName": "atk-cleanup",
                          "status": "INACTIVE", "creditorIdentifier": "atk-cleanup",
                          "instantBankPayments": False, "retryIfPossible": False,
                          "acceptExternalPayments": False, "contractOwnerIds": [1],
                          "syncInstantBankPaymentsWithMandateCreation": False},
            ok=201, echo=("name", "directDebitWithName", "creditorIdentifier"),
            idor=idor_post("/v1/payment-providers", lambda: [
                ("owners %s" % o, {"type": "OTHER", "name": "atk-cleanup", "status": "INACTIVE",
                                   "creditorIdentifier": "atk-cleanup", "contractOwnerIds": o},
                 400, "UNKNOWN_REFERENCE", "contractOwnerIds", None) for o in ([2], [3], [1, 2], [3, 1])])),
        "GET /v1/payment-providers/:payment_provider_id": dict(
            params={"payment_provider_id": F["p1"]},
            idor=idor_get_by_id("/v1/payment-providers/%s",
                                lambda: [(p, ADM) for p in F["other_providers"]])),
        "PATCH /v1/payment-providers/:payment_provider_id": dict(
            params={"payment_provider_id": F["patch_target"]}, idor=idor_patch),
        "POST /v1/payment-provider-reprocess": dict(
            body=lambda: {"paymentProviderId": F["patch_target"], "notes": "atk"}, ok=200, echo=(),
            idor=idor_post("/v1/payment-provider-reprocess", lambda: [
                ("provider %d" % p, {"paymentProviderId": p, "notes": "x"},
                 400, "UNKNOWN_REFERENCE", "paymentProviderId", p) for p in F["other_providers"]])),
        "GET /v1/refunds": dict(
            query={"page": "1", "pageSize": "5"}, texty={"billRunType": ("billRunType",)},
            idor=idor_list("/v1/refunds", {},
                           lambda: [("customerId", F["other_customers"]),
                                    ("invoiceId", F["other_invoices"])],
                           lambda: [t["refund"] for t in tenants()], "id",
                           "SELECT COUNT(*) FROM refunds f JOIN customers c ON c.id = f.customer_id"
                           " WHERE c.contract_owner_id = 1")),
        "POST /v1/refunds": dict(
            body=lambda: {"invoiceId": F["inv91"], "billRunType": "NORMAL",
                          "amountInMajorCurrency": D("0.01"), "description": "atk",
                          "paymentMethod": "CHEQUE"},
            ok=201, echo=("description",),
            idor=idor_post("/v1/refunds", lambda: [
                ("invoice %d/%s" % (i, brt), {"invoiceId": i, "billRunType": brt,
                                              "amountInMajorCurrency": D("0.01"),
                                              "paymentMethod": "CHEQUE"},
                 400, "UNKNOWN_REFERENCE", "invoiceId", i)
                for brt, ids in (("NORMAL", F["other_invoices"]), ("ADHOC", F["other_adhoc"]))
                for i in ids])),
        "GET /v1/refunds/:refund_id": dict(
            params={"refund_id": F["own_refund"]},
            idor=idor_get_by_id("/v1/refunds/%s", lambda: [(t["refund"], t["tok"]) for t in tenants()])),
        "GET /v1/site-payment-mandates/:site_payment_mandate_id": dict(
            params={"site_payment_mandate_id": F["own_mandate"]},
            idor=idor_get_by_id("/v1/site-payment-mandates/%s",
                                lambda: [(t["mandate"], t["tok"]) for t in tenants()])),
        "GET /v1/customer-credit-status": dict(
            query={"page": "1", "pageSize": "5"}, texty={},
            idor=idor_list("/v1/customer-credit-status", {},
                           lambda: [("customerId", F["other_threshold_customers"] + [A2])],
                           lambda: sql_ids("SELECT id FROM customers WHERE contract_owner_id <> 1"),
                           "customerId", "SELECT COUNT(*) FROM customers WHERE contract_owner_id = 1"
                           " AND credit_threshold IS NOT NULL")),
        "POST /v1/payment-provider-payment-link": dict(
            body=lambda: {"paymentProviderId": F["p1"], "amountInMajorCurrency": D("0.01"),
                          "description": "atk", "emailAddress": "payer@example.com", "customerId": 93},
            ok=201, echo=("description", "emailAddress"),
            idor=idor_post("/v1/payment-provider-payment-link", lambda: [
                ("%s %d" % (f, i), {"paymentProviderId": F["p1"], "amountInMajorCurrency": 1,
                                    "description": "x", f: i},
                 400, "UNKNOWN_REFERENCE", f, i)
                for f, ids in (("customerId", F["other_customers"]), ("invoiceId", F["other_invoices"]),
                               ("adhocInvoiceId", F["other_adhoc"])) for i in ids] + [
                ("own customer, provider %d of another owner" % p,
                 {"paymentProviderId": p, "amountInMajorCurrency": 1, "description": "x",
                  "customerId": 93}, 400, "INVALID_FIELD", "paymentProviderId", p)
                for p in F["other_providers"] + [MISSING]])),
        "GET /v1/site-payment-mandates": dict(
            query={"page": "1", "pageSize": "5"}, texty={},
            idor=idor_list("/v1/site-payment-mandates", {},
                           lambda: [("siteId", F["other_sites"])],
                           lambda: [t["mandate"] for t in tenants()], "id",
                           "SELECT COUNT(*) FROM site_payment_mandates m JOIN sites s ON s.id ="
                           " m.site_id JOIN customers c ON c.id = s.customer_id"
                           " WHERE c.contract_owner_id = 1",
                           lambda: [t[k] for t in tenants() for k in ("flow_token", "mandate_ref")])),
        "POST /v1/site-payment-mandates": dict(
            body=lambda: {"siteId": F["site94"], "returnURL": "https://own.example/return",
                          "redirectURL": "https://own.example/redirect",
                          "exitURL": "https://own.example/exit"},
            ok=201, echo=("returnURL", "exitURL"),
            idor=idor_post("/v1/site-payment-mandates", lambda: [
                ("site %d" % i, {"siteId": i, "returnURL": "https://x.example/"},
                 400, "UNKNOWN_REFERENCE", "siteId", i) for i in F["other_sites"]])),
        "GET /v1/payment-provider-mandates/:paymentMethod/:mandateReference": dict(
            params={"paymentMethod": F["own_method"], "mandateReference": F["own_ref"]},
            # the own mandate is not a Stripe one: thirdPartyCustomerReference
            # is not matched for it, so a payload there is ignored (200, the mandate)
            query={}, texty={"thirdPartyCustomerReference": ()}, idor=idor_provider_mandates),
        "GET /v1/instant-bank-payment-for-mandate": dict(
            query={"mandateReference": F["own_ref"], "paymentMethod": F["own_method"]},
            texty={"mandateReference": ()}, idor=idor_instant),
        "GET /pay/:token": dict(page="pay", idor=idor_capability("pay")),
        "POST /pay/:token": dict(page="pay", idor=idor_capability("pay")),
        "GET /mandate/:token": dict(page="mandate", idor=idor_capability("mandate")),
        "POST /mandate/:token": dict(page="mandate", idor=idor_capability("mandate")),
        # Provider webhooks: no token, the provider's signature (COLLECTION.md 5);
        # forged / stale / oversized / replayed bodies are tests/e2e/test_webhooks.py.
        "POST /webhooks/:paymentProviderId": dict(
            webhook=True, params={"paymentProviderId": "1"}, ok=200,
            body=lambda: {"events": [{"id": "atk-" + secrets.token_hex(8),
                                      "reference": "ATK-NONE", "status": "PAID_OUT"}]},
            idor=idor_webhook),
    }
    return spec


def signed_webhook(pid, body, headers=None, key_of=None):
    """POST /webhooks/{pid} signed as the sandbox provider signs (key_of: the
    provider whose key signs, default pid)."""
    import hashlib
    import hmac as hmac_
    secret = ENV.get("PAY_WEBHOOK_SECRET", "")
    key = hmac_.new(secret.encode(), ("pay-api webhook %d" % (key_of or pid)).encode(),
                    hashlib.sha256).hexdigest()
    raw = jdump(body).encode()
    t = int(time.time())
    sig = "t=%d,v1=%s" % (t, hmac_.new(key.encode(), ("%d." % t).encode() + raw,
                                       hashlib.sha256).hexdigest())
    return request("POST", "/webhooks/%d" % pid, raw=raw,
                   headers=dict(headers or {}, **{"Webhook-Signature": sig}))


def idor_webhook(s, rt, spec):
    """Another provider's key, an unknown provider: refused, nothing stored."""
    before = sql_one("SELECT COUNT(*) FROM provider_events")
    body = spec["body"]()
    r = signed_webhook(2, body, key_of=1)
    s.eq(r.status, 403, "webhook for provider 2 signed with provider 1's key -> 403")
    r = signed_webhook(999999999, body)
    s.eq(r.status, 404, "webhook for an unknown provider -> 404")
    s.eq(sql_one("SELECT COUNT(*) FROM provider_events"), before, "webhook IDOR: nothing stored")


SPEC = {}


def route_path(rt, spec):
    if "path" in spec:
        return spec["path"]
    if spec.get("page"):
        return "/%s/%s" % (spec["page"], "A" * 43)
    vals = dict((c, "1") for c in captures(rt.pattern))
    vals.update(spec.get("params", {}))
    return fill(rt.pattern, vals)


# ---------------------------------------------------------------- reprocess / cancel state

PENDING = {"NEW", "CREATED", "PENDING_CUSTOMER_APPROVAL", "PENDING_SUBMISSION",
           "CUSTOMER_APPROVAL_GRANTED", "UNSENT", "RESUBMISSION_REQUESTED", "FAILED_RETRYING"}
FAILED = {"FAILED", "CANCELLED", "CUSTOMER_APPROVAL_DENIED", "CUSTOMER_APPROVAL_MISSING",
          "UNSUPPORTED_PAYMENT_TYPE", "UNAUTHORISED_PAYMENT_TYPE"}


def link_customer(tok):
    """The customer a payment link's token pays for (only the SHA-256 is stored)."""
    return int(sql_one("SELECT customer_id FROM payment_links WHERE token_hash = SHA2('%s', 256)"
                       % re.sub(r"[^A-Za-z0-9_-]", "", tok)))


def ensure_tp(want):
    """Brings customer 92's invoice to a failed (reprocessable) or pending
    (cancellable) third-party status through the API."""
    inv = FX["inv92"]
    for _ in range(3):
        st = sql_one("SELECT COALESCE(third_party_status, '') FROM invoices WHERE kind = 1 AND id = %d"
                     % inv)
        if (want == "failed" and st in FAILED) or (want == "pending" and st in PENDING):
            return
        if want == "failed" and st in PENDING:
            jpost("/v1/invoice-payment-cancel", {"invoiceId": inv, "billRunType": "NORMAL"})
        elif want == "pending" and st in FAILED:
            jpost("/v1/invoice-payment-reprocess", {"invoiceId": inv, "billRunType": "NORMAL"})
        else:  # none yet, or SUBMITTED / informational: record a failed collection
            jpost("/v1/invoice-payments", {"generatedInvoiceId": inv, "amountInMajorCurrency": 1,
                                           "description": "atk failed collection",
                                           "paymentMethod": "GO_CARDLESS",
                                           "thirdPartyPaymentStatus": "FAILED"})


# ---------------------------------------------------------------- 0. the sweep is complete

def test_every_route_has_rules(s):
    global SPEC
    s.check(len(ROUTES) >= 30, "routes.c parsed", len(ROUTES))
    SPEC.update(build_spec())
    keys = {key(rt) for rt in ROUTES}
    for rt in ROUTES:
        k = key(rt)
        s.check(k in SPEC, "route %s has a sweep rule in test_attacks.py" % k)
        s.check(openapi_op(rt) is not None, "route %s is in handlers/openapi.json" % k)
        spec = SPEC.get(k, {})
        s.check(callable(spec.get("idor")), "route %s has an IDOR rule" % k)
        if rt.method == "GET" and not spec.get("page") and "path" not in spec:
            s.check("query" in spec or "params" in spec, "route %s has a valid request" % k)
        if rt.method in ("POST", "PATCH") and not spec.get("page") and rt.method != "PATCH":
            s.check(callable(spec.get("body")), "route %s has a valid body" % k)
        for c in captures(rt.pattern):
            s.check(spec.get("page") or c in spec.get("params", {}),
                    "route %s: sample for :%s" % (k, c))
    for k in SPEC:
        s.check(k in keys, "rule %s names a route of routes.c" % k)


# ---------------------------------------------------------------- 1. IDOR

def test_idor(s):
    # a payment link of owner 2 (its token is the capability for the /pay rules)
    r = jpost("/v1/payment-provider-payment-link", {
        "paymentProviderId": first_id(
            "SELECT MIN(p.id) FROM payment_providers p JOIN payment_provider_owners o ON"
            " o.provider_id = p.id WHERE o.contract_owner_id = 2 AND p.status = 'ACTIVE'"
            " AND p.type = 'GO_CARDLESS'"),
        "amountInMajorCurrency": 1, "description": "atk tenant link", "customerId": A2}, tok=T2)
    s.status(r, 201, "owner-2 payment link")
    FX["idor_link_token"] = ((r.json or {}).get("paymentLink") or "/x").rsplit("/", 1)[-1]
    before = snap()
    for rt in ROUTES:
        spec = SPEC.get(key(rt))
        if spec and callable(spec.get("idor")):
            spec["idor"](s, rt, spec)
    # balances: every customer's balance is still the sum of its ledger
    s.eq(sql_one("SELECT COUNT(*) FROM customers c WHERE c.balance <>"
                 " (SELECT COALESCE(SUM(amount), 0) FROM ledger l WHERE l.customer_id = c.id)"), "0",
         "every balance == sum of its ledger rows")
    s.eq(delta(before, snap()), {}, "the whole IDOR sweep wrote nothing")


# ---------------------------------------------------------------- 2. SQL injection

def no_leak(s, what, r):
    s.check(not LEAK_RE.search(unrandom(body_of(r) or "")),
            what + ": no internals in the body",
            (body_of(r) or "")[:300])


def fold(text):
    """Text as the database's utf8mb4_unicode_ci compares it (case, width and
    trailing blanks aside): "＇" (U+FF07) equals "'"."""
    return unicodedata.normalize("NFKC", text).casefold().rstrip(" ")


def item_matches(item, fields, value):
    """Does a list item really match string filter `value` over fields?"""
    texts = [fold(str(item.get(f) or "")) for f in fields]
    if value.startswith("like:"):
        return any(fold(value[5:]) in t for t in texts)
    vals = value[3:].split(",") if value.startswith("in:") else [value]
    return any(t in [fold(v) for v in vals] for t in texts)


# per string filter: a value that matches some owner-1 rows
MATCHING = {"billRunId": "2", "adhocBillRunId": "3", "type": "GO_CARDLESS",
            "customerPaymentType": "CUSTOMER", "filter": "atk", "billRunType": "NORMAL"}


def check_get_attack(s, rt, spec, path, q, what, param=None, value=None):
    url = path + ("?" + qs(q) if q else "")
    if spec.get("page"):
        r, dt = timed(lambda: Browser().get(url))
    else:
        r, dt = timed(lambda: get(url, tok=T1))
    hit(CATS[1])
    s.check(r.status < 500, what + ": not a 5xx", (r.status, body_of(r)[:200]))
    s.check(dt < SLOW, what + ": answered in %.2f s (no SLEEP)" % dt)
    no_leak(s, what, r)
    if path.startswith("/v1/") and r.status >= 400:
        s.check(isinstance(r.json, dict) and r.json.get("status") == r.status,
                what + ": JSON error body", body_of(r)[:200])
    link = r.header("Link") or ""
    s.check(not re.search(r"[\s'\"]", "".join(re.findall(r"<([^>]*)>", link))),
            what + ": Link header percent-encodes the payload", link[:300])
    if r.status != 200 or param is None:
        return r
    texty = spec.get("texty", {})
    if param not in texty:
        s.check(False, what + ": a payload in %s must be refused (400), got 200" % param,
                r.raw[:200])
        return r
    fields = texty[param]
    items = r.json if isinstance(r.json, list) else []
    if fields is None:  # bill run filters: the invoice's bill run id must equal the text
        kind = 2 if "adhoc" in path else 1
        idf = "generatedAdhocInvoiceId" if kind == 2 else "generatedInvoiceId"
        bad = []
        for x in items:
            br = sql_one("SELECT bill_run_id FROM invoices WHERE kind = %d AND id = %d"
                         % (kind, x.get(idf)))
            if not item_matches({"b": br}, ("b",), value):
                bad.append("event %s (bill run %s)" % (x.get("id"), br))
        s.eq(bad[:5], [], what + ": only events whose bill run id is exactly the text")
    elif fields:
        bad = [x.get("id") for x in items if not item_matches(x, fields, value)]
        s.eq(bad, [], what + ": only rows that really match the text")
    return r


def test_sqli_get(s):
    before = snap()
    for rt in ROUTES:
        if rt.method != "GET":
            continue
        spec = SPEC.get(key(rt), {})
        path = route_path(rt, spec)
        base = dict(spec.get("query", {}))
        for param in query_params(rt):
            variants = list(PAYLOADS)
            if param in spec.get("texty", {}):
                variants += ["like:" + p for p in PAYLOADS[:7]] + ["in:" + p.replace(",", "")
                                                                   for p in PAYLOADS[:7]]
                # a value that matches rows, with the payload glued on: must
                # match nothing (no truncation or numeric casting of the text)
                if param in MATCHING:
                    variants += [MATCHING[param] + p for p in PAYLOADS[:4]]
            for v in variants:
                q = dict(base)
                q[param] = v
                check_get_attack(s, rt, spec, path, q, "GET %s ?%s=%r" % (rt.pattern, param, v),
                                 param, v)
        for c in captures(rt.pattern):
            for v in PAYLOADS:
                vals = dict(spec.get("params", {}))
                vals[c] = v
                p = fill(rt.pattern, vals) if not spec.get("page") else fill(rt.pattern, {c: v})
                r = check_get_attack(s, rt, spec, p, base, "GET %s :%s=%r" % (rt.pattern, c, v))
                s.check(400 <= r.status < 500, "GET %s :%s=%r: 4xx" % (rt.pattern, c, v), r.status)
        for v in PAYLOADS[:4]:  # a payload as a parameter name
            q = dict(base)
            q[v] = "1"
            r = check_get_attack(s, rt, spec, path, q, "GET %s ?%r=1" % (rt.pattern, v))
            if path.startswith("/v1/"):
                s.check(r.status == 400, "GET %s ?%r=1: unknown parameter refused"
                        % (rt.pattern, v), r.status)
    s.eq(delta(before, snap()), {}, "GET attacks changed nothing")
    # the string filters still work as data after all that
    r = get("/v1/customer-payments?" + qs({"customer_id": 90, "page": 1, "pageSize": 1000}), tok=T1)
    s.status(r, 200, "customer 90's ledger still served")


def check_post_attack(s, what, send, base_delta, ok, echo, field, value, prepare=None):
    if prepare:
        prepare()
    before = snap()
    r, dt = timed(send)
    after = snap()
    hit(CATS[1])
    s.check(r.status < 500, what + ": not a 5xx", (r.status, body_of(r)[:200]))
    s.check(dt < SLOW, what + ": answered in %.2f s (no SLEEP)" % dt)
    no_leak(s, what, r)
    d = delta(before, after)
    if r.status == ok or 200 <= r.status < 300:
        s.eq(r.status, ok, what + ": the status of a valid request")
        s.eq(d, base_delta, what + ": changed exactly what a valid request changes")
        for e in echo:
            name, _, resp_name = e.partition(":")
            if name == field:
                s.eq((r.json or {}).get(resp_name or name), value, what + ": stored verbatim")
    else:
        s.check(400 <= r.status < 500, what + ": 4xx", r.status)
        s.eq(d, {}, what + ": nothing changed")
    return r


def test_sqli_post(s):
    for rt in ROUTES:
        if rt.method != "POST" or rt.pattern.startswith(("/pay/", "/mandate/")):
            continue
        spec = SPEC.get(key(rt), {})
        if not callable(spec.get("body")) or spec.get("webhook"):
            continue
        path, prepare = rt.pattern, spec.get("prepare")
        # the valid request and what it changes
        if prepare:
            prepare()
        before = snap()
        r = jpost(path, spec["body"]())
        base_delta = delta(before, snap())
        s.status(r, spec["ok"], "POST %s: the valid request" % path)
        for field, ftype in body_fields(rt):
            for v in PAYLOADS:
                b = spec["body"]()
                b[field] = v
                check_post_attack(s, "POST %s %s=%r" % (path, field, v),
                                  lambda b=b: jpost(path, b), base_delta, spec["ok"],
                                  spec.get("echo", ()), field, v, prepare)
    # Idempotency-Key: a key is matched exactly, never as SQL
    for v in PAYLOADS:
        k = "%s %s" % (v, RUN)
        k = "".join(ch for ch in k if 32 <= ord(ch) < 127)
        body = {"customerId": 90, "amountInMajorCurrency": D("0.01"), "description": "atk idem"}
        before = snap()
        r, dt = timed(lambda: jpost("/v1/customer-balance-adjustments", body,
                                    headers={"Idempotency-Key": k}))
        hit(CATS[1])
        s.status(r, 200, "Idempotency-Key %r: processed" % k)
        s.check(dt < SLOW, "Idempotency-Key %r: fast" % k)
        s.eq(r.header("Idempotent-Replayed"), None, "Idempotency-Key %r: not a replay of another"
             " key's answer" % k)
        s.eq(delta(before, snap()).get("ledger"), 1, "Idempotency-Key %r: one row" % k)
        before = snap()
        r2 = jpost("/v1/customer-balance-adjustments", body, headers={"Idempotency-Key": k})
        hit(CATS[1])
        s.eq((r2.status, r2.header("Idempotent-Replayed"), (r2.json or {}).get("id")),
             (200, "true", (r.json or {}).get("id")), "Idempotency-Key %r: exact replay" % k)
        s.eq(delta(before, snap()), {}, "Idempotency-Key %r: replay wrote nothing" % k)


def test_sqli_patch(s):
    rt = [r for r in ROUTES if r.method == "PATCH"]
    for r in rt:
        s.check(set(f for f, _ in body_fields(r)) <= {"op", "path", "value", "from"},
                "PATCH %s: every documented patch member is attacked below" % r.pattern,
                body_fields(r))
    pid = FX["patch_target"]
    path = "/v1/payment-providers/%d" % pid

    def patch(ops):
        return request("PATCH", path, raw=jdump(ops), tok=T1,
                       content_type="application/json-patch+json")
    s.status(patch([{"op": "replace", "path": "/name", "value": "atk patch target"}]), 200,
             "PATCH: the valid request")
    for v in PAYLOADS:
        for what, ops, want in (
                ("op", [{"op": v, "path": "/name", "value": "x"}], 400),
                ("path", [{"op": "replace", "path": v, "value": "x"}], 400),
                ("path /+payload", [{"op": "replace", "path": "/" + v, "value": "x"}], 400),
                ("from", [{"op": "copy", "from": v, "path": "/name"}], 400),
                ("test value", [{"op": "test", "path": "/name", "value": v}], 409),
                ("value of name", [{"op": "replace", "path": "/name", "value": v}], 200),
                ("value of directDebitWithName",
                 [{"op": "replace", "path": "/directDebitWithName", "value": v}], 200)):
            r = check_post_attack(s, "PATCH provider %s=%r" % (what, v), lambda ops=ops: patch(ops),
                                  {}, 200, (), None, None)
            s.check(r.status == want or (want == 400 and 400 <= r.status < 500),
                    "PATCH provider %s=%r: %d" % (what, v, want), (r.status, r.raw[:200]))
            if want == 200 and r.status == 200:
                f = ops[0]["path"][1:]
                s.eq((r.json or {}).get(f), v, "PATCH %s=%r: stored verbatim" % (f, v))
                g = get(path, tok=T1)
                s.eq((g.json or {}).get(f), v, "PATCH %s=%r: read back verbatim" % (f, v))
    for v in PAYLOADS[:6]:
        r = check_post_attack(s, "PATCH path id %r" % v,
                              lambda v=v: request("PATCH", "/v1/payment-providers/" +
                                                  urllib.parse.quote(v, safe=""), raw="[]", tok=T1,
                                                  content_type="application/json-patch+json"),
                              {}, 200, (), None, None)
        s.check(400 <= r.status < 500, "PATCH path id %r: 4xx" % v, r.status)
    s.status(patch([{"op": "replace", "path": "/name", "value": "atk patch target"},
                    {"op": "replace", "path": "/directDebitWithName", "value": None}]), 200,
             "PATCH: name restored")


def test_sqli_pages(s):
    for r in ROUTES:
        if r.method == "POST" and r.pattern.startswith(("/pay/", "/mandate/")):
            s.check(set(f for f, _ in body_fields(r)) <= {"csrf", "accountHolderName", "sortCode",
                                                          "accountNumber"},
                    "POST %s: every documented form field is attacked below" % r.pattern,
                    body_fields(r))
    # /pay/{token}: the csrf field (and cookie) carry the payloads
    _, tok = new_link(s, "sqli pay")
    b = Browser()
    page = b.get("/pay/" + tok)
    s.status(page, 200, "pay page for the sqli link")
    for v in PAYLOADS:
        for what, fields, hdrs in (("csrf field", {"csrf": v}, None),
                                   ("csrf field and cookie", {"csrf": v},
                                    {"Cookie": "pay_csrf=" + v.encode("utf-8").decode("latin-1")})):
            r = check_post_attack(s, "POST /pay %s=%r" % (what, v),
                                  lambda f=fields, h=hdrs: (Browser() if h else b).post(
                                      "/pay/" + tok, f, headers=h), {}, 200, (), None, None)
            s.eq(r.status, 403, "POST /pay %s=%r: 403" % (what, v))
    for v in PAYLOADS:
        r = check_post_attack(s, "POST /pay/<payload> %r" % v,
                              lambda v=v: b.post("/pay/" + urllib.parse.quote(v, safe=""),
                                                 {"csrf": page.csrf() or ""}), {}, 200, (), None, None)
        s.eq(r.status, 404, "POST /pay/%r: 404" % v)
    before = snap()
    r = b.post("/pay/" + tok, {"csrf": page.csrf() or ""})
    s.status(r, 303, "POST /pay after the payloads: the real payment (an attempt, 303 to the page)")
    run_engine([link_customer(tok)])    # the collection engine collects it (COLLECTION.md 3)
    d = delta(before, snap())
    s.eq((d.get("paid links"), d.get("customers balance sum")), (1, 1), "the link paid 0.01 once")

    # /mandate/{token}: csrf, sortCode and accountNumber are refused; the
    # account holder's name is data, stored verbatim
    ft = new_flow(s, "sqli mandate")
    b = Browser()
    page = b.get("/mandate/" + ft)
    s.status(page, 200, "mandate page for the sqli flow")
    good = {"accountHolderName": "Atk Person", "sortCode": "12-34-56", "accountNumber": "12345678"}
    for v in PAYLOADS:
        for field, want in (("csrf", 403), ("sortCode", 422), ("accountNumber", 422)):
            f = dict(good, csrf=page.csrf() or "")
            f[field] = v
            r = check_post_attack(s, "POST /mandate %s=%r" % (field, v),
                                  lambda f=f: b.post("/mandate/" + ft, f), {}, 303, (), None, None)
            s.eq(r.status, want, "POST /mandate %s=%r: %d" % (field, v, want))
            page2 = r if r.status == 422 else None
            if page2 is not None and page2.csrf():
                page = page2
        r = check_post_attack(s, "POST /mandate/<payload> %r" % v,
                              lambda v=v: b.post("/mandate/" + urllib.parse.quote(v, safe=""),
                                                 dict(good, csrf=page.csrf() or "")),
                              {}, 303, (), None, None)
        s.eq(r.status, 404, "POST /mandate/%r: 404" % v)
    for v in PAYLOADS:
        ft = new_flow(s, "sqli holder name")
        b = Browser()
        page = b.get("/mandate/" + ft)
        r = check_post_attack(s, "POST /mandate accountHolderName=%r" % v,
                              lambda: b.post("/mandate/" + ft, dict(good, csrf=page.csrf() or "",
                                                                    accountHolderName=v)),
                              {"completed flows": 1, "provider_mandates": 1}, 303, (), None, None)
        s.status(r, 303, "POST /mandate accountHolderName=%r: set up" % v)
        got = sql_one("SELECT pm.account_holder_name = %s FROM provider_mandates pm JOIN"
                      " site_payment_mandates m ON m.mandate_reference = pm.mandate_reference"
                      " WHERE m.flow_token = %s" % (sq(v), sq(ft)))
        s.eq(got, "1", "accountHolderName %r stored verbatim" % v)


def test_sqli_survivors(s):
    s.eq(sql_one("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE()"
                 " AND table_name IN ('ledger', 'invoice_payments', 'refunds', 'payment_providers',"
                 " 'payment_provider_owners', 'site_payment_mandates', 'provider_mandates',"
                 " 'payment_links', 'customers')"), "9", "every table still there")
    s.eq(sql_one("SELECT COUNT(*) FROM customers WHERE balance = 0 AND id BETWEEN 1 AND 100"
                 " AND id NOT IN (SELECT customer_id FROM ledger)"), "0", "no balance was zeroed")
    s.eq(sql_one("SELECT COUNT(*) FROM customers c WHERE c.balance <>"
                 " (SELECT COALESCE(SUM(amount), 0) FROM ledger l WHERE l.customer_id = c.id)"), "0",
         "every balance == sum of its ledger rows")
    s.status(get("/readyz"), 200, "/readyz after the injection sweep")


# ---------------------------------------------------------------- 3. HTML / script escaping

def check_escaped(s, what, body, texts):
    for t in texts:
        hit(CATS[2])
        s.check(html_escape(t) in body, what + ": %r shown escaped" % t[:30], body[:2000])
        s.check(t not in body, what + ": %r never raw" % t[:30])
    low = body.lower()
    s.check("<script" not in low and "<img" not in low and "<svg" not in low
            and "<iframe" not in low, what + ": no injected element", body[:300])


def test_html_escaping(s):
    sql("UPDATE contract_owners SET name = %s WHERE id = 1" % sq(HOSTILE_OWNER))
    try:
        # JSON: verbatim
        for path, body, fields in (
                ("/v1/customer-payments", {"customerId": 90, "amountInMajorCurrency": D("0.01"),
                                           "type": "CHEQUE", "description": HOSTILE,
                                           "reference": HOSTILE}, ("description", "reference")),
                ("/v1/customer-balance-adjustments", {"customerId": 90, "amountInMajorCurrency": D("0.01"),
                                                      "description": HOSTILE}, ("description",)),
                ("/v1/invoice-payments", {"generatedInvoiceId": FX["inv91"], "amountInMajorCurrency":
                                          D("0.01"), "description": HOSTILE, "paymentMethod": "CHEQUE"},
                 ("description",)),
                ("/v1/refunds", {"invoiceId": FX["inv91"], "billRunType": "NORMAL", "amountInMajorCurrency":
                                 D("0.01"), "description": HOSTILE, "paymentMethod": "CHEQUE"},
                 ("description",)),
                ("/v1/payment-providers", {"type": "OTHER", "name": HOSTILE, "status": "INACTIVE",
                                           "directDebitWithName": HOSTILE,
                                           "creditorIdentifier": "atk-cleanup", "contractOwnerIds": [1]},
                 ("name", "directDebitWithName"))):
            r = jpost(path, body)
            hit(CATS[2])
            if s.check(r.status in (200, 201), "POST %s with HTML" % path, r):
                s.eq(r.header("Content-Type"), "application/json; charset=utf-8",
                     "POST %s: JSON, never HTML" % path)
                for f in fields:
                    s.eq(r.json.get(f), HOSTILE, "POST %s: %s verbatim in JSON" % (path, f))
                    s.check(html_escape(HOSTILE) not in r.raw, "POST %s: %s not HTML-escaped" % (path, f))
                loc = r.header("Location")
                if loc:
                    g = get(loc, tok=T1)
                    hit(CATS[2])
                    for f in fields:
                        s.eq((g.json or {}).get(f), HOSTILE, "GET %s: %s verbatim" % (loc, f))
        lst = get("/v1/customer-payments?" + qs({"customer_id": 90, "page": 1, "pageSize": 5,
                                                 "sort": "id:desc", "filter": HOSTILE}), tok=T1)
        hit(CATS[2])
        s.check(lst.status == 200 and lst.json and all(x.get("description") == HOSTILE
                                                       for x in lst.json),
                "list filtered by the HTML text returns it verbatim", lst)
        ensure_tp("failed")
        r = jpost("/v1/invoice-payment-reprocess", {"invoiceId": FX["inv92"], "billRunType": "NORMAL",
                                                    "notes": HOSTILE})
        hit(CATS[2])
        s.eq((r.status, (r.json or {}).get("description")), (200, HOSTILE), "reprocess notes verbatim")
        # error messages that echo input stay JSON
        r = jpost("/v1/customer-payments", {"customerId": 90, "amountInMajorCurrency": 1,
                                            "type": "CHEQUE", HOSTILE[:40]: 1})
        hit(CATS[2])
        s.eq((r.status, r.header("Content-Type")), (400, "application/json; charset=utf-8"),
             "an unknown field named with HTML: a JSON error")
        r = get("/v1/refunds?page=1&pageSize=1&" + qs({HOSTILE[:40]: "1"}), tok=T1)
        hit(CATS[2])
        s.eq((r.status, r.header("Content-Type")), (400, "application/json; charset=utf-8"),
             "an unknown parameter named with HTML: a JSON error")

        # the payment link landing page and receipt
        lr, tok = new_link(s, "html", description=HOSTILE, invoiceId=FX["hostile_invoice"],
                           customerId=None)
        s.eq((lr.json or {}).get("description"), HOSTILE, "link description verbatim in JSON")
        b = Browser()
        page = b.get("/pay/" + tok)
        s.status(page, 200, "landing page with HTML everywhere")
        check_escaped(s, "landing page", page.body, [HOSTILE, HOSTILE_OWNER, HOSTILE_INVOICE])
        s.status(b.post("/pay/" + tok, {"csrf": page.csrf() or ""}), 303,
                 "pay with HTML everywhere: 303 to the page")
        proc = b.get("/pay/" + tok)
        s.status(proc, 200, "processing page with HTML everywhere")
        check_escaped(s, "processing page", proc.body, [HOSTILE, HOSTILE_OWNER, HOSTILE_INVOICE])
        run_engine([link_customer(tok)])
        rec = b.get("/pay/" + tok)
        s.status(rec, 410, "receipt with HTML everywhere (the link used)")
        check_escaped(s, "receipt", rec.body, [HOSTILE, HOSTILE_OWNER, HOSTILE_INVOICE])
        again = Browser().get("/pay/" + tok)
        check_escaped(s, "receipt shown again", again.body, [HOSTILE, HOSTILE_OWNER])
        # the mandate page: owner name, site name, the re-shown account holder name
        ft = new_flow(s, "html", site=FX["hostile_site"])
        b = Browser()
        page = b.get("/mandate/" + ft)
        s.status(page, 200, "mandate page with HTML everywhere")
        check_escaped(s, "mandate page", page.body, [HOSTILE_SITE, HOSTILE_OWNER])
        evil_name = "\"><script>alert(9)</script><input value=\""
        r = b.post("/mandate/" + ft, {"csrf": page.csrf() or "", "accountHolderName": evil_name,
                                      "sortCode": "1", "accountNumber": "12345678"})
        s.status(r, 422, "mandate form re-shown with an error")
        check_escaped(s, "mandate form re-shown", r.body, [evil_name, HOSTILE_SITE, HOSTILE_OWNER])
        s.check('value="%s"' % html_escape(evil_name) in r.body,
                "account holder name re-shown inside the value attribute, escaped")
        r = b.post("/mandate/" + ft, {"csrf": r.csrf() or "", "accountHolderName": HOSTILE,
                                      "sortCode": "12-34-56", "accountNumber": "12345678"})
        s.status(r, 303, "mandate with an HTML account holder name")
        ref = sql_one("SELECT mandate_reference FROM site_payment_mandates WHERE flow_token = %s"
                      % sq(ft))
        g = get("/v1/payment-provider-mandates/%s/%s" % (FX["own_method"], ref), tok=T1)
        hit(CATS[2])
        j = g.json or {}
        s.eq(((j.get("firstName") or "") + " " + (j.get("lastName") or "")).strip(), HOSTILE,
             "provider mandate: the HTML name verbatim in JSON")
        # pages never echo a hostile token
        for t in ("<script>alert(1)</script>", "\"><svg onload=alert(1)>", "A" * 42 + "<"):
            for kind in ("pay", "mandate"):
                p = Browser().get("/%s/%s" % (kind, urllib.parse.quote(t, safe="")))
                hit(CATS[2])
                s.status(p, 404, "/%s/<hostile token>: 404 page" % kind)
                s.check(t not in p.body and "<script" not in p.body.lower()
                        and "<svg" not in p.body.lower(), "/%s/<hostile token>: not echoed" % kind)
    finally:
        restore_owner_name()
    s.check(not sql_one("SELECT name FROM contract_owners WHERE id = 1").startswith("ATK"),
            "contract owner 1's name restored")


# ---------------------------------------------------------------- 4. response headers

def parse_csp(v):
    out = {}
    for d in (v or "").split(";"):
        parts = d.split()
        if parts:
            out[parts[0].lower()] = parts[1:]
    return out


def check_headers(s, what, status, items, path):
    h = collections.defaultdict(list)
    for k, v in items:
        h[k.lower()].append(v)
    hit(CATS[3])
    s.check(h.get("server", []) in ([], ["nginx"], ["Apache"]), what + ": Server without a version",
            h.get("server"))
    s.check("x-powered-by" not in h, what + ": no X-Powered-By", h.get("x-powered-by"))
    s.check(not any(VERSION_RE.search(unrandom(v))
                    for k, vs in h.items() if k != "server" for v in vs),
            what + ": no software versions in any header", dict(h))
    s.eq(h.get("x-content-type-options"), ["nosniff"], what + ": X-Content-Type-Options nosniff")
    rid = h.get("x-request-id", [])
    s.check(len(rid) == 1 and RID_RE.fullmatch(rid[0]), what + ": one sane X-Request-Id", rid)
    s.check("access-control-allow-origin" not in h and "access-control-allow-credentials" not in h,
            what + ": no CORS grant to another origin", h.get("access-control-allow-origin"))
    ct = (h.get("content-type") or [""])[0]
    page_route = path.startswith(("/pay/", "/mandate/"))
    if ct.startswith("text/html"):
        csps = h.get("content-security-policy", [])
        s.eq(len(csps), 1, what + ": one Content-Security-Policy")
        csp = parse_csp(csps[0] if csps else "")
        s.eq(csp.get("default-src"), ["'none'"], what + ": CSP default-src 'none'")
        s.check("unsafe-inline" not in (csps or [""])[0] and "unsafe-eval" not in (csps or [""])[0],
                what + ": CSP without unsafe-inline / unsafe-eval", csps)
        s.check(csp.get("script-src") in (None, ["'none'"]), what + ": no scripts allowed",
                csp.get("script-src"))
        s.eq(csp.get("frame-ancestors"), ["'none'"], what + ": CSP frame-ancestors 'none'")
        s.check(not any("*" in x or x in ("http:", "https:", "data:") for d in csp.values() for x in d),
                what + ": no wildcard sources", csps)
        s.eq(h.get("x-frame-options"), ["DENY"], what + ": X-Frame-Options DENY")
    elif ct.startswith("application/json") or status in (304,) or path.startswith("/v1/"):
        cc = ",".join(h.get("cache-control", []))
        if path.split("?")[0] == "/v1/openapi.json" and status in (200, 304):
            s.check("public" in cc or "max-age" in cc, what + ": the OpenAPI document is cacheable", cc)
        else:
            s.check("no-store" in cc, what + ": Cache-Control no-store", cc)
    else:
        cc = ",".join(h.get("cache-control", []))
        s.check("no-store" in cc, what + ": Cache-Control no-store", (ct, cc))
    if page_route and ct.startswith("text/html"):
        for c in h.get("set-cookie", []):
            s.check(re.match(r"pay_csrf=[A-Za-z0-9_-]+;", c) and "HttpOnly" in c
                    and "SameSite=Strict" in c and "Path=/" in c,
                    what + ": only the CSRF cookie, HttpOnly and SameSite=Strict", c)
    else:
        s.eq(h.get("set-cookie"), None, what + ": no Set-Cookie")


def headers_of(r):
    return list(r.headers.items())


EVIL = {"Origin": "https://evil.example"}


def test_headers(s):
    for rt in ROUTES:
        k = key(rt)
        spec = SPEC.get(k, {})
        path = route_path(rt, spec)
        what = "%s %s" % (rt.method, rt.pattern)
        # the valid request
        if spec.get("page") and rt.method == "GET":
            if spec["page"] == "pay":
                _, tok = new_link(s, "headers")
            else:
                tok = new_flow(s, "headers")
            r = Browser().get("/%s/%s" % (spec["page"], tok), headers=EVIL)
            s.status(r, 200, what + ": valid request")
        elif spec.get("page"):
            if spec["page"] == "pay":
                _, tok = new_link(s, "headers")
                b = Browser()
                p = b.get("/pay/" + tok)
                r = b.post("/pay/" + tok, {"csrf": p.csrf() or ""})
                s.status(r, 303, what + ": valid request (an attempt; 303 to the page)")
            else:
                tok = new_flow(s, "headers")
                b = Browser()
                p = b.get("/mandate/" + tok)
                r = b.post("/mandate/" + tok, {"csrf": p.csrf() or "", "accountHolderName": "Atk Hdr",
                                               "sortCode": "12-34-56", "accountNumber": "12345678"})
                s.status(r, 303, what + ": valid request (redirect)")
            path = "/%s/%s" % (spec["page"], tok)
        elif spec.get("webhook"):
            r = signed_webhook(1, spec["body"](), headers=EVIL)
            s.status(r, 200, what + ": valid request (signed)")
        elif rt.method == "GET":
            q = spec.get("query", {})
            r = get(path + ("?" + qs(q) if q else ""), tok=T1, headers=EVIL)
            s.check(r.status == 200, what + ": valid request", r)
        elif rt.method == "PATCH":
            r = request("PATCH", path, raw=jdump([{"op": "replace", "path": "/name",
                                                   "value": "atk patch target"}]), tok=T1,
                        content_type="application/json-patch+json", headers=EVIL)
            s.status(r, 200, what + ": valid request")
        else:
            if spec.get("prepare"):
                spec["prepare"]()
            r = post(path, raw=jdump(spec["body"]()), tok=T1, headers=EVIL)
            s.status(r, spec["ok"], what + ": valid request")
        check_headers(s, what + " (%d)" % r.status, r.status, headers_of(r), path)
        # an error of the same route
        if spec.get("page"):
            e = Browser().open(rt.method, "/%s/%s" % (spec["page"], "B" * 43),
                               data=b"csrf=x" if rt.method == "POST" else None,
                               headers=dict(EVIL, **({"Content-Type": "application/x-www-form-urlencoded"}
                                                     if rt.method == "POST" else {})))
            s.check(e.status == (404 if rt.method == "GET" else 403),
                    what + ": unknown token (GET 404) / foreign form post (POST 403)", e)
        elif "R_AUTH" in rt.flags or rt.flags in ("RW", "RP"):
            e = request(rt.method, path, raw=b"{}" if rt.method != "GET" else None, headers=EVIL)
            s.status(e, 401, what + ": no token")
        elif path == "/v1/openapi.json":
            e = get(path + "?x=1", headers=EVIL)
            s.status(e, 400, what + ": unknown parameter")
        else:
            e = request("DELETE", path, headers=EVIL)
            s.status(e, 405, what + ": DELETE")
        check_headers(s, what + " error (%d)" % e.status, e.status, headers_of(e), path)
    # 304 of the OpenAPI document
    r = get("/v1/openapi.json")
    e = get("/v1/openapi.json", headers={"If-None-Match": r.header("ETag") or "*"})
    s.status(e, 304, "openapi.json 304")
    check_headers(s, "GET /v1/openapi.json (304)", 304, headers_of(e), "/v1/openapi.json")
    # errors nginx (or Apache) makes itself; Apache cannot turn its 414 into
    # nginx's 400
    for what, send, want in (
            ("unknown path", lambda: get("/nope-" + RUN, headers=EVIL), 404),
            ("/v1 without slash", lambda: get("/v1", headers=EVIL), 404),
            ("body over 64 KiB", lambda: post("/v1/customer-payments", raw="x" * 70000, tok=T1,
                                              headers=EVIL), 413),
            ("request line too long", lambda: get("/v1/refunds?" + "a" * 9000, tok=T1),
             414 if FRONT == "apache" else 400)):
        r = send()
        s.status(r, want, "nginx error: " + what)
        s.check(isinstance(r.json, dict) and r.json.get("status") == want,
                "nginx error %s: JSON body" % what, r.raw[:200])
        check_headers(s, "nginx error: %s (%d)" % (what, r.status), r.status, headers_of(r), "/v1/x")
    st, hdrs, body = raw_http(b"GET /v1/refunds HTTP/1.1\r\nHost: " + host().encode() +
                              b"\r\nConnection: close\r\nX: \x01\x02\r\nBad Header\r\n\r\n")
    s.check(400 <= st < 500, "nginx error: malformed header: 4xx", st)
    check_headers(s, "nginx error: malformed header (%d)" % st, st, hdrs, "/v1/refunds")


# ---------------------------------------------------------------- 5. methods and paths

OTHER_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "FOO", "PROPFIND"]


def test_methods(s):
    by_pattern = collections.OrderedDict()
    for rt in ROUTES:
        by_pattern.setdefault(rt.pattern, []).append(rt)
    for pattern, rts in by_pattern.items():
        spec = SPEC.get(key(rts[0]), {})
        path = route_path(rts[0], spec)
        allow = expected_allow(path)
        s.eq(allow, sorted({rt.method for rt in rts}), "%s: Allow computed from the route table"
             % pattern)
        for m in OTHER_METHODS + ["HEAD"]:
            if m in allow:
                continue
            data = b"{}" if m in ("POST", "PUT", "PATCH") else None
            before = snap() if m != "GET" else None
            r = request(m, path, raw=data, tok=T1)
            hit(CATS[4])
            what = "%s %s" % (m, pattern)
            if m == "HEAD":
                if "GET" in allow:  # RFC 9110 9.3.2: answered like GET, without a body
                    g = request("GET", path, tok=T1)
                    s.eq((r.status, r.header("Content-Type")), (g.status, g.header("Content-Type")),
                         what + ": answered like GET")
                else:
                    s.check(r.status == 405 and sorted(x.strip() for x in (r.header("Allow") or "")
                                                       .split(",")) == allow,
                            what + ": 405 with Allow", r.status)
                s.eq(r.raw, "", what + ": no body")
                continue
            s.error(r, 405, "METHOD_NOT_ALLOWED", what)
            s.eq(sorted(x.strip() for x in (r.header("Allow") or "").split(",") if x.strip()),
                 allow, what + ": Allow")
            if before is not None:
                s.eq(delta(before, snap()), {}, what + ": nothing written")
    # methods nginx answers itself: still a 405 with Allow, no reflection (XST).
    # Apache refuses a CONNECT whose target is a path as malformed (400, RFC
    # 9112 3.2.3: CONNECT takes host:port) before anything else.
    for m in ("TRACE", "CONNECT"):
        connect_400 = m == "CONNECT" and FRONT == "apache"
        st, hdrs, body = raw_http(("%s /v1/refunds HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s"
                                   "\r\nCookie: secret=s3cr3t\r\nConnection: close\r\n\r\n"
                                   % (m, host(), T1)).encode())
        hit(CATS[4])
        h = {k.lower(): v for k, v in hdrs}
        s.eq(st, 400 if connect_400 else 405, "%s /v1/refunds: %s" % (m, 400 if connect_400 else 405))
        s.check(b"s3cr3t" not in body and T1.encode() not in body, "%s: request not reflected" % m)
        s.check(connect_400 or sorted(x.strip() for x in h.get("allow", "").split(",") if x.strip())
                == ["GET", "POST"], "%s /v1/refunds: 405 carries Allow (spec 1.3)" % m, hdrs)
        s.check(h.get("content-type", "").startswith("application/json"),
                "%s /v1/refunds: JSON error body (spec 1.3)" % m, body[:120])
        s.check(h.get("server") in SERVER_TOKENS, "%s: Server without a version" % m)
        s.eq(h.get("x-content-type-options"), "nosniff", "%s: nosniff" % m)
        s.check(RID_RE.fullmatch(h.get("x-request-id", "")), "%s: X-Request-Id" % m)
    st, hdrs, body = raw_http(("get /v1/refunds HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                               % host()).encode())
    hit(CATS[4])
    s.check(400 <= st < 500, "lower-case method: 4xx", st)

    # unknown paths: 404 JSON with every method
    for p in ["/v1/customer-payment", "/v1/customer-payments/1/x", "/v1/Customer-Payments",
              "/V1/customer-payments", "/v1/nope", "/v2/customer-payments", "/v1/customer-payments.json",
              "/v1/openapi.json/", "/pay/", "/pay/a/b", "/mandate", "/.env", "/server-status",
              "/v1/customer-payments/1/", "/healthz/", "/metrics/x", "/v1/refunds/1/../../x"]:
        for m in ("GET", "POST", "DELETE"):
            r = request(m, p, raw=b"{}" if m == "POST" else None, tok=T1)
            hit(CATS[4])
            s.eq(r.status, 404, "%s %s: 404" % (m, p))
            s.check(isinstance(r.json, dict) and r.json.get("status") == 404,
                    "%s %s: JSON 404 body" % (m, p), r.raw[:120])

    # HTTP/1.0, absolute-URI request lines: routed like the normal request
    own = FX["own_ledger"]
    other = FX["other_ledger"][0]
    normal = get("/v1/customer-payments/%d" % own, tok=T1)
    auth = b"Authorization: Bearer " + T1.encode() + b"\r\n"
    for what, req in (
            ("HTTP/1.0 without Host", b"GET /v1/customer-payments/%d HTTP/1.0\r\n" % own + auth + b"\r\n"),
            ("HTTP/1.0 with Host", b"GET /v1/customer-payments/%d HTTP/1.0\r\nHost: " % own
             + host().encode() + b"\r\n" + auth + b"\r\n"),
            ("absolute URI", b"GET http://" + host().encode() + b"/v1/customer-payments/%d HTTP/1.1\r\n"
             % own + b"Host: " + host().encode() + b"\r\n" + auth + b"Connection: close\r\n\r\n"),
            ("absolute URI, other Host", b"GET http://evil.example/v1/customer-payments/%d HTTP/1.1\r\n"
             % own + b"Host: other.example\r\n" + auth + b"Connection: close\r\n\r\n")):
        st, hdrs, body = raw_http(req)
        hit(CATS[4])
        s.eq(st, 200, what + ": served")
        try:
            j = json.loads(body, parse_float=Decimal)
        except ValueError:
            j = None
        s.eq(j, normal.json, what + ": the same object as the normal request")
        check_headers(s, what, st, hdrs, "/v1/customer-payments/%d" % own)
    for what, req in (
            ("HTTP/1.0, another tenant's row", b"GET /v1/customer-payments/%d HTTP/1.0\r\n" % other
             + auth + b"\r\n"),
            ("absolute URI, another tenant's row", b"GET http://" + host().encode()
             + b"/v1/customer-payments/%d HTTP/1.1\r\nHost: " % other + host().encode() + b"\r\n"
             + auth + b"Connection: close\r\n\r\n")):
        st, hdrs, body = raw_http(req)
        hit(CATS[4])
        s.eq(st, 404, what + ": 404")
    st, hdrs, body = raw_http(b"GET /v1/customer-payments/%d\r\n" % own)  # HTTP/0.9
    hit(CATS[4])
    s.check(st == 0 or 400 <= st < 500, "HTTP/0.9 request line: no 2xx/5xx", st)
    s.check(b'"customerId"' not in body, "HTTP/0.9: no data without a token", body[:120])

    # dot segments, encoded slashes, double encoding: 4xx JSON, or exactly what
    # the normalised path gives this caller; never another tenant's object
    P = "/v1/customer-payments/"
    own2 = FX["own_ledger2"]
    for p in [P + "%2e%2e/", "/v1//customer-payments", "/v1//customer-payments?customer_id=31&page=1"
              "&pageSize=5", P + "%d/../%d" % (own, own2), P + "%d/../%d" % (own, other),
              P + "%d%%2F..%%2F%d" % (own, other), P + "%d%%2f..%%2f%d" % (own, own2),
              P + "%2e%2e/%2e%2e/etc/passwd", P + "..%2f..%2fetc%2fpasswd", P + "%252e%252e/" + str(other),
              P + "%2e/" + str(other), P + "./%d" % other, "/v1/./customer-payments/%d" % other,
              P + "%d;%d" % (own, other), P + "%d,%d" % (own, other), P + "%d%%20%d" % (own, other),
              P + "%d%%00" % other, P + "%c0%ae%c0%ae/" + str(other), P + "%d\\..\\%d" % (own, other),
              "/pay/..%2f..%2fv1%2fcustomer-payments%2f" + str(other),
              "/mandate/%2e%2e/v1/customer-payments/" + str(other),
              "/v1/payment-providers/%d/../%d" % (FX["p1"], FX["other_providers"][0]),
              "/v1/refunds/%d/..%%2f%d" % (FX["own_refund"], FX["t2"]["refund"]),
              "/v1/payment-provider-mandates/%s/%s%%2f..%%2f%s" % (FX["own_method"], FX["own_ref"],
                                                                  FX["t2"]["mandate_ref"])]:
        st, hdrs, body = raw_http(("GET %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"
                                   "Connection: close\r\n\r\n" % (p, host(), T1)).encode("latin-1"))
        hit(CATS[4])
        what = "GET " + p
        try:
            j = json.loads(body, parse_float=Decimal)
        except ValueError:
            j = None
        s.check(st != 0 and st < 500, what + ": answered, not 5xx", st)
        if 400 <= st < 500:
            s.check(isinstance(j, dict) and j.get("status") == st, what + ": JSON error", body[:150])
            continue
        # served: it must be exactly the caller's own view of the normalised path
        norm = urllib.parse.unquote(p.split("?")[0])
        norm = re.sub(r"/+", "/", norm)
        parts = []
        for seg in norm.split("/"):
            if seg == "..":
                parts = parts[:-1]
            elif seg != ".":
                parts.append(seg)
        canon = "/".join(parts) + ("?" + p.split("?", 1)[1] if "?" in p else "")
        ref = get(canon, tok=T1)
        s.eq(st, ref.status, what + ": served like %s" % canon)
        s.eq(j, ref.json, what + ": the same body as %s" % canon)
        items = j if isinstance(j, list) else [j] if isinstance(j, dict) else []
        s.check(all(x.get("customerId") in (None,) or x.get("customerId") not in
                    FX["other_customers"] for x in items if isinstance(x, dict)),
                what + ": no other tenant's data", body[:200])


def test_still_healthy(s):
    s.status(get("/healthz"), 200, "/healthz after the attacks")
    s.status(get("/readyz"), 200, "/readyz after the attacks")
    r = get("/v1/customer-balances?customer_id=90", tok=T1)
    s.status(r, 200, "normal GET still works")
    cleanup_providers()
    restore_owner_name()
    s.eq(sql_one("SELECT COUNT(*) FROM customers c WHERE c.balance <>"
                 " (SELECT COALESCE(SUM(amount), 0) FROM ledger l WHERE l.customer_id = c.id)"), "0",
         "every balance == sum of its ledger rows")
    s.eq(sql_one("SELECT COUNT(*) FROM invoices WHERE refunded > paid OR paid < 0"), "0",
         "0 <= refunded <= paid on every invoice")


def test_summary(s):
    print("attacks tried per category:")
    for c, n in COUNTS.items():
        print("  %-28s %6d" % (c, n))
    print("  %-28s %6d" % ("total", sum(COUNTS.values())))
    print("routes swept: %d (from handlers/routes.c)" % len(ROUTES))


def run():
    start = time.monotonic()
    tests = [test_setup, test_every_route_has_rules, test_idor, test_sqli_get, test_sqli_post,
             test_sqli_patch, test_sqli_pages, test_sqli_survivors, test_html_escaping,
             test_headers, test_methods, test_still_healthy, test_summary]
    timed_tests = []
    for t in tests:
        def wrapped(s, t=t):
            t0 = time.monotonic()
            try:
                t(s)
            finally:
                print("  [%s %.1f s]" % (t.__name__, time.monotonic() - t0))
        wrapped.__name__ = t.__name__
        timed_tests.append(wrapped)
    try:
        Suite().run(timed_tests)
    finally:
        restore_owner_name()
        print("elapsed %.1f s" % (time.monotonic() - start))


run()
