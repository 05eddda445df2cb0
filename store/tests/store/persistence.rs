//! Restarts, schema versions, read-only opening and corrupt data.

use std::time::Duration;

use pkiplane_core::inventory::{
    CertStatus, GroupBy, Inventory, InventoryFilter, Revocation, RevocationReason, StoreError, StoredCaMaterial,
};
use pkiplane_core::model::Protocol;
use pkiplane_store::SqliteStore;
use rusqlite::Connection;

use crate::common::{DAY, TestDb, denial, issue, now, pending, profile, root};

fn user_version(db: &TestDb) -> i64 {
    let conn = Connection::open(&db.path).unwrap();
    conn.pragma_query_value(None, "user_version", |row| row.get(0)).unwrap()
}

async fn data_survives_a_restart(db: TestDb) {
    let material = StoredCaMaterial {
        certificate_der: vec![0x30, 1],
        private_key_pkcs8: vec![0x30, 2].into(),
        spec_hash: "h1".to_owned(),
    };
    {
        let store = db.open().await;
        issue(&*store, &pending("a1")).await;
        issue(&*store, &pending("a2")).await;
        store.insert_pending(&pending("a3")).await.unwrap();
        store.revoke(&root(), "a2", Revocation { reason: RevocationReason::Superseded, at: now() }).await.unwrap();
        store.record_denial(&denial(profile(), Protocol::Est, "key-algorithm")).await.unwrap();
        store.save_ca(&root(), &material).await.unwrap();
        for expected in 1..=3 {
            assert_eq!(store.next_crl_number(&root()).await.unwrap(), expected);
        }
    }
    let store = db.open().await;
    assert_eq!(store.get(&root(), "a1").await.unwrap().unwrap().status, CertStatus::Issued);
    assert_eq!(store.get(&root(), "a2").await.unwrap().unwrap().status, CertStatus::Revoked);
    assert_eq!(store.get(&root(), "a3").await.unwrap().unwrap().status, CertStatus::Pending);
    assert_eq!(store.load_ca(&root()).await.unwrap(), Some(material));
    let counts = store.counts(GroupBy::Profile, now(), DAY).await.unwrap();
    assert_eq!(counts.len(), 1);
    assert_eq!((counts[0].issued, counts[0].revoked, counts[0].denied), (2, 1, 1));
    // CRL numbers keep increasing across restarts.
    assert_eq!(store.next_crl_number(&root()).await.unwrap(), 4);
    drop(store);
    let store = db.open().await;
    assert_eq!(store.next_crl_number(&root()).await.unwrap(), 5);
    // Start-up recovery of the issuance the "crash" interrupted.
    assert_eq!(store.recover_pending(now() + Duration::from_secs(1)).await.unwrap(), 1);
    assert_eq!(store.get(&root(), "a3").await.unwrap().unwrap().status, CertStatus::Abandoned);
}

#[tokio::test]
async fn migrations_are_idempotent() {
    let db = TestDb::sqlite();
    drop(db.open_sqlite());
    // Every step applied once (the inventory, then protocol state such as ACME's).
    let version = user_version(&db);
    assert!(version >= 2, "schema version {version}");
    let store = db.open_sqlite();
    issue(&store, &pending("b1")).await;
    drop(store);
    let store = db.open_sqlite();
    assert_eq!(user_version(&db), version);
    assert!(store.get(&root(), "b1").await.unwrap().is_some());
}

#[tokio::test]
async fn a_newer_schema_refuses_to_open() {
    let db = TestDb::sqlite();
    drop(db.open_sqlite());
    Connection::open(&db.path).unwrap().pragma_update(None, "user_version", 99).unwrap();
    for result in [SqliteStore::open(&db.path), SqliteStore::open_read_only(&db.path)] {
        let err = result.unwrap_err();
        assert!(matches!(err, StoreError::Unavailable { .. }), "{err:?}");
        let message = err.to_string();
        assert!(message.contains("version 99") && message.contains("newer"), "{message}");
    }
    assert_eq!(user_version(&db), 99);
}

