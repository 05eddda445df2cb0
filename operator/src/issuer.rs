//! The Issuer controller: status from the CA service (which holds the keys), the
//! `ExpiringSoon` event, and the `pkiplane.dev/issuer-in-use` finalizer that holds the
//! deletion of an Issuer CertificateProfiles still reference.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;
use pkiplane_api::v1alpha1::{CertificateProfile, Issuer, IssuerStatus, is_ready};
use pkiplane_core::duration::parse_duration;

use crate::context::{CaState, Context, measured, object_key, requeue_at, run_controller};
use crate::error::{Error, Result};
use crate::status::{apply_status, count, parse_time, ready_condition, time, with_condition};

pub const FINALIZER: &str = "pkiplane.dev/issuer-in-use";
const CONTROLLER: &str = "issuer";
/// How soon an Issuer the CA service has not loaded yet is looked at again.
const WAITING_FOR_CA_RECHECK: Duration = Duration::from_secs(5);
/// The expiry warning window when the Issuer sets no renewBefore.
const DEFAULT_EXPIRY_WARNING: Duration = Duration::from_secs(30 * 24 * 3600);

/// Condition reasons.
pub mod reason {
    pub const ISSUED: &str = "Issued";
    pub const WAITING_FOR_CA: &str = "WaitingForCA";
    pub const PARENT_NOT_READY: &str = "ParentNotReady";
    pub const IMPORT_FAILED: &str = "ImportFailed";
    pub const NOT_ISSUED: &str = "NotIssued";
    pub const IN_USE: &str = "InUse";
}

/// What to do with the finalizer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FinalizerAction {
    Add,
    /// Being deleted but still referenced by these profiles: keep the finalizer.
    Hold(Vec<String>),
    /// Being deleted and unreferenced: remove the finalizer.
    Release,
    Nothing,
}

pub fn finalizer_action(issuer: &Issuer, referencing_profiles: &[String]) -> FinalizerAction {
    let has = issuer.finalizers().iter().any(|f| f == FINALIZER);
    match (issuer.metadata.deletion_timestamp.is_some(), has) {
        (false, false) => FinalizerAction::Add,
        (true, true) if !referencing_profiles.is_empty() => FinalizerAction::Hold(referencing_profiles.to_vec()),
        (true, true) => FinalizerAction::Release,
        _ => FinalizerAction::Nothing,
    }
}

/// Names of the profiles in the Issuer's namespace whose spec.issuerRef names it.
pub fn referencing_profiles<'a>(
    issuer: &Issuer,
    profiles: impl IntoIterator<Item = &'a CertificateProfile>,
) -> Vec<String> {
    let ns = issuer.namespace().unwrap_or_default();
    let mut names: Vec<String> = profiles
        .into_iter()
        .filter(|p| p.namespace().unwrap_or_default() == ns && p.spec.issuer_ref.name == issuer.name_any())
        .map(|p| p.name_any())
        .collect();
    names.sort();
    names
}

/// The status the Issuer should have. `parent_ready`: for an intermediate, whether its
/// parent Issuer is Ready; `in_use`: profiles holding a requested deletion.
pub fn desired_status(
    issuer: &Issuer,
    ca: &CaState,
    parent_ready: Option<bool>,
    in_use: &[String],
    now: SystemTime,
) -> IssuerStatus {
    let current = issuer.status.clone().unwrap_or_default();
    let ns = issuer.namespace().unwrap_or_default();
    let name = issuer.name_any();
    let generation = issuer.metadata.generation;
    let mut status = IssuerStatus { observed_generation: generation, ..current.clone() };
    let ca_issuer = ca.issuer(&ns, &name);
    if let Some(i) = ca_issuer.filter(|i| i.ready) {
        status.certificate = i.certificate_pem.clone();
        status.chain = i.chain_pem.clone();
        status.fingerprint = i.fingerprint.clone();
        status.serial = i.serial.clone();
        status.not_before = parse_time(i.not_before.as_deref()).map(time);
        status.not_after = parse_time(i.not_after.as_deref()).map(time);
        status.next_certificate = i.next_certificate_pem.clone();
    }
    if let Some(c) = ca.summary.as_ref().and_then(|s| s.issuer(&ns, &name)) {
        status.issued = count(c.issued);
        status.active = count(c.active);
        status.revoked = count(c.revoked);
    }
    let (ready, reason, message) = if !in_use.is_empty() {
        (false, reason::IN_USE, format!("deletion held: still referenced by CertificateProfiles {}", in_use.join(", ")))
    } else {
        match (ca_issuer, ca.available()) {
            (Some(i), _) if i.ready => {
                (true, reason::ISSUED, "the CA certificate is issued and the CA service signs with it".into())
            }
            (_, false) => (
                false,
                reason::WAITING_FOR_CA,
                format!("the CA service is not reachable: {}", ca.error.as_deref().unwrap_or("no answer yet")),
            ),
            (None, true) => (false, reason::WAITING_FOR_CA, "the CA service has not loaded this Issuer yet".into()),
            (Some(i), true) => {
                let detail = i.message.clone().unwrap_or_else(|| "not ready".into());
                if issuer.spec.parent_ref.is_some() && parent_ready == Some(false) {
                    (false, reason::PARENT_NOT_READY, format!("parent Issuer is not Ready: {detail}"))
                } else if issuer.spec.secret_ref.is_some() {
                    (false, reason::IMPORT_FAILED, detail)
                } else {
                    (false, reason::NOT_ISSUED, detail)
                }
            }
        }
    };
    status.conditions = with_condition(&current.conditions, ready_condition(ready, reason, message, generation, now));
    status
}

