"""End-to-end tests of POST/GET /v1/customer-payments (spec 4.8, 1.5, 3).

Customers used (nobody else touches them): 6 and 32 (response shape and
amount limits), 7 (oldest-first), 8 (tie on invoice date), 9 (overpayment),
11 (get by id, the statement), 12 (ADHOC, then validation), 39 (JPY).
Customer 10 is left alone: test_conventions.py relies on it never being paid.
Every expectation is computed from the state read first, so the file passes
when run again on the same stack.
"""
import datetime
import json
import re

from paytest import *

TOK = token()                       # contract owners 1 and 2
TOK3 = token(owners="1,2,3")        # also sees the JPY customers of owner 3

LEDGER_FIELDS = {"id", "customerId", "amountInMajorCurrency", "resultingCustomerBalance",
                 "currencyId", "description", "reference", "type", "paymentDate",
                 "customerPaymentType", "txnType", "invoiceNumber", "invoiceId",
                 "billRunType"}


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


def tok_for(cid):
    return TOK3 if cid >= 39 else TOK


def pay(cid, amount, type_="BACS", tok=None, **extra):
    body = {"customerId": cid, "amountInMajorCurrency": amount, "type": type_}
    body.update(extra)
    return post("/v1/customer-payments", raw=dumps(body), tok=tok or tok_for(cid))


def digits_of(cid):
    return int(sql_one("SELECT cur.minor_digits FROM customers c JOIN currencies cur"
                       " ON cur.id = c.currency_id WHERE c.id = %d" % cid))


def major(minor, digits):
    """Minor units (int) -> Decimal in the major unit, exact."""
    return Decimal(int(minor)).scaleb(-digits)


def balance(cid):
    return int(sql_one("SELECT balance FROM customers WHERE id = %d" % cid))


def ledger_sum(cid):
    return int(sql_one("SELECT COALESCE(SUM(amount), 0) FROM ledger WHERE customer_id = %d" % cid))


def ledger_rows(cid):
    rows = sql("SELECT id, txn_type, customer_payment_type, amount, resulting_balance,"
               " COALESCE(bill_run_type, ''), COALESCE(payment_method, ''),"
               " payment_date, COALESCE(description, ''), COALESCE(reference, '')"
               " FROM ledger WHERE customer_id = %d ORDER BY id" % cid)
    return [dict(id=int(r[0]), txn=r[1], cpt=r[2], amount=int(r[3]), resulting=int(r[4]),
                 brt=r[5], method=r[6], date=r[7], description=r[8], reference=r[9])
            for r in rows]


def invoices(cid, kind=None, open_only=False):
    q = ("SELECT kind, id, amount, paid, payment_status, invoice_date, is_open"
         " FROM invoices WHERE customer_id = %d" % cid)
    if kind is not None:
        q += " AND kind = %d" % kind
    if open_only:
        q += " AND is_open = 1"
    q += " ORDER BY kind, invoice_date, id"
    return [dict(kind=int(r[0]), id=int(r[1]), amount=int(r[2]), paid=int(r[3]),
                 status=r[4], date=r[5], is_open=int(r[6]), outstanding=int(r[2]) - int(r[3]))
            for r in sql(q)]


def events_of_payment(pid):
    rows = sql("SELECT id, invoice_kind, invoice_id, customer_id, amount, currency_id,"
               " customer_payment_type, COALESCE(payment_method, ''), payment_date"
               " FROM invoice_payments WHERE customer_payment_id = %d ORDER BY id" % pid)
    return [dict(id=int(r[0]), kind=int(r[1]), invoice=int(r[2]), customer=int(r[3]),
                 amount=int(r[4]), currency=int(r[5]), cpt=r[6], method=r[7], date=r[8])
            for r in rows]


