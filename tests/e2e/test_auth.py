"""End-to-end checks of bearer authentication, scopes and tenancy (API.md
§1.2). Tokens are crafted here with hmac/hashlib/base64 and the stack's
HS256 secret (jwt_secret_file in $PAY_CONFIG), so every malformed variant
can be produced.

Writes are attempted only against customer 31 with a token of another
contract owner (they must fail and change nothing), plus small reads. The
token-cache check reads the app log (log_file in $PAY_CONFIG) to see which
worker served each request, and waits about 8 s for a token to expire.
"""
import base64
import hashlib
import hmac
import json
import os
import re
import time

from paytest import *

CT_JSON = "application/json; charset=utf-8"
GET_PATH = "/v1/customer-balances?customer_id=1"
LIST_PATH = "/v1/customer-payments?customer_id=1&page=1&pageSize=5"


def _conf():
    conf = {}
    with open(ENV["PAY_CONFIG"]) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#") or "=" not in line:
                continue
            k, v = line.split("=", 1)
            conf[k.strip()] = v.strip()
    return conf


CONF = _conf()


def _secret():
    conf = CONF
    with open(conf["jwt_secret_file"], "rb") as f:
        data = f.read()
    if data.endswith(b"\r\n"):
        data = data[:-2]
    elif data.endswith(b"\n"):
        data = data[:-1]
    return data


SECRET = _secret()


def b64(data):
    if not isinstance(data, bytes):
        data = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign(signing_input, key=None, digest=hashlib.sha256):
    mac = hmac.new(key if key is not None else SECRET, signing_input.encode(), digest).digest()
    return b64(mac)


def claims(**over):
    now = int(time.time())
    c = {"sub": "e2e-auth", "scope": "payments:read payments:write",
         "contractOwnerIds": [1], "iat": now, "nbf": now, "exp": now + 600}
    for k, v in over.items():
        if v is None:
            c.pop(k, None)
        else:
            c[k] = v
    return c


def jwt(payload=None, header=None, key=None, digest=hashlib.sha256, **over):
    h = header if header is not None else {"alg": "HS256", "typ": "JWT"}
    p = payload if payload is not None else claims(**over)
    si = b64(h) + "." + b64(p)
    return si + "." + sign(si, key, digest)


def auth_get(path, authorization):
    return get(path, headers={"Authorization": authorization} if authorization is not None else {})


def unauth(s, r, what, error=True):
    """401, JSON error UNAUTHENTICATED, WWW-Authenticate per RFC 6750."""
    s.error(r, 401, "UNAUTHENTICATED", what)
    if error:
        s.eq(r.header("WWW-Authenticate"), 'Bearer error="invalid_token"',
             what + ": WWW-Authenticate")
    s.eq((r.json or {}).get("error"), "Unauthorized", what + ": reason phrase")


def ok(s, r, what):
    s.status(r, 200, what)


def test_valid(s):
    r = get(GET_PATH, tok=jwt())
    ok(s, r, "crafted HS256 token works")
    s.eq((r.json or {}).get("customerId"), 1, "crafted token: customer 1 balance")
    ok(s, get(LIST_PATH, tok=jwt()), "crafted token: list works")
    ok(s, get(GET_PATH, tok=token()), "paytest.token() works")
    ok(s, auth_get(GET_PATH, "bearer " + jwt()), "scheme is case-insensitive (bearer)")
    ok(s, auth_get(GET_PATH, "BEARER " + jwt()), "scheme is case-insensitive (BEARER)")
    ok(s, get(GET_PATH, tok=jwt(header={"typ": "JWT", "alg": "HS256", "kid": "x"})),
       "extra header members are fine")
    ok(s, get(GET_PATH, tok=jwt(nbf=None, iat=None)), "nbf and iat are optional")


