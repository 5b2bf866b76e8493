#!/usr/bin/env bash
# ops.nginx_conf: check the production nginx site (nginx/pay-api.conf plus the
# shared nginx/pay-api-locations.conf) with the real nginx binary.
#
#   tests/ops/verify_nginx.sh [NGINX_SRC_DIR]      (default: <repo>/nginx)
#
# 1. Renders the production site into a private prefix (tests/ops/site_lib.sh:
#    loopback ports for 80 and 443, a throw-away certificate in place of
#    certbot's, pid/logs/temp paths inside) and runs "nginx -t", which must
#    neither fail nor warn.
# 2. Checks that nginx/test.conf.in uses the same snippet and the same maps, and
#    renders and "nginx -t"s it too.
# 3. Starts the production config (no app behind the socket) and checks nginx's
#    own JSON answers over HTTPS: 404 for unknown paths, 503 when the upstream
#    is down, 413 for a body over 64 KiB, each with Strict-Transport-Security.
#    (The TLS profile and the port 80 rules: tests/ops/verify_tls.sh.)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=${1:-$here/../../nginx}
src=$(cd "$src" && pwd)

fail() { echo "verify_nginx: FAIL: $*" >&2; exit 1; }
command -v nginx >/dev/null || fail "nginx is not installed"
command -v curl  >/dev/null || fail "curl is not installed"
[ -r /etc/nginx/fastcgi_params ] || fail "/etc/nginx/fastcgi_params missing (package nginx-common)"
for f in pay-api.conf pay-api-locations.conf test.conf.in; do
    [ -r "$src/$f" ] || fail "missing $src/$f"
done

