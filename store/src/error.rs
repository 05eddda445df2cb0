//! Mapping SQLite errors to [`StoreError`].

use pkiplane_core::inventory::StoreError;
use rusqlite::ErrorCode;

/// Maps a rusqlite error to [`StoreError`], naming what was being done.
///
/// A damaged file (`SQLITE_CORRUPT`, `SQLITE_NOTADB`) is `Corrupt`; a value of the wrong
/// type in a column is `Corrupt` too; everything else (I/O, locks, full disk) is
/// `Unavailable`.
pub(crate) fn sql_err(context: &str) -> impl FnOnce(rusqlite::Error) -> StoreError + '_ {
    move |e| map_sql_error(context, e)
}

pub(crate) fn map_sql_error(context: &str, e: rusqlite::Error) -> StoreError {
    match &e {
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::IntegralValueOutOfRange(..)
        | rusqlite::Error::Utf8Error(..) => StoreError::corrupt(context).because(e),
        _ => match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => StoreError::corrupt(context).because(e),
            Some(ErrorCode::DiskFull) => StoreError::unavailable(format!("{context}: disk full")).because(e),
            _ => StoreError::unavailable(context).because(e),
        },
    }
}

/// SQLite reports some writes refused for lack of space (growing the `-shm` or `-wal`
/// file) as a generic "disk I/O error". When `e` is such an error, a small probe write
/// beside the database tells whether the disk is full, and the error says so.
pub(crate) fn diagnose_disk_full(e: StoreError, db: &std::path::Path) -> StoreError {
    let text = e.to_string();
    if !matches!(e, StoreError::Unavailable { .. }) || text.contains("disk full") || !text.contains("disk I/O error") {
        return e;
    }
    let dir = db.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    if probe_is_full(dir) {
        let message = e.message().unwrap_or_default();
        let full = format!("{message}: disk full (no space left on the device of {})", dir.display());
        match e {
            StoreError::Unavailable { source, .. } => StoreError::Unavailable { message: full, source },
            other => other,
        }
    } else {
        e
    }
}

fn probe_is_full(dir: &std::path::Path) -> bool {
    use std::io::Write;
    let probe = dir.join(".pkiplane-space-probe");
    let result = std::fs::File::create(&probe).and_then(|mut f| {
        f.write_all(&[0u8; 64 * 1024])?;
        f.sync_all()
    });
    let _ = std::fs::remove_file(&probe);
    matches!(result, Err(e) if e.kind() == std::io::ErrorKind::StorageFull)
}

/// A stored value that does not parse.
pub(crate) fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::corrupt(what.to_string())
}
