"""End-to-end tests of GET /v1/customer-balances and
POST /v1/customer-balance-adjustments (spec 4.9, 3, 1.5).

Customers used (nobody else touches them): 19 (read only: the untouched
fixture balance), 13 (totals, SINGLE method, live/ended site dates), 14
(ended site ignored), 15 (MULTIPLE methods, plan SINGLE/MULTIPLE), 16
(totalPaymentsSinceLastInvoice), 17 (adjustments), 18 (plan SINGLE, then
NONE while its site is ended), 33 and 35 (EUR), 40 (JPY; its balance is
never moved: adjustments there cancel out). 39 is only read.
Sites and invoices added directly with SQL are labelled "E2E" and cleaned up
(sites) or harmless on a rerun (invoices carry their ledger row).
"""
import datetime
import json
import os
import re

from paytest import *

TOK = token()
TOK3 = token(owners="1,2,3")

BALANCE_FIELDS = {"id", "customerId", "balance", "totalPayments",
                  "totalPaymentsSinceLastInvoice", "paymentMethodSummary",
                  "repaymentPlanSummary"}
ADJ_FIELDS = {"id", "customerId", "amountInMajorCurrency", "currencyId", "description"}
TEMP_END = "2001-02-03"      # marks a fixture site this file ended temporarily

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "e2e.json")


# ---------------------------------------------------------------- helpers

def today():
    return datetime.datetime.now(datetime.timezone.utc).date()


def dumps(obj):
    if isinstance(obj, Decimal):
        return format(obj, "f")
    if isinstance(obj, dict):
        return "{" + ",".join(json.dumps(k) + ":" + dumps(v) for k, v in obj.items()) + "}"
    return json.dumps(obj)


def tok_for(cid):
    return TOK3 if cid >= 39 else TOK


def major(minor, digits):
    return Decimal(int(minor)).scaleb(-digits)


def digits_of(cid):
    return int(sql_one("SELECT cur.minor_digits FROM customers c JOIN currencies cur"
                       " ON cur.id = c.currency_id WHERE c.id = %d" % cid))


def balance_row(cid):
    return int(sql_one("SELECT balance FROM customers WHERE id = %d" % cid))


def ledger_sum(cid, types=None):
    q = "SELECT COALESCE(SUM(amount), 0) FROM ledger WHERE customer_id = %d" % cid
    if types:
        q += " AND txn_type IN (%s)" % ",".join("'%s'" % t for t in types)
    return int(sql_one(q))


def newest_resulting(cid):
    v = sql_one("SELECT resulting_balance FROM ledger WHERE customer_id = %d"
                " ORDER BY id DESC LIMIT 1" % cid)
    return int(v) if v is not None else 0


def bal(cid):
    return get("/v1/customer-balances?customer_id=%d" % cid, tok_for(cid))


def adjust(cid, amount, description=None, tok=None):
    body = {"customerId": cid, "amountInMajorCurrency": amount}
    if description is not None:
        body["description"] = description
    return post("/v1/customer-balance-adjustments", raw=dumps(body), tok=tok or tok_for(cid))


def pay(cid, amount, **extra):
    body = {"customerId": cid, "amountInMajorCurrency": amount, "type": "BACS"}
    body.update(extra)
    return post("/v1/customer-payments", raw=dumps(body), tok=tok_for(cid))


def add_invoice(cid, kind, amount_minor, date, prefix="E2E-BAL"):
    """Invoice + its (ADHOC_)INVOICE_CREATED ledger row + the balance and the
    customer's maintained figures, in one transaction with the customer row
    locked (as the loader does through the money core)."""
    txn, cpt, brt, bill_run = (("INVOICE_CREATED", "INVOICE", "NORMAL", 1) if kind == 1 else
                               ("ADHOC_INVOICE_CREATED", "ADHOC_INVOICE", "ADHOC", 3))
    rows = sql(
        "START TRANSACTION;"
        "SELECT balance, currency_id INTO @b, @cur FROM customers WHERE id = %(c)d FOR UPDATE;"
        "SELECT COALESCE(MAX(id), 0) + 1 INTO @iid FROM invoices WHERE kind = %(k)d;"
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
                              cpt=cpt, brt=brt, br=bill_run))
    return int(rows[-1][0])


