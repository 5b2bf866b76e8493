#!/usr/bin/env bash
# tests/bench/run.sh — the pay-api benchmark, in one command (a few minutes).
#
#   tests/bench/run.sh [OUTDIR]          OUTDIR defaults to build-bench/results
#
# Installs what is missing (Debian, as root: the packages of .ci/packages, as
# ./pay-stack does, plus wrk), builds Release with -O2 into build-bench/,
# starts a private stack with tests/stack.sh in build-bench/stack (MariaDB with
# durable commits, 4 pay-api workers per core, log level warn), adds a bench nginx config (no
# access log, a static file for ceiling C1, a server block for the callgrind
# worker), generates the data set with `pay-api generate`, warms up, then runs
# every scenario with wrk at each connection count for a fixed duration:
#
#   C1  static file from nginx, same size as scenario 1's body   (ceiling)
#   C2  GET /healthz through nginx + the framework, no database   (ceiling)
#   S1  GET /v1/customer-payments/{id}                random existing ids
#   S2  GET /v1/customer-payments?customer_id=…&page=1&pageSize=100
#   S3  GET /v1/customer-payments?customer_id=…&page=1&pageSize=1000&sort=paymentDate:desc
#   S4  GET /v1/customer-balances?customer_id=…
#   S5  POST /v1/customer-payments                    random customers and amounts
#   S6  90 % reads (S1-S4) / 10 % writes (S5)
#
# and collects SHOW GLOBAL STATUS deltas, CPU per process group, worker RSS and
# callgrind instruction counts for S1 and S2. Writes OUTDIR/results.md (printed
# at the end) and the raw material under OUTDIR/raw/. Everything it started is
# stopped on exit, also on failure or Ctrl-C.
#
# Environment (all optional):
#   BENCH_SECONDS=15        duration of each measured run
#   BENCH_CONNECTIONS="16 64"
#   BENCH_THREADS=nproc     wrk threads
#   BENCH_WARMUP=10         seconds of warm-up (the S6 mix at the highest count)
#   BENCH_PAUSE=2           seconds of quiet between runs
#   BENCH_WORKERS=4*nproc   pay-api workers (pay-api's default)
#   BENCH_NGINX_WORKERS=auto
#   BENCH_CUSTOMERS=10000  BENCH_INVOICES=100000  BENCH_MIN_LEDGER=500000
#   BENCH_SEED=1            seed of the generator and of the wrk scripts
#   BENCH_IDEMPOTENCY=0     1: every POST carries a distinct Idempotency-Key
#   BENCH_CG_REQUESTS=200   measured requests per callgrind run (0: skip callgrind)
#   BENCH_CG_WARMUP=20      warm-up requests per callgrind run
#   BENCH_SCENARIOS="C1 C2 S1 S2 S3 S4 S5 S6"
#   BENCH_QUIET_PCT=10      before each run, wait until processes outside the
#   BENCH_QUIET_BUDGET=600  stack use at most this % of the machine (1-s samples),
#                           waiting at most this many seconds in all (then a note)
#   BENCH_KEEP=1            leave the stack running at the end (stop it with
#                           tests/stack.sh stop build-bench/stack)
set -euo pipefail

