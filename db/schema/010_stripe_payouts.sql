-- Stripe payouts (README "Stripe"): a payout.paid webhook is stored here
-- (one row per provider and payout, no call to Stripe while the webhook is
-- handled); the collector claims a due row with a lease like an attempt,
-- checks the payout is still paid, lists its charges
-- (GET /v1/balance_transactions?payout=...&type=charge, page by page; the
-- last id done is the cursor, so a killed collector goes on where it
-- stopped) and moves each charge's attempt to PAID_OUT through a stored
-- provider event. payout.failed / payout.canceled make the row FAILED:
-- nothing is paid out from it.
CREATE TABLE stripe_payouts (
  id              BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
  provider_id     BIGINT       NOT NULL,
  payout_id       VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  status          VARCHAR(16)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  starting_after  VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NULL,
  calls           INT          NOT NULL DEFAULT 0,
  error_info      VARCHAR(255) NULL,
  next_action_at  TIMESTAMP(6) NULL,
  created_at      TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  UNIQUE KEY stripe_payout (provider_id, payout_id),
  KEY stripe_payout_due (next_action_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
