#!/usr/bin/env bash
# Spawned mode: a web server (or spawn-fcgi) starts pay-api itself with the
# listening FastCGI socket on fd 0, and each process serves it alone: no
# master, no own socket, no systemd (ctest apache.spawn_fcgi / apache.mod_fcgid).
#
#   tests/ops/spawned.sh spawn-fcgi|mod_fcgid STACK_ENV
#
# Uses the MariaDB and JWT secret of a running stack (STACK_ENV: its env file),
# with a copy of its config that the unprivileged user can read (test only) and
# its own log file.
#   spawn-fcgi  Debian's spawn-fcgi forks two pay-api processes on one socket,
#               as nobody; cgi-fcgi asks /readyz, an authenticated list and a
#               POST; both processes are pay-api without children; SIGTERM
#               stops each of them within 2 s, idle in accept().
#   mod_fcgid   a private Apache (free loopback port) whose mod_fcgid starts
#               pay-api on demand (FcgidWrapper ... virtual); the same requests
#               over HTTP; stopping Apache stops them.
set -euo pipefail

mode=${1:?usage: spawned.sh spawn-fcgi|mod_fcgid STACK_ENV}
envf=${2:?usage: spawned.sh spawn-fcgi|mod_fcgid STACK_ENV}
fail() { echo "spawned($mode): FAIL: $*" >&2; exit 1; }
say()  { echo "spawned($mode): $*"; }
[ -r "$envf" ] || fail "no stack env file $envf (is the stack running?)"
PAY_STACK_DIR='' PAY_CONFIG='' PAY_BIN=''
# shellcheck disable=SC1090
. "$envf"
work=$PAY_STACK_DIR/spawned-$mode
rm -rf "$work"
mkdir -p "$work"
chmod 755 "$work"
user=nobody group=nogroup
[ "$(id -u)" -eq 0 ] || { user=$(id -un); group=$(id -gn); }

# A config the unprivileged processes can read, logging into $work.
secret=$(sed -n 's/^jwt_secret_file *= *//p' "$PAY_CONFIG")
install -m 644 "$secret" "$work/jwt.secret"
sed -e "s|^jwt_secret_file *=.*|jwt_secret_file = $work/jwt.secret|" \
    -e "s|^log_file *=.*|log_file = $work/pay-api.log|" \
    -e "s|^socket *=.*|socket = $work/unused.sock|" "$PAY_CONFIG" > "$work/pay-api.conf"
chmod 644 "$work/pay-api.conf"
: > "$work/pay-api.log"
chown "$user:$group" "$work/pay-api.log"
tok=$("$PAY_BIN" --config "$work/pay-api.conf" token --sub spawned --scope "payments:read payments:write" \
      --contract-owners 1,2 --ttl 300)
body='{"customerId":1,"amountInMajorCurrency":0.01,"description":"spawned mode"}'

pids=() apache_pid=
cleanup() {
    set +e
    local p
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
    if [ -n "$apache_pid" ] && kill -0 "$apache_pid" 2>/dev/null; then
        kill -TERM "$apache_pid"; sleep 2; kill -KILL -- "-$apache_pid" 2>/dev/null
    fi
}
trap cleanup EXIT

