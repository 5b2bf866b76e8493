#!/usr/bin/env bash
# ops.package_install: installs the Debian package in a clean Debian 12 root
# and runs it there.
#
#   tests/ops/package_install.sh DEB WORK_DIR
#
# 1. A clean root: "debootstrap --variant=minbase bookworm" from the host's
#    Debian mirror, with the package's Depends (read from the .deb, so a
#    missing one fails the install). The pristine root is kept as
#    WORK_DIR/base-<hash of the Depends>.tar and unpacked afresh for every run
#    (debootstrap only once per work dir).
# 2. The "previous" package (this .deb repacked as version <v>~prev, the same
#    files) is installed with dpkg -i: postinst creates the pay-api user,
#    /etc/pay-api/pay-api.conf from the example and a JWT secret. The config
#    is edited for a private MariaDB (started on the host, its socket inside
#    the root) and the Apache site (a conffile) gets a local edit.
# 3. The upgrade to DEB keeps both edits and the secret.
# 4. In the root (chroot): "pay-api migrate" finds /usr/share/pay-api/schema,
#    "pay-api load" a fixture, "pay-api serve" runs directly as user pay-api
#    (no systemd in a chroot) with its own socket, and cgi-fcgi from the host
#    asks /readyz and an authenticated GET /v1/customer-payments.
# 5. dpkg --purge removes /etc/pay-api.
# Everything runs as root (chroot, mount); nothing leaves WORK_DIR.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
deb=${1:?usage: package_install.sh DEB WORK_DIR}
work=${2:?usage: package_install.sh DEB WORK_DIR}
fail() { echo "package_install: FAIL: $*" >&2; exit 1; }
say()  { echo "package_install: $*"; }
[ "$(id -u)" -eq 0 ] || fail "needs root (chroot, mount)"
for c in debootstrap dpkg-deb chroot cgi-fcgi mariadbd mariadb-install-db mariadb-admin; do
    command -v "$c" >/dev/null || fail "$c not found"
done
deb=$(realpath "$deb")
[ -r "$deb" ] || fail "no package at $deb"
mkdir -p "$work"
work=$(realpath "$work")
root=$work/root
db=$work/db
mounted=() dbpid='' apipid=''

cleanup() {
    set +e
    [ -n "$apipid" ] && kill -TERM "$apipid" 2>/dev/null && sleep 1 && kill -KILL "$apipid" 2>/dev/null
    if [ -n "$dbpid" ] && kill -0 "$dbpid" 2>/dev/null; then
        mariadb-admin --no-defaults --socket="$root/run/pay-db/mysqld.sock" -uroot shutdown >/dev/null 2>&1
        for _ in $(seq 100); do kill -0 "$dbpid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$dbpid" 2>/dev/null
    fi
    local i
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount "${mounted[$i]}"; done
}
trap cleanup EXIT
in_root() { chroot "$root" "$@"; }

