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
# Only what is out of date is rebuilt (see below); PAY_FUZZ_ONLY="json auth"
# restricts the build to those harnesses; PAY_FUZZ_CC picks the compiler.
# Fails loudly (exit 1) when clang or the libFuzzer runtime is missing.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:?usage: tests/fuzz/build.sh OUTDIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)

CC=${PAY_FUZZ_CC:-clang}
# One harness per tests/fuzz/fuzz_<name>.c; PAY_FUZZ_ONLY="a b" builds only those.
HARNESSES=()
if [[ -n ${PAY_FUZZ_ONLY:-} ]]; then
    read -r -a HARNESSES <<<"$PAY_FUZZ_ONLY"
else
    for f in "$here"/fuzz_*.c; do
        b=$(basename "$f" .c)
        HARNESSES+=("${b#fuzz_}")
    done
fi
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

# ---- what is out of date? ------------------------------------------------
# Make-like: the archive is rebuilt when an app/ file (or this script) is
# newer; a harness when its source, a tests/fuzz header, the archive or
# this script is newer than its binary.
lib=$out/obj/libpayfuzz.a
newer_than() { # newer_than TARGET FILE...: 0 if TARGET is missing or older than one FILE
    local t=$1 f
    shift
    [[ -e $t ]] || return 0
    for f in "$@"; do [[ $f -nt $t ]] && return 0; done
    return 1
}
need_lib=0
newer_than "$lib" "$root"/app/*.c "$root"/app/*.h "$root"/app/errors.def "$here/build.sh" && need_lib=1
todo=()
for h in "${HARNESSES[@]}"; do
    [[ -f $here/fuzz_$h.c ]] || die "no harness tests/fuzz/fuzz_$h.c"
    if (( need_lib )) || newer_than "$out/fuzz_$h" "$here/fuzz_$h.c" "$here"/*.h "$lib" "$here/build.sh"; then
        todo+=("$h")
    fi
done
if (( ! need_lib && ${#todo[@]} == 0 )); then
    echo "fuzz/build.sh: harnesses in $out are up to date"
    exit 0
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
# shellcheck disable=SC2054  # the commas belong to -fsanitize=
SAN_OBJ=(-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined)
# shellcheck disable=SC2054
SAN_BIN=(-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined)
LIBS=(-lyajl -ljwt -lcrypto)

jobs_max=$(nproc 2>/dev/null || echo 2)

# Runs "$@" in the background, in batches of $jobs_max; wait_all waits for
# the rest and fails if any command failed.
pids=()
failed_jobs=0
spawn() {
    if (( ${#pids[@]} >= jobs_max )); then wait_all || failed_jobs=1; fi
    "$@" &
    pids+=($!)
}
wait_all() {
    local rc=0 p
    for p in "${pids[@]}"; do wait "$p" || rc=1; done
    pids=()
    (( rc == 0 && failed_jobs == 0 ))
}

# ---- app objects -----------------------------------------------------------
mkdir -p "$out/obj"
if (( need_lib )); then
    for s in "${APP_SRCS[@]}"; do
        spawn "$CC" "${COMMON[@]}" "${SAN_OBJ[@]}" -c "$root/app/$s.c" -o "$out/obj/$s.o"
    done
    wait_all || die "compiling app/ sources failed"
    rm -f "$lib"
    objs=()
    for s in "${APP_SRCS[@]}"; do objs+=("$out/obj/$s.o"); done
    ar rcs "$lib" "${objs[@]}"
fi

# ---- harnesses -------------------------------------------------------------
for h in "${todo[@]}"; do
    spawn "$CC" "${COMMON[@]}" "${SAN_BIN[@]}" -Wall -Wextra -Werror \
        "$here/fuzz_$h.c" "$lib" "${LIBS[@]}" -o "$out/fuzz_$h"
done
wait_all || die "building the harnesses failed"

echo "fuzz/build.sh: built ${todo[*]/#/fuzz_} in $out"