# From /proc (no ps needed): parent, name and children of a process.
ppid_of() { local s f; read -r s < "/proc/$1/stat" || return 1; s=${s##*) }; read -r -a f <<< "$s"; echo "${f[1]}"; }
comm_of() { cat "/proc/$1/comm" 2>/dev/null; }
kids() { local p; for p in /proc/[0-9]*; do p=${p#/proc/}; [ "$(ppid_of "$p" 2>/dev/null)" = "$1" ] && echo "$p"; done; return 0; }

check_answers() {  # status of /readyz, authenticated GET, POST: from a function "ask"
    local out
    out=$(ask GET /readyz '') ; grep -q '^200$' <<<"$(status_of "$out")" || { echo "$out" >&2; fail "/readyz is not 200"; }
    out=$(ask GET /v1/customer-payments 'customer_id=1&page=1&pageSize=3' "Bearer $tok")
    [ "$(status_of "$out")" = 200 ] || { echo "$out" >&2; fail "authenticated GET is not 200"; }
    grep -q '"customerId":1' <<<"$out" || { echo "$out" >&2; fail "authenticated GET lists no payment of customer 1"; }
    out=$(ask GET /v1/customer-payments 'customer_id=1&page=1&pageSize=3' '')
    [ "$(status_of "$out")" = 401 ] || { echo "$out" >&2; fail "unauthenticated GET is not 401"; }
    out=$(ask POST /v1/customer-balance-adjustments '' "Bearer $tok" "$body")
    [ "$(status_of "$out")" = 200 ] || { echo "$out" >&2; fail "POST is not 200"; }
    say "/readyz 200, authenticated GET 200, without a token 401, POST 200"
}

if [ "$mode" = spawn-fcgi ]; then
    command -v spawn-fcgi >/dev/null || fail "spawn-fcgi not installed"
    command -v cgi-fcgi >/dev/null || fail "cgi-fcgi not installed (libfcgi-bin)"
    sock=$work/fcgi.sock
    spawn-fcgi -s "$sock" -M 0666 -F 2 -P "$work/spawn.pid" -u "$user" -g "$group" -- \
        "$PAY_BIN" --config "$work/pay-api.conf" serve >"$work/spawn-fcgi.out" 2>&1 \
        || { cat "$work/spawn-fcgi.out" >&2; fail "spawn-fcgi failed"; }
    mapfile -t pids < <(grep -o '[0-9]\+' "$work/spawn.pid")
    [ ${#pids[@]} -eq 2 ] || fail "spawn-fcgi -F 2 recorded ${#pids[@]} processes"
    status_of() { sed -n 's/^Status: \([0-9]*\).*/\1/p' <<<"$1" | head -n 1; }
    ask() {  # METHOD PATH QUERY AUTH [BODY]
        if [ -n "${5:-}" ]; then
            printf '%s' "$5" | env -i REQUEST_METHOD="$1" DOCUMENT_URI="$2" QUERY_STRING="$3" \
                CONTENT_TYPE=application/json CONTENT_LENGTH=${#5} REMOTE_ADDR=127.0.0.1 \
                SERVER_PROTOCOL=HTTP/1.1 ${4:+HTTP_AUTHORIZATION="$4"} timeout 10 cgi-fcgi -bind -connect "$sock"
        else
            env -i REQUEST_METHOD="$1" DOCUMENT_URI="$2" QUERY_STRING="$3" REMOTE_ADDR=127.0.0.1 \
                SERVER_PROTOCOL=HTTP/1.1 ${4:+HTTP_AUTHORIZATION="$4"} timeout 10 cgi-fcgi -bind -connect "$sock" </dev/null
        fi
    }
    for _ in $(seq 50); do [ "$(grep -c 'spawned mode' "$work/pay-api.log")" -ge 2 ] && break; sleep 0.1; done
    check_answers
    for p in "${pids[@]}"; do
        [ "$(comm_of "$p")" = pay-api ] || fail "process $p is '$(comm_of "$p")', not pay-api"
        [ -z "$(kids "$p")" ] || fail "pay-api $p has children $(kids "$p"): a master, not spawned mode"
        [ "$(stat -c %U "/proc/$p")" = "$user" ] || fail "pay-api $p runs as $(stat -c %U "/proc/$p")"
    done
    [ "$(grep -c 'spawned mode: serving the socket on fd 0' "$work/pay-api.log")" -eq 2 ] \
        || { cat "$work/pay-api.log" >&2; fail "the log does not show two processes in spawned mode"; }
    [ ! -e "$work/unused.sock" ] || fail "pay-api created its own socket in spawned mode"
    say "two pay-api processes (${pids[*]}), no children, as $user, in spawned mode"
    t0=$SECONDS
    for p in "${pids[@]}"; do kill -TERM "$p"; done
    for _ in $(seq 40); do
        alive=0; for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ $alive = 0 ] && break; sleep 0.05
    done
    [ "$alive" = 0 ] || fail "SIGTERM did not stop the idle processes within 2 s"
    pids=()
    say "SIGTERM stopped both idle processes ($((SECONDS - t0)) s)"
else
    command -v apache2 >/dev/null || fail "apache2 not installed"
    [ -r /usr/lib/apache2/modules/mod_fcgid.so ] || fail "mod_fcgid not installed (libapache2-mod-fcgid)"
    port=
    for _ in $(seq 200); do
        p=$((30000 + RANDOM % 10000))
        if [ -z "$(ss -Hltn "sport = :$p" 2>/dev/null)" ]; then port=$p; break; fi
    done
    [ -n "$port" ] || fail "no free port"
    mkdir -p "$work/run" "$work/fcgid"
    chown "$user:$group" "$work/fcgid"
    users=
    [ "$(id -u)" -ne 0 ] || users="User $user
Group $group"
    cat > "$work/apache2.conf" <<CONF
# mod_fcgid starts pay-api itself (spawned mode); see README, "Deploying on Apache".
ServerRoot        "$work"
ServerName        127.0.0.1
Listen            127.0.0.1:$port
PidFile           $work/apache2.pid
DefaultRuntimeDir $work/run
ErrorLog          $work/error.log
LogLevel          warn
ServerTokens      Prod
$users
LoadModule mpm_event_module  /usr/lib/apache2/modules/mod_mpm_event.so
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
LoadModule setenvif_module   /usr/lib/apache2/modules/mod_setenvif.so
LoadModule fcgid_module      /usr/lib/apache2/modules/mod_fcgid.so
FcgidIPCDir               $work/fcgid
FcgidProcessTableFile     $work/fcgid/shm
FcgidMaxProcessesPerClass 2
FcgidMaxRequestLen        65536
FcgidIOTimeout            15
FcgidPassHeader           Authorization
FcgidInitialEnv           PAY_CONFIG $work/pay-api.conf
<Location "/">
    SetHandler   fcgid-script
    FcgidWrapper "$PAY_BIN serve" virtual
    # the app routes on DOCUMENT_URI (nginx's decoded path): r->uri here
    SetEnvIfExpr "%{REQUEST_URI} =~ /^(.*)\$/" DOCUMENT_URI=\$1
    Options +ExecCGI
    Require all granted
</Location>
CONF
    apache2 -d "$work" -f "$work/apache2.conf" -t >"$work/apache-t.log" 2>&1 \
        || { cat "$work/apache-t.log" >&2; fail "apache2 -t rejected the mod_fcgid config"; }
    setsid apache2 -d "$work" -f "$work/apache2.conf" -DFOREGROUND </dev/null >"$work/apache.out" 2>&1 &
    apache_pid=$!
    base=http://127.0.0.1:$port
    for _ in $(seq 100); do curl -s -o /dev/null "$base/" && break; sleep 0.1; done
    status_of() { sed -n '1s/^HTTP\/[0-9.]* \([0-9]*\).*/\1/p' <<<"$1"; }
    ask() {  # METHOD PATH QUERY AUTH [BODY]
        local a=() q=${3:+?$3}
        [ -n "${4:-}" ] && a+=(-H "Authorization: $4")
        [ -n "${5:-}" ] && a+=(-H 'Content-Type: application/json' --data-binary "$5")
        curl -sS -i --max-time 20 -X "$1" "${a[@]}" "$base$2$q" | tr -d '\r'
    }
    check_answers
    mapfile -t pids < <(for p in /proc/[0-9]*; do p=${p#/proc/}
        [ "$(comm_of "$p")" = pay-api ] && [ "$(stat -c %U "/proc/$p" 2>/dev/null)" = "$user" ] &&
        grep -qz "^$PAY_BIN$" "/proc/$p/cmdline" 2>/dev/null && tr '\0' ' ' < "/proc/$p/cmdline" | grep -q " serve" &&
        [ "$(tr '\0' '\n' < "/proc/$p/environ" 2>/dev/null | grep -c "^PAY_CONFIG=$work/pay-api.conf$")" = 1 ] && echo "$p"
    done)
    [ ${#pids[@]} -ge 1 ] || fail "no pay-api process started by mod_fcgid"
    for p in "${pids[@]}"; do
        [ -z "$(kids "$p")" ] || fail "pay-api $p has children: a master, not spawned mode"
    done
    grep -q 'spawned mode: serving the socket on fd 0' "$work/pay-api.log" \
        || { cat "$work/pay-api.log" "$work/error.log" >&2; fail "the log does not show spawned mode"; }
    say "mod_fcgid started ${#pids[@]} pay-api process(es) (${pids[*]}), no children, in spawned mode"
    kill -TERM "$apache_pid"
    for _ in $(seq 100); do
        alive=0; for p in "${pids[@]}" "$apache_pid"; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ $alive = 0 ] && break; sleep 0.1
    done
    [ "$alive" = 0 ] || fail "stopping Apache left pay-api or Apache running"
    pids=() apache_pid=
    say "stopping Apache stopped its pay-api processes"
fi
say "PASS"
