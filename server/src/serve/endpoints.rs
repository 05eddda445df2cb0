//! Starting each EnrollmentEndpoint on its own listener, with TLS where its spec asks.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use pkiplane_api::v1alpha1::{EndpointProtocol, EnrollmentEndpoint};
use pkiplane_api::{FieldError, Manifests};
use pkiplane_core::issuance::Ca;
use pkiplane_core::model::ObjectRef;
use pkiplane_store::SqliteStore;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::ready::RunningEndpoint;
use super::tls;

pub struct Started {
    pub running: Vec<RunningEndpoint>,
    pub tasks: Vec<tokio::task::JoinHandle<Result<()>>>,
}

/// What a protocol needs to build its HTTP routes.
pub struct EndpointContext<'a> {
    pub id: ObjectRef,
    pub endpoint: &'a EnrollmentEndpoint,
    pub manifests: &'a Manifests,
    pub ca: &'a Arc<Ca>,
    /// Scheme, host and port clients use, e.g. `https://localhost:14000`.
    pub base_url: String,
    /// The data directory's store: inventory and protocol state.
    pub store: Arc<SqliteStore>,
}

/// The routes of a protocol and the URLs to announce (`None` would mean this build does
/// not serve the protocol).
type RouterResult = Result<Option<(axum::Router, Vec<String>)>>;

async fn protocol_router(ctx: &EndpointContext<'_>) -> RouterResult {
    let fields = |e: Vec<FieldError>| anyhow!("{}", FieldError::join(&e));
    match ctx.endpoint.spec.protocol {
        EndpointProtocol::Acme => {
            let config =
                pkiplane_acme::AcmeConfig::from_resource(ctx.endpoint, ctx.manifests, &ctx.base_url).map_err(fields)?;
            let store: Arc<dyn pkiplane_core::state::acme::AcmeStore> = ctx.store.clone();
            let state = pkiplane_acme::AcmeState::new(config, ctx.ca.clone(), store);
            pkiplane_acme::spawn_housekeeping(state.clone(), HOUSEKEEPING);
            Ok(Some((pkiplane_acme::router(state), vec![format!("{}/directory", ctx.base_url)])))
        }
        EndpointProtocol::Est => {
            let config = pkiplane_est::EstConfig::from_resource(ctx.endpoint, ctx.manifests, ctx.ca, &ctx.base_url)
                .map_err(fields)?;
            let urls = config.urls();
            // Failed-login counters are per process (see the EST README).
            let failures = Arc::new(pkiplane_core::state::est::memory::MemoryAuthFailures::new());
            let state = pkiplane_est::EstState::new(config, ctx.ca.clone(), failures);
            Ok(Some((pkiplane_est::router(state), urls)))
        }
        EndpointProtocol::Scep => {
            let config =
                pkiplane_scep::ScepConfig::from_resource(ctx.endpoint, ctx.manifests, &ctx.base_url).map_err(fields)?;
            for w in pkiplane_scep::containment::shared_profile_warnings(ctx.endpoint, &ctx.manifests.endpoints) {
                tracing::warn!(endpoint = %ctx.id, "{w}");
            }
            let retention = config.replay_retention;
            let store: Arc<dyn pkiplane_core::state::scep::ScepStore> = ctx.store.clone();
            let state = pkiplane_scep::ScepState::start(config, ctx.ca.clone(), store.clone())
                .await
                .map_err(|e| anyhow!("{e}"))?;
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(HOUSEKEEPING);
                loop {
                    tick.tick().await;
                    if let Err(e) = store.purge_expired(std::time::SystemTime::now(), retention).await {
                        tracing::warn!(error = %e, "SCEP housekeeping failed");
                    }
                }
            });
            Ok(Some((pkiplane_scep::router(state), vec![format!("{}/scep", ctx.base_url)])))
        }
        EndpointProtocol::Cmp => {
            let config =
                pkiplane_cmp::CmpConfig::from_resource(ctx.endpoint, ctx.manifests, &ctx.base_url).map_err(fields)?;
            let urls = config.urls();
            let store: Arc<dyn pkiplane_core::state::cmp::CmpStore> = ctx.store.clone();
            let state =
                pkiplane_cmp::CmpState::start(config, ctx.ca.clone(), store).await.map_err(|e| anyhow!("{e}"))?;
            // Shorter than any confirmWaitTime: unconfirmed certificates are revoked promptly.
            state.spawn_maintenance(Duration::from_secs(30));
            Ok(Some((pkiplane_cmp::router(state), urls)))
        }
    }
}

