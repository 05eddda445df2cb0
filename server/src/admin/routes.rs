//! The admin API's routes under `/admin/v1/`: JSON in and out, every error a JSON
//! [`ErrorBody`] with a specific message. Each route authenticates the caller first and
//! authorizes the one verb it needs (see [`super::auth::Verb`]).
//!
//! Namespaces: a certificate belongs to the namespace of its CertificateProfile, an
//! Issuer to its own. A list filtered by profile is asked about in that namespace,
//! any other list cluster-wide. A serial that does not exist is asked about
//! cluster-wide, so a namespace-bound caller cannot probe other namespaces' serials.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::extract::FromRequestParts;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use pkiplane_core::audit::rfc3339;
use pkiplane_core::inventory::{CertStatus, CertificateRecord, InventoryFilter, RevocationReason, RevokeOutcome};
use pkiplane_core::issuance::{Ca, RevocationRequest};
use pkiplane_core::model::{ObjectRef, Protocol, Requester};
use pkiplane_core::x509::pem;
use serde::Deserialize;

use super::Authorizer;
use super::auth::{Access, AuthError, User, Verb};
use super::tls::CertificateUser;
use super::view::{
    CertificateList, CrlAnswer, ErrorBody, RecordView, RevokeAnswer, RevokeRequest, normalize_serial, parse_reason,
    reason_name,
};
use crate::serve::publish::Publisher;

/// Request bodies are small JSON objects.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// A request (review, store query, CRL signature) must be answered within this long.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Rows per page by default, and at most.
pub const DEFAULT_PAGE: usize = 100;
pub const MAX_PAGE: usize = 1000;
/// How deep `continue` may page (offsets are read and skipped by the store).
pub const MAX_OFFSET: usize = 100_000;

#[derive(Clone)]
pub struct AdminState {
    pub ca: Arc<Ca>,
    pub publisher: Publisher,
    pub auth: Arc<Authorizer>,
}

pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/admin/v1/certificates", get(list))
        .route("/admin/v1/certificates/{serial}", get(show))
        .route("/admin/v1/certificates/{serial}/pem", get(show_pem))
        .route("/admin/v1/certificates/{serial}/revoke", post(revoke))
        .route("/admin/v1/issuers/{namespace}/{name}/crl", post(sign_crl))
        .route("/admin/v1/approvals", get(super::approvals::list))
        .route("/admin/v1/approvals/{id}", get(super::approvals::show))
        .route("/admin/v1/approvals/{id}/approve", post(super::approvals::decide::<true>))
        .route("/admin/v1/approvals/{id}/deny", post(super::approvals::decide::<false>))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such admin API route") })
        .with_state(state)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(bounded))
}

/// Ends a request that takes longer than [`REQUEST_TIMEOUT`] with a JSON 503.
async fn bounded(request: Request, next: Next) -> Response {
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "timeout", "the request took too long; try again")
            .into_response(),
    }
}

/// An error answer.
#[derive(Debug)]
pub struct ApiError(StatusCode, &'static str, String);

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self(status, code, message.into())
    }

    pub(super) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// A server-side failure: the caller gets a request id, the log line with that id the
    /// detail (as every protocol answers).
    pub(super) fn internal(doing: &str, e: impl std::fmt::Display) -> Self {
        let told = pkiplane_core::logsafe::hide("admin API", &format!("{doing} failed"), &e);
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", told)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody { status: self.0.as_u16(), error: self.1.to_owned(), message: self.2 };
        let mut response = (self.0, axum::Json(body)).into_response();
        if self.0 == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        let (status, code) = match &e {
            AuthError::Missing(_) | AuthError::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            AuthError::Forbidden { .. } => (StatusCode::FORBIDDEN, "forbidden"),
            AuthError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        };
        Self::new(status, code, e.to_string())
    }
}

/// The authenticated caller: the bearer token's user, or without an Authorization
/// header, the user of a verified client certificate (in a cluster).
pub struct Caller(pub(super) User);

impl FromRequestParts<AdminState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AdminState) -> Result<Self, ApiError> {
        let value = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        if value.is_none()
            && matches!(*state.auth, Authorizer::Kube(_))
            && let Some(CertificateUser(Some(user))) = parts.extensions.get::<CertificateUser>()
        {
            return Ok(Caller(user.clone()));
        }
        Ok(Caller(state.auth.authenticate(super::auth::bearer(value)?).await?))
    }
}

