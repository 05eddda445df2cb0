//! A watch cache of the pkiplane custom resources for the operator's controllers and
//! other in-cluster components (the CA service): reflectors on Issuers,
//! CertificateProfiles and EnrollmentEndpoints in every namespace, a [`Manifests`]
//! snapshot of them, a change counter to wait on, and change streams that let the
//! operator's controllers share these stores instead of keeping their own copies.
//! Objects are stored without the metadata no reader uses ([`strip_unread_metadata`]).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use futures::channel::mpsc;
use futures::{Stream, StreamExt};
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{self, ObjectRef, Store};
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
    issuers: Shared<Issuer>,
    profiles: Shared<CertificateProfile>,
    endpoints: Shared<EnrollmentEndpoint>,
    changes: watch::Receiver<u64>,
    _tasks: Arc<CacheTasks>,
}

/// One kind's store and the subscribers told of every change to it.
struct Shared<K: Resource<DynamicType = ()> + 'static> {
    store: Store<K>,
    subscribers: Arc<Subscribers<K>>,
}

impl<K: Resource<DynamicType = ()> + 'static> Clone for Shared<K> {
    fn clone(&self) -> Self {
        Self { store: self.store.clone(), subscribers: self.subscribers.clone() }
    }
}

/// Unbounded so that a slow subscriber never stalls the reflector (and with it every
/// other reader); a subscriber is a controller, which drains its triggers continuously,
/// and each item is an `Arc` shared with the store.
///
/// Not kube-runtime's `reflector::store_shared` + `Writer::subscribe` (as of 5.0): that
/// sits behind the `unstable-runtime-subscribe` feature, its bounded broadcast makes the
/// reflector wait for the slowest subscriber, and a subscriber added after the initial
/// list (ours start once the cache has synced) never hears of the objects already held.
struct Subscribers<K>(Mutex<Vec<mpsc::UnboundedSender<Arc<K>>>>);

impl<K> Subscribers<K> {
    fn send(&self, object: &Arc<K>) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).retain(|tx| tx.unbounded_send(object.clone()).is_ok());
    }

    fn any(&self) -> bool {
        !self.0.lock().unwrap_or_else(|e| e.into_inner()).is_empty()
    }
}

impl<K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static> Shared<K> {
    /// A store that is synced and stays empty (a kind not watched).
    fn empty() -> Self {
        let (store, mut writer) = reflector::store::<K>();
        writer.apply_watcher_event(&Event::Init);
        writer.apply_watcher_event(&Event::InitDone);
        Self { store, subscribers: Arc::new(Subscribers(Mutex::default())) }
    }

