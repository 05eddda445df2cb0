//! Every trait method's allowed and refused paths.

use std::time::Duration;

use pkiplane_core::inventory::{CertStatus, Revocation, RevocationReason, RevokeOutcome, StoreError, StoredCaMaterial};
use pkiplane_core::model::ObjectRef;

use crate::common::{DAY, TestDb, der, issue, now, pending, root};

async fn insert_pending_round_trips_and_creates_the_directory(db: TestDb) {
    let store = db.open().await;
    if db.postgres.is_none() {
        assert!(db.path.is_file());
    }
    let mut record = pending("0a1b");
    record.renewed_from = Some("09ff".to_owned());
    record.endpoint = None;
    store.insert_pending(&record).await.unwrap();
    assert_eq!(store.get(&root(), "0a1b").await.unwrap(), Some(record.clone()));
    assert_eq!(store.find_serial("0a1b").await.unwrap(), vec![record]);
    assert_eq!(store.get(&root(), "ffff").await.unwrap(), None);
    assert!(store.find_serial("ffff").await.unwrap().is_empty());
}

async fn insert_pending_refuses_other_statuses_and_duplicates(db: TestDb) {
    let store = db.open().await;
    let mut issued = pending("01");
    issued.status = CertStatus::Issued;
    let err = store.insert_pending(&issued).await.unwrap_err();
    assert!(
        matches!(err, StoreError::WrongState { status: CertStatus::Issued, expected: CertStatus::Pending, .. }),
        "{err:?}"
    );
    assert_eq!(store.get(&root(), "01").await.unwrap(), None);

    store.insert_pending(&pending("02")).await.unwrap();
    let mut again = pending("02");
    again.subject = "CN=other".to_owned();
    let err = store.insert_pending(&again).await.unwrap_err();
    assert!(matches!(&err, StoreError::DuplicateSerial { serial, .. } if serial == "02"), "{err:?}");
    // The first record stands.
    assert_eq!(store.get(&root(), "02").await.unwrap().unwrap().subject, "CN=www.example.com");

    // The same serial under another issuer is another certificate.
    let mut other = pending("02");
    other.issuer = ObjectRef::new("pki", "other-ca");
    store.insert_pending(&other).await.unwrap();
    let found = store.find_serial("02").await.unwrap();
    assert_eq!(found.len(), 2);
    assert_eq!(found[0].issuer, other.issuer);
    assert_eq!(found[1].issuer, root());
}

async fn mark_issued_only_from_pending(db: TestDb) {
    let store = db.open().await;
    store.insert_pending(&pending("10")).await.unwrap();
    store.mark_issued(&root(), "10", &der("10")).await.unwrap();
    let got = store.get(&root(), "10").await.unwrap().unwrap();
    assert_eq!(got.status, CertStatus::Issued);
    assert_eq!(got.der, Some(der("10")));
    assert!(got.is_active(now()));

    let err = store.mark_issued(&root(), "10", &der("x")).await.unwrap_err();
    assert!(matches!(err, StoreError::WrongState { status: CertStatus::Issued, .. }), "{err:?}");
    assert_eq!(store.get(&root(), "10").await.unwrap().unwrap().der, Some(der("10")));

    let err = store.mark_issued(&root(), "11", &der("11")).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    // Right serial, wrong issuer.
    let err = store.mark_issued(&ObjectRef::new("pki", "x"), "10", &der("10")).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
}

async fn mark_abandoned_only_from_pending(db: TestDb) {
    let store = db.open().await;
    store.insert_pending(&pending("20")).await.unwrap();
    store.mark_abandoned(&root(), "20").await.unwrap();
    assert_eq!(store.get(&root(), "20").await.unwrap().unwrap().status, CertStatus::Abandoned);

    let err = store.mark_abandoned(&root(), "20").await.unwrap_err();
    assert!(matches!(err, StoreError::WrongState { status: CertStatus::Abandoned, .. }), "{err:?}");
    let err = store.mark_issued(&root(), "20", &der("20")).await.unwrap_err();
    assert!(matches!(err, StoreError::WrongState { status: CertStatus::Abandoned, .. }), "{err:?}");

    issue(&*store, &pending("21")).await;
    let err = store.mark_abandoned(&root(), "21").await.unwrap_err();
    assert!(matches!(err, StoreError::WrongState { status: CertStatus::Issued, .. }), "{err:?}");
    let err = store.mark_abandoned(&root(), "22").await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
}

async fn recover_pending_abandons_only_old_pending_records(db: TestDb) {
    let store = db.open().await;
    let now = now();
    let mut old = pending("30");
    old.created_at = now - Duration::from_secs(120);
    let mut old_issued = pending("31");
    old_issued.created_at = now - Duration::from_secs(120);
    let fresh = pending("32");
    store.insert_pending(&old).await.unwrap();
    issue(&*store, &old_issued).await;
    store.insert_pending(&fresh).await.unwrap();

    assert_eq!(store.recover_pending(now - Duration::from_secs(60)).await.unwrap(), 1);
    assert_eq!(store.get(&root(), "30").await.unwrap().unwrap().status, CertStatus::Abandoned);
    assert_eq!(store.get(&root(), "31").await.unwrap().unwrap().status, CertStatus::Issued);
    assert_eq!(store.get(&root(), "32").await.unwrap().unwrap().status, CertStatus::Pending);
    assert_eq!(store.recover_pending(now - Duration::from_secs(60)).await.unwrap(), 0);
    // The in-flight issuance can still complete.
    store.mark_issued(&root(), "32", &der("32")).await.unwrap();
}

