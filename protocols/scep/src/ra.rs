//! The endpoint's Registration Authority identity (RFC 8894 section 2.1.1): an RSA key
//! pair SCEP clients encrypt their requests to and that signs every CertRep, certified
//! by the endpoint's Issuer with keyEncipherment + digitalSignature. The CA key never
//! touches SCEP messages.
//!
//! The RA certificate is issued through [`Authority::issue_internal`] (role `scep-ra`) (so it is in the
//! inventory like every certificate) and kept in the [`ScepStore`], so every replica of
//! the endpoint uses the same RA key, and a restart keeps it (clients cache GetCACert).
//! It is replaced when its Issuer changes or when less than a third of its life remains.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::state::{RaMaterial, RaUpdate, ScepStore};
use der::Decode;
use pkiplane_core::keys::{KeyAlgorithm, generate_key};
use pkiplane_core::model::ObjectRef;
use pkiplane_core::service::{Authority, InternalCertRequest, InternalRole};
use pkiplane_core::x509::cert::CertInfo;
use pkiplane_core::x509::csr::{CsrOptions, ParsedCsr};
use pkiplane_core::x509::csr_build::build_csr;
use pkiplane_core::x509::names::{SubjectAttribute, build_name};
use x509_cert::Certificate;

use crate::error::ScepError;
use crate::rsa_key::RaKey;

/// Lifetime of RA certificates (capped by the Issuer's own notAfter by policy).
pub const RA_LIFETIME: Duration = pkiplane_core::service::RA_LIFETIME;

/// The RA key and certificate. `Debug` never shows the key.
pub struct RaIdentity {
    pub cert: Certificate,
    pub cert_der: Vec<u8>,
    pub info: CertInfo,
    pub issuer: ObjectRef,
    key: RaKey,
}

impl std::fmt::Debug for RaIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaIdentity")
            .field("serial", &self.info.serial_hex)
            .field("issuer", &self.issuer)
            .field("not_after", &self.info.not_after)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl RaIdentity {
    /// Loads stored material (certificate DER and PKCS#8 RSA key).
    pub fn from_material(m: &RaMaterial) -> Result<Self, ScepError> {
        let cert = Certificate::from_der(&m.certificate_der)
            .map_err(|e| ScepError::internal(format!("RA certificate: {e}")))?;
        let info =
            CertInfo::from_der(&m.certificate_der).map_err(|e| ScepError::internal(format!("RA certificate: {e}")))?;
        let key = RaKey::from_pkcs8(&m.private_key_pkcs8)?;
        let certified = cert.tbs_certificate().subject_public_key_info().subject_public_key.raw_bytes();
        if key.public_key_pkcs1() != certified {
            return Err(ScepError::internal("the stored RA key does not match the RA certificate"));
        }
        Ok(Self { cert, cert_der: m.certificate_der.clone(), info, issuer: m.issuer.clone(), key })
    }

    pub fn key(&self) -> &RaKey {
        &self.key
    }

    /// Whether this identity still serves `issuer` at `now`: same Issuer, signed by its
    /// current certificate, and more than a third of its life left.
    pub fn usable(&self, ca: &dyn Authority, issuer: &ObjectRef, now: SystemTime) -> bool {
        let Some(current) = ca.issuer(issuer) else { return false };
        let lifetime = self.info.not_after.duration_since(self.info.not_before).unwrap_or_default();
        let remaining = self.info.not_after.duration_since(now).unwrap_or_default();
        self.issuer == *issuer
            && self.info.issuer == current.cert.subject
            && self.info.extensions.iter().any(|e| e.extn_id == const_oid::db::rfc5280::ID_CE_AUTHORITY_KEY_IDENTIFIER)
            && aki_matches(&self.info, &current.key_id)
            && remaining > lifetime / 3
    }
}

fn aki_matches(info: &CertInfo, key_id: &[u8]) -> bool {
    use x509_cert::ext::pkix::AuthorityKeyIdentifier;
    info.extensions
        .iter()
        .find(|e| e.extn_id == const_oid::db::rfc5280::ID_CE_AUTHORITY_KEY_IDENTIFIER)
        .and_then(|e| AuthorityKeyIdentifier::from_der(e.extn_value.as_bytes()).ok())
        .and_then(|aki| aki.key_identifier)
        .is_some_and(|k| k.as_bytes() == key_id)
}

/// The RA identity of `endpoint` for `issuer`: the stored one while usable, else a new
/// key and certificate, stored so that concurrent replicas converge on one.
pub async fn ensure_ra(
    ca: &dyn Authority,
    store: &dyn ScepStore,
    endpoint: &ObjectRef,
    issuer: &ObjectRef,
) -> Result<Arc<RaIdentity>, ScepError> {
    let now = SystemTime::now();
    let stored = store.ra_material(endpoint).await?;
    if let Some(m) = &stored {
        match RaIdentity::from_material(m) {
            Ok(ra) if ra.usable(ca, issuer, now) => return Ok(Arc::new(ra)),
            Ok(_) => tracing::info!(endpoint = %endpoint, "renewing the SCEP RA certificate"),
            Err(e) => {
                tracing::warn!(endpoint = %endpoint, error = %e, "stored SCEP RA material is unusable; replacing it")
            }
        }
    }
    let material = issue_ra(ca, endpoint, issuer).await?;
    let replacing = stored.map(|m| m.certificate_der);
    let kept = store.put_ra_material(&RaUpdate { endpoint: endpoint.clone(), material, replacing }).await?;
    Ok(Arc::new(RaIdentity::from_material(&kept)?))
}

/// Issues a fresh RA key pair and certificate.
pub async fn issue_ra(ca: &dyn Authority, endpoint: &ObjectRef, issuer: &ObjectRef) -> Result<RaMaterial, ScepError> {
    let key = generate_key(KeyAlgorithm::Rsa2048).map_err(ScepError::internal)?;
    let subject = build_name(&[
        (SubjectAttribute::Organization, "pkiplane".into()),
        (SubjectAttribute::CommonName, format!("SCEP RA {endpoint}")),
    ])
    .map_err(ScepError::internal)?;
    let csr_der = build_csr(&key, &subject, &[]).map_err(ScepError::internal)?;
    let csr = ParsedCsr::from_der(&csr_der, CsrOptions::default()).map_err(ScepError::internal)?;
    let req = InternalCertRequest {
        role: InternalRole::ScepRa,
        endpoint: endpoint.clone(),
        issuer: issuer.clone(),
        csr,
        lifetime: None,
    };
    let issued = ca.issue_internal(req).await.map_err(|e| {
        ScepError::Unavailable(format!("issuing the SCEP RA certificate of {endpoint} by {issuer}: {e}"))
    })?;
    Ok(RaMaterial {
        certificate_der: issued.der,
        private_key_pkcs8: zeroize::Zeroizing::new(key.pkcs8_der().to_vec()),
        issuer: issuer.clone(),
    })
}
