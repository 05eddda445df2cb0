//! Prometheus metrics (text exposition, written by hand) and the health endpoints:
//! `/metrics`, `/healthz`, `/readyz` on `--metrics-listen`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;

use crate::error::{Error, Result};

/// Upper bounds (seconds) of the reconcile duration histogram.
const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 10.0];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

#[derive(Default)]
pub struct Metrics {
    /// (controller) -> reconciles.
    reconciles: Mutex<BTreeMap<String, u64>>,
    /// (controller, error label) -> failures.
    failures: Mutex<BTreeMap<(String, String), u64>>,
    durations: Mutex<BTreeMap<String, Histogram>>,
    leader: AtomicBool,
    /// Leader or standby with its caches synced: what `/readyz` reports.
    ready: AtomicBool,
}

impl Metrics {
    pub fn reconciled(&self, controller: &str, took: Duration, error: Option<&str>) {
        *self.reconciles.lock().unwrap_or_else(|e| e.into_inner()).entry(controller.into()).or_default() += 1;
        if let Some(label) = error {
            *self
                .failures
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry((controller.into(), label.into()))
                .or_default() += 1;
        }
        let secs = took.as_secs_f64();
        let mut durations = self.durations.lock().unwrap_or_else(|e| e.into_inner());
        let h = durations.entry(controller.into()).or_default();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                h.counts[i] += 1;
            }
        }
        h.sum += secs;
        h.count += 1;
    }

    pub fn set_leader(&self, leading: bool) {
        self.leader.store(leading, Ordering::Relaxed);
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP pkiplane_operator_reconciles_total Reconciles run, by controller.\n");
        out.push_str("# TYPE pkiplane_operator_reconciles_total counter\n");
        for (c, n) in self.reconciles.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = writeln!(out, "pkiplane_operator_reconciles_total{{controller=\"{c}\"}} {n}");
        }
        out.push_str("# HELP pkiplane_operator_reconcile_errors_total Failed reconciles, by controller and error.\n");
        out.push_str("# TYPE pkiplane_operator_reconcile_errors_total counter\n");
        for ((c, e), n) in self.failures.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = writeln!(out, "pkiplane_operator_reconcile_errors_total{{controller=\"{c}\",error=\"{e}\"}} {n}");
        }
        out.push_str("# HELP pkiplane_operator_reconcile_duration_seconds Time per reconcile.\n");
        out.push_str("# TYPE pkiplane_operator_reconcile_duration_seconds histogram\n");
        for (c, h) in self.durations.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            for (i, bound) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "pkiplane_operator_reconcile_duration_seconds_bucket{{controller=\"{c}\",le=\"{bound}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(
                out,
                "pkiplane_operator_reconcile_duration_seconds_bucket{{controller=\"{c}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(out, "pkiplane_operator_reconcile_duration_seconds_sum{{controller=\"{c}\"}} {}", h.sum);
            let _ =
                writeln!(out, "pkiplane_operator_reconcile_duration_seconds_count{{controller=\"{c}\"}} {}", h.count);
        }
        out.push_str("# HELP pkiplane_operator_leader 1 while this replica holds the leader lease.\n");
        out.push_str("# TYPE pkiplane_operator_leader gauge\n");
        let _ = writeln!(out, "pkiplane_operator_leader {}", u8::from(self.leader.load(Ordering::Relaxed)));
        out
    }
}

async fn metrics_text(State(m): State<Arc<Metrics>>) -> ([(axum::http::HeaderName, &'static str); 1], String) {
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], m.render())
}

async fn readyz(State(m): State<Arc<Metrics>>) -> (StatusCode, &'static str) {
    if m.is_ready() { (StatusCode::OK, "ok\n") } else { (StatusCode::SERVICE_UNAVAILABLE, "not ready\n") }
}

/// Serves `/metrics`, `/healthz` and `/readyz` under `limits` until `shutdown` resolves.
pub async fn serve(
    addr: SocketAddr,
    limits: pkiplane_listen::Limits,
    metrics: Arc<Metrics>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let app = Router::new()
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(metrics);
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(Error::Listener)?;
    tracing::info!(%addr, "metrics and health listening");
    pkiplane_listen::serve(listener, limits, pkiplane_listen::Plain(app), shutdown).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_counters_histogram_and_leader() {
        let m = Metrics::default();
        m.reconciled("endpoint", Duration::from_millis(20), None);
        m.reconciled("endpoint", Duration::from_millis(700), Some("kube"));
        m.set_leader(true);
        let text = m.render();
        assert!(text.contains("pkiplane_operator_reconciles_total{controller=\"endpoint\"} 2"));
        assert!(text.contains("pkiplane_operator_reconcile_errors_total{controller=\"endpoint\",error=\"kube\"} 1"));
        assert!(
            text.contains(
                "pkiplane_operator_reconcile_duration_seconds_bucket{controller=\"endpoint\",le=\"0.025\"} 1"
            )
        );
        assert!(text.contains("pkiplane_operator_reconcile_duration_seconds_count{controller=\"endpoint\"} 2"));
        assert!(text.contains("pkiplane_operator_leader 1"));
    }
}
