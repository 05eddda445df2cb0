//! Anti-replay nonces (RFC 8555 section 6.5, 7.2).
//!
//! Every response carries a fresh nonce in `Replay-Nonce`; a signed request must carry
//! one the server handed out, and each is accepted once. Two books keep them:
//!
//! * [`SharedNonces`]: each nonce is recorded in the endpoint's [`AcmeStore`] with an
//!   expiry and consumed by an atomic delete, so any replica of the endpoint accepts a
//!   nonce another handed out. Two store writes per request.
//! * [`LocalNonces`]: for an endpoint that one process serves alone (`pkiplane serve`).
//!   A nonce is a counter and its issue time, authenticated with a key only this process
//!   holds; redeeming one records its counter in memory. Handing out a nonce writes
//!   nothing, and nothing is ever written to disk: a restart draws a new key, so every
//!   nonce of an earlier process is refused (clients retry `badNonce` with the fresh nonce
//!   the refusal carries), which is what makes keeping the used set in memory safe.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use pkiplane_core::inventory::StoreError;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

use crate::AcmeState;
use crate::jwk::b64;
use crate::paths;
use crate::state::AcmeStore;

pub const REPLAY_NONCE: &str = "replay-nonce";

/// 128 random bits, base64url: nonces of the shared book and resource ids alike.
pub fn random_id() -> String {
    let mut bytes = [0u8; 16];
    fill_random(&mut bytes);
    b64(&bytes)
}

fn fill_random(bytes: &mut [u8]) {
    if SystemRandom::new().fill(bytes).is_err() {
        // The OS RNG failing is unrecoverable; guessable ids, nonces or keys are worse.
        std::process::abort();
    }
}

/// Hands out nonces and redeems them once.
#[async_trait::async_trait]
pub trait NonceBook: Send + Sync {
    /// A fresh nonce, valid until `now + lifetime`.
    async fn issue(&self, now: SystemTime) -> Result<String, StoreError>;
    /// True when `nonce` was handed out by this book, has not expired at `now` and was
    /// not redeemed before; it is then used up.
    async fn redeem(&self, nonce: &str, now: SystemTime) -> Result<bool, StoreError>;
}

/// Nonces in the endpoint's shared store (any replica redeems any nonce).
pub struct SharedNonces {
    store: std::sync::Arc<dyn AcmeStore>,
    lifetime: Duration,
}

impl SharedNonces {
    pub fn new(store: std::sync::Arc<dyn AcmeStore>, lifetime: Duration) -> Self {
        Self { store, lifetime }
    }
}

#[async_trait::async_trait]
impl NonceBook for SharedNonces {
    async fn issue(&self, now: SystemTime) -> Result<String, StoreError> {
        let nonce = random_id();
        self.store.add_nonce(&nonce, now + self.lifetime).await?;
        Ok(nonce)
    }

    async fn redeem(&self, nonce: &str, now: SystemTime) -> Result<bool, StoreError> {
        self.store.take_nonce(nonce, now).await
    }
}

/// Counter (8 bytes) + issue time in seconds (8 bytes) + a 128-bit HMAC-SHA256 tag.
const LOCAL_NONCE_LEN: usize = 8 + 8 + 16;

/// Nonces of one process: nothing stored to hand one out, the redeemed counters in
/// memory. Memory stays bounded whatever clients do: unredeemed nonces take none, and
/// of the redeemed ones only those within the lifetime are kept, at most `max_used`;
/// beyond that the oldest are forgotten and everything up to them refused.
pub struct LocalNonces {
    key: hmac::Key,
    next: AtomicU64,
    lifetime: Duration,
    used: Mutex<UsedCounters>,
}

struct UsedCounters {
    /// Redeemed counter -> its issue time (seconds).
    redeemed: BTreeMap<u64, u64>,
    /// Every counter at or below this is refused.
    floor: u64,
    max_used: usize,
}

impl LocalNonces {
    /// Redeemed nonces remembered at most (about 2.5 MB): at 1,000 requests a second this
    /// covers 65 s of traffic; older nonces are then refused instead of remembered.
    pub const DEFAULT_MAX_USED: usize = 65_536;

