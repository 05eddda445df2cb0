//! The inventory: one record per certificate, whichever protocol carried it, and the
//! store traits that keep it.
//!
//! Records are written before the certificate is signed (status `pending`) and completed
//! after (status `issued`); a record left `pending` by a crash is marked `abandoned` by
//! [`Inventory::recover_pending`]. A certificate is never handed out before its record is
//! durable.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::Cause;
use crate::model::{ObjectRef, Protocol};

/// Where a certificate is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CertStatus {
    /// Policy allowed it and its record is durable; not yet signed.
    Pending,
    /// Signed and stored.
    Issued,
    /// Revoked (see `revocation`).
    Revoked,
    /// Issuance never completed (crash between the persist and sign steps, or the signer
    /// failed): no certificate with this serial exists outside the CA.
    Abandoned,
}

impl CertStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CertStatus::Pending => "pending",
            CertStatus::Issued => "issued",
            CertStatus::Revoked => "revoked",
            CertStatus::Abandoned => "abandoned",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [CertStatus::Pending, CertStatus::Issued, CertStatus::Revoked, CertStatus::Abandoned]
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(s))
    }
}

/// RFC 5280 section 5.3.1 CRLReason codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RevocationReason {
    Unspecified = 0,
    KeyCompromise = 1,
    CaCompromise = 2,
    AffiliationChanged = 3,
    Superseded = 4,
    CessationOfOperation = 5,
    CertificateHold = 6,
    RemoveFromCrl = 8,
    PrivilegeWithdrawn = 9,
    AaCompromise = 10,
}

impl RevocationReason {
    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(code: u8) -> Option<Self> {
        use RevocationReason::*;
        Some(match code {
            0 => Unspecified,
            1 => KeyCompromise,
            2 => CaCompromise,
            3 => AffiliationChanged,
            4 => Superseded,
            5 => CessationOfOperation,
            6 => CertificateHold,
            8 => RemoveFromCrl,
            9 => PrivilegeWithdrawn,
            10 => AaCompromise,
            _ => return None,
        })
    }
}

/// Revocation facts of a revoked certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    pub reason: RevocationReason,
    #[serde(with = "unix_seconds")]
    pub at: SystemTime,
}

/// One certificate in the inventory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateRecord {
    /// Serial number, lowercase hex without separators.
    pub serial: String,
    pub issuer: ObjectRef,
    pub profile: ObjectRef,
    pub protocol: Protocol,
    pub endpoint: Option<ObjectRef>,
    /// The authenticated requester identity.
    pub requester: String,
    /// Subject DN in RFC 4514 form.
    pub subject: String,
    /// SANs as `DNS:name`, `IP:addr`, `URI:uri`, `email:addr`.
    pub sans: Vec<String>,
    /// e.g. `ECDSA P-256`, `RSA 2048`.
    pub key_algorithm: String,
    #[serde(with = "unix_seconds")]
    pub not_before: SystemTime,
    #[serde(with = "unix_seconds")]
    pub not_after: SystemTime,
    pub status: CertStatus,
    pub revocation: Option<Revocation>,
    /// The certificate (DER) once signed.
    #[serde(with = "opt_base64", default)]
    pub der: Option<Vec<u8>>,
    /// Serial of the certificate this one renewed or replaced (same issuer).
    pub renewed_from: Option<String>,
    #[serde(with = "unix_seconds")]
    pub created_at: SystemTime,
    /// The protocol exchange that asked for the certificate and delivers it (see
    /// [`crate::issuance::IssuanceRequest::exchange`]), recorded with the pending record so
    /// that a crash after signing leaves it findable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exchange: Option<String>,
}

impl CertificateRecord {
    /// Issued, not revoked and not yet expired at `now`.
    pub fn is_active(&self, now: SystemTime) -> bool {
        self.status == CertStatus::Issued && self.not_after > now
    }

    /// What every store refuses in [`Inventory::insert_pending`]: a record that is not
    /// pending, or one that already carries a certificate or a revocation.
    pub fn check_pending(&self) -> Result<(), StoreError> {
        if self.status != CertStatus::Pending {
            return Err(StoreError::WrongState {
                serial: self.serial.clone(),
                status: self.status,
                expected: CertStatus::Pending,
            });
        }
        if self.der.is_some() || self.revocation.is_some() {
            return Err(StoreError::invalid(format!(
                "pending record {} must not carry a certificate or revocation yet",
                self.serial
            )));
        }
        Ok(())
    }
}

