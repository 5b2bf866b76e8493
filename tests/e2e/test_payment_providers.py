"""End-to-end tests of /v1/payment-providers (spec 4.1) and of the
paymentProviders section of `pay-api load`.

Fixture providers (tests/fixtures/e2e.json): 1..3 ACTIVE GO_CARDLESS for
contract owners 1..3, 4 INACTIVE STRIPE for owner 1, 5 FINASTRA for owner 2
with retryIfPossible and instantBankPayments. They are only read, except
provider 4, which one test patches and restores. Every write goes to
providers created here with a per-run tag in their name, so the file passes
when run twice in a row on one stack; list expectations are computed with
SQL over the same rows instead of being hard-coded.
"""
import json
import os
import subprocess
import tempfile
import threading
import uuid

from paytest import ENV, Suite, get, post, request, sql, sql_one, token

RUN = "prov-" + uuid.uuid4().hex[:8]
W1 = token(sub="prov-w1", owners="1")
W2 = token(sub="prov-w2", owners="2")
W12 = token(sub="prov-w12", owners="1,2")
W13 = token(sub="prov-w13", owners="1,3")
ADM = token(sub="prov-admin", scope="payments:read payments:write payments:admin", owners="")
RO = token(sub="prov-ro", scope="payments:read", owners="1,2")
WO = token(sub="prov-wo", scope="payments:write", owners="1,2")

BASE = "/v1/payment-providers"
PATCH_TYPE = "application/json-patch+json"
KEYS = ["id", "type", "name", "directDebitWithName", "status", "creditorIdentifier",
        "instantBankPayments", "retryIfPossible", "acceptExternalPayments",
        "contractOwnerIds", "syncInstantBankPaymentsWithMandateCreation"]

FIXTURES = {
    1: {"type": "GO_CARDLESS", "name": "Sandbox GoCardless (Acme Energy)",
        "directDebitWithName": "Acme Energy", "status": "ACTIVE", "creditorIdentifier": None,
        "instantBankPayments": False, "retryIfPossible": False, "acceptExternalPayments": False,
        "contractOwnerIds": [1], "syncInstantBankPaymentsWithMandateCreation": False},
    2: {"type": "GO_CARDLESS", "name": "Sandbox GoCardless (Borealis Water)",
        "status": "ACTIVE", "contractOwnerIds": [2]},
    3: {"type": "GO_CARDLESS", "name": "Sandbox GoCardless (Cobalt Telecom)",
        "status": "ACTIVE", "contractOwnerIds": [3]},
    4: {"type": "STRIPE", "status": "INACTIVE", "contractOwnerIds": [1],
        "retryIfPossible": False, "instantBankPayments": False},
    5: {"type": "FINASTRA", "status": "ACTIVE", "contractOwnerIds": [2],
        "retryIfPossible": True, "instantBankPayments": True},
}


def patch(pid, ops, tok=None, content_type=PATCH_TYPE, raw=None):
    return request("PATCH", "%s/%s" % (BASE, pid), body=ops, tok=tok,
                   content_type=content_type, raw=raw)


def new_provider(s, tok=W12, **fields):
    body = {"type": "STRIPE", "name": "%s %s" % (RUN, uuid.uuid4().hex[:6]),
            "status": "ACTIVE", "contractOwnerIds": [1]}
    body.update(fields)
    r = post(BASE, body, tok=tok)
    if not s.status(r, 201, "create a provider for the test"):
        raise RuntimeError("cannot create a provider: %r" % r)
    return r.json


def listing(tok, **params):
    qs = {"page": "1", "pageSize": "1000"}
    qs.update(params)
    path = BASE + "?" + "&".join("%s=%s" % (k, v) for k, v in qs.items())
    return get(path, tok=tok)


def visible_sql(owners):
    """SQL condition: provider p serves one of these owners (None: all)."""
    if owners is None:
        return "1=1"
    return ("EXISTS (SELECT 1 FROM payment_provider_owners o WHERE o.provider_id = p.id"
            " AND o.contract_owner_id IN (%s))" % ",".join(str(o) for o in owners))


def sql_ids(where, order="p.id"):
    return [int(r[0]) for r in sql("SELECT p.id FROM payment_providers p WHERE %s ORDER BY %s"
                                   % (where, order))]


def ids(r):
    return [x["id"] for x in (r.json or [])]


# ---- fixtures, get ---------------------------------------------------------------

def test_fixtures(s):
    for pid, want in FIXTURES.items():
        r = get("%s/%d" % (BASE, pid), tok=ADM)
        if not s.status(r, 200, "admin gets fixture provider %d" % pid):
            continue
        s.eq(list(r.json.keys()), KEYS, "provider %d has every field, in order" % pid)
        s.eq(r.json["id"], pid, "provider %d id" % pid)
        for k, v in want.items():
            s.eq(r.json[k], v, "provider %d %s" % (pid, k))
    s.eq(get(BASE + "/1", tok=W1).status, 200, "owner 1 sees provider 1")
    s.eq(get(BASE + "/4", tok=W1).status, 200, "owner 1 sees its inactive provider 4")
    for pid in (2, 3, 5):
        s.error(get("%s/%d" % (BASE, pid), tok=W1), 404, "NOT_FOUND",
                "owner 1 does not see provider %d" % pid)
    s.eq(get(BASE + "/5", tok=W12).status, 200, "owners 1,2 see provider 5")
    s.eq(get(BASE + "/3", tok=W13).status, 200, "owners 1,3 see provider 3")
    r = get(BASE + "/5", tok=RO)
    s.status(r, 200, "payments:read is enough to get")


def test_get_errors(s):
    s.error(get(BASE + "/0", tok=ADM), 400, "INVALID_PARAMETER", "id 0")
    s.error(get(BASE + "/abc", tok=ADM), 400, "INVALID_PARAMETER", "non-numeric id")
    s.error(get(BASE + "/-1", tok=ADM), 400, "INVALID_PARAMETER", "negative id")
    s.error(get(BASE + "/99999999999", tok=ADM), 404, "NOT_FOUND", "unknown id")
    s.error(get(BASE + "/1?foo=1", tok=ADM), 400, "UNKNOWN_PARAMETER", "unknown query parameter")
    r = get(BASE + "/5?fields=id,contractOwnerIds,retryIfPossible", tok=W12)
    s.status(r, 200, "get with fields")
    s.eq(r.json, {"id": 5, "contractOwnerIds": [2], "retryIfPossible": True}, "fields of a get")
    s.error(get(BASE + "/5?fields=id,bogus", tok=W12), 400, "INVALID_PARAMETER",
            "unknown field in fields", field="fields")
    s.error(get(BASE + "/1"), 401, "UNAUTHENTICATED", "no token")
    s.error(get(BASE + "/1", tok=WO), 403, "INSUFFICIENT_SCOPE", "write scope only cannot get")


