//! HTTP Basic authentication (RFC 7617; RFC 7030 section 3.2.3) against the accounts of
//! the endpoint's `basicAuth` Secret.
//!
//! Passwords are compared in constant time (SHA-256 of both sides, then
//! `subtle::ConstantTimeEq`; an unknown user is compared against a dummy so the timing
//! does not reveal which usernames exist). Failed attempts are counted per username and
//! per client address in an [`AuthFailureStore`](pkiplane_core::state::est::AuthFailureStore):
//! after `basic_free_failures` failures, each further attempt for that key must wait an
//! exponentially growing backoff (`basic_backoff` doubled per failure, capped at
//! `basic_backoff_max`), and attempts inside the backoff are refused with 429 and
//! `Retry-After` without the password being checked at all.

use std::time::{Duration, SystemTime};

use axum::http::header;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::config::{BasicAuthConfig, Limits};
use crate::error::EstError;
use crate::{EstState, RequestContext};

/// Credentials from an `Authorization: Basic` header.
pub struct Credentials {
    pub username: String,
    pub password: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("username", &self.username).field("password", &"<redacted>").finish()
    }
}

/// Parses `Authorization: Basic base64(user:password)`; `Ok(None)` when the header is
/// absent or names another scheme.
pub fn parse(value: Option<&str>) -> Result<Option<Credentials>, String> {
    let Some(value) = value else { return Ok(None) };
    let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let decoded = Zeroizing::new(STANDARD.decode(rest.trim()).map_err(|_| "the Basic credentials are not base64")?);
    let colon = decoded.iter().position(|b| *b == b':').ok_or("the Basic credentials have no `:`")?;
    let username = std::str::from_utf8(&decoded[..colon]).map_err(|_| "the Basic username is not UTF-8")?.to_owned();
    Ok(Some(Credentials { username, password: Zeroizing::new(decoded[colon + 1..].to_vec()) }))
}

fn digest(b: &[u8]) -> ring::digest::Digest {
    ring::digest::digest(&ring::digest::SHA256, b)
}

/// Whether `creds` match an account, in time independent of where they differ.
pub fn matches(config: &BasicAuthConfig, creds: &Credentials) -> bool {
    let given = digest(&creds.password);
    match config.users.get(&creds.username) {
        Some(p) => bool::from(given.as_ref().ct_eq(digest(&p.0).as_ref())),
        None => {
            let _ = given.as_ref().ct_eq(digest(b"pkiplane-est-no-such-user").as_ref());
            false
        }
    }
}

/// The wait still owed after `failures` failures, the last at `last`.
pub fn lockout(limits: &Limits, failures: u32, last: SystemTime, now: SystemTime) -> Option<Duration> {
    if failures < limits.basic_free_failures {
        return None;
    }
    let exp = (failures - limits.basic_free_failures).min(20);
    let wait = limits.basic_backoff.saturating_mul(1 << exp).min(limits.basic_backoff_max);
    let elapsed = now.duration_since(last).unwrap_or_default();
    wait.checked_sub(elapsed).filter(|d| !d.is_zero())
}

fn keys(state: &EstState, ctx: &RequestContext, username: &str) -> Vec<String> {
    let ep = &state.config.endpoint;
    let mut keys = vec![format!("user:{ep}:{username}")];
    if let Some(addr) = ctx.client {
        keys.push(format!("ip:{ep}:{}", addr.ip()));
    }
    keys
}

fn unavailable(state: &EstState, e: impl std::fmt::Display) -> EstError {
    EstError::Unavailable {
        message: format!("the authentication state store is unavailable: {e}"),
        retry_after: state.config.limits.retry_after_unavailable,
    }
}

/// Checks the request's Basic credentials: `Ok(Some(user))` when they are right,
/// `Ok(None)` when none were sent, 401 when they are wrong, 429 during a backoff.
pub async fn check(
    state: &EstState,
    config: &BasicAuthConfig,
    ctx: &RequestContext,
) -> Result<Option<String>, EstError> {
    let header = ctx.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let realm = state.config.realm.clone();
    let creds = parse(header).map_err(|m| EstError::Unauthorized { message: m, realm: realm.clone() })?;
    let Some(creds) = creds else { return Ok(None) };
    let limits = &state.config.limits;
    let now = SystemTime::now();
    let keys = keys(state, ctx, &creds.username);
    for key in &keys {
        if let Some(c) = state.failures.get(key).await.map_err(|e| unavailable(state, e))?
            && let Some(wait) = lockout(limits, c.failures, c.last_failure, now)
        {
            let secs = wait.as_secs().max(1);
            tracing::warn!(endpoint = %state.config.endpoint, key = %key, failures = c.failures, "EST Basic authentication attempt refused during backoff");
            return Err(EstError::TooManyAttempts {
                message: format!("too many failed authentication attempts; retry in {secs}s"),
                retry_after: secs,
            });
        }
    }
    if matches(config, &creds) {
        state.failures.clear(&keys[0]).await.map_err(|e| unavailable(state, e))?;
        return Ok(Some(creds.username.clone()));
    }
    let forget = limits.basic_forget_after.as_secs();
    for key in &keys {
        state.failures.record_failure(key, now, forget).await.map_err(|e| unavailable(state, e))?;
    }
    tracing::warn!(endpoint = %state.config.endpoint, user = %creds.username, client = ?ctx.client, "EST Basic authentication failed");
    Err(EstError::Unauthorized { message: "the username or password is wrong".into(), realm })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Password;

    #[test]
    fn parses_and_compares() {
        let h = format!("Basic {}", STANDARD.encode("dev:s3cret:with:colons"));
        let c = parse(Some(&h)).unwrap().unwrap();
        assert_eq!(c.username, "dev");
        assert_eq!(c.password.as_slice(), b"s3cret:with:colons");
        assert!(format!("{c:?}").contains("<redacted>"));
        assert!(parse(Some("Bearer x")).unwrap().is_none());
        assert!(parse(None).unwrap().is_none());
        assert!(parse(Some("Basic !!!")).is_err());
        let mut cfg = BasicAuthConfig::default();
        cfg.users.insert("dev".into(), Password(Zeroizing::new(b"s3cret:with:colons".to_vec())));
        assert!(matches(&cfg, &c));
        let wrong = Credentials { username: "dev".into(), password: Zeroizing::new(b"nope".to_vec()) };
        assert!(!matches(&cfg, &wrong));
        let nobody = Credentials { username: "x".into(), password: Zeroizing::new(b"s3cret:with:colons".to_vec()) };
        assert!(!matches(&cfg, &nobody));
    }

    #[test]
    fn backoff_grows_and_caps() {
        let l = Limits::default();
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        assert_eq!(lockout(&l, 2, t, t), None);
        assert_eq!(lockout(&l, 3, t, t), Some(Duration::from_secs(2)));
        assert_eq!(lockout(&l, 4, t, t), Some(Duration::from_secs(4)));
        assert_eq!(lockout(&l, 4, t, t + Duration::from_secs(5)), None);
        assert_eq!(lockout(&l, 40, t, t), Some(l.basic_backoff_max));
    }
}
