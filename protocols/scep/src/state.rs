//! SCEP (RFC 8894) protocol state: replay records (transactionID + senderNonce), one-time
//! challenge passwords, transactions (for CertPoll and resends) and the RA key pair.
//!
//! Everything a replica needs to answer any message of a transaction lives here, so any
//! number of endpoint replicas can serve one SCEP endpoint (docs/architecture.md, "Where
//! state lives"). Replay
//! records and challenges are consumed with atomic insert-if-absent / update-if-unused
//! operations: a message or a challenge is accepted exactly once by any replica.
//!
//! One-time challenges are stored by the SHA-256 of their value only; the value itself
//! is shown once, to whoever minted it.

use std::time::SystemTime;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use pkiplane_core::inventory::StoreError;
use pkiplane_core::inventory::opt_unix_seconds as opt_seconds;
use pkiplane_core::inventory::unix_seconds;
use pkiplane_core::model::ObjectRef;

pub mod memory;

/// A one-time challenge password (the `challengePassword` attribute of a PKCS#10
/// request, RFC 2985 section 5.4.1, as RFC 8894 section 2.2 uses it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScepChallenge {
    /// Public identifier (shown in logs and the inventory's requester identity).
    pub id: String,
    pub endpoint: ObjectRef,
    /// SHA-256 of the challenge value, lowercase hex. The value is never stored.
    pub secret_sha256: String,
    #[serde(with = "unix_seconds")]
    pub expires: SystemTime,
    /// The subject commonName the challenge may be used for (None: any).
    pub common_name: Option<String>,
    /// The SANs (`DNS:name`, `IP:addr`, `URI:uri`, `email:addr`) the request may carry;
    /// empty: any. A bound challenge refuses a request naming anything else.
    pub sans: Vec<String>,
    /// Who minted it (the API client's name, or `cli`).
    pub created_by: String,
    #[serde(with = "unix_seconds")]
    pub created_at: SystemTime,
    #[serde(with = "opt_seconds", default)]
    pub used_at: Option<SystemTime>,
}

impl ScepChallenge {
    /// Bound to some identity (a commonName or SANs).
    pub fn is_bound(&self) -> bool {
        self.common_name.is_some() || !self.sans.is_empty()
    }

    /// What the challenge is found by.
    pub fn key(&self) -> ChallengeKey {
        ChallengeKey { endpoint: self.endpoint.clone(), secret_sha256: self.secret_sha256.clone() }
    }
}

/// The outcome of [`ScepStore::consume_challenge`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChallengeUse {
    /// It was unused and unexpired; it is now used.
    Consumed(Box<ScepChallenge>),
    Unknown,
    Expired,
    AlreadyUsed,
}

impl ChallengeUse {
    /// The outcome of a conditional write that marks the challenge used only if it is
    /// unused and unexpired: `consumed` when the write changed it, `stored` the challenge
    /// as read after the write.
    pub fn after_consume(consumed: bool, stored: Option<ScepChallenge>) -> Self {
        match stored {
            None => ChallengeUse::Unknown,
            Some(ch) if consumed => ChallengeUse::Consumed(Box::new(ch)),
            Some(ch) if ch.used_at.is_some() => ChallengeUse::AlreadyUsed,
            Some(_) => ChallengeUse::Expired,
        }
    }
}

/// How an endpoint finds a one-time challenge: by the SHA-256 of its secret (the secret
/// itself is never stored).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ChallengeKey {
    pub endpoint: ObjectRef,
    pub secret_sha256: String,
}

/// Where a SCEP transaction is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransactionStatus {
    /// Waiting for approval (PKIStatus PENDING).
    Pending,
    /// The certificate was issued (`issuer` and `serial` are set).
    Issued,
    /// Refused (`fail_info` is set).
    Failed,
}

impl TransactionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TransactionStatus::Pending => "pending",
            TransactionStatus::Issued => "issued",
            TransactionStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Issued, Self::Failed].into_iter().find(|t| t.as_str() == s)
    }
}

/// One enrollment transaction (RFC 8894 section 3.2.1.1: a transactionID names it for
/// the whole exchange, PKCSReq or RenewalReq, then CertPoll until it completes).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScepTransaction {
    pub endpoint: ObjectRef,
    pub transaction_id: String,
    pub status: TransactionStatus,
    /// The CertificateProfile the request was made under.
    pub profile: ObjectRef,
    /// The authenticated requester identity (a challenge id, or the renewed certificate).
    pub requester: String,
    /// The PKCS#10 request (DER) without its challengePassword attribute (no secret is
    /// stored; its signature therefore no longer verifies: proof of possession was
    /// checked on receipt), kept for the approval path and to recognise resends.
    pub csr_der: Vec<u8>,
    /// Serial of the certificate a RenewalReq renews.
    pub renewal_of: Option<String>,
    pub issuer: Option<ObjectRef>,
    pub serial: Option<String>,
    /// The RFC 8894 failInfo code of a failed transaction.
    pub fail_info: Option<u8>,
    #[serde(with = "unix_seconds")]
    pub created_at: SystemTime,
    #[serde(with = "unix_seconds")]
    pub updated_at: SystemTime,
}