# ---- lists ----------------------------------------------------------------------

def test_list_basics(s):
    s.error(get(BASE + "?pageSize=10", tok=W12), 400, "MISSING_PARAMETER", "page is required",
            field="page")
    s.error(get(BASE + "?page=1", tok=W12), 400, "MISSING_PARAMETER", "pageSize is required",
            field="pageSize")
    s.error(get(BASE + "?page=1&pageSize=1001", tok=W12), 400, "INVALID_PARAMETER",
            "pageSize over 1000", field="pageSize")
    s.error(listing(W12, bogus="1"), 400, "UNKNOWN_PARAMETER", "unknown list parameter")
    s.error(get(BASE + "?page=1&pageSize=5"), 401, "UNAUTHENTICATED", "list without a token")
    s.error(get(BASE + "?page=1&pageSize=5", tok=WO), 403, "INSUFFICIENT_SCOPE",
            "list without the read scope")

    for tok, owners, what in ((W1, [1], "owner 1"), (W12, [1, 2], "owners 1,2"),
                              (W13, [1, 3], "owners 1,3"), (ADM, None, "admin")):
        r = listing(tok)
        if not s.status(r, 200, "list as %s" % what):
            continue
        want = sql_ids(visible_sql(owners))
        s.eq(ids(r), want, "list as %s: the visible providers, by id" % what)
        s.eq(r.header("X-Total-Count"), str(len(want)), "X-Total-Count as %s" % what)
        s.check(all(list(x.keys()) == KEYS for x in r.json), "every item has every field (%s)" % what)
        if owners is not None:
            s.check(all(x["contractOwnerIds"] and set(x["contractOwnerIds"]) <= set(owners)
                        for x in r.json),
                    "contractOwnerIds shows only the caller's owners (%s)" % what)
    r = listing(W1)
    s.check({1, 4} <= set(ids(r)) and not {2, 3, 5} & set(ids(r)),
            "owner 1 sees 1 and 4, not 2, 3 or 5")

    total = len(sql_ids(visible_sql([1, 2])))
    r = get(BASE + "?page=2&pageSize=1", tok=W12)
    s.status(r, 200, "second page of one")
    s.eq(ids(r), sql_ids(visible_sql([1, 2]))[1:2], "page 2 of size 1 is the second provider")
    link = r.header("Link") or ""
    s.check('rel="first"' in link and 'rel="prev"' in link and 'rel="last"' in link,
            "Link header with first, prev and last", link)
    s.eq('rel="next"' in link, total > 2, "Link next only when there is a third provider")
    r = get(BASE + "?page=100000&pageSize=10", tok=W12)
    s.status(r, 200, "a page past the end")
    s.eq(r.json, [], "a page past the end is empty")


def test_list_filters(s):
    v12 = visible_sql([1, 2])
    cases = [
        ("type equals", W12, {"type": "GO_CARDLESS"}, v12 + " AND p.type = 'GO_CARDLESS'"),
        ("type in", W12, {"type": "in:STRIPE,FINASTRA"}, v12 + " AND p.type IN ('STRIPE','FINASTRA')"),
        ("type like (case-insensitive)", W12, {"type": "like:cardLESS"},
         v12 + " AND p.type LIKE '%CARDLESS%'"),
        ("type like _ is literal", W12, {"type": "like:O_C"}, v12 + " AND p.type LIKE '%O\\_C%'"),
        # like: uses the text collation of the other like filters: accents
        # and case are ignored, so "é" finds the E of STRIPE.
        ("type like non-ASCII", W12, {"type": "like:%C3%A9"}, v12 + " AND p.type LIKE '%E%'"),
        ("contractOwnerId", W12, {"contractOwnerId": "2"}, visible_sql([2])),
        ("contractOwnerId hidden from the caller", W12, {"contractOwnerId": "3"}, "1=0"),
        ("contractOwnerId as admin", ADM, {"contractOwnerId": "3"}, visible_sql([3])),
        ("contractOwnerId unknown", ADM, {"contractOwnerId": "987654"}, "1=0"),
        ("instantBankPayments true", W12, {"instantBankPayments": "true"},
         v12 + " AND p.instant_bank_payments = 1"),
        ("instantBankPayments false", W12, {"instantBankPayments": "false"},
         v12 + " AND p.instant_bank_payments = 0"),
        ("retryIfPossible true", W12, {"retryIfPossible": "true"}, v12 + " AND p.retry_if_possible = 1"),
        ("retryIfPossible false", W12, {"retryIfPossible": "false"}, v12 + " AND p.retry_if_possible = 0"),
        ("retryIfPossible for owner 1", W12, {"retryIfPossible": "true", "contractOwnerId": "1"},
         visible_sql([1]) + " AND p.retry_if_possible = 1"),
        ("all filters", W12, {"type": "FINASTRA", "contractOwnerId": "2",
                              "instantBankPayments": "true", "retryIfPossible": "true"},
         visible_sql([2]) + " AND p.type = 'FINASTRA' AND p.instant_bank_payments = 1"
         " AND p.retry_if_possible = 1"),
    ]
    for what, tok, params, where in cases:
        r = listing(tok, **params)
        if not s.status(r, 200, "filter: " + what):
            continue
        want = sql_ids(where)
        s.eq(ids(r), want, "filter: %s (ids)" % what)
        s.eq(r.header("X-Total-Count"), str(len(want)), "filter: %s (X-Total-Count)" % what)
    s.check({1, 2} <= set(ids(listing(W12, type="GO_CARDLESS"))), "GO_CARDLESS lists 1 and 2")
    s.check(5 in ids(listing(W12, retryIfPossible="true")), "retryIfPossible=true lists 5")
    s.check(5 not in ids(listing(W12, retryIfPossible="false")), "retryIfPossible=false omits 5")
    s.check(5 in ids(listing(W12, instantBankPayments="true")), "instantBankPayments=true lists 5")
    s.check(5 in ids(listing(W12, type="FINASTRA", contractOwnerId="2", instantBankPayments="true",
                             retryIfPossible="true")), "all four filters find provider 5")
    s.check(3 not in ids(listing(W12, contractOwnerId="3")),
            "filtering by a hidden owner reveals nothing")

    # type is a PaymentMethod: equality is exact and a value outside the
    # enumeration is refused (plain or in:), not answered with []
    for param, value in (("type", ""), ("type", "in:"), ("type", "like:"), ("type", "go_cardless"),
                         ("type", "BITCOIN"), ("type", "in:STRIPE,BITCOIN"),
                         ("contractOwnerId", "abc"), ("contractOwnerId", "0"),
                         ("contractOwnerId", "-2"), ("instantBankPayments", "yes"),
                         ("instantBankPayments", "1"), ("retryIfPossible", "TRUE"),
                         ("retryIfPossible", "")):
        s.error(listing(W12, **{param: value}), 400, "INVALID_PARAMETER",
                "bad filter %s=%s" % (param, value), field=param)