# ---- 1. the clean root ------------------------------------------------------------
ver=$(dpkg-deb -f "$deb" Version)
# Depends "adduser, libc6 (>= 2.34), libfcgi0ldbl, ..." -> the names (first of alternatives)
deps=$(dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed -E 's/\|.*//; s/\(.*\)//; s/[[:space:]]//g' | grep -v '^$' | sort -u | paste -sd, -)
base=$work/base-$(printf '%s' "$deps" | md5sum | cut -c1-12).tar
if [ ! -s "$base" ]; then
    mirror=$(sed -n 's/^URIs:[[:space:]]*\(http[^[:space:]]*\/debian\)\/\{0,1\}$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n 1)
    [ -n "$mirror" ] || mirror=$(sed -n 's/^deb[[:space:]]\+\(http[^[:space:]]*\/debian\)\/\{0,1\}[[:space:]]\+bookworm[[:space:]].*/\1/p' /etc/apt/sources.list 2>/dev/null | head -n 1)
    [ -n "$mirror" ] || mirror=http://deb.debian.org/debian
    say "debootstrap --variant=minbase bookworm from $mirror with $deps"
    rm -rf "$root"
    start=$SECONDS
    debootstrap --variant=minbase --include="$deps" bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 \
        || { tail -n 20 "$work/debootstrap.log" >&2; fail "debootstrap failed (see $work/debootstrap.log)"; }
    rm -rf "$root/var/cache/apt/archives/"*.deb
    tar -C "$root" -cf "$base.tmp" . && mv "$base.tmp" "$base"
    say "clean root ready in $((SECONDS - start)) s (kept as $base)"
fi
rm -rf "$root"
mkdir -p "$root"
tar -C "$root" -xf "$base"
for m in proc dev; do
    if [ "$m" = proc ]; then mount -t proc proc "$root/proc"; else mount --bind /dev "$root/dev"; fi
    mounted+=("$root/$m")
done
if in_root dpkg-query -W pay-api >/dev/null 2>&1; then fail "the clean root already has pay-api"; fi

# ---- 2. the previous package, configured ----------------------------------------------
prev=$work/pay-api_prev.deb
rm -rf "$work/prev" && dpkg-deb -R "$deb" "$work/prev"
sed -i "s/^Version: .*/Version: ${ver}~prev/" "$work/prev/DEBIAN/control"
dpkg-deb --root-owner-group -b "$work/prev" "$prev" >/dev/null
cp "$prev" "$root/tmp/prev.deb"
cp "$deb" "$root/tmp/new.deb"
in_root dpkg -i /tmp/prev.deb >"$work/dpkg-prev.log" 2>&1 || { cat "$work/dpkg-prev.log" >&2; fail "dpkg -i (previous) failed"; }
# shellcheck disable=SC2016  # ${Package} is dpkg-query's format, not the shell's
say "installed $(in_root dpkg-query -W -f='${Package} ${Version}' pay-api)"
in_root getent passwd pay-api >/dev/null || fail "postinst did not create the pay-api user"
# (names resolved inside the root: its pay-api user is not the host's)
for f in /etc/pay-api/pay-api.conf /etc/pay-api/jwt.secret; do
    [ "$(in_root stat -c '%a %U %G' "$f")" = "640 root pay-api" ] \
        || fail "$f is $(in_root stat -c '%a %U %G' "$f"), want 640 root pay-api"
done
[ "$(in_root stat -c '%a %U %G' /etc/pay-api)" = "750 root pay-api" ] || fail "/etc/pay-api is not 750 root pay-api"
[ "$(wc -c < "$root/etc/pay-api/jwt.secret")" -ge 64 ] || fail "postinst wrote no usable JWT secret"
for f in /usr/sbin/pay-api /usr/share/pay-api/schema/001_init.sql /lib/systemd/system/pay-api.service \
         /lib/systemd/system/pay-api.socket /etc/nginx/sites-available/pay-api.conf \
         /etc/nginx/snippets/pay-api-locations.conf /etc/apache2/sites-available/pay-api.conf \
         /etc/apache2/pay-api/pay-api-locations.conf /usr/share/pay-api/pay-api.conf.example; do
    [ -e "$root$f" ] || fail "the package did not install $f"
done
grep -q '^ExecStart=/usr/sbin/pay-api ' "$root/lib/systemd/system/pay-api.service" \
    || fail "the packaged service does not start /usr/sbin/pay-api"
for f in /etc/apache2/sites-enabled/pay-api.conf /etc/nginx/sites-enabled/pay-api.conf; do
    [ ! -e "$root$f" ] || fail "$f is enabled by the package"
done
secret=$(md5sum < "$root/etc/pay-api/jwt.secret")

# A private MariaDB on the host whose socket lies inside the root.
mkdir -p "$db" "$root/run/pay-db"
rm -rf "$db/data"
mariadb-install-db --no-defaults --user=root --datadir="$db/data" --auth-root-authentication-method=socket \
    --skip-test-db >"$work/mariadb-install.log" 2>&1 || fail "mariadb-install-db failed"
setsid mariadbd --no-defaults --user=root --datadir="$db/data" --socket="$root/run/pay-db/mysqld.sock" \
    --pid-file="$db/mysqld.pid" --skip-networking --log-error="$db/mariadb.err" \
    --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci --innodb-buffer-pool-size=64M \
    </dev/null >/dev/null 2>&1 &
dbpid=$!
for _ in $(seq 300); do
    mariadb-admin --no-defaults --socket="$root/run/pay-db/mysqld.sock" -uroot ping >/dev/null 2>&1 && break
    kill -0 "$dbpid" 2>/dev/null || fail "mariadbd exited (see $db/mariadb.err)"
    sleep 0.2
done
pw=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
mariadb --no-defaults --socket="$root/run/pay-db/mysqld.sock" -uroot <<SQL || fail "creating the database failed"
CREATE DATABASE pay CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE USER 'pay'@'localhost' IDENTIFIED BY '$pw';
GRANT ALL PRIVILEGES ON pay.* TO 'pay'@'localhost';
SQL

# The operator's edits: the config, and a local line in a conffile.
conf=$root/etc/pay-api/pay-api.conf
sed -i -e "s|^db_socket = .*|db_socket = /run/pay-db/mysqld.sock|" \
       -e "s|^db_password = .*|db_password = $pw|" \
       -e "s|^#workers = 0|workers = 2|" "$conf"
echo "# edited by the operator (package_install test)" >> "$conf"
echo "# local edit (package_install test)" >> "$root/etc/apache2/sites-available/pay-api.conf"
conf_sum=$(md5sum < "$conf")

# ---- 3. upgrade --------------------------------------------------------------------------
in_root dpkg -i /tmp/new.deb >"$work/dpkg-upgrade.log" 2>&1 || { cat "$work/dpkg-upgrade.log" >&2; fail "dpkg -i (upgrade) failed"; }
# shellcheck disable=SC2016  # ${Version} is dpkg-query's format, not the shell's
[ "$(in_root dpkg-query -W -f='${Version}' pay-api)" = "$ver" ] || fail "the upgrade did not install $ver"
[ "$(md5sum < "$conf")" = "$conf_sum" ] || fail "the upgrade changed /etc/pay-api/pay-api.conf"
[ "$(md5sum < "$root/etc/pay-api/jwt.secret")" = "$secret" ] || fail "the upgrade changed the JWT secret"
grep -q '^# local edit (package_install test)$' "$root/etc/apache2/sites-available/pay-api.conf" \
    || fail "the upgrade lost the edit of the Apache site (a conffile)"
if find "$root/etc" -name '*.dpkg-*' | grep -q .; then fail "the upgrade left $(find "$root/etc" -name '*.dpkg-*')"; fi
say "upgraded ${ver}~prev -> $ver: the edited config, the secret and the edited conffile are kept"

# ---- 4. migrate, load, serve, ask ------------------------------------------------------------
in_root /usr/sbin/pay-api --config /etc/pay-api/pay-api.conf migrate >"$work/migrate.log" 2>&1 \
    || { cat "$work/migrate.log" >&2; fail "pay-api migrate failed"; }
grep -q 'applying 001_init.sql' "$work/migrate.log" || { cat "$work/migrate.log" >&2; fail "migrate applied nothing"; }
say "migrate (default directory /usr/share/pay-api/schema): $(grep -c '^applying' "$work/migrate.log") migrations"
cp "$repo/tests/fixtures/e2e.json" "$root/tmp/data.json"
in_root /usr/sbin/pay-api --config /etc/pay-api/pay-api.conf load /tmp/data.json >"$work/load.log" 2>&1 \
    || { cat "$work/load.log" >&2; fail "pay-api load failed"; }

# The socket directory systemd's pay-api.socket would make; pay-api creates
# the socket itself (config "socket"), as the user of the service.
install -d -m 755 -o "$(in_root id -u pay-api)" "$root/run/pay-api"
setsid chroot --userspec=pay-api:pay-api "$root" /usr/sbin/pay-api --config /etc/pay-api/pay-api.conf serve \
    </dev/null >"$work/serve.log" 2>&1 &
apipid=$!
sock=$root/run/pay-api/fcgi.sock
for _ in $(seq 100); do [ -S "$sock" ] && break; kill -0 "$apipid" 2>/dev/null || break; sleep 0.1; done
[ -S "$sock" ] || { cat "$work/serve.log" >&2; fail "pay-api serve made no socket"; }

fcgi() {  # PATH QUERY [AUTH]
    env -i REQUEST_METHOD=GET DOCUMENT_URI="$1" SCRIPT_NAME="$1" REQUEST_URI="$1?$2" QUERY_STRING="$2" \
        SERVER_PROTOCOL=HTTP/1.1 REMOTE_ADDR=127.0.0.1 GATEWAY_INTERFACE=CGI/1.1 \
        ${3:+HTTP_AUTHORIZATION="$3"} timeout 10 cgi-fcgi -bind -connect "$sock"
}
out=$(fcgi /readyz '') || fail "cgi-fcgi /readyz failed"
grep -q '^Status: 200' <<<"$out" || { echo "$out" >&2; fail "/readyz is not 200"; }
say "GET /readyz: 200"
tok=$(in_root /usr/sbin/pay-api --config /etc/pay-api/pay-api.conf token --sub pkg-test \
      --scope payments:read --contract-owners 1,2 --ttl 300) || fail "pay-api token failed"
out=$(fcgi /v1/customer-payments 'customer_id=1&page=1&pageSize=5' "Bearer $tok") || fail "cgi-fcgi request failed"
grep -q '^Status: 200' <<<"$out" || { echo "$out" >&2; fail "GET /v1/customer-payments is not 200"; }
grep -q '"customerId":1' <<<"$out" || { echo "$out" >&2; fail "GET /v1/customer-payments has no payment of customer 1"; }
out=$(fcgi /v1/customer-payments 'customer_id=1&page=1&pageSize=5') || fail "cgi-fcgi request failed"
grep -q '^Status: 401' <<<"$out" || { echo "$out" >&2; fail "an unauthenticated request is not 401"; }
say "GET /v1/customer-payments: 200 with a token (customer 1's payments), 401 without"
kill -TERM "$apipid"
for _ in $(seq 100); do kill -0 "$apipid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$apipid" 2>/dev/null && fail "pay-api serve did not stop on SIGTERM"
apipid=

# ---- 5. purge ------------------------------------------------------------------------------------
in_root dpkg --purge pay-api >"$work/dpkg-purge.log" 2>&1 || { cat "$work/dpkg-purge.log" >&2; fail "dpkg --purge failed"; }
[ ! -e "$root/etc/pay-api" ] || fail "purge left /etc/pay-api: $(ls -A "$root/etc/pay-api")"
[ ! -e "$root/usr/sbin/pay-api" ] || fail "purge left /usr/sbin/pay-api"
say "purge removes the binary and /etc/pay-api"
say "PASS"
