//! ACME errors and their wire form: problem documents (RFC 7807 as used by RFC 8555
//! section 6.7), `application/problem+json`, with subproblems per identifier (section
//! 6.7.1).
//!
//! Everything inside the crate returns [`AcmeError`]; only [`IntoResponse`] turns it into
//! HTTP. Core errors are mapped here, once: policy denials become `rejectedIdentifier`
//! (SAN rules), `badPublicKey` (key rules), `unauthorized` (requester rules) or `badCSR`,
//! always naming the violated rules.

use crate::state::Identifier;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use pkiplane_core::inventory::StoreError;
use pkiplane_core::issuance::ApprovalDenied;
use pkiplane_core::{CoreError, ErrorKind};
use serde::{Deserialize, Serialize};

/// The ACME error types this server emits (RFC 8555 section 6.7, RFC 9773, the profiles
/// draft's `invalidProfile`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProblemType {
    AccountDoesNotExist,
    AlreadyReplaced,
    AlreadyRevoked,
    BadCsr,
    BadNonce,
    BadPublicKey,
    BadRevocationReason,
    BadSignatureAlgorithm,
    Caa,
    Connection,
    Dns,
    ExternalAccountRequired,
    IncorrectResponse,
    InvalidContact,
    InvalidProfile,
    Malformed,
    OrderNotReady,
    RateLimited,
    RejectedIdentifier,
    ServerInternal,
    Tls,
    Unauthorized,
    UnsupportedContact,
    UnsupportedIdentifier,
    UserActionRequired,
}

impl ProblemType {
    /// The name after `urn:ietf:params:acme:error:`.
    pub fn name(self) -> &'static str {
        use ProblemType::*;
        match self {
            AccountDoesNotExist => "accountDoesNotExist",
            AlreadyReplaced => "alreadyReplaced",
            AlreadyRevoked => "alreadyRevoked",
            BadCsr => "badCSR",
            BadNonce => "badNonce",
            BadPublicKey => "badPublicKey",
            BadRevocationReason => "badRevocationReason",
            BadSignatureAlgorithm => "badSignatureAlgorithm",
            Caa => "caa",
            Connection => "connection",
            Dns => "dns",
            ExternalAccountRequired => "externalAccountRequired",
            IncorrectResponse => "incorrectResponse",
            InvalidContact => "invalidContact",
            InvalidProfile => "invalidProfile",
            Malformed => "malformed",
            OrderNotReady => "orderNotReady",
            RateLimited => "rateLimited",
            RejectedIdentifier => "rejectedIdentifier",
            ServerInternal => "serverInternal",
            Tls => "tls",
            Unauthorized => "unauthorized",
            UnsupportedContact => "unsupportedContact",
            UnsupportedIdentifier => "unsupportedIdentifier",
            UserActionRequired => "userActionRequired",
        }
    }

    pub fn urn(self) -> String {
        format!("urn:ietf:params:acme:error:{}", self.name())
    }

    /// The HTTP status a top-level problem of this type is sent with.
    pub fn status(self) -> StatusCode {
        use ProblemType::*;
        match self {
            Unauthorized | UserActionRequired | OrderNotReady => StatusCode::FORBIDDEN,
            AlreadyReplaced => StatusCode::CONFLICT,
            RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ServerInternal => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// A subproblem about one identifier (RFC 8555 section 6.7.1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subproblem {
    #[serde(rename = "type")]
    pub kind: String,
    pub detail: String,
    pub identifier: Identifier,
}

/// The one error type of the crate.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}: {detail}", kind.name())]
pub struct AcmeError {
    pub kind: ProblemType,
    pub detail: String,
    pub status: StatusCode,
    pub subproblems: Vec<(ProblemType, String, Identifier)>,
    /// Seconds, for `Retry-After`.
    pub retry_after: Option<u64>,
    /// `Location` of a conflicting resource (keyChange to a key in use).
    pub location: Option<String>,
    /// Supported JWS algorithms, on `badSignatureAlgorithm` (RFC 8555 section 6.2).
    pub algorithms: Option<Vec<&'static str>>,
}

/// The wire form of a problem.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProblemDocument {
    #[serde(rename = "type")]
    pub kind: String,
    pub detail: String,
    pub status: u16,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subproblems: Vec<Subproblem>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithms: Option<Vec<String>>,
}

