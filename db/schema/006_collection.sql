-- Collection (COLLECTION.md): attempts to move one amount through one
-- provider, and the provider events (webhooks) received about them.

-- One try to move one amount through one provider. kind 1 = collection
-- (customer -> us) for an invoice (invoice_kind/invoice_id) or for the
-- customer account (both NULL); kind 2 = refund (us -> customer) of one
-- refund row. idempotency_key is fixed at creation and handed to the
-- provider on every call. applied_ledger_id is the PAYMENT ledger row of
-- the money a collection has applied right now (NULL when none): money is
-- applied or taken back only when that changes, so at most once per
-- transition. next_action_at is when the engine must act (NULL: waiting
-- for the provider's event); lease_until guards a claim.
CREATE TABLE attempts (
  id                   BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
  kind                 TINYINT      NOT NULL,
  customer_id          BIGINT       NOT NULL,
  invoice_kind         TINYINT      NULL,
  invoice_id           BIGINT       NULL,
  refund_id            BIGINT       NULL,
  provider_id          BIGINT       NULL,
  payment_method       VARCHAR(32)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  mandate_reference    VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NULL,
  amount               BIGINT       NOT NULL,
  currency_id          BIGINT       NOT NULL,
  description          VARCHAR(255) NULL,
  idempotency_key      VARCHAR(100) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  provider_reference   VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NULL,
  status               VARCHAR(40)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  applied_ledger_id    BIGINT       NULL,
  cancel_requested     TINYINT(1)   NOT NULL DEFAULT 0,
  next_action_at       TIMESTAMP(6) NULL,
  lease_until          TIMESTAMP(6) NULL,
  calls                INT          NOT NULL DEFAULT 0,
  error_info           VARCHAR(255) NULL,
  created_at           TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  updated_at           TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  UNIQUE KEY attempt_key (idempotency_key),
  KEY attempt_invoice (invoice_kind, invoice_id, id),
  KEY attempt_customer (customer_id, id),
  KEY attempt_refund (refund_id),
  KEY attempt_reference (provider_reference),
  KEY attempt_due (next_action_at),
  KEY attempt_provider (provider_id, id),
  CONSTRAINT attempt_kind CHECK (kind IN (1, 2)),
  CONSTRAINT attempt_amount CHECK (amount > 0)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Events a provider sent (webhooks), stored by the provider's event id so
-- that a replay changes nothing. outcome: APPLIED, IGNORED (ranked below
-- the attempt's status), UNKNOWN_REFERENCE, CONFLICT.
CREATE TABLE provider_events (
  id                   BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
  provider_id          BIGINT       NOT NULL,
  event_id             VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  provider_reference   VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NULL,
  status               VARCHAR(40)  CHARACTER SET ascii COLLATE ascii_bin NULL,
  attempt_id           BIGINT       NULL,
  outcome              VARCHAR(24)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  body                 MEDIUMTEXT   NULL,
  received_at          TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  UNIQUE KEY provider_event (provider_id, event_id),
  KEY provider_event_attempt (attempt_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- The attempt an invoice payment event reports on (NULL: a manual payment
-- or a correction).
ALTER TABLE invoice_payments ADD COLUMN attempt_id BIGINT NULL,
  ADD KEY invoice_payment_attempt (attempt_id);
