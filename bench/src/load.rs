//! What the load tools share: a summary of one run's latencies, printed as one line,
//! and a rustls client configuration trusting a PEM bundle.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// A TLS client (ring, safe default versions) trusting the certificates of `bundle`.
pub fn tls_client_config(bundle: Option<&Path>) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    if let Some(path) = bundle {
        for cert in CertificateDer::pem_file_iter(path).map_err(|e| format!("{}: {e}", path.display()))? {
            let cert = cert.map_err(|e| format!("{}: {e}", path.display()))?;
            roots.add(cert).map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// The outcome of one load run.
pub struct RunSummary {
    pub label: String,
    pub concurrency: usize,
    /// Latencies of the requests that succeeded.
    pub latencies: Vec<Duration>,
    pub failures: usize,
    pub elapsed: Duration,
}

impl RunSummary {
    /// Successes per second over the whole run.
    pub fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The latency at quantile `q` (0..=1) in milliseconds, by nearest rank (the value
    /// at least a fraction `q` of the samples do not exceed); NaN without samples.
    pub fn percentile_ms(&self, q: f64) -> f64 {
        let mut sorted = self.latencies.clone();
        sorted.sort_unstable();
        if sorted.is_empty() {
            return f64::NAN;
        }
        let rank = (q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
        sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1e3
    }

    /// One human line.
    pub fn line(&self) -> String {
        format!(
            "{}: c={} ok={} failed={} in {:.2}s: {:.1}/s, p50 {:.1} ms, p99 {:.1} ms",
            self.label,
            self.concurrency,
            self.latencies.len(),
            self.failures,
            self.elapsed.as_secs_f64(),
            self.rate(),
            self.percentile_ms(0.5),
            self.percentile_ms(0.99),
        )
    }

    /// One JSON object (for scripts that collect runs into a table).
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "label": self.label,
            "clients": self.concurrency,
            "issued": self.latencies.len(),
            "failed": self.failures,
            "seconds": self.elapsed.as_secs_f64(),
            "per_second": self.rate(),
            "p50_ms": self.percentile_ms(0.5),
            "p99_ms": self.percentile_ms(0.99),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_and_percentiles() {
        let s = RunSummary {
            label: "x".into(),
            concurrency: 2,
            latencies: (1..=100).rev().map(Duration::from_millis).collect(),
            failures: 1,
            elapsed: Duration::from_secs(4),
        };
        assert_eq!(s.rate(), 25.0);
        assert_eq!(s.percentile_ms(0.0), 1.0);
        assert_eq!(s.percentile_ms(0.5), 50.0);
        assert_eq!(s.percentile_ms(0.99), 99.0);
        assert_eq!(s.percentile_ms(1.0), 100.0);
        assert_eq!(s.json()["failed"], 1);
        let empty = RunSummary { latencies: vec![], ..s };
        assert!(empty.percentile_ms(0.5).is_nan());
    }
}
