//! Enrollment: ir, cr, kur (RFC 9810 sections 5.3.1-5.3.6, RFC 9483 section 4.1) and
//! p10cr (RFC 9810 section 5.3.4), answered with ip, cp or kup.
//!
//! Each CertReqMsg is checked (template fields the CA sets, issuer, proof of
//! possession, for kur the oldCertID) and turned into the core's request; the CA core
//! decides. A refused request is answered in its CertResponse with status rejection and
//! the failure bits; a request waiting for approval with status waiting (the client
//! polls). An accepted certificate is `grantedWithMods` when the policy changed
//! something, with the policy's notes as statusString.
//!
//! Confirmation (RFC 9810 section 5.3.18): implicitConfirm is granted when the client
//! asks and the endpoint allows it; otherwise the transaction waits for certConf until
//! confirmWaitTime, which the response header announces.

use cmpv2::certified_key_pair::{CertOrEncCert, CertifiedKeyPair};
use cmpv2::r#gen::InfoTypeAndValue;
use cmpv2::status::PkiStatus;

use crate::state::{CmpTransaction, TransactionCert, TransactionState};
use der::asn1::{Any, GeneralizedTime};
use pkiplane_core::CoreError;
use pkiplane_core::issuance::{IssuanceRequest, IssueOutcome, Issued};
use pkiplane_core::policy::RequestedValidity;
use pkiplane_core::x509::csr::{CsrOptions, ParsedCsr};
use pkiplane_core::x509::names::format_dn;

use crate::convert::{self, old_from_der};
use crate::error::CmpError;
use crate::exchange::Exchange;
use crate::respond::Reply;
use crate::settings::ExposedProfile;
use crate::template;
use crate::wire::body::{CertRepMessage, CertReqItem, CertResponse, MAX_REQUESTS, ResponseBody};
use crate::wire::status::StatusInfo;
use crate::wire::{FailBit, oids, tag};

/// What became of one request.
pub enum Outcome {
    Issued(Box<Issued>),
    Waiting,
    Rejected(CmpError),
}

/// The profile a request runs under: the path's; for kur on the default path, the
/// profile of the certificate being updated when this endpoint exposes it.
fn profile_for<'a>(ex: &'a Exchange<'_>, body_tag: u8) -> &'a ExposedProfile {
    if body_tag == tag::KUR && !ex.explicit_label {
        let old = ex.auth.signer().and_then(|s| s.own.as_ref()).map(|r| &r.profile);
        if let Some(p) = old.and_then(|old| ex.state.config().profiles.iter().find(|p| &p.profile == old)) {
            return p;
        }
    }
    ex.profile
}

/// Checks the oldCertID control of a kur against the signer (RFC 4211 section 6.5,
/// RFC 9483 section 4.1.3); returns the serial of the certificate being updated.
fn old_cert(ex: &Exchange<'_>, item: &CertReqItem) -> Result<String, CmpError> {
    let Some(signer) = ex.auth.signer().filter(|s| s.own.is_some()) else {
        return Err(CmpError::not_authorized(
            "kur must be signed with the certificate to be updated, which this CA issued",
        ));
    };
    let control = item
        .request
        .controls
        .iter()
        .flatten()
        .find(|c| c.oid == oids::REG_CTRL_OLD_CERT_ID)
        .ok_or_else(|| CmpError::new(FailBit::BadCertId, "kur must name the certificate to update (oldCertID)"))?;
    let id: crmf::controls::CertId = old_from_der("oldCertID", &der::Encode::to_der(&control.value)?)?;
    let issuer = convert::general_name_dn(&id.issuer);
    let serial = hex::encode(pkiplane_core::x509::cert::strip_sign(id.serial_number.as_bytes()));
    if issuer.as_ref() != Some(&signer.cert.issuer) || serial != signer.cert.serial_hex {
        return Err(CmpError::new(
            FailBit::BadCertId,
            format!(
                "oldCertID names serial {serial} of `{}`, not the certificate that signed the request ({} of `{}`)",
                issuer.as_ref().map(format_dn).unwrap_or_default(),
                signer.cert.serial_hex,
                format_dn(&signer.cert.issuer)
            ),
        ));
    }
    Ok(serial)
}

