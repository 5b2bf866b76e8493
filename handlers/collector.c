/*
 * The collection engine (see collector.h). One pass:
 *   1. claim: in one short transaction, SELECT due attempts FOR UPDATE
 *      SKIP LOCKED (another collector skips them) and push their
 *      next_action_at out by the lease; commit. A collector that dies
 *      after this leaves the attempt due again when the lease ends.
 *   2. act, outside any transaction: submit, fetch or cancel at the
 *      provider with the attempt's fixed idempotency key.
 *   3. record, in a new transaction that locks the customer, then the
 *      attempt: the answer goes through attempt_advance (money at most
 *      once), and the next action is scheduled.
 * Errors: PROVIDER_RETRY (network, 5xx, 429) waits with exponential
 * backoff and jitter (or the provider's Retry-After), then fails the
 * attempt after max_calls; PROVIDER_REFUSED (4xx) fails it at once.
 * Everything a pass allocates lives in its arena.
 */
#include "collector.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "collection.h"
#include "log.h"
#include "metrics.h"
#include "provider.h"
#include "provider_stripe.h"
#include "router.h"

static struct collector_settings cs = {
    .poll_ms = 500, .lease_ms = 30000, .reconcile_ms = 5000, .backoff_ms = 1000,
    .backoff_max_ms = 60000, .max_calls = 8, .refund_expiry_days = 7,
    .autocollect_every_ms = 60000,
};

static const char *only_customers; /* FIND_IN_SET list, or NULL */

void
collector_configure(const struct collector_settings *s)
{
    cs = *s;
}

void
collector_only_customers(const char *csv)
{
    only_customers = csv;
}

/* Statuses in which a collection still has to be handed to the provider. */
static int
needs_submission(const struct attempt *a)
{
    if (a->reference != NULL)
        return 0;
    if (a->kind == ATTEMPT_REFUND)
        return attempt_group_of(ATTEMPT_REFUND, a->status) == AG_PENDING;
    return attempt_group_of(ATTEMPT_COLLECTION, a->status) == AG_PENDING;
}

static long
backoff(int calls)
{
    long d = cs.backoff_ms;
    for (int i = 1; i < calls && d < cs.backoff_max_ms; i++)
        d *= 2;
    if (d > cs.backoff_max_ms)
        d = cs.backoff_max_ms;
    /* Full jitter on the upper half, so retries of many attempts spread. */
    return d / 2 + (long)(random() % (d / 2 + 1));
}

/* ---- recording ------------------------------------------------------------- */

struct answer {
    const char *status;      /* NULL: no status change */
    const char *reference;
    const char *error;
    long        next_ms;     /* < 0: nothing more to do */
    int         called;      /* a provider call was made */
    int         provider_id; /* > 0: the provider found for it */
    int64_t     provider;
    int         clear_cancel;
};

