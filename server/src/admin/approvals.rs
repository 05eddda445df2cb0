//! The admin API's approval routes (docs/operations/approval.md): list the requests
//! waiting under profiles that require approval, read one, approve or deny one by id.
//! A request belongs to the namespace of its CertificateProfile; a list not filtered by
//! profile is asked about cluster-wide, and an id that does not exist too, so a
//! namespace-bound approver cannot probe other namespaces' requests.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use pkiplane_core::CoreError;
use pkiplane_core::approval::{ApprovalError, ApprovalFilter, ApprovalRequest, ApprovalState};
use pkiplane_core::model::{ObjectRef, Protocol};
use serde::Deserialize;

use super::auth::{Access, User, Verb};
use super::routes::{AdminState, ApiError, Caller, allow};
use super::view::{ApprovalList, ApprovalView, DecisionRequest};

/// Rows per list by default, and at most.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;
/// Approval ids are hex.
const MAX_ID_LEN: usize = 64;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// waiting (default), approved, denied, or all.
    state: Option<String>,
    profile: Option<String>,
    issuer: Option<String>,
    endpoint: Option<String>,
    protocol: Option<String>,
    requester: Option<String>,
    limit: Option<usize>,
}

fn filter(q: ListQuery) -> Result<ApprovalFilter, ApiError> {
    let object = |field: &str, v: Option<String>| -> Result<Option<ObjectRef>, ApiError> {
        v.map(|s| s.parse::<ObjectRef>().map_err(|e| ApiError::bad_request(format!("{field}: {e}")))).transpose()
    };
    let state =
        match q.state.as_deref() {
            None => Some(ApprovalState::Waiting),
            Some(s) if s.eq_ignore_ascii_case("all") => None,
            Some(s) => Some(ApprovalState::parse(s).ok_or_else(|| {
                ApiError::bad_request(format!("state: `{s}` is not waiting, approved, denied or all"))
            })?),
        };
    let protocol = q
        .protocol
        .map(|p| p.parse::<Protocol>().map_err(|e| ApiError::bad_request(format!("protocol: {e}"))))
        .transpose()?;
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::bad_request(format!("limit: between 1 and {MAX_LIMIT}")));
    }
    Ok(ApprovalFilter {
        state,
        profile: object("profile", q.profile)?,
        issuer: object("issuer", q.issuer)?,
        protocol,
        endpoint: object("endpoint", q.endpoint)?,
        requester: q.requester,
        exchange: None,
        limit: Some(limit),
    })
}

/// A core refusal as the admin API answers it.
fn refused(doing: &str, e: CoreError) -> ApiError {
    match e {
        CoreError::Approval(a) => {
            let (status, code) = match &a {
                ApprovalError::NotFound { .. } => (StatusCode::NOT_FOUND, "not_found"),
                ApprovalError::AlreadyDecided { .. } => (StatusCode::CONFLICT, "already_decided"),
                ApprovalError::ReasonRequired => (StatusCode::BAD_REQUEST, "bad_request"),
                ApprovalError::Unsupported => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            };
            ApiError::new(status, code, a.to_string())
        }
        other => ApiError::internal(doing, other),
    }
}

pub async fn list(
    State(state): State<AdminState>,
    Caller(user): Caller,
    Query(q): Query<ListQuery>,
) -> Result<axum::Json<ApprovalList>, ApiError> {
    let filter = filter(q)?;
    let namespace = filter.profile.as_ref().map(|p| p.namespace.clone()).unwrap_or_default();
    allow(&state, &user, Access::new(Verb::ListApprovals, namespace, "")).await?;
    let found = state.ca.approval_requests(&filter).await.map_err(|e| refused("listing approval requests", e))?;
    Ok(axum::Json(ApprovalList { items: found.iter().map(ApprovalView::new).collect() }))
}

/// The request `id`, once `verb` on it is allowed.
async fn request_for(state: &AdminState, user: &User, id: &str, verb: Verb) -> Result<ApprovalRequest, ApiError> {
    if id.is_empty() || id.len() > MAX_ID_LEN || !id.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(ApiError::bad_request("the request id is hexadecimal, as `approvals list` shows it"));
    }
    let found = state.ca.approval_request(id).await.map_err(|e| refused("reading the approval request", e))?;
    match found {
        None => {
            allow(state, user, Access::new(verb, "", id)).await?;
            Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no approval request {id}")))
        }
        Some(r) => {
            allow(state, user, Access::new(verb, r.profile.namespace.clone(), id)).await?;
            Ok(r)
        }
    }
}

pub async fn show(
    State(state): State<AdminState>,
    Caller(user): Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<ApprovalView>, ApiError> {
    let r = request_for(&state, &user, &id, Verb::GetApproval).await?;
    Ok(axum::Json(ApprovalView::new(&r)))
}

type Body = Result<axum::Json<DecisionRequest>, axum::extract::rejection::JsonRejection>;

fn decision(body: Body) -> Result<DecisionRequest, ApiError> {
    match body {
        Ok(axum::Json(d)) => Ok(d),
        Err(e) => {
            let code = if e.status() == StatusCode::PAYLOAD_TOO_LARGE { "too_large" } else { "bad_request" };
            Err(ApiError::new(e.status(), code, format!("the body: {}", e.body_text())))
        }
    }
}

/// The approver's name as the record and the audit log keep it.
fn approver(user: &User) -> String {
    format!("admin-api:{}", user.username)
}

/// `POST .../approve` (`APPROVE`) or `POST .../deny`: the decision, by the caller, on
/// one request; a denial needs a reason.
pub async fn decide<const APPROVE: bool>(
    State(state): State<AdminState>,
    Caller(user): Caller,
    Path(id): Path<String>,
    body: Body,
) -> Result<axum::Json<ApprovalView>, ApiError> {
    let d = decision(body)?;
    let decided = if APPROVE {
        request_for(&state, &user, &id, Verb::Approve).await?;
        state.ca.approve(&id, &approver(&user), d.reason.as_deref()).await.map_err(|e| refused("approving", e))?
    } else {
        let reason = d.reason.filter(|r| !r.trim().is_empty()).ok_or_else(|| {
            ApiError::bad_request("a denial needs a reason: the requester's protocol carries it back")
        })?;
        request_for(&state, &user, &id, Verb::Deny).await?;
        state.ca.deny(&id, &approver(&user), &reason).await.map_err(|e| refused("denying", e))?
    };
    let what = if APPROVE { "approved" } else { "denied" };
    tracing::info!(user = %user.username, request = %id, "admin API: {what}");
    Ok(axum::Json(ApprovalView::new(&decided)))
}