/// Checks one CRMF request and builds the core's request.
fn crmf_request(
    ex: &Exchange<'_>,
    body_tag: u8,
    item: &CertReqItem,
    profile: &ExposedProfile,
) -> Result<IssuanceRequest, CmpError> {
    let t = &item.request.cert_template;
    let issuer = ex
        .state
        .issuer_of(&profile.label)
        .ok_or_else(|| CmpError::system_unavail(format!("the issuer of profile {} is not loaded", profile.profile)))?;
    template::check_fields(t, &issuer.cert.subject)?;
    let spki_der = template::public_key_der(t)?;
    crate::pop::verify(item, &spki_der, ex.auth.is_ra())?;
    let renewal_of = if body_tag == tag::KUR { Some(old_cert(ex, item)?) } else { None };
    let pop_alg = match &item.popo {
        Some(crmf::pop::ProofOfPossession::Signature(pk)) => template::new_oid(&pk.alg_id.oid),
        _ => template::new_oid(&oids::KP_CMC_RA),
    };
    let csr = template::to_request(t, &item.cert_req_der, pop_alg)?;
    Ok(IssuanceRequest {
        csr,
        profile: profile.profile.clone(),
        requester: ex.auth.requester(ex.state),
        requested: template::requested_validity(t),
        renewal_of,
        exchange: Some(ex.exchange()),
    })
}

/// Issues, mapping the core's answer.
pub async fn issue(ex: &Exchange<'_>, req: Result<IssuanceRequest, CmpError>) -> Outcome {
    let req = match req {
        Ok(r) => r,
        Err(e) => return Outcome::Rejected(e),
    };
    match ex.state.ca().issue(req).await {
        Ok(IssueOutcome::Issued(issued)) => Outcome::Issued(issued),
        Ok(IssueOutcome::Pending(_)) => Outcome::Waiting,
        // Status rejection, failInfo badRequest, the approver's reason in the text.
        Ok(IssueOutcome::Denied(denied)) => Outcome::Rejected(CmpError::bad_request(denied.to_string())),
        Err(e) => Outcome::Rejected(CmpError::from_core(&e)),
    }
}

/// ir, cr, kur.
pub async fn certificate_requests(
    ex: &Exchange<'_>,
    tx: CmpTransaction,
    body_tag: u8,
    items: Vec<CertReqItem>,
) -> Result<Reply, CmpError> {
    if items.is_empty() || items.len() > MAX_REQUESTS {
        return Err(CmpError::bad_request(format!("a message carries 1 to {MAX_REQUESTS} certificate requests")));
    }
    let mut ids: Vec<i64> = items.iter().map(|i| i.cert_req_id).collect();
    ids.sort_unstable();
    if ids.windows(2).any(|w| w[0] == w[1]) {
        return Err(CmpError::bad_request("certReqIds must be unique within a message"));
    }
    let outcomes = crmf_outcomes(ex, body_tag, &items).await;
    finish(ex, tx, body_tag + 1, outcomes).await
}

/// The outcome of each CRMF request of an ir, cr or kur, by certReqId.
async fn crmf_outcomes(ex: &Exchange<'_>, body_tag: u8, items: &[CertReqItem]) -> Vec<(i64, Outcome)> {
    let profile = profile_for(ex, body_tag);
    let mut outcomes = Vec::with_capacity(items.len());
    for item in items {
        let req = crmf_request(ex, body_tag, item, profile);
        outcomes.push((item.cert_req_id, issue(ex, req).await));
    }
    outcomes
}

/// p10cr: a PKCS#10 request; the core verifies its self-signature.
pub async fn p10cr(ex: &Exchange<'_>, tx: CmpTransaction, csr: Vec<u8>) -> Result<Reply, CmpError> {
    let outcome = issue(ex, p10_request(ex, &csr)).await;
    finish(ex, tx, tag::CP, vec![(-1, outcome)]).await
}

/// The issuance request of a p10cr (the certReqId of its answer is -1).
fn p10_request(ex: &Exchange<'_>, csr: &[u8]) -> Result<IssuanceRequest, CmpError> {
    ParsedCsr::from_der(csr, CsrOptions::default()).map_err(|e| CmpError::from_core(&CoreError::Csr(e))).map(|csr| {
        IssuanceRequest {
            csr,
            profile: ex.profile.profile.clone(),
            requester: ex.auth.requester(ex.state),
            requested: RequestedValidity::default(),
            renewal_of: None,
            exchange: Some(ex.exchange()),
        }
    })
}

