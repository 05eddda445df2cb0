//! Keeping the running CA in step with its configuration source while it serves.
//!
//! Unlike start-up in `pkiplane serve` (where a bad manifest is an error to fix before
//! anything runs), the CA service must keep serving every healthy Issuer when one is
//! broken: a missing parent, an unreadable imported Secret or a cycle fails that Issuer
//! (and its descendants) alone, and the failure is reported on `/v1/issuers` so the
//! operator can put it on the Issuer's Ready condition.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use pkiplane_api::{Manifests, issuer_from_resource, profile_from_resource};
use pkiplane_core::inventory::CaMaterialStore;
use pkiplane_core::issuance::Ca;
use pkiplane_core::issuer::{IssuerConfig, IssuerSource};
use pkiplane_core::model::ObjectRef;

/// Issuers that could not be loaded, with the reason, as `/v1/issuers` reports them.
pub type IssuerProblems = Arc<RwLock<BTreeMap<ObjectRef, String>>>;

fn object_ref(meta: &kube::core::ObjectMeta) -> ObjectRef {
    ObjectRef::new(meta.namespace.as_deref().unwrap_or("default"), meta.name.as_deref().unwrap_or_default())
}

/// Loads every Issuer of `manifests` the CA does not have yet (parents first), then
/// replaces the profile set. Issuers already loaded are kept as they are: their keys are
/// never regenerated behind a running service. Returns the problems found, which also
/// replace the content of `problems`.
pub async fn sync(
    ca: &Ca,
    manifests: &Manifests,
    materials: &dyn CaMaterialStore,
    problems: &IssuerProblems,
    now: SystemTime,
) -> BTreeMap<ObjectRef, String> {
    let mut failed: BTreeMap<ObjectRef, String> = BTreeMap::new();
    let mut pending: BTreeMap<ObjectRef, IssuerConfig> = BTreeMap::new();
    for issuer in &manifests.issuers {
        let id = object_ref(&issuer.metadata);
        match issuer_from_resource(issuer, manifests) {
            Ok(cfg) => {
                pending.insert(id, cfg);
            }
            Err(errors) => {
                let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
                failed.insert(id, text.join("; "));
            }
        }
    }
    // Repeatedly load whatever has its parent in place; what is left over has a missing
    // or failed parent, or sits on a cycle.
    loop {
        let ready: Vec<ObjectRef> = pending
            .iter()
            .filter(|(_, cfg)| match &cfg.source {
                IssuerSource::Intermediate { parent, .. } => ca.issuer(parent).is_some(),
                _ => true,
            })
            .map(|(id, _)| id.clone())
            .collect();
        if ready.is_empty() {
            break;
        }
        for id in ready {
            let cfg = pending.remove(&id).expect("listed above");
            if ca.issuer(&id).is_some() {
                continue;
            }
            match crate::bootstrap::load_issuer(ca, &cfg, materials, now).await {
                Ok(from) => tracing::info!(issuer = %id, "{} CA", from.verb()),
                Err(e) => {
                    failed.insert(id, format!("{e:#}"));
                }
            }
        }
    }
    for (id, cfg) in pending {
        let why = match &cfg.source {
            IssuerSource::Intermediate { parent, .. } if failed.contains_key(parent) => {
                format!("parent Issuer {parent} is not ready")
            }
            IssuerSource::Intermediate { parent, .. }
                if !manifests.issuers.iter().any(|i| &object_ref(&i.metadata) == parent) =>
            {
                format!("spec.parentRef names {parent}, which does not exist")
            }
            _ => "the Issuer chain has a cycle through this Issuer".to_string(),
        };
        failed.insert(id, why);
    }
    for (id, why) in &failed {
        tracing::warn!(issuer = %id, reason = %why, "Issuer not loaded");
    }
    // Issuers loaded earlier: stage or promote what is due now.
    super::rollover::tick(ca, manifests, materials, now).await;
    sync_profiles(ca, manifests);
    *problems.write().unwrap_or_else(|e| e.into_inner()) = failed.clone();
    failed
}

/// Replaces the loaded profiles with those of `manifests` whose Issuer is loaded; an
/// invalid profile is skipped (and logged) without touching the others.
fn sync_profiles(ca: &Ca, manifests: &Manifests) {
    let mut keep = Vec::new();
    for p in &manifests.profiles {
        let id = object_ref(&p.metadata);
        match profile_from_resource(p) {
            Ok(profile) if ca.issuer(&profile.issuer).is_some() => {
                keep.push(profile.id.clone());
                ca.put_profile(profile);
            }
            Ok(profile) => {
                tracing::warn!(profile = %id, issuer = %profile.issuer, "profile not loaded: its Issuer is not ready")
            }
            Err(e) => {
                let errors: Vec<String> = e.iter().map(|f| f.to_string()).collect();
                tracing::warn!(profile = %id, errors = %errors.join("; "), "profile not loaded: invalid");
            }
        }
    }
    for old in ca.profiles() {
        if !keep.contains(&old.id) {
            ca.remove_profile(&old.id);
        }
    }
}
