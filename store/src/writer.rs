//! Group commit: one thread owns the write connection.
//!
//! Callers send write operations over a channel and await a oneshot reply. The writer
//! thread takes every operation queued at that moment (up to [`MAX_BATCH`]), runs them
//! in ONE transaction, each inside its own savepoint, commits once (one fsync for the
//! whole batch) and only then replies to each. An operation that fails rolls back its
//! own savepoint only, so one caller's `DuplicateSerial` never fails another caller's
//! write. If the commit itself fails, every operation of the batch is told so: nothing
//! of it was written.
//!
//! A batch commits with `synchronous=FULL` (the WAL is fsynced before anyone is answered)
//! unless every operation in it was queued as [`Durability::Deferred`]: then it commits
//! with `synchronous=NORMAL`, which writes the WAL without syncing it. Such a write is in
//! the database (a process crash keeps it, the OS holds the pages) and becomes durable
//! against power loss with the next FULL commit, whose fsync covers every WAL frame
//! before it. The issuance pipeline uses it for the pending record, whose durability only
//! matters once the certificate is returned, after the synced "issued" write.
//!
//! Dropping the [`Writer`] closes the channel; the thread finishes the operations
//! already queued, then exits and the drop joins it.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc;
use std::thread::JoinHandle;

use pkiplane_core::inventory::StoreError;
use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::oneshot;

use crate::error::map_sql_error;

/// The most operations committed in one transaction.
const MAX_BATCH: usize = 1024;

/// When a write must be on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Durability {
    /// Synced before the caller is answered.
    Synced,
    /// Committed before the caller is answered; synced with the next synced commit.
    Deferred,
}

impl Durability {
    /// SQLite's `synchronous` level for a commit of this durability (WAL mode).
    fn pragma(self) -> &'static str {
        match self {
            Self::Synced => "FULL",
            Self::Deferred => "NORMAL",
        }
    }
}

/// One queued write.
trait Job: Send {
    /// How durable the caller needs this write to be when answered.
    fn durability(&self) -> Durability;
    /// Runs the operation on the batch transaction; false if it failed (its savepoint
    /// is then rolled back).
    fn run(&mut self, conn: &Connection) -> bool;
    /// Replaces an outcome that would otherwise be reported as a success: the batch
    /// did not commit.
    fn abort(&mut self, reason: &str);
    /// Sends the outcome to the caller.
    fn finish(self: Box<Self>);
}

struct Op<T, F> {
    durability: Durability,
    work: Option<F>,
    outcome: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> Job for Op<T, F>
where
    T: Send,
    F: FnOnce(&Connection) -> Result<T, StoreError> + Send,
{
    fn durability(&self) -> Durability {
        self.durability
    }

    fn run(&mut self, conn: &Connection) -> bool {
        let Some(work) = self.work.take() else {
            return false;
        };
        let outcome = work(conn);
        let ok = outcome.is_ok();
        self.outcome = Some(outcome);
        ok
    }

    fn abort(&mut self, reason: &str) {
        if !matches!(self.outcome, Some(Err(_))) {
            self.outcome = Some(Err(StoreError::unavailable(reason.to_owned())));
        }
    }

    fn finish(self: Box<Self>) {
        let outcome = self.outcome.unwrap_or_else(|| Err(StoreError::unavailable("the write was not executed")));
        // The caller may have gone away (future dropped); the write stands regardless.
        let _ = self.reply.send(outcome);
    }
}

type BoxedJob = Box<dyn Job>;

/// Handle to the writer thread.
pub(crate) struct Writer {
    sender: Option<mpsc::Sender<BoxedJob>>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    /// Starts the writer thread, which takes ownership of `conn`.
    pub(crate) fn start(conn: Connection, name: String) -> Result<Self, StoreError> {
        let (sender, receiver) = mpsc::channel::<BoxedJob>();
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn(move || writer_loop(conn, receiver))
            .map_err(|e| StoreError::unavailable("starting the store writer thread").because(e))?;
        Ok(Self { sender: Some(sender), thread: Some(thread) })
    }

    /// Queues `work` for the next batch and waits until its batch has committed (and,
    /// for [`Durability::Synced`], been synced).
    pub(crate) async fn submit<T, F>(&self, durability: Durability, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.enqueue(durability, work)?.await.map_err(|_| stopped())?
    }

    fn enqueue<T, F>(
        &self,
        durability: Durability,
        work: F,
    ) -> Result<oneshot::Receiver<Result<T, StoreError>>, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let sender = self.sender.as_ref().ok_or_else(stopped)?;
        let (reply, answer) = oneshot::channel();
        sender.send(Box::new(Op { durability, work: Some(work), outcome: None, reply })).map_err(|_| stopped())?;
        Ok(answer)
    }
}

