#!/usr/bin/env python3
"""Refunds for a generated data set, through the API (standard library only;
not part of ./pay-stack test; tests/bench/data.sh runs it last).

  tests/bench/refunds.py STACKDIR [PER_INVOICES] [CONNECTIONS]

`pay-api generate` makes no refunds. This POSTs a manual refund (payment
method CHEQUE, MANUALLY_REFUNDED) of part of what was paid for one NORMAL
invoice in every PER_INVOICES (default 100) that has payments, spread over
the whole id range (every PER_INVOICES-th invoice id that qualifies), from
CONNECTIONS (default 16) concurrent connections: the money core writes the
refund row, its REFUND ledger row, the invoice's refunded total, the
customer's balance and the owner's counter, as in production. Prints one
line: refunds made, refunds answered otherwise, seconds.
"""
import concurrent.futures
import subprocess
import sys
import time
import urllib.error
import urllib.request

from lists import env_of, sql


def main():
    stackdir = sys.argv[1]
    per = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    conns = int(sys.argv[3]) if len(sys.argv) > 3 else 16
    env = env_of(stackdir)
    owners = ",".join(r[0] for r in sql(env, "SELECT id FROM contract_owners ORDER BY id"))
    token = subprocess.run([env["PAY_BIN"], "--config", env["PAY_CONFIG"], "token", "--sub",
                            "refunds", "--scope", "payments:read payments:write",
                            "--contract-owners", owners, "--ttl", "3600"],
                           capture_output=True, text=True, check=True).stdout.strip()
    rows = sql(env, "SELECT id, paid - refunded FROM invoices WHERE kind = 1"
                    " AND paid - refunded >= 200 AND id %% %d = 0 ORDER BY id" % per)
    base = env["PAY_BASE_URL"]

    def one(row):
        inv, refundable = int(row[0]), int(row[1])
        amount = max(100, refundable * (int(inv) % 50 + 1) // 100)  # 1-50 % of it
        body = ('{"invoiceId":%d,"billRunType":"NORMAL","amountInMajorCurrency":%d.%02d,'
                '"paymentMethod":"CHEQUE","description":"bench refund"}'
                % ((inv,) + divmod(amount, 100))).encode()
        req = urllib.request.Request(base + "/v1/refunds", data=body, method="POST",
                                     headers={"Authorization": "Bearer " + token,
                                              "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                r.read()
                return r.status
        except urllib.error.HTTPError as e:
            return e.code

    t = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(conns) as ex:
        codes = list(ex.map(one, rows))
    ok = sum(1 for c in codes if 200 <= c < 300)
    print("refunds.py: %d refunds made, %d answered otherwise, %.0f s"
          % (ok, len(codes) - ok, time.monotonic() - t))


if __name__ == "__main__":
    main()