static enum db_rc
record_once(struct db_uow *u, int64_t id, const struct answer *ans)
{
    struct attempt  a;
    struct customer c;
    enum db_rc      rc;
    if ((rc = db_tx_begin(u)) != DB_OK || (rc = attempt_load(u, id, 0, &a)) != DB_OK ||
        (rc = customer_load(u, a.customer_id, 1, &c)) != DB_OK ||
        (rc = attempt_load(u, id, 1, &a)) != DB_OK)
        return rc;
    if (ans->provider_id) {
        struct dbq *q = dbq_new(u, "UPDATE attempts SET provider_id = ? WHERE id = ?");
        dbq_i64(q, ans->provider);
        dbq_i64(q, id);
        if ((rc = dbq_exec(q)) != DB_OK)
            return rc;
    }
    if (ans->clear_cancel) {
        struct dbq *q = dbq_new(u, "UPDATE attempts SET cancel_requested = 0 WHERE id = ?");
        dbq_i64(q, id);
        if ((rc = dbq_exec(q)) != DB_OK)
            return rc;
    }
    if (ans->status != NULL) {
        struct attempt_report  rep = {.reference = ans->reference, .error_info = ans->error};
        struct attempt_outcome out;
        rc = attempt_advance(u, &c, &a, ans->status, &rep, &out);
        if (rc == DB_CONFLICT) {
            /* A reversal the invoices cannot take (refunds hold the money):
             * kept for an operator, not applied. */
            db_tx_rollback(u);
            log_warn("collector", "attempt %" PRId64 ": %s refused: refunds hold the money",
                     id, ans->status);
            db_uow_reset(u);
            if ((rc = db_tx_begin(u)) != DB_OK || (rc = attempt_load(u, id, 1, &a)) != DB_OK)
                return rc;
            struct dbq *q = dbq_new(u, "UPDATE attempts SET error_info = ? WHERE id = ?");
            dbq_str(q, "the provider reported a reversal that refunds on the invoice"
                       " prevent: needs an operator");
            dbq_i64(q, id);
            if ((rc = dbq_exec(q)) != DB_OK)
                return rc;
        } else if (rc != DB_OK) {
            return rc;
        }
    } else if (ans->reference != NULL && a.reference == NULL) {
        a.reference = ans->reference;
    }
    if (ans->reference != NULL && a.reference == NULL)
        a.reference = ans->reference;
    if ((rc = attempt_schedule(u, &a, ans->next_ms, ans->status ? NULL : ans->error,
                               ans->called)) != DB_OK)
        return rc;
    if (a.reference != NULL) {
        /* An instant bank payment shows the provider's reference. */
        struct dbq *q = dbq_new(u, "UPDATE instant_bank_payments SET reference = ?"
                                   " WHERE attempt_id = ? AND reference IS NULL");
        dbq_str(q, a.reference);
        dbq_i64(q, id);
        if ((rc = dbq_exec(q)) != DB_OK)
            return rc;
    }
    return db_tx_commit(u);
}

static enum db_rc
record(struct db_uow *u, int64_t id, const struct answer *ans)
{
    enum db_rc rc;
    for (int tries = 0;; tries++) {
        rc = record_once(u, id, ans);
        db_uow_reset(u);
        if (rc != DB_RETRY || tries >= 5)
            return rc;
    }
}

/* ---- acting on one attempt --------------------------------------------------- */

static const char *
currency_code(struct db_uow *u, int64_t currency_id)
{
    struct dbq *q = dbq_new(u, "SELECT code FROM currencies WHERE id = ?");
    dbq_i64(q, currency_id);
    return dbq_one(q) == DB_OK ? dbq_col_str(q, 0) : "GBP";
}

/* The provider of the attempt, or an ACTIVE one of its method for the
 * customer's contract owner. 0 with *active = 0 when there is none. */
/* A refund is paid back from one collected payment at providers that
 * refund payments (GoCardless): the customer's newest one at this provider
 * big enough, or NULL (the adapter then refuses). */
static const char *
refundable_payment(struct db_uow *u, const struct attempt *a, int64_t provider)
{
    struct dbq *q = dbq_new(u,
        "SELECT provider_reference FROM attempts WHERE kind = ? AND customer_id = ?"
        " AND provider_id = ? AND provider_reference IS NOT NULL AND amount >= ?"
        " AND status IN ('CONFIRMED','PAID_OUT','CHARGEBACK_CANCELLED')"
        " ORDER BY id DESC LIMIT 1");
    dbq_i64(q, ATTEMPT_COLLECTION);
    dbq_i64(q, a->customer_id);
    dbq_i64(q, provider);
    dbq_i64(q, a->amount);
    if (dbq_one(q) != DB_OK)
        return NULL;
    const char *ref = dbq_col_str(q, 0);
    return ref ? arena_strdup(u->arena, ref) : NULL;
}

static enum db_rc
provider_of(struct db_uow *u, const struct attempt *a, int64_t *id, int *active)
{
    struct dbq *q;
    *active = 0;
    *id = 0;
    if (a->provider_id != 0) {
        q = dbq_new(u, "SELECT status = 'ACTIVE' FROM payment_providers WHERE id = ?");
        dbq_i64(q, a->provider_id);
        enum db_rc rc = dbq_one(q);
        if (rc != DB_OK && rc != DB_NOT_FOUND)
            return rc;
        if (rc == DB_OK && dbq_col_i64(q, 0)) {
            *id = a->provider_id;
            *active = 1;
            return DB_OK;
        }
    }
    q = dbq_new(u,
        "SELECT p.id FROM payment_providers p JOIN payment_provider_owners o"
        " ON o.provider_id = p.id JOIN customers c ON c.contract_owner_id = o.contract_owner_id"
        " WHERE c.id = ? AND p.type = ? AND p.status = 'ACTIVE' ORDER BY p.id LIMIT 1");
    dbq_i64(q, a->customer_id);
    dbq_str(q, a->method);
    enum db_rc rc = dbq_one(q);
    if (rc == DB_NOT_FOUND)
        return DB_OK;
    if (rc != DB_OK)
        return rc;
    *id = dbq_col_i64(q, 0);
    *active = 1;
    return DB_OK;
}

