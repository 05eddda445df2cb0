//! Delegated OCSP responders (RFC 6960 section 4.2.2.2): a short-lived certificate per CA
//! key, signed by that key, with id-kp-OCSPSigning in its extendedKeyUsage and the
//! id-pkix-ocsp-nocheck extension (section 4.2.2.2.1: clients need not check its own
//! revocation, which is why it lives only [`RESPONDER_LIFETIME`] and is renewed
//! [`RESPONDER_RENEW_BEFORE`] its end). Its key never leaves the CA holder; it is
//! persisted with the other CA material ([`CaMaterialStore::save_ocsp_responder`]).
//!
//! [`CaMaterialStore::save_ocsp_responder`]: crate::inventory::CaMaterialStore::save_ocsp_responder

use std::time::{Duration, SystemTime};

use const_oid::db::rfc5912::ID_KP_OCSP_SIGNING;
use const_oid::db::rfc6960::ID_PKIX_OCSP_NOCHECK;
use der::asn1::{Null, OctetString};
use der::{Decode, Encode};
use x509_cert::Certificate;
use x509_cert::ext::Extension;
use x509_cert::name::RdnSequence;

use super::status::authority_key_id;
use crate::inventory::StoredOcspResponder;
use crate::issuer::CaKey;
use crate::issuer::retired::key_algorithm_of;
use crate::keys::{CaSigner, KeyAlgorithm, SecretKey, generate_key, key_matches_spki};
use crate::x509::KeyUsageBit;
use crate::x509::cert::{CertInfo, CertificateFields, sign_certificate};
use crate::x509::extensions::{
    authority_key_identifier, basic_constraints, extended_key_usage, key_identifier, key_usage, subject_key_identifier,
};
use crate::x509::names::SubjectAttribute;
use crate::x509::names::{build_name, name_attributes};

/// How long a responder certificate is valid (capped by the CA certificate).
pub const RESPONDER_LIFETIME: Duration = Duration::from_secs(30 * 86_400);
/// A responder certificate is replaced this long before it ends.
pub const RESPONDER_RENEW_BEFORE: Duration = Duration::from_secs(10 * 86_400);
/// How far back notBefore is set, for relying parties with slow clocks.
const BACKDATE: Duration = Duration::from_secs(3600);

#[derive(Debug, thiserror::Error)]
#[error("OCSP responder of CA key {ca_key_id}: {reason}")]
pub struct DelegateError {
    pub ca_key_id: String,
    pub reason: String,
}

/// A delegated responder ready to sign.
pub struct Delegate {
    pub cert: CertInfo,
    /// The certificate as it goes into responses (`BasicOCSPResponse.certs`).
    pub certificate: Certificate,
    signer: CaSigner,
    /// ResponderID byKey: the SHA-1 hash of the responder's subjectPublicKey bits.
    pub key_hash: Vec<u8>,
}

impl std::fmt::Debug for Delegate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delegate")
            .field("serial", &self.cert.serial_hex)
            .field("not_after", &self.cert.not_after)
            .field("signer", &self.signer)
            .finish()
    }
}

/// The key algorithm of a responder for a CA key: the same curve, or RSA-2048 for an RSA
/// CA (a responder signs every answer; a bigger key only makes that slower).
pub fn responder_key_algorithm(ca: KeyAlgorithm) -> KeyAlgorithm {
    match ca {
        KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => KeyAlgorithm::Rsa2048,
        other => other,
    }
}

/// The SHA-1 hash of a subjectPublicKey (RFC 6960 `KeyHash`).
pub fn key_hash(public_key_bits: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, public_key_bits).as_ref().to_vec()
}

/// The responder's subject: the CA's, with " OCSP Responder" after its common name.
fn responder_subject(ca: &RdnSequence) -> Result<RdnSequence, String> {
    let mut attrs: Vec<(SubjectAttribute, String)> =
        name_attributes(ca)?.into_iter().filter_map(|a| a.attribute.map(|k| (k, a.value))).collect();
    match attrs.iter_mut().find(|(k, _)| *k == SubjectAttribute::CommonName) {
        Some((_, cn)) => cn.push_str(" OCSP Responder"),
        None => attrs.push((SubjectAttribute::CommonName, "OCSP Responder".into())),
    }
    build_name(&attrs)
}

