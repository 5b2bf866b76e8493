"""The collection engine under faults, on a stack of its own (tests/stack.sh
with one collector process, a 100 ms sandbox timeline and a 1 s lease;
tests/CMakeLists.txt starts and stops it), under full-stack HTTP load:

  1. kill -9 of the collector process (the master's child named
     pay-collector) every 200 ms, 30 times, while clients raise attempts over
     HTTP (a FAILED GO_CARDLESS event, then invoice-payment-reprocess) and
     read balances; the master respawns it every time;
  2. MariaDB killed (SIGKILL) for 5 s while the load goes on; started again
     with its own command line, as tests/stack.sh started it;
  3. recovery: the collector left alone;
  4. operators steer it with `pay-api attempts` while it runs: two
     integrated refunds wait for an ACTIVE provider; `cancel` releases the
     first one's reservation, `retry` makes the second due at once when the
     provider is back (it would otherwise wait a minute), `show` and `list`
     tell what happened, an unknown id fails.

Then, for every invoice whose reprocess was accepted: its attempt settled
(PAID_OUT), the invoice paid exactly its amount with exactly one PAYMENT
ledger row, exactly one payment at the sandbox (the sandbox keeps one row
per idempotency key and counts the calls made with it: an attempt
submitted twice under two keys would show two rows), no attempt left due,
and the ledger invariants hold for every customer of the load.

The load's requests are retried with the same Idempotency-Key until they
get a definitive answer (a reprocess whose 503 hid a commit answers 409 on
the retry: its attempt exists). Customers 81-86 of the fixture, on this
private stack only. Random choices come from E2E_SEED (printed).
"""
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import paytest  # noqa: E402
import faultlib as fl  # noqa: E402
from paytest import Suite, sql, sql_one, token  # noqa: E402

SEED = int(os.environ.get("E2E_SEED") or random.randrange(1 << 30))
CUSTOMERS = [81, 82, 83, 84, 85, 86]
CLIENTS = 4
KILLS = 30                 # kill -9 every 200 ms: about 6 s
DB_DOWN_SECONDS = 5.0
SETTLE_SECONDS = 60.0
AFTER_DB_SECONDS = 3.0
PACE_SECONDS = 0.25
RUN = uuid.uuid4().hex[:8]
TOK = token(owners="1")
COLLECTED_STATUS = "PAID_OUT"


def add_invoices(cid, amounts):
    """Raises invoices straight in the database, the way the loader does
    (as tests/e2e/test_reprocess_cancel.py); returns their ids."""
    stmts = ["START TRANSACTION;",
             "SELECT balance, currency_id INTO @b, @cur FROM customers WHERE id = %d FOR UPDATE;"
             % cid]
    for a in amounts:
        stmts.append(
            "SELECT COALESCE(MAX(id), 0) + 1 INTO @iid FROM invoices WHERE kind = 1 FOR UPDATE;"
            "INSERT INTO invoices (kind, id, customer_id, bill_run_id, invoice_number,"
            " invoice_date, amount) VALUES (1, @iid, %(c)d, 1, CONCAT('CF-%(r)s-', @iid),"
            " UTC_DATE(), %(a)d);"
            "SET @b = @b - %(a)d;"
            "INSERT INTO ledger (customer_id, txn_type, customer_payment_type, amount,"
            " resulting_balance, currency_id, payment_date, invoice_kind, invoice_id,"
            " invoice_number, bill_run_type) VALUES (%(c)d, 'INVOICE_CREATED', 'INVOICE',"
            " -%(a)d, @b, @cur, UTC_DATE(), 1, @iid, CONCAT('CF-%(r)s-', @iid), 'NORMAL');"
            "UPDATE customers SET balance = @b, payments_since_invoice = 0 WHERE id = %(c)d;"
            "SELECT @iid;" % dict(c=cid, a=a, r=RUN))
    stmts.append("COMMIT;")
    return [int(r[0]) for r in sql("".join(stmts))]


