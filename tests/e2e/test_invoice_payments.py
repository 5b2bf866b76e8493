"""End-to-end tests of /v1/invoice-payments and /v1/adhoc-invoice-payments
(spec 4.5, 2 status groups, 3 ledger and derived invoice payment status).

Customers used (nobody else touches them): 41 (response shape, get by id,
the order of a customer payment on a date tie),
42 (list filters, customer payment events), 43 (status groups: money,
ledger, balance), 44 (derived payment status, negative corrections),
45 (validation, amount limits), 71 and 72 (EUR, tenancy), 79 (JPY; shared
with test_money_property.py, which only checks invariants that hold for
any invoices; 80 belongs to test_credit_status.py and test_payment_links.py).
Every test raises its own fresh invoices straight in the database (the way
the loader does: invoice + INVOICE_CREATED ledger row + balance) and
computes every expectation from the state read first, so the file passes
when run again on the same stack.
"""
import datetime
import json
import re
import uuid

from paytest import *

TOK = token()                         # contract owners 1 and 2
TOK1 = token(owners="1")              # owner 1 only
TOK2 = token(owners="2")              # owner 2 only
TOK3 = token(owners="1,2,3")          # also owner 3 (JPY customers)
RUN = uuid.uuid4().hex[:10]           # marks this run's descriptions

EVENT_FIELDS = ["id", None, "thirdPartyPaymentStatus", "amountInMajorCurrency",
                "currencyId", "description", "metaData", "errorInfo", "paymentMethod",
                "paymentDate", "customerPaymentType", "customerPaymentId"]
KINDS = {
    1: dict(path="/v1/invoice-payments", idf="generatedInvoiceId", brf="billRunId",
            cpt="INVOICE", brt="NORMAL"),
    2: dict(path="/v1/adhoc-invoice-payments", idf="generatedAdhocInvoiceId",
            brf="adhocBillRunId", cpt="ADHOC_INVOICE", brt="ADHOC"),
}


def fields_of(kind):
    return {f if f else KINDS[kind]["idf"] for f in EVENT_FIELDS}


# ---------------------------------------------------------------- helpers

def today():
    return datetime.datetime.now(datetime.timezone.utc).date().isoformat()


def dumps(obj):
    """JSON text with Decimal written as the plain number it is (never a float)."""
    if isinstance(obj, Decimal):
        return format(obj, "f")
    if isinstance(obj, dict):
        return "{" + ",".join(json.dumps(k) + ":" + dumps(v) for k, v in obj.items()) + "}"
    if isinstance(obj, (list, tuple)):
        return "[" + ",".join(dumps(v) for v in obj) + "]"
    return json.dumps(obj)


def major(minor, digits=2):
    return Decimal(int(minor)).scaleb(-digits)


def money_text(resp, field, text):
    """The raw JSON carries field with exactly this number spelling."""
    return re.search(r'"%s"\s*:\s*%s\s*[,}]' % (re.escape(field), re.escape(text)),
                     resp.raw) is not None


def tok_for(cid):
    return TOK3 if cid in (39, 40, 79, 80) else TOK


def add_invoice(cid, kind, amount_minor, bill_run=None, auto=0, prefix="E2E-IP"):
    """Raises an invoice straight in the database, the way the loader does (the
    invoice, its (ADHOC_)INVOICE_CREATED ledger row and the new balance in one
    transaction with the customer row locked). Returns its id."""
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
                              brt=brt, br=bill_run or br, auto=auto))
    return int(rows[-1][0])


def inv(kind, iid):
    r = sql("SELECT amount, paid, refunded, refund_pending, payment_status,"
            " COALESCE(third_party_status, '<null>'), customer_id, bill_run_id"
            " FROM invoices WHERE kind = %d AND id = %d" % (kind, iid))[0]
    return dict(amount=int(r[0]), paid=int(r[1]), refunded=int(r[2]), pending=int(r[3]),
                status=r[4], tp=r[5], customer=int(r[6]), bill_run=int(r[7]))


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


def event_count(kind, iid):
    return int(sql_one("SELECT COUNT(*) FROM invoice_payments WHERE invoice_kind = %d"
                       " AND invoice_id = %d" % (kind, iid)))


def rows_with(description):
    """Rows anywhere that carry this description (a per-request marker)."""
    q = description.replace("'", "''")
    return int(sql_one("SELECT (SELECT COUNT(*) FROM invoice_payments WHERE description = '%s')"
                       " + (SELECT COUNT(*) FROM ledger WHERE description = '%s')" % (q, q)))


def post_event(kind, iid, amount, method="BACS", status=None, description=None, tok=None,
               cid=None, extra=None):
    body = {KINDS[kind]["idf"]: iid, "amountInMajorCurrency": amount,
            "description": description or "e2e-ip %s" % RUN, "paymentMethod": method}
    if status is not None:
        body["thirdPartyPaymentStatus"] = status
    body.update(extra or {})
    return post(KINDS[kind]["path"], raw=dumps(body), tok=tok or tok_for(cid or 0))


def listing(kind, query, tok=TOK):
    return get("%s?page=1&pageSize=1000&%s" % (KINDS[kind]["path"], query), tok)


def ids_of(resp):
    return [x.get("id") for x in resp.json] if isinstance(resp.json, list) else resp.raw[:200]


def snapshot(cid, kind, iid):
    return dict(inv=inv(kind, iid), balance=balance(cid), max_ledger=max_ledger(cid),
                events=event_count(kind, iid))


def unchanged(s, cid, kind, iid, before, what):
    """Nothing moved: invoice, balance, ledger, events as before."""
    after = snapshot(cid, kind, iid)
    s.eq(after["inv"], before["inv"], what + ": invoice unchanged")
    s.eq(after["balance"], before["balance"], what + ": balance unchanged")
    s.eq(after["max_ledger"], before["max_ledger"], what + ": no ledger row")
    s.eq(after["events"], before["events"], what + ": no event recorded")


# ---------------------------------------------------------------- tests

