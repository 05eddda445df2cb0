//! Challenge validation (RFC 8555 section 8), run in the background after a client
//! responds to a challenge: http-01 (8.3), dns-01 (8.4), tls-alpn-01 (RFC 8737).
//!
//! Each attempt is bounded (connect and total timeouts); failures are retried with
//! exponential backoff a few times before the challenge, and with it the authorization,
//! becomes invalid with a problem naming what was seen. Names under `.localhost` (and
//! `localhost` itself) resolve to loopback (RFC 6761 section 6.3) without asking DNS.
//!
//! One resolver serves every challenge type: with `spec.acme.dnsResolver` set, dns-01's
//! TXT lookups and the http-01 / tls-alpn-01 host lookups (A and AAAA) all go to it (as
//! Pebble's `-dnsserver` does), so a private network or a test bed needs one DNS server;
//! without it, dns-01 asks the system's first nameserver and the others the system's
//! resolver (getaddrinfo: /etc/hosts, search domains).

mod dns01;
pub mod dns_client;
mod http01;
pub mod target;
pub mod tls;
mod tls_alpn01;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use std::time::SystemTime;

use crate::state::{Authorization, AuthzStatus, ChallengeStatus, ChallengeType};
use tokio::net::TcpStream;

use crate::AcmeState;
use crate::problem::{AcmeError, ProblemType};
use crate::settings::ValidationSettings;

/// Validates `challenge_id` of `authz` in a task of its own, which runs to its end
/// whether or not the returned handle is awaited or dropped, and stores nothing: the
/// outcome is the handle's, for [`record_pending`] or [`record_when_done`].
pub fn start(
    state: AcmeState,
    authz: Authorization,
    challenge_id: String,
    thumbprint: String,
) -> tokio::task::JoinHandle<Result<(), AcmeError>> {
    tokio::spawn(async move { attempts(&state, &authz, &challenge_id, &thumbprint).await })
}

/// Starts validating `challenge_id` of `authz` (already marked processing) and records
/// the outcome when it ends.
pub fn spawn(state: AcmeState, authz: Authorization, challenge_id: String, thumbprint: String) {
    let id = authz.id.clone();
    let validation = start(state.clone(), authz, challenge_id.clone(), thumbprint);
    record_when_done(state, id, challenge_id, validation);
}

/// Records the outcome of `validation` on the processing challenge when it ends.
pub fn record_when_done(
    state: AcmeState,
    authz_id: String,
    challenge_id: String,
    validation: tokio::task::JoinHandle<Result<(), AcmeError>>,
) {
    tokio::spawn(async move {
        let outcome = validation.await.unwrap_or_else(|_| Err(AcmeError::internal("the validation task failed")));
        if let Err(e) = record(&state, &authz_id, &challenge_id, outcome).await {
            tracing::warn!(authz = %authz_id, error = %e, "could not record a challenge outcome");
        }
    });
}

/// Records the outcome of a validation of challenge `idx` of `authz` as read while it
/// was still pending (compare-and-set on its version): the authorization goes from
/// pending to valid or invalid in one write. None when it changed meanwhile.
pub async fn record_pending(
    state: &AcmeState,
    authz: &Authorization,
    idx: usize,
    outcome: Result<(), AcmeError>,
) -> Result<Option<Authorization>, AcmeError> {
    let mut a = authz.clone();
    apply(state, &mut a, idx, &outcome, SystemTime::now());
    if !state.store.update_authorization(&a).await? {
        return Ok(None);
    }
    a.version += 1;
    log_outcome(&a, outcome.is_ok());
    Ok(Some(a))
}

async fn attempts(
    state: &AcmeState,
    authz: &Authorization,
    challenge_id: &str,
    thumbprint: &str,
) -> Result<(), AcmeError> {
    let Some(ch) = authz.challenges.iter().find(|c| c.id == challenge_id) else {
        return Err(AcmeError::internal("the challenge disappeared"));
    };
    let key_authorization = format!("{}.{thumbprint}", ch.token);
    let settings = &state.config.validation;
    let mut last = Err(AcmeError::internal("no validation attempt was made"));
    for attempt in 0..settings.attempts.max(1) {
        if attempt > 0 {
            tokio::time::sleep(settings.backoff.saturating_mul(1 << (attempt - 1).min(8))).await;
        }
        let once = async {
            match ch.kind {
                ChallengeType::Http01 => {
                    http01::validate(state, &authz.identifier.value, &ch.token, &key_authorization).await
                }
                ChallengeType::Dns01 => dns01::validate(state, &authz.identifier.value, &key_authorization).await,
                ChallengeType::TlsAlpn01 => {
                    tls_alpn01::validate(state, &authz.identifier.value, &key_authorization).await
                }
            }
        };
        last = tokio::time::timeout(settings.attempt_timeout, once).await.unwrap_or_else(|_| {
            Err(AcmeError::new(
                ProblemType::Connection,
                format!("validation of {} timed out after {:?}", authz.identifier.value, settings.attempt_timeout),
            ))
        });
        match &last {
            Ok(()) => break,
            Err(e) => tracing::debug!(
                authz = %authz.id, challenge = ch.kind.as_str(), attempt, problem = e.kind.name(),
                detail = %e.detail, "challenge validation attempt failed"
            ),
        }
    }
    last
}

