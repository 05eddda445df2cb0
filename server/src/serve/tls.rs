//! TLS for endpoint listeners: the serving certificate (from a Secret, or issued by an
//! Issuer through the normal pipeline so it lands in the inventory) and an accept loop
//! that drains connections on shutdown.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use pkiplane_api::Manifests;
use pkiplane_api::v1alpha1::TlsSettings;
use pkiplane_core::keys::{KeyAlgorithm, generate_key};
use pkiplane_core::model::{ObjectRef, TlsPeer};
use pkiplane_core::service::{Authority, InternalCertRequest, InternalRole};
use pkiplane_core::x509::csr::{CsrOptions, ParsedCsr};
use pkiplane_core::x509::csr_build::build_csr;
use pkiplane_core::x509::names::{SubjectAttribute, build_name};
use pkiplane_core::x509::{San, pem};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

/// A serving certificate chain and its key.
pub struct ServingCert {
    pub chain_pem: String,
    pub key_pkcs8: zeroize::Zeroizing<Vec<u8>>,
    /// PEM a client trusts to reach this endpoint (the issuing chain's root).
    pub trust_pem: String,
}

/// Gets the serving certificate an endpoint's `tls` settings ask for.
pub async fn serving_cert(
    ca: &dyn Authority,
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
    let names = ServingNames::from_settings(tls)?;
    issue_serving_cert(ca, endpoint, &issuer_id, &names).await
}

/// The DNS names and IP addresses of a serving certificate.
#[derive(Clone, Debug, Default)]
pub struct ServingNames {
    pub dns: Vec<String>,
    pub ips: Vec<IpAddr>,
}

impl ServingNames {
    /// The names of an endpoint's `tls` settings; `localhost` and 127.0.0.1 when none.
    pub fn from_settings(tls: &TlsSettings) -> Result<Self> {
        let mut ips = Vec::new();
        for ip in &tls.ip_addresses {
            ips.push(ip.parse::<IpAddr>().with_context(|| format!("tls.ipAddresses: `{ip}`"))?);
        }
        let mut names = Self { dns: tls.dns_names.clone(), ips };
        if names.dns.is_empty() && names.ips.is_empty() {
            names = Self { dns: vec!["localhost".into()], ips: vec!["127.0.0.1".parse()?] };
        }
        Ok(names)
    }

    fn sans(&self) -> Vec<San> {
        self.dns.iter().map(|d| San::Dns(d.clone())).chain(self.ips.iter().map(|i| San::Ip(*i))).collect()
    }
}

/// A fresh P-256 key and a serving certificate for it from `issuer`, through the CA's
/// `serving-tls` role (the CA builds the profile; the certificate lands in the inventory).
pub async fn issue_serving_cert(
    ca: &dyn Authority,
    endpoint: &ObjectRef,
    issuer: &ObjectRef,
    names: &ServingNames,
) -> Result<ServingCert> {
    let info = ca.issuer(issuer).ok_or_else(|| anyhow!("tls.issuerRef: no Issuer {issuer}"))?;
    let sans = names.sans();
    let Some(first) = sans.first() else { bail!("a serving certificate needs a DNS name or an IP address") };
    let key = generate_key(KeyAlgorithm::EcdsaP256)?;
    let subject = build_name(&[(SubjectAttribute::CommonName, first.value())]).map_err(|e| anyhow!(e))?;
    let csr = ParsedCsr::from_der(&build_csr(&key, &subject, &sans)?, CsrOptions::default())?;
    let req = InternalCertRequest {
        role: InternalRole::ServingTls,
        endpoint: endpoint.clone(),
        issuer: issuer.clone(),
        csr,
        lifetime: None,
    };
    let issued = ca.issue_internal(req).await?;
    Ok(ServingCert {
        chain_pem: issued.full_chain_pem(),
        key_pkcs8: key.pkcs8_der().to_vec().into(),
        trust_pem: pem::encode("CERTIFICATE", &info.root().der),
    })
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
        builder.with_client_cert_verifier(pkiplane_est::tls::DeferredClientCertVerifier::new(&provider))
    } else {
        builder.with_no_client_auth()
    };
    let mut config = builder.with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Serves `router` over TLS under `limits` until shutdown, then lets requests in
/// progress finish.
pub async fn serve_tls(
    listener: TcpListener,
    limits: pkiplane_listen::Limits,
    router: axum::Router,
    config: Arc<rustls::ServerConfig>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<()> {
    let acceptor = EndpointTls { acceptor: TlsAcceptor::from(config), router };
    pkiplane_listen::serve(listener, limits, acceptor, async move { super::shutdown_requested(&mut shutdown).await })
        .await;
    Ok(())
}

/// Sets up a TLS connection: the handshake, then the routes with the client's
/// certificates and channel binding ([`TlsPeer`]) and address.
struct EndpointTls {
    acceptor: TlsAcceptor,
    router: axum::Router,
}

impl pkiplane_listen::Acceptor for EndpointTls {
    type Io = tokio_rustls::server::TlsStream<pkiplane_listen::Tracked<tokio::net::TcpStream>>;

    async fn accept(
        &self,
        stream: pkiplane_listen::Tracked<tokio::net::TcpStream>,
        peer: SocketAddr,
    ) -> Option<(Self::Io, axum::Router)> {
        let tls = match self.acceptor.accept(stream).await {
            Ok(tls) => tls,
            Err(e) => {
                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                return None;
            }
        };
        let router = self
            .router
            .clone()
            .layer(axum::Extension(peer_of(tls.get_ref().1)))
            .layer(axum::Extension(axum::extract::ConnectInfo(peer)));
        Some((tls, router))
    }
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
    if !dir.exists() {
        std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700).create(dir)?;
    }
    crate::datadir::make_private_dir(dir)?;
    let path = dir.join(name);
    crate::datadir::write_private(&path, pem.as_bytes())?;
    Ok(path.display().to_string())
}
