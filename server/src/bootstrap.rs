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
    let renew_before = crate::ca::rollover::renew_before(manifests);
    for cfg in issuer_configs(manifests)? {
        let parent = match &cfg.source {
            IssuerSource::Intermediate { parent, .. } => Some(ca.issuer(parent).context("parent issuer not ready")?),
            _ => None,
        };
        let issuer = match &cfg.source {
            IssuerSource::Imported(_) => {
                report.imported.push(cfg.id.clone());
                Issuer::import(&cfg)?
            }
            _ => {
                let stored = materials.load_ca(&cfg.id).await?;
                match stored.map(|m| Issuer::from_material(&cfg, &m, parent.as_deref())) {
                    Some(Ok(issuer)) => {
                        report.loaded.push(cfg.id.clone());
                        issuer
                    }
                    other => {
                        if let Some(Err(why)) = other {
                            tracing::warn!(issuer = %cfg.id, reason = %why, "stored CA material no longer fits; creating a new CA");
                        }
                        let (issuer, material) = Issuer::create(&cfg, parent.as_deref(), now)?;
                        materials.save_ca(&cfg.id, &material).await?;
                        report.created.push(cfg.id.clone());
                        issuer
                    }
                }
            }
        };
        // CA key rollover: stage a next CA (persisted first) or promote one that is due.
        let rb = renew_before.get(&cfg.id).copied();
        let issuer = crate::ca::rollover::reconcile_one(&cfg, issuer, parent.as_deref(), materials, rb, now).await?;
        ca.put_issuer(Arc::new(issuer));
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
