//! Starting each EnrollmentEndpoint on its own listener.

use std::path::Path;
use std::sync::Arc;

use anyhow::Result;
use pkiplane_api::Manifests;
use pkiplane_core::issuance::Ca;
use tokio::sync::watch;

use super::ready::RunningEndpoint;

pub struct Started {
    pub running: Vec<RunningEndpoint>,
    pub tasks: Vec<tokio::task::JoinHandle<Result<()>>>,
}

/// Starts every endpoint this build can serve; the others are reported, not hidden.
pub async fn start_all(
    manifests: &Manifests,
    _ca: &Arc<Ca>,
    _data_dir: &Path,
    _shutdown: watch::Receiver<bool>,
) -> Result<Started> {
    let running = Vec::new();
    let tasks = Vec::new();
    for ep in &manifests.endpoints {
        let ns = ep.metadata.namespace.as_deref().unwrap_or("default");
        let name = ep.metadata.name.as_deref().unwrap_or("");
        tracing::warn!(
            endpoint = %format!("{ns}/{name}"),
            protocol = ?ep.spec.protocol,
            "this build does not serve this protocol yet; the endpoint is not started"
        );
    }
    Ok(Started { running, tasks })
}
