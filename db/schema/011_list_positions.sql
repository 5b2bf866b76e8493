-- A page number of a tenant-wide list maps to its first row without
-- reading the rows before it.
--
-- owner_counts (schema 008) gains the block of the counted row's id
-- (id >> 15, blocks of 32768 ids; OWNER_COUNT_BLOCK_SHIFT in db/ledger.h):
-- normal_events and adhoc_events count invoice_payments rows of the block,
-- refund_count refunds rows of the block (each table's own ids). The money
-- core still adds one to one row per event, in the same transaction; the
-- row of a shard is new once per block. A list's exact total is still the
-- sum of the owner's rows; the row at position N is found by summing the
-- blocks in id order up to N, then skipping at most one block's ids in the
-- owner index (handlers/list.c).
-- The statements can run again, so a migration cut short is re-run whole.

DELETE FROM owner_counts;
ALTER TABLE owner_counts
  ADD COLUMN IF NOT EXISTS block BIGINT NOT NULL DEFAULT 0 AFTER contract_owner_id,
  DROP PRIMARY KEY,
  ADD PRIMARY KEY (contract_owner_id, block, shard);

INSERT INTO owner_counts (contract_owner_id, block, shard, normal_events, adhoc_events)
  SELECT contract_owner_id, id >> 15, customer_id % 64,
         SUM(invoice_kind = 1), SUM(invoice_kind = 2)
    FROM invoice_payments GROUP BY contract_owner_id, id >> 15, customer_id % 64;
INSERT INTO owner_counts (contract_owner_id, block, shard, refund_count)
  SELECT contract_owner_id, id >> 15, customer_id % 64, COUNT(*)
    FROM refunds GROUP BY contract_owner_id, id >> 15, customer_id % 64
  ON DUPLICATE KEY UPDATE refund_count = VALUES(refund_count);

-- Site payment mandates carry their customer's contract owner (a site never
-- changes customer, a customer never changes owner), so a tenant's mandates
-- are one range of mandate_owner in id order: no join through sites and
-- customers to find the tenant, and the count is read from that index alone.
ALTER TABLE site_payment_mandates
  ADD COLUMN IF NOT EXISTS contract_owner_id BIGINT NOT NULL DEFAULT 0,
  ADD KEY IF NOT EXISTS mandate_owner (contract_owner_id, id);

UPDATE site_payment_mandates m
   SET m.contract_owner_id = (SELECT c.contract_owner_id FROM sites s
                                JOIN customers c ON c.id = s.customer_id
                               WHERE s.id = m.site_id);

-- From now on every writer names the owner (an insert without it fails).
ALTER TABLE site_payment_mandates ALTER COLUMN contract_owner_id DROP DEFAULT;
