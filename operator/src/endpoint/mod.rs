//! The EnrollmentEndpoint controller: children by server-side apply (config, internal
//! identity, credentials, Deployment, Service; forced on every pass, which corrects
//! drift), the config-hash rollout, and status (URLs, ready replicas, Ready, counts).

pub mod children;
pub mod credentials;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus};
use k8s_openapi::api::core::v1::{Secret, Service};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use pkiplane_api::manifests::secret_entries;
use pkiplane_api::v1alpha1::{
    CertificateProfile, EndpointProfileStatus, EnrollmentEndpoint, EnrollmentEndpointStatus, is_ready,
};

use crate::context::{CaState, Context, measured, object_key, requeue_at, run_controller};
use crate::error::{Error, Result};
use crate::internal_ca::LeafSpec;
use crate::internal_tls::ensure_leaf;
use crate::status::{FIELD_MANAGER, apply_status, count, ready_condition, time, with_condition};
use children::{PodSettings, config_document, config_hash, owned_secret};

const CONTROLLER: &str = "enrollmentendpoint";
/// A Warning event once an endpoint has not been Ready for this long.
pub const NOT_READY_EVENT_AFTER: Duration = Duration::from_secs(120);

pub mod reason {
    pub const AVAILABLE: &str = "Available";
    pub const PROGRESSING: &str = "Progressing";
    pub const PROFILES_NOT_READY: &str = "ProfilesNotReady";
    pub const CA_UNAVAILABLE: &str = "CAUnavailable";
    pub const CONFIG_INCOMPLETE: &str = "ConfigIncomplete";
    /// `spec.replicas: 0`: everything is in place for pods, none is wanted.
    pub const SCALED_TO_ZERO: &str = "ScaledToZero";
}

/// What the reconcile observed, for the status.
#[derive(Debug, Default, Clone)]
pub struct Observed {
    pub deployment: Option<DeploymentStatus>,
    /// Exposed profiles that are missing or not Ready.
    pub profiles_not_ready: Vec<String>,
    /// Referenced Secrets that do not exist, credentials that could not be obtained.
    pub problems: Vec<String>,
}

/// The status the endpoint should have.
pub fn desired_status(
    endpoint: &EnrollmentEndpoint,
    observed: &Observed,
    ca: &CaState,
    now: SystemTime,
) -> EnrollmentEndpointStatus {
    let current = endpoint.status.clone().unwrap_or_default();
    let ns = endpoint.namespace().unwrap_or_default();
    let name = endpoint.name_any();
    let generation = endpoint.metadata.generation;
    let mut status = EnrollmentEndpointStatus {
        observed_generation: generation,
        urls: children::urls(endpoint),
        ready_replicas: observed.deployment.as_ref().and_then(|d| d.ready_replicas).unwrap_or(0),
        ..current.clone()
    };
    if let Some(summary) = &ca.summary {
        if let Some(c) = summary.endpoint(&ns, &name) {
            status.issued = count(c.issued);
            status.active = count(c.active);
            status.revoked = count(c.revoked);
            status.denied = count(c.denied);
            status.last_issuance_time = c.last_issued_at.map(time);
        }
        status.profiles = endpoint
            .spec
            .profiles
            .iter()
            .map(|binding| {
                let c = summary.endpoint_profile(&ns, &name, &binding.name).cloned().unwrap_or_default();
                EndpointProfileStatus {
                    name: binding.label().to_string(),
                    profile: binding.name.clone(),
                    issued: count(c.issued),
                    active: count(c.active),
                    revoked: count(c.revoked),
                }
            })
            .collect();
    }
    let (ready, reason, message) = if !observed.profiles_not_ready.is_empty() {
        (
            false,
            reason::PROFILES_NOT_READY,
            format!("CertificateProfiles not Ready: {}", observed.profiles_not_ready.join(", ")),
        )
    } else if !ca.available() {
        (
            false,
            reason::CA_UNAVAILABLE,
            format!("the CA service is not reachable: {}", ca.error.as_deref().unwrap_or("no answer yet")),
        )
    } else if !observed.problems.is_empty() {
        (false, reason::CONFIG_INCOMPLETE, observed.problems.join("; "))
    } else if endpoint.spec.replicas == 0 {
        (true, reason::SCALED_TO_ZERO, "configured; scaled to 0 replicas, so nothing serves it".to_owned())
    } else if status.ready_replicas >= endpoint.spec.replicas {
        (true, reason::AVAILABLE, format!("{} of {} replicas ready", status.ready_replicas, endpoint.spec.replicas))
    } else {
        (false, reason::PROGRESSING, format!("{} of {} replicas ready", status.ready_replicas, endpoint.spec.replicas))
    };
    status.conditions = with_condition(&current.conditions, ready_condition(ready, reason, message, generation, now));
    status
}

