"""End-to-end tests of GET /v1/customer-credit-status (spec 4.10, 1.4, 1.5, 1.2).

One item per customer with a credit threshold: customerId, creditThreshold,
billAmount (-balance when negative, else 0), valueDifference (threshold -
billAmount), percentageDifference (billAmount / threshold * 100, two
decimals, half-up) and openBillRunValue (the customer's invoices in OPEN bill
runs).

Customers written (nobody else touches them): 62, 64 (owner 1, GBP), 76, 78
(owner 2, EUR), 80 (owner 3, JPY). Balances are set to an exact value with
POST /v1/customer-balance-adjustments (the delta from the balance read first),
so the file passes when run again on the same stack. Customer 64's threshold
is changed with SQL for the exact half-way cases and put back at the end.
"""
import json
import os
import re
import urllib.parse

from paytest import *

TOK = token()                                   # contract owners 1 and 2
TOK1 = token(sub="e2e-credit-1", owners="1")
TOK2 = token(sub="e2e-credit-2", owners="2")
TOK3 = token(sub="e2e-credit-3", owners="3")
TOK123 = token(sub="e2e-credit-123", owners="1,2,3")
ADMIN = token(sub="e2e-credit-admin", scope="payments:read payments:admin", owners=None)
READ = token(sub="e2e-credit-read", scope="payments:read")
WRITE_ONLY = token(sub="e2e-credit-wo", scope="payments:write")

PATH = "/v1/customer-credit-status"
FIELDS = {"customerId", "creditThreshold", "billAmount", "valueDifference",
          "percentageDifference", "openBillRunValue"}
FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "e2e.json")
with open(FIXTURE) as f:
    FIX = json.load(f, parse_float=Decimal)
DIGITS = {c["id"]: c["minorDigits"] for c in FIX["currencies"]}
CUSTOMERS = {c["id"]: c for c in FIX["customers"]}


# ---------------------------------------------------------------- helpers

def dumps(obj):
    """JSON text with Decimal written as the plain number it is (never a float)."""
    if isinstance(obj, Decimal):
        return format(obj, "f")
    if isinstance(obj, dict):
        return "{" + ",".join(json.dumps(k) + ":" + dumps(v) for k, v in obj.items()) + "}"
    return json.dumps(obj)


def digits(cid):
    return DIGITS[CUSTOMERS[cid]["currencyId"]]


def major(minor, d):
    return Decimal(int(minor)).scaleb(-d)


def tok_for(cid):
    return TOK123


def q(**params):
    params.setdefault("page", 1)
    params.setdefault("pageSize", 1000)
    return PATH + "?" + urllib.parse.urlencode(params, quote_via=urllib.parse.quote, safe=":,")


def balance_minor(cid):
    return int(sql_one("SELECT balance FROM customers WHERE id = %d" % cid))


def set_balance(s, cid, target):
    """Moves customer cid's balance to exactly `target` (Decimal, major unit)
    with one balance adjustment; checks that the API reports it."""
    d = digits(cid)
    cur = major(balance_minor(cid), d)
    delta = target - cur
    if delta != 0:
        r = post("/v1/customer-balance-adjustments",
                 raw=dumps({"customerId": cid, "amountInMajorCurrency": delta,
                            "description": "e2e credit status"}), tok=tok_for(cid))
        s.status(r, 200, "adjust customer %d by %s" % (cid, delta))
    r = get("/v1/customer-balances?customer_id=%d" % cid, tok=tok_for(cid))
    s.eq(r.json.get("balance") if r.json else None, target,
         "customer %d balance is now %s" % (cid, target))


def set_threshold(cid, minor):
    sql("UPDATE customers SET credit_threshold = %s WHERE id = %d"
        % ("NULL" if minor is None else int(minor), cid))


def item_text(raw, cid):
    """The raw JSON text of the object for customer cid in a list body."""
    m = re.search(r'\{[^{}]*"customerId"\s*:\s*%d\s*[,}][^{}]*\}?' % cid, raw)
    return m.group(0) if m else ""


def raw_number(text, field):
    m = re.search(r'"%s"\s*:\s*(-?[0-9]+(?:\.[0-9]+)?)\s*[,}]' % field, text)
    return m.group(1) if m else None


