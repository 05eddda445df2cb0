//! pkiplane's SCEP server (RFC 8894).
//!
//! SCEP is weak by design (shared challenge passwords, RSA key transport, replay in
//! older implementations); this server contains it:
//!
//! * it holds no CA key: messages are decrypted and CertReps signed by a dedicated RSA
//!   RA key ([`ra`]) whose certificate the endpoint's Issuer signs;
//! * it is a transport only: PKCSReq and RenewalReq become an
//!   [`pkiplane_core::issuance::IssuanceRequest`] and the CA core alone decides
//!   validity, extensions and algorithms ([`enroll`]); certificates land in the same
//!   inventory as every other protocol's;
//! * modern algorithms by default (AES-CBC, SHA-256/512); DES and SHA-1 only with
//!   `legacyAlgorithms` ([`algorithms`]);
//! * challenges are static (constant-time compare, reloadable) or one-time, bound to an
//!   identity, expiring and consumed atomically ([`challenge`]); every transactionID +
//!   senderNonce is accepted once ([`operation`]);
//! * profiles longer-lived than a year are refused unless `allowLongValidity`
//!   ([`containment`]).
//!
//! All protocol state lives in a [`ScepStore`], so replicas share it.
//!
//! Paths: `/scep`, `/scep/pkiclient.exe` and `/cgi-bin/pkiclient.exe` use the
//! endpoint's default profile; `/scep/p/<label>` (and `/scep/p/<label>/pkiclient.exe`)
//! select another exposed profile; `POST /scep/challenges` mints one-time challenges
//! ([`challenge_api`]).
#![forbid(unsafe_code)]

#[cfg(feature = "server")]
pub mod algorithms;
#[cfg(feature = "server")]
mod approval;
#[cfg(feature = "server")]
pub mod challenge;
#[cfg(feature = "server")]
pub mod challenge_api;
#[cfg(any(test, feature = "client"))]
pub mod client;
#[cfg(feature = "server")]
pub mod cms;
pub mod containment;
#[cfg(feature = "server")]
pub mod enroll;
#[cfg(feature = "server")]
pub mod error;
#[cfg(feature = "server")]
pub mod http;
#[cfg(feature = "server")]
pub mod message;
#[cfg(feature = "server")]
pub mod operation;
#[cfg(feature = "server")]
pub mod outcome;
#[cfg(feature = "server")]
pub mod query;
#[cfg(feature = "server")]
pub mod ra;
#[cfg(feature = "server")]
pub mod rsa_key;
#[cfg(feature = "server")]
pub mod rsa_public;
pub mod settings;
pub mod state;

#[cfg(feature = "server")]
use std::sync::Arc;
#[cfg(feature = "server")]
use std::time::{Duration, SystemTime};

#[cfg(feature = "server")]
use crate::state::ScepStore;
#[cfg(feature = "server")]
use axum::Router;
#[cfg(feature = "server")]
use axum::extract::DefaultBodyLimit;
#[cfg(feature = "server")]
use axum::routing::{get, post};
#[cfg(feature = "server")]
use pkiplane_core::ObjectRef;
#[cfg(feature = "server")]
use pkiplane_core::clock::SharedClock;
#[cfg(feature = "server")]
use pkiplane_core::issuer::IssuerInfo;
#[cfg(feature = "server")]
use pkiplane_core::service::Authority;
#[cfg(feature = "server")]
use zeroize::Zeroizing;

#[cfg(feature = "server")]
pub use challenge::{ChallengeBinding, MintedChallenge, mint_challenge};
#[cfg(feature = "server")]
pub use error::ScepError;
#[cfg(feature = "server")]
pub use message::{FailInfo, MessageType, PkiStatus};
#[cfg(feature = "server")]
pub use ra::RaIdentity;
pub use settings::{ExposedProfile, ReloadableSecret, ScepSettings, StaticChallengeSource};

#[cfg(feature = "server")]
/// Why an endpoint cannot start: every problem found.
#[derive(Debug, thiserror::Error)]
#[error("SCEP endpoint cannot start: {}", .0.join("; "))]
pub struct StartError(pub Vec<String>);

#[cfg(feature = "server")]
struct RaSet {
    current: Arc<RaIdentity>,
    /// The RA before the last renewal: clients that cached it may still encrypt to it.
    previous: Option<Arc<RaIdentity>>,
}

#[cfg(feature = "server")]
struct Inner {
    config: ScepSettings,
    ca: Arc<dyn Authority>,
    store: Arc<dyn ScepStore>,
    issuer: ObjectRef,
    ra: tokio::sync::RwLock<RaSet>,
    clock: SharedClock,
}

#[cfg(feature = "server")]
/// What every request handler shares. Cheap to clone.
#[derive(Clone)]
pub struct ScepState {
    inner: Arc<Inner>,
}

#[cfg(feature = "server")]
impl ScepState {
    /// A state with a given RA identity, after the containment checks.
    pub fn new(
        config: ScepSettings,
        ca: Arc<dyn Authority>,
        store: Arc<dyn ScepStore>,
        ra: Arc<RaIdentity>,
    ) -> Result<Self, StartError> {
        let issuer = containment::check_profiles(&config, ca.as_ref()).map_err(StartError)?;
        let ra = tokio::sync::RwLock::new(RaSet { current: ra, previous: None });
        Ok(Self { inner: Arc::new(Inner { config, ca, store, issuer, ra, clock: pkiplane_core::clock::system() }) })
    }

