//! `pkiplane serve`: everything in one process on an embedded store, no Kubernetes.
//!
//! Loads the same manifests a user would `kubectl apply`, builds the CA on the data
//! directory's SQLite store, publishes CA certificates and CRLs over plain HTTP, starts
//! every EnrollmentEndpoint on its own listener, writes the ready file, and drains
//! in-flight requests on SIGTERM or Ctrl-C.

pub(crate) mod endpoints;
pub(crate) mod keys;
pub(crate) mod ocsp;
pub(crate) mod publish;
pub(crate) mod ready;
pub(crate) mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use pkiplane_api::Manifests;
use tokio::sync::watch;

use crate::bootstrap::build_ca;

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Manifest file or directory: Issuers, CertificateProfiles, EnrollmentEndpoints and
    /// the Secrets they reference, as you would `kubectl apply` them.
    #[arg(short = 'f', long = "filename")]
    pub manifests: PathBuf,
    /// Where the inventory, protocol state and CA keys live (created if missing).
    #[arg(long, env = "PKIPLANE_DATA_DIR", default_value = "pkiplane-data")]
    pub data_dir: PathBuf,
    /// Write this JSON file once every listener is up (for scripts and tests).
    #[arg(long)]
    pub ready_file: Option<PathBuf>,
    /// Plain-HTTP listener publishing CA certificates and CRLs at
    /// /issuers/<namespace>/<name>/{ca.crt,ca.pem,chain.pem,crl} and answering OCSP at
    /// /issuers/<namespace>/<name>/ocsp: the URLs profiles put into AIA and CRL
    /// distribution points.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub publish_listen: SocketAddr,
    /// The ACME EnrollmentEndpoint (`NAMESPACE/NAME`) that gets the ACME accounts and
    /// orders stored before ACME state was kept per endpoint. Without it they go to the
    /// only ACME endpoint when there is one, else stay unowned (a warning says so).
    #[arg(long, value_name = "NAMESPACE/NAME")]
    pub adopt_acme_endpoint: Option<pkiplane_core::model::ObjectRef>,
    /// Key-encryption keys sealing the stored CA private keys (see `pkiplane ca --kek-file`).
    #[arg(long, env = "PKIPLANE_KEK_FILE")]
    pub kek_file: Option<PathBuf>,
    /// Who signs OCSP answers: `delegated` (a responder certificate per CA key, issued and
    /// renewed by pkiplane) or `ca` (the CA key itself).
    #[arg(long, default_value = "delegated")]
    pub ocsp_signing: pkiplane_core::ocsp::ResponderSigning,
    /// How long in-flight requests may take to finish after SIGTERM.
    #[arg(long, default_value = "30s", value_parser = pkiplane_core::duration::parse_duration)]
    pub shutdown_grace: Duration,
    /// Where Prometheus metrics are served (`/metrics`); unset, they are not served. A
    /// listener of their own, never the publication one: relying parties may reach that
    /// one from anywhere, and metrics name issuers, profiles and endpoints.
    #[arg(long)]
    pub metrics_listen: Option<SocketAddr>,
    /// How often the metrics computed from the CA and its inventory (CA notAfter, CRL
    /// nextUpdate, certificates in their renewal window) are refreshed.
    #[arg(long, default_value = "60s", value_parser = pkiplane_core::duration::parse_duration)]
    pub metrics_refresh: Duration,
    /// HTTPS listener of the admin API (docs/operations/admin-api.md), or `off`. Callers
    /// present the local token as `Authorization: Bearer`; its certificate is made
    /// into DATA_DIR/admin-tls/ (trust DATA_DIR/admin-tls/ca.crt).
    #[arg(long, default_value = "127.0.0.1:9443", value_parser = crate::admin::parse_listen)]
    pub admin_listen: crate::admin::OptionalListen,
    /// The admin API's token (at least 16 characters); by default DATA_DIR/admin.token,
    /// generated (0600) on first start.
    #[arg(long, env = "PKIPLANE_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,
    #[command(flatten)]
    pub listener: crate::listener_args::ListenerArgs,
}

