-- What the built-in sandbox provider keeps on its side (COLLECTION.md §6),
-- as a real provider would: one row per payment or refund it was asked to
-- make, keyed by its reference (derived from the caller's idempotency
-- key), with the time of the first call (its outcomes follow a timeline
-- from there) and how many calls were made with that key.
CREATE TABLE sandbox_calls (
  reference          VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
  idempotency_key    VARCHAR(100) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  kind               CHAR(3)      CHARACTER SET ascii NOT NULL,
  amount             BIGINT       NOT NULL,
  first_at           TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  calls              INT          NOT NULL DEFAULT 1,
  cancelled          TINYINT(1)   NOT NULL DEFAULT 0,
  UNIQUE KEY sandbox_key (idempotency_key, kind)
) ENGINE=InnoDB;

-- The payment link an attempt pays (its page follows the newest one), and
-- the attempt behind an instant bank payment (its reference comes from the
-- provider when the engine has submitted it).
ALTER TABLE attempts ADD COLUMN payment_link_id BIGINT NULL,
  ADD KEY attempt_payment_link (payment_link_id, id);
ALTER TABLE instant_bank_payments ADD COLUMN attempt_id BIGINT NULL,
  ADD KEY ibp_attempt (attempt_id);
