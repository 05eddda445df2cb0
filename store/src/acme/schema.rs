//! The ACME state tables (schema step 2).
//!
//! Each record is kept whole as JSON in `body`, with the columns that queries filter on
//! beside it and `version` for compare-and-set updates (the column is authoritative; the
//! copy inside `body` is ignored).

pub(crate) const V2_ACME: &str = "
CREATE TABLE acme_nonces (
    nonce   TEXT    NOT NULL PRIMARY KEY,
    expires INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX acme_nonces_expires ON acme_nonces (expires);

CREATE TABLE acme_accounts (
    id         TEXT    NOT NULL PRIMARY KEY,
    thumbprint TEXT    NOT NULL UNIQUE,
    body       TEXT    NOT NULL,
    version    INTEGER NOT NULL
);

-- Single-use external account binding key IDs that have bound an account.
CREATE TABLE acme_eab_used (
    kid        TEXT    NOT NULL PRIMARY KEY,
    account_id TEXT    NOT NULL,
    used_at    INTEGER NOT NULL
);

CREATE TABLE acme_orders (
    id              TEXT    NOT NULL PRIMARY KEY,
    account_id      TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    expires         INTEGER NOT NULL,
    has_certificate INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    body            TEXT    NOT NULL,
    version         INTEGER NOT NULL
);
CREATE INDEX acme_orders_account ON acme_orders (account_id, created_at);
CREATE INDEX acme_orders_expires ON acme_orders (expires);

CREATE TABLE acme_authorizations (
    id               TEXT    NOT NULL PRIMARY KEY,
    account_id       TEXT    NOT NULL,
    identifier_type  TEXT    NOT NULL,
    identifier_value TEXT    NOT NULL,
    wildcard         INTEGER NOT NULL,
    status           TEXT    NOT NULL,
    expires          INTEGER NOT NULL,
    body             TEXT    NOT NULL,
    version          INTEGER NOT NULL
);
CREATE INDEX acme_authorizations_lookup
    ON acme_authorizations (account_id, identifier_type, identifier_value, wildcard, status, expires);

-- ARI: which order replaces a certificate (RFC 9773 section 5).
CREATE TABLE acme_replacements (
    cert_id  TEXT NOT NULL PRIMARY KEY,
    order_id TEXT NOT NULL
);
";

/// ACME state scoped per endpoint (schema step 9): every table gains the endpoint that
/// owns its rows, and the keys that were unique across the store (account key
/// thumbprint, EAB key ID, nonce, replaced certificate) become unique per endpoint.
///
/// Rows written before this step cannot be attributed to an endpoint: they keep the
/// endpoint '' that no endpoint identity maps to (their clients register again).
/// Nonces are short-lived and simply dropped.
pub(crate) const V_ACME_ENDPOINTS: &str = "
DROP TABLE acme_nonces;
CREATE TABLE acme_nonces (
    endpoint TEXT    NOT NULL,
    nonce    TEXT    NOT NULL,
    expires  INTEGER NOT NULL,
    PRIMARY KEY (endpoint, nonce)
) WITHOUT ROWID;
CREATE INDEX acme_nonces_expires ON acme_nonces (expires);

CREATE TABLE acme_accounts_v9 (
    endpoint   TEXT    NOT NULL,
    id         TEXT    NOT NULL PRIMARY KEY,
    thumbprint TEXT    NOT NULL,
    body       TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    UNIQUE (endpoint, thumbprint)
);
INSERT INTO acme_accounts_v9 (endpoint, id, thumbprint, body, version)
    SELECT '', id, thumbprint, body, version FROM acme_accounts;
DROP TABLE acme_accounts;
ALTER TABLE acme_accounts_v9 RENAME TO acme_accounts;

CREATE TABLE acme_eab_used_v9 (
    endpoint   TEXT    NOT NULL,
    kid        TEXT    NOT NULL,
    account_id TEXT    NOT NULL,
    used_at    INTEGER NOT NULL,
    PRIMARY KEY (endpoint, kid)
);
INSERT INTO acme_eab_used_v9 SELECT '', kid, account_id, used_at FROM acme_eab_used;
DROP TABLE acme_eab_used;
ALTER TABLE acme_eab_used_v9 RENAME TO acme_eab_used;

ALTER TABLE acme_orders ADD COLUMN endpoint TEXT NOT NULL DEFAULT '';
CREATE INDEX acme_orders_endpoint_account ON acme_orders (endpoint, account_id, created_at);
ALTER TABLE acme_authorizations ADD COLUMN endpoint TEXT NOT NULL DEFAULT '';

CREATE TABLE acme_replacements_v9 (
    endpoint TEXT NOT NULL,
    cert_id  TEXT NOT NULL,
    order_id TEXT NOT NULL,
    PRIMARY KEY (endpoint, cert_id)
);
INSERT INTO acme_replacements_v9 SELECT '', cert_id, order_id FROM acme_replacements;
DROP TABLE acme_replacements;
ALTER TABLE acme_replacements_v9 RENAME TO acme_replacements;
";
