//! The cluster as validation sees it: every Issuer, CertificateProfile and
//! EnrollmentEndpoint, with what can be worked out once (compiled profiles, issuer facts)
//! worked out when the view is built, not per request. Secrets are looked up through a
//! [`SecretLookup`] that can be swapped per request (the webhook reads only the Secrets
//! an object names).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use pkiplane_api::convert::{ChainLink, issuer_chain};
use pkiplane_api::v1alpha1::{CertificateProfile, EnrollmentEndpoint, Issuer};
use pkiplane_api::{Manifests, SecretLookup, profile_from_resource};
use pkiplane_core::ObjectRef;
use pkiplane_core::profile::Profile;

use crate::issuer_facts::{IssuerFacts, issuer_facts};
use crate::object_id;

/// Secrets, shared between threads.
pub type SharedSecrets = Arc<dyn SecretLookup + Send + Sync>;

/// An Issuer and its facts.
#[derive(Clone, Debug)]
pub struct IssuerEntry {
    pub resource: Issuer,
    pub facts: IssuerFacts,
}

/// A CertificateProfile, compiled when it is valid.
#[derive(Clone, Debug)]
pub struct ProfileEntry {
    pub resource: CertificateProfile,
    pub compiled: Option<Arc<Profile>>,
}

/// Profiles and endpoints are shared (`Arc`) with the watch cache and between successive
/// views: a view rebuilt after one object changed re-compiles only that object.
#[derive(Debug, Default)]
struct Index {
    issuers: BTreeMap<ObjectRef, IssuerEntry>,
    profiles: BTreeMap<ObjectRef, Arc<ProfileEntry>>,
    endpoints: BTreeMap<ObjectRef, Arc<EnrollmentEndpoint>>,
}

/// A read-only view of the cluster. Cloning is cheap.
#[derive(Clone, Default)]
pub struct ClusterView {
    index: Arc<Index>,
    secrets: Option<SharedSecrets>,
    now: Option<SystemTime>,
}

impl std::fmt::Debug for ClusterView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterView")
            .field("issuers", &self.index.issuers.len())
            .field("profiles", &self.index.profiles.len())
            .field("endpoints", &self.index.endpoints.len())
            .field("secrets_visible", &self.secrets.is_some())
            .finish()
    }
}

impl ClusterView {
    /// A view of manifests, their Secrets included (what `pkiplane policy lint` checks).
    pub fn from_manifests(manifests: &Manifests) -> Self {
        let secrets: SharedSecrets = Arc::new(manifests.secrets.clone());
        Self::build(&manifests.issuers, &manifests.profiles, &manifests.endpoints, Some(secrets))
    }

    /// A view of objects; `secrets` is how Secrets are read, if at all.
    pub fn build(
        issuers: &[Issuer],
        profiles: &[CertificateProfile],
        endpoints: &[EnrollmentEndpoint],
        secrets: Option<SharedSecrets>,
    ) -> Self {
        let profiles: Vec<_> = profiles.iter().cloned().map(Arc::new).collect();
        let endpoints: Vec<_> = endpoints.iter().cloned().map(Arc::new).collect();
        Self::build_shared(issuers, &profiles, &endpoints, None, secrets)
    }

    /// A view of a watch cache's objects, shared rather than copied. A profile whose
    /// object `previous` holds at the same resourceVersion keeps its compiled form from
    /// there: the cache changes with every status write, and compiling every profile
    /// again for each would cost the webhook time that grows with the cluster.
    pub fn build_shared(
        issuers: &[Issuer],
        profiles: &[Arc<CertificateProfile>],
        endpoints: &[Arc<EnrollmentEndpoint>],
        previous: Option<&ClusterView>,
        secrets: Option<SharedSecrets>,
    ) -> Self {
        let mut index = Index::default();
        let by_id: BTreeMap<ObjectRef, &Issuer> = issuers.iter().map(|i| (object_id(&i.metadata), i)).collect();
        for id in by_id.keys() {
            add_issuer(id, &by_id, &mut index.issuers, secrets.as_deref());
        }
        for p in profiles {
            let id = object_id(&p.metadata);
            let unchanged = previous.and_then(|v| v.index.profiles.get(&id)).filter(|e| same_version(&e.resource, p));
            let entry = match unchanged {
                Some(e) => e.clone(),
                None => Arc::new(ProfileEntry {
                    resource: (**p).clone(),
                    compiled: profile_from_resource(p).ok().map(Arc::new),
                }),
            };
            index.profiles.insert(id, entry);
        }
        for e in endpoints {
            index.endpoints.insert(object_id(&e.metadata), e.clone());
        }
        Self { index: Arc::new(index), secrets, now: None }
    }

    /// The same view reading Secrets through `secrets` (or not at all).
    pub fn with_secrets(&self, secrets: Option<SharedSecrets>) -> Self {
        Self { index: self.index.clone(), secrets, now: self.now }
    }

    /// The same view with a fixed clock, for tests.
    pub fn at(&self, now: SystemTime) -> Self {
        Self { index: self.index.clone(), secrets: self.secrets.clone(), now: Some(now) }
    }

    /// The time validation judges lifetimes at.
    pub fn now(&self) -> SystemTime {
        self.now.unwrap_or_else(SystemTime::now)
    }

