#!/usr/bin/env bash
# ops.tls_profile: the TLS profile and the port-80 rules of the production nginx
# site, as shipped (nginx/pay-api.conf rendered by tests/ops/site_lib.sh with
# loopback ports and a throw-away test PKI), probed with openssl s_client and
# curl. No app runs behind the socket: every check is about nginx.
#
#   tests/ops/verify_tls.sh [NGINX_SRC_DIR]        (default: <repo>/nginx)
#
# What must hold (Mozilla "intermediate", guidelines 5.7):
#   - TLS 1.2 and 1.3 are accepted; SSL 3, TLS 1.0 and TLS 1.1 are refused. nginx
#     and the client run with an empty OpenSSL config, so the refusal comes from
#     the site's ssl_protocols and not from the host's openssl.cnf; a control
#     "openssl s_server -tls1_1" proves the client really offers TLS 1.1 / 1.0.
#   - TLS 1.2: of every cipher suite this OpenSSL knows, exactly the RSA ones of
#     Mozilla's list are accepted (the certificate is RSA: the ECDSA suites of
#     the list need an ECDSA certificate); DHE uses the 2048-bit ffdhe2048 group.
#     TLS 1.3: the three standard suites.
#   - No session tickets in TLS 1.2; resumption works through the session cache.
#   - OCSP stapling: with a responder named in the certificate (a small one on
#     loopback serving a response made by "openssl ocsp"), nginx staples a
#     "good" response.
#   - HTTPS answers carry Strict-Transport-Security: max-age=63072000; port 80
#     answers do not.
#   - Port 80: GET and HEAD get a 301 to https://<host><same URI>; POST, PUT,
#     PATCH, DELETE get a JSON 403 and no Location; /.well-known/acme-challenge/
#     is served from the webroot directory (and 404 JSON for a missing file).
#   - Plain HTTP sent to the HTTPS port gets a JSON 400 naming HTTPS.
# shellcheck disable=SC2015  # "A && B || fail" is meant: fail when either does
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=${1:-$here/../../nginx}
src=$(cd "$src" && pwd)

fail() { echo "verify_tls: FAIL: $*" >&2; exit 1; }
ok()   { echo "verify_tls: ok: $*"; }
for c in nginx curl openssl python3 ss; do command -v "$c" >/dev/null || fail "$c is not installed"; done

