//! CMP (RFC 9810) protocol state: transactions and the sender nonces seen, shared between
//! endpoint replicas.
//!
//! A CMP transaction is identified by the client's `transactionID` (RFC 9810 section
//! 5.1.1) within one endpoint. The store makes three things atomic, so any number of
//! replicas can serve one endpoint:
//!
//! * starting a transaction: [`CmpStore::create_transaction`] refuses a transactionID
//!   already in use (the server answers `transactionIdInUse`, which is also what a
//!   replayed first message gets);
//! * moving it on: [`CmpStore::update_transaction`] is compare-and-set on `version`, so
//!   a certConf and the confirmation timeout cannot both win;
//! * nonces: [`CmpStore::use_nonce`] inserts a senderNonce once; a second use is a replay.
//!
//! Certificates that wait for certConf are `issued` in the inventory (the core has no
//! "unconfirmed" status); the transaction records them, and a rejection or the
//! confirmation timeout revokes them. [`CmpStore::claim_expired`] hands each expired
//! transaction to exactly one caller.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use pkiplane_core::inventory::StoreError;
use pkiplane_core::inventory::opt_unix_seconds as opt_seconds;
use pkiplane_core::inventory::unix_seconds;
use pkiplane_core::model::ObjectRef;

pub mod memory;

/// What a transaction does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TransactionKind {
    /// ir, cr, kur or p10cr.
    Enrollment,
    /// rr.
    Revocation,
    /// genm.
    General,
}

/// Where a transaction stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TransactionState {
    /// Certificates were issued; the server waits for certConf until `deadline`.
    AwaitingConfirmation,
    /// The request waits (e.g. for approval); the client polls with pollReq.
    Polling,
    /// Finished: confirmed, implicitly confirmed, or a single-round-trip exchange.
    Complete,
    /// The client rejected its certificates (certConf with a rejection, or an error
    /// message); they were revoked.
    Rejected,
    /// certConf did not arrive by `deadline`; the certificates were revoked.
    Expired,
    /// The request failed; the transactionID stays used until the record is purged.
    Failed,
}

impl TransactionState {
    pub fn as_str(self) -> &'static str {
        match self {
            TransactionState::AwaitingConfirmation => "awaitingConfirmation",
            TransactionState::Polling => "polling",
            TransactionState::Complete => "complete",
            TransactionState::Rejected => "rejected",
            TransactionState::Expired => "expired",
            TransactionState::Failed => "failed",
        }
    }

    /// Whether the transaction still expects messages from the client.
    pub fn is_open(self) -> bool {
        matches!(self, TransactionState::AwaitingConfirmation | TransactionState::Polling)
    }
}

/// How the requester authenticated the transaction's first message; every later message
/// of the transaction must be protected by the same credential.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum CmpAuth {
    /// MAC-based protection with the shared secret named `kid` (the senderKID).
    Mac { kid: String },
    /// Signature-based protection with the certificate whose DER hashes (SHA-256) to
    /// `cert_sha256` (hex).
    Signature { cert_sha256: String },
}

/// A certificate issued in a transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransactionCert {
    /// The certReqId it answered (-1 for p10cr).
    pub cert_req_id: i64,
    pub issuer: ObjectRef,
    /// Lowercase hex, as the inventory keys it.
    pub serial: String,
    /// The certificate, to check the certHash of certConf (RFC 9810 section 5.3.18);
    /// empty when it was implicitly confirmed (no certConf is accepted for it).
    pub der: Vec<u8>,
    /// Confirmed by certConf (or implicitly).
    pub confirmed: bool,
}

/// One CMP transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CmpTransaction {
    pub endpoint: ObjectRef,
    /// The transactionID, lowercase hex.
    pub transaction_id: String,
    pub kind: TransactionKind,
    pub state: TransactionState,
    /// The authenticated requester identity (senderKID or signer subject).
    pub requester: String,
    pub auth: CmpAuth,
    /// The profile label the transaction runs under.
    pub profile_label: String,
    /// The protocol version the client speaks (2 or 3); responses use the same.
    pub pvno: u8,
    /// The senderNonce of the server's last message (hex): the client's next message
    /// must carry it as recipNonce.
    pub server_nonce: String,
    pub certificates: Vec<TransactionCert>,
    /// The request to retry while polling (the DER of the original PKIMessage).
    #[serde(default)]
    pub pending_request: Option<Vec<u8>>,
    /// When an open transaction expires (certConf wait or polling).
    #[serde(with = "opt_seconds", default)]
    pub deadline: Option<SystemTime>,
    #[serde(with = "unix_seconds")]
    pub created_at: SystemTime,
    #[serde(with = "unix_seconds")]
    pub updated_at: SystemTime,
    /// Incremented by every successful update.
    pub version: u64,
}