def add_reversal(cid, amount_minor):
    """A PAYMENT_REVERSED ledger row (negative), as a reversed provider
    payment writes it, keeping balance = sum of the ledger and the
    customer's maintained payment figures."""
    sql("START TRANSACTION;"
        "SELECT balance, currency_id INTO @b, @cur FROM customers WHERE id = %(c)d FOR UPDATE;"
        "SET @b = @b - %(a)d;"
        "INSERT INTO ledger (customer_id, txn_type, customer_payment_type, amount,"
        " resulting_balance, currency_id, description, payment_method, payment_date,"
        " bill_run_type) VALUES (%(c)d, 'PAYMENT_REVERSED', 'CUSTOMER', -%(a)d, @b, @cur,"
        " 'e2e reversal', 'BACS', UTC_DATE(), 'NORMAL');"
        "UPDATE customers SET balance = @b, total_payments = total_payments - %(a)d,"
        " payments_since_invoice = payments_since_invoice - %(a)d WHERE id = %(c)d;"
        "COMMIT;" % dict(c=cid, a=amount_minor))


def add_site(cid, method, end_date=None, plan=None, periods=None):
    sid = int(sql_one("SELECT COALESCE(MAX(id), 0) + 1 FROM sites"))
    sql("INSERT INTO sites (id, customer_id, site_name, start_date, end_date, payment_method,"
        " repayment_plan_amount, repayment_plan_remaining_periods) VALUES"
        " (%d, %d, 'E2E temp site', '2024-01-01', %s, %s, %s, %s)"
        % (sid, cid, "'%s'" % end_date if end_date else "NULL",
           "'%s'" % method if method else "NULL",
           plan if plan is not None else "NULL", periods if periods is not None else "NULL"))
    return sid


def cleanup_sites():
    """Undo what an interrupted earlier run may have left behind."""
    sql("DELETE FROM sites WHERE site_name = 'E2E temp site'")
    sql("UPDATE sites SET end_date = NULL WHERE end_date = '%s'" % TEMP_END)


def summaries(r):
    j = r.json or {}
    return j.get("paymentMethodSummary"), j.get("repaymentPlanSummary")


def money_text(resp, field, text):
    return re.search(r'"%s"\s*:\s*%s\s*[,}]' % (re.escape(field), re.escape(text)),
                     resp.raw) is not None


def check_consistent(s, cid, what):
    """API balance = Σ ledger amounts = newest resultingCustomerBalance = customers.balance."""
    r = bal(cid)
    if not s.status(r, 200, "%s: GET customer-balances %d" % (what, cid)):
        return None
    d = digits_of(cid)
    total = ledger_sum(cid)
    s.eq(r.json.get("balance"), major(total, d), "%s: balance = sum of ledger amounts" % what)
    s.eq(newest_resulting(cid), total, "%s: newest resultingCustomerBalance = balance" % what)
    s.eq(balance_row(cid), total, "%s: customers.balance = sum of ledger amounts" % what)
    s.eq(r.json.get("totalPayments"), major(ledger_sum(cid, ("PAYMENT", "PAYMENT_REVERSED")), d),
         "%s: totalPayments = payments - reversals" % what)
    # The maintained figures equal the aggregates over the ledger.
    since = int(sql_one(
        "SELECT COALESCE(SUM(amount), 0) FROM ledger WHERE customer_id = %d"
        " AND txn_type IN ('PAYMENT','PAYMENT_REVERSED') AND id > (SELECT COALESCE(MAX(id), 0)"
        " FROM ledger WHERE customer_id = %d"
        " AND txn_type IN ('INVOICE_CREATED','ADHOC_INVOICE_CREATED'))" % (cid, cid)))
    s.eq(r.json.get("totalPaymentsSinceLastInvoice"), major(since, d),
         "%s: totalPaymentsSinceLastInvoice = the ledger's payments after its newest"
         " invoice row" % what)
    return r.json


# ---------------------------------------------------------------- tests

