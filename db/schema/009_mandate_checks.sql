-- A mandate the provider still holds as pending is fetched by the collection
-- engine until it reaches a final state, so a lost webhook never leaves it
-- pending for ever: when its next fetch is due (NULL: none needed; a new row
-- is due at once) and how many fetches it took (their interval grows).
ALTER TABLE provider_mandates
  ADD COLUMN next_check_at DATETIME(6) NULL DEFAULT '2000-01-01 00:00:00',
  ADD COLUMN checks INT NOT NULL DEFAULT 0,
  ADD KEY provider_mandate_check (next_check_at);

UPDATE provider_mandates SET next_check_at = NULL
 WHERE status NOT IN ('CREATED', 'CUSTOMER_APPROVAL_GRANTED', 'CUSTOMER_APPROVAL_SKIPPED',
                      'PENDING_SUBMISSION', 'SUBMITTED');
