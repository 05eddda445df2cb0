//! The SCEP state store on both backends: a message and a one-time challenge are
//! accepted once even when two handles (replicas) race, transactions are created once
//! and listed while pending, concurrent RA key stores converge on one, expired state is
//! purged. And the EST failure counters: counted together by two handles, forgotten
//! after the window, cleared.

use std::time::{Duration, SystemTime};

use pkiplane_core::ObjectRef;
use pkiplane_core::inventory::unix_seconds::{from_secs, to_secs};
use pkiplane_scep::state::*;

use crate::common::TestDb;

fn now() -> SystemTime {
    from_secs(to_secs(SystemTime::now()))
}

fn endpoint() -> ObjectRef {
    ObjectRef::new("pki", "scep")
}

/// New RA material for the test endpoint, renewing the certificate `replacing`.
fn ra_update(material: RaMaterial, replacing: Option<&[u8]>) -> RaUpdate {
    RaUpdate { endpoint: endpoint(), material, replacing: replacing.map(<[u8]>::to_vec) }
}

fn key(endpoint: &ObjectRef, hash: &str) -> ChallengeKey {
    ChallengeKey { endpoint: endpoint.clone(), secret_sha256: hash.into() }
}

fn challenge(hash: &str, expires: SystemTime) -> ScepChallenge {
    ScepChallenge {
        id: format!("ch-{hash}"),
        endpoint: endpoint(),
        secret_sha256: hash.into(),
        expires,
        common_name: Some("device-1".into()),
        sans: vec!["DNS:device-1.example".into()],
        created_by: "cli".into(),
        created_at: now(),
        used_at: None,
    }
}

fn transaction(id: &str, status: TransactionStatus) -> ScepTransaction {
    ScepTransaction {
        endpoint: endpoint(),
        transaction_id: id.into(),
        status,
        profile: ObjectRef::new("pki", "devices"),
        requester: "ch-1".into(),
        csr_der: vec![0x30, 0x01, 0x00],
        renewal_of: None,
        issuer: None,
        serial: None,
        fail_info: None,
        created_at: now(),
        updated_at: now(),
    }
}

fn ra(cert: u8) -> RaMaterial {
    RaMaterial {
        certificate_der: vec![0x30, cert],
        private_key_pkcs8: vec![0x30, 0x80 | cert].into(),
        issuer: ObjectRef::new("pki", "issuing"),
    }
}

fn seen(transaction_id: &str, sender_nonce: &[u8], expires: SystemTime) -> SeenMessage {
    SeenMessage {
        endpoint: endpoint(),
        transaction_id: transaction_id.into(),
        sender_nonce: sender_nonce.to_vec(),
        expires,
    }
}