def add_invoice(cid, kind, amount_minor, date, prefix="E2E", inv_id=None):
    """Raises an invoice directly in the database the way the loader does:
    the invoice, its (ADHOC_)INVOICE_CREATED ledger row and the new balance,
    in one transaction with the customer row locked. Returns its id."""
    idexpr = ("SELECT %d INTO @iid" % inv_id if inv_id is not None else
              "SELECT COALESCE(MAX(id), 0) + 1 INTO @iid FROM invoices WHERE kind = %d" % kind)
    txn, cpt, brt, bill_run = (("INVOICE_CREATED", "INVOICE", "NORMAL", 1) if kind == 1 else
                               ("ADHOC_INVOICE_CREATED", "ADHOC_INVOICE", "ADHOC", 3))
    rows = sql(
        "START TRANSACTION;"
        "SELECT balance, currency_id INTO @b, @cur FROM customers WHERE id = %(c)d FOR UPDATE;"
        "%(idexpr)s;"
        "INSERT INTO invoices (kind, id, customer_id, bill_run_id, invoice_number,"
        " invoice_date, amount) VALUES (%(k)d, @iid, %(c)d, %(br)d,"
        " CONCAT('%(p)s-', @iid), '%(d)s', %(a)d);"
        "SET @b = @b - %(a)d;"
        "INSERT INTO ledger (customer_id, txn_type, customer_payment_type, amount,"
        " resulting_balance, currency_id, payment_date, invoice_kind, invoice_id,"
        " invoice_number, bill_run_type) VALUES (%(c)d, '%(t)s', '%(cpt)s', -%(a)d, @b,"
        " @cur, '%(d)s', %(k)d, @iid, CONCAT('%(p)s-', @iid), '%(brt)s');"
        "UPDATE customers SET balance = @b, payments_since_invoice = 0 WHERE id = %(c)d;"
        "COMMIT;"
        "SELECT @iid;" % dict(c=cid, k=kind, a=amount_minor, d=date, p=prefix, t=txn,
                              cpt=cpt, brt=brt, br=bill_run, idexpr=idexpr))
    return int(rows[-1][0])


def is_money_text(resp, field, text):
    """The raw JSON carries field with exactly this number spelling."""
    return re.search(r'"%s"\s*:\s*%s\s*[,}]' % (re.escape(field), re.escape(text)),
                     resp.raw) is not None


# ---------------------------------------------------------------- tests

