"""Two (three) hosts race for the same row: the same request with the same
Idempotency-Key sent at the same instant to each app host directly. Row
locks are local to a node, so nothing serialises the hosts but the
cluster's certification: exactly one of them may move the money; the others
answer the stored response (replay), 409 IDEMPOTENCY_IN_PROGRESS or 503
(retry later), and every 2xx names the same payment."""
import json
import threading
import uuid

from clusterlib import *

TOK = token(owners="1,2,3")
ROUNDS = int(os.environ.get("PAY_CLUSTER_RACE_ROUNDS") or 30)
CUSTOMER = 62     # no other cluster test touches it


def test_idempotency_race(s):
    run = uuid.uuid4().hex[:8]
    before = int(node_sql(1, "SELECT balance FROM customers WHERE id = %d" % CUSTOMER)[0][0])
    results, wrong = {}, []
    for k in range(ROUNDS):
        key = "race-%s-%d" % (run, k)
        body = json.dumps({"customerId": CUSTOMER, "amountInMajorCurrency": 1,
                           "type": "BACS", "description": key})
        barrier = threading.Barrier(3)
        got = []

        def one(url):
            barrier.wait()
            r = post(url + "/v1/customer-payments", raw=body, tok=TOK,
                     headers={"Idempotency-Key": key})
            got.append((r.status, (r.json or {}).get("id") if r.status == 200 else
                        (r.json or {}).get("code")))
        ts = [threading.Thread(target=one, args=(h,)) for h in HOSTS]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        results[key] = got
        ids = {v for st, v in got if st == 200}
        if len(ids) > 1 or any(st not in (200, 409, 503) for st, _ in got) or any(
                st == 409 and v != "IDEMPOTENCY_IN_PROGRESS" for st, v in got):
            wrong.append((key, got))
    s.eq(wrong[:3], [], "every racing response is 200 with one payment id, 409 in progress or 503")
    firsts = sum(1 for got in results.values() if any(st == 200 for st, _ in got))
    print("idempotency race: %d rounds, %d with a 2xx; answers %s" % (
        ROUNDS, firsts, sorted({st for got in results.values() for st, _ in got})))
    # Whatever the answers, a key's payment exists at most once; a key
    # answered 2xx has exactly one.
    rows = {r[0]: int(r[1]) for r in node_sql(1, "SELECT description, COUNT(*) FROM ledger"
                                              " WHERE description LIKE 'race-%s-%%'"
                                              " GROUP BY description" % run)}
    twice = [k for k, v in rows.items() if v != 1]
    s.eq(twice, [], "no key moved money twice")
    missing = [k for k, got in results.items() if any(st == 200 for st, _ in got)
               and rows.get(k) != 1]
    s.eq(missing, [], "every key answered 2xx has its one payment")
    after = int(node_sql(1, "SELECT balance FROM customers WHERE id = %d" % CUSTOMER)[0][0])
    s.eq(after - before, 100 * len(rows), "the balance moved by exactly one payment per key")
    s.check(firsts >= ROUNDS // 2, "most rounds got a payment through", firsts)
    checksums_equal(s, "after the races")


Suite().run([test_idempotency_race])