static int
older_than_days(struct db_uow *u, int64_t id, int days)
{
    struct dbq *q = dbq_new(u, "SELECT created_at < UTC_TIMESTAMP(6) - INTERVAL ? DAY"
                               " FROM attempts WHERE id = ?");
    dbq_i64(q, days);
    dbq_i64(q, id);
    return dbq_one(q) == DB_OK && dbq_col_i64(q, 0) != 0;
}

/* Mandate statuses the provider still changes by itself (before ACTIVE). */
#define MANDATE_PENDING_SQL                                                          \
    "('CREATED','CUSTOMER_APPROVAL_GRANTED','CUSTOMER_APPROVAL_SKIPPED',"          \
    "'PENDING_SUBMISSION','SUBMITTED')"

/* A collection on a mandate the provider has not made ACTIVE yet waits:
 * why (for errorInfo), or NULL when it may be submitted (an active or
 * ended mandate: the provider decides; a mandate not held here). */
static const char *
mandate_pending(struct db_uow *u, const struct attempt *a)
{
    if (a->mandate_reference == NULL)
        return NULL;
    struct dbq *q = dbq_new(u, "SELECT status FROM provider_mandates WHERE payment_method = ?"
                               " AND mandate_reference = ? AND status IN " MANDATE_PENDING_SQL);
    dbq_str(q, a->method);
    dbq_str(q, a->mandate_reference);
    if (dbq_one(q) != DB_OK)
        return NULL;
    return arena_printf(u->arena, "waiting for mandate %s to become ACTIVE (now %s)",
                        a->mandate_reference, dbq_col_str(q, 0));
}

/* The status a permanent failure gives: refunds have no FAILED. */
static const char *
failed_status(const struct attempt *a)
{
    return a->kind == ATTEMPT_REFUND ? "CANCELLED" : "FAILED";
}

