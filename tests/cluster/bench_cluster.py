"""A small write/read benchmark of the cluster next to a single node (not a
ctest; figures in tests/bench/RESULTS.md). Run inside the balancer's
namespace against a cluster (PAY_STACK_ENV=<cluster>/env), or against the
single-node stack of tests/stack.sh (PAY_STACK_ENV=<stack>/env):

  writes: THREADS clients POST balance adjustments (one customer each, or
          BENCH_CUSTOMERS customers shared by all: contention) for SECONDS
          through the balancer (on the cluster it spreads them over the
          three hosts, unless started with PAY_CLUSTER_WRITERS=one), or with
          WRITE_VIA=hosts each client straight to one host in turn:
          payments/s, median and p99 latency;
  reads:  one client GETs a customer's balance through a second host (the
          stack's only one), idle and while 4 clients write: median and p99;
  stale:  on the cluster, a POST through h1 then at once a GET through h2,
          compared with a GET through h1 (with db_causal_reads=0 on h2 some
          reads miss the write; with 1 none should).
"""
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
from paytest import *  # noqa: E402,F403

TOK = token(owners="1,2,3")
HOSTS = ENV.get("PAY_HOST_URLS", "").split() or [BASE, BASE]
THREADS = int(os.environ.get("THREADS") or 8)
SECONDS = float(os.environ.get("SECONDS_EACH") or 10)
CUSTOMERS = list(range(63, 63 + int(os.environ.get("BENCH_CUSTOMERS") or 8)))
WRITE_VIA = os.environ.get("WRITE_VIA") or "balancer"


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))] if xs else 0


def adjust(url, cid):
    return post(url + "/v1/customer-balance-adjustments", raw=json.dumps(
        {"customerId": cid, "amountInMajorCurrency": 1, "description": "bench"}), tok=TOK)


def writers(n, seconds, lat, stop=None):
    end = time.time() + seconds
    errs = []

    def one(k):
        url = HOSTS[k % len(HOSTS)] if WRITE_VIA == "hosts" else BASE
        while (stop is None and time.time() < end) or (stop is not None and not stop[0]):
            a = time.perf_counter()
            r = adjust(url, CUSTOMERS[k % len(CUSTOMERS)])
            lat.append((time.perf_counter() - a) * 1000)
            if r.status != 200:
                errs.append(r.status)
    ts = [threading.Thread(target=one, args=(k,)) for k in range(n)]
    for t in ts:
        t.start()
    return ts, errs


def bench_writes():
    lat = []
    t0 = time.time()
    ts, errs = writers(THREADS, SECONDS, lat)
    for t in ts:
        t.join()
    el = time.time() - t0
    print("writes: %d clients on %d customers via %s, %.0f payments/s, median %.1f ms,"
          " p99 %.1f ms, %d non-200" % (THREADS, len(CUSTOMERS), WRITE_VIA, len(lat) / el,
                                        pct(lat, 0.5), pct(lat, 0.99), len(errs)))


def bench_reads(load):
    stop, wl = [False], []
    ts = writers(4, 0, wl, stop)[0] if load else []
    lat = []
    for _ in range(300):
        a = time.perf_counter()
        get(HOSTS[1] + "/v1/customer-balances?customer_id=70", TOK)
        lat.append((time.perf_counter() - a) * 1000)
    stop[0] = True
    for t in ts:
        t.join()
    print("reads via %s%s: median %.2f ms, p99 %.2f ms" % (
        "h2" if len(set(HOSTS)) > 1 else "the node", " under 4 writers" if load else " idle",
        pct(lat, 0.5), pct(lat, 0.99)))


def bench_stale(n=200):
    if len(set(HOSTS)) < 2:
        return
    stale = 0
    for _ in range(n):
        adjust(HOSTS[0], 69)
        g = get(HOSTS[1] + "/v1/customer-balances?customer_id=69", TOK)
        h = get(HOSTS[0] + "/v1/customer-balances?customer_id=69", TOK)
        stale += g.raw != h.raw
    print("read-your-writes: POST via h1, GET via h2 at once: %d of %d stale" % (stale, n))


bench_writes()
bench_reads(False)
bench_reads(True)
bench_stale()
