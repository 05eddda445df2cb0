//! A watch cache of the pkiplane custom resources for other in-cluster components (the
//! admission webhook and the CA service): reflectors on Issuers, CertificateProfiles and
//! EnrollmentEndpoints in every namespace, a [`Manifests`] snapshot of them, and a
//! change counter to wait on.

use std::sync::Arc;

use futures::{Stream, StreamExt};
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, Event};
use kube::{Client, Resource};
use pkiplane_api::Manifests;
use pkiplane_api::v1alpha1::{CertificateProfile, EnrollmentEndpoint, Issuer};
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Reflectors on the three pkiplane kinds, all namespaces. Cloning shares the caches.
#[derive(Clone)]
pub struct ClusterCache {
    issuers: Store<Issuer>,
    profiles: Store<CertificateProfile>,
    endpoints: Store<EnrollmentEndpoint>,
    changes: watch::Receiver<u64>,
    _tasks: Arc<CacheTasks>,
}

/// Aborts the reflector tasks when the last clone of the cache is dropped.
struct CacheTasks(Vec<JoinHandle<()>>);

impl Drop for CacheTasks {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

impl ClusterCache {
    /// Starts the reflectors on the current tokio runtime. They retry with backoff on
    /// watch errors (logged at `warn`), so a missing CRD or permission shows in the log
    /// and `wait_synced` keeps waiting.
    pub fn start(client: Client) -> ClusterCache {
        let (changed_tx, changes) = watch::channel(0u64);
        let changed_tx = Arc::new(changed_tx);
        let (issuers, issuers_task) = spawn_reflector::<Issuer>(client.clone(), changed_tx.clone());
        let (profiles, profiles_task) = spawn_reflector::<CertificateProfile>(client.clone(), changed_tx.clone());
        let (endpoints, endpoints_task) = spawn_reflector::<EnrollmentEndpoint>(client, changed_tx);
        ClusterCache {
            issuers,
            profiles,
            endpoints,
            changes,
            _tasks: Arc::new(CacheTasks(vec![issuers_task, profiles_task, endpoints_task])),
        }
    }

    /// Waits until every reflector has completed its initial list.
    pub async fn wait_synced(&self) {
        // A writer is only dropped when its task ends, which `CacheTasks` prevents while
        // `self` lives; an error here cannot happen, so it is ignored.
        let _ = self.issuers.wait_until_ready().await;
        let _ = self.profiles.wait_until_ready().await;
        let _ = self.endpoints.wait_until_ready().await;
    }

    /// True once every reflector has completed its initial list.
    pub fn is_synced(&self) -> bool {
        use futures::FutureExt;
        self.issuers.wait_until_ready().now_or_never().is_some()
            && self.profiles.wait_until_ready().now_or_never().is_some()
            && self.endpoints.wait_until_ready().now_or_never().is_some()
    }

    /// The cached objects as [`Manifests`] (sorted by namespace/name; `secrets` empty).
    pub fn snapshot(&self) -> Manifests {
        let mut manifests = Manifests::default();
        manifests.issuers = sorted(self.issuers.state());
        manifests.profiles = sorted(self.profiles.state());
        manifests.endpoints = sorted(self.endpoints.state());
        manifests
    }

    /// A counter bumped on every change seen by any reflector (including re-lists).
    pub fn changed(&self) -> watch::Receiver<u64> {
        self.changes.clone()
    }

    /// The Issuer store (for controllers that look objects up by key).
    pub fn issuers(&self) -> &Store<Issuer> {
        &self.issuers
    }

    /// The CertificateProfile store.
    pub fn profiles(&self) -> &Store<CertificateProfile> {
        &self.profiles
    }

    /// The EnrollmentEndpoint store.
    pub fn endpoints(&self) -> &Store<EnrollmentEndpoint> {
        &self.endpoints
    }
}

fn sorted<K: Resource + Clone>(objects: Vec<Arc<K>>) -> Vec<K> {
    let mut out: Vec<K> = objects.iter().map(|o| K::clone(o)).collect();
    out.sort_by(|a, b| {
        (a.meta().namespace.as_deref(), a.meta().name.as_deref())
            .cmp(&(b.meta().namespace.as_deref(), b.meta().name.as_deref()))
    });
    out
}

fn spawn_reflector<K>(client: Client, changed: Arc<watch::Sender<u64>>) -> (Store<K>, JoinHandle<()>)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    let (reader, writer) = reflector::store::<K>();
    let api: Api<K> = Api::all(client);
    let stream = reflector::reflector(writer, watcher::watcher(api, watcher::Config::default()).default_backoff());
    let task = tokio::spawn(drive(stream, changed));
    (reader, task)
}

async fn drive<K: Resource<DynamicType = ()>, S>(stream: S, changed: Arc<watch::Sender<u64>>)
where
    S: Stream<Item = Result<Event<K>, watcher::Error>>,
{
    let mut stream = std::pin::pin!(stream);
    while let Some(event) = stream.next().await {
        match event {
            Ok(Event::Init | Event::InitApply(_)) => {}
            Ok(_) => changed.send_modify(|n| *n += 1),
            Err(err) => tracing::warn!(kind = %K::kind(&()), error = %err, "watch error; retrying"),
        }
    }
}
