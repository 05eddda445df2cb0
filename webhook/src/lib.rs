//! Admission for pkiplane's resources.
//!
//! The CRD schema and its CEL rules refuse what is wrong with one object on its own; this
//! crate refuses what needs other objects, the policy engine or judgement, and fills in
//! defaults a user expects to see in `kubectl get -o yaml`:
//!
//! - [`ClusterView`]: the Issuers, CertificateProfiles and EnrollmentEndpoints validation
//!   judges against, compiled once per change of the cluster (or once per lint run);
//! - [`Validate`]: one implementation per kind (`validate/issuer.rs`, `profile.rs`,
//!   `endpoint.rs`), each returning a [`Verdict`] of [`Denial`]s (field and reason) and
//!   warnings;
//! - [`defaults`]: JSON patches filling in optional fields, per kind;
//! - [`admission`]: `AdmissionReview` handling for `pkiplane webhook`;
//! - [`lint`]: the same validation over manifests, for `pkiplane policy lint`.
//!
//! Pure logic: no Kubernetes client, no network, no clock other than the view's.
#![forbid(unsafe_code)]

pub mod admission;
pub mod defaults;
pub mod issuer_facts;
pub mod lint;
pub mod validate;
mod verdict;
mod view;

pub use admission::{AdmissionMode, review};
pub use lint::{Finding, lint, lint_against};
pub use validate::Validate;
pub use verdict::{Denial, Verdict};
pub use view::{ClusterView, IssuerEntry, ProfileEntry, SharedSecrets};

use kube::core::ObjectMeta;
use pkiplane_api::manifests::DEFAULT_NAMESPACE;
use pkiplane_core::ObjectRef;

/// The identity of an object; the namespace defaults as in manifests.
pub(crate) fn object_id(meta: &ObjectMeta) -> ObjectRef {
    ObjectRef::new(
        meta.namespace.clone().unwrap_or_else(|| DEFAULT_NAMESPACE.to_string()),
        meta.name.clone().unwrap_or_default(),
    )
}
