//! The one error type of the core, with a stable kind for metrics and for mapping to each
//! protocol's wire errors at its edge.

use crate::approval::ApprovalError;
use crate::inventory::StoreError;
use crate::model::ObjectRef;
use crate::policy::Violation;
use crate::x509::csr::CsrError;

/// Coarse classes of failure; protocols map these onto their own errors (ACME problem
/// types, EST HTTP statuses, SCEP failInfo, CMP PKIFailureInfo).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request itself is malformed (bad CSR encoding, bad signature).
    BadRequest,
    /// Policy refused the request.
    Denied,
    /// The request names something that does not exist.
    NotFound,
    /// A dependency (store, issuer) is not available; retrying later may work.
    Unavailable,
    /// A bug or corrupt state.
    Internal,
}

impl ErrorKind {
    /// A short label for metrics.
    pub fn label(self) -> &'static str {
        match self {
            ErrorKind::BadRequest => "bad_request",
            ErrorKind::Denied => "denied",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Internal => "internal",
        }
    }
}

/// The lower-level error behind an internal failure, kept as the `source` of the error
/// that reports it (logged, never shown to a client).
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error(transparent)]
    Csr(#[from] CsrError),
    #[error("request denied by profile {profile}: {}", .violations.iter().map(|v| v.to_string()).collect::<Vec<_>>().join("; "))]
    Denied { profile: ObjectRef, violations: Vec<Violation> },
    #[error("unknown certificate profile {0}")]
    UnknownProfile(ObjectRef),
    #[error("issuer {0} is not ready: {1}")]
    IssuerUnavailable(ObjectRef, String),
    #[error("inventory: {0}")]
    Store(#[from] StoreError),
    /// Building or signing a certificate failed (a bug or a broken key): internal.
    #[error("signing failed: {0}")]
    Signing(#[source] Cause),
    #[error("certificate not found: {0}")]
    NotFound(String),
    /// An approval call was refused (unknown id, decided already, a denial without reason).
    #[error(transparent)]
    Approval(#[from] ApprovalError),
}

impl CoreError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            CoreError::Csr(_) => ErrorKind::BadRequest,
            CoreError::Denied { .. } => ErrorKind::Denied,
            CoreError::UnknownProfile(_) | CoreError::NotFound(_) => ErrorKind::NotFound,
            CoreError::IssuerUnavailable(..) => ErrorKind::Unavailable,
            CoreError::Store(StoreError::Unavailable { .. }) => ErrorKind::Unavailable,
            CoreError::Store(_) | CoreError::Signing(_) => ErrorKind::Internal,
            CoreError::Approval(ApprovalError::NotFound { id: _ }) => ErrorKind::NotFound,
            CoreError::Approval(ApprovalError::AlreadyDecided { .. } | ApprovalError::ReasonRequired) => {
                ErrorKind::BadRequest
            }
            CoreError::Approval(ApprovalError::Unsupported) => ErrorKind::Unavailable,
        }
    }

    /// The violations of a denial (empty otherwise).
    pub fn violations(&self) -> &[Violation] {
        match self {
            CoreError::Denied { violations, .. } => violations,
            _ => &[],
        }
    }
}