/// Authorizes `access` for `user`, logging refusals.
pub(super) async fn allow(state: &AdminState, user: &User, access: Access) -> Result<(), ApiError> {
    state.auth.authorize(user, &access).await.map_err(|e| {
        tracing::info!(user = %user.username, access = %access.describe(), "admin API: refused");
        ApiError::from(e)
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ListQuery {
    profile: Option<String>,
    issuer: Option<String>,
    endpoint: Option<String>,
    protocol: Option<String>,
    status: Option<String>,
    /// RFC 3339, or seconds since the epoch: active certificates ending before it.
    expiring_before: Option<String>,
    serial: Option<String>,
    exchange: Option<String>,
    limit: Option<usize>,
    r#continue: Option<String>,
}

/// The inventory filter a query asks for, the namespace it is confined to, and the page.
struct ListPlan {
    filter: InventoryFilter,
    serial: Option<String>,
    namespace: String,
    offset: usize,
    limit: usize,
}

fn plan(q: ListQuery) -> Result<ListPlan, ApiError> {
    let object = |field: &str, v: &Option<String>| -> Result<Option<ObjectRef>, ApiError> {
        v.as_deref()
            .map(|s| s.parse::<ObjectRef>().map_err(|e| ApiError::bad_request(format!("{field}: {e}"))))
            .transpose()
    };
    let profile = object("profile", &q.profile)?;
    let status = q
        .status
        .as_deref()
        .map(|s| {
            CertStatus::parse(s).ok_or_else(|| {
                ApiError::bad_request(format!("status: `{s}` is not pending, issued, revoked or abandoned"))
            })
        })
        .transpose()?;
    let protocol = q
        .protocol
        .as_deref()
        .map(|p| p.parse::<Protocol>().map_err(|e| ApiError::bad_request(format!("protocol: {e}"))))
        .transpose()?;
    let expiring_before = q.expiring_before.as_deref().map(parse_time).transpose()?;
    let limit = q.limit.unwrap_or(DEFAULT_PAGE);
    if limit == 0 || limit > MAX_PAGE {
        return Err(ApiError::bad_request(format!("limit: between 1 and {MAX_PAGE}")));
    }
    let offset = match q.r#continue.as_deref() {
        None | Some("") => 0,
        Some(c) => c
            .parse::<usize>()
            .ok()
            .filter(|o| *o <= MAX_OFFSET)
            .ok_or_else(|| ApiError::bad_request("continue: not a token this server handed out"))?,
    };
    let serial = q.serial.as_deref().map(normalize_serial);
    if serial.as_deref().is_some_and(|s| s.is_empty() || !s.chars().all(|c| c.is_ascii_hexdigit())) {
        return Err(ApiError::bad_request("serial: hexadecimal digits expected"));
    }
    Ok(ListPlan {
        namespace: profile.as_ref().map(|p| p.namespace.clone()).unwrap_or_default(),
        filter: InventoryFilter {
            issuer: object("issuer", &q.issuer)?,
            profile,
            protocol,
            endpoint: object("endpoint", &q.endpoint)?,
            status,
            expiring_before,
            exchange: q.exchange,
            limit: Some(offset + limit + 1),
        },
        serial,
        offset,
        limit,
    })
}

/// RFC 3339 (`2027-01-31T00:00:00Z`) or seconds since the epoch.
fn parse_time(s: &str) -> Result<SystemTime, ApiError> {
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(SystemTime::UNIX_EPOCH + Duration::from_secs(secs));
    }
    parse_rfc3339_utc(s).ok_or_else(|| {
        ApiError::bad_request(format!("expiringBefore: `{s}` is not RFC 3339 (2027-01-31T00:00:00Z) or epoch seconds"))
    })
}

/// Parses the UTC form `YYYY-MM-DDTHH:MM:SSZ` (what pkiplane itself prints).
fn parse_rfc3339_utc(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() != 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') || b[13] != b':' {
        return None;
    }
    if b[16] != b':' || !matches!(b[19], b'Z' | b'z') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<u64>().ok();
    let (y, mo, d, h, mi, se) = (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60
    {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y, m) = if mo <= 2 { (y - 1, mo + 9) } else { (y, mo - 3) };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(days * 86_400 + h * 3600 + mi * 60 + se))
}

