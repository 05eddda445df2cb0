//! In-process [`AuthFailureStore`]: a bounded map (at most twice [`SOFT_LIMIT`] entries,
//! keys chosen by the protocol and small), pruned of stale and then oldest entries.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use super::{AuthFailureStore, FailureCount};
use pkiplane_core::inventory::StoreError;

/// Entries kept after a prune; a prune happens at twice this.
const SOFT_LIMIT: usize = 10_000;
/// An entry untouched this long is stale.
const STALE_AFTER: Duration = Duration::from_secs(3_600);

/// Failure counters in this process's memory (not shared between replicas).
#[derive(Debug, Default)]
pub struct MemoryAuthFailures {
    counts: Mutex<HashMap<String, FailureCount>>,
}

impl MemoryAuthFailures {
    pub fn new() -> Self {
        Self::default()
    }

    /// At twice the soft limit, drops stale entries and then the oldest down to the soft
    /// limit: the table never holds more than twice the soft limit, and the pruning
    /// work is spread over the soft limit's worth of inserts between prunes.
    fn prune(map: &mut HashMap<String, FailureCount>, now: SystemTime) {
        if map.len() < 2 * SOFT_LIMIT {
            return;
        }
        map.retain(|_, c| now.duration_since(c.last_failure).unwrap_or_default() < STALE_AFTER);
        if map.len() > SOFT_LIMIT {
            let mut by_age: Vec<(SystemTime, String)> = map.iter().map(|(k, c)| (c.last_failure, k.clone())).collect();
            by_age.sort_unstable();
            let excess = map.len() - SOFT_LIMIT;
            for (_, k) in by_age.into_iter().take(excess) {
                map.remove(&k);
            }
        }
    }
}

#[async_trait]
impl AuthFailureStore for MemoryAuthFailures {
    async fn get(&self, key: &str) -> Result<Option<FailureCount>, StoreError> {
        Ok(self.counts.lock().unwrap_or_else(|e| e.into_inner()).get(key).copied())
    }

    async fn record_failure(&self, key: &str, now: SystemTime, forget_after: u64) -> Result<FailureCount, StoreError> {
        let mut map = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        Self::prune(&mut map, now);
        let entry = map.entry(key.to_owned()).or_insert(FailureCount { failures: 0, last_failure: now });
        let age = now.duration_since(entry.last_failure).unwrap_or_default();
        if age > Duration::from_secs(forget_after) {
            entry.failures = 0;
        }
        entry.failures = entry.failures.saturating_add(1);
        entry.last_failure = now;
        Ok(*entry)
    }

    async fn clear(&self, key: &str) -> Result<(), StoreError> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_forget_and_clear() {
        futures_executor::block_on(counts_forget_and_clear_async());
    }

    async fn counts_forget_and_clear_async() {
        let s = MemoryAuthFailures::new();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(s.record_failure("k", t0, 60).await.unwrap().failures, 1);
        assert_eq!(s.record_failure("k", t0 + Duration::from_secs(10), 60).await.unwrap().failures, 2);
        // After the forget window, counting restarts.
        assert_eq!(s.record_failure("k", t0 + Duration::from_secs(200), 60).await.unwrap().failures, 1);
        s.clear("k").await.unwrap();
        assert!(s.get("k").await.unwrap().is_none());
    }

    #[test]
    fn the_table_stays_bounded_under_a_flood_of_names() {
        futures_executor::block_on(async {
            let s = MemoryAuthFailures::new();
            let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
            for i in 0..(5 * SOFT_LIMIT as u64) {
                s.record_failure(&format!("user:pki/est:{i:032x}"), t0 + Duration::from_millis(i), 3_600)
                    .await
                    .unwrap();
                assert!(s.counts.lock().unwrap().len() <= 2 * SOFT_LIMIT);
            }
            // The newest are kept.
            assert!(s.get(&format!("user:pki/est:{:032x}", 5 * SOFT_LIMIT as u64 - 1)).await.unwrap().is_some());
        });
    }
}
