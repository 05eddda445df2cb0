//! pkiplane's embedded inventory store: SQLite.
//!
//! [`SqliteStore`] implements the core's [`Inventory`] and [`CaMaterialStore`] traits on
//! one SQLite file (WAL journal, `synchronous=FULL`).
//!
//! * Writes go through **group commit** (see `writer`): one thread owns the write
//!   connection, runs every queued write in one transaction (a savepoint per write, so a
//!   failing write fails alone) and replies only after the commit. Every write is durable
//!   when its future resolves, and many concurrent writes share one fsync.
//! * Reads run on a small pool of read-only connections on tokio's blocking pool.
//! * The schema is versioned (see `migrations`).
//! * The same file keeps the ACME protocol state ([`pkiplane_acme::state::AcmeStore`],
//!   see `acme`).
//! * And the SCEP protocol state ([`pkiplane_scep::state::ScepStore`], see `scep`).
//!
//! [`PostgresStore`] implements the same two traits on a PostgreSQL server (see
//! `postgres`), for a CA service whose replicas share one database.
#![forbid(unsafe_code)]

mod acme;
mod approvals;
pub mod backup;
mod ca_keys;
mod ca_next;
mod cmp;
mod crl;
mod error;
mod est;
mod migrations;
mod postgres;
mod query;
mod read;
mod rows;
mod scep;
pub mod sealing;
mod sql;
#[cfg(feature = "testing")]
pub mod testing;
mod write;
mod writer;

pub use acme::{AcmeScopes, EndpointAcme, LegacyAcmeRows};
pub use postgres::{PostgresStore, is_postgres_url};

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use pkiplane_core::inventory::{
    CaMaterialStore, CertificateRecord, DenialRecord, GroupBy, Inventory, InventoryCounts, InventoryFilter,
    PublishedCrl, Revocation, RevokeOutcome, RevokedEntry, StoreError, StoredCaMaterial, StoredNextCa,
    StoredOcspResponder, StoredRetiredCa,
};
use pkiplane_core::model::ObjectRef;
use rusqlite::{Connection, OpenFlags};

use crate::error::sql_err;
use crate::read::ReadPool;
use crate::writer::{Durability, Writer};

/// How long a connection waits for a lock held by another connection or process.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The SQLite inventory and CA material store.
///
/// Cheap to share behind an `Arc`; dropping the last handle finishes the queued writes
/// and stops the writer thread.
pub struct SqliteStore {
    path: PathBuf,
    reads: Arc<ReadPool>,
    /// None when opened read-only.
    writer: Option<Writer>,
    /// Seals the SCEP RA keys when set (see `sealing::sqlite`).
    key_encryption: std::sync::OnceLock<Arc<sealing::KeyEncryptionKeys>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").field("path", &self.path).field("read_only", &self.writer.is_none()).finish()
    }
}

impl SqliteStore {
    /// Opens (creating it, and its parent directory, if needed) the database at `path`
    /// and brings its schema up to date.
    ///
    /// Fails if the schema is newer than this code understands.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_inner(path).map_err(|e| error::diagnose_disk_full(e, path))
    }

    fn open_inner(path: &Path) -> Result<Self, StoreError> {
        create_private(path)?;
        let context = format!("opening {}", path.display());
        let mut conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sql_err(&context))?;
        configure_writer(&conn).map_err(|e| with_path(e, path))?;
        migrations::apply(&mut conn).map_err(|e| with_path(e, path))?;
        let reads = Arc::new(ReadPool::new(path.to_path_buf(), BUSY_TIMEOUT));
        // Fail now, not at the first read, if read connections cannot be opened.
        drop(reads.connect()?);
        let writer = Writer::start(conn, "pkiplane-store-writer".to_owned())?;
        Ok(Self { path: path.to_path_buf(), reads, writer: Some(writer), key_encryption: Default::default() })
    }

    /// Opens an existing database for reading only (e.g. to list the inventory from the
    /// CLI). Never creates a file; fails clearly if there is none, or if its schema is
    /// not the one this code reads. Writes return `StoreError::Unavailable`.
    pub fn open_read_only(path: &Path) -> Result<Self, StoreError> {
        if !path.is_file() {
            return Err(StoreError::unavailable(format!(
                "no inventory database at {} (has the CA or `pkiplane serve` run with this \
                 data directory?)",
                path.display()
            )));
        }
        let reads = Arc::new(ReadPool::new(path.to_path_buf(), BUSY_TIMEOUT));
        let conn = reads.connect()?;
        let version = migrations::schema_version(&conn).map_err(|e| with_path(e, path))?;
        migrations::check_not_newer(version, migrations::current_version()).map_err(|e| with_path(e, path))?;
        if version < migrations::current_version() {
            return Err(StoreError::unavailable(format!(
                "{} has schema version {version}, older than this pkiplane's {}: open it \
                 read-write once (start the CA) to migrate it",
                path.display(),
                migrations::current_version()
            )));
        }
        drop(conn);
        Ok(Self { path: path.to_path_buf(), reads, writer: None, key_encryption: Default::default() })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `work` on the writer and returns once it is committed and synced.
    async fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.write_with(Durability::Synced, work).await
    }

    async fn write_with<T, F>(&self, durability: Durability, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        match &self.writer {
            Some(writer) => writer.submit(durability, work).await,
            None => Err(StoreError::unavailable(format!("{} is open read-only", self.path.display()))),
        }
    }

    async fn read<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.reads.run(work).await
    }

    /// A lookup by key, run on the calling thread (see [`ReadPool::run_here`]); `async`
    /// only so that call sites read like [`Self::read`].
    async fn read_by_key<T>(&self, work: impl FnOnce(&Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        self.reads.run_here(work)
    }
}

