#!/usr/bin/env bash
# Runs the libFuzzer harnesses of a fuzzing build (ctest fuzz.<name>).
#
#   tests/fuzz/run.sh FUZZDIR [SECONDS]
#
# FUZZDIR is where the build put the harnesses: BUILD/fuzz of a build
# configured with -DCMAKE_C_COMPILER=clang -DPAY_FUZZ=ON (tests/fuzz/CMakeLists.txt).
# For each harness fuzz_<h> (one per tests/fuzz/fuzz_<h>.c):
#   1. replay: every input of corpus/<h>/ and regression/<h>/ runs once
#      (fuzz_<h> -runs=0 corpus/<h> regression/<h>); any crash fails it;
#   2. fuzz for SECONDS seconds (default 20) in a scratch copy of those
#      inputs under FUZZDIR/work/<h>/ (the repository is never written), with
#      -max_len=4096 -timeout=5 -rss_limit_mb=1024 and the dictionary
#      dict/<h>.dict;
#   3. print executions, coverage (cov/ft from libFuzzer's final line),
#      corpus size and peak RSS, or the crash/leak/timeout and the path of
#      the saved input (FUZZDIR/crashes/<h>-crash-<sha1>, -leak-, -timeout-,
#      -oom-).
# Ends with "N passed, N failed"; exits 1 if any harness failed.
# PAY_FUZZ_ONLY="json router" restricts the run to those harnesses.
# Logs: FUZZDIR/logs/<h>.replay.log, FUZZDIR/logs/<h>.fuzz.log.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: tests/fuzz/run.sh FUZZDIR [SECONDS]}
secs=${2:-20}
[[ $secs =~ ^[0-9]+$ ]] || { echo "run.sh: SECONDS must be an integer, got '$secs'" >&2; exit 2; }
[[ -d $out ]] || { echo "run.sh: no directory $out (build the harnesses first, see tests/fuzz/README.md)" >&2; exit 2; }
out=$(cd "$out" && pwd)

harnesses=()
if [[ -n ${PAY_FUZZ_ONLY:-} ]]; then
    read -r -a harnesses <<<"$PAY_FUZZ_ONLY"
else
    for f in "$here"/fuzz_*.c; do
        b=$(basename "$f" .c)
        harnesses+=("${b#fuzz_}")
    done
fi

# Stack traces for UBSan findings; LeakSanitizer on (the default, made explicit).
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:quarantine_size_mb=128}

t0=$(date +%s)
for h in "${harnesses[@]}"; do
    if [[ ! -x $out/fuzz_$h ]]; then
        echo "run.sh: no harness $out/fuzz_$h: configure a build with -DCMAKE_C_COMPILER=clang -DPAY_FUZZ=ON and build it (tests/fuzz/README.md)"
        echo "0 passed, ${#harnesses[@]} failed"
        exit 1
    fi
done
echo "run.sh: ${#harnesses[@]} harnesses, ${secs}s of fuzzing each, output in $out"

mkdir -p "$out/logs" "$out/crashes" "$out/work"
passed=0
failed=0
failures=()

# Prints the saved artifact(s) and the lines that say what went wrong.
report_failure() {
    local h=$1 log=$2
    grep -E 'FUZZ INVARIANT FAILED|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|SUMMARY:|ALARM: working on the last Unit' "$log" |
        head -n 6 | sed 's/^/    | /'
    grep -A1 -E '^FUZZ INVARIANT FAILED' "$log" | tail -n 1 | sed 's/^/    | /'
    local art
    art=$(grep -oE "Test unit written to [^ ]+" "$log" | tail -n 1 | sed 's/Test unit written to //')
    if [[ -n $art ]]; then
        echo "    saved input: $art"
        echo "    reproduce:   $out/fuzz_$h $art"
    fi
    echo "    log:         $log"
}

for h in "${harnesses[@]}"; do
    bin=$out/fuzz_$h
    dirs=()
    [[ -d $here/corpus/$h ]] && dirs+=("$here/corpus/$h")
    [[ -d $here/regression/$h ]] && dirs+=("$here/regression/$h")
    ninputs=0
    for d in "${dirs[@]}"; do
        ninputs=$((ninputs + $(find "$d" -type f | wc -l)))
    done

    # 1. replay the committed inputs
    rlog=$out/logs/$h.replay.log
    if (( ${#dirs[@]} > 0 )) &&
       ! "$bin" -runs=0 -timeout=5 -rss_limit_mb=1024 -artifact_prefix="$out/crashes/$h-" \
            "${dirs[@]}" >"$rlog" 2>&1; then
        echo "FAIL fuzz_$h: replay of corpus/regression inputs failed"
        report_failure "$h" "$rlog"
        failed=$((failed + 1))
        failures+=("$h")
        continue
    fi

    # 2. fuzz in a scratch copy
    work=$out/work/$h
    rm -rf "$work"
    mkdir -p "$work"
    [[ -d $here/corpus/$h ]] && cp -R "$here/corpus/$h"/. "$work"/
    if [[ -d $here/regression/$h ]]; then
        for f in "$here/regression/$h"/*; do
            [[ -f $f ]] && cp "$f" "$work/regression-$(basename "$f")"
        done
    fi
    dict=()
    [[ -f $here/dict/$h.dict ]] && dict=(-dict="$here/dict/$h.dict")
    flog=$out/logs/$h.fuzz.log
    "$bin" -max_total_time="$secs" -max_len=4096 -timeout=5 -rss_limit_mb=1024 \
        -print_final_stats=1 -artifact_prefix="$out/crashes/$h-" "${dict[@]}" \
        "$work" >"$flog" 2>&1
    rc=$?

    # 3. report
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$flog" | tail -n 1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$flog" | tail -n 1)
    rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$flog" | tail -n 1)
    last=$(grep -E '^#[0-9]+' "$flog" | grep -E 'cov: ' | tail -n 1)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    corp=$(find "$work" -type f | wc -l)
    corpkb=$(find "$work" -type f -printf '%s\n' | awk '{s += $1} END {printf "%.0f", s / 1024}')
    line=$(printf '%-14s execs %-9s (%s/s)  cov %-5s ft %-6s corpus %s files (%s KiB, from %s)  peak RSS %s MB' \
        "fuzz_$h" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "$corp" "$corpkb" "$ninputs" "${rss:-?}")
    if (( rc == 0 )); then
        echo "ok   $line"
        passed=$((passed + 1))
    else
        echo "FAIL $line  [exit $rc]"
        report_failure "$h" "$flog"
        failed=$((failed + 1))
        failures+=("$h")
    fi
done

echo "run.sh: done in $(( $(date +%s) - t0 ))s${failures:+; failed: ${failures[*]}}"
echo "$passed passed, $failed failed"
(( failed == 0 ))
