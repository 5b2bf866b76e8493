"""Attacks on the webhook endpoint of an integrated provider, one table for
both signature schemes:

  python3 tests/providers/webhook_attacks.py gocardless   (PAY_STACK_ENV of
      tests/providers/gocardless/stack.sh: /webhooks/1, Webhook-Signature =
      hex HMAC-SHA256(secret, raw body), batches of events)
  python3 tests/providers/webhook_attacks.py stripe       (PAY_STACK_ENV of
      tests/providers/stripe/stack.sh: /webhooks/4, Stripe-Signature:
      t=<unix s>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>[,v1=...],
      300 s tolerance, one event per delivery)

A scheme (GoCardless / Stripe below) only knows how to sign and how to spell
an event; every attack is written once in CASES and run against both.
Each case checks its answer (a 4xx JSON error, or the 2xx the code documents
for an event acknowledged and ignored), that nothing changed (ledger rows and
sum, attempt and invoice statuses, provider mandate statuses; for refused
deliveries also the stored events), that the workers are the same processes
and still answer, and that what reached the app log is escaped.

Data: the provider mandates this file needs are made here with SQL (an own
mandate per apply test, CREATED; one of another provider and contract owner)
under references carrying a run id, so the file passes when run again on the
same stack. No customer, invoice or attempt is written.
"""
import hashlib
import hmac
import json
import os
import re
import socket
import sys
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
from paytest import *  # noqa: E402,F403

RUN = uuid.uuid4().hex[:10]
BIG_LIMIT = 1024 * 1024  # the webhook route's body limit (nginx, Apache, app)
LOG = os.path.join(ENV["PAY_STACK_DIR"], "logs", "pay-api.log")


def hmac_hex(secret, data):
    return hmac.new(secret.encode(), data, hashlib.sha256).hexdigest()


class GoCardless:
    name, provider, header, method = "gocardless", 1, "Webhook-Signature", "GO_CARDLESS"
    secret = ENV.get("GC_WEBHOOK_SECRET", "")
    has_timestamp = False

    def sign(self, body, secret=None, t=None):
        return hmac_hex(secret or self.secret, body)

    def resign(self, sig, body):
        """sig's scheme parts kept, its MAC replaced by that of body."""
        return self.sign(body)

    def mac_of(self, sig):
        return sig

    def with_mac(self, sig, mac):
        return mac

    @staticmethod
    def mandate_event(evid, ref, pad=None):
        e = {"id": evid, "created_at": "2026-01-01T00:00:00.000Z", "resource_type": "mandates",
             "action": "submitted", "links": {"mandate": ref}}
        if pad:
            e["details"] = {"description": pad}
        return e

    def mandate_body(self, evid, ref, pad_to=0):
        events = [self.mandate_event(evid, ref)]
        # A batch: the event that matters and payout events (nothing of ours
        # moves) with long descriptions, to at least pad_to bytes.
        pad = lambda i: {"id": "%sP%04d" % (evid, i), "resource_type": "payouts",
                         "action": "paid", "links": {"payout": "PO%04d" % i},
                         "details": {"description": "p" * 1500}}
        if pad_to:
            n = pad_to // len(json.dumps(pad(1))) + 1
            events += [pad(i) for i in range(1, n + 1)]
        return json.dumps({"events": events, "meta": {"webhook_id": "WB" + evid}}).encode()

    def payment_body(self, evid, ref):
        return json.dumps({"events": [{"id": evid, "resource_type": "payments",
                                       "action": "confirmed", "links": {"payment": ref}}]}).encode()

    def typed_bodies(self, evid, ref):
        ev = self.mandate_event(evid, ref)
        return [("events is a string", {"events": "x"}, 400),
                ("events is an object", {"events": {"0": ev}}, 400),
                ("the event is a string", {"events": ["x"]}, 400),
                ("id is a number", {"events": [dict(ev, id=5)]}, 400),
                ("links.mandate is a number", {"events": [dict(ev, links={"mandate": 7})]}, 400),
                ("id of 129 characters", {"events": [dict(ev, id="E" * 129)]}, 400),
                ("the body is an array", [ev], 400)]

    def huge_number_body(self, evid, ref):
        return ('{"events":[{"id":1%s,"resource_type":"mandates","action":"submitted",'
                '"links":{"mandate":"%s"}}]}' % ("0" * 400, ref)).encode()

    def unknown_type_body(self, evid, ref):
        return json.dumps({"events": [{"id": evid, "resource_type": "unicorns", "action": "submitted",
                                       "links": {"mandate": ref}},
                                      {"id": evid + "b", "resource_type": "mandates",
                                       "action": "teleported", "links": {"mandate": ref}}]}).encode()

    def header_cases(self, body, good):
        return []


