-- The built-in sandbox provider's outbox (COLLECTION.md §6): the events it
-- will send, signed, to POST /webhooks/{provider_id} through the public
-- URL (nginx), each when its step of the timeline comes. sent_at is set
-- when a sender claims it; a failed delivery is retried later.
CREATE TABLE sandbox_webhooks (
  id           BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
  provider_id  BIGINT       NOT NULL,
  reference    VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  status       VARCHAR(40)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  due_at       TIMESTAMP(6) NOT NULL,
  sent_at      TIMESTAMP(6) NULL,
  tries        INT          NOT NULL DEFAULT 0,
  UNIQUE KEY sandbox_webhook_event (reference, status),
  KEY sandbox_webhook_due (sent_at, due_at)
) ENGINE=InnoDB;
