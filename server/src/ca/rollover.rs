//! CA key rollover while serving, shared by `pkiplane serve` and `pkiplane ca`: at start
//! (through [`reconcile_one`] from the loaders) and then every [`INTERVAL`], each
//! generated Issuer whose certificate entered its renewal window gets a staged next CA
//! (persisted before it is announced), and a staged next CA whose promotion time came
//! becomes current. The rules are in `pkiplane_core::issuer::rollover`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use pkiplane_api::{Manifests, issuer_from_resource};
use pkiplane_core::inventory::CaMaterialStore;
use pkiplane_core::issuance::Ca;
use pkiplane_core::issuer::rollover::{self, RolloverOutcome};
use pkiplane_core::issuer::{Issuer, IssuerConfig, IssuerSource, RetiredCa};
use pkiplane_core::model::ObjectRef;

/// The lease under which CA keys are created, staged and promoted.
pub const CA_KEYS_LEASE: &str = "ca-keys";
/// How long a replica waits for that lease.
pub const LEASE_WAIT: Duration = Duration::from_secs(120);

/// How often loaded Issuers are checked.
pub const INTERVAL: Duration = Duration::from_secs(3600);

/// The Issuers of `manifests` that compile, parents before children (invalid ones and
/// those under them are left out: the loaders report them).
pub fn ordered_configs(manifests: &Manifests) -> Vec<IssuerConfig> {
    let mut pending: BTreeMap<ObjectRef, IssuerConfig> = manifests
        .issuers
        .iter()
        .filter_map(|i| issuer_from_resource(i, manifests).ok())
        .map(|c| (c.id.clone(), c))
        .collect();
    let mut out: Vec<IssuerConfig> = Vec::new();
    loop {
        let ready: Vec<ObjectRef> = pending
            .values()
            .filter(|c| match &c.source {
                IssuerSource::Intermediate { parent, .. } => out.iter().any(|o| &o.id == parent),
                _ => true,
            })
            .map(|c| c.id.clone())
            .collect();
        if ready.is_empty() {
            return out;
        }
        for id in ready {
            out.extend(pending.remove(&id));
        }
    }
}

/// Logs (audit target) what a rollover step did.
pub fn log_outcome(issuer: &Issuer, outcome: RolloverOutcome) {
    match (outcome, &issuer.next) {
        (RolloverOutcome::Staged, Some(next)) => tracing::info!(
            target: pkiplane_core::audit::TARGET,
            decision = "ca-next-staged",
            issuer = %issuer.id,
            current_not_after = ?issuer.cert.not_after,
            next_serial = %next.cert.serial_hex,
            next_not_after = ?next.cert.not_after,
            next_fingerprint = %next.cert.fingerprint_sha256(),
            "next CA staged"
        ),
        (RolloverOutcome::Promoted, _) => tracing::info!(
            target: pkiplane_core::audit::TARGET,
            decision = "ca-rolled-over",
            issuer = %issuer.id,
            serial = %issuer.cert.serial_hex,
            not_after = ?issuer.cert.not_after,
            fingerprint = %issuer.cert.fingerprint_sha256(),
            "CA rolled over: the next CA is now current"
        ),
        _ => {}
    }
}

/// Runs one rollover step on a freshly loaded or created `issuer` and logs it.
pub async fn reconcile_one(
    cfg: &IssuerConfig,
    issuer: Issuer,
    parent: Option<&Issuer>,
    materials: &dyn CaMaterialStore,
    now: SystemTime,
) -> anyhow::Result<Issuer> {
    let (issuer, outcome) = rollover::reconcile(cfg, issuer, parent, materials, cfg.renew_before(), now).await?;
    log_outcome(&issuer, outcome);
    Ok(issuer)
}

/// One periodic pass over the loaded Issuers of `manifests` (parents first): those with
/// something due are reloaded from the store, stepped and put back into service.
pub async fn tick(ca: &Ca, manifests: &Manifests, materials: &dyn CaMaterialStore, now: SystemTime) {
    for cfg in ordered_configs(manifests) {
        if matches!(cfg.source, IssuerSource::Imported(_)) {
            continue;
        }
        let Some(current) = ca.issuer(&cfg.id) else { continue };
        let parent = match &cfg.source {
            IssuerSource::Intermediate { parent, .. } => ca.issuer(parent),
            _ => None,
        };
        if rollover::needs_reconcile(&current, parent.as_deref(), cfg.renew_before(), now) {
            let step = async {
                let stored =
                    materials.load_ca(&cfg.id).await?.ok_or_else(|| anyhow::anyhow!("no stored CA material"))?;
                let loaded = Issuer::from_material(&cfg, &stored, parent.as_deref())?;
                reconcile_one(&cfg, loaded, parent.as_deref(), materials, now).await
            };
            match step.await {
                Ok(issuer) => ca.put_issuer(Arc::new(issuer)),
                Err(e) => tracing::error!(issuer = %cfg.id, error = %format!("{e:#}"), "CA rollover step failed"),
            }
        }
        if let Err(e) = refresh_retired(ca, &cfg.id, materials, now).await {
            tracing::error!(issuer = %cfg.id, error = %format!("{e:#}"), "loading retired CA keys failed");
        }
    }
}

/// Puts the retired keys of `issuer` into service (they sign CRLs and OCSP answers for the
/// certificates they issued) and forgets for good those whose last certificate has
/// expired (see `pkiplane_core::issuer::retired`).
pub async fn refresh_retired(
    ca: &Ca,
    issuer: &ObjectRef,
    materials: &dyn CaMaterialStore,
    now: SystemTime,
) -> anyhow::Result<()> {
    let mut keep = Vec::new();
    for stored in materials.load_retired_cas(issuer).await? {
        let retired = match RetiredCa::from_stored(&stored) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(issuer = %issuer, error = %e, "retired CA key not loaded");
                continue;
            }
        };
        let recorded = ca.inventory().latest_not_after(issuer, retired.recorded_by()).await?;
        let latest = recorded.max(ca.latest_ca_cert_signed_by(&retired.key_id));
        if retired.can_forget(latest, now) {
            materials.remove_retired_ca(issuer, &retired.key_id).await?;
            tracing::info!(
                target: pkiplane_core::audit::TARGET,
                decision = "ca-key-retired",
                issuer = %issuer,
                key_id = %hex::encode(&retired.key_id),
                serial = %retired.cert.serial_hex,
                "retired CA key forgotten: the last certificate it signed has expired"
            );
            continue;
        }
        keep.push(Arc::new(retired));
    }
    ca.put_retired(issuer, keep);
    Ok(())
}

/// Runs [`tick`] every [`INTERVAL`] on the manifests `current` returns, holding the
/// `ca-keys` lease (one replica steps the keys at a time; the others, reloading from the
/// store under the same lease, find the step done).
pub fn spawn_periodic(
    ca: Arc<Ca>,
    current: impl Fn() -> Arc<Manifests> + Send + 'static,
    materials: Arc<dyn CaMaterialStore>,
    once: crate::once::Once,
) {
    tokio::spawn(async move {
        let mut timer = tokio::time::interval(INTERVAL);
        timer.tick().await; // the first tick is immediate; start-up already stepped
        loop {
            timer.tick().await;
            let manifests = current();
            let step = tick(&ca, &manifests, materials.as_ref(), SystemTime::now());
            if once.run(CA_KEYS_LEASE, LEASE_WAIT, step).await.is_none() {
                tracing::warn!("CA rollover step skipped: another replica held the CA key lease throughout");
            }
        }
    });
}
