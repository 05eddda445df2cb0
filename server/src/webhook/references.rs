//! What the object under review refers to: the Secrets it names (read with targeted GETs,
//! bounded by a short timeout) and the Issuers and profiles it names (fetched directly
//! only when the watch cache has not seen them yet, e.g. an Issuer created a moment
//! before the profile in the same `kubectl apply`).

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::core::DynamicObject;
use kube::core::admission::AdmissionRequest;
use kube::{Api, Client};
use pkiplane_api::SecretLookup;
use pkiplane_api::manifests::secret_entries;
use pkiplane_api::v1alpha1::{CertificateProfile, EnrollmentEndpoint, Issuer};
use pkiplane_webhook::ClusterView;

/// How long one GET against the API server may take.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_millis(1500);

/// Names an object refers to, in its namespace.
#[derive(Debug, Default)]
pub struct References {
    pub namespace: String,
    pub secrets: Vec<String>,
    pub issuers: Vec<String>,
    pub profiles: Vec<String>,
}

/// The references of the request's object (none for kinds that are not ours).
pub fn references(request: &AdmissionRequest<DynamicObject>) -> References {
    let Some(object) = &request.object else { return References::default() };
    let namespace = object.metadata.namespace.clone().or_else(|| request.namespace.clone()).unwrap_or_default();
    let value = serde_json::to_value(object).unwrap_or_default();
    let mut r = References { namespace, ..Default::default() };
    match request.kind.kind.as_str() {
        "Issuer" => {
            if let Ok(i) = serde_json::from_value::<Issuer>(value) {
                r.secrets.extend(i.spec.secret_ref.map(|s| s.name));
                r.issuers.extend(i.spec.parent_ref.map(|p| p.name));
            }
        }
        "CertificateProfile" => {
            if let Ok(p) = serde_json::from_value::<CertificateProfile>(value) {
                r.issuers.push(p.spec.issuer_ref.name);
            }
        }
        "EnrollmentEndpoint" => {
            if let Ok(e) = serde_json::from_value::<EnrollmentEndpoint>(value) {
                endpoint_references(&e, &mut r);
            }
        }
        _ => {}
    }
    r
}

fn endpoint_references(e: &EnrollmentEndpoint, r: &mut References) {
    let spec = &e.spec;
    r.profiles.extend(spec.profiles.iter().map(|p| p.name.clone()));
    if let Some(tls) = &spec.tls {
        r.secrets.extend(tls.secret_ref.as_ref().map(|s| s.name.clone()));
        r.issuers.extend(tls.issuer_ref.as_ref().map(|i| i.name.clone()));
    }
    let anchors = spec
        .est
        .as_ref()
        .and_then(|s| s.client_certificates.as_ref().map(|c| &c.trust_anchors))
        .into_iter()
        .chain(spec.cmp.as_ref().and_then(|c| c.trust_anchors.as_ref()));
    for t in anchors {
        r.secrets.extend(t.secret_ref.as_ref().map(|s| s.name.clone()));
        r.issuers.extend(t.issuer_ref.as_ref().map(|i| i.name.clone()));
    }
    if let Some(s) =
        spec.acme.as_ref().and_then(|a| a.external_account_binding.as_ref()).and_then(|b| b.secret_ref.as_ref())
    {
        r.secrets.push(s.name.clone());
    }
    if let Some(b) = spec.est.as_ref().and_then(|s| s.basic_auth.as_ref()) {
        r.secrets.push(b.secret_ref.name.clone());
    }
    if let Some(scep) = &spec.scep {
        r.secrets.extend(scep.static_challenge.as_ref().map(|s| s.secret_ref.name.clone()));
        r.secrets
            .extend(scep.dynamic_challenges.as_ref().and_then(|d| d.api_secret_ref.as_ref()).map(|s| s.name.clone()));
    }
    if let Some(s) = spec.cmp.as_ref().and_then(|c| c.shared_secrets.as_ref()) {
        r.secrets.push(s.secret_ref.name.clone());
    }
}

/// Secrets read for one request.
#[derive(Default)]
pub struct FetchedSecrets {
    namespace: String,
    found: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
}

impl SecretLookup for FetchedSecrets {
    fn secret_data(&self, namespace: &str, name: &str) -> Option<BTreeMap<String, Vec<u8>>> {
        (namespace == self.namespace).then(|| self.found.get(name).cloned()).flatten()
    }
}

/// GETs every referenced Secret. A Secret that cannot be read in time is reported as an
/// error (the request then fails closed rather than being judged on partial facts).
pub async fn fetch_secrets(client: &Client, refs: &References) -> Result<FetchedSecrets, String> {
    let api: Api<Secret> = Api::namespaced(client.clone(), &refs.namespace);
    let names: std::collections::BTreeSet<&String> = refs.secrets.iter().collect();
    // Concurrently: an EST endpoint names two or three Secrets, and the review's latency
    // is the slowest GET rather than their sum.
    let gets = names.into_iter().map(|name| {
        let api = api.clone();
        async move { (name, tokio::time::timeout(LOOKUP_TIMEOUT, api.get_opt(name)).await) }
    });
    let mut out = FetchedSecrets { namespace: refs.namespace.clone(), found: BTreeMap::new() };
    for (name, result) in futures::future::join_all(gets).await {
        match result {
            Ok(Ok(Some(secret))) => {
                out.found.insert(name.clone(), secret_entries(&secret));
            }
            Ok(Ok(None)) => {}
            Ok(Err(e)) => return Err(format!("cannot read Secret {}/{name}: {e}", refs.namespace)),
            Err(_) => return Err(format!("reading Secret {}/{name} timed out", refs.namespace)),
        }
    }
    Ok(out)
}

/// Issuers and profiles the object names that the view lacks, fetched directly; empty
/// when the cache already has them all (the usual case).
pub async fn fetch_missing(
    client: &Client,
    view: &ClusterView,
    refs: &References,
) -> (Vec<Issuer>, Vec<CertificateProfile>) {
    let id = |name: &str| pkiplane_core::ObjectRef::new(&refs.namespace, name);
    let mut issuers = Vec::new();
    let issuer_api: Api<Issuer> = Api::namespaced(client.clone(), &refs.namespace);
    for name in refs.issuers.iter().filter(|n| view.issuer(&id(n)).is_none()) {
        if let Ok(Ok(Some(i))) = tokio::time::timeout(LOOKUP_TIMEOUT, issuer_api.get_opt(name)).await {
            issuers.push(i);
        }
    }
    let mut profiles = Vec::new();
    let profile_api: Api<CertificateProfile> = Api::namespaced(client.clone(), &refs.namespace);
    for name in refs.profiles.iter().filter(|n| view.profile(&id(n)).is_none()) {
        if let Ok(Ok(Some(p))) = tokio::time::timeout(LOOKUP_TIMEOUT, profile_api.get_opt(name)).await {
            profiles.push(p);
        }
    }
    (issuers, profiles)
}
