//! Readiness and liveness probes (`httpGet`, `tcpSocket`) against the pod's address.
//! `httpGet` with scheme HTTPS only checks that the port accepts a connection (the kubelet
//! would complete a TLS handshake without verifying the certificate); `exec` probes are not
//! emulated and count as succeeding.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use k8s_openapi::api::core::v1::{ContainerPort, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    Http {
        port: u16,
        path: String,
        host_header: String,
        https: bool,
    },
    Tcp {
        port: u16,
    },
    /// Not emulated: always succeeds.
    Exec,
}

/// A probe with its timings. Periods are capped by the emulator's `--max-probe-period` so
/// tests do not wait the kubelet's 10 s default between polls.
#[derive(Debug, Clone)]
pub struct ProbeSpec {
    pub check: Check,
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    pub failure_threshold: u32,
    pub success_threshold: u32,
}

/// Resolves a container port given by number or by name.
pub fn resolve_port(port: &IntOrString, ports: &[ContainerPort]) -> Option<u16> {
    match port {
        IntOrString::Int(n) => u16::try_from(*n).ok(),
        IntOrString::String(name) => match name.parse::<u16>() {
            Ok(n) => Some(n),
            Err(_) => ports
                .iter()
                .find(|p| p.name.as_deref() == Some(name.as_str()))
                .and_then(|p| u16::try_from(p.container_port).ok()),
        },
    }
}

impl ProbeSpec {
    pub fn from_k8s(probe: &Probe, ports: &[ContainerPort], max_period: Duration) -> Result<Self, String> {
        let check = if let Some(http) = &probe.http_get {
            let port =
                resolve_port(&http.port, ports).ok_or_else(|| format!("httpGet port {:?} unknown", http.port))?;
            Check::Http {
                port,
                path: http.path.clone().filter(|p| !p.is_empty()).unwrap_or_else(|| "/".into()),
                host_header: http.host.clone().unwrap_or_default(),
                https: http.scheme.as_deref() == Some("HTTPS"),
            }
        } else if let Some(tcp) = &probe.tcp_socket {
            let port =
                resolve_port(&tcp.port, ports).ok_or_else(|| format!("tcpSocket port {:?} unknown", tcp.port))?;
            Check::Tcp { port }
        } else {
            Check::Exec
        };
        let secs = |v: Option<i32>, default: i32| Duration::from_secs(v.unwrap_or(default).max(0) as u64);
        Ok(Self {
            check,
            initial_delay: secs(probe.initial_delay_seconds, 0),
            period: secs(probe.period_seconds, 10).min(max_period).max(Duration::from_millis(100)),
            timeout: secs(probe.timeout_seconds, 1).max(Duration::from_secs(1)),
            failure_threshold: probe.failure_threshold.unwrap_or(3).max(1) as u32,
            success_threshold: probe.success_threshold.unwrap_or(1).max(1) as u32,
        })
    }

    /// Runs the check once against `ip`.
    pub async fn check(&self, ip: Ipv4Addr) -> bool {
        let attempt = async {
            match &self.check {
                Check::Exec => true,
                Check::Tcp { port } | Check::Http { port, https: true, .. } => {
                    TcpStream::connect(SocketAddr::from((ip, *port))).await.is_ok()
                }
                Check::Http { port, path, host_header, https: false } => {
                    http_get(SocketAddr::from((ip, *port)), path, host_header)
                        .await
                        .is_some_and(|s| (200..400).contains(&s))
                }
            }
        };
        timeout(self.timeout, attempt).await.unwrap_or(false)
    }
}

/// An HTTP/1.1 GET; returns the response's status code.
async fn http_get(addr: SocketAddr, path: &str, host_header: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(addr).await.ok()?;
    let host = if host_header.is_empty() { addr.to_string() } else { host_header.to_string() };
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: kube-probe/1.34 (pkiplane kubelet-emulator)\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut head = Vec::with_capacity(256);
    let mut buf = [0u8; 256];
    while !head.windows(2).any(|w| w == b"\r\n") && head.len() < 4096 {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    parse_status(&head)
}

fn parse_status(head: &[u8]) -> Option<u16> {
    let line = std::str::from_utf8(head).ok()?.lines().next()?;
    let mut parts = line.split_whitespace();
    parts.next().filter(|v| v.starts_with("HTTP/"))?;
    parts.next()?.parse().ok()
}

/// Tracks consecutive results against the thresholds, as the kubelet's prober does.
#[derive(Debug, Default)]
pub struct Thresholds {
    successes: u32,
    failures: u32,
}

impl Thresholds {
    /// Records a result; returns `Some(true)` when the probe has just passed its success
    /// threshold, `Some(false)` when it has just reached its failure threshold.
    pub fn record(&mut self, spec: &ProbeSpec, ok: bool) -> Option<bool> {
        if ok {
            self.failures = 0;
            self.successes += 1;
            (self.successes >= spec.success_threshold).then_some(true)
        } else {
            self.successes = 0;
            self.failures += 1;
            (self.failures >= spec.failure_threshold).then_some(false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{HTTPGetAction, TCPSocketAction};

    fn ports() -> Vec<ContainerPort> {
        vec![ContainerPort { name: Some("health".into()), container_port: 9090, ..Default::default() }]
    }

    #[test]
    fn http_probe_with_a_named_port_and_capped_period() {
        let probe = Probe {
            http_get: Some(HTTPGetAction {
                path: Some("/readyz".into()),
                port: IntOrString::String("health".into()),
                ..Default::default()
            }),
            period_seconds: Some(10),
            ..Default::default()
        };
        let spec = ProbeSpec::from_k8s(&probe, &ports(), Duration::from_secs(1)).unwrap();
        assert_eq!(
            spec.check,
            Check::Http { port: 9090, path: "/readyz".into(), host_header: String::new(), https: false }
        );
        assert_eq!(spec.period, Duration::from_secs(1));
        assert_eq!((spec.failure_threshold, spec.success_threshold), (3, 1));
    }

    #[test]
    fn unknown_port_names_are_errors() {
        let probe = Probe {
            tcp_socket: Some(TCPSocketAction { port: IntOrString::String("nope".into()), ..Default::default() }),
            ..Default::default()
        };
        assert!(ProbeSpec::from_k8s(&probe, &ports(), Duration::from_secs(1)).is_err());
    }

    #[test]
    fn status_lines_parse() {
        assert_eq!(parse_status(b"HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(parse_status(b"HTTP/1.0 503 Service Unavailable\r\nx"), Some(503));
        assert_eq!(parse_status(b"garbage"), None);
    }

    #[test]
    fn thresholds_count_consecutive_results() {
        let probe = Probe { failure_threshold: Some(2), ..Default::default() };
        let spec = ProbeSpec::from_k8s(&probe, &[], Duration::from_secs(1)).unwrap();
        let mut t = Thresholds::default();
        assert_eq!(t.record(&spec, false), None);
        assert_eq!(t.record(&spec, true), Some(true));
        assert_eq!(t.record(&spec, false), None);
        assert_eq!(t.record(&spec, false), Some(false));
    }
}