/// Filters for listing the inventory; `None` means "any".
#[derive(Clone, Debug, Default)]
pub struct InventoryFilter {
    pub issuer: Option<ObjectRef>,
    pub profile: Option<ObjectRef>,
    pub protocol: Option<Protocol>,
    pub endpoint: Option<ObjectRef>,
    pub status: Option<CertStatus>,
    /// Only certificates whose notAfter is before this instant (and not yet expired at
    /// `now`): "expiring within".
    pub expiring_before: Option<SystemTime>,
    /// Only certificates of this protocol exchange.
    pub exchange: Option<String>,
    pub limit: Option<usize>,
}

/// What aggregate counts are grouped by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupBy {
    Issuer,
    Profile,
    Endpoint,
    /// Profile and protocol together.
    ProfileProtocol,
    /// Endpoint and profile together (`endpoint|profile`); records without an endpoint
    /// are not counted. Feeds an EnrollmentEndpoint's per-profile status.
    EndpointProfile,
}

/// Aggregate counts for one group (see [`GroupBy`]); these feed resource status.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InventoryCounts {
    /// The group key: an object reference, `profile|PROTOCOL` for ProfileProtocol, or
    /// `endpoint|profile` for EndpointProfile.
    pub key: String,
    /// Every certificate ever signed in this group (issued, revoked or expired).
    pub issued: u64,
    /// Issued, not revoked, not expired.
    pub active: u64,
    /// Active and expiring within the requested window.
    pub expiring_soon: u64,
    pub revoked: u64,
    /// Requests denied by policy.
    pub denied: u64,
    #[serde(with = "opt_unix_seconds", default)]
    pub last_issued_at: Option<SystemTime>,
    /// Requests waiting for a person's approval (profiles only; see [`crate::approval`]).
    #[serde(default)]
    pub waiting_approval: u64,
}

/// A revoked certificate as a CRL lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevokedEntry {
    pub serial: String,
    pub revoked_at: SystemTime,
    pub reason: RevocationReason,
    pub not_after: SystemTime,
}

/// A policy denial, counted for status and events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DenialRecord {
    pub issuer: Option<ObjectRef>,
    pub profile: ObjectRef,
    pub protocol: Protocol,
    pub endpoint: Option<ObjectRef>,
    pub requester: String,
    /// The rules that denied, comma separated.
    pub rules: String,
    pub at: SystemTime,
}

/// The result of a revocation request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RevokeOutcome {
    Revoked,
    /// Already revoked earlier; the original reason and time stand.
    AlreadyRevoked(Revocation),
    NotFound,
    /// The record is not in a revocable state (pending or abandoned).
    NotIssued(CertStatus),
}

