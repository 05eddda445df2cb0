//! Enrollment (RFC 8894 sections 3.3.1 and 3.3.3): PKCSReq, RenewalReq and CertPoll.
//!
//! SCEP maps its messages to an [`IssuanceRequest`] and the CA's outcome back; policy
//! (validity, extensions, algorithms) is decided by the core only:
//!
//! * PKCSReq is authenticated by its challengePassword ([`crate::challenge`]) and must be
//!   signed with the key it asks a certificate for. RFC 8894 section 2.3: a requester
//!   with no appropriate existing certificate MUST sign with a locally generated
//!   self-signed certificate, which SHOULD carry the subject name and key of the PKCS#10
//!   request. pkiplane makes the key a MUST: the message signature then proves
//!   possession of the key being certified, so a challengePassword authorises exactly
//!   that key and a captured request cannot be re-signed by someone else (the subject
//!   may differ; clients vary). The same holds for a resent request, which is answered
//!   from the stored transaction only when signed by its requester.
//! * RenewalReq is signed with the current certificate (RFC 8894 section 2.3: a
//!   requester with an appropriate existing certificate signs with it), which must be in the inventory
//!   (byte for byte), issued by this endpoint's Issuer, unrevoked and unexpired; the new
//!   request may name only that certificate's commonName and SANs, and the new
//!   certificate is linked to it (`renewal_of`).
//! * A profile that requires approval yields PENDING; the transaction is stored and the
//!   CA keeps the request as an approval record under the transaction's exchange key
//!   (`scep:<endpoint>:<transactionID>`). CertPoll (and a resend) of a pending
//!   transaction asks the CA about that record: PENDING while it waits, SUCCESS with the
//!   certificate once approved (the transaction then records it), FAILURE with failInfo
//!   badRequest once denied (the approver's reason is logged and audited).
//! * A resent request (same transactionID, same CSR, new senderNonce) is answered from
//!   the stored transaction instead of issuing twice.
//! * The stored transaction keeps the request without its challengePassword: no
//!   enrolment secret rests in the store.
//! * The transaction of an issued PKCSReq is the inventory's record of its certificate,
//!   which carries the exchange key (`scep:<endpoint>:<transactionID>`) and is durable
//!   before the answer: a resend or CertPoll of that transactionID signed with the
//!   requested key is answered from it, and a request of another key under that
//!   transactionID is refused. Storing the transaction besides would be a second
//!   durable write per enrollment repeating what the inventory holds. Pending, failed
//!   and RenewalReq transactions are stored: their answers need what the inventory does
//!   not hold (the request to approve, the failInfo, a resend signed with the renewed
//!   certificate rather than the requested key).

use std::time::SystemTime;

use crate::state::{ScepTransaction, TransactionStatus};
use der::Decode;
use pkiplane_core::inventory::{CertStatus, CertificateRecord};
use pkiplane_core::issuance::{IssuanceRequest, IssueOutcome, exchange_key};
use pkiplane_core::model::{Protocol, Requester};
use pkiplane_core::policy::RequestedValidity;
use pkiplane_core::x509::cert::CertInfo;
use pkiplane_core::x509::csr::{CsrError, CsrOptions, ParsedCsr, stored_request_key, without_challenge_password};
use pkiplane_core::x509::names::SubjectAttribute;

use crate::ScepState;
use crate::cms::incoming::Incoming;
use crate::cms::outgoing::degenerate;
use crate::error::ScepError;
use crate::message::{FailInfo, IssuerAndSubject, MessageType};
use crate::outcome::Outcome;

