"""End-to-end tests of /v1/refunds (spec 4.7, 3 ledger invariants).

Customers used (nobody else touches them): 46 (manual refunds, refund the
rest, one cent more), 47 (amount limits, validation, concurrency), 48
(payment method selection), 49 (integrated methods: settled by the sandbox
provider or pending), 50 (list filters), 73 (EUR, owner 2: tenancy).
Every test raises its own fresh invoices straight in the database (the way
the loader does) and computes every expectation from the state read
first, so the file passes when run again on the same stack.

Payment providers: owner 1 needs an ACTIVE GO_CARDLESS provider (the
sandbox settles its refunds at once) and an integrated method type without
an ACTIVE provider (STRIPE: provider 4 is INACTIVE). The e2e fixture is
getting them; until then they are inserted here when absent.
"""
import datetime
import json
import re
import threading
import uuid

from paytest import *

TOK = token()                         # contract owners 1 and 2
TOK1 = token(owners="1")
TOK2 = token(owners="2")
RUN = uuid.uuid4().hex[:10]
REFUND_FIELDS = {"id", "invoiceId", "customerId", "billRunType", "thirdPartyRefundStatus",
                 "description", "errorInfo", "paymentMethod", "amountInMajorCurrency"}
INTEGRATED = ["GO_CARDLESS", "GC_INSTANT_BANK_PAYMENTS", "STRIPE", "STRIPE_CARD", "STRIPE_DD",
              "FINASTRA", "EZYPAY", "PAYPAL"]
BRT = {1: "NORMAL", 2: "ADHOC"}


# ---------------------------------------------------------------- helpers

def today():
    return datetime.datetime.now(datetime.timezone.utc).date().isoformat()


def dumps(obj):
    if isinstance(obj, Decimal):
        return format(obj, "f")
    if isinstance(obj, dict):
        return "{" + ",".join(json.dumps(k) + ":" + dumps(v) for k, v in obj.items()) + "}"
    if isinstance(obj, (list, tuple)):
        return "[" + ",".join(dumps(v) for v in obj) + "]"
    return json.dumps(obj)


def major(minor, digits=2):
    return Decimal(int(minor)).scaleb(-digits)


def cents(amount):
    return int(Decimal(amount) * 100)


def money_text(resp, field, text):
    return re.search(r'"%s"\s*:\s*%s\s*[,}]' % (re.escape(field), re.escape(text)),
                     resp.raw) is not None


def ensure_provider(pid, type_, name, status, owner, retry=0):
    """A provider of this type and status serving `owner`: the fixture's (id pid)
    or any other that fits; inserted (as id pid when that id is free) if none."""
    found = sql_one("SELECT p.id FROM payment_providers p JOIN payment_provider_owners o"
                    " ON o.provider_id = p.id WHERE o.contract_owner_id = %d AND p.type = '%s'"
                    " AND p.status = '%s' ORDER BY p.id = %d DESC, p.id LIMIT 1"
                    % (owner, type_, status, pid))
    if found:
        return int(found)
    free = sql_one("SELECT COUNT(*) FROM payment_providers WHERE id = %d" % pid) == "0"
    rows = sql("INSERT INTO payment_providers (%s type, name, status, retry_if_possible)"
               " VALUES (%s '%s', '%s', '%s', %d); SELECT LAST_INSERT_ID();"
               % ("id," if free else "", "%d," % pid if free else "", type_, name, status, retry))
    new = pid if free else int(rows[-1][0])
    sql("INSERT IGNORE INTO payment_provider_owners (provider_id, contract_owner_id)"
        " VALUES (%d, %d)" % (new, owner))
    return new


def active_provider(owner, type_):
    return sql_one("SELECT p.id FROM payment_providers p JOIN payment_provider_owners o"
                   " ON o.provider_id = p.id WHERE o.contract_owner_id = %d AND p.type = '%s'"
                   " AND p.status = 'ACTIVE' LIMIT 1" % (owner, type_))


def setup_providers():
    ensure_provider(1, "GO_CARDLESS", "GoCardless (Acme Energy)", "ACTIVE", 1)
    ensure_provider(2, "GO_CARDLESS", "GoCardless (Borealis Water)", "ACTIVE", 2)
    ensure_provider(4, "STRIPE", "Stripe (Acme Energy)", "INACTIVE", 1)


def unserved_method(owner):
    """An integrated method for which the owner has no ACTIVE provider (STRIPE first)."""
    for m in ["STRIPE"] + INTEGRATED:
        if not active_provider(owner, m):
            return m
    return None