async fn revoke_paths(db: TestDb) {
    let store = db.open().await;
    let at = now() - Duration::from_secs(5);
    issue(&*store, &pending("40")).await;
    let outcome =
        store.revoke(&root(), "40", Revocation { reason: RevocationReason::KeyCompromise, at }).await.unwrap();
    assert_eq!(outcome, RevokeOutcome::Revoked);
    let got = store.get(&root(), "40").await.unwrap().unwrap();
    assert_eq!(got.status, CertStatus::Revoked);
    let original = Revocation { reason: RevocationReason::KeyCompromise, at };
    assert_eq!(got.revocation, Some(original));
    assert!(!got.is_active(now()));

    // A second revocation keeps the original facts.
    let outcome =
        store.revoke(&root(), "40", Revocation { reason: RevocationReason::Superseded, at: now() }).await.unwrap();
    assert_eq!(outcome, RevokeOutcome::AlreadyRevoked(original));
    assert_eq!(store.get(&root(), "40").await.unwrap().unwrap().revocation, Some(original));

    let outcome = store.revoke(&root(), "41", Revocation { reason: RevocationReason::Unspecified, at }).await.unwrap();
    assert_eq!(outcome, RevokeOutcome::NotFound);

    store.insert_pending(&pending("42")).await.unwrap();
    let outcome = store.revoke(&root(), "42", Revocation { reason: RevocationReason::Unspecified, at }).await.unwrap();
    assert_eq!(outcome, RevokeOutcome::NotIssued(CertStatus::Pending));
    store.mark_abandoned(&root(), "42").await.unwrap();
    let outcome = store.revoke(&root(), "42", Revocation { reason: RevocationReason::Unspecified, at }).await.unwrap();
    assert_eq!(outcome, RevokeOutcome::NotIssued(CertStatus::Abandoned));
    assert_eq!(store.get(&root(), "42").await.unwrap().unwrap().revocation, None);
}

async fn revoked_entries_list_unexpired_revocations_of_one_issuer(db: TestDb) {
    let store = db.open().await;
    let now = now();
    let at = now - Duration::from_secs(10);
    let mut expired = pending("51");
    expired.not_before = now - 10 * DAY;
    expired.not_after = now - DAY;
    let mut other_issuer = pending("52");
    other_issuer.issuer = ObjectRef::new("pki", "other-ca");
    for record in [&pending("50"), &expired, &other_issuer, &pending("53")] {
        issue(&*store, record).await;
        let reason = RevocationReason::CessationOfOperation;
        store.revoke(&record.issuer, &record.serial, Revocation { reason, at }).await.unwrap();
    }
    issue(&*store, &pending("54")).await; // issued, not revoked

    let entries = store.revoked_entries(&root(), now).await.unwrap();
    let serials: Vec<&str> = entries.iter().map(|e| e.serial.as_str()).collect();
    assert_eq!(serials, ["50", "53"]);
    assert_eq!(entries[0].reason, RevocationReason::CessationOfOperation);
    assert_eq!(entries[0].revoked_at, at);
    assert_eq!(entries[0].not_after, now + 47 * DAY);
    assert!(store.revoked_entries(&ObjectRef::new("pki", "nobody"), now).await.unwrap().is_empty());
}

async fn crl_numbers_increase_per_issuer(db: TestDb) {
    let store = db.open().await;
    let other = ObjectRef::new("pki", "other-ca");
    assert_eq!(store.next_crl_number(&root()).await.unwrap(), 1);
    assert_eq!(store.next_crl_number(&root()).await.unwrap(), 2);
    assert_eq!(store.next_crl_number(&other).await.unwrap(), 1);
    assert_eq!(store.next_crl_number(&root()).await.unwrap(), 3);
}

async fn ca_material_saves_loads_and_replaces(db: TestDb) {
    let store = db.open().await;
    assert_eq!(store.load_ca(&root()).await.unwrap(), None);
    let first = StoredCaMaterial {
        certificate_der: vec![1, 2, 3],
        private_key_pkcs8: vec![4, 5, 6].into(),
        spec_hash: "sha256:aa".to_owned(),
    };
    store.save_ca(&root(), &first).await.unwrap();
    assert_eq!(store.load_ca(&root()).await.unwrap(), Some(first));
    let second = StoredCaMaterial {
        certificate_der: vec![7; 600],
        private_key_pkcs8: vec![8; 1200].into(),
        spec_hash: "sha256:bb".to_owned(),
    };
    store.save_ca(&root(), &second).await.unwrap();
    assert_eq!(store.load_ca(&root()).await.unwrap(), Some(second));
    assert_eq!(store.load_ca(&ObjectRef::new("pki", "other-ca")).await.unwrap(), None);
}

crate::on_both_backends!(
    insert_pending_round_trips_and_creates_the_directory,
    insert_pending_refuses_other_statuses_and_duplicates,
    mark_issued_only_from_pending,
    mark_abandoned_only_from_pending,
    recover_pending_abandons_only_old_pending_records,
    revoke_paths,
    revoked_entries_list_unexpired_revocations_of_one_issuer,
    crl_numbers_increase_per_issuer,
    ca_material_saves_loads_and_replaces
);
