/*
 * THE route table: every endpoint of the service, one row each.
 * Columns: method, path pattern (:name captures), handler, flags
 * (R_AUTH bearer token, R_JSON JSON body, R_IDEMPOTENT Idempotency-Key,
 * R_FORM form body, R_RAW_JSON JSON body read but left to the handler),
 * required scope.
 */
#include "handlers.h"

#define RW (R_AUTH | R_JSON | R_IDEMPOTENT)
#define RP (R_AUTH | R_JSON_PATCH) /* application/json-patch+json body */

const struct route routes_table[] = {
/*  method       pattern                                            handler                              flags   scope            */
  { PAY_M_GET,   "/healthz",                                        health_live,                         0,      0                },
  { PAY_M_GET,   "/readyz",                                         health_ready,                        0,      0                },
  { PAY_M_GET,   "/metrics",                                        metrics_get,                         0,      0                },
  { PAY_M_GET,   "/v1/openapi.json",                                openapi_get,                         0,      0                },
  { PAY_M_GET,   "/v1/customer-payments",                           customer_payments_list,              R_AUTH, PAY_SCOPE_READ   },
  { PAY_M_POST,  "/v1/customer-payments",                           customer_payments_create,            RW,     PAY_SCOPE_WRITE  },
  { PAY_M_GET,   "/v1/customer-payments/:customer_payment_id",      customer_payments_get,               R_AUTH, PAY_SCOPE_READ   },
  { PAY_M_GET,   "/v1/customer-balances",                           customer_balances_get,               R_AUTH, PAY_SCOPE_READ   },
  { PAY_M_POST,  "/v1/customer-balance-adjustments",                customer_balance_adjustments_create, RW,     PAY_SCOPE_WRITE  },
  { PAY_M_GET,   "/v1/invoice-payments",                            invoice_payments_list,               R_AUTH, PAY_SCOPE_READ   },
  { PAY_M_POST,  "/v1/invoice-payments",                            invoice_payments_create,             RW,     PAY_SCOPE_WRITE  },
  { PAY_M_GET,   "/v1/invoice-payments/:invoice_payment_id",        invoice_payments_get,                R_AUTH, PAY_SCOPE_READ   },
  { PAY_M_GET,   "/v1/adhoc-invoice-payments",                      adhoc_invoice_payments_list,         R_AUTH, PAY_SCOPE_READ   },
  { PAY_M_POST,  "/v1/adhoc-invoice-payments",                      adhoc_invoice_payments_create,       RW,     PAY_SCOPE_WRITE  },
  { PAY_M_GET,   "/v1/adhoc-invoice-payments/:adhoc_invoice_payment_id", adhoc_invoice_payments_get,     R_AUTH, PAY_SCOPE_READ   },
  { PAY_M_POST,  "/v1/invoice-payment-reprocess",                   invoice_payment_reprocess_create,    RW,     PAY_SCOPE_WRITE  },
  { PAY_M_POST,  "/v1/invoice-payment-cancel",                      invoice_payment_cancel_create,       RW,     PAY_SCOPE_WRITE  },
  { PAY_M_GET,   "/v1/payment-providers",                           payment_providers_list,              R_AUTH, PAY_SCOPE_READ   },
  { PAY_M_POST,  "/v1/payment-providers",                           payment_providers_create,            RW,     PAY_SCOPE_WRITE  },
  { PAY_M_GET,   "/v1/payment-providers/:payment_provider_id",      payment_providers_get,               R_AUTH, PAY_SCOPE_READ   },
  { PAY_M_PATCH, "/v1/payment-providers/:payment_provider_id",      payment_providers_update,            RP,     PAY_SCOPE_WRITE  },
  { PAY_M_POST,  "/v1/payment-provider-reprocess",                 payment_provider_reprocess_create,   RW,     PAY_SCOPE_WRITE  },
  { PAY_M_GET,   "/v1/refunds",                                     refunds_list,                        R_AUTH, PAY_SCOPE_READ   },
  { PAY_M_POST,  "/v1/refunds",                                     refunds_create,                      RW,     PAY_SCOPE_WRITE  },
  { PAY_M_GET,   "/v1/customer-credit-status",                      customer_credit_status_list,         R_AUTH, PAY_SCOPE_READ   },
  { PAY_M_POST,  "/v1/payment-provider-payment-link",               payment_links_create,                RW,     PAY_SCOPE_WRITE  },
  { PAY_M_GET,   "/v1/site-payment-mandates",                       site_payment_mandates_list,          R_AUTH, PAY_SCOPE_READ   },
  { PAY_M_POST,  "/v1/site-payment-mandates",                       site_payment_mandates_create,        RW,     PAY_SCOPE_WRITE  },
  { PAY_M_GET,   "/v1/payment-provider-mandates/:paymentMethod/:mandateReference", provider_mandates_get, R_AUTH, PAY_SCOPE_READ   },
  { PAY_M_GET,   "/v1/instant-bank-payment-for-mandate",            instant_bank_payments_list,          R_AUTH, PAY_SCOPE_READ   },
  { PAY_M_GET,   "/pay/:token",                                     pages_pay_get,                       0,      0                },
  { PAY_M_POST,  "/pay/:token",                                     pages_pay_post,                      R_FORM, 0                },
  { PAY_M_GET,   "/mandate/:token",                                 pages_mandate_get,                   0,      0                },
  { PAY_M_POST,  "/mandate/:token",                                 pages_mandate_post,                  R_FORM, 0                },
  { PAY_M_POST,  "/webhooks/:paymentProviderId",                     webhooks_receive,                    R_RAW_JSON | R_BIG_BODY, 0            },
  { PAY_M_GET,   "/v1/refunds/:refund_id",                          refunds_get,                         R_AUTH, PAY_SCOPE_READ   },
  { PAY_M_GET,   "/v1/site-payment-mandates/:site_payment_mandate_id", site_payment_mandates_get,    R_AUTH, PAY_SCOPE_READ   },
};

const size_t routes_count = sizeof(routes_table) / sizeof(routes_table[0]);

/* The scope words of a token's "scope" claim (spec 1.2); admin implies read
 * and write and sees every contract owner. */
const struct auth_scope routes_scopes[] = {
/*  word              grants                              all contract owners */
  { "payments:read",  PAY_SCOPE_READ,                     0 },
  { "payments:write", PAY_SCOPE_WRITE,                    0 },
  { "payments:admin", PAY_SCOPE_READ | PAY_SCOPE_WRITE,   1 },
};

const size_t routes_nscopes = sizeof(routes_scopes) / sizeof(routes_scopes[0]);
