/*
 * Idempotency (spec 1.6). A key is claimed with an INSERT (state 0) in
 * autocommit before the handler runs; the duplicate-key error tells a
 * second request that the key exists. The handler's transaction then
 * marks the record done with the response, and commits both together: a
 * crash before the commit leaves only the claim, which a retry may take
 * over once its lease (LEASE_SECONDS, longer than any request may run)
 * has expired. 4xx outcomes are stored too (the same request gets the
 * same answer); 5xx outcomes release the key so the client can retry.
 */
#include "db_pipeline.h"

#include <stdio.h>
#include <string.h>

#include "db.h"
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
replay(struct req *r, struct dbq *q)
{
    int status = (int)dbq_col_i64(q, 2);
    const char *loc = dbq_col_str(q, 3);
    const char *body = dbq_col_str(q, 4);
    if (loc != NULL)
        resp_header(r, "Location", loc);
    resp_header(r, "Idempotent-Replayed", "true");
    return resp_body(r, status, "application/json; charset=utf-8",
                     body ? body : "", body ? strlen(body) : 0);
}

static void
purge_old(struct req *r)
{
    static unsigned claims;
    if (++claims % PURGE_EVERY != 0)
        return;
    struct dbq *q = dbq_new(r, "DELETE FROM idempotency_keys WHERE created_at <"
                               " UTC_TIMESTAMP() - INTERVAL 48 HOUR LIMIT 1000");
    if (dbq_exec(q) != DB_OK)
        log_warn("idempotency", "purge of old keys failed");
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

    struct dbq *q = dbq_new(r, "INSERT INTO idempotency_keys"
                               " (sub, idem_key, request_hash, state) VALUES (?,?,?,0)");
    dbq_str(q, sub);
    dbq_str(q, key);
    dbq_str(q, hash);
    enum db_rc rc = dbq_exec(q);
    if (rc == DB_OK) {
        struct claim *c = arena_alloc(r->arena, sizeof(*c));
        c->sub = sub;
        c->key = key;
        r->idem = c;
        purge_old(r);
        return 0;
    }
    if (rc != DB_CONFLICT)
        return req_fail(r, PAY_E_UNAVAILABLE, NULL);

    q = dbq_new(r, "SELECT request_hash, state, status, location, response,"
                   " TIMESTAMPDIFF(SECOND, claimed_at, NOW(6)), claimed_at"
                   " FROM idempotency_keys WHERE sub = ? AND idem_key = ?");
    dbq_str(q, sub);
    dbq_str(q, key);
    rc = dbq_one(q);
    if (rc == DB_NOT_FOUND) /* released in between: let the client retry */
        return req_fail(r, PAY_E_IDEM_IN_PROGRESS, "Idempotency-Key");
    if (rc != DB_OK)
        return req_fail(r, PAY_E_UNAVAILABLE, NULL);
    if (strcmp(dbq_col_str(q, 0), hash) != 0)
        return req_failf(r, PAY_E_IDEM_REUSED, "Idempotency-Key",
                         "this Idempotency-Key was used for a different request");
    if (dbq_col_i64(q, 1) == 1)
        return replay(r, q);
    if (dbq_col_i64(q, 5) < LEASE_SECONDS)
        return req_fail(r, PAY_E_IDEM_IN_PROGRESS, "Idempotency-Key");
    /* An abandoned claim (its worker died): take it over atomically. */
    struct dbq *u = dbq_new(r, "UPDATE idempotency_keys SET claimed_at = NOW(6)"
                               " WHERE sub = ? AND idem_key = ? AND state = 0"
                               " AND claimed_at = ?");
    dbq_str(u, sub);
    dbq_str(u, key);
    dbq_str(u, dbq_col_str(q, 6));
    if (dbq_exec(u) != DB_OK)
        return req_fail(r, PAY_E_UNAVAILABLE, NULL);
    if (dbq_affected(u) != 1)
        return req_fail(r, PAY_E_IDEM_IN_PROGRESS, "Idempotency-Key");
    struct claim *c = arena_alloc(r->arena, sizeof(*c));
    c->sub = sub;
    c->key = key;
    r->idem = c;
    log_info("idempotency", "took over an abandoned claim");
    return 0;
}

static enum db_rc
store(struct req *r, int status)
{
    struct claim *c = r->idem;
    const char   *loc = NULL;
    for (struct resp_header *h = r->resp_headers; h != NULL; h = h->next)
        if (strcmp(h->name, "Location") == 0)
            loc = h->value;
    struct dbq *q = dbq_new(r, "UPDATE idempotency_keys SET state = 1, status = ?,"
                               " location = ?, response = ? WHERE sub = ? AND idem_key = ?");
    dbq_i64(q, status);
    dbq_str(q, loc);
    dbq_strn(q, abuf_str(&r->resp_body), r->resp_body.len);
    dbq_str(q, c->sub);
    dbq_str(q, c->key);
    return dbq_exec(q);
}

static void
release_claim(struct req *r)
{
    struct claim *c = r->idem;
    struct dbq   *q = dbq_new(r, "DELETE FROM idempotency_keys"
                                 " WHERE sub = ? AND idem_key = ? AND state = 0");
    dbq_str(q, c->sub);
    dbq_str(q, c->key);
    if (dbq_exec(q) != DB_OK)
        log_warn("idempotency", "could not release a claim");
}

static int
after(struct req *r, int status)
{
    int ok = !r->failed && status >= 200 && status < 400;

    if (ok && r->tx != NULL) {
        if (r->idem != NULL && store(r, status) != DB_OK) {
            db_tx_rollback(r);
            status = req_fail(r, PAY_E_UNAVAILABLE, NULL);
            ok = 0;
        } else if (db_tx_commit(r) != DB_OK) {
            status = req_fail(r, PAY_E_UNAVAILABLE, NULL);
            ok = 0;
        } else if (r->idem != NULL) {
            r->idem = NULL; /* stored with the work */
        }
    }
    if (r->tx != NULL)
        db_tx_rollback(r);
    if (r->idem == NULL)
        return status;
    if (ok || (r->failed && errors_get(r->err)->status < 500)) {
        /* Outcome without a transaction (or a client error): store it. */
        if (r->failed) {
            resp_error(r);
            r->failed = 0;
            status = r->status;
        }
        if (store(r, status) != DB_OK)
            log_warn("idempotency", "could not store a response");
    } else {
        release_claim(r);
    }
    r->idem = NULL;
    return status;
}

const struct router_hooks db_pipeline_hooks = {idem_before, after};
