#!/usr/bin/env bash
# tests/providers/gocardless/stack.sh — a pay-api stack whose GO_CARDLESS
# providers talk to the GoCardless double (double.mjs) over loopback HTTPS.
#
#   stack.sh start DIR    a test CA and a certificate for 127.0.0.1 (DIR/ca/),
#                         the double (DIR/double.pid, its URL in DIR/double.url),
#                         pay-api's gocardless_credentials (DIR/gocardless.credentials,
#                         0600: base_url and ca_file pointing at the double),
#                         then tests/stack.sh start DIR/stack with fixture.json
#                         (customers 101-106, 109 and 110-112, provider 1
#                         GO_CARDLESS, provider 2 GC_INSTANT_BANK_PAYMENTS; a 2 s
#                         collector lease), and the double told where the
#                         webhooks go (instant bank payments' to provider 2's).
#   stack.sh stop DIR     stops both (by their recorded pids); never fails.
# Needs tests/providers/gocardless/node_modules (npm ci there).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
cmd=${1:-}
DIR=${2:-}
if [ -z "$cmd" ] || [ -z "$DIR" ]; then
    echo "usage: stack.sh start|stop DIR" >&2
    exit 2
fi

stop() {
    bash "$REPO/tests/stack.sh" stop "$DIR/stack" || true
    if [ -f "$DIR/double.pid" ]; then
        local pid
        pid=$(cat "$DIR/double.pid")
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        fi
        rm -f "$DIR/double.pid"
    fi
}

if [ "$cmd" = stop ]; then
    stop
    exit 0
fi
[ "$cmd" = start ] || { echo "usage: stack.sh start|stop DIR" >&2; exit 2; }
[ -d "$HERE/node_modules/gocardless-nodejs" ] \
    || { echo "stack.sh: run npm ci in $HERE first" >&2; exit 1; }
stop
rm -rf "$DIR"
mkdir -p "$DIR/ca"
(
    cd "$DIR/ca"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj '/CN=pay-api GoCardless double test CA' \
        -keyout ca.key -out ca.pem
    openssl req -newkey rsa:2048 -nodes -subj '/CN=127.0.0.1' -keyout server.key -out server.csr
    printf 'subjectAltName=IP:127.0.0.1,DNS:api-sandbox.gocardless.com\n' > ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
        -extfile ext -out server.pem
) > "$DIR/ca/openssl.log" 2>&1 || { cat "$DIR/ca/openssl.log" >&2; exit 1; }

setsid node "$HERE/double.mjs" "$DIR/ca" > "$DIR/double.log" 2>&1 < /dev/null &
echo $! > "$DIR/double.pid"
for _ in $(seq 1 300); do [ -s "$DIR/ca/port" ] && break; sleep 0.2; done
[ -s "$DIR/ca/port" ] || { echo "stack.sh: the double did not start" >&2; cat "$DIR/double.log" >&2; exit 1; }
URL="https://127.0.0.1:$(cat "$DIR/ca/port")"
echo "$URL" > "$DIR/double.url"

WEBHOOK_SECRET=$(openssl rand -hex 24)
umask 077
cat > "$DIR/gocardless.credentials" <<CRED
# GoCardless double of the tests
api_key        = sandbox_double_token
webhook_secret = $WEBHOOK_SECRET
environment    = sandbox
base_url       = $URL
ca_file        = $DIR/ca/ca.pem
CRED
umask 022

PAY_STACK_CONF_EXTRA="gocardless_credentials = $DIR/gocardless.credentials" PAY_DATA=$HERE/fixture.json PAY_WORKERS=2 \
    PAY_COLLECTOR_LEASE_MS=2000 \
    bash "$REPO/tests/stack.sh" start "$DIR/stack"
# shellcheck disable=SC1091
. "$DIR/stack/env"
{
    echo "GC_DOUBLE_URL='$URL'"
    echo "GC_DOUBLE_CA='$DIR/ca/ca.pem'"
    echo "GC_WEBHOOK_SECRET='$WEBHOOK_SECRET'"
} >> "$DIR/stack/env"
curl -sS --fail --cacert "$DIR/ca/ca.pem" -H 'Content-Type: application/json' \
    -d "{\"webhook_url\":\"$PAY_BASE_URL/webhooks/1\",\"ibp_webhook_url\":\"$PAY_BASE_URL/webhooks/2\",\"webhook_secret\":\"$WEBHOOK_SECRET\"}" \
    "$URL/_double/config" > /dev/null
echo "stack.sh: GoCardless double on $URL, pay-api on $PAY_BASE_URL"