    /// Every object cached now, then every object applied or deleted from now on.
    fn changes(&self) -> impl Stream<Item = Arc<K>> + Send + use<K> {
        let (tx, rx) = mpsc::unbounded();
        // Subscribed before the state is read: a change in between comes twice rather
        // than never (a second reconcile request for the same object is merged).
        self.subscribers.0.lock().unwrap_or_else(|e| e.into_inner()).push(tx);
        futures::stream::iter(self.store.state()).chain(rx)
    }
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
        Self::start_with(client, true)
    }

    /// As [`Self::start`] for a component that never reads EnrollmentEndpoints (the CA
    /// service): they are not watched, their store stays empty.
    pub fn start_without_endpoints(client: Client) -> ClusterCache {
        Self::start_with(client, false)
    }

    fn start_with(client: Client, with_endpoints: bool) -> ClusterCache {
        let (changed_tx, changes) = watch::channel(0u64);
        let changed_tx = Arc::new(changed_tx);
        let (issuers, issuers_task) = spawn_reflector::<Issuer>(client.clone(), changed_tx.clone());
        let (profiles, profiles_task) = spawn_reflector::<CertificateProfile>(client.clone(), changed_tx.clone());
        let mut tasks = vec![issuers_task, profiles_task];
        let endpoints = if with_endpoints {
            let (endpoints, endpoints_task) = spawn_reflector::<EnrollmentEndpoint>(client, changed_tx);
            tasks.push(endpoints_task);
            endpoints
        } else {
            Shared::empty()
        };
        ClusterCache { issuers, profiles, endpoints, changes, _tasks: Arc::new(CacheTasks(tasks)) }
    }

    /// Waits until every reflector has completed its initial list.
    pub async fn wait_synced(&self) {
        // A writer is only dropped when its task ends, which `CacheTasks` prevents while
        // `self` lives; an error here cannot happen, so it is ignored.
        let _ = self.issuers.store.wait_until_ready().await;
        let _ = self.profiles.store.wait_until_ready().await;
        let _ = self.endpoints.store.wait_until_ready().await;
    }

    /// True once every reflector has completed its initial list. Not while a
    /// [`Self::wait_synced`] is pending elsewhere: polling a store's readiness replaces the
    /// one waker it keeps, and that waiter would not be woken.
    pub fn is_synced(&self) -> bool {
        use futures::FutureExt;
        self.issuers.store.wait_until_ready().now_or_never().is_some()
            && self.profiles.store.wait_until_ready().now_or_never().is_some()
            && self.endpoints.store.wait_until_ready().now_or_never().is_some()
    }

    /// The cached objects as [`Manifests`] (sorted by namespace/name; `secrets` empty).
    pub fn snapshot(&self) -> Manifests {
        let mut manifests = Manifests::default();
        manifests.issuers = sorted(self.issuers.store.state());
        manifests.profiles = sorted(self.profiles.store.state());
        manifests.endpoints = sorted(self.endpoints.store.state());
        manifests
    }

    /// A counter bumped on every change seen by any reflector (including re-lists).
    pub fn changed(&self) -> watch::Receiver<u64> {
        self.changes.clone()
    }

    /// The Issuer store (for controllers that look objects up by key).
    pub fn issuers(&self) -> &Store<Issuer> {
        &self.issuers.store
    }

    /// The CertificateProfile store.
    pub fn profiles(&self) -> &Store<CertificateProfile> {
        &self.profiles.store
    }

    /// The EnrollmentEndpoint store.
    pub fn endpoints(&self) -> &Store<EnrollmentEndpoint> {
        &self.endpoints.store
    }

    /// Every Issuer cached now, then every one applied or deleted: the trigger stream of
    /// a controller sharing [`Self::issuers`] (`Controller::for_shared_stream`,
    /// `watches_shared_stream`). Each call is one subscriber, to be polled continuously.
    pub fn issuer_changes(&self) -> impl Stream<Item = Arc<Issuer>> + Send + use<> {
        self.issuers.changes()
    }

    /// As [`Self::issuer_changes`], for CertificateProfiles.
    pub fn profile_changes(&self) -> impl Stream<Item = Arc<CertificateProfile>> + Send + use<> {
        self.profiles.changes()
    }

    /// As [`Self::issuer_changes`], for EnrollmentEndpoints.
    pub fn endpoint_changes(&self) -> impl Stream<Item = Arc<EnrollmentEndpoint>> + Send + use<> {
        self.endpoints.changes()
    }
}

/// Passes the changes of `changes` that touch an object's spec (a new
/// metadata.generation) or start its deletion, and the first sighting of each object;
/// drops the rest, chiefly the controller's own status writes, each of which would
/// otherwise reconcile again an object just reconciled. `store` is the kind's store,
/// used to forget objects that are gone.
pub fn spec_changes<K>(changes: impl Stream<Item = Arc<K>> + Send, store: Store<K>) -> impl Stream<Item = Arc<K>> + Send
where
    K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
{
    let mut seen: HashMap<String, (i64, bool)> = HashMap::new();
    changes.filter(move |object| {
        let meta = object.meta();
        let pass = match (&meta.uid, meta.generation) {
            (Some(uid), Some(generation)) => {
                let mark = (generation, meta.deletion_timestamp.is_some());
                seen.insert(uid.clone(), mark) != Some(mark)
            }
            _ => true,
        };
        if seen.len() > 2 * store.len() + 64 {
            let live: HashSet<String> = store.state().iter().filter_map(|o| o.meta().uid.clone()).collect();
            seen.retain(|uid, _| live.contains(uid));
        }
        futures::future::ready(pass)
    })
}