impl AcmeError {
    pub fn new(kind: ProblemType, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
            status: kind.status(),
            subproblems: Vec::new(),
            retry_after: None,
            location: None,
            algorithms: None,
        }
    }

    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    pub fn with_subproblem(mut self, kind: ProblemType, detail: impl Into<String>, id: Identifier) -> Self {
        self.subproblems.push((kind, detail.into(), id));
        self
    }

    pub fn malformed(detail: impl Into<String>) -> Self {
        Self::new(ProblemType::Malformed, detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(ProblemType::Unauthorized, detail)
    }

    pub fn not_found(what: &str) -> Self {
        Self::malformed(format!("{what} does not exist")).with_status(StatusCode::NOT_FOUND)
    }

    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(ProblemType::ServerInternal, hidden("internal error", detail.into()))
    }

    /// A temporary failure: 503 with Retry-After.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        let detail = hidden("temporarily unavailable, retry later", detail.into());
        let mut e = Self::new(ProblemType::ServerInternal, detail).with_status(StatusCode::SERVICE_UNAVAILABLE);
        e.retry_after = Some(5);
        e
    }

    pub fn document(&self) -> ProblemDocument {
        ProblemDocument {
            kind: self.kind.urn(),
            detail: self.detail.clone(),
            status: self.status.as_u16(),
            subproblems: self
                .subproblems
                .iter()
                .map(|(k, d, id)| Subproblem { kind: k.urn(), detail: d.clone(), identifier: id.clone() })
                .collect(),
            algorithms: self.algorithms.as_ref().map(|a| a.iter().map(|s| s.to_string()).collect()),
        }
    }

    /// The document as JSON text (kept on orders and challenges).
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.document()).unwrap_or_else(|_| "{}".to_owned())
    }

    /// An order an approver denied: `unauthorized`, naming who denied it and why.
    pub fn approval_denied(denied: &ApprovalDenied) -> Self {
        Self::new(ProblemType::Unauthorized, denied.to_string())
    }

    /// Maps a core error, naming the identifiers of `order` a SAN rule refused.
    pub fn from_core(e: &CoreError, identifiers: &[Identifier]) -> Self {
        match e.kind() {
            ErrorKind::Denied => denial(e, identifiers),
            ErrorKind::BadRequest => Self::new(ProblemType::BadCsr, e.to_string()),
            ErrorKind::NotFound => Self::internal(format!("the endpoint is misconfigured: {e}")),
            ErrorKind::Unavailable => Self::unavailable(e.to_string()),
            ErrorKind::Internal => Self::internal(e.to_string()),
        }
    }
}

/// A policy denial: the problem type follows the kind of rule; `detail` names them all.
fn denial(e: &CoreError, identifiers: &[Identifier]) -> AcmeError {
    let violations = e.violations();
    let rules: Vec<&str> = violations.iter().map(|v| v.rule.as_str()).collect();
    let is_san = |r: &str| r.starts_with("subjectAltNames") || r.starts_with("issuer.nameConstraints");
    let kind = if rules.iter().any(|r| r.starts_with("requesters")) {
        ProblemType::Unauthorized
    } else if rules.iter().any(|r| is_san(r)) {
        ProblemType::RejectedIdentifier
    } else if rules.iter().any(|r| r.starts_with("keys")) {
        ProblemType::BadPublicKey
    } else {
        ProblemType::BadCsr
    };
    let detail = format!(
        "policy denied the request (rules: {}): {}",
        rules.join(", "),
        violations.iter().map(|v| v.to_string()).collect::<Vec<_>>().join("; ")
    );
    let mut err = AcmeError::new(kind, detail);
    for v in violations.iter().filter(|v| is_san(&v.rule)) {
        for id in identifiers {
            let prefix = match id.kind {
                crate::state::IdentifierType::Dns => format!("DNS:{}", id.value),
                crate::state::IdentifierType::Ip => format!("IP:{}", id.value),
            };
            let names_it = v.message.starts_with(&format!("{prefix}:"))
                || v.message.starts_with(&format!("{prefix} "))
                || v.message.contains(&format!("`{}`", id.value));
            if names_it {
                err = err.with_subproblem(ProblemType::RejectedIdentifier, v.to_string(), id.clone());
            }
        }
    }
    err
}

/// What a client is told of a server-side failure (see [`pkiplane_core::logsafe::hide`]).
fn hidden(public: &str, detail: String) -> String {
    pkiplane_core::logsafe::hide("ACME", public, &detail)
}

impl From<StoreError> for AcmeError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable { .. } => AcmeError::unavailable(format!("state store: {}", e.detail())),
            other => AcmeError::internal(format!("state store: {other}")),
        }
    }
}

