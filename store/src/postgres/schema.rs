//! Versioned schema migrations of the PostgreSQL store.
//!
//! Same discipline as the SQLite store: an append-only list of steps; step `i` brings the
//! schema from version `i` to `i + 1`; the table `pkiplane_schema` records the version.
//! Each step runs in one transaction with its version bump, under a transaction-scoped
//! advisory lock, so replicas starting together apply each step exactly once. A database
//! newer than this code refuses to be used.

use deadpool_postgres::Object;
use pkiplane_core::inventory::StoreError;

use super::error::pg_err;

/// Any fixed number, the same in every replica: the key of the migration advisory lock.
const MIGRATION_LOCK: i64 = 0x706b_6970_6c61_6e65; // "pkiplane"

/// One part of a schema step.
#[derive(Clone, Copy)]
enum Ddl {
    /// PostgreSQL's own.
    Postgres(&'static str),
    /// The SQLite store's DDL for the same tables, with the column types PostgreSQL names
    /// differently (see [`postgres_types`]).
    Sqlite(&'static str),
}

/// The schema steps, in order, each as the parts it runs one after the other.
const MIGRATIONS: &[&[Ddl]] = &[
    // The inventory, CRL numbers and published CRLs, denials and CA key material.
    &[
        Ddl::Postgres(V1_INVENTORY),
        Ddl::Sqlite(crate::migrations::DENIALS),
        Ddl::Sqlite(crate::crl::V_PUBLISHED_CRLS),
        Ddl::Sqlite(crate::migrations::CA_MATERIAL),
        Ddl::Sqlite(crate::ca_next::V_CA_NEXT),
        Ddl::Sqlite(crate::ca_keys::V_CA_KEYS),
    ],
    // The protocol state.
    &[
        Ddl::Postgres(super::state_schema::V2_ACME),
        Ddl::Sqlite(crate::scep::schema::V_SCEP),
        Ddl::Sqlite(crate::cmp::schema::V_CMP),
        Ddl::Sqlite(crate::est::V_EST_FAILURES),
    ],
    &[Ddl::Postgres(super::lease::V3_LEASES)],
    // Approval requests: a step of its own (`approvals`), in SQL both stores read.
    &[Ddl::Postgres(crate::approvals::V_APPROVALS)],
];

/// SQLite DDL in PostgreSQL's types: INTEGER (64-bit in SQLite) is BIGINT, BLOB is BYTEA.
fn postgres_types(sqlite: &str) -> String {
    sqlite.replace(" INTEGER", " BIGINT").replace(" BLOB", " BYTEA")
}

/// The SQL of one schema step.
fn step_sql(step: &[Ddl]) -> String {
    step.iter()
        .map(|part| match *part {
            Ddl::Postgres(sql) => sql.to_owned(),
            Ddl::Sqlite(sql) => postgres_types(sql),
        })
        .collect()
}

pub(crate) fn current_version() -> i32 {
    MIGRATIONS.len() as i32
}

/// The inventory and CRL numbers (the other tables of step 1 are the SQLite store's).
/// Times are unix seconds (BIGINT), as in the SQLite store.
const V1_INVENTORY: &str = "
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
    not_before        BIGINT  NOT NULL,
    not_after         BIGINT  NOT NULL,
    status            TEXT    NOT NULL,
    revocation_reason INTEGER,
    revoked_at        BIGINT,
    der               BYTEA,
    renewed_from      TEXT,
    created_at        BIGINT  NOT NULL,
    issued_at         BIGINT,
    exchange          TEXT,
    -- Insertion order: breaks ties between records made in the same second.
    seq               BIGINT  GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (issuer, serial)
);
CREATE INDEX certificates_profile ON certificates (profile, created_at);
CREATE INDEX certificates_protocol ON certificates (protocol, created_at);
CREATE INDEX certificates_endpoint ON certificates (endpoint, created_at);
CREATE INDEX certificates_status_not_after ON certificates (status, not_after);
CREATE INDEX certificates_serial ON certificates (serial);
CREATE INDEX certificates_created_at ON certificates (created_at, seq);
CREATE INDEX certificates_exchange ON certificates (exchange) WHERE exchange IS NOT NULL;

CREATE TABLE crl_numbers (
    issuer TEXT   NOT NULL PRIMARY KEY,
    last   BIGINT NOT NULL CHECK (last > 0)
);
";

/// The schema version recorded in the database (0 for an empty one).
pub(crate) async fn schema_version(client: &Object) -> Result<i32, StoreError> {
    let exists: bool = client
        .query_one("SELECT to_regclass('pkiplane_schema') IS NOT NULL", &[])
        .await
        .map_err(pg_err("reading the schema version"))?
        .get(0);
    if !exists {
        return Ok(0);
    }
    let row = client
        .query_opt("SELECT version FROM pkiplane_schema", &[])
        .await
        .map_err(pg_err("reading the schema version"))?;
    Ok(row.map(|r| r.get::<_, i32>(0)).unwrap_or(0))
}

/// Refuses a database newer than this code (the SQLite store's rule).
fn check_not_newer(version: i32) -> Result<(), StoreError> {
    let known = u32::try_from(current_version()).unwrap_or(u32::MAX);
    crate::migrations::check_not_newer(u32::try_from(version).unwrap_or(u32::MAX), known)
}

/// Brings the schema up to [`current_version`]; returns how many steps were applied.
pub(crate) async fn apply(client: &mut Object) -> Result<u32, StoreError> {
    check_not_newer(schema_version(client).await?)?;
    let mut applied = 0;
    for (index, step) in MIGRATIONS.iter().enumerate() {
        let target = index as i32 + 1;
        let tx = client.transaction().await.map_err(pg_err("starting a schema migration"))?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(pg_err("taking the migration lock"))?;
        tx.batch_execute("CREATE TABLE IF NOT EXISTS pkiplane_schema (version INTEGER NOT NULL)")
            .await
            .map_err(pg_err("creating the schema version table"))?;
        let version: i32 = tx
            .query_opt("SELECT version FROM pkiplane_schema", &[])
            .await
            .map_err(pg_err("reading the schema version"))?
            .map(|r| r.get(0))
            .unwrap_or(0);
        check_not_newer(version)?;
        if version >= target {
            continue;
        }
        tx.batch_execute(&step_sql(step)).await.map_err(pg_err(&format!("applying schema migration {target}")))?;
        tx.execute("DELETE FROM pkiplane_schema", &[]).await.map_err(pg_err("recording the schema version"))?;
        tx.execute("INSERT INTO pkiplane_schema (version) VALUES ($1)", &[&target])
            .await
            .map_err(pg_err("recording the schema version"))?;
        tx.commit().await.map_err(pg_err(&format!("committing schema migration {target}")))?;
        tracing::info!(version = target, "applied PostgreSQL schema migration");
        applied += 1;
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_ddl_is_in_postgres_types() {
        for step in MIGRATIONS {
            let sql = step_sql(step);
            for sqlite_only in [" BLOB", "WITHOUT ROWID"] {
                assert!(!sql.contains(sqlite_only), "{sqlite_only} in {sql}");
            }
        }
        assert!(step_sql(MIGRATIONS[1]).contains("sender_nonce   BYTEA    NOT NULL"));
        assert!(step_sql(MIGRATIONS[1]).contains("expires        BIGINT NOT NULL"));
    }
}
