"""End-to-end checks of the conventions every operation shares (API.md §1):
error body shape, X-Request-Id, 404/405, list rules (page, pageSize, sort,
fields, unknown parameters, X-Total-Count, Link), the customer-payments
filters, money formatting, Content-Type and body size, idempotency, and the
health endpoints.

Writes go to customers 2, 3 and 4 (owner 1) only, and every assertion on
money is relative (balance read first, then the change asserted), so the
file passes when run twice on the same stack. Rows created here carry a
per-run marker so filters select exactly this run's rows.
"""
import json
import os
import re
import secrets
import threading
import time
import urllib.parse
from decimal import Decimal

from paytest import *

RUN = "Qz" + secrets.token_hex(5)          # marker for this run's rows
CT_JSON = "application/json; charset=utf-8"
SANE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

W = token(sub="e2e-conv")                   # read + write, owners 1 and 2
LIST10 = "/v1/customer-payments?customer_id=10&page=1&pageSize=100"  # read-only customer


def raw_http(method, path, headers=None, body=None):
    """Sends one HTTP/1.1 request over a plain socket, TLS when the stack
    serves HTTPS (no header or body munging by urllib); returns (status,
    {lowercase name: value}, body)."""
    u = urllib.parse.urlsplit(BASE)
    lines = ["%s %s HTTP/1.1" % (method, path), "Host: %s" % u.netloc,
             "Connection: close"]
    for k, v in (headers or {}).items():
        lines.append("%s: %s" % (k, v))
    if body is not None:
        lines.append("Content-Length: %d" % len(body))
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")
    with connect(timeout=30) as s:
        s.sendall(data)
        chunks = []
        while True:
            c = s.recv(65536)
            if not c:
                break
            chunks.append(c)
    resp = b"".join(chunks)
    head, _, rest = resp.partition(b"\r\n\r\n")
    hl = head.decode("latin-1").split("\r\n")
    status = int(hl[0].split(" ")[1])
    hdrs = {}
    for line in hl[1:]:
        k, _, v = line.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    if "chunked" in hdrs.get("transfer-encoding", ""):
        rest = http_dechunk(rest)
    return status, hdrs, rest


def raw_chunked(path, headers, body, chunk=4096):
    """POSTs body with Transfer-Encoding: chunked over a plain socket (TLS
    when the stack serves HTTPS); returns (status, {lowercase name: value},
    body)."""
    u = urllib.parse.urlsplit(BASE)
    lines = ["POST %s HTTP/1.1" % path, "Host: %s" % u.netloc, "Connection: close",
             "Transfer-Encoding: chunked"] + ["%s: %s" % kv for kv in headers.items()]
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    for i in range(0, len(body), chunk):
        part = body[i:i + chunk]
        data += b"%x\r\n" % len(part) + part + b"\r\n"
    data += b"0\r\n\r\n"
    with connect(timeout=30) as s:
        s.sendall(data)
        chunks = []
        while True:
            c = s.recv(65536)
            if not c:
                break
            chunks.append(c)
    head, _, rest = b"".join(chunks).partition(b"\r\n\r\n")
    hl = head.decode("latin-1").split("\r\n")
    hdrs = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in hl[1:])}
    if "chunked" in hdrs.get("transfer-encoding", ""):
        rest = http_dechunk(rest)
    return int(hl[0].split(" ")[1]), hdrs, rest


def balance(cid):
    return Decimal(sql_one("SELECT balance FROM customers WHERE id = %d" % cid))


def ledger_count(cid=None):
    where = "" if cid is None else " WHERE customer_id = %d" % cid
    return int(sql_one("SELECT COUNT(*) FROM ledger" + where))


def ids(resp):
    return [row["id"] for row in resp.json] if isinstance(resp.json, list) else None


def q(**params):
    return urllib.parse.urlencode(params)


def shape(s, resp, status, reason, code, what, field=None, field_absent=False, check_ct=True):
    """The full §1.3 error body, plus X-Request-Id == requestId."""
    if not s.status(resp, status, what):
        return
    j = resp.json
    if not s.check(isinstance(j, dict), what + ": JSON object body", resp.raw[:200]):
        return
    s.eq(j.get("error"), reason, what + ": error reason phrase")
    s.check(isinstance(j.get("message"), str) and len(j.get("message")) > 0,
            what + ": message is a non-empty string", j.get("message"))
    s.eq(j.get("status"), status, what + ": status field")
    s.eq(j.get("code"), code, what + ": code")
    if field is not None:
        s.eq(j.get("field"), field, what + ": field")
    if field_absent:
        s.check("field" not in j, what + ": no field", j)
    rid = j.get("requestId")
    s.check(isinstance(rid, str) and SANE_ID.match(rid or "") is not None,
            what + ": requestId is a sane token", rid)
    s.eq(resp.header("X-Request-Id"), rid, what + ": X-Request-Id header == requestId")
    if check_ct:
        s.eq(resp.header("Content-Type"), CT_JSON, what + ": Content-Type")


def money_str(minor, digits=2):
    minor = int(minor)
    sign = "-" if minor < 0 else ""
    v = str(abs(minor)).rjust(digits + 1, "0")
    return sign + (v[:-digits] + "." + v[-digits:] if digits else v)


# ---------------------------------------------------------------------------
# Error bodies
# ---------------------------------------------------------------------------

def test_error_shapes(s):
    r = get("/v1/customer-payments?customer_id=10&page=1&pageSize=0", tok=W)
    shape(s, r, 400, "Bad Request", "INVALID_PARAMETER", "400 pageSize=0", field="pageSize")

    r = get("/v1/customer-payments?customer_id=10&page=1&pageSize=10")
    shape(s, r, 401, "Unauthorized", "UNAUTHENTICATED", "401 no token", field_absent=True)

    r = post("/v1/customer-balance-adjustments",
             {"customerId": 3, "amountInMajorCurrency": 1}, tok=token(scope="payments:read"))
    shape(s, r, 403, "Forbidden", "INSUFFICIENT_SCOPE", "403 read-only token POST")

    r = get("/v1/customer-payments/999999999", tok=W)
    shape(s, r, 404, "Not Found", "NOT_FOUND", "404 unknown ledger row")

    r = request("DELETE", "/v1/customer-payments", tok=W)
    shape(s, r, 405, "Method Not Allowed", "METHOD_NOT_ALLOWED", "405 DELETE")

    r = post("/v1/customer-balance-adjustments", raw=b"{" + b" " * (70 * 1024) + b"}", tok=W)
    shape(s, r, 413, "Payload Too Large", "BODY_TOO_LARGE", "413 70 KB body")

    r = post("/v1/customer-balance-adjustments", raw='{"customerId":3,"amountInMajorCurrency":1}',
             tok=W, content_type="text/plain")
    shape(s, r, 415, "Unsupported Media Type", "UNSUPPORTED_MEDIA_TYPE", "415 text/plain")


# ---------------------------------------------------------------------------
# X-Request-Id
# ---------------------------------------------------------------------------

