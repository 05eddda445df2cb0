//! An in-memory [`CmpStore`] for unit tests and single-process experiments. One mutex
//! guards everything, so every operation is atomic.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use super::{CmpStore, CmpTransaction, ExpiryClaim};
use pkiplane_core::inventory::StoreError;
use pkiplane_core::model::ObjectRef;

type Key = (ObjectRef, String);

#[derive(Default)]
struct Inner {
    transactions: HashMap<Key, CmpTransaction>,
    nonces: HashMap<Key, SystemTime>,
}

/// The in-memory CMP state.
#[derive(Default)]
pub struct MemoryCmpStore {
    inner: Mutex<Inner>,
}

impl MemoryCmpStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn key(endpoint: &ObjectRef, id: &str) -> Key {
    (endpoint.clone(), id.to_owned())
}

#[async_trait]
impl CmpStore for MemoryCmpStore {
    async fn create_transaction(&self, tx: &CmpTransaction) -> Result<bool, StoreError> {
        let mut g = self.lock();
        let k = key(&tx.endpoint, &tx.transaction_id);
        if g.transactions.contains_key(&k) {
            return Ok(false);
        }
        g.transactions.insert(k, tx.clone());
        Ok(true)
    }

    async fn transaction(&self, endpoint: &ObjectRef, id: &str) -> Result<Option<CmpTransaction>, StoreError> {
        Ok(self.lock().transactions.get(&key(endpoint, id)).cloned())
    }

    async fn update_transaction(&self, tx: &CmpTransaction) -> Result<bool, StoreError> {
        let mut g = self.lock();
        match g.transactions.get_mut(&key(&tx.endpoint, &tx.transaction_id)) {
            Some(stored) if stored.version == tx.version => {
                *stored = tx.clone();
                stored.version = tx.version + 1;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn claim_expired(&self, claim: &ExpiryClaim) -> Result<Vec<CmpTransaction>, StoreError> {
        let mut g = self.lock();
        let mut out = Vec::new();
        for tx in g.transactions.values_mut() {
            if out.len() >= claim.limit {
                break;
            }
            if claim.takes(tx) {
                out.push(tx.clone());
                *tx = CmpTransaction { version: tx.version + 1, ..tx.expired_at(claim.now) };
            }
        }
        Ok(out)
    }

    async fn use_nonce(&self, endpoint: &ObjectRef, nonce: &str, expires: SystemTime) -> Result<bool, StoreError> {
        let mut g = self.lock();
        let k = key(endpoint, nonce);
        if g.nonces.contains_key(&k) {
            return Ok(false);
        }
        g.nonces.insert(k, expires);
        Ok(true)
    }

    async fn purge(&self, now: SystemTime, retention: Duration) -> Result<u64, StoreError> {
        let mut g = self.lock();
        let before = g.nonces.len() + g.transactions.len();
        g.nonces.retain(|_, exp| *exp > now);
        let cutoff = now.checked_sub(retention).unwrap_or(SystemTime::UNIX_EPOCH);
        g.transactions.retain(|_, tx| tx.state.is_open() || tx.updated_at >= cutoff);
        Ok((before - g.nonces.len() - g.transactions.len()) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{CmpAuth, TransactionKind, TransactionState};

    fn ten_expired(endpoint: ObjectRef, now: SystemTime) -> ExpiryClaim {
        ExpiryClaim { endpoint, now, limit: 10 }
    }

    fn tx(id: &str, state: TransactionState, deadline: Option<SystemTime>) -> CmpTransaction {
        let now = SystemTime::now();
        CmpTransaction {
            endpoint: ObjectRef::new("pki", "cmp"),
            transaction_id: id.into(),
            kind: TransactionKind::Enrollment,
            state,
            requester: "device-1".into(),
            auth: CmpAuth::Mac { kid: "device-1".into() },
            profile_label: "tls".into(),
            pvno: 2,
            server_nonce: "00".into(),
            certificates: vec![],
            pending_request: None,
            deadline,
            created_at: now,
            updated_at: now,
            version: 0,
        }
    }

    fn block<F: std::future::Future>(f: F) -> F::Output {
        futures_executor::block_on(f)
    }

    #[test]
    fn transaction_ids_are_single_use_and_updates_compare_and_set() {
        let s = MemoryCmpStore::new();
        let t = tx("01", TransactionState::AwaitingConfirmation, None);
        assert!(block(s.create_transaction(&t)).unwrap());
        assert!(!block(s.create_transaction(&t)).unwrap());
        let mut a = t.clone();
        a.state = TransactionState::Complete;
        assert!(block(s.update_transaction(&a)).unwrap());
        assert!(!block(s.update_transaction(&a)).unwrap(), "stale version loses");
        let stored = block(s.transaction(&t.endpoint, "01")).unwrap().unwrap();
        assert_eq!((stored.state, stored.version), (TransactionState::Complete, 1));
    }

    #[test]
    fn expired_transactions_are_claimed_once_and_nonces_used_once() {
        let s = MemoryCmpStore::new();
        let past = SystemTime::now() - Duration::from_secs(10);
        block(s.create_transaction(&tx("01", TransactionState::AwaitingConfirmation, Some(past)))).unwrap();
        block(s.create_transaction(&tx("02", TransactionState::Complete, Some(past)))).unwrap();
        let now = SystemTime::now();
        let ep = ObjectRef::new("pki", "cmp");
        assert!(block(s.claim_expired(&ten_expired(ObjectRef::new("pki", "other"), now))).unwrap().is_empty());
        assert_eq!(block(s.claim_expired(&ten_expired(ep.clone(), now))).unwrap().len(), 1);
        assert!(block(s.claim_expired(&ten_expired(ep.clone(), now))).unwrap().is_empty());
        assert!(block(s.use_nonce(&ep, "aa", now + Duration::from_secs(60))).unwrap());
        assert!(!block(s.use_nonce(&ep, "aa", now + Duration::from_secs(60))).unwrap());
        assert_eq!(block(s.purge(now + Duration::from_secs(120), Duration::from_secs(1))).unwrap(), 3);
    }
}
