#!/usr/bin/env bash
# tests/valgrind/run.sh BUILD_DIR — valgrind memcheck of one pay-api worker
# driven by most of the e2e suite (ctest: memcheck.e2e, label memcheck).
#
#   1. builds BUILD_DIR/valgrind/build/pay-api from this source tree with
#      PAY_ARENA_DEBUG (every arena allocation its own malloc block, so
#      memcheck sees overruns and stale reads of per-request memory, which in
#      a normal build sit unnoticed inside a 64 KiB arena chunk) and -O2 -g
#      (RelWithDebInfo: file:line in the stacks);
#   2. writes BUILD_DIR/valgrind/pay-api, a wrapper that runs that binary under
#      valgrind memcheck for "serve" only (migrate, load and the e2e files'
#      "token" calls run it directly, at full speed);
#   3. starts a private stack in BUILD_DIR/vg-stack with tests/stack.sh
#      (PAY_BIN = the wrapper, PAY_WORKERS=1, tests/fixtures/e2e.json);
#   4. runs the chosen tests/e2e files against it, one after another;
#   5. stops the stack: SIGTERM to the master, which SIGTERMs the worker; the
#      worker leaves its loop, closes the database and _exit(0)s, and valgrind
#      writes its error and leak summary (one log per process:
#      BUILD_DIR/vg-stack/logs/valgrind.<pid>.log);
#   6. checks every log: "ERROR SUMMARY: 0 errors", "definitely lost: 0 bytes",
#      a complete report (a process killed before valgrind's summary has
#      none), and at least one worker log whose pid served requests, so the
#      check cannot pass vacuously.
# Ends with "N passed, N failed"; exit status 1 when anything failed.
#
# Environment (optional):
#   PAY_VG_BIN      check this pay-api binary instead of building one, e.g.
#                   BUILD_DIR/pay-api (a normal build: arena overruns unseen)
#   PAY_VG_E2E      space-separated e2e file names (default: the list below)
#   PAY_VG_TIMEOUT  seconds allowed per e2e file (default 240)
#   PAY_VG_BUDGET   seconds after which no further e2e file starts (default
#                   420; ctest's TIMEOUT for memcheck.e2e is 600)
set -uo pipefail

PROG=memcheck
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

