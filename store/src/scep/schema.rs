//! The SCEP state tables (schema step appended to `migrations::MIGRATIONS`).
//!
//! Challenges and transactions are kept as JSON records next to the columns they are
//! looked up and expired by; replay records are bare keys with an expiry.

pub(crate) const V_SCEP: &str = "
CREATE TABLE scep_messages (
    endpoint       TEXT    NOT NULL,
    transaction_id TEXT    NOT NULL,
    sender_nonce   BLOB    NOT NULL,
    expires        INTEGER NOT NULL,
    PRIMARY KEY (endpoint, transaction_id, sender_nonce)
);
CREATE INDEX scep_messages_expires ON scep_messages (expires);

CREATE TABLE scep_challenges (
    endpoint      TEXT    NOT NULL,
    secret_sha256 TEXT    NOT NULL,
    expires       INTEGER NOT NULL,
    used_at       INTEGER,
    record        TEXT    NOT NULL,
    PRIMARY KEY (endpoint, secret_sha256)
);
CREATE INDEX scep_challenges_expires ON scep_challenges (expires);

CREATE TABLE scep_transactions (
    endpoint       TEXT    NOT NULL,
    transaction_id TEXT    NOT NULL,
    status         TEXT    NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    record         TEXT    NOT NULL,
    PRIMARY KEY (endpoint, transaction_id)
);
CREATE INDEX scep_transactions_status ON scep_transactions (endpoint, status, created_at);

CREATE TABLE scep_ra (
    endpoint        TEXT    NOT NULL PRIMARY KEY,
    certificate_der BLOB    NOT NULL,
    private_key     BLOB    NOT NULL,
    issuer          TEXT    NOT NULL,
    updated_at      INTEGER NOT NULL
);
";