static void
act(struct arena *ar, int64_t id)
{
    struct req     r;
    struct attempt a;
    struct answer  ans = {.next_ms = -1};
    req_init(&r, ar);
    db_uow_init(&r.db, ar);

    if (attempt_load(&r.db, id, 0, &a) != DB_OK) {
        db_uow_reset(&r.db);
        return;
    }
    int final = attempt_final(a.kind, a.status);
    int collected = a.kind == ATTEMPT_COLLECTION &&
                    attempt_group_of(a.kind, a.status) == AG_COLLECTED;
    if (final || (collected && !a.cancel_requested && a.reference == NULL)) {
        ans.next_ms = -1; /* nothing left to do */
        (void)record(&r.db, id, &ans);
        return;
    }
    int64_t    provider;
    int        active;
    enum db_rc rc = provider_of(&r.db, &a, &provider, &active);
    if (rc != DB_OK) {
        db_uow_reset(&r.db);
        return; /* the lease ends; tried again */
    }
    if (!active) {
        /* No ACTIVE provider: wait for one; a refund is not reserved for
         * ever (COLLECTION.md §3): after the expiry it is cancelled. */
        if (needs_submission(&a) && older_than_days(&r.db, id, cs.refund_expiry_days)) {
            ans.status = failed_status(&a);
            ans.error = arena_printf(ar, "no ACTIVE %s provider within %d days", a.method,
                                     cs.refund_expiry_days);
        } else {
            ans.next_ms = 60000;
            ans.error = arena_printf(ar, "waiting for an ACTIVE %s provider", a.method);
        }
        db_uow_reset(&r.db);
        (void)record(&r.db, id, &ans);
        return;
    }
    if (provider != a.provider_id) {
        ans.provider_id = 1;
        ans.provider = provider;
    }
    const char *type = a.method;
    struct provider_money m = {a.amount, currency_code(&r.db, a.currency_id), a.description,
                               a.idem_key, provider, a.mandate_reference, NULL};
    if (a.kind == ATTEMPT_REFUND && needs_submission(&a))
        m.payment_reference = refundable_payment(&r.db, &a, provider);
    const char *mandate_wait = NULL;
    if (a.kind == ATTEMPT_COLLECTION && needs_submission(&a) && !a.cancel_requested)
        mandate_wait = mandate_pending(&r.db, &a);
    struct provider_result res = {0};
    db_uow_reset(&r.db); /* nothing open while the provider is on the line */

    const struct provider_adapter *pa = provider_adapter(type);
    int                            prc;
    struct timespec                t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int                            cancelling = a.cancel_requested && a.kind == ATTEMPT_COLLECTION;
    if (mandate_wait != NULL) {
        ans.next_ms = cs.reconcile_ms;
        ans.error = mandate_wait;
        (void)record(&r.db, id, &ans);
        return;
    }
    if (cancelling && a.reference != NULL)
        prc = pa->payment_cancel(&r, a.reference, &m, &res);
    else if (needs_submission(&a) && !cancelling)
        prc = a.kind == ATTEMPT_REFUND ? pa->refund_submit(&r, &m, &res)
                                       : pa->payment_submit(&r, &m, &res);
    else if (a.reference != NULL)
        prc = a.kind == ATTEMPT_REFUND ? pa->refund_fetch(&r, a.reference, &m, &res)
                                       : pa->payment_fetch(&r, a.reference, &m, &res);
    else { /* a cancel of an attempt the provider never saw */
        ans.status = "CANCELLED";
        ans.clear_cancel = 1;
        (void)record(&r.db, id, &ans);
        return;
    }
    db_uow_reset(&r.db);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    metrics_provider_call(prc == 0 ? 0 : prc == PROVIDER_RETRY ? 1 : 2,
                          (t1.tv_sec - t0.tv_sec) * 1000000L + (t1.tv_nsec - t0.tv_nsec) / 1000);
    ans.called = 1;
    /* A failed call created nothing at the provider: no reference from it
     * (the retry submits again, with the same key). */
    ans.reference = prc == 0 ? res.reference : NULL;
    if (prc == 0) {
        ans.status = res.status;
        ans.next_ms = res.more ? cs.reconcile_ms : -1;
        if (cancelling)
            ans.clear_cancel = 1;
    } else if (prc == PROVIDER_REFUSED && cancelling) {
        /* The provider refuses to cancel (already submitted): the attempt
         * runs on, the refusal in errorInfo. */
        ans.clear_cancel = 1;
        ans.error = res.error ? res.error : "the provider refused to cancel";
        ans.next_ms = cs.reconcile_ms;
    } else if (prc == PROVIDER_REFUSED) {
        ans.status = failed_status(&a);
        ans.error = res.error ? res.error : "refused by the provider";
    } else if (a.calls + 1 >= cs.max_calls) {
        ans.status = needs_submission(&a) ? failed_status(&a) : NULL;
        ans.error = arena_printf(ar, "gave up after %d calls: %s", a.calls + 1,
                                 res.error ? res.error : "provider unavailable");
        ans.next_ms = ans.status ? -1 : cs.backoff_max_ms;
    } else {
        ans.error = res.error ? res.error : "provider unavailable";
        ans.next_ms = res.retry_after_ms > 0 ? res.retry_after_ms : backoff(a.calls + 1);
    }
    if (record(&r.db, id, &ans) != DB_OK)
        log_warn("collector", "attempt %" PRId64 ": the answer could not be recorded;"
                 " it is asked again when the lease ends", id);
}

/* ---- passes ------------------------------------------------------------------ */

/* Ends a claim's transaction: committed (0), or rolled back with the
 * arena reset: 1 after a conflict (another collector claimed some of the
 * rows first; on a cluster through another node, as SKIP LOCKED sees only
 * this node's locks and certification decides: nothing claimed this
 * pass), -1 after an error. */
static int
claim_end(struct db_uow *u, struct arena *ar, enum db_rc rc)
{
    if (rc == DB_OK)
        rc = db_tx_commit(u);
    db_uow_reset(u);
    if (rc != DB_OK) {
        arena_reset(ar);
        return rc == DB_RETRY ? 1 : -1;
    }
    return 0;
}

