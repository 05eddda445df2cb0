//! Which CA key a CertID names, and what the inventory says of the certificate.
//!
//! RFC 6960 section 2.2: `good` means no certificate with this serial from this issuer is
//! revoked; `revoked` carries the time and, unless unspecified, the reason (RFC 5280
//! section 5.3.1 leaves `unspecified` out); `unknown` means this responder does not know
//! the certificate, here: a serial the named CA key never signed (never recorded,
//! abandoned before signing, or signed by another key of the same Issuer).

use std::time::SystemTime;

use der::{Decode, Encode};
use x509_cert::Certificate;
use x509_cert::ext::pkix::AuthorityKeyIdentifier;

use super::request::{CertId, CertIdHash};
use crate::inventory::{CertStatus, CertificateRecord, RevocationReason};
use crate::x509::cert::CertInfo;

/// The status of one certificate, as OCSP reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Good,
    Revoked { at: SystemTime, reason: RevocationReason },
    Unknown,
}

/// Whether `id` names the CA certificate `ca`: the hash of its subject (the issuer name of
/// what it signs) and of its subjectPublicKey bits, under `hash`.
pub fn names_ca(id: &CertId, hash: CertIdHash, ca: &CertInfo) -> bool {
    let Ok(name) = ca.subject.to_der() else { return false };
    id.issuer_key_hash.as_bytes() == hash.digest(ca.spki.subject_public_key.raw_bytes()).as_slice()
        && id.issuer_name_hash.as_bytes() == hash.digest(&name).as_slice()
}

/// The authorityKeyIdentifier's keyIdentifier of a certificate (DER), if it has one.
pub fn authority_key_id(cert_der: &[u8]) -> Option<Vec<u8>> {
    let cert = Certificate::from_der(cert_der).ok()?;
    let (_, aki) = cert.tbs_certificate().get_extension::<AuthorityKeyIdentifier>().ok()??;
    aki.key_identifier.map(|k| k.as_bytes().to_vec())
}

/// The status of the inventory's record for a serial, as answered for the CA key
/// `key_id`. A certificate signed by another key of the Issuer is `unknown` to this one.
pub fn status_of(record: Option<&CertificateRecord>, key_id: &[u8]) -> Status {
    let Some(record) = record else { return Status::Unknown };
    let signed_by_key = record.der.as_deref().and_then(authority_key_id).is_some_and(|aki| aki == key_id);
    if !signed_by_key {
        return Status::Unknown;
    }
    match (record.status, record.revocation) {
        (CertStatus::Issued, _) => Status::Good,
        (CertStatus::Revoked, Some(r)) => Status::Revoked { at: r.at, reason: r.reason },
        // A revoked record without its facts is refused by the stores; never call it good.
        (CertStatus::Revoked, None) => Status::Revoked { at: record.created_at, reason: RevocationReason::Unspecified },
        (CertStatus::Pending | CertStatus::Abandoned, _) => Status::Unknown,
    }
}