/// How often protocol state past its retention is purged.
const HOUSEKEEPING: Duration = Duration::from_secs(600);

/// Starts every endpoint this build can serve; the others are reported, not hidden.
pub async fn start_all(
    manifests: &Manifests,
    ca: &Arc<Ca>,
    store: &Arc<SqliteStore>,
    data_dir: &Path,
    shutdown: watch::Receiver<bool>,
) -> Result<Started> {
    let mut started = Started { running: Vec::new(), tasks: Vec::new() };
    for ep in &manifests.endpoints {
        let id = ObjectRef::new(
            ep.metadata.namespace.as_deref().unwrap_or("default"),
            ep.metadata.name.as_deref().unwrap_or(""),
        );
        start_one(&id, ep, manifests, ca, store, data_dir, shutdown.clone(), &mut started)
            .await
            .with_context(|| format!("EnrollmentEndpoint {id}"))?;
    }
    Ok(started)
}

#[allow(clippy::too_many_arguments)]
async fn start_one(
    id: &ObjectRef,
    ep: &EnrollmentEndpoint,
    manifests: &Manifests,
    ca: &Arc<Ca>,
    store: &Arc<SqliteStore>,
    data_dir: &Path,
    shutdown: watch::Receiver<bool>,
    started: &mut Started,
) -> Result<()> {
    let listen = ep.spec.listen.clone().unwrap_or_default();
    let ip: IpAddr = listen.address.parse().with_context(|| format!("spec.listen.address `{}`", listen.address))?;
    let port = u16::try_from(listen.port.unwrap_or(0)).map_err(|_| anyhow!("spec.listen.port out of range"))?;
    let listener =
        TcpListener::bind(SocketAddr::new(ip, port)).await.with_context(|| format!("binding {ip}:{port}"))?;
    let bound = listener.local_addr()?;
    let serving = match &ep.spec.tls {
        Some(t) => Some(tls::serving_cert(ca, manifests, id, t).await?),
        None => None,
    };
    // The host clients use: the serving certificate's first name, else the bound address
    // (loopback when bound to every interface).
    let host = ep
        .spec
        .tls
        .as_ref()
        .and_then(|t| t.dns_names.first().cloned())
        .unwrap_or_else(|| if ip.is_unspecified() { "127.0.0.1".into() } else { ip.to_string() });
    let scheme = if serving.is_some() { "https" } else { "http" };
    let ctx = EndpointContext {
        id: id.clone(),
        endpoint: ep,
        manifests,
        ca,
        base_url: format!("{scheme}://{host}:{}", bound.port()),
        store: store.clone(),
    };
    let Some((router, urls)) = protocol_router(&ctx).await? else {
        tracing::warn!(
            endpoint = %id,
            protocol = ?ep.spec.protocol,
            "this build does not serve this protocol yet; the endpoint is not started"
        );
        return Ok(());
    };
    let bundles = data_dir.join("bundles");
    let ca_bundle =
        tls::write_bundle(&bundles, &format!("{}-{}-ca.pem", id.namespace, id.name), &ca_chains(ca, ep, id))?;
    let (task, trust) = match serving {
        Some(cert) => {
            let trust =
                tls::write_bundle(&bundles, &format!("{}-{}-tls-trust.pem", id.namespace, id.name), &cert.trust_pem)?;
            let client_certs = matches!(ep.spec.protocol, EndpointProtocol::Est);
            let config = tls::server_config(&cert, client_certs)?;
            (tokio::spawn(tls::serve_tls(listener, router, config, shutdown)), Some(trust))
        }
        None => (tokio::spawn(super::serve_router(listener, router, shutdown)), None),
    };
    started.tasks.push(task);
    started.running.push(RunningEndpoint {
        namespace: id.namespace.clone(),
        name: id.name.clone(),
        protocol: format!("{:?}", ep.spec.protocol).to_uppercase(),
        urls,
        tls_trust_bundle: trust,
        ca_bundle,
    });
    Ok(())
}

/// The chains (roots included) of every Issuer behind the endpoint's profiles.
fn ca_chains(ca: &Ca, ep: &EnrollmentEndpoint, id: &ObjectRef) -> String {
    let mut seen = Vec::new();
    let mut out = String::new();
    for binding in &ep.spec.profiles {
        let Some(profile) = ca.profile(&ObjectRef::new(&id.namespace, &binding.name)) else { continue };
        if seen.contains(&profile.issuer) {
            continue;
        }
        if let Some(issuer) = ca.issuer(&profile.issuer) {
            out.push_str(&issuer.chain_pem());
        }
        seen.push(profile.issuer.clone());
    }
    out
}
