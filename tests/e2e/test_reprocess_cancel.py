"""End-to-end tests of /v1/invoice-payment-reprocess, /v1/invoice-payment-cancel
and /v1/payment-provider-reprocess (spec 4.6, status groups of 2, derived
status of 3).

Customers used (nobody else touches them): 51 (reprocess), 52 (cancel),
53 (owner 1: must not be touched by an owner-2 provider reprocess, and
validation), 54 (adhoc), 74 and 75 (owner 2, EUR: provider reprocess,
tenancy). Every test raises its own fresh invoices straight in the
database (the way the loader does) and computes expectations from the
state read first, so the file passes when run again on the same stack.

Since issue 13 (COLLECTION.md) reprocess opens a collection attempt and the
provider reprocess requeues the invoices whose newest attempt through that
provider failed.

Payment providers: a provider with retryIfPossible true serving owner 2
(fixture: 5, FINASTRA) and one with retryIfPossible false (fixture: 1,
GO_CARDLESS owner 1); inserted here when absent.
"""
import json
import uuid

from paytest import *

TOK = token()                         # contract owners 1 and 2
TOK1 = token(owners="1")
TOK2 = token(owners="2")
RUN = uuid.uuid4().hex[:10]
BRT = {1: "NORMAL", 2: "ADHOC"}
PATH = {1: "/v1/invoice-payments", 2: "/v1/adhoc-invoice-payments"}
IDF = {1: "generatedInvoiceId", 2: "generatedAdhocInvoiceId"}
PENDING = ["NEW", "CREATED", "PENDING_CUSTOMER_APPROVAL", "PENDING_SUBMISSION", "SUBMITTED",
           "CUSTOMER_APPROVAL_GRANTED", "UNSENT", "RESUBMISSION_REQUESTED", "FAILED_RETRYING"]
FAILED = ["FAILED", "CANCELLED", "CUSTOMER_APPROVAL_DENIED", "CUSTOMER_APPROVAL_MISSING",
          "UNSUPPORTED_PAYMENT_TYPE", "UNAUTHORISED_PAYMENT_TYPE"]
COLLECTED = ["CONFIRMED", "PAID_OUT", "MANUALLY_PAID", "CHARGEBACK_CANCELLED"]
INFO = ["SURCHARGE_FEE_DEBITED", "SURCHARGE_FEE_CREDITED", "REFUNDED", "PARTIALLY_REFUNDED",
        "REFUND_PENDING"]
FAILED_SQL = ",".join("'%s'" % x for x in FAILED)


# ---------------------------------------------------------------- helpers

def dumps(obj):
    if isinstance(obj, Decimal):
        return format(obj, "f")
    if isinstance(obj, dict):
        return "{" + ",".join(json.dumps(k) + ":" + dumps(v) for k, v in obj.items()) + "}"
    return json.dumps(obj)


def major(minor, digits=2):
    return Decimal(int(minor)).scaleb(-digits)


def add_invoice(cid, kind, amount_minor, prefix="E2E-RC"):
    """Raises an invoice straight in the database, the way the loader does."""
    txn, cpt, brt, br = (("INVOICE_CREATED", "INVOICE", "NORMAL", 1) if kind == 1 else
                         ("ADHOC_INVOICE_CREATED", "ADHOC_INVOICE", "ADHOC", 3))
    rows = sql(
        "START TRANSACTION;"
        "SELECT balance, currency_id INTO @b, @cur FROM customers WHERE id = %(c)d FOR UPDATE;"
        "SELECT COALESCE(MAX(id), 0) + 1 INTO @iid FROM invoices WHERE kind = %(k)d FOR UPDATE;"
        "INSERT INTO invoices (kind, id, customer_id, bill_run_id, invoice_number,"
        " invoice_date, amount) VALUES (%(k)d, @iid, %(c)d, %(br)d,"
        " CONCAT('%(p)s-', @iid), UTC_DATE(), %(a)d);"
        "SET @b = @b - %(a)d;"
        "INSERT INTO ledger (customer_id, txn_type, customer_payment_type, amount,"
        " resulting_balance, currency_id, payment_date, invoice_kind, invoice_id,"
        " invoice_number, bill_run_type) VALUES (%(c)d, '%(t)s', '%(cpt)s', -%(a)d, @b,"
        " @cur, UTC_DATE(), %(k)d, @iid, CONCAT('%(p)s-', @iid), '%(brt)s');"
        "UPDATE customers SET balance = @b, payments_since_invoice = 0 WHERE id = %(c)d;"
        "COMMIT;"
        "SELECT @iid;" % dict(c=cid, k=kind, a=amount_minor, p=prefix, t=txn, cpt=cpt,
                              brt=brt, br=br))
    return int(rows[-1][0])


