//! Request authentication: JWS in flattened JSON serialization (RFC 7515 section 7.2.2)
//! as RFC 8555 section 6.2 constrains it.
//!
//! Every POST carries a JWS whose protected header has `alg`, `nonce`, `url` and exactly
//! one of `jwk` (newAccount, revokeCert by certificate key) or `kid` (the account URL,
//! everywhere else). The `url` must be the URL the request was sent to (section 6.4), the
//! nonce one this server handed out and not yet used (section 6.5), the signature by the
//! named key, and no unprotected header is allowed. An empty payload is POST-as-GET
//! (section 6.3).

use crate::state::{Account, AccountStatus};
use axum::http::{HeaderMap, header};
use serde::Deserialize;
use serde_json::Value;

use crate::AcmeState;
use crate::jwk::{ALGORITHMS, Jwk, b64_decode};
use crate::problem::{AcmeError, ProblemType};

/// Largest request body accepted (JWS with a CSR of a 4096-bit RSA key fits easily).
pub const MAX_BODY: usize = 64 * 1024;

/// The JWS fields of the flattened serialization; anything else (an unprotected
/// `header`, the general serialization's `signatures`) is refused.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Flattened {
    protected: String,
    payload: String,
    signature: String,
}

/// The protected header parameters ACME uses.
#[derive(Clone, Debug, Deserialize)]
pub struct Protected {
    pub alg: String,
    #[serde(default)]
    pub nonce: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub jwk: Option<Value>,
    #[serde(default)]
    pub kid: Option<String>,
    #[serde(default)]
    pub crit: Option<Value>,
    #[serde(default)]
    pub b64: Option<Value>,
}

/// A parsed, not yet verified JWS.
pub struct Jws {
    pub header: Protected,
    signing_input: Vec<u8>,
    signature: Vec<u8>,
    pub payload: Vec<u8>,
    /// The payload is the empty string: POST-as-GET.
    pub empty_payload: bool,
}

impl Jws {
    pub fn parse(body: &[u8]) -> Result<Jws, AcmeError> {
        let f: Flattened = serde_json::from_slice(body)
            .map_err(|e| AcmeError::malformed(format!("the request body is not a flattened JWS: {e}")))?;
        Self::from_parts(f)
    }

    pub fn parse_value(v: &Value) -> Result<Jws, AcmeError> {
        let f: Flattened = serde_json::from_value(v.clone())
            .map_err(|e| AcmeError::malformed(format!("the embedded JWS is not a flattened JWS: {e}")))?;
        Self::from_parts(f)
    }

    fn from_parts(f: Flattened) -> Result<Jws, AcmeError> {
        let header_bytes =
            b64_decode(&f.protected).ok_or_else(|| AcmeError::malformed("the protected header is not base64url"))?;
        let header: Protected = serde_json::from_slice(&header_bytes)
            .map_err(|e| AcmeError::malformed(format!("the protected header is not valid: {e}")))?;
        if header.crit.is_some() || header.b64.is_some() {
            return Err(AcmeError::malformed("the protected header uses `crit` or `b64`, which ACME does not allow"));
        }
        let payload = b64_decode(&f.payload).ok_or_else(|| AcmeError::malformed("the payload is not base64url"))?;
        let signature =
            b64_decode(&f.signature).ok_or_else(|| AcmeError::malformed("the signature is not base64url"))?;
        let signing_input = format!("{}.{}", f.protected, f.payload).into_bytes();
        Ok(Jws { header, signing_input, signature, empty_payload: f.payload.is_empty(), payload })
    }

    /// Checks the signature with `key` under the header's algorithm.
    pub fn verify(&self, key: &Jwk) -> Result<(), AcmeError> {
        if !key.matches_alg(&self.header.alg) {
            return Err(AcmeError::new(
                ProblemType::BadSignatureAlgorithm,
                format!("algorithm {} does not fit the key", self.header.alg),
            ));
        }
        if key.verify(&self.header.alg, &self.signing_input, &self.signature) {
            Ok(())
        } else {
            Err(AcmeError::malformed("JWS signature does not verify with the key the request names"))
        }
    }

