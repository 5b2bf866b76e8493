"""The ledger invariants of spec 3 under concurrent writes.

(a) customer 20: 8 threads post 240 payments (NORMAL and ADHOC) and balance
    adjustments at once; afterwards balance, ledger chain, invoices and
    invoice payment events must all agree.
(b) customer 21: one Idempotency-Key sent by 8 threads at once (spec 1.6).
(c) customers 22-25, 34, 36: payments for different customers in parallel.
(d) customer 25: while another session holds its row lock for longer than
    the lock wait, a balance adjustment gets the app's 503 UNAVAILABLE well
    before nginx's fastcgi_read_timeout and writes nothing; the same request
    with its Idempotency-Key then does the work once.

Random amounts come from random.Random(seed); the seed is printed when a
check fails and can be fixed with E2E_SEED=<n>. Expectations are computed
from the state read first, so the file passes when run again on the stack.
"""
import datetime
import json
import os
import random
import shlex
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from paytest import *

TOK = token()
SEED = int(os.environ.get("E2E_SEED") or random.SystemRandom().randrange(1, 1 << 31))
THREADS = 8
METHODS = ["BACS", "CHEQUE", "CREDIT_CARD", "DIRECT_DEBIT", "OTHER"]


# ---------------------------------------------------------------- helpers

def today():
    return datetime.datetime.now(datetime.timezone.utc).date().isoformat()


def dumps(obj):
    if isinstance(obj, Decimal):
        return format(obj, "f")
    if isinstance(obj, dict):
        return "{" + ",".join(json.dumps(k) + ":" + dumps(v) for k, v in obj.items()) + "}"
    return json.dumps(obj)


def major(minor):
    return Decimal(int(minor)).scaleb(-2)


def balance(cid):
    return int(sql_one("SELECT balance FROM customers WHERE id = %d" % cid))


def max_ledger(cid):
    return int(sql_one("SELECT COALESCE(MAX(id), 0) FROM ledger WHERE customer_id = %d" % cid))


def add_invoice(cid, kind, amount_minor, date, prefix="E2E-CONC"):
    txn, cpt, brt, bill_run = (("INVOICE_CREATED", "INVOICE", "NORMAL", 1) if kind == 1 else
                               ("ADHOC_INVOICE_CREATED", "ADHOC_INVOICE", "ADHOC", 3))
    sql("START TRANSACTION;"
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
        "COMMIT;" % dict(c=cid, k=kind, a=amount_minor, d=date, p=prefix, t=txn,
                         cpt=cpt, brt=brt, br=bill_run))


def send(req):
    """req: dict(kind='pay'|'adj', cid, amount (minor), brt, method). Returns the
    request with status/json/raw filled in."""
    if req["kind"] == "pay":
        body = {"customerId": req["cid"], "amountInMajorCurrency": major(req["amount"]),
                "type": req["method"], "billRunType": req["brt"],
                "description": "e2e concurrent payment"}
        r = post("/v1/customer-payments", raw=dumps(body), tok=TOK)
    else:
        body = {"customerId": req["cid"], "amountInMajorCurrency": major(req["amount"]),
                "description": "e2e concurrent adjustment"}
        r = post("/v1/customer-balance-adjustments", raw=dumps(body), tok=TOK)
    out = dict(req)
    out.update(status=r.status, json=r.json, raw=r.raw[:300])
    return out


