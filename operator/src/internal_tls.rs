//! The internal CA in the cluster: bootstraps and rotates Secret `pkiplane-internal-ca`,
//! keeps the fixed leaf Secrets (`pkiplane-ca-tls`, `pkiplane-webhook-tls`,
//! `pkiplane-operator-tls`) issued and renewed, and the webhook configurations' caBundle
//! equal to the internal CA bundle. Runs every tick while leading.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::SystemTime;

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{MutatingWebhookConfiguration, ValidatingWebhookConfiguration};
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Client;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use pkiplane_api::manifests::secret_entries;
use zeroize::Zeroizing;

use crate::ca_client::ClientIdentity;
use crate::context::Context;
use crate::error::Result;
use crate::internal_ca::{
    CA_CRT, InternalCa, LeafSpec, RootDecision, TLS_CRT, TLS_KEY, leaf_needs_issuing, leaf_secret_entries,
};
use crate::status::FIELD_MANAGER;

pub const INTERNAL_CA_SECRET: &str = "pkiplane-internal-ca";
pub const CA_TLS_SECRET: &str = "pkiplane-ca-tls";
pub const WEBHOOK_TLS_SECRET: &str = "pkiplane-webhook-tls";
pub const OPERATOR_TLS_SECRET: &str = "pkiplane-operator-tls";
pub const CA_SERVICE: &str = "pkiplane-ca";
pub const WEBHOOK_SERVICE: &str = "pkiplane-webhook";
pub const VALIDATING_WEBHOOK: &str = "pkiplane-validating";
pub const MUTATING_WEBHOOK: &str = "pkiplane-mutating";
/// Annotation holding the names a leaf was issued for.
pub const NAMES_ANNOTATION: &str = "pkiplane.dev/certificate-names";

/// Labels on every object the operator creates.
pub fn managed_labels() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), "pkiplane".to_string()),
        ("app.kubernetes.io/managed-by".to_string(), "pkiplane-operator".to_string()),
    ])
}

/// A Secret of `entries` (as `data`), for server-side apply.
pub fn secret(
    namespace: &str,
    name: &str,
    type_: &str,
    entries: BTreeMap<String, Vec<u8>>,
    annotations: BTreeMap<String, String>,
) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(namespace.into()),
            labels: Some(managed_labels()),
            annotations: (!annotations.is_empty()).then_some(annotations),
            ..Default::default()
        },
        type_: Some(type_.into()),
        data: Some(entries.into_iter().map(|(k, v)| (k, ByteString(v))).collect()),
        ..Default::default()
    }
}

pub async fn apply_secret(api: &Api<Secret>, secret: &Secret) -> Result<Secret> {
    let name = secret.metadata.name.clone().unwrap_or_default();
    Ok(api.patch(&name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(secret)).await?)
}

fn cluster_ip(service: &Service) -> Option<IpAddr> {
    service.spec.as_ref()?.cluster_ip.as_deref().filter(|ip| *ip != "None")?.parse().ok()
}

/// Reads or creates the internal CA, rotating it when due.
async fn ensure_root(secrets: &Api<Secret>, namespace: &str, now: SystemTime) -> Result<InternalCa> {
    let existing = secrets.get_opt(INTERNAL_CA_SECRET).await?;
    let current = existing.as_ref().and_then(|s| match InternalCa::from_secret(&secret_entries(s)) {
        Ok(ca) => Some(ca),
        Err(e) => {
            tracing::warn!(error = %e, "internal CA Secret unreadable; creating a new CA");
            None
        }
    });
    let next = match (InternalCa::decide(current.as_ref(), now), current) {
        (RootDecision::Keep, Some(ca)) => return Ok(ca),
        (RootDecision::Rotate, Some(ca)) => {
            tracing::info!("rotating the internal CA (past 2/3 of its lifetime); the old root stays in ca.crt");
            ca.rotate(now)?
        }
        _ => {
            tracing::info!("creating the internal CA");
            InternalCa::generate(now)?
        }
    };
    let secret = secret(namespace, INTERNAL_CA_SECRET, "kubernetes.io/tls", next.secret_entries(), BTreeMap::new());
    match existing {
        // A create, not an apply, when missing: two operators racing at bootstrap must not
        // both win (the loser re-reads on its next tick).
        None => {
            secrets.create(&PostParams::default(), &secret).await?;
        }
        Some(_) => {
            apply_secret(secrets, &secret).await?;
        }
    }
    Ok(next)
}