pub async fn run(args: &ServeArgs) -> Result<()> {
    let manifests = Manifests::load(&args.manifests)?;
    for w in &manifests.warnings {
        tracing::warn!("{w}");
    }
    let owned = crate::datadir::DataDir::create_and_own(&args.data_dir, "serve")?;
    let data_dir = owned.path().to_path_buf();
    let store = crate::commands::open_owned_store(&owned, true).await?;
    let acme_endpoints = crate::commands::legacy_acme::acme_endpoints(&manifests);
    crate::commands::legacy_acme::adopt_at_start(&store, &acme_endpoints, args.adopt_acme_endpoint.as_ref()).await?;
    let materials =
        crate::commands::store::seal_materials(store.clone(), store.as_ref(), None, args.kek_file.as_deref()).await?.0;
    let (ca, report) = build_ca(&manifests, store.clone(), materials.as_ref(), SystemTime::now()).await?;
    for id in &report.created {
        tracing::info!(issuer = %id, "created CA");
    }
    let ca = Arc::new(ca);
    pkiplane_metrics::ca::start(ca.clone(), args.metrics_refresh).await;
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let rollover_manifests = Arc::new(manifests.clone());
    crate::ca::rollover::spawn_periodic(
        ca.clone(),
        move || rollover_manifests.clone(),
        materials.clone(),
        crate::once::Once::default(),
    );

    let (publish, publisher) =
        publication_router(ca.clone(), materials, args.ocsp_signing, crate::once::Once::default()).await;
    let publish = pkiplane_metrics::http::instrument(publish, "publication", "");
    let publish_listener = tokio::net::TcpListener::bind(args.publish_listen)
        .await
        .with_context(|| format!("binding the publication listener {}", args.publish_listen))?;
    let publish_url = format!("http://{}", publish_listener.local_addr()?);
    let limits = args.listener.limits(
        manifests.endpoints.len()
            + 1
            + usize::from(args.metrics_listen.is_some())
            + usize::from(args.admin_listen.0.is_some()),
    );
    let mut tasks = vec![tokio::spawn(serve_router(publish_listener, limits.clone(), publish, shutdown_rx.clone()))];
    let metrics_url = match args.metrics_listen {
        Some(addr) => {
            let (url, task) = serve_metrics(addr, limits.clone(), shutdown_rx.clone()).await?;
            tasks.push(task);
            Some(url)
        }
        None => None,
    };
    let admin_url = match args.admin_listen.0 {
        Some(addr) => {
            let (url, task) = start_admin(args, addr, &data_dir, &ca, publisher, &limits, shutdown_rx.clone()).await?;
            tasks.push(task);
            Some(url)
        }
        None => None,
    };

    let deps = endpoints::EndpointDeps::local(ca.clone(), &store);
    let started = endpoints::start_all(&manifests, &deps, &data_dir, &limits, shutdown_rx.clone()).await?;
    for s in &started.running {
        println!("{}/{} {} {}", s.namespace, s.name, s.protocol, s.urls.join(" "));
    }
    tasks.extend(started.tasks);
    println!("CA certificates, CRLs and OCSP: {publish_url}/issuers/");
    if let Some(url) = &metrics_url {
        println!("Prometheus metrics: {url}/metrics");
    }
    if let Some(url) = &admin_url {
        println!("Admin API: {url}/admin/v1/");
    }

    if let Some(path) = &args.ready_file {
        let urls = ready::Urls { publish: &publish_url, metrics: metrics_url.as_deref(), admin: admin_url.as_deref() };
        ready::write(path, &started.running, &urls)?;
    }
    tracing::info!(endpoints = started.running.len(), "pkiplane is ready");

    wait_for_signal().await;
    tracing::info!(grace = ?args.shutdown_grace, "shutting down: draining in-flight requests");
    let _ = shutdown_tx.send(true);
    let drain = futures_join(tasks);
    if tokio::time::timeout(args.shutdown_grace, drain).await.is_err() {
        tracing::warn!("requests still in flight after the grace period were cut off");
    }
    let _ = std::fs::remove_file(data_dir.join(crate::admin::DISCOVERY_FILE));
    Ok(())
}