def test_create_response(s):
    cid = 6
    before = balance(cid)
    max_before = int(sql_one("SELECT COALESCE(MAX(id), 0) FROM ledger"))
    r = pay(cid, Decimal("12.3"), "BACS", description="e2e shape payment", reference="REF-6-A")
    if not s.status(r, 200, "POST customer-payments (customer 6, 12.3 GBP)"):
        return
    j = r.json
    s.eq(r.header("Content-Type"), "application/json; charset=utf-8", "payment: content type")
    s.eq(set(j.keys()), LEDGER_FIELDS, "payment: exactly the CustomerPayment fields")
    s.check(isinstance(j.get("id"), int) and j["id"] > max_before,
            "payment: id is a new ledger id", (j.get("id"), max_before))
    s.eq(j.get("customerId"), cid, "payment: customerId")
    s.eq(j.get("amountInMajorCurrency"), Decimal("12.30"), "payment: amountInMajorCurrency")
    s.check(is_money_text(r, "amountInMajorCurrency", "12.30"),
            "payment: amount written with 2 decimals (12.30)", r.raw[:300])
    s.eq(j.get("resultingCustomerBalance"), major(before + 1230, 2),
         "payment: resultingCustomerBalance = previous balance + amount")
    s.eq(j.get("currencyId"), 1, "payment: currencyId GBP")
    s.eq(j.get("description"), "e2e shape payment", "payment: description")
    s.eq(j.get("reference"), "REF-6-A", "payment: reference")
    s.eq(j.get("type"), "BACS", "payment: type")
    s.eq(j.get("paymentDate"), today(), "payment: paymentDate is today (UTC)")
    s.eq(j.get("customerPaymentType"), "CUSTOMER", "payment: customerPaymentType")
    s.eq(j.get("txnType"), "PAYMENT", "payment: txnType")
    s.eq(j.get("billRunType"), "NORMAL", "payment: billRunType defaults to NORMAL")
    s.eq(j.get("invoiceId"), None, "payment: invoiceId null")
    s.eq(j.get("invoiceNumber"), None, "payment: invoiceNumber null")
    s.eq(balance(cid), before + 1230, "payment: customers.balance moved by exactly 12.30")
    s.eq(ledger_sum(cid), balance(cid), "payment: balance = sum of ledger amounts")
    row = [x for x in ledger_rows(cid) if x["id"] == j.get("id")]
    if s.eq(len(row), 1, "payment: one ledger row with the returned id"):
        x = row[0]
        s.eq((x["txn"], x["cpt"], x["amount"], x["resulting"], x["brt"], x["method"],
              x["date"], x["description"], x["reference"]),
             ("PAYMENT", "CUSTOMER", 1230, before + 1230, "NORMAL", "BACS", today(),
              "e2e shape payment", "REF-6-A"),
             "payment: the stored ledger row")

    # Optional fields absent: description/reference null.
    r = pay(cid, Decimal("0.01"), "CHEQUE")
    if s.status(r, 200, "POST customer-payments without description/reference"):
        s.eq((r.json.get("description"), r.json.get("reference"), r.json.get("type")),
             (None, None, "CHEQUE"), "payment: absent description/reference are null")
        s.eq(r.json.get("amountInMajorCurrency"), Decimal("0.01"), "payment: minimum 0.01")

    # EUR customer: currencyId 2, both ends of 0.01..9999999.99 accepted.
    cid = 32
    before = balance(cid)
    r = pay(cid, Decimal("0.01"), "CREDIT_CARD")
    if s.status(r, 200, "POST customer-payments EUR 0.01"):
        s.eq(r.json.get("currencyId"), 2, "EUR payment: currencyId 2")
        s.eq(r.json.get("resultingCustomerBalance"), major(before + 1, 2),
             "EUR payment: resulting balance")
    r = pay(cid, Decimal("9999999.99"), "CREDIT_CARD")
    if s.status(r, 200, "POST customer-payments EUR 9999999.99 (maximum)"):
        s.eq(r.json.get("amountInMajorCurrency"), Decimal("9999999.99"),
             "EUR payment: maximum amount echoed exactly")
        s.eq(r.json.get("resultingCustomerBalance"), major(before + 1 + 999999999, 2),
             "EUR payment: resulting balance after the maximum")
    s.eq(balance(cid), before + 1 + 999999999, "EUR payments: balance moved exactly")
    s.eq(ledger_sum(cid), balance(cid), "EUR payments: balance = sum of ledger amounts")


