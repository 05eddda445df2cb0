//! HTTP Basic authentication (RFC 7617; RFC 7030 section 3.2.3) against the accounts of
//! the endpoint's `basicAuth` Secret.
//!
//! Passwords are compared in constant time (SHA-256 of both sides, then
//! `subtle::ConstantTimeEq`; an unknown user is compared against a dummy so the timing
//! does not reveal which usernames exist). An `Authorization` value longer than
//! [`MAX_AUTHORIZATION`] is refused with 431 before it is decoded.
//!
//! Failed attempts are counted in an [`AuthFailureStore`](crate::state::AuthFailureStore)
//! under three keys, each with its own allowance before an exponentially growing backoff
//! (`basic_backoff` doubled per failure, capped at `basic_backoff_max`) during which
//! attempts are refused with 429 and `Retry-After` without the password being checked:
//! the (address, username) pair (`basic_free_failures`), so one address guessing one
//! account stops quickly without locking that account for the others; the username from
//! all addresses (`basic_user_free_failures`, much higher), so a guessing campaign spread
//! over many addresses stops too; and the address whatever the username
//! (`basic_address_free_failures`). Keys hold a SHA-256 of the username, never the name
//! itself, so a long name cannot grow the table; the log shows a configured account's
//! name (escaped) and, for any other name (perhaps a password typed into the username
//! field), only its length and a fingerprint under a per-process key.
use std::time::{Duration, SystemTime};

use axum::http::header;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::error::EstError;
use crate::settings::{BasicAuthConfig, Limits};
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

/// The longest `Authorization` value read: a Basic header for a 255-byte username and
/// a 255-byte password is under 700 bytes.
pub const MAX_AUTHORIZATION: usize = 1024;

/// Parses `Authorization: Basic base64(user:password)`; `Ok(None)` when the header is
/// absent or names another scheme.
pub fn parse(value: Option<&str>) -> Result<Option<Credentials>, String> {
    let Some(value) = value else { return Ok(None) };
    if value.len() > MAX_AUTHORIZATION {
        return Err(format!("the Authorization header is longer than {MAX_AUTHORIZATION} bytes"));
    }
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

/// The wait still owed after `failures` failures (the first `free` of them without
/// one), the last at `last`.
pub fn lockout(limits: &Limits, free: u32, failures: u32, last: SystemTime, now: SystemTime) -> Option<Duration> {
    if failures < free {
        return None;
    }
    let exp = (failures - free).min(20);
    let wait = limits.basic_backoff.saturating_mul(1 << exp).min(limits.basic_backoff_max);
    let elapsed = now.duration_since(last).unwrap_or_default();
    wait.checked_sub(elapsed).filter(|d| !d.is_zero())
}

/// One failure counter and the failures it allows before backing off.
struct Counter {
    key: String,
    free: u32,
}

/// A username as a table key: hex SHA-256, so any name takes the same small space.
fn name_key(username: &str) -> String {
    hex::encode(&digest(username.as_bytes()).as_ref()[..16])
}

/// The counters an attempt by `username` from the request's address is judged by: the
/// (address, user) pair, the user, the address. The first two are cleared by a success.
fn counters(state: &EstState, ctx: &RequestContext, username: &str) -> Vec<Counter> {
    let ep = &state.config.endpoint;
    let limits = &state.config.limits;
    let user = name_key(username);
    let ip = ctx.client.map(|a| a.ip().to_string()).unwrap_or_else(|| "unknown".into());
    vec![
        Counter { key: format!("pair:{ep}:{ip}:{user}"), free: limits.basic_free_failures },
        Counter { key: format!("user:{ep}:{user}"), free: limits.basic_user_free_failures },
        Counter { key: format!("ip:{ep}:{ip}"), free: limits.basic_address_free_failures },
    ]
}

/// A random key for this process's log fingerprints of unknown usernames.
static FINGERPRINT_KEY: std::sync::LazyLock<ring::hmac::Key> = std::sync::LazyLock::new(|| {
    let mut seed = [0u8; 32];
    if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut seed).is_err() {
        // No randomness (never seen in practice): a per-process value still, not a constant.
        let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
        seed[..16].copy_from_slice(&now.as_nanos().to_le_bytes());
        seed[16..20].copy_from_slice(&std::process::id().to_le_bytes());
    }
    ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &seed)
});