/// Whether notAfter falls inside the Issuer's renewBefore window (default 30 days).
pub fn expiring_soon(issuer: &Issuer, status: &IssuerStatus, now: SystemTime) -> Option<SystemTime> {
    let not_after = SystemTime::from(status.not_after.as_ref()?.0);
    (expiry_warning_at(issuer, status)? <= now).then_some(not_after)
}

/// When the renewBefore window (default 30 days) before notAfter opens.
pub fn expiry_warning_at(issuer: &Issuer, status: &IssuerStatus) -> Option<SystemTime> {
    let not_after = SystemTime::from(status.not_after.as_ref()?.0);
    let window =
        issuer.spec.renew_before.as_deref().and_then(|s| parse_duration(s).ok()).unwrap_or(DEFAULT_EXPIRY_WARNING);
    Some(not_after.checked_sub(window).unwrap_or(SystemTime::UNIX_EPOCH))
}

/// When to look at the Issuer again: soon while it waits for the CA service to load it
/// (nothing else announces that), else when its expiry warning is due.
fn next_pass(issuer: &Issuer, status: &IssuerStatus, now: SystemTime) -> Option<SystemTime> {
    let waiting = status.conditions.iter().any(|c| c.reason == reason::WAITING_FOR_CA);
    if waiting {
        return Some(now + WAITING_FOR_CA_RECHECK);
    }
    expiry_warning_at(issuer, status).filter(|at| *at > now)
}

async fn reconcile(issuer: Arc<Issuer>, ctx: Arc<Context>) -> Result<Action> {
    let key = object_key(issuer.as_ref());
    measured(&ctx, CONTROLLER, &key, reconcile_inner(issuer, ctx.clone())).await
}

async fn reconcile_inner(issuer: Arc<Issuer>, ctx: Arc<Context>) -> Result<Action> {
    let ns = issuer.namespace().ok_or(Error::MissingField("metadata.namespace"))?;
    let api: Api<Issuer> = Api::namespaced(ctx.client.clone(), &ns);
    let profiles = ctx.cache.profiles().state();
    let referencing = referencing_profiles(&issuer, profiles.iter().map(|p| p.as_ref()));
    let action = finalizer_action(&issuer, &referencing);
    match &action {
        FinalizerAction::Add => {
            let mut finalizers = issuer.finalizers().to_vec();
            finalizers.push(FINALIZER.into());
            patch_finalizers(&api, &issuer, finalizers).await?;
        }
        FinalizerAction::Release => {
            let finalizers = issuer.finalizers().iter().filter(|f| *f != FINALIZER).cloned().collect();
            patch_finalizers(&api, &issuer, finalizers).await?;
            return Ok(Action::await_change());
        }
        FinalizerAction::Hold(_) | FinalizerAction::Nothing => {}
    }
    let held: &[String] = match &action {
        FinalizerAction::Hold(names) => names,
        _ => &[],
    };
    let parent_ready = issuer.spec.parent_ref.as_ref().map(|p| {
        ctx.cache
            .issuers()
            .get(&ObjectRef::new(&p.name).within(&ns))
            .is_some_and(|parent| is_ready(&parent.status.as_ref().map(|s| s.conditions.clone()).unwrap_or_default()))
    });
    let now = SystemTime::now();
    let desired = desired_status(&issuer, &ctx.ca_state(), parent_ready, held, now);
    apply_status(&api, issuer.as_ref(), issuer.status.as_ref(), &desired).await?;
    let due = next_pass(&issuer, &desired, now);
    if desired.conditions.iter().any(|c| c.reason == reason::WAITING_FOR_CA) {
        ctx.poll_ca_soon();
    }
    if let Some(not_after) = expiring_soon(&issuer, &desired, now) {
        let when = Timestamp::try_from(not_after).map(|t| t.to_string()).unwrap_or_default();
        ctx.announce(
            issuer.as_ref(),
            format!("expiring/{}/{when}", issuer.uid().unwrap_or_default()),
            EventType::Warning,
            "ExpiringSoon",
            format!("the CA certificate expires at {when}, within the renewal window"),
        )
        .await;
    }
    if let Some(next) = desired.next_certificate.as_deref() {
        // One Event per staged certificate (keyed by its PEM's digest): relying parties
        // must add the next CA to their trust stores before it takes over.
        let digest = hex::encode(event_key_digest(next.as_bytes()));
        ctx.announce(
            issuer.as_ref(),
            format!("next/{}/{digest}", issuer.uid().unwrap_or_default()),
            EventType::Normal,
            "NextCAStaged",
            "a next CA certificate is staged for key rollover (status.nextCertificate); it is announced over SCEP \
             GetNextCACert, CMP rootCaKeyUpdate and EST cacerts before it takes over"
                .to_string(),
        )
        .await;
    }
    Ok(requeue_at(due, now))
}

