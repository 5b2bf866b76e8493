-- Reference data (owned by neighbouring services, loaded by `pay-api load`)
-- and the customer ledger. Money is BIGINT minor units everywhere.

CREATE TABLE contract_owners (
  id    BIGINT       NOT NULL PRIMARY KEY,
  name  VARCHAR(255) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE currencies (
  id            BIGINT       NOT NULL PRIMARY KEY,
  code          CHAR(3)      CHARACTER SET ascii NOT NULL,
  name          VARCHAR(255) NOT NULL,
  minor_digits  TINYINT      NOT NULL,
  UNIQUE KEY currency_code (code),
  CONSTRAINT currency_digits CHECK (minor_digits BETWEEN 0 AND 4)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- balance is the running sum of the customer's ledger rows; the row is
-- the lock every money-moving transaction takes first.
CREATE TABLE customers (
  id                       BIGINT       NOT NULL PRIMARY KEY,
  contract_owner_id        BIGINT       NOT NULL,
  customer_name            VARCHAR(255) NOT NULL,
  customer_account_number  VARCHAR(64)  NOT NULL,
  currency_id              BIGINT       NOT NULL,
  credit_threshold         BIGINT       NULL,
  balance                  BIGINT       NOT NULL DEFAULT 0,
  KEY customer_owner (contract_owner_id, id),
  CONSTRAINT customer_owner_fk FOREIGN KEY (contract_owner_id) REFERENCES contract_owners (id),
  CONSTRAINT customer_currency_fk FOREIGN KEY (currency_id) REFERENCES currencies (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE sites (
  id                                BIGINT       NOT NULL PRIMARY KEY,
  customer_id                       BIGINT       NOT NULL,
  site_name                         VARCHAR(255) NOT NULL,
  start_date                        DATE         NOT NULL,
  end_date                          DATE         NULL,
  payment_method                    VARCHAR(32)  CHARACTER SET ascii COLLATE ascii_bin NULL,
  repayment_plan_amount             BIGINT       NULL,
  repayment_plan_remaining_periods  INT          NULL,
  KEY site_customer (customer_id),
  CONSTRAINT site_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE bill_runs (
  id      BIGINT NOT NULL PRIMARY KEY,
  type    ENUM('NORMAL','ADHOC') NOT NULL,
  status  ENUM('OPEN','CLOSED','FINALIZED') NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Normal (kind 1) and adhoc (kind 2) invoices share one table; each kind
-- has its own id space, as in the public API. paid = applied payments
-- minus reversals, refunded = refunds pending or done.
CREATE TABLE invoices (
  kind                TINYINT      NOT NULL,
  id                  BIGINT       NOT NULL,
  customer_id         BIGINT       NOT NULL,
  site_id             BIGINT       NULL,
  bill_run_id         BIGINT       NOT NULL,
  invoice_number      VARCHAR(64)  NOT NULL,
  invoice_date        DATE         NOT NULL,
  due_date            DATE         NULL,
  amount              BIGINT       NOT NULL,
  auto_collect        TINYINT(1)   NOT NULL DEFAULT 0,
  third_party_status  VARCHAR(40)  CHARACTER SET ascii COLLATE ascii_bin NULL,
  paid                BIGINT       NOT NULL DEFAULT 0,
  refunded            BIGINT       NOT NULL DEFAULT 0,
  refund_pending      BIGINT       NOT NULL DEFAULT 0,
  payment_status      VARCHAR(16)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL DEFAULT 'UNPAID',
  is_open             TINYINT      AS (paid < amount) PERSISTENT,
  PRIMARY KEY (kind, id),
  -- the oldest-unpaid-invoice lookup of a customer payment
  KEY invoice_open_by_age (customer_id, kind, is_open, invoice_date, id),
  KEY invoice_bill_run (bill_run_id),
  CONSTRAINT invoice_kind CHECK (kind IN (1, 2)),
  CONSTRAINT invoice_amounts CHECK (paid >= 0 AND refunded >= 0 AND refunded <= paid),
  CONSTRAINT invoice_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id),
  CONSTRAINT invoice_bill_run_fk FOREIGN KEY (bill_run_id) REFERENCES bill_runs (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- The append-only customer ledger: one row per money movement. Rows are
-- never updated or deleted.
CREATE TABLE ledger (
  id                     BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
  customer_id            BIGINT       NOT NULL,
  txn_type               VARCHAR(24)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  customer_payment_type  VARCHAR(16)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  amount                 BIGINT       NOT NULL,
  resulting_balance      BIGINT       NOT NULL,
  currency_id            BIGINT       NOT NULL,
  description            VARCHAR(255) NULL,
  reference              VARCHAR(255) NULL,
  payment_method         VARCHAR(32)  CHARACTER SET ascii COLLATE ascii_bin NULL,
  payment_date           DATE         NOT NULL,
  invoice_kind           TINYINT      NULL,
  invoice_id             BIGINT       NULL,
  invoice_number         VARCHAR(64)  NULL,
  bill_run_type          VARCHAR(8)   CHARACTER SET ascii COLLATE ascii_bin NULL,
  created_at             TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  KEY ledger_by_customer (customer_id, id),
  CONSTRAINT ledger_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Payment events on one invoice (normal or adhoc, by invoice_kind).
CREATE TABLE invoice_payments (
  id                     BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
  invoice_kind           TINYINT      NOT NULL,
  invoice_id             BIGINT       NOT NULL,
  customer_id            BIGINT       NOT NULL,
  third_party_status     VARCHAR(40)  CHARACTER SET ascii COLLATE ascii_bin NULL,
  amount                 BIGINT       NOT NULL,
  currency_id            BIGINT       NOT NULL,
  description            VARCHAR(255) NULL,
  meta_data              TEXT         NULL,
  error_info             VARCHAR(255) NULL,
  payment_method         VARCHAR(32)  CHARACTER SET ascii COLLATE ascii_bin NULL,
  payment_date           DATE         NOT NULL,
  customer_payment_type  VARCHAR(16)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  customer_payment_id    BIGINT       NULL,
  ledger_id              BIGINT       NULL,
  created_at             TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  KEY invoice_payment_invoice (invoice_kind, invoice_id, id),
  KEY invoice_payment_customer_payment (customer_payment_id),
  KEY invoice_payment_customer (customer_id, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Idempotency-Key records (spec 1.6), scoped to the token's sub.
-- state 0 = in progress (claimed_at is the lease), 1 = done.
CREATE TABLE idempotency_keys (
  sub           VARCHAR(128)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  idem_key      VARCHAR(255)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  request_hash  CHAR(64)      CHARACTER SET ascii NOT NULL,
  state         TINYINT       NOT NULL,
  status        SMALLINT      NULL,
  location      VARCHAR(255)  NULL,
  response      MEDIUMTEXT    NULL,
  claimed_at    TIMESTAMP(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  created_at    TIMESTAMP     NOT NULL DEFAULT CURRENT_TIMESTAMP,
  PRIMARY KEY (sub, idem_key),
  KEY idempotency_age (created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
