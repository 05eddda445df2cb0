//! pkiplane's CMP server: the Certificate Management Protocol (RFC 9810) in the
//! Lightweight CMP Profile (RFC 9483), over HTTP (RFC 9811).
//!
//! The server is a transport. It authenticates requests by their message protection
//! (a shared-secret MAC, or a signature by a certificate pkiplane issued or one that
//! chains to the endpoint's trust anchors), checks proof of possession, and hands
//! (request, requester, profile) to the CA core ([`pkiplane_core::issuance::Ca`]), which
//! alone decides validity, extensions and algorithms. Errors become PKIFailureInfo bits
//! at one place ([`error::CmpError`]). Transactions and nonces live in a
//! [`CmpStore`], so any number of replicas can serve one endpoint.
//!
//! Served: ir, cr, kur, p10cr -> ip/cp/kup with certConf -> pkiConf or implicitConfirm;
//! rr -> rp; genm -> genp (caCerts, rootCaCert, certReqTemplate, crlStatusList,
//! currentCRL, signKeyPairTypes); pollReq -> pollRep for requests that wait for
//! approval; error -> pkiConf.
//!
//! [`router`] serves `POST /.well-known/cmp` (the default profile) and
//! `POST /.well-known/cmp/p/<label>`.
#![forbid(unsafe_code)]

#[cfg(feature = "server")]
pub mod auth;
#[cfg(feature = "server")]
pub mod confirm;
#[cfg(feature = "server")]
pub mod convert;
#[cfg(feature = "server")]
pub mod credential;
#[cfg(feature = "server")]
pub mod enroll;
#[cfg(feature = "server")]
pub mod error;
#[cfg(feature = "server")]
pub mod exchange;
#[cfg(feature = "server")]
pub mod genm;
#[cfg(feature = "server")]
pub mod genm_root;
#[cfg(feature = "server")]
pub mod http;
#[cfg(feature = "server")]
pub mod poll;
#[cfg(feature = "server")]
pub mod pop;
#[cfg(feature = "server")]
pub mod protection;
#[cfg(feature = "server")]
pub mod respond;
#[cfg(feature = "server")]
pub mod revoke;
#[cfg(feature = "server")]
pub mod server;
pub mod settings;
pub mod state;
#[cfg(feature = "server")]
pub mod template;
#[cfg(feature = "server")]
pub mod trust;
#[cfg(feature = "server")]
pub mod wire;

#[cfg(feature = "server")]
use std::collections::HashMap;
#[cfg(feature = "server")]
use std::sync::{Arc, Mutex, RwLock};
#[cfg(feature = "server")]
use std::time::{Duration, Instant, SystemTime};

#[cfg(feature = "server")]
use crate::state::CmpStore;
#[cfg(feature = "server")]
use pkiplane_core::clock::SharedClock;
#[cfg(feature = "server")]
use pkiplane_core::issuer::IssuerInfo;
#[cfg(feature = "server")]
use pkiplane_core::model::ObjectRef;
#[cfg(feature = "server")]
use pkiplane_core::service::Authority;

#[cfg(feature = "server")]
pub use credential::{CmpCredential, CredentialError};
#[cfg(feature = "server")]
pub use error::CmpError;
#[cfg(feature = "server")]
pub use http::router;
pub use settings::{CmpSettings, ExposedProfile, SharedSecret};

#[cfg(feature = "server")]
struct Inner {
    config: CmpSettings,
    ca: Arc<dyn Authority>,
    store: Arc<dyn CmpStore>,
    credentials: RwLock<HashMap<ObjectRef, Arc<CmpCredential>>>,
    /// Issuer -> (when made, CRL DER), so genm for CRLs does not mint a CRL each time.
    crls: Mutex<HashMap<ObjectRef, (Instant, Vec<u8>)>>,
    /// What messageTime, transaction deadlines and nonce expiry are compared with.
    clock: SharedClock,
    /// When [`CmpState::maintain`] last purged (at the state's clock).
    last_purge: Mutex<Option<SystemTime>>,
}

