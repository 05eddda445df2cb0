//! An in-memory [`ScepStore`] for unit tests and single-process experiments. One mutex
//! guards everything, so every operation is atomic.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use super::{
    ChallengeKey, ChallengeUse, RaMaterial, RaUpdate, ScepChallenge, ScepStore, ScepTransaction, SeenMessage,
    TransactionStatus,
};
use pkiplane_core::inventory::StoreError;
use pkiplane_core::model::ObjectRef;

#[derive(Default)]
struct Inner {
    /// (endpoint, transactionID, senderNonce) -> expiry.
    messages: HashMap<(ObjectRef, String, Vec<u8>), SystemTime>,
    /// (endpoint, secret hash) -> challenge.
    challenges: HashMap<ChallengeKey, ScepChallenge>,
    transactions: HashMap<(ObjectRef, String), ScepTransaction>,
    ra: HashMap<ObjectRef, RaMaterial>,
}

/// The in-memory SCEP state.
#[derive(Default)]
pub struct MemoryScepStore {
    inner: Mutex<Inner>,
}

impl MemoryScepStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl ScepStore for MemoryScepStore {
    async fn record_message(&self, seen: &SeenMessage) -> Result<bool, StoreError> {
        let key = (seen.endpoint.clone(), seen.transaction_id.clone(), seen.sender_nonce.clone());
        let mut g = self.lock();
        if g.messages.contains_key(&key) {
            return Ok(false);
        }
        g.messages.insert(key, seen.expires);
        Ok(true)
    }

    async fn add_challenge(&self, challenge: &ScepChallenge) -> Result<(), StoreError> {
        let key = challenge.key();
        let mut g = self.lock();
        if g.challenges.contains_key(&key) {
            return Err(StoreError::invalid(format!("challenge {} exists already", challenge.id)));
        }
        g.challenges.insert(key, challenge.clone());
        Ok(())
    }

    async fn challenge(&self, key: &ChallengeKey) -> Result<Option<ScepChallenge>, StoreError> {
        Ok(self.lock().challenges.get(key).cloned())
    }

    async fn consume_challenge(&self, key: &ChallengeKey, now: SystemTime) -> Result<ChallengeUse, StoreError> {
        let mut g = self.lock();
        let stored = g.challenges.get_mut(key);
        let consumed = match stored {
            Some(c) if c.used_at.is_none() && c.expires > now => {
                c.used_at = Some(now);
                true
            }
            _ => false,
        };
        Ok(ChallengeUse::after_consume(consumed, g.challenges.get(key).cloned()))
    }

    async fn create_transaction(&self, tx: &ScepTransaction) -> Result<bool, StoreError> {
        let key = (tx.endpoint.clone(), tx.transaction_id.clone());
        let mut g = self.lock();
        if g.transactions.contains_key(&key) {
            return Ok(false);
        }
        g.transactions.insert(key, tx.clone());
        Ok(true)
    }

    async fn transaction(
        &self,
        endpoint: &ObjectRef,
        transaction_id: &str,
    ) -> Result<Option<ScepTransaction>, StoreError> {
        Ok(self.lock().transactions.get(&(endpoint.clone(), transaction_id.to_owned())).cloned())
    }

    async fn update_transaction(&self, tx: &ScepTransaction) -> Result<(), StoreError> {
        let key = (tx.endpoint.clone(), tx.transaction_id.clone());
        let mut g = self.lock();
        match g.transactions.get_mut(&key) {
            Some(stored) => {
                *stored = tx.clone();
                Ok(())
            }
            None => Err(StoreError::invalid(format!("no SCEP transaction {}", tx.transaction_id))),
        }
    }

    async fn pending_transactions(
        &self,
        endpoint: &ObjectRef,
        limit: usize,
    ) -> Result<Vec<ScepTransaction>, StoreError> {
        let g = self.lock();
        let mut v: Vec<_> = g
            .transactions
            .values()
            .filter(|t| &t.endpoint == endpoint && t.status == TransactionStatus::Pending)
            .cloned()
            .collect();
        v.sort_by_key(|t| t.created_at);
        v.truncate(limit);
        Ok(v)
    }

    async fn ra_material(&self, endpoint: &ObjectRef) -> Result<Option<RaMaterial>, StoreError> {
        Ok(self.lock().ra.get(endpoint).cloned())
    }

    async fn put_ra_material(&self, update: &RaUpdate) -> Result<RaMaterial, StoreError> {
        let mut g = self.lock();
        if update.replaces(g.ra.get(&update.endpoint)) {
            g.ra.insert(update.endpoint.clone(), update.material.clone());
        }
        Ok(g.ra.get(&update.endpoint).cloned().unwrap_or_else(|| update.material.clone()))
    }

    async fn purge_expired(&self, now: SystemTime, retention: Duration) -> Result<u64, StoreError> {
        let cutoff = now.checked_sub(retention).unwrap_or(SystemTime::UNIX_EPOCH);
        let mut g = self.lock();
        let before = g.messages.len() + g.challenges.len() + g.transactions.len();
        g.messages.retain(|_, exp| *exp > now);
        g.challenges.retain(|_, c| c.expires > cutoff);
        g.transactions.retain(|_, t| t.status == TransactionStatus::Pending || t.updated_at > cutoff);
        let after = g.messages.len() + g.challenges.len() + g.transactions.len();
        Ok((before - after) as u64)
    }
}
