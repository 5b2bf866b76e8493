#!/usr/bin/env bash
# ops.systemd_verify: "systemd-analyze verify" the shipped units.
#
#   tests/ops/verify_systemd.sh PAY_API_BINARY [UNITS_DIR]   (default: <repo>/systemd)
#
# The units are copied to a temp dir and ExecStart's /usr/local/sbin/pay-api is
# replaced by the built binary (verify fails when the ExecStart binary does not
# exist). verify exits 0 even on unknown keys (it only prints "Unknown key"), so
# the gate is: exit status 0 AND empty output (DEPS §6).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
bin=${1:?usage: verify_systemd.sh PAY_API_BINARY [UNITS_DIR]}
units=${2:-$here/../../systemd}

fail() { echo "verify_systemd: FAIL: $*" >&2; exit 1; }
command -v systemd-analyze >/dev/null || fail "systemd-analyze not found (package systemd)"
case $bin in /*) ;; *) bin=$(pwd)/$bin ;; esac
[ -x "$bin" ] || fail "binary $bin does not exist or is not executable"
case $bin in *[[:space:]]*) fail "binary path must not contain whitespace: $bin" ;; esac
for u in pay-api.service pay-api.socket; do [ -r "$units/$u" ] || fail "missing $units/$u"; done

tmp=$(mktemp -d /tmp/verify-systemd.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
cp "$units/pay-api.service" "$units/pay-api.socket" "$tmp/"

grep -q '^ExecStart=/usr/local/sbin/pay-api ' "$tmp/pay-api.service" \
    || fail "pay-api.service: ExecStart must start with /usr/local/sbin/pay-api"
sed -i "s|^ExecStart=/usr/local/sbin/pay-api |ExecStart=$bin |" "$tmp/pay-api.service"

# Facts the deployment relies on (see nginx/pay-api.conf and DEPS §6).
want() { grep -Eq "^$2\$" "$tmp/$1" || fail "$1: expected a line matching '$2'"; }
want pay-api.socket  'ListenStream=/run/pay-api/fcgi\.sock'
want pay-api.socket  'SocketGroup=www-data'
want pay-api.socket  'SocketMode=0660'
want pay-api.service 'Type=exec'
want pay-api.service 'KillMode=mixed'
want pay-api.service 'Restart=on-failure'
if grep -Eq '^RuntimeDirectory=' "$tmp/pay-api.service"; then
    fail "pay-api.service: RuntimeDirectory= would delete /run/pay-api (and the socket) on stop; the socket unit owns it"
fi
if grep -Eq '^StandardInput=socket' "$tmp/pay-api.service"; then
    fail "pay-api.service: the socket is passed via LISTEN_FDS (fd 3), not StandardInput=socket"
fi

cd "$tmp"
set +e
out=$(SYSTEMD_LOG_COLOR=0 systemd-analyze verify ./pay-api.socket ./pay-api.service 2>&1)
rc=$?
set -e
if [ $rc -ne 0 ] || [ -n "$out" ]; then
    printf '%s\n' "$out" >&2
    fail "systemd-analyze verify: exit $rc, output above must be empty"
fi
echo "verify_systemd: systemd-analyze verify: exit 0, no output"

# Informational: the exposure score (not a gate).
if score=$(systemd-analyze security --offline=yes ./pay-api.service 2>/dev/null | tail -n 1); then
    echo "verify_systemd: security: $score"
fi
echo "verify_systemd: PASS"