/// Stores the outcome on the challenge and its authorization.
async fn record(
    state: &AcmeState,
    authz_id: &str,
    challenge_id: &str,
    outcome: Result<(), AcmeError>,
) -> Result<(), AcmeError> {
    for _ in 0..10 {
        let Some(mut a) = state.store.authorization(authz_id).await? else { return Ok(()) };
        let Some(idx) = a.challenges.iter().position(|c| c.id == challenge_id) else { return Ok(()) };
        if a.challenges[idx].status != ChallengeStatus::Processing || a.status != AuthzStatus::Pending {
            return Ok(()); // deactivated meanwhile, or recorded by another replica
        }
        apply(state, &mut a, idx, &outcome, SystemTime::now());
        if state.store.update_authorization(&a).await? {
            log_outcome(&a, outcome.is_ok());
            return Ok(());
        }
    }
    Err(AcmeError::unavailable("the authorization kept changing"))
}

/// Puts a validation's outcome on challenge `idx` and on the authorization.
fn apply(state: &AcmeState, a: &mut Authorization, idx: usize, outcome: &Result<(), AcmeError>, now: SystemTime) {
    let c = &mut a.challenges[idx];
    match outcome {
        Ok(()) => {
            c.status = ChallengeStatus::Valid;
            c.validated = Some(now);
            a.status = AuthzStatus::Valid;
            if let Some(reuse) = state.config.authz_reuse {
                a.expires = a.expires.max(now + reuse);
            }
        }
        Err(e) => {
            c.status = ChallengeStatus::Invalid;
            c.error = Some(e.to_json());
            a.status = AuthzStatus::Invalid;
        }
    }
}

fn log_outcome(a: &Authorization, valid: bool) {
    tracing::info!(authz = %a.id, identifier = %a.identifier.value, valid, "challenge validation finished");
}

/// The DNS server the endpoint names (`spec.acme.dnsResolver`, host:port), if any.
async fn configured_resolver(state: &AcmeState) -> Result<Option<SocketAddr>, AcmeError> {
    let Some(r) = &state.config.dns_resolver else { return Ok(None) };
    let dns = |d: String| AcmeError::new(ProblemType::Dns, d);
    match r.parse::<SocketAddr>() {
        Ok(a) => Ok(Some(a)),
        Err(_) => tokio::net::lookup_host(r.as_str())
            .await
            .map_err(|e| dns(format!("resolver {r}: {e}")))?
            .next()
            .map(Some)
            .ok_or_else(|| dns(format!("resolver {r} has no address"))),
    }
}

/// The resolver dns-01 asks: the endpoint's, else the system's first nameserver.
async fn resolver(state: &AcmeState) -> Result<SocketAddr, AcmeError> {
    match configured_resolver(state).await? {
        Some(a) => Ok(a),
        None => dns_client::system_resolver()
            .ok_or_else(|| AcmeError::new(ProblemType::Dns, "no nameserver in /etc/resolv.conf")),
    }
}

/// Addresses of `host` (a DNS name or an IP literal) at `port`: through the endpoint's
/// resolver when it names one, else the system's.
pub async fn resolve(state: &AcmeState, host: &str, port: u16) -> Result<Vec<SocketAddr>, AcmeError> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let lower = host.to_ascii_lowercase();
    if lower == "localhost" || lower.ends_with(".localhost") {
        return Ok(vec![
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), port),
        ]);
    }
    let (addrs, asked): (Vec<SocketAddr>, String) = match configured_resolver(state).await? {
        Some(server) => (
            dns_client::address_lookup(server, host, state.config.validation.connect_timeout)
                .await
                .map_err(|e| AcmeError::new(ProblemType::Dns, format!("looking up {host} at {server}: {e}")))?
                .into_iter()
                .map(|ip| SocketAddr::new(ip, port))
                .collect(),
            format!(" at {server}"),
        ),
        None => (
            tokio::net::lookup_host((host, port))
                .await
                .map_err(|e| AcmeError::new(ProblemType::Dns, format!("looking up {host}: {e}")))?
                .collect(),
            String::new(),
        ),
    };
    if addrs.is_empty() {
        return Err(AcmeError::new(ProblemType::Dns, format!("{host} has no A or AAAA records{asked}")));
    }
    Ok(addrs)
}

/// Connects to the first address that answers within the connect timeout, among those
/// validation may reach ([`target::refusal`], checked here, on the address dialed).
pub async fn connect(addrs: &[SocketAddr], settings: &ValidationSettings) -> Result<TcpStream, AcmeError> {
    let mut errors = Vec::new();
    let mut refused = Vec::new();
    for addr in addrs {
        if let Some(why) = target::refusal(addr.ip(), &settings.allowed_target_ranges) {
            refused.push(why);
            continue;
        }
        match tokio::time::timeout(settings.connect_timeout, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => return Ok(s),
            Ok(Err(e)) => errors.push(format!("{addr}: {e}")),
            Err(_) => errors.push(format!("{addr}: no answer within {:?}", settings.connect_timeout)),
        }
    }
    if errors.is_empty() && !refused.is_empty() {
        return Err(AcmeError::new(ProblemType::Connection, format!("not connecting: {}", refused.join("; "))));
    }
    errors.extend(refused);
    Err(AcmeError::new(ProblemType::Connection, format!("could not connect: {}", errors.join("; "))))
}