def test_create_and_get(s):
    cid = 41
    for kind in (1, 2):
        k = KINDS[kind]
        iid = add_invoice(cid, kind, 10000)
        before = snapshot(cid, kind, iid)
        desc = "e2e-ip shape %s %d" % (RUN, kind)
        r = post_event(kind, iid, Decimal("10.5"), "BACS", description=desc, cid=cid)
        what = "POST %s (invoice %d, 10.5, BACS, no status)" % (k["path"], iid)
        if not s.status(r, 201, what):
            continue
        j = r.json
        s.eq(r.header("Content-Type"), "application/json; charset=utf-8", what + ": content type")
        s.eq(set(j.keys()), fields_of(kind), what + ": exactly the InvoicePayment fields")
        eid = j.get("id")
        s.eq(r.header("Location"), "%s/%s" % (k["path"], eid), what + ": Location")
        s.eq(j.get(k["idf"]), iid, what + ": " + k["idf"])
        s.eq(j.get("thirdPartyPaymentStatus"), None, what + ": thirdPartyPaymentStatus null")
        s.eq(j.get("amountInMajorCurrency"), Decimal("10.50"), what + ": amount")
        s.check(money_text(r, "amountInMajorCurrency", "10.50"),
                what + ": amount written with 2 decimals", r.raw[:300])
        s.eq(j.get("currencyId"), 1, what + ": currencyId GBP")
        s.eq(j.get("description"), desc, what + ": description")
        s.eq((j.get("metaData"), j.get("errorInfo")), (None, None),
             what + ": metaData and errorInfo null")
        s.eq(j.get("paymentMethod"), "BACS", what + ": paymentMethod")
        s.eq(j.get("paymentDate"), today(), what + ": paymentDate today (UTC)")
        s.eq(j.get("customerPaymentType"), k["cpt"], what + ": customerPaymentType")
        s.eq(j.get("customerPaymentId"), None, what + ": customerPaymentId null")
        after = inv(kind, iid)
        s.eq(after["paid"], before["inv"]["paid"] + 1050, what + ": invoice paid grew by 10.50")
        s.eq(after["status"], "PARTIALLY_PAID", what + ": invoice PARTIALLY_PAID")
        rows = ledger_since(cid, before["max_ledger"])
        s.eq([(x["txn"], x["cpt"], x["amount"], x["kind"], x["invoice"], x["brt"], x["method"],
               x["description"]) for x in rows],
             [("PAYMENT", k["cpt"], 1050, kind, iid, k["brt"], "BACS", desc)],
             what + ": one PAYMENT ledger row")
        s.eq(balance(cid), before["balance"] + 1050, what + ": balance grew by 10.50")
        if rows:
            s.eq(sql_one("SELECT ledger_id FROM invoice_payments WHERE id = %d" % eid),
                 str(rows[0]["id"]), what + ": the event points at its ledger row")

        g = get(r.header("Location") or "%s/%s" % (k["path"], eid), TOK)
        if s.status(g, 200, "GET %s/%s" % (k["path"], eid)):
            s.eq(g.json, j, "GET %s/%s: same object as the create" % (k["path"], eid))
        g = get("%s/%s?fields=id,description" % (k["path"], eid), TOK)
        if s.status(g, 200, "GET %s/%s?fields=id,description" % (k["path"], eid)):
            s.eq(g.json, {"id": eid, "description": desc}, "GET with fields: only those keys")
        other = KINDS[3 - kind]["path"]
        s.error(get("%s/%s" % (other, eid), TOK), 404, "NOT_FOUND",
                "GET %s/%s (an event of the other kind)" % (other, eid))
    top = int(sql_one("SELECT COALESCE(MAX(id), 0) FROM invoice_payments"))
    for kind in (1, 2):
        p = KINDS[kind]["path"]
        s.error(get("%s/%d" % (p, top + 1000000), TOK), 404, "NOT_FOUND", "GET %s unknown id" % p)
        pname = "invoice_payment_id" if kind == 1 else "adhoc_invoice_payment_id"
        for bad in ("abc", "0", "-1", "1.5"):
            s.error(get("%s/%s" % (p, bad), TOK), 400, "INVALID_PARAMETER",
                    "GET %s/%s (bad id)" % (p, bad), field=pname)


def test_customer_payment_order_on_a_date_tie(s):
    # A customer payment pays open invoices oldest invoice date first, then
    # lowest id (spec 4.8). Two ADHOC invoices raised today tie on the date
    # (today is the newest date there is): the lower id is paid in full
    # before the higher id gets the rest. Checked through the events the
    # payment created, as the adhoc-invoice-payments list shows them.
    cid, kind = 41, 2
    low = add_invoice(cid, kind, 1000, prefix="E2E-IP-TIE")
    high = add_invoice(cid, kind, 2000, prefix="E2E-IP-TIE")
    s.check(low < high, "tie: invoices raised in id order", (low, high))
    older = sum(int(x[0]) for x in sql(
        "SELECT amount - paid FROM invoices WHERE customer_id = %d AND kind = %d"
        " AND is_open = 1 AND id NOT IN (%d, %d)" % (cid, kind, low, high)))
    before = balance(cid)
    pay = post("/v1/customer-payments", raw=dumps({
        "customerId": cid, "amountInMajorCurrency": major(older + 1500), "type": "BACS",
        "description": "e2e-ip tie " + RUN, "billRunType": "ADHOC"}), tok=TOK)
    if not s.status(pay, 200, "tie: POST customer-payments ADHOC %s" % major(older + 1500)):
        return
    lid = pay.json["id"]
    r = listing(kind, "customerPaymentId=%d" % lid)
    if s.status(r, 200, "tie: adhoc-invoice-payments ?customerPaymentId=%d" % lid):
        got = [(x.get("generatedAdhocInvoiceId"), x.get("amountInMajorCurrency")) for x in r.json]
        s.eq(got[-2:], [(low, Decimal("10.00")), (high, Decimal("5.00"))],
             "tie on today's date: lower id %d paid in full first, then 5.00 on %d" % (low, high))
        s.eq(sum((a for _, a in got), Decimal(0)), major(older + 1500),
             "tie: the events add up to the payment")
    s.eq((inv(kind, low)["paid"], inv(kind, low)["status"]), (1000, "PAID"),
         "tie: the lower id is PAID")
    s.eq((inv(kind, high)["paid"], inv(kind, high)["status"]), (500, "PARTIALLY_PAID"),
         "tie: the higher id is PARTIALLY_PAID")
    s.eq(balance(cid), before + older + 1500, "tie: the balance moved by the payment")
    s.eq(ledger_sum(cid), balance(cid), "tie: balance = sum of ledger amounts")


