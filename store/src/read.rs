//! Reads: a small pool of read-only connections, used from `spawn_blocking` or, for
//! lookups by key, on the calling thread.
//!
//! At most [`READERS`] reads run at once on the blocking pool (the rest wait for a turn
//! without holding a thread) and every connection they use is kept for the next: under
//! load a request finds a connection with its page and statement caches warm instead of
//! opening the database again (which re-reads the schema and starts with cold caches).
//!
//! In WAL mode readers never wait for the writer and always see every committed batch,
//! so a read issued after a write returned sees that write.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use pkiplane_core::inventory::StoreError;
use rusqlite::{Connection, OpenFlags};

use crate::error::sql_err;

/// Reads running at once, and so connections open: more than the cores gains nothing
/// but threads and connections to keep.
const READERS: usize = 8;
/// Prepared statements cached per connection (the list filters make a few dozen shapes).
pub(crate) const STATEMENT_CACHE: usize = 64;

pub(crate) struct ReadPool {
    path: PathBuf,
    busy_timeout: Duration,
    idle: Mutex<Vec<Connection>>,
    turns: Arc<tokio::sync::Semaphore>,
}

impl ReadPool {
    pub(crate) fn new(path: PathBuf, busy_timeout: Duration) -> Self {
        Self { path, busy_timeout, idle: Mutex::new(Vec::new()), turns: Arc::new(tokio::sync::Semaphore::new(READERS)) }
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
        if idle.len() < READERS {
            idle.push(conn);
        }
    }

    /// Runs `work` at once on the calling thread, on a pooled connection.
    ///
    /// For lookups by key (a primary key or a unique index): they take microseconds,
    /// less than handing them to a blocking thread and back, which costs two thread
    /// wake-ups per read (at 32 ACME clients on 2 cores, the kernel's share of the
    /// server's CPU was mostly these hand-offs). In WAL mode a reader never waits for
    /// the writer, so such a read does not stall the async worker that runs it.
    /// Queries that scan (lists, counts, exports) go through [`Self::run`] instead.
    pub(crate) fn run_here<T>(&self, work: impl FnOnce(&Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let conn = self.checkout()?;
        let result = work(&conn);
        self.checkin(conn);
        result
    }

    /// Runs `work` on a pooled connection on tokio's blocking pool.
    pub(crate) async fn run<T, F>(self: &Arc<Self>, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        // The semaphore is never closed, so acquiring only waits. The turn moves into the
        // blocking task: a caller that stops waiting does not free it while the read runs.
        let turn = Arc::clone(&self.turns)
            .acquire_owned()
            .await
            .map_err(|_| StoreError::unavailable("the store's readers have stopped"))?;
        let pool = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let conn = pool.checkout()?;
            let result = work(&conn);
            pool.checkin(conn);
            drop(turn);
            result
        })
        .await
        .map_err(|e| StoreError::unavailable("a store read task failed").because(e))?
    }
}
