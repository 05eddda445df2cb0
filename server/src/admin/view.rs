//! The admin API's JSON, shared by the server and the CLI that reads it: certificate
//! records as people see them, revocation reasons by their RFC 5280 names, and the
//! request and answer bodies.

use pkiplane_core::audit::rfc3339;
use pkiplane_core::inventory::{CertificateRecord, RevocationReason};
use pkiplane_core::x509::pem;
use serde::{Deserialize, Serialize};

/// A record as shown to people: times in RFC 3339, the certificate as PEM.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordView {
    pub serial: String,
    pub status: String,
    pub issuer: String,
    pub profile: String,
    pub protocol: String,
    pub endpoint: Option<String>,
    pub requester: String,
    pub subject: String,
    pub sans: Vec<String>,
    pub key_algorithm: String,
    pub not_before: String,
    pub not_after: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewed_from: Option<String>,
    pub created_at: String,
    /// The protocol exchange that asked for the certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exchange: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
}

impl RecordView {
    pub fn new(r: &CertificateRecord, with_pem: bool) -> Self {
        RecordView {
            serial: r.serial.clone(),
            status: r.status.as_str().to_owned(),
            issuer: r.issuer.to_string(),
            profile: r.profile.to_string(),
            protocol: r.protocol.to_string(),
            endpoint: r.endpoint.as_ref().map(|e| e.to_string()),
            requester: r.requester.clone(),
            subject: r.subject.clone(),
            sans: r.sans.clone(),
            key_algorithm: r.key_algorithm.clone(),
            not_before: rfc3339(r.not_before),
            not_after: rfc3339(r.not_after),
            revocation_reason: r.revocation.map(|v| format!("{:?}", v.reason)),
            revoked_at: r.revocation.map(|v| rfc3339(v.at)),
            renewed_from: r.renewed_from.clone(),
            created_at: rfc3339(r.created_at),
            exchange: r.exchange.clone(),
            certificate: if with_pem { r.der.as_ref().map(|d| pem::encode("CERTIFICATE", d)) } else { None },
        }
    }
}

/// RFC 5280 reason names (section 5.3.1) a revocation may give.
const REASONS: [(&str, RevocationReason); 9] = [
    ("unspecified", RevocationReason::Unspecified),
    ("keyCompromise", RevocationReason::KeyCompromise),
    ("cACompromise", RevocationReason::CaCompromise),
    ("affiliationChanged", RevocationReason::AffiliationChanged),
    ("superseded", RevocationReason::Superseded),
    ("cessationOfOperation", RevocationReason::CessationOfOperation),
    ("certificateHold", RevocationReason::CertificateHold),
    ("privilegeWithdrawn", RevocationReason::PrivilegeWithdrawn),
    ("aACompromise", RevocationReason::AaCompromise),
];

/// A reason by its RFC 5280 name (case ignored).
pub fn parse_reason(s: &str) -> Result<RevocationReason, String> {
    REASONS
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(s))
        .map(|(_, r)| *r)
        .ok_or_else(|| format!("unknown reason `{s}` ({})", REASONS.map(|(n, _)| n).join(", ")))
}

/// The RFC 5280 name of a reason.
pub fn reason_name(reason: RevocationReason) -> &'static str {
    REASONS.iter().find(|(_, r)| *r == reason).map(|(n, _)| *n).unwrap_or("removeFromCRL")
}

/// A serial as typed: hex, colons and case ignored.
pub fn normalize_serial(s: &str) -> String {
    s.replace(':', "").to_ascii_lowercase()
}

/// `GET /admin/v1/certificates`: one page.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateList {
    pub items: Vec<RecordView>,
    /// Pass as `continue` for the next page; absent on the last one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r#continue: Option<String>,
}

/// `POST /admin/v1/certificates/{serial}/revoke`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RevokeRequest {
    /// An RFC 5280 reason name; `unspecified` when absent.
    #[serde(default)]
    pub reason: Option<String>,
}

/// The answer to a revocation.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RevokeAnswer {
    pub serial: String,
    pub issuer: String,
    /// The reason that stands (the earlier one when it was already revoked).
    pub reason: String,
    pub revoked_at: String,
    /// True when it had been revoked before (nothing changed).
    pub already_revoked: bool,
}

/// The answer to `POST /admin/v1/issuers/{namespace}/{name}/crl`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CrlAnswer {
    pub issuer: String,
    pub this_update: String,
    pub next_update: String,
    pub revoked_serials: usize,
}

/// A request waiting for (or decided by) an approver, as people and the CLI see it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalView {
    pub id: String,
    /// waiting, approved or denied.
    pub state: String,
    pub profile: String,
    pub issuer: String,
    pub protocol: String,
    #[serde(default)]
    pub endpoint: Option<String>,
    pub requester: String,
    pub subject: String,
    pub sans: Vec<String>,
    pub key_algorithm: String,
    /// The profile rules the request passed when it was made.
    pub passed_rules: Vec<String>,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The certificate's serial once issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
}

impl ApprovalView {
    pub fn new(r: &pkiplane_core::approval::ApprovalRequest) -> Self {
        Self {
            id: r.id.clone(),
            state: r.state.as_str().to_owned(),
            profile: r.profile.to_string(),
            issuer: r.issuer.to_string(),
            protocol: r.requester.protocol.to_string(),
            endpoint: r.requester.endpoint.as_ref().map(ToString::to_string),
            requester: r.requester.identity.clone(),
            subject: r.subject.clone(),
            sans: r.sans.clone(),
            key_algorithm: r.key_algorithm.clone(),
            passed_rules: r.passed_rules.clone(),
            created_at: rfc3339(r.created_at),
            decided_by: r.decision.as_ref().map(|d| d.by.clone()),
            decided_at: r.decision.as_ref().map(|d| rfc3339(d.at)),
            reason: r.decision.as_ref().and_then(|d| d.reason.clone()),
            serial: r.serial.clone(),
        }
    }
}

/// `GET /admin/v1/approvals`.
#[derive(Debug, Serialize, Deserialize)]
pub struct ApprovalList {
    pub items: Vec<ApprovalView>,
}

/// `POST /admin/v1/approvals/{id}/approve` (reason optional) and `/deny` (required).
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    #[serde(default)]
    pub reason: Option<String>,
}

/// Every error: the HTTP status, a short code and what went wrong.
#[derive(Debug, Serialize, Deserialize)]
pub struct ErrorBody {
    pub status: u16,
    pub error: String,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_round_trip_by_rfc_name() {
        for (name, reason) in REASONS {
            assert_eq!(parse_reason(name), Ok(reason));
            assert_eq!(parse_reason(&name.to_ascii_uppercase()), Ok(reason));
            assert_eq!(reason_name(reason), name);
        }
        assert!(parse_reason("stolen").unwrap_err().contains("keyCompromise"));
    }
}
