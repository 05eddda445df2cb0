//! Versioned schema migrations.
//!
//! [`MIGRATIONS`] is an ordered list of SQL steps (each written in parts, some of which
//! the PostgreSQL store's steps reuse); step `i` (0-based) brings the schema
//! from version `i` to version `i + 1`. SQLite's `PRAGMA user_version` records the version
//! a database is at. Opening applies the steps not yet applied, each in its own
//! transaction together with the version bump, so applying is idempotent and a crash
//! mid-migration leaves the database at the previous version. A database at a version
//! newer than this code knows refuses to open: an older binary must not write into a
//! schema it does not understand.
//!
//! Steps are append-only: never edit a released step, add a new one.

use rusqlite::{Connection, TransactionBehavior};

use crate::error::sql_err;
use pkiplane_core::inventory::StoreError;

/// The schema steps, in order, each as the parts it runs one after the other.
pub(crate) const MIGRATIONS: &[&[&str]] = &[
    &[V1_CERTIFICATES, DENIALS, CA_MATERIAL],
    &[crate::acme::schema::V2_ACME],
    &[crate::scep::schema::V_SCEP],
    &[crate::cmp::schema::V_CMP],
    &[crate::ca_next::V_CA_NEXT],
    &[crate::ca_keys::V_CA_KEYS],
    &[V_EXCHANGE],
    &[crate::crl::V_PUBLISHED_CRLS],
    &[crate::acme::schema::V_ACME_ENDPOINTS],
    &[crate::est::V_EST_FAILURES],
    &[crate::approvals::V_APPROVALS],
];

/// The protocol exchange (CMP/SCEP transaction, ACME order) that asked for a certificate,
/// written with the pending record: a crash between signing and the protocol saving its
/// own state leaves the certificate findable by the exchange.
const V_EXCHANGE: &str = "
ALTER TABLE certificates ADD COLUMN exchange TEXT;
CREATE INDEX certificates_exchange ON certificates (exchange) WHERE exchange IS NOT NULL;
";

/// The schema version this code writes and reads.
pub(crate) fn current_version() -> u32 {
    // The list is a handful of entries long; the cast cannot truncate.
    MIGRATIONS.len() as u32
}

const V1_CERTIFICATES: &str = "
CREATE TABLE certificates (
    issuer            TEXT    NOT NULL,
    serial            TEXT    NOT NULL,
    profile           TEXT    NOT NULL,
    protocol          TEXT    NOT NULL,
    endpoint          TEXT,
    requester         TEXT    NOT NULL,
    subject           TEXT    NOT NULL,
    sans              TEXT    NOT NULL,
    key_algorithm     TEXT    NOT NULL,
    not_before        INTEGER NOT NULL,
    not_after         INTEGER NOT NULL,
    status            TEXT    NOT NULL,
    revocation_reason INTEGER,
    revoked_at        INTEGER,
    der               BLOB,
    renewed_from      TEXT,
    created_at        INTEGER NOT NULL,
    issued_at         INTEGER,
    PRIMARY KEY (issuer, serial)
);
CREATE INDEX certificates_profile ON certificates (profile, created_at);
CREATE INDEX certificates_protocol ON certificates (protocol, created_at);
CREATE INDEX certificates_endpoint ON certificates (endpoint, created_at);
CREATE INDEX certificates_status_not_after ON certificates (status, not_after);
CREATE INDEX certificates_serial ON certificates (serial);
CREATE INDEX certificates_created_at ON certificates (created_at);

CREATE TABLE crl_numbers (
    issuer TEXT    NOT NULL PRIMARY KEY,
    last   INTEGER NOT NULL
);
";

/// Policy denials (the same table in the PostgreSQL store).
pub(crate) const DENIALS: &str = "
-- Denials are aggregated per (issuer, profile, protocol, endpoint, rules), so a flood of
-- refused requests grows a counter, not the table. '' stands for no issuer / endpoint
-- (NULLs would never conflict in the upsert).
CREATE TABLE denials (
    issuer         TEXT    NOT NULL,
    profile        TEXT    NOT NULL,
    protocol       TEXT    NOT NULL,
    endpoint       TEXT    NOT NULL,
    rules          TEXT    NOT NULL,
    count          INTEGER NOT NULL,
    first_at       INTEGER NOT NULL,
    last_at        INTEGER NOT NULL,
    last_requester TEXT    NOT NULL,
    PRIMARY KEY (issuer, profile, protocol, endpoint, rules)
);
";

/// CA key material (the same table in the PostgreSQL store).
pub(crate) const CA_MATERIAL: &str = "
CREATE TABLE ca_material (
    issuer          TEXT    NOT NULL PRIMARY KEY,
    certificate_der BLOB    NOT NULL,
    private_key     BLOB    NOT NULL,
    spec_hash       TEXT    NOT NULL,
    updated_at      INTEGER NOT NULL
);
";

/// Reads `PRAGMA user_version`.
pub(crate) fn schema_version(conn: &Connection) -> Result<u32, StoreError> {
    let v: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(sql_err("reading the schema version"))?;
    u32::try_from(v).map_err(|_| StoreError::corrupt(format!("schema version {v} is not a valid version")))
}

/// Refuses a database whose schema is newer than this code, which knows up to `known`
/// (either store's rule).
pub(crate) fn check_not_newer(version: u32, known: u32) -> Result<(), StoreError> {
    if version > known {
        return Err(StoreError::unavailable(format!(
            "the database schema is at version {version}, newer than this pkiplane \
             understands (up to {known}); upgrade pkiplane or restore a matching backup"
        )));
    }
    Ok(())
}

/// Brings the schema up to [`current_version`]; returns how many steps were applied.
pub(crate) fn apply(conn: &mut Connection) -> Result<u32, StoreError> {
    check_not_newer(schema_version(conn)?, current_version())?;
    let mut applied = 0;
    for (index, parts) in MIGRATIONS.iter().enumerate() {
        let target = index as u32 + 1;
        // IMMEDIATE takes the write lock first, so two processes opening the same file
        // cannot both apply a step: the second sees the bumped version and skips it.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql_err("starting a schema migration"))?;
        let version = schema_version(&tx)?;
        check_not_newer(version, current_version())?;
        if version >= target {
            continue;
        }
        tx.execute_batch(&parts.concat()).map_err(sql_err(&format!("applying schema migration {target}")))?;
        tx.pragma_update(None, "user_version", i64::from(target)).map_err(sql_err("recording the schema version"))?;
        tx.commit().map_err(sql_err(&format!("committing schema migration {target}")))?;
        tracing::info!(version = target, "applied inventory schema migration");
        applied += 1;
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applies_once_and_is_idempotent() -> Result<(), StoreError> {
        let mut conn = Connection::open_in_memory().map_err(sql_err("open"))?;
        assert_eq!(apply(&mut conn)?, current_version());
        assert_eq!(schema_version(&conn)?, current_version());
        assert_eq!(apply(&mut conn)?, 0);
        assert_eq!(schema_version(&conn)?, current_version());
        Ok(())
    }

    #[test]
    fn refuses_a_newer_schema() -> Result<(), StoreError> {
        let mut conn = Connection::open_in_memory().map_err(sql_err("open"))?;
        conn.pragma_update(None, "user_version", i64::from(current_version()) + 1).map_err(sql_err("set version"))?;
        let err = apply(&mut conn).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("newer than this pkiplane"), "{err}");
        Ok(())
    }
}