def test_initial_balance(s):
    with open(FIXTURE) as f:
        fx = json.load(f, parse_float=Decimal)
    for cid in (19, 40):
        d = digits_of(cid)
        fixture_sum = sum(Decimal(str(i["amount"])) for k in ("invoices", "adhocInvoices")
                          for i in fx[k] if i["customerId"] == cid)
        others = ledger_sum(cid) - ledger_sum(cid, ("INVOICE_CREATED", "ADHOC_INVOICE_CREATED"))
        r = bal(cid)
        if not s.status(r, 200, "GET customer-balances %d" % cid):
            continue
        j = r.json
        s.eq(set(j.keys()), BALANCE_FIELDS, "customer %d: exactly the balance fields" % cid)
        s.eq((j.get("id"), j.get("customerId")), (cid, cid), "customer %d: id, customerId" % cid)
        s.eq(j.get("balance"), -fixture_sum + major(others, d),
             "customer %d: balance = -(fixture invoice amounts) + other ledger rows" % cid)
        open_sum = int(sql_one("SELECT SUM(amount - paid) FROM invoices WHERE customer_id = %d"
                               % cid))
        if others == 0:
            s.eq(j.get("balance"), -major(open_sum, d),
                 "customer %d: untouched balance = -sum of open amounts" % cid)
        check_consistent(s, cid, "customer %d" % cid)
    # Customer 19 is never written: its balance is the plain fixture sum.
    r = bal(19)
    if s.status(r, 200, "GET customer-balances 19"):
        s.eq(r.json.get("balance"), Decimal("-275.75"), "customer 19: balance -275.75")
        s.check(money_text(r, "balance", "-275.75"), "customer 19: balance with 2 decimals", r.raw)
        s.eq((r.json.get("totalPayments"), r.json.get("totalPaymentsSinceLastInvoice")),
             (Decimal("0.00"), Decimal("0.00")), "customer 19: no payments")
        s.check(money_text(r, "totalPayments", "0.00"), "customer 19: totalPayments 0.00", r.raw)
    r = bal(40)
    if s.status(r, 200, "GET customer-balances 40 (JPY)"):
        s.check(money_text(r, "balance", "-27575"), "customer 40: JPY balance -27575, no decimals",
                r.raw)
        s.check(money_text(r, "totalPayments", "0"), "customer 40: totalPayments 0, no decimals",
                r.raw)


def test_totals(s):
    cid = 13
    j0 = check_consistent(s, cid, "totals before")
    if j0 is None:
        return
    r = pay(cid, Decimal("10.00"))
    s.status(r, 200, "totals: payment 10.00")
    j1 = check_consistent(s, cid, "totals after a payment")
    if j1:
        s.eq(j1["balance"], j0["balance"] + Decimal("10.00"), "totals: balance +10.00")
        s.eq(j1["totalPayments"], j0["totalPayments"] + Decimal("10.00"),
             "totals: totalPayments +10.00")
    s.status(adjust(cid, Decimal("5.00"), "goodwill"), 200, "totals: adjustment +5.00")
    j2 = check_consistent(s, cid, "totals after an adjustment")
    if j1 and j2:
        s.eq(j2["balance"], j1["balance"] + Decimal("5.00"), "totals: balance +5.00")
        s.eq(j2["totalPayments"], j1["totalPayments"], "totals: an adjustment is not a payment")
    add_reversal(cid, 300)
    j3 = check_consistent(s, cid, "totals after a reversal")
    if j2 and j3:
        s.eq(j3["totalPayments"], j2["totalPayments"] - Decimal("3.00"),
             "totals: a PAYMENT_REVERSED row of 3.00 is subtracted")
        s.eq(j3["balance"], j2["balance"] - Decimal("3.00"), "totals: balance -3.00")


def test_since_last_invoice(s):
    cid = 16
    d = today().isoformat()
    add_invoice(cid, 1, 2000, d)
    r = bal(cid)
    if s.status(r, 200, "since-last: after a new invoice"):
        s.eq(r.json.get("totalPaymentsSinceLastInvoice"), Decimal("0.00"),
             "since-last: 0 right after an invoice")
        t0 = r.json.get("totalPayments")
    else:
        return
    s.status(pay(cid, Decimal("12.34")), 200, "since-last: payment 12.34")
    r = bal(cid)
    s.eq(r.json.get("totalPaymentsSinceLastInvoice"), Decimal("12.34"),
         "since-last: 12.34 after one payment")
    s.status(adjust(cid, Decimal("1.00")), 200, "since-last: adjustment 1.00")
    r = bal(cid)
    s.eq(r.json.get("totalPaymentsSinceLastInvoice"), Decimal("12.34"),
         "since-last: an adjustment does not count")
    s.status(pay(cid, Decimal("5.00"), billRunType="ADHOC"), 200, "since-last: ADHOC payment 5.00")
    r = bal(cid)
    s.eq(r.json.get("totalPaymentsSinceLastInvoice"), Decimal("17.34"),
         "since-last: 17.34 after two payments")
    s.eq(r.json.get("totalPayments"), t0 + Decimal("17.34"), "since-last: totalPayments grew too")
    add_invoice(cid, 1, 1500, d)
    r = bal(cid)
    s.eq(r.json.get("totalPaymentsSinceLastInvoice"), Decimal("0.00"),
         "since-last: reset to 0 by a new INVOICE_CREATED row")
    s.eq(r.json.get("totalPayments"), t0 + Decimal("17.34"),
         "since-last: totalPayments not reset by an invoice")
    s.status(pay(cid, Decimal("1.00")), 200, "since-last: payment 1.00")
    s.eq(bal(cid).json.get("totalPaymentsSinceLastInvoice"), Decimal("1.00"),
         "since-last: 1.00 after the second invoice")
    add_invoice(cid, 2, 700, d, prefix="E2E-BAL-ADH")
    s.eq(bal(cid).json.get("totalPaymentsSinceLastInvoice"), Decimal("0.00"),
         "since-last: reset to 0 by a new ADHOC_INVOICE_CREATED row")
    check_consistent(s, cid, "since-last")


