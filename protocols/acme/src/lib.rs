//! pkiplane's ACME server: RFC 8555 with tls-alpn-01 (RFC 8737), IP identifiers
//! (RFC 8738), renewal information (ARI, RFC 9773) and certificate profiles (the ACME
//! profiles extension draft: `meta.profiles` in the directory, `profile` in newOrder).
//!
//! The server is a transport: it authenticates accounts and validates identifiers, then
//! hands (CSR, requester, profile) to the CA core ([`pkiplane_core::issuance::Ca::issue`]),
//! which alone decides validity, extensions and algorithms. ACME only checks ACME-level
//! authorization: a valid account, valid authorizations, CSR identifiers equal to the
//! order's. All protocol state (accounts, orders, authorizations, nonces) lives in an
//! [`AcmeStore`], so any number of replicas can serve one endpoint.
//!
//! [`router`] returns the axum router; every URL it emits is absolute, built from
//! [`AcmeSettings::base_url`], and the directory is at `/directory`.
#![forbid(unsafe_code)]

#[cfg(feature = "server")]
pub mod account;
#[cfg(feature = "server")]
pub mod alone;
#[cfg(feature = "server")]
pub mod ari;
#[cfg(feature = "server")]
pub mod authz;
#[cfg(feature = "server")]
pub mod directory;
#[cfg(feature = "server")]
pub mod eab;
#[cfg(feature = "server")]
pub mod finalize;
#[cfg(feature = "server")]
pub mod identifier;
#[cfg(feature = "server")]
pub mod jwk;
#[cfg(feature = "server")]
pub mod jws;
#[cfg(feature = "server")]
pub mod nonce;
#[cfg(feature = "server")]
pub mod order;
#[cfg(feature = "server")]
pub mod payload;
#[cfg(feature = "server")]
pub mod problem;
#[cfg(feature = "server")]
pub mod respond;
#[cfg(feature = "server")]
pub mod revoke;
pub mod settings;
#[cfg(feature = "server")]
pub mod signed;
#[cfg(any(test, feature = "test-util"))]
pub mod signer;
pub mod state;
#[cfg(feature = "server")]
pub mod time;
#[cfg(feature = "server")]
pub mod validate;

#[cfg(feature = "server")]
use std::sync::Arc;

#[cfg(feature = "server")]
use crate::state::AcmeStore;
#[cfg(feature = "server")]
use axum::Router;
#[cfg(feature = "server")]
use axum::routing::{get, post};
#[cfg(feature = "server")]
use pkiplane_core::service::Authority;

#[cfg(feature = "server")]
pub use problem::{AcmeError, ProblemType};
pub use settings::{AcmeSettings, EabKey, EabSettings, ExposedProfile, ValidationSettings};

#[cfg(feature = "server")]
/// Resource paths below the base URL.
pub mod paths {
    pub const DIRECTORY: &str = "/directory";
    pub const NEW_NONCE: &str = "/new-nonce";
    pub const NEW_ACCOUNT: &str = "/new-account";
    pub const NEW_ORDER: &str = "/new-order";
    pub const REVOKE_CERT: &str = "/revoke-cert";
    pub const KEY_CHANGE: &str = "/key-change";
    pub const RENEWAL_INFO: &str = "/renewal-info";
}

#[cfg(feature = "server")]
/// What every request handler shares.
#[derive(Clone)]
pub struct AcmeState {
    pub config: Arc<AcmeSettings>,
    pub ca: Arc<dyn Authority>,
    pub store: Arc<dyn AcmeStore>,
    /// Where this endpoint's nonces live ([`nonce`]): the shared store by default.
    pub nonces: Arc<dyn nonce::NonceBook>,
    /// What this process keeps in memory when it serves the endpoint alone ([`alone`]);
    /// None when replicas may share the store.
    pub alone: Option<Arc<alone::Alone>>,
}

