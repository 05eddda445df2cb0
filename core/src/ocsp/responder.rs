//! The OCSP responder of pkiplane's Issuers: from request DER to signed response DER.
//!
//! One request is answered by one CA key (RFC 6960 section 4.2.2.2: the CA that issued
//! the certificate, or its delegate): every CertID must name the same key of the Issuer,
//! current or retired. A CertID naming another CA, or hashed with an algorithm this
//! responder does not support, gets `unauthorized` (RFC 5019 section 2.2.3: the
//! responder cannot answer authoritatively); bad DER or a bad nonce `malformedRequest`;
//! an inventory that cannot be read `tryLater`.
//!
//! Answers to requests without a nonce are kept for a short window ([`CACHE_WINDOW`]) and
//! served again while the certificate's status is unchanged, so a responder under load
//! signs once per certificate and window instead of once per request; the status is read
//! from the inventory on every request, so a revocation shows at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use der::Encode;

use super::build::{ResponseInput, build_response};
use super::delegate::{Delegate, key_hash};
use super::request::{CertId, CertIdHash, ParsedRequest, parse_request};
use super::response::{OcspResponseStatus, error_response};
use super::status::{Status, names_ca, status_of};
use crate::clock::SharedClock;
use crate::inventory::CaMaterialStore;
use crate::issuance::Ca;
use crate::issuer::CaKey;
use crate::model::ObjectRef;

/// Largest request read (a plain request is about 100 octets; a signed one with a
/// certificate a few kilobytes).
pub const MAX_REQUEST_LEN: usize = 8 * 1024;
/// Most certificates answered in one request (RFC 5019 clients ask for one).
pub const MAX_CERTS_PER_REQUEST: usize = 8;
/// How long a signed answer without a nonce is served again, at most.
pub const CACHE_WINDOW: Duration = Duration::from_secs(300);
/// Most answers kept.
const CACHE_CAPACITY: usize = 10_000;

/// Who signs the answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ResponderSigning {
    /// A delegated responder certificate per CA key (the default: the CA key signs only
    /// those certificates, every 20 days, not every answer).
    #[default]
    Delegated,
    /// The CA key itself.
    Ca,
}

impl std::str::FromStr for ResponderSigning {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "delegated" => Ok(Self::Delegated),
            "ca" => Ok(Self::Ca),
            other => Err(format!("`{other}`: expected `delegated` or `ca`")),
        }
    }
}

/// A response and what the HTTP edge needs to know about it.
#[derive(Clone, Debug)]
pub struct OcspAnswer {
    /// `OCSPResponse` DER.
    pub der: Vec<u8>,
    pub status: OcspResponseStatus,
    /// thisUpdate and nextUpdate of a successful answer.
    pub this_update: Option<SystemTime>,
    pub next_update: Option<SystemTime>,
    /// The answer echoes a nonce: it belongs to one request and must not be cached.
    pub has_nonce: bool,
    /// Why the answer is not `successful` (for the log; OCSP has no place for it).
    pub reason: Option<String>,
}

impl OcspAnswer {
    fn error(status: OcspResponseStatus, reason: impl Into<String>) -> Self {
        Self {
            der: error_response(status),
            status,
            this_update: None,
            next_update: None,
            has_nonce: false,
            reason: Some(reason.into()),
        }
    }

    /// Whether an HTTP cache may keep the answer (RFC 5019 section 6).
    pub fn cacheable(&self) -> bool {
        self.status == OcspResponseStatus::Successful && !self.has_nonce
    }
}

/// The key that signs an answer.
enum ResponseSigner {
    Delegate(Arc<Delegate>),
    Ca(CaKey),
}

impl ResponseSigner {
    /// Tells answers of different signers apart in the cache (a renewed delegate).
    fn identity(&self) -> &str {
        match self {
            ResponseSigner::Delegate(d) => &d.cert.serial_hex,
            ResponseSigner::Ca(k) => &k.cert().serial_hex,
        }
    }
}

/// The delegated responders in memory, by Issuer and CA key id.
type Delegates = HashMap<(ObjectRef, Vec<u8>), Arc<Delegate>>;

struct Cached {
    der: Vec<u8>,
    status: Status,
    signer: String,
    made: SystemTime,
    this_update: SystemTime,
    next_update: SystemTime,
}

/// The OCSP responder of every Issuer of a [`Ca`].
pub struct OcspResponder {
    ca: Arc<Ca>,
    materials: Arc<dyn CaMaterialStore>,
    clock: SharedClock,
    signing: ResponderSigning,
    delegates: RwLock<Delegates>,
    cache: Mutex<HashMap<Vec<u8>, Cached>>,
}