def test_missing_and_malformed(s):
    r = auth_get(GET_PATH, None)
    unauth(s, r, "no Authorization header", error=False)
    s.eq(r.header("WWW-Authenticate"), "Bearer", "no header: WWW-Authenticate without error=")
    good = jwt()
    h, p, sig = good.split(".")
    bad = {
        "Bearer only": "Bearer",
        "Bearer and space": "Bearer ",
        "garbage": "Bearer garbage",
        "two segments": "Bearer %s.%s" % (h, p),
        "four segments": "Bearer %s.%s.%s.%s" % (h, p, sig, sig),
        "empty signature": "Bearer %s.%s." % (h, p),
        "padding chars": "Bearer %s.%s.%s=" % (h, p, sig),
        "standard base64 chars": "Bearer %s.%s.%s" % (h, p, sig.replace("-", "+").replace("_", "/") + "+/"),
        "space inside": "Bearer %s. %s.%s" % (h, p, sig),
        "header not JSON": "Bearer %s.%s.%s" % (b64(b"not json"), p, sig),
        "header an array": "Bearer " + jwt(header=["HS256"]),
        "header without alg": "Bearer " + jwt(header={"typ": "JWT"}),
        "alg not a string": "Bearer " + jwt(header={"alg": 256}),
        "duplicate alg": "Bearer " + (lambda si: si + "." + sign(si))(
            b64(b'{"alg":"HS256","alg":"HS256"}') + "." + p),
        "crit header": "Bearer " + jwt(header={"alg": "HS256", "crit": ["exp"]}),
        "payload not JSON": "Bearer " + (lambda si: si + "." + sign(si))(h + "." + b64(b"hello")),
        "payload an array": "Bearer " + jwt(payload=[1, 2]),
    }
    for what, value in bad.items():
        unauth(s, auth_get(GET_PATH, value), what)
    r = get(GET_PATH, tok=jwt(header={"alg": "HS256", "typ": "at+jwt"}))
    unauth(s, r, "typ at+jwt (libjwt accepts only JWT)")
    s.check("typ" in (r.json or {}).get("message", ""), "the 401 names typ as the reason", r)
    # No bearer token at all (RFC 6750 3.1): 401 without an error code.
    for what, value in {"empty value": "", "token without scheme": good,
                        "Basic": "Basic dXNlcjpwYXNz", "Basic with a JWT": "Basic " + good,
                        "Token scheme": "Token " + good}.items():
        unauth(s, auth_get(GET_PATH, value), what, error=False)
        s.eq(auth_get(GET_PATH, value).header("WWW-Authenticate"), "Bearer",
             what + ": WWW-Authenticate: Bearer, no error code")


def test_algorithms(s):
    p = b64(claims())
    # alg none, with and without a signature
    h = b64({"alg": "none", "typ": "JWT"})
    unauth(s, get(GET_PATH, tok=h + "." + p + "."), "alg none, empty signature")
    unauth(s, get(GET_PATH, tok=h + "." + p + "." + sign(h + "." + p)), "alg none, HMAC signature")
    h = b64({"alg": "None"})
    unauth(s, get(GET_PATH, tok=h + "." + p + "." + sign(h + "." + p)), "alg None")
    unauth(s, get(GET_PATH, tok=jwt(header={"alg": "HS512", "typ": "JWT"}, digest=hashlib.sha512)),
           "alg HS512 signed with the secret")
    unauth(s, get(GET_PATH, tok=jwt(header={"alg": "HS384"}, digest=hashlib.sha384)),
           "alg HS384 signed with the secret")
    unauth(s, get(GET_PATH, tok=jwt(header={"alg": "HS512"})), "alg HS512 header, HS256 signature")
    unauth(s, get(GET_PATH, tok=jwt(header={"alg": "hs256", "typ": "JWT"})), "alg hs256 (lowercase)")
    unauth(s, get(GET_PATH, tok=jwt(header={"alg": "HS256 "})), "alg 'HS256 ' (trailing space)")
    unauth(s, get(GET_PATH, tok=jwt(header={"alg": "RS256"})), "alg RS256 with an HMAC")
    unauth(s, get(GET_PATH, tok=jwt(key=b"wrong-secret-wrong-secret-wrong-secret!!")), "wrong secret")
    unauth(s, get(GET_PATH, tok=jwt(key=SECRET + b"\n")), "secret plus newline")
    unauth(s, get(GET_PATH, tok=jwt(key=SECRET[:-1])), "secret minus one byte")

    # tampered payload: a token for owner 1 turned into one for owners 1-3 / admin
    good = jwt()
    h, _, sig = good.split(".")
    for what, c in [("wider contractOwnerIds", claims(contractOwnerIds=[1, 2, 3])),
                    ("admin scope", claims(scope="payments:admin")),
                    ("later exp", claims(exp=int(time.time()) + 999999))]:
        unauth(s, get(GET_PATH, tok=h + "." + b64(c) + "." + sig), "tampered payload: " + what)
    # flipped signature bit
    raw = bytearray(base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)))
    raw[0] ^= 1
    unauth(s, get(GET_PATH, tok=h + "." + good.split(".")[1] + "." + b64(bytes(raw))),
           "signature with one bit flipped")
    # signature truncated
    unauth(s, get(GET_PATH, tok=good[:-4]), "signature truncated")


