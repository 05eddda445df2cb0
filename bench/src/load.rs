//! What the load tools share: a summary of one run's latencies, printed as one line,
//! a rustls client configuration trusting a PEM bundle, and a kept-alive plain HTTP/1
//! client (SCEP and CMP are plain HTTP).

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
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

/// A plain HTTP/1 client that keeps connections alive between requests.
pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

pub fn http_client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// Replies larger than this are refused (a SCEP CertRep or CMP ip is a few KiB).
const MAX_REPLY: usize = 1 << 20;

/// Sends `req` and returns the reply's content type and body; an error names what went
/// wrong (no answer within 30 s, a non-2xx status with the start of its body, ...).
pub async fn fetch<C>(
    http: &Client<C, Full<Bytes>>,
    req: hyper::Request<Full<Bytes>>,
) -> Result<(String, Bytes), String>
where
    C: hyper_util::client::legacy::connect::Connect + Clone + Send + Sync + 'static,
{
    let rsp = tokio::time::timeout(Duration::from_secs(30), http.request(req))
        .await
        .map_err(|_| "no answer within 30 s".to_string())?
        .map_err(|e| format!("HTTP: {e}"))?;
    let status = rsp.status();
    let ctype = rsp.headers().get(hyper::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let body = Limited::new(rsp.into_body(), MAX_REPLY)
        .collect()
        .await
        .map_err(|e| format!("reading the reply: {e}"))?
        .to_bytes();
    if !status.is_success() {
        return Err(format!("HTTP {status}: {}", String::from_utf8_lossy(&body[..body.len().min(200)])));
    }
    Ok((ctype, body))
}

/// Prepares requests 0..count with `prepare(n)` on every core (key generation and
/// signing happen before a run's clock starts); in order of n.
pub fn prepare_all<T, F>(count: usize, prepare: F) -> Result<Vec<T>, String>
where
    T: Send,
    F: Fn(usize) -> Result<T, String> + Sync,
{
    let next = AtomicUsize::new(0);
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let mut all: Vec<(usize, T)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        if n >= count {
                            return Ok(mine);
                        }
                        mine.push((n, prepare(n)?));
                    }
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().expect("a preparing thread")).collect::<Result<Vec<_>, String>>()
    })?
    .into_iter()
    .flatten()
    .collect();
    all.sort_by_key(|(n, _)| *n);
    Ok(all.into_iter().map(|(_, p)| p).collect())
}

/// Refuses a URL that is not http(s) or whose host is not loopback (`localhost`, any
/// 127.0.0.0/8 or ::1 address): the load tools only load this machine.
pub fn require_loopback(url: &str) -> Result<(), String> {
    let uri = url
        .parse::<http::Uri>()
        .ok()
        .filter(|u| matches!(u.scheme_str(), Some("http" | "https")))
        .ok_or_else(|| format!("`{url}` is not an http(s) URL"))?;
    let host = uri.host().unwrap_or_default();
    let ip = host.trim_start_matches('[').trim_end_matches(']').parse::<std::net::IpAddr>();
    if host.eq_ignore_ascii_case("localhost") || ip.is_ok_and(|ip| ip.is_loopback()) {
        Ok(())
    } else {
        Err(format!("the host `{host}` of {url} is not loopback; the load tools only load this machine"))
    }
}

/// The options every load tool takes: how many requests, how many senders, how fast and
/// for how long, and how the run is named and reported.
#[derive(clap::Args, Debug, Clone)]
pub struct LoadArgs {
    /// Requests to send (prepared before the clock starts).
    #[arg(long, default_value_t = 200)]
    pub count: usize,
    /// Concurrent senders.
    #[arg(long, default_value_t = 8)]
    pub clients: usize,
    /// Requests started per second (open loop); 0 starts the next one as soon as a sender
    /// is free.
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Nothing is started after this many seconds.
    #[arg(long, default_value_t = 120)]
    pub max_seconds: u64,
    /// The run's name in the report (default: the tool's protocol).
    #[arg(long)]
    pub label: Option<String>,
    /// Also print the summary as one JSON line on stdout.
    #[arg(long)]
    pub json: bool,
}

impl LoadArgs {
    /// The run's label, `default` unless `--label` was given.
    pub fn label_or(&self, default: &str) -> String {
        self.label.clone().unwrap_or_else(|| default.to_owned())
    }

