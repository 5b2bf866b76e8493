#!/usr/bin/env python3
"""ctest e2e.openapi_tour: GET /v1/openapi.json as served (the embedded
document, no token, ETag / If-None-Match / 304, caching headers), then one
tour through every operation of the document (success and typical errors)
so that e2e.openapi_responses, which checks every logged response against
the document, sees each operation answer at least once.

Runs after every tests/e2e/test_*.py (ctest DEPENDS): what it writes cannot
disturb them. Through tests/e2e/paytest.py, so its responses are logged to
$PAY_RESPONSE_LOG like theirs. Ends with "N passed, N failed".
"""
import json
import os
import re
import sys
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
from paytest import BASE, Suite, get, post, request, run_engine, sql_one, token  # noqa: E402

DOC_FILE = os.path.join(HERE, "..", "..", "handlers", "openapi.json")
W = token(sub="openapi-tour", scope="payments:read payments:write", owners="1,2,3")
RO = token(sub="openapi-tour-ro", scope="payments:read", owners="1,2,3")
CACHE = "public, max-age=300"


def cache_controls(r):
    return [v.strip() for v in (r.headers.get_all("Cache-Control") or [])]


# ---- serving -----------------------------------------------------------------

def test_document_served(s):
    r = get("/v1/openapi.json")
    s.status(r, 200, "GET /v1/openapi.json without a token")
    s.eq(r.header("Content-Type"), "application/json; charset=utf-8", "document content type")
    with open(DOC_FILE, encoding="utf-8") as f:
        source = f.read()
    s.check(r.raw == source, "the served document is handlers/openapi.json byte for byte",
            "%d bytes served, %d in the file" % (len(r.raw), len(source)))
    s.check(r.json is not None and r.json.get("openapi", "").startswith("3.0."), "served document is OpenAPI 3.0")
    etag = r.header("ETag") or ""
    s.check(re.fullmatch(r'"[0-9a-f]{32}"', etag) is not None, "strong ETag of 32 hex digits", etag)
    s.check(CACHE in cache_controls(r), "Cache-Control: %s is sent" % CACHE, cache_controls(r))
    if "no-store" in ", ".join(cache_controls(r)):
        # app/resp.c adds "Cache-Control: no-store" to every response; with
        # both headers a cache must not store the document. Reported to the
        # lead; not failed here until the framework lets a handler set its own.
        print("NOTE: /v1/openapi.json is also sent Cache-Control: no-store (framework default)")
    s.eq(get("/v1/openapi.json").header("ETag"), etag, "the ETag is stable")
    bad = get("/v1/openapi.json", tok="not-a-token")
    s.status(bad, 200, "an invalid bearer token is ignored (public document)")

    for what, inm in [("exact tag", etag), ("weak form", "W/" + etag),
                      ("in a list", '"0000", ' + etag + ', "ffff"'), ("*", "*")]:
        nm = get("/v1/openapi.json", headers={"If-None-Match": inm})
        s.status(nm, 304, "If-None-Match %s: 304" % what)
        s.eq(nm.raw, "", "304 (%s) has no body" % what)
        s.eq(nm.header("ETag"), etag, "304 (%s) repeats the ETag" % what)
        s.check(CACHE in cache_controls(nm), "304 (%s) carries Cache-Control" % what, cache_controls(nm))
    for what, inm in [("another tag", '"0123456789abcdef0123456789abcdef"'), ("malformed", "nonsense")]:
        s.status(get("/v1/openapi.json", headers={"If-None-Match": inm}), 200, "If-None-Match %s: 200" % what)
    s.error(get("/v1/openapi.json?format=yaml"), 400, "UNKNOWN_PARAMETER", "unknown query parameter",
            field="format")
    r = request("POST", "/v1/openapi.json", body={})
    s.error(r, 405, "METHOD_NOT_ALLOWED", "POST /v1/openapi.json")
    s.eq(r.header("Allow"), "GET", "405 Allow: GET")


# ---- tour ----------------------------------------------------------------------

def ok(s, r, status, what):
    s.status(r, status, what)
    return r.json


def first_invoice(s, customer, kind):
    """An invoice id of the customer, from its ledger (INVOICE_CREATED rows)."""
    cpt = "ADHOC_INVOICE" if kind == "adhoc" else "INVOICE"
    rows = ok(s, get("/v1/customer-payments?customer_id=%d&page=1&pageSize=1000&customerPaymentType=%s"
                     % (customer, cpt), W), 200, "ledger of customer %d (%s rows)" % (customer, cpt)) or []
    ids = [x["invoiceId"] for x in rows if x.get("txnType", "").endswith("INVOICE_CREATED") and x.get("invoiceId")]
    s.check(bool(ids), "customer %d has %s invoices" % (customer, kind))
    return ids[0] if ids else 1