def check_invariants(s, cid, what):
    """Spec 3 invariants for one customer, read straight from the database."""
    tag = "%s (customer %d, seed %d)" % (what, cid, SEED)
    ledger = [tuple(int(x) if i != 1 and i != 3 else x for i, x in enumerate(r))
              for r in sql("SELECT id, txn_type, amount, COALESCE(bill_run_type, ''),"
                           " resulting_balance FROM ledger WHERE customer_id = %d ORDER BY id"
                           % cid)]
    prev, broken = 0, []
    for lid, txn, amount, brt, resulting in ledger:
        if resulting != prev + amount:
            broken.append((lid, txn, prev, amount, resulting))
        prev = resulting
    s.eq(broken[:5], [], "%s: resultingCustomerBalance chain (row = previous + amount)" % tag)
    total = sum(r[2] for r in ledger)
    s.eq(balance(cid), total, "%s: customers.balance = sum of ledger amounts" % tag)
    r = get("/v1/customer-balances?customer_id=%d" % cid, TOK)
    if s.status(r, 200, "%s: GET customer-balances" % tag):
        s.eq(r.json.get("balance"), major(total), "%s: API balance = sum of ledger amounts" % tag)

    invs = [dict(kind=int(x[0]), id=int(x[1]), amount=int(x[2]), paid=int(x[3]), status=x[4])
            for x in sql("SELECT kind, id, amount, paid, payment_status FROM invoices"
                         " WHERE customer_id = %d ORDER BY kind, invoice_date, id" % cid)]
    s.eq([(i["kind"], i["id"], i["amount"], i["paid"]) for i in invs
          if i["paid"] > i["amount"] or i["paid"] < 0], [],
         "%s: no invoice with paid > amount or paid < 0" % tag)
    want_status = lambda i: ("PAID" if i["paid"] >= i["amount"] else
                             "PARTIALLY_PAID" if i["paid"] > 0 else "UNPAID")
    s.eq([(i["kind"], i["id"], i["paid"], i["status"]) for i in invs
          if i["status"] != want_status(i)], [],
         "%s: payment_status derived from paid" % tag)
    events = {(int(x[0]), int(x[1])): int(x[2]) for x in sql(
        "SELECT invoice_kind, invoice_id, SUM(amount) FROM invoice_payments"
        " WHERE customer_id = %d GROUP BY invoice_kind, invoice_id" % cid)}
    s.eq([(i["kind"], i["id"], i["paid"], events.get((i["kind"], i["id"]), 0)) for i in invs
          if events.get((i["kind"], i["id"]), 0) != i["paid"]], [],
         "%s: sum of invoice payment events per invoice = invoices.paid" % tag)
    # Oldest first: in (invoice_date, id) order, paid invoices, at most one
    # partly paid, then unpaid ones (nothing else pays these invoices).
    for kind in (1, 2):
        seq = "".join("P" if i["paid"] == i["amount"] else "p" if i["paid"] > 0 else "u"
                      for i in invs if i["kind"] == kind)
        ok = seq == "P" * seq.count("P") + "p" * seq.count("p") + "u" * seq.count("u") \
            and seq.count("p") <= 1
        s.check(ok, "%s: kind %d invoices paid oldest first" % (tag, kind), seq)

    ev = sql("SELECT e.id, e.customer_payment_type, e.customer_payment_id, e.invoice_kind,"
             " e.invoice_id, e.amount, COALESCE(l.txn_type, '<none>'),"
             " COALESCE(l.customer_id, 0), COALESCE(l.bill_run_type, ''), COALESCE(l.amount, 0)"
             " FROM invoice_payments e LEFT JOIN ledger l ON l.id = e.customer_payment_id"
             " WHERE e.customer_id = %d AND e.customer_payment_type = 'CUSTOMER'" % cid)
    bad = [x for x in ev if x[6] != "PAYMENT" or int(x[7]) != cid
           or (x[8] == "ADHOC") != (x[3] == "2")]
    s.eq(bad[:5], [], "%s: every CUSTOMER event points to a PAYMENT row of the customer"
                      " with the matching bill run type" % tag)
    dup = sql("SELECT customer_payment_id, invoice_kind, invoice_id, COUNT(*) FROM invoice_payments"
              " WHERE customer_id = %d AND customer_payment_type = 'CUSTOMER'"
              " GROUP BY customer_payment_id, invoice_kind, invoice_id HAVING COUNT(*) > 1" % cid)
    s.eq(dup, [], "%s: no payment allocated twice to one invoice" % tag)
    alloc = {}
    for x in ev:
        alloc[int(x[2])] = alloc.get(int(x[2]), 0) + int(x[5])
    pays = {int(x[0]): (int(x[1]), x[2]) for x in sql(
        "SELECT id, amount, COALESCE(bill_run_type, 'NORMAL') FROM ledger"
        " WHERE customer_id = %d AND txn_type = 'PAYMENT'" % cid)}
    s.eq([(pid, a, amt) for pid, a in alloc.items() for amt in [pays.get(pid, (0,))[0]]
          if a > amt], [], "%s: no payment allocated more than its amount" % tag)
    # A payment that left credit means nothing of its kind was open then;
    # nothing has raised invoices since, so all of them are paid now.
    for kind, brt in ((1, "NORMAL"), (2, "ADHOC")):
        last_invoice = int(sql_one("SELECT COALESCE(MAX(id), 0) FROM ledger WHERE customer_id = %d"
                                   " AND invoice_kind = %d AND txn_type LIKE '%%INVOICE_CREATED'"
                                   % (cid, kind)))
        credit = [pid for pid, (amt, b) in pays.items()
                  if b == brt and alloc.get(pid, 0) < amt and pid > last_invoice]
        still_open = [i["id"] for i in invs if i["kind"] == kind and i["paid"] < i["amount"]]
        s.check(not credit or not still_open,
                "%s: %s payments left credit while kind %d invoices stayed open" % (tag, brt, kind),
                (credit[:5], still_open[:5]))
    return total