    /// The plan for sending `count` prepared requests (at most `--count`).
    pub fn plan(&self, default_label: &str, count: usize) -> Plan {
        Plan {
            label: self.label_or(default_label),
            clients: self.clients,
            count: count.min(self.count),
            rate: (self.rate > 0.0).then_some(self.rate),
            max: Duration::from_secs(self.max_seconds),
        }
    }

    /// "sending with C clients[ at R requests/s]", for the tools' progress line.
    pub fn sending(&self) -> String {
        let rate = if self.rate > 0.0 { format!(" at {} requests/s", self.rate) } else { String::new() };
        format!("sending with {} clients{rate}", self.clients)
    }
}

/// How a run sends: `clients` concurrent senders share requests 0..count, each started
/// when a sender is free (closed loop) or, with a `rate`, not before n / rate seconds
/// (open loop); nothing is started after `max`.
pub struct Plan {
    pub label: String,
    pub clients: usize,
    pub count: usize,
    pub rate: Option<f64>,
    pub max: Duration,
}

impl Plan {
    /// Sends request n with `send(n)` (Ok when it succeeded) and summarises the run;
    /// the errors come back beside the summary.
    pub async fn run<F, Fut>(&self, send: F) -> (RunSummary, Vec<String>)
    where
        F: Fn(usize) -> Fut + Clone + Send + 'static,
        Fut: Future<Output = Result<(), String>> + Send,
    {
        let next = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let deadline = started + self.max;
        let (count, rate) = (self.count, self.rate.filter(|r| *r > 0.0));
        let senders: Vec<_> = (0..self.clients.max(1))
            .map(|_| {
                let (next, send) = (next.clone(), send.clone());
                tokio::spawn(async move {
                    let (mut latencies, mut errors) = (Vec::new(), Vec::new());
                    loop {
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        if n >= count || Instant::now() >= deadline {
                            return (latencies, errors);
                        }
                        if let Some(rate) = rate {
                            let at = started + Duration::from_secs_f64(n as f64 / rate);
                            tokio::time::sleep_until(at.into()).await;
                        }
                        let t = Instant::now();
                        match send(n).await {
                            Ok(()) => latencies.push(t.elapsed()),
                            Err(e) => errors.push(e),
                        }
                    }
                })
            })
            .collect();
        let (mut latencies, mut errors) = (Vec::new(), Vec::new());
        for s in senders {
            match s.await {
                Ok((l, e)) => {
                    latencies.extend(l);
                    errors.extend(e);
                }
                Err(e) => errors.push(format!("a sender failed: {e}")),
            }
        }
        let summary = RunSummary {
            label: self.label.clone(),
            concurrency: self.clients,
            latencies,
            failures: errors.len(),
            elapsed: started.elapsed(),
        };
        (summary, errors)
    }
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

    /// Prints the first errors and the summary line on stderr, and with `json` the JSON
    /// object on stdout.
    pub fn report(&self, tool: &str, errors: &[String], json: bool) {
        for e in errors.iter().take(5) {
            eprintln!("{tool}: failed: {e}");
        }
        eprintln!("{}", self.line());
        if json {
            println!("{}", self.json());
        }
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
    fn only_loopback_urls_are_loaded() {
        for ok in [
            "http://127.0.0.1:1/scep",
            "https://LOCALHOST/.well-known/est",
            "https://[::1]:8443/x",
            "http://127.0.0.2/",
        ] {
            assert!(require_loopback(ok).is_ok(), "{ok}");
        }
        for refused in ["https://example.com/x", "http://10.0.0.1/scep", "127.0.0.1"] {
            assert!(require_loopback(refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn a_plan_sends_each_request_once_and_counts_failures() {
        let sent = Arc::new(std::sync::Mutex::new(Vec::new()));
        let plan = Plan { label: "t".into(), clients: 3, count: 10, rate: None, max: Duration::from_secs(30) };
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        let (summary, errors) = rt.block_on(plan.run({
            let sent = sent.clone();
            move |n| {
                let sent = sent.clone();
                async move {
                    sent.lock().unwrap().push(n);
                    if n % 4 == 0 { Err(format!("refused {n}")) } else { Ok(()) }
                }
            }
        }));
        let mut sent = sent.lock().unwrap().clone();
        sent.sort_unstable();
        assert_eq!(sent, (0..10).collect::<Vec<_>>());
        assert_eq!((summary.latencies.len(), summary.failures), (7, 3));
        assert_eq!(errors.len(), 3);
    }

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