PROG=bench
BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH/../.." && pwd)
BUILD=$REPO/build-bench
STACK=$BUILD/stack
OUT=${1:-$BUILD/results}
case $OUT in /*) ;; *) OUT=$(pwd)/$OUT ;; esac
RAW=$OUT/raw
T0=$(date +%s)

NPROC=$(nproc)
DURATION=${BENCH_SECONDS:-15}
CONNS=${BENCH_CONNECTIONS:-16 64}
THREADS=${BENCH_THREADS:-$NPROC}
WARMUP=${BENCH_WARMUP:-10}
PAUSE=${BENCH_PAUSE:-2}
WORKERS=${BENCH_WORKERS:-$((4 * NPROC))}
NGINX_WORKERS=${BENCH_NGINX_WORKERS:-auto}
CUSTOMERS=${BENCH_CUSTOMERS:-10000}
INVOICES=${BENCH_INVOICES:-100000}
MIN_LEDGER=${BENCH_MIN_LEDGER:-500000}
SEED=${BENCH_SEED:-1}
IDEMPOTENCY=${BENCH_IDEMPOTENCY:-0}
CG_N=${BENCH_CG_REQUESTS:-200}
CG_WARM=${BENCH_CG_WARMUP:-20}
SCENARIOS=${BENCH_SCENARIOS:-C1 C2 S1 S2 S3 S4 S5 S6}
KEEP=${BENCH_KEEP:-0}
QUIET_PCT=${BENCH_QUIET_PCT:-10}
QUIET_BUDGET=${BENCH_QUIET_BUDGET:-600}

say()  { printf '%s: %s\n' "$PROG" "$*" >&2; }
die()  { printf '%s: ERROR: %s\n' "$PROG" "$*" >&2; exit 1; }
note() { printf '%s\n' "$*" >> "$RAW/notes.txt"; say "note: $*"; }

for v in DURATION THREADS WARMUP PAUSE WORKERS CUSTOMERS INVOICES MIN_LEDGER SEED CG_N CG_WARM QUIET_PCT QUIET_BUDGET; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a non-negative integer: '${!v}'"
done
for c in $CONNS; do [[ $c =~ ^[1-9][0-9]*$ ]] || die "bad connection count '$c'"; done

# pay-api takes PAY_<KEY> overrides from the environment: ours must not leak in.
for v in $(compgen -e); do
    case $v in PAY_*) unset "$v" ;; esac
done

# ---------------------------------------------------------------------------
# packages and build
# ---------------------------------------------------------------------------

ensure_packages() {
    local PACKAGES=() p missing=()
    # The project's package list (the one ./pay-stack installs), plus wrk.
    mapfile -t PACKAGES < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' -e '/^$/d' "$REPO/.ci/packages")
    [ ${#PACKAGES[@]} -gt 0 ] || die "could not read the package list $REPO/.ci/packages"
    PACKAGES+=(wrk)
    command -v dpkg-query >/dev/null || die "this script expects Debian (dpkg-query not found)"
    for p in "${PACKAGES[@]}"; do
        if [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" != installed ]; then
            missing+=("$p")
        fi
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" -eq 0 ] || die "missing packages: ${missing[*]} (run as root, or: sudo apt-get install -y --no-install-recommends ${missing[*]})"
    say "installing missing packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update >"$RAW/apt.log" 2>&1 || die "apt-get update failed (see $RAW/apt.log)"
    apt-get install -y --no-install-recommends "${missing[@]}" >>"$RAW/apt.log" 2>&1 \
        || die "apt-get install failed (see $RAW/apt.log)"
}

build() {
    say "building Release (-O2) into build-bench/"
    {
        cmake -S "$REPO" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
            "-DCMAKE_C_FLAGS_RELEASE=-O2 -DNDEBUG" -DBUILD_TESTING=OFF &&
        cmake --build "$BUILD" -j "$NPROC" --target pay-api
    } >"$RAW/build.log" 2>&1 || { tail -n 30 "$RAW/build.log" >&2; die "build failed (see $RAW/build.log)"; }
    BIN=$BUILD/pay-api
    [ -x "$BIN" ] || die "no $BIN after the build"
}

# ---------------------------------------------------------------------------
# stack
# ---------------------------------------------------------------------------

CG_PID=
STACK_UP=0
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_cg_worker
    if [ "$STACK_UP" = 1 ]; then
        if [ "$KEEP" = 1 ]; then
            say "BENCH_KEEP=1: the stack keeps running; stop it with: tests/stack.sh stop $STACK"
        else
            say "stopping the stack"
            "$REPO/tests/stack.sh" stop "$STACK" >>"$RAW/stack-stop.log" 2>&1 || say "stack stop reported an error (see $RAW/stack-stop.log)"
        fi
        STACK_UP=0
    fi
    [ $rc -eq 0 ] || say "FAILED (exit $rc); raw output in $RAW"
    exit $rc
}

start_stack() {
    say "starting MariaDB + pay-api ($WORKERS workers) + nginx in build-bench/stack"
    STACK_UP=1
    PAY_BIN=$BIN PAY_WORKERS=$WORKERS PAY_LOG_LEVEL=warn PAY_STACK_WAIT=60 \
        "$REPO/tests/stack.sh" start "$STACK" >"$RAW/stack-start.log" 2>&1 \
        || { tail -n 40 "$RAW/stack-start.log" >&2; die "tests/stack.sh start failed (see $RAW/stack-start.log)"; }
    local line
    while IFS= read -r line; do
        case $line in
            PAY_BASE_URL=*|PAY_CONFIG=*|PAY_DB_SOCKET=*|MYSQL_CMD=*) eval "S_$line" ;;
        esac
    done < "$STACK/env"
    BASE=$S_PAY_BASE_URL
    CONF=$S_PAY_CONFIG
    read -r -a MYSQL <<< "$S_MYSQL_CMD"
}

sql() { "${MYSQL[@]}" -N -B -e "$1"; }

pid_of() {  # NAME: pid recorded by stack.sh
    local pid
    read -r pid _ < "$STACK/run/$1.pid" || return 1
    printf '%s\n' "$pid"
}

pay() { "$BIN" --config "$CONF" "$@"; }

# ---------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------

generate() {  # CUSTOMERS INVOICES SEED
    say "pay-api generate --customers $1 --invoices $2 --seed $3"
    { echo "\$ pay-api generate --customers $1 --invoices $2 --seed $3"
      pay generate --customers "$1" --invoices "$2" --seed "$3"; } >>"$RAW/generate.log" 2>&1 \
        || { tail -n 20 "$RAW/generate.log" >&2; die "pay-api generate failed (see $RAW/generate.log)"; }
}

make_data() {
    local rows inv cust add_inv add_cust tries=0 t=$SECONDS
    generate "$CUSTOMERS" "$INVOICES" "$SEED"
    rows=$(sql "SELECT COUNT(*) FROM ledger")
    while [ "$rows" -lt "$MIN_LEDGER" ]; do
        tries=$((tries + 1))
        [ $tries -le 3 ] || die "ledger has only $rows rows after $tries top-ups"
        inv=$(sql "SELECT COUNT(*) FROM invoices")
        cust=$(sql "SELECT COUNT(*) FROM customers")
        # The generator is additive (ids continue above the current maximum):
        # add invoices (and customers in the same proportion, so every
        # customer's history has the same shape) for the missing rows + 2 %.
        add_inv=$(( ( (MIN_LEDGER - rows) * inv * 102 / 100 + rows - 1 ) / rows ))
        add_cust=$(( (add_inv * cust + inv - 1) / inv ))
        note "generate --customers $CUSTOMERS --invoices $INVOICES gave $rows ledger rows (< $MIN_LEDGER): added $add_inv invoices for $add_cust more customers"
        generate "$add_cust" "$add_inv" "$((SEED + tries))"
        rows=$(sql "SELECT COUNT(*) FROM ledger")
    done
    say "analyzing the tables"
    sql "ANALYZE TABLE customers, sites, invoices, ledger, invoice_payments" >/dev/null
    read -r LEDGER_MIN LEDGER_MAX LEDGER_N <<< "$(sql "SELECT MIN(id), MAX(id), COUNT(*) FROM ledger")"
    read -r CUST_MIN CUST_MAX CUST_N <<< "$(sql "SELECT MIN(id), MAX(id), COUNT(*) FROM customers")"
    [ $((CUST_MAX - CUST_MIN + 1)) -eq "$CUST_N" ] || die "customer ids are not contiguous"
    [ $((LEDGER_MAX - LEDGER_MIN + 1)) -eq "$LEDGER_N" ] || die "ledger ids are not contiguous"
    local inv_n ip_n
    inv_n=$(sql "SELECT COUNT(*) FROM invoices")
    ip_n=$(sql "SELECT COUNT(*) FROM invoice_payments")
    OWNERS=$(sql "SELECT GROUP_CONCAT(id ORDER BY id) FROM contract_owners")
    local per_cust
    per_cust=$(sql "SELECT CONCAT(ROUND(AVG(n), 1), ', max ', MAX(n)) FROM (SELECT COUNT(*) n FROM ledger GROUP BY customer_id) t")
    DATA_DESC="$CUST_N customers, $inv_n invoices, $LEDGER_N ledger rows (ids $LEDGER_MIN..$LEDGER_MAX), $ip_n invoice payments, ledger rows per customer: average $per_cust, $(sql "SELECT CONCAT(ROUND(SUM(data_length + index_length) / 1048576), ' MiB') FROM information_schema.tables WHERE table_schema = 'pay'") of tables and indexes, $(sql "SELECT COUNT(*) FROM contract_owners") contract owners; generated in $((SECONDS - t)) s (seed $SEED)"
    say "data: $DATA_DESC"
}

# ---------------------------------------------------------------------------
# bench nginx config: the stack's, plus C1 and the callgrind server block
# ---------------------------------------------------------------------------

NGX=$STACK/nginx
CG_SOCK=$STACK/run/cg.sock

nginx_bench_config() {
    local body_file=$STACK/bench/c1.json cg_port
    cg_port=$(free_port)
    CG_BASE=http://127.0.0.1:$cg_port
    local port=${BASE##*:}

    sed -e "s/fastcgi_pass pay_api;/fastcgi_pass pay_api_cg;/" \
        "$NGX/snippets/pay-api-locations.conf" > "$NGX/snippets/pay-api-locations-cg.conf"
    # Rendered from the same template as the test stack's; changes:
    # worker_processes, no access log, error log at warn, two additions.
    sed -e "s|@PORT@|$port|g" -e "s|@SOCK@|$STACK/run/fcgi.sock|g" -e "s|@TMP@|$NGX|g" \
        -e "s|^worker_processes .*|worker_processes $NGINX_WORKERS;|" \
        -e "s|^\( *\)access_log .*|\1access_log off;|" \
        -e "s|^error_log \([^ ]*\) .*|error_log \1 warn;|" \
        "$REPO/nginx/test.conf.in" > "$NGX/nginx.conf.bench"
    python3 - "$NGX/nginx.conf.bench" "$body_file" "$CG_SOCK" "$cg_port" <<'PY'
import sys
path, body, sock, port = sys.argv[1:5]
s = open(path).read()
c1 = ("        # bench ceiling C1: a static file the size of scenario 1's body\n"
      "        location = /__bench/c1.json {\n"
      "            alias %s;\n"
      "            default_type application/json;\n"
      "        }\n\n" % body)
anchor = "        include snippets/pay-api-locations.conf;\n"
assert anchor in s, "test.conf.in changed: no include of the locations"
s = s.replace(anchor, c1 + anchor, 1)
cg = ("\n    # bench: the callgrind worker (tests/bench/run.sh)\n"
      "    upstream pay_api_cg {\n        server unix:%s;\n    }\n"
      "    server {\n        listen 127.0.0.1:%s;\n        server_name _;\n"
      "        include snippets/pay-api-locations-cg.conf;\n    }\n" % (sock, port))
i = s.rindex("}")
s = s[:i] + cg + s[i:]
open(path, "w").write(s)
PY
    # Reload the running master with it (same -p/-c/-g as stack.sh gave it).
    # The master's title is "nginx: master process nginx -p … -g GLOBALS".
    local npid title glob='daemon off;'
    npid=$(pid_of nginx)
    title=$(tr '\0' ' ' < "/proc/$npid/cmdline")
    case $title in *" -g "*) glob=${title#* -g } ;; esac
    cp "$NGX/nginx.conf" "$NGX/nginx.conf.stack"
    cp "$NGX/nginx.conf.bench" "$NGX/nginx.conf"
    nginx -p "$NGX" -c "$NGX/nginx.conf" -g "$glob" -t >"$RAW/nginx-t.log" 2>&1 \
        || { cat "$RAW/nginx-t.log" >&2; die "nginx -t rejected the bench config"; }
    kill -HUP "$npid"
    local i
    for ((i = 0; i < 100; i++)); do
        if [ "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/__bench/c1.json")" = 200 ]; then
            return 0
        fi
        sleep 0.1
    done
    die "nginx did not pick up the bench config (GET /__bench/c1.json)"
}

free_port() {
    local p i
    for ((i = 0; i < 200; i++)); do
        p=$((30000 + RANDOM % 10000))
        [ -n "$(ss -Hltn "sport = :$p" 2>/dev/null)" ] || { echo "$p"; return 0; }
    done
    die "no free port"
}

# ---------------------------------------------------------------------------
# measurement
# ---------------------------------------------------------------------------

export LUA_PATH="$BENCH/?.lua;;"

wrk_env() {
    export BENCH_TOKEN=$TOKEN BENCH_LEDGER_MIN=$LEDGER_MIN BENCH_LEDGER_MAX=$LEDGER_MAX \
        BENCH_CUST_MIN=$CUST_MIN BENCH_CUST_MAX=$CUST_MAX BENCH_SEED=$SEED \
        BENCH_IDEMPOTENCY=$IDEMPOTENCY
}

scenario_def() {  # ID -> NAME SCRIPT URL QUERY
    case $1 in
        C1) SC_NAME="C1 static file (nginx only)";  SC_SCRIPT=fixed.lua;  SC_URL=$BASE/__bench/c1.json ;;
        C2) SC_NAME="C2 GET /healthz (no DB)";       SC_SCRIPT=fixed.lua;  SC_URL=$BASE/healthz ;;
        S1) SC_NAME="1 GET payment by id";           SC_SCRIPT=get_payment.lua ;;
        S2) SC_NAME="2 list, pageSize=100";          SC_SCRIPT=list_payments.lua; SC_QUERY='&page=1&pageSize=100' ;;
        S3) SC_NAME="3 list, pageSize=1000, sort desc"; SC_SCRIPT=list_payments.lua; SC_QUERY='&page=1&pageSize=1000&sort=paymentDate:desc' ;;
        S4) SC_NAME="4 GET balance";                 SC_SCRIPT=balance.lua ;;
        S5) SC_NAME="5 POST payment";                SC_SCRIPT=post_payment.lua ;;
        S6) SC_NAME="6 mix 90 % read / 10 % write"; SC_SCRIPT=mix.lua ;;
        *) die "unknown scenario $1" ;;
    esac
    case $1 in S*) SC_URL=$BASE ;; esac
    case $1 in S2|S3) ;; *) SC_QUERY= ;; esac
}

# A shared machine (other sessions' builds and tests) distorts every number:
# wait until the CPU is ours, within the budget, and note what was not.
QUIET_WAITED=0
wait_quiet() {  # TAG
    local f
    while :; do
        if f=$(python3 "$BENCH/bench.py" quiet "$STACK" "$QUIET_PCT"); then
            return 0
        fi
        if [ "$QUIET_WAITED" -ge "$QUIET_BUDGET" ]; then
            note "$1 started while processes outside the stack used ${f} % of the CPUs (quiet-wait budget of ${QUIET_BUDGET} s used up)"
            return 0
        fi
        if [ "$QUIET_WAITED" -eq 0 ] || [ $((QUIET_WAITED % 30)) -eq 0 ]; then
            say "  waiting for a quiet machine (other processes use ${f} % of the CPUs)"
        fi
        sleep 1
        QUIET_WAITED=$((QUIET_WAITED + 2))
    done
}

status_snapshot() { sql "SHOW GLOBAL STATUS" > "$1"; }

run_wrk() {  # TAG CONNS SECONDS SCRIPT URL QUERY
    local tag=$1 c=$2 d=$3 script=$4 url=$5 query=$6
    local t=$((c < THREADS ? c : THREADS))
    BENCH_QUERY=$query BENCH_NONCE="$(date +%s)-$tag" TIMEFORMAT='%3R %3U %3S' \
        bash -c 'time wrk "$@"' wrk -t"$t" -c"$c" -d"${d}s" --timeout 10s --latency \
        -s "$BENCH/$script" "$url" >"$RAW/$tag.wrk" 2>"$RAW/$tag.time" || true
    grep -q '^BENCH_RESULT ' "$RAW/$tag.wrk" || { cat "$RAW/$tag.wrk" "$RAW/$tag.time" >&2; die "wrk gave no result for $tag"; }
    # keep only the timing line of bash's "time"
    tail -n 1 "$RAW/$tag.time" > "$RAW/$tag.time.tmp" && mv "$RAW/$tag.time.tmp" "$RAW/$tag.time"
}

measure() {  # ID CONNS
    local id=$1 c=$2 tag=$1-c$2
    scenario_def "$id"
    say "run $tag: $SC_NAME, $c connections, ${DURATION} s"
    status_snapshot "$RAW/$tag.status0"
    python3 "$BENCH/bench.py" cpu "$STACK" > "$RAW/$tag.cpu0"
    run_wrk "$tag" "$c" "$DURATION" "$SC_SCRIPT" "$SC_URL" "${SC_QUERY:-}"
    python3 "$BENCH/bench.py" cpu "$STACK" > "$RAW/$tag.cpu1"
    status_snapshot "$RAW/$tag.status1"
    printf '%s\t%s\t%s\t%s\n' "$tag" "$id" "$c" "$SC_NAME" >> "$RAW/runs.txt"
    sed -n 's/^BENCH_RESULT {"requests":\([0-9]*\),"duration_us":\([0-9]*\).*"non2xx":\([0-9]*\).*"p99":\([0-9]*\).*/\1 \2 \3 \4/p' "$RAW/$tag.wrk" |
        { read -r n us bad p99; say "  $((n * 1000000 / us)) req/s, p99 $((p99 / 1000)).$(printf '%03d' $((p99 % 1000))) ms, non-2xx $bad"; }
}

