#!/usr/bin/env bash
# ops.apache_conf: check the production Apache site (apache/pay-api.conf plus
# the shared apache/pay-api-locations.conf) with Debian's apache2.
#
#   tests/ops/verify_apache.sh [APACHE_SRC_DIR]      (default: <repo>/apache)
#
# The site is wrapped in a minimal private server (ServerRoot, pid, logs and
# mutexes in a temp dir, the modules of the README's a2enmod line) and only
# these things change: ports 80/443 become free loopback ports, the
# certificate is a fresh self-signed one, the ACME webroot and the socket are
# in the temp dir (no app behind it). Then:
#   1. apache2 -t accepts it;
#   2. port 80: an ACME challenge file is served, everything else is a 301 to
#      https://<ServerName>/...;
#   3. port 443: TLS 1.2 and 1.3 work, TLS 1.1 does not; HSTS; "Server: Apache"
#      without a version; Apache's own JSON errors (503 with the app down,
#      403 for /metrics from another address) with X-Request-Id and nosniff.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=${1:-$here/../../apache}
src=$(cd "$src" && pwd)
fail() { echo "verify_apache: FAIL: $*" >&2; exit 1; }
ok()   { echo "verify_apache: ok: $*"; }
command -v apache2 >/dev/null || fail "apache2 is not installed"
for f in pay-api.conf pay-api-locations.conf test.conf.in; do [ -r "$src/$f" ] || fail "missing $src/$f"; done
grep -q '^Include /etc/apache2/pay-api/pay-api-locations.conf$' <(sed 's/^[[:space:]]*//' "$src/pay-api.conf") \
    || fail "pay-api.conf does not include /etc/apache2/pay-api/pay-api-locations.conf"
grep -q '^Include @TMP@/locations.conf$' "$src/test.conf.in" || fail "test.conf.in does not include the shared locations"
grep -q '^Define PAY_SOCK /run/pay-api/fcgi.sock$' "$src/pay-api.conf" || fail "pay-api.conf: PAY_SOCK must be /run/pay-api/fcgi.sock"
if grep -Ehv '^[[:space:]]*#' "$src/pay-api-locations.conf" | grep -Eiq 'enablereuse=on|disablereuse=off'; then
    fail "FastCGI connection reuse must stay off with libfcgi (DEPS §1)"
fi