def test_list_filters(s):
    cid = 42
    fresh = add_invoice(cid, 1, 5000)              # bill run 1 (OPEN)
    fixture_inv = (cid - 1) * 3 + 1                # bill run 2 (CLOSED)
    adhoc = add_invoice(cid, 2, 2500)              # bill run 3
    desc = "e2e-ip list %s" % RUN
    made = {}
    for kind, iid, amounts in ((1, fresh, ["3.00", "1.25", "7.50"]), (1, fixture_inv, ["0.10"]),
                               (2, adhoc, ["2.00", "4.00"])):
        for a in amounts:
            r = post_event(kind, iid, Decimal(a), "CREDIT_CARD", description=desc, cid=cid)
            if s.status(r, 201, "POST event %s on invoice %d/%d" % (a, kind, iid)):
                made.setdefault((kind, iid), []).append(r.json["id"])

    def want(kind, iid):
        return [int(x[0]) for x in sql("SELECT id FROM invoice_payments WHERE invoice_kind = %d"
                                       " AND invoice_id = %d ORDER BY id" % (kind, iid))]

    # generatedInvoiceId / generatedAdhocInvoiceId
    r = listing(1, "generatedInvoiceId=%d" % fresh)
    if s.status(r, 200, "list ?generatedInvoiceId=%d" % fresh):
        s.eq(ids_of(r), made.get((1, fresh)), "generatedInvoiceId: exactly its events, by id")
        s.eq(r.header("X-Total-Count"), "3", "generatedInvoiceId: X-Total-Count")
        s.check(all(x.get("generatedInvoiceId") == fresh and set(x) == fields_of(1)
                    for x in r.json), "generatedInvoiceId: items are its events", r.raw[:300])
    r = listing(2, "generatedAdhocInvoiceId=%d" % adhoc)
    if s.status(r, 200, "adhoc list ?generatedAdhocInvoiceId=%d" % adhoc):
        s.eq(ids_of(r), made.get((2, adhoc)), "generatedAdhocInvoiceId: exactly its events")
        s.check(all(set(x) == fields_of(2) for x in r.json),
                "adhoc list items carry generatedAdhocInvoiceId fields", r.raw[:300])
    # The id spaces of the two kinds are separate: normal list never shows adhoc events.
    r = listing(1, "generatedInvoiceId=%d" % adhoc)
    if s.status(r, 200, "list ?generatedInvoiceId=<adhoc invoice id %d>" % adhoc):
        s.eq(ids_of(r), want(1, adhoc), "normal list with an adhoc invoice's id: only normal events")
        s.check(not set(ids_of(r)) & set(made.get((2, adhoc), [])),
                "normal list never contains adhoc events", ids_of(r))

    # billRunId / adhocBillRunId (string filter)
    for q, exp in (("billRunId=1&generatedInvoiceId=%d" % fresh, made.get((1, fresh))),
                   ("billRunId=2&generatedInvoiceId=%d" % fresh, []),
                   ("billRunId=in:2,1&generatedInvoiceId=%d" % fresh, made.get((1, fresh))),
                   ("billRunId=in:3,4&generatedInvoiceId=%d" % fresh, []),
                   ("billRunId=2&generatedInvoiceId=%d" % fixture_inv, want(1, fixture_inv)),
                   ("billRunId=1&generatedInvoiceId=%d" % fixture_inv, []),
                   ("billRunId=nope&generatedInvoiceId=%d" % fresh, [])):
        r = listing(1, q)
        if s.status(r, 200, "list ?" + q):
            s.eq(ids_of(r), exp, "list ?" + q)
    for q, exp in (("adhocBillRunId=3&generatedAdhocInvoiceId=%d" % adhoc, made.get((2, adhoc))),
                   ("adhocBillRunId=1&generatedAdhocInvoiceId=%d" % adhoc, [])):
        r = listing(2, q)
        if s.status(r, 200, "adhoc list ?" + q):
            s.eq(ids_of(r), exp, "adhoc list ?" + q)
    # The bill run filter alone: count = the events of owners 1 and 2 in bill run 1.
    n = sql_one("SELECT COUNT(*) FROM invoice_payments p JOIN invoices i ON i.kind = p.invoice_kind"
                " AND i.id = p.invoice_id JOIN customers c ON c.id = p.customer_id"
                " WHERE p.invoice_kind = 1 AND i.bill_run_id = 1 AND c.contract_owner_id IN (1, 2)")
    r = get("/v1/invoice-payments?page=1&pageSize=1000&billRunId=1&sort=id:desc", TOK)
    if s.status(r, 200, "list ?billRunId=1"):
        s.eq(r.header("X-Total-Count"), n, "billRunId=1: X-Total-Count = events in bill run 1")
        in_run = {int(x[0]) for x in sql("SELECT id FROM invoices WHERE kind = 1 AND bill_run_id = 1")}
        s.eq([x["id"] for x in r.json if x.get("generatedInvoiceId") not in in_run], [],
             "billRunId=1: every item is on an invoice of bill run 1")
        s.check(set(made.get((1, fresh), [])) <= set(ids_of(r)),
                "billRunId=1: this run's events are listed", ids_of(r)[:10])

    # customerPaymentId / customerPaymentType: a customer payment of exactly what is
    # outstanding on the customer's open normal invoices creates one CUSTOMER event each.
    for kind, brt in ((1, "NORMAL"), (2, "ADHOC")):
        open_inv = [(int(x[0]), int(x[1])) for x in sql(
            "SELECT id, amount - paid FROM invoices WHERE customer_id = %d AND kind = %d"
            " AND paid < amount ORDER BY invoice_date, id" % (cid, kind))]
        total = sum(o for _, o in open_inv)
        pay = post("/v1/customer-payments", raw=dumps({
            "customerId": cid, "amountInMajorCurrency": major(total), "type": "BACS",
            "description": desc + " cp", "billRunType": brt}), tok=TOK)
        if not s.status(pay, 200, "POST customer-payments %s %s (customer %d)"
                        % (brt, major(total), cid)):
            continue
        lid = pay.json["id"]
        rows = [(int(x[0]), int(x[1]), int(x[2])) for x in sql(
            "SELECT id, invoice_id, amount FROM invoice_payments WHERE customer_payment_id = %d"
            " ORDER BY id" % lid)]
        s.eq([(i, a) for _, i, a in rows], open_inv,
             "%s customer payment: one event per open invoice, of its outstanding amount" % brt)
        r = listing(kind, "customerPaymentId=%d" % lid)
        if s.status(r, 200, "%s list ?customerPaymentId=%d" % (KINDS[kind]["path"], lid)):
            s.eq(ids_of(r), [x[0] for x in rows], "customerPaymentId: exactly its events")
            s.eq([(x.get("customerPaymentType"), x.get("customerPaymentId"), x.get("paymentMethod"))
                  for x in r.json if (x.get("customerPaymentType"), x.get("customerPaymentId"),
                                      x.get("paymentMethod")) != ("CUSTOMER", lid, "BACS")], [],
                 "customerPaymentId: every event is CUSTOMER with that payment's id and method")
            s.eq(sum((x["amountInMajorCurrency"] for x in r.json), Decimal(0)), major(total),
                 "customerPaymentId: the events add up to the payment")
        r = listing(3 - kind, "customerPaymentId=%d" % lid)
        if s.status(r, 200, "other kind's list ?customerPaymentId=%d" % lid):
            s.eq(ids_of(r), [], "customerPaymentId on the other kind's list: nothing")
        target = fresh if kind == 1 else adhoc
        for q, pred in (("customerPaymentType=CUSTOMER", lambda t: t == "CUSTOMER"),
                        ("customerPaymentType=%s" % KINDS[kind]["cpt"],
                         lambda t: t == KINDS[kind]["cpt"]),
                        ("customerPaymentType=in:CUSTOMER,%s" % KINDS[kind]["cpt"], lambda t: True),
                        ("customerPaymentType=like:USTOM", lambda t: t == "CUSTOMER"),
                        # like is case-insensitive (spec 1.4)
                        ("customerPaymentType=like:custom", lambda t: t == "CUSTOMER"),
                        ("customerPaymentType=REFUND", lambda t: False)):
            exp = [int(x[0]) for x in sql("SELECT id, customer_payment_type FROM invoice_payments"
                                          " WHERE invoice_kind = %d AND invoice_id = %d ORDER BY id"
                                          % (kind, target)) if pred(x[1])]
            qq = "%s&%s=%d" % (q, KINDS[kind]["idf"], target)
            r = listing(kind, qq)
            if s.status(r, 200, "list ?" + qq):
                s.eq(ids_of(r), exp, "list ?" + qq)
        s.check(any(True for _ in rows), "%s customer payment touched at least one invoice" % brt)

    # sort and fields
    r = listing(1, "generatedInvoiceId=%d&sort=amountInMajorCurrency:desc"
                   "&fields=id,amountInMajorCurrency" % fresh)
    if s.status(r, 200, "list sort=amountInMajorCurrency:desc&fields=id,amountInMajorCurrency"):
        s.check(all(set(x) == {"id", "amountInMajorCurrency"} for x in r.json),
                "fields: only id and amountInMajorCurrency", r.raw[:200])
        s.eq([x.get("id") for x in r.json],
             [x["id"] for x in sorted(r.json, key=lambda x: (-x["amountInMajorCurrency"], x["id"]))],
             "sort: amount descending")
        s.eq(len(r.json), event_count(1, fresh), "sort/fields: every event of the invoice")
    r = listing(1, "generatedInvoiceId=%d&sort=customerPaymentType,id:desc&fields=id,customerPaymentType"
                % fresh)
    if s.status(r, 200, "list sort=customerPaymentType,id:desc"):
        s.eq([x.get("id") for x in r.json],
             [x["id"] for x in sorted(sorted(r.json, key=lambda x: -x["id"]),
                                      key=lambda x: x["customerPaymentType"])],
             "sort: customerPaymentType ascending then id descending")
    for q, field in (("sort=bogus", "sort"), ("fields=id,bogus", "fields"),
                     ("customerPaymentId=abc", "customerPaymentId"),
                     ("customerPaymentId=0", "customerPaymentId"),
                     ("generatedInvoiceId=-3", "generatedInvoiceId")):
        s.error(listing(1, q), 400, "INVALID_PARAMETER", "list ?" + q, field=field)
    s.error(listing(2, "billRunId=3"), 400, "UNKNOWN_PARAMETER",
            "adhoc list ?billRunId (the adhoc filter is adhocBillRunId)", field="billRunId")
    s.error(listing(1, "adhocBillRunId=3"), 400, "UNKNOWN_PARAMETER",
            "normal list ?adhocBillRunId", field="adhocBillRunId")
    s.error(listing(2, "generatedInvoiceId=%d" % adhoc), 400, "UNKNOWN_PARAMETER",
            "adhoc list ?generatedInvoiceId", field="generatedInvoiceId")