fn matches_plan(r: &CertificateRecord, f: &InventoryFilter, now: SystemTime) -> bool {
    f.issuer.as_ref().is_none_or(|i| &r.issuer == i)
        && f.profile.as_ref().is_none_or(|p| &r.profile == p)
        && f.endpoint.as_ref().is_none_or(|e| r.endpoint.as_ref() == Some(e))
        && f.protocol.is_none_or(|p| r.protocol == p)
        && f.status.is_none_or(|s| r.status == s)
        && f.exchange.as_ref().is_none_or(|x| r.exchange.as_ref() == Some(x))
        && f.expiring_before.is_none_or(|b| r.is_active(now) && r.not_after < b)
}

async fn list(
    State(state): State<AdminState>,
    Caller(user): Caller,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::Json<CertificateList>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let now = SystemTime::now();
    let plan = plan(query)?;
    allow(&state, &user, Access::new(Verb::ListCertificates, plan.namespace.clone(), "")).await?;
    let inventory = state.ca.inventory();
    let records = match &plan.serial {
        Some(serial) => {
            let found =
                inventory.find_serial(serial).await.map_err(|e| ApiError::internal("looking the serial up", e))?;
            found.into_iter().filter(|r| matches_plan(r, &plan.filter, now)).collect()
        }
        None => inventory.list(&plan.filter).await.map_err(|e| ApiError::internal("listing the inventory", e))?,
    };
    let mut page: Vec<RecordView> =
        records.iter().skip(plan.offset).take(plan.limit + 1).map(|r| RecordView::new(r, false)).collect();
    let more = page.len() > plan.limit;
    page.truncate(plan.limit);
    let next = (more && plan.offset + plan.limit <= MAX_OFFSET).then(|| (plan.offset + plan.limit).to_string());
    Ok(axum::Json(CertificateList { items: page, r#continue: next }))
}

/// The record of `serial`, once `verb` on it is allowed.
async fn record_for(
    state: &AdminState,
    user: &User,
    serial: &str,
    verb: Verb,
) -> Result<(String, CertificateRecord), ApiError> {
    let serial = normalize_serial(serial);
    if serial.is_empty() || serial.len() > 64 || !serial.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(ApiError::bad_request("the serial must be hexadecimal (colons allowed), at most 32 bytes"));
    }
    let found =
        state.ca.inventory().find_serial(&serial).await.map_err(|e| ApiError::internal("looking the serial up", e))?;
    match found.as_slice() {
        [] => {
            allow(state, user, Access::new(verb, "", serial.clone())).await?;
            Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no certificate with serial {serial}")))
        }
        [one] => {
            allow(state, user, Access::new(verb, one.profile.namespace.clone(), serial.clone())).await?;
            Ok((serial, one.clone()))
        }
        _ => Err(ApiError::new(
            StatusCode::CONFLICT,
            "ambiguous",
            format!("serial {serial} exists under several issuers; this cannot happen with random serials"),
        )),
    }
}

async fn show(
    State(state): State<AdminState>,
    Caller(user): Caller,
    Path(serial): Path<String>,
) -> Result<axum::Json<RecordView>, ApiError> {
    let (_, record) = record_for(&state, &user, &serial, Verb::GetCertificate).await?;
    Ok(axum::Json(RecordView::new(&record, true)))
}

async fn show_pem(State(state): State<AdminState>, Caller(user): Caller, Path(serial): Path<String>) -> Response {
    let answer = async {
        let (serial, record) = record_for(&state, &user, &serial, Verb::GetCertificate).await?;
        record.der.as_ref().map(|d| pem::encode("CERTIFICATE", d)).ok_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                "not_signed",
                format!("certificate {serial} is {} and was never signed", record.status.as_str()),
            )
        })
    };
    match answer.await {
        Ok(text) => ([(header::CONTENT_TYPE, "application/pem-certificate-chain")], text).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn revoke(
    State(state): State<AdminState>,
    Caller(user): Caller,
    Path(serial): Path<String>,
    body: Result<axum::Json<RevokeRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<axum::Json<RevokeAnswer>, ApiError> {
    let axum::Json(body) = body.map_err(|e| {
        let code = if e.status() == StatusCode::PAYLOAD_TOO_LARGE { "too_large" } else { "bad_request" };
        ApiError::new(e.status(), code, format!("the body: {}", e.body_text()))
    })?;
    let reason = match body.reason.as_deref() {
        Some(r) => parse_reason(r).map_err(|e| ApiError::bad_request(format!("reason: {e}")))?,
        None => RevocationReason::Unspecified,
    };
    let (serial, record) = record_for(&state, &user, &serial, Verb::RevokeCertificate).await?;
    let who = Requester::new(Protocol::Local, format!("admin-api:{}", user.username));
    let outcome = state
        .ca
        .revoke(RevocationRequest::new(&record.issuer, &serial, reason, &who))
        .await
        .map_err(|e| ApiError::internal("revoking", e))?;
    let answer = |reason, at, already_revoked| RevokeAnswer {
        serial: serial.clone(),
        issuer: record.issuer.to_string(),
        reason: reason_name(reason).to_owned(),
        revoked_at: rfc3339(at),
        already_revoked,
    };
    match outcome {
        RevokeOutcome::Revoked => {
            tracing::info!(user = %user.username, %serial, reason = reason_name(reason), "admin API: revoked");
            Ok(axum::Json(answer(reason, SystemTime::now(), false)))
        }
        RevokeOutcome::AlreadyRevoked(r) => Ok(axum::Json(answer(r.reason, r.at, true))),
        RevokeOutcome::NotFound => {
            Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no certificate with serial {serial}")))
        }
        RevokeOutcome::NotIssued(status) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_issued",
            format!("certificate {serial} is {} and cannot be revoked", status.as_str()),
        )),
    }
}