def test_oldest_first(s):
    cid = 7
    open_ = invoices(cid, kind=1, open_only=True)
    if len(open_) < 2 or open_[1]["outstanding"] < 2:
        add_invoice(cid, 1, 5000, "2025-06-01")
        add_invoice(cid, 1, 7000, "2025-07-01")
        open_ = invoices(cid, kind=1, open_only=True)
    all_before = {(i["kind"], i["id"]): i for i in invoices(cid)}
    first, second = open_[0], open_[1]
    part = second["outstanding"] // 2
    amount = first["outstanding"] + part
    before = balance(cid)
    r = pay(cid, major(amount, 2), "CHEQUE", description="oldest first")
    if not s.status(r, 200, "POST payment covering invoice %d fully and part of %d"
                    % (first["id"], second["id"])):
        return
    pid = r.json["id"]
    after = {(i["kind"], i["id"]): i for i in invoices(cid)}
    a1, a2 = after[(1, first["id"])], after[(1, second["id"])]
    s.eq((a1["paid"], a1["status"]), (first["amount"], "PAID"),
         "oldest invoice %d fully paid" % first["id"])
    s.eq((a2["paid"], a2["status"]), (second["paid"] + part, "PARTIALLY_PAID"),
         "next invoice %d partly paid" % second["id"])
    others = [(k, (all_before[k]["paid"], all_before[k]["status"]), (v["paid"], v["status"]))
              for k, v in after.items()
              if k not in ((1, first["id"]), (1, second["id"]))
              and (v["paid"], v["status"]) != (all_before[k]["paid"], all_before[k]["status"])]
    s.eq(others, [], "no other invoice (normal or adhoc) touched")
    ev = events_of_payment(pid)
    s.eq([(e["kind"], e["invoice"], e["amount"]) for e in ev],
         [(1, first["id"], first["outstanding"]), (1, second["id"], part)],
         "invoice payment events of payment %d: exact amounts, oldest first" % pid)
    s.eq({(e["cpt"], e["customer"], e["currency"], e["method"], e["date"]) for e in ev},
         {("CUSTOMER", cid, 1, "CHEQUE", today())},
         "invoice payment events carry CUSTOMER, the customer, currency, method, today")
    s.eq(balance(cid), before + amount, "oldest first: balance moved by the amount")
    s.eq(r.json.get("resultingCustomerBalance"), major(before + amount, 2),
         "oldest first: resultingCustomerBalance")
    s.eq(ledger_sum(cid), balance(cid), "oldest first: balance = sum of ledger amounts")


def test_tie_on_invoice_date(s):
    cid = 8
    oldest = sql_one("SELECT MIN(invoice_date) FROM invoices WHERE customer_id = %d" % cid)
    tie_date = (datetime.date.fromisoformat(oldest) - datetime.timedelta(days=1)).isoformat()
    base = int(sql_one("SELECT COALESCE(MAX(id), 0) + 1 FROM invoices WHERE kind = 1"))
    low, high = base, base + 1
    # The higher id is inserted first and gets the alphabetically smaller
    # number, so neither insertion order nor number can pass for id order.
    add_invoice(cid, 1, 2000, tie_date, prefix="E2E-TIE-A", inv_id=high)
    add_invoice(cid, 1, 1000, tie_date, prefix="E2E-TIE-B", inv_id=low)
    before = balance(cid)
    r = pay(cid, Decimal("15.00"), "BACS")
    if not s.status(r, 200, "POST payment with two invoices on the same date"):
        return
    ev = events_of_payment(r.json["id"])
    s.eq([(e["invoice"], e["amount"]) for e in ev], [(low, 1000), (high, 500)],
         "tie on invoice date %s: lower id %d paid first, then %d" % (tie_date, low, high))
    inv = {i["id"]: i for i in invoices(cid, kind=1)}
    s.eq((inv[low]["paid"], inv[low]["status"]), (1000, "PAID"), "tie: lower id fully paid")
    s.eq((inv[high]["paid"], inv[high]["status"]), (500, "PARTIALLY_PAID"),
         "tie: higher id partly paid")
    s.eq(balance(cid), before + 1500, "tie: balance moved by 15.00")
    s.eq(ledger_sum(cid), balance(cid), "tie: balance = sum of ledger amounts")