def test_request_id(s):
    for rid in ["abc.DEF_123-x", "a", "Z" * 64, "0.0-_"]:
        r = get("/v1/customer-balances?customer_id=10", tok=W, headers={"X-Request-Id": rid})
        s.status(r, 200, "sane id %r: 200" % rid)
        s.eq(r.header("X-Request-Id"), rid, "sane id %r echoed on 200" % rid)
        r = get("/v1/customer-payments/0", tok=W, headers={"X-Request-Id": rid})
        s.eq(r.header("X-Request-Id"), rid, "sane id %r echoed on 400" % rid)
        s.eq((r.json or {}).get("requestId"), rid, "sane id %r in error body" % rid)

    for rid in ["Z" * 65, "abc def", "abc/def", "a<b>", "id;drop", "é", "a%2Fb", "a,b"]:
        r = get("/v1/customer-payments/0", tok=W, headers={"X-Request-Id": rid})
        got = r.header("X-Request-Id")
        s.check(got is not None and got != rid and SANE_ID.match(got or ""),
                "insane id %r replaced by a fresh sane id" % rid, got)
        s.eq((r.json or {}).get("requestId"), got, "insane id %r: body requestId == header" % rid)

    a = get("/v1/customer-payments/0", tok=W).header("X-Request-Id")
    b = get("/v1/customer-payments/0", tok=W).header("X-Request-Id")
    s.check(a and b and a != b and SANE_ID.match(a), "fresh ids differ per request", (a, b))
    r = get("/healthz")
    s.check(SANE_ID.match(r.header("X-Request-Id") or ""), "/healthz carries X-Request-Id")

    # errors rendered by nginx itself follow the same rule
    r = get("/not-an-api-path", headers={"X-Request-Id": "nginx-echo.1"})
    s.eq(r.header("X-Request-Id"), "nginx-echo.1", "nginx 404 echoes a sane id")
    s.eq((r.json or {}).get("requestId"), "nginx-echo.1", "nginx 404 body requestId")
    r = get("/not-an-api-path", headers={"X-Request-Id": "x" * 65})
    got = r.header("X-Request-Id")
    s.check(got and got != "x" * 65 and SANE_ID.match(got), "nginx 404 replaces a long id", got)
    s.eq((r.json or {}).get("requestId"), got, "nginx 404: body requestId == header")

    # The app answers with nginx's id for the request (nginx passes its
    # $pay_request_id on), so nginx's own 503/504 for a request and the
    # app's log name the same id: the access log ("rid=") shows it.
    r = get("/v1/customer-payments/0", tok=W, headers={"X-Request-Id": "not sane!"})
    got = r.header("X-Request-Id") or "?"
    log = ENV.get("PAY_FRONT_ACCESS_LOG") or os.path.join(ENV["PAY_STACK_DIR"], "nginx", "access.log")
    for _ in range(50):  # the access log line is written after the answer
        with open(log) as f:
            if ("rid=" + got) in f.read():
                break
        time.sleep(0.1)
    with open(log) as f:
        s.check(("rid=" + got) in f.read(), "the id the app answered with is nginx's id", got)


# ---------------------------------------------------------------------------
# 404 / 405
# ---------------------------------------------------------------------------

def test_not_found(s):
    for path in ["/v1/nope", "/v1/customer-payment", "/v1/customer-payments/1/extra",
                 "/v1/customer-balances/10", "/v1/", "/v1/customer-payments/"]:
        r = get(path, tok=W)
        shape(s, r, 404, "Not Found", "NOT_FOUND", "GET %s" % path)
    # outside /v1: JSON from nginx (no token needed to learn nothing)
    for i, path in enumerate(["/", "/v1", "/v2/customer-payments", "/index.html", "/pay", "/healthz/x",
                                   "/etc/passwd"]):
        r = get(path)
        shape(s, r, 404, "Not Found", "NOT_FOUND", "GET %s (nginx)" % path, check_ct=(i == 0))
    r = post("/v1/nope", {"a": 1}, tok=W)
    shape(s, r, 404, "Not Found", "NOT_FOUND", "POST /v1/nope")


def test_method_not_allowed(s):
    for m in ["DELETE", "PUT", "PATCH"]:
        r = request(m, "/v1/customer-payments", tok=W, raw=b"{}")
        shape(s, r, 405, "Method Not Allowed", "METHOD_NOT_ALLOWED", "%s /v1/customer-payments" % m)
        allow = sorted(x.strip() for x in (r.header("Allow") or "").split(","))
        s.eq(allow, ["GET", "POST"], "%s /v1/customer-payments: Allow" % m)
    for m in ["DELETE", "PUT", "PATCH", "POST"]:
        r = request(m, "/v1/customer-payments/1", tok=W, raw=b"{}")
        shape(s, r, 405, "Method Not Allowed", "METHOD_NOT_ALLOWED", "%s /v1/customer-payments/1" % m)
        s.eq(r.header("Allow"), "GET", "%s /v1/customer-payments/1: Allow" % m)
    r = request("DELETE", "/v1/customer-balance-adjustments", tok=W)
    s.status(r, 405, "DELETE /v1/customer-balance-adjustments")
    s.eq(r.header("Allow"), "POST", "DELETE /v1/customer-balance-adjustments: Allow")
    r = request("GET", "/v1/customer-balance-adjustments", tok=W)
    s.status(r, 405, "GET /v1/customer-balance-adjustments")
    s.eq(r.header("Allow"), "POST", "GET /v1/customer-balance-adjustments: Allow")
    r = post("/v1/customer-balances", {"customerId": 3}, tok=W)
    s.status(r, 405, "POST /v1/customer-balances")
    s.eq(r.header("Allow"), "GET", "POST /v1/customer-balances: Allow")


# ---------------------------------------------------------------------------
# Lists
# ---------------------------------------------------------------------------

def test_page_rules(s):
    base = "/v1/customer-payments?customer_id=10"
    for page in ["0", "-1", "abc", "1.5", "", "01x", "99999999999999999999"]:
        r = get(base + "&pageSize=10&page=" + urllib.parse.quote(page), tok=W)
        s.error(r, 400, "INVALID_PARAMETER", "page=%r" % page, field="page")
    r = get(base + "&pageSize=10", tok=W)
    s.status(r, 400, "page missing")
    s.eq((r.json or {}).get("field"), "page", "page missing: field")
    for size in ["0", "1001", "-1", "abc", "", "1e3", "99999999999999999999"]:
        r = get(base + "&page=1&pageSize=" + urllib.parse.quote(size), tok=W)
        s.error(r, 400, "INVALID_PARAMETER", "pageSize=%r" % size, field="pageSize")
    r = get(base + "&page=1", tok=W)
    s.status(r, 400, "pageSize missing")
    s.eq((r.json or {}).get("field"), "pageSize", "pageSize missing: field")
    r = get(base + "&page=1&pageSize=1000", tok=W)
    s.status(r, 200, "pageSize=1000 accepted")
    r = get(base + "&page=1&pageSize=1", tok=W)
    s.status(r, 200, "pageSize=1 accepted")
    s.eq(len(r.json or []), 1, "pageSize=1 gives one row")


