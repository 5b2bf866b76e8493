"""Hosts race for the same row. Row locks are local to a node, so nothing
serialises the hosts but the cluster's certification:

  idempotency: the same request with the same Idempotency-Key sent at the
    same instant to each app host: exactly one of them moves the money; the
    others answer the stored response (replay), 409 IDEMPOTENCY_IN_PROGRESS
    or 503 (retry later), and every 2xx names the same payment;
  payment link: the Pay button of one /pay/{token} pressed at once on the
    three hosts: one attempt per link;
  collector: the engine (`pay-api attempts run`) on two hosts at once over
    those attempts: each attempt claimed and submitted once (one provider
    call per key), one payment (ledger row) per link;
  mandate flow: one /mandate/{token} submitted at once on the three hosts,
    each with other bank details: one mandate recorded, the flow's;
  read your writes: a write that reads what the caller wrote a moment
    before through another host (a refund of the payment just made) sees
    it (wsrep_sync_wait for writes too)."""
import json
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid

from clusterlib import *

TOK = token(owners="1,2,3")
ROUNDS = int(os.environ.get("PAY_CLUSTER_RACE_ROUNDS") or 30)
LINKS = int(os.environ.get("PAY_CLUSTER_RACE_LINKS") or 6)
CUSTOMER = 62     # no other cluster test touches it
LINK_CUSTOMER = 67  # owner 1; paid by payment links here only
SITE = 91         # customer 69, owner 1; its mandate flows here only
RYW_INVOICE = 185  # customer 62's; paid and refunded here only, before the races
RYW_ROUNDS = int(os.environ.get("PAY_CLUSTER_RYW_ROUNDS") or 120)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def page(method, url, fields=None, cookie=None):
    """(status, Location, body) of a browser-like request (no redirects
    followed): a form POST carries the csrf cookie and the public Origin."""
    data = urllib.parse.urlencode(fields).encode() if fields is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/x-www-form-urlencoded")
        req.add_header("Origin", BASE)
    if cookie:
        req.add_header("Cookie", "pay_csrf=" + cookie)
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(req, timeout=60) as r:
            return r.status, r.headers.get("Location"), r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Location"), e.read().decode("utf-8", "replace")


def csrf_of(body):
    m = re.search(r'<input type="hidden" name="csrf" value="([^"]*)">', body)
    return m.group(1) if m else ""