#[tokio::test]
async fn read_only_never_creates_and_refuses_writes() {
    let db = TestDb::sqlite();
    let err = SqliteStore::open_read_only(&db.path).unwrap_err();
    assert!(err.to_string().contains("no inventory database"), "{err}");
    assert!(!db.path.exists());
    assert!(!db.path.parent().unwrap().exists());

    let writer = db.open_sqlite();
    issue(&writer, &pending("c1")).await;
    // Readable while the writer is open...
    let reader = SqliteStore::open_read_only(&db.path).unwrap();
    assert_eq!(reader.list(&InventoryFilter::default()).await.unwrap().len(), 1);
    drop(reader);
    drop(writer);
    // ...and after it closed (no -wal / -shm files left).
    let reader = SqliteStore::open_read_only(&db.path).unwrap();
    assert_eq!(reader.get(&root(), "c1").await.unwrap().unwrap().status, CertStatus::Issued);
    let err = reader.insert_pending(&pending("c2")).await.unwrap_err();
    assert!(err.to_string().contains("read-only"), "{err}");
    let err = reader.next_crl_number(&root()).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable { .. }), "{err:?}");
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_refused() {
    let db = TestDb::sqlite();
    std::fs::create_dir_all(db.path.parent().unwrap()).unwrap();
    std::fs::write(&db.path, vec![0x42; 8192]).unwrap();
    let err = SqliteStore::open(&db.path).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    let err = SqliteStore::open_read_only(&db.path).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
}

/// Inserts a row straight into the table, bypassing the store.
fn raw_insert(db: &TestDb, serial: &str, protocol: &str, sans: &str, status: &str, reason: Option<i64>) {
    let conn = Connection::open(&db.path).unwrap();
    conn.execute(
        "INSERT INTO certificates (issuer, serial, profile, protocol, endpoint, requester, \
         subject, sans, key_algorithm, not_before, not_after, status, revocation_reason, \
         revoked_at, der, renewed_from, created_at, issued_at) VALUES \
         ('pki/root-ca', ?1, 'pki/p', ?2, NULL, 'r', 'CN=x', ?3, 'RSA 2048', 0, 4102444800, ?4, \
         ?5, NULL, NULL, NULL, 0, NULL)",
        rusqlite::params![serial, protocol, sans, status, reason],
    )
    .unwrap();
}

#[tokio::test]
async fn corrupt_rows_are_reported_not_panicked_on() {
    let db = TestDb::sqlite();
    let store = db.open_sqlite();
    raw_insert(&db, "d1", "SMTP", "[]", "issued", None);
    raw_insert(&db, "d2", "ACME", "not json", "issued", None);
    raw_insert(&db, "d3", "ACME", "[]", "weird", None);
    raw_insert(&db, "d4", "ACME", "[]", "revoked", Some(7));
    raw_insert(&db, "d5", "ACME", "[]", "revoked", None);
    for serial in ["d1", "d2", "d3", "d4", "d5"] {
        let err = store.get(&root(), serial).await.unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{serial}: {err:?}");
    }
    let err = store.list(&InventoryFilter::default()).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    let err = store.revoked_entries(&root(), now()).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    let err =
        store.revoke(&root(), "d4", Revocation { reason: RevocationReason::Unspecified, at: now() }).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    let err = store.mark_issued(&root(), "d3", &[1]).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    // A value of the wrong type is corrupt too.
    Connection::open(&db.path)
        .unwrap()
        .execute("UPDATE certificates SET sans = x'00', status = 'issued' WHERE serial = 'd1'", [])
        .unwrap();
    let err = store.get(&root(), "d1").await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    // The store keeps working.
    issue(&store, &pending("d6")).await;
}

#[cfg(unix)]
#[tokio::test]
async fn the_database_is_private_and_in_wal_mode() {
    use std::os::unix::fs::PermissionsExt;
    let db = TestDb::sqlite();
    let store = db.open_sqlite();
    issue(&store, &pending("f1")).await;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&db.path), 0o600);
    assert_eq!(mode(db.path.parent().unwrap()), 0o700);
    let wal = db.path.with_extension("db-wal");
    assert!(wal.exists());
    assert_eq!(mode(&wal), 0o600);
    let conn = Connection::open(&db.path).unwrap();
    let journal: String = conn.pragma_query_value(None, "journal_mode", |row| row.get(0)).unwrap();
    assert_eq!(journal, "wal");
}

crate::on_both_backends!(data_survives_a_restart);