def test_times(s):
    now = int(time.time())
    unauth(s, get(GET_PATH, tok=jwt(exp=now - 45)), "expired 45 s ago")
    unauth(s, get(GET_PATH, tok=jwt(exp=now - 3600, iat=now - 7200, nbf=now - 7200)),
           "expired an hour ago")
    ok(s, get(GET_PATH, tok=jwt(exp=now - 10)), "expired 10 s ago: within the 30 s leeway")
    unauth(s, get(GET_PATH, tok=jwt(nbf=now + 60)), "nbf 60 s in the future")
    ok(s, get(GET_PATH, tok=jwt(nbf=now + 10)), "nbf 10 s in the future: within the leeway")
    unauth(s, get(GET_PATH, tok=jwt(exp=None)), "no exp")
    unauth(s, get(GET_PATH, tok=jwt(exp=str(now + 600))), "exp as a string")
    unauth(s, get(GET_PATH, tok=jwt(exp=now + 600.5)), "exp with a fraction")
    unauth(s, get(GET_PATH, tok=jwt(exp=True)), "exp true")
    unauth(s, get(GET_PATH, tok=jwt(exp=[now + 600])), "exp an array")
    unauth(s, get(GET_PATH, tok=jwt(nbf=str(now))), "nbf as a string")
    # RFC 8725 hardening: a token issued in the future (beyond the leeway) is refused
    r = get(GET_PATH, tok=jwt(iat=now + 86400 * 365, nbf=None, exp=now + 86400 * 366))
    unauth(s, r, "iat a year in the future")
    s.check("issued in the future" in (r.json or {}).get("message", ""), "iat: the message says why",
            (r.json or {}).get("message"))
    unauth(s, get(GET_PATH, tok=jwt(iat=now + 120, nbf=None)), "iat 120 s in the future")
    ok(s, get(GET_PATH, tok=jwt(iat=now + 10, nbf=None)), "iat 10 s in the future: within the leeway")
    unauth(s, get(GET_PATH, tok=jwt(iat=str(now))), "iat as a string")
    unauth(s, get(GET_PATH, tok=jwt(exp=-1)), "exp -1")
    ok(s, get(GET_PATH, tok=jwt(exp=2 ** 62)), "exp far in the future (no overflow)")
    unauth(s, get(GET_PATH, tok=jwt(exp=99999999999999999999999)), "exp beyond 64 bits")


def served_by(rids, timeout=5.0):
    """{request id: pid of the worker that served it}, read from the access
    lines of the app log (log_file in $PAY_CONFIG); waits a little for lines
    written just after the response went out."""
    pat = re.compile(r" pay-api\[(\d+)\] access: req=(\S+) ")
    want, got = set(rids), {}
    deadline = time.time() + timeout
    while True:
        with open(CONF["log_file"], errors="replace") as f:
            for line in f:
                m = pat.search(line)
                if m and m.group(2) in want:
                    got[m.group(2)] = int(m.group(1))
        if len(got) == len(want) or time.time() > deadline:
            return got
        time.sleep(0.1)