#[cfg(feature = "server")]
impl AcmeState {
    /// Nonces are kept in `store`, so replicas sharing it redeem each other's.
    pub fn new(config: AcmeSettings, ca: Arc<dyn Authority>, store: Arc<dyn AcmeStore>) -> Self {
        let nonces = Arc::new(nonce::SharedNonces::new(store.clone(), config.nonce_lifetime));
        Self { config: Arc::new(config), ca, store, nonces, alone: None }
    }

    /// For an endpoint no other process serves: nonces kept by this process
    /// ([`nonce::LocalNonces`], two store writes fewer per request), accounts cached and
    /// finalization claimed in memory ([`alone`], one store read fewer per request and
    /// one store write fewer per issuance).
    pub fn served_alone(mut self) -> Self {
        self.nonces = Arc::new(nonce::LocalNonces::new(self.config.nonce_lifetime));
        self.alone = Some(Arc::default());
        self
    }

    /// An absolute URL for `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.config.base_url)
    }

    pub fn account_url(&self, id: &str) -> String {
        self.url(&format!("/acct/{id}"))
    }

    pub fn orders_url(&self, account_id: &str) -> String {
        self.url(&format!("/acct/{account_id}/orders"))
    }

    pub fn order_url(&self, id: &str) -> String {
        self.url(&format!("/order/{id}"))
    }

    pub fn finalize_url(&self, id: &str) -> String {
        self.url(&format!("/order/{id}/finalize"))
    }

    pub fn authz_url(&self, id: &str) -> String {
        self.url(&format!("/authz/{id}"))
    }

    pub fn challenge_url(&self, authz_id: &str, challenge_id: &str) -> String {
        self.url(&format!("/chall/{authz_id}/{challenge_id}"))
    }

    pub fn certificate_url(&self, order_id: &str) -> String {
        self.url(&format!("/cert/{order_id}"))
    }
}

#[cfg(feature = "server")]
/// Removes expired nonces and long-expired orders (the deletes are idempotent, so every
/// replica may run it).
#[async_trait::async_trait]
impl pkiplane_core::maintenance::Maintenance for AcmeState {
    fn every(&self) -> std::time::Duration {
        std::time::Duration::from_secs(600)
    }

    async fn maintain(&self) {
        let retention = std::time::Duration::from_secs(7 * 86_400);
        match self.store.purge_expired(std::time::SystemTime::now(), retention).await {
            Ok(n) if n > 0 => tracing::debug!(purged = n, "ACME housekeeping"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "ACME housekeeping failed"),
        }
    }
}

#[cfg(feature = "server")]
/// The ACME server's routes. Every response carries a fresh `Replay-Nonce` and a
/// `Link: <directory>;rel="index"` (RFC 8555 section 7.1).
pub fn router(state: AcmeState) -> Router {
    Router::new()
        .route(paths::DIRECTORY, get(directory::directory))
        .route(paths::NEW_NONCE, get(nonce::new_nonce).head(nonce::new_nonce))
        .route(paths::NEW_ACCOUNT, post(account::new_account))
        .route("/acct/{id}", post(account::account))
        .route("/acct/{id}/orders", post(account::orders))
        .route(paths::KEY_CHANGE, post(account::key_change))
        .route(paths::NEW_ORDER, post(order::new_order))
        .route("/order/{id}", post(order::order))
        .route("/order/{id}/finalize", post(finalize::finalize))
        .route("/authz/{id}", post(authz::authorization))
        .route("/chall/{authz}/{challenge}", post(authz::challenge))
        .route("/cert/{id}", post(finalize::certificate))
        .route(&format!("/cert/{{id}}/{}", finalize::WITH_ROOT), post(finalize::certificate_with_root))
        .route(paths::REVOKE_CERT, post(revoke::revoke_cert))
        .route(&format!("{}/{{cert_id}}", paths::RENEWAL_INFO), get(ari::renewal_info))
        .fallback(respond::not_found)
        .method_not_allowed_fallback(respond::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(state.clone(), nonce::replay_nonce_layer))
        .with_state(state)
}
