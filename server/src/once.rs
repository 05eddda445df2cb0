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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use pkiplane_store::testing::shared_schema_url;

    use super::*;

    /// A replica that died holding a lease (no renewal, no release) delays the others
    /// until the lease expires, then one of them does the work and gives the lease up.
    /// The 15 s pass on the database clock (`age_lease`), not in the test.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lease_left_by_a_dead_replica_is_taken_over_once_it_expires() {
        let url = shared_schema_url().await;
        let store = Arc::new(PostgresStore::connect(&url).await.unwrap());
        assert!(store.try_lease("crl/pki/root", "dead-replica", LEASE_TTL).await.unwrap());

        let survivor = Once::new(Some(store.clone()));
        let ran = Arc::new(AtomicBool::new(false));
        let flag = ran.clone();
        let waiting = tokio::spawn(async move {
            survivor
                .run("crl/pki/root", Duration::from_secs(60), async move {
                    flag.store(true, Ordering::SeqCst);
                    "published"
                })
                .await
        });
        // While the dead replica's lease holds, the work does not run (however long
        // this takes, the lease cannot be had before it is aged below).
        tokio::time::sleep(RETRY * 3).await;
        assert!(!ran.load(Ordering::SeqCst), "ran under another replica's live lease");
        store.age_lease("crl/pki/root", LEASE_TTL + Duration::from_secs(1)).await.unwrap();
        assert_eq!(waiting.await.unwrap(), Some("published"));
        assert!(ran.load(Ordering::SeqCst));
        // Released when done: free for anyone at once.
        assert!(store.try_lease("crl/pki/root", "third-replica", LEASE_TTL).await.unwrap());
    }

    /// A replica gives up when the lease stays held for its whole wait.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_live_lease_makes_the_others_give_up_after_their_wait() {
        let url = shared_schema_url().await;
        let store = Arc::new(PostgresStore::connect(&url).await.unwrap());
        assert!(store.try_lease("ca-keys", "live-replica", LEASE_TTL).await.unwrap());
        let other = Once::new(Some(store.clone()));
        let out = other.run("ca-keys", RETRY * 2, async { unreachable!("ran without the lease") }).await;
        assert_eq!(out, None::<()>);
        // The holder's lease is untouched.
        assert!(store.try_lease("ca-keys", "live-replica", LEASE_TTL).await.unwrap());
    }
}
