//! Validation, one module per kind. Each implementation first applies the single-object
//! checks of `pkiplane_api::convert` (the same ones `pkiplane serve` applies), then what
//! needs the rest of the cluster.

mod endpoint;
mod endpoint_auth;
mod issuer;
mod profile;

use crate::{ClusterView, Verdict};

/// Validation of one kind.
pub trait Validate {
    /// The kind's name, e.g. `Issuer`.
    const KIND: &'static str;

    /// Judges `self` (a new object, or the new version when `old` is the one it replaces)
    /// against `view`. Deletions are never validated.
    fn validate(&self, old: Option<&Self>, view: &ClusterView) -> Verdict;
}

/// `N certificate(s)`.
pub(crate) fn certificates(n: i64) -> String {
    if n == 1 { "1 active certificate".into() } else { format!("{n} active certificates") }
}
