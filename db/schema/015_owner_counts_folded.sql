-- Old blocks of owner_counts (schema 011) in one row each.
--
-- A block's 64 shard rows spread concurrent payments of an owner over 64
-- counter rows; once a block's ids are used up, nothing writes it any
-- more (or seldom: a transaction that took an id of the block and commits
-- late), so its shard rows are folded into one row of shard 64
-- (OWNER_COUNT_FOLDED in db/ledger.h) with their sums: a list's total and
-- its page positions read a row per owner and old block instead of up to
-- 64. The money core folds an owner's older blocks from now on whenever
-- a shard's first row of a new block is written (db/ledger.c); this
-- migration folds the blocks before each table's newest block once.
--
-- The shard rows are read locked into a temporary table, deleted by their
-- keys (a row written meanwhile is a row of its own and stays) and added
-- to the folded rows, in one transaction, so the counts are unchanged; a
-- run cut short rolls back and runs again whole.

SET @fold_below = GREATEST(
  (SELECT COALESCE(MAX(id), 0) >> 15 FROM invoice_payments),
  (SELECT COALESCE(MAX(id), 0) >> 15 FROM refunds));

START TRANSACTION;

CREATE TEMPORARY TABLE owner_counts_fold (
  contract_owner_id  BIGINT   NOT NULL,
  block              BIGINT   NOT NULL,
  shard              SMALLINT NOT NULL,
  normal_events      BIGINT   NOT NULL,
  adhoc_events       BIGINT   NOT NULL,
  refund_count       BIGINT   NOT NULL,
  PRIMARY KEY (contract_owner_id, block, shard)
) ENGINE=InnoDB;

INSERT INTO owner_counts_fold
  SELECT contract_owner_id, block, shard, normal_events, adhoc_events, refund_count
    FROM owner_counts WHERE block < @fold_below AND shard < 64 FOR UPDATE;

DELETE o FROM owner_counts o JOIN owner_counts_fold f
    ON f.contract_owner_id = o.contract_owner_id AND f.block = o.block AND f.shard = o.shard;

INSERT INTO owner_counts (contract_owner_id, block, shard, normal_events, adhoc_events,
                          refund_count)
  SELECT contract_owner_id, block, 64, SUM(normal_events), SUM(adhoc_events),
         SUM(refund_count)
    FROM owner_counts_fold GROUP BY contract_owner_id, block
  ON DUPLICATE KEY UPDATE normal_events = normal_events + VALUES(normal_events),
                          adhoc_events = adhoc_events + VALUES(adhoc_events),
                          refund_count = refund_count + VALUES(refund_count);

COMMIT;

DROP TEMPORARY TABLE owner_counts_fold;