def open_bill_run_value(cid):
    open_runs = {b["id"] for b in FIX["billRuns"] if b["status"] == "OPEN"}
    total = Decimal(0)
    for inv in FIX["invoices"] + FIX["adhocInvoices"]:
        if inv["customerId"] == cid and inv["billRunId"] in open_runs:
            total += Decimal(str(inv["amount"]))
    return total


def threshold_customers(owners):
    return {c["id"] for c in FIX["customers"]
            if c.get("creditThreshold") is not None and c["contractOwnerId"] in owners}


def one(s, cid, what, tok=None):
    r = get(q(customerId=cid), tok=tok or tok_for(cid))
    s.status(r, 200, what + ": GET ?customerId=%d" % cid)
    items = r.json if isinstance(r.json, list) else []
    s.eq(len(items), 1, what + ": exactly one item for customer %d" % cid)
    return (items[0] if items else {}), item_text(r.raw, cid)


def fmt(v, d):
    return format(Decimal(v).quantize(Decimal(1).scaleb(-d)), "f")


def check_case(s, cid, bal, want_pct, threshold=None):
    """Sets the balance of cid to bal and checks the whole item."""
    d = digits(cid)
    threshold = Decimal(CUSTOMERS[cid]["creditThreshold"]) if threshold is None else threshold
    set_balance(s, cid, bal)
    what = "customer %d balance %s threshold %s" % (cid, bal, threshold)
    it, text = one(s, cid, what)
    bill = -bal if bal < 0 else Decimal(0)
    s.eq(set(it.keys()), FIELDS, what + ": fields")
    s.eq(it.get("customerId"), cid, what + ": customerId")
    s.eq(it.get("creditThreshold"), threshold, what + ": creditThreshold")
    s.eq(it.get("billAmount"), bill, what + ": billAmount")
    s.eq(it.get("valueDifference"), threshold - bill, what + ": valueDifference")
    s.eq(it.get("percentageDifference"), Decimal(want_pct), what + ": percentageDifference")
    s.eq(it.get("openBillRunValue"), open_bill_run_value(cid), what + ": openBillRunValue")
    # Exact text: money with the currency's decimals, the percentage with two.
    s.eq(raw_number(text, "percentageDifference"), want_pct,
         what + ": percentageDifference written with exactly two decimals")
    s.eq(raw_number(text, "creditThreshold"), fmt(threshold, d),
         what + ": creditThreshold written with %d decimals" % d)
    s.eq(raw_number(text, "billAmount"), fmt(bill, d),
         what + ": billAmount written with %d decimals" % d)
    s.eq(raw_number(text, "valueDifference"), fmt(threshold - bill, d),
         what + ": valueDifference written with %d decimals" % d)
    s.eq(raw_number(text, "openBillRunValue"), fmt(open_bill_run_value(cid), d),
         what + ": openBillRunValue written with %d decimals" % d)


def items_of(s, r, what):
    s.status(r, 200, what)
    return r.json if isinstance(r.json, list) else []


# ---------------------------------------------------------------- tests

def test_values_and_rounding(s):
    D = Decimal
    # Threshold 500.00: the percentage is bill/5 hundredths of a percent.
    check_case(s, 62, D("-1.23"), "0.25")        # 0.246 -> 0.25 (not truncated)
    check_case(s, 62, D("-1.27"), "0.25")        # 0.254 -> 0.25
    check_case(s, 62, D("-2.49"), "0.50")        # 0.498 -> 0.50, trailing zero kept
    check_case(s, 62, D("-0.01"), "0.00")        # 0.002 -> 0.00
    check_case(s, 62, D("-0.03"), "0.01")        # 0.006 -> 0.01
    check_case(s, 62, D("-500.00"), "100.00")    # exactly the threshold
    check_case(s, 62, D("-1234.57"), "246.91")   # over it: negative valueDifference
    check_case(s, 62, D("0.00"), "0.00")         # owes nothing
    check_case(s, 62, D("10.00"), "0.00")        # in credit: billAmount 0, not -10
    check_case(s, 76, D("-2.50"), "0.50")        # EUR
    check_case(s, 80, D("-123"), "0.25")         # JPY: money without decimals

    # Exact half-way cases need another threshold: 400.00 -> bill/4 hundredths.
    try:
        set_threshold(64, 40000)
        t = D("400.00")
        check_case(s, 64, D("-0.02"), "0.01", t)     # 0.005 -> 0.01 (half-even: 0.00)
        check_case(s, 64, D("-0.06"), "0.02", t)     # 0.015 -> 0.02
        check_case(s, 64, D("-0.10"), "0.03", t)     # 0.025 -> 0.03 (half-even: 0.02)
        check_case(s, 64, D("-1.50"), "0.38", t)     # 0.375 -> 0.38
        set_threshold(64, 20000)                     # 200.00 -> bill/2 hundredths
        t = D("200.00")
        check_case(s, 64, D("-2.01"), "1.01", t)     # 1.005 (binary float: 1.00499..)
        check_case(s, 64, D("-0.29"), "0.15", t)     # 0.145 (binary float: 0.14499..)
        check_case(s, 64, D("-0.01"), "0.01", t)     # 0.005
        check_case(s, 64, D("-99999.99"), "50000.00", t)  # 49999.995 -> 50000.00
    finally:
        set_threshold(64, 50000)
    check_case(s, 64, D("-0.99"), "0.20")            # 0.198 -> 0.20, threshold back


