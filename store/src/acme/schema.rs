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
