//! `pkiplane endpoint`: one EnrollmentEndpoint, without CA keys. The protocol routes are
//! the ones `pkiplane serve` builds; the CA and the shared protocol state are the CA
//! service, reached over mutual TLS with this pod's internal identity.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use pkiplane_api::Manifests;
use pkiplane_caservice::tls::{Reloading, build_client};
use pkiplane_caservice::{RemoteAuthority, RemoteStores, Transport};
use pkiplane_core::service::Authority;
use pkiplane_core::x509::pem;
use pkiplane_scep::state::RaMaterial;
use tokio::sync::watch;

use crate::serve::endpoints::{Announce, EndpointDeps, Listening, endpoint_id, start_endpoint};
use crate::serve::tls::{ServingCert, serving_cert};

#[derive(clap::Args, Debug)]
pub struct EndpointArgs {
    /// The EnrollmentEndpoint and the Secrets it references (multi-document YAML).
    #[arg(long)]
    pub config: PathBuf,
    /// This pod's internal identity: tls.crt, tls.key, ca.crt (reloaded when changed).
    #[arg(long)]
    pub internal_tls: PathBuf,
    /// Optional serving.crt/serving.key and scep-ra.crt/scep-ra.key; what is missing is
    /// requested from the CA service at start-up.
    #[arg(long)]
    pub credentials: Option<PathBuf>,
    /// The CA service's internal API.
    #[arg(long, default_value = "https://pkiplane-ca.pkiplane-system.svc:9443")]
    pub ca_url: String,
    /// The protocol listener (overrides spec.listen).
    #[arg(long)]
    pub listen: SocketAddr,
    /// /healthz and /readyz.
    #[arg(long, default_value = "0.0.0.0:9090")]
    pub health_listen: SocketAddr,
    #[command(flatten)]
    pub listener: crate::listener_args::ListenerArgs,
}

/// The CA service must have answered within this long for the pod to be ready.
const READY_WITHIN: Duration = Duration::from_secs(10);