def test_list_sort_fields(s):
    v12 = visible_sql([1, 2])
    cases = [
        ("sort=name", "name", "p.name, p.id"),
        ("sort=name:desc", "name:desc", "p.name DESC, p.id"),
        ("sort=type:desc,name", "type:desc,name", "p.type DESC, p.name, p.id"),
        ("sort=id:desc", "id:desc", "p.id DESC"),
        ("sort=retryIfPossible:desc,id:desc", "retryIfPossible:desc,id:desc",
         "p.retry_if_possible DESC, p.id DESC"),
        ("sort=status,instantBankPayments:asc", "status,instantBankPayments:asc",
         "p.status, p.instant_bank_payments, p.id"),
        ("sort=creditorIdentifier:desc", "creditorIdentifier:desc", "p.creditor_identifier DESC, p.id"),
    ]
    for what, sort, order in cases:
        r = listing(W12, sort=sort)
        if s.status(r, 200, what):
            s.eq(ids(r), sql_ids(v12, order), what)
    r = listing(W12, sort="retryIfPossible:desc")
    s.check(r.json and r.json[0]["retryIfPossible"] is True, "retryIfPossible:desc puts true first")
    s.error(listing(W12, sort="contractOwnerIds"), 400, "INVALID_PARAMETER",
            "contractOwnerIds cannot be a sort key", field="sort")
    s.error(listing(W12, sort="bogus"), 400, "INVALID_PARAMETER", "unknown sort field", field="sort")
    s.error(listing(W12, sort="name:up"), 400, "INVALID_PARAMETER", "bad sort direction",
            field="sort")

    r = listing(W12, fields="id,contractOwnerIds", type="FINASTRA")
    s.status(r, 200, "fields=id,contractOwnerIds")
    s.check(r.json and all(list(x.keys()) == ["id", "contractOwnerIds"] for x in r.json),
            "only the selected fields", r.raw[:200])
    s.check({"id": 5, "contractOwnerIds": [2]} in (r.json or []), "provider 5 with its owners")
    r = listing(W1, fields="contractOwnerIds")
    s.check(r.json and all(list(x.keys()) == ["contractOwnerIds"] and x["contractOwnerIds"] == [1]
                           for x in r.json), "fields=contractOwnerIds alone, owner 1's view")
    r = listing(W12, fields="name,id", sort="name:desc")
    s.status(r, 200, "fields with sort")
    s.eq(ids(r), sql_ids(v12, "p.name DESC, p.id"), "fields=name,id sorted by name:desc")
    s.check(all(set(x.keys()) == {"id", "name"} for x in r.json or []), "fields=name,id keys")
    s.error(listing(W12, fields="id,nope"), 400, "INVALID_PARAMETER", "unknown fields name",
            field="fields")
    s.error(listing(W12, fields=""), 400, "INVALID_PARAMETER", "empty fields", field="fields")


def test_list_shared_provider(s):
    p = new_provider(s, tok=ADM, contractOwnerIds=[1, 2, 3], type="PAYPAL")
    pid = p["id"]
    s.eq(p["contractOwnerIds"], [1, 2, 3], "admin sees every owner")
    for tok, want, what in ((W1, [1], "owner 1"), (W2, [2], "owner 2"), (W12, [1, 2], "owners 1,2"),
                            (W13, [1, 3], "owners 1,3")):
        r = get("%s/%d" % (BASE, pid), tok=tok)
        s.status(r, 200, "a shared provider is visible to %s" % what)
        if r.json:
            s.eq(r.json["contractOwnerIds"], want, "shared provider: %s sees only its owners" % what)
        items = [x for x in (listing(tok, type="PAYPAL").json or []) if x["id"] == pid]
        s.eq([x["contractOwnerIds"] for x in items], [want],
             "shared provider in the list: %s sees only its owners" % what)
    s.check(pid in ids(listing(W1, contractOwnerId="1", type="PAYPAL")),
            "a shared provider matches contractOwnerId of each owner")
    s.check(pid not in ids(listing(W1, contractOwnerId="2", type="PAYPAL")),
            "owner 1 cannot filter by owner 2 even on a shared provider")


# ---- create ---------------------------------------------------------------------

def test_create(s):
    name = "%s minimal" % RUN
    r = post(BASE, {"type": "GO_CARDLESS", "name": name, "status": "ACTIVE",
                    "contractOwnerIds": [1]}, tok=W1)
    if s.status(r, 201, "create with the required fields only"):
        pid = r.json["id"]
        s.eq(r.header("Location"), "%s/%d" % (BASE, pid), "Location of the new provider")
        s.eq(list(r.json.keys()), KEYS, "created provider has every field")
        s.eq(r.json, {"id": pid, "type": "GO_CARDLESS", "name": name, "directDebitWithName": None,
                      "status": "ACTIVE", "creditorIdentifier": None, "instantBankPayments": False,
                      "retryIfPossible": False, "acceptExternalPayments": False,
                      "contractOwnerIds": [1],
                      "syncInstantBankPaymentsWithMandateCreation": False},
             "defaults: booleans false, optional strings null")
        g = get(r.header("Location"), tok=W1)
        s.eq(g.json, r.json, "GET Location returns the created provider")
        s.error(get(r.header("Location"), tok=W2), 404, "NOT_FOUND",
                "owner 2 cannot see owner 1's new provider")

    full = {"type": "GC_INSTANT_BANK_PAYMENTS", "name": "%s full \u00e9\u4e2d" % RUN,
            "directDebitWithName": "ACME \u00c9NERGIE", "status": "INACTIVE",
            "creditorIdentifier": "GB12ZZZ0000000001", "instantBankPayments": True,
            "retryIfPossible": True, "acceptExternalPayments": True,
            "contractOwnerIds": [2, 1], "syncInstantBankPaymentsWithMandateCreation": True}
    r = post(BASE, full, tok=W12)
    if s.status(r, 201, "create with every field"):
        want = dict(full, id=r.json["id"], contractOwnerIds=[1, 2])
        s.eq(r.json, want, "every field is stored (owners sorted)")
        s.eq(sql_one("SELECT COUNT(*) FROM payment_provider_owners WHERE provider_id = %d"
                     % r.json["id"]), "2", "two owner rows")

    r = post(BASE, {"type": "OTHER", "name": "x" * 255, "status": "ACTIVE",
                    "contractOwnerIds": [1], "instantBankPayments": None}, tok=W1)
    s.status(r, 201, "a 255-character name and a null boolean are accepted")
    if r.json:
        s.eq(r.json.get("instantBankPayments"), False, "null boolean means false")
    r = post(BASE, {"type": "OTHER", "name": "%s admin" % RUN, "status": "ACTIVE",
                    "contractOwnerIds": [3]}, tok=ADM)
    s.status(r, 201, "admin creates a provider for owner 3")
    # A generated client sends its whole model: "id": null and the other null
    # members mean absent; names are 0..255 characters, so "" is a name.
    r = post(BASE, {"id": None, "type": "OTHER", "name": "", "directDebitWithName": "",
                    "status": "ACTIVE", "creditorIdentifier": None, "contractOwnerIds": [1],
                    "retryIfPossible": None}, tok=W1)
    if s.status(r, 201, "create with \"id\": null and an empty name"):
        s.eq((r.json.get("name"), r.json.get("directDebitWithName"),
              r.json.get("creditorIdentifier")), ("", "", None),
             "the empty strings are kept, null is absent")
        s.check(isinstance(r.json.get("id"), int) and r.json["id"] > 0, "a server-assigned id",
                r.json.get("id"))


