/*
 * Idempotency (spec 1.6). A key is claimed with an INSERT (state 0) in
 * autocommit before the handler runs; the duplicate-key error tells a
 * second request that the key exists. The handler's transaction then
 * marks the record done with the response, and commits both together: a
 * crash before the commit leaves only the claim, which a retry may take
 * over once the claim's database connection is gone (its worker died, so
 * the server rolled back whatever it had begun), or, where that cannot be
 * seen (a Galera node, a claim from another connection that is still
 * there), once its lease (LEASE_SECONDS, longer than any request may run)
 * has expired. Completing or releasing a claim requires the connection
 * that holds it, so a claim taken over is not completed twice. 4xx outcomes are stored too (the same request gets the
 * same answer); 5xx outcomes release the key so the client can retry.
 * The records' storage is db/idempotency.c.
 */
#include "pipeline.h"

#include <string.h>

#include "idempotency.h"
#include "log.h"
#include "token.h"

#define LEASE_SECONDS 60
/* Records are kept at least 24 h (spec 1.6); older ones are purged in
 * small batches, every PURGE_EVERY claims of a worker. */
#define PURGE_EVERY   1000

struct claim {
    const char *sub;
    const char *key;
};

static const char *
request_hash(struct req *r)
{
    struct abuf b;
    abuf_init(&b, r->arena);
    abuf_printf(&b, "%s\n%s\n", r->method_name, r->path ? r->path : "");
    abuf_add(&b, r->body ? r->body : "", r->body_len);
    return token_sha256_hex(r->arena, b.p, b.len);
}

static int
key_valid(const char *k)
{
    size_t n = strlen(k);
    if (n < 1 || n > 255)
        return 0;
    for (; *k; k++)
        if ((unsigned char)*k < 0x20 || (unsigned char)*k > 0x7e)
            return 0;
    return 1;
}

static int
replay(struct req *r, const struct idem_record *rec)
{
    if (rec->location != NULL)
        resp_header(r, "Location", rec->location);
    resp_header(r, "Idempotent-Replayed", "true");
    return resp_body(r, rec->status, "application/json; charset=utf-8",
                     rec->response ? rec->response : "",
                     rec->response ? strlen(rec->response) : 0);
}

static void
purge_old(struct req *r)
{
    static unsigned claims;
    if (++claims % PURGE_EVERY == 0 && idem_purge(&r->db) != DB_OK) {
        log_warn("idempotency", "purge of old keys failed");
        db_uow_reset(&r->db); /* the claim is committed already */
    }
}

static int
claimed(struct req *r, const char *sub, const char *key)
{
    struct claim *c = arena_alloc(r->arena, sizeof(*c));
    c->sub = sub;
    c->key = key;
    r->idem = c;
    return 0;
}

static int
idem_before(struct req *r)
{
    const char *key = r->idempotency_key;
    if (key == NULL)
        return 0;
    if (!key_valid(key))
        return req_failf(r, PAY_E_BAD_REQUEST, "Idempotency-Key",
                         "Idempotency-Key must be 1..255 printable ASCII characters");
    const char *sub = r->principal.sub ? r->principal.sub : "";
    const char *hash = request_hash(r);

    /* Two claims of one key at once end in a deadlock (on a Galera cluster
     * also when they came through two nodes): claim again, then the key is
     * found taken. */
    enum db_rc rc = idem_claim(&r->db, sub, key, hash);
    for (int tries = 1; rc == DB_RETRY && tries < 4 && db_uow_retry(&r->db); tries++)
        rc = idem_claim(&r->db, sub, key, hash);
    if (rc == DB_OK) {
        purge_old(r);
        return claimed(r, sub, key);
    }
    if (rc != DB_CONFLICT)
        return req_fail(r, PAY_E_UNAVAILABLE, NULL);

    struct idem_record rec;
    rc = idem_lookup(&r->db, sub, key, &rec);
    if (rc == DB_NOT_FOUND) /* released in between: let the client retry */
        return req_fail(r, PAY_E_IDEM_IN_PROGRESS, "Idempotency-Key");
    if (rc != DB_OK)
        return req_fail(r, PAY_E_UNAVAILABLE, NULL);
    if (strcmp(rec.request_hash, hash) != 0)
        return req_failf(r, PAY_E_IDEM_REUSED, "Idempotency-Key",
                         "this Idempotency-Key was used for a different request");
    if (rec.done)
        return replay(r, &rec);
    if (rec.claim_age < LEASE_SECONDS && !rec.holder_gone)
        return req_fail(r, PAY_E_IDEM_IN_PROGRESS, "Idempotency-Key");
    /* An abandoned claim (its worker died): take it over atomically. */
    rc = idem_take_over(&r->db, sub, key, rec.claimed_at);
    if (rc == DB_CONFLICT)
        return req_fail(r, PAY_E_IDEM_IN_PROGRESS, "Idempotency-Key");
    if (rc != DB_OK)
        return req_fail(r, PAY_E_UNAVAILABLE, NULL);
    log_info("idempotency", "took over an abandoned claim");
    return claimed(r, sub, key);
}