/// PKCSReq and RenewalReq: `content` is the decrypted PKCS#10 request.
pub async fn enroll(
    state: &ScepState,
    msg: &Incoming,
    content: &[u8],
    profile_label: Option<&str>,
) -> Result<Outcome, ScepError> {
    let config = state.config();
    let csr =
        ParsedCsr::from_der(content, CsrOptions { allow_sha1: config.legacy_algorithms }).map_err(|e| match e {
            CsrError::WeakSignatureAlgorithm(_) | CsrError::UnsupportedSignatureAlgorithm(_) => {
                ScepError::BadAlg(e.to_string())
            }
            other => ScepError::BadRequest(other.to_string()),
        })?;
    let exposed = config
        .profile(profile_label)
        .ok_or_else(|| ScepError::BadRequest(format!("no profile `{}` on this endpoint", profile_label.unwrap_or(""))))?
        .clone();

    if msg.message_type == MessageType::PkcsReq && msg.signer.spki_der != csr.spki_der {
        return Err(ScepError::BadRequest(
            "PKCSReq must be signed with a self-signed certificate of the requested key".into(),
        ));
    }
    let stored_csr = csr.without_challenge_password().map_err(|e| ScepError::BadRequest(e.to_string()))?;
    if let Some(tx) = state.store().transaction(&config.endpoint, &msg.transaction_id).await? {
        let same_request = without_challenge_password(&tx.csr_der).is_ok_and(|stored| stored == stored_csr);
        if !same_request {
            return Err(ScepError::BadRequest(format!(
                "transactionID {} belongs to another request",
                msg.transaction_id
            )));
        }
        // A resend is answered only to the requester of the transaction: the key of the
        // request, or the certificate a renewal was signed with.
        if !signed_by_requester(&tx, msg)? {
            return Err(ScepError::BadRequest(
                "a resent request must be signed by the requester of the transaction".into(),
            ));
        }
        tracing::info!(transaction = %msg.transaction_id, status = tx.status.as_str(), "SCEP request resent; answering from the transaction");
        return answer_from(state, &tx).await;
    }
    if msg.signer.spki_der == csr.spki_der {
        // Records without a certificate (pending, or abandoned by a crash before the
        // signature was stored) gave nobody anything: the request is issued anew.
        let signed: Vec<_> = exchange_records(state, msg).await?.into_iter().filter(|r| r.der.is_some()).collect();
        if let Some(record) = signed.iter().find(|r| r.status == CertStatus::Issued && certifies(r, &csr.spki_der)) {
            tracing::info!(transaction = %msg.transaction_id, serial = %record.serial, "SCEP request resent; answering with the certificate issued for it");
            return answer_with(record);
        }
        if let Some(record) = signed.first() {
            return Err(ScepError::BadRequest(format!(
                "transactionID {} already has certificate {} ({}); a new request needs a new transactionID",
                msg.transaction_id,
                record.serial,
                record.status.as_str()
            )));
        }
    }

    let now = state.now();
    let (requester, renewal_of) = match msg.message_type {
        MessageType::PkcsReq => {
            (crate::challenge::authenticate(config, state.store().as_ref(), &csr, now).await?, None)
        }
        _ => renewal_requester(state, msg, &csr, now).await?,
    };
    let profile = state.ca().profile(&exposed.profile);
    let same_issuer = |serial: String| {
        let old_issuer = renewal_issuer(state, msg);
        (profile.as_ref().map(|p| &p.issuer) == old_issuer.as_ref()).then_some(serial)
    };
    let renewal_of = renewal_of.and_then(same_issuer);
    let mut tx = ScepTransaction {
        endpoint: config.endpoint.clone(),
        transaction_id: msg.transaction_id.clone(),
        status: TransactionStatus::Pending,
        profile: exposed.profile.clone(),
        requester: requester.identity.clone(),
        csr_der: stored_csr,
        renewal_of: renewal_of.clone(),
        issuer: None,
        serial: None,
        fail_info: None,
        created_at: now,
        updated_at: now,
    };
    let req = IssuanceRequest {
        csr,
        profile: exposed.profile.clone(),
        requester,
        requested: RequestedValidity::default(),
        renewal_of,
        exchange: Some(exchange_key(Protocol::Scep, &config.endpoint, &msg.transaction_id)),
    };
    let result = state.ca().issue(req).await;
    match result {
        Ok(IssueOutcome::Issued(issued)) => {
            // A PKCSReq's transaction is the certificate's inventory record (see above).
            if msg.message_type != MessageType::PkcsReq {
                tx.status = TransactionStatus::Issued;
                tx.issuer = Some(issued.record.issuer.clone());
                tx.serial = Some(issued.record.serial.clone());
                state.store().create_transaction(&tx).await?;
            }
            tracing::info!(endpoint = %config.endpoint, transaction = %tx.transaction_id, serial = %issued.record.serial, requester = %tx.requester, "SCEP certificate issued");
            Ok(Outcome::Success(degenerate(&[issued.der], &[])?))
        }
        Ok(IssueOutcome::Pending(pending)) => {
            state.store().create_transaction(&tx).await?;
            tracing::info!(endpoint = %config.endpoint, transaction = %tx.transaction_id, profile = %pending.profile, request = %pending.request_id, "SCEP request pending approval");
            Ok(Outcome::Pending)
        }
        Ok(IssueOutcome::Denied(denied)) => {
            // A transaction whose stored state was lost, retried after its denial.
            tracing::warn!(endpoint = %config.endpoint, transaction = %tx.transaction_id, request = %denied.request_id, by = %denied.by, reason = %denied.reason, "SCEP request denied by an approver");
            tx.status = TransactionStatus::Failed;
            tx.fail_info = Some(FailInfo::BadRequest.code());
            state.store().create_transaction(&tx).await?;
            Err(ScepError::BadRequest(denied.to_string()))
        }
        Err(e) => {
            let rules: Vec<&str> = e.violations().iter().map(|v| v.rule.as_str()).collect();
            tracing::warn!(endpoint = %config.endpoint, transaction = %tx.transaction_id, rules = ?rules, error = %e, "SCEP request refused by the CA");
            let err = ScepError::from(e);
            if let Some(f) = err.fail_info() {
                tx.status = TransactionStatus::Failed;
                tx.fail_info = Some(f.code());
                state.store().create_transaction(&tx).await?;
            }
            Err(err)
        }
    }
}

