//! The endpoint's CMP protection credentials: for each Issuer behind the exposed
//! profiles, a certificate with the `cmcRA` extended key usage (RFC 6402) and its key,
//! which sign responses to signature-protected requests (RFC 9810 section 5.1.3.3,
//! RFC 9483 section 3.2). The certificate is issued through the CA core like every
//! other (policy, inventory), under an internal profile.

use std::time::{Duration, SystemTime};

use pkiplane_core::keys::{CaSigner, KeyAlgorithm, generate_key};
use pkiplane_core::model::ObjectRef;
use pkiplane_core::profile::Profile;
use pkiplane_core::service::{Authority, InternalCertRequest, InternalRole};
use pkiplane_core::x509::cert::CertInfo;
use pkiplane_core::x509::csr::{CsrOptions, ParsedCsr};
use pkiplane_core::x509::csr_build::build_csr;
use pkiplane_core::x509::names::{SubjectAttribute, build_name};
use x509_cert02::ext::pkix::name::GeneralName;

use crate::convert;

/// A CMP protection certificate and its key. `Debug` never shows the key.
pub struct CmpCredential {
    /// The Issuer that signed the certificate.
    pub issuer: ObjectRef,
    pub cert: CertInfo,
    /// The issuing CA and the CAs above it, without the root, DER (extraCerts after the
    /// protection certificate, RFC 9483 section 3.3).
    pub chain: Vec<Vec<u8>>,
    pub signer: CaSigner,
    /// The sender name of signed responses: the certificate's subject.
    pub name: GeneralName,
    /// senderKID of signed responses: the certificate's subjectKeyIdentifier.
    pub key_id: Vec<u8>,
}

impl std::fmt::Debug for CmpCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CmpCredential")
            .field("issuer", &self.issuer)
            .field("serial", &self.cert.serial_hex)
            .field("not_after", &self.cert.not_after)
            .field("signer", &self.signer)
            .finish()
    }
}

/// Why a credential could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("issuer {0} is not loaded")]
    NoIssuer(ObjectRef),
    #[error("issuing the CMP protection certificate: {0}")]
    Issue(#[from] pkiplane_core::CoreError),
    #[error("building the CMP protection certificate request: {0}")]
    Build(String),
}

/// The internal profile of CMP protection certificates of `endpoint` under `issuer`
/// (built by the CA for the `cmp-protection` role; here for tests and messages).
pub fn protection_profile(endpoint: &ObjectRef, issuer: &ObjectRef, lifetime: Duration) -> Profile {
    InternalRole::CmpProtection.profile(endpoint, issuer, Some(lifetime))
}

impl CmpCredential {
    /// Issues a fresh protection certificate (ECDSA P-256) for `endpoint` from `issuer`.
    pub async fn issue(
        ca: &dyn Authority,
        endpoint: &ObjectRef,
        issuer: &ObjectRef,
        lifetime: Duration,
    ) -> Result<CmpCredential, CredentialError> {
        let iss = ca.issuer(issuer).ok_or_else(|| CredentialError::NoIssuer(issuer.clone()))?;
        let key = generate_key(KeyAlgorithm::EcdsaP256).map_err(|e| CredentialError::Build(e.to_string()))?;
        let cn = format!("pkiplane CMP {}/{}", endpoint.namespace, endpoint.name);
        let subject = build_name(&[(SubjectAttribute::CommonName, cn)]).map_err(CredentialError::Build)?;
        let csr_der = build_csr(&key, &subject, &[]).map_err(|e| CredentialError::Build(e.to_string()))?;
        let csr =
            ParsedCsr::from_der(&csr_der, CsrOptions::default()).map_err(|e| CredentialError::Build(e.to_string()))?;
        let req = InternalCertRequest {
            role: InternalRole::CmpProtection,
            endpoint: endpoint.clone(),
            issuer: issuer.clone(),
            csr,
            lifetime: Some(lifetime),
        };
        let issued = ca.issue_internal(req).await?;
        let cert = CertInfo::from_der(&issued.der).map_err(|e| CredentialError::Build(e.to_string()))?;
        let signer = CaSigner::new(&key).map_err(|e| CredentialError::Build(e.to_string()))?;
        let name = convert::directory_name(&cert.subject).map_err(|e| CredentialError::Build(e.to_string()))?;
        let key_id = cert.subject_key_id.clone().unwrap_or_default();
        let chain = iss.intermediates().into_iter().map(|c| c.der.clone()).collect();
        Ok(CmpCredential { issuer: issuer.clone(), cert, chain, signer, name, key_id })
    }

    /// Whether the certificate is in its last third (time to renew).
    pub fn needs_renewal(&self, now: SystemTime) -> bool {
        let life = self.cert.not_after.duration_since(self.cert.not_before).unwrap_or_default();
        self.cert.not_after.duration_since(now).map(|left| left < life / 3).unwrap_or(true)
    }

    /// extraCerts of a signed message: this certificate, then its chain.
    pub fn extra_certs(&self) -> Vec<Vec<u8>> {
        std::iter::once(self.cert.der.clone()).chain(self.chain.iter().cloned()).collect()
    }
}
