//! Revocation: rr -> rp (RFC 9810 section 5.3.9, RFC 9483 section 4.2).
//!
//! ```text
//! RevReqContent ::= SEQUENCE OF RevDetails
//! RevDetails ::= SEQUENCE {
//!     certDetails         CertTemplate,   -- issuer and serialNumber
//!     crlEntryDetails     Extensions{{...}} OPTIONAL }   -- reasonCode
//! ```
//!
//! Who may revoke: the holder of the certificate, proved by signing the request with it
//! (RFC 9483 section 4.2); a registration authority (a trusted signer with the cmcRA
//! extended key usage); or, with MAC-based protection, the senderKID that requested the
//! certificate through this endpoint. Anyone else gets `notAuthorized`. A certificate
//! from an Issuer this endpoint does not serve is `wrongAuthority`; an unknown serial
//! `badCertId`; an already revoked one `certRevoked`.

use crate::state::{CmpTransaction, TransactionState};
use pkiplane_core::inventory::{CertStatus, RevocationReason, RevokeOutcome};
use pkiplane_core::issuance::RevocationRequest;
use pkiplane_core::model::Protocol;
use pkiplane_core::x509::cert::strip_sign;
use pkiplane_core::x509::names::format_dn;
use x509_cert::name::RdnSequence;

use crate::auth::Auth;
use crate::convert::to_new;
use crate::error::CmpError;
use crate::exchange::Exchange;
use crate::respond::Reply;
use crate::wire::FailBit;
use crate::wire::body::{MAX_REQUESTS, ResponseBody, RevRep};
use crate::wire::status::StatusInfo;

/// id-ce-cRLReasons (RFC 5280 section 5.3.1).
const CRL_REASON: der::asn1::ObjectIdentifier = der::asn1::ObjectIdentifier::new_unwrap("2.5.29.21");

fn reason(details: &crate::wire::template::RevDetails) -> Result<RevocationReason, CmpError> {
    let Some(ext) = details.crl_entry_details.iter().flatten().find(|e| e.extn_id == CRL_REASON) else {
        return Ok(RevocationReason::Unspecified);
    };
    // reasonCode ::= ENUMERATED
    let code = match ext.extn_value.as_bytes() {
        [0x0a, 0x01, v] => *v,
        _ => return Err(CmpError::bad_data_format("the reasonCode extension is not an ENUMERATED")),
    };
    match RevocationReason::from_code(code) {
        Some(RevocationReason::RemoveFromCrl) => {
            Err(CmpError::bad_request("removeFromCRL is not a revocation reason a client may ask for"))
        }
        Some(r) => Ok(r),
        None => Err(CmpError::bad_request(format!("{code} is not a CRL reason code"))),
    }
}

async fn revoke_one(ex: &Exchange<'_>, details: &crate::wire::template::RevDetails) -> Result<(), CmpError> {
    let t = &details.cert_details;
    let (Some(issuer_name), Some(serial)) = (&t.issuer, &t.serial_number) else {
        return Err(CmpError::new(FailBit::BadCertId, "certDetails must name the issuer and serialNumber"));
    };
    let issuer_dn: RdnSequence = to_new("certDetails issuer", issuer_name)?;
    let serial = hex::encode(strip_sign(serial.as_bytes()));
    let reason = reason(details)?;
    let issuer = ex.state.known_issuers().into_iter().find(|i| i.cert.subject == issuer_dn).ok_or_else(|| {
        CmpError::new(
            FailBit::WrongAuthority,
            format!("`{}` is not an issuer this endpoint serves", format_dn(&issuer_dn)),
        )
    })?;
    let record =
        ex.state.ca().certificate(&issuer.id, &serial).await.map_err(|e| CmpError::from_core(&e))?.ok_or_else(
            || CmpError::new(FailBit::BadCertId, format!("no certificate with serial {serial} from {}", issuer.id)),
        )?;
    let allowed = match ex.auth {
        Auth::Signature(s) => s.is_ra || (s.cert.issuer == issuer.cert.subject && s.cert.serial_hex == serial),
        Auth::Mac { kid, .. } => {
            record.protocol == Protocol::Cmp
                && record.endpoint.as_ref() == Some(&ex.state.config().endpoint)
                && &record.requester == kid
        }
    };
    if !allowed {
        return Err(CmpError::not_authorized(
            "only the certificate's holder (signing with it), a registration authority, or the senderKID that requested it may revoke it",
        ));
    }
    if record.status == CertStatus::Revoked {
        return Err(CmpError::new(FailBit::CertRevoked, format!("certificate {serial} is revoked already")));
    }
    let requester = ex.auth.requester(ex.state);
    match ex.state.ca().revoke(RevocationRequest::new(&issuer.id, &serial, reason, &requester)).await {
        Ok(RevokeOutcome::Revoked) => {
            ex.state.invalidate_crls();
            Ok(())
        }
        Ok(RevokeOutcome::AlreadyRevoked(_)) => {
            Err(CmpError::new(FailBit::CertRevoked, format!("certificate {serial} is revoked already")))
        }
        Ok(RevokeOutcome::NotFound) => {
            Err(CmpError::new(FailBit::BadCertId, format!("no certificate with serial {serial}")))
        }
        Ok(RevokeOutcome::NotIssued(s)) => {
            Err(CmpError::new(FailBit::BadCertId, format!("certificate {serial} is {}", s.as_str())))
        }
        Err(e) => Err(CmpError::from_core(&e)),
    }
}

/// rr.
pub async fn handle(
    ex: &Exchange<'_>,
    mut tx: CmpTransaction,
    details: Vec<crate::wire::template::RevDetails>,
) -> Result<Reply, CmpError> {
    if details.is_empty() || details.len() > MAX_REQUESTS {
        return Err(CmpError::bad_request(format!("a revocation request names 1 to {MAX_REQUESTS} certificates")));
    }
    let mut status = Vec::with_capacity(details.len());
    let mut any = false;
    for d in &details {
        status.push(match revoke_one(ex, d).await {
            Ok(()) => {
                any = true;
                StatusInfo::accepted()
            }
            Err(e) => {
                tracing::info!(error = %e, "CMP revocation refused");
                StatusInfo::rejection(e.fail, e.text)?
            }
        });
    }
    tx.state = if any { TransactionState::Complete } else { TransactionState::Failed };
    ex.save(&mut tx).await?;
    Ok(Reply::new(ResponseBody::Rp(RevRep { status })))
}
