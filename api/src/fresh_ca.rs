//! A CA core put together from manifests with new CA material: how tests, examples and
//! benchmarks start. A server loads the stored material instead (`pkiplane serve`).

use std::sync::Arc;
use std::time::SystemTime;

use pkiplane_core::issuance::Ca;
use pkiplane_core::issuer::{Issuer, IssuerError, IssuerSource};

use crate::convert::{FieldError, issuer_from_resource, profile_from_resource};
use crate::manifests::Manifests;

/// Why the manifests do not make a CA.
#[derive(Debug, thiserror::Error)]
pub enum FreshCaError {
    #[error("{}", FieldError::join(.0))]
    Resource(Vec<FieldError>),
    #[error(transparent)]
    Issuer(#[from] IssuerError),
    #[error("the parent of {0:?} is not among the Issuers")]
    MissingParent(Vec<String>),
}

/// Creates new CA material for every Issuer of `manifests` (parents before children,
/// whatever their order in the files) and puts the Issuers and every CertificateProfile
/// into `ca`.
pub fn put_fresh(ca: &Ca, manifests: &Manifests, now: SystemTime) -> Result<(), FreshCaError> {
    let mut pending = Vec::new();
    for res in &manifests.issuers {
        pending.push(issuer_from_resource(res, manifests).map_err(FreshCaError::Resource)?);
    }
    while !pending.is_empty() {
        let before = pending.len();
        let mut waiting = Vec::new();
        for cfg in pending {
            let parent = match &cfg.source {
                IssuerSource::Intermediate { parent, .. } => match ca.issuer(parent) {
                    Some(p) => Some(p),
                    None => {
                        waiting.push(cfg);
                        continue;
                    }
                },
                _ => None,
            };
            let issuer = match cfg.source {
                IssuerSource::Imported(_) => Issuer::import(&cfg)?,
                _ => Issuer::create(&cfg, parent.as_deref(), now)?.0,
            };
            ca.put_issuer(Arc::new(issuer));
        }
        if waiting.len() == before {
            return Err(FreshCaError::MissingParent(waiting.iter().map(|c| c.id.to_string()).collect()));
        }
        pending = waiting;
    }
    for res in &manifests.profiles {
        ca.put_profile(profile_from_resource(res).map_err(FreshCaError::Resource)?);
    }
    Ok(())
}