def test_create_errors(s):
    good = {"type": "STRIPE", "name": "%s bad" % RUN, "status": "ACTIVE", "contractOwnerIds": [1]}
    before = sql_one("SELECT COUNT(*) FROM payment_providers")
    cases = [
        ("missing type", {"type": None}, W1, "MISSING_FIELD", "type"),
        ("unknown type", {"type": "BITCOIN"}, W1, "INVALID_FIELD", "type"),
        ("lower-case type", {"type": "stripe"}, W1, "INVALID_FIELD", "type"),
        ("numeric type", {"type": 5}, W1, "INVALID_FIELD", "type"),
        ("missing name", {"name": None}, W1, "MISSING_FIELD", "name"),
        ("name too long", {"name": "x" * 256}, W1, "INVALID_FIELD", "name"),
        ("name with a newline", {"name": "a\nb"}, W1, "INVALID_FIELD", "name"),
        ("numeric name", {"name": 12}, W1, "INVALID_FIELD", "name"),
        ("missing status", {"status": None}, W1, "MISSING_FIELD", "status"),
        ("unknown status", {"status": "PAUSED"}, W1, "INVALID_FIELD", "status"),
        ("directDebitWithName too long", {"directDebitWithName": "d" * 256}, W1, "INVALID_FIELD",
         "directDebitWithName"),
        ("numeric creditorIdentifier", {"creditorIdentifier": 123}, W1, "INVALID_FIELD",
         "creditorIdentifier"),
        ("string boolean", {"instantBankPayments": "true"}, W1, "INVALID_FIELD",
         "instantBankPayments"),
        ("numeric boolean", {"retryIfPossible": 1}, W1, "INVALID_FIELD", "retryIfPossible"),
        ("boolean acceptExternalPayments as string", {"acceptExternalPayments": "no"}, W1,
         "INVALID_FIELD", "acceptExternalPayments"),
        ("sync flag as number", {"syncInstantBankPaymentsWithMandateCreation": 0}, W1,
         "INVALID_FIELD", "syncInstantBankPaymentsWithMandateCreation"),
        ("missing contractOwnerIds", {"contractOwnerIds": None}, W1, "MISSING_FIELD",
         "contractOwnerIds"),
        ("empty contractOwnerIds", {"contractOwnerIds": []}, W1, "INVALID_FIELD", "contractOwnerIds"),
        ("contractOwnerIds not an array", {"contractOwnerIds": 1}, W1, "INVALID_FIELD",
         "contractOwnerIds"),
        ("contractOwnerIds of strings", {"contractOwnerIds": ["1"]}, W1, "INVALID_FIELD",
         "contractOwnerIds"),
        ("contractOwnerIds with 0", {"contractOwnerIds": [0]}, W1, "INVALID_FIELD",
         "contractOwnerIds"),
        ("contractOwnerIds with a fraction", {"contractOwnerIds": [1.5]}, W1, "INVALID_FIELD",
         "contractOwnerIds"),
        ("contractOwnerIds with a duplicate", {"contractOwnerIds": [1, 1]}, W1, "INVALID_FIELD",
         "contractOwnerIds"),
        ("another tenant's owner", {"contractOwnerIds": [2]}, W1, "UNKNOWN_REFERENCE",
         "contractOwnerIds"),
        ("own and another tenant's owner", {"contractOwnerIds": [1, 2]}, W1, "UNKNOWN_REFERENCE",
         "contractOwnerIds"),
        ("an owner that does not exist (admin)", {"contractOwnerIds": [1, 987654]}, ADM,
         "UNKNOWN_REFERENCE", "contractOwnerIds"),
        ("an id in the body", {"id": 77}, W1, "INVALID_FIELD", "id"),
        ("an unknown field", {"colour": "red"}, W1, "UNKNOWN_FIELD", "colour"),
    ]
    for what, change, tok, code, field in cases:
        body = dict(good)
        for k, v in change.items():
            if v is None:
                body.pop(k, None)
            else:
                body[k] = v
        s.error(post(BASE, body, tok=tok), 400, code, "create: " + what, field=field)
    s.error(post(BASE, [good], tok=W1), 400, "INVALID_JSON", "create: a JSON array body")
    s.error(post(BASE, raw="{", tok=W1), 400, "INVALID_JSON", "create: malformed JSON")
    s.error(post(BASE, good, tok=W1, content_type="text/plain"), 415, "UNSUPPORTED_MEDIA_TYPE",
            "create: wrong content type")
    s.error(post(BASE, good, tok=W1, content_type=PATCH_TYPE), 415, "UNSUPPORTED_MEDIA_TYPE",
            "create: a JSON Patch content type")
    s.error(post(BASE, good, tok=RO), 403, "INSUFFICIENT_SCOPE", "create with a read-only token")
    s.error(post(BASE, good), 401, "UNAUTHENTICATED", "create without a token")
    s.eq(sql_one("SELECT COUNT(*) FROM payment_providers"), before, "no failed create wrote a row")