def add_invoice(cid, kind, amount_minor, auto=0, prefix="E2E-RF"):
    """Raises an invoice straight in the database, the way the loader does."""
    txn, cpt, brt, br = (("INVOICE_CREATED", "INVOICE", "NORMAL", 1) if kind == 1 else
                         ("ADHOC_INVOICE_CREATED", "ADHOC_INVOICE", "ADHOC", 3))
    rows = sql(
        "START TRANSACTION;"
        "SELECT balance, currency_id INTO @b, @cur FROM customers WHERE id = %(c)d FOR UPDATE;"
        "SELECT COALESCE(MAX(id), 0) + 1 INTO @iid FROM invoices WHERE kind = %(k)d FOR UPDATE;"
        "INSERT INTO invoices (kind, id, customer_id, bill_run_id, invoice_number,"
        " invoice_date, amount, auto_collect) VALUES (%(k)d, @iid, %(c)d, %(br)d,"
        " CONCAT('%(p)s-', @iid), UTC_DATE(), %(a)d, %(auto)d);"
        "SET @b = @b - %(a)d;"
        "INSERT INTO ledger (customer_id, txn_type, customer_payment_type, amount,"
        " resulting_balance, currency_id, payment_date, invoice_kind, invoice_id,"
        " invoice_number, bill_run_type) VALUES (%(c)d, '%(t)s', '%(cpt)s', -%(a)d, @b,"
        " @cur, UTC_DATE(), %(k)d, @iid, CONCAT('%(p)s-', @iid), '%(brt)s');"
        "UPDATE customers SET balance = @b, payments_since_invoice = 0 WHERE id = %(c)d;"
        "COMMIT;"
        "SELECT @iid;" % dict(c=cid, k=kind, a=amount_minor, p=prefix, t=txn, cpt=cpt,
                              brt=brt, br=br, auto=auto))
    return int(rows[-1][0])


def inv(kind, iid):
    r = sql("SELECT amount, paid, refunded, refund_pending, payment_status"
            " FROM invoices WHERE kind = %d AND id = %d" % (kind, iid))[0]
    return dict(amount=int(r[0]), paid=int(r[1]), refunded=int(r[2]), pending=int(r[3]),
                status=r[4])


def balance(cid):
    return int(sql_one("SELECT balance FROM customers WHERE id = %d" % cid))


def ledger_sum(cid):
    return int(sql_one("SELECT COALESCE(SUM(amount), 0) FROM ledger WHERE customer_id = %d"
                       % cid))


def max_ledger(cid):
    return int(sql_one("SELECT COALESCE(MAX(id), 0) FROM ledger WHERE customer_id = %d" % cid))


def ledger_since(cid, since):
    return [dict(id=int(r[0]), txn=r[1], cpt=r[2], amount=int(r[3]), kind=int(r[4]),
                 invoice=int(r[5]), brt=r[6], method=r[7], description=r[8])
            for r in sql("SELECT id, txn_type, customer_payment_type, amount,"
                         " COALESCE(invoice_kind, 0), COALESCE(invoice_id, 0),"
                         " COALESCE(bill_run_type, ''), COALESCE(payment_method, ''),"
                         " COALESCE(description, '') FROM ledger"
                         " WHERE customer_id = %d AND id > %d ORDER BY id" % (cid, since))]


def refund_count(kind, iid):
    return int(sql_one("SELECT COUNT(*) FROM refunds WHERE invoice_kind = %d AND invoice_id = %d"
                       % (kind, iid)))


def snapshot(cid, kind, iid):
    return dict(inv=inv(kind, iid), balance=balance(cid), max_ledger=max_ledger(cid),
                refunds=refund_count(kind, iid))


def unchanged(s, cid, kind, iid, before, what):
    after = snapshot(cid, kind, iid)
    s.eq(after["inv"], before["inv"], what + ": invoice unchanged")
    s.eq(after["balance"], before["balance"], what + ": balance unchanged")
    s.eq(after["max_ledger"], before["max_ledger"], what + ": no ledger row")
    s.eq(after["refunds"], before["refunds"], what + ": no refund recorded")


def pay(kind, iid, amount, method="BACS", status=None, tok=TOK):
    body = {("generatedInvoiceId" if kind == 1 else "generatedAdhocInvoiceId"): iid,
            "amountInMajorCurrency": Decimal(amount), "paymentMethod": method,
            "description": "e2e-rf pay %s" % RUN}
    if status:
        body["thirdPartyPaymentStatus"] = status
    return post("/v1/invoice-payments" if kind == 1 else "/v1/adhoc-invoice-payments",
                raw=dumps(body), tok=tok)


def refund(kind, iid, amount, method=None, description=None, tok=TOK, extra=None, drop=()):
    body = {"invoiceId": iid, "billRunType": BRT[kind], "amountInMajorCurrency": amount
            if not isinstance(amount, str) else Decimal(amount),
            "description": description or "e2e-rf %s" % RUN}
    if method is not None:
        body["paymentMethod"] = method
    body.update(extra or {})
    for d in drop:
        body.pop(d, None)
    return post("/v1/refunds", raw=dumps(body), tok=tok)


def listing(query, tok=TOK):
    return get("/v1/refunds?page=1&pageSize=1000&" + query, tok)


def ids_of(resp):
    return [x.get("id") for x in resp.json] if isinstance(resp.json, list) else resp.raw[:200]


