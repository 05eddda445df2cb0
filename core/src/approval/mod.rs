//! Per-request approval: a CertificateProfile with `approval.required` keeps each request
//! that passed its policy as an [`ApprovalRequest`] until a person approves or denies that
//! one request by id.
//!
//! * [`crate::issuance::Ca::issue`] persists the record (durable before it answers) and
//!   says [`crate::issuance::IssueOutcome::Pending`] with the record's id.
//! * The protocol asks again with [`crate::issuance::Ca::approval_outcome`] (by id), or by
//!   calling `issue` again with the same request: a request is matched to its record by
//!   its *retry key* ([`retry_key`]: profile, protocol, endpoint, requester identity,
//!   protocol exchange, renewed certificate and public key), so a retry never makes a
//!   second record.
//! * Waiting: still pending. Denied: [`crate::issuance::IssueOutcome::Denied`] with the
//!   approver's reason. Approved: the policy is checked again against the *current*
//!   profile and issuer, then the certificate is signed and stored exactly once; every
//!   later ask returns that same certificate.
//!
//! The record's `serial` is claimed with a compare-and-set after the inventory's pending
//! record is durable, so two concurrent asks (two replicas) sign at most one certificate,
//! and a crash between the two leaves an abandoned serial the next ask replaces.

mod flow;
pub mod memory;

use std::time::SystemTime;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::inventory::StoreError;
use crate::inventory::unix_seconds;
use crate::model::{ObjectRef, Protocol, Requester};
use crate::policy::RequestedValidity;

/// Where a request waiting for approval stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalState {
    Waiting,
    Approved,
    Denied,
}

impl ApprovalState {
    pub const ALL: [ApprovalState; 3] = [ApprovalState::Waiting, ApprovalState::Approved, ApprovalState::Denied];

    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalState::Waiting => "waiting",
            ApprovalState::Approved => "approved",
            ApprovalState::Denied => "denied",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str().eq_ignore_ascii_case(s))
    }
}

impl std::fmt::Display for ApprovalState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A person's decision on one request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalDecision {
    pub state: ApprovalState,
    /// Who decided (a user name, a ServiceAccount, `cli:<user>`).
    pub by: String,
    #[serde(with = "unix_seconds")]
    pub at: SystemTime,
    /// Why; required for a denial, optional for an approval.
    pub reason: Option<String>,
}

/// One request waiting for (or decided by) a person.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalRequest {
    /// Random, 32 hex digits; what approvers name.
    pub id: String,
    pub profile: ObjectRef,
    pub issuer: ObjectRef,
    /// Who asked, as the protocol authenticated them (protocol, endpoint, identity, claims).
    pub requester: Requester,
    /// The CSR as the CA judged it (DER; a challenge password is never kept).
    #[serde(with = "base64_bytes")]
    pub csr_der: Vec<u8>,
    /// What the CSR asks for: subject DN (RFC 4514), SANs (`DNS:...`), key (`ECDSA P-256`).
    pub subject: String,
    pub sans: Vec<String>,
    pub key_algorithm: String,
    /// Validity the requester asked for (ACME newOrder, CMP certTemplate).
    #[serde(with = "crate::inventory::opt_unix_seconds", default)]
    pub requested_not_before: Option<SystemTime>,
    #[serde(with = "crate::inventory::opt_unix_seconds", default)]
    pub requested_not_after: Option<SystemTime>,
    /// The rules of the profile the request passed when it was made, and the policy's notes.
    pub passed_rules: Vec<String>,
    /// Serial (hex) of the certificate this request renews, if any.
    pub renewal_of: Option<String>,
    /// The protocol exchange that asked (see [`crate::issuance::IssuanceRequest::exchange`]).
    pub exchange: Option<String>,
    /// What matches a protocol's retry to this record (see [`retry_key`]).
    pub retry_key: String,
    #[serde(with = "unix_seconds")]
    pub created_at: SystemTime,
    pub state: ApprovalState,
    /// The decision, once made.
    pub decision: Option<ApprovalDecision>,
    /// Serial (hex) of the certificate issued after approval (claimed before signing).
    pub serial: Option<String>,
}

impl ApprovalRequest {
    pub fn protocol(&self) -> Protocol {
        self.requester.protocol
    }

    pub fn requested(&self) -> RequestedValidity {
        RequestedValidity { not_before: self.requested_not_before, not_after: self.requested_not_after }
    }
}

/// Filters for listing requests; `None` means "any". Newest first.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalFilter {
    pub state: Option<ApprovalState>,
    pub profile: Option<ObjectRef>,
    pub issuer: Option<ObjectRef>,
    pub protocol: Option<Protocol>,
    pub endpoint: Option<ObjectRef>,
    /// Exact requester identity.
    pub requester: Option<String>,
    /// Exact protocol exchange (how ACME finds the request of an order).
    pub exchange: Option<String>,
    pub limit: Option<usize>,
}

impl ApprovalFilter {
    /// Waiting requests only.
    pub fn waiting() -> Self {
        Self { state: Some(ApprovalState::Waiting), ..Self::default() }
    }

    /// Whether `r` passes the filter (the in-memory store's query; the SQL stores say the same).
    pub fn matches(&self, r: &ApprovalRequest) -> bool {
        self.state.is_none_or(|s| s == r.state)
            && self.profile.as_ref().is_none_or(|p| *p == r.profile)
            && self.issuer.as_ref().is_none_or(|i| *i == r.issuer)
            && self.protocol.is_none_or(|p| p == r.requester.protocol)
            && self.endpoint.as_ref().is_none_or(|e| Some(e) == r.requester.endpoint.as_ref())
            && self.requester.as_ref().is_none_or(|q| *q == r.requester.identity)
            && self.exchange.as_ref().is_none_or(|x| Some(x) == r.exchange.as_ref())
    }
}