class Stripe:
    name, provider, header, method = "stripe", 4, "Stripe-Signature", "STRIPE_DD"
    has_timestamp = True

    def __init__(self):
        path = os.path.join(os.path.dirname(ENV["PAY_STACK_DIR"]), "stripe.credentials")
        creds = dict(l.split(" = ", 1) for l in open(path).read().splitlines() if " = " in l)
        self.secret = creds["webhook_secret"].strip()

    def sign(self, body, secret=None, t=None):
        t = int(time.time()) if t is None else t
        return "t=%d,v1=%s" % (t, hmac_hex(secret or self.secret, b"%d." % t + body))

    def resign(self, sig, body):
        t = int(sig.split(",")[0][2:])
        return self.sign(body, t=t)

    def mac_of(self, sig):
        return sig.split("v1=")[1]

    def with_mac(self, sig, mac):
        return sig.split("v1=")[0] + "v1=" + mac

    @staticmethod
    def event(evid, typ, obj, live=False):
        return {"id": evid, "object": "event", "api_version": "2024-06-20", "created": 1700000000,
                "livemode": live, "type": typ, "data": {"object": obj}}

    def mandate_body(self, evid, ref, pad_to=0, live=False):
        obj = {"id": ref, "object": "mandate", "status": "pending", "type": "multi_use",
               "payment_method_details": {"type": "bacs_debit",
                                          "bacs_debit": {"network_status": "pending"}}}
        if pad_to:  # many metadata values of 480 characters
            obj["metadata"] = {"k%04d" % i: "m" * 480 for i in range(pad_to // 480 + 1)}
        return json.dumps(self.event(evid, "mandate.updated", obj, live)).encode()

    def payment_body(self, evid, ref):
        return json.dumps(self.event(evid, "checkout.session.async_payment_succeeded",
                                     {"id": ref, "object": "checkout.session", "mode": "payment",
                                      "status": "complete", "payment_status": "paid"})).encode()

    def typed_bodies(self, evid, ref):
        ev = json.loads(self.mandate_body(evid, ref))
        # An event whose object has no string id names nothing: acknowledged
        # as informational (200), like any event type that moves nothing.
        return [("id is a number", dict(ev, id=5), 400),
                ("type is a number", dict(ev, type=1), 400),
                ("data is an array", dict(ev, data=[]), 400),
                ("data.object is a string", dict(ev, data={"object": ref}), 400),
                ("data.object.id is a number",
                 dict(ev, data={"object": dict(ev["data"]["object"], id=9)}), 200),
                ("id of 129 characters", dict(ev, id="e" * 129), 400),
                ("the body is an array", [ev], 400)]

    def huge_number_body(self, evid, ref):
        return ('{"id":1%s,"object":"event","livemode":false,"type":"mandate.updated",'
                '"data":{"object":{"id":"%s","status":"pending"}}}' % ("0" * 400, ref)).encode()

    def unknown_type_body(self, evid, ref):
        return json.dumps(self.event(evid, "unicorn.teleported",
                                     {"id": ref, "status": "pending"})).encode()

    def header_cases(self, body, good):
        """Stripe-only: its timestamp and its list of signatures."""
        now, mac = int(time.time()), self.mac_of(good)
        t = int(good.split(",")[0][2:])
        return [
            ("stale timestamp (301 s old, correctly signed)", self.sign(body, t=now - 301), 403),
            ("stale timestamp (1 day old)", self.sign(body, t=now - 86400), 403),
            ("timestamp 310 s in the future", self.sign(body, t=now + 310), 403),
            ("timestamp 1 day in the future", self.sign(body, t=now + 86400), 403),
            ("timestamp 0", self.sign(body, t=0), 403),
            ("duplicated t= (good one first)", "%s,t=%d" % (good, now - 3600), 403),
            ("duplicated t= (good one last)", "t=%d,%s" % (now - 3600, good), 403),
            ("negative t=", "t=-%d,v1=%s" % (t, mac), 403),
            ("t= with 13 digits", "t=%013d,v1=%s" % (t, mac), 403),
            ("no t=", "v1=%s" % mac, 403),
            ("no v1= (v0 only)", "t=%d,v0=%s" % (t, mac), 403),
            ("100 wrong v1= entries", "t=%d,%s" % (t, ",".join(["v1=" + "0" * 64] * 100)), 403),
            ("300 wrong v1= entries (over nginx's header buffer)",
             "t=%d,%s" % (t, ",".join(["v1=" + "0" * 64] * 300)), {400, 403}),
            ("the good v1= after 100 wrong ones",
             "t=%d,%s,v1=%s" % (t, ",".join(["v1=" + "a" * 64] * 100), mac), 403),
            ("the good v1= after 20 wrong ones",
             "t=%d,%s,v1=%s" % (t, ",".join(["v1=" + "a" * 64] * 20), mac), 403),
            ("v1 of another t", "t=%d,v1=%s" % (t - 1, mac), 403),
        ]


SCHEMES = {"gocardless": GoCardless, "stripe": Stripe}

# ---------------------------------------------------------------------------
# State: what no refused or ignored delivery may change.


_LAST = {}  # the snapshot one() took after its case, while nothing else wrote since


def snapshot():
    _LAST.clear()
    row = sql(
        "SELECT (SELECT COUNT(*) FROM ledger), (SELECT COALESCE(SUM(amount), 0) FROM ledger),"
        " (SELECT COUNT(*) FROM attempts),"
        " (SELECT COALESCE(MD5(GROUP_CONCAT(id, ':', status ORDER BY id)), '-') FROM attempts),"
        " (SELECT COALESCE(MD5(GROUP_CONCAT(kind, ':', id, ':', paid, ':', payment_status"
        "   ORDER BY kind, id)), '-') FROM invoices),"
        " (SELECT COALESCE(MD5(GROUP_CONCAT(payment_method, ':', mandate_reference, ':', status"
        "   ORDER BY payment_method, mandate_reference)), '-') FROM provider_mandates),"
        " (SELECT COUNT(*) FROM provider_events)")[0]
    keys = ("ledger_rows", "ledger_sum", "attempts", "attempt_statuses", "invoices", "mandates",
            "events")
    return dict(zip(keys, row))


def workers():
    """The pay-api master and its workers (pids), from run/pay-api.pid."""
    with open(os.path.join(ENV["PAY_STACK_DIR"], "run", "pay-api.pid")) as f:
        master = int(f.read().split()[0])
    kids = set()
    for task in os.listdir("/proc/%d/task" % master):
        with open("/proc/%d/task/%s/children" % (master, task)) as f:
            kids |= {int(p) for p in f.read().split()}
    return master, frozenset(kids)


def log_size():
    return os.path.getsize(LOG)


def log_since(offset):
    with open(LOG, "rb") as f:
        f.seek(offset)
        return f.read()


LOG_LINE = re.compile(rb"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z [a-z]+ pay-api\[\d+\] ")


def check_log(s, chunk, what):
    """Everything the app logged is one line per record, printable ASCII."""
    bad = [c for c in (b"\x1b", b"\x00", b"\r", b"\x7f") if c in chunk]
    s.check(not bad, "%s: no raw control byte in the log" % what, bad)
    lines = [l for l in chunk.split(b"\n") if l]
    s.check(all(LOG_LINE.match(l) for l in lines), "%s: every log line is a log record" % what,
            [l[:120] for l in lines if not LOG_LINE.match(l)][:3])


def wait_quiet(s):
    """The stack's own activity (a collector finishing earlier tests' work)
    settled: two snapshots a second apart agree (generous deadline)."""
    end, last = time.time() + 120, None
    while time.time() < end:
        now = snapshot()
        if now == last:
            return True
        last = now
        time.sleep(1)
    return s.check(False, "the stack settles before the attacks")


# ---------------------------------------------------------------------------
# Requests


def deliver(sc, body, sig=None, headers=None, content_type="application/json"):
    _LAST.clear()
    h = {}
    if sig is not None:
        h[sc.header] = sig
    h.update(headers or {})
    return request("POST", "/webhooks/%d" % sc.provider, raw=body, headers=h,
                   content_type=content_type)


def deliver_raw(sc, body, header_bytes, length=None):
    """A hand-made request (bytes urllib refuses to send): (status, head, body)."""
    _LAST.clear()
    u = urllib.parse.urlsplit(BASE)
    head = (b"POST /webhooks/%d HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n"
            % (sc.provider, u.netloc.encode(), len(body) if length is None else length))
    sock = connect()
    try:
        sock.sendall(head + header_bytes + b"\r\n" + body)
        data, want = b"", None
        while want is None or len(data) < want:
            part = sock.recv(65536)
            if not part:
                break
            data += part
            if want is None and b"\r\n\r\n" in data:
                head = data.split(b"\r\n\r\n", 1)[0]
                m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
                if m:  # complete once the body is in (no wait for the close)
                    want = len(head) + 4 + int(m.group(1))
    finally:
        sock.close()
    head, _, rest = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1]) if head.startswith(b"HTTP/") else 0
    return status, head, rest


