//! Starting each EnrollmentEndpoint on its own listener, with TLS where its spec asks.
//!
//! Shared by `pkiplane serve` (every endpoint, the CA in process, SQLite stores) and
//! `pkiplane endpoint` (one endpoint, the CA and the shared state behind the CA service):
//! both hand [`start_endpoint`] a [`Authority`] and the protocol stores.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use pkiplane_acme::state::AcmeStateScopes;
use pkiplane_api::v1alpha1::{EndpointProtocol, EnrollmentEndpoint};
use pkiplane_api::{FieldError, Manifests};
use pkiplane_cmp::state::CmpStore;
use pkiplane_core::maintenance::Maintenance;
use pkiplane_core::model::ObjectRef;
use pkiplane_core::service::Authority;
use pkiplane_est::state::AuthFailureStore;
use pkiplane_listen::Limits;
use pkiplane_scep::state::{RaMaterial, ScepStore};
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
    pub deps: &'a EndpointDeps,
    /// Scheme, host and port clients use, e.g. `https://localhost:14000`.
    pub base_url: String,
}

/// The CA and the shared protocol state an endpoint runs on: in process for `serve`,
/// remote (the CA service) for `pkiplane endpoint`.
#[derive(Clone)]
pub struct EndpointDeps {
    pub ca: Arc<dyn Authority>,
    /// Each endpoint gets its own ACME state from these.
    pub acme: Arc<dyn AcmeStateScopes>,
    pub scep: Arc<dyn ScepStore>,
    pub cmp: Arc<dyn CmpStore>,
    pub est_failures: Arc<dyn AuthFailureStore>,
    /// A SCEP RA identity provided from outside (a credentials Secret) instead of one
    /// issued and kept in the SCEP store.
    pub scep_ra: Option<RaMaterial>,
    /// No other process serves the same endpoint, as under `serve`: ACME keeps nonces,
    /// accounts and finalize claims in this process ([`pkiplane_acme::AcmeState::served_alone`]).
    pub acme_served_alone: bool,
}

impl EndpointDeps {
    /// Everything in process: the CA and the data directory's SQLite store. Failed-login
    /// counters of EST are per process (see the EST README).
    pub fn local(ca: Arc<dyn Authority>, store: &Arc<SqliteStore>) -> Self {
        Self {
            ca,
            acme: Arc::new(pkiplane_store::AcmeScopes::new(store.clone())),
            scep: store.clone(),
            cmp: store.clone(),
            est_failures: Arc::new(pkiplane_est::state::memory::MemoryAuthFailures::new()),
            scep_ra: None,
            acme_served_alone: true,
        }
    }
}

/// A protocol as the server runs it: its routes, the URLs to announce, and its periodic
/// upkeep (one loop per endpoint, stopped with the endpoint).
struct Protocol {
    router: axum::Router,
    urls: Vec<String>,
    maintenance: Option<Arc<dyn Maintenance>>,
}

/// `None` would mean this build does not serve the protocol.
type RouterResult = Result<Option<Protocol>>;

