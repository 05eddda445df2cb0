//! Turning manifests into a running CA: issuers created, loaded or imported (parents
//! before children), and profiles compiled. Shared by `serve` and the offline tools.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::{Context, Result, anyhow, bail};
use pkiplane_api::{FieldError, Manifests, issuer_from_resource, profile_from_resource};
use pkiplane_core::inventory::{CaMaterialStore, Inventory};
use pkiplane_core::issuance::Ca;
use pkiplane_core::issuer::{Issuer, IssuerConfig, IssuerSource};
use pkiplane_core::model::ObjectRef;

/// What a bootstrap did, for the start-up log.
#[derive(Debug, Default)]
pub struct BootstrapReport {
    pub created: Vec<ObjectRef>,
    pub loaded: Vec<ObjectRef>,
    pub imported: Vec<ObjectRef>,
}

fn describe(kind: &str, id: &str, errors: &[FieldError]) -> anyhow::Error {
    anyhow!("{kind} {id} is invalid:\n  {}", errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n  "))
}

/// Compiles every Issuer of the manifests, in an order where parents come first.
pub fn issuer_configs(manifests: &Manifests) -> Result<Vec<IssuerConfig>> {
    let mut configs = BTreeMap::new();
    for issuer in &manifests.issuers {
        let ns = issuer.metadata.namespace.clone().unwrap_or_else(|| "default".into());
        let name = issuer.metadata.name.clone().unwrap_or_default();
        let cfg =
            issuer_from_resource(issuer, manifests).map_err(|e| describe("Issuer", &format!("{ns}/{name}"), &e))?;
        configs.insert(cfg.id.clone(), cfg);
    }
    let mut ordered = Vec::new();
    let mut done = BTreeSet::new();
    fn visit(
        id: &ObjectRef,
        configs: &BTreeMap<ObjectRef, IssuerConfig>,
        done: &mut BTreeSet<ObjectRef>,
        path: &mut Vec<ObjectRef>,
        out: &mut Vec<IssuerConfig>,
    ) -> Result<()> {
        if done.contains(id) {
            return Ok(());
        }
        if path.contains(id) {
            let cycle: Vec<String> = path.iter().chain(std::iter::once(id)).map(|r| r.to_string()).collect();
            bail!("Issuer chain has a cycle: {}", cycle.join(" -> "));
        }
        let cfg = &configs[id];
        if let IssuerSource::Intermediate { parent, .. } = &cfg.source {
            if !configs.contains_key(parent) {
                bail!("Issuer {id}: spec.parentRef names {parent}, which is not defined");
            }
            path.push(id.clone());
            visit(parent, configs, done, path, out)?;
            path.pop();
        }
        done.insert(id.clone());
        out.push(cfg.clone());
        Ok(())
    }
    for id in configs.keys() {
        visit(id, &configs, &mut done, &mut Vec::new(), &mut ordered)?;
    }
    Ok(ordered)
}

/// Builds the CA: every issuer ready to sign (stored material reused while its spec is
/// unchanged, new material created and saved otherwise) and every profile loaded.
pub async fn build_ca(
    manifests: &Manifests,
    inventory: Arc<dyn Inventory>,
    materials: &dyn CaMaterialStore,
    now: SystemTime,
) -> Result<(Ca, BootstrapReport)> {
    let ca = Ca::new(inventory);
    let mut report = BootstrapReport::default();
    for cfg in issuer_configs(manifests)? {
        if let IssuerSource::Intermediate { parent, .. } = &cfg.source {
            ca.issuer(parent).context("parent issuer not ready")?;
        }
        match load_issuer(&ca, &cfg, materials, now).await? {
            LoadedFrom::Created => report.created.push(cfg.id.clone()),
            LoadedFrom::Store => report.loaded.push(cfg.id.clone()),
            LoadedFrom::Import => report.imported.push(cfg.id.clone()),
        }
    }
    for p in &manifests.profiles {
        let ns = p.metadata.namespace.clone().unwrap_or_else(|| "default".into());
        let name = p.metadata.name.clone().unwrap_or_default();
        let profile =
            profile_from_resource(p).map_err(|e| describe("CertificateProfile", &format!("{ns}/{name}"), &e))?;
        if ca.issuer(&profile.issuer).is_none() {
            bail!("CertificateProfile {}: spec.issuerRef names {}, which is not defined", profile.id, profile.issuer);
        }
        ca.put_profile(profile);
    }
    Ok((ca, report))
}

/// Where a loaded Issuer's key and certificate came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadedFrom {
    /// Made now (no stored material, or it no longer fits the spec) and saved.
    Created,
    /// The data directory's stored material.
    Store,
    /// The PEM of an imported CA.
    Import,
}

impl LoadedFrom {
    pub fn verb(self) -> &'static str {
        match self {
            LoadedFrom::Created => "created",
            LoadedFrom::Store => "loaded",
            LoadedFrom::Import => "imported",
        }
    }
}

/// Puts one Issuer into service (its parent must be loaded already): stored material
/// reused while it fits the spec, new material created and saved otherwise, an imported
/// CA taken as it is; then one CA rollover step (stage or promote what is due).
pub async fn load_issuer(
    ca: &Ca,
    cfg: &IssuerConfig,
    materials: &dyn CaMaterialStore,
    now: SystemTime,
) -> Result<LoadedFrom> {
    let parent = match &cfg.source {
        IssuerSource::Intermediate { parent, .. } => ca.issuer(parent),
        _ => None,
    };
    let (issuer, from) = match &cfg.source {
        IssuerSource::Imported(_) => (Issuer::import(cfg)?, LoadedFrom::Import),
        _ => match materials.load_ca(&cfg.id).await?.map(|m| Issuer::from_material(cfg, &m, parent.as_deref())) {
            Some(Ok(issuer)) => (issuer, LoadedFrom::Store),
            other => {
                if let Some(Err(why)) = other {
                    tracing::warn!(issuer = %cfg.id, reason = %why, "stored CA material no longer fits; creating a new CA");
                }
                let (issuer, material) = Issuer::create(cfg, parent.as_deref(), now)?;
                materials.save_ca(&cfg.id, &material).await?;
                (issuer, LoadedFrom::Created)
            }
        },
    };
    let issuer = crate::ca::rollover::reconcile_one(cfg, issuer, parent.as_deref(), materials, now).await?;
    ca.put_issuer(Arc::new(issuer));
    crate::ca::rollover::refresh_retired(ca, &cfg.id, materials, now).await?;
    Ok(from)
}

/// Resolves a profile given as `name` or `namespace/name`: a bare name is looked up in
/// every namespace and must be unambiguous.
pub fn resolve_profile(ca: &Ca, name: &str) -> Result<ObjectRef> {
    if name.contains('/') {
        let id: ObjectRef = name.parse().map_err(|e: String| anyhow!(e))?;
        return ca.profile(&id).map(|p| p.id.clone()).ok_or_else(|| anyhow!("no CertificateProfile {id}"));
    }
    let matches: Vec<_> = ca.profiles().into_iter().filter(|p| p.id.name == name).collect();
    match matches.as_slice() {
        [one] => Ok(one.id.clone()),
        [] => Err(anyhow!(
            "no CertificateProfile named {name} (known: {})",
            ca.profiles().iter().map(|p| p.id.to_string()).collect::<Vec<_>>().join(", ")
        )),
        _ => Err(anyhow!("CertificateProfile name {name} exists in several namespaces; use namespace/name")),
    }
}
