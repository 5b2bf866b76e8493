/*
 * Attempts (COLLECTION.md §1-§2): one try to move one amount through one
 * provider, a collection (customer -> us, for an invoice or the customer
 * account) or a refund (us -> customer, for one refund row). This is the
 * money core of collection, next to ledger.c: the rank table of the
 * statuses, and the transitions that apply or take back money exactly
 * once, on a change of group only.
 *
 * Every function runs inside the caller's unit of work; the ones that
 * move money expect the attempt's customer locked first (customer_load
 * with lock, or invoice_lock), as every money write does; invoice rows
 * are locked here, after it. No function here ever talks to a provider.
 */
#ifndef PAY_DB_COLLECTION_H
#define PAY_DB_COLLECTION_H

#include <stdint.h>

#include "db.h"
#include "ledger.h"

#define ATTEMPT_COLLECTION 1
#define ATTEMPT_REFUND     2

/* Groups of the lifecycle. Collections use ThirdPartyPaymentStatus with
 * the groups of API.md §2; refunds ThirdPartyRefundStatus. */
enum attempt_group {
    AG_NONE,        /* not in the lifecycle (informational) */
    AG_PENDING,
    AG_COLLECTED,
    AG_REVERSED,
    AG_FAILED,
    AG_SETTLED,     /* refund: money left (PAID, REFUND_SETTLED) */
    AG_RELEASED,    /* refund: never left (CANCELLED, BOUNCED) */
    AG_RETURNED,    /* refund: came back after it left (FUNDS_RETURNED) */
};

/* The rank of a status in its lifecycle; -1 when the status is not part
 * of it (informational statuses, unknown words). An attempt moves only to
 * a status of a strictly higher rank. */
int attempt_rank(int kind, const char *status);
enum attempt_group attempt_group_of(int kind, const char *status);
/* 1 when nothing more is expected of the attempt: no event can move it
 * (the highest rank) or it failed for good. */
int attempt_final(int kind, const char *status);
/* The failed group of collections as an SQL list (a unit test keeps it
 * equal to the rank table). */
#define ATTEMPT_FAILED_SQL                                                      \
    "('FAILED','CANCELLED','CUSTOMER_APPROVAL_DENIED','CUSTOMER_APPROVAL_MISSING'," \
    "'UNSUPPORTED_PAYMENT_TYPE','UNAUTHORISED_PAYMENT_TYPE')"

struct attempt {
    int64_t     id;                 /* 0: not stored yet */
    int         kind;               /* ATTEMPT_COLLECTION / ATTEMPT_REFUND */
    int64_t     customer_id;
    int         invoice_kind;       /* 0: the customer account */
    int64_t     invoice_id;
    int64_t     refund_id;          /* refunds */
    int64_t     provider_id;        /* 0: none (waits for one) */
    const char *method;
    const char *mandate_reference;
    int64_t     amount;             /* minor units, > 0 */
    int64_t     currency_id;
    const char *description;
    const char *idem_key;           /* NULL at insert: a fresh random one */
    const char *reference;          /* the provider's, NULL until known */
    const char *status;
    int64_t     applied_ledger_id;  /* collections: PAYMENT row applied now */
    int         cancel_requested;
    int         calls;
    const char *error_info;
    int         due;                /* insert: the engine must act at once */
    int64_t     payment_link_id;    /* the payment link it pays (0: none) */
};

/* Inserts a (stored = 0) attempt in a->status without moving money, and
 * sets a->id and a->idem_key. Use attempt_advance to open one in a status
 * that moves money. */
DB_MUST_CHECK enum db_rc attempt_insert(struct db_uow *u, struct attempt *a);
/* Loads an attempt; with lock, FOR UPDATE (customer locked first!). */
DB_MUST_CHECK enum db_rc attempt_load(struct db_uow *u, int64_t id, int lock,
                                      struct attempt *a);
/* The newest collection attempt of an invoice that is not final, of this
 * payment method and amount, locked. DB_NOT_FOUND when none. */
DB_MUST_CHECK enum db_rc attempt_find_open(struct db_uow *u, int invoice_kind,
                                           int64_t invoice_id, const char *method,
                                           int64_t amount, struct attempt *a);
/* The newest collection attempt of an invoice with this provider
 * reference, locked. DB_NOT_FOUND when none. */
DB_MUST_CHECK enum db_rc attempt_find_reference(struct db_uow *u, int invoice_kind,
                                                int64_t invoice_id, const char *reference,
                                                struct attempt *a);
/* The refund attempt of a refund row, locked. */
DB_MUST_CHECK enum db_rc attempt_find_refund(struct db_uow *u, int64_t refund_id,
                                             struct attempt *a);

/* What a report (an API event, a provider's answer or webhook) says
 * besides the status. All fields optional. */
struct attempt_report {
    const char *description;          /* of the invoice payment event */
    int         exact_description;    /* 1: description as given, even NULL
                                       * (else NULL means the attempt's) */
    int64_t     posted_amount;        /* the event's amount as posted (0: the attempt's) */
    const char *customer_payment_type;/* of the event (default INVOICE / ADHOC_INVOICE) */
    const char *error_info;           /* kept on the attempt (and refund) */
    const char *reference;            /* the provider's reference, when learnt */
};

/* Outcome of attempt_advance. */
struct attempt_outcome {
    int     moved;          /* 1: the status changed; 0: ranked too low, ignored */
    int64_t money;          /* what was applied (+) or taken back (-) */
    int64_t event_id;       /* the invoice payment event recorded (0: none) */
};

/*
 * A report that the attempt is now in `status`, on the locked customer c.
 * With a->id == 0 the attempt is opened (inserted) in that status. When the
 * status ranks above the attempt's, the attempt moves and money follows the
 * change of group (COLLECTION.md §2): applied on entering collected (an
 * invoice's paid, or spread over the customer's open invoices, normal and
 * adhoc, oldest first), taken back on collected -> reversed; a refund books
 * its REFUND row when settled, releases its reservation when cancelled or
 * bounced, and returns the money (REFUND_RETURNED) when its funds come back
 * after settling. Otherwise nothing moves. An invoice attempt always gets
 * its invoice payment event (with the ledger row when money moved).
 * DB_CONFLICT (nothing written) when taking money back would leave an
 * invoice's paid below its refunded amount.
 */
DB_MUST_CHECK enum db_rc attempt_advance(struct db_uow *u, struct customer *c,
                                         struct attempt *a, const char *status,
                                         const struct attempt_report *rep,
                                         struct attempt_outcome *out);

/* Engine bookkeeping without money: the provider's reference, the next
 * time the engine acts (delay_ms from now; < 0: not due), the error, and
 * the call count. */
DB_MUST_CHECK enum db_rc attempt_schedule(struct db_uow *u, const struct attempt *a,
                                          long delay_ms, const char *error_info,
                                          int count_call);

#endif
