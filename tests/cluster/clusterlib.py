"""Helpers of the cluster tests (tests/cluster/test_*.py).

They run inside the balancer's network namespace (ip netns exec pcl-lb ...)
against the cluster of tests/cluster/cluster.sh, whose env file is named by
$PAY_STACK_ENV like the e2e stack's. The money invariants are those of the
e2e property test, tests/e2e/test_money_property.py, run here as it is, under
load spread by the balancer over the three app hosts.
"""
import hashlib
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
E2E = os.path.join(HERE, "..", "e2e")
sys.path.insert(0, E2E)

from paytest import *  # noqa: E402,F401,F403

HOSTS = ENV["PAY_HOST_URLS"].split()
SOCKETS = ENV["PAY_DB_SOCKETS"].split()
CLUSTER_SH = ENV["PAY_CLUSTER_SH"]
DIR = ENV["PAY_STACK_DIR"]
PROPERTY = os.path.join(E2E, "test_money_property.py")


def cluster(cmd, n):
    """tests/cluster/cluster.sh CMD N DIR; its output is shown."""
    t0 = time.time()
    subprocess.run(["bash", CLUSTER_SH, cmd, str(n), DIR], check=True, timeout=300)
    print("cluster: %s h%d (%.1f s)" % (cmd, n, time.time() - t0))


def node_sql(n, query, timeout=10):
    """Rows of query on node n (1-3) over its unix socket, as root."""
    out = subprocess.check_output(
        ["mariadb", "--no-defaults", "-S", SOCKETS[n - 1], "-uroot", "-N", "-B",
         "--connect-timeout=2", "pay", "-e", query], text=True, timeout=timeout)
    return [line.split("\t") for line in out.splitlines()]


def status(n, name):
    rows = node_sql(n, "SHOW GLOBAL STATUS LIKE '%s'" % name)
    return rows[0][1] if rows else None


def in_host(n, *cmd, timeout=30):
    """Runs cmd inside host n's namespace (e.g. a client on that host)."""
    return subprocess.run(["ip", "netns", "exec", "pcl-h%d" % n] + list(cmd),
                          capture_output=True, text=True, timeout=timeout)


def host_request(n, method, path, body=None, tok=None, headers=None, timeout=15):
    """(status, body) of a request to host n's own nginx, from inside host n
    (works while the host is cut off the network)."""
    cmd = ["curl", "-sS", "-o", "-", "-w", "\n%{http_code}", "--max-time", str(timeout),
           "-X", method, "http://127.0.0.1:8080" + path]
    if tok:
        cmd += ["-H", "Authorization: Bearer " + tok]
    for k, v in (headers or {}).items():
        cmd += ["-H", "%s: %s" % (k, v)]
    if body is not None:
        cmd += ["-H", "Content-Type: application/json", "--data-binary", body]
    r = in_host(n, *cmd, timeout=timeout + 10)
    text, _, code = r.stdout.rpartition("\n")
    return int(code or 0), text


def wait_for(what, cond, seconds=60, every=0.2):
    """Polls cond() until true; raises AssertionError after `seconds`."""
    deadline = time.time() + seconds
    while True:
        v = cond()
        if v:
            return v
        if time.time() > deadline:
            raise AssertionError("timed out after %d s waiting for: %s" % (seconds, what))
        time.sleep(every)


def start_property(ops, retry_seconds=0, threads=12, sql_node=1):
    """Starts the e2e money property test as a child process against the
    balancer; returns the Popen (its output is collected). Its own SQL
    checks read node sql_node (one the fault leaves up), with causal reads:
    every write the cluster committed is applied there first."""
    env = dict(os.environ, PAY_OPS=str(ops), PAY_THREADS=str(threads))
    if sql_node != 1:
        path = os.path.join(DIR, "env.node%d" % sql_node)
        with open(os.environ["PAY_STACK_ENV"]) as f, open(path, "w") as out:
            for line in f:
                if line.startswith("MYSQL_CMD="):
                    line = ("MYSQL_CMD='mariadb --no-defaults --socket=%s -uroot"
                            " --init-command=\"SET SESSION wsrep_sync_wait=1\" pay'\n"
                            % SOCKETS[sql_node - 1])
                out.write(line)
        env["PAY_STACK_ENV"] = path
    if retry_seconds:
        env["PAY_RETRY_SECONDS"] = str(retry_seconds)
    return subprocess.Popen([sys.executable, PROPERTY], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def finish_property(s, proc, timeout=600):
    out, _ = proc.communicate(timeout=timeout)
    print("---- money property test ----\n" + out.rstrip() + "\n----")
    s.eq(proc.returncode, 0, "money property test passed (spec 3 invariants, every accepted"
                             " request's rows exactly once, every refused one none)")


def wait_property_started(proc, seconds=120):
    """Waits until the property test has started sending (its setup done)."""
    t0 = time.time()
    while time.time() - t0 < seconds:
        if proc.poll() is not None:
            return
        if int(node_sql(1, "SELECT COUNT(*) FROM ledger WHERE description LIKE 'mp-%'"
                        " AND created_at > UTC_TIMESTAMP(6) - INTERVAL 2 SECOND")[0][0]) > 0:
            return
        time.sleep(0.2)
    raise AssertionError("the property test did not start its load")


def checksums_equal(s, what="after the run"):
    """Every node synced in a cluster of 3 at the same position, then every
    table of the database holding the same rows on all three."""
    wait_for("all nodes Synced in a cluster of 3", lambda: all(
        status(n, "wsrep_local_state_comment") == "Synced" and
        status(n, "wsrep_cluster_size") == "3" for n in (1, 2, 3)), 120)
    wait_for("all nodes at the same committed position", lambda: len(
        {status(n, "wsrep_last_committed") for n in (1, 2, 3)}) == 1, 60)
    tables = [r[0] for r in node_sql(1, "SHOW TABLES")]

    def digest(n, table):
        # A digest of the table's rows, in any order. (CHECKSUM TABLE is not
        # used: it was seen to differ between nodes holding the same rows,
        # for a table with a stored generated column, for a minute.)
        out = subprocess.check_output(
            ["mariadb", "--no-defaults", "-S", SOCKETS[n - 1], "-uroot", "-N", "-B", "pay",
             "-e", "SET SESSION wsrep_sync_wait=1; SELECT * FROM `%s`" % table], timeout=60)
        return hashlib.sha256(b"\n".join(sorted(out.splitlines()))).hexdigest()

    def differing():
        return [t for t in tables if len({digest(n, t) for n in (1, 2, 3)}) != 1]
    # The three are read one after the other: a commit in between (the app's
    # background work) differs for a moment, a divergence stays.
    t0 = time.time()
    diff = differing()
    while diff and time.time() - t0 < 60:
        time.sleep(2)
        diff = differing()
    if time.time() - t0 > 1:
        print("checksums: %s after %.0f s" % ("equal" if not diff else "differ", time.time() - t0))
    s.eq(diff, [], "%s: the rows of all %d tables identical on the three nodes (digests)"
         % (what, len(tables)))
