//! The CA service's answers (issuers, inventory counts) reach status without a periodic
//! reconcile of every object: they are polled every [`CA_POLL_EVERY`] (sooner when an
//! object waits for the CA, see [`Context::poll_ca_soon`]), compared with the previous
//! answers, and only the objects whose CA-side data changed are reconciled.
//!
//! A poll and a diff, not a push: the CA service holds no Kubernetes identity to write
//! status with, and one summary per poll is one cheap call however many objects exist.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Duration;

use futures::Stream;
use kube::Resource;
use kube::runtime::reflector::ObjectRef;
use pkiplane_api::v1alpha1::{CertificateProfile, EnrollmentEndpoint, Issuer};
use pkiplane_core::inventory::InventoryCounts;
use tokio::sync::mpsc;

use crate::ca_client::Summary;
use crate::context::{CaState, Context, EXPIRING_WINDOW};

/// How often the CA service's answers are polled when nothing asks sooner.
pub const CA_POLL_EVERY: Duration = Duration::from_secs(30);
/// The least time between two polls.
pub const CA_POLL_SPACING: Duration = Duration::from_secs(2);

/// `namespace/name` keys of the objects whose CA-side data changed between two polls.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CaChanges {
    /// The CA service became reachable or unreachable: every object's Ready may change.
    pub everything: bool,
    /// Every endpoint (the internal CA their pods' identity chains to changed).
    pub endpoints_all: bool,
    pub issuers: BTreeSet<String>,
    pub profiles: BTreeSet<String>,
    pub endpoints: BTreeSet<String>,
}

impl CaChanges {
    pub fn is_empty(&self) -> bool {
        !self.everything
            && !self.endpoints_all
            && self.issuers.is_empty()
            && self.profiles.is_empty()
            && self.endpoints.is_empty()
    }
}

/// The object part of a summary key: `ns/name`, or `ns/name|...` for the pairs.
fn object_key(group_key: &str) -> &str {
    group_key.split('|').next().unwrap_or(group_key)
}

/// Keys (object part) whose counts differ between `a` and `b`, either side missing included.
fn changed_groups(a: &[InventoryCounts], b: &[InventoryCounts], out: &mut BTreeSet<String>) {
    let index = |v: &[InventoryCounts]| -> BTreeMap<String, InventoryCounts> {
        v.iter().map(|c| (c.key.clone(), c.clone())).collect()
    };
    let (a, b) = (index(a), index(b));
    for (key, counts) in &a {
        if b.get(key) != Some(counts) {
            out.insert(object_key(key).to_owned());
        }
    }
    for key in b.keys().filter(|k| !a.contains_key(*k)) {
        out.insert(object_key(key).to_owned());
    }
}

/// What changed between two CA states, object by object.
pub fn ca_changes(before: &CaState, after: &CaState) -> CaChanges {
    let mut changes = CaChanges { everything: before.available() != after.available(), ..Default::default() };
    let issuers = |s: &CaState| -> BTreeMap<String, crate::ca_client::IssuerStatus> {
        s.issuers.iter().flatten().map(|i| (format!("{}/{}", i.namespace, i.name), i.clone())).collect()
    };
    let (a, b) = (issuers(before), issuers(after));
    for key in a.keys().chain(b.keys()) {
        if a.get(key) != b.get(key) {
            changes.issuers.insert(key.clone());
        }
    }
    let empty = Summary::default();
    let (a, b) = (before.summary.as_ref().unwrap_or(&empty), after.summary.as_ref().unwrap_or(&empty));
    changed_groups(&a.issuers, &b.issuers, &mut changes.issuers);
    changed_groups(&a.profiles, &b.profiles, &mut changes.profiles);
    changed_groups(&a.profile_protocols, &b.profile_protocols, &mut changes.profiles);
    changed_groups(&a.endpoints, &b.endpoints, &mut changes.endpoints);
    changed_groups(&a.endpoint_profiles, &b.endpoint_profiles, &mut changes.endpoints);
    changes
}

/// Refreshes the CA service's answers in the context; returns what changed.
pub async fn poll_ca(ctx: &Context) -> CaChanges {
    let issuers = ctx.ca.issuers().await;
    let summary = ctx.ca.summary(EXPIRING_WINDOW).await;
    let mut state = ctx.ca_state.write().unwrap_or_else(|e| e.into_inner());
    let previous = std::mem::take(&mut *state);
    *state = match (issuers, summary) {
        (Ok(issuers), Ok(summary)) => CaState { issuers: Some(issuers), summary: Some(summary), error: None },
        (Err(e), _) | (_, Err(e)) => {
            if previous.error.is_none() {
                tracing::warn!(error = %e, "CA service unavailable");
            }
            // Keep the last counts: a blip must not zero every status.
            CaState { error: Some(e.to_string()), ..previous.clone() }
        }
    };
    ca_changes(&previous, &state)
}

/// Reconcile requests for objects the controllers' own watches do not see change.
pub struct Triggers {
    issuers: Channel<Issuer>,
    profiles: Channel<CertificateProfile>,
    endpoints: Channel<EnrollmentEndpoint>,
}

struct Channel<K: Resource<DynamicType = ()>> {
    tx: mpsc::UnboundedSender<ObjectRef<K>>,
    rx: Mutex<Option<mpsc::UnboundedReceiver<ObjectRef<K>>>>,
}

