//! Group commit under concurrency: many writers, each getting its own outcome.

use std::sync::Arc;

use pkiplane_core::inventory::{CertStatus, InventoryFilter, StoreError};

use crate::common::{TestDb, der, pending, root};

async fn concurrent_issuances_all_land_and_a_duplicate_fails_alone(db: TestDb) {
    let store = Arc::new(db.open().await);
    store.insert_pending(&pending("dup")).await.unwrap();

    let mut tasks = Vec::new();
    for i in 0..200 {
        let task_store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let store = task_store;
            let serial = format!("{i:04x}");
            store.insert_pending(&pending(&serial)).await?;
            store.mark_issued(&root(), &serial, &der(&serial)).await
        }));
        if i == 100 {
            let store = Arc::clone(&store);
            tasks.push(tokio::spawn(async move { store.insert_pending(&pending("dup")).await }));
        }
    }
    let mut failures = Vec::new();
    for task in tasks {
        if let Err(e) = task.await.unwrap() {
            failures.push(e);
        }
    }
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(matches!(&failures[0], StoreError::DuplicateSerial { serial, .. } if serial == "dup"));

    let issued = InventoryFilter { status: Some(CertStatus::Issued), ..Default::default() };
    let all = store.list(&issued).await.unwrap();
    assert_eq!(all.len(), 200);
    for i in 0..200 {
        let serial = format!("{i:04x}");
        let record = store.get(&root(), &serial).await.unwrap().unwrap();
        assert_eq!(record.status, CertStatus::Issued);
        assert_eq!(record.der, Some(der(&serial)));
    }
    // The record the duplicate collided with is untouched.
    let dup = store.get(&root(), "dup").await.unwrap().unwrap();
    assert_eq!(dup.status, CertStatus::Pending);
}

async fn dropping_the_store_finishes_queued_writes(db: TestDb) {
    {
        let store = Arc::new(db.open().await);
        let mut tasks = Vec::new();
        for i in 0..50 {
            let store = Arc::clone(&store);
            let serial = format!("{i:02x}");
            tasks.push(tokio::spawn(async move { store.insert_pending(&pending(&serial)).await }));
        }
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        // Last handle dropped here: the writer thread is joined.
    }
    let store = db.open().await;
    assert_eq!(store.list(&InventoryFilter::default()).await.unwrap().len(), 50);
}

crate::on_both_backends!(
    concurrent_issuances_all_land_and_a_duplicate_fails_alone,
    dropping_the_store_finishes_queued_writes
);
