//! `pkiplane ca`: the CA service. Holds the issuer keys, the policy engine and the
//! inventory; serves the internal API over mutual TLS to endpoint pods and the operator,
//! and publishes CA certificates and CRLs over plain HTTP.

mod abandon;
mod kube_source;
pub(crate) mod rollover;
mod source;
mod sync;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use pkiplane_caservice::server::{CaServiceState, keep_snapshot_current, router, serve_mtls, snapshot_of};
use pkiplane_caservice::snapshot::SnapshotFeed;
use pkiplane_caservice::tls::{Reloading, build_server};
use pkiplane_core::inventory::{CaMaterialStore, Inventory};
use pkiplane_core::issuance::Ca;
use pkiplane_store::sealing::SealableRows;

use crate::admin::Authorizer;
use crate::admin::auth::LocalToken;
use crate::admin::kube_review::KubeAuth;
use tokio::sync::watch;

pub use source::{ConfigSource, FileSource};

/// How often the endpoint snapshot is recomputed when no configuration change announced
/// itself (a rollover step changes the CA's issuers on its own schedule).
const SNAPSHOT_RECHECK: Duration = Duration::from_secs(15);

#[derive(clap::Args, Debug)]
pub struct CaArgs {
    /// Issuers, CertificateProfiles and the Secrets they reference (file or directory).
    /// Re-read on SIGHUP or when a file changes: profile edits apply without a restart.
    /// Without it the CA watches Issuers and CertificateProfiles in the cluster
    /// (in-cluster config or KUBECONFIG) and reads the Secrets imported Issuers name.
    #[arg(long)]
    pub manifests: Option<PathBuf>,
    /// Where the inventory, protocol state and CA keys live (created if missing).
    #[arg(long, env = "PKIPLANE_DATA_DIR", default_value = "pkiplane-data")]
    pub data_dir: PathBuf,
    /// Where the inventory, CRL numbers and CA keys live: unset for the data directory's
    /// SQLite database (one replica), or a PostgreSQL URL
    /// (`postgres://user:password@host:port/db`) that several CA replicas share. The
    /// endpoints' protocol state (ACME, SCEP, CMP, EST failure counters) lives there too.
    /// TLS follows libpq's `sslmode`, `sslrootcert`, `sslcert`, `sslkey` (URL parameters,
    /// or PGSSLMODE, PGSSLROOTCERT, PGSSLCERT, PGSSLKEY); no `sslmode` means verify-full.
    #[arg(long, env = "PKIPLANE_STORE", hide_env_values = true)]
    pub store: Option<String>,
    /// The ACME EnrollmentEndpoint (`NAMESPACE/NAME`) that gets the ACME accounts and
    /// orders stored before ACME state was kept per endpoint. Without it they go to the
    /// only ACME endpoint when there is one, else stay unowned (a warning says so).
    #[arg(long, value_name = "NAMESPACE/NAME")]
    pub adopt_acme_endpoint: Option<pkiplane_core::model::ObjectRef>,
    /// Key-encryption keys that seal the stored CA private keys (AES-256-GCM): one
    /// `ID:BASE64` line per key (32 bytes), the first seals, every one opens. At start-up,
    /// plaintext keys are sealed and keys under an older KEK are rewrapped; the CA refuses
    /// to start when a stored key is sealed under a KEK the file lacks.
    #[arg(long, env = "PKIPLANE_KEK_FILE")]
    pub kek_file: Option<PathBuf>,
    /// The internal mutual-TLS API.
    #[arg(long, default_value = "0.0.0.0:9443")]
    pub listen: SocketAddr,
    /// Plain-HTTP publication of CA certificates and CRLs, the OCSP responders
    /// (/issuers/<namespace>/<name>/ocsp), and /healthz, /readyz.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub publish_listen: SocketAddr,
    /// Who signs OCSP answers: `delegated` (a responder certificate per CA key, issued and
    /// renewed here) or `ca` (the CA key itself).
    #[arg(long, default_value = "delegated")]
    pub ocsp_signing: pkiplane_core::ocsp::ResponderSigning,
    /// tls.crt, tls.key (the serving certificate) and ca.crt (the internal CA bundle
    /// clients must chain to). Reloaded when the files change.
    #[arg(long)]
    pub tls_dir: PathBuf,
    #[command(flatten)]
    pub service: crate::service_args::ServiceArgs,
    /// HTTPS listener of the admin API (docs/operations/admin-api.md); unset, none. It
    /// serves the --tls-dir certificate and asks for no client certificate: callers
    /// present a bearer token, reviewed by the Kubernetes API server (TokenReview) and
    /// authorized by RBAC (SubjectAccessReview); with --manifests, the local token.
    #[arg(long)]
    pub admin_listen: Option<SocketAddr>,
    /// With --manifests: the admin API's token (at least 16 characters); by default
    /// DATA_DIR/admin.token, generated (0600) on first start.
    #[arg(long, env = "PKIPLANE_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,
    /// With a PostgreSQL --store: an issuance still pending after this long is marked
    /// abandoned (checked at start-up and periodically), whichever replica began it. A
    /// replica killed between recording and signing leaves such records; a live one
    /// finishing later is refused (its certificate never leaves), so this only needs to
    /// exceed the time an issuance takes.
    #[arg(long, default_value = "120s", value_parser = pkiplane_core::duration::parse_duration)]
    pub abandon_pending_after: Duration,
    #[command(flatten)]
    pub listener: crate::listener_args::ListenerArgs,
}