def check_refund(s, r, what, cid, kind, iid, amount, method, status, before, settled):
    """A 201 refund: response, refund row, ledger, invoice totals, balance."""
    if not s.status(r, 201, what):
        return None
    j = r.json
    s.eq(set(j), REFUND_FIELDS, what + ": exactly the Refund fields")
    s.eq(r.header("Location"), "/v1/refunds/%s" % j.get("id"), what + ": Location")
    s.eq((j.get("invoiceId"), j.get("customerId"), j.get("billRunType")),
         (iid, cid, BRT[kind]), what + ": invoiceId, customerId, billRunType")
    s.eq(j.get("amountInMajorCurrency"), Decimal(amount), what + ": amount")
    s.eq(j.get("paymentMethod"), method, what + ": paymentMethod")
    s.eq(j.get("thirdPartyRefundStatus"), status, what + ": thirdPartyRefundStatus")
    s.eq(j.get("errorInfo"), None, what + ": errorInfo null")
    a = cents(amount)
    after = inv(kind, iid)
    s.eq(after["refunded"] - before["inv"]["refunded"], a, what + ": invoice refunded grew")
    s.eq(after["paid"], before["inv"]["paid"], what + ": invoice paid unchanged")
    s.eq(after["pending"] - before["inv"]["pending"], 0 if settled else a,
         what + ": refund_pending change")
    rows = ledger_since(cid, before["max_ledger"])
    exp = [("REFUND", "REFUND", -a, kind, iid, BRT[kind], method)] if settled else []
    s.eq([(x["txn"], x["cpt"], x["amount"], x["kind"], x["invoice"], x["brt"], x["method"])
          for x in rows], exp, what + ": ledger rows")
    s.eq(balance(cid) - before["balance"], -a if settled else 0, what + ": balance change")
    led = sql_one("SELECT COALESCE(ledger_id, 0) FROM refunds WHERE id = %d" % j["id"])
    s.eq(led, str(rows[0]["id"]) if settled and rows else "0",
         what + ": refund's ledger_id (set only once the money left)")
    s.check(0 <= after["refunded"] <= after["paid"], what + ": 0 <= refunded <= paid", after)
    return j


def derived(i):
    return ("REFUND_PENDING" if i["pending"] > 0 else
            "REFUNDED" if 0 < i["paid"] <= i["refunded"] else
            "PART_REFUNDED" if i["refunded"] > 0 else "?")


# ---------------------------------------------------------------- tests

def test_manual_refunds(s):
    cid = 46
    for kind in (1, 2):
        iid = add_invoice(cid, kind, 10000)
        s.status(pay(kind, iid, "60.00", "BACS"), 201, "pay 60.00 BACS on invoice %d/%d" % (kind, iid))
        before = snapshot(cid, kind, iid)
        s.eq((before["inv"]["paid"], before["inv"]["refunded"]), (6000, 0), "paid 60, refunded 0")
        desc = "e2e-rf part %s %d" % (RUN, kind)
        r = refund(kind, iid, "20", "CHEQUE", desc)
        j = check_refund(s, r, "refund 20 CHEQUE (%s invoice %d)" % (BRT[kind], iid), cid, kind,
                         iid, "20.00", "CHEQUE", "MANUALLY_REFUNDED", before, True)
        if j:
            s.eq(j.get("description"), desc, "refund: description")
            s.check(money_text(r, "amountInMajorCurrency", "20.00"), "refund: amount 20.00",
                    r.raw[:300])
            s.eq(inv(kind, iid)["status"], "PART_REFUNDED", "refund 20 of 60: PART_REFUNDED")
            g = get("/v1/refunds/%d" % j["id"], TOK)
            if s.status(g, 200, "GET /v1/refunds/%d" % j["id"]):
                s.eq(g.json, j, "GET refund: same object as the create")
            g = get("/v1/refunds/%d?fields=id,thirdPartyRefundStatus" % j["id"], TOK)
            if s.status(g, 200, "GET refund with fields"):
                s.eq(g.json, {"id": j["id"], "thirdPartyRefundStatus": "MANUALLY_REFUNDED"},
                     "GET refund with fields: only those keys")
        before = snapshot(cid, kind, iid)
        r = refund(kind, iid, "40.00", "BACS")
        if check_refund(s, r, "refund the remaining 40.00 BACS", cid, kind, iid, "40.00", "BACS",
                        "MANUALLY_REFUNDED", before, True):
            s.eq(inv(kind, iid)["status"], "REFUNDED", "refunded = paid: REFUNDED")
        before = snapshot(cid, kind, iid)
        mark = "e2e-rf cent %s %d" % (RUN, kind)
        r = refund(kind, iid, "0.01", "CHEQUE", mark)
        s.error(r, 409, "CONFLICT", "one cent more than refundable", field="amountInMajorCurrency")
        unchanged(s, cid, kind, iid, before, "one cent more")
        s.eq(sql_one("SELECT COUNT(*) FROM refunds WHERE description = '%s'" % mark), "0",
             "one cent more: no refund row with its description")
        # Paying again makes it refundable again: refundable = paid - refunded.
        s.status(pay(kind, iid, "0.05", "BACS"), 201, "pay 0.05 more")
        s.eq(inv(kind, iid)["status"], "PART_REFUNDED", "paid 60.05, refunded 60: PART_REFUNDED")
        before = snapshot(cid, kind, iid)
        s.error(refund(kind, iid, "0.06", "CHEQUE"), 409, "CONFLICT", "refund 0.06 of 0.05 refundable")
        unchanged(s, cid, kind, iid, before, "refund 0.06 of 0.05 refundable")
        r = refund(kind, iid, "0.05", "CHEQUE")
        check_refund(s, r, "refund the 0.05", cid, kind, iid, "0.05", "CHEQUE", "MANUALLY_REFUNDED",
                     before, True)
        s.eq(inv(kind, iid)["status"], "REFUNDED", "all refunded again: REFUNDED")
    s.eq(ledger_sum(cid), balance(cid), "customer %d: balance = sum of ledger amounts" % cid)
    # Unknown invoice, and the invoice id of the other kind's id space.
    s.error(refund(1, 999999999, "1.00", "CHEQUE"), 400, "UNKNOWN_REFERENCE",
            "refund of an unknown invoice", field="invoiceId")
    s.error(refund(2, 999999999, "1.00", "CHEQUE"), 400, "UNKNOWN_REFERENCE",
            "refund of an unknown adhoc invoice", field="invoiceId")


