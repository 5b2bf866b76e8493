-- Scenario 1: GET /v1/customer-payments/{id} with random existing ids
-- (BENCH_LEDGER_MIN .. BENCH_LEDGER_MAX, read from the database by run.sh).
require "common"

function request()
    return bench.get_payment()
end