/// The id-pkix-ocsp-nocheck extension (value NULL, non-critical).
fn ocsp_nocheck() -> der::Result<Extension> {
    Ok(Extension { extn_id: ID_PKIX_OCSP_NOCHECK, critical: false, extn_value: OctetString::new(Null.to_der()?)? })
}

impl Delegate {
    /// Makes a new responder for `ca` at `now`: a fresh key and a certificate signed by
    /// the CA key. Returns it with what to persist.
    pub fn issue(ca: &CaKey, now: SystemTime) -> Result<(Self, StoredOcspResponder), DelegateError> {
        let err = |reason: String| DelegateError { ca_key_id: hex::encode(ca.key_id()), reason };
        let key = generate_key(responder_key_algorithm(ca.signer().key_algorithm())).map_err(|e| err(e.to_string()))?;
        let signer = CaSigner::new(&key).map_err(|e| err(e.to_string()))?;
        let ca_cert = ca.cert();
        let subject = responder_subject(&ca_cert.subject).map_err(&err)?;
        let extensions = [
            basic_constraints(false, None),
            key_usage(&[KeyUsageBit::DigitalSignature]),
            extended_key_usage(&[ID_KP_OCSP_SIGNING]),
            ocsp_nocheck(),
            subject_key_identifier(&key_identifier(signer.public_key_bits())),
            authority_key_identifier(ca.key_id()),
        ]
        .into_iter()
        .collect::<der::Result<Vec<_>>>()
        .map_err(|e| err(e.to_string()))?;
        let serial = crate::issuance::random_serial();
        let fields = CertificateFields {
            serial: &serial,
            issuer: &ca_cert.subject,
            subject: &subject,
            not_before: (now - BACKDATE).max(ca_cert.not_before),
            not_after: (now + RESPONDER_LIFETIME).min(ca_cert.not_after),
            spki: signer.public_key_info(),
            extensions,
        };
        let der = sign_certificate(&fields, ca.signer()).map_err(|e| err(e.to_string()))?;
        let stored = StoredOcspResponder {
            ca_key_id: ca.key_id().to_vec(),
            certificate_der: der,
            private_key_pkcs8: key.pkcs8_der().to_vec().into(),
        };
        Ok((Self::load(&stored, ca)?, stored))
    }

    /// Loads a persisted responder of `ca`, checking it belongs to that CA key.
    pub fn load(stored: &StoredOcspResponder, ca: &CaKey) -> Result<Self, DelegateError> {
        let err = |reason: &str| DelegateError { ca_key_id: hex::encode(ca.key_id()), reason: reason.into() };
        let cert = CertInfo::from_der(&stored.certificate_der).map_err(|e| err(&e.to_string()))?;
        if cert.issuer != ca.cert().subject || authority_key_id(&cert.der).as_deref() != Some(ca.key_id()) {
            return Err(err("the responder certificate was not signed by this CA key"));
        }
        let algorithm = key_algorithm_of(&cert.spki_der).ok_or_else(|| err("unsupported responder key"))?;
        let key = SecretKey::from_pkcs8(algorithm, stored.private_key_pkcs8.to_vec());
        if !key_matches_spki(&key, &cert.spki_der) {
            return Err(err("the responder key does not match its certificate"));
        }
        let signer = CaSigner::new(&key).map_err(|e| err(&e.to_string()))?;
        let certificate = Certificate::from_der(&cert.der).map_err(|e| err(&e.to_string()))?;
        let key_hash = key_hash(cert.spki.subject_public_key.raw_bytes());
        Ok(Self { cert, certificate, signer, key_hash })
    }

    pub fn signer(&self) -> &CaSigner {
        &self.signer
    }

    /// Whether the responder should be replaced at `now`: it ends within
    /// [`RESPONDER_RENEW_BEFORE`] and a new one would end later (a responder capped by
    /// its CA certificate's end is not replaced by one ending just as soon).
    pub fn renewal_due(&self, ca: &CaKey, now: SystemTime) -> bool {
        let fresh_not_after = (now + RESPONDER_LIFETIME).min(ca.cert().not_after);
        now + RESPONDER_RENEW_BEFORE >= self.cert.not_after && fresh_not_after > self.cert.not_after
    }
}
