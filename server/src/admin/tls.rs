//! The admin listener's TLS: the CA service's serving certificate (`--tls-dir`), or for
//! `pkiplane serve` a certificate of its own, made into the data directory's
//! `admin-tls/` under a private CA the CLI trusts with `--ca-file admin-tls/ca.crt`.
//! Callers authenticate with a bearer token; in a cluster they may instead present a
//! client certificate of the Kubernetes client CA (a kubeconfig's client-certificate
//! user), read as the API server reads it: CN the user name, O the groups.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::{Context, Result};
use pkiplane_caservice::tls::Reloading;
use pkiplane_core::x509::cert::CertInfo;
use pkiplane_core::x509::names::{SubjectAttribute, name_attributes};
use pkiplane_operator::internal_ca::{CA_CRT, InternalCa, LeafSpec, TLS_CRT, TLS_KEY, renewal_due};
use tokio_rustls::TlsAcceptor;

use super::auth::User;

/// The directory of the standalone admin certificate inside a data directory.
pub const STANDALONE_DIR: &str = "admin-tls";

/// TLS from a directory holding tls.crt, tls.key and ca.crt, reloaded when they change;
/// with `client_roots`, client certificates chaining to them are accepted.
pub fn from_dir(
    dir: &Path,
    client_roots: Option<Arc<rustls::RootCertStore>>,
) -> Result<Arc<Reloading<rustls::ServerConfig>>> {
    let tls = Reloading::new(dir, move |m| m.server_config_for_people(client_roots.clone()))
        .with_context(|| format!("loading the admin API's TLS from {}", dir.display()))?;
    tls.spawn_watch();
    Ok(tls)
}

/// Makes (or renews, when due) the standalone admin certificate for localhost,
/// 127.0.0.1 and ::1 under a private CA; returns the directory.
pub fn standalone(data_dir: &Path, now: SystemTime) -> Result<PathBuf> {
    let dir = data_dir.join(STANDALONE_DIR);
    let current = std::fs::read_to_string(dir.join(TLS_CRT)).ok();
    let fresh = current.as_deref().is_some_and(|c| !renewal_due(c, now)) && dir.join(TLS_KEY).exists();
    if fresh && dir.join(CA_CRT).exists() {
        return Ok(dir);
    }
    let ca = InternalCa::generate(now).map_err(|e| anyhow::anyhow!("admin API CA: {e}"))?;
    let spec = LeafSpec {
        common_name: "pkiplane admin API".into(),
        dns_names: vec!["localhost".into()],
        ip_addresses: vec![IpAddr::V4(Ipv4Addr::LOCALHOST), IpAddr::V6(Ipv6Addr::LOCALHOST)],
        uri: "spiffe://pkiplane.dev/admin".into(),
    };
    let leaf = ca.issue_leaf(&spec, now).map_err(|e| anyhow::anyhow!("admin API certificate: {e}"))?;
    // Only the CA certificate leaves the directory; its key is dropped here.
    crate::serve::tls::write_bundle(&dir, CA_CRT, &ca.bundle_pem)?;
    crate::serve::tls::write_bundle(&dir, TLS_KEY, &leaf.key_pem)?;
    crate::serve::tls::write_bundle(&dir, TLS_CRT, &leaf.certificate_pem)?;
    tracing::info!(dir = %dir.display(), "made the admin API's TLS certificate");
    Ok(dir)
}

/// Sets up an admin connection: the TLS handshake, then the routes.
pub struct AdminTls {
    pub tls: Arc<Reloading<rustls::ServerConfig>>,
    pub router: axum::Router,
}

impl pkiplane_listen::Acceptor for AdminTls {
    type Io = tokio_rustls::server::TlsStream<pkiplane_listen::Tracked<tokio::net::TcpStream>>;

    async fn accept(
        &self,
        stream: pkiplane_listen::Tracked<tokio::net::TcpStream>,
        peer: SocketAddr,
    ) -> Option<(Self::Io, axum::Router)> {
        let tls = match TlsAcceptor::from(self.tls.get()).accept(stream).await {
            Ok(tls) => tls,
            Err(e) => {
                tracing::debug!(%peer, error = %e, "admin API: TLS handshake failed");
                return None;
            }
        };
        // Only a verifier with the cluster's client CA asks for certificates, and rustls
        // has verified any it got.
        let leaf = tls.get_ref().1.peer_certificates().and_then(|c| c.first()).map(|c| c.to_vec());
        let user = match leaf.as_deref().map(certificate_user) {
            Some(Ok(user)) => Some(user),
            Some(Err(e)) => {
                tracing::info!(%peer, error = %e, "admin API: the client certificate names no user");
                return None;
            }
            None => None,
        };
        let router = self
            .router
            .clone()
            .layer(axum::Extension(CertificateUser(user)))
            .layer(axum::Extension(axum::extract::ConnectInfo(peer)));
        Some((tls, router))
    }
}

/// The user of a verified client certificate, when the connection presented one.
#[derive(Clone, Debug)]
pub struct CertificateUser(pub Option<User>);

/// The Kubernetes user of a client certificate: the subject's CN is the user name and
/// each O a group, as the API server's x509 authenticator reads them; every
/// authenticated user is also in `system:authenticated`.
pub fn certificate_user(der: &[u8]) -> Result<User, String> {
    let info = CertInfo::from_der(der).map_err(|e| format!("not a certificate: {e}"))?;
    let mut username = None;
    let mut groups = Vec::new();
    for a in name_attributes(&info.subject)? {
        match a.attribute {
            Some(SubjectAttribute::CommonName) if username.is_none() => username = Some(a.value),
            Some(SubjectAttribute::Organization) => groups.push(a.value),
            _ => {}
        }
    }
    let username = username.filter(|u| !u.is_empty()).ok_or("the subject has no CN")?;
    groups.push("system:authenticated".to_owned());
    Ok(User { username, uid: String::new(), groups, extra: Default::default() })
}