    /// How Secrets are read; `None` when they are not visible (their checks are skipped).
    pub fn secrets(&self) -> Option<&(dyn SecretLookup + Send + Sync)> {
        self.secrets.as_deref()
    }

    pub fn issuer(&self, id: &ObjectRef) -> Option<&IssuerEntry> {
        self.index.issuers.get(id)
    }

    pub fn profile(&self, id: &ObjectRef) -> Option<&ProfileEntry> {
        self.index.profiles.get(id).map(Arc::as_ref)
    }

    pub fn endpoint(&self, id: &ObjectRef) -> Option<&EnrollmentEndpoint> {
        self.index.endpoints.get(id).map(Arc::as_ref)
    }

    pub fn issuers(&self) -> impl Iterator<Item = &IssuerEntry> {
        self.index.issuers.values()
    }

    pub fn profiles(&self) -> impl Iterator<Item = &ProfileEntry> {
        self.index.profiles.values().map(Arc::as_ref)
    }

    pub fn endpoints(&self) -> impl Iterator<Item = &EnrollmentEndpoint> {
        self.index.endpoints.values().map(Arc::as_ref)
    }

    /// The facts of an Issuer that may not be in the view yet (the object under review):
    /// its parent's facts come from the view.
    pub fn facts_of(&self, issuer: &Issuer) -> IssuerFacts {
        let id = object_id(&issuer.metadata);
        let parent = issuer
            .spec
            .parent_ref
            .as_ref()
            .map(|p| ObjectRef::new(&id.namespace, &p.name))
            .filter(|p| *p != id)
            .and_then(|p| self.issuer(&p));
        issuer_facts(issuer, parent.map(|p| &p.facts), self.secrets())
    }
}

/// The same object at the same resourceVersion (objects without one, such as manifests,
/// never count as unchanged).
fn same_version(a: &CertificateProfile, b: &CertificateProfile) -> bool {
    let (a, b) = (&a.metadata, &b.metadata);
    a.resource_version.is_some() && a.resource_version == b.resource_version && a.uid == b.uid
}

/// Adds `id` after its ancestors; an Issuer on a cycle or below a missing parent gets
/// facts without a parent (its own validation reports the chain).
fn add_issuer(
    id: &ObjectRef,
    by_id: &BTreeMap<ObjectRef, &Issuer>,
    done: &mut BTreeMap<ObjectRef, IssuerEntry>,
    secrets: Option<&(dyn SecretLookup + Send + Sync)>,
) {
    if done.contains_key(id) {
        return;
    }
    let link = |i: &ObjectRef| {
        by_id.get(i).map(|r| match &r.spec.parent_ref {
            Some(p) => ChainLink::Parent(ObjectRef::new(&i.namespace, &p.name)),
            None => ChainLink::Root,
        })
    };
    let chain = issuer_chain(id, link).unwrap_or_else(|_| vec![id.clone()]);
    // Root first, so every parent's facts exist before its children's.
    for (depth, member) in chain.iter().enumerate().rev() {
        if done.contains_key(member) {
            continue;
        }
        let resource = by_id[member];
        let parent = chain.get(depth + 1).and_then(|p| done.get(p)).map(|e| &e.facts);
        let facts = issuer_facts(resource, parent, secrets);
        done.insert(member.clone(), IssuerEntry { resource: resource.clone(), facts });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Profile `pki/web`, at `resource_version` ("" for none, as in manifests).
    fn profile(resource_version: &str, days: u32) -> Arc<CertificateProfile> {
        let yaml = format!(
            "apiVersion: pkiplane.dev/v1alpha1\nkind: CertificateProfile\n\
             metadata: {{name: web, namespace: pki, uid: u-1}}\n\
             spec: {{issuerRef: {{name: root}}, validity: {{duration: {days}d}}}}\n"
        );
        let mut p = Manifests::from_yaml(&yaml, "view-test.yaml").expect("profile").profiles.remove(0);
        p.metadata.resource_version = Some(resource_version.to_string()).filter(|v| !v.is_empty());
        Arc::new(p)
    }

    fn compiled(view: &ClusterView) -> Arc<Profile> {
        view.profile(&ObjectRef::new("pki", "web")).and_then(|e| e.compiled.clone()).expect("compiled")
    }

    #[test]
    fn a_rebuilt_view_compiles_only_the_profiles_that_changed() {
        let first = ClusterView::build_shared(&[], &[profile("10", 30)], &[], None, None);
        // The same object version (e.g. another object's status changed): reused.
        let same = ClusterView::build_shared(&[], &[profile("10", 30)], &[], Some(&first), None);
        assert!(Arc::ptr_eq(&compiled(&first), &compiled(&same)));
        // A new version: compiled afresh, with the new spec.
        let changed = ClusterView::build_shared(&[], &[profile("11", 60)], &[], Some(&same), None);
        assert!(!Arc::ptr_eq(&compiled(&same), &compiled(&changed)));
        assert_eq!(compiled(&changed).validity.duration, std::time::Duration::from_secs(60 * 86_400));
        // Objects without a version (manifests, lint) are never taken as unchanged.
        let unversioned = ClusterView::build(&[], &[(*profile("", 30)).clone()], &[], None);
        let again = ClusterView::build_shared(&[], &[profile("", 30)], &[], Some(&unversioned), None);
        assert!(!Arc::ptr_eq(&compiled(&unversioned), &compiled(&again)));
    }
}