def expect_method(s, cid, want, what):
    r = bal(cid)
    if s.status(r, 200, "%s: GET customer-balances %d" % (what, cid)):
        s.eq(summaries(r)[0], want, "%s: paymentMethodSummary of customer %d" % (what, cid))


def expect_plan(s, cid, want, what):
    r = bal(cid)
    if s.status(r, 200, "%s: GET customer-balances %d" % (what, cid)):
        s.eq(summaries(r)[1], want, "%s: repaymentPlanSummary of customer %d" % (what, cid))
    return r


def test_method_summary(s):
    cleanup_sites()
    single = lambda m: {"paymentMethod": m, "summaryType": "SINGLE"}
    multiple = {"paymentMethod": None, "summaryType": "MULTIPLE"}
    expect_method(s, 13, single("CREDIT_CARD"), "one live site")
    expect_method(s, 14, single("BACS"), "live BACS + ended CHEQUE site")
    expect_method(s, 15, multiple, "two live sites, two methods")
    expect_method(s, 35, multiple, "EUR: two live sites + an ended one")
    expect_method(s, 40, multiple, "JPY: two live sites")
    expect_method(s, 39, single("GO_CARDLESS"), "JPY: one live site")
    yesterday = (today() - datetime.timedelta(days=1)).isoformat()
    later = (today() + datetime.timedelta(days=30)).isoformat()
    try:
        sid = add_site(13, "BACS", end_date=later)
        expect_method(s, 13, multiple, "extra site ending in 30 days (live)")
        sql("UPDATE sites SET end_date = '%s' WHERE id = %d" % (today().isoformat(), sid))
        expect_method(s, 13, single("CREDIT_CARD"), "extra site ending today (not live)")
        sql("UPDATE sites SET end_date = '%s' WHERE id = %d" % (yesterday, sid))
        expect_method(s, 13, single("CREDIT_CARD"), "extra site ended yesterday")
        sql("UPDATE sites SET end_date = NULL, payment_method = 'CREDIT_CARD' WHERE id = %d" % sid)
        expect_method(s, 13, single("CREDIT_CARD"), "two live sites, same method")
        # NONE: customer 18's only site ended, a live site without a method.
        sql("UPDATE sites SET end_date = '%s' WHERE customer_id = 18 AND end_date IS NULL"
            % TEMP_END)
        add_site(18, None)
        expect_method(s, 18, {"paymentMethod": None, "summaryType": "NONE"},
                      "only an ended site and a live site without a method")
        expect_plan(s, 18, {"repaymentPlanAmount": None, "repaymentPlanRemainingPeriods": None,
                            "summaryType": "NONE"}, "plan only on an ended site")
    finally:
        cleanup_sites()
    expect_method(s, 18, single("BACS"), "site restored")


