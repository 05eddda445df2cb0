//! Authorizations and challenges (RFC 8555 section 7.5): reading them, deactivating an
//! authorization (7.5.2), and responding to a challenge (7.5.1), which validates at once
//! and goes on in the background only when validation takes long.

use crate::payload::AuthorizationChange;
use crate::signed::{ByAccount, Signed};
use std::time::SystemTime;

use crate::state::{Account, Authorization, AuthzStatus, Challenge, ChallengeStatus};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use crate::problem::AcmeError;
use crate::{AcmeState, respond, time, validate};

/// The status a client sees: a pending or valid authorization past its expiry is expired.
pub fn effective_status(a: &Authorization, now: SystemTime) -> AuthzStatus {
    match a.status {
        AuthzStatus::Pending | AuthzStatus::Valid if a.expires <= now => AuthzStatus::Expired,
        s => s,
    }
}

fn challenge_status(s: ChallengeStatus) -> &'static str {
    match s {
        ChallengeStatus::Pending => "pending",
        ChallengeStatus::Processing => "processing",
        ChallengeStatus::Valid => "valid",
        ChallengeStatus::Invalid => "invalid",
    }
}

/// The challenge object (RFC 8555 section 8).
pub fn challenge_json(state: &AcmeState, authz_id: &str, c: &Challenge) -> Value {
    let mut v = json!({
        "type": c.kind.as_str(),
        "url": state.challenge_url(authz_id, &c.id),
        "token": c.token,
        "status": challenge_status(c.status),
    });
    if let Some(t) = c.validated {
        v["validated"] = json!(time::format(t));
    }
    if let Some(err) = c.error.as_deref().and_then(|e| serde_json::from_str::<Value>(e).ok()) {
        v["error"] = err;
    }
    v
}

/// The authorization object (RFC 8555 section 7.1.4).
pub fn authz_json(state: &AcmeState, a: &Authorization) -> Value {
    let now = SystemTime::now();
    let status = effective_status(a, now);
    // A valid authorization lists only the challenge that validated it.
    let challenges: Vec<Value> = a
        .challenges
        .iter()
        .filter(|c| status != AuthzStatus::Valid || c.status == ChallengeStatus::Valid)
        .map(|c| challenge_json(state, &a.id, c))
        .collect();
    let mut v = json!({
        "identifier": a.identifier,
        "status": status.as_str(),
        "expires": time::format(a.expires),
        "challenges": challenges,
    });
    if a.wildcard {
        v["wildcard"] = json!(true);
    }
    v
}

/// Restarts validations whose validator vanished (its replica stopped): a challenge
/// processing for longer than the validation budget.
async fn resume_stale(state: &AcmeState, mut a: Authorization, thumbprint: &str) -> Result<Authorization, AcmeError> {
    let now = SystemTime::now();
    let budget = state.config.validation.budget();
    let stale =
        |c: &Challenge| c.status == ChallengeStatus::Processing && c.processing_since.is_none_or(|t| t + budget < now);
    let Some(idx) = a.challenges.iter().position(stale) else { return Ok(a) };
    if a.status != AuthzStatus::Pending {
        return Ok(a);
    }
    let mut updated = a.clone();
    updated.challenges[idx].processing_since = Some(now);
    if state.store.update_authorization(&updated).await? {
        updated.version += 1;
        tracing::info!(authz = %a.id, "restarting a stale challenge validation");
        validate::spawn(state.clone(), updated.clone(), updated.challenges[idx].id.clone(), thumbprint.to_owned());
        a = updated;
    }
    Ok(a)
}

async fn owned_authz(state: &AcmeState, id: &str, account: &Account) -> Result<Authorization, AcmeError> {
    let a = state.store.authorization(id).await?.ok_or_else(|| AcmeError::not_found("the authorization"))?;
    if a.account_id != account.id {
        return Err(AcmeError::unauthorized("the authorization belongs to another account"));
    }
    Ok(a)
}

