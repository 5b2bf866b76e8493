#!/usr/bin/env bash
# The Stripe stack: the Stripe double (double.mjs, HTTPS on loopback with a
# test CA made here) and a private pay-api stack (tests/stack.sh) whose
# stripe_credentials point at it, with one collector running. The main e2e
# stack is not touched: its STRIPE providers keep using the sandbox.
#
#   tests/providers/stripe/stack.sh start DIR     DIR/env: the stack's env plus
#                                                 STRIPE_DOUBLE_URL, STRIPE_DOUBLE_CA,
#                                                 STRIPE_API_KEY
#   tests/providers/stripe/stack.sh stop DIR
# Environment: PAY_BIN and PAY_DATA as for tests/stack.sh.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
cmd=${1:?usage: stack.sh start|stop DIR}
DIR=${2:?usage: stack.sh start|stop DIR}

stop_double() {
    [ -f "$DIR/double.pid" ] || return 0
    local pid
    pid=$(cat "$DIR/double.pid")
    if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q 'double.mjs'; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$DIR/double.pid"
}

case $cmd in
start)
    mkdir -p "$DIR"
    stop_double
    bash "$REPO/tests/stack.sh" stop "$DIR/stack" >/dev/null 2>&1 || true
    bash "$HERE/mkcert.sh" "$DIR/certs"
    key="sk_test_$(openssl rand -hex 12)"
    secret="whsec_$(openssl rand -hex 16)"
    rm -f "$DIR/double.log"
    setsid node "$HERE/double.mjs" --cert "$DIR/certs/server.pem" --key "$DIR/certs/server.key" \
        --api-key "$key" --webhook-secret "$secret" --step-ms 500 > "$DIR/double.log" 2>&1 &
    echo $! > "$DIR/double.pid"
    port=''
    for _ in $(seq 300); do
        port=$(sed -n 's/^listening \([0-9]*\)$/\1/p' "$DIR/double.log" 2>/dev/null || true)
        [ -n "$port" ] && break
        kill -0 "$(cat "$DIR/double.pid")" 2>/dev/null || { cat "$DIR/double.log"; exit 1; }
        sleep 0.1
    done
    [ -n "$port" ] || { echo "the Stripe double did not start" >&2; exit 1; }
    umask 077
    cat > "$DIR/stripe.credentials" <<CRED
api_key = $key
webhook_secret = $secret
environment = sandbox
base_url = https://127.0.0.1:$port
ca_file = $DIR/certs/ca.pem
CRED
    umask 022
    # A 3 s lease: a collector killed mid-call is replaced, and its attempt
    # claimed again, within the e2e test's patience.
    PAY_COLLECTORS=1 PAY_COLLECTOR_LEASE_MS=3000 PAY_STACK_CONF_EXTRA="stripe_credentials = $DIR/stripe.credentials
autocollect_interval = 1" bash "$REPO/tests/stack.sh" start "$DIR/stack"
    { cat "$DIR/stack/env"
      echo "STRIPE_DOUBLE_URL='https://127.0.0.1:$port'"
      echo "STRIPE_DOUBLE_CA='$DIR/certs/ca.pem'"
      echo "STRIPE_API_KEY='$key'"; } > "$DIR/env"
    chmod 600 "$DIR/env"
    ;;
stop)
    bash "$REPO/tests/stack.sh" stop "$DIR/stack" || true
    stop_double
    ;;
*) echo "usage: stack.sh start|stop DIR" >&2; exit 2 ;;
esac