    /// The same state reading time from `clock` (tests of recorded messages). Call it
    /// before the state is cloned.
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        Arc::get_mut(&mut self.inner).expect("with_clock is called before the state is shared").clock = clock;
        self
    }

    /// The time every check of this endpoint compares with.
    pub fn now(&self) -> SystemTime {
        self.inner.clock.now()
    }

    /// Checks the configuration against the CA and loads (or issues) the RA identity.
    pub async fn start(
        config: ScepSettings,
        ca: Arc<dyn Authority>,
        store: Arc<dyn ScepStore>,
    ) -> Result<Self, StartError> {
        let issuer = containment::check_profiles(&config, ca.as_ref()).map_err(StartError)?;
        let ra = ra::ensure_ra(ca.as_ref(), store.as_ref(), &config.endpoint, &issuer)
            .await
            .map_err(|e| StartError(vec![e.to_string()]))?;
        Self::new(config, ca, store, ra)
    }

    pub fn config(&self) -> &ScepSettings {
        &self.inner.config
    }

    pub fn ca(&self) -> &Arc<dyn Authority> {
        &self.inner.ca
    }

    pub fn store(&self) -> &Arc<dyn ScepStore> {
        &self.inner.store
    }

    /// The Issuer this endpoint serves (GetCACert, RA certificate, GetCert, GetCRL).
    pub fn issuer(&self) -> Result<Arc<IssuerInfo>, ScepError> {
        self.inner
            .ca
            .issuer(&self.inner.issuer)
            .ok_or_else(|| ScepError::Unavailable(format!("Issuer {} is not loaded", self.inner.issuer)))
    }

    /// The Issuers whose certificates GetCert, GetCRL and RenewalReq accept.
    pub fn served_issuers(&self) -> Vec<Arc<IssuerInfo>> {
        self.issuer().into_iter().collect()
    }

    /// The current RA identity, renewed first when it no longer serves the Issuer or
    /// has less than a third of its life left.
    pub async fn ra(&self) -> Result<Arc<RaIdentity>, ScepError> {
        let now = self.now();
        {
            let set = self.inner.ra.read().await;
            if set.current.usable(self.inner.ca.as_ref(), &self.inner.issuer, now) {
                return Ok(set.current.clone());
            }
        }
        let mut set = self.inner.ra.write().await;
        if !set.current.usable(self.inner.ca.as_ref(), &self.inner.issuer, now) {
            let fresh = ra::ensure_ra(
                self.inner.ca.as_ref(),
                self.inner.store.as_ref(),
                &self.inner.config.endpoint,
                &self.inner.issuer,
            )
            .await?;
            let old = std::mem::replace(&mut set.current, fresh);
            set.previous = Some(old);
        }
        Ok(set.current.clone())
    }

    /// Opens a pkcsPKIEnvelope with the current RA key, or the previous one.
    pub async fn open_envelope(&self, der: &[u8]) -> Result<(Zeroizing<Vec<u8>>, algorithms::ContentAlg), ScepError> {
        let legacy = self.inner.config.legacy_algorithms;
        let (current, previous) = {
            let set = self.inner.ra.read().await;
            (set.current.clone(), set.previous.clone())
        };
        match cms::envelope::open(der, &current.cert, current.key(), legacy) {
            Err(ScepError::BadMessageCheck(m)) => match previous {
                Some(p) => cms::envelope::open(der, &p.cert, p.key(), legacy),
                None => Err(ScepError::BadMessageCheck(m)),
            },
            other => other,
        }
    }

    /// Mints a one-time challenge (what `pkiplane scep challenge` calls); `ttl` defaults
    /// to the endpoint's and may not exceed it.
    pub async fn mint_challenge(
        &self,
        ttl: Option<Duration>,
        binding: ChallengeBinding,
        created_by: &str,
    ) -> Result<MintedChallenge, ScepError> {
        let dynamic = self
            .inner
            .config
            .dynamic_challenges
            .as_ref()
            .ok_or_else(|| ScepError::BadRequest("one-time challenges are not enabled on this endpoint".into()))?;
        let ttl = ttl.unwrap_or(dynamic.ttl);
        if ttl > dynamic.ttl {
            return Err(ScepError::BadRequest("ttl exceeds the endpoint's dynamicChallenges.ttl".into()));
        }
        mint_challenge(self.inner.store.as_ref(), &self.inner.config.endpoint, ttl, binding, created_by, self.now())
            .await
    }
}

#[cfg(feature = "server")]
/// The SCEP routes (mount at the root of the endpoint's listener).
pub fn router(state: ScepState) -> Router {
    let max_body = state.config().max_body;
    let op = || get(http::scep_default).post(http::scep_default);
    let labelled = || get(http::scep_profile).post(http::scep_profile);
    Router::new()
        .route("/scep", op())
        .route("/scep/pkiclient.exe", op())
        .route("/cgi-bin/pkiclient.exe", op())
        .route("/scep/p/{label}", labelled())
        .route("/scep/p/{label}/pkiclient.exe", labelled())
        .route("/scep/challenges", post(challenge_api::mint))
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(state)
}

#[cfg(feature = "server")]
/// Forgets replay records, finished transactions and used challenges past the
/// endpoint's replay retention (idempotent: every replica may run it).
#[async_trait::async_trait]
impl pkiplane_core::maintenance::Maintenance for ScepState {
    fn every(&self) -> Duration {
        Duration::from_secs(600)
    }

    async fn maintain(&self) {
        if let Err(e) = self.store().purge_expired(SystemTime::now(), self.config().replay_retention).await {
            tracing::warn!(error = %e, "SCEP housekeeping failed");
        }
    }
}