/// How many more requests were denied than at the last status write, when above the
/// threshold.
pub fn denied_rise(
    previous: Option<&EnrollmentEndpointStatus>,
    next: &EnrollmentEndpointStatus,
    threshold: i64,
) -> Option<i64> {
    let before = previous.map(|s| s.denied)?;
    let rise = next.denied - before;
    (rise > threshold).then_some(rise)
}

/// When Ready has been False for longer than [`NOT_READY_EVENT_AFTER`], the time it
/// turned False (the event's dedup key).
pub fn not_ready_since(status: &EnrollmentEndpointStatus, now: SystemTime) -> Option<SystemTime> {
    let c = status.conditions.iter().find(|c| c.type_ == pkiplane_api::v1alpha1::CONDITION_READY)?;
    let since = SystemTime::from(c.last_transition_time.0);
    (c.status != "True" && since + NOT_READY_EVENT_AFTER <= now).then_some(since)
}

fn cluster_ip(service: &Service) -> Option<IpAddr> {
    service.spec.as_ref()?.cluster_ip.as_deref()?.parse().ok()
}

async fn apply<K>(api: &Api<K>, object: &K) -> Result<K>
where
    K: Resource<DynamicType = ()> + Clone + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let name = object.meta().name.clone().ok_or(Error::MissingField("metadata.name"))?;
    Ok(api.patch(&name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(object)).await?)
}

async fn reconcile(endpoint: Arc<EnrollmentEndpoint>, ctx: Arc<Context>) -> Result<Action> {
    let key = object_key(endpoint.as_ref());
    measured(&ctx, CONTROLLER, &key, reconcile_inner(endpoint, ctx.clone())).await
}