async fn protocol_router(ctx: &EndpointContext<'_>) -> RouterResult {
    let fields = |e: Vec<FieldError>| anyhow!("{}", FieldError::join(&e));
    match ctx.endpoint.spec.protocol {
        EndpointProtocol::Acme => {
            let config = pkiplane_api::acme_settings(ctx.endpoint, ctx.manifests, &ctx.base_url).map_err(fields)?;
            let mut state =
                pkiplane_acme::AcmeState::new(config, ctx.deps.ca.clone(), ctx.deps.acme.for_endpoint(&ctx.id));
            if ctx.deps.acme_served_alone {
                state = state.served_alone();
            }
            let urls = vec![format!("{}/directory", ctx.base_url)];
            Ok(Some(Protocol {
                router: pkiplane_acme::router(state.clone()),
                urls,
                maintenance: Some(Arc::new(state)),
            }))
        }
        EndpointProtocol::Est => {
            let ca = ctx.deps.ca.as_ref();
            let issuer_chain = |id: &ObjectRef| pkiplane_api::convert::loaded_issuer_chain(ca, id);
            let config = pkiplane_api::est_settings(ctx.endpoint, ctx.manifests, &issuer_chain, &ctx.base_url)
                .map_err(fields)?;
            let urls = config.urls();
            let state = pkiplane_est::EstState::new(config, ctx.deps.ca.clone(), ctx.deps.est_failures.clone());
            // EST keeps no state of its own to tidy (failure counts forget by themselves).
            Ok(Some(Protocol { router: pkiplane_est::router(state), urls, maintenance: None }))
        }
        EndpointProtocol::Scep => {
            let config = pkiplane_api::scep_settings(ctx.endpoint, ctx.manifests, &ctx.base_url).map_err(fields)?;
            for w in pkiplane_api::convert::shared_profile_warnings(ctx.endpoint, &ctx.manifests.endpoints) {
                tracing::warn!(endpoint = %ctx.id, "{w}");
            }
            let store = ctx.deps.scep.clone();
            let ca = ctx.deps.ca.clone();
            let state = match &ctx.deps.scep_ra {
                Some(m) => {
                    // A provided RA serves the one Issuer behind the endpoint's profiles.
                    let mut m = m.clone();
                    m.issuer = pkiplane_scep::containment::check_profiles(&config, ca.as_ref())
                        .map_err(|e| anyhow!("{}", e.join("; ")))?;
                    let ra =
                        pkiplane_scep::RaIdentity::from_material(&m).map_err(|e| anyhow!("SCEP RA credential: {e}"))?;
                    pkiplane_scep::ScepState::new(config, ca, store.clone(), Arc::new(ra))
                }
                None => pkiplane_scep::ScepState::start(config, ca, store.clone()).await,
            }
            .map_err(|e| anyhow!("{e}"))?;
            let urls = vec![format!("{}/scep", ctx.base_url)];
            Ok(Some(Protocol {
                router: pkiplane_scep::router(state.clone()),
                urls,
                maintenance: Some(Arc::new(state)),
            }))
        }
        EndpointProtocol::Cmp => {
            let config = pkiplane_api::cmp_settings(ctx.endpoint, ctx.manifests, &ctx.base_url).map_err(fields)?;
            let urls = config.urls();
            let state = pkiplane_cmp::CmpState::start(config, ctx.deps.ca.clone(), ctx.deps.cmp.clone())
                .await
                .map_err(|e| anyhow!("{e}"))?;
            Ok(Some(Protocol { router: pkiplane_cmp::router(state.clone()), urls, maintenance: Some(Arc::new(state)) }))
        }
    }
}

/// Starts every endpoint of the manifests on the listener its spec names; the ones
/// this build cannot serve are reported, not hidden.
pub async fn start_all(
    manifests: &Manifests,
    deps: &EndpointDeps,
    data_dir: &Path,
    limits: &Limits,
    shutdown: watch::Receiver<bool>,
) -> Result<Started> {
    let mut started = Started { running: Vec::new(), tasks: Vec::new() };
    for ep in &manifests.endpoints {
        let id = endpoint_id(ep);
        let run = async {
            let listener = bind_spec_listener(ep).await?;
            let serving = match &ep.spec.tls {
                Some(t) => Some(tls::serving_cert(deps.ca.as_ref(), manifests, &id, t).await?),
                None => None,
            };
            let bundles = data_dir.join("bundles");
            let announce = Announce::from_external(ep);
            let listening = Listening { listener, limits: limits.clone(), serving, announce };
            start_endpoint(&id, ep, manifests, deps, listening, Some(&bundles), shutdown.clone()).await
        };
        if let Some((running, task)) = run.await.with_context(|| format!("EnrollmentEndpoint {id}"))? {
            started.running.push(running);
            started.tasks.push(task);
        }
    }
    Ok(started)
}