def test_status_groups(s):
    """Each status group's effect on the invoice, the ledger and the balance
    (COLLECTION.md 2-3): an integrated method's provider status reports on the
    invoice's attempt of that method and amount; money moves only when that
    attempt changes group, once."""
    cid = 43
    for kind in (1, 2):
        k = KINDS[kind]
        iid = add_invoice(cid, kind, 10000)
        U = None                              # third-party status unchanged
        steps = [
            # status, method, amount, expected paid change, ledger txn, tp after
            (None, "BACS", "10.00", 1000, "PAYMENT", U),
            ("CONFIRMED", "GO_CARDLESS", "5.00", 500, "PAYMENT", "CONFIRMED"),
            # The same payment paid out: the attempt moves, no money (issue 13).
            ("PAID_OUT", "GO_CARDLESS", "5.00", 0, None, "PAID_OUT"),
            # A late CONFIRMED ranks below PAID_OUT: recorded, nothing moves.
            ("CONFIRMED", "GO_CARDLESS", "5.00", 0, None, U),
            # Another amount is another payment.
            ("PAID_OUT", "GO_CARDLESS", "4.00", 400, "PAYMENT", "PAID_OUT"),
            ("MANUALLY_PAID", "CHEQUE", "3.00", 300, "PAYMENT", "MANUALLY_PAID"),
            ("CHARGEBACK_CANCELLED", "STRIPE", "2.00", 200, "PAYMENT", "CHARGEBACK_CANCELLED"),
            # The 5.00 payment charged back: taken back once; a duplicate does nothing.
            ("CHARGED_BACK", "GO_CARDLESS", "5.00", -500, "PAYMENT_REVERSED", "CHARGED_BACK"),
            ("CHARGED_BACK", "GO_CARDLESS", "5.00", 0, None, U),
            # The chargeback cancelled: applied again.
            ("CHARGEBACK_CANCELLED", "GO_CARDLESS", "5.00", 500, "PAYMENT", "CHARGEBACK_CANCELLED"),
            # A reversal of a payment never collected here: nothing to take back.
            ("LATE_FAILURE_SETTLED", "STRIPE", "1.25", 0, None, "LATE_FAILURE_SETTLED"),
            ("CHARGEBACK_SETTLED", "FINASTRA", "0.75", 0, None, "CHARGEBACK_SETTLED"),
            ("SUBMITTED", "GO_CARDLESS", "50.00", 0, None, "SUBMITTED"),
            ("PENDING_SUBMISSION", "GO_CARDLESS", "50.00", 0, None, U),  # ranks below SUBMITTED
            ("FAILED", "GO_CARDLESS", "50.00", 0, None, "FAILED"),
            ("CANCELLED", "STRIPE", "50.00", 0, None, "CANCELLED"),
            # Informational: recorded, never moving an attempt.
            ("SURCHARGE_FEE_DEBITED", "GO_CARDLESS", "1.00", 0, None, U),
            ("SURCHARGE_FEE_CREDITED", "GO_CARDLESS", "1.00", 0, None, U),
            ("REFUNDED", "GO_CARDLESS", "1.00", 0, None, U),
            (None, "OTHER", "-2.00", -200, "PAYMENT", U),        # negative correction
            ("CONFIRMED", "PAYPAL", "-1.00", -100, "PAYMENT", "CONFIRMED"),  # a correction too
        ]
        for status, method, amount, delta, txn, tp in steps:
            before = snapshot(cid, kind, iid)
            desc = "e2e-ip grp %s %s %s %s" % (RUN, kind, status, amount)
            r = post_event(kind, iid, Decimal(amount), method, status, desc, cid=cid)
            what = "%s %s %s %s on invoice %d" % (k["path"], status or "(no status)", method,
                                                   amount, iid)
            if not s.status(r, 201, what):
                continue
            s.eq(r.json.get("thirdPartyPaymentStatus"), status, what + ": status echoed")
            s.eq(r.json.get("amountInMajorCurrency"), Decimal(amount), what + ": amount echoed")
            after = inv(kind, iid)
            s.eq(after["paid"] - before["inv"]["paid"], delta, what + ": invoice paid change")
            s.eq(after["tp"], tp or before["inv"]["tp"],
                 what + ": invoice third-party status (the attempt's)")
            s.eq(balance(cid) - before["balance"], delta, what + ": balance change")
            rows = ledger_since(cid, before["max_ledger"])
            exp_rows = [(txn, k["cpt"], delta, kind, iid, k["brt"], method)] if txn else []
            s.eq([(x["txn"], x["cpt"], x["amount"], x["kind"], x["invoice"], x["brt"], x["method"])
                  for x in rows], exp_rows, what + ": ledger rows")
            led = sql_one("SELECT COALESCE(ledger_id, 0) FROM invoice_payments WHERE id = %d"
                          % r.json["id"])
            s.eq(led, str(rows[0]["id"]) if rows and txn else "0",
                 what + ": event's ledger_id is its ledger row (none when no money moves)")
            s.eq(event_count(kind, iid), before["events"] + 1, what + ": one event recorded")
            s.eq(after["status"], "PARTIALLY_PAID" if 0 < after["paid"] < after["amount"] else
                 "PAID" if after["paid"] >= after["amount"] else "?",
                 what + ": derived payment status")
        s.eq(ledger_sum(cid), balance(cid), "customer %d: balance = sum of ledger amounts" % cid)

    # The case: CONFIRMED then PAID_OUT of one 80.50 payment credits it once.
    iid = add_invoice(cid, 1, 8050)
    before = snapshot(cid, 1, iid)
    for st in ("CONFIRMED", "PAID_OUT", "CONFIRMED", "PAID_OUT"):
        s.status(post_event(1, iid, Decimal("80.50"), "GO_CARDLESS", st, cid=cid), 201,
                 "80.50 GO_CARDLESS %s" % st)
    after = inv(1, iid)
    s.eq((after["paid"], after["tp"], after["status"]), (8050, "PAID_OUT", "PAID"),
         "CONFIRMED, PAID_OUT and replays of one 80.50 payment: paid once")
    s.eq(balance(cid) - before["balance"], 8050, "80.50 payment: balance +80.50 once")
    r = post("/v1/refunds", raw=dumps({"invoiceId": iid, "billRunType": "NORMAL",
                                       "amountInMajorCurrency": Decimal("100.00"),
                                       "paymentMethod": "CHEQUE"}), tok=TOK)
    s.error(r, 409, "CONFLICT", "refund 100.00 of an 80.50 payment", field="amountInMajorCurrency")

    # thirdPartyPaymentReference names the attempt: two payments of one amount.
    iid = add_invoice(cid, 1, 2000)
    for ref, st, paid in (("e2e-ref-a-" + RUN, "CONFIRMED", 1000),
                          ("e2e-ref-b-" + RUN, "CONFIRMED", 2000),
                          ("e2e-ref-a-" + RUN, "PAID_OUT", 2000),
                          ("e2e-ref-b-" + RUN, "CHARGED_BACK", 1000)):
        r = post_event(1, iid, Decimal("10.00"), "GO_CARDLESS", st, cid=cid,
                       extra={"thirdPartyPaymentReference": ref})
        if s.status(r, 201, "10.00 %s with reference %s" % (st, ref)):
            s.eq(inv(1, iid)["paid"], paid, "reference %s %s: paid %d" % (ref, st, paid))
    r = post_event(1, iid, Decimal("9.00"), "GO_CARDLESS", "PAID_OUT", cid=cid,
                   extra={"thirdPartyPaymentReference": "e2e-ref-a-" + RUN})
    s.error(r, 409, "CONFLICT", "a reference with another amount",
            field="thirdPartyPaymentReference")
    r = post_event(1, iid, Decimal("9.00"), "BACS", None, cid=cid,
                   extra={"thirdPartyPaymentReference": "e2e-ref-c-" + RUN})
    s.error(r, 400, "INVALID_FIELD", "a reference on a manual payment",
            field="thirdPartyPaymentReference")

    # A chargeback of a payment never collected here moves nothing; the
    # collected one is taken back.
    iid = add_invoice(cid, 1, 2000)
    r = post_event(1, iid, Decimal("5.00"), "GO_CARDLESS", "CONFIRMED", cid=cid)
    s.status(r, 201, "CONFIRMED 5.00 on a fresh invoice")
    before = snapshot(cid, 1, iid)
    r = post_event(1, iid, Decimal("5.01"), "GO_CARDLESS", "CHARGED_BACK", cid=cid)
    if s.status(r, 201, "CHARGED_BACK 5.01 (no such collected payment)"):
        s.eq((inv(1, iid)["paid"], balance(cid)), (before["inv"]["paid"], before["balance"]),
             "CHARGED_BACK 5.01: nothing taken back")
    r = post_event(1, iid, Decimal("5.00"), "GO_CARDLESS", "CHARGED_BACK", cid=cid)
    if s.status(r, 201, "CHARGED_BACK 5.00 when 5.00 is paid"):
        after = inv(1, iid)
        s.eq((after["paid"], after["tp"], after["status"]), (0, "CHARGED_BACK", "UNPAID"),
             "all paid charged back: paid 0, UNPAID")


