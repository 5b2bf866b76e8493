"""Random concurrent money operations through the balancer, reads and
writes spread over the three app hosts (so over the three Galera nodes, the
same customers' rows written through all of them at once): the e2e property
test's invariants (spec 3) hold, and every table is identical on all three
nodes afterwards."""
from clusterlib import *


def test_money_spread(s):
    hosts = set()
    for _ in range(6):
        r = get("/readyz")
        s.status(r, 200, "balancer /readyz")
    # Each app host serves (the balancer spreads; each host answers itself).
    for n in (1, 2, 3):
        code, _ = host_request(n, "GET", "/readyz")
        s.eq(code, 200, "host h%d /readyz" % n)
        hosts.add(n)
    # Clients send a request again (same Idempotency-Key) while it gets no
    # definite answer: a commit may wait for the cluster longer than
    # db_timeout on a loaded machine.
    proc = start_property(int(os.environ.get("PAY_CLUSTER_OPS") or 1200), 150)
    finish_property(s, proc)
    served = {}
    for n in (1, 2, 3):
        log = os.path.join(DIR, "h%d" % n, "nginx", "access.log")
        with open(log) as f:
            served[n] = sum(1 for line in f if " /v1/" in line)
    print("API requests served per host: %s" % served)
    s.check(all(served[n] > 0 for n in (1, 2, 3)), "every host served a share of the load",
            served)
    writes = {}
    for n in (1, 2, 3):
        log = os.path.join(DIR, "h%d" % n, "nginx", "access.log")
        with open(log) as f:
            writes[n] = sum(1 for line in f if '"POST /v1/' in line)
    if os.environ.get("PAY_CLUSTER_WRITERS", "all") != "one":
        s.check(all(writes[n] > 100 for n in (1, 2, 3)),
                "every host took a share of the writes (POSTs)", writes)
    checksums_equal(s)


Suite().run([test_money_spread])
