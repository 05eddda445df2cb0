//! The CMP state store ([`CmpStore`]) on the same SQLite file as the inventory. Writes go
//! through the group-commit writer, so creating a transaction, a compare-and-set update,
//! claiming expired transactions and recording a nonce are each one atomic, durable
//! step (and starting a transaction with its first nonce one step for both); conditional inserts and version-guarded updates keep them safe against
//! concurrent replicas.

mod ops;
pub(crate) mod schema;

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use pkiplane_cmp::state::{CmpStore, CmpTransaction, ExpiryClaim, TransactionStart};
use pkiplane_core::inventory::StoreError;
use pkiplane_core::model::ObjectRef;

use crate::SqliteStore;

#[async_trait]
impl CmpStore for SqliteStore {
    async fn start_transaction(
        &self,
        tx: &CmpTransaction,
        nonce: &str,
        nonce_expires: SystemTime,
    ) -> Result<TransactionStart, StoreError> {
        let (tx, nonce) = (tx.clone(), nonce.to_owned());
        self.write(move |c| ops::start_transaction(c, &tx, &nonce, nonce_expires)).await
    }

    async fn create_transaction(&self, tx: &CmpTransaction) -> Result<bool, StoreError> {
        let tx = tx.clone();
        self.write(move |c| ops::create_transaction(c, &tx)).await
    }

    async fn transaction(
        &self,
        endpoint: &ObjectRef,
        transaction_id: &str,
    ) -> Result<Option<CmpTransaction>, StoreError> {
        let (e, t) = (endpoint.to_string(), transaction_id.to_owned());
        self.read(move |c| ops::transaction(c, &e, &t)).await
    }

    async fn update_transaction(&self, tx: &CmpTransaction) -> Result<bool, StoreError> {
        let tx = tx.clone();
        self.write(move |c| ops::update_transaction(c, &tx)).await
    }

    async fn claim_expired(&self, claim: &ExpiryClaim) -> Result<Vec<CmpTransaction>, StoreError> {
        let claim = claim.clone();
        self.write(move |c| ops::claim_expired(c, &claim)).await
    }

    async fn use_nonce(&self, endpoint: &ObjectRef, nonce: &str, expires: SystemTime) -> Result<bool, StoreError> {
        let (e, n) = (endpoint.to_string(), nonce.to_owned());
        self.write(move |c| ops::use_nonce(c, &e, &n, expires)).await
    }

    async fn purge(&self, now: SystemTime, retention: Duration) -> Result<u64, StoreError> {
        self.write(move |c| ops::purge(c, now, retention)).await
    }
}
