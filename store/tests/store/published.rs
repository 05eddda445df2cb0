//! What the store keeps for recovery: the last published CRL of each issuer (newest
//! wins, kept across reopening) and the protocol exchange of each certificate.

use pkiplane_core::inventory::{InventoryFilter, PublishedCrl};

use crate::common::*;

fn crl(at: std::time::SystemTime, this_update_secs_ago: u64, der: &[u8]) -> PublishedCrl {
    let this_update = at - std::time::Duration::from_secs(this_update_secs_ago);
    PublishedCrl {
        issuer: root(),
        this_update,
        next_update: this_update + DAY,
        key_id: vec![1, 2, 3],
        serials: vec!["0a".into(), "0b".into()],
        der: der.to_vec(),
    }
}

async fn the_last_published_crl_is_kept_newest_first_across_reopening(db: TestDb) {
    let store = db.open().await;
    // One reference time: the comparison below must not straddle a second boundary.
    let t = now();
    assert_eq!(store.last_crl(&root()).await.unwrap(), None);
    store.save_crl(&crl(t, 60, b"older")).await.unwrap();
    store.save_crl(&crl(t, 10, b"newer")).await.unwrap();
    // A CRL made earlier (a slower replica) does not replace a newer one.
    store.save_crl(&crl(t, 30, b"late")).await.unwrap();
    drop(store);
    let kept = db.open().await.last_crl(&root()).await.unwrap().expect("kept");
    assert_eq!(kept, crl(t, 10, b"newer"));
}

async fn certificates_are_found_by_their_exchange(db: TestDb) {
    let store = db.open().await;
    let mut a = pending("0a");
    a.exchange = Some("cmp:pki/cmp:0011".into());
    let b = pending("0b");
    store.insert_pending(&a).await.unwrap();
    store.insert_pending(&b).await.unwrap();
    let filter = InventoryFilter { exchange: Some("cmp:pki/cmp:0011".into()), ..Default::default() };
    let found = store.list(&filter).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].serial, "0a");
    assert_eq!(found[0].exchange.as_deref(), Some("cmp:pki/cmp:0011"));
    assert_eq!(store.get(&root(), "0b").await.unwrap().unwrap().exchange, None);
}

crate::on_both_backends!(
    the_last_published_crl_is_kept_newest_first_across_reopening,
    certificates_are_found_by_their_exchange
);
