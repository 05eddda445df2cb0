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

    /// Writes the event to the audit target.
    pub fn emit(&self) {
        let json = serde_json::to_string(self).unwrap_or_default();
        if self.decision == "issued" || self.decision == "revoked" {
            tracing::info!(target: TARGET, decision = self.decision, event = %json, "audit");
        } else {
            tracing::warn!(target: TARGET, decision = self.decision, event = %json, "audit");
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