def test_overpayment(s):
    cid = 9
    open_ = invoices(cid, kind=1, open_only=True)
    if not open_:
        add_invoice(cid, 1, 4000, today())
        open_ = invoices(cid, kind=1, open_only=True)
    adhoc_before = invoices(cid, kind=2)
    total = sum(i["outstanding"] for i in open_)
    before = balance(cid)
    extra = 2500 + max(0, -(before + total))       # enough to end in credit
    amount = total + extra
    r = pay(cid, major(amount, 2), "BACS", description="overpayment")
    if not s.status(r, 200, "POST overpayment (%s, open %s)" % (major(amount, 2), major(total, 2))):
        return
    after = {i["id"]: i for i in invoices(cid, kind=1)}
    s.eq([(i["id"], after[i["id"]]["paid"], after[i["id"]]["status"]) for i in open_],
         [(i["id"], i["amount"], "PAID") for i in open_],
         "overpayment: every open invoice exactly paid")
    over = sql("SELECT kind, id, amount, paid FROM invoices WHERE customer_id = %d"
               " AND (paid > amount OR paid < 0)" % cid)
    s.eq(over, [], "overpayment: no invoice paid more than its amount")
    ev = events_of_payment(r.json["id"])
    s.eq(sorted((e["invoice"], e["amount"]) for e in ev),
         sorted((i["id"], i["outstanding"]) for i in open_),
         "overpayment: one event per open invoice for its outstanding amount")
    s.eq(invoices(cid, kind=2), adhoc_before, "overpayment (NORMAL): adhoc invoices untouched")
    s.eq(balance(cid), before + amount, "overpayment: balance moved by the whole amount")
    s.check(balance(cid) > 0, "overpayment: balance positive (credit)", balance(cid))
    s.eq(r.json.get("resultingCustomerBalance"), major(before + amount, 2),
         "overpayment: resultingCustomerBalance")
    # Nothing open any more: the whole payment stays as credit.
    before = balance(cid)
    r = pay(cid, Decimal("1.00"), "BACS")
    if s.status(r, 200, "POST payment with no open invoice"):
        s.eq(events_of_payment(r.json["id"]), [], "payment with no open invoice: no events")
        s.eq(balance(cid), before + 100, "payment with no open invoice: all credit")
    s.eq(ledger_sum(cid), balance(cid), "overpayment: balance = sum of ledger amounts")


def test_adhoc(s):
    cid = 12    # not 10: test_conventions.py reads customer 10 as a never-paid customer
    adhoc = invoices(cid, kind=2, open_only=True)
    if not adhoc:
        add_invoice(cid, 2, 3000, today(), prefix="E2E-ADH")
        adhoc = invoices(cid, kind=2, open_only=True)
    normal_before = invoices(cid, kind=1)
    total = sum(i["outstanding"] for i in adhoc)
    amount = total + 500
    before = balance(cid)
    r = pay(cid, major(amount, 2), "CHEQUE", billRunType="ADHOC")
    if not s.status(r, 200, "POST ADHOC payment"):
        return
    s.eq(r.json.get("billRunType"), "ADHOC", "ADHOC payment: billRunType echoed")
    s.eq(r.json.get("txnType"), "PAYMENT", "ADHOC payment: txnType")
    s.eq(invoices(cid, kind=1), normal_before, "ADHOC payment: normal invoices untouched")
    after = {i["id"]: i for i in invoices(cid, kind=2)}
    s.eq([(i["id"], after[i["id"]]["paid"], after[i["id"]]["status"]) for i in adhoc],
         [(i["id"], i["amount"], "PAID") for i in adhoc], "ADHOC payment: adhoc invoices paid")
    ev = events_of_payment(r.json["id"])
    s.eq(sorted((e["kind"], e["invoice"], e["amount"]) for e in ev),
         sorted((2, i["id"], i["outstanding"]) for i in adhoc),
         "ADHOC payment: events only on adhoc invoices, exact amounts")
    s.eq(balance(cid), before + amount, "ADHOC payment: balance moved by the amount")
    row = [x for x in ledger_rows(cid) if x["id"] == r.json["id"]]
    s.eq([x["brt"] for x in row], ["ADHOC"], "ADHOC payment: ledger bill_run_type ADHOC")
    s.eq(ledger_sum(cid), balance(cid), "ADHOC payment: balance = sum of ledger amounts")


