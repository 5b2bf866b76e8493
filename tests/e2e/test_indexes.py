"""EXPLAIN the queries the server runs and check that MariaDB reaches the rows
through an index (spec 3: the ledger is append-only and grows without bound,
so no hot query may scan a whole table). The SQL is copied from the
handlers, with the bound parameters substituted by literal values:

  handlers/list.c (select_list, list_run, resource_get) over the ledger
  resource of handlers/customer_payments.c; allocate() in
  handlers/customer_payments.c; customer_load() and ledger_append() in
  handlers/api.c; customer_balances_get() in handlers/customer_balances.c.

Key names are those of db/schema/001_init.sql. Read only: nothing is written.
"""
from paytest import *

EXPLAIN_COLS = ("id", "select_type", "table", "type", "possible_keys", "key", "key_len",
                "ref", "rows", "Extra")
# Access types that reach rows through an index (or need no table access).
INDEXED = {"const", "eq_ref", "ref", "range", "ref_or_null", "index_merge", "system"}

CID = 11              # a customer with ledger rows and invoices (owner 1)
OWNERS = "1,2"        # the tenancy clause of a token with contractOwnerIds [1, 2]

# handlers/customer_payments.c: ledger_cols (SQL column) and the resource.
LEDGER_COLS = ["l.id", "l.customer_id", "l.amount", "l.resulting_balance", "l.currency_id",
               "l.description", "l.reference", "l.payment_method", "l.payment_date",
               "l.customer_payment_type", "l.txn_type", "l.invoice_number", "l.invoice_id",
               "l.bill_run_type"]
LEDGER_FROM = ("FROM ledger l JOIN customers c ON c.id = l.customer_id"
               " JOIN currencies cur ON cur.id = c.currency_id")
# handlers/list.c select_list(): the columns, then the digits expression.
SELECT_LIST = "SELECT " + ", ".join(LEDGER_COLS) + ", cur.minor_digits " + LEDGER_FROM + " WHERE 1=1"
TENANCY = " AND c.contract_owner_id IN (%s)" % OWNERS


def explain(query):
    rows = sql("EXPLAIN " + query)
    out = [dict(zip(EXPLAIN_COLS, r)) for r in rows]
    print("EXPLAIN %s" % query)
    for r in out:
        print("    " + " | ".join("%s=%s" % (k, r.get(k)) for k in EXPLAIN_COLS))
    return out


def table_row(rows, table, select_type=None):
    for r in rows:
        if r["table"] == table and (select_type is None or r["select_type"] == select_type):
            return r
    return None


def expect_index(s, rows, table, keys, what, select_type=None, types=INDEXED):
    """The access to `table` uses one of `keys` with an indexed access type."""
    r = table_row(rows, table, select_type)
    if not s.check(r is not None, "%s: EXPLAIN has a row for %s" % (what, table), rows):
        return
    s.check(r["type"] != "ALL", "%s: %s is not scanned in full" % (what, table), r)
    s.check(r["type"] in types, "%s: %s access type %s is an index access"
            % (what, table, r["type"]), r)
    s.check(r["key"] in keys, "%s: %s uses key %s (got %s)" % (what, table, "/".join(keys),
                                                               r["key"]), r)


def no_full_scan(s, rows, what):
    s.eq([(r["table"], r["type"]) for r in rows if r["type"] == "ALL"], [],
         "%s: no table scanned in full" % what)


def no_sort(s, rows, what):
    """No temporary table or filesort anywhere in the plan: the page is read
    in index order and stops after LIMIT rows, however long the ledger."""
    s.eq([(r["table"], r["Extra"]) for r in rows
          if "filesort" in (r["Extra"] or "") or "temporary" in (r["Extra"] or "")], [], what)


def test_analyze(s):
    # Fresh statistics, so the plans do not depend on what ran before.
    out = sql("ANALYZE TABLE ledger, customers, currencies, invoices, invoice_payments, sites")
    s.check(all(r[-1] in ("OK", "Table is already up to date") for r in out),
            "ANALYZE TABLE", out)
    n = int(sql_one("SELECT COUNT(*) FROM ledger WHERE customer_id = %d" % CID))
    total = int(sql_one("SELECT COUNT(*) FROM ledger"))
    print("customer %d: %d of %d ledger rows" % (CID, n, total))
    s.check(n > 0, "customer %d has ledger rows to look up" % CID, n)