def test_create_idempotent(s):
    key = "prov-" + uuid.uuid4().hex
    body = {"type": "STRIPE_DD", "name": "%s idem" % RUN, "status": "ACTIVE", "contractOwnerIds": [1]}
    a = post(BASE, body, tok=W1, headers={"Idempotency-Key": key})
    b = post(BASE, body, tok=W1, headers={"Idempotency-Key": key})
    s.status(a, 201, "first create with an Idempotency-Key")
    s.status(b, 201, "the repeat answers 201 too")
    s.eq(b.header("Idempotent-Replayed"), "true", "the repeat is a replay")
    s.eq(b.json, a.json, "the replay has the same body")
    s.eq(b.header("Location"), a.header("Location"), "the replay has the same Location")
    s.eq(sql_one("SELECT COUNT(*) FROM payment_providers WHERE name = '%s idem'" % RUN), "1",
         "only one provider was created")
    c = post(BASE, dict(body, name="%s idem 2" % RUN), tok=W1, headers={"Idempotency-Key": key})
    s.error(c, 422, "IDEMPOTENCY_KEY_REUSED", "the key with another body")


# ---- patch ----------------------------------------------------------------------

def current(pid):
    return get("%s/%d" % (BASE, pid), tok=ADM).json


def test_patch_ops(s):
    p = new_provider(s, directDebitWithName="DD name", creditorIdentifier=None)
    pid = p["id"]

    def step(ops, want, what, tok=W12):
        r = patch(pid, ops, tok)
        if s.status(r, 200, what):
            s.eq(r.json, dict(want, id=pid), what + " (response)")
            s.eq(current(pid), dict(want, id=pid), what + " (stored)")
        return r

    state = dict(p)
    state["name"] = "%s renamed" % RUN
    step([{"op": "replace", "path": "/name", "value": state["name"]}], state, "replace /name")
    state["creditorIdentifier"] = "CRED-1"
    step([{"op": "add", "path": "/creditorIdentifier", "value": "CRED-1"}], state,
         "add over a null member replaces it")
    state["directDebitWithName"] = None
    step([{"op": "remove", "path": "/directDebitWithName"}], state,
         "remove an optional string makes it null")
    state.update(status="INACTIVE", retryIfPossible=True, type="STRIPE_CARD")
    step([{"op": "replace", "path": "/status", "value": "INACTIVE"},
          {"op": "replace", "path": "/retryIfPossible", "value": True},
          {"op": "replace", "path": "/type", "value": "STRIPE_CARD"}], state,
         "several replaces in one patch")
    state["retryIfPossible"] = False
    step([{"op": "remove", "path": "/retryIfPossible"}], state, "remove a boolean makes it false")
    state["contractOwnerIds"] = [1, 2]
    step([{"op": "add", "path": "/contractOwnerIds/-", "value": 2}], state,
         "add /contractOwnerIds/- appends an owner")
    state["contractOwnerIds"] = [2]
    step([{"op": "remove", "path": "/contractOwnerIds/0"}], state,
         "remove /contractOwnerIds/0")
    state["contractOwnerIds"] = [1, 2]
    step([{"op": "add", "path": "/contractOwnerIds/0", "value": 1}], state,
         "add /contractOwnerIds/0 inserts an owner")
    state["contractOwnerIds"] = [1]
    step([{"op": "replace", "path": "/contractOwnerIds", "value": [1]}], state,
         "replace the whole contractOwnerIds")
    state["contractOwnerIds"] = [1, 2]
    step([{"op": "replace", "path": "/contractOwnerIds/0", "value": 2},
          {"op": "add", "path": "/contractOwnerIds/-", "value": 1}], state,
         "replace /contractOwnerIds/0 then append (stored sorted)")
    state.update(directDebitWithName="CRED-1", creditorIdentifier=None)
    step([{"op": "move", "from": "/creditorIdentifier", "path": "/directDebitWithName"}], state,
         "move creditorIdentifier to directDebitWithName")
    state["creditorIdentifier"] = state["name"]
    step([{"op": "copy", "from": "/name", "path": "/creditorIdentifier"}], state,
         "copy name to creditorIdentifier")
    state["acceptExternalPayments"] = True
    step([{"op": "test", "path": "/status", "value": "INACTIVE"},
          {"op": "test", "path": "/id", "value": pid},
          {"op": "test", "path": "/contractOwnerIds", "value": [1, 2]},
          {"op": "test", "path": "/contractOwnerIds/1", "value": 2.0},
          {"op": "test", "path": "/directDebitWithName", "value": "CRED-1"},
          {"op": "test", "path": "/retryIfPossible", "value": False},
          {"op": "replace", "path": "/acceptExternalPayments", "value": True}], state,
         "tests that pass, then a replace")
    state["syncInstantBankPaymentsWithMandateCreation"] = True
    step([{"op": "add", "path": "/syncInstantBankPaymentsWithMandateCreation", "value": True,
           "ignored": "members other than op/path/from/value"}], state,
         "unknown members of an operation are ignored")
    step([], state, "an empty patch changes nothing")
    step([{"op": "replace", "path": "/id", "value": pid}], state,
         "replacing id with its own value changes nothing")
    step([{"op": "replace", "path": "/id", "value": float(pid)}], state,  # sent as N.0
         "replacing id with an equal number (N.0, as test compares) changes nothing")
    state["name"] = "%s ~/ name" % RUN
    step([{"op": "replace", "path": "/name", "value": state["name"]},
          {"op": "test", "path": "/name", "value": state["name"]}], state,
         "a test sees the earlier operations of its patch")


