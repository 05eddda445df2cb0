//! ACME (RFC 8555) protocol state: accounts, orders, authorizations, challenges, nonces,
//! external account binding key use and ARI replacement links.
//!
//! Every record that changes carries a `version`; updates are compare-and-set on it, so
//! two replicas racing on one order or authorization cannot both win (one sees
//! [`false`] / [`AccountUpdate::Conflict`] and re-reads). Nonces are consumed with an
//! atomic delete-if-present, so a nonce is accepted exactly once by any replica.
//!
//! Problem documents kept on orders and challenges are opaque JSON text to the store: the
//! protocol crate owns their wire form.

use std::time::SystemTime;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use pkiplane_core::inventory::StoreError;
use pkiplane_core::inventory::opt_unix_seconds as opt_seconds;
use pkiplane_core::inventory::unix_seconds;
use pkiplane_core::model::ObjectRef;

pub mod memory;

/// Identifier types: `dns` (RFC 8555 section 9.7.7) and `ip` (RFC 8738).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IdentifierType {
    Dns,
    Ip,
}

impl IdentifierType {
    pub fn as_str(self) -> &'static str {
        match self {
            IdentifierType::Dns => "dns",
            IdentifierType::Ip => "ip",
        }
    }
}

/// An identifier as an order or authorization names it (RFC 8555 section 7.1.3).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Identifier {
    #[serde(rename = "type")]
    pub kind: IdentifierType,
    pub value: String,
}

impl Identifier {
    pub fn dns(value: impl Into<String>) -> Self {
        Self { kind: IdentifierType::Dns, value: value.into() }
    }

    pub fn ip(value: impl Into<String>) -> Self {
        Self { kind: IdentifierType::Ip, value: value.into() }
    }
}

/// Account status (RFC 8555 section 7.1.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountStatus {
    Valid,
    Deactivated,
    Revoked,
}

/// An ACME account (RFC 8555 section 7.1.2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub id: String,
    pub status: AccountStatus,
    /// The account public key as canonical JWK JSON (RFC 7638 member order).
    pub jwk: String,
    /// RFC 7638 SHA-256 thumbprint of `jwk`, base64url; unique across accounts.
    pub thumbprint: String,
    pub contact: Vec<String>,
    pub terms_agreed: bool,
    /// The external account binding key ID the account was created with.
    pub eab_kid: Option<String>,
    #[serde(with = "unix_seconds")]
    pub created_at: SystemTime,
    pub version: u64,
}

/// Order status (RFC 8555 section 7.1.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderStatus {
    Pending,
    Ready,
    Processing,
    Valid,
    Invalid,
}

/// Where an order's certificate is in the inventory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateRef {
    pub issuer: ObjectRef,
    /// Lowercase hex, as the inventory keys it.
    pub serial: String,
}

/// The certificate an order replaces (RFC 9773 section 5).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replaces {
    /// The ARI certificate identifier the client sent.
    pub cert_id: String,
    pub issuer: ObjectRef,
    pub serial: String,
}

/// An order (RFC 8555 section 7.1.3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub id: String,
    pub account_id: String,
    pub status: OrderStatus,
    #[serde(with = "unix_seconds")]
    pub expires: SystemTime,
    /// As requested (a wildcard keeps its `*.`), normalised and sorted.
    pub identifiers: Vec<Identifier>,
    /// The profile label (ACME profiles extension) the order was placed for.
    pub profile: String,
    #[serde(with = "opt_seconds", default)]
    pub not_before: Option<SystemTime>,
    #[serde(with = "opt_seconds", default)]
    pub not_after: Option<SystemTime>,
    /// Authorization ids, one per identifier, in identifier order.
    pub authorizations: Vec<String>,
    /// Problem document (JSON) of an invalid order.
    pub error: Option<String>,
    pub certificate: Option<CertificateRef>,
    pub replaces: Option<Replaces>,
    /// The CA's approval request of a processing order whose profile requires approval:
    /// polls of the order ask the CA about exactly this request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<String>,
    #[serde(with = "unix_seconds")]
    pub created_at: SystemTime,
    pub version: u64,
}

/// Authorization status (RFC 8555 section 7.1.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthzStatus {
    Pending,
    Valid,
    Invalid,
    Deactivated,
    Expired,
    Revoked,
}

impl AuthzStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthzStatus::Pending => "pending",
            AuthzStatus::Valid => "valid",
            AuthzStatus::Invalid => "invalid",
            AuthzStatus::Deactivated => "deactivated",
            AuthzStatus::Expired => "expired",
            AuthzStatus::Revoked => "revoked",
        }
    }
}

/// Challenge types: http-01 and dns-01 (RFC 8555 section 8.3, 8.4), tls-alpn-01 (RFC 8737).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ChallengeType {
    #[serde(rename = "http-01")]
    Http01,
    #[serde(rename = "dns-01")]
    Dns01,
    #[serde(rename = "tls-alpn-01")]
    TlsAlpn01,
}

impl ChallengeType {
    pub fn as_str(self) -> &'static str {
        match self {
            ChallengeType::Http01 => "http-01",
            ChallengeType::Dns01 => "dns-01",
            ChallengeType::TlsAlpn01 => "tls-alpn-01",
        }
    }
}

/// Challenge status (RFC 8555 section 7.1.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChallengeStatus {
    Pending,
    Processing,
    Valid,
    Invalid,
}

