//! The arguments `pkiplane serve` and `pkiplane ca` share about running as a service:
//! the drain on SIGTERM and the Prometheus metrics.

use std::net::SocketAddr;
use std::time::Duration;

use pkiplane_core::duration::parse_duration;

#[derive(clap::Args, Debug, Clone)]
pub struct ServiceArgs {
    /// How long in-flight requests may take to finish after SIGTERM.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
    /// Where Prometheus metrics are served (`/metrics`); unset, they are not served. A
    /// listener of their own, never the publication one: relying parties may reach that
    /// one from anywhere, and metrics name issuers, profiles and endpoints.
    #[arg(long)]
    pub metrics_listen: Option<SocketAddr>,
    /// How often the metrics computed from the CA and its inventory (CA notAfter, CRL
    /// nextUpdate, certificates in their renewal window) are refreshed.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub metrics_refresh: Duration,
}
