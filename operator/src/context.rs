//! What every reconcile is handed: clients, settings, the CA service's latest answers,
//! the internal CA, caches, the event recorder and metrics.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use kube::Client;
use kube::Resource;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

use tokio::sync::Notify;

use crate::ca_client::{CaServiceApi, IssuerStatus, Summary};
use crate::ca_poll::Triggers;
use crate::cache::ClusterCache;
use crate::internal_ca::InternalCa;
use crate::metrics::Metrics;

/// The operator's settings (the `pkiplane operator` flags).
#[derive(Clone, Debug)]
pub struct OperatorConfig {
    /// The control-plane namespace (internal CA, leases, CA service).
    pub namespace: String,
    /// The CA service's internal API, e.g. `https://pkiplane-ca.pkiplane-system.svc:9443`.
    pub ca_url: String,
    /// Container image of endpoint Deployments.
    pub image: String,
    /// Their imagePullPolicy (Always, IfNotPresent, Never); `None`: Kubernetes' default.
    pub image_pull_policy: Option<String>,
    pub metrics_listen: SocketAddr,
    /// Timeouts and connection caps of the metrics listener.
    pub listener_limits: pkiplane_listen::Limits,
    /// A Warning event when an endpoint's denied count rises by more than this per tick.
    pub denial_event_threshold: i64,
    pub leader_elect: bool,
    /// This replica's name in the Lease and in Events: hostname + pid.
    pub identity: String,
}

impl OperatorConfig {
    pub fn default_image() -> String {
        format!("ghcr.io/pkiplane/pkiplane:{}", env!("CARGO_PKG_VERSION"))
    }
}

/// The longest an object goes without a reconcile: a safety net under the watches, the
/// CA change triggers and the time-based requeues, not what keeps status current.
pub const RESYNC: Duration = Duration::from_secs(30 * 60);
/// How often the internal CA, its fixed leaves and the webhook caBundles are checked
/// (renewal is at 2/3 of lifetimes of a month and more; a failed pass is retried sooner).
pub const INTERNAL_TLS_EVERY: Duration = Duration::from_secs(60);
/// Reconciles run at once per controller. Unbounded, a start with thousands of objects
/// had as many API requests (connections, buffers, futures) in flight at once; a
/// reconcile mostly waits on the API server, which serves a few dozen at a time anyway.
pub const RECONCILE_CONCURRENCY: u16 = 16;
/// The "expiring soon" window asked of the CA service's summary.
pub const EXPIRING_WINDOW: Duration = Duration::from_secs(30 * 24 * 3600);

/// The CA service's latest answers (see [`crate::ca_poll`]).
#[derive(Clone, Debug, Default)]
pub struct CaState {
    /// `None` until the CA service has answered.
    pub issuers: Option<Vec<IssuerStatus>>,
    pub summary: Option<Summary>,
    /// The last error talking to the CA service, if the last poll failed.
    pub error: Option<String>,
}

impl CaState {
    pub fn available(&self) -> bool {
        self.issuers.is_some() && self.error.is_none()
    }

    pub fn issuer(&self, namespace: &str, name: &str) -> Option<&IssuerStatus> {
        self.issuers.as_ref()?.iter().find(|i| i.namespace == namespace && i.name == name)
    }
}

pub struct Context {
    pub client: Client,
    pub config: OperatorConfig,
    pub ca: Arc<dyn CaServiceApi>,
    pub ca_state: RwLock<CaState>,
    pub internal_ca: RwLock<Option<InternalCa>>,
    pub cache: ClusterCache,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    /// Consecutive failures per object, for the error policy's backoff.
    failures: Mutex<HashMap<String, u32>>,
    /// Events already published, so a condition is announced once, not every pass.
    announced: Mutex<HashSet<String>>,
    /// Reconcile requests from the CA poll.
    pub triggers: Triggers,
    /// Asks for a CA poll before the next periodic one.
    pub ca_poll_soon: Notify,
}