def test_numbers_say_what_is_wrong(s):
    """Leading zeros are refused with a message that says so (not "must be
    between 1 and ..."), in the query and in the path."""
    base = "/v1/customer-payments?customer_id=10"
    for query, field, want in [("&page=01&pageSize=10", "page",
                                "page must be written without leading zeros"),
                               ("&page=1&pageSize=010", "pageSize",
                                "pageSize must be written without leading zeros"),
                               ("&page=x&pageSize=10", "page", "page must be a decimal integer"),
                               ("&page=0&pageSize=10", "page",
                                "page must be between 1 and 1000000000")]:
        r = get(base + query, tok=W)
        s.error(r, 400, "INVALID_PARAMETER", query, field=field)
        s.eq((r.json or {}).get("message"), want, query + ": message")
    r = get("/v1/payment-providers/01", tok=W)
    s.error(r, 400, "INVALID_PARAMETER", "/v1/payment-providers/01", field="payment_provider_id")
    s.check("without leading zeros" in ((r.json or {}).get("message") or ""),
            "/v1/payment-providers/01: the message names the leading zero", r.raw[:200])
    r = get("/v1/customer-payments?customer_id=010&page=1&pageSize=1", tok=W)
    s.error(r, 400, "INVALID_PARAMETER", "customer_id=010", field="customer_id")
    s.check("without leading zeros" in ((r.json or {}).get("message") or ""),
            "customer_id=010: the message names the leading zero", r.raw[:200])


def test_enum_filters(s):
    """Every filter on an enumerated field checks its values (plain and in:),
    naming the allowed ones; like: stays a text search."""
    cases = [("/v1/refunds?page=1&pageSize=5", "billRunType", "NORMAL, ADHOC"),
             (LIST10, "customerPaymentType", "CUSTOMER, INVOICE"),
             ("/v1/invoice-payments?page=1&pageSize=5", "customerPaymentType", "CUSTOMER"),
             ("/v1/adhoc-invoice-payments?page=1&pageSize=5", "customerPaymentType", "CUSTOMER"),
             ("/v1/payment-providers?page=1&pageSize=5", "type", "CHEQUE, DIRECT_DEBIT")]
    good = {"billRunType": "NORMAL", "customerPaymentType": "CUSTOMER", "type": "STRIPE"}
    for path, param, allowed in cases:
        for bad in ["FOO", "normal", "in:%s,FOO" % good[param]]:
            r = get(path + "&%s=%s" % (param, urllib.parse.quote(bad, safe=":,")), tok=W)
            what = "%s %s=%s" % (path.split("?")[0], param, bad)
            s.error(r, 400, "INVALID_PARAMETER", what, field=param)
            s.check(allowed in ((r.json or {}).get("message") or ""),
                    what + ": the message lists the allowed values", r.raw[:300])
        for ok in [good[param], "in:" + good[param], "like:" + good[param][:3].lower()]:
            r = get(path + "&%s=%s" % (param, ok), tok=W)
            s.status(r, 200, "%s %s=%s" % (path.split("?")[0], param, ok))


def test_head(s):
    """HEAD on every GET route answers like GET without a body (RFC 9110
    9.3.2): same status and headers, Content-Length of the GET body."""
    paths = [(LIST10, W), ("/v1/customer-payments/999999999", W),
             ("/v1/customer-balances?customer_id=10", W), ("/v1/refunds?page=1&pageSize=2", W),
             ("/v1/payment-providers/01", W), ("/v1/customer-credit-status?page=1&pageSize=3", W),
             ("/v1/openapi.json", None), ("/healthz", None), (LIST10, None)]
    for path, tok in paths:
        g = get(path, tok=tok)
        h = request("HEAD", path, tok=tok)
        what = "HEAD %s%s" % (path, "" if tok else " (no token)")
        s.eq(h.status, g.status, what + ": GET's status")
        s.eq(h.raw, "", what + ": no body")
        s.eq(h.header("Content-Type"), g.header("Content-Type"), what + ": GET's Content-Type")
        # Apache's mod_proxy_fcgi drops the app's Content-Length from a HEAD
        # answer (RFC 9110 9.3.2: a server MAY send it); when sent, it is GET's.
        if FRONT != "apache" or h.header("Content-Length") is not None:
            s.eq(h.header("Content-Length"), str(len(g.raw.encode())), what + ": GET's length")
        for name in ("X-Total-Count", "Link", "ETag", "WWW-Authenticate"):
            s.eq(h.header(name), g.header(name), what + ": " + name)
    h = request("HEAD", "/v1/customer-balance-adjustments", tok=W)
    s.eq((h.status, h.header("Allow"), h.raw), (405, "POST", ""),
         "HEAD on a POST-only path: 405 with Allow, no body")


def test_accept(s):
    """An Accept that excludes application/json (and every wildcard) on an
    API route is 406 with the JSON error body; absent, */*, application/*
    and weighted lists that keep JSON are fine; pages are not negotiated."""
    for accept in ["text/html", "text/plain, text/*", "application/xml",
                   "application/json;q=0, */*;q=0.5", "*/*;q=0"]:
        r = get(LIST10, tok=W, headers={"Accept": accept})
        shape(s, r, 406, "Not Acceptable", "NOT_ACCEPTABLE", "Accept: " + accept)
    for accept in ["application/json", "*/*", "application/*", "text/html, */*;q=0.1",
                   "application/json; charset=utf-8", "text/html,application/xhtml+xml,"
                   "application/xml;q=0.9,*/*;q=0.8"]:
        r = get(LIST10, tok=W, headers={"Accept": accept})
        s.status(r, 200, "Accept: " + accept)
    before = ledger_count(2)
    r = post("/v1/customer-payments", {"customerId": 2, "amountInMajorCurrency": 1, "type": "BACS"},
             tok=W, headers={"Accept": "text/html"})
    shape(s, r, 406, "Not Acceptable", "NOT_ACCEPTABLE", "POST with Accept: text/html")
    s.eq(ledger_count(2), before, "POST refused with 406: nothing written")
    s.status(get("/healthz", headers={"Accept": "text/html"}), 200, "/healthz is not negotiated")
    r = get("/pay/" + "A" * 43, headers={"Accept": "text/html"})
    s.check(r.status == 404 and "html" in (r.header("Content-Type") or ""),
            "a page is not negotiated: 404 page", (r.status, r.header("Content-Type")))


def test_sort(s):
    r = get(LIST10, tok=W)
    s.status(r, 200, "customer 10 ledger")
    rows = r.json or []
    s.check(len(rows) >= 4, "customer 10 has its 4 invoice rows", len(rows))
    s.eq(ids(r), sorted(ids(r)), "default order: id ascending")

    def sorted_ids(key):
        return [x["id"] for x in sorted(rows, key=key)]

    cases = [
        ("id:desc", lambda x: -x["id"]),
        ("id:asc", lambda x: x["id"]),
        ("amountInMajorCurrency", lambda x: (x["amountInMajorCurrency"], x["id"])),
        ("amountInMajorCurrency:desc", lambda x: (-x["amountInMajorCurrency"], x["id"])),
        ("amountInMajorCurrency:asc", lambda x: (x["amountInMajorCurrency"], x["id"])),
        # ties broken by id ascending (3 INVOICE_CREATED rows)
        ("txnType", lambda x: (x["txnType"], x["id"])),
        ("txnType:desc", lambda x: (tuple(-ord(c) for c in x["txnType"]), x["id"])),
        ("txnType,amountInMajorCurrency:desc",
         lambda x: (x["txnType"], -x["amountInMajorCurrency"], x["id"])),
        ("billRunType:desc,id:desc",
         lambda x: (tuple(-ord(c) for c in x["billRunType"]), -x["id"])),
        ("paymentDate:desc", lambda x: (tuple(-ord(c) for c in x["paymentDate"]), x["id"])),
        # the direction in any case
        ("id:DESC", lambda x: -x["id"]),
        ("amountInMajorCurrency:Desc,id:ASC", lambda x: (-x["amountInMajorCurrency"], x["id"])),
    ]
    for sort, key in cases:
        r = get(LIST10 + "&sort=" + urllib.parse.quote(sort, safe=":,"), tok=W)
        s.status(r, 200, "sort=%s" % sort)
        s.eq(ids(r), sorted_ids(key), "sort=%s order" % sort)

    for bad in ["foo", "id:up", "amount", "id,foo", "id:desc:asc", "", ",id", "ID",
                "id,,amountInMajorCurrency", "l.id", "id desc", "-id", "id:"]:
        r = get(LIST10 + "&sort=" + urllib.parse.quote(bad), tok=W)
        s.error(r, 400, "INVALID_PARAMETER", "sort=%r" % bad, field="sort")


