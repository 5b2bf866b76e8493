#!/usr/bin/env bash
# tests/stack.sh — a private, throw-away pay-api stack: MariaDB + pay-api + nginx,
# everything (data, sockets, logs, pids, config) inside one directory.
#
#   tests/stack.sh start DIR [PORT]     start the stack; PORT defaults to a free
#                                       random port in 20000-29999
#   tests/stack.sh stop  DIR            stop it (idempotent, never fails when
#                                       nothing runs)
#   tests/stack.sh status DIR           exit 0 when mariadbd, pay-api and nginx
#                                       all still run, 1 otherwise
#
# Environment for "start":
#   PAY_BIN        pay-api binary (default: <repo>/build/pay-api); nothing is built
#   PAY_DATA       JSON file for "pay-api load" after "migrate" (optional)
#   PAY_WORKERS    pay-api workers (default 4)
#   PAY_LOG_LEVEL  pay-api log_level (default info)
#   PAY_STACK_WAIT seconds to wait for /healthz and /readyz (default 20)
#   PAY_STACK_KEEP=1  on a failed start, leave the processes running for debugging
#   PAY_COLLECTORS collection engine processes (default 0: tests run
#                  "pay-api attempts run"); PAY_SANDBOX_STEP_MS the sandbox
#                  provider's timeline step (default 50)
# Any other PAY_* variable is removed from the environment of pay-api, so the
# generated config file is the only source of its settings.
#
# Layout of DIR:
#   mysql/          MariaDB datadir          run/   sockets and pid records
#   nginx/          nginx prefix: nginx.conf, fastcgi_params, snippets/, tmp/,
#                   error.log, access.log, nginx.pid
#   logs/           mariadb.err, pay-api.log (app log), pay-api.out (stdout/err),
#                   setup.log (migrate/load), ...
#   pay-api.conf    generated config (0600)    jwt.secret  HS256 secret (0600)
#   env             shell-sourceable KEY='value' lines for the tests (0600)
#
# Processes are stopped by the PIDs recorded in DIR/run/*.pid ("PID STARTTIME";
# the start time guards against PID reuse), never by name. Each daemon is
# started in its own session, so its process group id is its PID.
set -euo pipefail

PROG=stack.sh
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

say()  { printf '%s: %s\n' "$PROG" "$*"; }
warn() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die()  { printf '%s: ERROR: %s\n' "$PROG" "$*" >&2; exit 1; }

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//' >&2
    exit 2
}

# ---------------------------------------------------------------------------
# PID records and process helpers
# ---------------------------------------------------------------------------