/// One challenge of an authorization.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: ChallengeType,
    pub token: String,
    pub status: ChallengeStatus,
    #[serde(with = "opt_seconds", default)]
    pub validated: Option<SystemTime>,
    /// When validation started (status `processing`): a validation whose replica died
    /// can be recognised as stale and restarted by another.
    #[serde(with = "opt_seconds", default)]
    pub processing_since: Option<SystemTime>,
    /// Problem document (JSON) of a failed validation.
    pub error: Option<String>,
}

/// What [`AcmeStore::valid_authorization`] looks for: an authorization of the account for
/// the identifier (the base domain with `wildcard` for a wildcard name) that is valid and
/// has not expired at `now`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorizationQuery {
    pub account_id: String,
    pub identifier: Identifier,
    pub wildcard: bool,
    pub now: SystemTime,
}

impl AuthorizationQuery {
    /// Whether `authz` is one the query asks for (the SQL stores say the same in SQL).
    pub fn matches(&self, authz: &Authorization) -> bool {
        authz.account_id == self.account_id
            && authz.identifier == self.identifier
            && authz.wildcard == self.wildcard
            && authz.status == AuthzStatus::Valid
            && authz.expires > self.now
    }
}

/// An authorization (RFC 8555 section 7.1.4). A wildcard order's authorization names the
/// base domain with `wildcard` set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authorization {
    pub id: String,
    pub account_id: String,
    pub identifier: Identifier,
    pub wildcard: bool,
    pub status: AuthzStatus,
    #[serde(with = "unix_seconds")]
    pub expires: SystemTime,
    pub challenges: Vec<Challenge>,
    #[serde(with = "unix_seconds")]
    pub created_at: SystemTime,
    pub version: u64,
}

/// An external account binding key being used for a new account (RFC 8555 section 7.3.4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EabUse {
    pub kid: String,
    /// The key binds one account only: a second use is refused.
    pub single_use: bool,
}

/// The outcome of [`AcmeStore::create_account`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NewAccountOutcome {
    Created,
    /// An account with this key exists already (a concurrent newAccount won).
    KeyExists(Account),
    /// The single-use EAB key has bound an account already.
    EabKeyUsed,
}

/// The outcome of [`AcmeStore::update_account`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AccountUpdate {
    Done,
    /// The stored version differs: re-read and retry.
    Conflict,
    /// The new key belongs to another account (its id).
    KeyInUse(String),
}

/// The outcome of [`AcmeStore::create_order`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NewOrderOutcome {
    Created,
    /// The certificate named in `replaces` is already replaced by this (not invalid) order.
    AlreadyReplaced(String),
}

/// The ACME state of every endpoint a store serves, each endpoint seeing only its own
/// accounts, orders, authorizations, nonces and EAB key uses (an account key registered
/// at two endpoints is two accounts).
pub trait AcmeStateScopes: Send + Sync {
    /// The state of `endpoint`.
    fn for_endpoint(&self, endpoint: &ObjectRef) -> std::sync::Arc<dyn AcmeStore>;
}

/// Shared ACME state of one endpoint. Every write is durable when it returns.
#[async_trait]
pub trait AcmeStore: Send + Sync {
    /// Records a nonce handed out (RFC 8555 section 6.5).
    async fn add_nonce(&self, nonce: &str, expires: SystemTime) -> Result<(), StoreError>;
    /// Atomically removes the nonce; true when it existed and had not expired at `now`.
    async fn take_nonce(&self, nonce: &str, now: SystemTime) -> Result<bool, StoreError>;

    /// Creates an account; atomically refuses a key already in use and, for a single-use
    /// EAB key, a key ID that bound an account before (then marks it used).
    async fn create_account(&self, account: &Account, eab: Option<&EabUse>) -> Result<NewAccountOutcome, StoreError>;
    async fn account(&self, id: &str) -> Result<Option<Account>, StoreError>;
    async fn account_by_thumbprint(&self, thumbprint: &str) -> Result<Option<Account>, StoreError>;
    /// Replaces the account if its stored version equals `account.version` (the stored
    /// version is then incremented). A changed thumbprint must be unused.
    async fn update_account(&self, account: &Account) -> Result<AccountUpdate, StoreError>;

    /// Creates an order with its new authorizations (reused ones are only referenced),
    /// and, with `order.replaces`, links the replaced certificate to the order unless a
    /// non-invalid order already replaces it.
    async fn create_order(
        &self,
        order: &Order,
        new_authorizations: &[Authorization],
    ) -> Result<NewOrderOutcome, StoreError>;
    async fn order(&self, id: &str) -> Result<Option<Order>, StoreError>;
    /// Compare-and-set on `order.version`; false when another writer got there first.
    async fn update_order(&self, order: &Order) -> Result<bool, StoreError>;
    /// The account's order ids, newest first.
    async fn account_orders(&self, account_id: &str, limit: usize) -> Result<Vec<String>, StoreError>;

    async fn authorization(&self, id: &str) -> Result<Option<Authorization>, StoreError>;
    /// Compare-and-set on `authz.version`.
    async fn update_authorization(&self, authz: &Authorization) -> Result<bool, StoreError>;
    /// A valid authorization of the account for the identifier that has not expired at
    /// `now` (authorization reuse, revocation by authorized account).
    async fn valid_authorization(&self, query: &AuthorizationQuery) -> Result<Option<Authorization>, StoreError>;

    /// Deletes nonces expired at `now` and orders (with authorizations no other order
    /// references) that expired more than `retention` before `now` without a
    /// certificate; returns how many records went.
    async fn purge_expired(&self, now: SystemTime, retention: std::time::Duration) -> Result<u64, StoreError>;
}