pub async fn run(args: &EndpointArgs) -> Result<()> {
    let manifests = Manifests::load(&args.config)?;
    let ep = match manifests.endpoints.as_slice() {
        [one] => one.clone(),
        other => bail!("{} must hold exactly one EnrollmentEndpoint, found {}", args.config.display(), other.len()),
    };
    let id = endpoint_id(&ep);
    let tls = Reloading::new(&args.internal_tls, build_client).context("loading --internal-tls")?;
    tls.spawn_watch();
    let transport = Transport::new(&args.ca_url, tls)?;

    // Health first, so the probes answer while the CA service is still coming up.
    let listening = Arc::new(AtomicBool::new(false));
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let health = tokio::net::TcpListener::bind(args.health_listen)
        .await
        .with_context(|| format!("binding the health listener {}", args.health_listen))?;
    let limits = args.listener.limits(2);
    let health_task = tokio::spawn(crate::serve::serve_router(
        health,
        limits.clone(),
        health_router(transport.clone(), listening.clone()).merge(pkiplane_metrics::router()),
        shutdown_rx.clone(),
    ));

    let ca = connect(transport.clone()).await;
    let stores = RemoteStores::new(transport.clone());
    let credentials = args.credentials.as_deref();
    let deps = EndpointDeps {
        ca: ca.clone(),
        acme: Arc::new(stores.clone()),
        scep: Arc::new(stores.clone()),
        cmp: Arc::new(stores.clone()),
        est_failures: Arc::new(stores),
        scep_ra: credentials.map(scep_ra).transpose()?.flatten(),
        // The endpoint's pods sit behind one Service: a nonce one pod handed out may
        // come back to another, and any pod may finalize an order, so they keep nonces
        // and finalize claims in the shared store.
        acme_served_alone: false,
    };
    let serving = match credentials.map(serving_from_files).transpose()?.flatten() {
        Some(s) => Some(s),
        None => match &ep.spec.tls {
            Some(t) => Some(serving_cert(ca.as_ref() as &dyn Authority, &manifests, &id, t).await?),
            None => None,
        },
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding the endpoint listener {}", args.listen))?;
    // Clients reach the pod through its Service (or spec.externalURL), not at the
    // container port: announce that URL.
    let announce = Announce::Url(ep.cluster_base_url());
    let socket = Listening { listener, limits, serving, announce };
    let Some((running, task)) = start_endpoint(&id, &ep, &manifests, &deps, socket, None, shutdown_rx.clone()).await?
    else {
        bail!("this build does not serve the protocol of EnrollmentEndpoint {id}");
    };
    listening.store(true, Ordering::SeqCst);
    println!("{}/{} {} {}", running.namespace, running.name, running.protocol, running.urls.join(" "));
    tracing::info!(endpoint = %id, "pkiplane endpoint is ready");

    crate::serve::wait_for_signal().await;
    listening.store(false, Ordering::SeqCst);
    let _ = shutdown_tx.send(true);
    crate::serve::futures_join(vec![task]).await;
    let _ = health_task.await;
    Ok(())
}

/// Connects to the CA service, retrying until it answers (it may start after us).
async fn connect(transport: Arc<Transport>) -> Arc<RemoteAuthority> {
    let mut wait = Duration::from_millis(200);
    loop {
        match RemoteAuthority::connect(transport.clone()).await {
            Ok(ca) => return ca,
            Err(e) => {
                tracing::warn!(error = %e, "the CA service is not reachable yet; retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
        }
    }
}

fn health_router(transport: Arc<Transport>, listening: Arc<AtomicBool>) -> Router {
    Router::new().route("/healthz", get(|| async { "ok\n" })).route(
        "/readyz",
        get(move || {
            let transport = transport.clone();
            let listening = listening.clone();
            async move {
                let fresh = transport.answered_within(READY_WITHIN);
                match (fresh, listening.load(Ordering::SeqCst)) {
                    (true, true) => (StatusCode::OK, "ready\n"),
                    (false, _) => (StatusCode::SERVICE_UNAVAILABLE, "the CA service has not answered recently\n"),
                    (_, false) => (StatusCode::SERVICE_UNAVAILABLE, "the endpoint listener is not up\n"),
                }
            }
        }),
    )
}

/// `name.crt` and `name.key` of the credentials directory, when both exist.
fn pair(dir: &Path, name: &str) -> Result<Option<(String, Vec<u8>)>> {
    let (crt, key) = (dir.join(format!("{name}.crt")), dir.join(format!("{name}.key")));
    if !crt.exists() || !key.exists() {
        return Ok(None);
    }
    let chain = std::fs::read_to_string(&crt).with_context(|| crt.display().to_string())?;
    let key_pem = zeroize::Zeroizing::new(std::fs::read_to_string(&key).with_context(|| key.display().to_string())?);
    let key = pkiplane_core::issuer::parse_private_key_pem(&key_pem).map_err(|e| anyhow!("{}: {e}", key.display()))?;
    Ok(Some((chain, key.pkcs8_der().to_vec())))
}

fn serving_from_files(dir: &Path) -> Result<Option<ServingCert>> {
    Ok(pair(dir, "serving")?.map(|(chain_pem, key)| {
        // Clients trust the top of the chain given.
        let trust_pem = pem::decode_chain(chain_pem.as_bytes(), "CERTIFICATE")
            .ok()
            .and_then(|c| c.last().map(|d| pem::encode("CERTIFICATE", d)))
            .unwrap_or_default();
        ServingCert { chain_pem, key_pkcs8: key.into(), trust_pem }
    }))
}

fn scep_ra(dir: &Path) -> Result<Option<RaMaterial>> {
    let Some((chain_pem, key)) = pair(dir, "scep-ra")? else { return Ok(None) };
    let leaf = pem::decode_chain(chain_pem.as_bytes(), "CERTIFICATE")?
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("scep-ra.crt holds no certificate"))?;
    // The issuer is resolved by the SCEP state from the endpoint's profiles; the stored
    // value only matters for renewal bookkeeping.
    Ok(Some(RaMaterial {
        certificate_der: leaf,
        private_key_pkcs8: zeroize::Zeroizing::new(key),
        issuer: pkiplane_core::model::ObjectRef::new("", ""),
    }))
}