def test_lists(s):
    for path, fields in [("/v1/customer-payments?customer_id=1&", "id,amountInMajorCurrency"),
                         ("/v1/invoice-payments?", "id,generatedInvoiceId"),
                         ("/v1/adhoc-invoice-payments?", "id,thirdPartyPaymentStatus"),
                         ("/v1/refunds?", "id,amountInMajorCurrency"),
                         ("/v1/payment-providers?", "id,contractOwnerIds"),
                         ("/v1/site-payment-mandates?", "id,flowToken"),
                         ("/v1/customer-credit-status?", "customerId,percentageDifference")]:
        r = get(path + "page=1&pageSize=5&sort=id:desc" if "credit" not in path
                else path + "page=1&pageSize=5&sort=customerId:desc", W)
        s.status(r, 200, "list " + path)
        s.check(r.header("X-Total-Count") is not None and r.header("Link") is not None,
                "list %s: X-Total-Count and Link" % path)
        s.status(get(path + "page=1&pageSize=3&fields=" + fields, W), 200, "list %s with fields" % path)
        s.error(get(path + "page=1&pageSize=1001", W), 400, "INVALID_PARAMETER", "list %s pageSize 1001" % path,
                field="pageSize")
        s.error(get(path + "page=1&pageSize=5&bogus=1", W), 400, "UNKNOWN_PARAMETER", "list %s unknown param" % path,
                field="bogus")
        s.error(get(path + "page=1&pageSize=5"), 401, "UNAUTHENTICATED", "list %s without a token" % path)


def test_ledger(s):
    p = ok(s, post("/v1/customer-payments", {"customerId": 1, "amountInMajorCurrency": 1.25, "type": "BACS",
                                              "description": "openapi tour"}, W), 200, "customer payment")
    if p:
        s.status(get("/v1/customer-payments/%d" % p["id"], W), 200, "get customer payment")
        s.status(get("/v1/customer-payments/%d?fields=id,txnType" % p["id"], W), 200, "get with fields")
    s.error(get("/v1/customer-payments/999999999", W), 404, "NOT_FOUND", "unknown customer payment")
    s.error(get("/v1/customer-payments/abc", W), 400, "INVALID_PARAMETER", "non-numeric id")
    s.status(post("/v1/customer-balance-adjustments", {"customerId": 1, "amountInMajorCurrency": -0.25}, W), 200,
             "adjustment")
    s.status(get("/v1/customer-balances?customer_id=1", W), 200, "balance")
    s.error(get("/v1/customer-balances?customer_id=999999", W), 404, "NOT_FOUND", "balance of an unknown customer")
    s.error(post("/v1/customer-payments", {"customerId": 1}, RO), 403, "INSUFFICIENT_SCOPE", "read-only token POST")
    s.error(post("/v1/customer-payments", raw="x=1", tok=W, content_type="text/plain"), 415,
            "UNSUPPORTED_MEDIA_TYPE", "text/plain body")
    s.error(post("/v1/customer-payments", raw="{" + " " * 70000 + "}", tok=W), 413, "BODY_TOO_LARGE",
            "body over 64 KiB")
    key = {"Idempotency-Key": "openapi-tour-1"}
    a = post("/v1/customer-balance-adjustments", {"customerId": 2, "amountInMajorCurrency": 0.10}, W, headers=key)
    s.status(a, 200, "adjustment with a key")
    b = post("/v1/customer-balance-adjustments", {"customerId": 2, "amountInMajorCurrency": 0.10}, W, headers=key)
    s.status(b, 200, "replayed adjustment")
    s.eq(b.header("Idempotent-Replayed"), "true", "replay is marked")
    s.error(post("/v1/customer-balance-adjustments", {"customerId": 2, "amountInMajorCurrency": 0.20}, W,
                 headers=key), 422, "IDEMPOTENCY_KEY_REUSED", "key reused with another body")
    s.error(request("DELETE", "/v1/customer-payments/1", tok=W), 405, "METHOD_NOT_ALLOWED", "DELETE a payment")


