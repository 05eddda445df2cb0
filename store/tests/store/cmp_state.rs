//! The CMP state store on both backends: transactionIDs used once, compare-and-set updates,
//! expired transactions claimed by exactly one of several concurrent callers, nonces
//! recorded once, purging, and durability across reopening.

use std::time::{Duration, SystemTime};

use pkiplane_cmp::state::*;
use pkiplane_core::ObjectRef;
use pkiplane_core::inventory::unix_seconds::{from_secs, to_secs};

use crate::common::TestDb;

/// Claims up to ten expired transactions of `endpoint`.
fn ten_expired(endpoint: ObjectRef, now: SystemTime) -> ExpiryClaim {
    ExpiryClaim { endpoint, now, limit: 10 }
}

fn now() -> SystemTime {
    from_secs(to_secs(SystemTime::now()))
}

fn endpoint() -> ObjectRef {
    ObjectRef::new("pki", "cmp")
}

fn tx(id: &str, state: TransactionState, deadline: Option<SystemTime>) -> CmpTransaction {
    CmpTransaction {
        endpoint: endpoint(),
        transaction_id: id.into(),
        kind: TransactionKind::Enrollment,
        state,
        requester: "device-1".into(),
        auth: CmpAuth::Mac { kid: "device-1".into() },
        profile_label: "tls".into(),
        pvno: 2,
        server_nonce: "0011".into(),
        certificates: vec![TransactionCert {
            cert_req_id: 0,
            issuer: ObjectRef::new("pki", "issuing"),
            serial: "01ab".into(),
            der: vec![0x30, 0x00],
            confirmed: false,
        }],
        pending_request: Some(vec![1, 2, 3]),
        deadline,
        created_at: now(),
        updated_at: now(),
        version: 0,
    }
}

async fn transactions_nonces_and_expiry_are_atomic_and_durable(db: TestDb) {
    let store = db.open_states().await.cmp;
    // A second handle: another replica on the same database.
    let replica = db.open_states().await.cmp;
    let t = tx("aa01", TransactionState::AwaitingConfirmation, Some(now() - Duration::from_secs(5)));

    // Ten concurrent starts of one transactionID: exactly one wins.
    let mut tasks = Vec::new();
    for i in 0..10 {
        let (s, t) = (if i % 2 == 0 { store.clone() } else { replica.clone() }, t.clone());
        tasks.push(tokio::spawn(async move { s.create_transaction(&t).await.unwrap() }));
    }
    let mut wins = 0;
    for task in tasks {
        wins += usize::from(task.await.unwrap());
    }
    assert_eq!(wins, 1);
    let stored = store.transaction(&endpoint(), "aa01").await.unwrap().unwrap();
    assert_eq!(stored, t);

    // Compare-and-set: a stale version loses.
    let mut a = stored.clone();
    a.server_nonce = "22".into();
    assert!(store.update_transaction(&a).await.unwrap());
    assert!(!store.update_transaction(&a).await.unwrap());
    let stored = store.transaction(&endpoint(), "aa01").await.unwrap().unwrap();
    assert_eq!((stored.version, stored.server_nonce.as_str()), (1, "22"));

    // Concurrent sweepers: the expired transaction is claimed once.
    store
        .create_transaction(&tx("aa02", TransactionState::Complete, Some(now() - Duration::from_secs(5))))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..6 {
        let s = if i % 2 == 0 { store.clone() } else { replica.clone() };
        tasks.push(tokio::spawn(async move { s.claim_expired(&ten_expired(endpoint(), now())).await.unwrap().len() }));
    }
    let mut claimed = 0;
    for task in tasks {
        claimed += task.await.unwrap();
    }
    assert_eq!(claimed, 1, "only the open, expired transaction, once");
    assert!(store.claim_expired(&ten_expired(ObjectRef::new("pki", "other"), now())).await.unwrap().is_empty());
    assert_eq!(store.transaction(&endpoint(), "aa01").await.unwrap().unwrap().state, TransactionState::Expired);

    // Nonces: recorded once.
    let exp = now() + Duration::from_secs(60);
    assert!(store.use_nonce(&endpoint(), "n1", exp).await.unwrap());
    assert!(!store.use_nonce(&endpoint(), "n1", exp).await.unwrap());
    assert!(store.use_nonce(&ObjectRef::new("pki", "other"), "n1", exp).await.unwrap());

    // Starting a transaction with its first nonce, in one write: of concurrent starts
    // of one transactionID one wins; a start with a nonce seen before creates the
    // transaction but reports the replay; a transactionID in use records no nonce.
    let mut tasks = Vec::new();
    for i in 0..6 {
        let s = if i % 2 == 0 { store.clone() } else { replica.clone() };
        let nonce = format!("start-{i}");
        tasks.push(tokio::spawn(async move {
            s.start_transaction(&tx("aa04", TransactionState::AwaitingConfirmation, None), &nonce, exp).await.unwrap()
        }));
    }
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }
    assert_eq!(outcomes.iter().filter(|o| **o == TransactionStart::Started).count(), 1, "{outcomes:?}");
    assert_eq!(outcomes.iter().filter(|o| **o == TransactionStart::TransactionIdInUse).count(), 5, "{outcomes:?}");
    let replayed = tx("aa05", TransactionState::AwaitingConfirmation, None);
    assert_eq!(store.start_transaction(&replayed, "n1", exp).await.unwrap(), TransactionStart::NonceReused);
    assert!(store.transaction(&endpoint(), "aa05").await.unwrap().is_some());
    assert_eq!(store.start_transaction(&replayed, "fresh", exp).await.unwrap(), TransactionStart::TransactionIdInUse);
    assert!(store.use_nonce(&endpoint(), "fresh", exp).await.unwrap(), "the refused start recorded no nonce");

    // Durable across reopening.
    drop((store, replica));
    let store = db.open_states().await.cmp;
    assert_eq!(store.transaction(&endpoint(), "aa02").await.unwrap().unwrap().state, TransactionState::Complete);
    assert!(!store.use_nonce(&endpoint(), "n1", exp).await.unwrap());

    // Purge: expired nonces and closed transactions past retention; open ones stay.
    store.create_transaction(&tx("aa03", TransactionState::Polling, None)).await.unwrap();
    let purged = store.purge(now() + Duration::from_secs(3600), Duration::from_secs(60)).await.unwrap();
    assert_eq!(purged, 6, "four nonces and the two closed transactions");
    assert!(store.transaction(&endpoint(), "aa03").await.unwrap().is_some());
}

crate::on_both_backends!(transactions_nonces_and_expiry_are_atomic_and_durable);
