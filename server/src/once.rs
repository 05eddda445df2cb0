//! Work that must happen once across CA replicas sharing a PostgreSQL store: creating,
//! staging and promoting CA keys, publishing a CRL. [`Once::run`] takes the named lease
//! (see `pkiplane_store::PostgresStore::try_lease`), renews it while the work runs and
//! gives it up after. On SQLite there is one replica and nothing to coordinate.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pkiplane_store::PostgresStore;

/// How long a lease lasts without renewal: how long a replica that died holding it
/// blocks the others at most.
const LEASE_TTL: Duration = Duration::from_secs(15);
/// How often a waiting replica retries.
const RETRY: Duration = Duration::from_millis(250);

#[derive(Clone, Default)]
pub struct Once {
    store: Option<Arc<PostgresStore>>,
    holder: String,
}

impl Once {
    /// Coordination through `store`'s leases, or none (`None`: a single replica).
    pub fn new(store: Option<Arc<PostgresStore>>) -> Self {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
        Self { store, holder: format!("{}/{}/{nanos:x}", host.trim(), std::process::id()) }
    }

    /// Runs `work` holding the lease `name`, waiting up to `wait` for it; `None` when the
    /// lease could not be had (another replica is doing the work, or the database is
    /// unreachable) within that time.
    pub async fn run<T>(&self, name: &str, wait: Duration, work: impl Future<Output = T>) -> Option<T> {
        let Some(store) = &self.store else { return Some(work.await) };
        let deadline = Instant::now() + wait;
        loop {
            match store.try_lease(name, &self.holder, LEASE_TTL).await {
                Ok(true) => break,
                Ok(false) => {}
                Err(e) => tracing::warn!(lease = name, error = %e, "could not take a lease"),
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(RETRY).await;
        }
        let renew = async {
            loop {
                tokio::time::sleep(LEASE_TTL / 3).await;
                match store.try_lease(name, &self.holder, LEASE_TTL).await {
                    Ok(true) => {}
                    Ok(false) => tracing::error!(lease = name, "lease lost to another replica while working"),
                    Err(e) => tracing::warn!(lease = name, error = %e, "could not renew a lease"),
                }
            }
        };
        let out = tokio::select! {
            out = work => out,
            _ = renew => unreachable!("the renewal loop never ends"),
        };
        if let Err(e) = store.release_lease(name, &self.holder).await {
            tracing::warn!(lease = name, error = %e, "could not release a lease (it expires by itself)");
        }
        Some(out)
    }
}