async fn messages_challenges_transactions_and_ra(db: TestDb) {
    let (one, two) = (db.open_states().await.scep, db.open_states().await.scep);
    let exp = now() + Duration::from_secs(600);

    // A message (transactionID, senderNonce) raced by two replicas: accepted once.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let s = if i % 2 == 0 { one.clone() } else { two.clone() };
        tasks.push(tokio::spawn(async move { s.record_message(&seen("t1", b"nonce", exp)).await.unwrap() }));
    }
    let mut accepted = 0;
    for t in tasks {
        accepted += usize::from(t.await.unwrap());
    }
    assert_eq!(accepted, 1);
    assert!(one.record_message(&seen("t1", b"other", exp)).await.unwrap(), "a new nonce is a new message");

    // A one-time challenge: consumed once.
    one.add_challenge(&challenge("h1", exp)).await.unwrap();
    assert!(two.add_challenge(&challenge("h1", exp)).await.is_err(), "a challenge hash is unique");
    let mut tasks = Vec::new();
    for i in 0..8 {
        let s = if i % 2 == 0 { one.clone() } else { two.clone() };
        tasks.push(tokio::spawn(async move { s.consume_challenge(&key(&endpoint(), "h1"), now()).await.unwrap() }));
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap());
    }
    assert_eq!(outcomes.iter().filter(|o| matches!(o, ChallengeUse::Consumed(_))).count(), 1);
    assert_eq!(outcomes.iter().filter(|o| **o == ChallengeUse::AlreadyUsed).count(), 7);
    one.add_challenge(&challenge("old", now() - Duration::from_secs(1))).await.unwrap();
    assert_eq!(two.consume_challenge(&key(&endpoint(), "old"), now()).await.unwrap(), ChallengeUse::Expired);
    assert_eq!(two.consume_challenge(&key(&endpoint(), "nope"), now()).await.unwrap(), ChallengeUse::Unknown);
    let other = ObjectRef::new("pki", "other");
    assert_eq!(two.consume_challenge(&key(&other, "h1"), now()).await.unwrap(), ChallengeUse::Unknown, "per endpoint");
    let used = one.challenge(&key(&endpoint(), "h1")).await.unwrap().unwrap();
    assert!(used.used_at.is_some());
    assert_eq!(used.sans, vec!["DNS:device-1.example".to_owned()]);

    // Transactions: created once, updated, listed while pending.
    assert!(one.create_transaction(&transaction("p1", TransactionStatus::Pending)).await.unwrap());
    assert!(!two.create_transaction(&transaction("p1", TransactionStatus::Pending)).await.unwrap());
    assert!(one.create_transaction(&transaction("p2", TransactionStatus::Pending)).await.unwrap());
    let mut done = two.transaction(&endpoint(), "p2").await.unwrap().unwrap();
    done.status = TransactionStatus::Issued;
    done.serial = Some("0a".into());
    two.update_transaction(&done).await.unwrap();
    assert_eq!(one.transaction(&endpoint(), "p2").await.unwrap().unwrap(), done);
    let pending = one.pending_transactions(&endpoint(), 10).await.unwrap();
    assert_eq!(pending.iter().map(|t| t.transaction_id.as_str()).collect::<Vec<_>>(), ["p1"]);
    assert!(one.update_transaction(&transaction("missing", TransactionStatus::Failed)).await.is_err());

    // RA material: concurrent first stores converge on one; a renewal replaces it.
    let (first, second) = (ra_update(ra(1), None), ra_update(ra(2), None));
    let (a, b) = tokio::join!(one.put_ra_material(&first), two.put_ra_material(&second));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a, b, "both replicas keep the one stored RA key");
    let renewed = one.put_ra_material(&ra_update(ra(3), Some(&a.certificate_der))).await.unwrap();
    assert_eq!(renewed, ra(3));
    let kept = two.put_ra_material(&ra_update(ra(4), Some(&a.certificate_der))).await.unwrap();
    assert_eq!(kept, ra(3), "a stale renewal keeps the newer key");
    assert_eq!(one.ra_material(&endpoint()).await.unwrap().unwrap(), ra(3));

    // Purge: expired messages, challenges past retention, completed transactions.
    let later = now() + Duration::from_secs(7200);
    let purged = one.purge_expired(later, Duration::from_secs(60)).await.unwrap();
    assert_eq!(purged, 2 + 2 + 1, "two messages, two challenges, one completed transaction");
    assert!(one.transaction(&endpoint(), "p1").await.unwrap().is_some(), "pending transactions stay");
}

async fn est_failures_are_counted_across_handles(db: TestDb) {
    let (one, two) = (db.open_states().await.est, db.open_states().await.est);
    let t = now();
    let mut tasks = Vec::new();
    for i in 0..10 {
        let s = if i % 2 == 0 { one.clone() } else { two.clone() };
        tasks.push(tokio::spawn(async move { s.record_failure("e|user:bob", t, 60).await.unwrap().failures }));
    }
    let mut seen = Vec::new();
    for task in tasks {
        seen.push(task.await.unwrap());
    }
    seen.sort_unstable();
    assert_eq!(seen, (1..=10).collect::<Vec<_>>(), "every failure counted once, atomically");
    assert_eq!(two.get("e|user:bob").await.unwrap().unwrap().failures, 10);
    let later = t + Duration::from_secs(61);
    assert_eq!(one.record_failure("e|user:bob", later, 60).await.unwrap().failures, 1, "forgotten after the window");
    two.clear("e|user:bob").await.unwrap();
    assert!(one.get("e|user:bob").await.unwrap().is_none());
}

crate::on_both_backends!(messages_challenges_transactions_and_ra, est_failures_are_counted_across_handles);
