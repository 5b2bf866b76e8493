/*
 * The collection engine (COLLECTION.md §4): the only code that calls a
 * payment provider to move money. It claims due attempts with
 * SELECT ... FOR UPDATE SKIP LOCKED and a lease, commits, calls the
 * provider outside any transaction with the attempt's idempotency key,
 * and records the answer in a new transaction through the lifecycle of
 * db/collection.c. A collector killed at any point loses nothing (the
 * lease ends, the attempt is claimed again) and collects nothing twice
 * (the same key gets the provider's first result).
 */
#ifndef PAY_HANDLERS_COLLECTOR_H
#define PAY_HANDLERS_COLLECTOR_H

#include <signal.h>
#include <stdint.h>

#include "arena.h"

struct collector_settings {
    long poll_ms;              /* idle wait between passes */
    long lease_ms;             /* a claim's lease */
    long reconcile_ms;         /* fetch an attempt whose event is this late */
    long backoff_ms;           /* first retry delay (doubles, with jitter) */
    long backoff_max_ms;
    int  max_calls;            /* retryable failures before the attempt fails */
    int  refund_expiry_days;   /* a refund with no ACTIVE provider is cancelled */
    long autocollect_every_ms; /* the auto-collect run's interval */
};

/* Process lifetime; defaults when never called. */
void collector_configure(const struct collector_settings *s);
/* Limits passes and auto-collect runs to these customers ("12,13"; NULL:
 * all), for `pay-api attempts run --customers` on a shared test stack. */
void collector_only_customers(const char *csv);

/* One pass: claims up to `batch` due attempts and acts on each. Returns
 * how many it handled (0: nothing was due, or another collector's claim
 * won), or -1 when the database is unavailable. Every allocation is in a (reset before returning). */
int collector_pass(struct arena *a, int batch);

/* Mandates pending at their provider (CREATED … SUBMITTED) whose fetch is
 * due: claimed like attempts (SKIP LOCKED, a lease), fetched outside any
 * transaction (mandate_fetch), their status moved forward, the next fetch
 * scheduled with a growing interval until the mandate is final (ACTIVE,
 * FAILED, CANCELLED, EXPIRED, INACTIVE). A lost mandate webhook so never
 * leaves one pending. Returns how many it fetched, -1 on a database error. */
int collector_mandates(struct arena *a, int batch);

/* The auto-collect run: a collection attempt for every autoCollect
 * invoice due today or before, with something outstanding, a site with an
 * active mandate and no open attempt. Returns how many it created, -1 on
 * a database error. */
int collector_autocollect(struct arena *a);

/* Folds the owner counters' old blocks (owner_counts_fold, db/ledger.h):
 * each owner that may have some in a short transaction of its own, never
 * inside a money write; a conflict with a writer leaves the owner for the
 * next run. Cheap when nothing is below the tables' newest blocks. Returns
 * the shard rows folded, -1 on a database error. */
int collector_fold_counts(struct arena *a);

/* The collector process, after fork: connects (the caller opened the
 * database settings), then passes until *stop is set. */
void collector_run(volatile sig_atomic_t *stop);

/* Operator actions (pay-api attempts retry / cancel): due at once, or
 * cancelled (a refund releases its reservation). DB_* codes as int. */
int collector_retry(struct arena *a, int64_t attempt_id);
int collector_cancel(struct arena *a, int64_t attempt_id, const char *why);

#endif