tmp=$(mktemp -d /tmp/verify-tls.XXXXXX)
ngx_pid='' ocsp_pid='' ctl_pid=''
stop_pid() {  # PID
    [ -n "$1" ] && kill -0 "$1" 2>/dev/null || return 0
    kill -TERM "$1" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
    kill -KILL "$1" 2>/dev/null || true
}
cleanup() {
    if [ -n "$ngx_pid" ] && kill -0 "$ngx_pid" 2>/dev/null; then
        kill -QUIT "$ngx_pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$ngx_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$ngx_pid" 2>/dev/null || true
    fi
    stop_pid "$ocsp_pid"
    stop_pid "$ctl_pid"
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
wait_port() {  # PORT PID WHAT
    for _ in $(seq 100); do
        [ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ] && return 0
        kill -0 "$2" 2>/dev/null || fail "$3 exited at start"
        sleep 0.1
    done
    fail "$3 does not listen on $1"
}

# An empty OpenSSL config for nginx and the clients: no system-wide
# MinProtocol/CipherString can do the site's work.
: > "$tmp/empty.cnf"
export OPENSSL_CONF=$tmp/empty.cnf

http=$(free_port) && https=$(free_port) && ocsp=$(free_port) && ctl=$(free_port) || fail "no free port"
[ "$(printf '%s\n' "$http" "$https" "$ocsp" "$ctl" | sort -u | wc -l)" = 4 ] || fail "port clash, run again"

# shellcheck source=tests/ops/site_lib.sh
. "$here/site_lib.sh"
C=$tmp/certs
site_make_certs "$C" "http://127.0.0.1:$ocsp/" || fail "cannot make the test certificates"
mkdir -p "$tmp/acme/.well-known/acme-challenge"
echo "acme-token-$$.key-authorization" > "$tmp/acme/.well-known/acme-challenge/tok-$$"
chmod -R a+rX "$tmp/acme"
chmod 755 "$tmp"
P=$tmp/prod
site_render "$src" "$P" "$http" "$https" "$tmp/fcgi.sock" "$C" "$tmp/acme" || fail "cannot render nginx/pay-api.conf"

# The OCSP responder: one response made ahead by "openssl ocsp" from the
# index, served for every request (nginx asks with GET /<base64 request>).
openssl ocsp -issuer "$C/inter.pem" -cert "$C/cert.pem" -no_nonce -reqout "$tmp/ocsp-req.der" 2>/dev/null \
    || fail "openssl ocsp: cannot make the request"
openssl ocsp -index "$C/ocsp-index.txt" -CA "$C/inter.pem" -rsigner "$C/inter.pem" -rkey "$C/inter.key" \
    -reqin "$tmp/ocsp-req.der" -respout "$tmp/ocsp-resp.der" -ndays 1 >/dev/null 2>&1 \
    || fail "openssl ocsp: cannot make the response"
python3 - "$ocsp" "$tmp/ocsp-resp.der" "$tmp/ocsp-hits" >"$tmp/ocsp.log" 2>&1 <<'PY' &
import http.server, sys
port, resp, hits = int(sys.argv[1]), open(sys.argv[2], "rb").read(), sys.argv[3]
class H(http.server.BaseHTTPRequestHandler):
    def answer(self):
        with open(hits, "a") as f:
            f.write(self.command + "\n")
        self.send_response(200)
        self.send_header("Content-Type", "application/ocsp-response")
        self.send_header("Content-Length", str(len(resp)))
        self.end_headers()
        self.wfile.write(resp)
    do_GET = do_POST = answer
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
PY
ocsp_pid=$!
wait_port "$ocsp" "$ocsp_pid" "the OCSP responder"

nginx -p "$P" -c "$P/nginx.conf" -t >"$tmp/t.log" 2>&1 || { cat "$tmp/t.log" >&2; fail "nginx -t rejected the site"; }
nginx -p "$P" -c "$P/nginx.conf" -g 'daemon off;' </dev/null >"$P/stdout.log" 2>&1 &
ngx_pid=$!
wait_port "$https" "$ngx_pid" "nginx"
wait_port "$http" "$ngx_pid" "nginx"

# hs ARGS...: one handshake (and nothing sent); output of s_client.
hs() { timeout 10 openssl s_client -connect "127.0.0.1:$https" -servername localhost -CAfile "$C/ca.pem" "$@" </dev/null 2>&1 || true; }
# The cipher from s_client's "New, <cipher's version>, Cipher is X" (or
# "Reused, ..."), "(NONE)" when no handshake completed; the protocol from the
# session's "Protocol :" line (printed for TLS 1.3 only once a ticket came, so
# a TLS 1.3 cipher stands for TLSv1.3), "(NONE)" without a cipher.
cipher_of() { sed -nE 's/^(New|Reused), [^,]+, Cipher is (.*)/\2/p' | head -n 1; }
proto_of() {
    local o c
    o=$(cat)
    c=$(cipher_of <<<"$o")
    if [ -z "$c" ] || [ "$c" = "(NONE)" ]; then echo "(NONE)"; return; fi
    if grep -q '^New, TLSv1.3, ' <<<"$o"; then echo TLSv1.3; return; fi
    sed -n 's/^ *Protocol *: *//p' <<<"$o" | head -n 1
}

# ---- protocols ---------------------------------------------------------------
out=$(hs -tls1_3)
[ "$(proto_of <<<"$out")" = TLSv1.3 ] || { echo "$out" >&2; fail "TLS 1.3 is not accepted"; }
grep -q 'Verify return code: 0 (ok)' <<<"$out" || { echo "$out" >&2; fail "the chain does not verify against the test CA"; }
ok "TLS 1.3 accepted, chain verifies against the test CA"
out=$(hs -tls1_2)
[ "$(proto_of <<<"$out")" = TLSv1.2 ] || { echo "$out" >&2; fail "TLS 1.2 is not accepted"; }
ok "TLS 1.2 accepted"

# Control: this client can speak TLS 1.1 and 1.0 to a server that allows them.
openssl s_server -accept "127.0.0.1:$ctl" -cert "$C/cert.pem" -key "$C/privkey.pem" \
    -cipher 'DEFAULT:@SECLEVEL=0' -naccept 2 -quiet </dev/null >"$tmp/ctl.log" 2>&1 &
ctl_pid=$!
wait_port "$ctl" "$ctl_pid" "openssl s_server (control)"
for v in tls1_1 tls1; do
    want=$([ $v = tls1 ] && echo TLSv1 || echo TLSv1.1)
    got=$(timeout 10 openssl s_client -connect "127.0.0.1:$ctl" -$v -cipher 'DEFAULT:@SECLEVEL=0' </dev/null 2>&1 | proto_of || true)
    [ "$got" = "$want" ] || fail "control: the client cannot do $want with openssl s_server (got '$got')"
done
ok "control: the client negotiates TLS 1.1 and 1.0 with a server that allows them"

for v in tls1_1 tls1; do
    out=$(hs -$v -cipher 'DEFAULT:@SECLEVEL=0')
    p=$(proto_of <<<"$out")
    if [ -n "$p" ] && [ "$p" != "(NONE)" ]; then
        echo "$out" >&2; fail "-$v was accepted by the site ($p)"
    fi
done
grep -q 'unsupported protocol' "$P/error.log" || fail "nginx logged no 'unsupported protocol' for the TLS 1.0/1.1 attempts"
ok "TLS 1.1 and TLS 1.0 refused by the site (nginx: unsupported protocol)"
if openssl s_client -help 2>&1 | grep -q -- '-ssl3'; then
    out=$(hs -ssl3 -cipher 'DEFAULT:@SECLEVEL=0')
    p=$(proto_of <<<"$out")
    if [ -n "$p" ] && [ "$p" != "(NONE)" ]; then fail "SSLv3 was accepted"; fi
    ok "SSLv3 refused"
fi

# ---- TLS 1.2 cipher suites -------------------------------------------------------
mozilla='ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305'
grep -Fq "ssl_ciphers $mozilla;" "$src/pay-api.conf" || fail "pay-api.conf's ssl_ciphers is not Mozilla's intermediate list"
expected=$(tr ':' '\n' <<<"$mozilla" | grep -v ECDSA | sort)
all=$(openssl ciphers -s -tls1_2 'ALL:COMPLEMENTOFALL:@SECLEVEL=0' | tr ':' '\n' | grep -v '^TLS_' | sort -u)
[ "$(wc -l <<<"$all")" -ge 40 ] || fail "openssl knows too few TLS 1.2 suites to probe: $(wc -l <<<"$all")"
# Each expected suite alone must be negotiated...
for c in $expected; do
    got=$(hs -tls1_2 -cipher "$c" | cipher_of)
    [ "$got" = "$c" ] || fail "TLS 1.2 suite $c of Mozilla's list is not accepted (got '$got')"
done
# ...and offered all together, the other suites (including the ECDSA ones of the
# list, which an RSA certificate cannot use) find nothing the server accepts:
# a server picks any suite it shares with the client.
others=$(comm -23 <(echo "$all") <(echo "$expected") | paste -sd: -)
[ "$(tr ':' '\n' <<<"$others" | wc -l)" -ge 30 ] || fail "too few other suites: $others"
out=$(hs -tls1_2 -cipher "$others:@SECLEVEL=0")
got=$(cipher_of <<<"$out")
[ "$got" = "(NONE)" ] || [ -z "$got" ] || { echo "$out" >&2; fail "TLS 1.2 suite $got outside Mozilla's list was accepted"; }
grep -q 'no shared cipher' "$P/error.log" || fail "nginx logged no 'no shared cipher' for the other suites"
ok "TLS 1.2: Mozilla's $(wc -l <<<"$expected") RSA suites accepted; the $(tr ':' '\n' <<<"$others" | wc -l) other suites this OpenSSL knows refused"
out=$(hs -tls1_2 -cipher 'DHE-RSA-AES128-GCM-SHA256')
grep -Eq 'Server Temp Key: DH, 2048 bits' <<<"$out" || { echo "$out" >&2; fail "DHE does not use a 2048-bit group"; }
ok "DHE: 2048-bit group (ffdhe2048)"
for c in TLS_AES_128_GCM_SHA256 TLS_AES_256_GCM_SHA384 TLS_CHACHA20_POLY1305_SHA256; do
    got=$(hs -tls1_3 -ciphersuites "$c" | cipher_of)
    [ "$got" = "$c" ] || fail "TLS 1.3 suite $c not accepted (got '$got')"
done
ok "TLS 1.3: the three standard suites"

# ---- sessions: no tickets, resumption by the shared cache -------------------------
out=$(hs -tls1_2 -sess_out "$tmp/sess")
if grep -q 'TLS session ticket:' <<<"$out"; then echo "$out" >&2; fail "a TLS 1.2 session ticket was issued"; fi
out=$(hs -tls1_2 -sess_in "$tmp/sess")
grep -q '^Reused, TLSv1.2' <<<"$out" || { echo "$out" >&2; fail "TLS 1.2 session not resumed from the cache"; }
ok "TLS 1.2: no session ticket; the session is resumed from the shared cache"

# ---- OCSP stapling ----------------------------------------------------------------
stapled=
for _ in $(seq 30); do
    out=$(hs -tls1_2 -status)
    if grep -q 'OCSP Response Status: successful' <<<"$out"; then stapled=1; break; fi
    sleep 0.3
done
[ -n "$stapled" ] || { echo "$out" >&2; cat "$P/error.log" >&2; fail "no OCSP response stapled"; }
grep -q 'Cert Status: good' <<<"$out" || { echo "$out" >&2; fail "stapled OCSP response is not 'good'"; }
grep -q GET "$tmp/ocsp-hits" || fail "nginx never asked the OCSP responder"
ok "OCSP stapling: nginx fetched and staples a 'good' response"

# ---- HSTS and the port-80 rules ----------------------------------------------------
H=https://127.0.0.1:$https
U=http://127.0.0.1:$http
curlh() { curl -sS --max-time 5 --cacert "$C/ca.pem" -D "$tmp/h" -o "$tmp/b" -w '%{http_code}' "$@"; }
hdr() { tr -d '\r' < "$tmp/h" | sed -n "s/^$1: //Ip" | head -n 1; }
for path in /nope /v1/customer-payments /healthz; do
    code=$(curlh "$H$path")
    [ "$(hdr strict-transport-security)" = "max-age=63072000" ] \
        || fail "HTTPS $path ($code): Strict-Transport-Security is '$(hdr strict-transport-security)'"
done
ok "HTTPS: Strict-Transport-Security: max-age=63072000 on nginx's answers"

for m in GET HEAD; do
    if [ $m = HEAD ]; then code=$(curlh -I "$U/v1/customer-payments?customer_id=1&page=1"); else
        code=$(curlh "$U/v1/customer-payments?customer_id=1&page=1"); fi
    [ "$code" = 301 ] || fail "port 80 $m: status $code, want 301"
    [ "$(hdr location)" = "https://127.0.0.1/v1/customer-payments?customer_id=1&page=1" ] \
        || fail "port 80 $m: Location '$(hdr location)'"
    [ -z "$(hdr strict-transport-security)" ] || fail "port 80 $m: HSTS over plain HTTP"
done
code=$(curlh -H 'Host: pay.example.com' "$U/pay/abc")
[ "$code" = 301 ] && [ "$(hdr location)" = "https://pay.example.com/pay/abc" ] \
    || fail "port 80: redirect keeps the Host name ($code '$(hdr location)')"
ok "port 80: GET and HEAD get a 301 to https://<host><same URI>, no HSTS"
for m in POST PUT PATCH DELETE; do
    code=$(curlh -X "$m" -H 'Content-Type: application/json' -H 'Authorization: Bearer x.y.z' \
           --data '{"amountInMajorCurrency":1}' "$U/v1/customer-payments")
    [ "$code" = 403 ] || fail "port 80 $m: status $code, want 403"
    [ -z "$(hdr location)" ] || fail "port 80 $m: has a Location (a redirect)"
    hdr content-type | grep -q '^application/json' || fail "port 80 $m: not JSON"
    [ -n "$(hdr x-request-id)" ] || fail "port 80 $m: no X-Request-Id"
    cp "$tmp/b" "$tmp/body.$m"
done
python3 - "$tmp"/body.* <<'PY' || fail "port 80: a 403 body is not the JSON error"
import json, sys
for f in sys.argv[1:]:
    b = json.load(open(f))
    assert b["status"] == 403 and b["code"] == "FORBIDDEN" and "HTTPS" in b["message"] \
        and b["requestId"] and b["error"] == "Forbidden", (f, b)
PY
ok "port 80: POST, PUT, PATCH, DELETE get a JSON 403, never a redirect"

code=$(curlh "http://127.0.0.1:$https/v1/customer-payments")
[ "$code" = 400 ] && grep -q '"code":"BAD_REQUEST"' "$tmp/b" && grep -q 'only speaks HTTPS' "$tmp/b" \
    && hdr content-type | grep -q '^application/json' || fail "plain HTTP to the HTTPS port: $code $(cat "$tmp/b")"
ok "plain HTTP sent to the HTTPS port: JSON 400 naming HTTPS"

code=$(curlh "$U/.well-known/acme-challenge/tok-$$")
[ "$code" = 200 ] && [ "$(cat "$tmp/b")" = "acme-token-$$.key-authorization" ] \
    || fail "ACME challenge file not served on port 80 ($code: $(cat "$tmp/b"))"
hdr content-type | grep -q '^text/plain' || fail "ACME challenge: Content-Type '$(hdr content-type)'"
code=$(curlh "$U/.well-known/acme-challenge/missing")
[ "$code" = 404 ] && grep -q '"code":"NOT_FOUND"' "$tmp/b" || fail "ACME: a missing file is $code $(cat "$tmp/b")"
code=$(curlh "$H/.well-known/acme-challenge/tok-$$")
[ "$code" = 404 ] || fail "ACME files must not be served over HTTPS by the app's site (got $code)"
ok "port 80: /.well-known/acme-challenge/ served from the webroot (text/plain), JSON 404 when missing"

echo "verify_tls: PASS"