    pub fn new(lifetime: Duration) -> Self {
        Self::with_max_used(lifetime, Self::DEFAULT_MAX_USED)
    }

    pub fn with_max_used(lifetime: Duration, max_used: usize) -> Self {
        let mut secret = [0u8; 32];
        fill_random(&mut secret);
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, &secret),
            next: AtomicU64::new(1),
            lifetime,
            used: Mutex::new(UsedCounters { redeemed: BTreeMap::new(), floor: 0, max_used: max_used.max(1) }),
        }
    }

    fn tag(&self, body: &[u8]) -> [u8; 16] {
        let full = hmac::sign(&self.key, body);
        let mut tag = [0u8; 16];
        tag.copy_from_slice(&full.as_ref()[..16]);
        tag
    }

    /// The counter and issue time of a nonce this process made, else None.
    fn open(&self, nonce: &str) -> Option<(u64, u64)> {
        let bytes = URL_SAFE_NO_PAD.decode(nonce).ok()?;
        if bytes.len() != LOCAL_NONCE_LEN {
            return None;
        }
        let (body, tag) = bytes.split_at(16);
        // Constant time: the tag comparison must not tell a forger how much was right.
        if !bool::from(subtle::ConstantTimeEq::ct_eq(&self.tag(body)[..], tag)) {
            return None;
        }
        let counter = u64::from_be_bytes(body[..8].try_into().ok()?);
        let issued = u64::from_be_bytes(body[8..16].try_into().ok()?);
        Some((counter, issued))
    }
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

#[async_trait::async_trait]
impl NonceBook for LocalNonces {
    async fn issue(&self, now: SystemTime) -> Result<String, StoreError> {
        let counter = self.next.fetch_add(1, Ordering::Relaxed);
        let mut bytes = [0u8; LOCAL_NONCE_LEN];
        bytes[..8].copy_from_slice(&counter.to_be_bytes());
        bytes[8..16].copy_from_slice(&unix_secs(now).to_be_bytes());
        let tag = self.tag(&bytes[..16]);
        bytes[16..].copy_from_slice(&tag);
        Ok(b64(&bytes))
    }

    async fn redeem(&self, nonce: &str, now: SystemTime) -> Result<bool, StoreError> {
        let Some((counter, issued)) = self.open(nonce) else { return Ok(false) };
        let now = unix_secs(now);
        let expired = |issued: u64| issued.saturating_add(self.lifetime.as_secs()) <= now;
        if expired(issued) {
            return Ok(false);
        }
        let mut used = self.used.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if counter <= used.floor || used.redeemed.contains_key(&counter) {
            return Ok(false);
        }
        used.redeemed.insert(counter, issued);
        // Expired entries need no memory: their nonces are refused by time already.
        while let Some((&oldest, &at)) = used.redeemed.first_key_value() {
            if !expired(at) && used.redeemed.len() <= used.max_used {
                break;
            }
            used.redeemed.remove(&oldest);
            if !expired(at) {
                used.floor = used.floor.max(oldest);
            }
        }
        Ok(true)
    }
}

/// Records and returns a fresh nonce; None (logged) when the book refuses.
pub async fn issue(state: &AcmeState) -> Option<String> {
    match state.nonces.issue(SystemTime::now()).await {
        Ok(nonce) => Some(nonce),
        Err(e) => {
            tracing::warn!(error = %e, "could not record a nonce; the response goes without one");
            None
        }
    }
}

/// newNonce: HEAD answers 200, GET 204 (RFC 8555 section 7.2); the nonce itself is added
/// by [`replay_nonce_layer`].
pub async fn new_nonce(method: Method) -> Response {
    let status = if method == Method::HEAD { StatusCode::OK } else { StatusCode::NO_CONTENT };
    let mut rsp = status.into_response();
    rsp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    rsp
}

