//! The audit trail: one structured event per decision, whichever protocol carried it.
//!
//! Events go through `tracing` with target `pkiplane::audit`; the binary renders them as
//! JSON lines. Denials are also counted in the inventory store (for resource status).

use std::time::SystemTime;

use serde::Serialize;

use crate::model::{ObjectRef, Requester};
use crate::policy::Violation;

/// The tracing target of audit events.
pub const TARGET: &str = "pkiplane::audit";

/// An audit event.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent<'a> {
    /// `issued`, `denied`, `revoked`, `failed`.
    pub decision: &'static str,
    pub protocol: &'static str,
    pub endpoint: Option<String>,
    pub requester: &'a str,
    pub profile: String,
    pub issuer: Option<String>,
    pub serial: Option<&'a str>,
    pub subject: Option<String>,
    pub sans: Vec<String>,
    pub reasons: Vec<String>,
    pub at: String,
}

impl<'a> AuditEvent<'a> {
    pub fn new(decision: &'static str, requester: &'a Requester, profile: &ObjectRef, at: SystemTime) -> Self {
        Self {
            decision,
            protocol: requester.protocol.as_str(),
            endpoint: requester.endpoint.as_ref().map(|e| e.to_string()),
            requester: &requester.identity,
            profile: profile.to_string(),
            issuer: None,
            serial: None,
            subject: None,
            sans: Vec::new(),
            reasons: Vec::new(),
            at: rfc3339(at),
        }
    }

    pub fn with_reasons(mut self, violations: &[Violation]) -> Self {
        self.reasons = violations.iter().map(|v| v.to_string()).collect();
        self
    }

    /// Writes the event to the audit target, one field per fact (the binary renders the
    /// target as JSON lines).
    pub fn emit(&self) {
        let sans = self.sans.join(",");
        let reasons = self.reasons.join("; ");
        macro_rules! event {
            ($level:ident) => {
                tracing::$level!(
                    target: TARGET,
                    decision = self.decision,
                    protocol = self.protocol,
                    endpoint = self.endpoint.as_deref(),
                    requester = self.requester,
                    profile = %self.profile,
                    issuer = self.issuer.as_deref(),
                    serial = self.serial,
                    subject = self.subject.as_deref(),
                    sans = %sans,
                    reasons = %reasons,
                    at = %self.at,
                    "audit"
                )
            };
        }
        if self.decision == "issued" || self.decision == "revoked" {
            event!(info);
        } else {
            event!(warn);
        }
    }
}

/// RFC 3339 UTC, whole seconds.
pub fn rfc3339(t: SystemTime) -> String {
    let secs = crate::inventory::unix_seconds::to_secs(t);
    match der::DateTime::from_unix_duration(std::time::Duration::from_secs(secs.max(0) as u64)) {
        Ok(dt) => dt.to_string(),
        Err(_) => format!("@{secs}"),
    }
}