def ensure_provider(pid, type_, name, status, owner, retry):
    """A provider serving `owner` with this retryIfPossible (the fixture's id pid
    preferred); inserted (as id pid when that id is free) if there is none."""
    found = sql_one("SELECT p.id FROM payment_providers p JOIN payment_provider_owners o"
                    " ON o.provider_id = p.id WHERE o.contract_owner_id = %d"
                    " AND p.retry_if_possible = %d AND p.type = '%s'"
                    " ORDER BY p.id = %d DESC, p.id LIMIT 1" % (owner, retry, type_, pid)) or \
        sql_one("SELECT p.id FROM payment_providers p JOIN payment_provider_owners o"
                " ON o.provider_id = p.id WHERE o.contract_owner_id = %d"
                " AND p.retry_if_possible = %d ORDER BY p.id = %d DESC, p.id LIMIT 1"
                % (owner, retry, pid))
    if found:
        return int(found)
    free = sql_one("SELECT COUNT(*) FROM payment_providers WHERE id = %d" % pid) == "0"
    rows = sql("INSERT INTO payment_providers (%s type, name, status, retry_if_possible)"
               " VALUES (%s '%s', '%s', '%s', %d); SELECT LAST_INSERT_ID();"
               % ("id," if free else "", "%d," % pid if free else "", type_, name, status, retry))
    new = pid if free else int(rows[-1][0])
    sql("INSERT IGNORE INTO payment_provider_owners (provider_id, contract_owner_id)"
        " VALUES (%d, %d)" % (new, owner))
    return new


def inv(kind, iid):
    r = sql("SELECT amount, paid, refunded, payment_status, COALESCE(third_party_status, '<null>')"
            " FROM invoices WHERE kind = %d AND id = %d" % (kind, iid))[0]
    return dict(amount=int(r[0]), paid=int(r[1]), refunded=int(r[2]), status=r[3], tp=r[4])


def balance(cid):
    return int(sql_one("SELECT balance FROM customers WHERE id = %d" % cid))


def max_ledger(cid):
    return int(sql_one("SELECT COALESCE(MAX(id), 0) FROM ledger WHERE customer_id = %d" % cid))


def events(kind, iid):
    return [dict(id=int(r[0]), tp=r[1], amount=int(r[2]), description=r[3], cpt=r[4],
                 method=r[5], ledger=r[6])
            for r in sql("SELECT id, COALESCE(third_party_status, '<null>'), amount,"
                         " COALESCE(description, '<null>'), customer_payment_type,"
                         " COALESCE(payment_method, '<null>'), COALESCE(ledger_id, 0)"
                         " FROM invoice_payments WHERE invoice_kind = %d AND invoice_id = %d"
                         " ORDER BY id" % (kind, iid))]


def snapshot(cid, kind, iid):
    return dict(inv=inv(kind, iid), balance=balance(cid), max_ledger=max_ledger(cid),
                events=len(events(kind, iid)))


def unchanged(s, cid, kind, iid, before, what):
    after = snapshot(cid, kind, iid)
    s.eq(after["inv"], before["inv"], what + ": invoice unchanged")
    s.eq(after["balance"], before["balance"], what + ": balance unchanged")
    s.eq(after["max_ledger"], before["max_ledger"], what + ": no ledger row")
    s.eq(after["events"], before["events"], what + ": no event recorded")


def event(kind, iid, amount, method="GO_CARDLESS", status=None, tok=TOK):
    body = {IDF[kind]: iid, "amountInMajorCurrency": Decimal(amount), "paymentMethod": method,
            "description": "e2e-rc %s" % RUN}
    if status:
        body["thirdPartyPaymentStatus"] = status
    return post(PATH[kind], raw=dumps(body), tok=tok)


def transition(op, kind, iid, notes=None, tok=TOK, body=None):
    b = body if body is not None else {"invoiceId": iid, "billRunType": BRT[kind]}
    if notes is not None:
        b["notes"] = notes
    return post("/v1/invoice-payment-%s" % op, raw=dumps(b), tok=tok)