fn stopped() -> StoreError {
    StoreError::unavailable("the store's writer has stopped")
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Closing the channel lets the thread drain what is queued, then return.
        drop(self.sender.take());
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the store writer thread panicked");
        }
    }
}

fn writer_loop(mut conn: Connection, receiver: mpsc::Receiver<BoxedJob>) {
    let mut batch: Vec<BoxedJob> = Vec::new();
    // The connection is opened with synchronous=FULL (`configure_writer`); `None` until
    // this loop has set it itself, so the first batch always says what it needs.
    let mut level: Option<Durability> = None;
    // `recv` fails only once the channel is empty and every sender is gone.
    while let Ok(first) = receiver.recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let wanted = if batch.iter().any(|job| job.durability() == Durability::Synced) {
            Durability::Synced
        } else {
            Durability::Deferred
        };
        if level != Some(wanted) {
            level = set_level(&conn, wanted).then_some(wanted);
        }
        tracing::trace!(size = batch.len(), ?wanted, "committing a write batch");
        if wanted == Durability::Synced && level != Some(Durability::Synced) {
            // Never answer a synced write from a commit that may not sync.
            batch.iter_mut().for_each(|job| job.abort("the store could not be set to sync its commits"));
        } else {
            run_batch(&mut conn, &mut batch);
        }
        for job in batch.drain(..) {
            job.finish();
        }
    }
    tracing::debug!("store writer stopped");
}

/// Sets the connection's `synchronous` level (outside any transaction, where SQLite
/// applies it); false if SQLite refused.
fn set_level(conn: &Connection, durability: Durability) -> bool {
    match conn.pragma_update(None, "synchronous", durability.pragma()) {
        Ok(()) => true,
        Err(e) => {
            tracing::error!(error = %e, level = durability.pragma(), "setting the store's synchronous level failed");
            false
        }
    }
}

/// Runs `batch` in one transaction; every job holds its outcome afterwards.
fn run_batch(conn: &mut Connection, batch: &mut [BoxedJob]) {
    let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => {
            let reason = map_sql_error("starting a write transaction", e).to_string();
            batch.iter_mut().for_each(|job| job.abort(&reason));
            return;
        }
    };
    let result =
        run_jobs(&tx, batch).and_then(|()| tx.commit().map_err(|e| map_sql_error("committing writes", e).to_string()));
    // On error the transaction has been dropped, i.e. rolled back: nothing of the
    // batch was written.
    if let Err(reason) = result {
        tracing::error!(%reason, size = batch.len(), "write batch failed");
        batch.iter_mut().for_each(|job| job.abort(&reason));
    }
}

/// Runs each job in its own savepoint. An error here is one the batch cannot survive.
fn run_jobs(tx: &Connection, batch: &mut [BoxedJob]) -> Result<(), String> {
    for job in batch.iter_mut() {
        savepoint(tx, "SAVEPOINT op").map_err(|e| map_sql_error("starting a write", e).to_string())?;
        // A panicking operation (a bug) fails alone instead of killing the writer; its
        // caller is told the write was not executed.
        let ok = std::panic::catch_unwind(AssertUnwindSafe(|| job.run(tx))).unwrap_or_else(|_| {
            tracing::error!("a store write operation panicked; rolled back");
            false
        });
        let end = if ok {
            savepoint(tx, "RELEASE op")
        } else {
            savepoint(tx, "ROLLBACK TO op").and_then(|()| savepoint(tx, "RELEASE op"))
        };
        end.map_err(|e| map_sql_error("finishing a write", e).to_string())?;
        // An I/O error or a full disk can make SQLite roll the whole transaction back
        // by itself; what follows would then run outside any transaction.
        if tx.is_autocommit() {
            return Err("the write transaction was rolled back by SQLite".to_owned());
        }
    }
    Ok(())
}