impl RevokeOutcome {
    /// What revoking a record in `status` comes to, decided before anything is written:
    /// `None` for an issued record (revoke it now), otherwise the outcome to answer;
    /// `earlier` reads the original revocation of a record revoked before.
    pub fn unless_issued(
        status: CertStatus,
        earlier: impl FnOnce() -> Result<Revocation, StoreError>,
    ) -> Result<Option<RevokeOutcome>, StoreError> {
        match status {
            CertStatus::Issued => Ok(None),
            CertStatus::Revoked => Ok(Some(RevokeOutcome::AlreadyRevoked(earlier()?))),
            other => Ok(Some(RevokeOutcome::NotIssued(other))),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A record with this (issuer, serial) exists already.
    #[error("a certificate with serial {serial} already exists for issuer {issuer}")]
    DuplicateSerial { issuer: String, serial: String },
    #[error("no certificate with serial {serial} for issuer {issuer}")]
    NotFound { issuer: String, serial: String },
    #[error("certificate {serial} is {status:?}, expected {expected:?}")]
    WrongState { serial: String, status: CertStatus, expected: CertStatus },
    /// The caller passed a record the store refuses (e.g. a "pending" record with a
    /// certificate already attached).
    #[error("invalid record: {message}{}", caused_by(.source))]
    Invalid {
        message: String,
        #[source]
        source: Option<Cause>,
    },
    /// The store cannot answer now (I/O, locks, a full disk, a lost connection); nothing
    /// of the request was written and it may be retried.
    #[error("store unavailable: {message}{}", caused_by(.source))]
    Unavailable {
        message: String,
        #[source]
        source: Option<Cause>,
    },
    #[error("stored data is corrupt: {message}{}", caused_by(.source))]
    Corrupt {
        message: String,
        #[source]
        source: Option<Cause>,
    },
}

/// The cause chain of a [`StoreError`] as it reads after the message: driver errors
/// often say little at the top (PostgreSQL's "db error") and the rest in their sources.
fn caused_by(source: &Option<Cause>) -> String {
    let mut text = String::new();
    let mut next: Option<&(dyn std::error::Error + 'static)> = source.as_deref().map(|e| e as _);
    while let Some(e) = next {
        text.push_str(": ");
        text.push_str(&e.to_string());
        next = e.source();
    }
    text
}

impl StoreError {
    pub fn invalid(message: impl Into<String>) -> Self {
        StoreError::Invalid { message: message.into(), source: None }
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        StoreError::Unavailable { message: message.into(), source: None }
    }

    pub fn corrupt(message: impl Into<String>) -> Self {
        StoreError::Corrupt { message: message.into(), source: None }
    }

    /// Keeps `cause` as the source of an `Invalid`, `Unavailable` or `Corrupt` error (the
    /// others have none and stay as they are).
    pub fn because(mut self, cause: impl Into<Cause>) -> Self {
        if let StoreError::Invalid { source, .. }
        | StoreError::Unavailable { source, .. }
        | StoreError::Corrupt { source, .. } = &mut self
        {
            *source = Some(cause.into());
        }
        self
    }

    /// Says where: `prefix` goes before the message of an `Invalid`, `Unavailable` or
    /// `Corrupt` error.
    pub fn context(mut self, prefix: impl std::fmt::Display) -> Self {
        if let Some(message) = self.message_mut() {
            *message = format!("{prefix}: {message}");
        }
        self
    }

    /// The message of an `Invalid`, `Unavailable` or `Corrupt` error followed by its
    /// causes, without the kind ("store unavailable: ") the Display puts first; other
    /// errors as they display.
    pub fn detail(&self) -> String {
        match self {
            StoreError::Invalid { message, source }
            | StoreError::Unavailable { message, source }
            | StoreError::Corrupt { message, source } => format!("{message}{}", caused_by(source)),
            other => other.to_string(),
        }
    }

    /// The message of an `Invalid`, `Unavailable` or `Corrupt` error, without its cause.
    pub fn message(&self) -> Option<&str> {
        match self {
            StoreError::Invalid { message, .. }
            | StoreError::Unavailable { message, .. }
            | StoreError::Corrupt { message, .. } => Some(message),
            _ => None,
        }
    }

    fn message_mut(&mut self) -> Option<&mut String> {
        match self {
            StoreError::Invalid { message, .. }
            | StoreError::Unavailable { message, .. }
            | StoreError::Corrupt { message, .. } => Some(message),
            _ => None,
        }
    }
}

/// CA key material an issuer persists (standalone mode keeps it in the data directory's
/// store; in a cluster it lives in Secrets).
#[derive(Clone, PartialEq, Eq)]
pub struct StoredCaMaterial {
    pub certificate_der: Vec<u8>,
    /// PKCS#8 DER of the private key.
    pub private_key_pkcs8: zeroize::Zeroizing<Vec<u8>>,
    /// A fingerprint of the Issuer spec the material was made for; a changed spec makes
    /// a new CA.
    pub spec_hash: String,
}

impl std::fmt::Debug for StoredCaMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredCaMaterial")
            .field("certificate_der", &format_args!("{} bytes", self.certificate_der.len()))
            .field("private_key_pkcs8", &format_args!("<redacted>"))
            .field("spec_hash", &self.spec_hash)
            .finish()
    }
}

/// A staged next CA (CA key rollover): its certificate and key, and for a root the two
/// link certificates of RFC 9810 section 4.4 (`newWithOld`, `oldWithNew`). Persisted
/// before it is announced, so a restart announces the same next CA.
#[derive(Clone)]
pub struct StoredNextCa {
    /// The next CA itself (what becomes `StoredCaMaterial` on promotion).
    pub material: StoredCaMaterial,
    /// The new public key signed by the old key (roots only).
    pub new_with_old_der: Option<Vec<u8>>,
    /// The old public key signed by the new key (roots only).
    pub old_with_new_der: Option<Vec<u8>>,
}

impl std::fmt::Debug for StoredNextCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredNextCa")
            .field("material", &self.material)
            .field("links", &self.new_with_old_der.is_some())
            .finish()
    }
}