[ $# -eq 1 ] || { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
BUILD=$(realpath -m -- "$1")
STACK=$BUILD/vg-stack
WORK=$BUILD/valgrind
WRAPPER=$WORK/pay-api
SUPP=$REPO/tests/valgrind/suppressions.supp
PER_FILE_TIMEOUT=${PAY_VG_TIMEOUT:-240}
BUDGET=${PAY_VG_BUDGET:-420}

# Which files: every e2e file that exercises pay-api itself and keeps to its
# timing with one worker under valgrind (see tests/valgrind/README.md). Left
# out: test_faults (SIGKILLs workers and MariaDB on purpose: a SIGKILLed
# worker writes no valgrind report), test_process (starts pay-api instances of
# its own, SIGKILLs workers and measures worker RSS, which valgrind inflates)
# and test_indexes (EXPLAIN plans straight from MariaDB; no pay-api code).
# Also left out, as they reach no code the files below leave unreached and
# run in full under ASan+UBSan (./pay-stack test's second pass) and in the
# first pass: test_attacks (thousands of variations of the requests below:
# SQL-injection strings are bound parameters, the parsers they pass through
# are fuzzed with PAY_ARENA_DEBUG under ASan in tests/fuzz),
# test_money_property (random sequences of the writes below) and
# test_ledger_concurrency (with one worker its requests queue: serial here).
DEFAULT_E2E="test_conventions test_auth test_hostile_input test_metrics
  test_customer_payments test_customer_balances test_invoice_payments
  test_refunds test_reprocess_cancel test_payment_providers test_payment_links
  test_mandates test_credit_status"
E2E_LIST=${PAY_VG_E2E:-$DEFAULT_E2E}
read -r -a E2E <<< "${E2E_LIST//$'\n'/ }"
# test_money_property, when PAY_VG_E2E names it: 2000 seeded random requests
# instead of 4000 (its seed is printed below; PAY_SEED=<seed> repeats a run).
MONEY_OPS=${PAY_OPS:-2000}

PASSED=0
FAILED=0
pass() { PASSED=$((PASSED + 1)); printf '%s: ok   %s\n' "$PROG" "$*"; }
fail() { FAILED=$((FAILED + 1)); printf '%s: FAIL %s\n' "$PROG" "$*"; }
say()  { printf '%s: %s\n' "$PROG" "$*"; }
finish() {
    printf '%d passed, %d failed\n' "$PASSED" "$FAILED"
    [ "$FAILED" -eq 0 ] && [ "$PASSED" -gt 0 ]
    exit $?
}

T0=$SECONDS
[[ $BUILD =~ ^/[A-Za-z0-9_./+-]+$ ]] || { fail "BUILD_DIR must be a plain path: $BUILD"; finish; }
command -v valgrind >/dev/null 2>&1 || { fail "valgrind is not installed (./pay-stack test installs it)"; finish; }
say "$(valgrind --version), $(nproc) cpus, load average $(cut -d' ' -f1-3 /proc/loadavg)"
mkdir -p "$WORK"

# ---- the binary --------------------------------------------------------------
if [ -n "${PAY_VG_BIN:-}" ]; then
    REAL_BIN=$(realpath -m -- "$PAY_VG_BIN")
else
    VGB=$WORK/build
    cc=()
    c=$(sed -n 's/^CMAKE_C_COMPILER:[A-Z]*=//p' "$BUILD/CMakeCache.txt" 2>/dev/null)
    [ -z "$c" ] || cc=(-DCMAKE_C_COMPILER="$c")
    t=$SECONDS
    if ! { cmake -S "$REPO" -B "$VGB" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPAY_ARENA_DEBUG=ON \
               -DBUILD_TESTING=OFF -DPAY_SANITIZE= "${cc[@]}" &&
           cmake --build "$VGB" -j "$(nproc)" --target pay-api; } > "$WORK/build.log" 2>&1; then
        tail -n 40 "$WORK/build.log"
        fail "building the PAY_ARENA_DEBUG pay-api in $VGB (see $WORK/build.log)"
        finish
    fi
    REAL_BIN=$VGB/pay-api
    pass "build $REAL_BIN (RelWithDebInfo, PAY_ARENA_DEBUG; $((SECONDS - t)) s)"
fi
[ -x "$REAL_BIN" ] || { fail "pay-api binary not found: $REAL_BIN"; finish; }
[[ $REAL_BIN =~ ^/[A-Za-z0-9_./+-]+$ ]] || { fail "binary path must be plain: $REAL_BIN"; finish; }

# ---- the wrapper -------------------------------------------------------------
suppopt=
[ -r "$SUPP" ] && suppopt="--suppressions=$SUPP"
cat > "$WRAPPER.tmp" <<EOF
#!/usr/bin/env bash
# Generated by tests/valgrind/run.sh: "pay-api ... serve" runs under valgrind
# memcheck (forked workers included, one log per process); every other command
# runs the binary directly.
cmd=\${1:-}
[ "\$cmd" != --config ] || cmd=\${3:-}
if [ "\$cmd" = serve ]; then
    exec valgrind --tool=memcheck --trace-children=yes --child-silent-after-fork=no \\
        --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite \\
        --error-exitcode=99 --num-callers=30 --track-origins=yes $suppopt \\
        --log-file='$STACK/logs/valgrind.%p.log' '$REAL_BIN' "\$@"
fi
exec '$REAL_BIN' "\$@"
EOF
chmod 755 "$WRAPPER.tmp"
mv -f "$WRAPPER.tmp" "$WRAPPER"

# ---- the stack ---------------------------------------------------------------
STACK_UP=0
stop_stack() {
    [ "$STACK_UP" = 1 ] || return 0
    STACK_UP=0
    bash "$REPO/tests/stack.sh" stop "$STACK" > "$WORK/stack-stop.log" 2>&1
    local rc=$?
    sed 's/^/    /' "$WORK/stack-stop.log"
    return $rc
}
trap 'stop_stack >/dev/null 2>&1' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

served_total() {
    local n
    n=$(grep -c ' access: ' "$STACK/logs/pay-api.log" 2>/dev/null)
    printf '%s\n' "${n:-0}"
}

say "starting the stack in $STACK (pay-api serve under valgrind, 1 worker)"
t=$SECONDS
STACK_UP=1
if ! PAY_BIN=$WRAPPER PAY_WORKERS=1 PAY_STACK_WAIT=120 \
        PAY_DATA=$REPO/tests/fixtures/e2e.json \
        bash "$REPO/tests/stack.sh" start "$STACK" > "$WORK/stack-start.log" 2>&1; then
    STACK_UP=0    # stack.sh stops what it started when the start fails
    cat "$WORK/stack-start.log"
    fail "stack start"
    finish
fi
pass "stack start ($((SECONDS - t)) s)"
MASTER_PID=
read -r MASTER_PID _ < "$STACK/run/pay-api.pid" || true

# ---- the e2e files -----------------------------------------------------------
T1=$SECONDS
for name in "${E2E[@]}"; do
    py=$REPO/tests/e2e/$name.py
    out=$WORK/$name.out
    if [ ! -r "$py" ]; then
        fail "$name: no such file $py"
        continue
    fi
    left=$((T0 + BUDGET - SECONDS))
    if [ $left -le 10 ]; then
        fail "$name: not run, the time budget of ${BUDGET} s is used up"
        continue
    fi
    [ $left -lt "$PER_FILE_TIMEOUT" ] && tmo=$left || tmo=$PER_FILE_TIMEOUT
    n0=$(served_total)
    t=$SECONDS
    env -u PAY_RESPONSE_LOG PAY_STACK_ENV="$STACK/env" PAY_OPS="$MONEY_OPS" \
        timeout -k 10 "$tmo" python3 "$py" > "$out" 2>&1
    rc=$?
    n=$(( $(served_total) - n0 ))
    last=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out" | tail -n 1)
    seed=$(grep -oE 'seed [0-9]+' "$out" | head -n 1)
    if [ $rc -eq 0 ]; then
        pass "$name: ${last:-?}, $n requests${seed:+, $seed} ($((SECONDS - t)) s)"
    else
        [ $rc -eq 124 ] && last="timed out after ${tmo} s"
        fail "$name: exit $rc, ${last:-no summary}, $n requests${seed:+, $seed} ($((SECONDS - t)) s); last lines of $out:"
        tail -n 40 "$out" | sed 's/^/    /'
    fi
    if ! bash "$REPO/tests/stack.sh" status "$STACK" >/dev/null 2>&1; then
        fail "the stack died during $name:"
        bash "$REPO/tests/stack.sh" status "$STACK" 2>&1 | sed 's/^/    /'
        break
    fi
done
say "e2e files took $((SECONDS - T1)) s"

# ---- stop: the worker's and the master's final reports ----------------------
t=$SECONDS
stop_stack
if grep -q 'SIGKILL' "$WORK/stack-stop.log"; then
    fail "stack stop needed SIGKILL ($((SECONDS - t)) s): valgrind's reports may be cut short"
else
    pass "stack stop ($((SECONDS - t)) s)"
fi
if grep -q 'grace period over, killing workers' "$STACK/logs/pay-api.log" 2>/dev/null; then
    fail "the master SIGKILLed a worker at shutdown (shutdown_grace too short under valgrind?)"
fi

# ---- the valgrind logs -------------------------------------------------------
python3 - "$STACK/logs" "${MASTER_PID:-0}" > "$WORK/check.out" <<'PY'
import glob, os, re, sys

logs_dir, master = sys.argv[1], int(sys.argv[2])
served = {}
try:
    with open(os.path.join(logs_dir, "pay-api.log"), errors="replace") as f:
        for line in f:
            m = re.search(r" pay-api\[(\d+)\] access: ", line)
            if m:
                served[int(m.group(1))] = served.get(int(m.group(1)), 0) + 1
except OSError:
    pass

def num(s):
    return int(s.replace(",", ""))

# Paragraphs of a log that are neither errors nor leak records.
CHATTER = re.compile(r"^(Memcheck, a memory error detector|Copyright|Using Valgrind|"
                     r"Command: |Parent PID: |HEAP SUMMARY:|LEAK SUMMARY:|"
                     r"ERROR SUMMARY:|For lists of detected|For counts of detected|"
                     r"Rerun with|All heap blocks were freed|Reachable blocks|"
                     r"Warning: (set address range perms|noted but unhandled ioctl|"
                     r"client switching stacks))")

ok_all, worker_reports, worker_served = True, 0, 0
paths = sorted(glob.glob(os.path.join(logs_dir, "valgrind.*.log")),
               key=lambda p: int(re.search(r"\.(\d+)\.log$", p).group(1)))
for path in paths:
    pid = int(re.search(r"\.(\d+)\.log$", path).group(1))
    with open(path, errors="replace") as f:
        text = f.read()
    role = "master" if pid == master else "worker"
    es = re.search(r"ERROR SUMMARY: ([\d,]+) errors", text)
    errors = num(es.group(1)) if es else None
    lost = {}
    for kind in ("definitely", "indirectly", "possibly"):
        m = re.search(kind + r" lost: ([\d,]+) bytes in ([\d,]+) blocks", text)
        lost[kind] = (num(m.group(1)), num(m.group(2))) if m else (0, 0)
    if "All heap blocks were freed" in text:
        heap = "all heap blocks freed"
    else:
        heap = "definitely lost %d B in %d blocks, indirectly %d B in %d, possibly %d B in %d" % (
            lost["definitely"] + lost["indirectly"] + lost["possibly"])
    bad = []
    if errors is None:
        bad.append("no ERROR SUMMARY: the process never finished (killed?)")
    elif errors > 0:
        bad.append("%d errors" % errors)
    if lost["definitely"][0] > 0:
        bad.append("%d bytes definitely lost" % lost["definitely"][0])
    if role == "worker" and errors is not None:
        worker_reports += 1
        worker_served += served.get(pid, 0)
    print("%s %s pid %d: %d requests served; ERROR SUMMARY: %s errors; %s -> %s" % (
        "ok  " if not bad else "FAIL", role, pid, served.get(pid, 0),
        errors if errors is not None else "?", heap, "clean" if not bad else "; ".join(bad)))
    print("     " + path)
    if not bad:
        continue
    ok_all = False
    # The offending paragraphs (errors and leak records), capped.
    paras, cur = [], []
    for l in text.splitlines():
        l = re.sub(r"^==\d+== ?", "", l)
        if l.strip():
            cur.append(l)
        elif cur:
            paras.append(cur)
            cur = []
    if cur:
        paras.append(cur)
    shown = 0
    for p in paras:
        if CHATTER.match(p[0].strip()):
            continue
        for l in p:
            if shown < 400:
                print("     | " + l)
            shown += 1
        print("     |")
    if shown > 400:
        print("     | ... (%d more lines in the log)" % (shown - 400))
if not paths:
    print("FAIL no valgrind log in %s: pay-api serve did not run under valgrind" % logs_dir)
    ok_all = False
elif worker_reports == 0:
    print("FAIL no complete worker report among the valgrind logs: nothing was checked")
    ok_all = False
elif worker_served == 0:
    print("FAIL the workers with a valgrind report served no request: nothing was checked")
    ok_all = False
sys.exit(0 if ok_all else 1)
PY
rc=$?
sed 's/^/    /' "$WORK/check.out"
n=$(grep -c '/valgrind\.[0-9]*\.log$' "$WORK/check.out")
if [ $rc -eq 0 ]; then
    pass "valgrind logs: $n checked, no errors, nothing definitely lost"
else
    fail "valgrind logs (see above; all logs in $STACK/logs)"
fi
say "wall time $((SECONDS - T0)) s, load average now $(cut -d' ' -f1-3 /proc/loadavg)"
finish
