//! The CertificateProfile controller: Ready when the profile compiles, its Issuer exists
//! and is Ready, and the profile fits the issuer; inventory counts from the CA service.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;
use pkiplane_api::profile_from_resource;
use pkiplane_api::v1alpha1::{CertificateProfile, CertificateProfileStatus, InventoryCounts, Issuer, is_ready};

use crate::ca_client::{IssuerStatus, Summary};
use crate::context::{CaState, Context, RESYNC, measured, object_key, run_controller};
use crate::error::{Error, Result};
use crate::status::{apply_status, count, parse_time, ready_condition, time, with_condition};

const CONTROLLER: &str = "certificateprofile";

pub mod reason {
    pub const VALID: &str = "Valid";
    pub const INVALID_SPEC: &str = "InvalidSpec";
    pub const ISSUER_NOT_FOUND: &str = "IssuerNotFound";
    pub const ISSUER_NOT_READY: &str = "IssuerNotReady";
    pub const EXCEEDS_ISSUER: &str = "ExceedsIssuer";
    /// Event: more requests wait for approval than at the last reconcile.
    pub const WAITING_APPROVAL: &str = "WaitingApproval";
}

fn api_counts(c: &pkiplane_core::inventory::InventoryCounts) -> InventoryCounts {
    InventoryCounts {
        issued: count(c.issued),
        active: count(c.active),
        expiring_soon: count(c.expiring_soon),
        revoked: count(c.revoked),
        denied: count(c.denied),
    }
}

/// The note of the Event announcing more requests waiting for approval than before.
fn waiting_rose(before: i64, now: i64, ns: &str, name: &str) -> Option<String> {
    (now > before).then(|| {
        format!(
            "{now} request(s) wait for approval ({} new): list them with `pkiplane approvals list --profile {ns}/{name}`",
            now - before
        )
    })
}

/// Checks the profile against its Issuer: the default validity must fit in the issuer
/// certificate's lifetime (requests are capped by the issuer's notAfter; a profile that
/// can never get its validity is a configuration mistake).
fn fits_issuer(profile: &pkiplane_core::profile::Profile, ca_issuer: Option<&IssuerStatus>) -> Result<(), String> {
    let Some(i) = ca_issuer else { return Ok(()) };
    let (Some(nb), Some(na)) = (parse_time(i.not_before.as_deref()), parse_time(i.not_after.as_deref())) else {
        return Ok(());
    };
    let lifetime = na.duration_since(nb).unwrap_or_default();
    if profile.validity.duration > lifetime {
        return Err(format!(
            "validity.duration {} is longer than the lifetime of Issuer {} ({})",
            pkiplane_core::duration::format_duration(profile.validity.duration),
            i.name,
            pkiplane_core::duration::format_duration(lifetime)
        ));
    }
    Ok(())
}

/// Fills the counts of `status` from the summary.
fn fill_counts(status: &mut CertificateProfileStatus, summary: &Summary, ns: &str, name: &str) {
    if let Some(c) = summary.profile(ns, name) {
        status.issued = count(c.issued);
        status.active = count(c.active);
        status.expiring_soon = count(c.expiring_soon);
        status.revoked = count(c.revoked);
        status.denied = count(c.denied);
        status.waiting_approval = count(c.waiting_approval);
        status.last_issuance_time = c.last_issued_at.map(time);
    }
    let per_protocol: BTreeMap<String, InventoryCounts> =
        summary.profile_protocols(ns, name).into_iter().map(|(p, c)| (p, api_counts(c))).collect();
    status.per_protocol = per_protocol;
}

