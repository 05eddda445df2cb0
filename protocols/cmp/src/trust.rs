//! Who signed a signature-protected request (RFC 9810 section 5.1.3.3, RFC 9483 section
//! 3.5): the CMP protection certificate is the first of the message's extraCerts.
//!
//! * A certificate pkiplane issued (an Issuer of this endpoint's profiles or of its
//!   trust anchors signed it and the inventory holds exactly this certificate) is
//!   trusted while the inventory says it is issued, not revoked and within its
//!   validity: this is how cr, kur and rr are signed with a device's current
//!   certificate.
//! * Any other certificate must chain, through the other extraCerts, to one of the
//!   endpoint's trust anchors (`rustls-webpki` path validation): this is how a device
//!   signs its first ir with its IDevID.
//!
//! Either way, a keyUsage extension must allow digitalSignature. A signer whose
//! certificate carries the `cmcRA` extended key usage is a registration authority and
//! may assert `raVerified` proof of possession.

use std::time::{SystemTime, UNIX_EPOCH};

use pkiplane_core::inventory::{CertStatus, CertificateRecord};
use pkiplane_core::x509::cert::CertInfo;
use pkiplane_core::x509::extensions::ID_KP_CMC_RA;
use pkiplane_core::x509::names::format_dn;
use rustls_pki_types::{CertificateDer, UnixTime};
use webpki::{EndEntityCert, ExtendedKeyUsageValidator, KeyPurposeIdIter};
use x509_cert::ext::pkix::{ExtendedKeyUsage, KeyUsage, KeyUsages};

use crate::CmpState;
use crate::error::CmpError;

/// A validated signer.
#[derive(Clone, Debug)]
pub struct Signer {
    pub cert: CertInfo,
    /// SHA-256 of the certificate DER, hex.
    pub sha256: String,
    /// The inventory record, when pkiplane issued the certificate.
    pub own: Option<CertificateRecord>,
    /// The certificate carries id-kp-cmcRA.
    pub is_ra: bool,
}

/// webpki checks extended key usage only as the caller asks; CMP protection
/// certificates carry many (none, clientAuth, cmcRA, ...), so any well-formed set passes.
struct AnyEku;

impl ExtendedKeyUsageValidator for AnyEku {
    fn validate(&self, iter: KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        for id in iter {
            id?;
        }
        Ok(())
    }
}

fn has_eku(cert: &CertInfo, oid: &const_oid::ObjectIdentifier) -> bool {
    use der08::Decode;
    cert.extensions
        .iter()
        .filter(|e| e.extn_id == const_oid::db::rfc5280::ID_CE_EXT_KEY_USAGE)
        .filter_map(|e| ExtendedKeyUsage::from_der(e.extn_value.as_bytes()).ok())
        .any(|eku| eku.0.contains(oid))
}

fn may_sign(cert: &CertInfo) -> bool {
    use der08::Decode;
    match cert.extensions.iter().find(|e| e.extn_id == const_oid::db::rfc5280::ID_CE_KEY_USAGE) {
        None => true,
        Some(e) => KeyUsage::from_der(e.extn_value.as_bytes())
            .map(|ku| ku.0.contains(KeyUsages::DigitalSignature))
            .unwrap_or(false),
    }
}

/// Validates the protection certificate `der`, with `untrusted` as possible
/// intermediates.
pub async fn validate_signer(
    state: &CmpState,
    der: &[u8],
    untrusted: &[Vec<u8>],
    now: SystemTime,
) -> Result<Signer, CmpError> {
    let cert =
        CertInfo::from_der(der).map_err(|e| CmpError::bad_data_format(format!("protection certificate: {e}")))?;
    let who = format_dn(&cert.subject);
    if !may_sign(&cert) {
        return Err(CmpError::signer_not_trusted(format!("the keyUsage of `{who}` does not allow digitalSignature")));
    }
    let sha256 = hex::encode(ring::digest::digest(&ring::digest::SHA256, der));
    let is_ra = has_eku(&cert, &ID_KP_CMC_RA);
    if let Some(record) = own_record(state, &cert).await? {
        return match record.status {
            CertStatus::Issued if cert.not_before <= now && now < cert.not_after => {
                Ok(Signer { cert, sha256, own: Some(record), is_ra })
            }
            CertStatus::Issued => {
                Err(CmpError::signer_not_trusted(format!("the protection certificate of `{who}` is not valid now")))
            }
            CertStatus::Revoked => {
                Err(CmpError::signer_not_trusted(format!("the protection certificate of `{who}` is revoked")))
            }
            other => Err(CmpError::signer_not_trusted(format!(
                "the protection certificate of `{who}` is {} in the inventory",
                other.as_str()
            ))),
        };
    }
    let anchors_der = state.trust_anchor_certs();
    if anchors_der.is_empty() {
        return Err(CmpError::signer_not_trusted(format!(
            "`{who}` was not issued by this CA and the endpoint trusts no other CA"
        )));
    }
    let anchor_ders: Vec<CertificateDer<'_>> = anchors_der.iter().map(|d| CertificateDer::from(d.as_slice())).collect();
    let anchors = anchor_ders
        .iter()
        .map(webpki::anchor_from_trusted_cert)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CmpError::system_failure(format!("a configured trust anchor is unusable: {e}")))?;
    let intermediates: Vec<CertificateDer<'_>> = untrusted.iter().map(|d| CertificateDer::from(d.as_slice())).collect();
    let leaf = CertificateDer::from(der);
    let ee = EndEntityCert::try_from(&leaf)
        .map_err(|e| CmpError::signer_not_trusted(format!("the protection certificate is not usable: {e}")))?;
    let secs = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    ee.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &anchors,
        &intermediates,
        UnixTime::since_unix_epoch(secs),
        AnyEku,
        None,
        None,
    )
    .map_err(|e| CmpError::signer_not_trusted(format!("`{who}` does not chain to a trust anchor: {e}")))?;
    Ok(Signer { cert, sha256, own: None, is_ra })
}

/// The inventory record of `cert` if an Issuer this endpoint knows signed it and the
/// inventory holds this exact certificate.
async fn own_record(state: &CmpState, cert: &CertInfo) -> Result<Option<CertificateRecord>, CmpError> {
    for issuer in state.known_issuers() {
        if issuer.cert.subject != cert.issuer {
            continue;
        }
        let record = state.ca().certificate(&issuer.id, &cert.serial_hex).await.map_err(|e| CmpError::from_core(&e))?;
        if let Some(r) = record
            && r.der.as_deref() == Some(cert.der.as_slice())
        {
            return Ok(Some(r));
        }
    }
    Ok(None)
}