/// The RA key pair and certificate of an endpoint (RFC 8894 section 2.1: the key SCEP
/// clients encrypt to, and that signs CertRep messages; never the CA key).
#[derive(Clone, PartialEq, Eq)]
pub struct RaMaterial {
    pub certificate_der: Vec<u8>,
    /// PKCS#8 DER of the RSA private key.
    pub private_key_pkcs8: Zeroizing<Vec<u8>>,
    /// The Issuer that signed the certificate.
    pub issuer: ObjectRef,
}

impl std::fmt::Debug for RaMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaMaterial")
            .field("certificate_der", &format_args!("{} bytes", self.certificate_der.len()))
            .field("private_key_pkcs8", &format_args!("<redacted>"))
            .field("issuer", &self.issuer)
            .finish()
    }
}

/// New RA material for an endpoint: it takes the place of the stored material when the
/// endpoint has none, or when the stored certificate is `replacing` (a renewal).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RaUpdate {
    pub endpoint: ObjectRef,
    pub material: RaMaterial,
    /// The certificate (DER) of the material it renews.
    pub replacing: Option<Vec<u8>>,
}

impl RaUpdate {
    /// Whether the update takes the place of `stored` (`None`: nothing stored).
    pub fn replaces(&self, stored: Option<&RaMaterial>) -> bool {
        stored.is_none_or(|s| self.replacing.as_deref() == Some(s.certificate_der.as_slice()))
    }
}

/// A request message an endpoint has seen: (endpoint, transactionID, senderNonce), kept
/// until `expires` so that a replay of it is refused (RFC 8894 section 3.2.1.4.5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeenMessage {
    pub endpoint: ObjectRef,
    pub transaction_id: String,
    pub sender_nonce: Vec<u8>,
    pub expires: SystemTime,
}

/// Shared SCEP state. Every write is durable when it returns.
#[async_trait]
pub trait ScepStore: Send + Sync {
    /// Records a message as seen; false when it was seen before (a replay). Atomic.
    async fn record_message(&self, seen: &SeenMessage) -> Result<bool, StoreError>;

    /// Stores a newly minted challenge (its `secret_sha256` must be unique).
    async fn add_challenge(&self, challenge: &ScepChallenge) -> Result<(), StoreError>;
    /// The challenge of the endpoint with this SHA-256, used or not.
    async fn challenge(&self, key: &ChallengeKey) -> Result<Option<ScepChallenge>, StoreError>;
    /// Marks the challenge used if it exists, is unused and has not expired at `now`.
    /// Atomic: of two concurrent uses, one sees [`ChallengeUse::AlreadyUsed`].
    async fn consume_challenge(&self, key: &ChallengeKey, now: SystemTime) -> Result<ChallengeUse, StoreError>;

    /// Creates the transaction unless one with its (endpoint, transaction_id) exists;
    /// false then.
    async fn create_transaction(&self, tx: &ScepTransaction) -> Result<bool, StoreError>;
    async fn transaction(
        &self,
        endpoint: &ObjectRef,
        transaction_id: &str,
    ) -> Result<Option<ScepTransaction>, StoreError>;
    /// Replaces the stored transaction of the same (endpoint, transaction_id).
    async fn update_transaction(&self, tx: &ScepTransaction) -> Result<(), StoreError>;
    /// The endpoint's transactions waiting for approval, oldest first.
    async fn pending_transactions(
        &self,
        endpoint: &ObjectRef,
        limit: usize,
    ) -> Result<Vec<ScepTransaction>, StoreError>;

    /// The endpoint's RA material, if any.
    async fn ra_material(&self, endpoint: &ObjectRef) -> Result<Option<RaMaterial>, StoreError>;
    /// Stores the update's material if [`RaUpdate::replaces`] what is stored; otherwise
    /// keeps what is stored. Returns what is stored afterwards, so concurrent replicas
    /// converge on one RA key.
    async fn put_ra_material(&self, update: &RaUpdate) -> Result<RaMaterial, StoreError>;

    /// Deletes replay records expired at `now`, challenges that expired before
    /// `now - retention`, and completed transactions older than `now - retention`.
    async fn purge_expired(&self, now: SystemTime, retention: std::time::Duration) -> Result<u64, StoreError>;
}