/// kubectl's copy of the last applied manifest (client-side apply).
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Drops what no reader of a cached pkiplane object looks at: the API server's
/// field-ownership records (managedFields) and kubectl's last-applied copy, together
/// often larger than the rest of the object. Every cache of these kinds (this one, the
/// webhook's) applies it before storing.
pub fn strip_unread_metadata<K: Resource>(object: &mut K) {
    let meta = object.meta_mut();
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove(LAST_APPLIED);
        if annotations.is_empty() {
            meta.annotations = None;
        }
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

fn spawn_reflector<K>(client: Client, changed: Arc<watch::Sender<u64>>) -> (Shared<K>, JoinHandle<()>)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    let (reader, writer) = reflector::store::<K>();
    let api: Api<K> = Api::all(client);
    let events = watcher::watcher(api, watcher::Config::default()).default_backoff().modify(strip_unread_metadata::<K>);
    let stream = reflector::reflector(writer, events);
    let shared = Shared { store: reader, subscribers: Arc::new(Subscribers(Mutex::default())) };
    let task = tokio::spawn(drive(stream, shared.clone(), changed));
    (shared, task)
}

async fn drive<K, S>(stream: S, shared: Shared<K>, changed: Arc<watch::Sender<u64>>)
where
    K: Resource<DynamicType = ()> + Clone + 'static,
    S: Stream<Item = Result<Event<K>, watcher::Error>>,
{
    let mut stream = std::pin::pin!(stream);
    while let Some(event) = stream.next().await {
        match event {
            Ok(Event::Init | Event::InitApply(_)) => {}
            Ok(event) => {
                if shared.subscribers.any() {
                    tell(&shared, event);
                }
                changed.send_modify(|n| *n += 1);
            }
            Err(err) => tracing::warn!(kind = %K::kind(&()), error = %err, "watch error; retrying"),
        }
    }
}

