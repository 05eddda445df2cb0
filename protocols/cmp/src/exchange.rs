//! One CMP exchange as the body handlers (enroll, confirm, poll, revoke, genm) see it:
//! the request, its authentication and transaction, and the transaction rules they share.
//! `server` builds it and dispatches to the handlers; the handlers depend on this module,
//! not on `server`.

use std::time::SystemTime;

use pkiplane_core::issuance::exchange_key;
use pkiplane_core::model::Protocol;

use crate::CmpState;
use crate::auth::{self, Auth};
use crate::error::CmpError;
use crate::settings::ExposedProfile;
use crate::state::{CmpTransaction, TransactionKind, TransactionStart, TransactionState};
use crate::wire::message::Incoming;
use crate::wire::{FailBit, FailInfo};

/// Everything a body handler needs about the exchange.
pub struct Exchange<'a> {
    pub state: &'a CmpState,
    pub msg: &'a Incoming,
    /// The whole request, DER (kept for polling).
    pub der: &'a [u8],
    pub profile: &'a ExposedProfile,
    /// The label was named in the path (not the default profile).
    pub explicit_label: bool,
    pub auth: &'a Auth,
    pub now: SystemTime,
    /// The transactionID, hex.
    pub tid: String,
    /// The senderNonce the response will carry.
    pub server_nonce: Vec<u8>,
}

