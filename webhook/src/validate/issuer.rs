//! Issuer: the parent exists and may sign intermediates (pathLen, name constraints), the
//! chain has no cycle, and an imported key matches its certificate.

use der::Decode;
use pkiplane_api::convert::{ChainLink, issuer_chain};
use pkiplane_api::v1alpha1::Issuer;
use pkiplane_api::{check_issuer, issuer_from_resource};
use pkiplane_core::ObjectRef;
use pkiplane_core::duration::format_duration;
use pkiplane_core::issuer::{Issuer as CaIssuer, IssuerSource};

use super::Validate;
use crate::issuer_facts::IssuerFacts;
use crate::{ClusterView, Verdict, object_id};
use pkiplane_core::issuer::intermediate_path_len;

/// Signature algorithms too weak for a CA certificate: md5WithRSAEncryption,
/// sha1WithRSAEncryption, ecdsa-with-SHA1, dsa-with-sha1.
const WEAK_SIGNATURES: [(&str, &str); 4] = [
    ("1.2.840.113549.1.1.4", "md5WithRSAEncryption"),
    ("1.2.840.113549.1.1.5", "sha1WithRSAEncryption"),
    ("1.2.840.10045.4.1", "ecdsa-with-SHA1"),
    ("1.2.840.10040.4.3", "dsa-with-sha1"),
];

impl Validate for Issuer {
    const KIND: &'static str = "Issuer";

    fn validate(&self, _old: Option<&Self>, view: &ClusterView) -> Verdict {
        let mut verdict = Verdict::default();
        if let Err(errors) = check_issuer(self) {
            verdict.deny_all(errors);
            return verdict;
        }
        let id = object_id(&self.metadata);
        if self.spec.secret_ref.is_some() {
            imported(self, &id, view, &mut verdict);
        }
        if let Some(parent_ref) = &self.spec.parent_ref {
            let parent_id = ObjectRef::new(&id.namespace, &parent_ref.name);
            match view.issuer(&parent_id).filter(|_| parent_id != id) {
                None => verdict.deny(
                    "spec.parentRef.name",
                    format!("Issuer {parent_id} does not exist; create the parent first, or fix the name"),
                ),
                Some(parent) => {
                    chain_has_no_cycle(self, &id, view, &mut verdict);
                    parent_may_sign(self, &parent.facts, view, &mut verdict);
                }
            }
        }
        verdict
    }
}

/// Following parentRef from the new version of this Issuer must reach a root.
fn chain_has_no_cycle(issuer: &Issuer, id: &ObjectRef, view: &ClusterView, verdict: &mut Verdict) {
    let link = |i: &ObjectRef| {
        if i == id {
            return Some(
                issuer
                    .spec
                    .parent_ref
                    .as_ref()
                    .map_or(ChainLink::Root, |p| ChainLink::Parent(ObjectRef::new(&id.namespace, &p.name))),
            );
        }
        view.issuer(i).map(|e| e.facts.link.clone())
    };
    if let Err(e) = issuer_chain(id, link) {
        verdict.deny("spec.parentRef.name", format!("{e}; every chain must end at a selfSigned or imported root"));
    }
}

/// The parent must be a CA whose pathLen leaves room for this intermediate, and this
/// intermediate's name constraints must lie within the parent's.
fn parent_may_sign(issuer: &Issuer, parent: &IssuerFacts, view: &ClusterView, verdict: &mut Verdict) {
    if !parent.is_ca {
        verdict.deny(
            "spec.parentRef.name",
            format!("Issuer {}'s certificate is not a CA certificate (no basicConstraints CA:TRUE)", parent.id),
        );
    }
    let own = issuer.spec.path_len.and_then(|n| u8::try_from(n).ok());
    if let Err(why) = intermediate_path_len(&parent.id, parent.path_len, own) {
        let field = if parent.path_len == Some(0) { "spec.parentRef.name" } else { "spec.pathLen" };
        verdict.deny(field, why);
    }
    let own_constraints = match issuer_from_resource(issuer, &Vec::new()).map(|c| c.source) {
        Ok(IssuerSource::Intermediate { params, .. }) => params.name_constraints,
        _ => return,
    };
    for outer in &parent.name_constraints {
        if let Err(why) = outer.permits_subset(&own_constraints) {
            verdict.deny(
                "spec.nameConstraints",
                format!("{why}: an intermediate's name constraints must lie within those of {}", parent.id),
            );
        }
    }
    let own_validity = issuer.spec.validity.as_deref().and_then(|v| pkiplane_core::duration::parse_duration(v).ok());
    if let (Some(own), Some(left)) = (own_validity, parent.lifetime.remaining(view.now()))
        && own > left
    {
        verdict.warn(format!(
            "spec.validity {} is longer than parent {}'s remaining {}: the certificate will end with the parent's",
            format_duration(own),
            parent.id,
            format_duration(left)
        ));
    }
}

/// An imported CA: its certificate and key are read (when Secrets are visible), must
/// match, must be a CA, and must not be signed with a broken hash.
fn imported(issuer: &Issuer, id: &ObjectRef, view: &ClusterView, verdict: &mut Verdict) {
    let Some(secrets) = view.secrets() else { return };
    let secret_name = issuer.spec.secret_ref.as_ref().map(|s| s.name.as_str()).unwrap_or_default();
    if secrets.secret_data(&id.namespace, secret_name).is_none() {
        verdict.warn(format!(
            "Secret {}/{secret_name} (spec.secretRef) does not exist yet: the Issuer stays not Ready until it does",
            id.namespace
        ));
        return;
    }
    let config = match issuer_from_resource(issuer, &SecretsRef(secrets)) {
        Ok(config) => config,
        Err(errors) => {
            verdict.deny_all(errors);
            return;
        }
    };
    if let IssuerSource::Imported(ca) = &config.source
        && let Some(name) = weak_signature(&ca.certificate_pem)
    {
        verdict.deny(
            "spec.secretRef.name",
            format!(
                "the imported CA certificate is signed with {name}, which is broken; re-issue it with SHA-256 or better"
            ),
        );
    }
    if let Err(e) = CaIssuer::import(&config) {
        let why = e.to_string();
        let why = why.strip_prefix(&format!("issuer {}: ", config.id)).unwrap_or(&why).to_string();
        verdict.deny("spec.secretRef.name", format!("Secret {}/{secret_name}: {why}", id.namespace));
    }
}

fn weak_signature(certificate_pem: &str) -> Option<&'static str> {
    let der = pkiplane_core::x509::pem::decode_one(certificate_pem.as_bytes(), "CERTIFICATE").ok()?;
    let cert = x509_cert::Certificate::from_der(&der).ok()?;
    let oid = cert.signature_algorithm().oid.to_string();
    WEAK_SIGNATURES.iter().find(|(o, _)| *o == oid).map(|(_, name)| *name)
}

/// A `&dyn SecretLookup` as an `impl SecretLookup`.
pub(crate) struct SecretsRef<'a>(pub &'a (dyn pkiplane_api::SecretLookup + Send + Sync));

impl pkiplane_api::SecretLookup for SecretsRef<'_> {
    fn secret_data(&self, namespace: &str, name: &str) -> Option<std::collections::BTreeMap<String, Vec<u8>>> {
        self.0.secret_data(namespace, name)
    }
}