/// How a username appears in the log: a configured account by its name (escaped, cut to
/// 64 characters); anything else, which may be a password typed into the wrong field,
/// only by length and a fingerprint that correlates attempts within this process.
pub fn shown_username(config: &BasicAuthConfig, username: &str) -> String {
    if config.users.contains_key(username) {
        return pkiplane_core::logsafe::escape(username, 64);
    }
    let tag = ring::hmac::sign(&FINGERPRINT_KEY, username.as_bytes());
    format!("<unknown name of {} bytes, #{}>", username.len(), hex::encode(&tag.as_ref()[..4]))
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
    let raw = ctx.headers.get(header::AUTHORIZATION);
    if raw.is_some_and(|v| v.len() > MAX_AUTHORIZATION) {
        return Err(EstError::HeaderTooLarge(format!(
            "the Authorization header is longer than {MAX_AUTHORIZATION} bytes"
        )));
    }
    let header = raw.and_then(|v| v.to_str().ok());
    let realm = state.config.realm.clone();
    let creds = parse(header).map_err(|m| EstError::Unauthorized { message: m, realm: realm.clone() })?;
    let Some(creds) = creds else { return Ok(None) };
    let limits = &state.config.limits;
    let now = SystemTime::now();
    let counters = counters(state, ctx, &creds.username);
    // Which counters hold failures: only those are cleared after a success, so the
    // common case (no failures) costs reads and no writes.
    let mut counted = Vec::with_capacity(counters.len());
    for counter in &counters {
        let count = state.failures.get(&counter.key).await.map_err(|e| unavailable(state, e))?;
        counted.push(count.is_some());
        if let Some(c) = count
            && let Some(wait) = lockout(limits, counter.free, c.failures, c.last_failure, now)
        {
            let secs = wait.as_secs().max(1);
            let scope = counter.key.split(':').next().unwrap_or_default();
            tracing::warn!(
                endpoint = %state.config.endpoint, user = %shown_username(config, &creds.username),
                client = ?ctx.client, scope, failures = c.failures,
                "EST Basic authentication attempt refused during backoff"
            );
            return Err(EstError::TooManyAttempts {
                message: format!("too many failed authentication attempts; retry in {secs}s"),
                retry_after: secs,
            });
        }
    }
    if matches(config, &creds) {
        for (counter, _) in counters[..2].iter().zip(&counted).filter(|(_, counted)| **counted) {
            state.failures.clear(&counter.key).await.map_err(|e| unavailable(state, e))?;
        }
        return Ok(Some(creds.username.clone()));
    }
    let forget = limits.basic_forget_after.as_secs();
    for counter in &counters {
        state.failures.record_failure(&counter.key, now, forget).await.map_err(|e| unavailable(state, e))?;
    }
    tracing::warn!(
        endpoint = %state.config.endpoint, user = %shown_username(config, &creds.username), client = ?ctx.client,
        "EST Basic authentication failed"
    );
    Err(EstError::Unauthorized { message: "the username or password is wrong".into(), realm })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Password;

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
        assert_eq!(lockout(&l, 3, 2, t, t), None);
        assert_eq!(lockout(&l, 3, 3, t, t), Some(Duration::from_secs(2)));
        assert_eq!(lockout(&l, 3, 4, t, t), Some(Duration::from_secs(4)));
        assert_eq!(lockout(&l, 3, 4, t, t + Duration::from_secs(5)), None);
        assert_eq!(lockout(&l, 3, 40, t, t), Some(l.basic_backoff_max));
        assert_eq!(lockout(&l, 100, 40, t, t), None, "the per-user allowance is much higher");
    }

    #[test]
    fn long_or_odd_usernames_are_bounded_in_keys_and_logs() {
        let mut cfg = BasicAuthConfig::default();
        cfg.users.insert("dev\nice".into(), Password(Zeroizing::new(b"x".to_vec())));
        assert_eq!(name_key(&"u".repeat(196_608)).len(), 32, "a key of any name is 32 hex digits");
        assert_ne!(name_key("a"), name_key("b"));
        // A configured account is shown by name, escaped.
        assert_eq!(shown_username(&cfg, "dev\nice"), "dev\\nice");
        // Anything else only by length and fingerprint: no password typed as a name.
        let shown = shown_username(&cfg, "Summer2026!\nFAKE LOG LINE");
        assert!(shown.starts_with("<unknown name of 25 bytes, #") && !shown.contains("Summer"), "{shown}");
        assert_eq!(shown, shown_username(&cfg, "Summer2026!\nFAKE LOG LINE"), "stable within a process");
        let huge = shown_username(&cfg, &"u".repeat(196_608));
        assert!(huge.len() < 64, "{huge}");
        // Oversized headers are refused before decoding.
        let big = format!("Basic {}", STANDARD.encode(format!("{}:{}", "u".repeat(2000), "p")));
        assert!(parse(Some(&big)).unwrap_err().contains("longer than 1024 bytes"));
    }
}