/// The last CRL an issuer published, kept so that it can still be served, until its
/// nextUpdate, while no new one can be made (a full disk) and after a restart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishedCrl {
    pub issuer: ObjectRef,
    pub this_update: SystemTime,
    pub next_update: SystemTime,
    /// The key identifier of the CA key that signed it.
    pub key_id: Vec<u8>,
    /// The serials it lists, sorted.
    pub serials: Vec<String>,
    pub der: Vec<u8>,
}

/// The inventory of certificates. Implementations must make every write durable before
/// returning (the issuance pipeline relies on it), with one exception: the pending record
/// ([`Inventory::write_pending`]) may be committed without waiting for the disk, as long
/// as it survives a crash of the process and is durable once any later write returns.
#[async_trait]
pub trait Inventory: Send + Sync {
    /// The store of requests waiting for approval kept beside this inventory, if it keeps
    /// them (see [`crate::approval`]). The SQLite, PostgreSQL and in-memory stores do.
    fn approvals(&self) -> Option<&dyn crate::approval::ApprovalStore> {
        None
    }
    /// Records a certificate about to be signed (status must be `Pending`, `der` None).
    async fn insert_pending(&self, record: &CertificateRecord) -> Result<(), StoreError> {
        record.check_pending()?;
        self.write_pending(record).await
    }
    /// Writes a record [`Inventory::insert_pending`] has checked (call that instead);
    /// `DuplicateSerial` when the issuer has a record with this serial.
    ///
    /// The record must be committed (visible to readers and to [`Inventory::recover_pending`]
    /// after the process dies) before this returns, but need not yet be synced to disk:
    /// the issuance's `mark_issued`, which is synced, makes it durable before any client
    /// sees the certificate. Losing it to a power failure before then loses nothing: the
    /// certificate signed under it existed only in the process's memory.
    async fn write_pending(&self, record: &CertificateRecord) -> Result<(), StoreError>;
    /// Completes a pending record with the signed certificate.
    async fn mark_issued(&self, issuer: &ObjectRef, serial: &str, der: &[u8]) -> Result<(), StoreError>;
    /// Marks a pending record as abandoned (signing failed).
    async fn mark_abandoned(&self, issuer: &ObjectRef, serial: &str) -> Result<(), StoreError>;
    /// Marks every record still pending and created before `before` as abandoned;
    /// returns how many. Run at start-up: a pending record from before then belongs to
    /// an issuance that never completed.
    async fn recover_pending(&self, before: SystemTime) -> Result<u64, StoreError>;
    async fn revoke(
        &self,
        issuer: &ObjectRef,
        serial: &str,
        revocation: Revocation,
    ) -> Result<RevokeOutcome, StoreError>;
    async fn get(&self, issuer: &ObjectRef, serial: &str) -> Result<Option<CertificateRecord>, StoreError>;
    /// Looks a serial up across all issuers (serials are random, so collisions across
    /// issuers are practically impossible; all matches are returned).
    async fn find_serial(&self, serial: &str) -> Result<Vec<CertificateRecord>, StoreError>;
    async fn list(&self, filter: &InventoryFilter) -> Result<Vec<CertificateRecord>, StoreError>;
    /// Aggregate counts per group at `now`, with "expiring soon" meaning notAfter within
    /// `expiring_within` of `now`.
    async fn counts(
        &self,
        group: GroupBy,
        now: SystemTime,
        expiring_within: Duration,
    ) -> Result<Vec<InventoryCounts>, StoreError>;
    /// Revoked certificates of an issuer that have not yet expired at `now` (what a CRL
    /// must list).
    async fn revoked_entries(&self, issuer: &ObjectRef, now: SystemTime) -> Result<Vec<RevokedEntry>, StoreError>;
    /// Returns the next CRL number for the issuer, strictly greater than any before.
    async fn next_crl_number(&self, issuer: &ObjectRef) -> Result<u64, StoreError>;
    /// The latest notAfter among the signed certificates (issued or revoked) of `issuer`
    /// whose record was made at or before `created_by`; `None` when there are none. Tells
    /// how long a CA key retired at `created_by` still has certificates in use.
    async fn latest_not_after(
        &self,
        issuer: &ObjectRef,
        created_by: SystemTime,
    ) -> Result<Option<SystemTime>, StoreError>;
    /// Counts a policy denial.
    async fn record_denial(&self, denial: &DenialRecord) -> Result<(), StoreError>;
    /// Keeps `crl` as its issuer's last published CRL, unless a newer one is kept.
    async fn save_crl(&self, crl: &PublishedCrl) -> Result<(), StoreError>;
    /// The issuer's last published CRL.
    async fn last_crl(&self, issuer: &ObjectRef) -> Result<Option<PublishedCrl>, StoreError>;
}