def make_mandate(sc, tag, provider=None, owner=1, method=None):
    _LAST.clear()
    ref = ("MD" if sc.name == "gocardless" else "mandate_") + "ATK%s%s" % (RUN, tag)
    sql("INSERT INTO provider_mandates (payment_method, mandate_reference, contract_owner_id,"
        " provider_id, status, account_holder_name, sort_code, account_number_last4) VALUES"
        " ('%s', '%s', %d, %d, 'CREATED', 'Webhook attack %s', '200000', '0000')"
        % (method or sc.method, ref, owner, provider or sc.provider, RUN))
    return ref


def mandate_status(ref):
    return sql_one("SELECT status FROM provider_mandates WHERE mandate_reference = '%s'" % ref)


def event_count(sc, evid):
    return int(sql_one("SELECT COUNT(*) FROM provider_events WHERE provider_id = %d"
                       " AND event_id LIKE '%s%%'" % (sc.provider, evid)))


# ---------------------------------------------------------------------------
# The attacks


def one(s, sc, what, send, want, stored=None):
    """Runs send() (-> Resp or (status, ...)); checks the answer and that
    nothing changed. want: a status, or a set of acceptable 4xx. stored: how
    many provider events the delivery may store (None: any, as an
    acknowledged delivery stores its events; 0 for a refused one)."""
    before, pids, off = _LAST.get("snap") or snapshot(), workers(), log_size()
    r = send()
    status = r.status if isinstance(r, Resp) else r[0]
    wants = want if isinstance(want, (set, tuple)) else {want}
    ok = s.check(status in wants, "%s: %s" % (what, "/".join(map(str, sorted(wants)))),
                 r if isinstance(r, Resp) else r[:2])
    if ok and isinstance(r, Resp):
        s.check(r.json is not None and r.header("Content-Type") == "application/json; charset=utf-8",
                "%s: a JSON answer" % what, r.raw[:200])
        if status >= 400 and r.json is not None:
            s.check(r.json.get("status") == status and r.json.get("code") and r.json.get("requestId"),
                    "%s: the API's error shape" % what, r.raw[:200])
    after = snapshot()
    if stored is not None or status >= 400:
        s.eq(after, before, "%s: nothing changed or stored" % what)
    else:
        keep = lambda d: {k: v for k, v in d.items() if k != "events"}
        s.eq(keep(after), keep(before), "%s: nothing changed" % what)
    _LAST["snap"] = after
    s.eq(workers(), pids, "%s: the same workers still run" % what)
    s.eq(get("/healthz").status, 200, "%s: the service answers" % what)
    check_log(s, log_since(off), what)
    return r


