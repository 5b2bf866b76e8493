#!/usr/bin/env python3
"""Refreshes the examples of handlers/openapi.json with real responses of the
demo data: runs one scripted session against a stack freshly loaded with
db/demo.json (nothing written to it before), and writes each response (and
the request bodies that produced them) into the document as the `example`
of the matching operation, status and media type.

    PAY_BIN=build/pay-api PAY_DATA=db/demo.json tests/stack.sh start /tmp/demo
    PAY_STACK_ENV=/tmp/demo/env python3 tests/openapi/capture_examples.py [handlers/openapi.json]
    tests/stack.sh stop /tmp/demo

The document is rewritten as json.dumps(indent=2) (its own format), so a
run that captures the same responses changes only ids, dates and request
ids. Maintainer tool, not a test: tests/openapi/validate_document.mjs checks
that every example still matches its schema.
"""
import http.client
import json
import os
import re
import sys
import urllib.parse
from collections import OrderedDict

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
import paytest  # noqa: E402  (loads $PAY_STACK_ENV)

DOC = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "handlers", "openapi.json")
BASE = paytest.BASE
W = paytest.token(sub="demo", scope="payments:read payments:write", owners="1,2")
R = paytest.token(sub="demo-reader", scope="payments:read", owners="1,2")

# Numbers keep their text ("10.50" stays 10.50, not 10.5): floats are read as
# marker strings and written back bare (loads / dumps below).
NUM = re.compile(r'"@num@([-+0-9.eE]+)@"')


def loads(text):
    return json.loads(text, object_pairs_hook=OrderedDict, parse_float=lambda t: "@num@%s@" % t)


def dumps(doc):
    return NUM.sub(r"\1", json.dumps(doc, indent=2, ensure_ascii=False)) + "\n"


examples = {}   # (method, path template, status) -> body
requests = {}   # (method, path template) -> request body
errors = {}     # components/responses name -> body


def call(method, path, tmpl, body=None, tok=W, want=None, headers=None, **kw):
    r = paytest.request(method, path, body=body, tok=tok, headers=headers, **kw)
    if want is not None and r.status != want:
        sys.exit("%s %s: status %d, want %d: %s" % (method, path, r.status, want, r.raw[:300]))
    if tmpl is not None and r.raw:
        examples.setdefault((method.lower(), tmpl, str(r.status)), loads(r.raw))
        if body is not None:
            requests.setdefault((method.lower(), tmpl), body)
    return r


def error(name, r, status):
    if r.status != status:
        sys.exit("error example %s: status %d, want %d: %s" % (name, r.status, status, r.raw[:300]))
    errors.setdefault(name, loads(r.raw))


def form_post(path, fields, cookie):
    """POST a form without following the redirect (the page answers 303)."""
    u = urllib.parse.urlsplit(BASE)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    c.request("POST", path, body=urllib.parse.urlencode(fields),
              headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie,
                       "Origin": BASE})
    resp = c.getresponse()
    resp.read()
    c.close()
    return resp.status