def test_expiry_in_token_cache(s):
    # Each worker caches tokens that verified. A cached token must still stop
    # working once exp (+ the 30 s leeway, spec 1.2) has passed: the token
    # below is 26 s past its exp when minted, so it works for a few seconds,
    # long enough for every worker to serve (and cache) it, then expires.
    workers = int(CONF.get("workers", "1"))
    exp = int(time.time()) - 30 + 8          # accepted until exp + 30
    tok = jwt(sub="e2e-auth-cache", exp=exp, iat=exp - 60, nbf=exp - 60)
    tag = "cache%d" % os.getpid()
    warm, before = [], 0
    # Warm up until every worker has served the token (the access log names
    # each request's worker), stopping well before the expiry.
    while time.time() < exp + 30 - 3:
        rids = ["%s-w%d" % (tag, i) for i in range(before, before + 2 * workers)]
        before += len(rids)
        for rid in rids:
            r = get(GET_PATH, tok=tok, headers={"X-Request-Id": rid})
            ok(s, r, "token within the leeway, request %s" % rid)
        warm += rids
        if len(set(served_by(warm).values())) >= workers:
            break
    cached = set(served_by(warm).values())
    s.check(len(cached) >= 1, "the warm-up requests were logged with their workers", cached)
    s.check(len(cached) >= min(workers, 2), "the token was served by %d of %d workers"
            % (len(cached), workers), cached)
    while time.time() <= exp + 30 + 1.5:     # past the leeway, on any clock rounding
        time.sleep(0.2)
    late = ["%s-x%d" % (tag, i) for i in range(4 * workers + 4)]
    for rid in late:
        unauth(s, get(GET_PATH, tok=tok, headers={"X-Request-Id": rid}),
               "the same token after exp + leeway, request %s" % rid)
    hit = [rid for rid, pid in served_by(late).items() if pid in cached]
    s.check(len(hit) >= 1, "some late requests reached a worker that had cached the token",
            (cached, served_by(late)))
    # a fresh token still works on those workers
    ok(s, get(GET_PATH, tok=jwt(sub="e2e-auth-cache")), "a fresh token after the expired one")


def test_claims(s):
    for what, over in [("no sub", {"sub": None}), ("sub a number", {"sub": 5}),
                       ("empty sub", {"sub": ""}), ("sub with a newline", {"sub": "a\nb"}),
                       ("scope a number", {"scope": 1}),
                       ("contractOwnerIds with a string", {"contractOwnerIds": [1, "2"]}),
                       ("contractOwnerIds all strings", {"contractOwnerIds": ["1"]}),
                       ("contractOwnerIds a string", {"contractOwnerIds": "1"}),
                       ("contractOwnerIds a number", {"contractOwnerIds": 1}),
                       ("contractOwnerIds with 1.5", {"contractOwnerIds": [1.5]}),
                       ("contractOwnerIds with 0", {"contractOwnerIds": [0]}),
                       ("contractOwnerIds with -1", {"contractOwnerIds": [-1]}),
                       ("contractOwnerIds nested", {"contractOwnerIds": [[1]]}),
                       ("contractOwnerIds with null", {"contractOwnerIds": [1, None]}),
                       ("contractOwnerIds an object", {"contractOwnerIds": {"a": 1}})]:
        unauth(s, get(GET_PATH, tok=jwt(**over)), what)


def test_big_tokens(s):
    # 100 KB: nginx (header buffers) or the app must refuse with a 4xx
    c = claims(pad="x" * 100000)
    t = jwt(payload=c)
    r = get(GET_PATH, tok=t)
    s.check(400 <= r.status < 500, "100 KB token: 4xx, not 5xx", r.status)
    # ~5 KB: passes nginx's 8 KB header buffer, over the app's 4 KB limit
    t = jwt(payload=claims(pad="x" * 3500))
    s.check(4200 < len(t) < 7000, "test setup: token between 4 and 7 KB", len(t))
    unauth(s, get(GET_PATH, tok=t), "5 KB token")
    # just under the app's limit a well-signed token still works
    t = jwt(payload=claims(pad="x" * 2700))
    s.check(3500 < len(t) < 4000, "test setup: token under 4 KB", len(t))
    ok(s, get(GET_PATH, tok=t), "3.9 KB valid token accepted")
    # a 100 KB garbage header with no JWT shape
    r = auth_get(GET_PATH, "Bearer " + "A" * 100000)
    s.check(400 <= r.status < 500, "100 KB garbage bearer: 4xx", r.status)
    # many contract owners is fine up to the limit
    ok(s, get(GET_PATH, tok=jwt(contractOwnerIds=list(range(1, 301)))), "300 contractOwnerIds")
    ok(s, get("/healthz"), "server alive after big tokens")