/// `namespace/name` of an EnrollmentEndpoint resource.
pub fn endpoint_id(ep: &EnrollmentEndpoint) -> ObjectRef {
    ObjectRef::new(ep.metadata.namespace.as_deref().unwrap_or("default"), ep.metadata.name.as_deref().unwrap_or(""))
}

/// Binds the address and port of the endpoint's `spec.listen`.
pub async fn bind_spec_listener(ep: &EnrollmentEndpoint) -> Result<TcpListener> {
    let listen = ep.spec.listen.clone().unwrap_or_default();
    let ip: IpAddr = listen.address.parse().with_context(|| format!("spec.listen.address `{}`", listen.address))?;
    let port = u16::try_from(listen.port.unwrap_or(0)).map_err(|_| anyhow!("spec.listen.port out of range"))?;
    TcpListener::bind(SocketAddr::new(ip, port)).await.with_context(|| format!("binding {ip}:{port}"))
}

/// The base URL an endpoint puts on the wire (ACME directory and resource URLs, the
/// URLs it reports).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Announce {
    /// The address it listens on (standalone): scheme, the serving certificate's first
    /// DNS name (else the bound address, loopback when bound to every interface) and
    /// the bound port.
    Listener,
    /// A base URL decided elsewhere: spec.externalURL, or the Service in a cluster.
    Url(String),
}

impl Announce {
    /// spec.externalURL when set, else the listener (`pkiplane serve`).
    pub fn from_external(ep: &EnrollmentEndpoint) -> Self {
        ep.spec.external_base_url().map_or(Announce::Listener, |u| Announce::Url(u.to_string()))
    }

    /// The base URL for an endpoint bound at `bound`.
    pub fn base_url(&self, ep: &EnrollmentEndpoint, bound: SocketAddr, tls: bool) -> String {
        match self {
            Announce::Url(url) => url.trim_end_matches('/').to_string(),
            Announce::Listener => {
                let ip = bound.ip();
                let host =
                    ep.spec.tls.as_ref().and_then(|t| t.dns_names.first().cloned()).unwrap_or_else(|| match ip {
                        _ if ip.is_unspecified() => "127.0.0.1".into(),
                        IpAddr::V6(v6) => format!("[{v6}]"),
                        IpAddr::V4(v4) => v4.to_string(),
                    });
                let scheme = if tls { "https" } else { "http" };
                format!("{scheme}://{host}:{}", bound.port())
            }
        }
    }
}

/// A running endpoint and the task serving it.
pub type RunningTask = (RunningEndpoint, tokio::task::JoinHandle<Result<()>>);

/// Where an endpoint listens: the bound socket, its limits, the serving certificate when
/// it speaks TLS, and the base URL it announces.
pub struct Listening {
    pub listener: TcpListener,
    pub limits: Limits,
    pub serving: Option<tls::ServingCert>,
    pub announce: Announce,
}

