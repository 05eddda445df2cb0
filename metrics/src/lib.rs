//! pkiplane's Prometheus metrics, one registry per process.
//!
//! Every component (`serve`, `ca`, `endpoint`, `webhook`, `operator`) mounts [`router`]
//! (`GET /metrics`, OpenMetrics text) on a listener of its own choosing and registers
//! only the metric groups it uses ([`ca::metrics`], [`http::metrics`],
//! [`operator::metrics`]): each group registers itself on first use. Names follow the
//! Prometheus conventions (`pkiplane_` prefix, `_total` counters, base units);
//! docs/monitoring.md lists them. Labels are bounded: object references, protocols,
//! rule names, status classes; never serials, subjects or request text.
#![forbid(unsafe_code)]

pub mod ca;
pub mod http;
pub mod operator;

use std::sync::{Mutex, OnceLock};

use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::registry::{Registry, Unit};

/// The media type of the exposition.
pub const CONTENT_TYPE_OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

fn registry() -> &'static Mutex<Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    REGISTRY.get_or_init(|| Mutex::new(Registry::with_prefix("pkiplane")))
}

/// Registers one metric in the process registry (name without the `pkiplane_` prefix,
/// and without `_total` or the unit, which the encoder appends).
pub(crate) fn register(name: &str, help: &str, unit: Option<Unit>, metric: impl prometheus_client::registry::Metric) {
    let mut r = registry().lock().unwrap_or_else(|e| e.into_inner());
    match unit {
        Some(u) => r.register_with_unit(name, help, u, metric),
        None => r.register(name, help, metric),
    }
}

/// The exposition of every registered metric (OpenMetrics text, ending in `# EOF`).
pub fn render() -> String {
    let mut out = String::new();
    let r = registry().lock().unwrap_or_else(|e| e.into_inner());
    if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &r) {
        // Encoding into a String cannot fail short of a bug in a label encoder.
        tracing::error!(error = %e, "encoding the metrics failed");
    }
    out
}

/// `GET /metrics`: merge it into a listener's routes.
pub fn router() -> Router {
    Router::new()
        .route("/metrics", get(|| async { ([(CONTENT_TYPE, CONTENT_TYPE_OPENMETRICS)], render()).into_response() }))
}

/// Upper bounds (seconds) of the latency histograms: 1 ms to 10 s.
pub(crate) const LATENCY_BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

#[cfg(test)]
mod tests;
