//! The admin API: inventory queries, one certificate, revocation and CRL signing for
//! people and tools, over HTTPS on a listener of its own (`--admin-listen`).
//!
//! Not on the publication listener (relying parties reach that one from anywhere) and
//! not on the CA service's internal API (its mutual TLS admits only pkiplane's own
//! components, by internal-CA client certificates). Callers present a bearer token:
//! in a cluster a Kubernetes token reviewed by the API server and authorized by RBAC
//! ([`kube_review`]), standalone the server's local token ([`auth::LocalToken`]).
//! docs/operations/admin-api.md has the routes, verbs and Roles.

mod approvals;
pub mod auth;
mod cache;
pub mod kube_review;
pub mod routes;
pub mod tls;
pub mod view;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use pkiplane_caservice::tls::Reloading;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use auth::{Access, AuthError, LocalToken, User};
use kube_review::{ApiServerReviews, KubeAuth};

/// How callers prove who they are.
pub enum Authorizer {
    /// Standalone: one local token, which may do everything.
    Local(LocalToken),
    /// In a cluster: TokenReview and SubjectAccessReview.
    Kube(KubeAuth<ApiServerReviews>),
}

impl Authorizer {
    pub async fn authenticate(&self, token: &str) -> Result<User, AuthError> {
        match self {
            Authorizer::Local(t) => t.authenticate(token),
            Authorizer::Kube(k) => k.authenticate(token).await,
        }
    }

    pub async fn authorize(&self, user: &User, access: &Access) -> Result<(), AuthError> {
        match self {
            // The local token is the server's owner's: every verb.
            Authorizer::Local(_) => Ok(()),
            Authorizer::Kube(k) => k.authorize(user, access).await,
        }
    }
}

/// A listener address, or none (`off`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OptionalListen(pub Option<SocketAddr>);

/// `off` or `none` disables the listener; anything else is an address.
pub fn parse_listen(s: &str) -> Result<OptionalListen, String> {
    if s.eq_ignore_ascii_case("off") || s.eq_ignore_ascii_case("none") {
        return Ok(OptionalListen(None));
    }
    s.parse::<SocketAddr>()
        .map(|a| OptionalListen(Some(a)))
        .map_err(|e| format!("`{s}`: {e} (an address like 127.0.0.1:8443, or off)"))
}

/// Where a running server's admin API is, written into its data directory so that the
/// CLI, refused the directory while the server owns it, can say how to reach the server.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Discovery {
    pub url: String,
    /// The PEM file to trust the admin listener's certificate with.
    pub ca_file: Option<PathBuf>,
    /// The local token's file (standalone); none when Kubernetes tokens are used.
    pub token_file: Option<PathBuf>,
}

/// The discovery file inside a data directory.
pub const DISCOVERY_FILE: &str = "admin.json";

impl Discovery {
    pub fn write(&self, data_dir: &Path) -> Result<()> {
        crate::datadir::write_private(&data_dir.join(DISCOVERY_FILE), &serde_json::to_vec_pretty(self)?)
    }

    /// [`Self::write`], a failure only logged: the file is a convenience for the CLI's
    /// messages, and a server must still start (and serve its last good CRL) on a full
    /// disk.
    pub fn publish(&self, data_dir: &Path) {
        if let Err(e) = self.write(data_dir) {
            tracing::warn!(error = %e, "could not write {DISCOVERY_FILE}: offline commands will not name the admin API's flags");
        }
    }

    pub fn read(data_dir: &Path) -> Option<Self> {
        serde_json::from_slice(&std::fs::read(data_dir.join(DISCOVERY_FILE)).ok()?).ok()
    }

    /// The flags that reach this server, for error messages.
    pub fn flags(&self) -> String {
        let mut out = format!("--server {}", self.url);
        if let Some(ca) = &self.ca_file {
            out.push_str(&format!(" --ca-file {}", ca.display()));
        }
        if let Some(token) = &self.token_file {
            out.push_str(&format!(" --token-file {}", token.display()));
        }
        out
    }
}

/// Binds `addr` and serves the admin routes over TLS until shutdown: the URL and task.
pub async fn serve(
    addr: SocketAddr,
    tls: Arc<Reloading<rustls::ServerConfig>>,
    state: routes::AdminState,
    limits: pkiplane_listen::Limits,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(String, tokio::task::JoinHandle<Result<()>>)> {
    let listener =
        tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding the admin API listener {addr}"))?;
    let url = format!("https://{}", listener.local_addr()?);
    let router = pkiplane_metrics::http::instrument(routes::router(state), "admin", "");
    let acceptor = tls::AdminTls { tls, router };
    let task = tokio::spawn(async move {
        let stop = async move { crate::serve::shutdown_requested(&mut shutdown).await };
        pkiplane_listen::serve(listener, limits, acceptor, stop).await;
        Ok(())
    });
    Ok((url, task))
}
