//! pkiplane's own signing certificate for server-generated key packages. RFC 7030 4.4.2
//! has an encrypted private key returned inside a SignedData "signed by the party that
//! generated the private key": that is this endpoint, so it holds a short-lived
//! certificate of its own, issued by the profile's Issuer through the normal pipeline
//! (it lands in the inventory like every other) and renewed when half its life is gone.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use pkiplane_core::keys::{CaSigner, KeyAlgorithm, generate_key};
use pkiplane_core::model::ObjectRef;
use pkiplane_core::service::{Authority, InternalCertRequest, InternalRole};
use pkiplane_core::x509::csr::{CsrOptions, ParsedCsr};
use pkiplane_core::x509::csr_build::build_csr;
use pkiplane_core::x509::names::{SubjectAttribute, build_name};

/// Lifetime of a key-package signing certificate (the CA's role profile sets it).
const LIFETIME: Duration = pkiplane_core::service::EST_SIGNER_LIFETIME;

/// A signing key with its certificate and the chain above it.
pub struct KeyPackageSigner {
    pub signer: CaSigner,
    pub cert_der: Vec<u8>,
    /// The signer's certificate followed by its issuer's chain.
    pub certs: Vec<Vec<u8>>,
    pub not_after: SystemTime,
}

/// Signers per (endpoint, issuer), made on first use.
#[derive(Default)]
pub struct KeyPackageSigners {
    by_issuer: tokio::sync::Mutex<HashMap<ObjectRef, Arc<KeyPackageSigner>>>,
}

impl KeyPackageSigners {
    /// The signer for `issuer`, issuing a fresh certificate when there is none or the
    /// current one is past half its life.
    pub async fn get(
        &self,
        ca: &dyn Authority,
        endpoint: &ObjectRef,
        issuer: &ObjectRef,
    ) -> Result<Arc<KeyPackageSigner>, String> {
        let mut map = self.by_issuer.lock().await;
        let now = SystemTime::now();
        if let Some(s) = map.get(issuer)
            && s.not_after > now + LIFETIME / 2
        {
            return Ok(s.clone());
        }
        let signer = Arc::new(issue_signer(ca, endpoint, issuer).await?);
        map.insert(issuer.clone(), signer.clone());
        Ok(signer)
    }
}

async fn issue_signer(
    ca: &dyn Authority,
    endpoint: &ObjectRef,
    issuer_id: &ObjectRef,
) -> Result<KeyPackageSigner, String> {
    let issuer = ca.issuer(issuer_id).ok_or_else(|| format!("issuer {issuer_id} is not loaded"))?;
    let key = generate_key(KeyAlgorithm::EcdsaP256).map_err(|e| e.to_string())?;
    let cn = format!("pkiplane EST key generation {endpoint}");
    let subject = build_name(&[(SubjectAttribute::CommonName, cn)])?;
    let csr = ParsedCsr::from_der(&build_csr(&key, &subject, &[]).map_err(|e| e.to_string())?, CsrOptions::default())
        .map_err(|e| e.to_string())?;
    let req = InternalCertRequest {
        role: InternalRole::EstSigner,
        endpoint: endpoint.clone(),
        issuer: issuer_id.clone(),
        csr,
        lifetime: None,
    };
    let issued = ca.issue_internal(req).await.map_err(|e| e.to_string())?;
    let mut certs = vec![issued.der.clone()];
    certs.extend(std::iter::once(&issuer.cert).chain(issuer.chain.iter()).map(|c| c.der.clone()));
    Ok(KeyPackageSigner {
        signer: CaSigner::new(&key).map_err(|e| e.to_string())?,
        cert_der: issued.der,
        certs,
        not_after: issued.record.not_after,
    })
}