def test_plan_summary(s):
    cleanup_sites()
    plan = lambda a, n: {"repaymentPlanAmount": a, "repaymentPlanRemainingPeriods": n,
                         "summaryType": "SINGLE"}
    none = {"repaymentPlanAmount": None, "repaymentPlanRemainingPeriods": None,
            "summaryType": "NONE"}
    expect_plan(s, 15, plan(Decimal("25.50"), 6), "plan on one of two live sites")
    r = expect_plan(s, 18, plan(Decimal("25.50"), 6), "plan 25.50 x 6")
    s.check(money_text(r, "repaymentPlanAmount", "25.50"), "plan amount written as 25.50", r.raw)
    expect_plan(s, 33, plan(Decimal("25.50"), 6), "EUR plan")
    r = expect_plan(s, 39, plan(2500, 6), "JPY plan")
    s.check(money_text(r, "repaymentPlanAmount", "2500"), "JPY plan amount without decimals",
            r.raw)
    expect_plan(s, 13, none, "no plan")
    expect_plan(s, 14, none, "no plan (ended site)")
    expect_plan(s, 40, none, "JPY no plan")
    yesterday = (today() - datetime.timedelta(days=1)).isoformat()
    try:
        add_site(15, "GO_CARDLESS", plan=1000, periods=3)
        expect_plan(s, 15, {"repaymentPlanAmount": None, "repaymentPlanRemainingPeriods": None,
                            "summaryType": "MULTIPLE"}, "two live sites, two plans")
        add_site(14, "BACS", end_date=yesterday, plan=999, periods=2)
        expect_plan(s, 14, none, "plan only on a site ended yesterday")
        expect_method(s, 14, {"paymentMethod": "BACS", "summaryType": "SINGLE"},
                      "ended extra BACS site")
    finally:
        cleanup_sites()
    expect_plan(s, 15, plan(Decimal("25.50"), 6), "plan back to SINGLE after cleanup")


def test_unknown_customer(s):
    s.error(get("/v1/customer-balances?customer_id=999999", TOK), 404, "NOT_FOUND",
            "GET customer-balances of an unknown customer")
    s.error(get("/v1/customer-balances?customer_id=39", TOK), 404, "NOT_FOUND",
            "GET customer-balances of another tenant's customer")
    s.error(get("/v1/customer-balances", TOK), 400, "MISSING_PARAMETER",
            "GET customer-balances without customer_id", field="customer_id")
    for bad in ("0", "-3", "abc"):
        s.error(get("/v1/customer-balances?customer_id=" + bad, TOK), 400, "INVALID_PARAMETER",
                "GET customer-balances?customer_id=" + bad, field="customer_id")
    s.error(get("/v1/customer-balances?customer_id=13&foo=1", TOK), 400, "UNKNOWN_PARAMETER",
            "GET customer-balances with an unknown parameter", field="foo")


def adj_snapshot(cid):
    return dict(
        balance=balance_row(cid),
        ledger=sql_one("SELECT CONCAT(COUNT(*), '/', COALESCE(MAX(id), 0)) FROM ledger"),
        events=sql_one("SELECT COUNT(*) FROM invoice_payments"),
        invoices=sql("SELECT kind, id, paid, payment_status FROM invoices"
                     " WHERE customer_id = %d ORDER BY kind, id" % cid))


def check_adjustment(s, cid, amount, description, digits, currency):
    before = adj_snapshot(cid)
    minor = int(Decimal(amount).scaleb(digits))
    r = adjust(cid, amount, description)
    what = "adjustment %s of customer %d" % (amount, cid)
    if not s.status(r, 200, what):
        return None
    j = r.json
    s.eq(r.header("Content-Type"), "application/json; charset=utf-8", what + ": content type")
    s.eq(set(j.keys()), ADJ_FIELDS, what + ": exactly the adjustment fields")
    s.eq((j.get("customerId"), j.get("amountInMajorCurrency"), j.get("currencyId"),
          j.get("description")), (cid, amount, currency, description), what + ": body")
    row = sql("SELECT txn_type, customer_payment_type, amount, resulting_balance, currency_id,"
              " COALESCE(description, '<null>'), payment_date FROM ledger WHERE id = %d"
              " AND customer_id = %d" % (j.get("id") or 0, cid))
    s.eq(row, [["ADJUSTMENT", "ADJUSTMENT", str(minor), str(before["balance"] + minor),
                str(currency), description if description is not None else "<null>",
                today().isoformat()]], what + ": the ADJUSTMENT ledger row")
    after = adj_snapshot(cid)
    s.eq(after["balance"], before["balance"] + minor, what + ": balance moved exactly")
    s.eq(after["invoices"], before["invoices"], what + ": invoices untouched")
    s.eq(after["events"], before["events"], what + ": no invoice payment event")
    g = get("/v1/customer-payments/%d" % j["id"], tok_for(cid))
    if s.status(g, 200, what + ": GET it as a customer payment"):
        s.eq((g.json.get("customerPaymentType"), g.json.get("txnType"),
              g.json.get("amountInMajorCurrency"), g.json.get("resultingCustomerBalance")),
             ("ADJUSTMENT", "ADJUSTMENT", amount, major(before["balance"] + minor, digits)),
             what + ": statement row")
    return j


