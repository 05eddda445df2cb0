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
use axum::http::HeaderMap;
use axum::http::header::{ACCEPT, CONTENT_TYPE};
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
/// and without `_total` or the unit, which the encoder appends; nor a final full stop in
/// `help`, which it adds too).
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

/// The media type of the Prometheus text format (0.0.4), for clients that do not ask
/// for OpenMetrics (curl, `promtool check metrics`).
pub const CONTENT_TYPE_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `GET /metrics`: merge it into a listener's routes. OpenMetrics when the client's
/// Accept names it (Prometheus does), else the Prometheus text format.
pub fn router() -> Router {
    Router::new().route(
        "/metrics",
        get(|headers: HeaderMap| async move {
            let openmetrics = headers
                .get_all(ACCEPT)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .any(|v| v.contains("application/openmetrics-text"));
            if openmetrics {
                ([(CONTENT_TYPE, CONTENT_TYPE_OPENMETRICS)], render()).into_response()
            } else {
                ([(CONTENT_TYPE, CONTENT_TYPE_TEXT)], prometheus_text(&render())).into_response()
            }
        }),
    )
}

/// The Prometheus text format (0.0.4) of an OpenMetrics exposition as the encoder writes
/// it: the two differ, for what we export, only in a counter's family name (OpenMetrics
/// names the family without `_total`, its samples with it), in `# UNIT` lines and in the
/// final `# EOF`.
pub fn prometheus_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let meta = ["# HELP ", "# TYPE "].into_iter().find_map(|p| line.strip_prefix(p).map(|rest| (p, rest)));
        match meta {
            Some((prefix, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                let total = if counters.contains(name) { "_total" } else { "" };
                out.push_str(&format!("{prefix}{name}{total} {tail}"));
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// Upper bounds (seconds) of the latency histograms: 1 ms to 10 s.
pub(crate) const LATENCY_BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

#[cfg(test)]
mod tests;