def test_derived_status_and_corrections(s):
    cid = 44
    iid = add_invoice(cid, 1, 4000)
    s.eq(inv(1, iid)["status"], "UNPAID", "fresh invoice: UNPAID")
    seq = [
        # status, method, amount, paid after, third-party status after, derived status
        ("SUBMITTED", "GO_CARDLESS", "40.00", 0, "SUBMITTED", "PENDING"),
        ("FAILED", "GO_CARDLESS", "40.00", 0, "FAILED", "UNPAID"),
        ("RESUBMISSION_REQUESTED", "GO_CARDLESS", "40.00", 0, "RESUBMISSION_REQUESTED", "PENDING"),
        ("CONFIRMED", "GO_CARDLESS", "15.00", 1500, "CONFIRMED", "PARTIALLY_PAID"),
        ("SUBMITTED", "GO_CARDLESS", "25.00", 1500, "SUBMITTED", "PARTIALLY_PAID"),
        ("CONFIRMED", "GO_CARDLESS", "25.00", 4000, "CONFIRMED", "PAID"),
        (None, "BACS", "0.01", 4001, "CONFIRMED", "PAID"),             # overpaid
        (None, "BACS", "-0.02", 3999, "CONFIRMED", "PARTIALLY_PAID"),  # correction
        (None, "BACS", "-39.99", 0, "CONFIRMED", "UNPAID"),            # down to 0
    ]
    for status, method, amount, paid, tp, derived in seq:
        r = post_event(1, iid, Decimal(amount), method, status, cid=cid)
        what = "%s %s %s" % (status or "(no status)", method, amount)
        if s.status(r, 201, what + " on invoice %d" % iid):
            after = inv(1, iid)
            s.eq((after["paid"], after["tp"], after["status"]), (paid, tp, derived),
                 what + ": (paid, third-party status, payment status)")
            g = get("/v1/invoice-payments/%d" % r.json["id"], TOK)
            s.eq(g.json, r.json, what + ": GET returns the created event")
    before = snapshot(cid, 1, iid)
    r = post_event(1, iid, Decimal("-0.01"), "BACS", cid=cid, description="e2e-ip neg0 " + RUN)
    s.error(r, 409, "CONFLICT", "correction -0.01 with nothing paid", field="amountInMajorCurrency")
    unchanged(s, cid, 1, iid, before, "rejected correction below 0")
    s.eq(rows_with("e2e-ip neg0 " + RUN), 0, "rejected correction below 0: no rows at all")

    # Corrections may go down to what is refunded, not below.
    iid = add_invoice(cid, 1, 3000)
    r = post_event(1, iid, Decimal("20.00"), "CHEQUE", "MANUALLY_PAID", cid=cid)
    s.status(r, 201, "CHEQUE MANUALLY_PAID 20.00")
    r = post("/v1/refunds", raw=dumps({"invoiceId": iid, "billRunType": "NORMAL",
                                       "amountInMajorCurrency": Decimal("5.00"),
                                       "paymentMethod": "CHEQUE", "description": "e2e-ip"}),
             tok=TOK)
    s.status(r, 201, "refund 5.00 CHEQUE")
    before = snapshot(cid, 1, iid)
    s.eq((before["inv"]["paid"], before["inv"]["refunded"], before["inv"]["status"]),
         (2000, 500, "PART_REFUNDED"), "paid 20, refunded 5: PART_REFUNDED")
    r = post_event(1, iid, Decimal("-15.01"), "BACS", cid=cid)
    s.error(r, 409, "CONFLICT", "correction -15.01 would leave paid < refunded",
            field="amountInMajorCurrency")
    unchanged(s, cid, 1, iid, before, "rejected correction below refunded")
    s.status(post_event(1, iid, Decimal("5.00"), "GO_CARDLESS", "CONFIRMED", cid=cid), 201,
             "GO_CARDLESS CONFIRMED 5.00 (paid 25)")
    r = post_event(1, iid, Decimal("5.00"), "GO_CARDLESS", "CHARGEBACK_SETTLED", cid=cid)
    if s.status(r, 201, "CHARGEBACK_SETTLED of that 5.00 (paid 25 -> 20, refunded 5)"):
        s.eq(inv(1, iid)["paid"], 2000, "reversal: paid 20")
    s.status(post_event(1, iid, Decimal("10.00"), "GO_CARDLESS", "CONFIRMED", cid=cid), 201,
             "GO_CARDLESS CONFIRMED 10.00 (paid 30)")
    r = post("/v1/refunds", raw=dumps({"invoiceId": iid, "billRunType": "NORMAL",
                                       "amountInMajorCurrency": Decimal("20.00"),
                                       "paymentMethod": "CHEQUE", "description": "e2e-ip"}),
             tok=TOK)
    s.status(r, 201, "refund 20.00 CHEQUE (refunded 25)")
    before = snapshot(cid, 1, iid)
    r = post_event(1, iid, Decimal("10.00"), "GO_CARDLESS", "CHARGED_BACK", cid=cid)
    s.error(r, 409, "CONFLICT", "chargeback of 10.00 would leave paid 20 < refunded 25",
            field="amountInMajorCurrency")
    unchanged(s, cid, 1, iid, before, "rejected reversal below refunded")
    r = post_event(1, iid, Decimal("-5.00"), "BACS", cid=cid)
    if s.status(r, 201, "correction -5.00 down to exactly the refunded 25.00"):
        after = inv(1, iid)
        s.eq((after["paid"], after["refunded"], after["status"]), (2500, 2500, "REFUNDED"),
             "paid = refunded = 25.00: REFUNDED")
        s.eq(ledger_since(cid, before["max_ledger"])[0]["amount"] if
             ledger_since(cid, before["max_ledger"]) else None, -500,
             "correction: a PAYMENT row of -5.00")
    s.eq(ledger_sum(cid), balance(cid), "customer %d: balance = sum of ledger amounts" % cid)