/// Issues or renews one leaf Secret in `namespace`; returns its entries.
pub async fn ensure_leaf(
    secrets: &Api<Secret>,
    namespace: &str,
    name: &str,
    spec: &LeafSpec,
    ca: &InternalCa,
    owner: Option<OwnerReference>,
    now: SystemTime,
) -> Result<BTreeMap<String, Vec<u8>>> {
    let existing = secrets.get_opt(name).await?;
    let entries = existing.as_ref().map(secret_entries);
    let names = existing.as_ref().and_then(|s| s.metadata.annotations.as_ref()?.get(NAMES_ANNOTATION).cloned());
    if !leaf_needs_issuing(entries.as_ref(), names.as_deref(), spec, ca, now) {
        return Ok(entries.unwrap_or_default());
    }
    tracing::info!(%namespace, %name, "issuing internal certificate");
    let leaf = ca.issue_leaf(spec, now)?;
    let entries = leaf_secret_entries(&leaf, ca);
    let annotations = BTreeMap::from([(NAMES_ANNOTATION.to_string(), spec.fingerprint())]);
    let mut leaf_secret = secret(namespace, name, "kubernetes.io/tls", entries.clone(), annotations);
    leaf_secret.metadata.owner_references = owner.map(|o| vec![o]);
    apply_secret(secrets, &leaf_secret).await?;
    Ok(entries)
}

/// One pass: root, fixed leaves, webhook caBundles, the CA client's identity.
pub async fn reconcile_internal_tls(ctx: &Context) -> Result<()> {
    let ns = ctx.config.namespace.as_str();
    let now = SystemTime::now();
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let services: Api<Service> = Api::namespaced(ctx.client.clone(), ns);
    let ca = ensure_root(&secrets, ns, now).await?;
    *ctx.internal_ca.write().unwrap_or_else(|e| e.into_inner()) = Some(ca.clone());

    let ca_ip = services.get_opt(CA_SERVICE).await?.as_ref().and_then(cluster_ip);
    let webhook_ip = services.get_opt(WEBHOOK_SERVICE).await?.as_ref().and_then(cluster_ip);
    ensure_leaf(&secrets, ns, CA_TLS_SECRET, &LeafSpec::ca_service(ns, ca_ip), &ca, None, now).await?;
    ensure_leaf(&secrets, ns, WEBHOOK_TLS_SECRET, &LeafSpec::webhook(ns, webhook_ip), &ca, None, now).await?;
    let operator = ensure_leaf(&secrets, ns, OPERATOR_TLS_SECRET, &LeafSpec::operator(), &ca, None, now).await?;
    let text = |k: &str| String::from_utf8_lossy(operator.get(k).map(Vec::as_slice).unwrap_or_default()).into_owned();
    ctx.ca_client_identity(ClientIdentity {
        certificate_pem: text(TLS_CRT),
        key_pem: Zeroizing::new(text(TLS_KEY)),
        ca_bundle_pem: text(CA_CRT),
    });

    sync_webhook_ca_bundles(&ctx.client, ca.bundle_pem.as_bytes()).await
}

/// Sets `caBundle` of every webhook of `pkiplane-validating` / `pkiplane-mutating` (when
/// they exist) to the internal CA bundle; writes only on a difference.
async fn sync_webhook_ca_bundles(client: &Client, bundle: &[u8]) -> Result<()> {
    let validating: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    if let Some(mut config) = validating.get_opt(VALIDATING_WEBHOOK).await? {
        let mut changed = false;
        for webhook in config.webhooks.iter_mut().flatten() {
            changed |= set_bundle(&mut webhook.client_config.ca_bundle, bundle);
        }
        if changed {
            validating.replace(VALIDATING_WEBHOOK, &PostParams::default(), &config).await?;
            tracing::info!("updated caBundle of {VALIDATING_WEBHOOK}");
        }
    }
    let mutating: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    if let Some(mut config) = mutating.get_opt(MUTATING_WEBHOOK).await? {
        let mut changed = false;
        for webhook in config.webhooks.iter_mut().flatten() {
            changed |= set_bundle(&mut webhook.client_config.ca_bundle, bundle);
        }
        if changed {
            mutating.replace(MUTATING_WEBHOOK, &PostParams::default(), &config).await?;
            tracing::info!("updated caBundle of {MUTATING_WEBHOOK}");
        }
    }
    Ok(())
}

fn set_bundle(field: &mut Option<ByteString>, bundle: &[u8]) -> bool {
    if field.as_ref().map(|b| b.0.as_slice()) == Some(bundle) {
        return false;
    }
    *field = Some(ByteString(bundle.to_vec()));
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_bundle_is_written_only_when_different() {
        let mut field = None;
        assert!(set_bundle(&mut field, b"pem"));
        assert!(!set_bundle(&mut field, b"pem"));
        assert!(set_bundle(&mut field, b"new"));
    }
}