def test_patch_failures(s):
    p = new_provider(s, contractOwnerIds=[1], instantBankPayments=True)
    pid = p["id"]
    before = current(pid)
    cases = [
        # (what, ops, status, code, field)
        ("a failed test", [{"op": "replace", "path": "/status", "value": "INACTIVE"},
                           {"op": "test", "path": "/name", "value": "something else"}],
         409, "CONFLICT", "/1/value"),
        ("a test of a string against a number", [{"op": "test", "path": "/id", "value": str(pid)}],
         409, "CONFLICT", "/0/value"),
        ("a test against a missing member", [{"op": "test", "path": "/nope", "value": 1}],
         400, "INVALID_FIELD", "/0/path"),
        ("replace a missing member", [{"op": "replace", "path": "/nope", "value": 1}],
         400, "INVALID_FIELD", "/0/path"),
        ("remove a missing member", [{"op": "remove", "path": "/nope"}],
         400, "INVALID_FIELD", "/0/path"),
        ("remove an owner past the end", [{"op": "remove", "path": "/contractOwnerIds/1"}],
         400, "INVALID_FIELD", "/0/path"),
        ("add an owner past the end", [{"op": "add", "path": "/contractOwnerIds/5", "value": 2}],
         400, "INVALID_FIELD", "/0/path"),
        ("an owner index with a leading zero", [{"op": "add", "path": "/contractOwnerIds/01",
                                                 "value": 2}], 400, "INVALID_FIELD", "/0/path"),
        ("a negative owner index", [{"op": "replace", "path": "/contractOwnerIds/-1", "value": 2}],
         400, "INVALID_FIELD", "/0/path"),
        ("below a string", [{"op": "add", "path": "/name/x", "value": 2}],
         400, "INVALID_FIELD", "/0/path"),
        ("move from a missing member", [{"op": "move", "from": "/nope", "path": "/name"}],
         400, "INVALID_FIELD", "/0/from"),
        ("copy from a missing member", [{"op": "copy", "from": "/nope", "path": "/name"}],
         400, "INVALID_FIELD", "/0/from"),
        ("a pointer without the leading /", [{"op": "replace", "path": "name", "value": "x"}],
         400, "BAD_REQUEST", "/0/path"),
        ("a pointer with a bad ~ escape", [{"op": "replace", "path": "/name~2", "value": "x"}],
         400, "BAD_REQUEST", "/0/path"),
        ("a ~1 escape naming a missing member", [{"op": "replace", "path": "/na~1me", "value": "x"}],
         400, "INVALID_FIELD", "/0/path"),
        ("an unknown op", [{"op": "merge", "path": "/name", "value": "x"}],
         400, "BAD_REQUEST", "/0/op"),
        ("a missing op", [{"path": "/name", "value": "x"}], 400, "BAD_REQUEST", "/0/op"),
        ("a missing path", [{"op": "remove"}], 400, "BAD_REQUEST", "/0/path"),
        ("a numeric path", [{"op": "remove", "path": 3}], 400, "BAD_REQUEST", "/0/path"),
        ("replace without value", [{"op": "replace", "path": "/name"}],
         400, "BAD_REQUEST", "/0/value"),
        ("add without value", [{"op": "add", "path": "/name"}], 400, "BAD_REQUEST", "/0/value"),
        ("test without value", [{"op": "test", "path": "/name"}], 400, "BAD_REQUEST", "/0/value"),
        ("move without from", [{"op": "move", "path": "/name"}], 400, "BAD_REQUEST", "/0/from"),
        ("copy without from", [{"op": "copy", "path": "/name"}], 400, "BAD_REQUEST", "/0/from"),
        ("move into its own child", [{"op": "move", "from": "/contractOwnerIds",
                                      "path": "/contractOwnerIds/0"}],
         400, "BAD_REQUEST", "/0/from"),
        ("an operation that is not an object", [{"op": "test", "path": "/id", "value": pid}, 7],
         400, "BAD_REQUEST", "/1"),
        ("remove the whole document", [{"op": "remove", "path": ""}], 400, "BAD_REQUEST", "/0/path"),
        ("replace the document with an array", [{"op": "replace", "path": "", "value": []}],
         400, "INVALID_JSON", None),
        ("change id", [{"op": "replace", "path": "/id", "value": 999999}], 400, "INVALID_FIELD", "id"),
        ("remove id", [{"op": "remove", "path": "/id"}], 400, "INVALID_FIELD", "id"),
        ("move id away", [{"op": "move", "from": "/id", "path": "/creditorIdentifier"}],
         400, "INVALID_FIELD", "id"),
        ("id as a string", [{"op": "replace", "path": "/id", "value": str(pid)}],
         400, "INVALID_FIELD", "id"),
        ("remove name", [{"op": "remove", "path": "/name"}], 400, "MISSING_FIELD", "name"),
        ("remove type", [{"op": "remove", "path": "/type"}], 400, "MISSING_FIELD", "type"),
        ("remove status", [{"op": "remove", "path": "/status"}], 400, "MISSING_FIELD", "status"),
        ("remove contractOwnerIds", [{"op": "remove", "path": "/contractOwnerIds"}],
         400, "MISSING_FIELD", "contractOwnerIds"),
        ("empty contractOwnerIds by remove", [{"op": "remove", "path": "/contractOwnerIds/0"}],
         400, "INVALID_FIELD", "contractOwnerIds"),
        ("empty contractOwnerIds by replace", [{"op": "replace", "path": "/contractOwnerIds",
                                                "value": []}], 400, "INVALID_FIELD", "contractOwnerIds"),
        ("null name", [{"op": "replace", "path": "/name", "value": None}],
         400, "MISSING_FIELD", "name"),
        ("numeric name", [{"op": "replace", "path": "/name", "value": 5}], 400, "INVALID_FIELD", "name"),
        ("name too long", [{"op": "replace", "path": "/name", "value": "n" * 256}],
         400, "INVALID_FIELD", "name"),
        ("unknown type", [{"op": "replace", "path": "/type", "value": "NOPE"}],
         400, "INVALID_FIELD", "type"),
        ("unknown status", [{"op": "replace", "path": "/status", "value": "active"}],
         400, "INVALID_FIELD", "status"),
        ("string boolean", [{"op": "replace", "path": "/instantBankPayments", "value": "yes"}],
         400, "INVALID_FIELD", "instantBankPayments"),
        ("object creditorIdentifier", [{"op": "replace", "path": "/creditorIdentifier",
                                        "value": {"a": 1}}], 400, "INVALID_FIELD", "creditorIdentifier"),
        ("contractOwnerIds as a number", [{"op": "replace", "path": "/contractOwnerIds", "value": 1}],
         400, "INVALID_FIELD", "contractOwnerIds"),
        ("a string owner", [{"op": "add", "path": "/contractOwnerIds/-", "value": "2"}],
         400, "INVALID_FIELD", "contractOwnerIds"),
        ("a duplicate owner", [{"op": "add", "path": "/contractOwnerIds/-", "value": 1}],
         400, "INVALID_FIELD", "contractOwnerIds"),
        ("an owner that does not exist", [{"op": "add", "path": "/contractOwnerIds/-",
                                           "value": 987654}], 400, "UNKNOWN_REFERENCE",
         "contractOwnerIds"),
        ("an unknown member", [{"op": "add", "path": "/colour", "value": "red"}],
         400, "UNKNOWN_FIELD", "colour"),
        ("an unknown member with an escaped name", [{"op": "add", "path": "/a~1b", "value": 1}],
         400, "UNKNOWN_FIELD", "a/b"),
    ]
    for what, ops, status, code, field in cases:
        tok = ADM if code == "UNKNOWN_REFERENCE" else W12
        s.error(patch(pid, ops, tok), status, code, "patch: " + what, field=field)
        s.eq(current(pid), before, "patch: %s changes nothing" % what)

    s.error(patch(pid, {"op": "remove", "path": "/name"}, W12), 400, "BAD_REQUEST",
            "patch: an object instead of an array")
    s.error(patch(pid, None, W12, raw="[{\"op\":"), 400, "INVALID_JSON", "patch: malformed JSON")
    s.error(patch(pid, None, W12, raw="[{\"op\":\"remove\",\"op\":\"add\",\"path\":\"/x\"}]"),
            400, "INVALID_JSON", "patch: duplicate members (RFC 6902 A.13)")
    s.error(patch(pid, [{"op": "replace", "path": "/name", "value": "x"}], W12,
                  content_type="application/json"), 415, "UNSUPPORTED_MEDIA_TYPE",
            "patch with application/json")
    s.error(patch(pid, [{"op": "replace", "path": "/name", "value": "x"}], W12,
                  content_type="application/merge-patch+json"), 415, "UNSUPPORTED_MEDIA_TYPE",
            "patch with a merge patch")
    s.error(patch(pid, [{"op": "replace", "path": "/name", "value": "x"}], W12, content_type=None),
            415, "UNSUPPORTED_MEDIA_TYPE", "patch without a content type")
    s.error(patch(pid, [], RO), 403, "INSUFFICIENT_SCOPE", "patch with a read-only token")
    s.error(patch(pid, []), 401, "UNAUTHENTICATED", "patch without a token")
    s.error(request("PATCH", "%s/%d?x=1" % (BASE, pid), body=[], tok=W12, content_type=PATCH_TYPE),
            400, "UNKNOWN_PARAMETER", "patch with a query parameter")
    s.error(patch(0, [], W12), 400, "INVALID_PARAMETER", "patch id 0")
    s.error(patch("abc", [], W12), 400, "INVALID_PARAMETER", "patch a non-numeric id")
    s.error(patch(99999999999, [], W12), 404, "NOT_FOUND", "patch an unknown provider")
    s.eq(current(pid), before, "the provider is unchanged after every failure")