def check_transition(s, r, op, cid, kind, iid, before, notes, what):
    """A successful reprocess (200) / cancel (202): one new event of the target
    status, no money, invoice third-party and derived status."""
    want_status, want_tp = (200, "RESUBMISSION_REQUESTED") if op == "reprocess" else \
        (202, "CANCELLED")
    if not s.status(r, want_status, what):
        return
    j = r.json or {}
    s.eq(j.get("thirdPartyPaymentStatus"), want_tp, what + ": the event's status")
    s.eq(j.get(IDF[kind]), iid, what + ": the event's invoice")
    s.eq(j.get("customerPaymentType"), "INVOICE" if kind == 1 else "ADHOC_INVOICE",
         what + ": the event's customerPaymentType")
    s.eq(j.get("description"), notes, what + ": the event carries the notes")
    outstanding = before["inv"]["amount"] - before["inv"]["paid"]
    s.eq(j.get("amountInMajorCurrency"), major(outstanding),
         what + ": the event's amount is what is outstanding")
    evs = events(kind, iid)
    s.eq(len(evs), before["events"] + 1, what + ": one event recorded")
    if evs:
        s.eq((evs[-1]["id"], evs[-1]["tp"], evs[-1]["ledger"]), (j.get("id"), want_tp, "0"),
             what + ": the recorded event (no ledger row)")
    g = get("%s/%s" % (PATH[kind], j.get("id")), TOK)
    s.eq(g.json, j if g.status == 200 else None, what + ": GET of the event")
    after = inv(kind, iid)
    s.eq(after["tp"], want_tp, what + ": invoice third-party status")
    s.eq(after["paid"], before["inv"]["paid"], what + ": paid unchanged")
    s.eq(after["status"], "PARTIALLY_PAID" if after["paid"] > 0 else
         ("PENDING" if op == "reprocess" else "UNPAID"), what + ": derived payment status")
    s.eq(balance(cid), before["balance"], what + ": balance unchanged")
    s.eq(max_ledger(cid), before["max_ledger"], what + ": no ledger row")


def refused(s, r, op, cid, kind, iid, before, status_word, what):
    s.error(r, 409, "CONFLICT", what, field="invoiceId")
    if r.status == 409 and r.json:
        s.check(status_word in (r.json.get("message") or ""),
                what + ": the message names the current status %s" % status_word, r.json)
    unchanged(s, cid, kind, iid, before, what)


# ---------------------------------------------------------------- tests

def test_reprocess(s):
    cid = 51
    iid = add_invoice(cid, 1, 5000)
    s.status(event(1, iid, "50.00", "GO_CARDLESS", "FAILED"), 201, "GO_CARDLESS FAILED 50.00")
    before = snapshot(cid, 1, iid)
    s.eq((before["inv"]["tp"], before["inv"]["status"]), ("FAILED", "UNPAID"), "failed: UNPAID")
    notes = "e2e-rc retry %s" % RUN
    r = transition("reprocess", 1, iid, notes)
    check_transition(s, r, "reprocess", cid, 1, iid, before, notes, "reprocess a FAILED invoice")
    # Again: the latest status is now RESUBMISSION_REQUESTED (pending) -> 409.
    before = snapshot(cid, 1, iid)
    refused(s, transition("reprocess", 1, iid), "reprocess", cid, 1, iid, before,
            "RESUBMISSION_REQUESTED", "reprocess again")

    # Every failed status allows it; partly paid invoices too.
    s.status(event(1, iid, "10.00", "GO_CARDLESS", "CONFIRMED"), 201, "CONFIRMED 10.00")
    before = snapshot(cid, 1, iid)
    refused(s, transition("reprocess", 1, iid), "reprocess", cid, 1, iid, before, "CONFIRMED",
            "reprocess a CONFIRMED invoice")
    for st in FAILED:
        s.status(event(1, iid, "40.00", "GO_CARDLESS", st), 201, "GO_CARDLESS %s" % st)
        before = snapshot(cid, 1, iid)
        check_transition(s, transition("reprocess", 1, iid), "reprocess", cid, 1, iid, before,
                         None, "reprocess after %s (partly paid)" % st)
    # Each its own payment (its own amount): an event of one attempt ranked
    # below its status would not move it (COLLECTION.md 2). Informational
    # statuses move no attempt: the latest status stays.
    for n, st in enumerate([x for x in PENDING if x != "RESUBMISSION_REQUESTED"] +
                           COLLECTED[:1] + INFO[:2]):
        latest = inv(1, iid)["tp"] if st in INFO else st
        s.status(event(1, iid, "1.%02d" % n if st not in COLLECTED else "0.01", "GO_CARDLESS",
                       st), 201, "GO_CARDLESS %s" % st)
        before = snapshot(cid, 1, iid)
        refused(s, transition("reprocess", 1, iid), "reprocess", cid, 1, iid, before, latest,
                "reprocess when the latest status is %s" % latest)

    # Fully paid and then a failed event: nothing to collect -> 409.
    iid = add_invoice(cid, 1, 2000)
    s.status(event(1, iid, "20.00", "BACS"), 201, "pay 20.00 BACS (fully paid)")
    s.status(event(1, iid, "20.00", "GO_CARDLESS", "FAILED"), 201, "then GO_CARDLESS FAILED")
    before = snapshot(cid, 1, iid)
    s.eq((before["inv"]["status"], before["inv"]["tp"]), ("PAID", "FAILED"), "PAID, latest FAILED")
    refused(s, transition("reprocess", 1, iid), "reprocess", cid, 1, iid, before, "FAILED",
            "reprocess a fully paid invoice")
    # No status at all.
    iid = add_invoice(cid, 1, 2000)
    before = snapshot(cid, 1, iid)
    r = transition("reprocess", 1, iid)
    s.error(r, 409, "CONFLICT", "reprocess an invoice without any third-party status",
            field="invoiceId")
    unchanged(s, cid, 1, iid, before, "reprocess without a status")