/// Builds the endpoint's protocol routes on `deps` and serves them as `listening` says,
/// writing its trust bundles under `bundles` when given. `None` when this build does not
/// serve the protocol.
pub async fn start_endpoint(
    id: &ObjectRef,
    ep: &EnrollmentEndpoint,
    manifests: &Manifests,
    deps: &EndpointDeps,
    listening: Listening,
    bundles: Option<&Path>,
    shutdown: watch::Receiver<bool>,
) -> Result<Option<RunningTask>> {
    let Listening { listener, limits, serving, announce } = listening;
    let base_url = announce.base_url(ep, listener.local_addr()?, serving.is_some());
    let ctx = EndpointContext { id: id.clone(), endpoint: ep, manifests, deps, base_url };
    let Some(Protocol { router, urls, maintenance }) = protocol_router(&ctx).await? else {
        tracing::warn!(
            endpoint = %id,
            protocol = ?ep.spec.protocol,
            "this build does not serve this protocol yet; the endpoint is not started"
        );
        return Ok(None);
    };
    if let Some(m) = maintenance {
        tokio::spawn(maintain(m, id.clone(), shutdown.clone()));
    }
    let router = pkiplane_metrics::http::instrument(router, "endpoint", &id.to_string());
    let chains = ca_chains(deps.ca.as_ref(), ep, id);
    let ca_bundle = match bundles {
        Some(dir) => tls::write_bundle(dir, &format!("{}-{}-ca.pem", id.namespace, id.name), &chains)?,
        None => String::new(),
    };
    let (task, trust) = match serving {
        Some(cert) => {
            let trust = match bundles {
                Some(dir) => Some(tls::write_bundle(
                    dir,
                    &format!("{}-{}-tls-trust.pem", id.namespace, id.name),
                    &cert.trust_pem,
                )?),
                None => None,
            };
            let client_certs = matches!(ep.spec.protocol, EndpointProtocol::Est);
            let config = tls::server_config(&cert, client_certs)?;
            (tokio::spawn(tls::serve_tls(listener, limits, router, config, shutdown)), trust)
        }
        None => (tokio::spawn(super::serve_router(listener, limits, router, shutdown)), None),
    };
    let running = RunningEndpoint {
        namespace: id.namespace.clone(),
        name: id.name.clone(),
        protocol: format!("{:?}", ep.spec.protocol).to_uppercase(),
        urls,
        tls_trust_bundle: trust,
        ca_bundle,
    };
    Ok(Some((running, task)))
}

/// Runs `m` every `m.every()` until `shutdown` turns true (or its sender goes).
async fn maintain(m: Arc<dyn Maintenance>, endpoint: ObjectRef, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(m.every());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => m.maintain().await,
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    tracing::debug!(endpoint = %endpoint, "maintenance stopped");
                    return;
                }
            }
        }
    }
}

/// The chains (roots included) of every Issuer behind the endpoint's profiles.
fn ca_chains(ca: &dyn Authority, ep: &EnrollmentEndpoint, id: &ObjectRef) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(spec: &str) -> EnrollmentEndpoint {
        serde_yaml::from_str(&format!(
            "apiVersion: pkiplane.dev/v1alpha1\nkind: EnrollmentEndpoint\nmetadata: {{name: acme, namespace: pki}}\nspec:\n  protocol: ACME\n  profiles: [{{name: tls}}]\n{spec}"
        ))
        .unwrap()
    }

    #[test]
    fn standalone_announces_where_it_listens_unless_an_external_url_is_set() {
        let tls = endpoint("  tls: {issuerRef: {name: ca}, dnsNames: [localhost]}\n");
        let bound: SocketAddr = "127.0.0.1:14000".parse().unwrap();
        assert_eq!(Announce::from_external(&tls).base_url(&tls, bound, true), "https://localhost:14000");
        let plain = endpoint("");
        let any: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert_eq!(Announce::from_external(&plain).base_url(&plain, any, false), "http://127.0.0.1:8080");
        let v6: SocketAddr = "[::1]:8080".parse().unwrap();
        assert_eq!(Announce::Listener.base_url(&plain, v6, false), "http://[::1]:8080");
        let external = endpoint("  externalURL: https://acme.example.com/\n  tls: {secretRef: {name: t}}\n");
        assert_eq!(Announce::from_external(&external).base_url(&external, bound, true), "https://acme.example.com");
    }

    #[test]
    fn in_a_cluster_the_service_url_is_announced_not_the_container_port() {
        let tls = endpoint("  listen: {port: 14000}\n  tls: {issuerRef: {name: ca}, dnsNames: [localhost]}\n");
        let bound: SocketAddr = "0.0.0.0:14000".parse().unwrap();
        assert_eq!(Announce::Url(tls.cluster_base_url()).base_url(&tls, bound, true), "https://localhost");
        let svc = endpoint("  service: {port: 8443}\n  tls: {secretRef: {name: t}}\n");
        assert_eq!(
            Announce::Url(svc.cluster_base_url()).base_url(&svc, bound, true),
            "https://acme-pkiplane.pki.svc:8443"
        );
    }
}
