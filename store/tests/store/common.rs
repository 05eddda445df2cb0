//! Shared helpers: a database of either backend and record builders.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use pkiplane_acme::state::AcmeStateScopes;
use pkiplane_cmp::state::CmpStore;
use pkiplane_core::inventory::unix_seconds::{from_secs, to_secs};
use pkiplane_core::inventory::{CaMaterialStore, CertStatus, CertificateRecord, DenialRecord, Inventory};
use pkiplane_core::model::{ObjectRef, Protocol};
use pkiplane_est::state::AuthFailureStore;
use pkiplane_scep::state::ScepStore;
use pkiplane_store::sealing::SealableRows;
use pkiplane_store::testing::shared_schema_url;
use pkiplane_store::{AcmeScopes, PostgresStore, SqliteStore};
use tempfile::TempDir;

pub const DAY: Duration = Duration::from_secs(86_400);

/// Both traits of a store, as the tests use them.
pub trait Store: Inventory + CaMaterialStore + SealableRows {}
impl<T: Inventory + CaMaterialStore + SealableRows> Store for T {}

/// A database of one test: a SQLite file in a temporary directory (inside a
/// not-yet-existing subdirectory), or a throwaway PostgreSQL server.
pub struct TestDb {
    /// Kept alive: the directory is removed when dropped.
    _dir: TempDir,
    pub path: PathBuf,
    /// The PostgreSQL schema's URL, for the PostgreSQL backend.
    pub postgres: Option<String>,
}

impl TestDb {
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("data").join("inventory.db");
        Self { _dir: dir, path, postgres: None }
    }

    /// A fresh schema on the test process's shared PostgreSQL server.
    pub async fn postgres() -> Self {
        Self { postgres: Some(shared_schema_url().await), ..Self::sqlite() }
    }

    /// Another, empty database of the same kind.
    pub async fn fresh(&self) -> Self {
        if self.postgres.is_some() { Self::postgres().await } else { Self::sqlite() }
    }

    /// The SQLite store (for the tests of what only SQLite has).
    pub fn open_sqlite(&self) -> SqliteStore {
        SqliteStore::open(&self.path).expect("open store")
    }

    /// Opens (or, after a drop, reopens) the protocol state stores, as a replica would:
    /// each call is a separate handle (a separate pool on PostgreSQL).
    pub async fn open_states(&self) -> States {
        match &self.postgres {
            Some(url) => {
                let s = Arc::new(PostgresStore::connect(url).await.expect("connect to PostgreSQL"));
                States { acme: Arc::new(AcmeScopes::new(s.clone())), scep: s.clone(), cmp: s.clone(), est: s }
            }
            None => {
                let s = Arc::new(self.open_sqlite());
                States { acme: Arc::new(AcmeScopes::new(s.clone())), scep: s.clone(), cmp: s.clone(), est: s }
            }
        }
    }

    /// Opens (or, after a drop, reopens) the store.
    pub async fn open(&self) -> Box<dyn Store> {
        match &self.postgres {
            Some(url) => Box::new(PostgresStore::connect(url).await.expect("connect to PostgreSQL")),
            None => Box::new(self.open_sqlite()),
        }
    }
}

/// The protocol state stores of one handle on a test database.
pub struct States {
    pub acme: Arc<dyn AcmeStateScopes>,
    pub scep: Arc<dyn ScepStore>,
    pub cmp: Arc<dyn CmpStore>,
    pub est: Arc<dyn AuthFailureStore>,
}

/// Runs each named `async fn(TestDb)` as two tests, one per backend: `sqlite::NAME` and
/// `postgres::NAME`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::TestDb::sqlite()).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::TestDb::postgres().await).await
                }
            )*
        }
    };
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
pub async fn issue(store: &(impl Inventory + ?Sized), record: &CertificateRecord) {
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
