//! The one error type of the EST server and its wire form (RFC 7030 sections 4.2.3 and
//! 3.2.3): an HTTP status with a human-readable `text/plain` body, plus
//! `WWW-Authenticate` on 401 and `Retry-After` on 202 and 503.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use pkiplane_core::error::Cause;
use pkiplane_core::{CoreError, ErrorKind};

/// Why a request did not produce its answer.
#[derive(Debug, thiserror::Error)]
pub enum EstError {
    /// 400: the request is malformed (bad base64, bad CSR, missing parts).
    #[error("{0}")]
    BadRequest(String),
    /// 401: credentials are missing or wrong where HTTP Basic applies.
    #[error("{message}")]
    Unauthorized { message: String, realm: String },
    /// 403: authenticated but not allowed (untrusted, expired or revoked client
    /// certificate, re-enrollment rules, channel binding), or denied by policy: each
    /// line names the profile rule.
    #[error("{0}")]
    Forbidden(String),
    /// 404: unknown label or operation.
    #[error("{0}")]
    NotFound(String),
    /// 413: the body is larger than the endpoint accepts.
    #[error("{0}")]
    TooLarge(String),
    /// 431: a request header (Authorization) is longer than the endpoint reads.
    #[error("{0}")]
    HeaderTooLarge(String),
    /// 429: too many failed authentication attempts; retry after the given seconds.
    #[error("{message}")]
    TooManyAttempts { message: String, retry_after: u64 },
    /// 202: the request waits for approval; retry after the given seconds.
    #[error("{message}")]
    Pending { message: String, retry_after: u64 },
    /// 501: an EST feature pkiplane does not offer (Full CMC).
    #[error("{0}")]
    NotImplemented(String),
    /// 503: a dependency is not available; retry after the given seconds.
    #[error("{message}")]
    Unavailable { message: String, retry_after: u64 },
    /// 500: a bug or corrupt state (details go to the log, not the client).
    #[error("{0}")]
    Internal(#[source] Cause),
}

impl EstError {
    /// 500: `cause` goes to the log, the client gets a request id.
    pub fn internal(cause: impl Into<Cause>) -> Self {
        EstError::Internal(cause.into())
    }

    pub fn bad_request(m: impl Into<String>) -> Self {
        EstError::BadRequest(m.into())
    }

    pub fn forbidden(m: impl Into<String>) -> Self {
        EstError::Forbidden(m.into())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            EstError::BadRequest(_) => StatusCode::BAD_REQUEST,
            EstError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            EstError::Forbidden(_) => StatusCode::FORBIDDEN,
            EstError::NotFound(_) => StatusCode::NOT_FOUND,
            EstError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            EstError::HeaderTooLarge(_) => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            EstError::TooManyAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
            EstError::Pending { .. } => StatusCode::ACCEPTED,
            EstError::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            EstError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            EstError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Maps a CA core error (RFC 7030 4.2.3): policy denials become 403 listing every
    /// violated rule, unavailability 503, malformed CSRs 400. (A request waiting for
    /// approval is an outcome, not an error: 202, see `enroll::issue`.)
    pub fn from_core(e: CoreError, retry_unavailable: u64) -> Self {
        match e.kind() {
            ErrorKind::BadRequest => EstError::BadRequest(e.to_string()),
            ErrorKind::Denied => {
                let mut text = match &e {
                    CoreError::Denied { profile, .. } => format!("request denied by profile {profile}:\n"),
                    _ => "request denied:\n".to_owned(),
                };
                for v in e.violations() {
                    text.push_str(&format!("- {}: {}\n", v.rule, v.message));
                }
                EstError::Forbidden(text)
            }
            ErrorKind::NotFound => EstError::NotFound(e.to_string()),
            ErrorKind::Unavailable => {
                tracing::warn!(error = %e, "EST request failed: CA unavailable");
                EstError::Unavailable {
                    message: "the CA is temporarily unavailable".into(),
                    retry_after: retry_unavailable,
                }
            }
            ErrorKind::Internal => EstError::internal(e),
        }
    }
}

impl IntoResponse for EstError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut body = match &self {
            EstError::Internal(detail) => pkiplane_core::logsafe::hide("EST", "internal error", detail),
            other => other.to_string(),
        };
        if !body.ends_with('\n') {
            body.push('\n');
        }
        let mut rsp = (status, body).into_response();
        let h = rsp.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
        match &self {
            EstError::Unauthorized { realm, .. } => {
                let realm = realm.replace(['"', '\\'], "");
                if let Ok(v) = HeaderValue::from_str(&format!("Basic realm=\"{realm}\", charset=\"UTF-8\"")) {
                    h.insert(header::WWW_AUTHENTICATE, v);
                }
            }
            EstError::Pending { retry_after, .. }
            | EstError::Unavailable { retry_after, .. }
            | EstError::TooManyAttempts { retry_after, .. } => {
                h.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
            }
            _ => {}
        }
        rsp
    }
}
