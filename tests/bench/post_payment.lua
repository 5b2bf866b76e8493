-- Scenario 5: POST /v1/customer-payments for a random customer with a random
-- amount: the server writes the PAYMENT ledger row and spreads the amount over
-- the customer's open invoices, in one durable transaction.
-- BENCH_IDEMPOTENCY=1 adds a distinct Idempotency-Key to every request.
require "common"

function request()
    return bench.post_payment()
end