# ---------------------------------------------------------------- tests

def test_same_customer(s):
    cid = 20
    rng = random.Random(SEED)
    d = today()
    for n in range(12):
        add_invoice(cid, 1, 4000 + 100 * (n % 3), d)
    for n in range(3):
        add_invoice(cid, 2, 2500, d)
    initial = balance(cid)
    before_max = max_ledger(cid)
    check_invariants(s, cid, "before the concurrent run")

    reqs = []
    for _ in range(320):
        if rng.random() < 0.6:
            reqs.append(dict(kind="pay", cid=cid, amount=rng.randint(1, 1500),
                             brt="ADHOC" if rng.random() < 0.2 else "NORMAL",
                             method=rng.choice(METHODS)))
        else:
            a = rng.randint(-1000, 999)
            reqs.append(dict(kind="adj", cid=cid, amount=a if a != 0 else 1000, brt="", method=""))
    slices = [reqs[i::THREADS] for i in range(THREADS)]
    results = [[] for _ in range(THREADS)]
    barrier = threading.Barrier(THREADS)

    def worker(i):
        barrier.wait()
        for q in slices[i]:
            results[i].append(send(q))

    t0 = time.time()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.time() - t0
    res = [x for part in results for x in part]
    by_status = {}
    for x in res:
        by_status[x["status"]] = by_status.get(x["status"], 0) + 1
    print("concurrent run: %d requests in %.1f s from %d threads, statuses %s, seed %d"
          % (len(res), elapsed, THREADS, by_status, SEED))
    s.eq(len(res), len(reqs), "all %d requests answered" % len(reqs))
    s.eq([x for x in res if x["status"] not in (200, 503)][:5], [],
         "every response is 200 (or 503 after the server's retries) (seed %d)" % SEED)
    if by_status.get(503):
        print("NOTE: %d requests answered 503 (accepted only if they changed nothing)"
              % by_status[503])
    ok = [x for x in res if x["status"] == 200]
    s.eq([x["raw"] for x in ok if x["json"] is None or x["json"].get("amountInMajorCurrency")
          != major(x["amount"]) or x["json"].get("customerId") != cid][:5], [],
         "every 200 echoes its customer and amount (seed %d)" % SEED)
    ids = [x["json"]["id"] for x in ok if x["json"]]
    s.eq(len(set(ids)), len(ids), "every 200 has its own ledger id")

    new_rows = {int(r[0]): (r[1], int(r[2])) for r in sql(
        "SELECT id, txn_type, amount FROM ledger WHERE customer_id = %d AND id > %d"
        % (cid, before_max))}
    want_rows = {x["json"]["id"]: ("PAYMENT" if x["kind"] == "pay" else "ADJUSTMENT", x["amount"])
                 for x in ok if x["json"]}
    s.eq(sorted(set(new_rows) ^ set(want_rows))[:10], [],
         "new ledger rows = exactly the rows of the 200 responses (503s wrote nothing)"
         " (seed %d)" % SEED)
    s.eq([(k, new_rows.get(k), v) for k, v in want_rows.items() if new_rows.get(k) != v][:5], [],
         "each new ledger row has the type and amount of its request (seed %d)" % SEED)
    expected = initial + sum(x["amount"] for x in ok)
    total = check_invariants(s, cid, "after the concurrent run")
    s.eq(total, expected, "balance = initial %d + sum of accepted amounts (seed %d)"
         % (initial, SEED))
    s.eq(balance(cid), expected, "customers.balance = initial + accepted amounts (seed %d)" % SEED)