rss_snapshot() {  # NAME
    python3 "$BENCH/bench.py" rss "$STACK" > "$RAW/rss-$1.json"
    echo "$1" >> "$RAW/rss-order.txt"
}

# ---------------------------------------------------------------------------
# callgrind: one extra worker, fixed request sequences
# ---------------------------------------------------------------------------

alive() {  # PID: exists and is no zombie
    local s
    { read -r s < "/proc/$1/stat"; } 2>/dev/null || return 1
    s=${s##*) }
    [ "${s%% *}" != Z ]
}

stop_cg_worker() {
    [ -n "$CG_PID" ] || return 0
    if alive "$CG_PID"; then
        kill -TERM "$CG_PID" 2>/dev/null || true
        local i
        for ((i = 0; i < 600; i++)); do alive "$CG_PID" || break; sleep 0.1; done
        if alive "$CG_PID"; then
            say "callgrind pay-api (pid $CG_PID) did not stop: SIGKILL to its process group"
            kill -KILL -- "-$CG_PID" 2>/dev/null || true
        fi
    fi
    wait "$CG_PID" 2>/dev/null || true
    CG_PID=
}

cg_urls() {  # ID COUNT OFFSET: a fixed, deterministic request sequence
    local id=$1 n=$2 off=$3 i k span
    for ((i = off; i < off + n; i++)); do
        k=$((i * 7919 + 104729))
        case $id in
            S1) span=$((LEDGER_MAX - LEDGER_MIN + 1))
                printf 'url = "%s/v1/customer-payments/%d"\n' "$CG_BASE" $((LEDGER_MIN + k % span)) ;;
            S2) span=$((CUST_MAX - CUST_MIN + 1))
                printf 'url = "%s/v1/customer-payments?customer_id=%d&page=1&pageSize=100"\n' "$CG_BASE" $((CUST_MIN + k % span)) ;;
        esac
        printf 'output = "/dev/null"\n'
    done
}