def test_filters(s):
    D = Decimal
    # Known state for the filter checks.
    set_balance(s, 62, D("-1.23"))      # 0.25
    set_balance(s, 64, D("-1.00"))      # 0.20
    set_balance(s, 76, D("-1234.57"))   # 246.91
    set_balance(s, 78, D("5.00"))       # 0.00

    # customerId
    items = items_of(s, get(q(customerId=62), tok=TOK), "customerId=62")
    s.eq([i.get("customerId") for i in items], [62], "customerId=62: only customer 62")
    r = get(q(customerId=61), tok=TOK)
    s.eq(items_of(s, r, "customerId=61"), [], "customerId=61 (no threshold): absent")
    s.eq(r.header("X-Total-Count"), "0", "customerId=61: X-Total-Count 0")
    s.eq(items_of(s, get(q(customerId=99999), tok=TOK), "customerId=99999"), [],
         "unknown customerId: empty list")
    for bad in ["abc", "0", "-1", "1.5", "", "in:62,64", "62 "]:
        s.error(get(q(customerId=bad), tok=TOK), 400, "INVALID_PARAMETER",
                "customerId=%r -> 400" % bad, field="customerId")

    # percentageDifference, plain values compare numerically
    def pct_items(value, what):
        items = items_of(s, get(q(percentageDifference=value), tok=TOK), what)
        return {i["customerId"]: i["percentageDifference"] for i in items}

    got = pct_items("0.25", "percentageDifference=0.25")
    s.check(62 in got, "percentageDifference=0.25 has customer 62", sorted(got))
    s.check(all(v == D("0.25") for v in got.values()), "percentageDifference=0.25: only 0.25",
            got)
    s.check(64 not in got and 76 not in got, "percentageDifference=0.25: not 64 or 76", sorted(got))
    for text in ["0.2", "0.20"]:
        got = pct_items(text, "percentageDifference=" + text)
        s.check(64 in got and all(v == D("0.20") for v in got.values()),
                "percentageDifference=%s matches 0.20 numerically" % text, got)
    got = pct_items("246.91", "percentageDifference=246.91")
    s.check(76 in got and all(v == D("246.91") for v in got.values()),
            "percentageDifference=246.91", got)
    got = pct_items("0", "percentageDifference=0")
    s.check(78 in got and all(v == D("0.00") for v in got.values()),
            "percentageDifference=0 matches 0.00", got)
    got = pct_items("in:0.25,246.91", "percentageDifference=in:0.25,246.91")
    s.check({62, 76} <= set(got) and all(v in (D("0.25"), D("246.91")) for v in got.values()),
            "percentageDifference=in:0.25,246.91", got)
    s.check(64 not in got and 78 not in got, "in:0.25,246.91 leaves 64 and 78 out", sorted(got))
    got = pct_items("in:0.2", "percentageDifference=in:0.2")
    s.check(64 in got and all(v == D("0.20") for v in got.values()), "in:0.2 (one value)", got)

    # like: matches the two-decimal text
    got = pct_items("like:246.9", "percentageDifference=like:246.9")
    s.check(76 in got and all("246.9" in format(v, "f") for v in got.values()),
            "like:246.9", got)
    got = pct_items("like:.2", "percentageDifference=like:.2")
    s.check({62, 64} <= set(got) and all(".2" in format(v, "f") for v in got.values()),
            "like:.2 contains 0.25 and 0.20", got)
    s.check(76 not in got and 78 not in got, "like:.2 leaves 246.91 and 0.00 out", sorted(got))
    s.eq(pct_items("like:%", "like:%"), {}, "like:% is a literal percent sign: nothing")
    s.eq(pct_items("like:_", "like:_"), {}, "like:_ is a literal underscore: nothing")

    # combined filters are ANDed
    s.eq(items_of(s, get(q(customerId=62, percentageDifference="246.91"), tok=TOK),
                  "customerId=62&percentageDifference=246.91"), [],
         "customerId and percentageDifference combine with AND")
    items = items_of(s, get(q(customerId=76, percentageDifference="246.91"), tok=TOK),
                     "customerId=76&percentageDifference=246.91")
    s.eq([i.get("customerId") for i in items], [76], "customerId=76 and 246.91: customer 76")

    for bad in ["abc", "1.234", "in:0.25,x", "", "lt:5", "0.25%", "0x10", "in:",
                "0.25,0.50"]:
        s.error(get(q(percentageDifference=bad), tok=TOK), 400, "INVALID_PARAMETER",
                "percentageDifference=%r -> 400" % bad, field="percentageDifference")
    s.error(get(q(percentagedifference="0.25"), tok=TOK), 400, "UNKNOWN_PARAMETER",
            "misspelt filter name -> 400", field="percentagedifference")


