-- Scenario 4: GET /v1/customer-balances?customer_id=<random existing customer>
require "common"

function request()
    return bench.balance()
end
