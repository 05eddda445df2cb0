//! The first step of every ACME POST as one axum extractor: read the bounded body and
//! verify its JWS for the URL the request was sent to (RFC 8555 section 6.2 to 6.5), with
//! the key rule of the resource as a type parameter.

use std::marker::PhantomData;
use std::ops::Deref;

use axum::extract::{FromRequest, Request};

use crate::AcmeState;
use crate::jws::{self, KeyRule, Verified};
use crate::problem::AcmeError;
use crate::respond;

/// How a resource wants the signing key named; a type, so that a handler's signature says it.
pub trait KeyNaming: Send {
    const RULE: KeyRule;
}

/// Signed by an account, named by `kid` (every resource but newAccount and revokeCert).
pub struct ByAccount;
/// Signed by a key carried as `jwk` (newAccount).
pub struct ByKey;
/// Either (revokeCert: by the account or by the certificate's key).
pub struct ByAccountOrKey;

impl KeyNaming for ByAccount {
    const RULE: KeyRule = KeyRule::Kid;
}
impl KeyNaming for ByKey {
    const RULE: KeyRule = KeyRule::Jwk;
}
impl KeyNaming for ByAccountOrKey {
    const RULE: KeyRule = KeyRule::Either;
}

/// A verified request and the URL it was verified for.
pub struct Signed<K: KeyNaming> {
    pub verified: Verified,
    /// The absolute URL of the resource (the endpoint's base URL and the request path),
    /// which the JWS `url` header matched.
    pub url: String,
    naming: PhantomData<K>,
}

impl<K: KeyNaming> Deref for Signed<K> {
    type Target = Verified;

    fn deref(&self) -> &Verified {
        &self.verified
    }
}

impl<K: KeyNaming> FromRequest<AcmeState> for Signed<K> {
    type Rejection = AcmeError;

    async fn from_request(req: Request, state: &AcmeState) -> Result<Self, AcmeError> {
        let (parts, body) = req.into_parts();
        let body = respond::read_body(body).await?;
        let url = state.url(parts.uri.path());
        let verified = jws::verify_request(state, &parts.headers, &body, &url, K::RULE).await?;
        Ok(Self { verified, url, naming: PhantomData })
    }
}
