//! Anti-replay nonces (RFC 8555 section 6.5, 7.2).
//!
//! Nonces are 128 random bits, recorded in the shared store with an expiry, so any
//! replica accepts a nonce another handed out; each is consumed by an atomic delete, so
//! it is accepted once. Every response carries a fresh one in `Replay-Nonce`.

use std::time::SystemTime;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ring::rand::{SecureRandom, SystemRandom};

use crate::AcmeState;
use crate::jwk::b64;
use crate::paths;

pub const REPLAY_NONCE: &str = "replay-nonce";

/// 128 random bits, base64url: nonces and resource ids alike.
pub fn random_id() -> String {
    let mut bytes = [0u8; 16];
    if SystemRandom::new().fill(&mut bytes).is_err() {
        // The OS RNG failing is unrecoverable; guessable ids or nonces are worse.
        std::process::abort();
    }
    b64(&bytes)
}

/// Records and returns a fresh nonce; None (logged) when the store refuses.
pub async fn issue(state: &AcmeState) -> Option<String> {
    let nonce = random_id();
    match state.store.add_nonce(&nonce, SystemTime::now() + state.config.nonce_lifetime).await {
        Ok(()) => Some(nonce),
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
