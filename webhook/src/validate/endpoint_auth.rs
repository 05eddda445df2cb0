//! Whether an endpoint's protocol authenticates requesters, and whether the Secrets and
//! Issuers its settings name exist. Secret contents are checked by the same conversion
//! `pkiplane serve` and the endpoint pods use (`pkiplane_api::convert`, which ends in the
//! protocol's own `Settings::check()`), so the webhook refuses exactly what a server
//! would refuse to start with.

use pkiplane_api::FieldError;
use pkiplane_api::convert::{acme_settings, cmp_settings, est_settings, published_issuer_chain, scep_settings};
use pkiplane_api::v1alpha1::{EndpointProtocol, EnrollmentEndpoint, TrustAnchors};
use pkiplane_core::ObjectRef;

use super::issuer::SecretsRef;
use crate::{ClusterView, Verdict};

pub(super) fn check(endpoint: &EnrollmentEndpoint, id: &ObjectRef, view: &ClusterView, verdict: &mut Verdict) {
    let spec = &endpoint.spec;
    let secrets = view.secrets().map(SecretsRef);
    // The URL the endpoint will be served at in the cluster: the settings need one.
    let base_url = endpoint.cluster_base_url();
    let server_errors: Option<Vec<FieldError>> = match spec.protocol {
        EndpointProtocol::Acme => secrets.as_ref().and_then(|s| acme_settings(endpoint, s, &base_url).err()),
        EndpointProtocol::Est => {
            est_auth(endpoint, id, view, verdict);
            secrets.as_ref().and_then(|s| {
                // An issuerRef's anchors are the certificates the Issuer publishes on its
                // status; an Issuer applied together with the endpoint has none yet, and
                // then only the anchors' existence (checked above) can be judged.
                let published = |id: &ObjectRef| view.issuer(id).and_then(|e| published_issuer_chain(&e.resource));
                let mut checked = endpoint.clone();
                if let Some(est) = checked.spec.est.as_mut()
                    && let Some(issuer) =
                        est.client_certificates.as_ref().and_then(|c| c.trust_anchors.issuer_ref.as_ref())
                    && published(&ObjectRef::new(&id.namespace, &issuer.name)).is_none()
                {
                    est.client_certificates = None;
                }
                est_settings(&checked, s, &published, &base_url).err()
            })
        }
        EndpointProtocol::Scep => match &secrets {
            Some(s) => scep_settings(endpoint, s, &base_url).err(),
            None => {
                let scep = spec.scep.as_ref();
                let dynamic = scep.and_then(|s| s.dynamic_challenges.as_ref()).is_some_and(|d| d.enabled);
                if scep.and_then(|s| s.static_challenge.as_ref()).is_none() && !dynamic {
                    verdict.deny(
                        "spec.scep",
                        "a SCEP endpoint needs staticChallenge or enabled dynamicChallenges to authenticate PKCSReq",
                    );
                }
                None
            }
        },
        EndpointProtocol::Cmp => {
            cmp_auth(endpoint, id, view, verdict);
            secrets.as_ref().and_then(|s| cmp_settings(endpoint, s, &base_url).err())
        }
    };
    verdict.deny_all(server_errors.unwrap_or_default());
}

/// EST needs TLS client certificates or HTTP Basic, unless every profile it exposes
/// waits for manual approval.
fn est_auth(endpoint: &EnrollmentEndpoint, id: &ObjectRef, view: &ClusterView, verdict: &mut Verdict) {
    let est = endpoint.spec.est.clone().unwrap_or_default();
    if est.client_certificates.is_none() && est.basic_auth.is_none() && !all_need_approval(endpoint, id, view) {
        verdict.deny(
            "spec.est",
            "an EST endpoint needs clientCertificates or basicAuth: without either, anyone who reaches it gets \
             certificates (or make every exposed profile require approval)",
        );
    }
    if let Some(cc) = &est.client_certificates {
        trust_anchors(&cc.trust_anchors, "spec.est.clientCertificates.trustAnchors", id, view, verdict);
    }
}

/// CMP needs MAC secrets or trust anchors for signature protection.
fn cmp_auth(endpoint: &EnrollmentEndpoint, id: &ObjectRef, view: &ClusterView, verdict: &mut Verdict) {
    let cmp = endpoint.spec.cmp.clone().unwrap_or_default();
    if cmp.shared_secrets.is_none() && cmp.trust_anchors.is_none() {
        verdict.deny(
            "spec.cmp",
            "a CMP endpoint needs sharedSecrets (MAC protection) or trustAnchors (signature protection) to \
             authenticate requests",
        );
    }
    if let Some(t) = &cmp.trust_anchors
        && let Some(issuer) = &t.issuer_ref
    {
        issuer_exists(&issuer.name, "spec.cmp.trustAnchors.issuerRef.name", id, view, verdict);
    }
}

fn all_need_approval(endpoint: &EnrollmentEndpoint, id: &ObjectRef, view: &ClusterView) -> bool {
    !endpoint.spec.profiles.is_empty()
        && endpoint.spec.profiles.iter().all(|b| {
            view.profile(&ObjectRef::new(&id.namespace, &b.name))
                .and_then(|e| e.compiled.as_ref())
                .is_some_and(|p| p.approval_required)
        })
}

fn trust_anchors(t: &TrustAnchors, at: &str, id: &ObjectRef, view: &ClusterView, verdict: &mut Verdict) {
    if let Some(issuer) = &t.issuer_ref {
        issuer_exists(&issuer.name, &format!("{at}.issuerRef.name"), id, view, verdict);
    }
    if let Some(secret) = &t.secret_ref {
        secret_with_keys(view, &id.namespace, &secret.name, &["ca.crt"], &format!("{at}.secretRef.name"), verdict);
    }
}

fn issuer_exists(name: &str, field: &str, id: &ObjectRef, view: &ClusterView, verdict: &mut Verdict) {
    let issuer_id = ObjectRef::new(&id.namespace, name);
    if view.issuer(&issuer_id).is_none() {
        verdict.deny(field, format!("Issuer {issuer_id} does not exist; create it first, or fix the name"));
    }
}

/// Secret `namespace/name` exists and has non-empty `keys` (checked only when Secrets
/// are visible).
pub(super) fn secret_with_keys(
    view: &ClusterView,
    namespace: &str,
    name: &str,
    keys: &[&str],
    field: &str,
    verdict: &mut Verdict,
) {
    let Some(secrets) = view.secrets() else { return };
    let Some(data) = secrets.secret_data(namespace, name) else {
        verdict.deny(field, format!("Secret {namespace}/{name} not found; create it before the endpoint"));
        return;
    };
    for key in keys {
        if data.get(*key).is_none_or(|v| v.is_empty()) {
            verdict.deny(field, format!("Secret {namespace}/{name} has no non-empty `{key}` entry"));
        }
    }
}
