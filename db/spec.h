/*
 * The vocabulary of the contract (spec §2), below both the API and the
 * loader: enumerations, the groups of third-party statuses, which payment
 * methods are integrated, and the derivation of an invoice's payment
 * status (spec §3). Pure data and functions; no I/O.
 */
#ifndef PAY_DB_SPEC_H
#define PAY_DB_SPEC_H

#include "text.h" /* enum_index */

/* NULL-terminated enumerations (spec §2, §5). */
extern const char *const PAYMENT_METHODS[];
extern const char *const BILL_RUN_TYPES[];
extern const char *const BILL_RUN_STATUSES[];
extern const char *const PROVIDER_STATUSES[];
extern const char *const CUSTOMER_PAYMENT_TYPES[];
extern const char *const TXN_TYPES[];
extern const char *const THIRD_PARTY_STATUSES[];


/* 1 for methods collected through a provider (spec §2). */
int payment_method_integrated(const char *m);
/* The same set as an SQL list, for `type IN " INTEGRATED_METHODS_SQL "`
 * (a unit test keeps the two equal). */
#define INTEGRATED_METHODS_SQL                                                  \
    "('GO_CARDLESS','GC_INSTANT_BANK_PAYMENTS','STRIPE','STRIPE_CARD',"         \
    "'STRIPE_DD','FINASTRA','EZYPAY','PAYPAL')"
/* STRIPE, STRIPE_CARD, STRIPE_DD: mandates need the Stripe customer id. */
int payment_method_stripe(const char *m);

/* ThirdPartyPaymentStatus groups (spec §2). NULL (no status) counts as
 * collected: a plain payment. */
enum tp_group { TP_COLLECTED, TP_REVERSED, TP_PENDING, TP_FAILED, TP_INFO };
enum tp_group tp_group_of(const char *status);

/* Invoice kinds (invoices.kind). */
#define INVOICE_NORMAL 1
#define INVOICE_ADHOC  2

/* SQL assignment that re-derives invoices.payment_status from paid,
 * refunded, refund_pending and third_party_status (spec §3). Use it last
 * in an UPDATE's SET list (MariaDB evaluates assignments left to right). */
#define INVOICE_STATUS_SQL                                                    \
    "payment_status = CASE"                                                   \
    " WHEN refund_pending > 0 THEN 'REFUND_PENDING'"                          \
    " WHEN refunded > 0 AND refunded >= paid THEN 'REFUNDED'"                 \
    " WHEN refunded > 0 THEN 'PART_REFUNDED'"                                 \
    " WHEN paid >= amount AND paid > 0 THEN 'PAID'"                           \
    " WHEN paid > 0 THEN 'PARTIALLY_PAID'"                                    \
    " WHEN third_party_status IN ('NEW','CREATED','PENDING_CUSTOMER_APPROVAL',"\
    "'PENDING_SUBMISSION','SUBMITTED','CUSTOMER_APPROVAL_GRANTED','UNSENT',"  \
    "'RESUBMISSION_REQUESTED','FAILED_RETRYING') THEN 'PENDING'"              \
    " ELSE 'UNPAID' END"

#endif
