-- An instant bank payment's creationDate is an RFC 3339 date-time in the
-- public reference (spec 4.4: `2019-08-24T14:15:22Z`), not a date: keep the
-- time it was taken (UTC). Rows from before keep their day at 00:00:00.
ALTER TABLE instant_bank_payments MODIFY creation_date DATETIME NOT NULL;