/// Persisted CA key material, keyed by Issuer.
#[async_trait]
pub trait CaMaterialStore: Send + Sync {
    async fn load_ca(&self, issuer: &ObjectRef) -> Result<Option<StoredCaMaterial>, StoreError>;
    async fn save_ca(&self, issuer: &ObjectRef, material: &StoredCaMaterial) -> Result<(), StoreError>;
    /// The staged next CA of `issuer`, if any.
    async fn load_next_ca(&self, issuer: &ObjectRef) -> Result<Option<StoredNextCa>, StoreError>;
    /// Stages (`Some`) or clears (`None`) the next CA of `issuer`; durable on return.
    async fn save_next_ca(&self, issuer: &ObjectRef, next: Option<&StoredNextCa>) -> Result<(), StoreError>;
    /// The retired CA keys of `issuer` still kept, oldest first.
    async fn load_retired_cas(&self, issuer: &ObjectRef) -> Result<Vec<StoredRetiredCa>, StoreError>;
    /// Keeps a retired CA key of `issuer` (replacing one with the same key id); durable on
    /// return.
    async fn save_retired_ca(&self, issuer: &ObjectRef, retired: &StoredRetiredCa) -> Result<(), StoreError>;
    /// Forgets a retired CA key of `issuer` for good, with its OCSP responder.
    async fn remove_retired_ca(&self, issuer: &ObjectRef, key_id: &[u8]) -> Result<(), StoreError>;
    /// The delegated OCSP responder of the CA key `ca_key_id` of `issuer`, if one was made.
    async fn load_ocsp_responder(
        &self,
        issuer: &ObjectRef,
        ca_key_id: &[u8],
    ) -> Result<Option<StoredOcspResponder>, StoreError>;
    /// Saves (replacing) the delegated OCSP responder of one CA key of `issuer`.
    async fn save_ocsp_responder(&self, issuer: &ObjectRef, responder: &StoredOcspResponder) -> Result<(), StoreError>;
}

/// Unix seconds (de)serialisation for `SystemTime`.
pub mod unix_seconds {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn to_secs(t: SystemTime) -> i64 {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_secs() as i64,
            Err(e) => -(e.duration().as_secs() as i64),
        }
    }

    pub fn from_secs(s: i64) -> SystemTime {
        if s >= 0 {
            UNIX_EPOCH + Duration::from_secs(s as u64)
        } else {
            UNIX_EPOCH - Duration::from_secs(s.unsigned_abs())
        }
    }

    pub fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(to_secs(*t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        Ok(from_secs(i64::deserialize(d)?))
    }
}

pub mod opt_unix_seconds {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_some(&super::unix_seconds::to_secs(*t)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SystemTime>, D::Error> {
        Ok(Option::<i64>::deserialize(d)?.map(super::unix_seconds::from_secs))
    }
}

mod opt_base64 {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(b) => s.serialize_some(&STANDARD.encode(b)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        Option::<String>::deserialize(d)?.map(|s| STANDARD.decode(s).map_err(serde::de::Error::custom)).transpose()
    }
}

mod ca_keys;
pub mod memory;

pub use ca_keys::{StoredOcspResponder, StoredRetiredCa};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_errors_keep_their_cause_as_source_and_in_the_text() {
        let cause = std::io::Error::other("database is locked");
        let e = StoreError::unavailable("reading a certificate").because(cause).context("/var/db");
        assert_eq!(e.to_string(), "store unavailable: /var/db: reading a certificate: database is locked");
        assert_eq!(e.detail(), "/var/db: reading a certificate: database is locked");
        assert_eq!(e.message(), Some("/var/db: reading a certificate"));
        let source = std::error::Error::source(&e).map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("database is locked"));
        assert!(matches!(e, StoreError::Unavailable { .. }), "the kind stays");
        let plain = StoreError::corrupt("column `sans`");
        assert_eq!(plain.to_string(), "stored data is corrupt: column `sans`");
        assert!(std::error::Error::source(&plain).is_none());
    }
}
