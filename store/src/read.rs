//! Reads: a small pool of read-only connections, used from `spawn_blocking`.
//!
//! In WAL mode readers never wait for the writer and always see every committed batch,
//! so a read issued after a write returned sees that write.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use pkiplane_core::inventory::StoreError;
use rusqlite::{Connection, OpenFlags};

use crate::error::sql_err;

/// Idle read connections kept for reuse.
const MAX_IDLE: usize = 4;
/// Prepared statements cached per connection (the list filters make a few dozen shapes).
pub(crate) const STATEMENT_CACHE: usize = 64;

pub(crate) struct ReadPool {
    path: PathBuf,
    busy_timeout: Duration,
    idle: Mutex<Vec<Connection>>,
}

impl ReadPool {
    pub(crate) fn new(path: PathBuf, busy_timeout: Duration) -> Self {
        Self { path, busy_timeout, idle: Mutex::new(Vec::new()) }
    }

    /// Opens a read-only connection to the database.
    pub(crate) fn connect(&self) -> Result<Connection, StoreError> {
        let context = format!("opening {} for reading", self.path.display());
        let conn =
            Connection::open_with_flags(&self.path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
                .map_err(sql_err(&context))?;
        conn.busy_timeout(self.busy_timeout).map_err(sql_err(&context))?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(conn)
    }

    fn checkout(&self) -> Result<Connection, StoreError> {
        let pooled = self.idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
        match pooled {
            Some(conn) => Ok(conn),
            None => self.connect(),
        }
    }

    fn checkin(&self, conn: Connection) {
        // A connection left inside a transaction (should not happen) is not reused.
        if !conn.is_autocommit() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
    }

    /// Runs `work` on a pooled connection on tokio's blocking pool.
    pub(crate) async fn run<T, F>(self: &Arc<Self>, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let pool = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let conn = pool.checkout()?;
            let result = work(&conn);
            pool.checkin(conn);
            result
        })
        .await
        .map_err(|e| StoreError::unavailable("a store read task failed").because(e))?
    }
}