def test_adjustments(s):
    cid = 17
    b0 = bal(cid).json["balance"]
    check_adjustment(s, cid, Decimal("12.34"), "goodwill credit", 2, 1)
    check_adjustment(s, cid, Decimal("-5.67"), "manual debit", 2, 1)
    check_adjustment(s, cid, Decimal("0.01"), None, 2, 1)
    j = bal(cid).json
    s.eq(j["balance"], b0 + Decimal("12.34") - Decimal("5.67") + Decimal("0.01"),
         "adjustments: API balance moved by exactly their sum")
    s.check(j["balance"] - b0 > 0, "adjustments: positive net = credit", j["balance"] - b0)
    check_consistent(s, cid, "adjustments")
    # Limits: ±100000 accepted (they cancel out), beyond that or 0 refused.
    check_adjustment(s, cid, Decimal("100000.00"), "upper limit", 2, 1)
    check_adjustment(s, cid, Decimal("-100000.00"), "lower limit", 2, 1)
    s.eq(bal(cid).json["balance"], j["balance"], "adjustments: ±100000 cancel out")
    # EUR and JPY.
    check_adjustment(s, 33, Decimal("-0.01"), "EUR debit", 2, 2)
    jb = bal(40).json["balance"]
    check_adjustment(s, 40, 7, "JPY credit", 0, 3)
    check_adjustment(s, 40, -7, "JPY debit", 0, 3)
    s.eq(bal(40).json["balance"], jb, "JPY adjustments: +7 - 7 leave the balance")

    before = adj_snapshot(cid)
    ok = {"customerId": cid, "amountInMajorCurrency": Decimal("1.00"), "description": "x"}

    def with_(**kw):
        d = dict(ok)
        d.update(kw)
        return d

    cases = [
        ("100000.01", with_(amountInMajorCurrency=Decimal("100000.01")), "INVALID_AMOUNT",
         "amountInMajorCurrency", TOK),
        ("-100000.01", with_(amountInMajorCurrency=Decimal("-100000.01")), "INVALID_AMOUNT",
         "amountInMajorCurrency", TOK),
        ("0", with_(amountInMajorCurrency=Decimal("0")), "INVALID_AMOUNT",
         "amountInMajorCurrency", TOK),
        ("0.00", with_(amountInMajorCurrency=Decimal("0.00")), "INVALID_AMOUNT",
         "amountInMajorCurrency", TOK),
        ("-0.001", with_(amountInMajorCurrency=Decimal("-0.001")), "INVALID_AMOUNT",
         "amountInMajorCurrency", TOK),
        ("1.001", with_(amountInMajorCurrency=Decimal("1.001")), "INVALID_AMOUNT",
         "amountInMajorCurrency", TOK),
        ("JPY 1.5", with_(customerId=40, amountInMajorCurrency=Decimal("1.5")), "INVALID_AMOUNT",
         "amountInMajorCurrency", TOK3),
        ("amount as a string", with_(amountInMajorCurrency="1.00"), "INVALID_FIELD",
         "amountInMajorCurrency", TOK),
        ("missing customerId", {k: v for k, v in ok.items() if k != "customerId"},
         "MISSING_FIELD", "customerId", TOK),
        ("missing amount", {k: v for k, v in ok.items() if k != "amountInMajorCurrency"},
         "MISSING_FIELD", "amountInMajorCurrency", TOK),
        ("unknown customer", with_(customerId=999999), "UNKNOWN_REFERENCE", "customerId", TOK),
        ("another tenant's customer", with_(customerId=39), "UNKNOWN_REFERENCE", "customerId",
         TOK),
        ("unknown field type", with_(type="BACS"), "UNKNOWN_FIELD", "type", TOK),
        ("description of 256 characters", with_(description="d" * 256), "INVALID_FIELD",
         "description", TOK),
    ]
    jb = balance_row(40)
    for what, body, code, field, tok in cases:
        r = post("/v1/customer-balance-adjustments", raw=dumps(body), tok=tok)
        s.error(r, 400, code, "POST customer-balance-adjustments, %s" % what, field=field)
    after = adj_snapshot(cid)
    for k in before:
        s.eq(after[k], before[k], "refused adjustments changed nothing (%s)" % k)
    s.eq(balance_row(40), jb, "refused JPY adjustment changed nothing")


Suite().run([
    test_initial_balance,
    test_totals,
    test_since_last_invoice,
    test_method_summary,
    test_plan_summary,
    test_unknown_customer,
    test_adjustments,
])