def test_fields(s):
    r = get(LIST10 + "&fields=id,amountInMajorCurrency", tok=W)
    s.status(r, 200, "fields=id,amountInMajorCurrency")
    s.check(r.json and all(sorted(x.keys()) == ["amountInMajorCurrency", "id"] for x in r.json),
            "fields: only the two keys", r.raw[:200])
    r = get(LIST10 + "&fields=txnType", tok=W)
    s.check(r.json and all(list(x.keys()) == ["txnType"] for x in r.json),
            "fields=txnType: only txnType", r.raw[:200])
    r = get(LIST10 + "&fields=txnType&sort=amountInMajorCurrency:desc", tok=W)
    s.status(r, 200, "sort by a field not in fields")
    full = get(LIST10, tok=W).json or []
    s.eq(sorted(full[0].keys()) if full else None,
         sorted(["id", "customerId", "amountInMajorCurrency", "resultingCustomerBalance",
                 "currencyId", "description", "reference", "type", "paymentDate",
                 "customerPaymentType", "txnType", "invoiceNumber", "invoiceId",
                 "billRunType"]), "without fields: every CustomerPayment key")
    one = full[0]["id"] if full else 1
    r = get("/v1/customer-payments/%d?fields=id,txnType" % one, tok=W)
    s.status(r, 200, "get by id with fields")
    s.eq(sorted((r.json or {}).keys()), ["id", "txnType"], "get by id: only the fields")
    for bad in ["foo", "id,foo", "", "id,", "amount", "ID", "id;txnType", "*"]:
        r = get(LIST10 + "&fields=" + urllib.parse.quote(bad), tok=W)
        s.error(r, 400, "INVALID_PARAMETER", "fields=%r" % bad, field="fields")
    r = get("/v1/customer-payments/%d?fields=foo" % one, tok=W)
    s.error(r, 400, "INVALID_PARAMETER", "get by id fields=foo", field="fields")


def test_unknown_parameter(s):
    r = get(LIST10 + "&foo=1", tok=W)
    s.error(r, 400, "UNKNOWN_PARAMETER", "unknown parameter foo", field="foo")
    s.check("foo" in ((r.json or {}).get("message") or ""), "message names foo", r.raw[:200])
    r = get(LIST10 + "&customerId=10", tok=W)
    s.error(r, 400, "UNKNOWN_PARAMETER", "customerId (typo) on the list", field="customerId")
    r = get(LIST10 + "&Page=1", tok=W)
    s.error(r, 400, "UNKNOWN_PARAMETER", "Page (case) is unknown", field="Page")
    r = get("/v1/customer-payments/%s?foo=1" % sql_one(
        "SELECT MIN(id) FROM ledger WHERE customer_id = 10"), tok=W)
    s.error(r, 400, "UNKNOWN_PARAMETER", "get by id: unknown parameter", field="foo")
    r = get("/v1/customer-balances?customer_id=10&page=1", tok=W)
    s.error(r, 400, "UNKNOWN_PARAMETER", "customer-balances: unknown parameter", field="page")


def test_unreadable_query(s):
    # A query string that cannot be read names the parameter to fix when
    # there is one (its value or its repetition is wrong) ...
    for qs, name, what in [(LIST10 + "&page=2", "page", "page given twice"),
                           ("/v1/customer-payments?customer_id=%zz&page=1&pageSize=10",
                            "customer_id", "bad %-escape in a value"),
                           (LIST10 + "&sort=%C3", "sort", "invalid UTF-8 in a value")]:
        r = get(qs, tok=W)
        s.error(r, 400, "INVALID_PARAMETER", what, field=name)
        s.check("'%s'" % name in ((r.json or {}).get("message") or ""),
                what + ": message names the parameter", r.raw[:200])
    # ... and no field when the name itself is unreadable.
    r = get(LIST10 + "&%zz=1", tok=W)
    s.error(r, 400, "INVALID_PARAMETER", "bad %-escape in a name")
    s.check(r.json is not None and "field" not in r.json, "no field for an unreadable name",
            r.raw[:200])


def parse_link(value):
    out = {}
    for url, rel in re.findall(r'<([^>]*)>\s*;\s*rel="([a-z]+)"', value or ""):
        out[rel] = url
    return out


def test_total_and_link(s):
    n = ledger_count(10)
    r = get("/v1/customer-payments?customer_id=10&page=2&pageSize=1", tok=W)
    s.status(r, 200, "middle page")
    s.eq(r.header("X-Total-Count"), str(n), "X-Total-Count == rows of customer 10")
    links = parse_link(r.header("Link"))
    s.eq(sorted(links.keys()), ["first", "last", "next", "prev"], "Link rels on a middle page")
    want = {"first": "1", "prev": "1", "next": "3", "last": str(n)}
    for rel, page in want.items():
        u = urllib.parse.urlsplit(links.get(rel, ""))
        qs = urllib.parse.parse_qs(u.query)
        s.eq(u.path, "/v1/customer-payments", "Link %s path" % rel)
        s.eq(qs.get("page"), [page], "Link %s page" % rel)
        s.eq(qs.get("pageSize"), ["1"], "Link %s pageSize" % rel)
        s.eq(qs.get("customer_id"), ["10"], "Link %s keeps customer_id" % rel)
    # following next and prev gives the neighbouring rows
    all_ids = ids(get(LIST10, tok=W))
    s.eq(ids(r), all_ids[1:2], "page 2 of size 1 is the second row")
    nxt = get(links.get("next", "/x"), tok=W)
    s.eq(ids(nxt), all_ids[2:3], "following Link next")
    last = get(links.get("last", "/x"), tok=W)
    s.eq(ids(last), all_ids[-1:], "following Link last")
    s.check("next" not in parse_link(last.header("Link")), "no next on the last page",
            last.header("Link"))

    r = get("/v1/customer-payments?customer_id=10&page=1&pageSize=1", tok=W)
    s.check("prev" not in parse_link(r.header("Link")), "no prev on the first page",
            r.header("Link"))
    # other parameters (filters, sort) are kept in the links
    r = get("/v1/customer-payments?customer_id=10&page=1&pageSize=1&sort=id:desc"
            "&customerPaymentType=INVOICE", tok=W)
    qs = urllib.parse.parse_qs(urllib.parse.urlsplit(parse_link(r.header("Link")).get("next", "")).query)
    s.eq(qs.get("sort"), ["id:desc"], "Link next keeps sort")
    s.eq(qs.get("customerPaymentType"), ["INVOICE"], "Link next keeps the filter")
    s.eq(r.header("X-Total-Count"), "3", "X-Total-Count counts filtered rows (3 INVOICE rows)")

    r = get("/v1/customer-payments?customer_id=10&page=999&pageSize=10", tok=W)
    s.status(r, 200, "page past the end: 200")
    s.eq(r.json, [], "page past the end: []")
    s.eq(r.header("X-Total-Count"), str(n), "page past the end: X-Total-Count")
    r = get("/v1/customer-payments?customer_id=10&page=1000000000&pageSize=1000", tok=W)
    s.status(r, 200, "huge page number: 200")
    s.eq(r.json, [], "huge page number: []")

    r = get("/v1/customer-payments?customer_id=999999&page=1&pageSize=10", tok=W)
    s.status(r, 200, "unknown customer list: 200")
    s.eq(r.json, [], "unknown customer list: []")
    s.eq(r.header("X-Total-Count"), "0", "unknown customer list: X-Total-Count 0")


