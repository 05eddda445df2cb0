//! The CMP state store ([`CmpStore`]) on the same SQLite file as the inventory. Writes go
//! through the group-commit writer, so creating a transaction, a compare-and-set update,
//! claiming expired transactions and recording a nonce are each one atomic step, and
//! starting a transaction with its first nonce one step for both; conditional inserts
//! and version-guarded updates keep them safe against concurrent replicas.
//!
//! Durability: every write is synced before it returns except the start of a
//! transaction, which is committed with deferred durability (written to the WAL, not
//! fsynced; a process crash keeps it, a power loss may not). The server answers a
//! transaction-starting message only after a synced update of that transaction, whose
//! fsync covers the start too (see `CmpStore::start_transaction` and
//! `Exchange::begin`), so a power loss can only lose starts that were never answered:
//! a replay of such a message is a retransmission of an unanswered one. And since the
//! inventory shares this WAL, a certificate issued in that transaction cannot survive
//! without its start (the CA's synced "issued" commit comes after it). This takes one
//! fsync off each ir/cr/kur/p10cr/rr/genm.

mod ops;
pub(crate) mod schema;

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use pkiplane_cmp::state::{CmpStore, CmpTransaction, ExpiryClaim, TransactionStart};
use pkiplane_core::inventory::StoreError;
use pkiplane_core::model::ObjectRef;

use crate::SqliteStore;
use crate::writer::Durability;

#[async_trait]
impl CmpStore for SqliteStore {
    async fn start_transaction(
        &self,
        tx: &CmpTransaction,
        nonce: &str,
        nonce_expires: SystemTime,
    ) -> Result<TransactionStart, StoreError> {
        let (tx, nonce) = (tx.clone(), nonce.to_owned());
        // Not synced here: the transaction's synced outcome, written before the server
        // answers, makes it durable (module docs).
        self.write_with(Durability::Deferred, move |c| ops::start_transaction(c, &tx, &nonce, nonce_expires)).await
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
        self.read_by_key(move |c| ops::transaction(c, &e, &t)).await
    }

    async fn update_transaction(&self, tx: &CmpTransaction) -> Result<bool, StoreError> {
        let tx = tx.clone();
        self.write(move |c| ops::update_transaction(c, &tx)).await
    }

    async fn claim_expired(&self, claim: &ExpiryClaim) -> Result<Vec<CmpTransaction>, StoreError> {
        // Every endpoint sweeps every 30 s and there is mostly nothing to claim: a read
        // (an index range, no writer turn) says whether the write is needed. What
        // expires just after it is claimed by the next sweep.
        let probe = claim.clone();
        if !self.read_by_key(move |c| ops::any_expired(c, &probe)).await? {
            return Ok(Vec::new());
        }
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
