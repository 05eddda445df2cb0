//! The CMP state tables (schema step appended to `migrations::MIGRATIONS`).
//!
//! A transaction is a JSON record beside the columns it is looked up, compared and
//! expired by; nonces are bare keys with an expiry.

pub(crate) const V_CMP: &str = "
CREATE TABLE cmp_transactions (
    endpoint       TEXT    NOT NULL,
    transaction_id TEXT    NOT NULL,
    state          TEXT    NOT NULL,
    deadline       INTEGER,
    updated_at     INTEGER NOT NULL,
    version        INTEGER NOT NULL,
    record         TEXT    NOT NULL,
    PRIMARY KEY (endpoint, transaction_id)
);
CREATE INDEX cmp_transactions_deadline ON cmp_transactions (endpoint, state, deadline);
CREATE INDEX cmp_transactions_updated ON cmp_transactions (updated_at);

CREATE TABLE cmp_nonces (
    endpoint TEXT    NOT NULL,
    nonce    TEXT    NOT NULL,
    expires  INTEGER NOT NULL,
    PRIMARY KEY (endpoint, nonce)
);
CREATE INDEX cmp_nonces_expires ON cmp_nonces (expires);
";