/// Builds the CertRepMessage and records where the transaction stands.
pub async fn finish(
    ex: &Exchange<'_>,
    mut tx: CmpTransaction,
    rep_tag: u8,
    outcomes: Vec<(i64, Outcome)>,
) -> Result<Reply, CmpError> {
    let implicit = ex.msg.header.has_info(&oids::IT_IMPLICIT_CONFIRM) && ex.state.config().implicit_confirm;
    let mut responses = Vec::new();
    let mut extra_certs = Vec::new();
    let mut root = None;
    let mut waiting = false;
    for (id, outcome) in outcomes {
        let (status, pair) = match outcome {
            Outcome::Issued(issued) => {
                let status = if issued.notes.is_empty() {
                    StatusInfo::accepted()
                } else {
                    StatusInfo::with_text(PkiStatus::GrantedWithMods, issued.notes.clone())
                };
                let cert: x509_cert02::Certificate = old_from_der("certificate", &issued.der)?;
                if let Some(i) = ex.state.ca().issuer(&issued.record.issuer) {
                    extra_certs.extend(i.intermediates().into_iter().map(|c| c.der.clone()));
                    root = Some(i.root().der.clone());
                }
                tx.certificates.push(TransactionCert {
                    cert_req_id: id,
                    issuer: issued.record.issuer.clone(),
                    serial: issued.record.serial.clone(),
                    // Kept only to check the certHash of a certConf; an implicitly
                    // confirmed certificate gets none (certConf is refused as
                    // certConfirmed), so its record stays small (the inventory has it).
                    der: if implicit { Vec::new() } else { issued.der.clone() },
                    confirmed: implicit,
                });
                let pair = CertifiedKeyPair {
                    cert_or_enc_cert: CertOrEncCert::Certificate(Box::new(cert)),
                    priv_key: None,
                    publication_info: None,
                };
                (status, Some(pair))
            }
            Outcome::Waiting => {
                waiting = true;
                let text = vec![format!(
                    "the request waits for approval; poll (pollReq) every {}s",
                    ex.state.config().poll_interval.as_secs()
                )];
                (StatusInfo::with_text(PkiStatus::Waiting, text), None)
            }
            Outcome::Rejected(e) => (StatusInfo::rejection(e.fail, e.text)?, None),
        };
        responses.push(CertResponse { cert_req_id: id, status, certified_key_pair: pair, rsp_info: None });
    }
    let issued_any = !tx.certificates.is_empty();
    let mut general_info = Vec::new();
    if waiting {
        tx.state = TransactionState::Polling;
        // Kept from the first request; a poll that still waits keeps it.
        if tx.pending_request.is_none() {
            tx.pending_request = Some(ex.der.to_vec());
        }
        tx.deadline = Some(ex.now + ex.state.config().polling_horizon);
    } else if issued_any && implicit {
        tx.state = TransactionState::Complete;
        general_info.push(InfoTypeAndValue { oid: oids::IT_IMPLICIT_CONFIRM, value: Some(Any::null()) });
    } else if issued_any {
        let deadline = ex.now + ex.state.config().confirm_wait;
        tx.state = TransactionState::AwaitingConfirmation;
        tx.deadline = Some(deadline);
        let t = GeneralizedTime::from_system_time(deadline)?;
        general_info.push(InfoTypeAndValue { oid: oids::IT_CONFIRM_WAIT_TIME, value: Some(Any::encode_from(&t)?) });
    } else {
        tx.state = TransactionState::Failed;
    }
    if !ex.save(&mut tx).await? {
        tracing::warn!(transaction = %ex.tid, "CMP transaction changed while it was being answered");
    }
    // caPubs carries the trust anchor to a client that authenticated with a shared
    // secret and may not have it yet (RFC 9483 section 4.1.1).
    let ca_pubs = match (ex.auth, root) {
        (crate::auth::Auth::Mac { .. }, Some(r)) if issued_any => Some(vec![old_from_der("root certificate", &r)?]),
        _ => None,
    };
    let mut reply = Reply::new(ResponseBody::CertRep(rep_tag, CertRepMessage { ca_pubs, response: responses }));
    reply.general_info = general_info;
    reply.extra_certs = extra_certs;
    Ok(reply)
}

/// Re-reads a stored request for polling: the CRMF items or the PKCS#10 request.
pub fn stored_items(body_tag: u8, body: &[u8]) -> Result<StoredRequest, CmpError> {
    match crate::wire::body::decode_request(body_tag, body)? {
        Some(crate::wire::RequestBody::CertRequests(items)) => Ok(StoredRequest::Crmf(items)),
        Some(crate::wire::RequestBody::P10cr(csr)) => Ok(StoredRequest::P10(csr)),
        _ => Err(CmpError::system_failure("the stored request is not a certificate request")),
    }
}

/// A certificate request kept for polling.
pub enum StoredRequest {
    Crmf(Vec<CertReqItem>),
    P10(Vec<u8>),
}

/// Asks the CA again for the requests of a polling transaction (see [`crate::poll`]):
/// the CA matches each to its approval record (by the transaction's exchange key and the
/// request's key), so nothing is issued twice. Returns the response tag and outcomes.
pub async fn ask_again(ex: &Exchange<'_>, body_tag: u8, stored: StoredRequest) -> (u8, Vec<(i64, Outcome)>) {
    match stored {
        StoredRequest::Crmf(items) => (body_tag + 1, crmf_outcomes(ex, body_tag, &items).await),
        StoredRequest::P10(csr) => (tag::CP, vec![(-1, issue(ex, p10_request(ex, &csr)).await)]),
    }
}