static enum db_rc
store(struct req *r, const struct claim *c, int status)
{
    const char *loc = NULL;
    for (struct resp_header *h = r->resp_headers; h != NULL; h = h->next)
        if (strcmp(h->name, "Location") == 0)
            loc = h->value;
    return idem_store(&r->db, c->sub, c->key, status, loc, abuf_str(&r->resp_body),
                      r->resp_body.len);
}

/* Commits a successful run's transaction with its idempotency record.
 * A conflict at COMMIT (on a Galera cluster the certification of the
 * write-set, reported as a deadlock) fails the unit like a deadlock at
 * any statement: nothing of the run is kept and the handler runs again
 * while there is time. */
static int
again(struct req *r, int status)
{
    int ok = r->db.failed == DB_OK && !r->failed && status >= 200 && status < 400;
    /* A refusal or a 404 decided in a transaction the cluster aborted
     * midway (its later reads ran outside it) is not an answer: the
     * handler runs again. */
    if (!ok && r->db.in_tx && r->db.failed == DB_OK && db_tx_intact(&r->db) != DB_OK)
        log_warn("pipeline", "a refusal decided in a transaction the cluster aborted");
    if (ok && r->db.in_tx) {
        if (r->idem != NULL && store(r, r->idem, status) != DB_OK) {
            if (r->db.failed == DB_OK)
                db_tx_rollback(&r->db); /* after() answers 503 */
            r->commit_failed = 1;
        } else if (db_tx_commit(&r->db) == DB_OK) {
            r->idem = NULL; /* stored with the work */
        } else {
            r->commit_failed = 1;
        }
    }
    if (db_uow_retry(&r->db)) {
        r->commit_failed = 0;
        return 1;
    }
    return 0;
}

static int
after(struct req *r, int status)
{
    if ((r->db.failed != DB_OK || r->commit_failed) && !r->failed)
        status = req_fail(r, PAY_E_UNAVAILABLE, NULL); /* not committed */
    int ok = !r->failed && status >= 200 && status < 400;

    if (ok && r->db.in_tx) { /* a streamed response: again() did not run */
        if (r->idem != NULL && store(r, r->idem, status) != DB_OK) {
            status = req_fail(r, PAY_E_UNAVAILABLE, NULL);
            ok = 0;
        } else if (db_tx_commit(&r->db) != DB_OK) {
            status = req_fail(r, PAY_E_UNAVAILABLE, NULL);
            ok = 0;
        } else if (r->idem != NULL) {
            r->idem = NULL; /* stored with the work */
        }
    }
    /* Whatever is left of the work's unit is rolled back; the claim is
     * settled in a unit of its own. */
    db_uow_reset(&r->db);
    if (r->idem == NULL)
        return status;
    struct claim *c = r->idem;
    r->idem = NULL;
    if (ok || (r->failed && errors_get(r->err)->status < 500)) {
        /* Outcome without a transaction (or a client error): store it. */
        if (r->failed) {
            resp_error(r);
            r->failed = 0;
            status = r->status;
        }
        if (store(r, c, status) != DB_OK)
            log_warn("idempotency", "could not store a response");
    } else if (idem_release(&r->db, c->sub, c->key) != DB_OK) {
        log_warn("idempotency", "could not release a claim");
    }
    return status;
}

const struct router_hooks pipeline_hooks = {idem_before, again, after};
