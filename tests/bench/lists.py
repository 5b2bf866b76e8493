#!/usr/bin/env python3
"""Tenant-wide lists against a running stack with generated data (standard
library only; not part of ./pay-stack test).

  tests/bench/lists.py STACKDIR [REPEAT [OWNERS]]

STACKDIR is a tests/stack.sh directory whose database holds `pay-api
generate` data. A token for every contract owner (or the first OWNERS of
them: the same tenants in a 1 M and a 10 M data set) is minted with the
stack's pay-api. Each scenario is requested REPEAT times (default 5) one after the
other; the report gives the median and the slowest wall time of the whole
answer (headers and body), X-Total-Count, and the EXPLAIN of the page and
count statements handlers/list.c runs for the first scenarios. Prints a
markdown report on stdout.
"""
import statistics
import subprocess
import sys
import time
import urllib.request


def env_of(stackdir):
    out = {}
    for line in open(stackdir + "/env"):
        if "=" in line:
            k, v = line.rstrip("\n").split("=", 1)
            out[k] = v.strip("'")
    return out


def sql(env, query):
    cmd = ["mariadb", "-N", "-B", "-S", env["PAY_DB_SOCKET"], "-u", "root", env["PAY_DB_NAME"],
           "-e", query]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return [line.split("\t") for line in res.stdout.splitlines()]


def fetch(base, path, token):
    req = urllib.request.Request(base + path, headers={"Authorization": "Bearer " + token})
    t = time.monotonic()
    with urllib.request.urlopen(req, timeout=60) as r:
        body = r.read()
        headers = dict(r.headers)
    return time.monotonic() - t, r.status, headers, body


def link_next(headers):
    for part in headers.get("Link", "").split(","):
        if 'rel="next"' in part:
            return part[part.index("<") + 1:part.index(">")]
    return None


