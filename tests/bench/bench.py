#!/usr/bin/env python3
"""Helpers of tests/bench/run.sh (standard library only).

  bench.py cpu STACKDIR                 JSON snapshot: /proc/stat and the CPU
                                        ticks of nginx, pay-api and mariadbd
  bench.py rss STACKDIR                 JSON snapshot: RSS of the pay-api
                                        master and workers
  bench.py quiet STACKDIR PCT           sample 1 s; print the CPU share (%% of
                                        the machine) used by processes outside
                                        the stack; exit 1 when above PCT
  bench.py cgstat FILE.out [JSON]       "TOTAL ROUTER_DISPATCH_INCLUSIVE" Ir
                                        of one callgrind output file; JSON
                                        gets every function's inclusive Ir
  bench.py cgtop FULL.json BASE.json N  top functions under router_dispatch,
                                        inclusive Ir per request
  bench.py report OUTDIR                write OUTDIR/results.md from OUTDIR/raw/
"""
import glob
import json
import os
import re
import subprocess
import sys
import time

# ---------------------------------------------------------------------------
# /proc snapshots
# ---------------------------------------------------------------------------


def recorded_pid(stack, name):
    """The pid stack.sh recorded for NAME if that process still runs."""
    try:
        with open(os.path.join(stack, "run", name + ".pid")) as f:
            pid, start = f.read().split()[:2]
        st = proc_stat(int(pid))
        if st is None or st[19] != start:
            return None
        return int(pid)
    except (OSError, ValueError):
        return None


def proc_stat(pid):
    """Fields of /proc/PID/stat after "pid (comm) ", 0-based (0 = state)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except OSError:
        return None
    return s[s.rindex(")") + 2:].split()


def all_pids():
    for d in os.listdir("/proc"):
        if d.isdigit():
            yield int(d)


def group_ticks(pgid):
    """utime + stime of every live process in process group PGID."""
    total = 0
    for pid in all_pids():
        st = proc_stat(pid)
        if st is not None and st[2] == str(pgid):
            total += int(st[11]) + int(st[12])
    return total


def cmd_cpu(stack):
    with open("/proc/stat") as f:
        cpu = [int(x) for x in f.readline().split()[1:9]]
    groups = {}
    for name in ("nginx", "pay-api", "mariadbd"):
        pid = recorded_pid(stack, name)
        groups[name] = group_ticks(pid) if pid else None
    json.dump({"t": time.monotonic(), "hz": os.sysconf("SC_CLK_TCK"),
               "cpu": cpu, "groups": groups}, sys.stdout)
    print()


def cpu_sample(stack):
    with open("/proc/stat") as f:
        cpu = [int(x) for x in f.readline().split()[1:9]]
    ours = 0
    for name in ("nginx", "pay-api", "mariadbd"):
        pid = recorded_pid(stack, name)
        if pid:
            ours += group_ticks(pid)
    return cpu, ours


def cmd_quiet(stack, pct):
    c0, o0 = cpu_sample(stack)
    time.sleep(1.0)
    c1, o1 = cpu_sample(stack)
    d = [b - a for a, b in zip(c0, c1)]
    tot = sum(d) or 1
    busy = tot - d[3] - d[4] - d[6]
    foreign = max(0, busy - (o1 - o0)) * 100.0 / tot
    print("%.0f" % foreign)
    return 0 if foreign <= float(pct) else 1


def status_kb(pid, key):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def cmd_rss(stack):
    master = recorded_pid(stack, "pay-api")
    out = {"master": None, "workers": []}
    if master:
        out["master"] = {"pid": master, "rss_kb": status_kb(master, "VmRSS")}
        for pid in sorted(all_pids()):
            st = proc_stat(pid)
            if st is not None and st[1] == str(master):
                out["workers"].append({
                    "pid": pid,
                    "rss_kb": status_kb(pid, "VmRSS"),
                    "anon_kb": status_kb(pid, "RssAnon"),
                    "hwm_kb": status_kb(pid, "VmHWM"),
                })
    json.dump(out, sys.stdout)
    print()


# ---------------------------------------------------------------------------
# callgrind
# ---------------------------------------------------------------------------


ANN_LINE = re.compile(r"^\s*([\d,]+)\s+\([^)]*\)\s+(.*?)(?:\s+\[(.*)\])?\s*$")


def cmd_cgstat(path, json_out=None):
    """Prints "TOTAL ROUTER_DISPATCH"; with JSON_OUT, also writes every
    function's inclusive cost there ({"func (object)": Ir})."""
    total = None
    with open(path) as f:
        for line in f:
            if line.startswith("totals:") or line.startswith("summary:"):
                total = int(line.split()[1])
    ann = subprocess.run(["callgrind_annotate", "--inclusive=yes",
                          "--threshold=100", path],
                         capture_output=True, text=True, check=True).stdout
    funcs = {}
    started = False
    for line in ann.splitlines():
        if "file:function" in line:
            started = True
            continue
        if not started:
            continue
        m = ANN_LINE.match(line)
        if not m:
            continue
        where = m.group(2)
        fn = where.rsplit(":", 1)[-1]
        obj = os.path.basename(m.group(3) or "")
        key = "%s (%s)" % (fn, obj) if obj else fn
        funcs[key] = funcs.get(key, 0) + int(m.group(1).replace(",", ""))
    rd = sum(v for k, v in funcs.items() if k.split(" ")[0] == "router_dispatch")
    if json_out:
        with open(json_out, "w") as f:
            json.dump(funcs, f)
    print(total, rd)