async fn reconcile_inner(endpoint: Arc<EnrollmentEndpoint>, ctx: Arc<Context>) -> Result<Action> {
    if endpoint.metadata.deletion_timestamp.is_some() {
        // Children carry owner references: the garbage collector removes them.
        return Ok(Action::await_change());
    }
    let ns = endpoint.namespace().ok_or(Error::MissingField("metadata.namespace"))?;
    let name = endpoint.name_any();
    let owner = endpoint.controller_owner_ref(&()).ok_or(Error::MissingField("metadata.uid"))?;
    let internal_ca = ctx.internal_ca().ok_or(Error::InternalCaNotReady)?;
    let now = SystemTime::now();
    let ca_state = ctx.ca_state();
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    let mut observed = Observed::default();

    // Service first: its ClusterIP goes into the serving certificate.
    let services: Api<Service> = Api::namespaced(ctx.client.clone(), &ns);
    let desired_service = children::service(&endpoint, &owner);
    // Server-side apply would add an edited port as a second item (and fail on the
    // duplicate name): restore ports and selector outright first.
    if let Some(live) = services.get_opt(&children::workload_name(&name)).await?
        && let Some(patch) = children::service_drift_patch(&desired_service, &live)
    {
        tracing::info!(namespace = %ns, endpoint = %name, "Service edited by someone else; restoring its ports and selector");
        services.patch(&children::workload_name(&name), &PatchParams::default(), &Patch::Merge(&patch)).await?;
    }
    let service = apply(&services, &desired_service).await?;

    // Config: the endpoint and the Secrets it references.
    let mut referenced = Vec::new();
    for secret_name in children::referenced_secrets(&endpoint.spec) {
        match secrets.get_opt(&secret_name).await? {
            Some(s) => referenced.push(s),
            None => observed.problems.push(format!("Secret {ns}/{secret_name} not found")),
        }
    }
    let config_entries =
        BTreeMap::from([(children::CONFIG_KEY.to_string(), config_document(&endpoint, &referenced)?.into_bytes())]);
    apply(
        &secrets,
        &owned_secret(&endpoint, children::config_secret_name(&name), &config_entries, BTreeMap::new(), &owner),
    )
    .await?;

    // The pods' mTLS identity towards the CA service.
    let internal: BTreeMap<String, Vec<u8>> = ensure_leaf(
        &secrets,
        &ns,
        &children::internal_secret_name(&name),
        &LeafSpec::endpoint(&ns, &name),
        &internal_ca,
        Some(owner.clone()),
        now,
    )
    .await?;

    // Credentials requested from the CA service.
    let current = secrets.get_opt(&children::credentials_secret_name(&name)).await?;
    let current_entries = current.as_ref().map(secret_entries).unwrap_or_default();
    let current_annotations = current.as_ref().and_then(|s| s.metadata.annotations.clone()).unwrap_or_default();
    let scep_ra_issuer = endpoint
        .spec
        .default_profile()
        .or(endpoint.spec.profiles.first())
        .and_then(|b| ctx.cache.profiles().get(&ObjectRef::new(&b.name).within(&ns)))
        .map(|p| p.spec.issuer_ref.name.clone());
    let plans = credentials::credential_plans(&endpoint, cluster_ip(&service), scep_ra_issuer.as_deref());
    let creds = credentials::ensure_credentials(
        ctx.ca.as_ref(),
        &endpoint,
        &current_entries,
        &current_annotations,
        &plans,
        now,
    )
    .await?;
    observed.problems.extend(creds.errors.iter().map(|e| format!("credential {e}")));
    apply(
        &secrets,
        &owned_secret(
            &endpoint,
            children::credentials_secret_name(&name),
            &creds.entries,
            creds.annotations.clone(),
            &owner,
        ),
    )
    .await?;

    // The workload, restarted when anything it reads at start changes.
    let renewals = renewal_times(&internal, &creds.entries, &plans);
    let internal_public: BTreeMap<String, Vec<u8>> =
        internal.into_iter().filter(|(k, _)| k != crate::internal_ca::TLS_KEY).collect();
    let hash = config_hash(&[&config_entries, &creds.entries, &internal_public]);
    let pods = PodSettings {
        image: ctx.config.image.clone(),
        image_pull_policy: ctx.config.image_pull_policy.clone(),
        ca_url: ctx.config.ca_url.clone(),
    };
    let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), &ns);
    let deployment = apply(&deployments, &children::deployment(&endpoint, &pods, &hash, &owner)).await?;
    observed.deployment = deployment.status;

    observed.profiles_not_ready = endpoint
        .spec
        .profiles
        .iter()
        .filter(|b| {
            let profile = ctx.cache.profiles().get(&ObjectRef::new(&b.name).within(&ns));
            !profile.is_some_and(|p| is_ready(&p.status.as_ref().map(|s| s.conditions.clone()).unwrap_or_default()))
        })
        .map(|b| b.name.clone())
        .collect();

    let desired = desired_status(&endpoint, &observed, &ca_state, now);
    let api: Api<EnrollmentEndpoint> = Api::namespaced(ctx.client.clone(), &ns);
    apply_status(&api, endpoint.as_ref(), endpoint.status.as_ref(), &desired).await?;

    if let Some(rise) = denied_rise(endpoint.status.as_ref(), &desired, ctx.config.denial_event_threshold) {
        ctx.publish(
            endpoint.as_ref(),
            EventType::Warning,
            "DeniedRequestsRising",
            format!("{rise} requests denied by policy since the last check ({} in total)", desired.denied),
        )
        .await;
    }
    let not_ready_event = not_ready_event_at(&desired);
    if let Some(since) = not_ready_since(&desired, now) {
        let message = desired.conditions.first().map(|c| c.message.clone()).unwrap_or_default();
        ctx.announce(
            endpoint.as_ref(),
            format!("notready/{}/{}", endpoint.uid().unwrap_or_default(), time(since).0),
            EventType::Warning,
            "NotReady",
            format!("the endpoint has not been Ready for over {} s: {message}", NOT_READY_EVENT_AFTER.as_secs()),
        )
        .await;
    }
    // Everything else that changes the outcome is watched (the endpoint, its children,
    // its profiles and Secrets) or triggered by the CA poll; only time is not.
    let due = renewals.into_iter().chain(not_ready_event.filter(|at| *at > now)).min();
    Ok(requeue_at(due, now))
}