def test_invoice_events(s):
    inv = first_invoice(s, 1, "normal")
    ev = ok(s, post("/v1/invoice-payments", {"generatedInvoiceId": inv, "amountInMajorCurrency": 0.50,
                                             "description": "tour cheque", "paymentMethod": "CHEQUE"}, W),
            201, "invoice payment")
    if ev:
        s.status(get("/v1/invoice-payments/%d" % ev["id"], W), 200, "get invoice payment")
        s.error(get("/v1/adhoc-invoice-payments/%d" % ev["id"], W), 404, "NOT_FOUND",
                "a normal event is not an adhoc one")
    rf = ok(s, post("/v1/refunds", {"invoiceId": inv, "billRunType": "NORMAL", "amountInMajorCurrency": 0.20,
                                    "description": "tour refund"}, W), 201, "refund")
    if rf:
        s.status(get("/v1/refunds/%d" % rf["id"], W), 200, "get refund")
    s.error(post("/v1/refunds", {"invoiceId": inv, "billRunType": "NORMAL", "amountInMajorCurrency": 99999},
                 W), 409, "CONFLICT", "refund above the refundable amount")
    s.error(post("/v1/invoice-payments", {"generatedInvoiceId": inv, "amountInMajorCurrency": 1,
                                          "description": "x", "paymentMethod": "CHEQUE", "extra": 1}, W),
            400, "UNKNOWN_FIELD", "unknown body field", field="extra")
    s.error(post("/v1/invoice-payments", {"generatedInvoiceId": 99999999, "amountInMajorCurrency": 1,
                                          "description": "x", "paymentMethod": "CHEQUE"}, W),
            400, "UNKNOWN_REFERENCE", "unknown invoice")
    # FAILED -> reprocess (RESUBMISSION_REQUESTED, pending) -> cancel.
    s.status(post("/v1/invoice-payments", {"generatedInvoiceId": inv, "amountInMajorCurrency": 1.00,
                                           "description": "tour failed collection", "paymentMethod": "GO_CARDLESS",
                                           "thirdPartyPaymentStatus": "FAILED"}, W), 201, "failed collection")
    s.status(post("/v1/invoice-payment-reprocess", {"invoiceId": inv, "billRunType": "NORMAL", "notes": "tour"}, W),
             200, "reprocess")
    s.error(post("/v1/invoice-payment-reprocess", {"invoiceId": inv, "billRunType": "NORMAL"}, W), 409, "CONFLICT",
            "reprocess a pending invoice")
    s.status(post("/v1/invoice-payment-cancel", {"invoiceId": inv, "billRunType": "NORMAL", "notes": "tour"}, W),
             202, "cancel")
    adhoc = first_invoice(s, 1, "adhoc")
    aev = ok(s, post("/v1/adhoc-invoice-payments", {"generatedAdhocInvoiceId": adhoc, "amountInMajorCurrency": 0.30,
                                                    "description": "tour adhoc", "paymentMethod": "GO_CARDLESS",
                                                    "thirdPartyPaymentStatus": "CONFIRMED"}, W),
             201, "adhoc invoice payment")
    if aev:
        s.status(get("/v1/adhoc-invoice-payments/%d" % aev["id"], W), 200, "get adhoc invoice payment")
    s.status(post("/v1/adhoc-invoice-payments", {"generatedAdhocInvoiceId": adhoc, "amountInMajorCurrency": 2.00,
                                                 "description": "tour adhoc failed", "paymentMethod": "GO_CARDLESS",
                                                 "thirdPartyPaymentStatus": "FAILED"}, W), 201, "adhoc failed")
    s.status(post("/v1/invoice-payment-reprocess", {"invoiceId": adhoc, "billRunType": "ADHOC"}, W), 200,
             "reprocess an adhoc invoice")


def test_providers(s):
    body = {"type": "STRIPE", "name": "Tour Stripe", "status": "ACTIVE", "contractOwnerIds": [1],
            "retryIfPossible": False}
    p = ok(s, post("/v1/payment-providers", body, W), 201, "create provider")
    pid = p["id"] if p else 1
    s.status(get("/v1/payment-providers/%d" % pid, W), 200, "get provider")
    patch = lambda ops: request("PATCH", "/v1/payment-providers/%d" % pid, body=ops, tok=W,
                                content_type="application/json-patch+json")
    s.status(patch([{"op": "replace", "path": "/retryIfPossible", "value": True}]), 200, "patch provider")
    s.error(patch([{"op": "test", "path": "/name", "value": "nope"}]), 409, "CONFLICT", "failed test op")
    s.error(patch([{"op": "replace", "path": "/id", "value": pid + 1}]), 400, "INVALID_FIELD", "patch the id")
    s.error(request("PATCH", "/v1/payment-providers/%d" % pid, body=[], tok=W), 415, "UNSUPPORTED_MEDIA_TYPE",
            "patch as application/json")
    s.error(get("/v1/payment-providers/999999", W), 404, "NOT_FOUND", "unknown provider")
    s.status(post("/v1/payment-provider-reprocess", {"paymentProviderId": pid, "notes": "tour"}, W), 200,
             "provider reprocess")