def test_amount_limits_and_validation(s):
    cid = 47
    iid = add_invoice(cid, 1, 10000000)          # 100000.00
    s.status(pay(1, iid, "100000", "BACS"), 201, "pay 100000.00")
    s.status(pay(1, iid, "0.02", "BACS"), 201, "pay 0.02 more")
    n = [0]

    def bad(amount, code, field, what, status=400, **kw):
        n[0] += 1
        mark = "e2e-rf bad %s %d" % (RUN, n[0])
        before = snapshot(cid, 1, iid)
        r = refund(1, iid, amount, kw.pop("method", "CHEQUE"), mark, **kw)
        s.error(r, status, code, what, field=field)
        unchanged(s, cid, 1, iid, before, what)
        s.eq(sql_one("SELECT COUNT(*) FROM refunds WHERE description = '%s'" % mark), "0",
             what + ": no refund row")

    bad("0", "INVALID_AMOUNT", "amountInMajorCurrency", "refund 0")
    bad("0.00", "INVALID_AMOUNT", "amountInMajorCurrency", "refund 0.00")
    bad("-1.00", "INVALID_AMOUNT", "amountInMajorCurrency", "refund -1.00")
    bad("0.001", "INVALID_AMOUNT", "amountInMajorCurrency", "refund 0.001 (3 decimals)")
    bad("100000.01", "INVALID_AMOUNT", "amountInMajorCurrency", "refund 100000.01")
    bad("1.00", "INVALID_FIELD", "amountInMajorCurrency", "refund amount as a string",
        extra={"amountInMajorCurrency": "1.00"})
    bad("1.00", "MISSING_FIELD", "amountInMajorCurrency", "refund without amount",
        drop=("amountInMajorCurrency",))
    bad("1.00", "MISSING_FIELD", "invoiceId", "refund without invoiceId", drop=("invoiceId",))
    bad("1.00", "MISSING_FIELD", "billRunType", "refund without billRunType", drop=("billRunType",))
    bad("1.00", "INVALID_FIELD", "billRunType", "refund billRunType BOGUS",
        extra={"billRunType": "BOGUS"})
    bad("1.00", "INVALID_FIELD", "paymentMethod", "refund paymentMethod BITCOIN", method="BITCOIN")
    bad("1.00", "UNKNOWN_FIELD", "customerId", "refund with an unknown field",
        extra={"customerId": cid})
    bad("1.00", "INVALID_FIELD", "description", "refund description of 256 characters",
        extra={"description": "x" * 256})
    before = snapshot(cid, 1, iid)
    r = refund(1, iid, "100000", "CHEQUE")
    check_refund(s, r, "refund 100000 (maximum)", cid, 1, iid, "100000.00", "CHEQUE",
                 "MANUALLY_REFUNDED", before, True)
    before = snapshot(cid, 1, iid)
    r = refund(1, iid, "0.01", "CHEQUE", extra={"description": None})
    j = check_refund(s, r, "refund 0.01 (minimum), description null", cid, 1, iid, "0.01",
                     "CHEQUE", "MANUALLY_REFUNDED", before, True)
    if j:
        s.eq(j.get("description"), None, "refund without description: null")
    before = snapshot(cid, 1, iid)
    check_refund(s, refund(1, iid, "0.01", "CHEQUE"), "refund the last 0.01", cid, 1, iid, "0.01",
                 "CHEQUE", "MANUALLY_REFUNDED", before, True)
    s.eq(inv(1, iid)["status"], "REFUNDED", "everything refunded: REFUNDED")
    bad("0.01", "CONFLICT", "amountInMajorCurrency", "refund 0.01 of nothing refundable", status=409)