async fn sign_crl(
    State(state): State<AdminState>,
    Caller(user): Caller,
    Path((namespace, name)): Path<(String, String)>,
) -> Result<axum::Json<CrlAnswer>, ApiError> {
    allow(&state, &user, Access::new(Verb::SignCrl, namespace.clone(), name.clone())).await?;
    let id = ObjectRef::new(namespace, name);
    if state.ca.issuer(&id).is_none() {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no Issuer {id} is loaded")));
    }
    let crl = state.publisher.sign_now(&id).await.map_err(|e| ApiError::internal("signing the CRL", e))?;
    tracing::info!(user = %user.username, issuer = %id, "admin API: CRL signed");
    Ok(axum::Json(CrlAnswer {
        issuer: id.to_string(),
        this_update: rfc3339(crl.this_update),
        next_update: rfc3339(crl.next_update),
        revoked_serials: crl.serials.len(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_times_parse() {
        let t = parse_rfc3339_utc("2027-01-31T12:34:56Z").unwrap();
        assert_eq!(rfc3339(t), "2027-01-31T12:34:56Z");
        assert_eq!(parse_rfc3339_utc("1970-01-01T00:00:00Z"), Some(SystemTime::UNIX_EPOCH));
        for bad in ["2027-13-01T00:00:00Z", "2027-01-31 12:34:56Z", "2027-01-31T12:34:56+01:00", "soon"] {
            assert!(parse_rfc3339_utc(bad).is_none(), "{bad}");
        }
        assert_eq!(parse_time("86400").unwrap(), SystemTime::UNIX_EPOCH + Duration::from_secs(86400));
    }

    #[test]
    fn a_list_is_confined_to_its_profile_namespace_and_paged() {
        let q = ListQuery {
            profile: Some("team-a/web".into()),
            limit: Some(10),
            r#continue: Some("20".into()),
            ..Default::default()
        };
        let p = plan(q).unwrap();
        assert_eq!((p.namespace.as_str(), p.offset, p.limit, p.filter.limit), ("team-a", 20, 10, Some(31)));
        let p = plan(ListQuery { issuer: Some("pki/ca".into()), ..Default::default() }).unwrap();
        assert_eq!(p.namespace, "", "an issuer filter alone does not confine the list");
        for bad in [
            ListQuery { limit: Some(0), ..Default::default() },
            ListQuery { limit: Some(MAX_PAGE + 1), ..Default::default() },
            ListQuery { r#continue: Some("x".into()), ..Default::default() },
            ListQuery { status: Some("lost".into()), ..Default::default() },
            ListQuery { serial: Some("zz".into()), ..Default::default() },
        ] {
            assert!(plan(bad).is_err());
        }
    }
}
