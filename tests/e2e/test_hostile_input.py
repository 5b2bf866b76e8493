"""End-to-end hostile input: every request here must get a 4xx (never a
5xx, never a hang) and change nothing — customer 5's balance and the row
count of the whole ledger are compared before and after each one. The few
requests that are valid on purpose (boundary amounts, SQL metacharacters
as data, long multi-byte text, a null unknown member) are checked to move
exactly what they say.

Writes go to customer 5 (owner 1) only; assertions on money are relative,
so the file passes when run twice on the same stack.
"""
import json
import re
import secrets
import socket
import urllib.parse
from decimal import Decimal

from paytest import *

CID = 5
RUN = "Hx" + secrets.token_hex(5)
W = token(sub="e2e-hostile")
PAY = "/v1/customer-payments"
ADJ = "/v1/customer-balance-adjustments"
LIST = "/v1/customer-payments?customer_id=5&page=1&pageSize=10"


def raw_http(data, timeout=20):
    """Sends raw bytes (a whole request) and returns (status, headers list
    of (name, value), body bytes); status 0 when the server closed without
    an answer."""
    u = urllib.parse.urlsplit(BASE)
    with socket.create_connection((u.hostname, u.port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        while True:
            try:
                c = s.recv(65536)
            except ConnectionResetError:
                break
            if not c:
                break
            chunks.append(c)
    resp = b"".join(chunks)
    head, _, body = resp.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    try:
        status = int(lines[0].split(" ")[1])
    except (IndexError, ValueError):
        return 0, [], resp
    hdrs = []
    for line in lines[1:]:
        k, _, v = line.partition(":")
        hdrs.append((k.strip().lower(), v.strip()))
    if any(k == "transfer-encoding" and "chunked" in v for k, v in hdrs):
        body = http_dechunk(body)
    return status, hdrs, body


def host():
    return urllib.parse.urlsplit(BASE).netloc


def state():
    return tuple(sql("SELECT balance, (SELECT COUNT(*) FROM ledger),"
                     " (SELECT COUNT(*) FROM invoice_payments) FROM customers WHERE id = %d"
                     % CID)[0])


def balance():
    return Decimal(sql_one("SELECT balance FROM customers WHERE id = %d" % CID))


def refused(s, what, send, status=400, code=None, field=None):
    """send() must answer 4xx (exactly `status` unless None) and change nothing."""
    before = state()
    r = send()
    if status is None:
        s.check(400 <= r.status < 500, what + ": 4xx", r)
    elif code is not None:
        s.error(r, status, code, what, field=field)
    else:
        s.status(r, status, what)
    s.eq(state(), before, what + ": nothing changed")
    return r


def body(**over):
    b = {"customerId": CID, "amountInMajorCurrency": 1, "type": "CHEQUE"}
    for k, v in over.items():
        if v is None:
            b.pop(k, None)
        else:
            b[k] = v
    return b


def raw_pay(text):
    return lambda: post(PAY, raw=text, tok=W)


def raw_adj(text):
    return lambda: post(ADJ, raw=text, tok=W)


# ---------------------------------------------------------------------------

def test_malformed_json(s):
    cases = {
        "truncated": b'{"customerId":5,"amountInMajorCurrency":1,"type":"CHE',
        "truncated after colon": b'{"customerId":',
        "unclosed object": b'{"customerId":5,"amountInMajorCurrency":1,"type":"CHEQUE"',
        "trailing garbage": b'{"customerId":5,"amountInMajorCurrency":1,"type":"CHEQUE"} x',
        "two objects": b'{"customerId":5,"amountInMajorCurrency":1,"type":"CHEQUE"}'
                       b'{"customerId":5,"amountInMajorCurrency":1,"type":"CHEQUE"}',
        "trailing comma": b'{"customerId":5,"amountInMajorCurrency":1,"type":"CHEQUE",}',
        "block comment": b'/* c */{"customerId":5,"amountInMajorCurrency":1,"type":"CHEQUE"}',
        "inner comment": b'{"customerId":5,/* c */"amountInMajorCurrency":1,"type":"CHEQUE"}',
        "line comment": b'{"customerId":5,"amountInMajorCurrency":1,"type":"CHEQUE"}\n// c',
        "single quotes": b"{'customerId':5,'amountInMajorCurrency':1,'type':'CHEQUE'}",
        "unquoted keys": b'{customerId:5,amountInMajorCurrency:1,type:"CHEQUE"}',
        "NaN": b'{"customerId":5,"amountInMajorCurrency":NaN,"type":"CHEQUE"}',
        "Infinity": b'{"customerId":5,"amountInMajorCurrency":Infinity,"type":"CHEQUE"}',
        "-Infinity": b'{"customerId":5,"amountInMajorCurrency":-Infinity,"type":"CHEQUE"}',
        "hex number": b'{"customerId":5,"amountInMajorCurrency":0x10,"type":"CHEQUE"}',
        "leading plus": b'{"customerId":5,"amountInMajorCurrency":+1,"type":"CHEQUE"}',
        "leading zero": b'{"customerId":5,"amountInMajorCurrency":01,"type":"CHEQUE"}',
        "bare dot": b'{"customerId":5,"amountInMajorCurrency":.5,"type":"CHEQUE"}',
        "trailing dot": b'{"customerId":5,"amountInMajorCurrency":1.,"type":"CHEQUE"}',
        "bad escape": b'{"customerId":5,"amountInMajorCurrency":1,"type":"CHEQUE","description":"\\x41"}',
        "short unicode escape": b'{"customerId":5,"amountInMajorCurrency":1,"type":"CHEQUE","description":"\\u12"}',
        "raw newline in string": b'{"customerId":5,"amountInMajorCurrency":1,"type":"CHEQUE","description":"a\nb"}',
        "raw tab in string": b'{"customerId":5,"amountInMajorCurrency":1,"type":"CHEQUE","description":"a\tb"}',
        "raw NUL in string": b'{"customerId":5,"amountInMajorCurrency":1,"type":"CHEQUE","description":"a\x00b"}',
        "NUL after the object": b'{"customerId":5,"amountInMajorCurrency":1,"type":"CHEQUE"}\x00',
        "empty body": b"",
        "whitespace only": b"   \n ",
        "bare string": b'"hello"',
        "bare array": b'[{"customerId":5,"amountInMajorCurrency":1,"type":"CHEQUE"}]',
        "bare number": b"5",
        "bare null": b"null",
        "bare true": b"true",
        "empty array": b"[]",
        "UTF-16 body": '{"customerId":5,"amountInMajorCurrency":1,"type":"CHEQUE"}'.encode("utf-16"),
    }
    for what, text in cases.items():
        refused(s, "payment: " + what, raw_pay(text), 400, "INVALID_JSON")
    for what in ["truncated", "trailing garbage", "block comment", "single quotes", "NaN",
                 "bare string", "bare array", "bare number", "empty body"]:
        text = cases[what].replace(b',"type":"CHEQUE"', b"").replace(b",'type':'CHEQUE'", b"")
        refused(s, "adjustment: " + what, raw_adj(text), 400, "INVALID_JSON")
    refused(s, "empty object", raw_pay(b"{}"), 400, "MISSING_FIELD", "customerId")


def test_wrong_types(s):
    cases = [
        ("customerId as a string", body(customerId="5"), "customerId"),
        ("customerId 5.0", body(customerId=5.0), "customerId"),
        ("customerId 0", body(customerId=0), "customerId"),
        ("customerId -5", body(customerId=-5), "customerId"),
        ("customerId true", body(customerId=True), "customerId"),
        ("customerId object", body(customerId={"id": 5}), "customerId"),
        ("customerId array", body(customerId=[5]), "customerId"),
        ("customerId beyond int64", body(customerId=99999999999999999999), "customerId"),
        ("amount as a string", body(amountInMajorCurrency="10.00"), "amountInMajorCurrency"),
        ("amount true", body(amountInMajorCurrency=True), "amountInMajorCurrency"),
        ("amount array", body(amountInMajorCurrency=[1]), "amountInMajorCurrency"),
        ("amount object", body(amountInMajorCurrency={"v": 1}), "amountInMajorCurrency"),
        ("type 5", body(type=5), "type"),
        ("type lower case", body(type="cheque"), "type"),
        ("type unknown", body(type="BITCOIN"), "type"),
        ("type array", body(type=["CHEQUE"]), "type"),
        ("type with a space", body(type="CHEQUE "), "type"),
        ("description a number", body(description=5), "description"),
        ("description an object", body(description={"a": "b"}), "description"),
        ("description an array", body(description=["a"]), "description"),
        ("reference true", body(reference=True), "reference"),
        ("billRunType unknown", body(billRunType="WEEKLY"), "billRunType"),
        ("billRunType lower case", body(billRunType="adhoc"), "billRunType"),
        ("billRunType 1", body(billRunType=1), "billRunType"),
    ]
    for what, b, field in cases:
        refused(s, "payment " + what, lambda b=b: post(PAY, b, tok=W), 400, "INVALID_FIELD", field)
    for what, b, field in [("no customerId", body(customerId=None), "customerId"),
                           ("customerId null", {"customerId": None, "amountInMajorCurrency": 1,
                                                "type": "CHEQUE"}, "customerId"),
                           ("no amount", body(amountInMajorCurrency=None), "amountInMajorCurrency"),
                           ("no type", body(type=None), "type")]:
        refused(s, "payment " + what, lambda b=b: post(PAY, b, tok=W), 400, "MISSING_FIELD", field)
    r = refused(s, "payment type empty", lambda: post(PAY, body(type=""), tok=W), 400)
    s.eq((r.json or {}).get("field"), "type", "payment type empty: field")
    refused(s, "payment for a nonexistent customer", lambda: post(PAY, body(customerId=999999), tok=W),
            400, "UNKNOWN_REFERENCE", "customerId")
    a = {"customerId": CID, "amountInMajorCurrency": 1}
    for what, b, field in [("customerId as a string", dict(a, customerId="5"), "customerId"),
                           ("amount as a string", dict(a, amountInMajorCurrency="1"),
                            "amountInMajorCurrency"),
                           ("amount false", dict(a, amountInMajorCurrency=False),
                            "amountInMajorCurrency"),
                           ("description a number", dict(a, description=1), "description")]:
        refused(s, "adjustment " + what, lambda b=b: post(ADJ, b, tok=W), 400, "INVALID_FIELD", field)
    refused(s, "adjustment without amount", lambda: post(ADJ, {"customerId": CID}, tok=W),
            400, "MISSING_FIELD", "amountInMajorCurrency")


def pay_amount(text):
    return raw_pay(('{"customerId":%d,"amountInMajorCurrency":%s,"type":"CHEQUE"}'
                    % (CID, text)).encode())


def adj_amount(text):
    return raw_adj(('{"customerId":%d,"amountInMajorCurrency":%s,"description":"%s"}'
                    % (CID, text, RUN)).encode())


def accepted(s, what, send, minor, want_text):
    b0 = balance()
    r = send()
    s.status(r, 200, what)
    s.eq(balance() - b0, Decimal(minor), what + ": balance moved by exactly %d minor units" % minor)
    got = re.findall(r'"amountInMajorCurrency"\s*:\s*(-?[0-9.eE+]+)', r.raw)
    s.eq(got, [want_text], what + ": amount written back")


def test_amounts(s):
    for text in ["1e400", "-1e400", "1e-400", "99999999999999999999", "-0", "0", "0.00", "-0.0",
                 "0e5", "0.001", "10.005", "0.30000000000000004", "1.0000000001", "1e-3",
                 "-1", "-0.01", "0.009", "10000000", "10000000.00", "9999999.991", "1e7",
                 "123456789012345678901234567890", "1" + "0" * 60, "1E+1000000000000"]:
        refused(s, "payment amount %s" % text[:40], pay_amount(text), 400, "INVALID_AMOUNT",
                "amountInMajorCurrency")
    refused(s, "payment amount of 70 digits", pay_amount("1" * 70), 400, None)
    refused(s, "payment amount with a 10 kB exponent", pay_amount("1e" + "9" * 10000), 400, None)

    accepted(s, "payment 1e2", pay_amount("1e2"), 10000, "100.00")
    accepted(s, "payment 0.01 (lower limit)", pay_amount("0.01"), 1, "0.01")
    accepted(s, "payment 1.5E-1", pay_amount("1.5E-1"), 15, "0.15")
    accepted(s, "payment 12.30 (trailing zero)", pay_amount("12.30"), 1230, "12.30")
    accepted(s, "payment 9999999.99 (upper limit)", pay_amount("9999999.99"), 999999999, "9999999.99")

    for text in ["0", "-0", "0.00", "100000.01", "-100000.01", "100001", "1e6", "0.001",
                 "-0.005", "1e400", "99999999999999999999"]:
        refused(s, "adjustment amount %s" % text, adj_amount(text), 400, "INVALID_AMOUNT",
                "amountInMajorCurrency")
    accepted(s, "adjustment 100000 (upper limit)", adj_amount("100000"), 10000000, "100000.00")
    accepted(s, "adjustment -100000 (lower limit)", adj_amount("-100000"), -10000000, "-100000.00")
    accepted(s, "adjustment -0.01", adj_amount("-0.01"), -1, "-0.01")
    accepted(s, "adjustment 1e5", adj_amount("1e5"), 10000000, "100000.00")
    accepted(s, "adjustment -1E+5", adj_amount("-1E+5"), -10000000, "-100000.00")


def test_duplicates_and_nesting(s):
    refused(s, "duplicate amount key",
            raw_pay(b'{"customerId":5,"amountInMajorCurrency":1,"amountInMajorCurrency":2,"type":"CHEQUE"}'),
            400, "INVALID_JSON")
    refused(s, "duplicate customerId key (tenancy smuggling)",
            raw_pay(b'{"customerId":5,"customerId":31,"amountInMajorCurrency":1,"type":"CHEQUE"}'),
            400, "INVALID_JSON")
    refused(s, "duplicate key on adjustments",
            raw_adj(b'{"customerId":5,"amountInMajorCurrency":1,"amountInMajorCurrency":-1}'),
            400, "INVALID_JSON")
    refused(s, "duplicate key spelled with an escape",
            raw_adj(b'{"customerId":5,"amountInMajorCurrency":1,"amountInMajorCurrenc\\u0079":2}'),
            400, "INVALID_JSON")
    deep = b"[" * 10000 + b"]" * 10000
    refused(s, "10,000 nested arrays", raw_pay(deep), 400, "INVALID_JSON")
    refused(s, "10,000 unclosed arrays", raw_pay(b"[" * 10000), 400, "INVALID_JSON")
    refused(s, "nested arrays in a field",
            raw_pay(b'{"customerId":5,"amountInMajorCurrency":1,"type":"CHEQUE","description":'
                    + b"[" * 5000 + b"]" * 5000 + b"}"), 400, "INVALID_JSON")
    objs = b'{"a":' * 5000 + b"1" + b"}" * 5000
    refused(s, "5,000 nested objects", raw_pay(objs), 400, "INVALID_JSON")
    refused(s, "40 nested objects in a field",
            raw_pay(b'{"customerId":5,"amountInMajorCurrency":1,"type":"CHEQUE","x":'
                    + b'{"a":' * 40 + b"1" + b"}" * 40 + b"}"), 400, "INVALID_JSON")
    wide = b'{"customerId":5,"amountInMajorCurrency":1,"type":"CHEQUE",' + b",".join(
        b'"k%d":%d' % (i, i) for i in range(3000)) + b"}"
    refused(s, "3,000 unknown keys", raw_pay(wide), 400, "UNKNOWN_FIELD")
    refused(s, "array of 20,000 numbers",
            raw_pay(b"[" + b",".join(b"1" for _ in range(20000)) + b"]"), 400, "INVALID_JSON")


def desc_body(desc_json_bytes, endpoint=PAY):
    if endpoint == PAY:
        return raw_pay(b'{"customerId":5,"amountInMajorCurrency":1,"type":"CHEQUE","description":'
                       + desc_json_bytes + b"}")
    return raw_adj(b'{"customerId":5,"amountInMajorCurrency":1,"description":' + desc_json_bytes + b"}")


def test_strings(s):
    bad_json = {
        "invalid UTF-8 byte FF": b'"a\xffb"',
        "invalid UTF-8 byte 80": b'"a\x80b"',
        "overlong C0 AF": b'"a\xc0\xafb"',
        "overlong E0 80 AF": b'"\xe0\x80\xaf"',
        "truncated sequence": b'"a\xe2\x82"',
        "UTF-8 encoded surrogate": b'"\xed\xa0\x80"',
        "above U+10FFFF": b'"\xf4\x90\x80\x80"',
        "F5 byte": b'"\xf5\x80\x80\x80"',
        "escaped NUL": b'"a\\u0000b"',
    }
    for what, text in bad_json.items():
        refused(s, "description " + what, desc_body(text), 400, "INVALID_JSON")
    refused(s, "reference invalid UTF-8",
            raw_pay(b'{"customerId":5,"amountInMajorCurrency":1,"type":"CHEQUE","reference":"\xff"}'),
            400, "INVALID_JSON")
    refused(s, "key invalid UTF-8",
            raw_pay(b'{"customerId":5,"amountInMajorCurrency":1,"type":"CHEQUE","\xff":1}'),
            400, "INVALID_JSON")
    # escapes that decode to something that is not valid text
    for what, text in [("lone high surrogate", b'"\\ud800"'),
                       ("lone high surrogate then text", b'"\\ud800abc"'),
                       ("lone low surrogate", b'"\\udc00"'),
                       ("reversed surrogate pair", b'"\\udc00\\ud800"'),
                       ("high surrogate + non-surrogate escape", b'"\\ud800\\u0041"')]:
        refused(s, "description " + what, desc_body(text), 400, None)
    for what, text in [("escaped U+0001", b'"a\\u0001b"'), ("escaped newline", b'"a\\nb"'),
                       ("escaped CR", b'"a\\rb"'), ("escaped tab", b'"a\\tb"'),
                       ("escaped ESC", b'"\\u001b[31m"'), ("DEL", b'"a\x7fb"'),
                       ("escaped DEL", b'"a\\u007fb"'), ("C1 NEL", b'"a\xc2\x85b"'),
                       ("escaped C1 U+009B", b'"a\\u009bb"')]:
        refused(s, "description " + what, desc_body(text), 400, "INVALID_FIELD", "description")
        refused(s, "adjustment description " + what, desc_body(text, ADJ), 400, "INVALID_FIELD",
                "description")
    refused(s, "reference with a control character",
            lambda: post(PAY, body(reference="a\x01b"), tok=W), 400, "INVALID_FIELD", "reference")

    refused(s, "description of 256 characters", lambda: post(PAY, body(description="a" * 256), tok=W),
            400, "INVALID_FIELD", "description")
    refused(s, "description of 256 x e-acute", lambda: post(PAY, body(description="\u00e9" * 256), tok=W),
            400, "INVALID_FIELD", "description")
    refused(s, "reference of 256 characters", lambda: post(PAY, body(reference="r" * 256), tok=W),
            400, "INVALID_FIELD", "reference")
    refused(s, "adjustment description of 256", lambda: post(ADJ, {"customerId": CID,
            "amountInMajorCurrency": 1, "description": "d" * 256}, tok=W),
            400, "INVALID_FIELD", "description")

    for what, text in [("255 x e-acute", "\u00e9" * 255), ("255 x CJK", "\u4e2d" * 255),
                       ("255 x emoji (4-byte UTF-8)", "\U0001F600" * 255),
                       ("255 ASCII", "a" * 255),
                       ("escaped surrogate pair", "\U0001F4B7 ok " + RUN)]:
        for form, ascii_only in [("escaped", True), ("raw UTF-8", False)]:
            b0 = balance()
            raw = json.dumps(body(amountInMajorCurrency=0.01, description=text, reference=text),
                             ensure_ascii=ascii_only).encode("utf-8")
            r = post(PAY, raw=raw, tok=W)
            w = "%s (%s)" % (what, form)
            if s.status(r, 200, "description " + w):
                s.eq((r.json or {}).get("description"), text, w + ": description verbatim")
                s.eq((r.json or {}).get("reference"), text, w + ": reference verbatim")
                g = get("/v1/customer-payments/%s" % r.json["id"], tok=W)
                s.eq((g.json or {}).get("description"), text, w + ": read back verbatim")
            s.eq(balance() - b0, Decimal(1), w + ": moved 0.01")

    refused(s, "unknown body field", lambda: post(PAY, body(foo=1), tok=W), 400, "UNKNOWN_FIELD", "foo")
    refused(s, "unknown field customerid (case)", lambda: post(PAY, body(customerid=5), tok=W),
            400, "UNKNOWN_FIELD", "customerid")
    # null means absent, so a null member is never unknown (a generated client
    # sends its whole model); only one with a value is refused
    b0 = balance()
    r = post(PAY, dict(body(), extra=None, id=None), tok=W)
    s.status(r, 200, "unknown field null: absent, the payment is made")
    s.eq(balance() - b0, Decimal(100), "unknown field null: moved exactly 1.00")
    s.check("extra" not in (r.json or {}), "unknown field null: not echoed", r.raw[:200])
    refused(s, "adjustment: type is unknown there", lambda: post(ADJ, {"customerId": CID,
            "amountInMajorCurrency": 1, "type": "CHEQUE"}, tok=W), 400, "UNKNOWN_FIELD", "type")
    refused(s, "adjustment: reference is unknown there", lambda: post(ADJ, {"customerId": CID,
            "amountInMajorCurrency": 1, "reference": "x"}, tok=W), 400, "UNKNOWN_FIELD", "reference")
    r = refused(s, "unknown field with a hostile name",
                lambda: post(PAY, body(**{"x\u202e<script>": 1}), tok=W), 400, "UNKNOWN_FIELD")
    s.eq(r.header("Content-Type"), "application/json; charset=utf-8",
         "hostile field name: echoed only inside a JSON body")


SQL_META = ["' OR 1=1 --", '"; DROP TABLE ledger; --', "\\", "%", "_", "\\'", "'; --",
            "a%' OR '1'='1", "1); DELETE FROM ledger WHERE (1=1", "`id`", "$1 ? :x",
            "%00", "' UNION SELECT password FROM mysql.user --"]


def test_sql_metacharacters_as_data(s):
    n0 = int(sql_one("SELECT COUNT(*) FROM ledger"))
    made = 0
    for text in SQL_META:
        b0 = balance()
        r = post(PAY, body(amountInMajorCurrency=0.01, description=text + " " + RUN, reference=text),
                 tok=W)
        if s.status(r, 200, "payment with description %r" % text):
            made += 1
            s.eq(r.json.get("description"), text + " " + RUN, "description %r verbatim" % text)
            s.eq(r.json.get("reference"), text, "reference %r verbatim" % text)
            g = get("/v1/customer-payments/%s" % r.json["id"], tok=W)
            s.eq((g.json or {}).get("reference"), text, "reference %r read back" % text)
            # the exact filter finds exactly this row (per-run description)
            lst = get(LIST.replace("pageSize=10", "pageSize=100") + "&" + urllib.parse.urlencode(
                {"filter": text + " " + RUN}), tok=W)
            s.eq([x["id"] for x in lst.json or []], [r.json["id"]], "filter=%r finds the row" % text)
        s.eq(balance() - b0, Decimal(1), "description %r: moved 0.01" % text)
        r = post(ADJ, {"customerId": CID, "amountInMajorCurrency": -0.01, "description": text}, tok=W)
        if s.status(r, 200, "adjustment with description %r" % text):
            made += 1
            s.eq(r.json.get("description"), text, "adjustment description %r verbatim" % text)
    s.eq(int(sql_one("SELECT COUNT(*) FROM ledger")), n0 + made, "ledger intact: only our rows added")
    s.check(int(sql_one("SELECT COUNT(*) FROM ledger WHERE customer_id = 10")) >= 4,
            "other customers' rows still there")


def test_sql_metacharacters_in_query(s):
    base = {"customer_id": "5", "page": "1", "pageSize": "10"}
    for text in SQL_META + ["1 OR 1=1", "1;", "5 ", " 5", "0x5", "5e0", "+5"]:
        for param in ["customer_id", "page", "pageSize", "excludeDebits", "excludeCredits"]:
            params = dict(base, **{param: text})
            refused(s, "%s=%r" % (param, text),
                    lambda p=params: get(PAY + "?" + urllib.parse.urlencode(p), tok=W),
                    400, "INVALID_PARAMETER", param)
        for param in ["sort", "fields"]:
            params = dict(base, **{param: text})
            refused(s, "%s=%r" % (param, text),
                    lambda p=params: get(PAY + "?" + urllib.parse.urlencode(p), tok=W),
                    400, "INVALID_PARAMETER", param)
        for param in ["sort", "fields"]:
            params = dict(base, **{param: "id," + text})
            refused(s, "%s=id,%r" % (param, text),
                    lambda p=params: get(PAY + "?" + urllib.parse.urlencode(p), tok=W),
                    400, "INVALID_PARAMETER", param)
        refused(s, "customer-balances customer_id=%r" % text,
                lambda t=text: get("/v1/customer-balances?" + urllib.parse.urlencode({"customer_id": t}),
                                   tok=W), 400, "INVALID_PARAMETER", "customer_id")
        # path ids
        r = get(PAY + "/" + urllib.parse.quote(text, safe=""), tok=W)
        s.check(r.status in (400, 404), "path id %r: 400 (or 404 when it splits the path)" % text, r)
        if "/" not in text:
            s.error(r, 400, "INVALID_PARAMETER", "path id %r" % text, field="customer_payment_id")
    for pid in ["0", "-1", "abc", "1.0", "1e3", "0x1", "99999999999999999999", "1%20OR%201=1",
                "1'", "1;DROP", "%2531"]:
        r = get(PAY + "/" + pid, tok=W)
        s.error(r, 400, "INVALID_PARAMETER", "path id %s" % pid, field="customer_payment_id")

    # string filters take any text as data: only rows that really match
    def texts(x, param):
        if param == "customerPaymentType":
            return [x.get("customerPaymentType") or ""]
        return [x.get("description") or "", x.get("reference") or "", x.get("invoiceNumber") or ""]

    def matches(x, param, v):
        if v.startswith("like:"):
            return any(v[5:].lower() in f.lower() for f in texts(x, param))
        vals = v[3:].split(",") if v.startswith("in:") else [v]
        return any(f in vals for f in texts(x, param))

    for text in SQL_META + ["%%", "' OR ''='"]:
        for param in ["filter", "customerPaymentType"]:
            for v in [text, "like:" + text, "in:" + text.replace(",", "")]:
                r = get(LIST.replace("pageSize=10", "pageSize=1000") + "&"
                        + urllib.parse.urlencode({param: v}), tok=W)
                if param == "customerPaymentType" and not v.startswith("like:"):
                    # an enumeration: a value outside it is refused, never run
                    s.error(r, 400, "INVALID_PARAMETER", "%s=%r refused" % (param, v), field=param)
                    continue
                if s.status(r, 200, "%s=%r accepted as data" % (param, v)):
                    s.check(all(matches(x, param, v) for x in r.json or []),
                            "%s=%r: only rows that really match" % (param, v), r.raw[:200])
                    s.eq(r.header("X-Total-Count"), str(len(r.json or [])),
                         "%s=%r: X-Total-Count is the matching rows" % (param, v))
    r = get(LIST + "&filter=like:%25", tok=W)
    s.check(all("%" in (x.get("description") or "") + (x.get("reference") or "")
                for x in r.json or []), "like:% matches only a literal %", r.raw[:300])
    r = get(LIST + "&filter=like:_", tok=W)
    s.check(all("_" in (x.get("description") or "") + (x.get("reference") or "")
                + (x.get("invoiceNumber") or "") for x in r.json or []),
            "like:_ matches only a literal _", r.raw[:300])


def test_query_string_junk(s):
    base = PAY + "?customer_id=5&page=1&pageSize=10"
    for what, qs in [("%00 in a value", "&filter=a%00b"), ("%00 alone", "&filter=%00"),
                     ("%ZZ", "&filter=%ZZ"), ("% at the end", "&filter=abc%"),
                     ("%4 truncated", "&filter=%4"), ("%C0%AF overlong", "&filter=%C0%AF"),
                     ("%FF", "&filter=%FF"), ("%ED%A0%80 surrogate", "&filter=%ED%A0%80"),
                     ("%00 in a name", "&fil%00ter=a"), ("%ZZ in a name", "&%ZZ=1"),
                     ("%C0%AF in a name", "&%C0%AF=1"), ("empty name", "&=1"),
                     ("%01 control in a filter", "&filter=a%01b"),
                     ("4100-byte value", "&filter=" + "a" * 4100),
                     ("65 parameters", "".join("&p%d=1" % i for i in range(65)))]:
        r = refused(s, "query " + what, lambda qs=qs: get(base + qs, tok=W), 400, None)
        s.eq((r.json or {}).get("status"), 400, "query %s: JSON error body" % what)
    r = refused(s, "query %00 in customer_id", lambda: get(PAY + "?customer_id=5%00&page=1&pageSize=10",
                                                         tok=W), 400, "INVALID_PARAMETER")
    for what, qs in [("customer_id twice", "?customer_id=5&customer_id=31&page=1&pageSize=10"),
                     ("page twice", "?customer_id=5&page=1&page=2&pageSize=10"),
                     ("filter twice", "?customer_id=5&page=1&pageSize=10&filter=a&filter=b"),
                     ("twice, once encoded", "?customer_id=5&page=1&pageSize=10&customer%5Fid=31")]:
        refused(s, what, lambda qs=qs: get(PAY + qs, tok=W), 400, "INVALID_PARAMETER")
    refused(s, "customer-balances customer_id twice",
            lambda: get("/v1/customer-balances?customer_id=5&customer_id=31", tok=W),
            400, "INVALID_PARAMETER")
    # very long query strings: nginx may refuse them itself (414/400): any 4xx
    for n in [7000, 20000, 100000]:
        r = refused(s, "%d-byte query string" % n,
                    lambda n=n: get(base + "&filter=" + "a" * n, tok=W), None)
    r = refused(s, "query on POST", lambda: post(PAY + "?customerId=5", body(), tok=W),
                400, "UNKNOWN_PARAMETER", "customerId")
    r = refused(s, "junk query on POST", lambda: post(PAY + "?%ZZ", body(), tok=W), 400, None)


def test_header_injection(s):
    # percent-encoded CRLF: a plain (insane) value → fresh id, nothing injected
    evil = "abc%0d%0aSet-Cookie:%20evil=1"
    r = get("/v1/customer-balances?customer_id=5", tok=W, headers={"X-Request-Id": evil})
    s.status(r, 200, "encoded CRLF in X-Request-Id: request served")
    s.check(r.header("X-Request-Id") not in (None, evil) and "evil" not in r.header("X-Request-Id"),
            "encoded CRLF not echoed", r.header("X-Request-Id"))
    s.eq(r.header("Set-Cookie"), None, "encoded CRLF: no Set-Cookie")

    h = host()
    for what, inj in [("bare CR", b"abc\rSet-Cookie: evil=1"),
                      ("CR LF SP fold", b"abc\r\n Set-Cookie: evil=1"),
                      ("bare LF", b"abc\nSet-Cookie: evil=1"),
                      ("NUL", b"abc\x00Set-Cookie: evil=1"),
                      ("DEL and high bytes", b"abc\x7f\xff\xfeevil")]:
        req = (b"GET /v1/customer-balances?customer_id=5 HTTP/1.1\r\nHost: " + h.encode()
               + b"\r\nAuthorization: Bearer " + W.encode() + b"\r\nX-Request-Id: " + inj
               + b"\r\nConnection: close\r\n\r\n")
        st, hdrs, _ = raw_http(req)
        s.check(st != 0 and st < 500, "X-Request-Id with %s: answered, not 5xx" % what, st)
        names = [k for k, _ in hdrs]
        s.check("set-cookie" not in names, "X-Request-Id with %s: no Set-Cookie" % what, hdrs)
        rid = [v for k, v in hdrs if k == "x-request-id"]
        s.check(len(rid) == 1 and re.fullmatch(r"[A-Za-z0-9._-]{1,64}", rid[0])
                and "evil" not in rid[0], "X-Request-Id with %s: one sane id" % what, rid)
    # a request line with raw spaces / CRLF in the path never reaches a 5xx
    # malformed request lines: a 4xx (nginx's own JSON error), never a 5xx;
    # a well-formed but odd one may be served
    for what, line, must_4xx in [
            ("NUL in the path", b"GET /v1/customer-payments/1\x00 HTTP/1.1", True),
            ("%00 in the path", b"GET /v1/customer-payments/%00 HTTP/1.1", True),
            ("encoded CRLF in the path", b"GET /v1/customer-payments/1%0d%0aX:%20y HTTP/1.1", True),
            ("escape out of root", b"GET /v1/../../etc/passwd HTTP/1.1", True),
            ("invalid method", b"G\x01T /v1/customer-payments/1 HTTP/1.1", True),
            ("space in the path", b"GET /v1/customer-payments/1 2 HTTP/1.1", True),
            ("dot segments", b"GET /v1/../v1/customer-payments/1 HTTP/1.1", False)]:
        req = (line + b"\r\nHost: " + h.encode() + b"\r\nAuthorization: Bearer " + W.encode()
               + b"\r\nConnection: close\r\n\r\n")
        before = state()
        st, hdrs, rb = raw_http(req)
        if must_4xx:
            s.check(400 <= st < 500, "%s: 4xx" % what, (st, rb[:120]))
            try:
                j = json.loads(rb)
            except ValueError:
                j = None
            s.check(isinstance(j, dict) and j.get("status") == st,
                    "%s: JSON error body" % what, rb[:120])
        else:
            s.check(st != 0 and st < 500, "%s: answered, not 5xx" % what, st)
        s.eq(state(), before, "%s: nothing changed" % what)
    # a body shorter than its Content-Length must not hang the worker forever
    req = (b"POST " + ADJ.encode() + b" HTTP/1.1\r\nHost: " + h.encode()
           + b"\r\nAuthorization: Bearer " + W.encode()
           + b"\r\nContent-Type: application/json\r\nContent-Length: 100\r\nConnection: close\r\n\r\n"
           + b'{"customerId":5}')
    before = state()
    u = urllib.parse.urlsplit(BASE)
    with socket.create_connection((u.hostname, u.port), timeout=30) as sk:
        sk.sendall(req)
        sk.shutdown(socket.SHUT_WR)
        try:
            data = sk.recv(65536)
        except (ConnectionResetError, socket.timeout):
            data = b""
    st = int(data.split(b" ")[1]) if data.startswith(b"HTTP/") else 0
    s.check(st == 0 or 400 <= st < 500, "short body: 4xx or closed, not 5xx", data[:100])
    s.eq(state(), before, "short body: nothing changed")
    # Content-Length lies the other way
    req = (b"POST " + ADJ.encode() + b" HTTP/1.1\r\nHost: " + h.encode()
           + b"\r\nAuthorization: Bearer " + W.encode()
           + b"\r\nContent-Type: application/json\r\nContent-Length: -1\r\nConnection: close\r\n\r\n{}")
    st, _, _ = raw_http(req)
    s.check(400 <= st < 500, "negative Content-Length: 4xx", st)
    s.eq(state(), before, "negative Content-Length: nothing changed")


def test_still_healthy(s):
    s.status(get("/healthz"), 200, "/healthz after the hostile input")
    s.status(get("/readyz"), 200, "/readyz after the hostile input")
    r = get("/v1/customer-balances?customer_id=5", tok=W)
    s.status(r, 200, "normal GET still works")
    s.eq((r.json or {}).get("balance"), Decimal(sql_one(
        "SELECT SUM(amount) FROM ledger WHERE customer_id = 5")) / 100,
         "customer 5 balance == sum of its ledger")
    b0 = balance()
    r = post(ADJ, {"customerId": CID, "amountInMajorCurrency": 0.01, "description": RUN + " end"},
             tok=W)
    s.status(r, 200, "normal POST still works")
    s.eq(balance() - b0, Decimal(1), "normal POST moved 0.01")
    s.eq(sql_one("SELECT COUNT(*) FROM customers c WHERE c.balance <>"
                 " (SELECT COALESCE(SUM(amount), 0) FROM ledger l WHERE l.customer_id = c.id)"), "0",
         "every balance == sum of its ledger rows")


Suite().run([
    test_malformed_json,
    test_wrong_types,
    test_amounts,
    test_duplicates_and_nesting,
    test_strings,
    test_sql_metacharacters_as_data,
    test_sql_metacharacters_in_query,
    test_query_string_junk,
    test_header_injection,
    test_still_healthy,
])