fn savepoint(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex, mpsc as std_mpsc};

    use super::*;

    fn count(conn: &Connection) -> i64 {
        conn.query_row("SELECT count(*) FROM t", [], |row| row.get(0)).unwrap_or(-1)
    }

    /// Queued writes share one transaction; a failing one is rolled back alone; dropping
    /// the writer finishes what is queued.
    #[test]
    fn queued_writes_commit_together_and_fail_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.execute_batch("CREATE TABLE t (v INTEGER PRIMARY KEY)").unwrap();
        // A second connection sees only committed rows.
        let observer = Arc::new(Mutex::new(Connection::open(&path).unwrap()));
        let writer = Writer::start(conn, "test-writer".to_owned()).unwrap();

        // Hold the writer busy in a first batch while the others queue up.
        let (release, wait) = std_mpsc::channel::<()>();
        let (started, running) = std_mpsc::channel::<()>();
        let first = writer
            .enqueue(Durability::Synced, move |conn: &Connection| {
                let _ = started.send(());
                let _ = wait.recv();
                conn.execute("INSERT INTO t VALUES (0)", []).map_err(|e| map_sql_error("t", e))
            })
            .unwrap();
        running.recv().unwrap();
        let mut answers = Vec::new();
        for v in 1..=50_i64 {
            let observer = Arc::clone(&observer);
            answers.push(
                writer
                    .enqueue(Durability::Synced, move |conn: &Connection| {
                        conn.execute("INSERT INTO t VALUES (?1)", [v]).map_err(|e| map_sql_error("t", e))?;
                        if v == 25 {
                            return Err(StoreError::corrupt("refused"));
                        }
                        let seen = count(&observer.lock().unwrap_or_else(|e| e.into_inner()));
                        Ok((v, seen))
                    })
                    .unwrap(),
            );
        }
        release.send(()).unwrap();
        drop(writer); // closes the channel; the queued batch still runs
        assert_eq!(first.blocking_recv().unwrap().unwrap(), 1);
        let mut failed = Vec::new();
        for answer in answers {
            match answer.blocking_recv().unwrap() {
                // Every write of the second batch saw only the first batch committed.
                Ok((_, seen)) => assert_eq!(seen, 1),
                Err(e) => failed.push(e),
            }
        }
        assert_eq!(failed.len(), 1);
        assert!(matches!(failed[0], StoreError::Corrupt { .. }), "{failed:?}");
        let conn = Connection::open(&path).unwrap();
        assert_eq!(count(&conn), 50);
        let missing: i64 = conn.query_row("SELECT count(*) FROM t WHERE v = 25", [], |row| row.get(0)).unwrap();
        assert_eq!(missing, 0);
    }

    #[test]
    fn a_panicking_write_fails_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE t (v INTEGER PRIMARY KEY)").unwrap();
        let writer = Writer::start(conn, "test-writer".to_owned()).unwrap();
        let insert = |v: i64, explode: bool| {
            move |conn: &Connection| {
                conn.execute("INSERT INTO t VALUES (?1)", [v]).map_err(|e| map_sql_error("t", e))?;
                assert!(!explode, "deliberate panic in a write");
                Ok(())
            }
        };
        let bad = writer.enqueue(Durability::Synced, insert(1, true)).unwrap();
        let good = writer.enqueue(Durability::Synced, insert(2, false)).unwrap();
        assert!(matches!(bad.blocking_recv().unwrap(), Err(StoreError::Unavailable { .. })));
        good.blocking_recv().unwrap().unwrap();
        // The writer still works after the panic.
        let later = writer.enqueue(Durability::Synced, insert(3, false)).unwrap();
        later.blocking_recv().unwrap().unwrap();
        drop(writer);
        let conn = Connection::open(&path).unwrap();
        let rows: Vec<i64> = conn
            .prepare("SELECT v FROM t ORDER BY v")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rows, [2, 3]);
    }

    /// A batch commits without syncing only when every write in it is deferred; one
    /// synced write makes the whole batch's commit synced.
    #[test]
    fn a_batch_syncs_unless_every_write_in_it_is_deferred() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("s.db")).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.pragma_update(None, "synchronous", "FULL").unwrap();
        let writer = Writer::start(conn, "test-writer".to_owned()).unwrap();
        // The level a job sees is the one its batch commits with (1 = NORMAL, 2 = FULL).
        let level = |conn: &Connection| {
            conn.query_row("PRAGMA synchronous", [], |row| row.get::<_, i64>(0)).map_err(|e| map_sql_error("level", e))
        };
        let alone = |durability| writer.enqueue(durability, level).unwrap().blocking_recv().unwrap().unwrap();
        assert_eq!(alone(Durability::Deferred), 1);
        assert_eq!(alone(Durability::Synced), 2);
        assert_eq!(alone(Durability::Deferred), 1);

        // Hold the writer busy so that a deferred and a synced write share the next batch.
        let (release, wait) = std_mpsc::channel::<()>();
        let (started, running) = std_mpsc::channel::<()>();
        let first = writer
            .enqueue(Durability::Deferred, move |conn: &Connection| {
                let _ = started.send(());
                let _ = wait.recv();
                level(conn)
            })
            .unwrap();
        running.recv().unwrap();
        let deferred = writer.enqueue(Durability::Deferred, level).unwrap();
        let synced = writer.enqueue(Durability::Synced, level).unwrap();
        release.send(()).unwrap();
        assert_eq!(first.blocking_recv().unwrap().unwrap(), 1);
        assert_eq!(deferred.blocking_recv().unwrap().unwrap(), 2);
        assert_eq!(synced.blocking_recv().unwrap().unwrap(), 2);
    }
}