int
collector_pass(struct arena *ar, int batch)
{
    struct db_uow u;
    db_uow_init(&u, ar);
    enum db_rc rc = db_tx_begin(&u);
    struct dbq *q = NULL;
    if (rc == DB_OK) {
        q = dbq_new(&u, "SELECT id FROM attempts WHERE next_action_at <= UTC_TIMESTAMP(6)"
                        " AND (? IS NULL OR FIND_IN_SET(customer_id, ?))"
                        " ORDER BY next_action_at LIMIT ? FOR UPDATE SKIP LOCKED");
        dbq_str(q, only_customers);
        dbq_str(q, only_customers);
        dbq_i64(q, batch);
        rc = dbq_exec(q);
    }
    int64_t ids[64];
    int     n = 0;
    if (batch > 64)
        batch = 64;
    while (rc == DB_OK && (rc = dbq_fetch(q)) == DB_OK)
        if (n < batch)
            ids[n++] = dbq_col_i64(q, 0);
    if (rc == DB_NOT_FOUND)
        rc = DB_OK;
    for (int i = 0; rc == DB_OK && i < n; i++) {
        struct dbq *l = dbq_new(&u, "UPDATE attempts SET next_action_at = UTC_TIMESTAMP(6)"
                                    " + INTERVAL ? * 1000 MICROSECOND, lease_until ="
                                    " UTC_TIMESTAMP(6) + INTERVAL ? * 1000 MICROSECOND"
                                    " WHERE id = ?");
        dbq_i64(l, cs.lease_ms);
        dbq_i64(l, cs.lease_ms);
        dbq_i64(l, ids[i]);
        rc = dbq_exec(l);
    }
    int end = claim_end(&u, ar, rc);
    if (end != 0)
        return end > 0 ? 0 : -1;
    for (int i = 0; i < n; i++) {
        act(ar, ids[i]);
        arena_reset(ar);
    }
    return n;
}

/* ---- mandates pending at the provider ----------------------------------------- */

/* The wait before the next fetch of a mandate still pending after `checks`
 * fetches: the reconcile interval, doubling up to an hour (a Direct Debit
 * mandate takes days; the webhook normally comes first). */
static long
mandate_delay(int checks)
{
    long d = cs.reconcile_ms > 0 ? cs.reconcile_ms : 1000;
    for (int i = 0; i < checks && d < 3600000L; i++)
        d *= 2;
    return d > 3600000L ? 3600000L : d;
}

static enum db_rc
mandate_record(struct db_uow *u, int64_t provider, const char *method, const char *ref,
               const char *status, long next_ms)
{
    enum db_rc rc;
    int        moved = 0;
    if ((rc = db_tx_begin(u)) != DB_OK)
        return rc;
    if (status != NULL) {
        rc = mandate_status_forward(u, provider, ref, status, &moved);
        if (rc != DB_OK)
            return rc;
        if (moved)
            log_info("collector", "mandate %s: %s by fetch", ref, status);
    }
    struct dbq *q = dbq_new(u, "UPDATE provider_mandates SET checks = checks + 1,"
                               " next_check_at = IF(status IN " MANDATE_PENDING_SQL " AND ? >= 0,"
                               " UTC_TIMESTAMP(6) + INTERVAL ? * 1000 MICROSECOND, NULL)"
                               " WHERE payment_method = ? AND mandate_reference = ?");
    dbq_i64(q, next_ms);
    dbq_i64(q, next_ms);
    dbq_str(q, method);
    dbq_str(q, ref);
    if ((rc = dbq_exec(q)) != DB_OK)
        return rc;
    return db_tx_commit(u);
}