def test_jpy(s):
    cid = 39
    open_ = invoices(cid, kind=1, open_only=True)
    if not open_:
        add_invoice(cid, 1, 5000, today())
        open_ = invoices(cid, kind=1, open_only=True)
    before = balance(cid)
    r = pay(cid, 100, "BACS")
    if s.status(r, 200, "POST JPY payment 100"):
        s.eq(r.json.get("amountInMajorCurrency"), 100, "JPY payment: amount 100")
        s.check(is_money_text(r, "amountInMajorCurrency", "100"),
                "JPY payment: amount written without decimals", r.raw[:300])
        s.check(is_money_text(r, "resultingCustomerBalance", str(before + 100)),
                "JPY payment: resultingCustomerBalance %d without decimals" % (before + 100),
                r.raw[:300])
        s.eq(r.json.get("currencyId"), 3, "JPY payment: currencyId 3")
        s.eq(balance(cid), before + 100, "JPY payment: balance moved by 100 yen")
        ev = events_of_payment(r.json["id"])
        s.eq([(e["invoice"], e["amount"]) for e in ev],
             [(open_[0]["id"], min(100, open_[0]["outstanding"]))],
             "JPY payment: 100 yen applied to the oldest open invoice")
    before = balance(cid)
    n = int(sql_one("SELECT COUNT(*) FROM ledger WHERE customer_id = %d" % cid))
    r = pay(cid, Decimal("100.5"), "BACS")
    s.error(r, 400, "INVALID_AMOUNT", "JPY payment 100.5 (decimals)", field="amountInMajorCurrency")
    s.eq((balance(cid), int(sql_one("SELECT COUNT(*) FROM ledger WHERE customer_id = %d" % cid))),
         (before, n), "JPY payment 100.5: nothing changed")


def test_get_by_id(s):
    cid = 11
    r = pay(cid, Decimal("3.21"), "PAYPAL", description="get me", reference="R-11")
    if not s.status(r, 200, "POST payment for GET by id"):
        return
    pid = r.json["id"]
    g = get("/v1/customer-payments/%d" % pid, TOK)
    if s.status(g, 200, "GET /v1/customer-payments/%d" % pid):
        s.eq(g.json, r.json, "GET by id = the POST response")
    inv_row = sql("SELECT id, invoice_id, invoice_number, amount FROM ledger WHERE customer_id = %d"
                  " AND txn_type = 'INVOICE_CREATED' ORDER BY id LIMIT 1" % cid)[0]
    g = get("/v1/customer-payments/%s" % inv_row[0], TOK)
    if s.status(g, 200, "GET an INVOICE_CREATED ledger row"):
        s.eq((g.json.get("txnType"), g.json.get("customerPaymentType"), g.json.get("invoiceId"),
              g.json.get("invoiceNumber"), g.json.get("amountInMajorCurrency")),
             ("INVOICE_CREATED", "INVOICE", int(inv_row[1]), inv_row[2], major(inv_row[3], 2)),
             "INVOICE_CREATED row by id")
    big = int(sql_one("SELECT COALESCE(MAX(id), 0) FROM ledger")) + 1000000
    s.error(get("/v1/customer-payments/%d" % big, TOK), 404, "NOT_FOUND",
            "GET unknown customer payment id")
    for bad in ("0", "-1", "abc", "1.5"):
        s.error(get("/v1/customer-payments/%s" % bad, TOK), 400, "INVALID_PARAMETER",
                "GET /v1/customer-payments/%s" % bad, field="customer_payment_id")
    # Another tenant's row behaves as if it did not exist.
    other = sql_one("SELECT MIN(id) FROM ledger WHERE customer_id = 39")
    s.error(get("/v1/customer-payments/%s" % other, TOK), 404, "NOT_FOUND",
            "GET a contract owner 3 ledger row with an owners 1,2 token")
    g = get("/v1/customer-payments/%s" % other, TOK3)
    s.status(g, 200, "GET the same row with an owners 1,2,3 token")