def on_all_hosts(path, fields_of, cookie):
    """POSTs the form to each host's own URL at the same instant; returns the
    (status, Location) answers in host order."""
    barrier = threading.Barrier(len(HOSTS))
    got = [None] * len(HOSTS)

    def one(i):
        barrier.wait()
        st, loc, _ = page("POST", HOSTS[i] + path, fields_of(i), cookie)
        got[i] = (st, loc)
    ts = [threading.Thread(target=one, args=(i,)) for i in range(len(HOSTS))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return got


def test_read_your_writes(s):
    """Pays 0.01 of one invoice through host A and at once refunds 0.01 of it
    through host B: the refund is allowed only if B's transaction sees the
    payment A committed (refunded never exceeds paid), so a node that has
    not applied A's write set yet would refuse it."""
    q = "SELECT paid, refunded FROM invoices WHERE id = %d" % RYW_INVOICE
    paid0, refunded0 = (int(v) for v in node_sql(1, q)[0])
    s.eq(paid0 - refunded0, 0, "invoice %d starts with nothing to refund" % RYW_INVOICE)
    wrong, paid_ok, refunded_ok = [], 0, 0
    for k in range(RYW_ROUNDS):
        a, b = HOSTS[k % len(HOSTS)], HOSTS[(k + 1) % len(HOSTS)]
        r = post(a + "/v1/invoice-payments", tok=TOK, raw=json.dumps({
            "generatedInvoiceId": RYW_INVOICE, "amountInMajorCurrency": 0.01,
            "paymentMethod": "CHEQUE", "description": "ryw-%d" % k}))
        if r.status != 201:
            wrong.append(("pay", k, r.status, r.raw[:200]))
            continue
        paid_ok += 1
        r = post(b + "/v1/refunds", tok=TOK, raw=json.dumps({
            "invoiceId": RYW_INVOICE, "billRunType": "NORMAL", "amountInMajorCurrency": 0.01,
            "paymentMethod": "CHEQUE", "description": "ryw-%d" % k}))
        if r.status != 201:
            wrong.append(("refund", k, r.status, r.raw[:200]))
        else:
            refunded_ok += 1
    s.eq(wrong[:3], [], "every refund through the next host sees the payment just made")
    paid, refunded = (int(v) for v in node_sql(1, q)[0])
    s.eq((paid - paid0, refunded - refunded0), (paid_ok, refunded_ok),
         "one cent per payment and per refund answered 201")


def test_idempotency_race(s):
    run = uuid.uuid4().hex[:8]
    before = int(node_sql(1, "SELECT balance FROM customers WHERE id = %d" % CUSTOMER)[0][0])
    results, wrong = {}, []
    for k in range(ROUNDS):
        key = "race-%s-%d" % (run, k)
        body = json.dumps({"customerId": CUSTOMER, "amountInMajorCurrency": 1,
                           "type": "BACS", "description": key})
        barrier = threading.Barrier(3)
        got = []

        def one(url):
            barrier.wait()
            r = post(url + "/v1/customer-payments", raw=body, tok=TOK,
                     headers={"Idempotency-Key": key})
            got.append((r.status, (r.json or {}).get("id") if r.status == 200 else
                        (r.json or {}).get("code")))
        ts = [threading.Thread(target=one, args=(h,)) for h in HOSTS]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        results[key] = got
        ids = {v for st, v in got if st == 200}
        if len(ids) > 1 or any(st not in (200, 409, 503) for st, _ in got) or any(
                st == 409 and v != "IDEMPOTENCY_IN_PROGRESS" for st, v in got):
            wrong.append((key, got))
    s.eq(wrong[:3], [], "every racing response is 200 with one payment id, 409 in progress or 503")
    firsts = sum(1 for got in results.values() if any(st == 200 for st, _ in got))
    print("idempotency race: %d rounds, %d with a 2xx; answers %s" % (
        ROUNDS, firsts, sorted({st for got in results.values() for st, _ in got})))
    # Whatever the answers, a key's payment exists at most once; a key
    # answered 2xx has exactly one.
    rows = {r[0]: int(r[1]) for r in node_sql(1, "SELECT description, COUNT(*) FROM ledger"
                                              " WHERE description LIKE 'race-%s-%%'"
                                              " GROUP BY description" % run)}
    twice = [k for k, v in rows.items() if v != 1]
    s.eq(twice, [], "no key moved money twice")
    missing = [k for k, got in results.items() if any(st == 200 for st, _ in got)
               and rows.get(k) != 1]
    s.eq(missing, [], "every key answered 2xx has its one payment")
    after = int(node_sql(1, "SELECT balance FROM customers WHERE id = %d" % CUSTOMER)[0][0])
    s.eq(after - before, 100 * len(rows), "the balance moved by exactly one payment per key")
    s.check(firsts >= ROUNDS // 2, "most rounds got a payment through", firsts)


def test_payment_link_and_collector_race(s):
    bal0 = int(node_sql(1, "SELECT balance FROM customers WHERE id = %d" % LINK_CUSTOMER)[0][0])
    rows0 = int(node_sql(1, "SELECT COUNT(*) FROM ledger WHERE customer_id = %d"
                         % LINK_CUSTOMER)[0][0])
    links, wrong, total = [], [], 0
    for k in range(LINKS):
        minor = 101 + 2 * k   # no sandbox test amount (ends in 13, 29, 41, 55, 66)
        r = post("/v1/payment-provider-payment-link", tok=TOK, raw=(
            '{"paymentProviderId": 1, "customerId": %d, "description": "race-link",'
            ' "amountInMajorCurrency": %d.%02d}' % (LINK_CUSTOMER, minor // 100, minor % 100)))
        if not s.status(r, 201, "create payment link %d" % k):
            return
        url = r.json["paymentLink"]
        path = urllib.parse.urlsplit(url).path
        st, _, body = page("GET", HOSTS[k % 3] + path)
        csrf = csrf_of(body)
        s.check(st == 200 and csrf, "link %d: its page with a csrf field" % k, st)
        got = on_all_hosts(path, lambda i: {"csrf": csrf}, csrf)
        if any(g != (303, path) for g in got):
            wrong.append((k, got))
        links.append(r.json["id"])
        total += minor
    s.eq(wrong, [], "Pay pressed on the three hosts at once: 303 to the link's page from each")
    ids = ",".join(str(i) for i in links)
    per_link = {int(r[0]): int(r[1]) for r in node_sql(
        1, "SELECT payment_link_id, COUNT(*) FROM attempts WHERE payment_link_id IN (%s)"
           " GROUP BY payment_link_id" % ids)}
    s.eq(per_link, {i: 1 for i in links}, "one attempt per link")
    # The engine on two hosts at once, over the same due attempts.
    procs = [subprocess.Popen(
        ["ip", "netns", "exec", "pcl-h%d" % n, ENV["PAY_BIN"], "--config",
         os.path.join(DIR, "h%d" % n, "pay-api.conf"), "attempts", "run", "--until-idle", "20",
         "--customers", str(LINK_CUSTOMER)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True) for n in (1, 2)]
    handled = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        s.eq(p.returncode, 0, "attempts run on a host: exit 0 (%s)" % err[-300:])
        handled.append(int(out.strip() or 0))
    print("payment links: %d, attempts handled by the two collectors: %s" % (LINKS, handled))
    calls = node_sql(1, "SELECT a.payment_link_id, c.calls FROM attempts a JOIN sandbox_calls c"
                        " ON c.idempotency_key = a.idempotency_key AND c.kind = 'PAY'"
                        " WHERE a.payment_link_id IN (%s)" % ids)
    s.eq(sorted((int(a), int(c)) for a, c in calls), [(i, 1) for i in sorted(links)],
         "each attempt submitted to the provider once (one call with its key)")
    done = node_sql(1, "SELECT COUNT(*) FROM attempts WHERE payment_link_id IN (%s)"
                       " AND status IN ('CONFIRMED', 'PAID_OUT')" % ids)[0][0]
    s.eq(int(done), LINKS, "every attempt confirmed or paid out")
    rows = int(node_sql(1, "SELECT COUNT(*) FROM ledger WHERE customer_id = %d"
                        % LINK_CUSTOMER)[0][0])
    bal = int(node_sql(1, "SELECT balance FROM customers WHERE id = %d" % LINK_CUSTOMER)[0][0])
    s.eq((rows - rows0, bal - bal0), (LINKS, total), "one payment per link: ledger rows, balance")


def test_mandate_flow_race(s):
    run = uuid.uuid4().hex[:8]
    r = post("/v1/site-payment-mandates", tok=TOK, raw=json.dumps({
        "siteId": SITE, "returnURL": "https://shop.example/mandate/return"}))
    if not s.status(r, 201, "create a site payment mandate flow"):
        return
    url = r.json["redirectURL"]
    path = urllib.parse.urlsplit(url).path
    st, _, body = page("GET", HOSTS[0] + path)
    csrf = csrf_of(body)
    s.check(st == 200 and csrf, "the mandate page with a csrf field", st)
    names = ["Race %s %s" % (run, h) for h in "ABC"]
    got = on_all_hosts(path, lambda i: {"accountHolderName": names[i], "sortCode": "12-34-56",
                                        "accountNumber": "1234567%d" % i, "csrf": csrf}, csrf)
    print("mandate flow race: %s" % got)
    s.check(sum(1 for g in got if g == (303, "https://shop.example/mandate/return")) >= 1 and
            all(g[0] in (303, 410, 503) for g in got),
            "one submission completes the flow (303 to the returnURL); the others 303, 410 or"
            " 503", got)
    recorded = node_sql(1, "SELECT mandate_reference FROM provider_mandates"
                           " WHERE account_holder_name LIKE 'Race %s %%'" % run)
    s.eq(len(recorded), 1, "one mandate recorded for the flow")
    ref = node_sql(1, "SELECT mandate_reference FROM site_payment_mandates WHERE id = %d"
                   % r.json["id"])[0][0]
    s.eq([x[0] for x in recorded], [ref], "the flow names that mandate")
    checksums_equal(s, "after the races")


Suite().run([test_read_your_writes, test_idempotency_race, test_payment_link_and_collector_race, test_mandate_flow_race])
