//! Building and signing a BasicOCSPResponse (RFC 6960 section 4.2.1) from statuses.

use std::time::SystemTime;

use const_oid::db::rfc6960::ID_PKIX_OCSP_BASIC;
use der::asn1::{BitString, GeneralizedTime, Null, OctetString};
use der::{DateTime, Encode};
use x509_cert::Certificate;
use x509_cert::ext::Extension;

use super::request::CertId;
use super::response::{
    BasicOcspResponse, CertStatus, OcspResponse, OcspResponseStatus, ResponderId, ResponseBytes, ResponseData,
    RevokedInfo, SingleResponse,
};
use super::status::Status;
use crate::crl::crl_reason;
use crate::inventory::RevocationReason;
use crate::keys::CaSigner;
use crate::x509::cert::EncodeError;

/// Everything a signed response is made of.
pub struct ResponseInput<'a> {
    /// The responder's key: the CA key itself, or a delegated responder's.
    pub signer: &'a CaSigner,
    /// ResponderID byKey: SHA-1 of the signer's subjectPublicKey bits.
    pub responder_key_hash: &'a [u8],
    /// Certificates that help verify the signature (the delegated responder's).
    pub certs: &'a [Certificate],
    pub produced_at: SystemTime,
    pub this_update: SystemTime,
    pub next_update: SystemTime,
    /// One status per CertID, in the order asked.
    pub statuses: &'a [(CertId, Status)],
    /// The request's nonce extension, echoed (RFC 6960 section 4.4.1).
    pub nonce: Option<&'a Extension>,
}

/// GeneralizedTime of whole seconds, UTC (RFC 6960 section 4.2.2.1 leaves out fractions).
pub fn generalized_time(t: SystemTime) -> der::Result<GeneralizedTime> {
    let secs = crate::inventory::unix_seconds::to_secs(t);
    Ok(GeneralizedTime::from_date_time(DateTime::from_system_time(crate::inventory::unix_seconds::from_secs(secs))?))
}

fn cert_status(status: Status) -> der::Result<CertStatus> {
    Ok(match status {
        Status::Good => CertStatus::Good(Null),
        Status::Unknown => CertStatus::Unknown(Null),
        Status::Revoked { at, reason } => CertStatus::Revoked(RevokedInfo {
            revocation_time: generalized_time(at)?,
            revocation_reason: (reason != RevocationReason::Unspecified).then(|| crl_reason(reason)),
        }),
    })
}

/// Encodes, signs and wraps a successful response: `OCSPResponse` DER.
pub fn build_response(input: &ResponseInput<'_>) -> Result<Vec<u8>, EncodeError> {
    let this_update = generalized_time(input.this_update)?;
    let next_update = generalized_time(input.next_update)?;
    let responses = input
        .statuses
        .iter()
        .map(|(id, status)| {
            Ok(SingleResponse {
                cert_id: id.clone(),
                cert_status: cert_status(*status)?,
                this_update,
                next_update: Some(next_update),
                single_extensions: None,
            })
        })
        .collect::<der::Result<Vec<_>>>()?;
    let tbs = ResponseData {
        version: 0,
        responder_id: ResponderId::ByKey(OctetString::new(input.responder_key_hash)?),
        produced_at: generalized_time(input.produced_at)?,
        responses,
        response_extensions: input.nonce.map(|n| vec![n.clone()]),
    };
    let signature = input.signer.sign(&tbs.to_der()?)?;
    let basic = BasicOcspResponse {
        tbs_response_data: tbs,
        signature_algorithm: input.signer.signature_algorithm().algorithm_identifier(),
        signature: BitString::from_bytes(&signature)?,
        certs: (!input.certs.is_empty()).then(|| input.certs.to_vec()),
    };
    let response = OcspResponse {
        response_status: OcspResponseStatus::Successful,
        response_bytes: Some(ResponseBytes {
            response_type: ID_PKIX_OCSP_BASIC,
            response: OctetString::new(basic.to_der()?)?,
        }),
    };
    Ok(response.to_der()?)
}