def form(path, fields, cookie):
    return request("POST", path, raw=urllib.parse.urlencode(fields), headers={"Cookie": cookie},
                   content_type="application/x-www-form-urlencoded")


def page_form(s, r, what):
    m = re.search(r'name="csrf" value="([^"]+)"', r.raw)
    s.check(m is not None, what + ": the page has a CSRF field")
    cookie = (r.header("Set-Cookie") or "").split(";")[0]
    return (m.group(1) if m else ""), cookie


def test_pages(s):
    link = ok(s, post("/v1/payment-provider-payment-link", {"paymentProviderId": 1, "amountInMajorCurrency": 0.75,
                                                            "description": "tour link", "customerId": 1}, W),
              201, "payment link")
    if link:
        path = urllib.parse.urlsplit(link["paymentLink"]).path
        page = request("GET", path)
        s.status(page, 200, "landing page")
        csrf, cookie = page_form(s, page, "landing page")
        s.status(form(path, {"csrf": "wrong"}, cookie), 403, "pay with a wrong CSRF value")
        s.status(form(path, {"csrf": csrf}, cookie), 200, "pay: 303 to the page, processing")
        # The collection engine collects it (COLLECTION.md 3; the stack runs
        # no collector process): then the link is used.
        run_engine([int(sql_one("SELECT customer_id FROM payment_links WHERE id = %d"
                                % link["id"]))])
        s.status(request("GET", path), 410, "a paid link is used: 410 with its receipt")
    s.status(request("GET", "/pay/" + "A" * 43), 404, "unknown payment link")
    s.status(request("GET", "/pay/short"), 404, "malformed payment link")

    m = ok(s, post("/v1/site-payment-mandates", {"siteId": 1, "returnURL": BASE + "/healthz",
                                                 "exitURL": BASE + "/healthz"}, W), 201, "site mandate")
    if m:
        path = "/mandate/" + m["flowToken"]
        page = request("GET", path)
        s.status(page, 200, "mandate page")
        csrf, cookie = page_form(s, page, "mandate page")
        s.status(form(path, {"csrf": csrf, "accountHolderName": "Tour Person", "sortCode": "1",
                             "accountNumber": "12345678"}, cookie), 422, "mandate form with a bad sort code")
        done = form(path, {"csrf": csrf, "accountHolderName": "Tour Person", "sortCode": "12-34-56",
                           "accountNumber": "12345678"}, cookie)
        s.status(done, 200, "mandate form: redirected to returnURL (/healthz)")
        s.status(request("GET", path), 410, "a completed mandate flow")
        lst = ok(s, get("/v1/site-payment-mandates?page=1&pageSize=1&sort=id:desc&siteId=1", W), 200,
                 "site mandates of site 1") or [{}]
        ref = lst[0].get("mandateReference") or "none"
        s.status(get("/v1/payment-provider-mandates/GO_CARDLESS/%s" % ref, W), 200, "provider mandate")
        s.status(get("/v1/instant-bank-payment-for-mandate?mandateReference=%s&paymentMethod=GO_CARDLESS" % ref, W),
                 200, "instant bank payments of the mandate")
    s.status(request("GET", "/mandate/" + "A" * 43), 404, "unknown mandate flow")
    s.error(get("/v1/payment-provider-mandates/GO_CARDLESS/unknown-ref", W), 404, "NOT_FOUND", "unknown mandate")
    s.error(get("/v1/instant-bank-payment-for-mandate?mandateReference=x", W), 400, "MISSING_PARAMETER",
            "instant bank payments without paymentMethod", field="paymentMethod")


def test_operational(s):
    s.status(get("/healthz"), 200, "healthz")
    s.status(get("/readyz"), 200, "readyz")
    r = get("/metrics")
    s.status(r, 200, "metrics from localhost")
    s.check((r.header("Content-Type") or "").startswith("text/plain"), "metrics are text/plain")
    s.error(get("/v1/no-such-operation", W), 404, "NOT_FOUND", "unknown path")


if __name__ == "__main__":
    Suite().run([test_document_served, test_lists, test_ledger, test_invoice_events, test_providers,
                 test_pages, test_operational])