pub async fn run(args: &CaArgs) -> Result<()> {
    let (source, kube_client): (Arc<dyn ConfigSource>, _) = match &args.manifests {
        Some(path) => (FileSource::start(path)?, None),
        None => {
            let client = kube::Client::try_default().await.context("connecting to the Kubernetes API")?;
            (kube_source::KubeSource::start(client.clone()).await?, Some(client))
        }
    };
    let owned = crate::datadir::DataDir::create_and_own(&args.data_dir, "ca")?;
    let store = crate::commands::open_owned_store(&owned, true).await?;
    let (inventory, materials, postgres) =
        open_inventory(args.store.as_deref(), &store, args.abandon_pending_after).await?;
    let (materials, keys) = crate::commands::store::seal_materials(
        materials,
        &store,
        postgres.as_deref().map(|p| p as &dyn SealableRows),
        args.kek_file.as_deref(),
    )
    .await?;
    // Only the SQLite store can hold ACME state from before it was kept per endpoint.
    if postgres.is_none() {
        let acme_endpoints = crate::commands::legacy_acme::acme_endpoints(&source.current());
        crate::commands::legacy_acme::adopt_at_start(&store, &acme_endpoints, args.adopt_acme_endpoint.as_ref())
            .await?;
    } else if args.adopt_acme_endpoint.is_some() {
        tracing::warn!("--adopt-acme-endpoint has nothing to do on PostgreSQL (its ACME state is per endpoint)");
    }
    let protocol_state = match &postgres {
        Some(pg) => ProtocolState::of(pg.clone()),
        None => ProtocolState::of(store.clone()),
    };
    if let (Some(pg), Some(keys)) = (&postgres, &keys) {
        pg.seal_scep_ra_keys_with(keys.clone());
    }
    let ca = Arc::new(Ca::new(inventory));
    pkiplane_metrics::ca::start(ca.clone(), args.service.metrics_refresh).await;
    let problems = sync::IssuerProblems::default();
    // Replicas starting together: one creates the CA keys, the others load them.
    let once = crate::once::Once::new(postgres.clone());
    let manifests = source.current();
    let first = sync::sync(&ca, &manifests, materials.as_ref(), &problems, SystemTime::now());
    if once.run(rollover::CA_KEYS_LEASE, rollover::LEASE_WAIT, first).await.is_none() {
        anyhow::bail!("another CA replica held the CA key lease for {:?}; not starting", rollover::LEASE_WAIT);
    }
    let (applied_tx, applied) = watch::channel(0u64);
    spawn_resync(ca.clone(), source.clone(), materials.clone(), problems.clone(), once.clone(), applied_tx);
    let rollover_source = source.clone();
    rollover::spawn_periodic(ca.clone(), move || rollover_source.current(), materials.clone(), once.clone());

    let tls = Reloading::new(&args.tls_dir, build_server).context("loading --tls-dir")?;
    tls.spawn_watch();
    let snapshots = Arc::new(SnapshotFeed::new(&snapshot_of(&ca)));
    keep_snapshot_current(ca.clone(), &snapshots, applied, SNAPSHOT_RECHECK);
    let state = Arc::new(CaServiceState {
        ca: ca.clone(),
        acme: protocol_state.acme,
        scep: protocol_state.scep,
        cmp: protocol_state.cmp,
        est: protocol_state.est,
        issuer_problems: problems,
        snapshots: snapshots.clone(),
    });
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let api = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding the internal API listener {}", args.listen))?;
    let publish = tokio::net::TcpListener::bind(args.publish_listen)
        .await
        .with_context(|| format!("binding the publication listener {}", args.publish_listen))?;
    println!("internal API (mTLS): https://{}", api.local_addr()?);
    println!("CA certificates, CRLs and OCSP: http://{}/issuers/", publish.local_addr()?);
    let limits = args
        .listener
        .limits(2 + usize::from(args.service.metrics_listen.is_some()) + usize::from(args.admin_listen.is_some()));
    let api_routes = pkiplane_metrics::http::instrument(router(state), "ca-api", "");
    // Endpoint pods keep their connection between calls (their housekeeping calls come
    // every 30 s): closing it after the listeners' usual idle time made every pod do a
    // full mutual-TLS handshake per call, most of the CA service's CPU at rest. Only
    // clients holding an internal certificate get past the handshake to idle here.
    let api_limits = pkiplane_listen::Limits {
        idle_timeout: limits.idle_timeout.max(pkiplane_caservice::client::API_IDLE_TIMEOUT),
        ..limits.clone()
    };
    let api_task = tokio::spawn(serve_mtls(api, api_limits, api_routes, tls, shutdown_rx.clone()));
    let (publication, publisher) =
        crate::serve::publication_router(ca.clone(), materials, args.ocsp_signing, once).await;
    let publication = pkiplane_metrics::http::instrument(publication, "publication", "");
    let publish_task =
        tokio::spawn(crate::serve::serve_router(publish, limits.clone(), publication, shutdown_rx.clone()));
    let admin_task = match args.admin_listen {
        Some(addr) => {
            let (auth, token_file, client_roots) = match kube_client {
                Some(client) => {
                    let roots = crate::admin::kube_review::cluster_client_ca(&client).await;
                    let reviews = crate::admin::kube_review::ApiServerReviews::new(client);
                    (Authorizer::Kube(KubeAuth::new(reviews)), None, roots)
                }
                None => {
                    let (token, path) = LocalToken::load_or_create(args.admin_token_file.as_deref(), owned.path())?;
                    (Authorizer::Local(token), Some(path), None)
                }
            };
            let state = crate::admin::routes::AdminState { ca: ca.clone(), publisher, auth: Arc::new(auth) };
            let tls = crate::admin::tls::from_dir(&args.tls_dir, client_roots)?;
            let (url, task) = crate::admin::serve(addr, tls, state, limits.clone(), shutdown_rx.clone()).await?;
            println!("admin API: {url}/admin/v1/");
            let ca_file = Some(args.tls_dir.join("ca.crt"));
            crate::admin::Discovery { url, ca_file, token_file }.publish(owned.path());
            Some(task)
        }
        None => None,
    };
    let metrics_task = match args.service.metrics_listen {
        Some(addr) => {
            let (url, task) = crate::serve::serve_metrics(addr, limits, shutdown_rx.clone()).await?;
            println!("Prometheus metrics: {url}/metrics");
            Some(task)
        }
        None => None,
    };
    tracing::info!("pkiplane CA service is ready");

    crate::serve::wait_for_signal().await;
    let _ = shutdown_tx.send(true);
    // Endpoint pods' held snapshot requests are answered now, not at the end of their wait.
    snapshots.close();
    let drain = async {
        let _ = api_task.await;
        let _ = publish_task.await;
        for task in [metrics_task, admin_task].into_iter().flatten() {
            let _ = task.await;
        }
    };
    if tokio::time::timeout(args.service.shutdown_grace, drain).await.is_err() {
        tracing::warn!("requests still in flight after the grace period were cut off");
    }
    let _ = std::fs::remove_file(owned.path().join(crate::admin::DISCOVERY_FILE));
    Ok(())
}