/// Creates the parent directory and an empty database file readable by the owner only
/// (it holds CA private keys). SQLite gives its `-wal` and `-shm` files the same mode.
fn create_private(path: &Path) -> Result<(), StoreError> {
    let io = |what: &str, p: &Path, e: std::io::Error| {
        let full = if e.kind() == std::io::ErrorKind::StorageFull { "disk full: " } else { "" };
        StoreError::unavailable(format!("{what} {}: {full}{e}", p.display()))
    };
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
        && !parent.exists()
    {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(parent).map_err(|e| io("creating directory", parent, e))?;
    }
    if !path.exists() {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        options.open(path).map_err(|e| io("creating", path, e))?;
    }
    Ok(())
}

fn configure_writer(conn: &Connection) -> Result<(), StoreError> {
    conn.busy_timeout(BUSY_TIMEOUT).map_err(sql_err("setting the busy timeout"))?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(sql_err("enabling the WAL journal"))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::unavailable(format!("the database refused WAL journal mode (it is in `{mode}` mode)")));
    }
    conn.pragma_update(None, "synchronous", "FULL").map_err(sql_err("setting synchronous=FULL"))?;
    conn.set_prepared_statement_cache_capacity(read::STATEMENT_CACHE);
    Ok(())
}

fn with_path(e: StoreError, path: &Path) -> StoreError {
    match e {
        StoreError::Unavailable { .. } | StoreError::Corrupt { .. } => e.context(path.display()),
        other => other,
    }
}

#[async_trait]
impl Inventory for SqliteStore {
    fn approvals(&self) -> Option<&dyn pkiplane_core::approval::ApprovalStore> {
        Some(self)
    }

    async fn write_pending(&self, record: &CertificateRecord) -> Result<(), StoreError> {
        let record = record.clone();
        // Synced by the issuance's own "issued" write (see `Inventory::write_pending`).
        self.write_with(Durability::Deferred, move |conn| write::insert_pending(conn, &record)).await
    }

    async fn mark_issued(&self, issuer: &ObjectRef, serial: &str, der: &[u8]) -> Result<(), StoreError> {
        let (issuer, serial, der) = (issuer.to_string(), serial.to_owned(), der.to_vec());
        let now = SystemTime::now();
        self.write(move |conn| write::mark_issued(conn, &issuer, &serial, &der, now)).await
    }

    async fn mark_abandoned(&self, issuer: &ObjectRef, serial: &str) -> Result<(), StoreError> {
        let (issuer, serial) = (issuer.to_string(), serial.to_owned());
        self.write(move |conn| write::mark_abandoned(conn, &issuer, &serial)).await
    }

    async fn recover_pending(&self, before: SystemTime) -> Result<u64, StoreError> {
        self.write(move |conn| write::recover_pending(conn, before)).await
    }

    async fn revoke(
        &self,
        issuer: &ObjectRef,
        serial: &str,
        revocation: Revocation,
    ) -> Result<RevokeOutcome, StoreError> {
        let (issuer, serial) = (issuer.to_string(), serial.to_owned());
        self.write(move |conn| write::revoke(conn, &issuer, &serial, revocation)).await
    }

    async fn get(&self, issuer: &ObjectRef, serial: &str) -> Result<Option<CertificateRecord>, StoreError> {
        let (issuer, serial) = (issuer.to_string(), serial.to_owned());
        self.read_by_key(move |conn| query::get(conn, &issuer, &serial)).await
    }

    async fn find_serial(&self, serial: &str) -> Result<Vec<CertificateRecord>, StoreError> {
        let serial = serial.to_owned();
        self.read_by_key(move |conn| query::find_serial(conn, &serial)).await
    }