def test_validation(s):
    cid = 45
    iid = add_invoice(cid, 1, 1000)
    adhoc = add_invoice(cid, 2, 1000)
    n = [0]

    def attempt(kind, body_over, status, code, field, what, tok=TOK, drop=()):
        n[0] += 1
        desc = "e2e-ip bad %s %d" % (RUN, n[0])
        body = {KINDS[kind]["idf"]: iid if kind == 1 else adhoc,
                "amountInMajorCurrency": Decimal("1.00"), "description": desc,
                "paymentMethod": "BACS"}
        body.update(body_over)
        for d in drop:
            body.pop(d, None)
        before = snapshot(cid, kind, iid if kind == 1 else adhoc)
        r = post(KINDS[kind]["path"], raw=dumps(body), tok=tok)
        s.error(r, status, code, what, field=field)
        unchanged(s, cid, kind, iid if kind == 1 else adhoc, before, what)
        s.eq(rows_with(desc), 0, what + ": no rows with its description")

    attempt(1, {"thirdPartyPaymentStatus": "BOGUS"}, 400, "INVALID_FIELD",
            "thirdPartyPaymentStatus", "unknown thirdPartyPaymentStatus")
    for amount, what in (("0", "0"), ("0.00", "0.00"), ("100000.01", "100000.01"),
                         ("-100000.01", "-100000.01"), ("1.001", "3 decimals")):
        attempt(1, {"amountInMajorCurrency": Decimal(amount)}, 400, "INVALID_AMOUNT",
                "amountInMajorCurrency", "amount %s" % what)
    attempt(2, {"amountInMajorCurrency": Decimal("0")}, 400, "INVALID_AMOUNT",
            "amountInMajorCurrency", "adhoc amount 0")
    attempt(1, {"amountInMajorCurrency": "1.00"}, 400, "INVALID_FIELD",
            "amountInMajorCurrency", "amount as a string")
    attempt(1, {}, 400, "MISSING_FIELD", "amountInMajorCurrency", "amount missing",
            drop=("amountInMajorCurrency",))
    attempt(1, {}, 400, "MISSING_FIELD", "description", "description missing",
            drop=("description",))
    attempt(1, {"description": None}, 400, "MISSING_FIELD", "description", "description null")
    attempt(1, {"id": 5}, 400, "UNKNOWN_FIELD", "id", "id with a value")
    attempt(1, {"foo": "x"}, 400, "UNKNOWN_FIELD", "foo", "unknown field with a value")
    attempt(1, {"description": "x" * 256}, 400, "INVALID_FIELD", "description",
            "description 256 characters")
    attempt(1, {}, 400, "MISSING_FIELD", "paymentMethod", "paymentMethod missing",
            drop=("paymentMethod",))
    attempt(1, {"paymentMethod": "BITCOIN"}, 400, "INVALID_FIELD", "paymentMethod",
            "unknown paymentMethod")
    attempt(1, {}, 400, "MISSING_FIELD", "generatedInvoiceId", "generatedInvoiceId missing",
            drop=("generatedInvoiceId",))
    attempt(1, {"generatedInvoiceId": 999999999}, 400, "UNKNOWN_REFERENCE",
            "generatedInvoiceId", "unknown invoice")
    attempt(2, {"generatedAdhocInvoiceId": 999999999}, 400, "UNKNOWN_REFERENCE",
            "generatedAdhocInvoiceId", "unknown adhoc invoice")
    attempt(1, {"generatedAdhocInvoiceId": adhoc}, 400, "UNKNOWN_FIELD",
            "generatedAdhocInvoiceId", "normal endpoint with generatedAdhocInvoiceId")
    attempt(1, {"customerPaymentType": "CUSTOMER"}, 400, "UNKNOWN_FIELD",
            "customerPaymentType", "customerPaymentType is not a create field")
    attempt(1, {"generatedInvoiceId": 0}, 400, "INVALID_FIELD", "generatedInvoiceId",
            "generatedInvoiceId 0")

    # Limits that are accepted: 100000 and -100000; CHEQUE with MANUALLY_PAID.
    for amount, method, status in (("100000", "BACS", None), ("-100000", "BACS", None),
                                   ("0.01", "CHEQUE", "MANUALLY_PAID"),
                                   ("-0.01", "CHEQUE", "MANUALLY_PAID")):
        before = snapshot(cid, 1, iid)
        r = post_event(1, iid, Decimal(amount), method, status, cid=cid)
        what = "amount %s %s %s" % (amount, method, status or "")
        if s.status(r, 201, what):
            s.eq(r.json.get("amountInMajorCurrency"), Decimal(amount), what + ": echoed")
            s.eq(inv(1, iid)["paid"] - before["inv"]["paid"], int(Decimal(amount) * 100),
                 what + ": paid moved by the amount")
            s.eq(balance(cid) - before["balance"], int(Decimal(amount) * 100),
                 what + ": balance moved by the amount")
    s.eq(ledger_sum(cid), balance(cid), "customer %d: balance = sum of ledger amounts" % cid)


