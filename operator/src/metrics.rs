//! Prometheus metrics (`pkiplane_metrics`' registry) and the health endpoints:
//! `/metrics`, `/healthz`, `/readyz` on `--metrics-listen`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;

use crate::error::{Error, Result};

/// The operator's metrics (in the process registry of `pkiplane_metrics`) and its
/// readiness.
#[derive(Default)]
pub struct Metrics {
    /// Leader or standby with its caches synced: what `/readyz` reports.
    ready: AtomicBool,
}

impl Metrics {
    pub fn reconciled(&self, controller: &str, took: Duration, error: Option<&str>) {
        pkiplane_metrics::operator::metrics().reconciled(controller, took, error);
    }

    pub fn set_leader(&self, leading: bool) {
        pkiplane_metrics::operator::metrics().set_leader(leading);
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// The exposition of the process's metrics (OpenMetrics text).
    pub fn render(&self) -> String {
        pkiplane_metrics::render()
    }
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
    // Registered now, so the leader gauge reads 0 before the first election.
    pkiplane_metrics::operator::metrics();
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(metrics)
        .merge(pkiplane_metrics::router());
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
        // The encoder writes `le` first.
        assert!(
            text.contains(
                "pkiplane_operator_reconcile_duration_seconds_bucket{le=\"0.025\",controller=\"endpoint\"} 1"
            ),
            "{text}"
        );
        assert!(text.contains("pkiplane_operator_reconcile_duration_seconds_count{controller=\"endpoint\"} 2"));
        assert!(text.contains("pkiplane_operator_leader 1"));
    }
}