cg_run() {  # ID MODE(base|full) -> CG_RESULT="TOTAL RD" of the worker
    local id=$1 mode=$2 dir=$RAW/callgrind n master f g
    mkdir -p "$dir"
    sed -e "s|^socket .*|socket          = $CG_SOCK|" -e "s|^workers .*|workers         = 1|" \
        -e "s|^log_file .*|log_file        = $STACK/logs/pay-api-cg.log|" "$CONF" > "$STACK/cg.conf"
    chmod 600 "$STACK/cg.conf"
    rm -f "$CG_SOCK" "$dir/$id-$mode".*.out
    # setsid execs in place (a background job is no group leader): $! is the
    # valgrind'ed pay-api master, in its own session and process group.
    setsid valgrind --tool=callgrind --callgrind-out-file="$dir/$id-$mode.%p.out" \
        "$BIN" --config "$STACK/cg.conf" serve </dev/null >"$dir/$id-$mode.log" 2>&1 &
    CG_PID=$!
    master=$CG_PID
    local i
    for ((i = 0; i < 600; i++)); do
        [ -S "$CG_SOCK" ] && break
        kill -0 "$CG_PID" 2>/dev/null || die "callgrind pay-api exited (see $dir/$id-$mode.log)"
        sleep 0.1
    done
    [ -S "$CG_SOCK" ] || die "callgrind pay-api did not create $CG_SOCK"
    # The sequence queues in the listen backlog until the worker accepts.
    {
        printf 'header = "Authorization: Bearer %s"\n' "$TOKEN"
        cg_urls "$id" "$CG_WARM" 0
        [ "$mode" = base ] || cg_urls "$id" "$CG_N" "$CG_WARM"
    } > "$dir/$id-$mode.curl"
    curl -sS --max-time 600 -K "$dir/$id-$mode.curl" -w '%{http_code}\n' > "$dir/$id-$mode.codes" \
        || die "curl to the callgrind worker failed"
    n=$(grep -vc '^200$' "$dir/$id-$mode.codes" || true)
    [ "$n" -eq 0 ] || die "callgrind run $id-$mode: $n responses were not 200"
    stop_cg_worker
    # The master's output file carries the pid we started; the worker's is the other.
    f=
    for g in "$dir/$id-$mode".*.out; do
        if [ -f "$g" ] && [ "$g" != "$dir/$id-$mode.$master.out" ]; then
            f=$g
            break
        fi
    done
    [ -n "$f" ] || die "no callgrind output of the worker in $dir"
    CG_RESULT=$(python3 "$BENCH/bench.py" cgstat "$f" "$dir/$id-$mode.json") || die "reading $f failed"
}

