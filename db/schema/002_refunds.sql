-- Refunds (spec 4.7): money given back on one invoice. The amount counts
-- in invoices.refunded from the moment the refund is accepted; the REFUND
-- ledger row is written when the money actually leaves (at once for manual
-- methods, when the provider confirms for integrated ones).
CREATE TABLE refunds (
  id                          BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
  invoice_kind                TINYINT      NOT NULL,
  invoice_id                  BIGINT       NOT NULL,
  customer_id                 BIGINT       NOT NULL,
  third_party_refund_status   VARCHAR(24)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  amount                      BIGINT       NOT NULL,
  currency_id                 BIGINT       NOT NULL,
  description                 VARCHAR(255) NULL,
  error_info                  VARCHAR(255) NULL,
  payment_method              VARCHAR(32)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  ledger_id                   BIGINT       NULL,
  created_at                  TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  KEY refund_invoice (invoice_kind, invoice_id, id),
  KEY refund_customer (customer_id, id),
  CONSTRAINT refund_amount CHECK (amount > 0)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