def cmd_cgtop(full, base, n, limit=14):
    """Functions below router_dispatch by inclusive Ir per request."""
    a = load_json(full, {})
    b = load_json(base, {})
    n = int(n)
    per = {k: (v - b.get(k, 0)) / n for k, v in a.items()}
    rd = sum(v for k, v in per.items() if k.split(" ")[0] == "router_dispatch")
    skip = ("router_dispatch", "0x")
    rows = sorted(((v, k) for k, v in per.items()
                   if v > 0 and v < rd * 0.999 and not k.startswith(skip)),
                  reverse=True)[:limit]
    for v, k in rows:
        print("%s\t%d\t%.1f" % (k, v, 100.0 * v / rd if rd else 0))


# ---------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------


def load_json(path, default=None):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def read_status(path):
    d = {}
    try:
        with open(path) as f:
            for line in f:
                parts = line.rstrip("\n").split("\t")
                if len(parts) == 2:
                    try:
                        d[parts[0]] = int(parts[1])
                    except ValueError:
                        pass
    except OSError:
        pass
    return d


def read_kv(path):
    d = {}
    try:
        with open(path) as f:
            for line in f:
                if "=" in line:
                    k, v = line.rstrip("\n").split("=", 1)
                    d[k] = v
    except OSError:
        pass
    return d


def wrk_result(path):
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("BENCH_RESULT "):
                    return json.loads(line[len("BENCH_RESULT "):])
    except (OSError, ValueError):
        pass
    return None


def ms(us):
    return "%.2f" % (us / 1000.0)


def fmt_rate(x):
    return "{:,.0f}".format(x)


def mb(x):
    return "%.2f" % (x / 1e6)


def ratio(a, b):
    return "%.2f" % (a / b) if b else "–"


STATUS_KEYS = [
    ("Questions", "Questions"),
    ("Com_stmt_execute", "stmt exec"),
    ("Com_stmt_prepare", "stmt prep"),
    ("Com_select", "SELECT"),
    ("Com_insert", "INSERT"),
    ("Com_update", "UPDATE"),
    ("Com_begin", "BEGIN"),
    ("Com_commit", "COMMIT"),
    ("Com_rollback", "ROLLBACK"),
    ("Rows_read", "rows read"),
    ("Handler_read_key", "index lookups"),
    ("Handler_read_next", "index next"),
    ("Innodb_data_fsyncs", "fsyncs"),
]


