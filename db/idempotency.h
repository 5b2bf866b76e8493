/*
 * Storage of Idempotency-Key records (table idempotency_keys): a claim row
 * (state 0) inserted before the work, completed (state 1) with the stored
 * response inside the work's own transaction. The policy (what counts as
 * the same request, when to replay, leases) is the HTTP layer's.
 */
#ifndef PAY_DB_IDEMPOTENCY_H
#define PAY_DB_IDEMPOTENCY_H

#include "db.h"

struct idem_record {
    const char *request_hash;
    int         done;          /* state 1: response stored */
    int         status;
    const char *location;      /* may be NULL */
    const char *response;      /* may be NULL */
    int64_t     claim_age;     /* seconds since the claim was taken */
    const char *claimed_at;    /* exact value, for take_over */
    int         holder_gone;   /* not done, and the claiming connection is gone
                                * (this server's; never on a Galera node) */
};

/* Inserts a claim: DB_OK, or DB_CONFLICT when the key exists already. */
DB_MUST_CHECK enum db_rc idem_claim(struct db_uow *u, const char *sub, const char *key,
                                    const char *request_hash);
/* Reads the record of (sub, key): DB_OK or DB_NOT_FOUND. */
DB_MUST_CHECK enum db_rc idem_lookup(struct db_uow *u, const char *sub, const char *key,
                                     struct idem_record *rec);
/* Takes over an abandoned claim still as read (claimed_at unchanged) for
 * this connection: DB_OK when taken, DB_CONFLICT when someone else was
 * quicker. */
DB_MUST_CHECK enum db_rc idem_take_over(struct db_uow *u, const char *sub, const char *key,
                                        const char *claimed_at);
/* Completes the claim with the response (inside the work's transaction):
 * DB_CONFLICT when this connection no longer holds it (taken over). */
DB_MUST_CHECK enum db_rc idem_store(struct db_uow *u, const char *sub, const char *key,
                                    int status, const char *location,
                                    const char *body, size_t len);
/* Deletes an uncompleted claim this connection holds, so the client may
 * retry. */
DB_MUST_CHECK enum db_rc idem_release(struct db_uow *u, const char *sub, const char *key);
/* Deletes up to 1,000 records older than 48 h. */
DB_MUST_CHECK enum db_rc idem_purge(struct db_uow *u);

#endif