int
collector_mandates(struct arena *ar, int batch)
{
    struct db_uow u;
    db_uow_init(&u, ar);
    if (batch > 64)
        batch = 64;
    struct {
        const char *method, *ref;
        int64_t     provider;
        int         pending, checks;
    } m[64];
    int        n = 0;
    struct dbq *q = NULL;
    enum db_rc rc = db_tx_begin(&u);
    if (rc == DB_OK) {
        q = dbq_new(&u,
            "SELECT pm.payment_method, pm.mandate_reference, pm.provider_id,"
            " pm.status IN " MANDATE_PENDING_SQL ", pm.checks FROM provider_mandates pm"
            " WHERE pm.next_check_at <= UTC_TIMESTAMP(6) AND (? IS NULL OR EXISTS (SELECT 1"
            " FROM site_payment_mandates sm JOIN sites s ON s.id = sm.site_id"
            " WHERE sm.mandate_reference = pm.mandate_reference"
            " AND FIND_IN_SET(s.customer_id, ?)))"
            " ORDER BY pm.next_check_at LIMIT ? FOR UPDATE SKIP LOCKED");
        dbq_str(q, only_customers);
        dbq_str(q, only_customers);
        dbq_i64(q, batch);
        rc = dbq_exec(q);
    }
    while (rc == DB_OK && (rc = dbq_fetch(q)) == DB_OK) {
        if (n >= batch)
            continue;
        m[n].method = arena_strdup(ar, dbq_col_str(q, 0));
        m[n].ref = arena_strdup(ar, dbq_col_str(q, 1));
        m[n].provider = dbq_col_i64(q, 2);
        m[n].pending = dbq_col_i64(q, 3) != 0;
        m[n].checks = (int)dbq_col_i64(q, 4);
        n++;
    }
    if (rc == DB_NOT_FOUND)
        rc = DB_OK;
    /* Claimed: the lease, or no more fetches for a mandate already final. */
    for (int i = 0; rc == DB_OK && i < n; i++) {
        struct dbq *l = dbq_new(&u, "UPDATE provider_mandates SET next_check_at = IF(?,"
                                    " UTC_TIMESTAMP(6) + INTERVAL ? * 1000 MICROSECOND, NULL)"
                                    " WHERE payment_method = ? AND mandate_reference = ?");
        dbq_i64(l, m[i].pending);
        dbq_i64(l, cs.lease_ms);
        dbq_str(l, m[i].method);
        dbq_str(l, m[i].ref);
        rc = dbq_exec(l);
    }
    int end = claim_end(&u, ar, rc);
    if (end != 0)
        return end > 0 ? 0 : -1;
    int fetched = 0;
    for (int i = 0; i < n; i++) {
        if (!m[i].pending)
            continue;
        struct req             r;
        struct provider_result res = {0};
        req_init(&r, ar);
        db_uow_init(&r.db, ar);
        /* Outside any transaction: the provider is on the line. */
        int prc = provider_adapter(m[i].method)->mandate_fetch(&r, m[i].ref, &res);
        db_uow_reset(&r.db);
        fetched++;
        long next = mandate_delay(m[i].checks + 1);
        if (prc == PROVIDER_REFUSED) {
            log_warn("collector", "mandate %s: the provider refuses to show it (%s): no more"
                     " fetches", m[i].ref, res.error ? res.error : "refused");
            next = -1;
        } else if (prc != 0) {
            log_warn("collector", "mandate %s: fetch failed (%s): asked again later", m[i].ref,
                     res.error ? res.error : "provider unavailable");
        }
        for (int tries = 0; tries < 5; tries++) {
            rc = mandate_record(&r.db, m[i].provider, m[i].method, m[i].ref,
                                prc == 0 ? res.status : NULL, next);
            db_uow_reset(&r.db);
            if (rc != DB_RETRY)
                break;
        }
        if (rc != DB_OK)
            log_warn("collector", "mandate %s: the fetch could not be recorded; asked again"
                     " when the lease ends", m[i].ref);
    }
    arena_reset(ar);
    return fetched;
}

/* Auto-collect (COLLECTION.md §3): each autoCollect invoice due today or
 * earlier, with something outstanding, a site with an active mandate, no
 * open attempt and none made since its due date gets one attempt: a failed
 * one is not tried again every run (a reprocess asks for that). */