def test_cancel(s):
    cid = 52
    iid = add_invoice(cid, 1, 3000)
    s.status(event(1, iid, "30.00", "GO_CARDLESS", "PENDING_SUBMISSION"), 201, "PENDING_SUBMISSION")
    before = snapshot(cid, 1, iid)
    s.eq(before["inv"]["status"], "PENDING", "PENDING_SUBMISSION, nothing paid: PENDING")
    notes = "e2e-rc cancel %s" % RUN
    check_transition(s, transition("cancel", 1, iid, notes), "cancel", cid, 1, iid, before, notes,
                     "cancel a PENDING_SUBMISSION invoice")
    before = snapshot(cid, 1, iid)
    refused(s, transition("cancel", 1, iid), "cancel", cid, 1, iid, before, "CANCELLED",
            "cancel again")
    # Cancelled is failed: it can be reprocessed, and a RESUBMISSION_REQUESTED cancelled.
    before = snapshot(cid, 1, iid)
    check_transition(s, transition("reprocess", 1, iid), "reprocess", cid, 1, iid, before, None,
                     "reprocess a CANCELLED invoice")
    before = snapshot(cid, 1, iid)
    check_transition(s, transition("cancel", 1, iid), "cancel", cid, 1, iid, before, None,
                     "cancel a RESUBMISSION_REQUESTED invoice")
    # SUBMITTED is pending but already with the provider -> 409.
    s.status(event(1, iid, "30.00", "GO_CARDLESS", "SUBMITTED"), 201, "SUBMITTED")
    before = snapshot(cid, 1, iid)
    refused(s, transition("cancel", 1, iid), "cancel", cid, 1, iid, before, "SUBMITTED",
            "cancel a SUBMITTED invoice")
    # Every other pending status allows it, partly paid too.
    s.status(event(1, iid, "5.00", "GO_CARDLESS", "CONFIRMED"), 201, "CONFIRMED 5.00")
    for st in [x for x in PENDING if x != "SUBMITTED"]:
        s.status(event(1, iid, "25.00", "GO_CARDLESS", st), 201, "GO_CARDLESS %s" % st)
        before = snapshot(cid, 1, iid)
        check_transition(s, transition("cancel", 1, iid), "cancel", cid, 1, iid, before, None,
                         "cancel when the latest status is %s" % st)
    for st in FAILED[:1] + COLLECTED[:2] + INFO[:1] + ["CHARGED_BACK"]:
        latest = inv(1, iid)["tp"] if st in INFO else st
        s.status(event(1, iid, "0.01", "GO_CARDLESS", st), 201, "GO_CARDLESS %s" % st)
        before = snapshot(cid, 1, iid)
        refused(s, transition("cancel", 1, iid), "cancel", cid, 1, iid, before, latest,
                "cancel when the latest status is %s" % latest)
    iid = add_invoice(cid, 1, 1000)
    before = snapshot(cid, 1, iid)
    s.error(transition("cancel", 1, iid), 409, "CONFLICT",
            "cancel an invoice without any third-party status", field="invoiceId")
    unchanged(s, cid, 1, iid, before, "cancel without a status")


