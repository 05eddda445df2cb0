//! Offline validation of manifests (`pkiplane policy lint`): every object is validated as
//! a CREATE against the view of all of them, with the webhook's messages.

use std::fmt;

use pkiplane_api::Manifests;
use pkiplane_core::ObjectRef;

use crate::{ClusterView, Validate, Verdict, object_id};

/// The verdict on one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub kind: &'static str,
    pub id: ObjectRef,
    pub verdict: Verdict,
}

impl fmt::Display for Finding {
    /// One line per denial, `Kind ns/name: field: reason`, then one per warning,
    /// `Kind ns/name: warning: text`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.verdict.denials {
            writeln!(f, "{} {}: {d}", self.kind, self.id)?;
        }
        for w in &self.verdict.warnings {
            writeln!(f, "{} {}: warning: {w}", self.kind, self.id)?;
        }
        Ok(())
    }
}

/// Validates every object of `manifests` against the view of all of them.
pub fn lint(manifests: &Manifests) -> Vec<Finding> {
    lint_against(manifests, &ClusterView::from_manifests(manifests))
}

/// Validates every object of `objects` as a CREATE against `view`.
pub fn lint_against(objects: &Manifests, view: &ClusterView) -> Vec<Finding> {
    fn judge<K: Validate>(obj: &K, meta: &kube::core::ObjectMeta, view: &ClusterView) -> Finding {
        Finding { kind: K::KIND, id: object_id(meta), verdict: obj.validate(None, view) }
    }
    let mut out = Vec::new();
    out.extend(objects.issuers.iter().map(|o| judge(o, &o.metadata, view)));
    out.extend(objects.profiles.iter().map(|o| judge(o, &o.metadata, view)));
    out.extend(objects.endpoints.iter().map(|o| judge(o, &o.metadata, view)));
    out
}
