//! A small bounded cache with a time to live per entry: review answers are kept for a
//! few seconds so a burst of requests asks the API server once.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct TtlCache<K, V> {
    capacity: usize,
    entries: Mutex<HashMap<K, (V, Instant)>>,
}

impl<K: Eq + Hash + Clone, V: Clone> TtlCache<K, V> {
    pub fn new(capacity: usize) -> Self {
        Self { capacity: capacity.max(1), entries: Mutex::new(HashMap::new()) }
    }

    /// The value kept for `key`, unless it has expired at `now`.
    pub fn get(&self, key: &K, now: Instant) -> Option<V> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        match entries.get(key) {
            Some((v, until)) if now < *until => Some(v.clone()),
            Some(_) => {
                entries.remove(key);
                None
            }
            None => None,
        }
    }

    /// Keeps `value` for `ttl`. When full, expired entries go first, then the one that
    /// would expire soonest.
    pub fn put(&self, key: K, value: V, ttl: Duration, now: Instant) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            entries.retain(|_, (_, until)| now < *until);
            if entries.len() >= self.capacity
                && let Some(soonest) = entries.iter().min_by_key(|(_, (_, until))| *until).map(|(k, _)| k.clone())
            {
                entries.remove(&soonest);
            }
        }
        entries.insert(key, (value, now + ttl));
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_the_size_stays_bounded() {
        let cache = TtlCache::new(3);
        let t0 = Instant::now();
        cache.put(1, "a", Duration::from_secs(10), t0);
        assert_eq!(cache.get(&1, t0 + Duration::from_secs(9)), Some("a"));
        assert_eq!(cache.get(&1, t0 + Duration::from_secs(10)), None);
        for k in 0..100 {
            cache.put(k, "x", Duration::from_secs(k + 1), t0);
            assert!(cache.len() <= 3);
        }
        // The longest-lived entries survived.
        assert_eq!(cache.get(&99, t0), Some("x"));
        assert_eq!(cache.get(&0, t0), None);
    }
}