# Fields of /proc/PID/stat after "pid (comm) ": 1=state 3=pgrp 20=starttime.
stat_field() {  # PID N
    local s f
    { read -r s < "/proc/$1/stat"; } 2>/dev/null || return 1
    s=${s##*) }
    read -r -a f <<< "$s"
    [ -n "${f[$2 - 1]:-}" ] || return 1
    printf '%s\n' "${f[$2 - 1]}"
}

is_running() {  # PID: exists and is not a zombie
    local st
    st=$(stat_field "$1" 1) || return 1
    [ "$st" != Z ] && [ "$st" != X ]
}

record_pid() {  # NAME PID
    local st
    st=$(stat_field "$2" 20) || die "$1 (pid $2) exited right after start; see $LOGS"
    printf '%s %s\n' "$2" "$st" > "$RUN/$1.pid"
}

# Prints the recorded PID of NAME if that very process is still running.
recorded_pid() {  # NAME
    local f=$RUN/$1.pid pid st now
    [ -r "$f" ] || return 1
    read -r pid st < "$f" || return 1
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    now=$(stat_field "$pid" 20) || return 1
    [ "$now" = "$st" ] || return 1
    is_running "$pid" || return 1
    printf '%s\n' "$pid"
}

# Live (non-zombie) members of process group PGID.
group_members() {  # PGID
    local p pid
    for p in /proc/[0-9]*; do
        pid=${p#/proc/}
        [ "$(stat_field "$pid" 3 2>/dev/null)" = "$1" ] || continue
        is_running "$pid" && printf '%s\n' "$pid"
    done
    return 0
}

wait_gone() {  # PID SECONDS
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        is_running "$1" || return 0
        sleep 0.1
    done
    ! is_running "$1"
}

wait_group_gone() {  # PGID SECONDS
    local i
    for ((i = 0; i < $2 * 5; i++)); do
        [ -z "$(group_members "$1")" ] && return 0
        sleep 0.2
    done
    [ -z "$(group_members "$1")" ]
}

# Stops process NAME: SIG to the recorded pid, wait, then SIGKILL to its whole
# process group (its own session, see start_daemon). Members of that group are
# also cleaned up when the leader itself is already gone (e.g. nginx workers of
# a killed master): Linux never reuses a PID while it still names a process
# group, so those members are ours.
stop_daemon() {  # NAME SIGNAL GRACE_SECONDS
    local name=$1 sig=$2 grace=$3 pid st
    [ -r "$RUN/$name.pid" ] || return 0
    read -r pid st < "$RUN/$name.pid" || true
    if ! [[ ${pid:-} =~ ^[0-9]+$ ]] || [ "$pid" -le 1 ]; then
        rm -f "$RUN/$name.pid"
        return 0
    fi
    if recorded_pid "$name" >/dev/null; then
        say "stopping $name (pid $pid, SIG$sig)"
        kill -"$sig" "$pid" 2>/dev/null || true
        if ! wait_gone "$pid" "$grace"; then
            warn "$name (pid $pid) still running after ${grace}s: SIGKILL to its process group"
            kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
            wait_gone "$pid" 5 || warn "$name (pid $pid) survived SIGKILL"
        fi
    fi
    # Children (workers) left behind get a short grace, then SIGKILL.
    if [ -n "$(group_members "$pid")" ]; then
        if ! wait_group_gone "$pid" 3; then
            warn "$name: leftover processes in group $pid: SIGTERM, then SIGKILL"
            kill -TERM -- "-$pid" 2>/dev/null || true
            if ! wait_group_gone "$pid" 5; then
                kill -KILL -- "-$pid" 2>/dev/null || true
                wait_group_gone "$pid" 5 || warn "$name: processes of group $pid survived SIGKILL"
            fi
        fi
    fi
    rm -f "$RUN/$name.pid"
}

# Runs "$@" in a new session (so its pgid is its pid), stdin from /dev/null,
# stdout/stderr appended to LOGFILE; records its pid as NAME.
start_daemon() {  # NAME LOGFILE CMD...
    local name=$1 logf=$2; shift 2
    setsid "$@" </dev/null >>"$logf" 2>&1 &
    local pid=$!
    record_pid "$name" "$pid"
    say "started $name (pid $pid)"
}

# ---------------------------------------------------------------------------
# Layout
# ---------------------------------------------------------------------------

set_layout() {  # DIR
    case $1 in
        '') usage ;;
        /*) DIR=$1 ;;
        *)  DIR=$(pwd)/$1 ;;
    esac
    DIR=$(realpath -m -- "$DIR")
    # The path ends up in nginx.conf, SQL, the config file and the env file.
    [[ $DIR =~ ^/[A-Za-z0-9_./+-]+$ ]] || die "DIR must be a plain path ([A-Za-z0-9_./+-]): '$DIR'"
    [ "$DIR" != / ] || die "refusing DIR=/"
    RUN=$DIR/run
    LOGS=$DIR/logs
    NGX=$DIR/nginx
    MYSQL_SOCK=$RUN/mysqld.sock
    FCGI_SOCK=$RUN/fcgi.sock
    CONF=$DIR/pay-api.conf
    MARKER=$DIR/.pay-stack
    # sun_path holds 107 bytes plus the NUL.
    [ ${#MYSQL_SOCK} -le 107 ] || die "DIR is too long for a unix socket path: $MYSQL_SOCK"
    if [ "$(id -u)" -eq 0 ]; then DBA=root; else DBA=$(id -un); fi
}

mysql_admin() { mariadb-admin --no-defaults --socket="$MYSQL_SOCK" -u"$DBA" --connect-timeout=2 "$@"; }

# ---------------------------------------------------------------------------
# stop
# ---------------------------------------------------------------------------

do_stop() {
    if [ ! -e "$MARKER" ]; then
        say "nothing to stop: $DIR is not a stack directory"
        return 0
    fi
    rm -f "$DIR/env"
    stop_daemon nginx QUIT 10                    # graceful: finish in-flight requests
    stop_daemon pay-api TERM 15                  # graceful drain, then SIGKILL
    local pid
    if pid=$(recorded_pid mariadbd); then
        say "stopping mariadbd (pid $pid, mariadb-admin shutdown)"
        timeout 60 mariadb-admin --no-defaults --socket="$MYSQL_SOCK" -u"$DBA" \
            --connect-timeout=2 shutdown >/dev/null 2>&1 || true
        wait_gone "$pid" 30 || true
    fi
    stop_daemon mariadbd TERM 30                 # no-op when the shutdown worked
    rm -f "$FCGI_SOCK"
    say "stopped ($DIR)"
}

do_status() {
    local name pid rc=0
    for name in mariadbd pay-api nginx; do
        if pid=$(recorded_pid "$name"); then
            say "$name running (pid $pid)"
        else
            say "$name NOT running"
            rc=1
        fi
    done
    return $rc
}

# ---------------------------------------------------------------------------
# start
# ---------------------------------------------------------------------------

port_is_free() { [ -z "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]; }

pick_port() {
    local p i
    for ((i = 0; i < 200; i++)); do
        p=$((20000 + RANDOM % 10000))
        if port_is_free "$p"; then printf '%s\n' "$p"; return 0; fi
    done
    die "no free port found in 20000-29999"
}

dump_logs() {
    local f
    warn "---- last lines of the logs in $DIR ----"
    for f in "$LOGS"/* "$NGX/error.log"; do
        [ -s "$f" ] || continue
        # The installer's chatter only matters when the server never started.
        if [ "$f" = "$LOGS/mariadb-install.log" ] && [ -s "$LOGS/mariadb.err" ]; then continue; fi
        printf '\n==> %s <==\n' "$f" >&2
        tail -n 40 "$f" >&2
    done
    warn "---- end of logs ----"
}

STARTING=0
on_exit() {
    local rc=$?
    if [ "$STARTING" = 1 ] && [ $rc -ne 0 ]; then
        trap - INT TERM
        warn "start FAILED (exit $rc)"
        dump_logs
        if [ "${PAY_STACK_KEEP:-0}" = 1 ]; then
            warn "PAY_STACK_KEEP=1: leaving the processes running; stop them with: $0 stop $DIR"
        else
            do_stop >&2 || true
        fi
    fi
    exit $rc
}

need_cmd() {
    local c missing=()
    for c in "$@"; do command -v "$c" >/dev/null 2>&1 || missing+=("$c"); done
    [ ${#missing[@]} -eq 0 ] || die "missing commands: ${missing[*]} (run ./pay-stack, which installs the packages)"
}

do_start() {
    local port=${1:-}

    # Inputs (read before the PAY_* variables are dropped).
    BIN=${PAY_BIN:-$REPO/build/pay-api}
    case $BIN in /*) ;; *) BIN=$(pwd)/$BIN ;; esac
    local data=${PAY_DATA:-}
    local workers=${PAY_WORKERS:-4}
    local log_level=${PAY_LOG_LEVEL:-info}
    local wait_s=${PAY_STACK_WAIT:-20}
    local collectors=${PAY_COLLECTORS:-0} sandbox_step=${PAY_SANDBOX_STEP_MS:-50}
    local v
    for v in $(compgen -e); do
        case $v in PAY_STACK_*) ;; PAY_*) unset "$v" ;; esac
    done

    [ -x "$BIN" ] || die "pay-api binary not found or not executable: $BIN (set PAY_BIN)"
    [[ $BIN =~ ^/[A-Za-z0-9_./+-]+$ ]] || die "PAY_BIN must be a plain path: '$BIN'"
    if [ -n "$data" ]; then
        case $data in /*) ;; *) data=$(pwd)/$data ;; esac
        [ -r "$data" ] || die "PAY_DATA file not readable: $data"
    fi
    [[ $workers =~ ^[1-9][0-9]*$ ]] || die "PAY_WORKERS must be a positive integer: '$workers'"
    [[ $collectors =~ ^[0-9]+$ && $sandbox_step =~ ^[1-9][0-9]*$ ]] \
        || die "PAY_COLLECTORS / PAY_SANDBOX_STEP_MS must be integers"
    [[ $wait_s =~ ^[1-9][0-9]*$ ]] || die "PAY_STACK_WAIT must be a positive integer: '$wait_s'"
    need_cmd mariadb-install-db mariadbd mariadb mariadb-admin nginx curl openssl ss setsid timeout realpath
    [ -r /etc/nginx/fastcgi_params ] || die "/etc/nginx/fastcgi_params missing (package nginx-common)"

    if [ -n "$port" ]; then
        if ! [[ $port =~ ^[0-9]+$ ]] || [ "$port" -lt 1 ] || [ "$port" -gt 65535 ]; then
            die "bad PORT '$port'"
        fi
        port_is_free "$port" || die "port $port is already in use (ss -ltnp 'sport = :$port' shows by what)"
    else
        port=$(pick_port)
    fi

    # A DIR we did not create is never wiped.
    if [ -e "$DIR" ] && [ ! -e "$MARKER" ] && [ -n "$(ls -A "$DIR" 2>/dev/null)" ]; then
        die "$DIR exists, is not empty and was not made by $PROG; refusing to use it"
    fi
    if [ -e "$MARKER" ]; then
        say "reusing $DIR: stopping leftovers of an earlier run and wiping it"
        do_stop
        rm -rf -- "$DIR/mysql" "$NGX" "$LOGS" "$RUN" "$CONF" "$DIR/jwt.secret" "$DIR/env"
    fi

    STARTING=1
    trap on_exit EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM

    umask 022
    mkdir -p "$DIR/mysql" "$NGX/snippets" "$NGX/tmp" "$LOGS" "$RUN"
    : > "$MARKER"
    # nginx workers of a root master run as "nobody" and must reach the socket.
    chmod 755 "$DIR" "$RUN"
    say "stack dir $DIR, port $port"

    # ---- MariaDB --------------------------------------------------------------
    local rootopt=()
    [ "$(id -u)" -ne 0 ] || rootopt=(--user=root)
    say "initialising MariaDB datadir"
    mariadb-install-db --no-defaults "${rootopt[@]}" --datadir="$DIR/mysql" \
        --auth-root-authentication-method=socket --auth-root-socket-user="$DBA" --skip-test-db \
        >"$LOGS/mariadb-install.log" 2>&1 || die "mariadb-install-db failed"

    start_daemon mariadbd "$LOGS/mariadb.out" \
        mariadbd --no-defaults "${rootopt[@]}" \
        --datadir="$DIR/mysql" --socket="$MYSQL_SOCK" --pid-file="$RUN/mysqld.pid" \
        --skip-networking --log-error="$LOGS/mariadb.err" \
        --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci \
        --innodb-buffer-pool-size=256M --innodb-flush-log-at-trx-commit=1 \
        --default-time-zone=+00:00               # as pay-api's sessions: the
                                                 # mariadb client sees UTC too

    local i ok=0 mpid
    mpid=$(recorded_pid mariadbd) || die "mariadbd exited during start-up"
    for ((i = 0; i < 600; i++)); do              # up to 60 s
        if mysql_admin ping >/dev/null 2>&1; then ok=1; break; fi
        is_running "$mpid" || die "mariadbd exited during start-up"
        sleep 0.1
    done
    [ $ok = 1 ] || die "mariadbd did not answer ping within 60 s"
    say "MariaDB is up ($MYSQL_SOCK)"

    local dbpass
    dbpass=$(openssl rand -hex 16)
    mariadb --no-defaults --socket="$MYSQL_SOCK" -u"$DBA" >>"$LOGS/setup.log" 2>&1 <<SQL || die "creating database/user failed"
CREATE DATABASE pay CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE USER 'pay'@'localhost' IDENTIFIED BY '$dbpass';
GRANT ALL PRIVILEGES ON pay.* TO 'pay'@'localhost';
SQL

    # ---- pay-api config ----------------------------------------------------------
    umask 077
    openssl rand -hex 48 | tr -d '\n' > "$DIR/jwt.secret"
    local webhook_secret
    webhook_secret=$(openssl rand -hex 32)
    cat > "$CONF" <<CONF
# Generated by tests/stack.sh — private test stack in $DIR
socket          = $FCGI_SOCK
socket_mode     = 0666
workers         = $workers
db_socket       = $MYSQL_SOCK
db_user         = pay
db_password     = $dbpass
db_name         = pay
jwt_alg         = HS256
jwt_secret_file = $DIR/jwt.secret
public_base_url = http://127.0.0.1:$port
log_file        = $LOGS/pay-api.log
log_level       = $log_level
# The shared e2e stack runs no collection engine: a test moves it
# deterministically with "pay-api attempts run" (PAY_COLLECTORS overrides).
collectors      = $collectors
sandbox_step_ms = $sandbox_step
reconcile_ms    = $((sandbox_step * 4))
webhook_secret  = $webhook_secret
CONF
    chmod 600 "$DIR/jwt.secret" "$CONF"
    umask 022

    say "pay-api migrate"
    { echo "\$ pay-api migrate"; timeout 300 "$BIN" --config "$CONF" migrate; } >>"$LOGS/setup.log" 2>&1 \
        || die "pay-api migrate failed (see $LOGS/setup.log)"
    if [ -n "$data" ]; then
        say "pay-api load $data"
        { echo "\$ pay-api load $data"; timeout 600 "$BIN" --config "$CONF" load "$data"; } >>"$LOGS/setup.log" 2>&1 \
            || die "pay-api load $data failed (see $LOGS/setup.log)"
    fi

    rm -f "$FCGI_SOCK"
    start_daemon pay-api "$LOGS/pay-api.out" "$BIN" --config "$CONF" serve

    # ---- nginx -----------------------------------------------------------------
    [ -r "$REPO/nginx/test.conf.in" ] || die "missing $REPO/nginx/test.conf.in"
    cp /etc/nginx/fastcgi_params "$NGX/fastcgi_params"
    cp "$REPO/nginx/pay-api-locations.conf" "$NGX/snippets/pay-api-locations.conf"
    sed -e "s|@PORT@|$port|g" -e "s|@SOCK@|$FCGI_SOCK|g" -e "s|@TMP@|$NGX|g" \
        "$REPO/nginx/test.conf.in" > "$NGX/nginx.conf"
    if grep -q '@[A-Z_]*@' "$NGX/nginx.conf"; then
        die "unrendered placeholder in nginx/test.conf.in: $(grep -o '@[A-Z_]*@' "$NGX/nginx.conf" | head -n 1)"
    fi
    local ngx_global='daemon off;'
    if [ "$(id -u)" -eq 0 ] && ! runuser -u nobody -- test -x "$RUN" 2>/dev/null; then
        # e.g. a repo under /root (0700): "nobody" cannot reach the socket.
        say "note: user nobody cannot reach $RUN; nginx workers run as root (test stack only)"
        ngx_global='daemon off; user root;'
    fi
    nginx -p "$NGX" -c "$NGX/nginx.conf" -g "$ngx_global" -t >>"$LOGS/nginx-test.log" 2>&1 \
        || die "nginx -t rejected $NGX/nginx.conf (see $LOGS/nginx-test.log)"
    start_daemon nginx "$LOGS/nginx.out" nginx -p "$NGX" -c "$NGX/nginx.conf" -g "$ngx_global"

    # ---- wait until ready ------------------------------------------------------------
    local base=http://127.0.0.1:$port path ppid npid
    ppid=$(recorded_pid pay-api) || die "pay-api serve exited during start-up"
    npid=$(recorded_pid nginx) || die "nginx exited during start-up"
    local deadline=$((SECONDS + wait_s))
    for path in /healthz /readyz; do
        until curl -fsS -o /dev/null --max-time 2 "$base$path" 2>/dev/null; do
            is_running "$ppid" || die "pay-api serve exited during start-up"
            is_running "$npid" || die "nginx exited during start-up"
            if [ $SECONDS -ge $deadline ]; then
                curl -sS -i --max-time 2 "$base$path" >&2 || true
                die "GET $path did not answer 200 within ${wait_s} s"
            fi
            sleep 0.2
        done
    done
    say "GET /healthz and /readyz answer 200"

    # ---- env file ----------------------------------------------------------------
    umask 077
    cat > "$DIR/env.tmp" <<ENV
PAY_BASE_URL='$base'
PAY_CONFIG='$CONF'
PAY_BIN='$BIN'
PAY_DB_SOCKET='$MYSQL_SOCK'
PAY_DB_USER='pay'
PAY_DB_PASSWORD='$dbpass'
PAY_DB_NAME='pay'
PAY_STACK_DIR='$DIR'
PAY_WEBHOOK_SECRET='$webhook_secret'
MYSQL_CMD='mariadb --no-defaults --socket=$MYSQL_SOCK -u$DBA pay'
ENV
    mv -f "$DIR/env.tmp" "$DIR/env"
    umask 022

    STARTING=0
    say "ready: $base  (env: $DIR/env, logs: $LOGS, nginx logs: $NGX/*.log)"
}

# ---------------------------------------------------------------------------

case ${1:-} in
    start)
        if [ $# -lt 2 ] || [ $# -gt 3 ]; then usage; fi
        set_layout "$2"
        do_start "${3:-}"
        ;;
    stop)
        [ $# -eq 2 ] || usage
        set_layout "$2"
        do_stop
        ;;
    status)
        [ $# -eq 2 ] || usage
        set_layout "$2"
        do_status
        ;;
    -h|--help|help) usage ;;
    *) usage ;;
esac
