/*
 * POST /webhooks/{paymentProviderId} (COLLECTION.md §5): events a payment
 * provider sends about payments and refunds. No bearer token: the request
 * is authenticated by the provider's signature over the raw body, checked
 * before a byte of it is parsed, in constant time.
 *
 * Scheme [decision] (the sandbox's; an integrated adapter maps its own):
 *   Webhook-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(key, "<t>.<body>")>
 * with key = HMAC-SHA256(webhook_secret, "pay-api webhook <providerId>") in
 * hex, one key per provider derived from the server's webhook_secret; a
 * timestamp more than WEBHOOK_TOLERANCE seconds away is stale. Body:
 *   {"events":[{"id":"<provider event id>","reference":"<payment or refund
 *    reference>","status":"<ThirdPartyPayment/RefundStatus>"}, ...]}
 * Each event is stored by (provider, event id) in its own transaction: a
 * replay changes nothing and is still answered 200; an event about a
 * reference this provider does not hold here (unknown, or another
 * provider's) is stored, logged, counted and answered 200. The attempt is
 * advanced through db/collection.c (money at most once, ranks).
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "collection.h"
#include "handlers.h"
#include "log.h"
#include "metrics.h"
#include "provider.h"
#include "token.h"

#define WEBHOOK_TOLERANCE 300
#define WEBHOOK_MAX_EVENTS 100

static const char *master_secret;

void
webhooks_configure(const char *secret)
{
    master_secret = secret != NULL && *secret ? secret : NULL;
}

const char *
webhooks_provider_key(struct arena *a, int64_t provider_id)
{
    if (master_secret == NULL)
        return NULL;
    const char *what = arena_printf(a, "pay-api webhook %" PRId64, provider_id);
    return token_hmac_sha256_hex(a, master_secret, strlen(master_secret), what, strlen(what));
}

/* "t=<digits>,v1=<64 hex>": 0 and the parts, or -1. */
static int
parse_signature(const char *h, long long *t, char *v1)
{
    if (h == NULL || strncmp(h, "t=", 2) != 0)
        return -1;
    char *end;
    *t = strtoll(h + 2, &end, 10);
    if (end == h + 2 || end - (h + 2) > 12 || strncmp(end, ",v1=", 4) != 0)
        return -1;
    const char *hex = end + 4;
    if (strlen(hex) != 64 || strspn(hex, "0123456789abcdef") != 64)
        return -1;
    memcpy(v1, hex, 65);
    return 0;
}

static int
rejected(struct req *r, const char *why)
{
    metrics_webhook(1);
    log_warn("webhooks", "request refused: %s", why);
    return req_failf(r, PAY_E_FORBIDDEN, "Webhook-Signature", "%s", why);
}

/*
 * The sandbox's scheme (above), in the shape of an adapter's webhook_parse:
 * the signature over the raw bytes before any parsing, then the events,
 * already in our vocabulary.
 */