/// The status the profile should have. `issuer`: the Issuer object named by issuerRef.
pub fn desired_status(
    profile: &CertificateProfile,
    issuer: Option<&Issuer>,
    ca: &CaState,
    now: SystemTime,
) -> CertificateProfileStatus {
    let current = profile.status.clone().unwrap_or_default();
    let ns = profile.namespace().unwrap_or_default();
    let name = profile.name_any();
    let generation = profile.metadata.generation;
    let mut status = CertificateProfileStatus { observed_generation: generation, ..current.clone() };
    if let Some(summary) = &ca.summary {
        fill_counts(&mut status, summary, &ns, &name);
    }
    let issuer_name = &profile.spec.issuer_ref.name;
    let (ready, reason, message) = match profile_from_resource(profile) {
        Err(errors) => {
            let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
            (false, reason::INVALID_SPEC, text.join("; "))
        }
        Ok(compiled) => match issuer {
            None => (false, reason::ISSUER_NOT_FOUND, format!("Issuer {ns}/{issuer_name} does not exist")),
            Some(i) if !is_ready(&i.status.as_ref().map(|s| s.conditions.clone()).unwrap_or_default()) => {
                (false, reason::ISSUER_NOT_READY, format!("Issuer {ns}/{issuer_name} is not Ready"))
            }
            Some(_) => match fits_issuer(&compiled, ca.issuer(&ns, issuer_name)) {
                Err(m) => (false, reason::EXCEEDS_ISSUER, m),
                Ok(()) => (true, reason::VALID, format!("policy compiled; signed by Issuer {issuer_name}")),
            },
        },
    };
    status.conditions = with_condition(&current.conditions, ready_condition(ready, reason, message, generation, now));
    status
}

async fn reconcile(profile: Arc<CertificateProfile>, ctx: Arc<Context>) -> Result<Action> {
    let key = object_key(profile.as_ref());
    measured(&ctx, CONTROLLER, &key, reconcile_inner(profile, ctx.clone())).await
}

async fn reconcile_inner(profile: Arc<CertificateProfile>, ctx: Arc<Context>) -> Result<Action> {
    let ns = profile.namespace().ok_or(Error::MissingField("metadata.namespace"))?;
    let issuer = ctx.cache.issuers().get(&ObjectRef::new(&profile.spec.issuer_ref.name).within(&ns));
    let desired = desired_status(&profile, issuer.as_deref(), &ctx.ca_state(), SystemTime::now());
    let before = profile.status.as_ref().map(|s| s.waiting_approval).unwrap_or(0);
    if let Some(note) = waiting_rose(before, desired.waiting_approval, &ns, &profile.name_any()) {
        ctx.publish(profile.as_ref(), EventType::Normal, reason::WAITING_APPROVAL, note).await;
    }
    let api: Api<CertificateProfile> = Api::namespaced(ctx.client.clone(), &ns);
    apply_status(&api, profile.as_ref(), profile.status.as_ref(), &desired).await?;
    // Nothing here depends on time: the Issuer watch, the CA poll's changes and the
    // profile's own watch bring every change.
    Ok(Action::requeue(RESYNC))
}

