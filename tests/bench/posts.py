#!/usr/bin/env python3
"""Statements and fsyncs per payment against a running stack with generated
data (standard library only; not part of ./pay-stack test).

  tests/bench/posts.py STACKDIR [PAYMENTS] [CONNECTIONS]

POSTs PAYMENTS (default 1500) customer payments from CONNECTIONS (default
64) concurrent connections, one request per connection at a time, twice:
to random customers, then all to one customer (the largest). SHOW GLOBAL
STATUS before and after each run gives, per payment: prepared statements
executed (Com_stmt_execute), Questions, INSERT / UPDATE / SELECT, fsyncs
(Innodb_data_fsyncs) and redo log writes (Innodb_log_writes). Prints a
markdown table on stdout.
"""
import concurrent.futures
import json
import random
import subprocess
import sys
import time
import urllib.request

from lists import env_of, sql

STATUS = ["Com_stmt_execute", "Questions", "Com_insert", "Com_update", "Com_select",
          "Innodb_data_fsyncs", "Innodb_log_writes"]


def status(env):
    rows = sql(env, "SHOW GLOBAL STATUS WHERE Variable_name IN (%s)"
               % ",".join("'%s'" % s for s in STATUS))
    return {k: int(v) for k, v in rows}


def run(env, token, customers, n, conns):
    base = env["PAY_BASE_URL"]
    methods = ["DIRECT_DEBIT", "CREDIT_CARD", "BACS", "CHEQUE"]

    def one(i):
        body = ('{"customerId":%d,"amountInMajorCurrency":%d.%02d,"type":%s,'
                '"description":"bench payment","reference":"posts-%d-%d"}'
                % (customers[i % len(customers)], random.randint(1, 250),
                   random.randint(0, 99), json.dumps(random.choice(methods)),
                   time.time_ns(), i)).encode()
        req = urllib.request.Request(base + "/v1/customer-payments", data=body, method="POST",
                                     headers={"Authorization": "Bearer " + token,
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            r.read()
            return r.status

    before = status(env)
    t = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(conns) as ex:
        codes = list(ex.map(one, range(n)))
    elapsed = time.monotonic() - t
    after = status(env)
    ok = sum(1 for c in codes if 200 <= c < 300)
    d = {k: (after[k] - before[k]) / max(ok, 1) for k in STATUS}
    return ok, ok / elapsed, d


def main():
    stackdir = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 1500
    conns = int(sys.argv[3]) if len(sys.argv) > 3 else 64
    env = env_of(stackdir)
    owners = ",".join(r[0] for r in sql(env, "SELECT id FROM contract_owners ORDER BY id"))
    token = subprocess.run([env["PAY_BIN"], "--config", env["PAY_CONFIG"], "token", "--sub",
                            "posts", "--scope", "payments:read payments:write",
                            "--contract-owners", owners, "--ttl", "3600"],
                           capture_output=True, text=True, check=True).stdout.strip()
    lo, hi = (int(v) for v in sql(env, "SELECT MIN(id), MAX(id) FROM customers")[0])
    rnd = random.Random(1)
    many = [rnd.randint(lo, hi) for _ in range(n)]
    big = int(sql(env, "SELECT customer_id FROM ledger GROUP BY customer_id"
                       " ORDER BY COUNT(*) DESC LIMIT 1")[0][0]) if n else lo
    print("| load | payments/s | prepared statements | Questions | INSERT / UPDATE / SELECT"
          " | fsyncs (Innodb_data_fsyncs) | log writes |")
    print("|---|--:|--:|--:|--:|--:|--:|")
    for name, customers, count in [("%d payments, random customers" % n, many, n),
                                   ("%d payments, one customer" % (n * 2 // 5), [big],
                                    n * 2 // 5)]:
        ok, rate, d = run(env, token, customers, count, conns)
        print("| %s (%d connections, %d answered 2xx) | %.0f | %.2f | %.2f | %.2f / %.2f / %.2f"
              " | %.2f | %.2f |" % (name, conns, ok, rate, d["Com_stmt_execute"],
                                    d["Questions"], d["Com_insert"], d["Com_update"],
                                    d["Com_select"], d["Innodb_data_fsyncs"],
                                    d["Innodb_log_writes"]))


if __name__ == "__main__":
    main()