def test_signature_headers(s, sc):
    ref = make_mandate(sc, "sig")
    body = sc.mandate_body("EVsig" + RUN, ref)
    good = sc.sign(body)
    mac = sc.mac_of(good)
    flip = lambda m: m[:-1] + ("0" if m[-1] != "0" else "1")
    other = sc.mandate_body("EVsig" + RUN, ref + "x")
    changed = bytearray(body)
    changed[len(changed) // 2] ^= 0x01
    cases = [
        ("no signature header", body, None, 403),
        ("an empty signature header", body, "", 403),
        ("a malformed signature header", body, "signature please", 403),
        ("a non-hex signature", body, sc.with_mac(good, "zz" * 32), 403),
        ("a signature of 63 hex digits", body, sc.with_mac(good, mac[:-1]), 403),
        ("a signature of 65 hex digits", body, sc.with_mac(good, mac + "0"), 403),
        ("the last hex digit changed", body, sc.with_mac(good, flip(mac)), 403),
        ("an oversized signature header (7000 bytes)", body, sc.with_mac(good, mac * 109), 403),
        ("a signature header over nginx's 8 KiB buffer", body, "a" * 9000, {400, 403}),
        ("the signature of a different body", body, sc.sign(other), 403),
        ("one byte of the body changed", bytes(changed), good, 403),
        ("a byte appended to the body", body + b" ", good, 403),
        ("a correct signature with the wrong secret", body, sc.sign(body, secret="wrong" * 8), 403),
        ("a correct signature with the secret's first half", body,
         sc.sign(body, secret=sc.secret[:len(sc.secret) // 2]), 403),
    ] + [(w, body, h, st) for w, h, st in sc.header_cases(body, good)]
    for what, b, sig, want in cases:
        one(s, sc, what, lambda: deliver(sc, b, sig), want, stored=0)
    s.eq(mandate_status(ref), "CREATED", "no refused delivery moved the mandate")
    s.eq(event_count(sc, "EVsig" + RUN), 0, "no refused delivery stored an event")
    one(s, sc, "the genuine delivery as text/plain", lambda: deliver(sc, body, good,
                                                                      content_type="text/plain"),
        415, stored=0)
    # Header bytes urllib will not send: the front refuses them, or the app
    # sees a header that does not verify.
    for what, hdr in [("NUL in the signature header", b"%s: %s\x00x\r\n"),
                      ("a bare CR in the signature header", b"%s: %s\rX-Injected: 1\r\n"),
                      ("an obs-fold continuation", b"%s: %s\r\n x\r\n"),
                      ("ANSI escape in the signature header", b"%s: \x1b[2J%s\r\n")]:
        line = hdr % (sc.header.encode(), good.encode())
        one(s, sc, what, lambda: deliver_raw(sc, body, line), {400, 403}, stored=0)
    s.eq(mandate_status(ref), "CREATED", "still CREATED after the header attacks")


def test_replay(s, sc):
    ref = make_mandate(sc, "rep")
    evid = "EVrep" + RUN
    body = sc.mandate_body(evid, ref)
    sig = sc.sign(body)
    before = snapshot()
    r = deliver(sc, body, sig)
    if s.status(r, 200, "a valid delivery: 200"):
        s.eq((r.json.get("received"), r.json.get("duplicates")), (1, 0), "a valid delivery: applied")
    s.eq(mandate_status(ref), "SUBMITTED", "a valid delivery moved the mandate")
    s.eq(event_count(sc, evid), 1, "a valid delivery: its event stored")
    mid = snapshot()
    s.eq({k: mid[k] for k in ("ledger_rows", "ledger_sum", "attempt_statuses", "invoices")},
         {k: before[k] for k in ("ledger_rows", "ledger_sum", "attempt_statuses", "invoices")},
         "a mandate event moves no money")
    for n in range(2):
        r = one(s, sc, "replay %d of the valid delivery" % (n + 1), lambda: deliver(sc, body, sig),
                200, stored=0)
        if r.status == 200:
            s.eq((r.json.get("received"), r.json.get("duplicates")), (0, 1),
                 "replay %d: acknowledged as a duplicate" % (n + 1))
    s.eq(event_count(sc, evid), 1, "the event stored once")


def test_signed_bodies(s, sc):
    """Validly signed bodies that are not what they should be."""
    own = make_mandate(sc, "bod")
    other_owner = sql_one("SELECT id FROM payment_providers WHERE id <> %d ORDER BY id LIMIT 1"
                          % sc.provider)
    foreign = make_mandate(sc, "for", provider=int(other_owner or 999999), owner=2)
    evid = "EVbod" + RUN
    deep = b'{"events":' + b"[" * 5000 + b"]" * 5000 + b"}"
    cases = [("malformed JSON", b'{"events": [', 400, 0),
             ("an empty body", b"", 400, 0),
             ("not JSON at all", b"\x00\xff\xfe<xml/>", 400, 0),
             ("JSON with a trailing garbage", sc.mandate_body(evid + "g", own) + b"}", 400, 0),
             ("nested 5000 deep", deep, 400, 0),
             ("a huge number as the event id", sc.huge_number_body(evid + "n", own), {400}, 0),
             ("invalid UTF-8 in a string", sc.mandate_body(evid + "u", own).replace(
                 b"ATK", b"\xc3\x28ATK", 1), 400, 0)]
    cases += [("wrong types: " + w, json.dumps(b).encode(), st, 0 if st >= 400 else None)
              for w, b, st in sc.typed_bodies(evid + "t", own)]
    for what, body, want, stored in cases:
        one(s, sc, "signed, " + what, lambda: deliver(sc, body, sc.sign(body)), want, stored)
    s.eq(mandate_status(own), "CREATED", "no malformed delivery moved the mandate")

    # Acknowledged and ignored (200): unknown types, another provider's or
    # owner's mandate, an unknown payment, Stripe's other mode.
    body = sc.unknown_type_body(evid + "x", own)
    r = one(s, sc, "signed, unknown event types", lambda: deliver(sc, body, sc.sign(body)), 200)
    if r.status == 200:
        s.eq(r.json.get("received"), 0, "unknown event types: nothing received")
    body = sc.mandate_body(evid + "f", foreign)
    r = one(s, sc, "signed, another provider's and owner's mandate",
            lambda: deliver(sc, body, sc.sign(body)), 200)
    if r.status == 200:
        s.eq((r.json.get("received"), r.json.get("unknownReferences")), (0, 1),
             "another provider's mandate: an unknown reference here")
    s.eq(mandate_status(foreign), "CREATED", "another provider's mandate did not move")
    body = sc.payment_body(evid + "p", "PMNOSUCH" + RUN)
    r = one(s, sc, "signed, an unknown payment", lambda: deliver(sc, body, sc.sign(body)), 200)
    if r.status == 200:
        s.eq((r.json.get("received"), r.json.get("unknownReferences")), (0, 1),
             "an unknown payment: an unknown reference here")
    if sc.name == "stripe":
        body = sc.mandate_body(evid + "live", own, live=True)
        r = one(s, sc, "signed, an event of live mode on a test stack",
                lambda: deliver(sc, body, sc.sign(body)), 200)
        s.eq(mandate_status(own), "CREATED", "the other mode's event moved nothing")


def test_log_injection(s, sc):
    """Ids with CR/LF, NUL and ANSI escapes reach the log escaped."""
    evil = "EVinj%s\r\n2026-01-01T00:00:00.000Z info pay-api[1] forged: \x1b[31mred\x07" % RUN
    refs = ["PMinj%s\r\nX-Injected: 1\x1b[2J" % RUN, "PMinj%s\u2028\u0085\x7f" % RUN]
    body = sc.payment_body(evil + "\x00", refs[0])
    one(s, sc, "NUL in an event id", lambda: deliver(sc, body, sc.sign(body)), 400, stored=0)
    # ASCII control characters: acknowledged (an unknown reference), the id
    # logged escaped. Non-ASCII (U+2028, U+0085): refused, nothing stored.
    for i, (ref, want) in enumerate([(refs[0], 200), (refs[1], 400)]):
        body = sc.payment_body(evil + str(i), ref)
        off = log_size()
        r = one(s, sc, "control characters in ids (%d)" % i, lambda: deliver(sc, body, sc.sign(body)),
                want, stored=None if want == 200 else 0)
        s.check(all(k.lower() != "x-injected" for k in r.headers.keys()),
                "control characters in ids (%d): no injected response header" % i)
        if r.status == 200:
            chunk = log_since(off)
            s.check(b"EVinj" + RUN.encode() in chunk and b"\\x0d\\x0a" in chunk
                    and b"\\x1b[31m" in chunk,
                    "control characters in ids (%d): the id logged, escaped" % i, chunk[-300:])
    if sc.name == "stripe":
        body = sc.mandate_body(evil + "L", "mandate_x", live=True)
        off = log_size()
        one(s, sc, "control characters in a live-mode event's id",
            lambda: deliver(sc, body, sc.sign(body)), 200)
        s.check(b"\\x1b[31m" in log_since(off), "the live-mode warning logs the id escaped")


def test_big_bodies(s, sc):
    ref = make_mandate(sc, "big")
    body = sc.mandate_body("EVbig" + RUN, ref, pad_to=200 * 1024)
    s.check(200 * 1024 <= len(body) < BIG_LIMIT, "a delivery of about 200 KiB", len(body))
    r = deliver(sc, body, sc.sign(body))
    if s.status(r, 200, "a validly signed delivery of %d bytes: 200" % len(body)):
        s.eq(r.json.get("received"), 1, "the big delivery: its mandate event applied")
    s.eq(mandate_status(ref), "SUBMITTED", "the big delivery moved the mandate")
    ref2 = make_mandate(sc, "huge")
    huge = sc.mandate_body("EVhuge" + RUN, ref2, pad_to=BIG_LIMIT + 1)
    r = one(s, sc, "a validly signed delivery over 1 MiB (%d bytes)" % len(huge),
            lambda: deliver(sc, huge, sc.sign(huge)), 413, stored=0)
    if r.status == 413 and r.json is not None:
        s.eq((r.json.get("code"), r.json.get("message")), ("BODY_TOO_LARGE", "Request body exceeds 1 MiB"),
             "over 1 MiB: BODY_TOO_LARGE naming the limit")
    s.eq(mandate_status(ref2), "CREATED", "the refused big delivery moved nothing")
    # A Content-Length over the limit: refused before a byte of the body is read.
    r = one(s, sc, "a Content-Length of 2 MiB announced",
            lambda: deliver_raw(sc, b"", b"", length=2 * BIG_LIMIT), 413, stored=0)
    s.check(b"BODY_TOO_LARGE" in r[2], "a Content-Length of 2 MiB: the JSON error", r[2][:200])

def main():
    name = sys.argv[1] if len(sys.argv) > 1 else ""
    if name not in SCHEMES:
        print("usage: webhook_attacks.py gocardless|stripe")
        sys.exit(2)
    sc = SCHEMES[name]()
    s = Suite()
    if not s.check(sc.secret, "the stack's webhook secret is known"):
        sys.exit(1)
    wait_quiet(s)
    tests = []
    for t in (test_signature_headers, test_replay, test_signed_bodies, test_log_injection,
              test_big_bodies):
        tests.append(lambda s, t=t: t(s, sc))
        tests[-1].__name__ = t.__name__
    s.run(tests)


if __name__ == "__main__":
    main()
