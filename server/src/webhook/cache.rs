//! The watch cache: reflectors over Issuers, CertificateProfiles and EnrollmentEndpoints
//! in all namespaces. The [`ClusterView`] is rebuilt when the cache changes (debounced),
//! never per request; handlers take the current view with a cheap clone.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::StreamExt;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use pkiplane_api::v1alpha1::{CertificateProfile, EnrollmentEndpoint, Issuer};
use pkiplane_webhook::ClusterView;
use tokio::sync::Notify;

/// Changes arriving within this window are folded into one rebuild.
const DEBOUNCE: Duration = Duration::from_millis(20);

/// The cached objects and the view built from them.
#[derive(Clone)]
pub struct Cache {
    issuers: Store<Issuer>,
    profiles: Store<CertificateProfile>,
    endpoints: Store<EnrollmentEndpoint>,
    view: Arc<RwLock<Option<ClusterView>>>,
}

impl Cache {
    /// Starts the reflectors and the rebuild loop on the current runtime.
    pub fn start(client: Client) -> Self {
        let changed = Arc::new(Notify::new());
        let issuers = watch::<Issuer>(client.clone(), changed.clone());
        let profiles = watch::<CertificateProfile>(client.clone(), changed.clone());
        let endpoints = watch::<EnrollmentEndpoint>(client, changed.clone());
        let cache = Self { issuers, profiles, endpoints, view: Arc::new(RwLock::new(None)) };
        let rebuilder = cache.clone();
        tokio::spawn(async move {
            let _ = tokio::join!(
                rebuilder.issuers.wait_until_ready(),
                rebuilder.profiles.wait_until_ready(),
                rebuilder.endpoints.wait_until_ready()
            );
            loop {
                rebuilder.rebuild();
                changed.notified().await;
                tokio::time::sleep(DEBOUNCE).await;
            }
        });
        cache
    }

    fn rebuild(&self) {
        let view = self.view_with(&[], &[], &[]);
        tracing::debug!(?view, "cluster view rebuilt");
        *self.view.write().unwrap_or_else(|e| e.into_inner()) = Some(view);
    }

    /// The current view; `None` until every reflector has listed once.
    pub fn view(&self) -> Option<ClusterView> {
        self.view.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// A view of the cache plus objects fetched directly (when the cache lags behind an
    /// object created a moment ago); those replace cached objects of the same name.
    /// Objects are shared with the cache, and profiles the current view compiled at the
    /// same version are not compiled again: this runs after every change of the cache
    /// (debounced), and per review whose references the cache lags behind.
    pub fn view_with(
        &self,
        issuers: &[Issuer],
        profiles: &[CertificateProfile],
        endpoints: &[EnrollmentEndpoint],
    ) -> ClusterView {
        fn merge<K: kube::Resource + Clone>(cached: Vec<Arc<K>>, extra: &[K]) -> Vec<Arc<K>> {
            let same = |a: &K, b: &K| a.meta().namespace == b.meta().namespace && a.meta().name == b.meta().name;
            let mut out: Vec<Arc<K>> = cached.into_iter().filter(|o| !extra.iter().any(|e| same(e, o))).collect();
            out.extend(extra.iter().cloned().map(Arc::new));
            out
        }
        let issuers: Vec<Issuer> = merge(self.issuers.state(), issuers).iter().map(|i| (**i).clone()).collect();
        let previous = self.view();
        ClusterView::build_shared(
            &issuers,
            &merge(self.profiles.state(), profiles),
            &merge(self.endpoints.state(), endpoints),
            previous.as_ref(),
            None,
        )
    }
}

fn watch<K>(client: Client, changed: Arc<Notify>) -> Store<K>
where
    K: kube::Resource<DynamicType = ()> + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
{
    let (reader, writer) = reflector::store();
    let api: Api<K> = Api::all(client);
    // Stored without managedFields and kubectl's last-applied copy (no check reads them):
    // each rebuilt view holds a copy of every object too.
    let stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .modify(pkiplane_operator::cache::strip_unread_metadata::<K>)
        .reflect(writer)
        .touched_objects();
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            if let Err(e) = event {
                tracing::warn!(kind = %K::kind(&()), error = %e, "watch failed; retrying");
            }
            changed.notify_one();
        }
    });
    reader
}