static int
sandbox_webhook_parse(struct req *r, struct webhook_event **out, size_t *nout,
                      const char **why)
{
    int64_t provider_id = 0;
    const char *p = req_param(r, 0);
    if (p != NULL)
        provider_id = strtoll(p, NULL, 10); /* already checked by the caller */
    long long   t;
    char        v1[65];
    const char *key = webhooks_provider_key(r->arena, provider_id);
    if (key == NULL)
        return *why = "webhooks are not configured (no webhook_secret)", 403;
    if (parse_signature(req_env(r, "HTTP_WEBHOOK_SIGNATURE"), &t, v1) != 0)
        return *why = "missing or malformed Webhook-Signature", 403;
    struct abuf signed_part;
    abuf_init(&signed_part, r->arena);
    abuf_printf(&signed_part, "%lld.", t);
    abuf_add(&signed_part, r->body ? r->body : "", r->body_len);
    const char *want = token_hmac_sha256_hex(r->arena, key, strlen(key), signed_part.p,
                                             signed_part.len);
    if (!token_equal(want, v1))
        return *why = "the signature does not match", 403;
    long long now = (long long)time(NULL);
    if (t < now - WEBHOOK_TOLERANCE || t > now + WEBHOOK_TOLERANCE)
        return *why = "the signature's timestamp is outside the tolerance", 403;

    /* Authentic: now the body. */
    struct json_value *body = NULL;
    const char        *err = NULL;
    if (r->body_len == 0 || json_parse(r->arena, r->body, r->body_len, &body, &err) != 0)
        return *why = arena_printf(r->arena, "invalid JSON: %s", err ? err : "empty body"), 400;
    const struct json_value *events = json_get(body, "events");
    if (events == NULL || events->type != JSON_ARRAY || events->n == 0 ||
        events->n > WEBHOOK_MAX_EVENTS)
        return *why = arena_printf(r->arena, "events must be an array of 1..%d events",
                                   WEBHOOK_MAX_EVENTS), 400;
    struct webhook_event *ev = arena_alloc(r->arena, events->n * sizeof(*ev));
    for (size_t i = 0; i < events->n; i++) {
        const struct json_value *e = events->items[i];
        const struct json_value *id = json_get(e, "id"), *ref = json_get(e, "reference"),
                                *status = json_get(e, "status");
        if (e->type != JSON_OBJECT || id == NULL || id->type != JSON_STRING || ref == NULL ||
            ref->type != JSON_STRING || status == NULL || status->type != JSON_STRING ||
            id->len == 0 || id->len > 128 || ref->len == 0 || ref->len > 128 ||
            status->len > 40)
            return *why = arena_printf(r->arena, "event %zu needs id, reference and status"
                                       " strings", i), 400;
        ev[i] = (struct webhook_event){id->str, ref->str, status->str};
    }
    *out = ev;
    *nout = events->n;
    return 0;
}

/*
 * An event about a mandate of this provider (an integrated provider reports
 * its mandates' life too): its status moves forward only, so a late or
 * repeated event never takes a cancelled mandate back to ACTIVE; REINSTATED
 * (the provider's reinstatement) is the one way back. DB_NOT_FOUND when the
 * reference is no mandate of this provider.
 */
static int
mandate_rank(const char *status)
{
    static const struct {
        const char *status;
        int         rank;
    } ranks[] = {{"CREATED", 1},   {"CUSTOMER_APPROVAL_GRANTED", 2},
                 {"CUSTOMER_APPROVAL_SKIPPED", 2}, {"PENDING_SUBMISSION", 3},
                 {"SUBMITTED", 4}, {"ACTIVE", 5}, {"INACTIVE", 6}, {"FAILED", 6},
                 {"CANCELLED", 6}, {"EXPIRED", 6}, {"REINSTATED", 7}};
    for (size_t i = 0; status != NULL && i < sizeof(ranks) / sizeof(ranks[0]); i++)
        if (strcmp(ranks[i].status, status) == 0)
            return ranks[i].rank;
    return -1;
}

enum db_rc
mandate_status_forward(struct db_uow *u, int64_t provider_id, const char *reference,
                       const char *status, int *moved)
{
    struct dbq *q = dbq_new(u, "SELECT payment_method, status FROM provider_mandates"
                               " WHERE provider_id = ? AND mandate_reference = ? FOR UPDATE");
    dbq_i64(q, provider_id);
    dbq_str(q, reference);
    enum db_rc rc = dbq_one(q);
    *moved = 0;
    if (rc != DB_OK)
        return rc;
    const char *method = arena_strdup(u->arena, dbq_col_str(q, 0));
    int         now = mandate_rank(dbq_col_str(q, 1)), want = mandate_rank(status);
    *moved = want > now;
    if (!*moved)
        return DB_OK;
    /* A final status needs no more fetches (collector.c); a pending one
     * keeps the fetch already scheduled. */
    q = dbq_new(u, "UPDATE provider_mandates SET status = ?, next_check_at = IF(? >= 5, NULL,"
                   " next_check_at) WHERE payment_method = ? AND mandate_reference = ?");
    dbq_str(q, status);
    dbq_i64(q, want);
    dbq_str(q, method);
    dbq_str(q, reference);
    return dbq_exec(q);
}

