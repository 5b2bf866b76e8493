-- creationDate of an instant bank payment is an RFC 3339 date-time in the
-- public reference (2019-08-24T14:15:22Z): keep the time of day. Rows made
-- before this read as midnight UTC of their date.
ALTER TABLE instant_bank_payments MODIFY creation_date DATETIME NOT NULL;