    /// HMAC verification (external account binding), in constant time.
    pub fn verify_hmac(&self, key: &[u8]) -> Result<(), AcmeError> {
        let alg = match self.header.alg.as_str() {
            "HS256" => ring::hmac::HMAC_SHA256,
            "HS384" => ring::hmac::HMAC_SHA384,
            "HS512" => ring::hmac::HMAC_SHA512,
            other => {
                return Err(AcmeError::malformed(format!(
                    "external account binding must use HS256, HS384 or HS512, not {other}"
                )));
            }
        };
        ring::hmac::verify(&ring::hmac::Key::new(alg, key), &self.signing_input, &self.signature)
            .map_err(|_| AcmeError::unauthorized("external account binding MAC does not verify"))
    }

    /// The payload as the request's typed body (an empty payload is refused).
    /// A field of the wrong type or a missing one is `malformed`, naming the field.
    pub fn payload<T: serde::de::DeserializeOwned>(&self) -> Result<T, AcmeError> {
        let mut de = serde_json::Deserializer::from_slice(&self.payload);
        serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if path == "." {
                AcmeError::malformed(format!("the JWS payload: {inner}"))
            } else {
                AcmeError::malformed(format!("the JWS payload's `{path}`: {inner}"))
            }
        })
    }

    /// The payload as JSON (an empty payload is refused).
    pub fn json(&self) -> Result<Value, AcmeError> {
        serde_json::from_slice(&self.payload)
            .map_err(|e| AcmeError::malformed(format!("the JWS payload is not JSON: {e}")))
    }
}

/// Whether the request must name its key by `jwk`, by `kid`, or may use either.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyRule {
    Jwk,
    Kid,
    Either,
}

/// An authenticated request.
pub struct Verified {
    pub jws: Jws,
    pub key: Jwk,
    /// The account, for `kid` requests.
    pub account: Option<Account>,
}

impl Verified {
    pub fn post_as_get(&self) -> bool {
        self.jws.empty_payload
    }

    /// The account of a `kid` request.
    pub fn account(&self) -> Result<&Account, AcmeError> {
        self.account.as_ref().ok_or_else(|| AcmeError::malformed("this request must be signed by an account (kid)"))
    }

    pub fn json(&self) -> Result<Value, AcmeError> {
        self.jws.json()
    }

    /// The payload as the request's typed body.
    pub fn payload<T: serde::de::DeserializeOwned>(&self) -> Result<T, AcmeError> {
        self.jws.payload()
    }
}

fn check_algorithm(alg: &str) -> Result<(), AcmeError> {
    if ALGORITHMS.contains(&alg) {
        return Ok(());
    }
    let why = match alg {
        "none" => "unsigned requests (alg `none`) are not accepted".to_owned(),
        a if a.starts_with("HS") => format!("MAC algorithm {a} is not accepted for account keys"),
        a => format!("JWS algorithm {a} is not supported"),
    };
    let mut e = AcmeError::new(ProblemType::BadSignatureAlgorithm, why);
    e.algorithms = Some(ALGORITHMS.to_vec());
    Err(e)
}

/// Checks the Content-Type (RFC 8555 section 6.2).
pub fn check_content_type(headers: &HeaderMap) -> Result<(), AcmeError> {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let media = ct.split(';').next().unwrap_or("").trim();
    if media.eq_ignore_ascii_case("application/jose+json") {
        Ok(())
    } else {
        Err(AcmeError::malformed(format!("Content-Type must be application/jose+json, not `{ct}`"))
            .with_status(axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE))
    }
}

/// Authenticates a POST to `url` (RFC 8555 section 6.2-6.5), consuming its nonce.
pub async fn verify_request(
    state: &AcmeState,
    headers: &HeaderMap,
    body: &[u8],
    url: &str,
    rule: KeyRule,
) -> Result<Verified, AcmeError> {
    check_content_type(headers)?;
    let jws = Jws::parse(body)?;
    let h = &jws.header;
    check_algorithm(&h.alg)?;
    match h.url.as_deref() {
        None => return Err(AcmeError::malformed("the protected header has no `url`")),
        Some(u) if u != url => {
            return Err(AcmeError::unauthorized(format!(
                "the JWS `url` ({u}) is not the URL the request was sent to ({url})"
            )));
        }
        Some(_) => {}
    }
    let Some(nonce) = h.nonce.clone() else {
        return Err(AcmeError::new(ProblemType::BadNonce, "the protected header has no `nonce`"));
    };
    let (key, account) = match (&h.jwk, &h.kid) {
        (Some(_), Some(_)) => return Err(AcmeError::malformed("the protected header has both `jwk` and `kid`")),
        (None, None) => return Err(AcmeError::malformed("the protected header has neither `jwk` nor `kid`")),
        (Some(_), None) if rule == KeyRule::Kid => {
            return Err(AcmeError::malformed("this request must name its account by `kid`, not `jwk`"));
        }
        (None, Some(_)) if rule == KeyRule::Jwk => {
            return Err(AcmeError::malformed("this request must carry the key as `jwk`, not `kid`"));
        }
        (Some(jwk), None) => (Jwk::from_value(jwk)?, None),
        (None, Some(kid)) => {
            let account = load_account(state, kid).await?;
            (Jwk::from_json(&account.jwk)?, Some(account))
        }
    };
    jws.verify(&key)?;
    if !state.nonces.redeem(&nonce, std::time::SystemTime::now()).await? {
        return Err(AcmeError::new(ProblemType::BadNonce, "the nonce is unknown, expired or used already"));
    }
    Ok(Verified { jws, key, account })
}

