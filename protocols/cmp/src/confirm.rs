//! Certificate confirmation (RFC 9810 section 5.3.18, RFC 9483 section 4.1.1):
//!
//! ```text
//! CertConfirmContent ::= SEQUENCE OF CertStatus
//! ```
//!
//! certConf -> pkiConf. Each CertStatus names a certificate by certReqId and certHash
//! (the certificate's hash with the digest of its signature algorithm, or hashAlg).
//! An accepted certificate is confirmed; one the client rejects (statusInfo rejection),
//! or does not mention, is revoked. When certConf does not arrive by confirmWaitTime
//! the certificates are revoked by [`sweep_expired`]. An error message from the client
//! ends the transaction the same way and is answered with pkiConf.
//!
//! How this fits the core's inventory: issuance is durable before ip leaves (the record
//! is `issued`), so an unconfirmed certificate is an issued one that the CMP
//! transaction marks unconfirmed. Rejection and timeout revoke it with reason
//! cessationOfOperation (RFC 5280 section 5.3.1: it is no longer needed for the purpose
//! it was issued for; the subscriber never took it into use), so it appears on the
//! Issuer's next CRL.

use std::time::SystemTime;

use crate::state::{CmpTransaction, ExpiryClaim, TransactionCert, TransactionState};
use cmpv2::status::PkiStatus;
use pkiplane_core::inventory::{CertStatus, RevocationReason, RevokeOutcome};
use pkiplane_core::issuance::{RevocationRequest, exchange_key};
use pkiplane_core::model::{Protocol, Requester};
use subtle::ConstantTimeEq;

use crate::CmpState;
use crate::error::CmpError;
use crate::exchange::Exchange;
use crate::protection::sig;
use crate::respond::Reply;
use crate::wire::FailBit;
use crate::wire::body::{CertStatusIn, ResponseBody};
use crate::wire::status::ErrorMsg;

/// The reason certificates that were not accepted are revoked with.
pub const UNCONFIRMED_REASON: RevocationReason = RevocationReason::CessationOfOperation;

/// Revokes the unconfirmed certificates of a transaction.
pub async fn revoke_unconfirmed(state: &CmpState, tx: &CmpTransaction, why: &str) {
    let requester = Requester::new(Protocol::Cmp, format!("cmp-transaction/{}", tx.transaction_id))
        .at_endpoint(state.config().endpoint.clone());
    for c in tx.certificates.iter().filter(|c| !c.confirmed) {
        match state.ca().revoke(RevocationRequest::new(&c.issuer, &c.serial, UNCONFIRMED_REASON, &requester)).await {
            Ok(RevokeOutcome::Revoked) => {
                tracing::info!(serial = %c.serial, issuer = %c.issuer, transaction = %tx.transaction_id, why, "revoked an unconfirmed CMP certificate")
            }
            Ok(other) => {
                tracing::info!(serial = %c.serial, outcome = ?other, "unconfirmed CMP certificate not revoked")
            }
            Err(e) => tracing::warn!(serial = %c.serial, error = %e, "revoking an unconfirmed CMP certificate failed"),
        }
    }
    state.invalidate_crls();
}

/// Revokes the certificates the inventory records for the transaction's exchange that
/// the transaction itself does not list: issued, but the process ended before the
/// transaction recorded them, so their client never received them. `tx` must be the
/// whole transaction as stored.
pub async fn revoke_unrecorded(state: &CmpState, tx: &CmpTransaction) {
    let exchange = exchange_key(Protocol::Cmp, &tx.endpoint, &tx.transaction_id);
    let records = match state.ca().exchange_certificates(&exchange).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(transaction = %tx.transaction_id, error = %e, "looking up the certificates of a CMP transaction failed");
            return;
        }
    };
    let unrecorded: Vec<TransactionCert> = records
        .into_iter()
        .filter(|r| r.status == CertStatus::Issued && !tx.certificates.iter().any(|c| c.serial == r.serial))
        .map(|r| TransactionCert {
            cert_req_id: -1,
            issuer: r.issuer,
            serial: r.serial,
            der: r.der.unwrap_or_default(),
            confirmed: false,
        })
        .collect();
    if !unrecorded.is_empty() {
        let orphans = CmpTransaction { certificates: unrecorded, ..tx.clone() };
        revoke_unconfirmed(state, &orphans, "issued but never answered (the server stopped before it replied)").await;
    }
}

fn pki_conf() -> Reply {
    Reply::new(ResponseBody::PkiConf)
}