def test_method_selection(s):
    cid = 48
    # Blank method: the method of the last successful (collected, positive) payment.
    iid = add_invoice(cid, 1, 10000)
    s.status(pay(1, iid, "10.00", "CREDIT_CARD"), 201, "pay 10 CREDIT_CARD")
    s.status(pay(1, iid, "5.00", "GO_CARDLESS", "SUBMITTED"), 201, "GO_CARDLESS SUBMITTED (no money)")
    s.status(pay(1, iid, "5.00", "GO_CARDLESS", "FAILED"), 201, "GO_CARDLESS FAILED (no money)")
    s.status(pay(1, iid, "1.00", "PAYPAL", "CHARGED_BACK"), 201, "PAYPAL CHARGED_BACK (reversal)")
    s.status(pay(1, iid, "-0.50", "BACS"), 201, "BACS correction -0.50")
    before = snapshot(cid, 1, iid)
    check_refund(s, refund(1, iid, "1.00"), "refund without paymentMethod", cid, 1, iid, "1.00",
                 "CREDIT_CARD", "MANUALLY_REFUNDED", before, True)
    s.status(pay(1, iid, "2.00", "OTHER", "MANUALLY_PAID"), 201, "pay 2 OTHER MANUALLY_PAID")
    before = snapshot(cid, 1, iid)
    check_refund(s, refund(1, iid, "1.00", ""), "refund with paymentMethod \"\"", cid, 1, iid,
                 "1.00", "OTHER", "MANUALLY_REFUNDED", before, True)
    before = snapshot(cid, 1, iid)
    check_refund(s, refund(1, iid, "1.00", None, extra={"paymentMethod": None}),
                 "refund with paymentMethod null", cid, 1, iid, "1.00", "OTHER",
                 "MANUALLY_REFUNDED", before, True)
    before = snapshot(cid, 1, iid)
    check_refund(s, refund(1, iid, "1.00", "BACS"), "refund with an explicit method (BACS)",
                 cid, 1, iid, "1.00", "BACS", "MANUALLY_REFUNDED", before, True)

    # Auto-collected invoice: the last successful payment's method even if another is given.
    iid = add_invoice(cid, 1, 5000, auto=1)
    s.status(pay(1, iid, "20.00", "CHEQUE", "MANUALLY_PAID"), 201, "autoCollect: pay 20 CHEQUE")
    for given in ("GO_CARDLESS", "BACS", None):
        before = snapshot(cid, 1, iid)
        check_refund(s, refund(1, iid, "2.00", given),
                     "autoCollect invoice, refund with method %s" % given, cid, 1, iid, "2.00",
                     "CHEQUE", "MANUALLY_REFUNDED", before, True)
    # The fixture's autoCollect invoice of this customer (its third normal invoice).
    fx = (cid - 1) * 3 + 3
    s.eq(sql_one("SELECT auto_collect FROM invoices WHERE kind = 1 AND id = %d" % fx), "1",
         "fixture invoice %d is autoCollect" % fx)
    s.status(pay(1, fx, "1.00", "DIRECT_DEBIT"), 201, "pay 1.00 DIRECT_DEBIT on invoice %d" % fx)
    before = snapshot(cid, 1, fx)
    check_refund(s, refund(1, fx, "1.00", "PAYPAL"), "fixture autoCollect invoice, PAYPAL given",
                 cid, 1, fx, "1.00", "DIRECT_DEBIT", "MANUALLY_REFUNDED", before, True)

    # No successful payment at all: nothing to take the method from.
    iid = add_invoice(cid, 1, 5000)
    s.status(pay(1, iid, "50.00", "GO_CARDLESS", "SUBMITTED"), 201, "only a SUBMITTED event")
    before = snapshot(cid, 1, iid)
    r = refund(1, iid, "1.00")
    # Spec 4.7: 400 when there is no successful payment (checked before the
    # refundable amount, which is 0 here too).
    s.error(r, 400, "INVALID_FIELD", "refund without method, no successful payment: 400",
            field="paymentMethod")
    r = refund(1, iid, "1.00", "BACS")
    s.error(r, 409, "CONFLICT", "with a method, nothing refundable: 409",
            field="amountInMajorCurrency")
    s.check("(0.00)" in (r.json or {}).get("message", ""),
            "the 409 names the refundable amount in major units", r)
    unchanged(s, cid, 1, iid, before, "refund without any successful payment")
    s.eq(ledger_sum(cid), balance(cid), "customer %d: balance = sum of ledger amounts" % cid)