def test_one_item_per_threshold_customer(s):
    items = items_of(s, get(q(), tok=TOK), "full list, owners 1,2")
    ids = [i.get("customerId") for i in items]
    s.eq(sorted(ids), sorted(threshold_customers({1, 2})),
         "owners 1,2: exactly the customers with a threshold (the even ones)")
    s.eq(len(ids), len(set(ids)), "one item per customer")
    s.check(all(c % 2 == 0 for c in ids), "odd customers (no threshold) are absent",
            [c for c in ids if c % 2])
    s.eq(ids, sorted(ids), "default order: customerId ascending")
    s.check(all(set(i.keys()) == FIELDS for i in items), "every item has exactly the six fields")
    bad = [i for i in items
           if i["valueDifference"] != i["creditThreshold"] - i["billAmount"] or i["billAmount"] < 0]
    s.eq(bad, [], "valueDifference = creditThreshold - billAmount, billAmount >= 0 everywhere")
    # two decimals in the raw text, for every item
    pcts = re.findall(r'"percentageDifference"\s*:\s*([^,}]*)', get(q(), tok=TOK).raw)
    s.check(len(pcts) == len(ids) and all(re.fullmatch(r"[0-9]+\.[0-9]{2}", p) for p in pcts),
            "every percentageDifference has exactly two decimals", pcts[:5])

    # A customer's balance row vs the item (all customers, including other tests')
    rows = {int(r[0]): (int(r[1]), int(r[2])) for r in
            sql("SELECT id, balance, credit_threshold FROM customers"
                " WHERE credit_threshold IS NOT NULL")}
    wrong = []
    for i in items:
        bal, thr = rows[i["customerId"]]
        d = digits(i["customerId"])
        bill = max(-bal, 0)
        want = (2 * bill * 10000 + thr) // (2 * thr)
        if (i["billAmount"] != major(bill, d) or
                i["percentageDifference"] != major(want, 2)):
            wrong.append((i["customerId"], bal, thr, i["billAmount"], i["percentageDifference"]))
    s.eq(wrong, [], "billAmount and percentageDifference agree with the balances in the database")


def test_tenancy(s):
    for tok, owners, what in [(TOK1, {1}, "owner 1"), (TOK2, {2}, "owner 2"),
                              (TOK3, {3}, "owner 3"), (TOK123, {1, 2, 3}, "owners 1,2,3"),
                              (ADMIN, {1, 2, 3}, "admin")]:
        items = items_of(s, get(q(), tok=tok), "list as " + what)
        s.eq(sorted(i.get("customerId") for i in items), sorted(threshold_customers(owners)),
             what + ": only its own customers with a threshold")
    s.eq(items_of(s, get(q(customerId=80), tok=TOK), "customerId=80 as owners 1,2"), [],
         "another owner's customer (80) is silently absent")
    s.eq(items_of(s, get(q(customerId=62), tok=TOK2), "customerId=62 as owner 2"), [],
         "owner 2 does not see customer 62")
    items = items_of(s, get(q(customerId=62), tok=READ), "read-only token")
    s.eq(len(items), 1, "payments:read is enough")
    s.status(get(q(), tok=WRITE_ONLY), 403, "payments:write only -> 403")
    r = get(q())
    s.status(r, 401, "no token -> 401")
    s.check("Bearer" in (r.header("WWW-Authenticate") or ""), "no token: WWW-Authenticate Bearer")
    r = post(PATH, body={}, tok=TOK)
    s.status(r, 405, "POST -> 405")
    s.check("GET" in (r.header("Allow") or ""), "405 Allow lists GET", r.header("Allow"))