/// The answer of [`ApprovalStore::decide_approval`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecideOutcome {
    /// The request was waiting and now carries the decision.
    Decided(Box<ApprovalRequest>),
    /// The request was decided before; nothing changed.
    AlreadyDecided(Box<ApprovalRequest>),
    NotFound,
}

/// Waiting requests of one profile (feeds the profile's `waitingApproval` status).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WaitingCount {
    pub profile: ObjectRef,
    pub waiting: u64,
}

/// Adds the waiting counts to per-profile inventory counts (`GroupBy::Profile`), making
/// an entry for a profile that has waiting requests and no certificates yet.
pub fn add_waiting(profiles: &mut Vec<crate::inventory::InventoryCounts>, waiting: &[WaitingCount]) {
    for w in waiting {
        let key = w.profile.to_string();
        match profiles.iter_mut().find(|c| c.key == key) {
            Some(c) => c.waiting_approval = w.waiting,
            None => profiles.push(crate::inventory::InventoryCounts {
                key,
                waiting_approval: w.waiting,
                ..Default::default()
            }),
        }
    }
}

/// Why an approval call was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum ApprovalError {
    #[error("no approval request {id}")]
    NotFound { id: String },
    #[error("approval request {id} was already {state} by {by}")]
    AlreadyDecided { id: String, state: ApprovalState, by: String },
    #[error("a denial needs a reason")]
    ReasonRequired,
    #[error("this CA's store keeps no approval requests")]
    Unsupported,
}

/// Where approval requests are kept. Every write is durable before it returns.
#[async_trait]
pub trait ApprovalStore: Send + Sync {
    /// Records a new waiting request. `Ok(false)`: a request with the same retry key
    /// exists already (a concurrent retry made it); nothing was written.
    async fn insert_approval(&self, request: &ApprovalRequest) -> Result<bool, StoreError>;
    async fn approval(&self, id: &str) -> Result<Option<ApprovalRequest>, StoreError>;
    async fn approval_by_retry_key(&self, retry_key: &str) -> Result<Option<ApprovalRequest>, StoreError>;
    /// Newest first.
    async fn list_approvals(&self, filter: &ApprovalFilter) -> Result<Vec<ApprovalRequest>, StoreError>;
    /// Records `decision` on request `id` if, and only if, it is waiting.
    async fn decide_approval(&self, id: &str, decision: &ApprovalDecision) -> Result<DecideOutcome, StoreError>;
    /// Sets the serial of an approved request's certificate from `expected` to `serial`
    /// (compare-and-set); `Ok(false)` when the stored serial is not `expected`.
    async fn claim_approval_serial(&self, id: &str, expected: Option<&str>, serial: &str) -> Result<bool, StoreError>;
    /// Waiting requests per profile (profiles without any are left out).
    async fn waiting_counts(&self) -> Result<Vec<WaitingCount>, StoreError>;
}

/// The key that matches a protocol's retry of a request to its record: SHA-256 over the
/// profile, protocol, endpoint, requester identity, protocol exchange (a SCEP or CMP
/// transactionID, an ACME order), the certificate being renewed and the CSR's public key.
///
/// EST has no exchange: a retried `/simpleenroll` (same client identity, same key) is the
/// same request, and a `/simplereenroll` renewing another certificate is a new one.
pub fn retry_key(
    profile: &ObjectRef,
    requester: &Requester,
    exchange: Option<&str>,
    renewal_of: Option<&str>,
    spki_der: &[u8],
) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let endpoint = requester.endpoint.as_ref().map(|e| e.to_string()).unwrap_or_default();
    for part in [
        profile.to_string().as_bytes(),
        requester.protocol.as_str().as_bytes(),
        endpoint.as_bytes(),
        requester.identity.as_bytes(),
        exchange.unwrap_or("").as_bytes(),
        renewal_of.unwrap_or("").as_bytes(),
        spki_der,
    ] {
        // Length-prefixed, so no two different tuples hash the same bytes.
        ctx.update(&(part.len() as u64).to_be_bytes());
        ctx.update(part);
    }
    hex::encode(ctx.finish().as_ref())
}

mod base64_bytes {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        STANDARD.decode(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_keys_separate_what_differs() {
        let p = ObjectRef::new("pki", "p");
        let r = Requester::new(Protocol::Est, "CN=dev1").at_endpoint(ObjectRef::new("pki", "est"));
        let k = retry_key(&p, &r, None, None, b"key");
        assert_eq!(k, retry_key(&p, &r, None, None, b"key"));
        assert_ne!(k, retry_key(&p, &r, None, None, b"other key"));
        assert_ne!(k, retry_key(&p, &r, None, Some("0a"), b"key"));
        assert_ne!(k, retry_key(&p, &Requester::new(Protocol::Est, "CN=dev2"), None, None, b"key"));
        assert_ne!(k, retry_key(&p, &r, Some("est"), None, b"key"));
        for s in ApprovalState::ALL {
            assert_eq!(ApprovalState::parse(s.as_str()), Some(s));
        }
    }

    #[test]
    fn waiting_counts_join_the_profile_counts() {
        use crate::inventory::InventoryCounts;
        let mut counts = vec![InventoryCounts { key: "pki/a".into(), issued: 4, ..Default::default() }];
        let waiting = [
            WaitingCount { profile: ObjectRef::new("pki", "a"), waiting: 2 },
            WaitingCount { profile: ObjectRef::new("pki", "b"), waiting: 1 },
        ];
        add_waiting(&mut counts, &waiting);
        assert_eq!((counts[0].issued, counts[0].waiting_approval), (4, 2));
        assert_eq!((counts[1].key.as_str(), counts[1].issued, counts[1].waiting_approval), ("pki/b", 0, 1));
    }
}
