//! The operator's reconcile metrics (the names of its former hand-written exposition,
//! unchanged): `pkiplane_operator_reconciles_total`, `..._reconcile_errors_total`,
//! `..._reconcile_duration_seconds`, `pkiplane_operator_leader`.

use std::sync::OnceLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Unit;

use crate::register;

/// Upper bounds (seconds) of the reconcile duration histogram.
const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 10.0];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabels {
    pub controller: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub controller: String,
    /// A short, bounded error kind.
    pub error: String,
}

pub struct OperatorMetrics {
    reconciles: Family<ControllerLabels, Counter>,
    errors: Family<ErrorLabels, Counter>,
    durations: Family<ControllerLabels, Histogram>,
    leader: Gauge,
}

fn reconcile_histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// The operator's metrics, registered on first use.
pub fn metrics() -> &'static OperatorMetrics {
    static METRICS: OnceLock<OperatorMetrics> = OnceLock::new();
    METRICS.get_or_init(|| {
        let m = OperatorMetrics {
            reconciles: Family::default(),
            errors: Family::default(),
            durations: Family::new_with_constructor(reconcile_histogram as fn() -> Histogram),
            leader: Gauge::default(),
        };
        register("operator_reconciles", "Reconciles run, by controller", None, m.reconciles.clone());
        register("operator_reconcile_errors", "Failed reconciles, by controller and error", None, m.errors.clone());
        register("operator_reconcile_duration", "Time per reconcile", Some(Unit::Seconds), m.durations.clone());
        register("operator_leader", "1 while this replica holds the leader lease", None, m.leader.clone());
        m
    })
}

impl OperatorMetrics {
    /// Counts one reconcile of `controller` that took `took`, failed with `error` if set.
    pub fn reconciled(&self, controller: &str, took: Duration, error: Option<&str>) {
        let c = ControllerLabels { controller: controller.to_string() };
        self.reconciles.get_or_create(&c).inc();
        self.durations.get_or_create(&c).observe(took.as_secs_f64());
        if let Some(error) = error {
            let l = ErrorLabels { controller: controller.to_string(), error: error.to_string() };
            self.errors.get_or_create(&l).inc();
        }
    }

    pub fn set_leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }
}
