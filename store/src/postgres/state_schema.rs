//! The ACME part of schema step 2 of the PostgreSQL store (the protocol state; the SCEP,
//! CMP and EST tables of that step are the SQLite store's, see `schema`). ACME rows
//! belong to one endpoint from the start (see `acme`), unlike the SQLite store's first
//! ACME tables.

pub(crate) const V2_ACME: &str = "
CREATE TABLE acme_nonces (
    endpoint TEXT   NOT NULL,
    nonce    TEXT   NOT NULL,
    expires  BIGINT NOT NULL,
    PRIMARY KEY (endpoint, nonce)
);
CREATE INDEX acme_nonces_expires ON acme_nonces (expires);

CREATE TABLE acme_accounts (
    endpoint   TEXT   NOT NULL,
    id         TEXT   NOT NULL PRIMARY KEY,
    thumbprint TEXT   NOT NULL,
    body       TEXT   NOT NULL,
    version    BIGINT NOT NULL,
    UNIQUE (endpoint, thumbprint)
);

CREATE TABLE acme_eab_used (
    endpoint   TEXT   NOT NULL,
    kid        TEXT   NOT NULL,
    account_id TEXT   NOT NULL,
    used_at    BIGINT NOT NULL,
    PRIMARY KEY (endpoint, kid)
);

CREATE TABLE acme_orders (
    endpoint        TEXT    NOT NULL,
    id              TEXT    NOT NULL PRIMARY KEY,
    account_id      TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    expires         BIGINT  NOT NULL,
    has_certificate BOOLEAN NOT NULL,
    created_at      BIGINT  NOT NULL,
    body            TEXT    NOT NULL,
    version         BIGINT  NOT NULL,
    seq             BIGINT  GENERATED ALWAYS AS IDENTITY
);
CREATE INDEX acme_orders_account ON acme_orders (endpoint, account_id, created_at);
CREATE INDEX acme_orders_expires ON acme_orders (expires);

CREATE TABLE acme_authorizations (
    endpoint         TEXT    NOT NULL,
    id               TEXT    NOT NULL PRIMARY KEY,
    account_id       TEXT    NOT NULL,
    identifier_type  TEXT    NOT NULL,
    identifier_value TEXT    NOT NULL,
    wildcard         BOOLEAN NOT NULL,
    status           TEXT    NOT NULL,
    expires          BIGINT  NOT NULL,
    body             TEXT    NOT NULL,
    version          BIGINT  NOT NULL
);
CREATE INDEX acme_authorizations_lookup
    ON acme_authorizations (account_id, identifier_type, identifier_value, wildcard, status, expires);
CREATE INDEX acme_authorizations_expires ON acme_authorizations (expires);

CREATE TABLE acme_replacements (
    endpoint TEXT NOT NULL,
    cert_id  TEXT NOT NULL,
    order_id TEXT NOT NULL,
    PRIMARY KEY (endpoint, cert_id)
);
";