def test_statement(s):
    cid = 11
    # A few movements of every kind on top of the fixture's invoices.
    for body in ({"amountInMajorCurrency": Decimal("7.77"), "type": "BACS"},
                 {"amountInMajorCurrency": Decimal("2.50"), "type": "CHEQUE",
                  "billRunType": "ADHOC"}):
        body["customerId"] = cid
        s.status(post("/v1/customer-payments", raw=dumps(body), tok=TOK), 200,
                 "statement setup: payment")
    s.status(post("/v1/customer-balance-adjustments",
                  raw=dumps({"customerId": cid, "amountInMajorCurrency": Decimal("-1.25"),
                             "description": "statement debit"}), tok=TOK),
             200, "statement setup: adjustment")
    db = ledger_rows(cid)
    r = get("/v1/customer-payments?customer_id=%d&page=1&pageSize=1000" % cid, TOK)
    if not s.status(r, 200, "GET statement of customer %d" % cid):
        return
    rows = r.json
    s.eq(r.header("X-Total-Count"), str(len(db)), "statement: X-Total-Count = ledger rows")
    s.eq([x["id"] for x in rows], [x["id"] for x in db], "statement: all rows, by id")
    s.eq([(x["amountInMajorCurrency"], x["resultingCustomerBalance"], x["txnType"])
          for x in rows],
         [(major(x["amount"], 2), major(x["resulting"], 2), x["txn"]) for x in db],
         "statement: amounts, balances and types as stored")
    prev, bad = Decimal(0), []
    for x in rows:
        if x["resultingCustomerBalance"] != prev + x["amountInMajorCurrency"]:
            bad.append((x["id"], prev, x["amountInMajorCurrency"], x["resultingCustomerBalance"]))
        prev = x["resultingCustomerBalance"]
    s.eq(bad, [], "statement: each resultingCustomerBalance = previous + amount")
    s.eq(prev, major(balance(cid), 2), "statement: last resultingCustomerBalance = balance")
    s.eq({x["customerId"] for x in rows}, {cid}, "statement: only this customer")
    s.eq({x["currencyId"] for x in rows}, {1}, "statement: currency")

    r = get("/v1/customer-payments?customer_id=%d&page=2&pageSize=2" % cid, TOK)
    if s.status(r, 200, "statement page 2 of size 2"):
        s.eq([x["id"] for x in r.json], [x["id"] for x in db][2:4], "statement: page 2")
    r = get("/v1/customer-payments?customer_id=%d&page=1&pageSize=1000&excludeDebits=true" % cid,
            TOK)
    if s.status(r, 200, "statement excludeDebits=true"):
        s.eq([x["id"] for x in r.json], [x["id"] for x in db if x["amount"] >= 0],
             "statement excludeDebits: only rows with amount >= 0")
    r = get("/v1/customer-payments?customer_id=%d&page=1&pageSize=1000&excludeCredits=true" % cid,
            TOK)
    if s.status(r, 200, "statement excludeCredits=true"):
        s.eq([x["id"] for x in r.json], [x["id"] for x in db if x["amount"] < 0],
             "statement excludeCredits: only rows with amount < 0")
    r = get("/v1/customer-payments?customer_id=%d&page=1&pageSize=1000"
            "&customerPaymentType=CUSTOMER" % cid, TOK)
    if s.status(r, 200, "statement customerPaymentType=CUSTOMER"):
        s.eq([x["id"] for x in r.json], [x["id"] for x in db if x["cpt"] == "CUSTOMER"],
             "statement customerPaymentType=CUSTOMER: only customer payments")
    s.error(get("/v1/customer-payments?page=1&pageSize=10", TOK), 400, "MISSING_PARAMETER",
            "statement without customer_id", field="customer_id")
    r = get("/v1/customer-payments?customer_id=39&page=1&pageSize=10", TOK)
    if s.status(r, 200, "statement of another tenant's customer"):
        s.eq(r.json, [], "statement of another tenant's customer is empty")


