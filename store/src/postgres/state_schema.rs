//! Schema step 2 of the PostgreSQL store: the protocol state (ACME, SCEP, CMP, EST
//! failure counters), the same tables as the SQLite store's with PostgreSQL types.
//! ACME rows belong to one endpoint from the start (see `acme`).

pub(crate) const V2_PROTOCOL_STATE: &str = "
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

CREATE TABLE scep_messages (
    endpoint       TEXT   NOT NULL,
    transaction_id TEXT   NOT NULL,
    sender_nonce   BYTEA  NOT NULL,
    expires        BIGINT NOT NULL,
    PRIMARY KEY (endpoint, transaction_id, sender_nonce)
);
CREATE INDEX scep_messages_expires ON scep_messages (expires);

CREATE TABLE scep_challenges (
    endpoint      TEXT   NOT NULL,
    secret_sha256 TEXT   NOT NULL,
    expires       BIGINT NOT NULL,
    used_at       BIGINT,
    record        TEXT   NOT NULL,
    PRIMARY KEY (endpoint, secret_sha256)
);
CREATE INDEX scep_challenges_expires ON scep_challenges (expires);

CREATE TABLE scep_transactions (
    endpoint       TEXT   NOT NULL,
    transaction_id TEXT   NOT NULL,
    status         TEXT   NOT NULL,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    record         TEXT   NOT NULL,
    PRIMARY KEY (endpoint, transaction_id)
);
CREATE INDEX scep_transactions_status ON scep_transactions (endpoint, status, created_at);

CREATE TABLE scep_ra (
    endpoint        TEXT   NOT NULL PRIMARY KEY,
    certificate_der BYTEA  NOT NULL,
    private_key     BYTEA  NOT NULL,
    issuer          TEXT   NOT NULL,
    updated_at      BIGINT NOT NULL
);

CREATE TABLE cmp_transactions (
    endpoint       TEXT   NOT NULL,
    transaction_id TEXT   NOT NULL,
    state          TEXT   NOT NULL,
    deadline       BIGINT,
    updated_at     BIGINT NOT NULL,
    version        BIGINT NOT NULL,
    record         TEXT   NOT NULL,
    PRIMARY KEY (endpoint, transaction_id)
);
CREATE INDEX cmp_transactions_deadline ON cmp_transactions (endpoint, state, deadline);
CREATE INDEX cmp_transactions_updated ON cmp_transactions (updated_at);

CREATE TABLE cmp_nonces (
    endpoint TEXT   NOT NULL,
    nonce    TEXT   NOT NULL,
    expires  BIGINT NOT NULL,
    PRIMARY KEY (endpoint, nonce)
);
CREATE INDEX cmp_nonces_expires ON cmp_nonces (expires);

CREATE TABLE est_auth_failures (
    key          TEXT   NOT NULL PRIMARY KEY,
    failures     BIGINT NOT NULL,
    last_failure BIGINT NOT NULL
);
CREATE INDEX est_auth_failures_last ON est_auth_failures (last_failure);
";