/// Hands an event's objects to the subscribers: the stored `Arc` of an applied object,
/// the deleted object itself, every stored object after a (re-)list.
fn tell<K: Resource<DynamicType = ()> + Clone + 'static>(shared: &Shared<K>, event: Event<K>) {
    let subscribers = &shared.subscribers;
    match event {
        Event::Apply(object) => {
            let stored = shared.store.get(&ObjectRef::from_obj(&object));
            subscribers.send(&stored.unwrap_or_else(|| Arc::new(object)));
        }
        Event::Delete(object) => subscribers.send(&Arc::new(object)),
        Event::InitDone => shared.store.state().iter().for_each(|object| subscribers.send(object)),
        Event::Init | Event::InitApply(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    fn issuer(name: &str, extra_metadata: &str) -> Issuer {
        serde_yaml::from_str(&format!(
            "apiVersion: pkiplane.dev/v1alpha1\nkind: Issuer\nmetadata: {{name: {name}, namespace: pki{extra_metadata}}}\nspec: {{selfSigned: {{}}}}\n"
        ))
        .unwrap()
    }

    /// A store filled as the reflector fills it, with its subscribers.
    fn shared(objects: &[Issuer]) -> (Shared<Issuer>, reflector::store::Writer<Issuer>) {
        let (store, mut writer) = reflector::store::<Issuer>();
        writer.apply_watcher_event(&Event::Init);
        objects.iter().for_each(|o| writer.apply_watcher_event(&Event::InitApply(o.clone())));
        writer.apply_watcher_event(&Event::InitDone);
        (Shared { store, subscribers: Arc::new(Subscribers(Mutex::default())) }, writer)
    }

    fn names(items: Vec<Arc<Issuer>>) -> Vec<String> {
        let mut names: Vec<String> = items.iter().map(|i| i.metadata.name.clone().unwrap_or_default()).collect();
        names.sort();
        names
    }

    /// What the stream has ready now, without waiting.
    fn ready_items(stream: &mut (impl Stream<Item = Arc<Issuer>> + Unpin)) -> Vec<Arc<Issuer>> {
        std::iter::from_fn(|| stream.next().now_or_never().flatten()).collect()
    }

    #[test]
    fn stripping_drops_managed_fields_and_the_last_applied_copy_only() {
        let mut i = issuer(
            "a",
            ", annotations: {kubectl.kubernetes.io/last-applied-configuration: '{}', team: pki}, managedFields: [{manager: kubectl, operation: Apply}]",
        );
        strip_unread_metadata(&mut i);
        assert_eq!(i.metadata.managed_fields, None);
        assert_eq!(i.metadata.annotations, Some([("team".to_string(), "pki".to_string())].into()));
        assert_eq!(i.spec, issuer("a", "").spec);

        let mut only_last_applied =
            issuer("b", ", annotations: {kubectl.kubernetes.io/last-applied-configuration: '{}'}");
        strip_unread_metadata(&mut only_last_applied);
        assert_eq!(only_last_applied.metadata.annotations, None);
    }

    #[test]
    fn a_subscriber_sees_the_cached_objects_then_every_change() {
        let (shared, mut writer) = shared(&[issuer("a", ""), issuer("b", "")]);
        let mut changes = Box::pin(shared.changes());
        assert_eq!(names(ready_items(&mut changes)), ["a", "b"]);

        let c = issuer("c", "");
        writer.apply_watcher_event(&Event::Apply(c.clone()));
        tell(&shared, Event::Apply(c));
        let applied = ready_items(&mut changes);
        assert_eq!(names(applied.clone()), ["c"]);
        // The subscriber gets the stored object itself, not a copy.
        assert!(Arc::ptr_eq(&applied[0], &shared.store.get(&ObjectRef::new("c").within("pki")).unwrap()));

        tell(&shared, Event::Delete(issuer("a", "")));
        assert_eq!(names(ready_items(&mut changes)), ["a"]);
        // A re-list hands over everything again.
        tell(&shared, Event::InitDone);
        assert_eq!(names(ready_items(&mut changes)), ["a", "b", "c"]);
    }

    #[test]
    fn spec_changes_pass_new_generations_and_deletions_only() {
        let at = |name: &str, uid: &str, generation: i64, extra: &str| {
            Arc::new(issuer(name, &format!(", uid: {uid}, generation: {generation}{extra}")))
        };
        let (shared, _writer) = shared(&[issuer("a", "")]);
        let (tx, rx) = mpsc::unbounded();
        let mut passed = Box::pin(spec_changes(rx, shared.store.clone()));
        let send = |o: Arc<Issuer>| tx.unbounded_send(o).unwrap();
        send(at("a", "u1", 1, ""));
        send(at("a", "u1", 1, ", resourceVersion: '7'")); // a status write: same generation
        send(at("a", "u1", 2, ""));
        send(at("a", "u1", 2, ", deletionTimestamp: '2026-01-01T00:00:00Z'"));
        send(at("a", "u2", 2, "")); // deleted and created again: a new uid
        send(Arc::new(issuer("b", ""))); // no generation: always passes
        send(Arc::new(issuer("b", "")));
        let got: Vec<(Option<String>, Option<i64>, bool)> = ready_items(&mut passed)
            .iter()
            .map(|o| (o.metadata.uid.clone(), o.metadata.generation, o.metadata.deletion_timestamp.is_some()))
            .collect();
        let uid = |u: &str| Some(u.to_string());
        assert_eq!(
            got,
            [
                (uid("u1"), Some(1), false),
                (uid("u1"), Some(2), false),
                (uid("u1"), Some(2), true),
                (uid("u2"), Some(2), false),
                (None, None, false),
                (None, None, false),
            ]
        );
    }

    #[test]
    fn an_unwatched_kind_is_synced_and_empty() {
        let empty = Shared::<EnrollmentEndpoint>::empty();
        assert!(empty.store.wait_until_ready().now_or_never().is_some_and(|r| r.is_ok()));
        assert!(empty.store.is_empty());
    }

    #[test]
    fn a_dropped_subscriber_is_forgotten() {
        let (shared, _writer) = shared(&[issuer("a", "")]);
        let kept = shared.changes();
        drop(shared.changes());
        tell(&shared, Event::InitDone);
        assert_eq!(shared.subscribers.0.lock().unwrap().len(), 1);
        drop(kept);
        tell(&shared, Event::InitDone);
        assert!(!shared.subscribers.any());
    }
}