/// Whether `status` carries the hash of `der`.
fn hash_matches(status: &CertStatusIn, der: &[u8]) -> Result<bool, CmpError> {
    let alg = match &status.hash_alg {
        Some(a) => sig::digest_by_oid(&a.oid)
            .ok_or_else(|| CmpError::bad_alg(format!("certConf hashAlg {} is not supported", a.oid)))?,
        None => {
            let cert: x509_cert02::Certificate = crate::convert::old_from_der("certificate", der)?;
            sig::cert_hash_algorithm(&cert.signature_algorithm.oid)
        }
    };
    let hash = ring::digest::digest(alg, der);
    Ok(bool::from(hash.as_ref().ct_eq(status.cert_hash.as_bytes())))
}

/// certConf.
pub async fn cert_conf(ex: &Exchange<'_>, statuses: Vec<CertStatusIn>) -> Result<Reply, CmpError> {
    let mut tx = ex.follow_up().await?;
    match tx.state {
        TransactionState::AwaitingConfirmation | TransactionState::Polling => {}
        TransactionState::Complete if tx.certificates.iter().all(|c| c.confirmed) => {
            return Err(CmpError::new(
                FailBit::CertConfirmed,
                "the certificates of this transaction are confirmed already",
            ));
        }
        TransactionState::Expired => {
            return Err(CmpError::new(
                FailBit::CertRevoked,
                "certConf came after confirmWaitTime; the certificates were revoked",
            ));
        }
        other => {
            return Err(CmpError::bad_request(format!(
                "the transaction is {}, not waiting for certConf",
                other.as_str()
            )));
        }
    }
    if tx.deadline.is_some_and(|d| d < ex.now) && tx.state == TransactionState::AwaitingConfirmation {
        let before = tx.clone();
        tx.state = TransactionState::Expired;
        if ex.save(&mut tx).await? {
            revoke_unconfirmed(ex.state, &before, "certConf after confirmWaitTime").await;
            revoke_unrecorded(ex.state, &before).await;
        }
        return Err(CmpError::new(
            FailBit::CertRevoked,
            "certConf came after confirmWaitTime; the certificates were revoked",
        ));
    }
    let mut accepted = 0;
    let mut seen = Vec::new();
    for s in &statuses {
        let Some(idx) = tx.certificates.iter().position(|c| c.cert_req_id == s.cert_req_id) else {
            return Err(CmpError::new(
                FailBit::BadCertId,
                format!("certConf names certReqId {}, which this transaction did not issue", s.cert_req_id),
            ));
        };
        if !hash_matches(s, &tx.certificates[idx].der)? {
            return Err(CmpError::new(
                FailBit::BadCertId,
                format!("the certHash for certReqId {} does not match the issued certificate", s.cert_req_id),
            ));
        }
        let rejected = s.status_info.as_ref().is_some_and(|i| i.status == PkiStatus::Rejection);
        if !rejected {
            tx.certificates[idx].confirmed = true;
            accepted += 1;
        }
        seen.push(idx);
    }
    let before = tx.clone();
    tx.state = if accepted > 0 { TransactionState::Complete } else { TransactionState::Rejected };
    tx.deadline = None;
    tx.pending_request = None;
    if !ex.save(&mut tx).await? {
        return Err(CmpError::bad_request("the transaction changed meanwhile (confirmed, rejected or expired)"));
    }
    // What the client rejected or did not mention is revoked.
    let mut rejected = before.clone();
    rejected.certificates.retain(|c| !tx.certificates.iter().any(|t| t.serial == c.serial && t.confirmed));
    if !rejected.certificates.is_empty() {
        revoke_unconfirmed(ex.state, &rejected, "rejected in certConf").await;
    }
    Ok(pki_conf())
}

/// An error message from the client ends its transaction.
pub async fn client_error(ex: &Exchange<'_>, e: ErrorMsg) -> Result<Reply, CmpError> {
    let mut tx = ex.follow_up().await?;
    tracing::info!(
        transaction = %ex.tid,
        fail = %crate::exchange::describe(e.status_info.fail()),
        text = ?e.status_info.status_string,
        "the CMP client ended the transaction with an error"
    );
    if tx.state.is_open() {
        let before = tx.clone();
        tx.state = TransactionState::Rejected;
        tx.deadline = None;
        if ex.save(&mut tx).await? {
            revoke_unconfirmed(ex.state, &before, "the client sent an error message").await;
            revoke_unrecorded(ex.state, &before).await;
        }
    }
    Ok(pki_conf())
}

/// Revokes the certificates of transactions whose certConf did not come by their
/// deadline (and closes polling transactions past theirs).
pub async fn sweep_expired(state: &CmpState, now: SystemTime) {
    let claim = ExpiryClaim { endpoint: state.config().endpoint.clone(), now, limit: 100 };
    loop {
        let claimed = match state.store().claim_expired(&claim).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "claiming expired CMP transactions failed");
                return;
            }
        };
        let n = claimed.len();
        for tx in &claimed {
            revoke_unconfirmed(state, tx, "no certConf within confirmWaitTime").await;
            revoke_unrecorded(state, tx).await;
        }
        if n < 100 {
            return;
        }
    }
}