def test_manual_with_provider_status(s):
    """The public reference's own request sample: a manual method with a
    provider status, which the reference calls "not applicable for manual
    payments". It is accepted, the payment is applied at once (COLLECTION.md
    3, manual methods), and the status is stored as sent; the invoice's
    third-party status is left alone."""
    cid = 45
    for kind, method, status in ((2, "CHEQUE", "NEW"), (1, "CHEQUE", "CONFIRMED"),
                                 (2, "BACS", "SUBMITTED"), (1, "CHEQUE", "CHARGED_BACK")):
        iid = add_invoice(cid, kind, 5000)
        before = snapshot(cid, kind, iid)
        body = {KINDS[kind]["idf"]: iid, "thirdPartyPaymentStatus": status,
                "amountInMajorCurrency": Decimal("10.5"), "description": "string",
                "paymentMethod": method}
        r = post(KINDS[kind]["path"], raw=dumps(body), tok=TOK)
        what = "%s with %s (kind %d)" % (method, status, kind)
        if not s.status(r, 201, what + ": accepted"):
            continue
        s.eq((r.json.get("thirdPartyPaymentStatus"), r.json.get("paymentMethod"),
              r.json.get("amountInMajorCurrency")), (status, method, Decimal("10.50")),
             what + ": the status is stored as sent")
        after = inv(kind, iid)
        s.eq(after["paid"] - before["inv"]["paid"], 1050, what + ": applied at once (paid +10.50)")
        s.eq((after["status"], after["tp"]), ("PARTIALLY_PAID", before["inv"]["tp"]),
             what + ": invoice partly paid, its third-party status unchanged")
        s.eq(balance(cid) - before["balance"], 1050, what + ": balance +10.50")
        rows = ledger_since(cid, before["max_ledger"])
        s.eq([(x["txn"], x["amount"], x["method"]) for x in rows], [("PAYMENT", 1050, method)],
             what + ": one PAYMENT ledger row")
        g = get("%s/%d" % (KINDS[kind]["path"], r.json["id"]), TOK)
        s.eq((g.json or {}).get("thirdPartyPaymentStatus"), status, what + ": GET shows the status")
    s.eq(ledger_sum(cid), balance(cid), "customer %d: balance = sum of ledger amounts" % cid)


def test_null_and_empty_fields(s):
    """A generated client sends its whole model: "id": null and null optional
    fields mean absent; an empty description is a description (0..255
    characters), not a missing one."""
    cid = 45
    iid = add_invoice(cid, 1, 5000)
    before = snapshot(cid, 1, iid)
    body = {"id": None, "generatedInvoiceId": iid, "amountInMajorCurrency": Decimal("1.25"),
            "description": "", "paymentMethod": "BACS", "thirdPartyPaymentStatus": None,
            "currencyId": None, "metaData": None, "errorInfo": None, "paymentDate": None,
            "customerPaymentType": None, "customerPaymentId": None}
    r = post("/v1/invoice-payments", raw=dumps(body), tok=TOK)
    if s.status(r, 201, "whole model with nulls and an empty description"):
        s.eq((r.json.get("description"), r.json.get("thirdPartyPaymentStatus"),
              r.json.get("customerPaymentType")), ("", None, "INVOICE"),
             "nulls were absent; the empty description is kept")
        s.eq(inv(1, iid)["paid"] - before["inv"]["paid"], 125, "the payment was applied")


