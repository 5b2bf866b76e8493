/* The contract's vocabulary (see spec.h). */
#include "spec.h"

#include "text.h"

#include <stddef.h>
#include <string.h>

const char *const PAYMENT_METHODS[] = {
    "CHEQUE", "DIRECT_DEBIT", "CANCELLED_DD", "CANCELLED_CARD", "CREDIT_CARD",
    "PAYPAL", "BACS", "POST_OFFICE_PAYMENT_CARD", "EZYPAY", "GO_CARDLESS",
    "GC_INSTANT_BANK_PAYMENTS", "STRIPE", "STRIPE_CARD", "STRIPE_DD",
    "FINASTRA", "FAST_PAY", "OTHER", NULL};
const char *const BILL_RUN_TYPES[] = {"NORMAL", "ADHOC", NULL};
const char *const BILL_RUN_STATUSES[] = {"OPEN", "CLOSED", "FINALIZED", NULL};
const char *const PROVIDER_STATUSES[] = {"ACTIVE", "INACTIVE", NULL};
const char *const CUSTOMER_PAYMENT_TYPES[] = {
    "CUSTOMER", "INVOICE", "ADHOC_INVOICE", "ADJUSTMENT", "REFUND", NULL};
const char *const TXN_TYPES[] = {
    "INVOICE_CREATED", "ADHOC_INVOICE_CREATED", "PAYMENT", "PAYMENT_REVERSED",
    "REFUND", "ADJUSTMENT", "REFUND_RETURNED", NULL};

const char *const THIRD_PARTY_STATUSES[] = {
    "NEW", "CREATED", "PENDING_CUSTOMER_APPROVAL", "PENDING_SUBMISSION",
    "SUBMITTED", "CONFIRMED", "PAID_OUT", "CANCELLED", "FAILED",
    "FAILED_RETRYING", "CHARGED_BACK", "CUSTOMER_APPROVAL_GRANTED",
    "CUSTOMER_APPROVAL_DENIED", "CHARGEBACK_CANCELLED", "LATE_FAILURE_SETTLED",
    "CHARGEBACK_SETTLED", "SURCHARGE_FEE_DEBITED", "RESUBMISSION_REQUESTED",
    "UNSUPPORTED_PAYMENT_TYPE", "UNAUTHORISED_PAYMENT_TYPE",
    "CUSTOMER_APPROVAL_MISSING", "SURCHARGE_FEE_CREDITED", "MANUALLY_PAID",
    "UNSENT", "REFUNDED", "PARTIALLY_REFUNDED", "REFUND_PENDING", NULL};

static const char *const TP_COLLECTED_SET[] = {
    "CONFIRMED", "PAID_OUT", "MANUALLY_PAID", "CHARGEBACK_CANCELLED", NULL};
static const char *const TP_REVERSED_SET[] = {
    "CHARGED_BACK", "LATE_FAILURE_SETTLED", "CHARGEBACK_SETTLED", NULL};
static const char *const TP_PENDING_SET[] = {
    "NEW", "CREATED", "PENDING_CUSTOMER_APPROVAL", "PENDING_SUBMISSION",
    "SUBMITTED", "CUSTOMER_APPROVAL_GRANTED", "UNSENT", "RESUBMISSION_REQUESTED",
    "FAILED_RETRYING", NULL};
static const char *const TP_FAILED_SET[] = {
    "FAILED", "CANCELLED", "CUSTOMER_APPROVAL_DENIED", "CUSTOMER_APPROVAL_MISSING",
    "UNSUPPORTED_PAYMENT_TYPE", "UNAUTHORISED_PAYMENT_TYPE", NULL};

enum tp_group
tp_group_of(const char *status)
{
    if (status == NULL || enum_index(TP_COLLECTED_SET, status) >= 0)
        return TP_COLLECTED;
    if (enum_index(TP_REVERSED_SET, status) >= 0)
        return TP_REVERSED;
    if (enum_index(TP_PENDING_SET, status) >= 0)
        return TP_PENDING;
    if (enum_index(TP_FAILED_SET, status) >= 0)
        return TP_FAILED;
    return TP_INFO;
}

static const char *const INTEGRATED[] = {
    "GO_CARDLESS", "GC_INSTANT_BANK_PAYMENTS", "STRIPE", "STRIPE_CARD",
    "STRIPE_DD", "FINASTRA", "EZYPAY", "PAYPAL", NULL};


int
payment_method_integrated(const char *m)
{
    return enum_index(INTEGRATED, m) >= 0;
}

int
payment_method_stripe(const char *m)
{
    return m != NULL && strncmp(m, "STRIPE", 6) == 0;
}