int
collector_autocollect(struct arena *ar)
{
    struct db_uow u;
    db_uow_init(&u, ar);
    struct dbq *q = dbq_new(&u,
        "SELECT i.kind, i.id FROM invoices i JOIN sites s ON s.id = i.site_id"
        " WHERE i.auto_collect = 1 AND i.paid < i.amount AND i.due_date <= UTC_DATE()"
        " AND (? IS NULL OR FIND_IN_SET(i.customer_id, ?))"
        " AND s.payment_method IN " INTEGRATED_METHODS_SQL
        " AND EXISTS (SELECT 1 FROM site_payment_mandates m JOIN provider_mandates pm"
        " ON pm.mandate_reference = m.mandate_reference AND pm.payment_method = s.payment_method"
        " WHERE m.site_id = s.id AND pm.status IN ('ACTIVE','REINSTATED'))"
        " AND NOT EXISTS (SELECT 1 FROM attempts t WHERE t.kind = 1"
        " AND t.invoice_kind = i.kind AND t.invoice_id = i.id AND (t.status IN"
        " ('NEW','CREATED','UNSENT','RESUBMISSION_REQUESTED','PENDING_CUSTOMER_APPROVAL',"
        "'CUSTOMER_APPROVAL_GRANTED','PENDING_SUBMISSION','SUBMITTED','FAILED_RETRYING')"
        " OR t.created_at >= i.due_date))"
        " ORDER BY i.customer_id, i.kind, i.id LIMIT 200");
    dbq_str(q, only_customers);
    dbq_str(q, only_customers);
    enum db_rc rc = dbq_exec(q);
    struct abuf list;
    abuf_init(&list, ar);
    while (rc == DB_OK && (rc = dbq_fetch(q)) == DB_OK) {
        int64_t pair[2] = {dbq_col_i64(q, 0), dbq_col_i64(q, 1)};
        abuf_add(&list, pair, sizeof(pair));
    }
    db_uow_reset(&u);
    if (rc != DB_NOT_FOUND)
        return -1;
    int            made = 0;
    const int64_t *pairs = (const int64_t *)list.p;
    for (size_t i = 0; i < list.len / sizeof(int64_t[2]); i++) {
        struct customer c;
        struct invoice  inv;
        if ((rc = db_tx_begin(&u)) != DB_OK ||
            (rc = invoice_lock(&u, (int)pairs[2 * i], pairs[2 * i + 1], &c, &inv)) != DB_OK) {
            db_uow_reset(&u);
            continue;
        }
        /* Re-checked under the lock: still owed, still no open attempt. */
        q = dbq_new(&u, "SELECT s.payment_method, (SELECT m.mandate_reference FROM"
                        " site_payment_mandates m WHERE m.site_id = s.id AND"
                        " m.mandate_reference IS NOT NULL ORDER BY m.id DESC LIMIT 1),"
                        " (SELECT COUNT(*) FROM attempts t WHERE t.kind = 1"
                        " AND t.invoice_kind = i.kind AND t.invoice_id = i.id AND (t.status IN"
                        " ('NEW','CREATED','UNSENT','RESUBMISSION_REQUESTED',"
                        "'PENDING_CUSTOMER_APPROVAL','CUSTOMER_APPROVAL_GRANTED',"
                        "'PENDING_SUBMISSION','SUBMITTED','FAILED_RETRYING')"
                        " OR t.created_at >= i.due_date))"
                        " FROM invoices i JOIN sites s ON s.id = i.site_id"
                        " WHERE i.kind = ? AND i.id = ?");
        dbq_i64(q, inv.kind);
        dbq_i64(q, inv.id);
        if (dbq_one(q) != DB_OK || dbq_col_i64(q, 2) != 0 || inv.paid >= inv.amount) {
            db_uow_reset(&u);
            continue;
        }
        struct attempt a = {
            .kind = ATTEMPT_COLLECTION, .customer_id = c.id, .invoice_kind = inv.kind,
            .invoice_id = inv.id, .method = dbq_col_str(q, 0),
            .mandate_reference = dbq_col_str(q, 1), .amount = inv.amount - inv.paid,
            .currency_id = c.currency_id, .description = "Auto-collection on the due date",
            .due = 1,
        };
        struct attempt_outcome out;
        if (attempt_advance(&u, &c, &a, "NEW", NULL, &out) == DB_OK &&
            db_tx_commit(&u) == DB_OK)
            made++;
        db_uow_reset(&u);
    }
    arena_reset(ar);
    return made;
}

