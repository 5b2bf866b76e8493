#!/usr/bin/env bash
# Generated data of a given size in a running tests/stack.sh stack (not part
# of ./pay-stack test; see README.md "Data sets of 1 M and 10 M rows").
#
#   tests/bench/data.sh STACKDIR --rows 1M|10M|N [--seed S]
#
# Adds `pay-api generate` data until the ledger holds at least N rows:
#   - a few large customers first: 3 customers with about 23,000 invoices
#     each (≈ 106,000 ledger rows and 84,000 invoice payment events each),
#     so a customer's own lists and balances have 100 k+ rows to go through;
#   - then the bulk in chunks of 20,000 customers and 200,000 invoices
#     (≈ 920,000 ledger rows; the generator is additive and each chunk gets
#     its own seed), the last chunk scaled to what is missing.
# The generator makes no refunds: then tests/bench/refunds.py refunds part
# of one paid NORMAL invoice in every 100 through the API (when the data set
# has none yet). Then ANALYZE TABLE on the big tables. Prints one line per
# step and the final sizes.
set -euo pipefail

die() { echo "data.sh: $*" >&2; exit 1; }
if [ $# -lt 3 ] || [ "$2" != "--rows" ]; then
    die "usage: $0 STACKDIR --rows 1M|10M|N [--seed S]"
fi
STACK=$1
case $3 in
    *M) TARGET=$(( ${3%M} * 1000000 )) ;;
    *k) TARGET=$(( ${3%k} * 1000 )) ;;
    *)  TARGET=$3 ;;
esac
SEED=1
[ "${4:-}" = "--seed" ] && SEED=$5
[ "$TARGET" -gt 0 ] 2>/dev/null || die "--rows must be a positive count (1M, 10M, 500k, 123456)"
[ -f "$STACK/env" ] || die "$STACK/env: not a running tests/stack.sh stack"
# shellcheck disable=SC1091
. "$STACK/env"

sql() { mariadb -N -B -S "$PAY_DB_SOCKET" -u root "$PAY_DB_NAME" -e "$1"; }
gen() {
    echo "data.sh: pay-api generate --customers $1 --invoices $2 --seed $3"
    "$PAY_BIN" --config "$PAY_CONFIG" generate --customers "$1" --invoices "$2" --seed "$3" \
        | tail -n 1
}

t=$SECONDS
rows=$(sql "SELECT COUNT(*) FROM ledger")
big=$(sql "SELECT COUNT(*) FROM (SELECT customer_id FROM ledger GROUP BY customer_id HAVING COUNT(*) >= 100000) b")
if [ "$big" -lt 3 ] && [ "$rows" -lt "$TARGET" ]; then
    gen 3 69000 "$SEED"
fi
n=1
while rows=$(sql "SELECT COUNT(*) FROM ledger") && [ "$rows" -lt "$TARGET" ]; do
    missing=$(( TARGET - rows ))
    if [ "$missing" -ge 920000 ]; then
        gen 20000 200000 $(( SEED + n ))
    else  # 4.6 ledger rows per invoice, 10 invoices per customer, + 2 %
        inv=$(( missing * 1020 / 4600 + 1 ))
        gen $(( inv / 10 + 1 )) "$inv" $(( SEED + n ))
    fi
    n=$(( n + 1 ))
done
if [ "$(sql "SELECT COUNT(*) FROM refunds")" -eq 0 ]; then
    echo "data.sh: refunds.py (a refund on one paid invoice in 100)"
    python3 "$(dirname "$0")/refunds.py" "$STACK" 100
fi
echo "data.sh: ANALYZE TABLE"
sql "ANALYZE TABLE ledger, invoices, invoice_payments, customers, refunds, owner_counts" >/dev/null
echo "data.sh: $(sql "SELECT COUNT(*) FROM ledger") ledger rows," \
     "$(sql "SELECT COUNT(*) FROM invoice_payments") invoice payments," \
     "$(sql "SELECT COUNT(*) FROM refunds") refunds," \
     "$(sql "SELECT COUNT(*) FROM customers") customers, largest customers (ledger rows):" \
     "$(sql "SELECT GROUP_CONCAT(n ORDER BY n DESC) FROM (SELECT COUNT(*) n FROM ledger GROUP BY customer_id ORDER BY n DESC LIMIT 3) t")," \
     "$((SECONDS - t)) s"