/// The endpoints' protocol state, kept in the same store as the inventory.
struct ProtocolState {
    acme: Arc<dyn pkiplane_acme::state::AcmeStateScopes>,
    scep: Arc<dyn pkiplane_scep::state::ScepStore>,
    cmp: Arc<dyn pkiplane_cmp::state::CmpStore>,
    est: Arc<dyn pkiplane_est::state::AuthFailureStore>,
}

impl ProtocolState {
    fn of<S>(store: Arc<S>) -> Self
    where
        S: pkiplane_scep::state::ScepStore
            + pkiplane_cmp::state::CmpStore
            + pkiplane_est::state::AuthFailureStore
            + Send
            + Sync
            + 'static,
        pkiplane_store::EndpointAcme<S>: pkiplane_acme::state::AcmeStore,
    {
        Self {
            acme: Arc::new(pkiplane_store::AcmeScopes::new(store.clone())),
            scep: store.clone(),
            cmp: store.clone(),
            est: store,
        }
    }
}

/// The inventory and CA material store `--store` names: the data directory's SQLite
/// database (already opened, and its interrupted issuances recovered) or PostgreSQL.
async fn open_inventory(
    url: Option<&str>,
    sqlite: &Arc<pkiplane_store::SqliteStore>,
    abandon_after: Duration,
) -> Result<(Arc<dyn Inventory>, Arc<dyn CaMaterialStore>, Option<Arc<pkiplane_store::PostgresStore>>)> {
    let Some(url) = url else {
        return Ok((sqlite.clone(), sqlite.clone(), None));
    };
    if !pkiplane_store::is_postgres_url(url) {
        anyhow::bail!("--store: expected a postgres:// or postgresql:// URL (leave it unset for SQLite)");
    }
    let store = Arc::new(pkiplane_store::PostgresStore::connect(url).await.context("opening the --store database")?);
    // Other replicas may have issuances in flight: only old pending records are theirs
    // no longer. Checked again periodically: a replica that died may never come back.
    let abandoned = abandon::sweep(store.as_ref(), SystemTime::now(), abandon_after).await?;
    if abandoned > 0 {
        tracing::warn!(count = abandoned, "interrupted issuances (crash or kill) were marked abandoned");
    }
    let clock = pkiplane_core::clock::system();
    abandon::spawn_periodic(store.clone(), clock, abandon_after, abandon::period(abandon_after));
    tracing::info!(store = ?store, "inventory and CA keys on PostgreSQL");
    Ok((store.clone(), store.clone(), Some(store)))
}

/// Applies configuration changes: new Issuers are loaded (parents first), profiles are
/// replaced. Loaded Issuers keep their keys; see [`sync::sync`].
fn spawn_resync(
    ca: Arc<Ca>,
    source: Arc<dyn ConfigSource>,
    store: Arc<dyn CaMaterialStore>,
    problems: sync::IssuerProblems,
    once: crate::once::Once,
    applied: watch::Sender<u64>,
) {
    let mut changes = source.changes();
    tokio::spawn(async move {
        while changes.changed().await.is_ok() {
            let manifests = source.current();
            let step = sync::sync(&ca, &manifests, store.as_ref(), &problems, SystemTime::now());
            if once.run(rollover::CA_KEYS_LEASE, rollover::LEASE_WAIT, step).await.is_none() {
                tracing::warn!("configuration not applied: another replica held the CA key lease throughout");
                continue;
            }
            tracing::info!(issuers = ca.issuers().len(), profiles = ca.profiles().len(), "configuration applied");
            applied.send_modify(|n| *n += 1);
        }
    });
}