def test_adhoc(s):
    cid = 54
    iid = add_invoice(cid, 2, 3000)
    # The same id as a normal invoice (of someone else, maybe): billRunType decides.
    normal_same_id = sql_one("SELECT customer_id FROM invoices WHERE kind = 1 AND id = %d" % iid)
    s.status(event(2, iid, "30.00", "STRIPE", "FAILED"), 201, "adhoc STRIPE FAILED")
    before = snapshot(cid, 2, iid)
    check_transition(s, transition("reprocess", 2, iid, "adhoc"), "reprocess", cid, 2, iid, before,
                     "adhoc", "reprocess an adhoc invoice (billRunType ADHOC)")
    before = snapshot(cid, 2, iid)
    check_transition(s, transition("cancel", 2, iid), "cancel", cid, 2, iid, before, None,
                     "cancel the adhoc invoice")
    before = snapshot(cid, 2, iid)
    refused(s, transition("cancel", 2, iid), "cancel", cid, 2, iid, before, "CANCELLED",
            "cancel the adhoc invoice again")
    if normal_same_id is None:
        s.error(transition("reprocess", 1, iid), 400, "UNKNOWN_REFERENCE",
                "billRunType NORMAL with an adhoc-only invoice id", field="invoiceId")


def test_validation(s):
    cid = 53
    iid = add_invoice(cid, 1, 1000)
    s.status(event(1, iid, "10.00", "GO_CARDLESS", "FAILED"), 201, "FAILED")
    for op in ("reprocess", "cancel"):
        before = snapshot(cid, 1, iid)
        for body, st, code, field, what in (
                ({"invoiceId": 999999999, "billRunType": "NORMAL"}, 400, "UNKNOWN_REFERENCE",
                 "invoiceId", "unknown invoice"),
                ({"invoiceId": 999999999, "billRunType": "ADHOC"}, 400, "UNKNOWN_REFERENCE",
                 "invoiceId", "unknown adhoc invoice"),
                ({"billRunType": "NORMAL"}, 400, "MISSING_FIELD", "invoiceId", "no invoiceId"),
                ({"invoiceId": iid}, 400, "MISSING_FIELD", "billRunType", "no billRunType"),
                ({"invoiceId": iid, "billRunType": "WEEKLY"}, 400, "INVALID_FIELD", "billRunType",
                 "billRunType WEEKLY"),
                ({"invoiceId": "x", "billRunType": "NORMAL"}, 400, "INVALID_FIELD", "invoiceId",
                 "invoiceId a string"),
                ({"invoiceId": iid, "billRunType": "NORMAL", "notes": "n" * 256}, 400,
                 "INVALID_FIELD", "notes", "notes of 256 characters"),
                ({"invoiceId": iid, "billRunType": "NORMAL", "reason": "x"}, 400, "UNKNOWN_FIELD",
                 "reason", "unknown field")):
            s.error(transition(op, 1, iid, body=body), st, code, "%s: %s" % (op, what),
                    field=field)
        unchanged(s, cid, 1, iid, before, "%s: rejected requests" % op)
    # Tenancy: customer 74 belongs to owner 2.
    c2 = 74
    iid = add_invoice(c2, 1, 1000)
    s.status(event(1, iid, "10.00", "GO_CARDLESS", "PENDING_SUBMISSION", tok=TOK2), 201,
             "owner 2: PENDING_SUBMISSION on customer 74's invoice")
    before = snapshot(c2, 1, iid)
    for op in ("cancel", "reprocess"):
        s.error(transition(op, 1, iid, tok=TOK1), 400, "UNKNOWN_REFERENCE",
                "owner-1 token %ss customer 74's invoice" % op, field="invoiceId")
    unchanged(s, c2, 1, iid, before, "owner-1 token on an owner-2 invoice")
    check_transition(s, transition("cancel", 1, iid, tok=TOK2), "cancel", c2, 1, iid, before, None,
                     "owner-2 token cancels customer 74's invoice")


