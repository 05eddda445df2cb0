//! What other objects need to know about an Issuer: how long it lives, how many CAs may
//! follow it, the name constraints it and its ancestors impose, and its key. Worked out
//! once per [`crate::ClusterView`], from the CA certificate when it is known (the status,
//! or an imported certificate) and otherwise from the spec.

use std::time::{Duration, SystemTime};

use pkiplane_api::SecretLookup;
use pkiplane_api::convert::ChainLink;
use pkiplane_api::v1alpha1::Issuer;
use pkiplane_core::ObjectRef;
use pkiplane_core::issuer::{IssuerSource, NameConstraintsConfig, intermediate_path_len};
use pkiplane_core::keys::PublicKeyInfo;
use pkiplane_core::x509::cert::CertInfo;
use pkiplane_core::x509::pem;

use crate::object_id;

/// When an Issuer's certificate ends, as far as anything it signs is concerned.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lifetime {
    /// The earliest known notAfter on the chain (this CA's, or an ancestor's).
    pub ends_at: Option<SystemTime>,
    /// The shortest lifetime of a CA on the chain that is not created yet: it starts
    /// when it is created.
    pub planned: Option<Duration>,
}

impl Lifetime {
    /// How long from `now` the CA can still sign; `None` when nothing bounds it.
    pub fn remaining(&self, now: SystemTime) -> Option<Duration> {
        let fixed = self.ends_at.map(|end| end.duration_since(now).unwrap_or(Duration::ZERO));
        match (fixed, self.planned) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// The facts of one Issuer.
#[derive(Clone, Debug)]
pub struct IssuerFacts {
    pub id: ObjectRef,
    /// What signs it.
    pub link: ChainLink,
    pub lifetime: Lifetime,
    /// pathLenConstraint of its certificate (or the one it will get).
    pub path_len: Option<u8>,
    /// Whether its certificate is a CA certificate (false only for an imported
    /// certificate without basicConstraints CA:TRUE).
    pub is_ca: bool,
    /// Name constraints of this CA and every CA above it.
    pub name_constraints: Vec<NameConstraintsConfig>,
    /// Its key, when known.
    pub key: Option<PublicKeyInfo>,
}

/// The CA certificate of `issuer` when it is known: from its status, else (imported) from
/// its Secret's `tls.crt`.
pub fn known_certificate(issuer: &Issuer, secrets: Option<&(dyn SecretLookup + Send + Sync)>) -> Option<CertInfo> {
    let from_status = issuer.status.as_ref().and_then(|s| s.certificate.as_deref()).map(|p| p.as_bytes().to_vec());
    let from_secret = || {
        let secret_ref = issuer.spec.secret_ref.as_ref()?;
        let id = object_id(&issuer.metadata);
        secrets?.secret_data(&id.namespace, &secret_ref.name)?.remove("tls.crt")
    };
    let pem_bytes = from_status.or_else(from_secret)?;
    let der = pem::decode_chain(&pem_bytes, "CERTIFICATE").ok()?.into_iter().next()?;
    CertInfo::from_der(&der).ok()
}

/// Works out the facts of `issuer`, given those of its parent (when it has one and the
/// parent exists).
pub fn issuer_facts(
    issuer: &Issuer,
    parent: Option<&IssuerFacts>,
    secrets: Option<&(dyn SecretLookup + Send + Sync)>,
) -> IssuerFacts {
    let id = object_id(&issuer.metadata);
    let spec = &issuer.spec;
    let link = match &spec.parent_ref {
        Some(p) => ChainLink::Parent(ObjectRef::new(&id.namespace, &p.name)),
        None => ChainLink::Root,
    };
    let cert = known_certificate(issuer, secrets);
    let status_end = issuer.status.as_ref().and_then(|s| s.not_after.as_ref()).map(|t| SystemTime::from(t.0));
    let ends_at = status_end.or(cert.as_ref().map(|c| c.not_after));
    // A parsed spec gives the planned lifetime, path length and constraints; an invalid
    // spec gives none (its own validation reports why).
    let params = planned_params(issuer);
    let parent_lifetime = parent.map(|p| p.lifetime).unwrap_or_default();
    let lifetime = match ends_at {
        // A certificate that exists was already capped by its parent when signed.
        Some(end) => Lifetime { ends_at: Some(end), planned: None },
        None => Lifetime {
            ends_at: parent_lifetime.ends_at,
            planned: match (params.as_ref().map(|p| p.0), parent_lifetime.planned) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
        },
    };
    let own_path_len = params.as_ref().and_then(|p| p.1);
    let path_len = match (&cert, parent) {
        (Some(c), _) => c.basic_constraints.as_ref().and_then(|b| b.path_len_constraint),
        (None, Some(p)) => intermediate_path_len(&p.id, p.path_len, own_path_len).unwrap_or(Some(0)),
        (None, None) => own_path_len,
    };
    let mut name_constraints = parent.map(|p| p.name_constraints.clone()).unwrap_or_default();
    if let Some(nc) = params.as_ref().map(|p| &p.2)
        && !nc.is_empty()
    {
        name_constraints.push(nc.clone());
    }
    let key = match &cert {
        Some(c) => spki_info(&c.spki_der),
        None if spec.secret_ref.is_none() => Some(spec.key_algorithm.unwrap_or_default().public_info()),
        None => None,
    };
    IssuerFacts {
        id,
        link,
        lifetime,
        path_len,
        is_ca: cert.as_ref().is_none_or(CertInfo::is_ca),
        name_constraints,
        key,
    }
}

/// (validity, pathLen, name constraints) of a CA pkiplane creates from the spec.
fn planned_params(issuer: &Issuer) -> Option<(Duration, Option<u8>, NameConstraintsConfig)> {
    // The conversion needs no Secret for a created CA.
    let config = pkiplane_api::issuer_from_resource(issuer, &Vec::new()).ok()?;
    match config.source {
        IssuerSource::SelfSigned(p) | IssuerSource::Intermediate { params: p, .. } => {
            Some((p.validity, p.path_len, p.name_constraints))
        }
        IssuerSource::Imported(_) => None,
    }
}

fn spki_info(spki_der: &[u8]) -> Option<PublicKeyInfo> {
    use der::Decode;
    let spki = x509_cert::spki::SubjectPublicKeyInfoRef::from_der(spki_der).ok()?;
    Some(PublicKeyInfo::from_spki(&spki))
}