def test_scopes(s):
    ro = jwt(scope="payments:read")
    wo = jwt(scope="payments:write")
    body = {"customerId": 1, "amountInMajorCurrency": 1, "description": "scope"}
    n = int(sql_one("SELECT COUNT(*) FROM ledger"))

    r = post("/v1/customer-balance-adjustments", body, tok=ro)
    s.error(r, 403, "INSUFFICIENT_SCOPE", "read-only token POST adjustment")
    s.check('insufficient_scope' in (r.header("WWW-Authenticate") or ""),
            "403: WWW-Authenticate error=insufficient_scope", r.header("WWW-Authenticate"))
    r = post("/v1/customer-payments", dict(body, type="CHEQUE"), tok=ro)
    s.error(r, 403, "INSUFFICIENT_SCOPE", "read-only token POST payment")
    r = get(GET_PATH, tok=wo)
    s.error(r, 403, "INSUFFICIENT_SCOPE", "write-only token GET balances")
    r = get(LIST_PATH, tok=wo)
    s.error(r, 403, "INSUFFICIENT_SCOPE", "write-only token GET list")
    r = get("/v1/customer-payments/1", tok=wo)
    s.error(r, 403, "INSUFFICIENT_SCOPE", "write-only token GET by id")
    for what, sc in [("no scope claim", None), ("empty scope", ""),
                     ("unknown scopes", "payments:readwrite payments openid"),
                     ("scope prefix", "payments:rea"), ("upper case", "PAYMENTS:READ")]:
        r = get(GET_PATH, tok=jwt(scope=sc))
        s.error(r, 403, "INSUFFICIENT_SCOPE", "GET with %s" % what)
    ok(s, get(GET_PATH, tok=jwt(scope="openid  payments:read")), "scope list with extra spaces")
    s.eq(int(sql_one("SELECT COUNT(*) FROM ledger")), n, "refused POSTs wrote nothing")

    # admin: every contract owner, no contractOwnerIds needed
    adm = jwt(scope="payments:admin", contractOwnerIds=None)
    r = get("/v1/customer-balances?customer_id=31", tok=adm)
    s.status(r, 200, "admin sees customer 31")
    s.eq((r.json or {}).get("customerId"), 31, "admin: customer 31 balance")
    ok(s, get("/v1/customer-balances?customer_id=39", tok=adm), "admin sees customer 39")
    r = get("/v1/customer-payments?customer_id=31&page=1&pageSize=10", tok=adm)
    s.check(r.status == 200 and len(r.json or []) >= 4, "admin lists customer 31's ledger", r)

    # no contractOwnerIds and no admin → 403
    r = get(GET_PATH, tok=jwt(contractOwnerIds=None))
    s.error(r, 403, "FORBIDDEN", "token without contractOwnerIds")
    r = get(GET_PATH, tok=jwt(contractOwnerIds=[]))
    s.error(r, 403, "FORBIDDEN", "token with an empty contractOwnerIds")
    r = post("/v1/customer-balance-adjustments", body, tok=jwt(contractOwnerIds=None))
    s.error(r, 403, "FORBIDDEN", "POST with a token without contractOwnerIds")