impl OcspResponder {
    pub fn new(
        ca: Arc<Ca>,
        materials: Arc<dyn CaMaterialStore>,
        clock: SharedClock,
        signing: ResponderSigning,
    ) -> Self {
        Self { ca, materials, clock, signing, delegates: RwLock::default(), cache: Mutex::default() }
    }

    /// Answers `request` (OCSPRequest DER) for the keys of `issuer`.
    pub async fn respond(&self, issuer: &ObjectRef, request: &[u8]) -> OcspAnswer {
        if request.len() > MAX_REQUEST_LEN {
            return OcspAnswer::error(
                OcspResponseStatus::MalformedRequest,
                format!("request of {} octets; at most {MAX_REQUEST_LEN} are read", request.len()),
            );
        }
        let parsed = match parse_request(request, MAX_CERTS_PER_REQUEST) {
            Ok(p) => p,
            Err(e) => return OcspAnswer::error(OcspResponseStatus::MalformedRequest, e.to_string()),
        };
        let key = match self.key_named(issuer, &parsed.cert_ids) {
            Ok(k) => k,
            Err(why) => return OcspAnswer::error(OcspResponseStatus::Unauthorized, why),
        };
        let now = self.clock.now();
        let mut statuses = Vec::with_capacity(parsed.cert_ids.len());
        for id in &parsed.cert_ids {
            let record = match id.serial_hex() {
                Some(serial) => match self.ca.inventory().get(issuer, &serial).await {
                    Ok(r) => r,
                    Err(e) => return OcspAnswer::error(OcspResponseStatus::TryLater, format!("inventory: {e}")),
                },
                None => None,
            };
            statuses.push((id.clone(), status_of(record.as_ref(), key.key_id())));
        }
        let signer = match self.signer(issuer, &key, now).await {
            Ok(s) => s,
            Err(e) => return OcspAnswer::error(OcspResponseStatus::InternalError, e),
        };
        self.answer(issuer, &parsed, &statuses, &signer, now)
    }

    /// The one key of `issuer` every CertID names.
    fn key_named(&self, issuer: &ObjectRef, ids: &[CertId]) -> Result<CaKey, String> {
        let keys = self.ca.keys(issuer);
        let mut named: Option<CaKey> = None;
        for id in ids {
            let hash = CertIdHash::from_algorithm(&id.hash_algorithm).ok_or_else(|| {
                format!(
                    "CertID hash algorithm {} is not supported (SHA-1, SHA-256, SHA-384, SHA-512 are)",
                    id.hash_algorithm.oid
                )
            })?;
            let key = keys.iter().find(|k| names_ca(id, hash, k.cert())).ok_or_else(|| {
                format!("the CertID names a CA this responder does not answer for at Issuer {issuer}")
            })?;
            match &named {
                Some(k) if k.key_id() != key.key_id() => {
                    return Err("the CertIDs name different CA keys; ask for each separately".into());
                }
                Some(_) => {}
                None => named = Some(key.clone()),
            }
        }
        named.ok_or_else(|| "no CertID".into())
    }

    async fn signer(&self, issuer: &ObjectRef, key: &CaKey, now: SystemTime) -> Result<ResponseSigner, String> {
        match self.signing {
            ResponderSigning::Ca => Ok(ResponseSigner::Ca(key.clone())),
            ResponderSigning::Delegated => self.delegate(issuer, key, now).await.map(ResponseSigner::Delegate),
        }
    }

    /// The delegated responder of `key`: the one in memory while it is not due for
    /// renewal, else the persisted one, else a new one (persisted before use).
    pub async fn delegate(&self, issuer: &ObjectRef, key: &CaKey, now: SystemTime) -> Result<Arc<Delegate>, String> {
        let map_key = (issuer.clone(), key.key_id().to_vec());
        let known = self.delegates.read().unwrap_or_else(|e| e.into_inner()).get(&map_key).cloned();
        if let Some(d) = known.filter(|d| !d.renewal_due(key, now)) {
            return Ok(d);
        }
        let stored = self.materials.load_ocsp_responder(issuer, key.key_id()).await.map_err(|e| e.to_string())?;
        let loaded = stored.and_then(|s| Delegate::load(&s, key).ok()).filter(|d| !d.renewal_due(key, now));
        let delegate = match loaded {
            Some(d) => d,
            None => {
                let (d, stored) = Delegate::issue(key, now).map_err(|e| e.to_string())?;
                self.materials.save_ocsp_responder(issuer, &stored).await.map_err(|e| e.to_string())?;
                tracing::info!(
                    target: crate::audit::TARGET,
                    decision = "ocsp-responder-issued",
                    issuer = %issuer,
                    ca_key_id = %hex::encode(key.key_id()),
                    serial = %d.cert.serial_hex,
                    not_after = %crate::audit::rfc3339(d.cert.not_after),
                    "delegated OCSP responder certificate issued"
                );
                d
            }
        };
        let delegate = Arc::new(delegate);
        self.delegates.write().unwrap_or_else(|e| e.into_inner()).insert(map_key, delegate.clone());
        Ok(delegate)
    }

