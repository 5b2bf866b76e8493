-- tests/bench/common.lua — shared part of the wrk scripts of tests/bench/.
--
-- Loaded with `require "common"` (run.sh puts tests/bench/ on LUA_PATH).
-- Defines wrk's setup/init/response/done hooks; a scenario script only
-- defines request() (or nothing, for a fixed URL) and may set
-- bench.on_init to prepare per-thread state.
--
-- Environment (read in every wrk thread):
--   BENCH_TOKEN                  bearer token for /v1/ requests
--   BENCH_LEDGER_MIN/MAX         existing ledger (customer payment) id range
--   BENCH_CUST_MIN/MAX           existing customer id range
--   BENCH_SEED                   base of the per-thread random seeds (default 1)
--   BENCH_NONCE                  unique per run; makes Idempotency-Keys unique
--   BENCH_IDEMPOTENCY=1          POSTs carry a distinct Idempotency-Key
--
-- done() prints one line for run.sh to parse:
--   BENCH_RESULT {"requests":…,"duration_us":…,"bytes":…,"errors":{…},
--                 "non2xx":…,"statuses":{"200":…},"latency_us":{…}}
-- wrk's own summary counts only statuses > 399 ("Non-2xx or 3xx"), so every
-- status is counted here in response().

bench = {}

local function env_num(name, default)
    local v = os.getenv(name)
    if v == nil or v == "" then
        if default == nil then
            error(name .. " is not set")
        end
        return default
    end
    return tonumber(v)
end
bench.env_num = env_num

function bench.auth_headers(extra)
    local h = {}
    local tok = os.getenv("BENCH_TOKEN")
    if tok ~= nil and tok ~= "" then
        h["Authorization"] = "Bearer " .. tok
    end
    if extra then
        for k, v in pairs(extra) do h[k] = v end
    end
    return h
end

-- ---- wrk hooks ------------------------------------------------------------

local threads = {}
local nthreads = 0

function setup(thread)
    nthreads = nthreads + 1
    thread:set("tid", nthreads)
    table.insert(threads, thread)
end

function init(args)
    -- runs inside each thread's own Lua state; tid was set by setup()
    tid = tid or 1
    math.randomseed(env_num("BENCH_SEED", 1) * 1000 + tid)
    for _ = 1, 10 do math.random() end
    statuses = {}
    seq = 0
    bench.prepare()
    if bench.on_init then bench.on_init(args) end
end

function response(status, headers, body)
    statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
    local codes, non2xx = {}, 0
    for _, t in ipairs(threads) do
        local st = t:get("statuses")
        if type(st) == "table" then
            for code, n in pairs(st) do
                code = tonumber(code)
                codes[code] = (codes[code] or 0) + n
                if code < 200 or code > 299 then non2xx = non2xx + n end
            end
        end
    end
    local parts = {}
    for code, n in pairs(codes) do
        table.insert(parts, string.format('"%d":%d', code, n))
    end
    table.sort(parts)
    local e = summary.errors
    io.write(string.format(
        'BENCH_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,' ..
        '"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d,"status":%d},' ..
        '"non2xx":%d,"statuses":{%s},' ..
        '"latency_us":{"min":%d,"mean":%.1f,"stdev":%.1f,"p50":%d,"p90":%d,' ..
        '"p99":%d,"p999":%d,"max":%d}}\n',
        summary.requests, summary.duration, summary.bytes,
        e.connect, e.read, e.write, e.timeout, e.status,
        non2xx, table.concat(parts, ","),
        latency.min, latency.mean, latency.stdev,
        latency:percentile(50), latency:percentile(90),
        latency:percentile(99), latency:percentile(99.9), latency.max))
end

-- ---- request builders shared by the scenarios -------------------------------

local read_headers, post_headers
local ledger_min, ledger_max, cust_min, cust_max
local idem, nonce
local methods = {"DIRECT_DEBIT", "CREDIT_CARD", "BACS", "GO_CARDLESS",
                 "CHEQUE", "PAYPAL", "STRIPE_CARD"}

function bench.prepare()
    read_headers = bench.auth_headers()
    post_headers = bench.auth_headers({["Content-Type"] = "application/json"})
    ledger_min = env_num("BENCH_LEDGER_MIN", 1)
    ledger_max = env_num("BENCH_LEDGER_MAX", 1)
    cust_min = env_num("BENCH_CUST_MIN", 1)
    cust_max = env_num("BENCH_CUST_MAX", 1)
    idem = os.getenv("BENCH_IDEMPOTENCY") == "1"
    nonce = os.getenv("BENCH_NONCE") or tostring(os.time())
end

local function customer()
    return math.random(cust_min, cust_max)
end

-- scenario 1: GET /v1/customer-payments/{id}, random existing id
function bench.get_payment()
    return wrk.format("GET", "/v1/customer-payments/" ..
                      math.random(ledger_min, ledger_max), read_headers)
end

-- scenarios 2 and 3: the customer's statement, random customer
function bench.list_payments(query)
    return wrk.format("GET", "/v1/customer-payments?customer_id=" ..
                      customer() .. query, read_headers)
end

-- scenario 4: GET /v1/customer-balances?customer_id=…
function bench.balance()
    return wrk.format("GET", "/v1/customer-balances?customer_id=" .. customer(),
                      read_headers)
end

-- scenario 5: POST /v1/customer-payments, random customer of all of them
-- (uniform over ~10,000: concurrent payments rarely hit the same customer
-- row), random amount 1.00 .. 250.99 and payment method.
function bench.post_payment()
    seq = seq + 1
    local body = string.format(
        '{"customerId":%d,"amountInMajorCurrency":%d.%02d,"type":"%s",' ..
        '"description":"bench payment","reference":"bench-%s-%d-%d"}',
        customer(), math.random(1, 250), math.random(0, 99),
        methods[math.random(1, #methods)], nonce, tid, seq)
    local h = post_headers
    if idem then
        h = {}
        for k, v in pairs(post_headers) do h[k] = v end
        h["Idempotency-Key"] = string.format("bench-%s-%d-%d", nonce, tid, seq)
    end
    return wrk.format("POST", "/v1/customer-payments", h, body)
end

bench.Q_PAGE100 = "&page=1&pageSize=100"
bench.Q_PAGE1000_DESC = "&page=1&pageSize=1000&sort=paymentDate:desc"

return bench