def main():
    # Customer ledger: a payment against customer 1 pays invoice 1 and part of 2.
    body = OrderedDict([("customerId", 1), ("amountInMajorCurrency", 150.25), ("type", "BACS"),
                        ("description", "Phone payment"), ("reference", "PH-1001")])
    pay = call("POST", "/v1/customer-payments", "/v1/customer-payments", body, want=200).json
    call("GET", "/v1/customer-payments?customer_id=1&page=1&pageSize=3&sort=id:desc",
         "/v1/customer-payments", want=200)
    call("GET", "/v1/customer-payments/%s" % pay["id"], "/v1/customer-payments/{customer_payment_id}", want=200)
    body = OrderedDict([("customerId", 1), ("amountInMajorCurrency", -5.00), ("description", "Late payment fee")])
    call("POST", "/v1/customer-balance-adjustments", "/v1/customer-balance-adjustments", body, want=200)
    call("GET", "/v1/customer-balances?customer_id=3", "/v1/customer-balances", want=200)

    # Invoice payment events.
    body = OrderedDict([("generatedInvoiceId", 4), ("amountInMajorCurrency", 40.00),
                        ("description", "Cheque 100234 received"), ("paymentMethod", "CHEQUE")])
    ev = call("POST", "/v1/invoice-payments", "/v1/invoice-payments", body, want=201).json
    call("GET", "/v1/invoice-payments?page=1&pageSize=2", "/v1/invoice-payments", want=200)
    call("GET", "/v1/invoice-payments/%s" % ev["id"], "/v1/invoice-payments/{invoice_payment_id}", want=200)
    body = OrderedDict([("generatedAdhocInvoiceId", 2), ("amountInMajorCurrency", 30.00),
                        ("description", "GoCardless collection"), ("paymentMethod", "GO_CARDLESS"),
                        ("thirdPartyPaymentStatus", "CONFIRMED")])
    aev = call("POST", "/v1/adhoc-invoice-payments", "/v1/adhoc-invoice-payments", body, want=201).json
    call("GET", "/v1/adhoc-invoice-payments?page=1&pageSize=2", "/v1/adhoc-invoice-payments", want=200)
    call("GET", "/v1/adhoc-invoice-payments/%s" % aev["id"],
         "/v1/adhoc-invoice-payments/{adhoc_invoice_payment_id}", want=200)

    # Refunds (the cheque's method is taken: a manual refund, at once).
    body = OrderedDict([("invoiceId", 4), ("billRunType", "NORMAL"), ("amountInMajorCurrency", 10.00),
                        ("description", "Goodwill refund")])
    rf = call("POST", "/v1/refunds", "/v1/refunds", body, want=201).json
    call("GET", "/v1/refunds?page=1&pageSize=2", "/v1/refunds", want=200)
    call("GET", "/v1/refunds/%s" % rf["id"], "/v1/refunds/{refund_id}", want=200)

    # Reprocess a failed collection, cancel a pending one.
    call("POST", "/v1/invoice-payments", None, OrderedDict([
        ("generatedInvoiceId", 7), ("amountInMajorCurrency", 120.00),
        ("description", "Collection failed: insufficient funds"), ("paymentMethod", "GO_CARDLESS"),
        ("thirdPartyPaymentStatus", "FAILED")]), want=201)
    body = OrderedDict([("invoiceId", 7), ("billRunType", "NORMAL"), ("notes", "Customer asked us to try again")])
    call("POST", "/v1/invoice-payment-reprocess", "/v1/invoice-payment-reprocess", body, want=200)
    call("POST", "/v1/invoice-payments", None, OrderedDict([
        ("generatedInvoiceId", 10), ("amountInMajorCurrency", 120.00),
        ("description", "Queued for GoCardless"), ("paymentMethod", "GO_CARDLESS"),
        ("thirdPartyPaymentStatus", "PENDING_SUBMISSION")]), want=201)
    body = OrderedDict([("invoiceId", 10), ("billRunType", "NORMAL"), ("notes", "Customer paid by phone instead")])
    call("POST", "/v1/invoice-payment-cancel", "/v1/invoice-payment-cancel", body, want=202)

    # Payment providers.
    call("GET", "/v1/payment-providers?page=1&pageSize=2", "/v1/payment-providers", want=200)
    call("GET", "/v1/payment-providers/1", "/v1/payment-providers/{payment_provider_id}", want=200)
    body = OrderedDict([("type", "STRIPE"), ("name", "Stripe (Acme Energy)"), ("directDebitWithName", "Acme Energy"),
                        ("status", "ACTIVE"), ("creditorIdentifier", None), ("instantBankPayments", False),
                        ("retryIfPossible", False), ("acceptExternalPayments", True), ("contractOwnerIds", [1]),
                        ("syncInstantBankPaymentsWithMandateCreation", False)])
    prov = call("POST", "/v1/payment-providers", "/v1/payment-providers", body, want=201).json
    patch = [OrderedDict([("op", "test"), ("path", "/status"), ("value", "ACTIVE")]),
             OrderedDict([("op", "replace"), ("path", "/retryIfPossible"), ("value", True)])]
    call("PATCH", "/v1/payment-providers/%s" % prov["id"], "/v1/payment-providers/{payment_provider_id}",
         patch, content_type="application/json-patch+json", want=200)
    call("POST", "/v1/invoice-payments", None, OrderedDict([
        ("generatedInvoiceId", 8), ("amountInMajorCurrency", 80.50),
        ("description", "Collection failed: mandate cancelled"), ("paymentMethod", "GO_CARDLESS"),
        ("thirdPartyPaymentStatus", "FAILED")]), want=201)
    body = OrderedDict([("paymentProviderId", prov["id"]), ("notes", "Retry after bank holiday")])
    call("POST", "/v1/payment-provider-reprocess", "/v1/payment-provider-reprocess", body, want=200)
    call("GET", "/v1/customer-credit-status?page=1&pageSize=2", "/v1/customer-credit-status", want=200)

    # A payment link for the rest of invoice 2.
    body = OrderedDict([("paymentProviderId", 1), ("amountInMajorCurrency", 50.25),
                        ("description", "Balance of invoice INV-000002"),
                        ("emailAddress", "customer1@example.com"), ("invoiceId", 2)])
    call("POST", "/v1/payment-provider-payment-link", "/v1/payment-provider-payment-link", body, want=201)

    # A mandate for site 41 (Borealis Water, whose provider takes an instant
    # bank payment of what is owed when a mandate is set up).
    call("PATCH", "/v1/payment-providers/2", None,
         [{"op": "replace", "path": "/instantBankPayments", "value": True},
          {"op": "replace", "path": "/syncInstantBankPaymentsWithMandateCreation", "value": True}],
         content_type="application/json-patch+json", want=200)
    body = OrderedDict([("siteId", 41), ("returnURL", "https://example.com/direct-debit/done"),
                        ("exitURL", "https://example.com/direct-debit/cancelled")])
    m = call("POST", "/v1/site-payment-mandates", "/v1/site-payment-mandates", body, want=201).json
    page = paytest.request("GET", "/mandate/%s" % m["flowToken"])
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.raw).group(1)
    cookie = page.header("Set-Cookie").split(";")[0]
    st = form_post("/mandate/%s" % m["flowToken"], {"csrf": csrf, "accountHolderName": "Jane Smith",
                                                     "sortCode": "12-34-56", "accountNumber": "12345678"}, cookie)
    if st != 303:
        sys.exit("mandate form: status %d" % st)
    lst = call("GET", "/v1/site-payment-mandates?page=1&pageSize=1&sort=id:desc", "/v1/site-payment-mandates", want=200)
    ref = lst.json[0]["mandateReference"]
    call("GET", "/v1/payment-provider-mandates/GO_CARDLESS/%s" % ref,
         "/v1/payment-provider-mandates/{paymentMethod}/{mandateReference}", want=200)
    call("GET", "/v1/instant-bank-payment-for-mandate?mandateReference=%s&paymentMethod=GO_CARDLESS" % ref,
         "/v1/instant-bank-payment-for-mandate", want=200)

    call("GET", "/healthz", "/healthz", tok=None, want=200)
    call("GET", "/readyz", "/readyz", tok=None, want=200)

    # Errors.
    error("BadRequest", paytest.get("/v1/customer-payments?customer_id=1&page=1&pageSize=0", W), 400)
    error("Unauthorized", paytest.get("/v1/customer-balances?customer_id=1"), 401)
    error("Forbidden", paytest.post("/v1/customer-balance-adjustments",
                                    {"customerId": 1, "amountInMajorCurrency": 1}, R), 403)
    error("NotFound", paytest.get("/v1/refunds/999999", W), 404)
    error("Conflict", paytest.post("/v1/refunds", {"invoiceId": 4, "billRunType": "NORMAL",
                                                   "amountInMajorCurrency": 500.00}, W), 409)
    error("patch-409", paytest.request("PATCH", "/v1/payment-providers/1",
                                       body=[{"op": "test", "path": "/status", "value": "INACTIVE"}], tok=W,
                                       content_type="application/json-patch+json"), 409)
    error("PayloadTooLarge", paytest.post("/v1/customer-payments", raw="x" * 70000, tok=W), 413)
    error("UnsupportedMediaType", paytest.post("/v1/customer-payments", raw="customerId=1", tok=W,
                                               content_type="text/plain"), 415)
    k = {"Idempotency-Key": "demo-adjustment-7"}
    paytest.post("/v1/customer-balance-adjustments", {"customerId": 2, "amountInMajorCurrency": 1.00}, W, headers=k)
    error("IdempotencyKeyReused", paytest.post("/v1/customer-balance-adjustments",
                                               {"customerId": 2, "amountInMajorCurrency": 2.00}, W, headers=k), 422)

    with open(DOC) as f:
        write(loads(f.read()))


def write(doc):
    placed = 0
    for (method, tmpl, status), ex in examples.items():
        op = doc["paths"][tmpl][method]
        resp = op["responses"].get(status)
        if resp is None or "$ref" in resp:
            sys.exit("%s %s: no inline %s response to hold the example" % (method, tmpl, status))
        resp["content"]["application/json"]["example"] = ex
        placed += 1
    for (method, tmpl), body in requests.items():
        content = doc["paths"][tmpl][method]["requestBody"]["content"]
        next(iter(content.values()))["example"] = body
        placed += 1
    for name, ex in errors.items():
        if name == "patch-409":
            target = doc["paths"]["/v1/payment-providers/{payment_provider_id}"]["patch"]["responses"]["409"]
        else:
            target = doc["components"]["responses"][name]
        target["content"]["application/json"]["example"] = ex
        placed += 1
    with open(DOC, "w") as f:
        f.write(dumps(doc))
    print("%d examples written to %s" % (placed, DOC))


if __name__ == "__main__":
    main()
