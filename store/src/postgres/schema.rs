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

pub(crate) const MIGRATIONS: &[&str] = &[
    V1_INVENTORY,
    super::state_schema::V2_PROTOCOL_STATE,
    super::lease::V3_LEASES,
    // Approval requests: a step of its own (`approvals`).
    crate::approvals::V_APPROVALS,
];

pub(crate) fn current_version() -> i32 {
    MIGRATIONS.len() as i32
}

/// The inventory, CRL numbers and published CRLs, denials and CA key material.
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

CREATE TABLE denials (
    issuer         TEXT    NOT NULL,
    profile        TEXT    NOT NULL,
    protocol       TEXT    NOT NULL,
    endpoint       TEXT    NOT NULL,
    rules          TEXT    NOT NULL,
    count          BIGINT  NOT NULL,
    first_at       BIGINT  NOT NULL,
    last_at        BIGINT  NOT NULL,
    last_requester TEXT    NOT NULL,
    PRIMARY KEY (issuer, profile, protocol, endpoint, rules)
);

CREATE TABLE published_crls (
    issuer      TEXT    PRIMARY KEY,
    this_update BIGINT  NOT NULL,
    next_update BIGINT  NOT NULL,
    key_id      BYTEA   NOT NULL,
    serials     TEXT    NOT NULL,
    der         BYTEA   NOT NULL
);

CREATE TABLE ca_material (
    issuer          TEXT    NOT NULL PRIMARY KEY,
    certificate_der BYTEA   NOT NULL,
    private_key     BYTEA   NOT NULL,
    spec_hash       TEXT    NOT NULL,
    updated_at      BIGINT  NOT NULL
);

CREATE TABLE ca_next (
    issuer          TEXT    NOT NULL PRIMARY KEY,
    certificate_der BYTEA   NOT NULL,
    private_key     BYTEA   NOT NULL,
    spec_hash       TEXT    NOT NULL,
    new_with_old    BYTEA,
    old_with_new    BYTEA,
    staged_at       BIGINT  NOT NULL
);

CREATE TABLE ca_retired (
    issuer          TEXT    NOT NULL,
    key_id          BYTEA   NOT NULL,
    certificate_der BYTEA   NOT NULL,
    private_key     BYTEA   NOT NULL,
    retired_at      BIGINT  NOT NULL,
    PRIMARY KEY (issuer, key_id)
);

CREATE TABLE ocsp_responders (
    issuer          TEXT    NOT NULL,
    ca_key_id       BYTEA   NOT NULL,
    certificate_der BYTEA   NOT NULL,
    private_key     BYTEA   NOT NULL,
    updated_at      BIGINT  NOT NULL,
    PRIMARY KEY (issuer, ca_key_id)
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

fn check_not_newer(version: i32) -> Result<(), StoreError> {
    let known = current_version();
    if version > known {
        return Err(StoreError::Unavailable(format!(
            "the database schema is at version {version}, newer than this pkiplane understands \
             (up to {known}); upgrade pkiplane or restore a matching backup"
        )));
    }
    Ok(())
}

/// Brings the schema up to [`current_version`]; returns how many steps were applied.
pub(crate) async fn apply(client: &mut Object) -> Result<u32, StoreError> {
    check_not_newer(schema_version(client).await?)?;
    let mut applied = 0;
    for (index, sql) in MIGRATIONS.iter().enumerate() {
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
        tx.batch_execute(sql).await.map_err(pg_err(&format!("applying schema migration {target}")))?;
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
