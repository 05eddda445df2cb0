//! The public half of an Issuer, as endpoints see it.

use std::time::{Duration, SystemTime};

use super::{Issuer, NextCa};
use crate::model::ObjectRef;
use crate::x509::cert::CertInfo;
use crate::x509::pem;

/// The public half of an Issuer: what protocols hand to clients (certificates, chains)
/// and match against (subject, key identifier). Never the key: this is all an endpoint
/// pod ever learns about a CA.
#[derive(Clone, Debug)]
pub struct IssuerInfo {
    pub id: ObjectRef,
    pub cert: CertInfo,
    /// The certificates above this one, nearest first, ending with the root.
    pub chain: Vec<CertInfo>,
    /// This CA's key identifier (authorityKeyIdentifier of what it signs).
    pub key_id: Vec<u8>,
    /// How long the CRLs of this CA are valid.
    pub crl_validity: Duration,
    /// The staged next CA (key rollover) and, for a root, its RFC 9810 section 4.4 link
    /// certificates; announced by SCEP GetNextCACert, CMP rootCaKeyUpdate and EST
    /// /cacerts. `None` while no rollover is staged.
    pub next: Option<NextCa>,
    /// The Issuer that signed this one (intermediates), to find the root's rollover.
    pub parent: Option<ObjectRef>,
}

impl IssuerInfo {
    pub fn from_issuer(issuer: &Issuer) -> Self {
        Self {
            id: issuer.id.clone(),
            cert: issuer.cert.clone(),
            chain: issuer.chain.clone(),
            key_id: issuer.key_id.clone(),
            crl_validity: issuer.crl_validity,
            next: issuer.next.clone(),
            parent: issuer.parent.clone(),
        }
    }

    pub fn not_after(&self) -> SystemTime {
        self.cert.not_after
    }

    /// The CA certificate as PEM.
    pub fn certificate_pem(&self) -> String {
        pem::encode("CERTIFICATE", &self.cert.der)
    }

    /// This CA and every certificate above it, as PEM.
    pub fn chain_pem(&self) -> String {
        std::iter::once(&self.cert).chain(self.chain.iter()).map(|c| pem::encode("CERTIFICATE", &c.der)).collect()
    }

    /// The chain above this CA only (nearest first), as PEM.
    pub fn parents_pem(&self) -> String {
        self.chain.iter().map(|c| pem::encode("CERTIFICATE", &c.der)).collect()
    }

    /// The root at the top of this chain (this CA itself for a root).
    pub fn root(&self) -> &CertInfo {
        chain_root(&self.cert, &self.chain)
    }

    /// This CA and any intermediates above it, without the root.
    pub fn intermediates(&self) -> Vec<&CertInfo> {
        chain_intermediates(&self.cert, &self.chain)
    }
}

/// The root at the top of `cert`'s `chain` (nearest first): `cert` itself for a root.
pub(crate) fn chain_root<'a>(cert: &'a CertInfo, chain: &'a [CertInfo]) -> &'a CertInfo {
    chain.last().unwrap_or(cert)
}

/// `cert` and the certificates of its `chain` (nearest first), without the root.
pub(crate) fn chain_intermediates<'a>(cert: &'a CertInfo, chain: &'a [CertInfo]) -> Vec<&'a CertInfo> {
    let all: Vec<&CertInfo> = std::iter::once(cert).chain(chain).collect();
    let n = all.len().saturating_sub(1);
    all.into_iter().take(n).collect()
}