def test_integrated_methods(s):
    setup_providers()
    cid = 49
    gc = active_provider(1, "GO_CARDLESS")
    s.check(gc is not None, "owner 1 has an ACTIVE GO_CARDLESS provider")
    # An ACTIVE provider: a refund attempt for the collection engine
    # (COLLECTION.md 3), reserved until the provider settles it.
    for kind in (1, 2):
        iid = add_invoice(cid, kind, 5000)
        s.status(pay(kind, iid, "50.00", "GO_CARDLESS", "CONFIRMED"), 201, "pay 50 GO_CARDLESS")
        before = snapshot(cid, kind, iid)
        j = check_refund(s, refund(kind, iid, "10.00", "GO_CARDLESS"),
                         "GO_CARDLESS refund, ACTIVE provider (%s)" % BRT[kind], cid, kind, iid,
                         "10.00", "GO_CARDLESS", "PENDING_SUBMISSION", before, False)
        i = inv(kind, iid)
        s.eq((i["pending"], i["status"]), (1000, "REFUND_PENDING"),
             "integrated refund: reserved, REFUND_PENDING")
        if j:
            s.eq(sql_one("SELECT CONCAT(kind, ' ', provider_id IS NOT NULL, ' ', amount, ' ',"
                         " status) FROM attempts WHERE refund_id = %d" % j["id"]),
                 "2 1 1000 PENDING_SUBMISSION", "integrated refund: its refund attempt")
        before = snapshot(cid, kind, iid)
        check_refund(s, refund(kind, iid, "40.00"), "refund without method after GO_CARDLESS",
                     cid, kind, iid, "40.00", "GO_CARDLESS", "PENDING_SUBMISSION", before, False)
        s.eq(inv(kind, iid)["status"], "REFUND_PENDING", "integrated refunds of all: REFUND_PENDING")
        # The collection engine submits them; the sandbox settles them.
        before = snapshot(cid, kind, iid)
        run_engine([cid])
        i = inv(kind, iid)
        s.eq((i["paid"], i["refunded"], i["pending"], i["status"]), (5000, 5000, 0, "REFUNDED"),
             "after the engine: both settled, nothing reserved, REFUNDED")
        rows = ledger_since(cid, before["max_ledger"])
        s.eq(sorted((x["txn"], x["amount"], x["method"]) for x in rows),
             [("REFUND", -4000, "GO_CARDLESS"), ("REFUND", -1000, "GO_CARDLESS")],
             "after the engine: one REFUND row per refund")
        s.eq(sql_one("SELECT GROUP_CONCAT(DISTINCT third_party_refund_status) FROM refunds"
                     " WHERE invoice_kind = %d AND invoice_id = %d" % (kind, iid)),
             "REFUND_SETTLED", "after the engine: REFUND_SETTLED")
        s.eq(balance(cid) - before["balance"], -5000,
             "after the engine: balance -50.00")

    # A refund the bank bounces (the sandbox bounces amounts ending in 77):
    # the reservation is released, no money leaves.
    iid = add_invoice(cid, 1, 5000)
    s.status(pay(1, iid, "50.00", "GO_CARDLESS", "CONFIRMED"), 201, "pay 50 GO_CARDLESS")
    before = snapshot(cid, 1, iid)
    check_refund(s, refund(1, iid, "0.77", "GO_CARDLESS"), "GO_CARDLESS refund of 0.77", cid, 1,
                 iid, "0.77", "GO_CARDLESS", "PENDING_SUBMISSION", before, False)
    run_engine([cid])
    i = inv(1, iid)
    s.eq((i["paid"], i["refunded"], i["pending"]), (5000, 0, 0),
         "bounced refund: the reservation is released")
    s.eq(ledger_since(cid, before["max_ledger"]), [], "bounced refund: no ledger row")
    s.eq(sql_one("SELECT third_party_refund_status FROM refunds WHERE invoice_kind = 1 AND"
                 " invoice_id = %d" % iid), "BOUNCED", "bounced refund: BOUNCED")

    # An integrated method without an ACTIVE provider: reserved, pending.
    m = unserved_method(1)
    if not s.check(m is not None, "an integrated method without an ACTIVE provider for owner 1"):
        return
    if m == "STRIPE":
        s.eq(sql_one("SELECT COUNT(*) FROM payment_providers p JOIN payment_provider_owners o"
                     " ON o.provider_id = p.id WHERE o.contract_owner_id = 1 AND p.type = 'STRIPE'"
                     " AND p.status = 'INACTIVE'") != "0", True,
             "owner 1 has an INACTIVE STRIPE provider")
    iid = add_invoice(cid, 1, 5000)
    s.status(pay(1, iid, "50.00", m, "CONFIRMED"), 201, "pay 50 %s CONFIRMED" % m)
    before = snapshot(cid, 1, iid)
    j = check_refund(s, refund(1, iid, "10.00", m), "%s refund, no ACTIVE provider" % m, cid, 1,
                     iid, "10.00", m, "PENDING_SUBMISSION", before, False)
    s.eq(inv(1, iid)["status"], "REFUND_PENDING", "pending refund: REFUND_PENDING")
    if j:
        g = get("/v1/refunds/%d" % j["id"], TOK)
        s.eq(g.json.get("thirdPartyRefundStatus") if g.json else g.raw, "PENDING_SUBMISSION",
             "GET the pending refund")
    # The pending amount counts in refunded: only 40.00 is left.
    before = snapshot(cid, 1, iid)
    s.error(refund(1, iid, "40.01", "CHEQUE"), 409, "CONFLICT",
            "refund 40.01 when 10.00 of 50.00 is pending", field="amountInMajorCurrency")
    unchanged(s, cid, 1, iid, before, "refund beyond paid - (pending) refunded")
    check_refund(s, refund(1, iid, "40.00", "CHEQUE"), "refund the other 40.00 CHEQUE", cid, 1,
                 iid, "40.00", "CHEQUE", "MANUALLY_REFUNDED", before, True)
    i = inv(1, iid)
    s.eq((i["paid"], i["refunded"], i["pending"], i["status"]), (5000, 5000, 1000, "REFUND_PENDING"),
         "a refund still pending: REFUND_PENDING even when refunded = paid")
    # A correction may not drop paid below the refunded amount, pending included.
    before = snapshot(cid, 1, iid)
    s.error(pay(1, iid, "-0.01", "BACS"), 409, "CONFLICT",
            "correction below refunded (pending counts)", field="amountInMajorCurrency")
    unchanged(s, cid, 1, iid, before, "correction below refunded (pending counts)")

    # Owner 2 (EUR): its own GO_CARDLESS provider settles.
    cid = 73
    if active_provider(2, "GO_CARDLESS"):
        iid = add_invoice(cid, 1, 3000)
        s.status(pay(1, iid, "30.00", "GO_CARDLESS", "PAID_OUT", tok=TOK2), 201, "EUR pay 30")
        before = snapshot(cid, 1, iid)
        check_refund(s, refund(1, iid, "30.00", "GO_CARDLESS", tok=TOK2),
                     "EUR GO_CARDLESS refund (owner 2 provider)", cid, 1, iid, "30.00",
                     "GO_CARDLESS", "PENDING_SUBMISSION", before, False)
    else:
        s.check(False, "owner 2 has an ACTIVE GO_CARDLESS provider")
    for c in (49, 73):
        s.eq(ledger_sum(c), balance(c), "customer %d: balance = sum of ledger amounts" % c)