callgrind_all() {
    [ "$CG_N" -gt 0 ] || return 0
    local id bt brd ft frd
    : > "$RAW/callgrind.txt"
    for id in S1 S2; do
        scenario_def "$id"
        say "callgrind $id: $CG_WARM warm-up + $CG_N requests, then $CG_WARM alone"
        cg_run "$id" full
        read -r ft frd <<< "$CG_RESULT"
        cg_run "$id" base
        read -r bt brd <<< "$CG_RESULT"
        printf '%s\t%s\t%s\t%s\t%s\n' "$id" "$SC_NAME" "$CG_N" \
            $(( (ft - bt) / CG_N )) $(( (frd - brd) / CG_N )) >> "$RAW/callgrind.txt"
        say "  $(( (ft - bt) / CG_N )) instructions/request (router_dispatch: $(( (frd - brd) / CG_N )))"
        python3 "$BENCH/bench.py" cgtop "$RAW/callgrind/$id-full.json" "$RAW/callgrind/$id-base.json" \
            "$CG_N" > "$RAW/callgrind-$id-top.txt"
    done
}

# ---------------------------------------------------------------------------
# machine description
# ---------------------------------------------------------------------------

describe_machine() {
    local m=$RAW/meta.txt
    {
        echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
        echo "cpus=$NPROC"
        echo "cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
        echo "ram=$(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
        echo "os=Debian $(cat /etc/debian_version)"
        echo "kernel=$(uname -r)"
        echo "fs=$(df -T "$STACK" | awk 'NR == 2 {print $2 " on " $1}')"
        echo "versions=$(dpkg-query -W -f='${Package} ${Version}, ' nginx-light mariadb-server wrk valgrind libfcgi0ldbl 2>/dev/null | sed 's/, $//')"
        echo "build=cmake -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_FLAGS_RELEASE='-O2 -DNDEBUG' ($(cc --version | head -n 1))"
        echo "workers=$WORKERS ($((WORKERS / NPROC)) per core), log_level warn"
        echo "nginx_workers=$NGINX_WORKERS$([ "$NGINX_WORKERS" = auto ] && echo " (one per CPU)"), access log off, no upstream keepalive (as in production)"
        echo "source=$(git -C "$REPO" log -1 --format='commit %h (%cd)' --date=iso 2>/dev/null || echo '?')$(git -C "$REPO" diff --quiet HEAD -- 2>/dev/null || echo ' + uncommitted changes in the work tree'), built $(date -u -r "$BIN" '+%Y-%m-%d %H:%M UTC')"
        echo "mariadb=$(sql "SELECT CONCAT('innodb_flush_log_at_trx_commit=', @@innodb_flush_log_at_trx_commit, ', innodb_doublewrite=', @@innodb_doublewrite, ', log_bin=', @@log_bin, ', innodb_buffer_pool_size=', @@innodb_buffer_pool_size DIV 1048576, 'M')") (tests/stack.sh defaults)"
        echo "data=$DATA_DESC"
        echo "wrk=wrk -t$THREADS, connections $CONNS, ${DURATION} s per run, --timeout 10s, ${WARMUP} s warm-up (S6 mix), ${PAUSE} s pause between runs, idempotency keys: $([ "$IDEMPOTENCY" = 1 ] && echo yes || echo no)"
        echo "cg_warm=$CG_WARM"
        echo "command=tests/bench/run.sh${1:+ $1}"
    } > "$m"
}