/// Adds `Replay-Nonce` and the directory `Link` to every response.
pub async fn replay_nonce_layer(State(state): State<AcmeState>, req: Request, next: Next) -> Response {
    let mut rsp = next.run(req).await;
    if let Some(nonce) = issue(&state).await
        && let Ok(v) = HeaderValue::from_str(&nonce)
    {
        rsp.headers_mut().insert(REPLAY_NONCE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("<{}>;rel=\"index\"", state.url(paths::DIRECTORY))) {
        rsp.headers_mut().append(header::LINK, v);
    }
    rsp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
    }

    fn block<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
    }

    #[test]
    fn a_local_nonce_is_redeemed_once_and_only_by_its_process() {
        let book = LocalNonces::new(Duration::from_secs(60));
        let n = block(book.issue(at(0))).unwrap();
        assert!(block(book.redeem(&n, at(1))).unwrap());
        assert!(!block(book.redeem(&n, at(2))).unwrap(), "a replay is refused");
        // Another process (a restart) has another key: it refuses this process's nonces.
        let other = LocalNonces::new(Duration::from_secs(60));
        let m = block(book.issue(at(0))).unwrap();
        assert!(!block(other.redeem(&m, at(1))).unwrap());
        assert!(block(book.redeem(&m, at(1))).unwrap());
    }

    #[test]
    fn expired_forged_and_malformed_local_nonces_are_refused() {
        let book = LocalNonces::new(Duration::from_secs(60));
        let n = block(book.issue(at(0))).unwrap();
        assert!(!block(book.redeem(&n, at(60))).unwrap(), "expired at issue + lifetime");
        let fresh = block(book.issue(at(100))).unwrap();
        let mut bytes = URL_SAFE_NO_PAD.decode(&fresh).unwrap();
        bytes[7] ^= 1; // another counter under the same tag
        assert!(!block(book.redeem(&b64(&bytes), at(101))).unwrap());
        bytes[7] ^= 1;
        bytes[15] = bytes[15].wrapping_add(100); // a later issue time under the same tag
        assert!(!block(book.redeem(&b64(&bytes), at(101))).unwrap());
        for junk in ["", "not base64!", &b64(&[0u8; 8]), &b64(&[0u8; LOCAL_NONCE_LEN])] {
            assert!(!block(book.redeem(junk, at(101))).unwrap(), "{junk:?}");
        }
        assert!(block(book.redeem(&fresh, at(101))).unwrap(), "the untouched nonce still works");
    }

    #[test]
    fn the_used_set_stays_bounded_and_refuses_what_it_forgot() {
        let book = LocalNonces::with_max_used(Duration::from_secs(60), 3);
        let nonces: Vec<String> = (0..5).map(|_| block(book.issue(at(0))).unwrap()).collect();
        // Redeemed out of order: 2, 3, 4, 5 (counters); the fourth pushes the oldest out.
        for n in &nonces[1..] {
            assert!(block(book.redeem(n, at(1))).unwrap());
        }
        let used = book.used.lock().unwrap();
        assert_eq!(used.redeemed.len(), 3);
        assert_eq!(used.floor, 2, "the forgotten counter becomes the floor");
        drop(used);
        // Counter 1 was never redeemed, but it is below the floor now: refused, never
        // accepted twice by forgetting.
        assert!(!block(book.redeem(&nonces[0], at(1))).unwrap());
        for n in &nonces {
            assert!(!block(book.redeem(n, at(2))).unwrap());
        }
    }

    #[test]
    fn expired_redemptions_are_forgotten_without_raising_the_floor() {
        let book = LocalNonces::with_max_used(Duration::from_secs(60), 100);
        let old = block(book.issue(at(0))).unwrap();
        assert!(block(book.redeem(&old, at(1))).unwrap());
        let new = block(book.issue(at(70))).unwrap();
        assert!(block(book.redeem(&new, at(71))).unwrap());
        let used = book.used.lock().unwrap();
        assert_eq!(used.redeemed.len(), 1, "the expired redemption is dropped");
        assert_eq!(used.floor, 0);
        drop(used);
        assert!(!block(book.redeem(&old, at(71))).unwrap(), "and stays refused by time");
    }
}
