-- The database connection that holds an idempotency claim (CONNECTION_ID()).
-- A claim whose connection is gone (its worker died: the server rolled its
-- transaction back) is taken over at once instead of after the lease, and
-- completing or releasing a claim requires holding it, so a claim taken
-- over is never completed by its first holder as well. NULL (claims made
-- before this column): the lease alone decides.
ALTER TABLE idempotency_keys ADD COLUMN claim_conn BIGINT UNSIGNED NULL AFTER claimed_at;