def test_provider_reprocess(s):
    retry_p = ensure_provider(5, "FINASTRA", "Finastra (Borealis Water)", "ACTIVE", 2, 1)
    noretry_p = ensure_provider(1, "GO_CARDLESS", "GoCardless (Acme Energy)", "ACTIVE", 1, 0)
    owners_of = lambda p: {int(x[0]) for x in sql("SELECT contract_owner_id FROM"
                                                  " payment_provider_owners WHERE provider_id = %d"
                                                  % p)}
    s.check(2 in owners_of(retry_p), "provider %d serves owner 2" % retry_p)
    s.eq(sql_one("SELECT retry_if_possible FROM payment_providers WHERE id = %d" % retry_p), "1",
         "provider %d has retryIfPossible true" % retry_p)
    owners = owners_of(retry_p) & {1, 2}              # what the token (owners 1,2) may see

    def eligible():
        # COLLECTION.md 3: the invoices whose newest attempt went through that
        # provider and failed (not every failed invoice of its owners).
        return {(int(x[0]), int(x[1])) for x in sql(
            "SELECT i.kind, i.id FROM attempts t JOIN invoices i ON i.kind = t.invoice_kind"
            " AND i.id = t.invoice_id JOIN customers c ON c.id = i.customer_id"
            " WHERE c.contract_owner_id IN (%s) AND i.paid < i.amount AND t.kind = 1"
            " AND t.provider_id = %d AND t.status IN (%s) AND t.id = (SELECT MAX(n.id)"
            " FROM attempts n WHERE n.kind = 1 AND n.invoice_kind = t.invoice_kind"
            " AND n.invoice_id = t.invoice_id)"
            % (",".join(map(str, owners)), retry_p, FAILED_SQL))}

    existing = eligible()
    # Set up: eligible ones on customers 74 and 75, and some that must be left alone.
    mine, left_alone = [], []

    def make(cid, kind, amount, steps, tok=TOK2):
        iid = add_invoice(cid, kind, amount)
        for a, m, st in steps:
            s.status(event(kind, iid, a, m, st, tok=tok), 201,
                     "setup: %s %s %s on customer %d invoice %d/%d" % (a, m, st, cid, kind, iid))
        return (kind, iid, cid)

    mine.append(make(74, 1, 4000, [("40.00", "FINASTRA", "FAILED")]))
    mine.append(make(74, 1, 4000, [("15.00", "FINASTRA", "CONFIRMED"),
                                   ("25.00", "FINASTRA", "FAILED")]))            # partly paid
    mine.append(make(75, 1, 2000, [("20.00", "FINASTRA", "PENDING_SUBMISSION"),
                                   ("20.00", "FINASTRA", "CANCELLED")]))
    mine.append(make(75, 2, 3000, [("30.00", "FINASTRA", "CUSTOMER_APPROVAL_DENIED")]))  # adhoc
    left_alone.append(make(75, 1, 2000, [("20.00", "BACS", None),
                                         ("20.00", "FINASTRA", "FAILED")]))      # fully paid
    left_alone.append(make(74, 1, 2000, [("20.00", "FINASTRA", "SUBMITTED")]))  # pending
    left_alone.append(make(74, 1, 2000, [("20.00", "FINASTRA", "FAILED"),
                                         ("20.00", "FINASTRA", "RESUBMISSION_REQUESTED")]))
    left_alone.append(make(53, 1, 2000, [("20.00", "GO_CARDLESS", "FAILED")], tok=TOK))  # owner 1
    expected = existing | {(k, i) for k, i, _ in mine}
    s.eq(eligible(), expected, "before: the eligible invoices are the existing ones plus this"
                               " test's %d" % len(mine))
    snap = {(k, i): snapshot(c, k, i) for k, i, c in mine + left_alone}
    others = {x: inv(*x) for x in existing}

    # retryIfPossible false -> 200 with count 0 (spec 4.6), nothing changes.
    r = post("/v1/payment-provider-reprocess", raw=dumps({"paymentProviderId": noretry_p}), tok=TOK)
    s.status(r, 200, "provider %d (retryIfPossible false)" % noretry_p)
    s.eq(r.json, {"reprocessedInvoiceCount": 0},
         "provider %d (retryIfPossible false) requeues nothing" % noretry_p)
    for k, i, c in mine + left_alone:
        unchanged(s, c, k, i, snap[(k, i)], "after the provider reprocess that requeued nothing:"
                  " invoice %d/%d" % (k, i))
    # Another tenant's provider, an unknown one, bad bodies -> 400.
    for body, tok, code, field, what in (
            ({"paymentProviderId": retry_p}, TOK1, "UNKNOWN_REFERENCE", "paymentProviderId",
             "owner-1 token, provider %d of owner 2" % retry_p),
            ({"paymentProviderId": 3}, TOK, "UNKNOWN_REFERENCE", "paymentProviderId",
             "provider 3 (owner 3) with a token of owners 1,2"),
            ({"paymentProviderId": 999999999}, TOK, "UNKNOWN_REFERENCE", "paymentProviderId",
             "unknown provider"),
            ({}, TOK, "MISSING_FIELD", "paymentProviderId", "no paymentProviderId"),
            ({"paymentProviderId": "5"}, TOK, "INVALID_FIELD", "paymentProviderId",
             "paymentProviderId a string"),
            ({"paymentProviderId": retry_p, "notes": "n" * 256}, TOK, "INVALID_FIELD", "notes",
             "notes of 256 characters"),
            ({"paymentProviderId": retry_p, "all": True}, TOK, "UNKNOWN_FIELD", "all",
             "unknown field")):
        if body.get("paymentProviderId") == 3 and sql_one(
                "SELECT COUNT(*) FROM payment_provider_owners WHERE provider_id = 3"
                " AND contract_owner_id IN (1, 2)") != "0":
            continue
        s.error(post("/v1/payment-provider-reprocess", raw=dumps(body), tok=tok), 400, code,
                "provider reprocess: " + what, field=field)
    s.eq(eligible(), expected, "refused provider reprocess calls changed nothing")

    notes = "e2e-rc provider %s" % RUN
    r = post("/v1/payment-provider-reprocess",
             raw=dumps({"paymentProviderId": retry_p, "notes": notes}), tok=TOK)
    if s.status(r, 200, "provider reprocess, provider %d (retryIfPossible true)" % retry_p):
        s.eq(r.json, {"reprocessedInvoiceCount": len(expected)},
             "reprocessedInvoiceCount = %d existing + %d of this test"
             % (len(existing), len(mine)))
    for k, i, c in mine:
        before = snap[(k, i)]
        after = inv(k, i)
        what = "provider reprocess: invoice %d/%d of customer %d" % (k, i, c)
        s.eq((after["tp"], after["paid"]), ("RESUBMISSION_REQUESTED", before["inv"]["paid"]),
             what + ": RESUBMISSION_REQUESTED, paid unchanged")
        s.eq(after["status"], "PARTIALLY_PAID" if after["paid"] else "PENDING",
             what + ": derived status")
        evs = events(k, i)
        s.eq([(e["tp"], e["description"], e["amount"], e["ledger"]) for e in evs[before["events"]:]],
             [("RESUBMISSION_REQUESTED", notes, before["inv"]["amount"] - before["inv"]["paid"],
               "0")], what + ": one RESUBMISSION_REQUESTED event with the notes")
        s.eq((balance(c), max_ledger(c)), (before["balance"], before["max_ledger"]),
             what + ": no money moved")
    for k, i, c in left_alone:
        unchanged(s, c, k, i, snap[(k, i)], "provider reprocess left invoice %d/%d alone" % (k, i))
    s.eq([x for x in existing if inv(*x)["tp"] != "RESUBMISSION_REQUESTED"], [],
         "provider reprocess: the pre-existing eligible invoices were requeued too")
    s.eq(eligible(), set(), "provider reprocess: no eligible invoice left")
    r = post("/v1/payment-provider-reprocess", raw=dumps({"paymentProviderId": retry_p}), tok=TOK)
    if s.status(r, 200, "provider reprocess again"):
        s.eq(r.json, {"reprocessedInvoiceCount": 0}, "provider reprocess again: nothing to do")
    # The owner-2 token sees the same provider.
    k, i, c = make(75, 1, 1000, [("10.00", "FINASTRA", "FAILED")])
    r = post("/v1/payment-provider-reprocess", raw=dumps({"paymentProviderId": retry_p}), tok=TOK2)
    if s.status(r, 200, "owner-2 token: provider reprocess"):
        s.eq(r.json, {"reprocessedInvoiceCount": 1}, "owner-2 token: the one new failed invoice")
        s.eq(inv(k, i)["tp"], "RESUBMISSION_REQUESTED", "owner-2 token: it was requeued")


Suite().run([
    test_reprocess,
    test_cancel,
    test_adhoc,
    test_validation,
    test_provider_reprocess,
])