    /// Makes (or renews) the delegated responder of every key of every Issuer, and forgets
    /// those of keys no longer served. Run at start and periodically, so that requests
    /// rarely wait for a key to be made.
    pub async fn prepare(&self) -> Result<usize, String> {
        let now = self.clock.now();
        let mut live = Vec::new();
        for issuer in self.ca.issuers() {
            for key in self.ca.keys(&issuer.id) {
                if self.signing == ResponderSigning::Delegated {
                    self.delegate(&issuer.id, &key, now).await?;
                }
                live.push((issuer.id.clone(), key.key_id().to_vec()));
            }
        }
        let mut delegates = self.delegates.write().unwrap_or_else(|e| e.into_inner());
        let before = delegates.len();
        delegates.retain(|k, _| live.contains(k));
        if delegates.len() != before {
            self.cache.lock().unwrap_or_else(|e| e.into_inner()).clear();
        }
        Ok(live.len())
    }

    /// The signed answer: from the cache when one for the same CertID, status and signer
    /// is recent enough, else freshly signed (and cached when it has no nonce).
    fn answer(
        &self,
        issuer: &ObjectRef,
        parsed: &ParsedRequest,
        statuses: &[(CertId, Status)],
        signer: &ResponseSigner,
        now: SystemTime,
    ) -> OcspAnswer {
        let validity = self.ca.issuer(issuer).map(|i| i.crl_validity).unwrap_or(CACHE_WINDOW);
        let window = CACHE_WINDOW.min(validity / 4);
        let cache_key = match (&parsed.nonce, statuses) {
            (None, [(id, _)]) => id.to_der().ok(),
            _ => None,
        };
        if let (Some(k), [(_, status)]) = (&cache_key, statuses) {
            let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(c) = cache.get(k)
                && c.status == *status
                && c.signer == signer.identity()
                && now >= c.made
                && now < c.made + window
            {
                return OcspAnswer {
                    der: c.der.clone(),
                    status: OcspResponseStatus::Successful,
                    this_update: Some(c.this_update),
                    next_update: Some(c.next_update),
                    has_nonce: false,
                    reason: None,
                };
            }
        }
        let this_update = crate::inventory::unix_seconds::from_secs(crate::inventory::unix_seconds::to_secs(now));
        let next_update = this_update + validity;
        let (signing_key, key_hash_value, certs) = match signer {
            ResponseSigner::Delegate(d) => (d.signer(), d.key_hash.clone(), vec![d.certificate.clone()]),
            ResponseSigner::Ca(k) => (k.signer(), key_hash(k.cert().spki.subject_public_key.raw_bytes()), vec![]),
        };
        let input = ResponseInput {
            signer: signing_key,
            responder_key_hash: &key_hash_value,
            certs: &certs,
            produced_at: now,
            this_update,
            next_update,
            statuses,
            nonce: parsed.nonce.as_ref(),
        };
        let der = match build_response(&input) {
            Ok(der) => der,
            Err(e) => return OcspAnswer::error(OcspResponseStatus::InternalError, format!("signing: {e}")),
        };
        if let (Some(k), [(_, status)]) = (cache_key, statuses) {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if cache.len() >= CACHE_CAPACITY {
                cache.retain(|_, c| now < c.made + window);
                if cache.len() >= CACHE_CAPACITY {
                    cache.clear();
                }
            }
            let entry = Cached {
                der: der.clone(),
                status: *status,
                signer: signer.identity().to_string(),
                made: now,
                this_update,
                next_update,
            };
            cache.insert(k, entry);
        }
        OcspAnswer {
            der,
            status: OcspResponseStatus::Successful,
            this_update: Some(this_update),
            next_update: Some(next_update),
            has_nonce: parsed.nonce.is_some(),
            reason: None,
        }
    }
}