static enum db_rc
mandate_event(struct db_uow *u, int64_t provider_id, const struct webhook_event *ev,
              int *moved)
{
    return mandate_status_forward(u, provider_id, ev->reference, ev->status, moved);
}

/* One event in its own transaction. *outcome gets what happened. */
static enum db_rc
apply_event(struct req *r, int64_t provider_id, const struct webhook_event *ev,
            const char **outcome)
{
    struct db_uow *u = &r->db;
    enum db_rc     rc;
    if ((rc = db_tx_begin(u)) != DB_OK)
        return rc;
    struct dbq *q = dbq_new(u, "INSERT INTO provider_events (provider_id, event_id,"
                               " provider_reference, status, outcome) VALUES (?,?,?,?,'RECEIVED')");
    dbq_i64(q, provider_id);
    dbq_str(q, ev->id);
    dbq_str(q, ev->reference);
    dbq_str(q, ev->status);
    if ((rc = dbq_exec(q)) == DB_CONFLICT) {
        db_tx_rollback(u);
        *outcome = "DUPLICATE";
        return DB_OK;
    }
    if (rc != DB_OK)
        return rc;
    int64_t event_row = dbq_insert_id(q);
    /* Only this provider's attempts: a reference of another provider (or
     * another tenant's provider) is unknown here. */
    q = dbq_new(u, "SELECT id, customer_id FROM attempts WHERE provider_id = ?"
                   " AND provider_reference = ? ORDER BY id DESC LIMIT 1");
    dbq_i64(q, provider_id);
    dbq_str(q, ev->reference);
    rc = dbq_one(q);
    int64_t attempt_id = 0;
    *outcome = "UNKNOWN_REFERENCE";
    if (rc == DB_OK) {
        attempt_id = dbq_col_i64(q, 0);
        struct customer        c;
        struct attempt         a;
        struct attempt_report  rep = {.reference = ev->reference};
        struct attempt_outcome out;
        if ((rc = customer_load(u, dbq_col_i64(q, 1), 1, &c)) != DB_OK ||
            (rc = attempt_load(u, attempt_id, 1, &a)) != DB_OK)
            return rc;
        if (attempt_rank(a.kind, ev->status) < 0) {
            /* Informational or unknown: stored, never moving the attempt. */
            *outcome = "IGNORED";
        } else {
            rc = attempt_advance(u, &c, &a, ev->status, &rep, &out);
            if (rc == DB_CONFLICT) {
                /* Refunds hold the money: stored for an operator. */
                db_tx_rollback(u);
                db_uow_reset(u);
                if ((rc = db_tx_begin(u)) != DB_OK)
                    return rc;
                q = dbq_new(u, "INSERT INTO provider_events (provider_id, event_id,"
                               " provider_reference, status, outcome, attempt_id)"
                               " VALUES (?,?,?,?,'CONFLICT',?)");
                dbq_i64(q, provider_id);
                dbq_str(q, ev->id);
                dbq_str(q, ev->reference);
                dbq_str(q, ev->status);
                dbq_i64(q, attempt_id);
                *outcome = "CONFLICT";
                if ((rc = dbq_exec(q)) != DB_OK)
                    return rc == DB_CONFLICT ? (db_tx_rollback(u), DB_OK) : rc;
                return db_tx_commit(u);
            }
            if (rc != DB_OK)
                return rc;
            *outcome = out.moved ? "APPLIED" : "IGNORED";
        }
    } else if (rc == DB_NOT_FOUND) {
        int moved = 0;
        rc = mandate_event(u, provider_id, ev, &moved);
        if (rc == DB_OK)
            *outcome = moved ? "APPLIED" : "IGNORED";
        else if (rc != DB_NOT_FOUND)
            return rc;
    } else {
        return rc;
    }
    q = dbq_new(u, "UPDATE provider_events SET outcome = ?, attempt_id = ? WHERE id = ?");
    dbq_str(q, *outcome);
    dbq_id(q, attempt_id);
    dbq_i64(q, event_row);
    if ((rc = dbq_exec(q)) != DB_OK)
        return rc;
    return db_tx_commit(u);
}