/// The standalone admin API: its certificate and local token in the data directory,
/// and the discovery file the CLI points people at. Its URL and task.
async fn start_admin(
    args: &ServeArgs,
    addr: SocketAddr,
    data_dir: &std::path::Path,
    ca: &Arc<pkiplane_core::issuance::Ca>,
    publisher: publish::Publisher,
    limits: &pkiplane_listen::Limits,
    shutdown: watch::Receiver<bool>,
) -> Result<(String, tokio::task::JoinHandle<Result<()>>)> {
    let tls_dir = crate::admin::tls::standalone(data_dir, SystemTime::now())?;
    let (token, token_file) =
        crate::admin::auth::LocalToken::load_or_create(args.admin_token_file.as_deref(), data_dir)?;
    let state = crate::admin::routes::AdminState {
        ca: ca.clone(),
        publisher,
        auth: Arc::new(crate::admin::Authorizer::Local(token)),
    };
    let tls = crate::admin::tls::from_dir(&tls_dir, None)?;
    let (url, task) = crate::admin::serve(addr, tls, state, limits.clone(), shutdown).await?;
    let discovery = crate::admin::Discovery {
        url: url.clone(),
        ca_file: Some(tls_dir.join(pkiplane_operator::internal_ca::CA_CRT)),
        token_file: Some(token_file),
    };
    discovery.publish(data_dir);
    Ok((url, task))
}

/// The publication listener's routes: CA certificates and CRLs of every Issuer and of
/// each of its keys, and the OCSP responders (whose delegated certificates are made now
/// and kept renewed). Shared by `serve` and the CA service; the publisher is the admin
/// API's too (a CRL it signs is the one published from then on).
pub(crate) async fn publication_router(
    ca: Arc<pkiplane_core::issuance::Ca>,
    materials: Arc<dyn pkiplane_core::inventory::CaMaterialStore>,
    signing: pkiplane_core::ocsp::ResponderSigning,
    once: crate::once::Once,
) -> (axum::Router, publish::Publisher) {
    let responder = Arc::new(pkiplane_core::ocsp::OcspResponder::new(
        ca.clone(),
        materials,
        pkiplane_core::clock::system(),
        signing,
    ));
    ocsp::start_upkeep(responder.clone()).await;
    let publisher = publish::Publisher::new(ca.clone(), once);
    let router = publisher
        .clone()
        .router()
        .merge(keys::KeyPublisher::new(ca, publisher.clone()).router())
        .merge(ocsp::router(responder));
    (router, publisher)
}

pub(crate) async fn futures_join(tasks: Vec<tokio::task::JoinHandle<Result<()>>>) {
    for t in tasks {
        match t.await {
            Ok(Err(e)) => tracing::error!(error = %e, "listener failed"),
            Err(e) => tracing::error!(error = %e, "listener task panicked"),
            Ok(Ok(())) => {}
        }
    }
}

/// Serves `router` over plain HTTP under `limits` until the shutdown signal, then lets
/// in-flight requests finish.
pub(crate) async fn serve_router(
    listener: tokio::net::TcpListener,
    limits: pkiplane_listen::Limits,
    router: axum::Router,
    mut shutdown: watch::Receiver<bool>,
) -> Result<()> {
    let stop = async move { shutdown_requested(&mut shutdown).await };
    pkiplane_listen::serve(listener, limits, pkiplane_listen::Plain(router), stop).await;
    Ok(())
}

/// Binds `--metrics-listen` and serves `/metrics` there until shutdown: its URL and task.
pub(crate) async fn serve_metrics(
    addr: SocketAddr,
    limits: pkiplane_listen::Limits,
    shutdown: watch::Receiver<bool>,
) -> Result<(String, tokio::task::JoinHandle<Result<()>>)> {
    let listener =
        tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding the metrics listener {addr}"))?;
    let url = format!("http://{}", listener.local_addr()?);
    Ok((url, tokio::spawn(serve_router(listener, limits, pkiplane_metrics::router(), shutdown))))
}

/// Resolves once shutdown has been requested (or the sender is gone).
pub(crate) async fn shutdown_requested(rx: &mut watch::Receiver<bool>) {
    loop {
        if *rx.borrow_and_update() {
            return;
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}

pub(crate) async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