    async fn list(&self, filter: &InventoryFilter) -> Result<Vec<CertificateRecord>, StoreError> {
        let filter = filter.clone();
        let now = SystemTime::now();
        self.read(move |conn| query::list(conn, &filter, now)).await
    }

    async fn counts(
        &self,
        group: GroupBy,
        now: SystemTime,
        expiring_within: Duration,
    ) -> Result<Vec<InventoryCounts>, StoreError> {
        self.read(move |conn| query::counts(conn, group, now, expiring_within)).await
    }

    async fn revoked_entries(&self, issuer: &ObjectRef, now: SystemTime) -> Result<Vec<RevokedEntry>, StoreError> {
        let issuer = issuer.to_string();
        self.read(move |conn| query::revoked_entries(conn, &issuer, now)).await
    }

    async fn next_crl_number(&self, issuer: &ObjectRef) -> Result<u64, StoreError> {
        let issuer = issuer.to_string();
        self.write(move |conn| write::next_crl_number(conn, &issuer)).await
    }

    async fn latest_not_after(
        &self,
        issuer: &ObjectRef,
        created_by: SystemTime,
    ) -> Result<Option<SystemTime>, StoreError> {
        let issuer = issuer.to_string();
        self.read(move |conn| ca_keys::latest_not_after(conn, &issuer, created_by)).await
    }

    async fn record_denial(&self, denial: &DenialRecord) -> Result<(), StoreError> {
        let denial = denial.clone();
        self.write(move |conn| write::record_denial(conn, &denial)).await
    }

    async fn save_crl(&self, crl: &PublishedCrl) -> Result<(), StoreError> {
        let crl = crl.clone();
        self.write(move |conn| crl::save(conn, &crl)).await
    }

    async fn last_crl(&self, issuer: &ObjectRef) -> Result<Option<PublishedCrl>, StoreError> {
        let issuer = issuer.clone();
        self.read(move |conn| crl::load(conn, &issuer)).await
    }
}

#[async_trait]
impl CaMaterialStore for SqliteStore {
    async fn load_ca(&self, issuer: &ObjectRef) -> Result<Option<StoredCaMaterial>, StoreError> {
        let issuer = issuer.to_string();
        self.read(move |conn| query::load_ca(conn, &issuer)).await
    }

    async fn save_ca(&self, issuer: &ObjectRef, material: &StoredCaMaterial) -> Result<(), StoreError> {
        let (issuer, material) = (issuer.to_string(), material.clone());
        let now = SystemTime::now();
        self.write(move |conn| write::save_ca(conn, &issuer, &material, now)).await
    }

    async fn load_next_ca(&self, issuer: &ObjectRef) -> Result<Option<StoredNextCa>, StoreError> {
        let issuer = issuer.to_string();
        self.read(move |conn| ca_next::load(conn, &issuer)).await
    }

    async fn save_next_ca(&self, issuer: &ObjectRef, next: Option<&StoredNextCa>) -> Result<(), StoreError> {
        let (issuer, next) = (issuer.to_string(), next.cloned());
        let now = SystemTime::now();
        self.write(move |conn| ca_next::save(conn, &issuer, next.as_ref(), now)).await
    }

    async fn load_retired_cas(&self, issuer: &ObjectRef) -> Result<Vec<StoredRetiredCa>, StoreError> {
        let issuer = issuer.to_string();
        self.read(move |conn| ca_keys::load_retired(conn, &issuer)).await
    }

    async fn save_retired_ca(&self, issuer: &ObjectRef, retired: &StoredRetiredCa) -> Result<(), StoreError> {
        let (issuer, retired) = (issuer.to_string(), retired.clone());
        self.write(move |conn| ca_keys::save_retired(conn, &issuer, &retired)).await
    }

    async fn remove_retired_ca(&self, issuer: &ObjectRef, key_id: &[u8]) -> Result<(), StoreError> {
        let (issuer, key_id) = (issuer.to_string(), key_id.to_vec());
        self.write(move |conn| ca_keys::remove_retired(conn, &issuer, &key_id)).await
    }

    async fn load_ocsp_responder(
        &self,
        issuer: &ObjectRef,
        ca_key_id: &[u8],
    ) -> Result<Option<StoredOcspResponder>, StoreError> {
        let (issuer, ca_key_id) = (issuer.to_string(), ca_key_id.to_vec());
        self.read(move |conn| ca_keys::load_responder(conn, &issuer, &ca_key_id)).await
    }

    async fn save_ocsp_responder(&self, issuer: &ObjectRef, responder: &StoredOcspResponder) -> Result<(), StoreError> {
        let (issuer, responder) = (issuer.to_string(), responder.clone());
        let now = SystemTime::now();
        self.write(move |conn| ca_keys::save_responder(conn, &issuer, &responder, now)).await
    }
}
