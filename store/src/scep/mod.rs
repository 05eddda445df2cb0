//! The SCEP state store ([`ScepStore`]) on the same SQLite file as the inventory. Writes
//! go through the group-commit writer, so a replay record, a challenge consumption or a
//! transaction is one atomic step, durable before the caller is answered (the replay
//! record: with the next synced commit, see [`ScepStore::record_message`] below);
//! conditional inserts and updates make the consume-once operations safe against
//! concurrent replicas.

mod ops;
pub(crate) mod schema;

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use pkiplane_core::inventory::StoreError;
use pkiplane_core::model::ObjectRef;
use pkiplane_scep::state::{
    ChallengeKey, ChallengeUse, RaMaterial, RaUpdate, ScepChallenge, ScepStore, ScepTransaction, SeenMessage,
};

use crate::SqliteStore;
use crate::writer::Durability;

#[async_trait]
impl ScepStore for SqliteStore {
    async fn record_message(&self, seen: &SeenMessage) -> Result<bool, StoreError> {
        let (e, t, n, expires) =
            (seen.endpoint.to_string(), seen.transaction_id.clone(), seen.sender_nonce.clone(), seen.expires);
        // Committed before the request goes on (so a replay is refused by every reader
        // of this database from then on), but not fsynced: a power failure can lose the
        // record only while no synced commit followed it. Every answer that changed
        // anything is preceded by one (the certificate's "issued" write, a transaction,
        // a consumed one-time challenge), whose fsync makes this record durable too;
        // the answers that changed nothing (a refusal before issuance, GetCert, GetCRL,
        // CertPoll) would be the same for a replay after the failure, encrypted to the
        // same requester and within the same signingTime window. So the loss is
        // harmless, and a PKCSReq costs one fsync instead of two.
        self.write_with(Durability::Deferred, move |c| ops::record_message(c, &e, &t, &n, expires)).await
    }

    async fn add_challenge(&self, challenge: &ScepChallenge) -> Result<(), StoreError> {
        let ch = challenge.clone();
        self.write(move |c| ops::add_challenge(c, &ch)).await
    }

    async fn challenge(&self, key: &ChallengeKey) -> Result<Option<ScepChallenge>, StoreError> {
        let key = key.clone();
        self.read_by_key(move |c| ops::challenge(c, &key)).await
    }

    async fn consume_challenge(&self, key: &ChallengeKey, now: SystemTime) -> Result<ChallengeUse, StoreError> {
        let key = key.clone();
        self.write(move |c| ops::consume_challenge(c, &key, now)).await
    }

    async fn create_transaction(&self, tx: &ScepTransaction) -> Result<bool, StoreError> {
        let tx = tx.clone();
        self.write(move |c| ops::create_transaction(c, &tx)).await
    }

    async fn transaction(
        &self,
        endpoint: &ObjectRef,
        transaction_id: &str,
    ) -> Result<Option<ScepTransaction>, StoreError> {
        let (e, t) = (endpoint.to_string(), transaction_id.to_owned());
        self.read_by_key(move |c| ops::transaction(c, &e, &t)).await
    }

    async fn update_transaction(&self, tx: &ScepTransaction) -> Result<(), StoreError> {
        let tx = tx.clone();
        self.write(move |c| ops::update_transaction(c, &tx)).await
    }

    async fn pending_transactions(
        &self,
        endpoint: &ObjectRef,
        limit: usize,
    ) -> Result<Vec<ScepTransaction>, StoreError> {
        let e = endpoint.to_string();
        self.read(move |c| ops::pending_transactions(c, &e, limit)).await
    }

    async fn ra_material(&self, endpoint: &ObjectRef) -> Result<Option<RaMaterial>, StoreError> {
        let e = endpoint.to_string();
        let stored = self.read_by_key(move |c| ops::ra_material(c, &e)).await?;
        stored.map(|m| self.open_ra(endpoint, m)).transpose()
    }

    async fn put_ra_material(&self, update: &RaUpdate) -> Result<RaMaterial, StoreError> {
        let sealed = RaUpdate { material: self.seal_ra(&update.endpoint, &update.material)?, ..update.clone() };
        let now = SystemTime::now();
        let stored = self.write(move |c| ops::put_ra_material(c, &sealed, now)).await?;
        self.open_ra(&update.endpoint, stored)
    }

    async fn purge_expired(&self, now: SystemTime, retention: Duration) -> Result<u64, StoreError> {
        let cutoff = now.checked_sub(retention).unwrap_or(SystemTime::UNIX_EPOCH);
        self.write(move |c| ops::purge_expired(c, now, cutoff)).await
    }
}