/// When the pods' internal identity or a credential becomes due for renewal.
fn renewal_times(
    internal: &BTreeMap<String, Vec<u8>>,
    credentials: &BTreeMap<String, Vec<u8>>,
    plans: &[credentials::CredentialPlan],
) -> Vec<SystemTime> {
    let pem = |entries: &BTreeMap<String, Vec<u8>>, key: &str| {
        entries.get(key).and_then(|c| crate::internal_ca::renewal_time(&String::from_utf8_lossy(c)))
    };
    plans
        .iter()
        .filter_map(|p| pem(credentials, &p.cert_key()))
        .chain(pem(internal, crate::internal_ca::TLS_CRT))
        .collect()
}

/// When a not-Ready endpoint's `NotReady` event becomes due.
pub fn not_ready_event_at(status: &EnrollmentEndpointStatus) -> Option<SystemTime> {
    let c = status.conditions.iter().find(|c| c.type_ == pkiplane_api::v1alpha1::CONDITION_READY)?;
    (c.status != "True").then(|| SystemTime::from(c.last_transition_time.0) + NOT_READY_EVENT_AFTER)
}

/// The endpoints in `namespace` whose spec satisfies `refers`, from the watch cache.
fn endpoints_referring(
    ctx: &Context,
    namespace: Option<String>,
    refers: impl Fn(&EnrollmentEndpoint) -> bool,
) -> Vec<ObjectRef<EnrollmentEndpoint>> {
    let Some(ns) = namespace else { return Vec::new() };
    ctx.cache
        .endpoints()
        .state()
        .iter()
        .filter(|e| e.metadata.namespace.as_deref() == Some(ns.as_str()) && refers(e))
        .map(|e| ObjectRef::from_obj(e.as_ref()))
        .collect()
}

/// Runs the EnrollmentEndpoint controller until `shutdown` resolves. A reconcile follows
/// changes to the endpoint's spec (not its status: see `spec_changes`), to the children it owns (e.g. a deleted Deployment), to the
/// CertificateProfiles it exposes (Ready, issuer), to the Secrets it references (their
/// metadata is watched: a data change moves the resourceVersion), and the CA poll's
/// changes to its counts.
pub async fn run(ctx: Arc<Context>, shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static) {
    use kube::runtime::WatchStreamExt;
    let client = ctx.client.clone();
    let owned = watcher::Config::default()
        .labels("app.kubernetes.io/managed-by=pkiplane-operator,app.kubernetes.io/component=endpoint");
    let by_profile = {
        let ctx = ctx.clone();
        move |p: Arc<CertificateProfile>| {
            let name = p.name_any();
            endpoints_referring(&ctx, p.namespace(), |e| e.spec.profiles.iter().any(|b| b.name == name))
        }
    };
    let by_secret = {
        let ctx = ctx.clone();
        move |s: kube::core::PartialObjectMeta<Secret>| {
            let name = s.name_any();
            endpoints_referring(&ctx, s.namespace(), |e| children::referenced_secrets(&e.spec).contains(&name))
        }
    };
    // Secrets the endpoints reference are not theirs: metadata only, the operator's own excluded.
    let referenced = watcher::watcher(
        Api::<kube::core::PartialObjectMeta<Secret>>::all(client.clone()),
        watcher::Config::default().labels("app.kubernetes.io/managed-by!=pkiplane-operator"),
    )
    .default_backoff()
    .touched_objects();
    let cache = &ctx.cache;
    // Its own status writes do not reconcile an endpoint again (see `spec_changes`).
    let changes = crate::cache::spec_changes(cache.endpoint_changes(), cache.endpoints().clone());
    let controller = Controller::for_shared_stream(changes, cache.endpoints().clone())
        .owns(Api::<Deployment>::all(client.clone()), owned.clone())
        .owns(Api::<Service>::all(client.clone()), owned.clone())
        .owns(Api::<Secret>::all(client.clone()), owned)
        .watches_shared_stream(cache.profile_changes(), by_profile)
        .watches_stream(referenced, by_secret)
        .reconcile_on(ctx.triggers.endpoints());
    run_controller(controller, reconcile, ctx, shutdown).await;
}

#[cfg(test)]
mod tests;
