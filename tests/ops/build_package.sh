#!/usr/bin/env bash
# Builds the Debian package and checks it with lintian (ctest ops.package,
# and ./pay-stack package).
#
#   tests/ops/build_package.sh OUT_DIR
#
# dpkg-buildpackage writes next to its source directory, so a clean copy of
# the tree (the files git tracks plus new ones not ignored: no build
# directories, no node_modules) goes to OUT_DIR/src and the results
# (pay-api_*.deb, .changes, .dsc, .tar.xz, build.log, lintian.txt) to OUT_DIR.
# Fails when the build fails or lintian reports an error; warnings and infos
# are printed (README, "Debian package", explains the ones there are).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=${1:?usage: build_package.sh OUT_DIR}
fail() { echo "build_package: FAIL: $*" >&2; exit 1; }
for c in dpkg-buildpackage dh lintian fakeroot; do
    command -v "$c" >/dev/null || fail "$c not found (packages dpkg-dev, debhelper, lintian, fakeroot)"
done

mkdir -p "$out"
out=$(cd "$out" && pwd)
case $out in "$repo"|/) fail "refusing OUT_DIR=$out" ;; esac
rm -rf "$out/src" "$out"/pay-api_* "$out"/pay-api-dbgsym_* "$out/build.log" "$out/lintian.txt"
mkdir -p "$out/src"
if git -C "$repo" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    (cd "$repo" && git ls-files -z -co --exclude-standard | tar --null -T - -cf -) | tar -xf - -C "$out/src"
else
    tar -C "$repo" --exclude='./build*' --exclude='./.run' --exclude=node_modules -cf - . | tar -xf - -C "$out/src"
fi

start=$SECONDS
(cd "$out/src" && DEB_BUILD_OPTIONS="parallel=$(nproc)" dpkg-buildpackage -us -uc) >"$out/build.log" 2>&1 \
    || { tail -n 40 "$out/build.log" >&2; fail "dpkg-buildpackage failed (see $out/build.log)"; }
echo "build_package: dpkg-buildpackage -us -uc: ok ($((SECONDS - start)) s): $(cd "$out" && ls pay-api_*.deb)"

start=$SECONDS
rc=0
lintian --fail-on error "$out"/pay-api_*.changes >"$out/lintian.txt" 2>&1 || rc=$?
echo "build_package: lintian ($((SECONDS - start)) s), tags by severity:"
sed -n 's/^\([EWIP]\): .*/\1/p' "$out/lintian.txt" | sort | uniq -c | sed 's/^/  /'
cat "$out/lintian.txt"
[ $rc -eq 0 ] || fail "lintian reports errors (exit $rc)"
if grep -q '^E: ' "$out/lintian.txt"; then fail "lintian reports errors"; fi
echo "build_package: PASS"