def main():
    stackdir = sys.argv[1]
    repeat = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    env = env_of(stackdir)
    limit = " LIMIT %d" % int(sys.argv[3]) if len(sys.argv) > 3 else ""
    owner_ids = [r[0] for r in sql(env, "SELECT id FROM contract_owners ORDER BY id" + limit)]
    owners = ",".join(owner_ids)
    who = "every owner" if not limit else "%d owners" % len(owner_ids)
    # The single owner: the one with the most invoice payment events.
    one = sql(env, "SELECT contract_owner_id FROM owner_counts WHERE contract_owner_id IN (%s)"
                   " GROUP BY contract_owner_id ORDER BY SUM(normal_events) DESC LIMIT 1"
                   % owners)[0][0]
    token = subprocess.run([env["PAY_BIN"], "--config", env["PAY_CONFIG"], "token", "--sub",
                            "lists", "--scope", "payments:read", "--contract-owners", owners,
                            "--ttl", "3600"], capture_output=True, text=True,
                           check=True).stdout.strip()
    token1 = subprocess.run([env["PAY_BIN"], "--config", env["PAY_CONFIG"], "token", "--sub",
                             "lists1", "--scope", "payments:read", "--contract-owners", one,
                             "--ttl", "3600"], capture_output=True, text=True,
                            check=True).stdout.strip()
    base = env["PAY_BASE_URL"]
    ledger = int(sql(env, "SELECT COUNT(*) FROM ledger")[0][0])
    events = int(sql(env, "SELECT COUNT(*) FROM invoice_payments")[0][0])
    print("# Tenant-wide lists: %d ledger rows, %d invoice payments, owners %s\n"
          % (ledger, events, owners))

    size = 100
    ip = "/v1/invoice-payments?pageSize=%d&page=" % size
    _, _, h, _ = fetch(base, ip + "1", token)
    total = int(h["X-Total-Count"])
    last = max(1, -(-total // size))
    _, _, h1, _ = fetch(base, ip + "1", token1)
    last1 = max(1, -(-int(h1["X-Total-Count"]) // size))
    # The middle page reached by following Link next: its keyset URL.
    _, _, hm, _ = fetch(base, ip + str(last // 2 - 1), token)
    mid_next = link_next(hm)
    scenarios = [
        ("invoice-payments, " + who + ", page 1", ip + "1", token),
        ("invoice-payments, " + who + ", middle page (page=N)", ip + str(last // 2), token),
        ("invoice-payments, " + who + ", middle page (Link next)", mid_next, token),
        ("invoice-payments, " + who + ", last page", ip + str(last), token),
        ("invoice-payments, one owner, page 1", ip + "1", token1),
        ("invoice-payments, one owner, middle page (page=N)", ip + str(max(1, last1 // 2)), token1),
        ("invoice-payments, one owner, last page", ip + str(last1), token1),
        ("invoice-payments, " + who + ", id:desc page 1", ip + "1&sort=id:desc", token),
        ("invoice-payments, " + who + ", id:desc middle page (page=N)",
         ip + str(last // 3) + "&sort=id:desc", token),
        ("adhoc-invoice-payments, " + who + ", page 1",
         "/v1/adhoc-invoice-payments?pageSize=100&page=1", token),
        ("refunds, " + who + ", page 1", "/v1/refunds?pageSize=100&page=1", token),
        ("customer-credit-status, " + who + ", page 1",
         "/v1/customer-credit-status?pageSize=100&page=1", token),
        ("customer-credit-status, " + who + ", last page",
         "/v1/customer-credit-status?pageSize=100&page=%d" % max(1, -(-int(sql(
             env, "SELECT COUNT(*) FROM customers WHERE credit_threshold IS NOT NULL"
             " AND contract_owner_id IN (%s)" % owners)[0][0])
             // 100)), token),
        ("site-payment-mandates, " + who + ", page 1",
         "/v1/site-payment-mandates?pageSize=100&page=1", token),
        ("payment-providers, " + who + ", page 1",
         "/v1/payment-providers?pageSize=100&page=1", token),
        ("customer-balances, one customer",
         "/v1/customer-balances?customer_id=%s" % sql(env, "SELECT MAX(id) FROM customers WHERE"
                                                           " contract_owner_id IN (%s)" % owners)[0][0],
         token),
    ]
    print("| scenario | median ms | max ms | status | X-Total-Count | rows bytes |")
    print("|---|--:|--:|--:|--:|--:|")
    for name, path, tok in scenarios:
        times = []
        for _ in range(repeat):
            t, status, headers, body = fetch(base, path, tok)
            times.append(t * 1000)
        print("| %s | %.1f | %.1f | %d | %s | %d |" % (name, statistics.median(times), max(times),
                                                     status, headers.get("X-Total-Count", "-"),
                                                     len(body)))
    print("\nURLs: middle page by number `%s`, by Link next `%s`.\n" % (ip + str(last // 2),
                                                                     mid_next))
    print("## EXPLAIN (the statements of handlers/list.c)\n")
    ol = "p.contract_owner_id IN (%s)" % owners
    for what, q in [
        ("page 1, every owner", "SELECT p.id, p.amount FROM invoice_payments p WHERE 1=1 AND %s"
         " AND p.invoice_kind = 1 ORDER BY p.id LIMIT 100" % ol),
        ("page 1, one owner", "SELECT p.id, p.amount FROM invoice_payments p WHERE 1=1 AND"
         " p.contract_owner_id IN (%s) AND p.invoice_kind = 1 ORDER BY p.id LIMIT 100" % one),
        ("a page's first id (page=N): its block's rows", "SELECT block, SUM(normal_events)"
         " FROM owner_counts WHERE counted = 0 AND contract_owner_id IN (%s) GROUP BY block"
         " ORDER BY block" % owners),
        ("a page's first id (page=N): within its block", "SELECT p.id FROM invoice_payments p"
         " WHERE 1=1 AND %s AND p.invoice_kind = 1 AND p.id >= 327680 AND p.id < 360448"
         " ORDER BY p.id LIMIT 1 OFFSET 10000" % ol),
        ("keyset page", "SELECT p.id, p.amount FROM invoice_payments p WHERE 1=1 AND %s AND"
         " p.invoice_kind = 1 AND p.id > 1000000 ORDER BY p.id LIMIT 100" % ol),
        ("site payment mandates page", "SELECT m.id FROM site_payment_mandates m WHERE 1=1"
         " AND m.contract_owner_id IN (%s) ORDER BY m.id LIMIT 100" % owners),
        ("credit status page", "SELECT c.id FROM customers c WHERE 1=1 AND c.contract_owner_id"
         " IN (%s) AND c.credit_threshold IS NOT NULL ORDER BY c.id LIMIT 100" % owners),
    ]:
        print("- %s: `%s`" % (what, q))
        for row in sql(env, "EXPLAIN " + q):
            print("  - table %s, type %s, key %s, rows %s, %s" % (row[2], row[3], row[5],
                                                                 row[8], row[9]))


if __name__ == "__main__":
    main()