impl<K: Resource<DynamicType = ()>> Channel<K> {
    fn new() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Self { tx, rx: Mutex::new(Some(rx)) }
    }

    fn send(&self, key: &str) {
        if let Some((ns, name)) = key.split_once('/') {
            let _ = self.tx.send(ObjectRef::new(name).within(ns));
        }
    }

    /// The requests as a stream for `Controller::reconcile_on` (one consumer: the
    /// controller of `K`; a second call gets an empty stream).
    fn stream(&self) -> impl Stream<Item = ObjectRef<K>> + Send + 'static
    where
        K: 'static,
    {
        let rx = self.rx.lock().unwrap_or_else(|e| e.into_inner()).take();
        futures::stream::unfold(rx, |rx| async move {
            let mut rx = rx?;
            let next = rx.recv().await?;
            Some((next, Some(rx)))
        })
    }
}

impl Default for Triggers {
    fn default() -> Self {
        Self { issuers: Channel::new(), profiles: Channel::new(), endpoints: Channel::new() }
    }
}

impl Triggers {
    pub fn issuers(&self) -> impl Stream<Item = ObjectRef<Issuer>> + Send + 'static {
        self.issuers.stream()
    }

    pub fn profiles(&self) -> impl Stream<Item = ObjectRef<CertificateProfile>> + Send + 'static {
        self.profiles.stream()
    }

    pub fn endpoints(&self) -> impl Stream<Item = ObjectRef<EnrollmentEndpoint>> + Send + 'static {
        self.endpoints.stream()
    }
}

/// Asks the controllers to reconcile what `changes` names (everything in the caches when
/// the CA service's reachability flipped).
pub fn trigger(ctx: &Context, changes: &CaChanges) {
    fn key<K: Resource>(o: &K) -> String {
        crate::context::object_key(o)
    }
    let t = &ctx.triggers;
    if changes.everything || changes.endpoints_all {
        ctx.cache.endpoints().state().iter().for_each(|o| t.endpoints.send(&key(o.as_ref())));
    }
    if changes.everything {
        ctx.cache.issuers().state().iter().for_each(|o| t.issuers.send(&key(o.as_ref())));
        ctx.cache.profiles().state().iter().for_each(|o| t.profiles.send(&key(o.as_ref())));
        return;
    }
    changes.issuers.iter().for_each(|k| t.issuers.send(k));
    changes.profiles.iter().for_each(|k| t.profiles.send(k));
    if !changes.endpoints_all {
        changes.endpoints.iter().for_each(|k| t.endpoints.send(k));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ca_client::fixtures;

    fn state(counts: [u64; 4], endpoint_issued: u64) -> CaState {
        CaState {
            issuers: Some(vec![fixtures::ready_root("2030-01-01T00:00:00Z")]),
            summary: Some(Summary {
                issuers: vec![fixtures::counts("pki/root", counts)],
                profiles: vec![fixtures::counts("pki/tls", counts)],
                profile_protocols: vec![fixtures::counts("pki/tls|EST", counts)],
                endpoints: vec![fixtures::counts("pki/est", [endpoint_issued, 0, 0, 0])],
                endpoint_profiles: vec![fixtures::counts("pki/est|pki/tls", [endpoint_issued, 0, 0, 0])],
            }),
            error: None,
        }
    }

    #[test]
    fn the_same_answers_change_nothing() {
        let a = state([1, 1, 0, 0], 1);
        assert!(ca_changes(&a, &a.clone()).is_empty());
    }

    #[test]
    fn only_the_objects_whose_counts_moved_are_named() {
        let before = state([1, 1, 0, 0], 1);
        let after = state([1, 1, 0, 0], 2);
        let c = ca_changes(&before, &after);
        assert_eq!(c.endpoints, BTreeSet::from(["pki/est".to_string()]));
        assert!(c.issuers.is_empty() && c.profiles.is_empty() && !c.everything, "{c:?}");

        let after = state([2, 2, 0, 0], 1);
        let c = ca_changes(&before, &after);
        assert_eq!(c.issuers, BTreeSet::from(["pki/root".to_string()]));
        assert_eq!(c.profiles, BTreeSet::from(["pki/tls".to_string()]));
        assert!(c.endpoints.is_empty());
    }

    #[test]
    fn an_issuer_the_ca_loads_or_reachability_flipping_is_a_change() {
        let loaded = state([0, 0, 0, 0], 0);
        let nothing_yet = CaState { issuers: Some(vec![]), ..loaded.clone() };
        assert_eq!(ca_changes(&nothing_yet, &loaded).issuers, BTreeSet::from(["pki/root".to_string()]));

        let down = CaState { error: Some("connection refused".into()), ..loaded.clone() };
        assert!(ca_changes(&loaded, &down).everything);
        assert!(ca_changes(&down, &loaded).everything);
        assert!(!ca_changes(&down, &down.clone()).everything);
        // The first answer after start-up is a change for everything.
        assert!(ca_changes(&CaState::default(), &loaded).everything);
    }

    #[tokio::test]
    async fn a_stream_carries_the_requests_once() {
        let t = Triggers::default();
        let mut stream = Box::pin(t.endpoints());
        t.endpoints.send("pki/est");
        t.endpoints.send("not-a-key");
        let next = futures::StreamExt::next(&mut stream).await.unwrap();
        assert_eq!(next, ObjectRef::new("est").within("pki"));
        let mut second = Box::pin(t.endpoints());
        assert!(futures::StreamExt::next(&mut second).await.is_none(), "one consumer only");
    }
}