#[cfg(feature = "server")]
/// What every request handler shares. Cheap to clone.
#[derive(Clone)]
pub struct CmpState {
    inner: Arc<Inner>,
}

#[cfg(feature = "server")]
/// How long a CRL handed out by genm is reused.
const CRL_REUSE: Duration = Duration::from_secs(60);

#[cfg(feature = "server")]
/// The least time between two purges. Expired transactions are swept every round (their
/// certificates must be revoked promptly); purging what is kept for a day need not be,
/// and a purge covers every endpoint of the store, so with many endpoint pods sharing
/// the CA service's store a purge every round would be that many calls for nothing.
const PURGE_EVERY: Duration = Duration::from_secs(600);

#[cfg(feature = "server")]
impl CmpState {
    /// A state with the given protection credentials (one per Issuer of the exposed
    /// profiles; see [`CmpState::start`] to have them issued).
    pub fn new(
        config: CmpSettings,
        ca: Arc<dyn Authority>,
        store: Arc<dyn CmpStore>,
        credentials: Vec<CmpCredential>,
    ) -> Self {
        let credentials = credentials.into_iter().map(|c| (c.issuer.clone(), Arc::new(c))).collect();
        Self {
            inner: Arc::new(Inner {
                config,
                ca,
                store,
                credentials: RwLock::new(credentials),
                crls: Mutex::new(HashMap::new()),
                clock: pkiplane_core::clock::system(),
                last_purge: Mutex::new(None),
            }),
        }
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

    /// Issues a CMP protection certificate from every Issuer behind the exposed
    /// profiles (through the CA core, so they are in the inventory) and builds the state.
    pub async fn start(
        config: CmpSettings,
        ca: Arc<dyn Authority>,
        store: Arc<dyn CmpStore>,
    ) -> Result<Self, CredentialError> {
        let mut creds = Vec::new();
        let mut seen = Vec::new();
        for p in &config.profiles {
            let Some(profile) = ca.profile(&p.profile) else { continue };
            if seen.contains(&profile.issuer) {
                continue;
            }
            seen.push(profile.issuer.clone());
            creds.push(
                CmpCredential::issue(ca.as_ref(), &config.endpoint, &profile.issuer, config.signer_lifetime).await?,
            );
        }
        Ok(Self::new(config, ca, store, creds))
    }

    pub fn config(&self) -> &CmpSettings {
        &self.inner.config
    }

    pub fn ca(&self) -> &Arc<dyn Authority> {
        &self.inner.ca
    }

    pub fn store(&self) -> &Arc<dyn CmpStore> {
        &self.inner.store
    }

    /// The protection credential of `issuer`, else any (for messages about no profile).
    pub fn credential(&self, issuer: Option<&ObjectRef>) -> Option<Arc<CmpCredential>> {
        let creds = self.inner.credentials.read().unwrap_or_else(|e| e.into_inner());
        issuer.and_then(|i| creds.get(i).cloned()).or_else(|| {
            let mut all: Vec<_> = creds.values().cloned().collect();
            all.sort_by(|a, b| a.issuer.cmp(&b.issuer));
            all.into_iter().next()
        })
    }

    /// Replaces (or adds) the credential of its issuer.
    pub fn put_credential(&self, credential: CmpCredential) {
        let mut creds = self.inner.credentials.write().unwrap_or_else(|e| e.into_inner());
        creds.insert(credential.issuer.clone(), Arc::new(credential));
    }

    /// The Issuer signing the profile under `label`.
    pub fn issuer_of(&self, label: &str) -> Option<Arc<IssuerInfo>> {
        let p = self.config().profile(label)?;
        let profile = self.ca().profile(&p.profile)?;
        self.ca().issuer(&profile.issuer)
    }

    /// Issuers whose certificates may sign requests as "ours": those of the exposed
    /// profiles and the trust-anchor Issuers.
    pub fn known_issuers(&self) -> Vec<Arc<IssuerInfo>> {
        let mut out: Vec<Arc<IssuerInfo>> = Vec::new();
        let ids = self
            .config()
            .profiles
            .iter()
            .filter_map(|p| self.ca().profile(&p.profile).map(|p| p.issuer.clone()))
            .chain(self.config().trust_anchor_issuers.iter().cloned());
        for id in ids {
            if let Some(i) = self.ca().issuer(&id)
                && !out.iter().any(|o| o.id == i.id)
            {
                out.push(i);
            }
        }
        out
    }

    /// Trust anchors (DER) for certificates pkiplane did not issue: the configured CA
    /// certificates and the certificates of the trust-anchor Issuers and their chains.
    pub fn trust_anchor_certs(&self) -> Vec<Vec<u8>> {
        let mut out = self.config().trust_anchor_certs.clone();
        for id in &self.config().trust_anchor_issuers {
            if let Some(i) = self.ca().issuer(id) {
                out.push(i.cert.der.clone());
                out.extend(i.chain.iter().map(|c| c.der.clone()));
            }
        }
        out
    }

    /// A current CRL of `issuer`, reused for a minute.
    pub async fn crl(&self, issuer: &ObjectRef) -> Result<Vec<u8>, pkiplane_core::CoreError> {
        if let Some((at, der)) = self.inner.crls.lock().unwrap_or_else(|e| e.into_inner()).get(issuer)
            && at.elapsed() < CRL_REUSE
        {
            return Ok(der.clone());
        }
        let der = self.ca().generate_crl(issuer).await?;
        self.inner.crls.lock().unwrap_or_else(|e| e.into_inner()).insert(issuer.clone(), (Instant::now(), der.clone()));
        Ok(der)
    }

    /// True (and the time noted) when no purge ran in the last [`PURGE_EVERY`]; a clock
    /// set back also purges.
    fn purge_due(&self, now: SystemTime) -> bool {
        let mut last = self.inner.last_purge.lock().unwrap_or_else(|e| e.into_inner());
        let due = last.is_none_or(|t| now.duration_since(t).map_or(true, |d| d >= PURGE_EVERY));
        if due {
            *last = Some(now);
        }
        due
    }

    /// Forgets cached CRLs (after a revocation).
    pub fn invalidate_crls(&self) {
        self.inner.crls.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// One round of housekeeping: revokes certificates whose certConf did not come in
    /// time, purges old transactions and nonces (at most every [`PURGE_EVERY`]), renews
    /// protection certificates in their last third.
    pub async fn maintain(&self, now: SystemTime) {
        confirm::sweep_expired(self, now).await;
        if self.purge_due(now)
            && let Err(e) = self.store().purge(now, self.config().retention).await
        {
            tracing::warn!(error = %e, "purging CMP transactions failed");
        }
        let due: Vec<ObjectRef> = {
            let creds = self.inner.credentials.read().unwrap_or_else(|e| e.into_inner());
            creds.values().filter(|c| c.needs_renewal(now)).map(|c| c.issuer.clone()).collect()
        };
        for issuer in due {
            match CmpCredential::issue(
                self.ca().as_ref(),
                &self.config().endpoint,
                &issuer,
                self.config().signer_lifetime,
            )
            .await
            {
                Ok(c) => self.put_credential(c),
                Err(e) => {
                    tracing::warn!(error = %e, issuer = %issuer, "renewing the CMP protection certificate failed")
                }
            }
        }
    }
}

#[cfg(feature = "server")]
/// [`CmpState::maintain`] at the state's clock, every 30 seconds: shorter than any
/// confirmWaitTime, so unconfirmed certificates are revoked promptly.
#[async_trait::async_trait]
impl pkiplane_core::maintenance::Maintenance for CmpState {
    fn every(&self) -> Duration {
        Duration::from_secs(30)
    }

    async fn maintain(&self) {
        CmpState::maintain(self, self.now()).await;
    }
}