tmp=$(mktemp -d /tmp/verify-apache.XXXXXX)
chmod 755 "$tmp"
apid=
cleanup() {
    if [ -n "$apid" ] && kill -0 "$apid" 2>/dev/null; then
        kill -TERM "$apid"; for _ in $(seq 50); do kill -0 "$apid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL -- "-$apid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
free_port() {
    local p
    for _ in $(seq 200); do
        p=$((20000 + RANDOM % 10000))
        if [ -z "$(ss -Hltn "sport = :$p" 2>/dev/null)" ]; then echo "$p"; return 0; fi
    done
    return 1
}
p80=$(free_port) || fail "no free port"
p443=$(free_port) || fail "no free port"
[ "$p80" != "$p443" ] || p443=$((p80 + 1))
name=$(sed -n 's/^[[:space:]]*ServerName[[:space:]]\+//p' "$src/pay-api.conf" | head -n 1)
[ -n "$name" ] || fail "pay-api.conf has no ServerName"

mkdir -p "$tmp/run" "$tmp/log" "$tmp/webroot/.well-known/acme-challenge"
echo "acme-token-123" > "$tmp/webroot/.well-known/acme-challenge/tok123"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=$name" \
    -keyout "$tmp/key.pem" -out "$tmp/cert.pem" >/dev/null 2>&1 || fail "openssl could not make a certificate"
cp "$src/pay-api-locations.conf" "$tmp/pay-api-locations.conf"
sed -e "s|\*:80>|*:$p80>|" -e "s|\*:443>|*:$p443>|" \
    -e "s|/etc/letsencrypt/live/[^/]*/fullchain.pem|$tmp/cert.pem|" \
    -e "s|/etc/letsencrypt/live/[^/]*/privkey.pem|$tmp/key.pem|" \
    -e "s|/var/lib/letsencrypt/webroot|$tmp/webroot|g" \
    -e "s|^Define PAY_SOCK .*|Define PAY_SOCK $tmp/fcgi.sock|" \
    -e "s|/etc/apache2/pay-api/pay-api-locations.conf|$tmp/pay-api-locations.conf|" \
    "$src/pay-api.conf" > "$tmp/site.conf"
users=
[ "$(id -u)" -ne 0 ] || users=$'User nobody\nGroup nogroup'
M=/usr/lib/apache2/modules
{
    echo "ServerRoot \"$tmp\""
    echo "PidFile $tmp/apache2.pid"
    echo "DefaultRuntimeDir $tmp/run"
    echo "ErrorLog $tmp/error.log"
    echo "Listen 127.0.0.1:$p80"
    echo "Listen 127.0.0.1:$p443 https"
    echo "$users"
    for m in mpm_event authz_core authz_host headers proxy proxy_fcgi setenvif unique_id reqtimeout \
             ssl socache_shmcb alias; do
        echo "LoadModule ${m}_module $M/mod_$m.so"
    done
    echo "Include $tmp/site.conf"
} > "$tmp/apache2.conf"
export APACHE_RUN_DIR=$tmp/run APACHE_LOG_DIR=$tmp/log
out=$(apache2 -d "$tmp" -f "$tmp/apache2.conf" -t 2>&1) || { echo "$out" >&2; fail "apache2 -t rejected apache/pay-api.conf"; }
ok "apache2 -t: $(tail -n 1 <<<"$out")"

setsid apache2 -d "$tmp" -f "$tmp/apache2.conf" -DFOREGROUND </dev/null >"$tmp/stdout.log" 2>&1 &
apid=$!
for _ in $(seq 100); do
    curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$p80/" && break
    kill -0 "$apid" 2>/dev/null || { cat "$tmp/stdout.log" "$tmp/error.log" >&2 || true; fail "apache2 did not start"; }
    sleep 0.1
done
R=(--resolve "$name:$p80:127.0.0.1" --resolve "$name:$p443:127.0.0.1")
H=$tmp/h B=$tmp/b

# ---- port 80 -------------------------------------------------------------------
st=$(curl -sS "${R[@]}" -D "$H" -o "$B" -w '%{http_code}' "http://$name:$p80/.well-known/acme-challenge/tok123")
{ [ "$st" = 200 ] && grep -q acme-token-123 "$B"; } || fail "ACME challenge: status $st"
ok "port 80 serves the ACME challenge directory"
st=$(curl -sS "${R[@]}" -D "$H" -o "$B" -w '%{http_code}' "http://$name:$p80/v1/refunds?x=1")
loc=$(tr -d '\r' < "$H" | sed -n 's/^[Ll]ocation: //p')
{ [ "$st" = 301 ] && [ "$loc" = "https://$name/v1/refunds?x=1" ]; } || fail "port 80: $st to '$loc', want 301 to https://$name/v1/refunds?x=1"
ok "port 80 redirects everything else to https (301)"

# ---- port 443 ------------------------------------------------------------------
check() {  # NAME STATUS CODE curl-args...
    local what=$1 want=$2 code=$3; shift 3
    local got
    got=$(curl -sS -k "${R[@]}" -D "$H" -o "$B" -w '%{http_code}' --max-time 10 "$@") || fail "$what: curl failed"
    [ "$got" = "$want" ] || { cat "$B" >&2; fail "$what: status $got, want $want"; }
    grep -qi '^content-type: application/json' "$H" || fail "$what: not application/json"
    grep -qi '^x-content-type-options: nosniff' "$H" || fail "$what: no nosniff"
    grep -Eqi '^x-request-id: [0-9a-f]{32}' "$H" || fail "$what: no X-Request-Id"
    grep -qi '^strict-transport-security: max-age=63072000' "$H" || fail "$what: no HSTS"
    tr -d '\r' < "$H" | grep -Eqi '^server: apache$' || { grep -i '^server:' "$H" >&2; fail "$what: Server header names more than the product"; }
    grep -q "\"code\":\"$code\"" "$B" || { cat "$B" >&2; fail "$what: body lacks code $code"; }
    python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$B" || fail "$what: body is not JSON"
    ok "$what -> $got $code"
}
check "https, app down"        503 UNAVAILABLE     "https://$name:$p443/healthz"
# (A body over 64 KiB: mod_proxy_fcgi connects to the app before it reads the
# body, so with no app this is a 503; the e2e pass through Apache checks the 413.)
check "https, /metrics from 127.0.0.2" 403 FORBIDDEN "https://$name:$p443/metrics" --interface 127.0.0.2
for v in 1.2 1.3; do
    curl -sS -k "${R[@]}" -o /dev/null --tlsv$v --tls-max $v "https://$name:$p443/healthz" || fail "TLS $v refused"
done
ok "TLS 1.2 and 1.3 accepted"
if openssl s_client -connect "127.0.0.1:$p443" -servername "$name" -tls1_1 </dev/null >/dev/null 2>&1; then
    fail "TLS 1.1 accepted"
fi
ok "TLS 1.1 refused"
echo "verify_apache: PASS"