impl Exchange<'_> {
    /// A new transaction record for this exchange.
    pub fn transaction(&self, kind: TransactionKind, state: TransactionState) -> CmpTransaction {
        CmpTransaction {
            endpoint: self.state.config().endpoint.clone(),
            transaction_id: self.tid.clone(),
            kind,
            state,
            requester: self.auth.identity(),
            auth: self.auth.record(),
            profile_label: self.profile.label.clone(),
            pvno: self.msg.header.pvno,
            server_nonce: hex::encode(&self.server_nonce),
            certificates: Vec::new(),
            pending_request: None,
            deadline: None,
            created_at: self.now,
            updated_at: self.now,
            version: 0,
        }
    }

    /// Records the start of a transaction and its first senderNonce, in one durable
    /// write where the store allows it: a transactionID in use is refused
    /// (`transactionIdInUse`, also what a replayed first message gets, so the
    /// transactionID is claimed before the nonce), then a senderNonce seen before
    /// (`badSenderNonce`).
    ///
    /// An enrollment starts open, awaiting confirmation until confirmWaitTime: if the
    /// process dies after the CA has issued and before the outcome is saved, the
    /// transaction expires like any unconfirmed one and the expiry sweep revokes the
    /// certificates the inventory records for this exchange (see [`Self::exchange`]).
    /// Other transactions count as failed until their outcome is recorded.
    ///
    /// Durability: the store may commit this write without syncing it (see
    /// [`crate::state::CmpStore::start_transaction`]). That is safe because no answer
    /// leaves before a synced update of the same transaction, which covers it: the
    /// handlers save the outcome (synced) before they answer, a handler's error is
    /// answered after [`Self::settle`] (which answers even if the store fails: see
    /// there), and a reused nonce after the record is closed below. So a power loss can only take transactions whose message was never
    /// answered; a client (or an attacker replaying a captured message within the
    /// messageTime window) sending such a message again finds its transactionID and
    /// senderNonce unused, exactly as if the first copy had been lost on the way, and
    /// nothing the CA issued for the lost copy survives either (its "issued" record is
    /// a synced commit after this one: had it survived, so would this). Losing an
    /// answered start instead would let a replay of that message run as new, so the
    /// rule above is what keeps replay protection across power loss.
    pub async fn begin(&self, kind: TransactionKind) -> Result<CmpTransaction, CmpError> {
        let tx = if kind == TransactionKind::Enrollment {
            let mut tx = self.transaction(kind, TransactionState::AwaitingConfirmation);
            tx.deadline = Some(self.now + self.state.config().confirm_wait);
            tx
        } else {
            self.transaction(kind, TransactionState::Failed)
        };
        let (nonce, expires) = self.nonce_record();
        match self.state.store().start_transaction(&tx, &nonce, expires).await {
            Ok(TransactionStart::Started) => Ok(tx),
            Ok(TransactionStart::TransactionIdInUse) => Err(CmpError::new(
                FailBit::TransactionIdInUse,
                "the transactionID is already in use: start a new transaction with a fresh transactionID",
            )),
            Ok(TransactionStart::NonceReused) => {
                // The transaction was created: close it, durably, before answering.
                let mut closed = CmpTransaction { state: TransactionState::Failed, deadline: None, ..tx };
                self.save(&mut closed).await?;
                Err(nonce_reused())
            }
            Err(e) => Err(CmpError::store(&e)),
        }
    }

    /// Before a failed transaction-starting message is answered: makes its start record
    /// durable by storing it again as [`Self::begin`] returned it (synced), unless the
    /// handler already stored something newer (also synced). An enrollment stays open
    /// until its deadline, so certificates the CA issued before the failure are revoked
    /// by the expiry sweep as unanswered.
    ///
    /// If this store fails too, the error answer still goes out (it carries no
    /// certificate) and the start may stay unsynced: only a power loss right after
    /// would then lose it, re-opening its transactionID and senderNonce to a replay
    /// that would meet the same failure or issue afresh under policy.
    pub async fn settle(&self, mut started: CmpTransaction) {
        if let Err(e) = self.save(&mut started).await {
            tracing::warn!(transaction = %self.tid, error = %e, "storing a failed CMP transaction failed");
        }
    }

    /// Records the senderNonce of a message that continues a transaction; one seen
    /// before is a replay (`badSenderNonce`).
    pub async fn use_nonce(&self) -> Result<(), CmpError> {
        let (nonce, expires) = self.nonce_record();
        let fresh = self
            .state
            .store()
            .use_nonce(&self.state.config().endpoint, &nonce, expires)
            .await
            .map_err(|e| CmpError::store(&e))?;
        if fresh { Ok(()) } else { Err(nonce_reused()) }
    }

    /// The request's senderNonce (hex) and until when it is remembered.
    fn nonce_record(&self) -> (String, SystemTime) {
        let nonce = hex::encode(self.msg.header.sender_nonce.as_deref().unwrap_or_default());
        (nonce, self.now + self.state.config().max_clock_skew * 2)
    }

    /// Stores the transaction's new state (compare-and-set); false when another message
    /// of the transaction got there first.
    pub async fn save(&self, tx: &mut CmpTransaction) -> Result<bool, CmpError> {
        tx.updated_at = self.now;
        tx.server_nonce = hex::encode(&self.server_nonce);
        let ok = self.state.store().update_transaction(tx).await.map_err(|e| CmpError::store(&e))?;
        if ok {
            tx.version += 1;
        }
        Ok(ok)
    }

    /// The open transaction a follow-up message (certConf, pollReq, error) belongs to.
    pub async fn follow_up(&self) -> Result<CmpTransaction, CmpError> {
        let tx = self
            .state
            .store()
            .transaction(&self.state.config().endpoint, &self.tid)
            .await
            .map_err(|e| CmpError::store(&e))?
            .ok_or_else(|| CmpError::bad_request("no transaction with this transactionID"))?;
        if !auth::same_credential(self.auth, &tx.auth) {
            return Err(CmpError::not_authorized(
                "the message is not protected with the credential that started the transaction",
            ));
        }
        let recip = self.msg.header.recip_nonce.as_deref().map(hex::encode);
        if recip.as_deref() != Some(tx.server_nonce.as_str()) {
            return Err(CmpError::new(
                FailBit::BadRecipientNonce,
                "recipNonce is not the senderNonce of the server's last message in this transaction",
            ));
        }
        Ok(tx)
    }

    /// The key the inventory records this exchange's certificates under.
    pub fn exchange(&self) -> String {
        exchange_key(Protocol::Cmp, &self.state.config().endpoint, &self.tid)
    }

    /// The Issuer behind the exchange's profile.
    pub fn issuer(&self) -> Option<std::sync::Arc<pkiplane_core::issuer::IssuerInfo>> {
        self.state.issuer_of(&self.profile.label)
    }
}

fn nonce_reused() -> CmpError {
    CmpError::new(FailBit::BadSenderNonce, "this senderNonce was used before (replayed message)")
}

/// The union of failure bits, for logs.
pub fn describe(fail: FailInfo) -> String {
    fail.names().join(",")
}