/// Runs the CertificateProfile controller until `shutdown` resolves; an Issuer changing
/// re-reconciles the profiles that reference it, and the CA poll those whose counts moved.
pub async fn run(ctx: Arc<Context>, shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static) {
    let cache = ctx.cache.clone();
    let controller = Controller::for_shared_stream(cache.profile_changes(), cache.profiles().clone())
        .reconcile_on(ctx.triggers.profiles())
        .watches_shared_stream(cache.issuer_changes(), move |issuer: Arc<Issuer>| {
            let ns = issuer.namespace().unwrap_or_default();
            let name = issuer.name_any();
            cache
                .profiles()
                .state()
                .into_iter()
                .filter(|p| p.namespace().as_deref() == Some(ns.as_str()) && p.spec.issuer_ref.name == name)
                .map(|p| ObjectRef::from_obj(p.as_ref()))
                .collect::<Vec<_>>()
        });
    run_controller(controller, reconcile, ctx, shutdown).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ca_client::{Summary, fixtures};
    use pkiplane_core::inventory::InventoryCounts as CoreCounts;

    fn profile(validity: &str) -> CertificateProfile {
        let mut p: CertificateProfile = serde_yaml::from_str(&format!(
            "apiVersion: pkiplane.dev/v1alpha1\nkind: CertificateProfile\nmetadata: {{name: tls, namespace: pki}}\nspec:\n  issuerRef: {{name: root}}\n  validity: {{duration: {validity}}}\n"
        ))
        .unwrap();
        p.metadata.generation = Some(1);
        p
    }

    fn issuer(ready: bool) -> Issuer {
        let mut i: Issuer = serde_yaml::from_str(
            "apiVersion: pkiplane.dev/v1alpha1\nkind: Issuer\nmetadata: {name: root, namespace: pki}\nspec: {selfSigned: {}}\n",
        )
        .unwrap();
        let now = SystemTime::UNIX_EPOCH;
        i.status = Some(pkiplane_api::v1alpha1::IssuerStatus {
            conditions: vec![ready_condition(ready, "X", "", None, now)],
            ..Default::default()
        });
        i
    }

    fn ca_with_issuer_lifetime() -> CaState {
        CaState {
            issuers: Some(vec![fixtures::ready_root("2028-01-01T00:00:00Z")]),
            summary: Some(Summary {
                profiles: vec![CoreCounts {
                    last_issued_at: Some(SystemTime::UNIX_EPOCH),
                    waiting_approval: 3,
                    ..fixtures::counts("pki/tls", [7, 6, 0, 2])
                }],
                profile_protocols: vec![CoreCounts { key: "pki/tls|EST".into(), issued: 7, ..Default::default() }],
                ..Default::default()
            }),
            error: None,
        }
    }

    fn reason(s: &CertificateProfileStatus) -> &str {
        &s.conditions[0].reason
    }

    #[test]
    fn ready_profile_with_counts() {
        let s = desired_status(&profile("47d"), Some(&issuer(true)), &ca_with_issuer_lifetime(), SystemTime::now());
        assert_eq!(reason(&s), reason::VALID);
        assert_eq!(s.conditions[0].status, "True");
        assert_eq!((s.issued, s.active, s.denied, s.waiting_approval), (7, 6, 2, 3));
        assert_eq!(s.per_protocol["EST"].issued, 7);
        assert!(s.last_issuance_time.is_some());
    }

    #[test]
    fn issuer_missing_not_ready_or_too_short() {
        let ca = ca_with_issuer_lifetime();
        assert_eq!(reason(&desired_status(&profile("47d"), None, &ca, SystemTime::now())), reason::ISSUER_NOT_FOUND);
        assert_eq!(
            reason(&desired_status(&profile("47d"), Some(&issuer(false)), &ca, SystemTime::now())),
            reason::ISSUER_NOT_READY
        );
        assert_eq!(
            reason(&desired_status(&profile("2y"), Some(&issuer(true)), &ca, SystemTime::now())),
            reason::EXCEEDS_ISSUER
        );
    }

    #[test]
    fn recomputing_an_unchanged_profile_writes_nothing() {
        let ca = ca_with_issuer_lifetime();
        let mut p = profile("47d");
        let first = desired_status(&p, Some(&issuer(true)), &ca, SystemTime::now());
        p.status = Some(first.clone());
        let second =
            desired_status(&p, Some(&issuer(true)), &ca, SystemTime::now() + std::time::Duration::from_secs(30));
        assert!(!crate::status::status_changed(p.status.as_ref(), &second));
    }
}

#[cfg(test)]
mod approval_tests {
    use super::*;

    #[test]
    fn an_event_only_when_more_requests_wait() {
        assert_eq!(waiting_rose(0, 0, "pki", "p"), None);
        assert_eq!(waiting_rose(2, 1, "pki", "p"), None);
        assert_eq!(waiting_rose(2, 2, "pki", "p"), None);
        let note = waiting_rose(1, 3, "pki", "p").unwrap();
        assert!(note.starts_with("3 request(s) wait for approval (2 new)"), "{note}");
        assert!(note.contains("--profile pki/p"), "{note}");
    }
}
