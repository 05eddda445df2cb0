//! The one internal error type of the SCEP server, mapped to the wire only at the edge:
//! a [`FailInfo`] in a CertRep when the message was readable enough to answer, an HTTP
//! status otherwise.

use axum::http::StatusCode;
use pkiplane_core::error::Cause;
use pkiplane_core::{CoreError, ErrorKind};

use crate::message::FailInfo;

#[derive(Debug, thiserror::Error)]
pub enum ScepError {
    /// Unsupported or disallowed algorithm (badAlg).
    #[error("unsupported algorithm: {0}")]
    BadAlg(String),
    /// The signature does not verify, or the envelope cannot be opened (badMessageCheck).
    #[error("message check failed: {0}")]
    BadMessageCheck(String),
    /// The request is not permitted: wrong challenge, replay, policy denial (badRequest).
    #[error("request refused: {0}")]
    BadRequest(String),
    /// signingTime too far from the server's clock (badTime).
    #[error("signing time out of range: {0}")]
    BadTime(String),
    /// No certificate matches (badCertId).
    #[error("no matching certificate: {0}")]
    BadCertId(String),
    /// The request waits for approval (PKIStatus PENDING, not a failure).
    #[error("pending approval")]
    Pending,
    /// Not a SCEP message at all, or an HTTP-level problem: answered with an HTTP error
    /// because no CertRep can be built.
    #[error("malformed request: {0}")]
    Malformed(String),
    /// The server cannot answer now (store or issuer unavailable).
    #[error("service unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(#[source] Cause),
}

impl ScepError {
    /// 500: `cause` goes to the log, the client gets a request id.
    pub fn internal(cause: impl Into<Cause>) -> Self {
        ScepError::Internal(cause.into())
    }

    /// The failInfo a CertRep carries for this error (None: no CertRep, HTTP error).
    pub fn fail_info(&self) -> Option<FailInfo> {
        match self {
            ScepError::BadAlg(_) => Some(FailInfo::BadAlg),
            ScepError::BadMessageCheck(_) => Some(FailInfo::BadMessageCheck),
            ScepError::BadRequest(_) => Some(FailInfo::BadRequest),
            ScepError::BadTime(_) => Some(FailInfo::BadTime),
            ScepError::BadCertId(_) => Some(FailInfo::BadCertId),
            ScepError::Pending | ScepError::Malformed(_) | ScepError::Unavailable(_) | ScepError::Internal(_) => None,
        }
    }

    /// The HTTP status when no CertRep can be sent.
    pub fn http_status(&self) -> StatusCode {
        match self {
            ScepError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ScepError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// A short label for logs and metrics.
    pub fn label(&self) -> &'static str {
        match self.fail_info() {
            Some(f) => f.name(),
            None => match self {
                ScepError::Pending => "pending",
                ScepError::Malformed(_) => "malformed",
                ScepError::Unavailable(_) => "unavailable",
                _ => "internal",
            },
        }
    }
}

impl From<CoreError> for ScepError {
    /// The CA's decision mapped to SCEP: a policy denial or a bad CSR is badRequest (the
    /// rules that denied are logged where the error is handled), a pending approval is
    /// PENDING, an unknown certificate is badCertId.
    fn from(e: CoreError) -> Self {
        match e.kind() {
            ErrorKind::BadRequest | ErrorKind::Denied => ScepError::BadRequest(e.to_string()),
            ErrorKind::NotFound => ScepError::BadCertId(e.to_string()),
            ErrorKind::Unavailable => ScepError::Unavailable(e.to_string()),
            ErrorKind::Internal => ScepError::internal(e),
        }
    }
}

impl From<pkiplane_core::inventory::StoreError> for ScepError {
    fn from(e: pkiplane_core::inventory::StoreError) -> Self {
        match e {
            pkiplane_core::inventory::StoreError::Unavailable { .. } => ScepError::Unavailable(e.detail()),
            other => ScepError::internal(other),
        }
    }
}

impl From<der::Error> for ScepError {
    fn from(e: der::Error) -> Self {
        ScepError::internal(format!("DER encoding: {e}"))
    }
}
