#!/usr/bin/env bash
# ops.shellcheck: every shell script of the repository passes shellcheck.
#
#   tests/ops/shellcheck.sh [REPO_DIR]      (default: this script's repository)
#
# The scripts are the tracked files named *.sh plus every tracked file whose
# first line is a sh/bash shebang (pay-stack, .ci/run, ...), so a new script
# is checked without being listed here. Without git (a source tarball), the
# same rules apply to the files find sees. shellcheck runs at its default
# severity (style included); a "# shellcheck disable=SCxxxx" in a script must
# say why.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "${1:-$here/../..}" && pwd)

fail() { echo "shellcheck.sh: FAIL: $*" >&2; exit 1; }
command -v shellcheck >/dev/null || fail "shellcheck is not installed (apt-get install shellcheck; it is in .ci/packages)"

candidates=()
if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    while IFS= read -r -d '' f; do
        candidates+=("$f")
    done < <(git -C "$root" ls-files -z)
else
    while IFS= read -r -d '' f; do
        candidates+=("${f#./}")
    done < <(cd "$root" && find . -type d \( -name .git -o -name 'build*' -o -name node_modules -o -name .run \) \
                 -prune -o -type f ! -name .git -print0)
fi

scripts=()
for f in "${candidates[@]}"; do
    [ -f "$root/$f" ] || continue  # deleted in the work tree, not yet committed
    case $f in
        *.sh) scripts+=("$f"); continue ;;
    esac
    first=
    IFS= read -r first < "$root/$f" 2>/dev/null || true
    case $first in
        '#!'*/sh|'#!'*/sh' '*|'#!'*/bash|'#!'*/bash' '*|'#!'*'env bash'|'#!'*'env bash '*|'#!'*'env sh'|'#!'*/dash)
            scripts+=("$f") ;;
    esac
done
[ ${#scripts[@]} -gt 0 ] || fail "no shell scripts found under $root"

echo "shellcheck $(shellcheck --version | sed -n 's/^version: //p') on ${#scripts[@]} scripts:"
printf '  %s\n' "${scripts[@]}"
cd "$root"
if ! shellcheck "${scripts[@]}"; then
    fail "shellcheck found problems (above)"
fi
echo "shellcheck.sh: all ${#scripts[@]} scripts are clean"
