-- Tenant-wide lists and balances that do not grow with the ledger.
--
-- The contract owner is copied onto invoice payment events and refunds (a
-- customer never changes owner), so a tenant's list is one index range in
-- id order: no join to customers to find the tenant, no sort of the
-- tenant's whole history per page.
--
-- Figures kept by the money core (db/ledger.c) in the same transaction as
-- the rows they describe:
--   customers.total_payments          sum of the customer's PAYMENT and
--                                     PAYMENT_REVERSED ledger rows
--   customers.payments_since_invoice  the same sum over the rows after its
--                                     newest (ADHOC_)INVOICE_CREATED row
--   owner_counts                      a contract owner's invoice payment
--                                     events (by invoice kind) and refunds,
--                                     spread over 64 rows by customer id
--                                     (customer_id % 64), so concurrent
--                                     payments of different customers seldom
--                                     wait for the same counter row
-- X-Total-Count of an unfiltered tenant-wide list is the sum of at most 64
-- counter rows per owner, not a count of the events.
-- customer_owner_threshold serves the credit status list: a tenant's
-- customers in id order with their threshold, read from the index alone
-- to count them or to skip to a page.
-- The statements can run again (IF NOT EXISTS), so a migration cut short
-- is re-run whole.

ALTER TABLE invoice_payments
  ADD COLUMN IF NOT EXISTS contract_owner_id BIGINT NOT NULL DEFAULT 0,
  ADD KEY IF NOT EXISTS invoice_payment_owner (contract_owner_id, invoice_kind, id),
  ADD KEY IF NOT EXISTS invoice_payment_kind (invoice_kind, id, contract_owner_id);

UPDATE invoice_payments p
   SET p.contract_owner_id = (SELECT c.contract_owner_id FROM customers c
                                WHERE c.id = p.customer_id);

ALTER TABLE refunds
  ADD COLUMN IF NOT EXISTS contract_owner_id BIGINT NOT NULL DEFAULT 0,
  ADD KEY IF NOT EXISTS refund_owner (contract_owner_id, id);

UPDATE refunds f
   SET f.contract_owner_id = (SELECT c.contract_owner_id FROM customers c
                                WHERE c.id = f.customer_id);

ALTER TABLE customers
  ADD COLUMN IF NOT EXISTS total_payments          BIGINT NOT NULL DEFAULT 0,
  ADD COLUMN IF NOT EXISTS payments_since_invoice  BIGINT NOT NULL DEFAULT 0,
  ADD KEY IF NOT EXISTS customer_owner_threshold (contract_owner_id, id, credit_threshold);

UPDATE customers c
   SET c.total_payments = (SELECT COALESCE(SUM(l.amount), 0) FROM ledger l
                            WHERE l.customer_id = c.id
                              AND l.txn_type IN ('PAYMENT', 'PAYMENT_REVERSED')),
       c.payments_since_invoice =
         (SELECT COALESCE(SUM(l.amount), 0) FROM ledger l
           WHERE l.customer_id = c.id
             AND l.txn_type IN ('PAYMENT', 'PAYMENT_REVERSED')
             AND l.id > (SELECT COALESCE(MAX(n.id), 0) FROM ledger n
                          WHERE n.customer_id = c.id
                            AND n.txn_type IN ('INVOICE_CREATED', 'ADHOC_INVOICE_CREATED')));

CREATE TABLE IF NOT EXISTS owner_counts (
  contract_owner_id  BIGINT   NOT NULL,
  shard              SMALLINT NOT NULL,
  normal_events      BIGINT   NOT NULL DEFAULT 0,
  adhoc_events       BIGINT   NOT NULL DEFAULT 0,
  refund_count       BIGINT   NOT NULL DEFAULT 0,
  PRIMARY KEY (contract_owner_id, shard)
) ENGINE=InnoDB;

DELETE FROM owner_counts;
INSERT INTO owner_counts (contract_owner_id, shard, normal_events, adhoc_events)
  SELECT contract_owner_id, customer_id % 64, SUM(invoice_kind = 1), SUM(invoice_kind = 2)
    FROM invoice_payments GROUP BY contract_owner_id, customer_id % 64;
INSERT INTO owner_counts (contract_owner_id, shard, refund_count)
  SELECT contract_owner_id, customer_id % 64, COUNT(*)
    FROM refunds GROUP BY contract_owner_id, customer_id % 64
  ON DUPLICATE KEY UPDATE refund_count = VALUES(refund_count);

-- From now on every writer names the owner (an insert without it fails).
ALTER TABLE invoice_payments ALTER COLUMN contract_owner_id DROP DEFAULT;
ALTER TABLE refunds ALTER COLUMN contract_owner_id DROP DEFAULT;
