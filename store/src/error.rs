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
        | rusqlite::Error::Utf8Error(..) => StoreError::Corrupt(format!("{context}: {e}")),
        _ => match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => {
                StoreError::Corrupt(format!("{context}: {e}"))
            }
            _ => StoreError::Unavailable(format!("{context}: {e}")),
        },
    }
}

/// A stored value that does not parse.
pub(crate) fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}
