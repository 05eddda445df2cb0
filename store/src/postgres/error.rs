//! Mapping PostgreSQL errors to [`StoreError`].
//!
//! Whatever keeps the database from answering (connection refused or lost, the server
//! shutting down or starting up, a pool timeout, serialization failures) is
//! `Unavailable`: the request failed as a whole, nothing of it was written, and the caller
//! may retry (the CA service answers 503). A stored value of the wrong type is `Corrupt`.

use pkiplane_core::inventory::StoreError;
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{FromSql, Type};

pub(crate) fn pg_err(context: &str) -> impl FnOnce(tokio_postgres::Error) -> StoreError + '_ {
    move |e| map_pg_error(context, e)
}

/// The error keeps the driver's as its source (whose own source carries the server's
/// message: tokio-postgres' Display says only "db error"); the SQLSTATE is named in the
/// message.
pub(crate) fn map_pg_error(context: &str, e: tokio_postgres::Error) -> StoreError {
    match e.code() {
        Some(code) if *code == SqlState::DATA_CORRUPTED || *code == SqlState::INDEX_CORRUPTED => {
            StoreError::corrupt(context).because(e)
        }
        Some(code) => StoreError::unavailable(format!("{context} (SQLSTATE {})", code.code())).because(e),
        None => StoreError::unavailable(context).because(e),
    }
}

pub(crate) fn pool_err(context: &str) -> impl FnOnce(deadpool_postgres::PoolError) -> StoreError + '_ {
    move |e| match e {
        deadpool_postgres::PoolError::Backend(inner) => map_pg_error(context, inner),
        other => StoreError::unavailable(format!("{context}: PostgreSQL connection pool")).because(other),
    }
}

/// Reads column `idx` (named `name` in errors); a value of the wrong type is corrupt.
pub(crate) fn col<'a, T: FromSql<'a>>(row: &'a Row, idx: usize, name: &str) -> Result<T, StoreError> {
    row.try_get(idx).map_err(|e| StoreError::corrupt(format!("column `{name}`")).because(e))
}

/// Every integer column is BIGINT but `revocation_reason` (INTEGER): reads either.
fn integer(row: &Row, idx: usize, name: &str) -> Result<Option<i64>, StoreError> {
    match row.columns().get(idx).map(|c| c.type_()) {
        Some(&Type::INT4) => Ok(col::<Option<i32>>(row, idx, name)?.map(i64::from)),
        _ => col(row, idx, name),
    }
}

impl crate::rows::Columns for Row {
    fn text(&self, idx: usize, name: &str) -> Result<String, StoreError> {
        col(self, idx, name)
    }
    fn opt_text(&self, idx: usize, name: &str) -> Result<Option<String>, StoreError> {
        col(self, idx, name)
    }
    fn int(&self, idx: usize, name: &str) -> Result<i64, StoreError> {
        integer(self, idx, name)?.ok_or_else(|| StoreError::corrupt(format!("column `{name}`: NULL")))
    }
    fn opt_int(&self, idx: usize, name: &str) -> Result<Option<i64>, StoreError> {
        integer(self, idx, name)
    }
    fn opt_bytes(&self, idx: usize, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        col(self, idx, name)
    }
}
