-- Scenarios 2 and 3: GET /v1/customer-payments?customer_id=<random>&<BENCH_QUERY>
--   scenario 2: BENCH_QUERY='&page=1&pageSize=100'
--   scenario 3: BENCH_QUERY='&page=1&pageSize=1000&sort=paymentDate:desc'
require "common"

local query = os.getenv("BENCH_QUERY") or bench.Q_PAGE100

function request()
    return bench.list_payments(query)
end
