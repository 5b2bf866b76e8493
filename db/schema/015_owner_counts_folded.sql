-- Old blocks of owner_counts (schema 011) in one row each.
--
-- A block's 64 shard rows spread concurrent payments of an owner over 64
-- counter rows; once a block's ids are used up, nothing writes it any
-- more (or seldom: a transaction that took an id of the block and commits
-- late), so its shard rows are folded into one row of shard 64
-- (OWNER_COUNT_FOLDED in db/ledger.h) with their sums: a list's total and
-- its page positions read a row per owner and old block instead of up to
-- 64.
--
-- The table needs no change (shard is a SMALLINT, the key stays). Nothing
-- is folded here: the collection engine folds (handlers/collector.c, each
-- collector run and `pay-api attempts run`), each owner in a short
-- transaction of its own, never in a money write and never one huge
-- transaction over every owner under traffic.

DO 0;
