//! The ready file: what is listening where, for scripts and tests.

use std::path::Path;

use anyhow::Result;
use serde::Serialize;

/// One running endpoint, as the ready file and the start-up lines describe it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunningEndpoint {
    pub namespace: String,
    pub name: String,
    pub protocol: String,
    pub urls: Vec<String>,
    /// PEM to trust the endpoint's TLS server certificate (None for plain HTTP).
    pub tls_trust_bundle: Option<String>,
    /// PEM of the CA chains (roots included) of every Issuer behind the endpoint's profiles.
    pub ca_bundle: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReadyFile<'a> {
    endpoints: &'a [RunningEndpoint],
    publish_url: &'a str,
    /// Where `/metrics` is served (`--metrics-listen`), when it is.
    metrics_url: Option<&'a str>,
    /// The admin API's base URL (`--admin-listen`), when it is served.
    admin_url: Option<&'a str>,
}

/// The process-wide listeners' URLs.
pub struct Urls<'a> {
    pub publish: &'a str,
    pub metrics: Option<&'a str>,
    pub admin: Option<&'a str>,
}

/// Writes the ready file atomically (a reader never sees half of it).
pub fn write(path: &Path, endpoints: &[RunningEndpoint], urls: &Urls<'_>) -> Result<()> {
    let file = ReadyFile { endpoints, publish_url: urls.publish, metrics_url: urls.metrics, admin_url: urls.admin };
    let json = serde_json::to_vec_pretty(&file)?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, json)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}