def snapshot(cid):
    return dict(
        balance=balance(cid),
        ledger=sql_one("SELECT CONCAT(COUNT(*), '/', COALESCE(MAX(id), 0)) FROM ledger"),
        events=sql_one("SELECT CONCAT(COUNT(*), '/', COALESCE(MAX(id), 0)) FROM invoice_payments"),
        invoices=sql("SELECT kind, id, paid, payment_status FROM invoices"
                     " WHERE customer_id = %d ORDER BY kind, id" % cid))


def test_validation(s):
    cid = 12
    before = snapshot(cid)
    ok = {"customerId": cid, "amountInMajorCurrency": Decimal("10.00"), "type": "BACS"}

    def without(k):
        return {x: v for x, v in ok.items() if x != k}

    def with_(**kw):
        d = dict(ok)
        d.update(kw)
        return d

    cases = [
        ("missing customerId", without("customerId"), "MISSING_FIELD", "customerId", TOK),
        ("missing amount", without("amountInMajorCurrency"), "MISSING_FIELD",
         "amountInMajorCurrency", TOK),
        ("missing type", without("type"), "MISSING_FIELD", "type", TOK),
        ("type BITCOIN", with_(type="BITCOIN"), "INVALID_FIELD", "type", TOK),
        ("type lower case", with_(type="bacs"), "INVALID_FIELD", "type", TOK),
        ("unknown customer", with_(customerId=999999), "UNKNOWN_REFERENCE", "customerId", TOK),
        ("another tenant's customer", with_(customerId=39), "UNKNOWN_REFERENCE", "customerId",
         TOK),
        ("customerId 0", with_(customerId=0), "INVALID_FIELD", "customerId", TOK),
        ("amount 0", with_(amountInMajorCurrency=Decimal("0")), "INVALID_AMOUNT",
         "amountInMajorCurrency", TOK),
        ("amount 0.001", with_(amountInMajorCurrency=Decimal("0.001")), "INVALID_AMOUNT",
         "amountInMajorCurrency", TOK),
        ("amount 10000000.00", with_(amountInMajorCurrency=Decimal("10000000.00")),
         "INVALID_AMOUNT", "amountInMajorCurrency", TOK),
        ("amount -5.00", with_(amountInMajorCurrency=Decimal("-5.00")), "INVALID_AMOUNT",
         "amountInMajorCurrency", TOK),
        ("amount as a string", with_(amountInMajorCurrency="10.00"), "INVALID_FIELD",
         "amountInMajorCurrency", TOK),
        ("billRunType WEEKLY", with_(billRunType="WEEKLY"), "INVALID_FIELD", "billRunType",
         TOK),
        ("unknown field", with_(foo=1), "UNKNOWN_FIELD", "foo", TOK),
        ("description with a control character", with_(description="a\u0007b"),
         "INVALID_FIELD", "description", TOK),
        ("description of 256 characters", with_(description="x" * 256), "INVALID_FIELD",
         "description", TOK),
        ("reference of 256 characters", with_(reference="x" * 256), "INVALID_FIELD",
         "reference", TOK),
    ]
    for what, body, code, field, tok in cases:
        r = post("/v1/customer-payments", raw=dumps(body), tok=tok)
        s.error(r, 400, code, "POST customer-payments, %s" % what, field=field)
    s.error(post("/v1/customer-payments", raw="[1]", tok=TOK), 400, "INVALID_JSON",
            "POST customer-payments, body not an object")
    after = snapshot(cid)
    for k in before:
        s.eq(after[k], before[k], "validation errors changed nothing (%s)" % k)
    # 255 characters is still fine (boundary of the previous cases).
    r = pay(cid, Decimal("0.05"), "OTHER", description="d" * 255, reference="r" * 255)
    if s.status(r, 200, "POST customer-payments with 255-character description/reference"):
        s.eq(len(r.json.get("description") or ""), 255, "255-character description kept")


Suite().run([
    test_create_response,
    test_oldest_first,
    test_tie_on_invoice_date,
    test_overpayment,
    test_adhoc,
    test_jpy,
    test_get_by_id,
    test_statement,
    test_validation,
])