tmp=$(mktemp -d /tmp/verify-nginx.XXXXXX)
ngx_pid=
cleanup() {
    if [ -n "$ngx_pid" ] && kill -0 "$ngx_pid" 2>/dev/null; then
        kill -QUIT "$ngx_pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$ngx_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$ngx_pid" 2>/dev/null || true
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

# ---- 1. production site, nginx -t ------------------------------------------
grep -Eq '^[[:space:]]*listen[[:space:]]+80[[:space:]]+default_server;' "$src/pay-api.conf" \
    || fail "pay-api.conf must contain 'listen 80 default_server;'"
grep -Eq '^[[:space:]]*listen[[:space:]]+443[[:space:]]+ssl[[:space:]]+default_server;' "$src/pay-api.conf" \
    || fail "pay-api.conf must contain 'listen 443 ssl default_server;'"
grep -Eq '^[[:space:]]*server[[:space:]]+unix:/run/pay-api/fcgi\.sock;' "$src/pay-api.conf" \
    || fail "pay-api.conf upstream must be unix:/run/pay-api/fcgi.sock"
if grep -Ehv '^[[:space:]]*#' "$src/pay-api.conf" "$src/pay-api-locations.conf" "$src/test.conf.in" |
        grep -Eq '(^|[[:space:];])(keepalive|fastcgi_keep_conn)[[:space:]]'; then
    fail "keepalive / fastcgi_keep_conn must not be used with libfcgi (DEPS §1)"
fi
# Only the HTTPS server serves the app; port 80 never proxies to it.
[ "$(grep -c 'include snippets/pay-api-locations.conf;' "$src/pay-api.conf")" = 1 ] \
    || fail "pay-api.conf must include the locations snippet exactly once (the HTTPS server)"

# shellcheck source=tests/ops/site_lib.sh
. "$here/site_lib.sh"
port=$(free_port) || fail "no free port"
tport=$(free_port) || fail "no free port"
[ "$port" != "$tport" ] || tport=$(free_port) || fail "no free port"
P=$tmp/prod
# The OCSP URL names a closed loopback port: nginx -t checks that stapling can
# be set up (issuer found, responder named) without contacting it.
site_make_certs "$tmp/certs" "http://127.0.0.1:9/" || fail "cannot make the test certificates"
mkdir -p "$tmp/acme"
site_render "$src" "$P" "$port" "$tport" "$tmp/fcgi.sock" "$tmp/certs" "$tmp/acme" \
    || fail "cannot render nginx/pay-api.conf"
out=$(nginx -p "$P" -c "$P/nginx.conf" -t 2>&1) || { echo "$out" >&2; fail "nginx -t rejected nginx/pay-api.conf"; }
if grep -q '\[warn\]' <<<"$out"; then echo "$out" >&2; fail "nginx -t warned about nginx/pay-api.conf"; fi
echo "verify_nginx: production site passes nginx -t"

# ---- 2. test.conf.in in sync, renders, nginx -t ------------------------------
grep -q 'include snippets/pay-api-locations.conf;' "$src/pay-api.conf" || fail "pay-api.conf does not include the shared snippet"
grep -q 'include snippets/pay-api-locations.conf;' "$src/test.conf.in" || fail "test.conf.in does not include the shared snippet"
# shellcheck disable=SC2016  # $http_x_request_id is nginx's, not the shell's
map_of() { sed -n '/^[[:space:]]*map \$http_x_request_id/,/}/p' "$1" | sed -E 's/^[[:space:]]+//'; }
[ -n "$(map_of "$src/pay-api.conf")" ] || fail "pay-api.conf has no X-Request-Id map"
diff <(map_of "$src/pay-api.conf") <(map_of "$src/test.conf.in") >&2 \
    || fail "the X-Request-Id map differs between pay-api.conf and test.conf.in"
# shellcheck disable=SC2016
hsts_map_of() { sed -n '/^[[:space:]]*map \$https \$pay_hsts/,/}/p' "$1" | sed -E 's/^[[:space:]]+//'; }
[ -n "$(hsts_map_of "$src/pay-api.conf")" ] || fail "pay-api.conf has no \$pay_hsts map"
diff <(hsts_map_of "$src/pay-api.conf") <(hsts_map_of "$src/test.conf.in") >&2 \
    || fail "the \$pay_hsts map differs between pay-api.conf and test.conf.in"
# HSTS at server level, and repeated in every location of the snippet that
# sets headers of its own (which drops the inherited ones).
n_own=$(grep -c 'add_header X-Content-Type-Options' "$src/pay-api-locations.conf")
# shellcheck disable=SC2016  # $pay_hsts is nginx's
n_hsts=$(grep -c 'add_header Strict-Transport-Security \$pay_hsts always;' "$src/pay-api-locations.conf")
[ "$n_hsts" = $((n_own + 1)) ] \
    || fail "pay-api-locations.conf: $n_hsts Strict-Transport-Security lines for $n_own locations with own headers (+1 at server level)"
T=$tmp/test
mkdir -p "$T/snippets" "$T/tmp"
cp /etc/nginx/fastcgi_params "$T/"
cp "$src/pay-api-locations.conf" "$T/snippets/"
pport=$(free_port) || fail "no free port"
sed -e "s|@PORT@|$pport|g" -e "s|@SOCK@|$T/fcgi.sock|g" -e "s|@TMP@|$T|g" "$src/test.conf.in" > "$T/nginx.conf"
if grep -q '@[A-Z]*@' "$T/nginx.conf"; then fail "unknown placeholder left in test.conf.in: $(grep -o '@[A-Z]*@' "$T/nginx.conf" | head -1)"; fi
out=$(nginx -p "$T" -c "$T/nginx.conf" -t 2>&1) || { echo "$out" >&2; fail "nginx -t rejected the rendered test.conf.in"; }
echo "verify_nginx: rendered test.conf.in passes nginx -t"

# ---- 3. nginx's own answers (no app behind the socket) -----------------------
nginx -p "$P" -c "$P/nginx.conf" -g 'daemon off;' </dev/null >"$P/stdout.log" 2>&1 &
ngx_pid=$!
base=https://127.0.0.1:$tport
for _ in $(seq 50); do
    curl -s -o /dev/null --max-time 1 --cacert "$tmp/certs/ca.pem" "$base/" && break
    kill -0 "$ngx_pid" 2>/dev/null || { cat "$P/stdout.log" "$P/error.log" >&2 || true; fail "nginx did not start"; }
    sleep 0.1
done

# check NAME EXPECTED_STATUS EXPECTED_CODE curl-args...
check() {
    local name=$1 want=$2 code=$3; shift 3
    local hdr=$tmp/h body=$tmp/b got
    got=$(curl -sS --cacert "$tmp/certs/ca.pem" -D "$hdr" -o "$body" -w '%{http_code}' --max-time 5 "$@") || fail "$name: curl failed"
    [ "$got" = "$want" ] || { cat "$body" >&2; fail "$name: status $got, want $want"; }
    grep -qi '^content-type: application/json' "$hdr" || fail "$name: not application/json"
    grep -qi '^x-content-type-options: nosniff' "$hdr" || fail "$name: no X-Content-Type-Options"
    grep -qi '^x-request-id: ' "$hdr" || fail "$name: no X-Request-Id"
    grep -qix 'strict-transport-security: max-age=63072000'$'\r' "$hdr" \
        || fail "$name: no Strict-Transport-Security: max-age=63072000"
    if grep -qi '^server: nginx/' "$hdr"; then fail "$name: server_tokens leaks the version"; fi
    grep -q "\"code\":\"$code\"" "$body" || { cat "$body" >&2; fail "$name: body lacks code $code"; }
    grep -q "\"status\":$want" "$body" || fail "$name: body lacks status $want"
    if command -v python3 >/dev/null; then
        python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$body" || fail "$name: body is not valid JSON"
    fi
    echo "verify_nginx: ok: $name -> $got $code"
}
check "unknown path"          404 NOT_FOUND      "$base/nope"
check "root"                  404 NOT_FOUND      "$base/"
check "/v1 without slash"     404 NOT_FOUND      "$base/v1"
check "/pay without slash"    404 NOT_FOUND      "$base/pay"
check "upstream down (/v1/)"  503 UNAVAILABLE    "$base/v1/customer-payments"
check "upstream down healthz" 503 UNAVAILABLE    "$base/healthz"
check "metrics from loopback" 503 UNAVAILABLE    "$base/metrics"
head -c 70000 /dev/zero | tr '\0' 'a' > "$tmp/big"
check "body over 64 KiB"      413 BODY_TOO_LARGE "$base/v1/customer-payments" -H 'Content-Type: application/json' --data-binary @"$tmp/big"
check "metrics from elsewhere" 403 FORBIDDEN      "$base/metrics" --interface 127.0.0.2
check "header over 8 KiB"     400 BAD_REQUEST    "$base/v1/x" -H "X-Big: $(head -c 9000 /dev/zero | tr '\0' 'a')"
rid=$(curl -sS --cacert "$tmp/certs/ca.pem" -D - -o /dev/null -H 'X-Request-Id: abc-123.X_y' "$base/nope" | tr -d '\r' | sed -n 's/^[Xx]-[Rr]equest-[Ii]d: //p')
[ "$rid" = "abc-123.X_y" ] || fail "a sane X-Request-Id is not echoed (got '$rid')"
rid=$(curl -sS --cacert "$tmp/certs/ca.pem" -D - -o /dev/null -H 'X-Request-Id: bad id"<>' "$base/nope" | tr -d '\r' | sed -n 's/^[Xx]-[Rr]equest-[Ii]d: //p')
[[ "$rid" =~ ^[0-9a-f]{32}$ ]] || fail "an unsafe X-Request-Id is not replaced (got '$rid')"
echo "verify_nginx: ok: X-Request-Id echo/replace"
echo "verify_nginx: PASS"