/// The Issuer (by id) that signed the RenewalReq's signer certificate, if ours.
fn renewal_issuer(state: &ScepState, msg: &Incoming) -> Option<pkiplane_core::ObjectRef> {
    state.served_issuers().into_iter().find(|i| i.cert.subject == msg.signer.issuer).map(|i| i.id.clone())
}

/// Authenticates a RenewalReq by its signer certificate.
async fn renewal_requester(
    state: &ScepState,
    msg: &Incoming,
    csr: &ParsedCsr,
    now: SystemTime,
) -> Result<(Requester, Option<String>), ScepError> {
    let signer = &msg.signer;
    let issuer = renewal_issuer(state, msg)
        .ok_or_else(|| ScepError::BadCertId("the RenewalReq signer certificate was not issued by this CA".into()))?;
    let record = state
        .ca()
        .certificate(&issuer, &signer.serial_hex)
        .await?
        .filter(|r| r.der.as_deref() == Some(msg.signer_der.as_slice()))
        .ok_or_else(|| ScepError::BadCertId(format!("certificate {} is not in the inventory", signer.serial_hex)))?;
    match record.status {
        CertStatus::Issued if record.not_after > now => {}
        CertStatus::Issued => {
            return Err(ScepError::BadRequest(format!("certificate {} has expired; enrol anew", record.serial)));
        }
        CertStatus::Revoked => {
            return Err(ScepError::BadRequest(format!("certificate {} is revoked", record.serial)));
        }
        other => return Err(ScepError::BadCertId(format!("certificate {} is {}", record.serial, other.as_str()))),
    }
    let cn = |attrs: &[pkiplane_core::x509::names::NameAttribute]| -> Vec<String> {
        attrs.iter().filter(|a| a.attribute == Some(SubjectAttribute::CommonName)).map(|a| a.value.clone()).collect()
    };
    let old_cn = pkiplane_core::x509::names::name_attributes(&signer.subject).map(|a| cn(&a)).unwrap_or_default();
    let new_cn = cn(&csr.subject_attributes);
    if !new_cn.is_empty() && new_cn != old_cn {
        return Err(ScepError::BadRequest(format!(
            "a renewal keeps the identity: CN {new_cn:?} differs from the current certificate's {old_cn:?}"
        )));
    }
    if let Some(extra) = csr.sans.iter().map(ToString::to_string).find(|s| !record.sans.contains(s)) {
        return Err(ScepError::BadRequest(format!(
            "a renewal keeps the identity: SAN {extra} is not in the current certificate"
        )));
    }
    let requester = Requester::new(Protocol::Scep, format!("scep:renewal/{}", record.serial))
        .at_endpoint(state.config().endpoint.clone())
        .with_claim("renewedSerial", record.serial.clone());
    Ok((requester, Some(record.serial)))
}

/// CertPoll (GetCertInitial): `content` is an IssuerAndSubject.
pub async fn poll(state: &ScepState, msg: &Incoming, content: &[u8]) -> Result<Outcome, ScepError> {
    IssuerAndSubject::from_der(content)
        .map_err(|e| ScepError::BadRequest(format!("CertPoll content is not an IssuerAndSubject: {e}")))?;
    let Some(tx) = state.store().transaction(&state.config().endpoint, &msg.transaction_id).await? else {
        return answer_from(state, &recover_polled(state, msg).await?).await;
    };
    if !signed_by_requester(&tx, msg)? {
        return Err(ScepError::BadRequest("CertPoll must be signed by the requester of the transaction".into()));
    }
    answer_from(state, &tx).await
}