enum db_rc
webhooks_apply(struct req *r, int64_t provider_id, const struct webhook_event *ev,
               const char **outcome)
{
    enum db_rc rc;
    for (int tries = 0;; tries++) {
        rc = apply_event(r, provider_id, ev, outcome);
        if (rc == DB_OK || !db_uow_retry(&r->db) || tries > 3)
            break;
    }
    db_uow_reset(&r->db);
    return rc;
}

static int
ascii_only(const char *s)
{
    for (; s != NULL && *s; s++)
        if ((unsigned char)*s >= 0x80)
            return 0;
    return 1;
}

int
webhooks_receive(struct req *r)
{
    int64_t provider_id;
    int     st;
    if ((st = req_param_id_or_fail(r, 0, "paymentProviderId", &provider_id)) != 0) {
        metrics_webhook(1);
        return st;
    }
    struct dbq *q = dbq_new(&r->db, "SELECT type FROM payment_providers WHERE id = ?");
    dbq_i64(q, provider_id);
    enum db_rc rc = dbq_one(q);
    if (rc == DB_NOT_FOUND) {
        metrics_webhook(1);
        return req_failf(r, PAY_E_NOT_FOUND, "paymentProviderId", "unknown payment provider");
    }
    if (rc != DB_OK)
        return db_fail(r, rc);

    /* The provider's own scheme when its adapter is integrated, else the
     * sandbox's: the signature first, then the events in our vocabulary. */
    const char *type = dbq_col_str(q, 0);
    type = arena_strdup(r->arena, type ? type : "");
    const struct provider_adapter *pa = provider_adapter(type);
    struct webhook_event          *ev = NULL;
    size_t                         nev = 0;
    const char                    *why = NULL;
    st = pa->webhook_parse ? pa->webhook_parse(r, &ev, &nev, &why)
                           : sandbox_webhook_parse(r, &ev, &nev, &why);
    if (st == 403)
        return rejected(r, why ? why : "the signature does not match");
    if (st == 503)
        return db_fail(r, DB_ERROR); /* not stored: the provider sends it again */
    if (st != 0)
        return req_failf(r, PAY_E_INVALID_FIELD, "events", "%s", why ? why : "malformed events");
    /* Provider event ids, references and statuses are ASCII (their columns
     * are): an event with anything else can name nothing here. Refused as a
     * whole before any event is stored, rather than failing in the database
     * (a 503 the provider would retry for ever). */
    for (size_t i = 0; i < nev; i++)
        if (!ascii_only(ev[i].id) || !ascii_only(ev[i].reference) || !ascii_only(ev[i].status))
            return req_failf(r, PAY_E_INVALID_FIELD, "events",
                             "event %zu: id, reference and status must be ASCII", i);
    int64_t applied = 0, duplicates = 0, unknown = 0;
    for (size_t i = 0; i < nev; i++) {
        const char *outcome = NULL;
        rc = webhooks_apply(r, provider_id, &ev[i], &outcome);
        if (rc != DB_OK)
            return db_fail(r, rc); /* the provider sends it again */
        if (strcmp(outcome, "DUPLICATE") == 0) {
            duplicates++;
            metrics_webhook(2);
            continue;
        }
        metrics_webhook(0);
        if (strcmp(outcome, "UNKNOWN_REFERENCE") == 0) {
            unknown++;
            log_info("webhooks", "provider %" PRId64 " event %s: unknown reference",
                     provider_id, ev[i].id);
        } else {
            applied++;
        }
    }
    struct json_gen *g = resp_json(r, 200);
    json_map_open(g);
    json_key(g, "received");
    json_i64(g, applied);
    json_key(g, "duplicates");
    json_i64(g, duplicates);
    json_key(g, "unknownReferences");
    json_i64(g, unknown);
    json_map_close(g);
    return 200;
}