def test_tenancy(s):
    t1 = jwt(contractOwnerIds=[1])
    t2 = jwt(contractOwnerIds=[2])
    row31 = sql_one("SELECT MIN(id) FROM ledger WHERE customer_id = 31")
    bal31 = sql_one("SELECT balance FROM customers WHERE id = 31")
    n31 = sql_one("SELECT COUNT(*) FROM ledger WHERE customer_id = 31")
    ip31 = sql_one("SELECT COUNT(*) FROM invoice_payments WHERE customer_id = 31")

    r = get("/v1/customer-payments/%s" % row31, tok=t1)
    s.error(r, 404, "NOT_FOUND", "owner-1 token: customer 31's ledger row")
    ok(s, get("/v1/customer-payments/%s" % row31, tok=t2), "owner-2 token: customer 31's ledger row")
    def no_rid(resp):
        j = dict(resp.json or {})
        j.pop("requestId", None)
        return j
    missing = get("/v1/customer-payments/999999999", tok=t1)
    s.eq(no_rid(r), no_rid(missing), "other tenant's row looks exactly like a missing row")

    r = get("/v1/customer-payments?customer_id=31&page=1&pageSize=100", tok=t1)
    s.status(r, 200, "owner-1 token: list of customer 31")
    s.eq(r.json, [], "owner-1 token: customer 31's ledger is empty")
    s.eq(r.header("X-Total-Count"), "0", "owner-1 token: X-Total-Count 0")
    r = get("/v1/customer-payments?customer_id=31&page=1&pageSize=100", tok=t2)
    s.check(len(r.json or []) >= 4, "owner-2 token: customer 31's ledger", r)

    r = get("/v1/customer-balances?customer_id=31", tok=t1)
    s.error(r, 404, "NOT_FOUND", "owner-1 token: customer-balances of 31")
    ok(s, get("/v1/customer-balances?customer_id=31", tok=t2), "owner-2 token: customer-balances of 31")

    r = post("/v1/customer-payments", {"customerId": 31, "amountInMajorCurrency": 5,
                                       "type": "CHEQUE", "description": "tenancy"}, tok=t1)
    s.error(r, 400, "UNKNOWN_REFERENCE", "owner-1 token: payment for customer 31",
            field="customerId")
    r = post("/v1/customer-balance-adjustments", {"customerId": 31, "amountInMajorCurrency": 5,
                                                  "description": "tenancy"}, tok=t1)
    s.error(r, 400, "UNKNOWN_REFERENCE", "owner-1 token: adjustment for customer 31",
            field="customerId")
    r = post("/v1/customer-balance-adjustments", {"customerId": 31, "amountInMajorCurrency": 5},
             tok=t1, headers={"Idempotency-Key": "auth-tenancy-%d" % time.time_ns()})
    s.error(r, 400, "UNKNOWN_REFERENCE", "owner-1 token: adjustment for 31 with a key",
            field="customerId")
    # a nonexistent customer answers the same
    r = post("/v1/customer-balance-adjustments", {"customerId": 999999, "amountInMajorCurrency": 5},
             tok=t1)
    s.error(r, 400, "UNKNOWN_REFERENCE", "adjustment for a nonexistent customer", field="customerId")

    s.eq(sql_one("SELECT balance FROM customers WHERE id = 31"), bal31, "customer 31 balance unchanged")
    s.eq(sql_one("SELECT COUNT(*) FROM ledger WHERE customer_id = 31"), n31,
         "customer 31 ledger unchanged")
    s.eq(sql_one("SELECT COUNT(*) FROM invoice_payments WHERE customer_id = 31"), ip31,
         "customer 31 invoice payments unchanged")

    # owner-3 customers are invisible to an owners-1,2 token too
    r = get("/v1/customer-balances?customer_id=39", tok=jwt(contractOwnerIds=[1, 2]))
    s.error(r, 404, "NOT_FOUND", "owners-1,2 token: customer 39")
    ok(s, get("/v1/customer-balances?customer_id=39", tok=jwt(contractOwnerIds=[3])),
       "owner-3 token: customer 39")
    ok(s, get("/v1/customer-balances?customer_id=39", tok=jwt(contractOwnerIds=[3, 3, 1])),
       "duplicate ids in contractOwnerIds")


def test_no_auth_needed(s):
    for path in ["/healthz", "/readyz"]:
        s.status(get(path), 200, "%s without a token" % path)
    # every /v1 route needs a token
    for m, path in [("GET", "/v1/customer-payments?customer_id=1&page=1&pageSize=1"),
                    ("GET", "/v1/customer-payments/1"),
                    ("GET", "/v1/customer-balances?customer_id=1"),
                    ("POST", "/v1/customer-payments"),
                    ("POST", "/v1/customer-balance-adjustments")]:
        r = request(m, path, raw=b"{}" if m == "POST" else None)
        unauth(s, r, "%s %s without a token" % (m, path.split("?")[0]), error=False)
        s.eq(r.header("WWW-Authenticate"), "Bearer", "%s %s: WWW-Authenticate" % (m, path))


Suite().run([
    test_valid,
    test_missing_and_malformed,
    test_algorithms,
    test_times,
    test_expiry_in_token_cache,
    test_claims,
    test_big_tokens,
    test_scopes,
    test_tenancy,
    test_no_auth_needed,
])