impl CmpTransaction {
    /// The transaction as [`CmpStore::claim_expired`] leaves it: `Expired` at `now` (the
    /// store bumps `version` as for any update).
    pub fn expired_at(&self, now: SystemTime) -> CmpTransaction {
        CmpTransaction { state: TransactionState::Expired, updated_at: now, ..self.clone() }
    }
}

/// What [`CmpStore::claim_expired`] takes: up to `limit` open transactions of `endpoint`
/// whose deadline is before `now`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpiryClaim {
    pub endpoint: ObjectRef,
    pub now: SystemTime,
    pub limit: usize,
}

impl ExpiryClaim {
    /// Whether `tx` is one the claim takes (the SQL stores say the same in SQL).
    pub fn takes(&self, tx: &CmpTransaction) -> bool {
        tx.endpoint == self.endpoint && tx.state.is_open() && tx.deadline.is_some_and(|d| d < self.now)
    }
}

/// What [`CmpStore::start_transaction`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TransactionStart {
    /// The transaction was created and its first senderNonce recorded.
    Started,
    /// The endpoint already has a transaction with this transactionID; nothing was
    /// written.
    TransactionIdInUse,
    /// The transaction was created, but its senderNonce had been seen before (a
    /// replayed message).
    NonceReused,
}

/// Shared CMP state. Every write is committed (visible to every replica) when it
/// returns, and durable, except [`Self::start_transaction`]'s (see there).
#[async_trait]
pub trait CmpStore: Send + Sync {
    /// Starts a transaction with its first message: [`Self::create_transaction`], then,
    /// when it was created, [`Self::use_nonce`] with that message's senderNonce. Stores
    /// that can make both one write do.
    ///
    /// The write is committed when this returns, but a store may leave it to its next
    /// durable write to make it survive a power loss (SQLite: committed without fsync,
    /// synced by the next synced commit, whose fsync covers every earlier commit;
    /// PostgreSQL: `synchronous_commit = off`, flushed with the next synced commit's
    /// WAL). The
    /// server answers a transaction-starting message only after a durable
    /// [`Self::update_transaction`] of its transaction (or another writer's durable
    /// update of it), which comes after this write; so whatever survives a power loss
    /// holds the transaction and senderNonce of every message that was answered (see
    /// `Exchange::begin`).
    async fn start_transaction(
        &self,
        tx: &CmpTransaction,
        nonce: &str,
        nonce_expires: SystemTime,
    ) -> Result<TransactionStart, StoreError> {
        if !self.create_transaction(tx).await? {
            return Ok(TransactionStart::TransactionIdInUse);
        }
        Ok(if self.use_nonce(&tx.endpoint, nonce, nonce_expires).await? {
            TransactionStart::Started
        } else {
            TransactionStart::NonceReused
        })
    }
    /// Records a new transaction; false (and nothing written) when the endpoint already
    /// has one with this transactionID.
    async fn create_transaction(&self, tx: &CmpTransaction) -> Result<bool, StoreError>;
    async fn transaction(
        &self,
        endpoint: &ObjectRef,
        transaction_id: &str,
    ) -> Result<Option<CmpTransaction>, StoreError>;
    /// Replaces the transaction if the stored version equals `tx.version`; the stored
    /// version becomes `tx.version + 1`. False when another writer got there first.
    async fn update_transaction(&self, tx: &CmpTransaction) -> Result<bool, StoreError>;
    /// Atomically moves up to `limit` open transactions of `endpoint` whose deadline is
    /// before `now` to `Expired` and returns them (as they were before), so exactly one
    /// caller cleans each up (revokes unconfirmed certificates).
    async fn claim_expired(&self, claim: &ExpiryClaim) -> Result<Vec<CmpTransaction>, StoreError>;
    /// Records a senderNonce of the endpoint; false when it was seen before (a replay).
    async fn use_nonce(&self, endpoint: &ObjectRef, nonce: &str, expires: SystemTime) -> Result<bool, StoreError>;
    /// Deletes nonces expired at `now` and closed transactions last updated more than
    /// `retention` before `now`; returns how many records went.
    async fn purge(&self, now: SystemTime, retention: Duration) -> Result<u64, StoreError>;
}