int
collector_fold_counts(struct arena *ar)
{
    int64_t after = 0, total = 0;
    for (;;) {
        struct db_uow u;
        db_uow_init(&u, ar);
        int64_t    owners[64];
        int        n = 0;
        enum db_rc rc = owner_counts_fold_candidates(&u, after, owners, 64, &n);
        db_uow_reset(&u);
        if (rc != DB_OK) {
            arena_reset(ar);
            return -1;
        }
        for (int i = 0; i < n; i++) {
            int64_t folded = 0;
            db_uow_init(&u, ar);
            rc = db_tx_begin(&u);
            if (rc == DB_OK)
                rc = owner_counts_fold(&u, owners[i], &folded);
            if (claim_end(&u, ar, rc) < 0)
                return -1;
            if (rc == DB_OK)
                total += folded;
            arena_reset(ar);
        }
        if (n < 64)
            break;
        after = owners[n - 1];
    }
    return total > INT32_MAX ? INT32_MAX : (int)total;
}

static long
now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000L + t.tv_nsec / 1000000L;
}

void
collector_run(volatile sig_atomic_t *stop)
{
    struct arena *ar = arena_create(1 << 16);
    long          next_auto = 0;
    srandom((unsigned)getpid() ^ (unsigned)time(NULL));
    log_info("collector", "started (poll %ld ms, lease %ld ms)", cs.poll_ms, cs.lease_ms);
    while (!*stop) {
        int n = collector_mandates(ar, 16);
        if (now_ms() >= next_auto) {
            int made = collector_autocollect(ar);
            if (made > 0)
                log_info("collector", "auto-collect: %d attempts", made);
            (void)collector_fold_counts(ar);
            next_auto = now_ms() + cs.autocollect_every_ms;
        }
        n = (n > 0 ? n : 0) + collector_pass(ar, 16);
        struct req r;
        req_init(&r, ar);
        db_uow_init(&r.db, ar);
        n += provider_sandbox_deliver(&r, 32); /* the sandbox's webhooks */
        arena_reset(ar);
        req_init(&r, ar);
        db_uow_init(&r.db, ar);
        n += provider_stripe_payouts(&r, cs.lease_ms) > 0; /* Stripe's paid payouts */
        arena_reset(ar);
        if (n > 0)
            continue;
        struct timespec d = {cs.poll_ms / 1000, (cs.poll_ms % 1000) * 1000000L};
        nanosleep(&d, NULL); /* SIGTERM cuts it short */
    }
    arena_destroy(ar);
    log_info("collector", "stopped");
}

int
collector_retry(struct arena *ar, int64_t id)
{
    struct db_uow u;
    db_uow_init(&u, ar);
    struct dbq *q = dbq_new(&u, "UPDATE attempts SET next_action_at = UTC_TIMESTAMP(6),"
                                " lease_until = NULL, calls = 0 WHERE id = ?");
    dbq_i64(q, id);
    enum db_rc rc = dbq_exec(q);
    if (rc == DB_OK && dbq_affected(q) == 0)
        rc = DB_NOT_FOUND;
    db_uow_reset(&u);
    arena_reset(ar);
    return (int)rc;
}

int
collector_cancel(struct arena *ar, int64_t id, const char *why)
{
    struct db_uow u;
    struct attempt a;
    db_uow_init(&u, ar);
    enum db_rc rc = attempt_load(&u, id, 0, &a);
    if (rc == DB_OK && a.reference != NULL && a.kind == ATTEMPT_REFUND) {
        rc = DB_CONFLICT; /* the provider holds the refund: it cannot be taken back */
    } else if (rc == DB_OK && (a.reference != NULL && a.kind == ATTEMPT_COLLECTION)) {
        /* The provider holds it: the engine asks the provider. */
        struct dbq *q = dbq_new(&u, "UPDATE attempts SET cancel_requested = 1,"
                                    " next_action_at = UTC_TIMESTAMP(6) WHERE id = ?");
        dbq_i64(q, id);
        rc = dbq_exec(q);
    } else if (rc == DB_OK) {
        struct answer ans = {.status = "CANCELLED", .error = why, .next_ms = -1};
        db_uow_reset(&u);
        rc = record(&u, id, &ans);
    }
    db_uow_reset(&u);
    arena_reset(ar);
    return (int)rc;
}