def test_sort_fields_paging(s):
    full = items_of(s, get(q(), tok=TOK), "full list")
    n = len(full)

    items = items_of(s, get(q(sort="percentageDifference:desc"), tok=TOK), "sort pct desc")
    keys = [(-i["percentageDifference"], i["customerId"]) for i in items]
    s.eq(keys, sorted(keys), "sort=percentageDifference:desc, ties by customerId ascending")
    s.eq(len(items), n, "sorting keeps every item")
    items = items_of(s, get(q(sort="billAmount,customerId:desc"), tok=TOK), "sort two keys")
    keys = [(i["billAmount"], -i["customerId"]) for i in items]
    s.eq(keys, sorted(keys), "sort=billAmount,customerId:desc")
    items = items_of(s, get(q(sort="valueDifference:asc"), tok=TOK), "sort valueDifference:asc")
    keys = [(i["valueDifference"], i["customerId"]) for i in items]
    s.eq(keys, sorted(keys), "sort=valueDifference:asc")
    items = items_of(s, get(q(sort="openBillRunValue:desc,creditThreshold"), tok=TOK), "sort obrv")
    keys = [(-i["openBillRunValue"], i["creditThreshold"], i["customerId"]) for i in items]
    s.eq(keys, sorted(keys), "sort=openBillRunValue:desc,creditThreshold")

    items = items_of(s, get(q(fields="customerId,percentageDifference"), tok=TOK), "fields")
    s.check(len(items) == n and all(set(i) == {"customerId", "percentageDifference"} for i in items),
            "fields=customerId,percentageDifference: only those keys", items[:2])
    items = items_of(s, get(q(fields="billAmount", customerId=62), tok=TOK), "fields=billAmount")
    s.check(len(items) == 1 and set(items[0]) == {"billAmount"}, "fields=billAmount", items)

    for params, field in [({"sort": "balance"}, "sort"), ({"sort": "customerId:up"}, "sort"),
                          ({"fields": "customerId,nope"}, "fields"), ({"fields": ""}, "fields"),
                          ({"page": 0}, "page"), ({"pageSize": 0}, "pageSize"),
                          ({"pageSize": 1001}, "pageSize"), ({"page": "x"}, "page")]:
        s.error(get(q(**params), tok=TOK), 400, "INVALID_PARAMETER",
                "%r -> 400" % (params,), field=field)
    for missing in ["page", "pageSize"]:
        params = {"page": 1, "pageSize": 10}
        del params[missing]
        r = get(PATH + "?" + urllib.parse.urlencode(params), tok=TOK)
        s.status(r, 400, "without %s -> 400" % missing)
        s.eq((r.json or {}).get("field"), missing, "without %s: field" % missing)

    # paging: pages of 7 put together are the whole list, in order
    pages, page = [], 1
    while page < 50:
        r = get(q(page=page, pageSize=7), tok=TOK)
        chunk = items_of(s, r, "page %d of 7" % page)
        if page == 1:
            s.eq(r.header("X-Total-Count"), str(n), "X-Total-Count = number of items")
            s.check('rel="next"' in (r.header("Link") or ""), "page 1: Link has rel=next",
                    r.header("Link"))
        if not chunk:
            break
        pages += chunk
        page += 1
    s.eq([i["customerId"] for i in pages], [i["customerId"] for i in full],
         "pages of 7 together are the full list")
    s.eq(items_of(s, get(q(page=1000, pageSize=7), tok=TOK), "page past the end"), [],
         "a page past the end is an empty array")


if __name__ == "__main__":
    Suite().run([test_values_and_rounding, test_filters, test_one_item_per_threshold_customer,
                 test_tenancy, test_sort_fields_paging])