/// The account a `kid` names; it must exist and be valid.
async fn load_account(state: &AcmeState, kid: &str) -> Result<Account, AcmeError> {
    let prefix = state.url("/acct/");
    let id = kid
        .strip_prefix(&prefix)
        .filter(|id| !id.is_empty() && !id.contains('/'))
        .ok_or_else(|| AcmeError::new(ProblemType::AccountDoesNotExist, format!("`{kid}` is not an account URL")))?;
    let cached = match &state.alone {
        Some(alone) => alone.account(id).map_err(Some),
        None => Err(None),
    };
    let account = match cached {
        Ok(account) => account,
        Err(epoch) => {
            let account = state
                .store
                .account(id)
                .await?
                .ok_or_else(|| AcmeError::new(ProblemType::AccountDoesNotExist, format!("no account {kid}")))?;
            if let (Some(alone), Some(epoch)) = (&state.alone, epoch) {
                alone.remember_account(&account, epoch);
            }
            account
        }
    };
    match account.status {
        AccountStatus::Valid => Ok(account),
        AccountStatus::Deactivated => Err(AcmeError::unauthorized(format!("account {kid} is deactivated"))),
        AccountStatus::Revoked => Err(AcmeError::unauthorized(format!("account {kid} is revoked"))),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::SystemTime;

    use crate::state::memory::MemoryAcmeStore;
    use axum::http::HeaderValue;
    use pkiplane_core::inventory::memory::MemoryInventory;
    use pkiplane_core::issuance::Ca;
    use serde_json::json;

    use super::*;
    use crate::settings::AcmeSettings;
    use crate::signer::AccountKey;

    const URL: &str = "https://acme.test/new-order";

    fn state() -> AcmeState {
        let config = AcmeSettings::new(pkiplane_core::ObjectRef::new("pki", "acme"), "https://acme.test", vec![]);
        AcmeState::new(config, Arc::new(Ca::new(Arc::new(MemoryInventory::new()))), Arc::new(MemoryAcmeStore::new()))
    }

    fn headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/jose+json"));
        h
    }

    async fn nonce(s: &AcmeState) -> String {
        crate::nonce::issue(s).await.unwrap()
    }

    async fn check(s: &AcmeState, body: &Value, rule: KeyRule) -> Result<Verified, AcmeError> {
        verify_request(s, &headers(), body.to_string().as_bytes(), URL, rule).await
    }

    async fn account(s: &AcmeState, key: &AccountKey) -> String {
        let jwk = Jwk::from_value(&key.jwk()).unwrap();
        let a = Account {
            id: crate::nonce::random_id(),
            status: AccountStatus::Valid,
            jwk: jwk.canonical_json(),
            thumbprint: jwk.thumbprint(),
            contact: vec![],
            terms_agreed: true,
            eab_kid: None,
            created_at: SystemTime::now(),
            version: 0,
        };
        s.store.create_account(&a, None).await.unwrap();
        s.account_url(&a.id)
    }

    #[tokio::test]
    async fn every_account_key_algorithm_verifies() {
        let s = state();
        let rsa_der = std::process::Command::new("sh")
            .args([
                "-c",
                "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 | openssl pkcs8 -topk8 -nocrypt -outform DER",
            ])
            .output()
            .expect("openssl")
            .stdout;
        let keys = [
            AccountKey::generate_es256(),
            AccountKey::generate_es384(),
            AccountKey::generate_ed25519(),
            AccountKey::rsa_from_pkcs8(&rsa_der).unwrap(),
        ];
        for key in &keys {
            let body = key.jws(json!({"nonce": nonce(&s).await, "url": URL, "jwk": key.jwk()}), Some(&json!({"a": 1})));
            let v = check(&s, &body, KeyRule::Jwk).await.unwrap();
            assert_eq!(v.json().unwrap(), json!({"a": 1}), "{}", key.alg());
            assert!(!v.post_as_get());
            // By kid, POST-as-GET.
            let kid = account(&s, key).await;
            let body = key.jws(json!({"nonce": nonce(&s).await, "url": URL, "kid": kid}), None);
            let v = check(&s, &body, KeyRule::Kid).await.unwrap();
            assert!(v.post_as_get());
            assert_eq!(v.account.unwrap().thumbprint, Jwk::from_value(&key.jwk()).unwrap().thumbprint());
        }
    }

    #[tokio::test]
    async fn refuses_wrong_url_nonce_key_rules_algorithms_and_signers() {
        let s = state();
        let key = AccountKey::generate_es256();
        let kid = account(&s, &key).await;
        let p = json!({});

        let body = key.jws(json!({"nonce": nonce(&s).await, "url": "https://acme.test/other", "kid": kid}), Some(&p));
        let e = check(&s, &body, KeyRule::Kid).await.err().unwrap();
        assert_eq!(e.kind, ProblemType::Unauthorized);

        let n = nonce(&s).await;
        let body = key.jws(json!({"nonce": n, "url": URL, "kid": kid}), Some(&p));
        assert!(check(&s, &body, KeyRule::Kid).await.is_ok());
        let e = check(&s, &body, KeyRule::Kid).await.err().unwrap();
        assert_eq!(e.kind, ProblemType::BadNonce, "replayed nonce");
        let body = key.jws(json!({"nonce": "never-issued", "url": URL, "kid": kid}), Some(&p));
        assert_eq!(check(&s, &body, KeyRule::Kid).await.err().unwrap().kind, ProblemType::BadNonce);

        let body = key.jws(json!({"nonce": nonce(&s).await, "url": URL, "kid": kid, "jwk": key.jwk()}), Some(&p));
        assert_eq!(check(&s, &body, KeyRule::Either).await.err().unwrap().kind, ProblemType::Malformed);
        let body = key.jws(json!({"nonce": nonce(&s).await, "url": URL, "jwk": key.jwk()}), Some(&p));
        assert_eq!(check(&s, &body, KeyRule::Kid).await.err().unwrap().kind, ProblemType::Malformed);

        let mut body = key.jws(json!({"alg": "none", "nonce": nonce(&s).await, "url": URL, "kid": kid}), Some(&p));
        body["signature"] = json!("");
        let e = check(&s, &body, KeyRule::Kid).await.err().unwrap();
        assert_eq!(e.kind, ProblemType::BadSignatureAlgorithm);
        assert!(e.document().algorithms.unwrap().contains(&"EdDSA".to_owned()));

        // Signed by another key than the one the kid names.
        let other = AccountKey::generate_es256();
        let body = other.jws(json!({"nonce": nonce(&s).await, "url": URL, "kid": kid}), Some(&p));
        let e = check(&s, &body, KeyRule::Kid).await.err().unwrap();
        assert_eq!(e.kind, ProblemType::Malformed);
        // A jwk that is not the signer's.
        let body = other.jws(json!({"nonce": nonce(&s).await, "url": URL, "jwk": key.jwk()}), Some(&p));
        assert_eq!(check(&s, &body, KeyRule::Jwk).await.err().unwrap().kind, ProblemType::Malformed);
        // ES384 claimed for a P-256 key.
        let body = key.jws(json!({"alg": "ES384", "nonce": nonce(&s).await, "url": URL, "kid": kid}), Some(&p));
        assert_eq!(check(&s, &body, KeyRule::Kid).await.err().unwrap().kind, ProblemType::BadSignatureAlgorithm);
        // A tampered payload.
        let mut body = key.jws(json!({"nonce": nonce(&s).await, "url": URL, "kid": kid}), Some(&p));
        body["payload"] = json!(crate::jwk::b64(b"{\"evil\":true}"));
        assert_eq!(check(&s, &body, KeyRule::Kid).await.err().unwrap().kind, ProblemType::Malformed);
        // No nonce at all.
        let body = key.jws(json!({"url": URL, "kid": kid}), Some(&p));
        assert_eq!(check(&s, &body, KeyRule::Kid).await.err().unwrap().kind, ProblemType::BadNonce);
        // Wrong content type.
        let e = verify_request(&s, &HeaderMap::new(), b"{}", URL, KeyRule::Kid).await.err().unwrap();
        assert_eq!(e.status, axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
}
