//! Backup and restore of the SQLite store.
//!
//! [`backup`] copies a live database with SQLite's online backup API: the copy is one
//! consistent snapshot even while a server writes (WAL readers never block the writer).
//! [`restore`] checks a copy (integrity, schema version) and installs it as a data
//! directory's database. Restoring a backup takes the store back in time: CRL numbers
//! published after the backup was made are unknown to it, so the restored CRL number
//! counters are raised to the restore time in unix seconds (see [`crl_number_floor`]).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pkiplane_core::inventory::StoreError;
use rusqlite::{Connection, OpenFlags};

use crate::SqliteStore;
use crate::error::sql_err;

/// Pages copied per step; between steps the source is unlocked for the server's writes.
const PAGES_PER_STEP: std::ffi::c_int = 1024;

/// What a backup or restore copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupSummary {
    pub schema_version: u32,
    pub certificates: u64,
    pub bytes: u64,
}

/// Copies the database at `db` into a new file `out` (refusing to overwrite one), made
/// private (0600: it holds the CA keys) and flushed to disk before returning.
pub fn backup(db: &Path, out: &Path) -> Result<BackupSummary, StoreError> {
    if !db.is_file() {
        return Err(StoreError::unavailable(format!("no inventory database at {}", db.display())));
    }
    if out.exists() {
        return Err(StoreError::invalid(format!("{} exists; choose a new file", out.display())));
    }
    let source = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(sql_err("opening the database to back up"))?;
    source.busy_timeout(Duration::from_secs(10)).map_err(sql_err("setting the busy timeout"))?;
    let partial = sibling(out, "partial");
    let _ = std::fs::remove_file(&partial);
    create_private_file(&partial)?;
    let result = (|| {
        let mut target = Connection::open(&partial).map_err(sql_err("creating the backup file"))?;
        {
            let copy = rusqlite::backup::Backup::new(&source, &mut target).map_err(sql_err("starting the backup"))?;
            copy.run_to_completion(PAGES_PER_STEP, Duration::from_millis(5), None)
                .map_err(sql_err("copying the database"))?;
        }
        // A self-contained file: no WAL beside it.
        target.pragma_update(None, "journal_mode", "DELETE").map_err(sql_err("finishing the backup"))?;
        let summary = check(&target)?;
        drop(target);
        std::fs::File::open(&partial).and_then(|f| f.sync_all()).map_err(io(&partial))?;
        std::fs::rename(&partial, out).map_err(io(out))?;
        sync_dir(out);
        Ok(summary)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result.map(|s| BackupSummary { bytes: std::fs::metadata(out).map(|m| m.len()).unwrap_or(0), ..s })
}

/// Installs the backup `from` as the database `db` (which must not exist: the caller
/// decides about replacing a store and removes it first), then raises its CRL number
/// counters to [`crl_number_floor`] of `now`.
pub async fn restore(from: &Path, db: &Path, now: SystemTime) -> Result<BackupSummary, StoreError> {
    let summary = {
        let conn =
            Connection::open_with_flags(from, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
                .map_err(sql_err("opening the backup"))?;
        check(&conn).map_err(|e| match e {
            StoreError::Corrupt { message, source } | StoreError::Unavailable { message, source } => {
                StoreError::Corrupt { message: format!("{} is not a usable backup: {message}", from.display()), source }
            }
            other => other,
        })?
    };
    if db.exists() {
        return Err(StoreError::invalid(format!("{} exists", db.display())));
    }
    if let Some(parent) = db.parent() {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    let partial = sibling(db, "restoring");
    let _ = std::fs::remove_file(&partial);
    create_private_file(&partial)?;
    std::fs::copy(from, &partial).map_err(io(&partial))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o600)).map_err(io(&partial))?;
    }
    std::fs::File::open(&partial).and_then(|f| f.sync_all()).map_err(io(&partial))?;
    for stale in ["db-wal", "db-shm"] {
        let _ = std::fs::remove_file(db.with_extension(stale));
    }
    std::fs::rename(&partial, db).map_err(io(db))?;
    sync_dir(db);
    let store = SqliteStore::open(db)?;
    store.raise_crl_numbers(crl_number_floor(now)).await?;
    Ok(BackupSummary { bytes: std::fs::metadata(db).map(|m| m.len()).unwrap_or(0), ..summary })
}

/// The CRL number a restored store continues from: the restore time in unix seconds.
/// Every CRL number published before is smaller: counters start at 1 and grow by one
/// per CRL, and one raised by an earlier restore (to that restore's time) has grown by
/// fewer CRLs than seconds have passed since (CRLs are made minutes to hours apart).
pub fn crl_number_floor(now: SystemTime) -> u64 {
    now.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl SqliteStore {
    /// Sets every issuer's CRL number counter to at least `floor`; returns how many
    /// counters there are.
    pub async fn raise_crl_numbers(&self, floor: u64) -> Result<u64, StoreError> {
        let floor = i64::try_from(floor).map_err(|_| StoreError::invalid(format!("CRL number {floor} too large")))?;
        self.write(move |conn| {
            conn.execute("UPDATE crl_numbers SET last = max(last, ?1)", [floor])
                .map(|n| n as u64)
                .map_err(sql_err("raising the CRL numbers"))
        })
        .await
    }
}

/// Integrity and schema version of a database (or a backup of one).
fn check(conn: &Connection) -> Result<BackupSummary, StoreError> {
    let verdict: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(sql_err("checking the database's integrity"))?;
    if verdict != "ok" {
        return Err(StoreError::corrupt(format!("integrity check: {verdict}")));
    }
    let version = crate::migrations::schema_version(conn)?;
    crate::migrations::check_not_newer(version, crate::migrations::current_version())?;
    if version == 0 {
        return Err(StoreError::corrupt("not a pkiplane inventory (schema version 0)"));
    }
    let certificates: i64 = conn
        .query_row("SELECT count(*) FROM certificates", [], |r| r.get(0))
        .map_err(sql_err("counting certificates"))?;
    Ok(BackupSummary { schema_version: version, certificates: certificates.max(0) as u64, bytes: 0 })
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(format!(".{suffix}"));
    path.with_file_name(name)
}

fn create_private_file(path: &Path) -> Result<(), StoreError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map(drop).map_err(io(path))
}

fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |e| StoreError::unavailable(format!("{}", path.display())).because(e)
}
