//! The CA's metrics: an [`Observer`] of core's events (issued, denied, revoked, CRLs,
//! store writes) and gauges refreshed from the CA and its inventory by [`spawn_refresh`]
//! (CA notAfter, staged next CA, CRL nextUpdate, certificates in their renewal window).

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pkiplane_core::ObjectRef;
use pkiplane_core::inventory::GroupBy;
use pkiplane_core::issuance::Ca;
use pkiplane_core::observe::{Event, Observer, Origin};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Unit;

use crate::{LATENCY_BUCKETS, register};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub issuer: String,
    pub profile: String,
    pub protocol: String,
    /// `namespace/name` of the EnrollmentEndpoint, empty for the CLI and internal roles.
    pub endpoint: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeniedLabels {
    pub issuer: String,
    pub profile: String,
    pub protocol: String,
    pub endpoint: String,
    /// The policy rule that denied (a profile field path such as `subjectAltNames.dns.suffixes`).
    pub rule: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProfileLabels {
    pub issuer: String,
    pub profile: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct IssuerLabels {
    pub issuer: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LatencyLabels {
    pub profile: String,
    pub protocol: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StoreLabels {
    pub operation: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// The CA's metric families.
pub struct CaMetrics {
    pub issued: Family<RequestLabels, Counter>,
    pub denied: Family<DeniedLabels, Counter>,
    pub revoked: Family<ProfileLabels, Counter>,
    pub issuance_duration: Family<LatencyLabels, Histogram>,
    pub store_write_duration: Family<StoreLabels, Histogram>,
    pub ca_not_after: Family<IssuerLabels, FloatGauge>,
    pub next_ca_staged: Family<IssuerLabels, Gauge>,
    pub crl_number: Family<IssuerLabels, Gauge>,
    pub crl_next_update: Family<IssuerLabels, FloatGauge>,
    pub expiring: Family<ProfileLabels, Gauge>,
    pub approvals_waiting: Family<ProfileLabels, Gauge>,
}

/// The CA's metrics, registered on first use.
pub fn metrics() -> &'static CaMetrics {
    static METRICS: OnceLock<CaMetrics> = OnceLock::new();
    METRICS.get_or_init(|| {
        let m = CaMetrics {
            issued: Family::default(),
            denied: Family::default(),
            revoked: Family::default(),
            issuance_duration: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
            store_write_duration: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
            ca_not_after: Family::default(),
            next_ca_staged: Family::default(),
            crl_number: Family::default(),
            crl_next_update: Family::default(),
            expiring: Family::default(),
            approvals_waiting: Family::default(),
        };
        register("certificates_issued", "Certificates issued", None, m.issued.clone());
        register("certificates_denied", "Policy denials, one per rule that denied a request", None, m.denied.clone());
        register("certificates_revoked", "Certificates revoked", None, m.revoked.clone());
        register(
            "issuance_duration",
            "Time from a request reaching the CA to its certificate being stored",
            Some(Unit::Seconds),
            m.issuance_duration.clone(),
        );
        register(
            "store_write_duration",
            "Time per inventory write, by operation",
            Some(Unit::Seconds),
            m.store_write_duration.clone(),
        );
        register(
            "ca_not_after_timestamp",
            "notAfter of the Issuer's current CA certificate (Unix time)",
            Some(Unit::Seconds),
            m.ca_not_after.clone(),
        );
        register(
            "ca_next_staged",
            "1 while a next CA (key rollover) is staged for the Issuer",
            None,
            m.next_ca_staged.clone(),
        );
        register(
            "crl_number",
            "CRL number of the Issuer's last CRL signed by this process",
            None,
            m.crl_number.clone(),
        );
        register(
            "crl_next_update_timestamp",
            "nextUpdate of the Issuer's last published CRL (Unix time)",
            Some(Unit::Seconds),
            m.crl_next_update.clone(),
        );
        register(
            "certificates_expiring",
            "Active certificates inside their profile's renewal window",
            None,
            m.expiring.clone(),
        );
        register(
            "approval_requests_waiting",
            "Requests waiting for a person's approval (`pkiplane approvals list`)",
            None,
            m.approvals_waiting.clone(),
        );
        m
    })
}

fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

fn request_labels(o: &Origin<'_>) -> RequestLabels {
    RequestLabels {
        issuer: o.issuer.to_string(),
        profile: o.profile.to_string(),
        protocol: o.protocol.as_str().to_string(),
        endpoint: o.endpoint.map(ToString::to_string).unwrap_or_default(),
    }
}

/// Counts the CA's events in [`metrics`]; give it to `Ca::observer().set`.
pub struct CaObserver;

impl Observer for CaObserver {
    fn observe(&self, event: &Event<'_>) {
        let m = metrics();
        match event {
            Event::Issued { origin, took } => {
                m.issued.get_or_create(&request_labels(origin)).inc();
                let l = LatencyLabels {
                    profile: origin.profile.to_string(),
                    protocol: origin.protocol.as_str().to_string(),
                };
                m.issuance_duration.get_or_create(&l).observe(took.as_secs_f64());
            }
            Event::Denied { origin, rules } => {
                let base = request_labels(origin);
                for rule in rules.iter() {
                    let l = DeniedLabels {
                        issuer: base.issuer.clone(),
                        profile: base.profile.clone(),
                        protocol: base.protocol.clone(),
                        endpoint: base.endpoint.clone(),
                        rule: (*rule).to_string(),
                    };
                    m.denied.get_or_create(&l).inc();
                }
            }
            Event::Revoked { issuer, profile } => {
                let l = ProfileLabels { issuer: issuer.to_string(), profile: profile.to_string() };
                m.revoked.get_or_create(&l).inc();
            }
            Event::CrlPublished { issuer, number, next_update } => {
                let l = IssuerLabels { issuer: issuer.to_string() };
                m.crl_number.get_or_create(&l).set(i64::try_from(*number).unwrap_or(i64::MAX));
                m.crl_next_update.get_or_create(&l).set(unix_seconds(*next_update));
            }
            Event::StoreWrite { operation, took } => {
                let l = StoreLabels { operation: (*operation).to_string() };
                m.store_write_duration.get_or_create(&l).observe(took.as_secs_f64());
            }
        }
    }
}

/// Sends `ca`'s events to the metrics, refreshes the gauges now (so the first scrape has
/// them) and then every `every` in a task of its own (each refresh reads the issuers in
/// memory, each issuer's last CRL, and one inventory count per distinct renewal window
/// of the profiles).
pub async fn start(ca: Arc<Ca>, every: Duration) {
    if !ca.observer().set(Arc::new(CaObserver)) {
        tracing::warn!("the CA already had an observer; metrics count only what it sees");
    }
    refresh(&ca, SystemTime::now()).await;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            refresh(&ca, SystemTime::now()).await;
        }
    });
}

/// Sets the gauges from `ca` at `now`.
pub async fn refresh(ca: &Ca, now: SystemTime) {
    let m = metrics();
    m.ca_not_after.clear();
    m.next_ca_staged.clear();
    for issuer in ca.issuers() {
        let l = IssuerLabels { issuer: issuer.id.to_string() };
        m.ca_not_after.get_or_create(&l).set(unix_seconds(issuer.not_after()));
        m.next_ca_staged.get_or_create(&l).set(i64::from(issuer.next.is_some()));
        match ca.inventory().last_crl(&issuer.id).await {
            Ok(Some(crl)) => {
                m.crl_next_update.get_or_create(&l).set(unix_seconds(crl.next_update));
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(issuer = %issuer.id, error = %e, "metrics: reading the last CRL failed"),
        }
    }
    refresh_expiring(ca, now).await;
    refresh_waiting(ca).await;
}

async fn refresh_waiting(ca: &Ca) {
    let m = metrics();
    match ca.waiting_approvals().await {
        Ok(waiting) => {
            m.approvals_waiting.clear();
            for p in ca.profiles().iter().filter(|p| p.approval_required) {
                let n = waiting.iter().find(|w| w.profile == p.id).map_or(0, |w| w.waiting);
                let l = ProfileLabels { issuer: p.issuer.to_string(), profile: p.id.to_string() };
                m.approvals_waiting.get_or_create(&l).set(i64::try_from(n).unwrap_or(i64::MAX));
            }
        }
        Err(e) => tracing::warn!(error = %e, "metrics: counting waiting approval requests failed"),
    }
}

async fn refresh_expiring(ca: &Ca, now: SystemTime) {
    // One count per distinct renewal window: profiles sharing a window share a query.
    let mut by_window: BTreeMap<Duration, Vec<(ObjectRef, ObjectRef)>> = BTreeMap::new();
    for p in ca.profiles() {
        let window = p.renewal.renew_before(p.validity.duration);
        by_window.entry(window).or_default().push((p.id.clone(), p.issuer.clone()));
    }
    let m = metrics();
    m.expiring.clear();
    for (window, profiles) in by_window {
        let counts = match ca.inventory().counts(GroupBy::Profile, now, window).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "metrics: counting expiring certificates failed");
                continue;
            }
        };
        for (profile, issuer) in profiles {
            let key = profile.to_string();
            let n = counts.iter().find(|c| c.key == key).map_or(0, |c| c.expiring_soon);
            let l = ProfileLabels { issuer: issuer.to_string(), profile: key };
            m.expiring.get_or_create(&l).set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }
}
