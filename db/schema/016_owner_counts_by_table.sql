-- owner_counts rows count one table each (counted: 0 = invoice_payments,
-- 1 = refunds; COUNTED_EVENTS / COUNTED_REFUNDS in db/ledger.h).
--
-- Until now a row (owner, block, shard) held both the events of block N
-- of the invoice payment ids and the refunds of block N of the refund
-- ids. The two tables number their ids apart (refunds far lower), so an
-- owner's old event blocks could be folded (schema 015) only once its
-- refunds had moved past them too: on a data set whose refunds sit in the
-- lowest blocks nothing folded, and a many-owner list summed up to 64
-- shard rows per owner and block again. Now each table's rows fold by
-- that table's own newest block.
--
-- Run with every pay-api process of every host stopped (serve, collectors,
-- `attempts run`), as every migration: a binary built before this schema
-- counts into the wrong rows. The ALTERs can run again; the moves run in
-- one transaction (a migration cut short there changes nothing, and a run
-- after it finds no refund count left in the event rows), and add into
-- the refunds' rows (a refund a new binary counted first is kept).

ALTER TABLE owner_counts
  ADD COLUMN IF NOT EXISTS counted TINYINT NOT NULL DEFAULT 0 AFTER contract_owner_id,
  DROP PRIMARY KEY,
  ADD PRIMARY KEY (contract_owner_id, counted, block, shard);

START TRANSACTION;
INSERT INTO owner_counts (contract_owner_id, counted, block, shard, refund_count)
  SELECT e.contract_owner_id, 1, e.block, e.shard, e.refund_count
    FROM owner_counts AS e WHERE e.counted = 0 AND e.refund_count <> 0
  ON DUPLICATE KEY UPDATE
    refund_count = owner_counts.refund_count + VALUES(refund_count);
UPDATE owner_counts SET refund_count = 0 WHERE counted = 0 AND refund_count <> 0;
DELETE FROM owner_counts WHERE counted = 0 AND normal_events = 0 AND adhoc_events = 0;
COMMIT;

-- From now on every writer names the table it counts.
ALTER TABLE owner_counts ALTER COLUMN counted DROP DEFAULT;
