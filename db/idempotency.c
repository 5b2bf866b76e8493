/* Idempotency-Key records (see idempotency.h). */
#include "idempotency.h"

enum db_rc
idem_claim(struct db_uow *u, const char *sub, const char *key, const char *request_hash)
{
    struct dbq *q = dbq_new(u, "INSERT INTO idempotency_keys"
                               " (sub, idem_key, request_hash, state, claim_conn)"
                               " VALUES (?,?,?,0,CONNECTION_ID())");
    dbq_str(q, sub);
    dbq_str(q, key);
    dbq_str(q, request_hash);
    return dbq_exec(q);
}

enum db_rc
idem_lookup(struct db_uow *u, const char *sub, const char *key, struct idem_record *rec)
{
    struct dbq *q = dbq_new(u, "SELECT request_hash, state, status, location, response,"
                               " TIMESTAMPDIFF(SECOND, claimed_at, NOW(6)), claimed_at,"
                               /* Connection ids are a server's own: on a Galera
                                * node the claim may be another node's. */
                               " state = 0 AND claim_conn IS NOT NULL AND @@wsrep_on = 0"
                               " AND NOT EXISTS (SELECT 1 FROM information_schema.PROCESSLIST p"
                               " WHERE p.ID = claim_conn)"
                               " FROM idempotency_keys WHERE sub = ? AND idem_key = ?");
    dbq_str(q, sub);
    dbq_str(q, key);
    enum db_rc rc = dbq_one(q);
    if (rc != DB_OK)
        return rc;
    rec->request_hash = dbq_col_str(q, 0);
    rec->done = dbq_col_i64(q, 1) == 1;
    rec->status = (int)dbq_col_i64(q, 2);
    rec->location = dbq_col_str(q, 3);
    rec->response = dbq_col_str(q, 4);
    rec->claim_age = dbq_col_i64(q, 5);
    rec->claimed_at = dbq_col_str(q, 6);
    rec->holder_gone = dbq_col_i64(q, 7) == 1;
    return DB_OK;
}

enum db_rc
idem_take_over(struct db_uow *u, const char *sub, const char *key, const char *claimed_at)
{
    struct dbq *q = dbq_new(u, "UPDATE idempotency_keys SET claimed_at = NOW(6),"
                               " claim_conn = CONNECTION_ID()"
                               " WHERE sub = ? AND idem_key = ? AND state = 0"
                               " AND claimed_at = ?");
    dbq_str(q, sub);
    dbq_str(q, key);
    dbq_str(q, claimed_at);
    enum db_rc rc = dbq_exec(q);
    if (rc == DB_OK && dbq_affected(q) != 1)
        rc = DB_CONFLICT;
    return rc;
}

enum db_rc
idem_store(struct db_uow *u, const char *sub, const char *key, int status,
           const char *location, const char *body, size_t len)
{
    struct dbq *q = dbq_new(u, "UPDATE idempotency_keys SET state = 1, status = ?,"
                               " location = ?, response = ? WHERE sub = ? AND idem_key = ?"
                               " AND (claim_conn IS NULL OR claim_conn = CONNECTION_ID())");
    dbq_i64(q, status);
    dbq_str(q, location);
    dbq_strn(q, body, len);
    dbq_str(q, sub);
    dbq_str(q, key);
    enum db_rc rc = dbq_exec(q);
    if (rc == DB_OK && dbq_affected(q) != 1)
        rc = DB_CONFLICT; /* taken over: this run must not commit */
    return rc;
}

enum db_rc
idem_release(struct db_uow *u, const char *sub, const char *key)
{
    struct dbq *q = dbq_new(u, "DELETE FROM idempotency_keys WHERE sub = ? AND idem_key = ?"
                               " AND state = 0 AND (claim_conn IS NULL"
                               " OR claim_conn = CONNECTION_ID())");
    dbq_str(q, sub);
    dbq_str(q, key);
    return dbq_exec(q);
}

enum db_rc
idem_purge(struct db_uow *u)
{
    struct dbq *q = dbq_new(u, "DELETE FROM idempotency_keys WHERE created_at <"
                               " UTC_TIMESTAMP() - INTERVAL 48 HOUR LIMIT 1000");
    return dbq_exec(q);
}
