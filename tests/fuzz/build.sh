#!/usr/bin/env bash
# Builds every libFuzzer harness of tests/fuzz/ into OUTDIR with clang,
# independently of the project's CMake build (which uses gcc).
#
#   tests/fuzz/build.sh OUTDIR
#
# The app/ sources (all but main.c) are compiled once with
# -fsanitize=fuzzer-no-link,address,undefined (plus PAY_ARENA_DEBUG, so each
# arena allocation is its own malloc and ASan sees overflows exactly) into
# OUTDIR/obj/libpayfuzz.a; each tests/fuzz/fuzz_<name>.c is then linked with
# -fsanitize=fuzzer,address,undefined into OUTDIR/fuzz_<name>.
# Nothing is rebuilt when OUTDIR/.stamp is newer than every input.
# Fails loudly (exit 1) when clang or the libFuzzer runtime is missing.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:?usage: tests/fuzz/build.sh OUTDIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)

CC=${PAY_FUZZ_CC:-clang}
HARNESSES=(${PAY_FUZZ_ONLY:-json query money router auth text})
# Every app/ source but main.c, as the payapp library of app/CMakeLists.txt;
# they go into a static archive, so a harness links only the objects it
# references (no FastCGI, no DB: nothing here needs -lfcgi or -lmariadb).
APP_SRCS=()
for f in "$root"/app/*.c; do
    s=$(basename "$f" .c)
    [[ $s == main ]] || APP_SRCS+=("$s")
done

die() { echo "fuzz/build.sh: ERROR: $*" >&2; exit 1; }

command -v "$CC" >/dev/null 2>&1 ||
    die "$CC not found. libFuzzer needs clang: apt-get install clang libclang-rt-14-dev"

# ---- up to date? ---------------------------------------------------------
inputs=("$root"/app/*.c "$root"/app/*.h "$root"/app/errors.def
        "$here"/*.c "$here"/*.h "$here"/build.sh)
if [[ -f $out/.stamp ]]; then
    fresh=1
    for h in "${HARNESSES[@]}"; do
        [[ -x $out/fuzz_$h ]] || fresh=0
    done
    for f in "${inputs[@]}"; do
        [[ $f -nt $out/.stamp ]] && fresh=0
    done
    if (( fresh )); then
        echo "fuzz/build.sh: harnesses in $out are up to date"
        exit 0
    fi
fi

# ---- toolchain check: a trivial fuzzer must compile and link ---------------
probe=$out/.probe
mkdir -p "$probe"
cat >"$probe/p.c" <<'EOF'
#include <stddef.h>
#include <stdint.h>
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }
EOF
if ! "$CC" -fsanitize=fuzzer,address,undefined "$probe/p.c" -o "$probe/p" 2>"$probe/err"; then
    cat "$probe/err" >&2
    die "$CC cannot link -fsanitize=fuzzer,address,undefined (the libFuzzer/sanitizer runtime is missing): apt-get install clang libclang-rt-14-dev"
fi
rm -rf "$probe"
echo "fuzz/build.sh: using $("$CC" --version | head -n1)"

COMMON=(-g -O1 -std=c11 -fno-omit-frame-pointer
        -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -DPAY_ARENA_DEBUG=1
        -I "$root/app" -I "$root/db" -I "$root/handlers")
SAN_OBJ=(-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined)
SAN_BIN=(-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined)
LIBS=(-lyajl -ljwt -lcrypto)

jobs_max=$(nproc 2>/dev/null || echo 2)

# Runs "$@" in the background, at most $jobs_max at a time; failures are
# collected by wait_all.
pids=()
spawn() {
    while (( $(jobs -rp | wc -l) >= jobs_max )); do wait -n || true; done
    "$@" &
    pids+=($!)
}
wait_all() {
    local rc=0 p
    for p in "${pids[@]}"; do wait "$p" || rc=1; done
    pids=()
    return $rc
}

# ---- app objects -----------------------------------------------------------
mkdir -p "$out/obj"
for s in "${APP_SRCS[@]}"; do
    spawn "$CC" "${COMMON[@]}" "${SAN_OBJ[@]}" -c "$root/app/$s.c" -o "$out/obj/$s.o"
done
wait_all || die "compiling app/ sources failed"
rm -f "$out/obj/libpayfuzz.a"
objs=()
for s in "${APP_SRCS[@]}"; do objs+=("$out/obj/$s.o"); done
ar rcs "$out/obj/libpayfuzz.a" "${objs[@]}"

# ---- harnesses -------------------------------------------------------------
for h in "${HARNESSES[@]}"; do
    spawn "$CC" "${COMMON[@]}" "${SAN_BIN[@]}" -Wall -Wextra -Werror \
        "$here/fuzz_$h.c" "$out/obj/libpayfuzz.a" "${LIBS[@]}" -o "$out/fuzz_$h"
done
wait_all || die "building the harnesses failed"

touch "$out/.stamp"
echo "fuzz/build.sh: built ${HARNESSES[*]/#/fuzz_} in $out"