def test_list_and_tenancy(s):
    cid = 50
    made = {1: [], 2: []}
    invs = {}
    for kind in (1, 2):
        iid = invs[kind] = add_invoice(cid, kind, 9000)
        s.status(pay(kind, iid, "90.00", "BACS"), 201, "pay 90 on %s invoice" % BRT[kind])
        for a in ("5.00", "30.00", "12.50"):
            r = refund(kind, iid, a, "CHEQUE")
            if s.status(r, 201, "refund %s on %s invoice %d" % (a, BRT[kind], iid)):
                made[kind].append(r.json["id"])
    every = [int(x[0]) for x in sql("SELECT id FROM refunds WHERE customer_id = %d ORDER BY id"
                                    % cid)]
    by_kind = {k: [int(x[0]) for x in sql("SELECT id FROM refunds WHERE customer_id = %d AND"
                                          " invoice_kind = %d ORDER BY id" % (cid, k))]
               for k in (1, 2)}
    for q, exp in (("customerId=%d" % cid, every),
                   ("customerId=%d&billRunType=NORMAL" % cid, by_kind[1]),
                   ("customerId=%d&billRunType=ADHOC" % cid, by_kind[2]),
                   ("customerId=%d&billRunType=in:ADHOC,NORMAL" % cid, every),
                   ("customerId=%d&billRunType=like:adh" % cid, by_kind[2]),
                   ("invoiceId=%d&billRunType=NORMAL" % invs[1], made[1]),
                   ("invoiceId=%d&billRunType=ADHOC" % invs[2], made[2]),
                   ("invoiceId=%d&customerId=%d" % (invs[1], cid),
                    [x for x in every if x in made[1] or
                     sql_one("SELECT invoice_id FROM refunds WHERE id = %d" % x) == str(invs[1])]),
                   ("customerId=%d&invoiceId=999999999" % cid, [])):
        r = listing(q)
        if s.status(r, 200, "GET /v1/refunds?" + q):
            s.eq(ids_of(r), exp, "GET /v1/refunds?" + q)
            s.eq(r.header("X-Total-Count"), str(len(exp)), "GET /v1/refunds?%s: X-Total-Count" % q)
    # billRunType is a BillRunType: another value is refused, not answered with []
    for bad in ("OTHER", "FOO", "normal", "in:NORMAL,FOO"):
        r = listing("customerId=%d&billRunType=%s" % (cid, bad))
        s.error(r, 400, "INVALID_PARAMETER", "GET /v1/refunds?billRunType=" + bad, field="billRunType")
        s.check("NORMAL, ADHOC" in ((r.json or {}).get("message") or ""),
                "billRunType=%s: the message names the allowed values" % bad, r.raw[:200])
    r = listing("customerId=%d&billRunType=NORMAL" % cid)
    if s.status(r, 200, "refunds of customer %d, NORMAL" % cid) and r.json:
        s.eq({(x.get("customerId"), x.get("billRunType")) for x in r.json}, {(cid, "NORMAL")},
             "NORMAL list items: customer and billRunType")
    r = listing("customerId=%d&sort=amountInMajorCurrency:desc,billRunType&fields=id,"
                "amountInMajorCurrency,billRunType" % cid)
    if s.status(r, 200, "refunds sort=amountInMajorCurrency:desc,billRunType&fields=..."):
        s.check(all(set(x) == {"id", "amountInMajorCurrency", "billRunType"} for x in r.json),
                "fields: only the three keys", r.raw[:200])
        s.eq(ids_of(r), [x["id"] for x in sorted(r.json, key=lambda x: (
            -x["amountInMajorCurrency"], x["billRunType"], x["id"]))],
             "sort: amount desc, then billRunType, then id")
        s.eq(len(r.json), len(every), "sorted list: every refund of the customer")
    for q, code, field in (("customerId=abc", "INVALID_PARAMETER", "customerId"),
                           ("invoiceId=0", "INVALID_PARAMETER", "invoiceId"),
                           ("sort=bogus", "INVALID_PARAMETER", "sort"),
                           ("fields=id,bogus", "INVALID_PARAMETER", "fields"),
                           ("customer_id=%d" % cid, "UNKNOWN_PARAMETER", "customer_id")):
        s.error(listing(q), 400, code, "GET /v1/refunds?" + q, field=field)
    top = int(sql_one("SELECT COALESCE(MAX(id), 0) FROM refunds"))
    s.error(get("/v1/refunds/%d" % (top + 1000000), TOK), 404, "NOT_FOUND", "GET unknown refund")
    for bad in ("abc", "0", "-5"):
        s.error(get("/v1/refunds/%s" % bad, TOK), 400, "INVALID_PARAMETER",
                "GET /v1/refunds/%s" % bad, field="refund_id")

    # Tenancy: customer 73 belongs to owner 2.
    c2 = 73
    iid = add_invoice(c2, 1, 2000)
    s.status(pay(1, iid, "20.00", "BACS", tok=TOK2), 201, "owner 2 pays customer 73's invoice")
    before = snapshot(c2, 1, iid)
    s.error(refund(1, iid, "1.00", "CHEQUE", tok=TOK1), 400, "UNKNOWN_REFERENCE",
            "owner-1 token refunds customer 73's invoice", field="invoiceId")
    unchanged(s, c2, 1, iid, before, "owner-1 refund of an owner-2 invoice")
    r = refund(1, iid, "1.00", "CHEQUE", tok=TOK2)
    if s.status(r, 201, "owner-2 token refunds customer 73's invoice"):
        rid = r.json["id"]
        s.error(get("/v1/refunds/%d" % rid, TOK1), 404, "NOT_FOUND", "owner-1 GETs owner-2 refund")
        s.status(get("/v1/refunds/%d" % rid, TOK2), 200, "owner-2 GETs its refund")
        # GET by id takes only fields: any other parameter is named in a 400
        # (a list parameter, a filter of the list, a typo), also next to fields
        for q, name in (("foo=1", "foo"), ("page=1", "page"), ("customerId=%d" % c2, "customerId"),
                        ("fields=id&Fields=id", "Fields")):
            s.error(get("/v1/refunds/%d?%s" % (rid, q), TOK2), 400, "UNKNOWN_PARAMETER",
                    "GET /v1/refunds/%d?%s" % (rid, q), field=name)
        g = get("/v1/refunds/%d?fields=id" % rid, TOK2)
        if s.status(g, 200, "GET /v1/refunds/%d?fields=id" % rid):
            s.eq(g.json, {"id": rid}, "GET by id with fields=id: only the id")
        r1 = listing("customerId=%d" % c2, TOK1)
        if s.status(r1, 200, "owner-1 lists customer 73's refunds"):
            s.eq((r1.json, r1.header("X-Total-Count")), ([], "0"), "owner-1 list: absent")
        r2 = listing("customerId=%d" % c2, TOK2)
        if s.status(r2, 200, "owner-2 lists customer 73's refunds"):
            s.check(rid in ids_of(r2), "owner-2 list: its refund listed", ids_of(r2))
    for tok, owners in ((TOK1, "1"), (TOK2, "2")):
        n = sql_one("SELECT COUNT(*) FROM refunds f JOIN customers c ON c.id = f.customer_id"
                    " WHERE c.contract_owner_id IN (%s)" % owners)
        r = get("/v1/refunds?page=1&pageSize=1000&sort=id:desc", tok)
        if s.status(r, 200, "owner-%s refunds list" % owners):
            s.eq(r.header("X-Total-Count"), n, "owner-%s refunds list counts only its own" % owners)
            own = {int(x[0]) for x in sql("SELECT id FROM customers WHERE contract_owner_id IN (%s)"
                                          % owners)}
            s.eq([x["id"] for x in r.json if x.get("customerId") not in own], [],
                 "owner-%s refunds list: only its customers" % owners)