def major(minor):
    return "%d.%02d" % (minor // 100, minor % 100)


class Load:
    """Clients that raise one attempt per invoice over HTTP, and a reader."""

    def __init__(self, work):
        self.work = work               # [(cid, iid, amount)], popped by the clients
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.accepted = []             # (cid, iid, amount): reprocess 200 (or 409 after a retry)
        self.refused = []              # anything else definitive
        self.abandoned = 0             # no definitive answer when the load stopped
        self.answers = {}              # status -> count
        self.reads = 0

    def count(self, st):
        with self.lock:
            self.answers[st] = self.answers.get(st, 0) + 1

    def send(self, path, raw, key):
        """Same bytes, same key, until a definitive answer (not a connection
        error, 502/503/504 or 409 IDEMPOTENCY_IN_PROGRESS) or until the load
        stops (a claim whose request died with MariaDB is in progress until
        its lease ends: abandoned then). Returns (status or None, json, tries)."""
        tries = 0
        while True:
            tries += 1
            st, js, hd, secs, err = fl.timed_request(
                "POST", path, tok=TOK, raw=raw, headers={"Idempotency-Key": key})
            self.count(st if st is not None else "error")
            if st is not None and st not in (502, 503, 504) and not (
                    st == 409 and (js or {}).get("code") == "IDEMPOTENCY_IN_PROGRESS"):
                return st, js, tries
            if self.stop.is_set():
                return None, js, tries
            time.sleep(0.1)

    def client(self):
        while not self.stop.is_set():
            with self.lock:
                if not self.work:
                    return
                cid, iid, amount = self.work.pop()
            raw = ('{"generatedInvoiceId":%d,"amountInMajorCurrency":%s,"paymentMethod":'
                   '"GO_CARDLESS","thirdPartyPaymentStatus":"FAILED","description":"cf %s"}'
                   % (iid, major(amount), RUN))
            st, js, _ = self.send("/v1/invoice-payments", raw, "cf-%s-ev-%d" % (RUN, iid))
            if st is None:
                self.abandoned += 1
                return
            if st != 201:
                with self.lock:
                    self.refused.append((cid, iid, "event", st, js))
                continue
            raw = '{"invoiceId":%d,"billRunType":"NORMAL","notes":"cf %s"}' % (iid, RUN)
            st, js, tries = self.send("/v1/invoice-payment-reprocess", raw,
                                      "cf-%s-rp-%d" % (RUN, iid))
            with self.lock:
                if st is None:
                    self.abandoned += 1
                elif st == 200 or (st == 409 and tries > 1):
                    self.accepted.append((cid, iid, amount))
                else:
                    self.refused.append((cid, iid, "reprocess", st, js))
            time.sleep(PACE_SECONDS)

    def reader(self):
        rng = random.Random(SEED + 1)
        while not self.stop.is_set():
            fl.timed_request("GET", "/v1/customer-balances?customer_id=%d"
                             % rng.choice(CUSTOMERS), tok=TOK, timeout=10)
            self.reads += 1
            time.sleep(0.05)


def collectors():
    return fl.collectors()


def unsettled(invoices):
    """Invoices of the list not yet settled: the newest attempt not PAID_OUT
    or still due, or the invoice not fully paid."""
    if not invoices:
        return []
    ids = ",".join(str(i) for _, i, _ in invoices)
    rows = sql("SELECT i.id FROM invoices i WHERE i.kind = 1 AND i.id IN (%s) AND ("
               " i.paid <> i.amount OR EXISTS (SELECT 1 FROM attempts t WHERE t.kind = 1"
               " AND t.invoice_kind = 1 AND t.invoice_id = i.id AND (t.next_action_at IS NOT"
               " NULL OR t.status NOT IN ('FAILED', '%s'))))" % (ids, COLLECTED_STATUS))
    return [int(r[0]) for r in rows]


def cli(*args):
    p = subprocess.run([paytest.ENV["PAY_BIN"], "--config", paytest.ENV["PAY_CONFIG"], "attempts"]
                       + [str(a) for a in args], capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def refund_attempt(t, iid, amount, what):
    """An integrated refund on invoice iid; its attempt's id."""
    raw = ('{"invoiceId":%d,"billRunType":"NORMAL","amountInMajorCurrency":%s,'
           '"paymentMethod":"GO_CARDLESS","description":"cf %s %s"}' % (iid, amount, RUN, what))
    st, js, hd, secs, err = fl.timed_request("POST", "/v1/refunds", tok=TOK, raw=raw)
    if not t.check(st == 201, "%s: integrated refund 201" % what, (st, js, err)):
        return None
    return int(sql_one("SELECT id FROM attempts WHERE kind = 2 AND refund_id = %d"
                       % int(js["id"])))


def attempt_row(aid):
    return sql("SELECT status, COALESCE(error_info, ''), COALESCE(next_action_at, '')"
               " FROM attempts WHERE id = %d" % aid)[0]


def test_operators(t, invoices):
    """pay-api attempts cancel / retry / show / list against the running
    collector."""
    (c1, i1, _), (c2, i2, _) = invoices[:2]
    sql("UPDATE payment_providers SET status = 'INACTIVE' WHERE id = 1")
    try:
        a1 = refund_attempt(t, i1, "1.00", "cancelled")
        a2 = refund_attempt(t, i2, "2.00", "retried")
        if a1 is None or a2 is None:
            return
        waiting = fl.wait_for(lambda: all(attempt_row(a)[1].startswith("waiting for an ACTIVE")
                                          for a in (a1, a2)), 30, 0.2)
        t.check(waiting, "no ACTIVE provider: both refunds wait, and say why",
                [attempt_row(a) for a in (a1, a2)])
        pending = int(sql_one("SELECT refund_pending FROM invoices WHERE kind = 1 AND id = %d"
                              % i1))
        t.eq(pending, 100, "the first refund's 1.00 is reserved")
        rc, out, err = cli("cancel", a1)
        t.eq((rc, out.strip()), (0, "attempt %d: cancel requested" % a1), "attempts cancel")
        t.check(fl.wait_for(lambda: attempt_row(a1)[0] == "CANCELLED", 20, 0.2),
                "the cancelled refund: CANCELLED", attempt_row(a1))
        t.eq(sql_one("SELECT refund_pending FROM invoices WHERE kind = 1 AND id = %d" % i1), "0",
             "the cancelled refund's reservation is released")
        sql("UPDATE payment_providers SET status = 'ACTIVE' WHERE id = 1")
        t.check(attempt_row(a2)[2] != "", "the waiting refund is next due in a minute",
                attempt_row(a2))
        rc, out, err = cli("retry", a2)
        t.eq((rc, out.strip()), (0, "attempt %d: due now" % a2), "attempts retry")
        t.check(fl.wait_for(lambda: attempt_row(a2)[0] == "REFUND_SETTLED", 20, 0.2),
                "retried: the provider is called at once, the refund settles",
                attempt_row(a2))
        rc, out, err = cli("show", a2)
        lines = dict((ln[:22].strip(), ln[23:]) for ln in out.splitlines())
        t.eq((rc, lines.get("status"), lines.get("kind"), lines.get("customer")),
             (0, "REFUND_SETTLED", "refund", str(c2)), "attempts show: status, kind, customer")
        t.eq(lines.get("idempotency key"),
             sql_one("SELECT idempotency_key FROM attempts WHERE id = %d" % a2),
             "attempts show: its idempotency key")
        rc, out, err = cli("list", "--status", "CANCELLED", "--limit", "1000")
        rows = [ln.split("\t") for ln in out.splitlines()]
        t.check(rc == 0 and rows and rows[0][0] == "id" and
                any(r[0] == str(a1) and r[6] == "CANCELLED" for r in rows[1:]) and
                all(r[6] == "CANCELLED" for r in rows[1:]),
                "attempts list --status CANCELLED: the cancelled refund, only CANCELLED ones",
                rows[:3])
        rc, out, err = cli("show", 999999999)
        t.eq((rc, err.strip()), (1, "pay-api: no such attempt"), "attempts show of an unknown id")
        rc, out, err = cli("retry", 999999999)
        t.eq((rc, err.strip()), (1, "pay-api: no such attempt"), "attempts retry of an unknown id")
    finally:
        sql("UPDATE payment_providers SET status = 'ACTIVE' WHERE id = 1")


def main():
    t = Suite()
    print("E2E_SEED=%d run %s" % (SEED, RUN))
    rng = random.Random(SEED)
    sql("UPDATE payment_providers SET status = 'ACTIVE' WHERE id = 1")
    # Amounts: plain ones, and some whose first call answers 429 (ending in
    # 29) or whose first two answer 503 (ending in 55): submitted again.
    work = []
    for cid in CUSTOMERS:
        amounts = [rng.randrange(10, 500) * 100 + rng.choice([0, 0, 0, 29, 55, 7])
                   for _ in range(60)]
        work += [(cid, iid, a) for iid, a in zip(add_invoices(cid, amounts), amounts)]
    rng.shuffle(work)

    t.check(len(collectors()) == 1, "the stack runs one collector process", collectors())
    master = fl.master_pid()
    argv, cwd = fl.mariadbd_command(fl.recorded_pid("mariadbd"))
    load = Load(work)
    threads = [threading.Thread(target=load.client, daemon=True) for _ in range(CLIENTS)]
    threads.append(threading.Thread(target=load.reader, daemon=True))
    kills, respawned, db_restarted, done_kill, during_db = 0, 0, None, 0, 0
    try:
        for th in threads:
            th.start()
        time.sleep(0.5)
        # ---- 1. kill -9 of the collector every 200 ms (once the master
        # has respawned it: on a loaded machine that may take longer)
        t0, killed = time.monotonic(), set()
        while kills < KILLS and time.monotonic() - t0 < 120:
            pids = fl.wait_for(collectors, 10, 0.02) or []
            if killed and pids and not killed & set(pids):
                respawned += 1
            killed = set(pid for pid in pids if fl.kill_child(pid, master))
            kills += len(killed)
            time.sleep(0.2)
        pids = fl.wait_for(collectors, 10, 0.02) or []
        if killed and pids and not killed & set(pids):
            respawned += 1
        done_kill = len(load.accepted)
        # ---- 2. MariaDB killed for 5 s under the same load
        db = fl.recorded_pid("mariadbd")
        os.kill(db, signal.SIGKILL)
        fl.wait_for(lambda: not fl.alive(db), 10)
        time.sleep(DB_DOWN_SECONDS)
        db_restarted = fl.start_mariadb(argv, cwd)
        t.check(db_restarted is not None, "MariaDB started again after SIGKILL")
        # ---- 3. the load goes on a little; then the collector recovers alone
        time.sleep(AFTER_DB_SECONDS)
        during_db = len(load.accepted) - done_kill
    finally:
        load.stop.set()
        for th in threads:
            th.join(60)
        if fl.recorded_pid("mariadbd") is None:
            fl.start_mariadb(argv, cwd)

    print("load: %d invoices raised attempts (%d during the kills, %d during and after the"
          " outage), %d refused, %d abandoned, answers %s, %d reads"
          % (len(load.accepted), done_kill, during_db, len(load.refused), load.abandoned,
                         sorted(load.answers.items(), key=str), load.reads))
    print("collector: killed %d times, respawned %d times" % (kills, respawned))
    t.check(kills >= KILLS, "the collector was killed every 200 ms (%d kills)" % kills)
    t.eq(respawned, kills, "the master respawned it after every kill")
    t.check(done_kill >= 20, "attempts were raised over HTTP while it was being killed (%d)"
            % done_kill)
    t.check(during_db >= 10, "attempts were raised around the MariaDB outage (%d)" % during_db)
    t.eq(load.refused[:5], [], "every event and reprocess was accepted")

    # ---- settlement
    t2 = time.monotonic()
    left = unsettled(load.accepted)
    while left and time.monotonic() - t2 < SETTLE_SECONDS:
        time.sleep(0.5)
        left = unsettled(load.accepted)
    print("settled %.1f s after the load ended; %d not settled" % (time.monotonic() - t2,
                                                                    len(left)))
    t.eq(left[:10], [], "every attempt settled after the recovery (none lost)")
    ids = ",".join(str(i) for _, i, _ in load.accepted) or "0"
    wrong = sql("SELECT id, amount, paid FROM invoices WHERE kind = 1 AND id IN (%s)"
                " AND paid <> amount" % ids)
    t.eq(wrong[:5], [], "every invoice paid exactly its amount")
    rows = sql("SELECT i.id, (SELECT COUNT(*) FROM ledger l WHERE l.invoice_kind = 1 AND"
               " l.invoice_id = i.id AND l.txn_type = 'PAYMENT') FROM invoices i"
               " WHERE i.kind = 1 AND i.id IN (%s)" % ids)
    t.eq([r for r in rows if r[1] != "1"][:5], [],
         "exactly one PAYMENT ledger row per invoice (applied once)")
    # The sandbox keeps one row per idempotency key of a payment it was
    # asked to make, and counts the calls with that key.
    rows = sql("SELECT t.invoice_id, COUNT(s.reference), COALESCE(SUM(s.calls), 0),"
               " SUM(t.status = '%s') FROM attempts t LEFT JOIN sandbox_calls s"
               " ON s.idempotency_key = t.idempotency_key WHERE t.kind = 1 AND t.invoice_kind = 1"
               " AND t.invoice_id IN (%s) GROUP BY t.invoice_id" % (COLLECTED_STATUS, ids))
    t.eq(len(rows), len(load.accepted), "every accepted reprocess has its attempts")
    t.eq([r for r in rows if r[1] != "1"][:5], [],
         "exactly one payment at the sandbox per invoice (never collected twice)")
    t.eq([r for r in rows if r[3] != "1"][:5], [], "exactly one collected attempt per invoice")
    calls = sum(int(r[2]) for r in rows)
    print("sandbox: %d payments, %d calls with their keys (repeats: a 429/503 submitted again,"
          " an answer lost with its collector)" % (len(rows), calls))
    retried = sql("SELECT COUNT(*), SUM(s.calls >= 2) FROM attempts t JOIN sandbox_calls s"
                  " ON s.idempotency_key = t.idempotency_key WHERE t.invoice_id IN (%s)"
                  " AND t.kind = 1 AND t.amount %% 100 = 29" % ids)[0]
    t.check(retried[0] == "0" or retried[0] == retried[1],
            "the sandbox counted the calls per key: every 429 was submitted again with its key",
            retried)
    due = sql_one("SELECT COUNT(*) FROM attempts WHERE customer_id IN (%s) AND next_action_at"
                  " IS NOT NULL" % ",".join(map(str, CUSTOMERS)))
    t.eq(due, "0", "no attempt of the load is left due")
    t.eq(len(collectors()), 1, "one collector runs after the recovery")
    fl.check_invariants(t, CUSTOMERS, TOK, "after the faults")
    if len(load.accepted) >= 2:
        test_operators(t, load.accepted)
        fl.check_invariants(t, CUSTOMERS, TOK, "after the operators' commands")
    print("%d passed, %d failed" % (t.passed, t.failed))
    sys.exit(0 if t.failed == 0 and t.passed > 0 else 1)


if __name__ == "__main__":
    main()