def test_idempotency_race(s):
    cid = 21
    for round_ in range(5):
        key = "e2e-conc-%s-%d" % (os.urandom(8).hex(), round_)
        body = dumps({"customerId": cid, "amountInMajorCurrency": Decimal("4.56"),
                      "type": "BACS", "description": "idempotent race"})
        before_max = max_ledger(cid)
        before_bal = balance(cid)
        barrier = threading.Barrier(THREADS)
        out = [None] * THREADS

        def worker(i):
            barrier.wait()
            out[i] = post("/v1/customer-payments", raw=body, tok=TOK,
                          headers={"Idempotency-Key": key})

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        tag = "idempotency round %d (key %s)" % (round_, key)
        statuses = sorted(r.status for r in out)
        s.eq([r.status for r in out if r.status not in (200, 409)], [],
             "%s: every response is 200 or 409 %s" % (tag, statuses))
        s.eq([r.json.get("code") if r.json else r.raw[:100] for r in out if r.status == 409
              and (r.json or {}).get("code") != "IDEMPOTENCY_IN_PROGRESS"], [],
             "%s: every 409 is IDEMPOTENCY_IN_PROGRESS" % tag)
        oks = [r for r in out if r.status == 200]
        originals = [r for r in oks if r.header("Idempotent-Replayed") != "true"]
        print("%s: statuses %s, %d replayed" % (tag, statuses, len(oks) - len(originals)))
        s.eq(len(originals), 1, "%s: exactly one original 200 %s" % (tag, statuses))
        s.eq(len({r.raw for r in oks}), 1 if oks else 0,
             "%s: every 200 carries the identical body" % tag)
        rows = sql("SELECT id, amount FROM ledger WHERE customer_id = %d AND id > %d"
                   % (cid, before_max))
        s.eq(len(rows), 1, "%s: exactly one ledger row created" % tag)
        if oks and rows and oks[0].json:
            s.eq(oks[0].json.get("id"), int(rows[0][0]), "%s: the 200 body is that row" % tag)
        s.eq(balance(cid), before_bal + 456, "%s: balance moved once" % tag)
        # Afterwards the key replays; another body with the same key is refused.
        again = post("/v1/customer-payments", raw=body, tok=TOK, headers={"Idempotency-Key": key})
        s.status(again, 200, "%s: repeat after the race" % tag)
        s.eq(again.header("Idempotent-Replayed"), "true", "%s: repeat is a replay" % tag)
        if oks:
            s.eq(again.raw, oks[0].raw, "%s: replay body identical" % tag)
        other = post("/v1/customer-payments", raw=body.replace("4.56", "4.57"), tok=TOK,
                     headers={"Idempotency-Key": key})
        s.error(other, 422, "IDEMPOTENCY_KEY_REUSED", "%s: same key, other body" % tag,
                field="Idempotency-Key")
        s.eq(len(sql("SELECT id FROM ledger WHERE customer_id = %d AND id > %d"
                     % (cid, before_max))), 1, "%s: still one ledger row" % tag)
    check_invariants(s, cid, "after the idempotency races")