def test_patch_tenancy(s):
    # Another tenant's providers: 404, and untouched.
    for pid in (2, 5):
        before = current(pid)
        s.error(patch(pid, [{"op": "replace", "path": "/name", "value": "hijacked"}], W1), 404,
                "NOT_FOUND", "owner 1 cannot patch provider %d" % pid)
        s.error(patch(pid, [{"op": "test", "path": "/id", "value": pid}], W1), 404,
                "NOT_FOUND", "owner 1 cannot even test provider %d" % pid)
        s.eq(current(pid), before, "provider %d unchanged" % pid)
    mine = new_provider(s, tok=W1, contractOwnerIds=[1])
    s.error(patch(mine["id"], [{"op": "add", "path": "/contractOwnerIds/-", "value": 2}], W1),
            400, "UNKNOWN_REFERENCE", "owner 1 cannot give its provider to owner 2",
            field="contractOwnerIds")
    s.error(patch(mine["id"], [{"op": "replace", "path": "/contractOwnerIds", "value": [2]}], W1),
            400, "UNKNOWN_REFERENCE", "owner 1 cannot move its provider to owner 2")
    s.eq(current(mine["id"])["contractOwnerIds"], [1], "still owner 1's only")
    s.error(patch(mine["id"], [{"op": "replace", "path": "/name", "value": "x"}], W2), 404,
            "NOT_FOUND", "owner 2 cannot patch owner 1's provider")

    # A provider shared by owners 1 and 2, patched by owner 1 alone.
    shared = new_provider(s, tok=W12, contractOwnerIds=[1, 2])
    sid = shared["id"]
    r = patch(sid, [{"op": "test", "path": "/contractOwnerIds", "value": [1]},
                    {"op": "replace", "path": "/name", "value": "%s shared" % RUN}], W1)
    s.status(r, 200, "owner 1 patches a shared provider; its view lists only owner 1")
    if r.json:
        s.eq(r.json["contractOwnerIds"], [1], "the response shows owner 1's view")
    s.eq(current(sid)["contractOwnerIds"], [1, 2], "owner 2 stays on the shared provider")
    r = patch(sid, [{"op": "replace", "path": "/contractOwnerIds", "value": [1]}], W1)
    s.status(r, 200, "owner 1 replaces the owners it sees")
    s.eq(current(sid)["contractOwnerIds"], [1, 2], "the hidden owner 2 is kept")
    s.error(patch(sid, [{"op": "remove", "path": "/contractOwnerIds/0"}], W1), 400,
            "INVALID_FIELD", "owner 1 cannot empty its own view", field="contractOwnerIds")
    s.eq(current(sid)["contractOwnerIds"], [1, 2], "still shared")
    s.error(patch(sid, [{"op": "add", "path": "/contractOwnerIds/-", "value": 2}], W1), 400,
            "UNKNOWN_REFERENCE", "owner 1 cannot name the hidden owner 2")
    s.error(patch(sid, [{"op": "remove", "path": "/contractOwnerIds/0"}], W2), 400,
            "INVALID_FIELD", "owner 2 cannot empty its view either")
    r = patch(sid, [{"op": "remove", "path": "/contractOwnerIds/1"}], W12)
    s.status(r, 200, "owners 1,2 remove owner 2 from the shared provider")
    s.eq(current(sid)["contractOwnerIds"], [1], "owner 2 removed")
    s.error(get("%s/%d" % (BASE, sid), tok=W2), 404, "NOT_FOUND",
            "owner 2 no longer sees the provider")
    r = patch(sid, [{"op": "add", "path": "/contractOwnerIds/-", "value": 3}], ADM)
    s.status(r, 200, "admin adds owner 3")
    s.eq(current(sid)["contractOwnerIds"], [1, 3], "owners 1 and 3")
    s.error(patch(sid, [{"op": "add", "path": "/contractOwnerIds/-", "value": 987654}], ADM), 400,
            "UNKNOWN_REFERENCE", "admin cannot add an owner that does not exist")


def test_patch_fixture_restored(s):
    """Provider 4 (a fixture) is patched and then restored exactly."""
    before = current(4)
    r = patch(4, [{"op": "test", "path": "/status", "value": "INACTIVE"},
                  {"op": "replace", "path": "/creditorIdentifier", "value": RUN},
                  {"op": "replace", "path": "/acceptExternalPayments", "value": True}], W1)
    s.status(r, 200, "owner 1 patches fixture provider 4")
    if r.json:
        s.eq(r.json["creditorIdentifier"], RUN, "provider 4 patched")
    r = patch(4, [{"op": "test", "path": "/creditorIdentifier", "value": RUN},
                  {"op": "replace", "path": "/creditorIdentifier",
                   "value": before["creditorIdentifier"]},
                  {"op": "replace", "path": "/acceptExternalPayments",
                   "value": before["acceptExternalPayments"]}], W1)
    s.status(r, 200, "provider 4 restored")
    s.eq(current(4), before, "provider 4 is exactly as loaded")


