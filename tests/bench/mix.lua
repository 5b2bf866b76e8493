-- Scenario 6: read/write mix. BENCH_WRITE_PCT percent (default 10) are the
-- POST of scenario 5; the reads are scenarios 1-4 in equal shares.
require "common"

local write_pct = bench.env_num("BENCH_WRITE_PCT", 10)

function request()
    local x = math.random() * 100
    if x < write_pct then
        return bench.post_payment()
    end
    local k = math.random(1, 4)
    if k == 1 then
        return bench.get_payment()
    elseif k == 2 then
        return bench.list_payments(bench.Q_PAGE100)
    elseif k == 3 then
        return bench.list_payments(bench.Q_PAGE1000_DESC)
    end
    return bench.balance()
end