def test_currencies(s):
    # EUR customer 72: currencyId 2.
    cid = 72
    iid = add_invoice(cid, 1, 8050)
    r = post_event(1, iid, Decimal("80.5"), "GO_CARDLESS", "PAID_OUT", cid=cid)
    if s.status(r, 201, "EUR invoice payment 80.5 PAID_OUT"):
        s.eq(r.json.get("currencyId"), 2, "EUR event: currencyId 2")
        s.check(money_text(r, "amountInMajorCurrency", "80.50"), "EUR event: 80.50", r.raw[:200])
        s.eq(inv(1, iid)["status"], "PAID", "EUR invoice fully paid: PAID")
    # JPY customer 79: no decimals; needs a token that sees owner 3.
    cid = 79
    iid = add_invoice(cid, 2, 3000)
    before = snapshot(cid, 2, iid)
    r = post_event(2, iid, Decimal("1.5"), "BACS", tok=TOK3)
    s.error(r, 400, "INVALID_AMOUNT", "JPY amount 1.5", field="amountInMajorCurrency")
    r = post_event(2, iid, Decimal("1000"), "BACS", tok=TOK)
    s.error(r, 400, "UNKNOWN_REFERENCE", "JPY invoice with a token of owners 1,2",
            field="generatedAdhocInvoiceId")
    unchanged(s, cid, 2, iid, before, "rejected JPY requests")
    r = post_event(2, iid, Decimal("1000"), "BACS", tok=TOK3)
    if s.status(r, 201, "JPY adhoc payment 1000"):
        s.eq(r.json.get("currencyId"), 3, "JPY event: currencyId 3")
        s.check(money_text(r, "amountInMajorCurrency", "1000"), "JPY amount without decimals",
                r.raw[:200])
        s.eq(inv(2, iid)["paid"], 1000, "JPY invoice paid 1000 (minor = major)")
        s.eq(balance(cid) - before["balance"], 1000, "JPY balance +1000")
    r = post_event(2, iid, Decimal("100001"), "BACS", tok=TOK3)
    s.error(r, 400, "INVALID_AMOUNT", "JPY amount 100001", field="amountInMajorCurrency")
    g = get("/v1/adhoc-invoice-payments?page=1&pageSize=10&generatedAdhocInvoiceId=%d" % iid, TOK)
    if s.status(g, 200, "owners 1,2 list the JPY invoice's events"):
        s.eq(g.json, [], "owner 3 events absent for a token of owners 1,2")


def test_tenancy(s):
    cid = 71                                  # owner 2
    iid = add_invoice(cid, 1, 4000)
    adhoc = add_invoice(cid, 2, 1000)
    before = snapshot(cid, 1, iid)
    r = post_event(1, iid, Decimal("1.00"), "BACS", tok=TOK1, description="e2e-ip ten " + RUN)
    s.error(r, 400, "UNKNOWN_REFERENCE", "owner-1 token posts to customer 71's invoice",
            field="generatedInvoiceId")
    unchanged(s, cid, 1, iid, before, "owner-1 post to owner-2 invoice")
    s.eq(rows_with("e2e-ip ten " + RUN), 0, "owner-1 post to owner-2 invoice: no rows")
    r = post_event(2, adhoc, Decimal("1.00"), "BACS", tok=TOK1)
    s.error(r, 400, "UNKNOWN_REFERENCE", "owner-1 token posts to customer 71's adhoc invoice",
            field="generatedAdhocInvoiceId")
    made = {}
    for kind, target in ((1, iid), (2, adhoc)):
        r = post_event(kind, target, Decimal("2.00"), "GO_CARDLESS", "CONFIRMED", tok=TOK2)
        if s.status(r, 201, "owner-2 token posts to customer 71's invoice (kind %d)" % kind):
            made[kind] = r.json["id"]
            s.eq(r.json.get("currencyId"), 2, "customer 71 event: EUR")
    pay = post("/v1/customer-payments", raw=dumps({"customerId": cid, "type": "BACS",
                                                    "amountInMajorCurrency": Decimal("1.00")}),
               tok=TOK2)
    s.status(pay, 200, "owner-2 customer payment for customer 71")
    for kind, eid in made.items():
        p = KINDS[kind]["path"]
        s.error(get("%s/%d" % (p, eid), TOK1), 404, "NOT_FOUND",
                "owner-1 token GETs customer 71's event %d" % eid)
        s.status(get("%s/%d" % (p, eid), TOK2), 200, "owner-2 token GETs its event %d" % eid)
        s.status(get("%s/%d" % (p, eid), TOK), 200, "owners-1,2 token GETs event %d" % eid)
        target = iid if kind == 1 else adhoc
        r = listing(kind, "%s=%d" % (KINDS[kind]["idf"], target), TOK1)
        if s.status(r, 200, "owner-1 list filtered on customer 71's invoice"):
            s.eq((r.json, r.header("X-Total-Count")), ([], "0"),
                 "owner-1 list: customer 71's events absent")
        r = listing(kind, "%s=%d" % (KINDS[kind]["idf"], target), TOK2)
        if s.status(r, 200, "owner-2 list filtered on customer 71's invoice"):
            s.check(eid in ids_of(r), "owner-2 list: its event listed", ids_of(r))
    if pay.status == 200:
        r = listing(1, "customerPaymentId=%d" % pay.json["id"], TOK1)
        if s.status(r, 200, "owner-1 list ?customerPaymentId=<customer 71's payment>"):
            s.eq(r.json, [], "owner-1 list: customer 71's payment events absent")
    # Unfiltered: the owner-1 list counts only owner-1 events.
    for tok, owners in ((TOK1, "1"), (TOK2, "2")):
        n = sql_one("SELECT COUNT(*) FROM invoice_payments p JOIN customers c ON c.id = p.customer_id"
                    " WHERE p.invoice_kind = 1 AND c.contract_owner_id IN (%s)" % owners)
        r = get("/v1/invoice-payments?page=1&pageSize=1000&sort=id:desc", tok)
        if s.status(r, 200, "owner-%s list, unfiltered" % owners):
            s.eq(r.header("X-Total-Count"), n, "owner-%s list counts only its events" % owners)
            own = {int(x[0]) for x in sql("SELECT i.id FROM invoices i JOIN customers c"
                                          " ON c.id = i.customer_id WHERE i.kind = 1"
                                          " AND c.contract_owner_id IN (%s)" % owners)}
            s.eq([x["id"] for x in r.json if x.get("generatedInvoiceId") not in own], [],
                 "owner-%s list: every item is on its own invoices" % owners)


Suite().run([
    test_create_and_get,
    test_customer_payment_order_on_a_date_tie,
    test_list_filters,
    test_status_groups,
    test_derived_status_and_corrections,
    test_validation,
    test_manual_with_provider_status,
    test_null_and_empty_fields,
    test_currencies,
    test_tenancy,
])