def test_statement_list(s):
    # list_run(): the count, then the page (tenancy first, then the filter).
    where = TENANCY + " AND l.customer_id = %d" % CID
    rows = explain("SELECT COUNT(*) %s WHERE 1=1%s" % (LEDGER_FROM, where))
    expect_index(s, rows, "l", ("ledger_by_customer",), "statement count")
    no_full_scan(s, rows, "statement count")
    expect_index(s, rows, "c", ("PRIMARY",), "statement count")
    # The page. (CID's rows are a small share of the test ledger; a customer
    # owning most of a tiny table may legitimately be read by a full scan.)
    what = "statement page (customer %d)" % CID
    rows = explain(SELECT_LIST + where + " ORDER BY l.id LIMIT 100 OFFSET 0")
    expect_index(s, rows, "l", ("ledger_by_customer",), what, types={"ref", "range"})
    no_full_scan(s, rows, what)
    no_sort(s, rows, what + ": ORDER BY l.id LIMIT read in index order")
    # With the excludeDebits and customerPaymentType filters.
    where2 = (TENANCY + " AND l.customer_id = %d AND (l.customer_payment_type = 'CUSTOMER')"
              " AND l.amount >= 0" % CID)
    rows = explain(SELECT_LIST + where2 + " ORDER BY l.id LIMIT 100 OFFSET 0")
    expect_index(s, rows, "l", ("ledger_by_customer",), "filtered statement page")
    no_full_scan(s, rows, "filtered statement page")
    no_sort(s, rows, "filtered statement page: read in index order")


def test_get_by_id(s):
    # resource_get(): the id condition, then tenancy.
    lid = int(sql_one("SELECT MAX(id) FROM ledger WHERE customer_id = %d" % CID))
    rows = explain(SELECT_LIST + " AND l.id = %d" % lid + TENANCY)
    expect_index(s, rows, "l", ("PRIMARY",), "customer payment by id",
                 types={"const", "eq_ref", "system"})
    expect_index(s, rows, "c", ("PRIMARY",), "customer payment by id",
                 types={"const", "eq_ref", "system"})
    no_full_scan(s, rows, "customer payment by id")


def test_oldest_unpaid_invoices(s):
    for kind in (1, 2):
        rows = explain("SELECT id, amount - paid FROM invoices"
                       " WHERE customer_id = %d AND kind = %d AND is_open = 1"
                       " ORDER BY invoice_date, id FOR UPDATE" % (CID, kind))
        what = "oldest open invoices (kind %d)" % kind
        expect_index(s, rows, "invoices", ("invoice_open_by_age",), what,
                     types={"ref", "range"})
        no_sort(s, rows, what + ": ORDER BY invoice_date, id read in index order")
    rows = explain("UPDATE invoices SET paid = paid + 100 WHERE kind = 1 AND id = 1")
    expect_index(s, rows, "invoices", ("PRIMARY",), "invoice paid update",
                 types={"const", "eq_ref", "range", "system"})


def test_balance_queries(s):
    # customer_load() (with and without FOR UPDATE) and ledger_append().
    for lock in ("", " FOR UPDATE"):
        rows = explain("SELECT c.contract_owner_id, c.currency_id, c.balance, cur.minor_digits"
                       " FROM customers c JOIN currencies cur ON cur.id = c.currency_id"
                       " WHERE c.id = %d%s" % (CID, lock))
        what = "customer load" + lock
        expect_index(s, rows, "c", ("PRIMARY",), what, types={"const", "system", "eq_ref"})
        expect_index(s, rows, "cur", ("PRIMARY",), what, types={"const", "system", "eq_ref"})
    rows = explain("UPDATE customers SET balance = 0 WHERE id = %d" % CID)
    expect_index(s, rows, "customers", ("PRIMARY",), "balance update",
                 types={"const", "range", "system"})
    # customer_balances_get() reads totalPayments and the total since the
    # last invoice from the customer row (kept by the money core); what it
    # still aggregates per request are the customer's sites.
    # The summaries over live sites.
    rows = explain("SELECT COUNT(DISTINCT payment_method), MIN(payment_method) FROM sites"
                   " WHERE customer_id = %d AND (end_date IS NULL OR end_date > UTC_DATE())"
                   " AND payment_method IS NOT NULL" % CID)
    expect_index(s, rows, "sites", ("site_customer",), "payment method summary")
    rows = explain("SELECT COUNT(DISTINCT repayment_plan_amount, repayment_plan_remaining_periods),"
                   " MIN(repayment_plan_amount), MIN(repayment_plan_remaining_periods) FROM sites"
                   " WHERE customer_id = %d AND (end_date IS NULL OR end_date > UTC_DATE())"
                   " AND repayment_plan_amount > 0" % CID)
    expect_index(s, rows, "sites", ("site_customer",), "repayment plan summary")


Suite().run([
    test_analyze,
    test_statement_list,
    test_get_by_id,
    test_oldest_unpaid_invoices,
    test_balance_queries,
])