/// The certificates the inventory records for `msg`'s transactionID (its exchange).
async fn exchange_records(state: &ScepState, msg: &Incoming) -> Result<Vec<CertificateRecord>, ScepError> {
    let exchange = exchange_key(Protocol::Scep, &state.config().endpoint, &msg.transaction_id);
    Ok(state.ca().exchange_certificates(&exchange).await?)
}

/// Whether `record` certifies the public key `spki_der`.
fn certifies(record: &CertificateRecord, spki_der: &[u8]) -> bool {
    record.der.as_deref().and_then(|d| CertInfo::from_der(d).ok()).is_some_and(|c| c.spki_der == spki_der)
}

/// The SUCCESS reply delivering `record`'s certificate.
fn answer_with(record: &CertificateRecord) -> Result<Outcome, ScepError> {
    let der =
        record.der.clone().ok_or_else(|| ScepError::internal(format!("certificate {} has no DER", record.serial)))?;
    Ok(Outcome::Success(degenerate(&[der], &[])?))
}

/// CertPoll of a transactionID that has no stored transaction (an issued PKCSReq):
/// answered from the inventory when the poll is signed with the key of a certificate
/// issued for it.
async fn recover_polled(state: &ScepState, msg: &Incoming) -> Result<ScepTransaction, ScepError> {
    let record = exchange_records(state, msg)
        .await?
        .into_iter()
        .find(|r| r.status == CertStatus::Issued && certifies(r, &msg.signer.spki_der))
        .ok_or_else(|| ScepError::BadCertId(format!("no transaction {}", msg.transaction_id)))?;
    tracing::info!(transaction = %msg.transaction_id, serial = %record.serial, "SCEP CertPoll answered from the inventory's record of the transaction's certificate");
    Ok(ScepTransaction {
        endpoint: state.config().endpoint.clone(),
        transaction_id: msg.transaction_id.clone(),
        status: TransactionStatus::Issued,
        profile: record.profile.clone(),
        requester: record.requester.clone(),
        csr_der: Vec::new(),
        renewal_of: record.renewed_from.clone(),
        issuer: Some(record.issuer.clone()),
        serial: Some(record.serial.clone()),
        fail_info: None,
        created_at: record.created_at,
        updated_at: state.now(),
    })
}

/// Whether `msg` comes from the requester of `tx`: signed with the key of its request, or
/// (a RenewalReq transaction) with the certificate the renewal was signed with.
fn signed_by_requester(tx: &ScepTransaction, msg: &Incoming) -> Result<bool, ScepError> {
    let key = stored_request_key(&tx.csr_der).map_err(|e| ScepError::internal(format!("stored CSR: {e}")))?;
    Ok(key == msg.signer.spki_der || tx.renewal_of.as_deref() == Some(msg.signer.serial_hex.as_str()))
}

/// The reply a stored transaction calls for.
async fn answer_from(state: &ScepState, tx: &ScepTransaction) -> Result<Outcome, ScepError> {
    match tx.status {
        TransactionStatus::Pending => crate::approval::answer_pending(state, tx).await,
        TransactionStatus::Failed => {
            let f = tx.fail_info.and_then(FailInfo::from_code).unwrap_or(FailInfo::BadRequest);
            Err(match f {
                FailInfo::BadAlg => ScepError::BadAlg("transaction failed".into()),
                FailInfo::BadMessageCheck => ScepError::BadMessageCheck("transaction failed".into()),
                FailInfo::BadTime => ScepError::BadTime("transaction failed".into()),
                FailInfo::BadCertId => ScepError::BadCertId("transaction failed".into()),
                FailInfo::BadRequest => ScepError::BadRequest(format!("transaction {} was refused", tx.transaction_id)),
            })
        }
        TransactionStatus::Issued => {
            let (Some(issuer), Some(serial)) = (&tx.issuer, &tx.serial) else {
                return Err(ScepError::internal(format!("transaction {} has no certificate", tx.transaction_id)));
            };
            let der = state
                .ca()
                .certificate(issuer, serial)
                .await?
                .and_then(|r| r.der)
                .ok_or_else(|| ScepError::BadCertId(format!("certificate {serial} is not in the inventory")))?;
            Ok(Outcome::Success(degenerate(&[der], &[])?))
        }
    }
}
