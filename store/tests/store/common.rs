//! Shared helpers: a database in a temporary directory and record builders.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use pkiplane_core::inventory::unix_seconds::{from_secs, to_secs};
use pkiplane_core::inventory::{CertStatus, CertificateRecord, DenialRecord};
use pkiplane_core::model::{ObjectRef, Protocol};
use pkiplane_store::SqliteStore;
use tempfile::TempDir;

pub const DAY: Duration = Duration::from_secs(86_400);

/// A temporary directory and the database path inside a not-yet-existing subdirectory.
pub struct TestDb {
    /// Kept alive: the directory is removed when dropped.
    _dir: TempDir,
    pub path: PathBuf,
}

impl TestDb {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("data").join("inventory.db");
        Self { _dir: dir, path }
    }

    pub fn open(&self) -> SqliteStore {
        SqliteStore::open(&self.path).expect("open store")
    }
}

/// Now, rounded down to whole seconds (what the store keeps).
pub fn now() -> SystemTime {
    from_secs(to_secs(SystemTime::now()))
}

pub fn root() -> ObjectRef {
    ObjectRef::new("pki", "root-ca")
}

pub fn profile() -> ObjectRef {
    ObjectRef::new("pki", "enterprise-tls-47d")
}

pub fn acme_endpoint() -> ObjectRef {
    ObjectRef::new("pki", "acme")
}

/// A pending record from the ACME endpoint, valid for 47 days from now.
pub fn pending(serial: &str) -> CertificateRecord {
    let now = now();
    CertificateRecord {
        serial: serial.to_owned(),
        issuer: root(),
        profile: profile(),
        protocol: Protocol::Acme,
        endpoint: Some(acme_endpoint()),
        requester: "https://acme.example/acct/1".to_owned(),
        subject: "CN=www.example.com".to_owned(),
        sans: vec!["DNS:www.example.com".to_owned(), "IP:192.0.2.1".to_owned()],
        key_algorithm: "ECDSA P-256".to_owned(),
        not_before: now,
        not_after: now + 47 * DAY,
        status: CertStatus::Pending,
        revocation: None,
        der: None,
        renewed_from: None,
        created_at: now,
        exchange: None,
    }
}

/// Inserts `record` as pending and marks it issued with a DER derived from its serial.
pub async fn issue(store: &SqliteStore, record: &CertificateRecord) {
    use pkiplane_core::inventory::Inventory;
    store.insert_pending(record).await.expect("insert pending");
    store.mark_issued(&record.issuer, &record.serial, &der(&record.serial)).await.expect("mark issued");
}

pub fn der(serial: &str) -> Vec<u8> {
    let mut d = vec![0x30, 0x82];
    d.extend_from_slice(serial.as_bytes());
    d
}

pub fn denial(profile: ObjectRef, protocol: Protocol, rules: &str) -> DenialRecord {
    DenialRecord {
        issuer: Some(root()),
        profile,
        protocol,
        endpoint: Some(acme_endpoint()),
        requester: "mallory".to_owned(),
        rules: rules.to_owned(),
        at: now(),
    }
}