/// POST to an authorization: POST-as-GET, or `{"status": "deactivated"}`.
pub async fn authorization(
    State(state): State<AcmeState>,
    Path(id): Path<String>,
    req: Signed<ByAccount>,
) -> Result<Response, AcmeError> {
    let mut a = owned_authz(&state, &id, req.account()?).await?;
    if req.post_as_get() {
        a = resume_stale(&state, a, &req.account()?.thumbprint).await?;
    } else {
        let payload: AuthorizationChange = req.payload()?;
        match payload.status.as_deref() {
            Some("deactivated") => {
                for _ in 0..5 {
                    let status = effective_status(&a, SystemTime::now());
                    if !matches!(status, AuthzStatus::Pending | AuthzStatus::Valid) {
                        return Err(AcmeError::malformed(format!(
                            "only pending or valid authorizations can be deactivated; this one is {}",
                            status.as_str()
                        )));
                    }
                    let mut updated = a.clone();
                    updated.status = AuthzStatus::Deactivated;
                    if state.store.update_authorization(&updated).await? {
                        a = updated;
                        break;
                    }
                    a = owned_authz(&state, &id, req.account()?).await?;
                }
            }
            Some(other) => {
                return Err(AcmeError::malformed(format!("cannot set an authorization's status to {other}")));
            }
            None => return Err(AcmeError::malformed("the only change to an authorization is status: deactivated")),
        }
    }
    Ok(with_poll_hint(respond::json(StatusCode::OK, &authz_json(&state, &a)), &a))
}

/// How long a challenge response waits for its validation before answering
/// `processing` (RFC 8555 section 7.5.1 lets the server answer either way).
pub const INLINE_VALIDATION_WAIT: std::time::Duration = std::time::Duration::from_millis(1500);

/// While a validation runs, tells clients when to look again (RFC 8555 section 7.5.1).
fn with_poll_hint(mut rsp: Response, a: &Authorization) -> Response {
    if a.challenges.iter().any(|c| c.status == ChallengeStatus::Processing) {
        rsp.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from(1u32));
    }
    rsp
}

/// POST to a challenge: `{}` asks the server to validate (RFC 8555 section 7.5.1); an
/// empty payload reads it. The answer carries the outcome when validation ends within
/// [`INLINE_VALIDATION_WAIT`], else `processing` with a Retry-After.
pub async fn challenge(
    State(state): State<AcmeState>,
    Path((authz_id, challenge_id)): Path<(String, String)>,
    req: Signed<ByAccount>,
) -> Result<Response, AcmeError> {
    let account = req.account()?.clone();
    let mut a = owned_authz(&state, &authz_id, &account).await?;
    let find = |a: &Authorization| a.challenges.iter().position(|c| c.id == challenge_id);
    let mut idx = find(&a).ok_or_else(|| AcmeError::not_found("the challenge"))?;
    if !req.post_as_get() {
        if !req.json()?.is_object() {
            return Err(AcmeError::malformed("a challenge response is the empty JSON object {}"));
        }
        for _ in 0..5 {
            if a.challenges.iter().any(|c| c.status != ChallengeStatus::Pending) {
                break; // this or another challenge already started: report the state
            }
            if effective_status(&a, SystemTime::now()) != AuthzStatus::Pending {
                return Err(AcmeError::malformed("the authorization is not pending"));
            }
            // Validate first, store once: a validation that ends within the wait (most
            // do) takes the authorization from pending to its outcome in one write and
            // is answered in this response, with no poll and no Retry-After; a slower one
            // is stored processing and goes on in the background, polled as usual.
            let mut validation =
                validate::start(state.clone(), a.clone(), challenge_id.clone(), account.thumbprint.clone());
            match tokio::time::timeout(INLINE_VALIDATION_WAIT, &mut validation).await {
                Ok(joined) => {
                    let outcome = joined.unwrap_or_else(|_| Err(AcmeError::internal("the validation task failed")));
                    if let Some(updated) = validate::record_pending(&state, &a, idx, outcome).await? {
                        a = updated;
                        break;
                    }
                }
                Err(_) => {
                    let mut updated = a.clone();
                    updated.challenges[idx].status = ChallengeStatus::Processing;
                    updated.challenges[idx].processing_since = Some(SystemTime::now());
                    if state.store.update_authorization(&updated).await? {
                        updated.version += 1;
                        validate::record_when_done(state.clone(), updated.id.clone(), challenge_id.clone(), validation);
                        a = updated;
                        break;
                    }
                    validation.abort();
                }
            }
            a = owned_authz(&state, &authz_id, &account).await?;
            idx = find(&a).ok_or_else(|| AcmeError::not_found("the challenge"))?;
        }
    }
    let rsp = respond::json(StatusCode::OK, &challenge_json(&state, &a.id, &a.challenges[idx]));
    Ok(with_poll_hint(respond::with_link(rsp, &state.authz_url(&a.id), "up"), &a))
}
