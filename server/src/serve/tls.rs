//! TLS for endpoint listeners: the serving certificate (from a Secret, or issued by an
//! Issuer through the normal pipeline so it lands in the inventory) and an accept loop
//! that drains connections on shutdown.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use pkiplane_api::Manifests;
use pkiplane_api::v1alpha1::TlsSettings;
use pkiplane_core::issuance::{Ca, IssuanceRequest};
use pkiplane_core::keys::{KeyAlgorithm, generate_key};
use pkiplane_core::model::{ObjectRef, Protocol, Requester, TlsPeer};
use pkiplane_core::policy::RequestedValidity;
use pkiplane_core::profile::*;
use pkiplane_core::x509::csr::{CsrOptions, ParsedCsr};
use pkiplane_core::x509::csr_build::build_csr;
use pkiplane_core::x509::names::{SubjectAttribute, build_name};
use pkiplane_core::x509::{KeyUsageBit, San, eku_from_name, pem};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

/// Lifetime of serving certificates pkiplane issues for its own endpoints.
const SERVING_LIFETIME: Duration = Duration::from_secs(30 * 86_400);
/// How long a TLS handshake may take before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A serving certificate chain and its key.
pub struct ServingCert {
    pub chain_pem: String,
    pub key_pkcs8: zeroize::Zeroizing<Vec<u8>>,
    /// PEM a client trusts to reach this endpoint (the issuing chain's root).
    pub trust_pem: String,
}

/// Gets the serving certificate an endpoint's `tls` settings ask for.
pub async fn serving_cert(
    ca: &Ca,
    manifests: &Manifests,
    endpoint: &ObjectRef,
    tls: &TlsSettings,
) -> Result<ServingCert> {
    if let Some(secret) = &tls.secret_ref {
        let chain = manifests.secret_value(&endpoint.namespace, &secret.name, "tls.crt")?;
        let key = manifests.secret_value(&endpoint.namespace, &secret.name, "tls.key")?;
        let key = pkiplane_core::issuer::parse_private_key_pem(std::str::from_utf8(&key)?)
            .map_err(|e| anyhow!("Secret {}/{} tls.key: {e}", endpoint.namespace, secret.name))?;
        let chain_pem = String::from_utf8(chain)?;
        let trust_pem = manifests
            .secret_value(&endpoint.namespace, &secret.name, "ca.crt")
            .ok()
            .and_then(|c| String::from_utf8(c).ok())
            .unwrap_or_else(|| chain_pem.clone());
        return Ok(ServingCert { chain_pem, key_pkcs8: key.pkcs8_der().to_vec().into(), trust_pem });
    }
    let Some(issuer_ref) = &tls.issuer_ref else { bail!("tls needs secretRef or issuerRef") };
    let issuer_id = ObjectRef::new(&endpoint.namespace, &issuer_ref.name);
    let issuer = ca.issuer(&issuer_id).ok_or_else(|| anyhow!("tls.issuerRef: no Issuer {issuer_id}"))?;
    let mut sans: Vec<San> = tls.dns_names.iter().map(|d| San::Dns(d.clone())).collect();
    for ip in &tls.ip_addresses {
        sans.push(San::Ip(ip.parse::<IpAddr>().with_context(|| format!("tls.ipAddresses: `{ip}`"))?));
    }
    if sans.is_empty() {
        sans = vec![San::Dns("localhost".into()), San::Ip("127.0.0.1".parse()?)];
    }
    let key = generate_key(KeyAlgorithm::EcdsaP256)?;
    let cn = sans[0].value();
    let subject = build_name(&[(SubjectAttribute::CommonName, cn)]).map_err(|e| anyhow!(e))?;
    let csr = ParsedCsr::from_der(&build_csr(&key, &subject, &sans)?, CsrOptions::default())?;
    let req = IssuanceRequest {
        csr,
        profile: serving_profile_id(endpoint),
        requester: Requester::new(Protocol::Local, "pkiplane-serve").at_endpoint(endpoint.clone()),
        requested: RequestedValidity::default(),
        renewal_of: None,
    };
    let issued = ca.issue_internal(req, serving_profile(endpoint, issuer_id)).await?;
    Ok(ServingCert {
        chain_pem: issued.full_chain_pem(),
        key_pkcs8: key.pkcs8_der().to_vec().into(),
        trust_pem: pem::encode("CERTIFICATE", &issuer.root().der),
    })
}

fn serving_profile_id(endpoint: &ObjectRef) -> ObjectRef {
    ObjectRef::new(&endpoint.namespace, format!("{}.serving-tls", endpoint.name))
}

/// The profile pkiplane's own endpoint TLS certificates are issued under.
fn serving_profile(endpoint: &ObjectRef, issuer: ObjectRef) -> Profile {
    Profile {
        sans: SanPolicy {
            max_count: 100,
            required: true,
            dns: Some(DnsRule { suffixes: vec![], allow_wildcards: false }),
            ip: Some(IpRule::default()),
            uri: None,
            email: None,
        },
        ..Profile::internal(
            serving_profile_id(endpoint),
            format!("TLS server certificate of endpoint {endpoint}"),
            issuer,
            SERVING_LIFETIME,
            vec![KeyUsageBit::DigitalSignature],
            eku_from_name("serverAuth").into_iter().collect(),
        )
    }
}

/// A rustls server configuration for a serving certificate; with `client_certs`, clients
/// may present a certificate, which the protocol then validates.
pub fn server_config(cert: &ServingCert, client_certs: bool) -> Result<Arc<rustls::ServerConfig>> {
    let chain: Vec<CertificateDer<'static>> =
        pem::decode_chain(cert.chain_pem.as_bytes(), "CERTIFICATE")?.into_iter().map(CertificateDer::from).collect();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.key_pkcs8.to_vec()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder =
        rustls::ServerConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions()?;
    let builder = if client_certs {
        builder.with_client_cert_verifier(super::client_auth::DeferredClientCertVerifier::new(&provider))
    } else {
        builder.with_no_client_auth()
    };
    let mut config = builder.with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Serves `router` over TLS until shutdown, then waits for open connections to finish.
pub async fn serve_tls(
    listener: TcpListener,
    router: axum::Router,
    config: Arc<rustls::ServerConfig>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<()> {
    let acceptor = TlsAcceptor::from(config);
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = super::shutdown_requested(&mut shutdown) => break,
        };
        let acceptor = acceptor.clone();
        let router = router.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let router = router
                .layer(axum::Extension(peer_of(tls.get_ref().1)))
                .layer(axum::Extension(axum::extract::ConnectInfo(peer)));
            let service = TowerToHyperService::new(router);
            let builder = auto::Builder::new(TokioExecutor::new());
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls), service).into_owned();
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    graceful.shutdown().await;
    Ok(())
}

/// The client's certificates and the connection's channel binding (RFC 9266).
fn peer_of(conn: &rustls::ServerConnection) -> TlsPeer {
    let chain_der = conn.peer_certificates().map(|c| c.iter().map(|d| d.to_vec()).collect()).unwrap_or_default();
    let mut binding = [0u8; 32];
    let channel_binding =
        conn.export_keying_material(&mut binding, b"EXPORTER-Channel-Binding", None).ok().map(|b| b.to_vec());
    TlsPeer { chain_der, channel_binding }
}

/// Writes `pem` to `dir/name` and returns the path as a string.
pub fn write_bundle(dir: &Path, name: &str, pem: &str) -> Result<String> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(name);
    std::fs::write(&path, pem)?;
    Ok(path.display().to_string())
}
