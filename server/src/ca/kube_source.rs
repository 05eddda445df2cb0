//! The CA service's configuration from the cluster: Issuers and CertificateProfiles
//! from the operator crate's watch cache, plus the Secrets imported Issuers name, read
//! with targeted GETs (the CA service's RBAC is `get` on Secrets, never `list`).

use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};
use pkiplane_api::Manifests;
use pkiplane_operator::cache::ClusterCache;
use tokio::sync::watch;

use super::source::ConfigSource;

/// Secrets change without touching the Issuer that names them (a rotated imported CA):
/// they are re-read this often even when the cache is quiet.
const SECRET_REFRESH: Duration = Duration::from_secs(60);

/// Manifests kept current from the Kubernetes API.
pub struct KubeSource {
    current: RwLock<Arc<Manifests>>,
    generation: watch::Sender<u64>,
}

impl KubeSource {
    /// Starts the watch cache, waits for its first full list, and keeps the snapshot
    /// current from then on.
    pub async fn start(client: Client) -> anyhow::Result<Arc<Self>> {
        // EnrollmentEndpoints are not the CA's configuration: not watched, not held.
        let cache = ClusterCache::start_without_endpoints(client.clone());
        tracing::info!("waiting for the Issuer and CertificateProfile caches to sync");
        cache.wait_synced().await;
        let first = snapshot(&cache, &client).await;
        let (generation, _) = watch::channel(0);
        let me = Arc::new(Self { current: RwLock::new(Arc::new(first)), generation });
        let weak = Arc::downgrade(&me);
        tokio::spawn(async move {
            let mut changes = cache.changed();
            let mut refresh = tokio::time::interval(SECRET_REFRESH);
            refresh.tick().await;
            loop {
                tokio::select! {
                    r = changes.changed() => if r.is_err() { return },
                    _ = refresh.tick() => {},
                }
                // Let a burst of changes (kubectl apply -f of a whole file) settle.
                tokio::time::sleep(Duration::from_millis(200)).await;
                changes.borrow_and_update();
                let next = snapshot(&cache, &client).await;
                let Some(me) = weak.upgrade() else { return };
                me.replace(next);
            }
        });
        Ok(me)
    }

    fn replace(&self, next: Manifests) {
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        if same_objects(&current, &next) {
            return;
        }
        *current = Arc::new(next);
        drop(current);
        self.generation.send_modify(|g| *g += 1);
    }
}

impl ConfigSource for KubeSource {
    fn current(&self) -> Arc<Manifests> {
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn changes(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }
}

/// Specs and Secret data compared, not metadata: status writes by the operator (counts
/// every few seconds) must not make the CA reload.
fn same_objects(a: &Manifests, b: &Manifests) -> bool {
    fn specs<K: serde::Serialize>(items: &[K], meta: impl Fn(&K) -> (Option<String>, Option<String>)) -> Vec<String> {
        items
            .iter()
            .map(|k| {
                let (ns, name) = meta(k);
                let spec = serde_json::to_value(k).ok().and_then(|v| v.get("spec").cloned()).unwrap_or_default();
                format!("{ns:?}/{name:?}:{spec}")
            })
            .collect()
    }
    let im = |i: &pkiplane_api::v1alpha1::Issuer| (i.metadata.namespace.clone(), i.metadata.name.clone());
    let pm = |p: &pkiplane_api::v1alpha1::CertificateProfile| (p.metadata.namespace.clone(), p.metadata.name.clone());
    let secrets = |m: &Manifests| -> Vec<String> {
        m.secrets.iter().map(|s| format!("{:?}/{:?}:{:?}", s.metadata.namespace, s.metadata.name, s.data)).collect()
    };
    specs(&a.issuers, im) == specs(&b.issuers, im)
        && specs(&a.profiles, pm) == specs(&b.profiles, pm)
        && secrets(a) == secrets(b)
}

/// The cache's Issuers and CertificateProfiles plus the Secrets imported Issuers name.
/// A Secret that cannot be read is left out: building that Issuer then fails with
/// "Secret not found", which the CA reports for that Issuer alone.
async fn snapshot(cache: &ClusterCache, client: &Client) -> Manifests {
    let mut manifests = cache.snapshot();
    manifests.endpoints.clear();
    let wanted: BTreeSet<(String, String)> = manifests
        .issuers
        .iter()
        .filter_map(|i| {
            let secret = i.spec.secret_ref.as_ref()?;
            Some((i.metadata.namespace.clone().unwrap_or_default(), secret.name.clone()))
        })
        .collect();
    for (ns, name) in wanted {
        let api: Api<Secret> = Api::namespaced(client.clone(), &ns);
        match api.get_opt(&name).await {
            Ok(Some(secret)) => manifests.secrets.push(secret),
            Ok(None) => {
                tracing::warn!(namespace = %ns, secret = %name, "an imported Issuer names a Secret that does not exist")
            }
            Err(e) => {
                tracing::warn!(namespace = %ns, secret = %name, error = %e, "cannot read an imported Issuer's Secret")
            }
        }
    }
    manifests
}