# ---------------------------------------------------------------------------

main() {
    mkdir -p "$OUT"
    rm -rf "$RAW"
    mkdir -p "$RAW"
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM

    ensure_packages
    build
    start_stack
    local flush
    flush=$(sql "SELECT @@innodb_flush_log_at_trx_commit")
    [ "$flush" = 1 ] || die "innodb_flush_log_at_trx_commit is $flush, not 1 (durable commits)"
    make_data
    TOKEN=$(pay token --sub bench --scope "payments:read payments:write" \
            --contract-owners "$OWNERS" --ttl 86400) || die "pay-api token failed"

    # C1's file: scenario 1's body for a typical id.
    mkdir -p "$STACK/bench"
    curl -fsS -H "Authorization: Bearer $TOKEN" \
        "$BASE/v1/customer-payments/$(( (LEDGER_MIN + LEDGER_MAX) / 2 ))" > "$STACK/bench/c1.json" \
        || die "GET /v1/customer-payments/{id} failed"
    chmod 644 "$STACK/bench/c1.json"
    nginx_bench_config
    note "C1 serves a $(stat -c %s "$STACK/bench/c1.json")-byte static file (scenario 1's body for id $(( (LEDGER_MIN + LEDGER_MAX) / 2 )))"
    wrk_env
    describe_machine "${1:-}"

    # Deterministic, so first: on the freshly generated data, before any
    # warm-up or scenario has added payments.
    callgrind_all

    local maxc=0 c
    for c in $CONNS; do [ "$c" -gt "$maxc" ] && maxc=$c; done
    if [ "$WARMUP" -gt 0 ]; then
        say "warm-up: S6 mix, $maxc connections, ${WARMUP} s; C1, C2 2 s"
        run_wrk warmup-S6 "$maxc" "$WARMUP" mix.lua "$BASE" ""
        run_wrk warmup-C1 "$maxc" 2 fixed.lua "$BASE/__bench/c1.json" ""
        run_wrk warmup-C2 "$maxc" 2 fixed.lua "$BASE/healthz" ""
    fi
    rss_snapshot warm
    # Calibrate: statements the status snapshots themselves add to Questions.
    status_snapshot "$RAW/cal0"; status_snapshot "$RAW/cal1"

    : > "$RAW/runs.txt"
    local id
    for id in $SCENARIOS; do
        for c in $CONNS; do
            sleep "$PAUSE"
            wait_quiet "$id-c$c"
            measure "$id" "$c"
        done
        rss_snapshot "after-$id"
    done
    rss_snapshot last

    say "stopping the stack"
    if [ "$KEEP" != 1 ]; then
        "$REPO/tests/stack.sh" stop "$STACK" >>"$RAW/stack-stop.log" 2>&1 || say "stack stop reported an error"
        STACK_UP=0
    fi
    [ "$QUIET_WAITED" -eq 0 ] || note "waited ${QUIET_WAITED} s in all for other processes to leave the CPUs"
    echo "runtime_s=$(( $(date +%s) - T0 ))" >> "$RAW/meta.txt"
    python3 "$BENCH/bench.py" report "$OUT"
    echo
    cat "$OUT/results.md"
    echo
    say "results: $OUT/results.md (raw: $RAW)"
}

main "$@"
