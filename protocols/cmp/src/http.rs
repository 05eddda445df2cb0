//! HTTP transfer (RFC 9811, formerly RFC 6712): `POST` of a DER PKIMessage with
//! `Content-Type: application/pkixcmp` to `/.well-known/cmp` (the default profile) or
//! `/.well-known/cmp/p/<label>`; the response is a PKIMessage of the same type with
//! status 200, also for CMP-level errors (clients read the failure from the message).
//!
//! Refusals at the HTTP level still carry a CMP error message where a client can read
//! one: 405 for other methods (with `Allow: POST`), 415 for another content type, 413
//! for a body over the configured size, 404 for an unknown label, 503 when handling
//! exceeds the request timeout.

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;

use crate::CmpState;
use crate::error::CmpError;
use crate::server;
use crate::wire::FailBit;

/// The CMP media type.
pub const CONTENT_TYPE: &str = "application/pkixcmp";

/// The CMP server's routes.
pub fn router(state: CmpState) -> Router {
    Router::new()
        .route("/.well-known/cmp", any(default_profile))
        .route("/.well-known/cmp/p/{label}", any(labelled_profile))
        .with_state(state)
}

async fn default_profile(State(state): State<CmpState>, method: Method, headers: HeaderMap, body: Body) -> Response {
    handle(state, None, method, headers, body).await
}

async fn labelled_profile(
    State(state): State<CmpState>,
    Path(label): Path<String>,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Response {
    handle(state, Some(label), method, headers, body).await
}

fn pkixcmp(status: StatusCode, der: Result<Vec<u8>, server::EncodeFailed>) -> Response {
    let Ok(der) = der else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response();
    };
    let mut r = (status, der).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn refuse(state: &CmpState, label: Option<&str>, status: StatusCode, e: CmpError) -> Response {
    tracing::info!(status = status.as_u16(), error = %e, "CMP HTTP request refused");
    pkixcmp(status, server::error_message(state, label, &e))
}

fn is_pkixcmp(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(CONTENT_TYPE))
}

async fn handle(state: CmpState, label: Option<String>, method: Method, headers: HeaderMap, body: Body) -> Response {
    let label = label.as_deref();
    if let Some(l) = label
        && state.config().profile(l).is_none()
    {
        let e = CmpError::bad_request(format!("no profile is exposed under `{l}` at this endpoint"));
        return refuse(&state, None, StatusCode::NOT_FOUND, e);
    }
    if method != Method::POST {
        let e = CmpError::bad_request(format!("CMP messages are sent with POST, not {method}"));
        let mut r = refuse(&state, label, StatusCode::METHOD_NOT_ALLOWED, e);
        r.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
        return r;
    }
    if !is_pkixcmp(&headers) {
        let e = CmpError::bad_data_format(format!("the request's Content-Type must be {CONTENT_TYPE}"));
        return refuse(&state, label, StatusCode::UNSUPPORTED_MEDIA_TYPE, e);
    }
    let limit = state.config().max_message_bytes;
    let bytes = match to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => {
            let e = CmpError::bad_data_format(format!("the message is larger than {limit} bytes"));
            return refuse(&state, label, StatusCode::PAYLOAD_TOO_LARGE, e);
        }
    };
    match tokio::time::timeout(state.config().request_timeout, server::process(&state, label, &bytes)).await {
        Ok(der) => pkixcmp(StatusCode::OK, der),
        Err(_) => {
            let e = CmpError::new(FailBit::SystemUnavail, "the request took too long; try again");
            refuse(&state, label, StatusCode::SERVICE_UNAVAILABLE, e)
        }
    }
}
