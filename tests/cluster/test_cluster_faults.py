"""Faults under load (Jepsen style). While the e2e money property test
runs through the balancer, its clients sending every request again with
the same Idempotency-Key until it gets a definite answer:

  kill -9 of the MariaDB node of host 1, then its restart from
  the recovered position (IST, no full state transfer);
  one host cut off the network (its link down): that host's node leaves the
  primary component, its app refuses writes (503) and fails /readyz, the
  majority goes on taking writes; after healing, nothing accepted is lost;
  kill -9 of one app host (pay-api master and workers), then its restart.

After each: the property test's checks (every accepted request's rows
exactly once, every refused one none, spec 3 invariants) and every table
identical on the three nodes. The test to run is named by argv[1]."""
import json
import uuid

from clusterlib import *

TOK = token(owners="1,2,3")
OPS = int(os.environ.get("PAY_CLUSTER_FAULT_OPS") or 1200)
RETRY = 150     # > the idempotency lease (60 s) a crashed request leaves behind
# A customer no property-test request touches (those are 55-60 and 79).
SIDE = 61


def side_adjust(marker):
    return json.dumps({"customerId": SIDE, "amountInMajorCurrency": 1, "description": marker})


def ledger_rows(n, marker):
    return int(node_sql(n, "SELECT COUNT(*) FROM ledger WHERE description = '%s'" % marker)[0][0])


def test_kill_db(s):
    # Node 1's loss takes h1 out of the balancer: writes go on through h2
    # and h3. The property test checks through node 2 (it may end before
    # node 1 is back).
    proc = start_property(OPS, RETRY, sql_node=2)
    PROCS.append(proc)
    wait_property_started(proc)
    time.sleep(1)
    cluster("kill-db", 1)
    # The survivors evict the dead member (about 6 s); restarting it sooner
    # makes its join slow (it would meet its own ghost).
    wait_for("survivors see a cluster of 2", lambda: status(2, "wsrep_cluster_size") == "2", 60)
    code, _ = host_request(1, "GET", "/readyz")
    s.eq(code, 503, "h1 /readyz fails while its node is down")
    r = wait_for("a write through the balancer while h1's node is down",
                 lambda: (lambda r: r if r.status == 200 else None)(post(
                     "/v1/customer-balance-adjustments", raw=side_adjust("kdb-" + uuid.uuid4().hex),
                     tok=TOK)), 60, 0.5)
    s.status(r, 200, "the cluster takes writes (through h2) with node 1 down")
    cluster("start-db", 1)
    with open(os.path.join(DIR, "h1", "log", "error.log"), errors="replace") as f:
        log = f.read().split("--wsrep-start-position")[-1]
    s.check("Receiving IST" in log or "IST received" in log, "h1 rejoined by IST")
    s.check("rsync SST completed on joiner" not in log, "h1 rejoined without a full SST")
    wait_for("h1 /readyz answers 200 again", lambda: host_request(1, "GET", "/readyz")[0] == 200, 60)
    finish_property(s, proc)
    checksums_equal(s, "after kill -9 of a node")


def test_partition(s):
    run = uuid.uuid4().hex[:8]
    proc = start_property(OPS, RETRY)
    PROCS.append(proc)
    wait_property_started(proc)
    time.sleep(1)
    cluster("link-down", 3)
    t0 = time.time()
    try:
        wait_for("h3 /readyz fails (its node outside the primary component)",
                 lambda: host_request(3, "GET", "/readyz", timeout=5)[0] == 503, 60, 0.5)
        print("partition: h3 not ready after %.1f s" % (time.time() - t0))
        s.eq(status(3, "wsrep_cluster_status"), "non-Primary", "h3's node is non-Primary")
        minority = "part-min-" + run
        code, body = host_request(3, "POST", "/v1/customer-balance-adjustments",
                                  side_adjust(minority), TOK)
        s.eq(code, 503, "the minority host refuses a write (503): %s" % body[:200])
        majority = "part-maj-" + run
        r = wait_for("the majority takes a write through the balancer",
                     lambda: (lambda r: r if r.status == 200 else None)(post(
                         "/v1/customer-balance-adjustments", raw=side_adjust(majority), tok=TOK,
                         headers={"Idempotency-Key": majority})), 60, 0.5)
        s.status(r, 200, "the majority goes on")
        s.eq(status(1, "wsrep_cluster_size"), "2", "the majority is a cluster of 2")
    finally:
        cluster("link-up", 3)
    cluster("wait-synced", 3)
    finish_property(s, proc)
    checksums_equal(s, "after healing the partition")
    for n in (1, 2, 3):
        s.eq(ledger_rows(n, minority), 0, "h%d: the refused minority write left nothing" % n)
        s.eq(ledger_rows(n, majority), 1, "h%d: the majority's write is there once" % n)


def test_kill_app(s):
    proc = start_property(OPS, RETRY)
    PROCS.append(proc)
    wait_property_started(proc)
    time.sleep(1)
    cluster("kill-app", 1)
    time.sleep(2)
    cluster("start-app", 1)
    finish_property(s, proc)
    checksums_equal(s, "after kill -9 of an app host")


def guarded(test):
    """Runs test; when it fails half way, the load it started is stopped."""
    def run(s):
        try:
            test(s)
        finally:
            for proc in PROCS:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
    run.__name__ = test.__name__
    return run


PROCS = []
TESTS = {"kill_db": test_kill_db, "partition": test_partition, "kill_app": test_kill_app}
Suite().run([guarded(TESTS[a]) for a in (sys.argv[1:] or TESTS)])
