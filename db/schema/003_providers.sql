-- Payment providers (spec 4.1), the mandates they hold (4.2-4.4) and
-- payment links (4.11).

CREATE TABLE payment_providers (
  id                                BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
  type                              VARCHAR(32)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  name                              VARCHAR(255) NOT NULL,
  direct_debit_with_name            VARCHAR(255) NULL,
  status                            VARCHAR(8)   CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  creditor_identifier               VARCHAR(255) NULL,
  instant_bank_payments             TINYINT(1)   NOT NULL DEFAULT 0,
  retry_if_possible                 TINYINT(1)   NOT NULL DEFAULT 0,
  accept_external_payments          TINYINT(1)   NOT NULL DEFAULT 0,
  sync_ibp_with_mandate_creation    TINYINT(1)   NOT NULL DEFAULT 0,
  KEY provider_type (type)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Which contract owners a provider serves (contractOwnerIds).
CREATE TABLE payment_provider_owners (
  provider_id        BIGINT NOT NULL,
  contract_owner_id  BIGINT NOT NULL,
  PRIMARY KEY (provider_id, contract_owner_id),
  KEY provider_owner (contract_owner_id, provider_id),
  CONSTRAINT provider_owner_provider_fk FOREIGN KEY (provider_id) REFERENCES payment_providers (id),
  CONSTRAINT provider_owner_owner_fk FOREIGN KEY (contract_owner_id) REFERENCES contract_owners (id)
) ENGINE=InnoDB;

-- A site's mandate set-up flow and, once completed, its mandate.
-- flow_token is the capability of the hosted page (single use, 1 hour).
CREATE TABLE site_payment_mandates (
  id                               BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
  site_id                          BIGINT       NOT NULL,
  provider_id                      BIGINT       NOT NULL,
  return_url                       VARCHAR(255) NOT NULL,
  redirect_url                     VARCHAR(255) NULL,
  exit_url                         VARCHAR(255) NULL,
  flow_token                       CHAR(43)     CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  flow_expires_at                  TIMESTAMP    NOT NULL,
  flow_completed_at                TIMESTAMP    NULL,
  mandate_reference                VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NULL,
  third_party_customer_reference   VARCHAR(100) NULL,
  created_at                       TIMESTAMP    NOT NULL DEFAULT CURRENT_TIMESTAMP,
  UNIQUE KEY mandate_flow_token (flow_token),
  KEY mandate_site (site_id, id),
  CONSTRAINT mandate_site_fk FOREIGN KEY (site_id) REFERENCES sites (id),
  CONSTRAINT mandate_provider_fk FOREIGN KEY (provider_id) REFERENCES payment_providers (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Mandates as the provider holds them (what the sandbox provider stores).
CREATE TABLE provider_mandates (
  payment_method                   VARCHAR(32)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  mandate_reference                VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  contract_owner_id                BIGINT       NOT NULL,
  provider_id                      BIGINT       NOT NULL,
  third_party_customer_reference   VARCHAR(100) NULL,
  status                           VARCHAR(32)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  account_holder_name              VARCHAR(255) NOT NULL,
  sort_code                        CHAR(6)      CHARACTER SET ascii NOT NULL,
  account_number_last4             CHAR(4)      CHARACTER SET ascii NOT NULL,
  email_address                    VARCHAR(255) NULL,
  first_name                       VARCHAR(255) NULL,
  last_name                        VARCHAR(255) NULL,
  company_name                     VARCHAR(255) NULL,
  address_line1                    VARCHAR(255) NULL,
  address_line2                    VARCHAR(255) NULL,
  address_line3                    VARCHAR(255) NULL,
  city                             VARCHAR(255) NULL,
  region                           VARCHAR(255) NULL,
  postcode                         VARCHAR(32)  NULL,
  country_code                     CHAR(2)      NULL,
  telephone_number                 VARCHAR(32)  NULL,
  created_at                       TIMESTAMP    NOT NULL DEFAULT CURRENT_TIMESTAMP,
  PRIMARY KEY (payment_method, mandate_reference),
  KEY provider_mandate_owner (contract_owner_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Instant bank payments taken against a mandate (spec 4.4).
CREATE TABLE instant_bank_payments (
  id                 BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
  payment_method     VARCHAR(32)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  mandate_reference  VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  amount             BIGINT       NOT NULL,
  currency_id        BIGINT       NOT NULL,
  description        VARCHAR(255) NULL,
  reference          VARCHAR(255) NULL,
  creation_date      DATE         NOT NULL,
  KEY ibp_mandate (payment_method, mandate_reference, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Payment links: only the SHA-256 of the token is stored.
CREATE TABLE payment_links (
  id                   BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
  token_hash           CHAR(64)     CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  provider_id          BIGINT       NOT NULL,
  contract_owner_id    BIGINT       NOT NULL,
  customer_id          BIGINT       NOT NULL,
  invoice_kind         TINYINT      NULL,
  invoice_id           BIGINT       NULL,
  target_customer      TINYINT(1)   NOT NULL DEFAULT 0,
  amount               BIGINT       NOT NULL,
  currency_id          BIGINT       NOT NULL,
  description          VARCHAR(255) NOT NULL,
  email_address        VARCHAR(255) NULL,
  expires_at           TIMESTAMP    NOT NULL,
  paid_at              TIMESTAMP    NULL,
  receipt_reference    VARCHAR(64)  CHARACTER SET ascii NULL,
  created_at           TIMESTAMP    NOT NULL DEFAULT CURRENT_TIMESTAMP,
  UNIQUE KEY payment_link_token (token_hash),
  CONSTRAINT payment_link_amount CHECK (amount > 0)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
