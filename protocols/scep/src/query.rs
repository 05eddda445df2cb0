//! GetCert and GetCRL (RFC 8894 sections 3.3.4 and 3.3.5). Both carry, encrypted, an
//!
//! ```text
//! IssuerAndSerialNumber ::= SEQUENCE { issuer Name, serialNumber CertificateSerialNumber }
//! ```
//!
//! (RFC 5652 section 10.2.4). GetCert returns that certificate; GetCRL the current CRL of
//! its issuer. Only certificates of the Issuers this endpoint serves are answered; any
//! other issuer or serial is badCertId.

use std::sync::Arc;

use cms::cert::IssuerAndSerialNumber;
use der::Decode;
use pkiplane_core::inventory::CertStatus;
use pkiplane_core::issuer::IssuerInfo;
use pkiplane_core::x509::cert::strip_sign;
use x509_cert::name::RdnSequence;

use crate::ScepState;
use crate::cms::outgoing::degenerate;
use crate::error::ScepError;
use crate::outcome::Outcome;

fn issuer_and_serial(content: &[u8]) -> Result<(RdnSequence, String), ScepError> {
    let ias = IssuerAndSerialNumber::from_der(content)
        .map_err(|e| ScepError::BadRequest(format!("content is not an IssuerAndSerialNumber: {e}")))?;
    let issuer: RdnSequence = ias.issuer.into();
    Ok((issuer, hex::encode(strip_sign(ias.serial_number.as_bytes()))))
}

/// The CA of this endpoint whose subject is `dn`.
fn served_issuer(state: &ScepState, dn: &RdnSequence) -> Result<Arc<IssuerInfo>, ScepError> {
    state
        .served_issuers()
        .into_iter()
        .find(|i| i.cert.subject == *dn)
        .ok_or_else(|| ScepError::BadCertId("the issuer is not a CA of this endpoint".into()))
}

/// GetCert: the certificate named by issuer and serial number.
pub async fn get_cert(state: &ScepState, content: &[u8]) -> Result<Outcome, ScepError> {
    let (issuer_dn, serial) = issuer_and_serial(content)?;
    let issuer = served_issuer(state, &issuer_dn)?;
    let record = state.ca().certificate(&issuer.id, &serial).await?;
    match record {
        Some(r) if matches!(r.status, CertStatus::Issued | CertStatus::Revoked) => {
            let der = r.der.ok_or_else(|| ScepError::internal(format!("certificate {serial} has no DER")))?;
            Ok(Outcome::Success(degenerate(&[der], &[])?))
        }
        _ => Err(ScepError::BadCertId(format!("no certificate {serial} from {}", issuer.id))),
    }
}

/// GetCRL: a fresh CRL of the issuer of the named certificate.
pub async fn get_crl(state: &ScepState, content: &[u8]) -> Result<Outcome, ScepError> {
    let (issuer_dn, serial) = issuer_and_serial(content)?;
    let issuer = served_issuer(state, &issuer_dn)?;
    if state.ca().certificate(&issuer.id, &serial).await?.is_none() {
        return Err(ScepError::BadCertId(format!("no certificate {serial} from {}", issuer.id)));
    }
    let crl = state.ca().generate_crl(&issuer.id).await?;
    Ok(Outcome::Success(degenerate(&[], &[crl])?))
}