/// A short, non-cryptographic digest to tell staged certificates apart in Event keys.
fn event_key_digest(data: &[u8]) -> [u8; 8] {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    data.hash(&mut h);
    h.finish().to_be_bytes()
}

async fn patch_finalizers(api: &Api<Issuer>, issuer: &Issuer, finalizers: Vec<String>) -> Result<()> {
    // resourceVersion makes the merge patch fail on a concurrent change instead of
    // overwriting someone else's finalizer.
    let patch = serde_json::json!({
        "metadata": { "finalizers": finalizers, "resourceVersion": issuer.resource_version() }
    });
    api.patch(&issuer.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await?;
    Ok(())
}

/// Runs the Issuer controller until `shutdown` resolves. Profiles changing re-reconcile
/// the Issuer they reference (for the finalizer); the CA poll, those whose CA-side state moved.
pub async fn run(ctx: Arc<Context>, shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static) {
    let cache = &ctx.cache;
    let controller = Controller::for_shared_stream(cache.issuer_changes(), cache.issuers().clone())
        .reconcile_on(ctx.triggers.issuers())
        .watches_shared_stream(cache.profile_changes(), |p: Arc<CertificateProfile>| {
            p.namespace().map(|ns| ObjectRef::new(&p.spec.issuer_ref.name).within(&ns))
        });
    run_controller(controller, reconcile, ctx, shutdown).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ca_client::{Summary, fixtures};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use kube::api::ObjectMeta;
    use pkiplane_api::v1alpha1::{IssuerRef, IssuerSpec};

    fn issuer(yaml: &str) -> Issuer {
        let mut i: Issuer = serde_yaml::from_str(yaml).unwrap();
        i.metadata.generation = Some(2);
        i
    }

    fn root() -> Issuer {
        issuer(
            "apiVersion: pkiplane.dev/v1alpha1\nkind: Issuer\nmetadata: {name: root, namespace: pki}\nspec: {selfSigned: {}}\n",
        )
    }

    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
    }

    fn reason_of(s: &IssuerStatus) -> (&str, &str) {
        (s.conditions[0].status.as_str(), s.conditions[0].reason.as_str())
    }

    #[test]
    fn ready_issuer_reports_its_certificate_and_counts() {
        let ca = CaState {
            issuers: Some(vec![crate::ca_client::IssuerStatus {
                certificate_pem: Some("PEM".into()),
                fingerprint: Some("ab".into()),
                serial: Some("01".into()),
                ..fixtures::ready_root("2037-01-01T00:00:00Z")
            }]),
            summary: Some(Summary { issuers: vec![fixtures::counts("pki/root", [5, 4, 1, 0])], ..Default::default() }),
            error: None,
        };
        let s = desired_status(&root(), &ca, None, &[], now());
        assert_eq!(reason_of(&s), ("True", reason::ISSUED));
        assert_eq!(s.fingerprint.as_deref(), Some("ab"));
        assert_eq!(s.next_certificate, None, "no rollover staged");
        assert_eq!(s.issued, 5);
        assert_eq!(s.observed_generation, Some(2));
        assert!(s.not_after.is_some());

        // A staged next CA shows on the status.
        let mut staged = ca.clone();
        if let Some(issuers) = staged.issuers.as_mut() {
            issuers[0].next_certificate_pem = Some("NEXT PEM".into());
        }
        let s = desired_status(&root(), &staged, None, &[], now());
        assert_eq!(s.next_certificate.as_deref(), Some("NEXT PEM"));
    }

    #[test]
    fn not_ready_reasons() {
        let unreachable = CaState { error: Some("connection refused".into()), ..Default::default() };
        assert_eq!(
            reason_of(&desired_status(&root(), &unreachable, None, &[], now())),
            ("False", reason::WAITING_FOR_CA)
        );
        let loaded = CaState { issuers: Some(vec![]), ..Default::default() };
        assert_eq!(reason_of(&desired_status(&root(), &loaded, None, &[], now())).1, reason::WAITING_FOR_CA);

        let failing = |name: &str| CaState {
            issuers: Some(vec![crate::ca_client::IssuerStatus {
                namespace: "pki".into(),
                name: name.into(),
                ready: false,
                message: Some("boom".into()),
                ..Default::default()
            }]),
            ..Default::default()
        };
        let mut child = root();
        child.metadata.name = Some("int".into());
        child.spec = IssuerSpec { parent_ref: Some(IssuerRef { name: "root".into() }), ..Default::default() };
        assert_eq!(
            reason_of(&desired_status(&child, &failing("int"), Some(false), &[], now())).1,
            reason::PARENT_NOT_READY
        );
        let mut imported = root();
        imported.spec = serde_yaml::from_str("secretRef: {name: ca}").unwrap();
        assert_eq!(reason_of(&desired_status(&imported, &failing("root"), None, &[], now())).1, reason::IMPORT_FAILED);
    }

    #[test]
    fn finalizer_is_added_held_and_released() {
        let mut i = root();
        assert_eq!(finalizer_action(&i, &[]), FinalizerAction::Add);
        i.metadata.finalizers = Some(vec![FINALIZER.into()]);
        assert_eq!(finalizer_action(&i, &["tls".into()]), FinalizerAction::Nothing);
        i.metadata.deletion_timestamp = Some(Time(Timestamp::from_second(1).unwrap()));
        assert_eq!(finalizer_action(&i, &["tls".into()]), FinalizerAction::Hold(vec!["tls".into()]));
        assert_eq!(finalizer_action(&i, &[]), FinalizerAction::Release);
        let s = desired_status(&i, &CaState::default(), None, &["a".into(), "b".into()], now());
        assert_eq!(reason_of(&s), ("False", reason::IN_USE));
        assert!(s.conditions[0].message.contains("a, b"));
    }

    #[test]
    fn referencing_profiles_are_matched_by_namespace_and_name() {
        let p = |ns: &str, name: &str, issuer: &str| {
            let mut p: CertificateProfile = serde_yaml::from_str(&format!(
                "apiVersion: pkiplane.dev/v1alpha1\nkind: CertificateProfile\nmetadata: {{name: {name}, namespace: {ns}}}\nspec: {{issuerRef: {{name: {issuer}}}, validity: {{duration: 30d}}}}\n"
            ))
            .unwrap();
            p.metadata = ObjectMeta { name: Some(name.into()), namespace: Some(ns.into()), ..Default::default() };
            p
        };
        let profiles = [p("pki", "b", "root"), p("pki", "a", "root"), p("other", "c", "root"), p("pki", "d", "int")];
        assert_eq!(referencing_profiles(&root(), profiles.iter()), vec!["a".to_string(), "b".to_string()]);
    }

    #[test]
    fn expiry_warning_uses_renew_before() {
        let mut i = root();
        i.spec.renew_before = Some("60d".into());
        let status =
            IssuerStatus { not_after: Some(time(now() + Duration::from_secs(50 * 86400))), ..Default::default() };
        assert!(expiring_soon(&i, &status, now()).is_some());
        i.spec.renew_before = Some("40d".into());
        assert!(expiring_soon(&i, &status, now()).is_none());
        // The next pass is when the 40-day window opens, 10 days from now.
        assert_eq!(next_pass(&i, &status, now()), Some(now() + Duration::from_secs(10 * 86400)));
    }

    #[test]
    fn an_issuer_waiting_for_the_ca_is_looked_at_again_soon() {
        let waiting =
            desired_status(&root(), &CaState { issuers: Some(vec![]), ..Default::default() }, None, &[], now());
        assert_eq!(next_pass(&root(), &waiting, now()), Some(now() + WAITING_FOR_CA_RECHECK));
        let ca = CaState { issuers: Some(vec![fixtures::ready_root("2037-01-01T00:00:00Z")]), ..Default::default() };
        let ready = desired_status(&root(), &ca, None, &[], now());
        let at = next_pass(&root(), &ready, now()).expect("the expiry warning is a due time");
        assert!(at > now() + Duration::from_secs(3600), "not a periodic tick: {at:?}");
    }
}