def cmd_report(out):
    raw = os.path.join(out, "raw")
    meta = read_kv(os.path.join(raw, "meta.txt"))
    runs = []
    for line in open(os.path.join(raw, "runs.txt")):
        tag, sid, conns, name = line.rstrip("\n").split("\t", 3)
        r = {"tag": tag, "id": sid, "conns": int(conns), "name": name}
        r["wrk"] = wrk_result(os.path.join(raw, tag + ".wrk"))
        s0 = read_status(os.path.join(raw, tag + ".status0"))
        s1 = read_status(os.path.join(raw, tag + ".status1"))
        r["status"] = {k: s1.get(k, 0) - s0.get(k, 0) for k in s1}
        c0 = load_json(os.path.join(raw, tag + ".cpu0"))
        c1 = load_json(os.path.join(raw, tag + ".cpu1"))
        r["cpu"] = (c0, c1)
        try:
            real, user, sys_ = open(os.path.join(raw, tag + ".time")).read().split()[:3]
            r["wrk_cpu"] = float(user) + float(sys_)
        except (OSError, ValueError):
            r["wrk_cpu"] = None
        runs.append(r)

    by = {(r["id"], r["conns"]): r for r in runs}
    # Questions added by one status snapshot (measured on the idle stack).
    q_overhead = (read_status(os.path.join(raw, "cal1")).get("Questions", 0) -
                  read_status(os.path.join(raw, "cal0")).get("Questions", 0))

    def rps(r):
        w = r["wrk"]
        return w["requests"] / (w["duration_us"] / 1e6) if w else 0.0

    def cpu_bound(r):
        """CPUs / (CPU seconds per request of wrk + stack + softirq)."""
        c0, c1 = r["cpu"]
        w = r["wrk"]
        if not (c0 and c1 and w and w["requests"]):
            return None
        hz = c0["hz"]
        d = [b - a for a, b in zip(c0["cpu"], c1["cpu"])]
        wall = c1["t"] - c0["t"]
        ncpu = sum(d) / hz / wall if wall else 1
        sec = d[6] / hz + (r["wrk_cpu"] or 0)
        for name in ("nginx", "pay-api", "mariadbd"):
            a, b = c0["groups"].get(name), c1["groups"].get(name)
            if a is not None and b is not None:
                sec += (b - a) / hz
        return ncpu * w["requests"] / sec if sec else None

    L = []
    add = L.append
    add("# pay-api benchmark results")
    add("")
    add("Produced by `%s`, %s; total runtime of the command: %s s."
        % (meta.get("command", "tests/bench/run.sh"), meta.get("date", "?"),
           meta.get("runtime_s", "?")))
    add("")
    add("## Machine and setup")
    add("")
    for k, label in [("cpus", "CPUs (nproc)"), ("cpu_model", "CPU model"),
                     ("ram", "RAM"), ("os", "OS"), ("kernel", "kernel"),
                     ("fs", "filesystem of the stack (MariaDB datadir)"),
                     ("versions", "packages"),
                     ("source", "source"), ("build", "build"),
                     ("workers", "pay-api workers"),
                     ("nginx_workers", "nginx worker processes"),
                     ("mariadb", "MariaDB settings"), ("data", "data set"),
                     ("wrk", "load generator")]:
        if k in meta:
            add("- **%s**: %s" % (label, meta[k]))
    add("")
    add("Everything (wrk, nginx, pay-api, MariaDB) shares the same %s CPUs over "
        "loopback; latencies are wrk's (per request, connection-bound closed "
        "loop, so no coordinated-omission correction)." % meta.get("cpus", "?"))
    add("")

    # ---- main table ----
    add("## Throughput and latency")
    add("")
    add("| # | scenario | conns | req/s | p50 ms | p99 ms | max ms | errors | non-2xx "
        "| MB/s | ratio to C1 | ratio to C2 |")
    add("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for r in runs:
        w = r["wrk"]
        if not w:
            add("| %s | %s | %d | (no result) | | | | | | | | |" % (r["id"], r["name"], r["conns"]))
            continue
        e = w["errors"]
        errs = e["connect"] + e["read"] + e["write"] + e["timeout"]
        c1 = by.get(("C1", r["conns"]))
        c2 = by.get(("C2", r["conns"]))
        add("| %s | %s | %d | %s | %s | %s | %s | %d | %d | %s | %s | %s |" % (
            r["id"], r["name"], r["conns"], fmt_rate(rps(r)),
            ms(w["latency_us"]["p50"]), ms(w["latency_us"]["p99"]),
            ms(w["latency_us"]["max"]), errs, w["non2xx"],
            mb(w["bytes"] / (w["duration_us"] / 1e6)),
            ratio(rps(r), rps(c1)) if c1 and c1["wrk"] else "–",
            ratio(rps(r), rps(c2)) if c2 and c2["wrk"] else "–"))
    add("")
    add("errors = wrk socket errors (connect, read, write, timeout > 10 s); "
        "non-2xx = responses with another status (counted in the Lua "
        "`response()`); MB/s = 10⁶ bytes/s received by wrk, headers included.")
    add("")

    # ---- RSS ----
    rss = [(p, load_json(p)) for p in sorted(glob.glob(os.path.join(raw, "rss-*.json")))]
    order = read_lines(os.path.join(raw, "rss-order.txt"))
    rss_by = {os.path.basename(p)[4:-5]: d for p, d in rss}

    # ---- targets ----
    add("## Targets")
    add("")
    add("| target | measured | met |")
    add("|---|---|---|")
    s1 = by.get(("S1", 64))
    c2 = by.get(("C2", 64))
    if s1 and c2 and s1["wrk"] and c2["wrk"]:
        rt = rps(s1) / rps(c2) if rps(c2) else 0
        cb1, cb2 = cpu_bound(s1), cpu_bound(c2)
        extra = ("; CPU-bound estimate (see the CPU section): %.0f %%" % (100.0 * cb1 / cb2)
                 if cb1 and cb2 else "")
        add("| scenario 1 ≥ 50 %% of C2 at 64 connections | %.0f %% (%s vs %s req/s)%s | %s |"
            % (rt * 100, fmt_rate(rps(s1)), fmt_rate(rps(c2)), extra, yes(rt >= 0.5)))
        p99 = s1["wrk"]["latency_us"]["p99"]
        add("| scenario 1 p99 < 10 ms at 64 connections | %s ms | %s |"
            % (ms(p99), yes(p99 < 10000)))
    prev = order[order.index("after-S3") - 1] if "after-S3" in order[1:] else None
    s3g = rss_growth(rss_by.get(prev), rss_by.get("after-S3")) if prev else None
    if s3g is not None:
        add("| scenario 3 streams in constant worker memory | worker RSS change over "
            "scenario 3: %+d KiB (max of the workers); peak RSS (VmHWM) change: %+d KiB | %s |"
            % (s3g[0], s3g[1], yes(s3g[0] <= 1024 and s3g[1] <= 1024)))
    best5 = max((rps(by[k]) for k in by if k[0] == "S5" and by[k]["wrk"]), default=0)
    if best5:
        per = ", ".join("%s at %d" % (fmt_rate(rps(by[k])), k[1])
                        for k in sorted(by) if k[0] == "S5" and by[k]["wrk"])
        add("| scenario 5 ≥ 1,000 durable payments/s | %s req/s | %s |" % (per, yes(best5 >= 1000)))
    bad = []
    for r in runs:
        w = r["wrk"]
        if not w:
            bad.append("%s@%d: no result" % (r["id"], r["conns"]))
            continue
        e = w["errors"]
        n = e["connect"] + e["read"] + e["write"] + e["timeout"] + w["non2xx"]
        if n:
            bad.append("%s@%d: %d" % (r["id"], r["conns"], n))
    add("| no errors in any scenario | %s | %s |"
        % ("; ".join(bad) if bad else "0 errors, 0 non-2xx", yes(not bad)))
    g = rss_growth(rss_by.get("warm"), rss_by.get("last"))
    if g is not None:
        add("| worker RSS does not grow (after warm-up → after the last scenario) | "
            "%+d KiB (max over the workers) | %s |" % (g[0], yes(g[0] <= 1024)))
    add("")

    # ---- CPU ----
    add("## Where the CPU goes")
    add("")
    add("Share of the whole machine (%s CPUs = 100 %%) during each run, from "
        "/proc (process groups of nginx, pay-api, mariadbd) and wrk's own "
        "rusage; softirq (from /proc/stat) is mostly the loopback TCP and unix "
        "socket work of the kernel, not charged to a process; \"other\" is the "
        "rest of the busy time: processes outside the stack (other work on the "
        "machine: it should be near 0, see the quiet check in the notes). CPU µs "
        "per request are summed over all cores; \"all\" = wrk + nginx + pay-api + "
        "mariadbd + softirq, and \"CPU-bound req/s\" = CPUs / all: what the run "
        "would reach if the machine were its own and CPU the only limit (an upper "
        "bound where latency, locks or fsyncs limit instead; it discounts other "
        "work on the machine)." % meta.get("cpus", "?"))
    add("")
    add("| # | conns | busy | softirq | iowait | wrk | nginx | pay-api | mariadbd | other | pay-api µs/req | mariadbd µs/req | nginx µs/req | all µs/req | CPU-bound req/s |")
    add("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for r in runs:
        c0, c1 = r["cpu"]
        w = r["wrk"]
        if not (c0 and c1 and w):
            continue
        hz = c0["hz"]
        d = [b - a for a, b in zip(c0["cpu"], c1["cpu"])]
        tot = sum(d) or 1
        idle, iow = d[3], d[4]
        wall = c1["t"] - c0["t"]
        ncpu = tot / hz / wall if wall else 1
        reqs = w["requests"] or 1

        def share(name):
            a, b = c0["groups"].get(name), c1["groups"].get(name)
            if a is None or b is None:
                return None
            return (b - a) / hz

        def pct(sec):
            return "–" if sec is None else "%.0f %%" % (100.0 * sec / (wall * ncpu))

        def per(sec):
            return "–" if sec is None else "%.0f" % (sec * 1e6 / reqs)
        known = [x for x in (r["wrk_cpu"], share("nginx"), share("pay-api"),
                             share("mariadbd")) if x is not None]
        sirq = d[6]
        other = max(0.0, (tot - idle - iow - sirq) / hz - sum(known))
        add("| %s | %d | %.0f %% | %.0f %% | %.0f %% | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            r["id"], r["conns"], 100.0 * (tot - idle - iow) / tot, 100.0 * sirq / tot,
            100.0 * iow / tot,
            pct(r["wrk_cpu"]), pct(share("nginx")), pct(share("pay-api")),
            pct(share("mariadbd")), pct(other), per(share("pay-api")),
            per(share("mariadbd")), per(share("nginx")),
            per(sum(known) + sirq / hz),
            fmt_rate(ncpu * reqs / (sum(known) + sirq / hz)) if known else "–"))
    add("")

    # ---- RSS section ----
    add("## pay-api worker memory")
    add("")
    if rss_by:
        pids = []
        for name in order:
            d = rss_by.get(name)
            if d:
                for wk in d["workers"]:
                    if wk["pid"] not in pids:
                        pids.append(wk["pid"])
        add("RSS (VmRSS, KiB) of each worker, and the peak (VmHWM) in brackets; "
            "a pid appearing later means a worker was replaced.")
        add("")
        add("| snapshot | " + " | ".join("worker %d" % p for p in pids) + " |")
        add("|---|" + "--:|" * len(pids))
        for name in order:
            d = rss_by.get(name)
            if not d:
                continue
            ws = {wk["pid"]: wk for wk in d["workers"]}
            cells = []
            for p in pids:
                wk = ws.get(p)
                cells.append("%s (%s)" % (fmtk(wk["rss_kb"]), fmtk(wk["hwm_kb"])) if wk else "–")
            add("| %s | %s |" % (label_of(name), " | ".join(cells)))
        add("")

    # ---- queries per request ----
    add("## MariaDB statements per request")
    add("")
    add("SHOW GLOBAL STATUS deltas over each run divided by the requests wrk "
        "completed; the %d statement(s) one status snapshot adds to Questions "
        "(measured on the idle stack) are subtracted. rows read = Rows_read "
        "(rows the server read from the engine), index lookups / next = "
        "Handler_read_key / Handler_read_next, fsyncs = Innodb_data_fsyncs "
        "(redo log + data files; fewer than commits when group commit "
        "merges them)." % q_overhead)
    add("")
    add("| # | conns | " + " | ".join(l for _, l in STATUS_KEYS) + " |")
    add("|---|--:|" + "--:|" * len(STATUS_KEYS))
    for r in runs:
        w = r["wrk"]
        if not w or not r["status"]:
            continue
        n = w["requests"] or 1
        cells = []
        for k, _ in STATUS_KEYS:
            v = r["status"].get(k, 0)
            if k == "Questions":
                v -= q_overhead
            cells.append("%.2f" % (v / n))
        add("| %s | %d | %s |" % (r["id"], r["conns"], " | ".join(cells)))
    add("")

    # ---- callgrind ----
    cg = read_lines(os.path.join(raw, "callgrind.txt"))
    if cg:
        add("## CPU instructions per request (callgrind)")
        add("")
        add("One extra pay-api (workers = 1) under `valgrind --tool=callgrind`, "
            "behind its own nginx server block, serves a fixed request sequence "
            "(%s warm-up requests, then N measured ones); a second run serves the "
            "warm-up requests only, and the difference of the worker's totals "
            "divided by N is the steady-state cost of one request. "
            "`router_dispatch` is the app's request function (inclusive: routing, "
            "auth, handler, SQL client calls, JSON); the whole worker adds "
            "libfcgi's accept/read/write around it." % meta.get("cg_warm", "?"))
        add("")
        add("| # | scenario | N | Ir/request, whole worker | Ir/request, router_dispatch |")
        add("|---|---|--:|--:|--:|")
        for line in cg:
            sid, name, n, whole, rd = line.split("\t")
            add("| %s | %s | %s | %s | %s |" % (sid, name, n, "{:,}".format(int(whole)),
                                                "{:,}".format(int(rd))))
        add("")
        for line in cg:
            sid = line.split("\t")[0]
            top = read_lines(os.path.join(raw, "callgrind-%s-top.txt" % sid))
            if not top:
                continue
            add("Inside `router_dispatch` for %s: the costliest callees, inclusive "
                "(nested entries overlap), Ir per request and share of "
                "`router_dispatch`:" % sid)
            add("")
            add("| function (object) | Ir/request | share |")
            add("|---|--:|--:|")
            for t in top:
                fn, v, p = t.split("\t")
                add("| `%s` | %s | %s %% |" % (fn, "{:,}".format(int(v)), p))
            add("")

    notes = read_lines(os.path.join(raw, "notes.txt"))
    if notes:
        add("## Notes from the run")
        add("")
        for n in notes:
            add("- " + n)
        add("")

    with open(os.path.join(out, "results.md"), "w") as f:
        f.write("\n".join(L))


def read_lines(path):
    try:
        with open(path) as f:
            return [l.rstrip("\n") for l in f if l.strip()]
    except OSError:
        return []


def yes(b):
    return "yes" if b else "**no**"


def fmtk(v):
    return "–" if v is None else "{:,}".format(v)


def label_of(name):
    return {"warm": "after warm-up", "last": "after the last scenario"}.get(
        name, name.replace("after-", "after "))


def rss_growth(a, b):
    """(max RSS growth, max VmHWM growth) in KiB over workers present in both."""
    if not a or not b:
        return None
    wa = {w["pid"]: w for w in a["workers"]}
    g = h = None
    for w in b["workers"]:
        o = wa.get(w["pid"])
        if o is None or o["rss_kb"] is None or w["rss_kb"] is None:
            continue
        dg = w["rss_kb"] - o["rss_kb"]
        dh = (w["hwm_kb"] or 0) - (o["hwm_kb"] or 0)
        g = dg if g is None else max(g, dg)
        h = dh if h is None else max(h, dh)
    if g is None:
        return None
    return g, h


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, arg = argv[1], argv[2]
    if cmd == "cpu":
        cmd_cpu(arg)
    elif cmd == "rss":
        cmd_rss(arg)
    elif cmd == "quiet":
        return cmd_quiet(arg, argv[3])
    elif cmd == "cgstat":
        cmd_cgstat(arg, argv[3] if len(argv) > 3 else None)
    elif cmd == "cgtop":
        cmd_cgtop(arg, argv[3], argv[4])
    elif cmd == "report":
        cmd_report(arg)
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
