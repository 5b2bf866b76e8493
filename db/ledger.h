/*
 * The money core (spec §3), below both the API and the loader: the
 * customer's balance row and its append-only ledger, invoices' totals and
 * derived statuses, and invoice payment events. Every function runs
 * inside the caller's unit of work; money-moving ones expect the customer
 * row locked first (customer_load with lock, or invoice_lock), then the
 * invoice rows: the one lock order, so concurrent writers never deadlock.
 * Tenancy is the caller's business (these see every contract owner).
 */
#ifndef PAY_DB_LEDGER_H
#define PAY_DB_LEDGER_H

#include <stdint.h>

#include "db.h"
#include "spec.h"

struct customer {
    int64_t     id;
    int64_t     owner;
    int64_t     currency_id;
    int64_t     balance;
    int64_t     total_payments;          /* maintained figures (schema 008) */
    int64_t     payments_since_invoice;
    int         digits;
    const char *currency_code;   /* "GBP" */
};

/* Loads a customer; with lock, its row (and only its row) is locked FOR
 * UPDATE. DB_NOT_FOUND when there is none. */
DB_MUST_CHECK enum db_rc customer_load(struct db_uow *u, int64_t id, int lock,
                                       struct customer *c);

struct ledger_row {
    const char *txn_type;
    const char *customer_payment_type;
    int64_t     amount;
    const char *description;
    const char *reference;
    const char *payment_method;
    int         invoice_kind;    /* 0 = none */
    int64_t     invoice_id;
    const char *invoice_number;
    const char *bill_run_type;
    const char *payment_date;    /* NULL: today (UTC) */
};

/* Appends a row to a locked customer's ledger and moves the balance.
 * Returns the new row id in *id. */
DB_MUST_CHECK enum db_rc ledger_append(struct db_uow *u, struct customer *c,
                                       const struct ledger_row *row, int64_t *id);

struct invoice {
    int         kind;
    int64_t     id;
    int64_t     customer_id;
    int64_t     amount;
    int64_t     paid;
    int64_t     refunded;
    int64_t     refund_pending;
    int         auto_collect;
    const char *number;
    const char *tp_status;   /* latest third-party status, may be NULL */
};

/* Locks the invoice's customer, then the invoice (the lock order).
 * DB_NOT_FOUND for an unknown invoice. */
DB_MUST_CHECK enum db_rc invoice_lock(struct db_uow *u, int kind, int64_t id,
                                      struct customer *c, struct invoice *inv);
/* Moves the invoice's totals, optionally sets its third-party status, and
 * re-derives its payment status. */
DB_MUST_CHECK enum db_rc invoice_update(struct db_uow *u, const struct invoice *inv,
                                        int64_t paid_delta, int64_t refunded_delta,
                                        int64_t pending_delta, const char *tp_status);

/* One payment event on an invoice (table invoice_payments). */
struct invoice_event {
    const char *tp_status;            /* NULL: none given */
    int64_t     amount;
    const char *description;
    const char *payment_method;
    const char *customer_payment_type;
    int64_t     customer_payment_id;  /* 0: none */
    int64_t     ledger_id;            /* 0: none */
    int         status_not_applicable;/* a manual payment sent with a provider
                                         status: recorded as sent, but the money
                                         is applied at once and the invoice's
                                         third-party status stays */
    int64_t     attempt_id;           /* 0: none (manual payment, correction) */
};
DB_MUST_CHECK enum db_rc invoice_event_insert(struct db_uow *u, const struct invoice *inv,
                                              const struct customer *c,
                                              const struct invoice_event *e, int64_t *id);
/* Each contract owner's events and refunds are counted in owner_counts
 * (schemas 008, 011, 016), one row per table counted (COUNTED_*), block of
 * that table's ids = row id >> OWNER_COUNT_BLOCK_SHIFT and shard =
 * customer_id % OWNER_COUNT_SHARDS; invoice_event_insert and refund_insert
 * count their row. A list finds the row at a position by summing the
 * blocks (handlers/list.c). */
enum owner_counted { COUNTED_EVENTS = 0, COUNTED_REFUNDS = 1 };
#define OWNER_COUNT_SHARDS 64
#define OWNER_COUNT_BLOCK_SHIFT 15
/* The shard of the one row an old block's shards are folded into (schema
 * 015). Money writes never fold; the collection engine does, each owner
 * in a short transaction of its own (handlers/collector.c). */
#define OWNER_COUNT_FOLDED OWNER_COUNT_SHARDS
enum owner_count { COUNT_NORMAL_EVENTS, COUNT_ADHOC_EVENTS, COUNT_REFUNDS };
/* Folds the owner's shard rows of each table's blocks strictly below its
 * newest block of that table - 1 into one row per block, in the caller's
 * transaction (its only work: the counts read the same before and after).
 * *folded gets the number of shard rows folded. */
DB_MUST_CHECK enum db_rc owner_counts_fold(struct db_uow *u, int64_t owner, int64_t *folded);
/* Up to `max` owners above `after`, in id order, that may have blocks to
 * fold (a superset; none when nothing is below the tables' newest blocks). */
DB_MUST_CHECK enum db_rc owner_counts_fold_candidates(struct db_uow *u, int64_t after,
                                                      int64_t *owners, int max, int *n);

/* A refund row on an invoice of a locked customer (the caller moves the
 * invoice's totals), counted in owner_counts. */
struct refund_row {
    int         invoice_kind;
    int64_t     invoice_id;
    const char *status;          /* third_party_refund_status */
    int64_t     amount;
    const char *description;
    const char *payment_method;
    int64_t     ledger_id;       /* 0: none yet */
};
DB_MUST_CHECK enum db_rc refund_insert(struct db_uow *u, const struct customer *c,
                                       const struct refund_row *f, int64_t *id);
/* Change of invoices.paid caused by an event (spec §4.5): the amount for
 * no status or a collected one, minus its magnitude for a reversed one,
 * 0 otherwise. */
int64_t invoice_event_effect(const char *tp_status, int64_t amount);
/* Records event e on a locked invoice of a locked customer: the PAYMENT /
 * PAYMENT_REVERSED ledger row when money moves (e->ledger_id is set), the
 * event itself, and the invoice's totals and statuses. The caller has
 * checked that paid stays >= refunded. */
DB_MUST_CHECK enum db_rc invoice_event_record(struct db_uow *u, struct customer *c,
                                              const struct invoice *inv,
                                              struct invoice_event *e, int64_t *id);

/* A payment against the customer account: the PAYMENT ledger row, then
 * allocation over open invoices of the bill run type, oldest invoice date
 * first (then lowest id), one event per invoice touched; the rest stays
 * as credit. *ledger_id gets the PAYMENT row. */
DB_MUST_CHECK enum db_rc customer_payment_record(struct db_uow *u, struct customer *c,
                                                 int64_t amount, const char *method,
                                                 const char *description,
                                                 const char *reference,
                                                 const char *bill_run_type,
                                                 int64_t *ledger_id);

/* Raises an invoice that was just inserted (loader): its
 * INVOICE_CREATED / ADHOC_INVOICE_CREATED ledger row on the locked
 * customer, dated `invoice_date`, and its derived payment status. */
DB_MUST_CHECK enum db_rc invoice_raise(struct db_uow *u, struct customer *c,
                                       const struct invoice *inv,
                                       const char *invoice_date);

#endif