def page_link_checks(s, path, key, size, what):
    """Walks every page of `path` (a list URL without page/pageSize) at
    pageSize `size` and checks the rows and the four Link relations against
    one fetch of the whole list: `last` is ceil(total / size), at least 1,
    `prev`/`next` only where such a page exists, and following the links
    gives the pages they name. Returns the number of pages."""
    sep = "&" if "?" in path else "?"

    def keys(resp):  # the page's keys, or what came instead of a page
        if resp.status == 200 and isinstance(resp.json, list):
            return [row[key] for row in resp.json]
        return "%d %s" % (resp.status, resp.raw[:120])
    whole = get(path + sep + "page=1&pageSize=1000", tok=W)
    if not s.status(whole, 200, what + ": the whole list"):
        return 0
    every = [row[key] for row in whole.json]
    n = len(every)
    last = max(1, -(-n // size))
    for page in range(1, last + 1):
        r = get(path + sep + "page=%d&pageSize=%d" % (page, size), tok=W)
        label = "%s, pageSize=%d, %d rows: page %d of %d" % (what, size, n, page, last)
        if not s.status(r, 200, label):
            continue
        s.eq(keys(r), every[(page - 1) * size:page * size], label + " rows")
        s.eq(r.header("X-Total-Count"), str(n), label + " X-Total-Count")
        links = parse_link(r.header("Link"))
        want = {"first": 1, "last": last}
        if page > 1:
            want["prev"] = page - 1
        if page < last:
            want["next"] = page + 1
        got = {}
        for rel, url in links.items():
            qs = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
            got[rel] = int(qs["page"][0]) if qs.get("page", [""])[0].isdigit() else qs.get("page")
            s.eq(qs.get("pageSize"), [str(size)], label + " Link %s keeps pageSize" % rel)
        s.eq(got, want, label + " Link pages")
        if page == 1 and "last" in links:
            # following last from the first page gives the final, short page
            lp = get(links["last"], tok=W)
            s.eq(keys(lp), every[(last - 1) * size:],
                 label + ": following Link last gives the final rows")
            s.check("next" not in parse_link(lp.header("Link")),
                    label + ": no next on the page Link last names", lp.header("Link"))
        if "next" in links and page + 1 == last:
            nx = get(links["next"], tok=W)
            s.eq(keys(nx), every[(last - 1) * size:],
                 label + ": following Link next to the last page")
    return last


def uneven_size(n):
    """A page size from 2 up that does not divide n and leaves several pages."""
    for size in range(2, max(n, 3)):
        if n % size != 0 and -(-n // size) <= 8:
            return size
    return 2


def test_link_uneven_pages(s):
    # Totals the page size does not divide: the last page is short and
    # `last` rounds up (4 rows at pageSize=3: page 2 holds the 4th row).
    cp = "/v1/customer-payments?customer_id=10"
    n = len(get(cp + "&page=1&pageSize=1000", tok=W).json or [])
    s.eq(n, 4, "customer 10 (read only) has 4 ledger rows")
    s.eq(page_link_checks(s, cp, "id", 3, "customer-payments"), 2,
         "4 rows at pageSize=3: last is page 2")
    r = get(cp + "&page=1&pageSize=3", tok=W)
    lk = parse_link(r.header("Link"))
    s.check("next" in lk, "4 rows at pageSize=3: page 1 has next", r.header("Link"))
    s.eq(ids(get(lk.get("last", "/x"), tok=W)), ids(get(cp + "&page=1&pageSize=4", tok=W))[3:],
         "4 rows at pageSize=3: following last gives the 4th row")
    # fewer rows than pageSize: one page, last is page 1 (never page 0)
    s.eq(page_link_checks(s, cp, "id", 10, "customer-payments"), 1,
         "4 rows at pageSize=10: last is page 1")
    s.eq(page_link_checks(s, cp + "&sort=id:desc&customerPaymentType=INVOICE", "id", 2,
                          "customer-payments, 3 INVOICE rows, id:desc"), 2,
         "3 rows at pageSize=2: last is page 2")
    # the same on other lists, whatever their totals are on this stack
    for path, key in [("/v1/customer-credit-status", "customerId"),
                      ("/v1/payment-providers", "id")]:
        whole = get(path + "?page=1&pageSize=1000", tok=W)
        total = len(whole.json or [])
        s.check(total >= 2, "%s: at least 2 rows to page through" % path, total)
        size = uneven_size(total)
        s.eq(page_link_checks(s, path, key, size, path), -(-total // size),
             "%s: %d rows at pageSize=%d" % (path, total, size))
        s.eq(page_link_checks(s, path, key, total + 1, path), 1,
             "%s: %d rows at pageSize=%d: last is page 1" % (path, total, total + 1))


# ---------------------------------------------------------------------------
# customer-payments filters
# ---------------------------------------------------------------------------

def make_rows(s):
    """Six rows on customer 2 tagged with RUN; returns {name: id}."""
    made = {}
    pays = [("p1", RUN + " alpha 100% off", RUN + "-REF-1"),
            ("p2", RUN + " alpha 100x off", RUN + "-REF-2"),
            ("p3", RUN + " a_b", None),
            ("p4", RUN + " axb", None)]
    for name, desc, ref in pays:
        body = {"customerId": 2, "amountInMajorCurrency": 0.01, "type": "CHEQUE",
                "description": desc}
        if ref:
            body["reference"] = ref
        r = post("/v1/customer-payments", body, tok=W)
        s.status(r, 200, "create %s" % name)
        made[name] = (r.json or {}).get("id")
    for name, amount in [("a1", "-0.01"), ("a2", "0.01")]:
        r = post("/v1/customer-balance-adjustments",
                 raw='{"customerId":2,"amountInMajorCurrency":%s,"description":"%s %s"}'
                 % (amount, RUN, name), tok=W)
        s.status(r, 200, "create %s" % name)
        made[name] = (r.json or {}).get("id")
    return made


def test_filters(s):
    m = make_rows(s)
    base = "/v1/customer-payments?customer_id=2&page=1&pageSize=1000&"

    def run(what, want, **params):
        r = get(base + q(**params), tok=W)
        if s.status(r, 200, what):
            s.eq(sorted(ids(r)), sorted(m[k] for k in want), what)
            s.eq(r.header("X-Total-Count"), str(len(want)), what + ": X-Total-Count")

    run("filter equals reference", ["p1"], filter=RUN + "-REF-1")
    run("filter equals description", ["p3"], filter=RUN + " a_b")
    run("filter equals is not contains", [], filter=RUN)
    run("filter in:", ["p1", "p2"], filter="in:%s-REF-1,%s-REF-2" % (RUN, RUN))
    run("filter in: one value", ["p2"], filter="in:%s-REF-2" % RUN)
    run("filter like: (contains)", ["p1", "p2", "p3", "p4", "a1", "a2"], filter="like:" + RUN)
    run("filter like: case-insensitive", ["p1", "p2"], filter="like:" + (RUN + " ALPHA").lower())
    run("filter like: upper case", ["p1", "p2"], filter="like:" + (RUN + " alpha").upper())
    run("filter like: over reference", ["p2"], filter="like:%s-ref-2" % RUN.lower())
    run("filter like: % is literal", ["p1"], filter="like:%s alpha 100%%" % RUN)
    run("filter like: _ is literal", ["p3"], filter="like:%s a_b" % RUN)
    run("filter like: no match", [], filter="like:%s-nothing" % RUN)

    inv = sql_one("SELECT invoice_number FROM ledger WHERE customer_id = 2 AND"
                  " txn_type = 'INVOICE_CREATED' ORDER BY id LIMIT 1")
    r = get(base + q(filter=inv), tok=W)
    s.eq([x["invoiceNumber"] for x in r.json or []], [inv], "filter equals invoiceNumber")
    r = get(base + q(filter="like:" + inv[-3:].lower()), tok=W)
    s.check(inv in [x["invoiceNumber"] for x in r.json or []], "filter like: over invoiceNumber")

    r = get(base + q(customerPaymentType="ADJUSTMENT", filter="like:" + RUN), tok=W)
    s.eq(sorted(ids(r) or []), sorted([m["a1"], m["a2"]]), "customerPaymentType equals")
    s.check(all(x["customerPaymentType"] == "ADJUSTMENT" for x in r.json or []),
            "customerPaymentType equals: only ADJUSTMENT")
    r = get(base + q(customerPaymentType="in:ADJUSTMENT,CUSTOMER", filter="like:" + RUN), tok=W)
    s.eq(sorted(ids(r) or []), sorted(m.values()), "customerPaymentType in:")
    r = get(base + q(customerPaymentType="INVOICE"), tok=W)
    s.check(r.json and all(x["txnType"] == "INVOICE_CREATED" for x in r.json),
            "customerPaymentType=INVOICE: the invoice rows", r.raw[:200])
    r = get(base + q(customerPaymentType="CUSTOMER", filter="like:" + RUN), tok=W)
    s.eq(sorted(ids(r) or []), sorted(m[k] for k in ["p1", "p2", "p3", "p4"]),
         "customerPaymentType=CUSTOMER: the payments")

    run("excludeDebits=true", ["p1", "p2", "p3", "p4", "a2"], filter="like:" + RUN,
        excludeDebits="true")
    run("excludeCredits=true", ["a1"], filter="like:" + RUN, excludeCredits="true")
    run("excludeDebits=false", ["p1", "p2", "p3", "p4", "a1", "a2"], filter="like:" + RUN,
        excludeDebits="false")
    run("excludeDebits and excludeCredits", [], filter="like:" + RUN,
        excludeDebits="true", excludeCredits="true")
    r = get(base + q(excludeCredits="true"), tok=W)
    s.check(r.json and all(x["amountInMajorCurrency"] < 0 for x in r.json),
            "excludeCredits: only negative amounts")
    r = get(base + q(excludeDebits="true"), tok=W)
    s.check(r.json and all(x["amountInMajorCurrency"] >= 0 for x in r.json),
            "excludeDebits: only amounts >= 0")

    for param, bad in [("filter", ""), ("filter", "in:"), ("filter", "like:"),
                       ("filter", "in:a,,b"), ("filter", "in:a,"), ("filter", "x" * 256),
                       ("filter", "a\x01b"), ("customerPaymentType", ""),
                       ("customerPaymentType", "in:"), ("customerPaymentType", "like:"),
                       ("excludeDebits", "yes"), ("excludeDebits", "1"),
                       ("excludeDebits", "TRUE"), ("excludeDebits", ""),
                       ("excludeCredits", "no"), ("excludeCredits", "true ")]:
        r = get(base + q(**{param: bad}), tok=W)
        s.error(r, 400, "INVALID_PARAMETER", "%s=%r" % (param, bad), field=param)

    # customer_id: required, positive integer
    r = get("/v1/customer-payments?page=1&pageSize=10", tok=W)
    s.error(r, 400, "MISSING_PARAMETER", "customer_id missing", field="customer_id")
    for bad in ["abc", "0", "-1", "1.0", "", "2,3", "in:2,3"]:
        r = get("/v1/customer-payments?page=1&pageSize=10&" + q(customer_id=bad), tok=W)
        s.error(r, 400, "INVALID_PARAMETER", "customer_id=%r" % bad, field="customer_id")


# ---------------------------------------------------------------------------
# Money formatting
# ---------------------------------------------------------------------------

MONEY_RE = r'"%s"\s*:\s*(-?[0-9.eE+]+)'


def raw_money(raw, name):
    return re.findall(MONEY_RE % name, raw)


def test_money_format(s):
    r = get(LIST10, tok=W)
    amounts = raw_money(r.raw, "amountInMajorCurrency") + raw_money(r.raw, "resultingCustomerBalance")
    s.check(len(amounts) >= 8 and all(re.fullmatch(r"-?\d+\.\d\d", a) for a in amounts),
            "GBP amounts have exactly two decimals in the raw text", amounts)
    s.check("-80.50" in amounts and "-120.00" in amounts, "GBP -80.50 and -120.00 written in full",
            amounts)
    r = get("/v1/customer-balances?customer_id=10", tok=W)
    for f in ["balance", "totalPayments", "totalPaymentsSinceLastInvoice"]:
        v = raw_money(r.raw, f)
        s.check(len(v) == 1 and re.fullmatch(r"-?\d+\.\d\d", v[0]), "GBP balances %s: 2 decimals" % f, v)
    s.eq(raw_money(r.raw, "totalPayments"), ["0.00"], "zero written as 0.00")

    before = balance(4)
    r = post("/v1/customer-balance-adjustments",
             raw='{"customerId":4,"amountInMajorCurrency":10.5,"description":"%s fmt"}' % RUN, tok=W)
    s.status(r, 200, "adjustment 10.5")
    s.eq(raw_money(r.raw, "amountInMajorCurrency"), ["10.50"], "adjustment echoes 10.50")
    s.eq(balance(4) - before, Decimal(1050), "adjustment moved 10.50 (1050 minor units)")
    r = post("/v1/customer-payments",
             raw='{"customerId":4,"amountInMajorCurrency":10.5,"type":"BACS"}', tok=W)
    s.status(r, 200, "payment 10.5")
    s.eq(raw_money(r.raw, "amountInMajorCurrency"), ["10.50"], "payment echoes 10.50")
    s.eq(raw_money(r.raw, "resultingCustomerBalance"),
         [money_str(before + 2100)], "payment resultingCustomerBalance")
    if r.json and r.json.get("id"):
        g = get("/v1/customer-payments/%s" % r.json["id"], tok=W)
        s.eq(raw_money(g.raw, "amountInMajorCurrency"), ["10.50"], "get by id: 10.50")
    post("/v1/customer-balance-adjustments",
         {"customerId": 4, "amountInMajorCurrency": -21, "description": RUN + " undo"}, tok=W)

    jp = token(sub="e2e-conv-jpy", scope="payments:read", owners="3")
    r = get("/v1/customer-payments?customer_id=39&page=1&pageSize=100", tok=jp)
    s.status(r, 200, "JPY customer 39 ledger")
    amounts = raw_money(r.raw, "amountInMajorCurrency") + raw_money(r.raw, "resultingCustomerBalance")
    s.check(len(amounts) >= 8 and all(re.fullmatch(r"-?\d+", a) for a in amounts),
            "JPY amounts have no decimals", amounts)
    s.check("-12000" in amounts, "JPY invoice of 12000 written as -12000", amounts)
    r = get("/v1/customer-balances?customer_id=39", tok=jp)
    v = raw_money(r.raw, "balance")
    s.check(len(v) == 1 and re.fullmatch(r"-?\d+", v[0]), "JPY balance has no decimals", v)
    s.eq(raw_money(r.raw, "repaymentPlanAmount"), ["2500"], "JPY repaymentPlanAmount 2500")


# ---------------------------------------------------------------------------
# Content-Type, body size, query on POST
# ---------------------------------------------------------------------------

def test_content_type_and_size(s):
    body = b'{"customerId":3,"amountInMajorCurrency":1,"description":"ct"}'
    before, n = balance(3), ledger_count()
    for ct in ["text/plain", "application/x-www-form-urlencoded", "application/jsonx",
               "application/json-patch+json", "application/json; charset=latin1",
               "multipart/form-data; boundary=x", "json"]:
        r = post("/v1/customer-balance-adjustments", raw=body, tok=W, content_type=ct)
        s.error(r, 415, "UNSUPPORTED_MEDIA_TYPE", "Content-Type %r" % ct)
    st, h, b = raw_http("POST", "/v1/customer-balance-adjustments",
                        {"Authorization": "Bearer " + W}, body)
    s.eq(st, 415, "POST without Content-Type: 415")
    try:
        s.eq(json.loads(b).get("code"), "UNSUPPORTED_MEDIA_TYPE", "no Content-Type: code")
    except ValueError:
        s.check(False, "no Content-Type: JSON body", b[:200])
    r = post("/v1/customer-balance-adjustments", raw=b"x" * (70 * 1024), tok=W)
    s.status(r, 413, "70 KB body")
    s.eq((r.json or {}).get("code"), "BODY_TOO_LARGE", "70 KB body: code")
    r = post("/v1/customer-payments", raw=b'{"customerId":3,"description":"' + b"a" * (66 * 1024)
             + b'"}', tok=W)
    s.status(r, 413, "66 KB JSON body")
    s.eq((r.json or {}).get("code"), "BODY_TOO_LARGE", "66 KB JSON body: code")
    r = post("/v1/customer-balance-adjustments?foo=1", raw=body, tok=W)
    s.error(r, 400, "UNKNOWN_PARAMETER", "POST with a query parameter", field="foo")
    r = post("/v1/customer-payments?customer_id=3", raw=body, tok=W)
    s.error(r, 400, "UNKNOWN_PARAMETER", "POST payments with customer_id in query",
            field="customer_id")
    s.eq(balance(3), before, "rejected POSTs moved no money")
    s.eq(ledger_count(), n, "rejected POSTs wrote no ledger rows")
    # accepted spellings of the JSON media type
    for ct in ["application/json", "application/json; charset=utf-8",
               "Application/JSON;charset=UTF-8"]:
        r = post("/v1/customer-balance-adjustments",
                 {"customerId": 3, "amountInMajorCurrency": 0.01, "description": RUN},
                 tok=W, content_type=ct)
        s.status(r, 200, "Content-Type %r accepted" % ct)
    # a chunked body (no Content-Length): nginx buffers it; behind Apache the
    # app reads the FastCGI stream to its end; 64 KiB holds either way
    ok = json.dumps({"customerId": 3, "amountInMajorCurrency": 0.01, "description": RUN}).encode()
    for what, data, want in (("chunked JSON body", ok, 200),
                             ("chunked 70 KB body", b" " * (70 * 1024), 413)):
        st, h, b = raw_chunked("/v1/customer-balance-adjustments",
                               {"Authorization": "Bearer " + W,
                                "Content-Type": "application/json"}, data)
        s.eq(st, want, what)
        if want == 413:
            s.eq(json.loads(b or b"{}").get("code"), "BODY_TOO_LARGE", what + ": code")
    s.eq(balance(3) - before, Decimal(4), "four accepted adjustments of 0.01")


# ---------------------------------------------------------------------------
# Idempotency
# ---------------------------------------------------------------------------

def test_idempotency(s):
    key = "conv-%s-1" % RUN
    body = {"customerId": 3, "amountInMajorCurrency": 1, "description": RUN + " idem"}
    b0, n0 = balance(3), ledger_count(3)
    r1 = post("/v1/customer-balance-adjustments", body, tok=W, headers={"Idempotency-Key": key})
    s.status(r1, 200, "first request with a key")
    s.eq(r1.header("Idempotent-Replayed"), None, "first request: not replayed")
    s.eq(balance(3) - b0, Decimal(100), "first request moved 1.00")
    r2 = post("/v1/customer-balance-adjustments", body, tok=W, headers={"Idempotency-Key": key})
    s.status(r2, 200, "replay: same status")
    s.eq(r2.raw, r1.raw, "replay: same body")
    s.eq(r2.header("Idempotent-Replayed"), "true", "replay: Idempotent-Replayed: true")
    s.eq(balance(3) - b0, Decimal(100), "replay did not move money again")
    s.eq(ledger_count(3) - n0, 1, "replay wrote no second ledger row")

    other = dict(body, amountInMajorCurrency=2)
    r = post("/v1/customer-balance-adjustments", other, tok=W, headers={"Idempotency-Key": key})
    s.error(r, 422, "IDEMPOTENCY_KEY_REUSED", "same key, different body")
    r = post("/v1/customer-payments", {"customerId": 3, "amountInMajorCurrency": 1,
                                       "type": "CHEQUE"}, tok=W, headers={"Idempotency-Key": key})
    s.error(r, 422, "IDEMPOTENCY_KEY_REUSED", "same key, different path")
    s.eq(balance(3) - b0, Decimal(100), "422s moved no money")


    # another sub may use the same key: its own request is processed
    w2 = token(sub="e2e-conv-other")
    r3 = post("/v1/customer-balance-adjustments", body, tok=w2, headers={"Idempotency-Key": key})
    s.status(r3, 200, "same key, other sub: processed")
    s.eq(r3.header("Idempotent-Replayed"), None, "same key, other sub: not a replay")
    s.check(r3.json and r1.json and r3.json.get("id") != r1.json.get("id"),
            "same key, other sub: a new ledger row")
    s.eq(balance(3) - b0, Decimal(200), "same key, other sub: money moved once more")
    r4 = post("/v1/customer-balance-adjustments", body, tok=w2, headers={"Idempotency-Key": key})
    s.eq(r4.header("Idempotent-Replayed"), "true", "other sub's replay")
    s.eq(r4.raw, r3.raw, "other sub's replay: its own body")

    # a replay of a payment carries the Location-free 200 body as well
    pkey = "conv-%s-pay" % RUN
    pb = {"customerId": 3, "amountInMajorCurrency": 0.02, "type": "CHEQUE", "reference": RUN}
    p1 = post("/v1/customer-payments", pb, tok=W, headers={"Idempotency-Key": pkey})
    p2 = post("/v1/customer-payments", pb, tok=W, headers={"Idempotency-Key": pkey})
    s.status(p1, 200, "payment with key")
    s.eq((p2.status, p2.raw), (p1.status, p1.raw), "payment replay: same status and body")
    s.eq(p2.header("Idempotent-Replayed"), "true", "payment replay header")
    s.eq(balance(3) - b0, Decimal(202), "payment replay moved money once")

    # concurrent requests with one key: the work is done exactly once; the
    # others replay it or get 409 IDEMPOTENCY_IN_PROGRESS
    ckey = "conv-%s-conc" % RUN
    cb = {"customerId": 3, "amountInMajorCurrency": 0.05, "description": RUN + " conc"}
    b2, n2 = balance(3), ledger_count(3)
    results = [None] * 8

    def fire(i):
        results[i] = post("/v1/customer-balance-adjustments", cb, tok=W,
                          headers={"Idempotency-Key": ckey})
    threads = [threading.Thread(target=fire, args=(i,)) for i in range(len(results))]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    done = [x for x in results if x is not None and x.status == 200]
    busy = [x for x in results if x is not None and x.status == 409]
    s.check(len(done) + len(busy) == len(results), "concurrent same key: every answer is 200 or 409",
            [x and x.status for x in results])
    s.check(all((x.json or {}).get("code") == "IDEMPOTENCY_IN_PROGRESS" for x in busy),
            "concurrent same key: 409s are IDEMPOTENCY_IN_PROGRESS")
    s.check(len({x.raw for x in done}) == 1, "concurrent same key: every 200 has the same body")
    s.eq(sum(1 for x in done if x.header("Idempotent-Replayed") is None), 1,
         "concurrent same key: exactly one original response")
    s.eq(balance(3) - b2, Decimal(5), "concurrent same key: money moved once")
    s.eq(ledger_count(3) - n2, 1, "concurrent same key: one ledger row")

    # Same key, byte-identical body, another POST path: the path is part of
    # the request, so this is a different request (422), never a replay of
    # the first answer. The body is valid for both operations.
    xkey = "conv-%s-xpath" % RUN
    xbody = json.dumps({"customerId": 3, "amountInMajorCurrency": 0.03,
                        "description": RUN + " cross-path"}).encode()
    b3, n3 = balance(3), ledger_count(3)
    x1 = post("/v1/customer-balance-adjustments", raw=xbody, tok=W,
              headers={"Idempotency-Key": xkey})
    s.status(x1, 200, "cross-path: first request (adjustment)")
    for other_path in ["/v1/customer-payments", "/v1/refunds"]:
        x2 = post(other_path, raw=xbody, tok=W, headers={"Idempotency-Key": xkey})
        s.error(x2, 422, "IDEMPOTENCY_KEY_REUSED",
                "same key, same body bytes, other path %s" % other_path, field="Idempotency-Key")
        s.eq(x2.header("Idempotent-Replayed"), None,
             "same key, same body bytes, %s: not a replay" % other_path)
        s.check(x2.raw != x1.raw, "same key, same body bytes, %s: not the first answer"
                % other_path, x2.raw[:200])
    s.eq(balance(3) - b3, Decimal(3), "cross-path: money moved once (the adjustment)")
    s.eq(ledger_count(3) - n3, 1, "cross-path: one ledger row")
    x3 = post("/v1/customer-balance-adjustments", raw=xbody, tok=W,
              headers={"Idempotency-Key": xkey})
    s.eq((x3.status, x3.raw, x3.header("Idempotent-Replayed")), (x1.status, x1.raw, "true"),
         "cross-path: the first path still replays its own answer")

    # key syntax: 1..255 printable ASCII
    ok_key = "k" * 200 + RUN + "~!@#$%^&*()"
    ok_key = ok_key[:255]
    r = post("/v1/customer-balance-adjustments", dict(body, amountInMajorCurrency=0.01), tok=W,
             headers={"Idempotency-Key": ok_key})
    s.status(r, 200, "255-char printable key accepted")
    b1, n1 = balance(3), ledger_count()
    for bad in ["k" * 256, "a\x01b", "a\x7fb", "tab\there", "caf\u00e9"]:
        st, h, rb = raw_http("POST", "/v1/customer-balance-adjustments",
                             {"Authorization": "Bearer " + W, "Content-Type": "application/json",
                              "Idempotency-Key": bad},
                             json.dumps(dict(body, amountInMajorCurrency=0.01)).encode())
        s.eq(st, 400, "invalid Idempotency-Key %r: 400" % bad[:20])
        try:
            j = json.loads(rb)
        except ValueError:
            j = {}
        if FRONT == "apache" and re.search(r"[\x00-\x08\x0a-\x1f\x7f]", bad):
            # Apache refuses a header line with control characters itself
            s.eq(j.get("code"), "BAD_REQUEST", "invalid Idempotency-Key %r: Apache's 400" % bad[:20])
        else:
            s.eq(j.get("field"), "Idempotency-Key", "invalid Idempotency-Key %r: field" % bad[:20])
    s.eq(balance(3), b1, "invalid keys moved no money")
    s.eq(ledger_count(), n1, "invalid keys wrote no ledger rows")


# ---------------------------------------------------------------------------
# customer-balances, health
# ---------------------------------------------------------------------------

def test_customer_balances(s):
    r = get("/v1/customer-balances", tok=W)
    s.error(r, 400, "MISSING_PARAMETER", "customer-balances without customer_id",
            field="customer_id")
    for bad in ["abc", "0", "-3", "", "3.0", "3 "]:
        r = get("/v1/customer-balances?" + q(customer_id=bad), tok=W)
        s.error(r, 400, "INVALID_PARAMETER", "customer-balances customer_id=%r" % bad,
                field="customer_id")
    r = get("/v1/customer-balances?customer_id=999999", tok=W)
    s.error(r, 404, "NOT_FOUND", "customer-balances of an unknown customer")
    r = get("/v1/customer-balances?customer_id=10", tok=W)
    s.status(r, 200, "customer-balances 10")
    j = r.json or {}
    s.eq(sorted(j.keys()), sorted(["id", "customerId", "balance", "totalPayments",
                                   "totalPaymentsSinceLastInvoice", "paymentMethodSummary",
                                   "repaymentPlanSummary"]), "customer-balances keys")
    s.eq(j.get("customerId"), 10, "customer-balances customerId")
    s.eq(j.get("balance"), Decimal(sql_one("SELECT SUM(amount) FROM ledger WHERE customer_id = 10"))
         / 100, "balance == sum of the ledger")


def test_health(s):
    for path, body in [("/healthz", {"status": "ok"}), ("/readyz", {"status": "ready"})]:
        r = get(path)
        s.status(r, 200, "%s without a token" % path)
        s.eq(r.json, body, "%s body" % path)
        s.eq(r.header("Content-Type"), CT_JSON, "%s Content-Type" % path)
        r = get(path, tok="garbage")
        s.status(r, 200, "%s ignores a bad token" % path)
        r = request("POST", path, raw=b"{}")
        s.status(r, 405, "POST %s: 405" % path)
        s.eq(r.header("Allow"), "GET", "POST %s: Allow" % path)


Suite().run([
    test_error_shapes,
    test_request_id,
    test_not_found,
    test_method_not_allowed,
    test_page_rules,
    test_numbers_say_what_is_wrong,
    test_enum_filters,
    test_head,
    test_accept,
    test_sort,
    test_fields,
    test_unknown_parameter,
    test_unreadable_query,
    test_total_and_link,
    test_link_uneven_pages,
    test_filters,
    test_money_format,
    test_content_type_and_size,
    test_idempotency,
    test_customer_balances,
    test_health,
])
