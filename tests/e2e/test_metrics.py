"""GET /metrics: Prometheus text with request counts by route and status
class, a latency histogram, database errors and worker restarts."""
import re

from paytest import *


def scrape():
    r = get("/metrics")
    series = {}
    for line in r.raw.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, value = line.rsplit(" ", 1)
        series[name] = Decimal(value)
    return r, series


def test_format(s):
    r, series = scrape()
    s.status(r, 200, "metrics answer 200 without a token")
    s.check(r.header("Content-Type").startswith("text/plain; version=0.0.4"),
            "Prometheus content type", r.header("Content-Type"))
    s.check("payapi_db_errors_total" in series, "db error counter present")
    s.check("payapi_worker_restarts_total" in series, "worker restart counter present")
    for line in r.raw.splitlines():
        if not line.startswith("#"):
            s.check(re.match(r'^[a-z_]+(\{[^}]*\})? [0-9.]+$', line) is not None,
                    "well-formed sample line", line)


def test_counts_move(s):
    key = 'payapi_requests_total{method="GET",route="/v1/customer-balances",status="2xx"}'
    bad = 'payapi_requests_total{method="GET",route="/v1/customer-balances",status="4xx"}'
    _, before = scrape()
    tok = token()
    for _ in range(5):
        get("/v1/customer-balances?customer_id=1", tok)
    for _ in range(3):
        get("/v1/customer-balances", tok)
    _, after = scrape()
    s.eq(after.get(key, 0) - before.get(key, 0), 5, "five 2xx counted for the route")
    s.eq(after.get(bad, 0) - before.get(bad, 0), 3, "three 4xx counted for the route")
    cnt = 'payapi_request_duration_seconds_count{method="GET",route="/v1/customer-balances"}'
    inf = 'payapi_request_duration_seconds_bucket{method="GET",route="/v1/customer-balances",le="+Inf"}'
    s.eq(after.get(cnt, 0) - before.get(cnt, 0), 8, "histogram counts every request")
    s.eq(after.get(inf), after.get(cnt), "+Inf bucket equals the count")


Suite().run([test_format, test_counts_move])