def test_parallel_customers(s):
    customers = [22, 23, 24, 25, 34, 36]
    rng = random.Random(SEED + 1)
    initial = {c: balance(c) for c in customers}
    before_max = {c: max_ledger(c) for c in customers}
    reqs = [dict(kind="pay", cid=c, amount=rng.randint(1, 9000), brt="NORMAL",
                 method=rng.choice(METHODS)) for c in customers for _ in range(8)]
    rng.shuffle(reqs)
    t0 = time.time()
    with ThreadPoolExecutor(max_workers=12) as ex:
        res = list(ex.map(send, reqs))
    print("parallel customers: %d payments in %.1f s" % (len(res), time.time() - t0))
    s.eq([(x["cid"], x["status"], x["raw"]) for x in res if x["status"] != 200][:5], [],
         "payments for different customers in parallel all answer 200 (seed %d)" % SEED)
    for c in customers:
        ok = [x for x in res if x["cid"] == c and x["status"] == 200]
        n = int(sql_one("SELECT COUNT(*) FROM ledger WHERE customer_id = %d AND id > %d"
                        % (c, before_max[c])))
        s.eq(n, len(ok), "customer %d: one ledger row per accepted payment" % c)
        total = check_invariants(s, c, "parallel customers")
        s.eq(total, initial[c] + sum(x["amount"] for x in ok),
             "customer %d: balance = initial + accepted payments (seed %d)" % (c, SEED))


def test_lock_wait_gives_up_in_time(s):
    cid = 25
    key = "e2e-lockwait-%d" % random.SystemRandom().randrange(1 << 62)
    body = {"customerId": cid, "amountInMajorCurrency": Decimal("0.07"),
            "description": "lock wait " + key}
    before = max_ledger(cid)
    # The holder keeps its transaction (and the lock) until the test has its
    # answer and writes the ROLLBACK; if the test dies, the client's stdin
    # closes and it rolls back on exit.
    holder = subprocess.Popen(
        shlex.split(ENV["MYSQL_CMD"]) + ["-N", "-B", "--unbuffered"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        holder.stdin.write("START TRANSACTION; SELECT id FROM customers WHERE id = %d FOR UPDATE;"
                           " SELECT 'locked';\n" % cid)
        holder.stdin.flush()
        s.eq(holder.stdout.readline().split(), [str(cid)], "another session holds customer %d" % cid)
        s.eq(holder.stdout.readline().strip(), "locked", "its lock is taken")
        t0 = time.monotonic()
        r = post("/v1/customer-balance-adjustments", raw=dumps(body).encode(), tok=TOK,
                 headers={"Idempotency-Key": key})
        took = time.monotonic() - t0
        s.eq((r.status, (r.json or {}).get("code")), (503, "UNAVAILABLE"),
             "a request that cannot get the customer lock gets the app's 503 (%r)" % r)
        s.check(took < 11, "it answers within db_timeout (10 s), before nginx's 15 s (%.1f s)" % took)
        holder.stdin.write("ROLLBACK;\n")
    finally:
        holder.stdin.close()
        s.eq(holder.wait(timeout=60), 0, "the lock holder rolled back and ended")
    s.eq(max_ledger(cid), before, "the refused adjustment left no ledger row, also after the lock ended")
    r = post("/v1/customer-balance-adjustments", raw=dumps(body).encode(), tok=TOK,
             headers={"Idempotency-Key": key})
    s.eq(r.status, 200, "the same request with its key is done once the lock is free (%r)" % r)
    s.eq(r.header("Idempotent-Replayed"), None, "and it is not a replay of the 503")
    s.eq(int(sql_one("SELECT COUNT(*) FROM ledger WHERE customer_id = %d AND id > %d"
                     % (cid, before))), 1, "exactly one ledger row")
    check_invariants(s, cid, "lock wait")


class SeedSuite(Suite):
    def run(self, tests):
        try:
            super().run(tests)
        finally:
            if self.failed:
                print("random seed: %d (rerun with E2E_SEED=%d)" % (SEED, SEED))


SeedSuite().run([
    test_same_customer,
    test_idempotency_race,
    test_parallel_customers,
    test_lock_wait_gives_up_in_time,
])