def test_concurrent_refunds(s):
    """10 threads each refund 30% of a paid invoice at once: exactly 3 succeed."""
    setup_providers()
    cid = 47
    for rnd, (kind, method, status) in enumerate(((1, "CHEQUE", "MANUALLY_REFUNDED"),
                                                  (2, "BACS", "MANUALLY_REFUNDED"),
                                                  (1, "GO_CARDLESS", "PENDING_SUBMISSION"),
                                                  (1, unserved_method(1), "PENDING_SUBMISSION"))):
        if method is None:
            continue
        iid = add_invoice(cid, kind, 10000)
        s.status(pay(kind, iid, "100.00", method if method != "CHEQUE" else "BACS",
                     "CONFIRMED" if method in INTEGRATED else None),
                 201, "round %d: pay 100.00" % rnd)
        before = snapshot(cid, kind, iid)
        barrier = threading.Barrier(10)
        out = [None] * 10

        def worker(i):
            barrier.wait()
            out[i] = refund(kind, iid, "30.00", method, "e2e-rf conc %s %d %d" % (RUN, rnd, i))

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        tag = "round %d (%s invoice %d, %s)" % (rnd, BRT[kind], iid, method)
        statuses = sorted(r.status for r in out)
        s.eq(statuses, [201] * 3 + [409] * 7, tag + ": exactly 3 x 201 and 7 x 409")
        s.eq([r.json.get("code") if r.json else r.raw[:80] for r in out if r.status == 409
              and (r.json or {}).get("code") != "CONFLICT"], [], tag + ": every 409 is CONFLICT")
        ok = [r for r in out if r.status == 201]
        s.eq({r.json.get("thirdPartyRefundStatus") for r in ok}, {status} if ok else set(),
             tag + ": status of the accepted refunds")
        after = inv(kind, iid)
        settled = status != "PENDING_SUBMISSION"
        s.eq((after["paid"], after["refunded"] - before["inv"]["refunded"],
              after["pending"] - before["inv"]["pending"]),
             (10000, 3000 * len(ok), 0 if settled else 3000 * len(ok)),
             tag + ": refunded grew by the accepted refunds only")
        s.check(after["refunded"] <= after["paid"], tag + ": refunded <= paid", after)
        s.eq(after["status"], derived(after), tag + ": derived payment status")
        s.eq(refund_count(kind, iid) - before["refunds"], len(ok), tag + ": one refund row per 201")
        rows = ledger_since(cid, before["max_ledger"])
        s.eq(sorted((x["txn"], x["amount"]) for x in rows),
             [("REFUND", -3000)] * len(ok) if settled else [], tag + ": ledger rows")
        s.eq(balance(cid) - before["balance"], -3000 * len(ok) if settled else 0,
             tag + ": balance change")
        rejected = ["e2e-rf conc %s %d %d" % (RUN, rnd, i) for i in range(10) if out[i].status != 201]
        if rejected:
            s.eq(sql_one("SELECT COUNT(*) FROM refunds WHERE description IN (%s)"
                         % ",".join("'%s'" % d for d in rejected)), "0",
                 tag + ": rejected refunds left no rows")
    s.eq(ledger_sum(cid), balance(cid), "customer %d: balance = sum of ledger amounts" % cid)


Suite().run([
    test_manual_refunds,
    test_amount_limits_and_validation,
    test_method_selection,
    test_integrated_methods,
    test_list_and_tenancy,
    test_concurrent_refunds,
])
