//! The admin listener's TLS: the CA service's serving certificate (`--tls-dir`), or for
//! `pkiplane serve` a certificate of its own, made into the data directory's
//! `admin-tls/` under a private CA the CLI trusts with `--ca-file admin-tls/ca.crt`.
//! No client certificate is asked for: callers authenticate with a bearer token.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::{Context, Result};
use pkiplane_caservice::tls::{Reloading, build_server_without_client_auth};
use pkiplane_operator::internal_ca::{CA_CRT, InternalCa, LeafSpec, TLS_CRT, TLS_KEY, renewal_due};
use tokio_rustls::TlsAcceptor;

/// The directory of the standalone admin certificate inside a data directory.
pub const STANDALONE_DIR: &str = "admin-tls";

/// TLS from a directory holding tls.crt, tls.key and ca.crt, reloaded when they change.
pub fn from_dir(dir: &Path) -> Result<Arc<Reloading<rustls::ServerConfig>>> {
    let tls = Reloading::new(dir, build_server_without_client_auth)
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
        match TlsAcceptor::from(self.tls.get()).accept(stream).await {
            Ok(tls) => Some((tls, self.router.clone().layer(axum::Extension(axum::extract::ConnectInfo(peer))))),
            Err(e) => {
                tracing::debug!(%peer, error = %e, "admin API: TLS handshake failed");
                None
            }
        }
    }
}