def test_patch_concurrent(s):
    """Compare-and-set through test + replace: concurrent writers never
    lose an update, because a patch runs with the provider row locked and
    the test sees the committed value."""
    p = new_provider(s, name="%s n=0" % RUN)
    pid, threads, each = p["id"], 4, 5
    errors = []

    def worker():
        done = 0
        for _ in range(200):
            if done == each:
                return
            cur = get("%s/%d" % (BASE, pid), tok=W12).json["name"]
            n = int(cur.rsplit("=", 1)[1])
            r = patch(pid, [{"op": "test", "path": "/name", "value": cur},
                            {"op": "replace", "path": "/name", "value": "%s n=%d" % (RUN, n + 1)}],
                      W12)
            if r.status == 200:
                done += 1
            elif r.status != 409:
                errors.append(r)
                return
        errors.append("gave up")

    ts = [threading.Thread(target=worker) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    s.eq(errors, [], "concurrent patches answer only 200 or 409")
    s.eq(current(pid)["name"], "%s n=%d" % (RUN, threads * each),
         "every successful compare-and-set counted exactly once")


# ---- methods --------------------------------------------------------------------

def test_methods(s):
    r = request("DELETE", BASE + "/1", tok=ADM)
    s.error(r, 405, "METHOD_NOT_ALLOWED", "DELETE a provider")
    s.eq(sorted((r.header("Allow") or "").replace(" ", "").split(",")), ["GET", "PATCH"],
         "Allow on a provider")
    s.error(request("PUT", BASE + "/1", body={}, tok=ADM), 405, "METHOD_NOT_ALLOWED", "PUT a provider")
    r = request("DELETE", BASE, tok=ADM)
    s.error(r, 405, "METHOD_NOT_ALLOWED", "DELETE the collection")
    s.eq(sorted((r.header("Allow") or "").replace(" ", "").split(",")), ["GET", "POST"],
         "Allow on the collection")
    s.error(request("PATCH", BASE, body=[], tok=ADM, content_type=PATCH_TYPE), 405,
            "METHOD_NOT_ALLOWED", "PATCH the collection")
    s.error(get(BASE + "/1/extra", tok=ADM), 404, "NOT_FOUND", "a path below a provider")
    s.eq(sql_one("SELECT COUNT(*) FROM payment_providers WHERE id = 1"), "1", "provider 1 is still there")


# ---- loader ---------------------------------------------------------------------

def load(doc):
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(doc, f)
        path = f.name
    try:
        p = subprocess.run([ENV["PAY_BIN"], "--config", ENV["PAY_CONFIG"], "load", path],
                           capture_output=True, text=True, timeout=60)
        return p.returncode, p.stdout + p.stderr
    finally:
        os.unlink(path)


def test_loader(s):
    # Ids just above the current ones: a record that reaches the INSERT
    # (then rolled back) moves AUTO_INCREMENT no further than a create would.
    base = int(sql_one("SELECT COALESCE(MAX(id), 0) FROM payment_providers")) + 1
    good = {"id": base, "type": "GO_CARDLESS", "name": "%s loaded" % RUN, "status": "ACTIVE",
            "contractOwnerIds": [1, 2]}
    cases = [
        ("missing contractOwnerIds", {"contractOwnerIds": None}, "contractOwnerIds is required"),
        ("empty contractOwnerIds", {"contractOwnerIds": []}, "contractOwnerIds must be a non-empty"),
        ("duplicate owners", {"contractOwnerIds": [1, 1]}, "contractOwnerIds must be a non-empty"),
        ("string owners", {"contractOwnerIds": ["1"]}, "contractOwnerIds must be a non-empty"),
        ("unknown owner", {"contractOwnerIds": [1, 987654]}, "contractOwnerIds: rejected"),
        ("unknown type", {"type": "NOPE"}, "type has an invalid value"),
        ("unknown status", {"status": "PAUSED"}, "status has an invalid value"),
        ("missing name", {"name": None}, "name is required"),
        ("string boolean", {"retryIfPossible": "true"}, "retryIfPossible has an invalid value"),
        ("unknown field", {"colour": "red"}, "unknown field \"colour\""),
        ("missing id", {"id": None}, "id is required"),
    ]
    for what, change, msg in cases:
        rec = dict(good)
        for k, v in change.items():
            if v is None:
                rec.pop(k)
            else:
                rec[k] = v
        fine = dict(good, id=base + 1, name="%s loaded fine" % RUN)
        rc, out = load({"paymentProviders": [rec, fine]})
        s.check(rc != 0, "load rejects a provider with " + what, out)
        s.check(msg in out, "load names the problem (%s)" % what, out)
        s.check("paymentProviders[0]" in out, "load names the record (%s)" % what, out)
        if "id" in rec:
            s.check("(id %d)" % rec["id"] in out, "load names the record's id (%s)" % what, out)
        s.eq(sql_one("SELECT COUNT(*) FROM payment_providers WHERE id IN (%d, %d)"
                     % (base, base + 1)), "0", "nothing loaded (%s)" % what)
    rc, out = load({"paymentProviders": [dict(good, contractOwnerIds=[1]),
                                         dict(good, id=base + 1, type="NOPE")]})
    s.check(rc != 0 and "paymentProviders[1] (id %d)" % (base + 1) in out,
            "a bad second record is named", out)
    s.eq(sql_one("SELECT COUNT(*) FROM payment_providers WHERE id = %d" % base), "0",
         "the good first record is not written either")
    rc, out = load({"paymentProviders": {"id": 1}})
    s.check(rc != 0 and "paymentProviders must be an array" in out, "the section must be an array",
            out)
    rc, out = load({"paymentProviders": [dict(good, id=1)]})
    s.check(rc != 0 and "paymentProviders[0] (id 1)" in out, "a duplicate id is refused", out)
    s.eq(current(1)["name"], "Sandbox GoCardless (Acme Energy)", "provider 1 untouched by the load")


if __name__ == "__main__":
    Suite().run([
        test_fixtures, test_get_errors, test_list_basics, test_list_filters,
        test_list_sort_fields, test_list_shared_provider, test_create, test_create_errors,
        test_create_idempotent, test_patch_ops, test_patch_failures, test_patch_tenancy,
        test_patch_fixture_restored, test_patch_concurrent, test_methods, test_loader,
    ])