/// A CA service failure outside an order (inventory lookups, revocation).
impl From<CoreError> for AcmeError {
    fn from(e: CoreError) -> Self {
        AcmeError::from_core(&e, &[])
    }
}

impl IntoResponse for AcmeError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(problem = self.kind.name(), detail = %self.detail, "ACME request failed");
        } else {
            tracing::debug!(problem = self.kind.name(), detail = %self.detail, "ACME request refused");
        }
        let body = serde_json::to_vec(&self.document()).unwrap_or_default();
        let mut rsp = (self.status, body).into_response();
        let h = rsp.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if let Some(secs) = self.retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some(loc) = self.location.as_deref().and_then(|l| HeaderValue::from_str(l).ok()) {
            h.insert(header::LOCATION, loc);
        }
        rsp
    }
}

#[cfg(test)]
mod tests {
    use pkiplane_core::ObjectRef;
    use pkiplane_core::inventory::StoreError;
    use pkiplane_core::policy::Violation;

    use super::*;

    #[test]
    fn problem_serializes_with_urn_status_and_subproblems() {
        let e = AcmeError::new(ProblemType::RejectedIdentifier, "two names refused")
            .with_subproblem(ProblemType::RejectedIdentifier, "not allowed", Identifier::dns("a.example"))
            .with_subproblem(ProblemType::RejectedIdentifier, "not allowed", Identifier::ip("192.0.2.1"));
        let v: serde_json::Value = serde_json::from_str(&e.to_json()).unwrap();
        assert_eq!(v["type"], "urn:ietf:params:acme:error:rejectedIdentifier");
        assert_eq!(v["status"], 400);
        assert_eq!(v["detail"], "two names refused");
        assert_eq!(v["subproblems"][0]["identifier"]["type"], "dns");
        assert_eq!(v["subproblems"][1]["identifier"]["value"], "192.0.2.1");
        assert_eq!(v["subproblems"][1]["type"], "urn:ietf:params:acme:error:rejectedIdentifier");
        let plain: serde_json::Value = serde_json::from_str(&AcmeError::unauthorized("no").to_json()).unwrap();
        assert_eq!(plain["status"], 403);
        assert!(plain.get("subproblems").is_none());
    }

    #[test]
    fn denials_map_by_rule_family_and_name_the_rules() {
        let ids = [Identifier::dns("a.example"), Identifier::dns("b.example")];
        let deny = |rules: &[(&str, &str)]| CoreError::Denied {
            profile: ObjectRef::new("pki", "p"),
            violations: rules.iter().map(|(r, m)| Violation::new(*r, *m)).collect(),
        };
        let e = AcmeError::from_core(
            &deny(&[("subjectAltNames.dns.suffixes", "DNS:b.example is not under any allowed suffix (corp)")]),
            &ids,
        );
        assert_eq!(e.kind, ProblemType::RejectedIdentifier);
        assert!(e.detail.contains("subjectAltNames.dns.suffixes"));
        assert_eq!(e.subproblems.len(), 1);
        assert_eq!(e.subproblems[0].2, ids[1]);
        let e = AcmeError::from_core(&deny(&[("keys.rsaMinBits", "small")]), &ids);
        assert_eq!(e.kind, ProblemType::BadPublicKey);
        let e = AcmeError::from_core(&deny(&[("keys.rsaMinBits", "x"), ("requesters.identities", "y")]), &ids);
        assert_eq!(e.kind, ProblemType::Unauthorized);
        assert!(e.detail.contains("requesters.identities") && e.detail.contains("keys.rsaMinBits"));
        let e = AcmeError::from_core(&deny(&[("subject.commonName.presence", "x")]), &ids);
        assert_eq!(e.kind, ProblemType::BadCsr);
        let e = AcmeError::from_core(&CoreError::IssuerUnavailable(ObjectRef::new("a", "b"), "down".into()), &ids);
        assert_eq!(
            (e.kind, e.status, e.retry_after),
            (ProblemType::ServerInternal, StatusCode::SERVICE_UNAVAILABLE, Some(5))
        );
    }

    #[test]
    fn server_failures_reach_the_client_as_a_request_id() {
        for e in [
            AcmeError::from(StoreError::invalid("row 7 of orders is corrupt")),
            AcmeError::from(StoreError::unavailable("database is locked")),
        ] {
            let doc = e.document();
            assert_eq!(doc.kind, ProblemType::ServerInternal.urn());
            assert!(doc.detail.contains("(request id "), "{}", doc.detail);
            assert!(!doc.detail.contains("row 7") && !doc.detail.contains("locked"), "{}", doc.detail);
        }
    }
}
