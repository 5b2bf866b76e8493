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
#   PAY_TLS=1      production-shaped HTTPS front: nginx runs nginx/pay-api.conf
#                  itself (tests/ops/site_lib.sh), TLS on a second free port with
#                  a test CA made here (DIR/tls/), PORT serves only the port-80
#                  rules (ACME webroot DIR/acme/, 301 / JSON 403), and
#                  public_base_url is https://. The env file then also has
#                  PAY_TLS_CA (the CA to trust) and PAY_HTTP_URL (the port-80
#                  side). Without it: plain HTTP on PORT (nginx/test.conf.in) and
#                  allow_insecure_http = 1, a development stack.
#   PAY_FRONT      web server in front: nginx (default) or apache (a private
#                  Apache httpd from apache/test.conf.in, see start_apache)
#   PAY_COLLECTORS collection engine processes (default 0: tests run
#                  "pay-api attempts run"); PAY_SANDBOX_STEP_MS the sandbox
#                  provider's timeline step (default 50); PAY_COLLECTOR_LEASE_MS
#                  collector_lease_ms (default: pay-api's)
#   PAY_STACK_CACHE  where the freshly installed MariaDB datadir that stacks
#                  copy is kept (default: DIR's parent when it is a build
#                  directory, i.e. holds CMakeCache.txt; otherwise every stack
#                  runs mariadb-install-db itself)
#   PAY_STACK_CONF_EXTRA  lines appended to the generated pay-api.conf (e.g.
#                  stripe_credentials = FILE, gocardless_credentials = FILE; the
#                  Stripe and GoCardless stacks of tests/providers/*/stack.sh)
# Any other PAY_* variable is removed from the environment of pay-api, so the
# generated config file is the only source of its settings.
#
# Layout of DIR:
#   mysql/          MariaDB datadir          run/   sockets and pid records
#   nginx/          nginx prefix: nginx.conf, fastcgi_params, snippets/, tmp/,
#                   error.log, access.log, nginx.pid
#   apache/         (PAY_FRONT=apache) ServerRoot: apache2.conf, locations.conf,
#                   run/, error.log, access.log, apache2.pid
#   front           the front's name (nginx or apache)
#   logs/           mariadb.err, pay-api.log (app log), pay-api.out (stdout/err),
#                   setup.log (migrate/load), ...
#   pay-api.conf    generated config (0600)    jwt.secret  HS256 secret (0600)
#   env             shell-sourceable KEY='value' lines for the tests (0600)
#   tls/, acme/     PAY_TLS=1 only: test CA + server certificate, ACME webroot
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
    stop_daemon apache WINCH 10                  # graceful-stop, the same for Apache
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
    for name in mariadbd pay-api "$(front_of_dir)"; do
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
    for f in "$LOGS"/* "$NGX/error.log" "$DIR/apache/error.log"; do
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

# ---- the Apache front (PAY_FRONT=apache) --------------------------------------

front_of_dir() {  # the front recorded by "start" (nginx for older stack dirs)
    local f=nginx
    [ -r "$DIR/front" ] && read -r f < "$DIR/front"
    printf '%s\n' "${f:-nginx}"
}

front_access_log() {
    if [ "$(front_of_dir)" = apache ]; then echo "$DIR/apache/access.log"; else echo "$NGX/access.log"; fi
}

# Renders apache/test.conf.in into DIR/apache (its ServerRoot), copies the
# shared apache/pay-api-locations.conf next to it, checks it with -t and
# starts "apache2 -DFOREGROUND" as the daemon "apache". Never the system
# apache2 service: everything (pid, logs, mutexes) stays in DIR/apache.
start_apache() {  # PORT
    local port=$1 ap=$DIR/apache users=''
    need_cmd apache2
    [ -r "$REPO/apache/test.conf.in" ] || die "missing $REPO/apache/test.conf.in"
    mkdir -p "$ap/run"
    cp "$REPO/apache/pay-api-locations.conf" "$ap/locations.conf"
    if [ "$(id -u)" -eq 0 ]; then
        # Apache refuses to serve as root: its children run as nobody, who
        # must reach the socket in $RUN.
        runuser -u nobody -- test -x "$RUN" 2>/dev/null \
            || die "user nobody cannot reach $RUN (Apache children cannot run as root); use a DIR nobody can traverse"
        users='User nobody\nGroup nogroup'
    fi
    sed -e "s|@PORT@|$port|g" -e "s|@SOCK@|$FCGI_SOCK|g" -e "s|@TMP@|$ap|g" \
        -e "s|^@USERDIRECTIVES@$|$users|" "$REPO/apache/test.conf.in" > "$ap/apache2.conf"
    if grep -q '@[A-Z_]*@' "$ap/apache2.conf"; then
        die "unrendered placeholder in apache/test.conf.in: $(grep -o '@[A-Z_]*@' "$ap/apache2.conf" | head -n 1)"
    fi
    # -d/-f: our ServerRoot and configuration only; nothing under /etc/apache2
    # is read, and the system service is never touched.
    apache2 -d "$ap" -f "$ap/apache2.conf" -t >>"$LOGS/apache-test.log" 2>&1 \
        || die "apache2 -t rejected $ap/apache2.conf (see $LOGS/apache-test.log)"
    start_daemon apache "$LOGS/apache.out" apache2 -d "$ap" -f "$ap/apache2.conf" -DFOREGROUND
}

need_cmd() {
    local c missing=()
    for c in "$@"; do command -v "$c" >/dev/null 2>&1 || missing+=("$c"); done
    [ ${#missing[@]} -eq 0 ] || die "missing commands: ${missing[*]} (run ./pay-stack, which installs the packages)"
}

# ---- PAY_TLS=1: the production site over HTTPS ------------------------------------

TLS=0 TLS_PORT=

# The public_base_url (and, for plain HTTP, the development flag) of pay-api.conf.
stack_base_url_conf() {  # PORT
    if [ "$TLS" = 1 ]; then
        printf 'public_base_url = https://127.0.0.1:%s\n' "$TLS_PORT"
        printf 'sandbox_ca_file = %s\n' "$DIR/tls/ca.pem"
    else
        printf 'public_base_url = http://127.0.0.1:%s\n' "$1"
        printf '# plain-HTTP development/test stack on loopback (no Secure cookie)\n'
        printf 'allow_insecure_http = 1\n'
    fi
}

# Replaces the rendered test.conf.in by nginx/pay-api.conf itself: HTTPS on
# TLS_PORT with a fresh test CA, the port-80 server on PORT.
stack_tls_nginx() {  # PORT
    [ "$TLS" = 1 ] || return 0
    # shellcheck source=tests/ops/site_lib.sh
    . "$REPO/tests/ops/site_lib.sh"
    rm -rf -- "$DIR/tls" "$DIR/acme"
    mkdir -p "$DIR/acme/.well-known/acme-challenge"
    say "making a test CA and server certificate in $DIR/tls"
    site_make_certs "$DIR/tls" || die "cannot make the test certificates"
    rm -f "$NGX/nginx.conf"
    site_render "$REPO/nginx" "$NGX" "$1" "$TLS_PORT" "$FCGI_SOCK" "$DIR/tls" "$DIR/acme" \
        || die "cannot render nginx/pay-api.conf into $NGX"
    # The readiness checks below speak HTTPS and trust the test CA.
    export CURL_CA_BUNDLE=$DIR/tls/ca.pem
}

# Extra lines of the env file.
stack_tls_env() {
    [ "$TLS" = 1 ] || return 0
    printf "PAY_TLS_CA='%s'\nPAY_HTTP_URL='http://127.0.0.1:%s'\nPAY_ACME_DIR='%s'\n" \
        "$DIR/tls/ca.pem" "$1" "$DIR/acme"
}

# ---- start, in named steps ----------------------------------------------------
# The steps share the stack's settings through these globals (set by
# start_inputs, start_database and start_wait_ready).
DATA='' WORKERS='' LOG_LEVEL='' WAIT_S='' PORT='' DBPASS='' BASE=''
COLLECTORS='' SANDBOX_STEP='' LEASE='' WEBHOOK_SECRET='' CONF_EXTRA=''

# Reads and checks the inputs (PORT and the PAY_* variables, read before
# they are dropped from the environment of pay-api).
start_inputs() {  # [PORT]
    PORT=${1:-}
    BIN=${PAY_BIN:-$REPO/build/pay-api}
    case $BIN in /*) ;; *) BIN=$(pwd)/$BIN ;; esac
    DATA=${PAY_DATA:-}
    WORKERS=${PAY_WORKERS:-4}
    LOG_LEVEL=${PAY_LOG_LEVEL:-info}
    WAIT_S=${PAY_STACK_WAIT:-20}
    COLLECTORS=${PAY_COLLECTORS:-0}
    SANDBOX_STEP=${PAY_SANDBOX_STEP_MS:-50}
    LEASE=${PAY_COLLECTOR_LEASE_MS:-30000}
    CONF_EXTRA=${PAY_STACK_CONF_EXTRA:-}
    TLS=${PAY_TLS:-0}
    FRONT=${PAY_FRONT:-nginx}
    case $FRONT in nginx|apache) ;; *) die "PAY_FRONT must be nginx or apache: '$FRONT'" ;; esac
    local v
    for v in $(compgen -e); do
        case $v in PAY_STACK_*) ;; PAY_*) unset "$v" ;; esac
    done

    [ -x "$BIN" ] || die "pay-api binary not found or not executable: $BIN (set PAY_BIN)"
    [[ $BIN =~ ^/[A-Za-z0-9_./+-]+$ ]] || die "PAY_BIN must be a plain path: '$BIN'"
    if [ -n "$DATA" ]; then
        case $DATA in /*) ;; *) DATA=$(pwd)/$DATA ;; esac
        [ -r "$DATA" ] || die "PAY_DATA file not readable: $DATA"
    fi
    [[ $WORKERS =~ ^[1-9][0-9]*$ ]] || die "PAY_WORKERS must be a positive integer: '$WORKERS'"
    [[ $WAIT_S =~ ^[1-9][0-9]*$ ]] || die "PAY_STACK_WAIT must be a positive integer: '$WAIT_S'"
    [[ $COLLECTORS =~ ^[0-9]+$ && $SANDBOX_STEP =~ ^[1-9][0-9]*$ && $LEASE =~ ^[1-9][0-9]*$ ]] \
        || die "PAY_COLLECTORS / PAY_SANDBOX_STEP_MS / PAY_COLLECTOR_LEASE_MS must be integers"
    need_cmd mariadb-install-db mariadbd mariadb mariadb-admin nginx curl openssl ss setsid timeout realpath
    [ -r /etc/nginx/fastcgi_params ] || die "/etc/nginx/fastcgi_params missing (package nginx-common)"

    if [ -n "$PORT" ]; then
        if ! [[ $PORT =~ ^[0-9]+$ ]] || [ "$PORT" -lt 1 ] || [ "$PORT" -gt 65535 ]; then
            die "bad PORT '$PORT'"
        fi
        port_is_free "$PORT" || die "port $PORT is already in use (ss -ltnp 'sport = :$PORT' shows by what)"
    else
        PORT=$(pick_port)
    fi
    [[ $TLS =~ ^[01]$ ]] || die "PAY_TLS must be 0 or 1: '$TLS'"
    if [ "$TLS" = 1 ]; then
        TLS_PORT=$(pick_port)
        [ "$TLS_PORT" != "$PORT" ] || TLS_PORT=$(pick_port)
    fi
}

# Makes DIR (or wipes one of ours after stopping its leftovers).
start_dir() {
    # A DIR we did not create is never wiped.
    if [ -e "$DIR" ] && [ ! -e "$MARKER" ] && [ -n "$(ls -A "$DIR" 2>/dev/null)" ]; then
        die "$DIR exists, is not empty and was not made by $PROG; refusing to use it"
    fi
    if [ -e "$MARKER" ]; then
        say "reusing $DIR: stopping leftovers of an earlier run and wiping it"
        do_stop
        rm -rf -- "$DIR/mysql" "$NGX" "$LOGS" "$RUN" "$CONF" "$DIR/jwt.secret" "$DIR/env"
        rm -rf -- "$DIR/tls" "$DIR/acme"
        rm -rf -- "$DIR/apache" "$DIR/front"
    fi

    STARTING=1
    trap on_exit EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM

    umask 022
    mkdir -p "$DIR/mysql" "$NGX/snippets" "$NGX/tmp" "$LOGS" "$RUN"
    : > "$MARKER"
    printf '%s\n' "$FRONT" > "$DIR/front"
    # nginx workers of a root master run as "nobody" and must reach the socket.
    chmod 755 "$DIR" "$RUN"
    say "stack dir $DIR, port $PORT${TLS_PORT:+, HTTPS port $TLS_PORT}"
}

# DIR/mysql: a fresh datadir from mariadb-install-db (several seconds), or a
# copy of one. The stacks of a build directory (DIR's parent holds
# CMakeCache.txt; PAY_STACK_CACHE names another directory) share one freshly
# installed datadir kept there, made by the first of them, for the same
# mariadbd and administrator; each copies it before its server first starts,
# so nothing of one stack's data reaches another.
init_datadir() {  # [--user=root]
    local cache=${PAY_STACK_CACHE:-} tpl tmp
    if [ -z "$cache" ] && [ -f "$(dirname "$DIR")/CMakeCache.txt" ]; then
        cache=$(dirname "$DIR")
    fi
    install_db() {  # DATADIR [--user=root]
        local d=$1
        shift
        mariadb-install-db --no-defaults "$@" --datadir="$d" \
            --auth-root-authentication-method=socket --auth-root-socket-user="$DBA" --skip-test-db \
            >"$LOGS/mariadb-install.log" 2>&1
    }
    if [ -z "$cache" ]; then
        say "initialising MariaDB datadir"
        install_db "$DIR/mysql" "$@" || die "mariadb-install-db failed"
        return 0
    fi
    tpl=$cache/.mariadb-datadir-$(mariadbd --version | cksum | cut -d' ' -f1)-$DBA
    if [ ! -d "$tpl/mysql" ]; then
        say "initialising the MariaDB datadir template $tpl"
        tmp=$(mktemp -d "$tpl.XXXXXX") || die "mktemp in $cache failed"
        install_db "$tmp/mysql" "$@" || { rm -rf -- "$tmp"; die "mariadb-install-db failed"; }
        # Another stack may have made it meanwhile: then its copy stays.
        mv -T -- "$tmp" "$tpl" 2>/dev/null || rm -rf -- "$tmp"
    fi
    say "MariaDB datadir: a copy of $tpl"
    rm -rf -- "$DIR/mysql"
    cp -a -- "$tpl/mysql" "$DIR/mysql" || die "copying $tpl/mysql failed"
}

# A private MariaDB on a unix socket only, up and answering.
start_mariadb() {
    local rootopt=()
    [ "$(id -u)" -ne 0 ] || rootopt=(--user=root)
    init_datadir "${rootopt[@]}"

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
}

# The database "pay" and its user (a random password in DBPASS).
start_database() {
    DBPASS=$(openssl rand -hex 16)
    mariadb --no-defaults --socket="$MYSQL_SOCK" -u"$DBA" >>"$LOGS/setup.log" 2>&1 <<SQL || die "creating database/user failed"
CREATE DATABASE pay CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE USER 'pay'@'localhost' IDENTIFIED BY '$DBPASS';
GRANT ALL PRIVILEGES ON pay.* TO 'pay'@'localhost';
SQL
}

# pay-api's config file and JWT secret (0600).
start_config() {
    umask 077
    openssl rand -hex 48 | tr -d '\n' > "$DIR/jwt.secret"
    WEBHOOK_SECRET=$(openssl rand -hex 32)
    cat > "$CONF" <<CONF
# Generated by tests/stack.sh — private test stack in $DIR
socket          = $FCGI_SOCK
socket_mode     = 0666
workers         = $WORKERS
db_socket       = $MYSQL_SOCK
db_user         = pay
db_password     = $DBPASS
db_name         = pay
jwt_alg         = HS256
jwt_secret_file = $DIR/jwt.secret
$(stack_base_url_conf "$PORT")
log_file        = $LOGS/pay-api.log
log_level       = $LOG_LEVEL
# The shared e2e stack runs no collection engine: a test moves it
# deterministically with "pay-api attempts run" (PAY_COLLECTORS overrides).
collectors      = $COLLECTORS
sandbox_step_ms = $SANDBOX_STEP
collector_lease_ms = $LEASE
reconcile_ms    = $((SANDBOX_STEP * 4))
webhook_secret  = $WEBHOOK_SECRET
$CONF_EXTRA
CONF
    chmod 600 "$DIR/jwt.secret" "$CONF"
    umask 022
}

# pay-api migrate, then load PAY_DATA when given; then pay-api serve.
start_app() {
    say "pay-api migrate"
    { echo "\$ pay-api migrate"; timeout 300 "$BIN" --config "$CONF" migrate; } >>"$LOGS/setup.log" 2>&1 \
        || die "pay-api migrate failed (see $LOGS/setup.log)"
    if [ -n "$DATA" ]; then
        say "pay-api load $DATA"
        { echo "\$ pay-api load $DATA"; timeout 600 "$BIN" --config "$CONF" load "$DATA"; } >>"$LOGS/setup.log" 2>&1 \
            || die "pay-api load $DATA failed (see $LOGS/setup.log)"
    fi

    rm -f "$FCGI_SOCK"
    start_daemon pay-api "$LOGS/pay-api.out" "$BIN" --config "$CONF" serve
}

# nginx from nginx/test.conf.in (or, with PAY_TLS=1, the production site).
start_nginx() {  # PORT
    local port=$1
    [ -r "$REPO/nginx/test.conf.in" ] || die "missing $REPO/nginx/test.conf.in"
    cp /etc/nginx/fastcgi_params "$NGX/fastcgi_params"
    cp "$REPO/nginx/pay-api-locations.conf" "$NGX/snippets/pay-api-locations.conf"
    sed -e "s|@PORT@|$port|g" -e "s|@SOCK@|$FCGI_SOCK|g" -e "s|@TMP@|$NGX|g" \
        "$REPO/nginx/test.conf.in" > "$NGX/nginx.conf"
    if grep -q '@[A-Z_]*@' "$NGX/nginx.conf"; then
        die "unrendered placeholder in nginx/test.conf.in: $(grep -o '@[A-Z_]*@' "$NGX/nginx.conf" | head -n 1)"
    fi
    stack_tls_nginx "$port"
    local ngx_global='daemon off;'
    if [ "$(id -u)" -eq 0 ] && ! runuser -u nobody -- test -x "$RUN" 2>/dev/null; then
        # e.g. a repo under /root (0700): "nobody" cannot reach the socket.
        say "note: user nobody cannot reach $RUN; nginx workers run as root (test stack only)"
        ngx_global='daemon off; user root;'
    fi
    nginx -p "$NGX" -c "$NGX/nginx.conf" -g "$ngx_global" -t >>"$LOGS/nginx-test.log" 2>&1 \
        || die "nginx -t rejected $NGX/nginx.conf (see $LOGS/nginx-test.log)"
    start_daemon nginx "$LOGS/nginx.out" nginx -p "$NGX" -c "$NGX/nginx.conf" -g "$ngx_global"
}

# Waits until /healthz and /readyz answer 200 through the front (BASE).
start_wait_ready() {
    local path ppid npid
    BASE=http://127.0.0.1:$PORT
    if [ "$TLS" = 1 ]; then BASE=https://127.0.0.1:$TLS_PORT; fi
    ppid=$(recorded_pid pay-api) || die "pay-api serve exited during start-up"
    npid=$(recorded_pid "$FRONT") || die "$FRONT exited during start-up"
    local deadline=$((SECONDS + WAIT_S))
    for path in /healthz /readyz; do
        until curl -fsS -o /dev/null --max-time 2 "$BASE$path" 2>/dev/null; do
            is_running "$ppid" || die "pay-api serve exited during start-up"
            is_running "$npid" || die "$FRONT exited during start-up"
            if [ $SECONDS -ge $deadline ]; then
                curl -sS -i --max-time 2 "$BASE$path" >&2 || true
                die "GET $path did not answer 200 within ${WAIT_S} s"
            fi
            sleep 0.2
        done
    done
    say "GET /healthz and /readyz answer 200"
}

# DIR/env: what the tests need to reach the stack (0600).
start_env() {
    umask 077
    cat > "$DIR/env.tmp" <<ENV
PAY_BASE_URL='$BASE'
PAY_CONFIG='$CONF'
PAY_BIN='$BIN'
PAY_DB_SOCKET='$MYSQL_SOCK'
PAY_DB_USER='pay'
PAY_DB_PASSWORD='$DBPASS'
PAY_DB_NAME='pay'
PAY_STACK_DIR='$DIR'
PAY_WEBHOOK_SECRET='$WEBHOOK_SECRET'
PAY_FRONT='$FRONT'
PAY_FRONT_ACCESS_LOG='$(front_access_log)'
MYSQL_CMD='mariadb --no-defaults --socket=$MYSQL_SOCK -u$DBA pay'
$(stack_tls_env "$PORT")
ENV
    mv -f "$DIR/env.tmp" "$DIR/env"
    umask 022
}

do_start() {  # [PORT]
    start_inputs "${1:-}"
    start_dir
    start_mariadb
    start_database
    start_config
    start_app
    if [ "$FRONT" = apache ]; then start_apache "$PORT"; else start_nginx "$PORT"; fi
    start_wait_ready
    start_env
    STARTING=0
    say "ready: $BASE  (env: $DIR/env, logs: $LOGS, $FRONT logs: $(dirname "$(front_access_log)")/*.log)"
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