impl Context {
    pub fn new(
        client: Client,
        config: OperatorConfig,
        ca: Arc<dyn CaServiceApi>,
        cache: ClusterCache,
        metrics: Arc<Metrics>,
    ) -> Self {
        let reporter = Reporter { controller: "pkiplane-operator".into(), instance: Some(config.identity.clone()) };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            config,
            ca,
            ca_state: RwLock::default(),
            internal_ca: RwLock::default(),
            cache,
            metrics,
            failures: Mutex::default(),
            announced: Mutex::default(),
            triggers: Triggers::default(),
            ca_poll_soon: Notify::new(),
        }
    }

    /// An object waits for something only the CA service's answers tell: poll it soon
    /// (at most every [`crate::ca_poll::CA_POLL_SPACING`]).
    pub fn poll_ca_soon(&self) {
        self.ca_poll_soon.notify_one();
    }

    pub fn ca_state(&self) -> CaState {
        self.ca_state.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn internal_ca(&self) -> Option<InternalCa> {
        self.internal_ca.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn ca_client_identity(&self, identity: crate::ca_client::ClientIdentity) {
        self.ca.set_identity(identity);
    }

    /// Backoff after a failed reconcile of `key`: 2 s, 4 s, ... up to 5 minutes.
    pub fn backoff(&self, key: &str) -> Duration {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let n = failures.entry(key.to_string()).or_insert(0);
        *n = n.saturating_add(1);
        backoff_delay(*n)
    }

    pub fn reset_backoff(&self, key: &str) {
        self.failures.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
    }

    /// Publishes an event about `object` once per `dedup_key` (failures are logged: an
    /// event is never worth failing a reconcile).
    pub async fn announce<K: Resource<DynamicType = ()>>(
        &self,
        object: &K,
        dedup_key: String,
        type_: EventType,
        reason: &str,
        note: String,
    ) {
        if !self.announced.lock().unwrap_or_else(|e| e.into_inner()).insert(dedup_key) {
            return;
        }
        self.publish(object, type_, reason, note).await;
    }

    /// Publishes an event about `object`.
    pub async fn publish<K: Resource<DynamicType = ()>>(
        &self,
        object: &K,
        type_: EventType,
        reason: &str,
        note: String,
    ) {
        let event =
            Event { type_, reason: reason.into(), note: Some(note), action: "Reconcile".into(), secondary: None };
        if let Err(e) = self.recorder.publish(&event, &object.object_ref(&())).await {
            tracing::warn!(reason, error = %e, "publishing event failed");
        }
    }
}

/// Reconcile again at `due` (a renewal, an expiry warning), or after [`RESYNC`] when
/// nothing is due sooner; never sooner than a second from `now`.
pub fn requeue_at(due: Option<std::time::SystemTime>, now: std::time::SystemTime) -> Action {
    let wait = due.map(|d| d.duration_since(now).unwrap_or_default()).unwrap_or(RESYNC);
    Action::requeue(wait.clamp(Duration::from_secs(1), RESYNC))
}

/// 2^n seconds, capped at 300.
pub fn backoff_delay(failures: u32) -> Duration {
    Duration::from_secs(2u64.saturating_pow(failures.min(9)).min(300))
}

/// Runs one reconcile, recording its duration and outcome in the metrics and resetting
/// the object's backoff on success.
pub async fn measured<F>(
    ctx: &Context,
    controller: &str,
    key: &str,
    reconcile: F,
) -> crate::error::Result<kube::runtime::controller::Action>
where
    F: std::future::Future<Output = crate::error::Result<kube::runtime::controller::Action>>,
{
    let start = std::time::Instant::now();
    let result = reconcile.await;
    ctx.metrics.reconciled(controller, start.elapsed(), result.as_ref().err().map(|e| e.metric_label()));
    match &result {
        Ok(_) => ctx.reset_backoff(key),
        Err(e) => tracing::warn!(controller, object = key, error = %e, "reconcile failed"),
    }
    result
}

/// Runs `controller` with `reconcile` until `shutdown` resolves; an object whose
/// reconcile failed is tried again after its backoff ([`Context::backoff`]).
pub async fn run_controller<K, R, F>(
    controller: kube::runtime::Controller<K>,
    reconcile: R,
    ctx: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) where
    K: Clone + Resource + serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone + std::fmt::Debug + Unpin,
    R: FnMut(Arc<K>, Arc<Context>) -> F,
    F: std::future::Future<Output = crate::error::Result<kube::runtime::controller::Action>> + Send + 'static,
{
    let controller =
        controller.with_config(kube::runtime::controller::Config::default().concurrency(RECONCILE_CONCURRENCY));
    let error_policy = |object: Arc<K>, _error: &crate::error::Error, ctx: Arc<Context>| {
        kube::runtime::controller::Action::requeue(ctx.backoff(&object_key(object.as_ref())))
    };
    futures::StreamExt::for_each(controller.graceful_shutdown_on(shutdown).run(reconcile, error_policy, ctx), |_| {
        futures::future::ready(())
    })
    .await;
}

/// `namespace/name` of an object, for logs and backoff bookkeeping.
pub fn object_key<K: Resource>(object: &K) -> String {
    format!(
        "{}/{}",
        object.meta().namespace.as_deref().unwrap_or_default(),
        object.meta().name.as_deref().unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requeue_is_at_the_due_time_within_the_resync() {
        let now = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(requeue_at(None, now), Action::requeue(RESYNC));
        assert_eq!(requeue_at(Some(now + Duration::from_secs(90)), now), Action::requeue(Duration::from_secs(90)));
        assert_eq!(requeue_at(Some(now + RESYNC * 3), now), Action::requeue(RESYNC));
        assert_eq!(requeue_at(Some(now - Duration::from_secs(5)), now), Action::requeue(Duration::from_secs(1)));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff_delay(1), Duration::from_secs(2));
        assert_eq!(backoff_delay(3), Duration::from_secs(8));
        assert_eq!(backoff_delay(40), Duration::from_secs(300));
    }
}
