//! Leases on a real PostgreSQL server: taken by one holder at a time, renewed by it, and
//! taken over once a holder that died stopped renewing. Time passes by moving a lease's
//! expiry back on the database clock (`age_lease`), never by waiting out the TTL.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use pkiplane_store::PostgresStore;
use pkiplane_store::testing::shared_schema_url;

const TTL: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_holders_lease_is_taken_over_after_expiry_and_not_before() {
    let url = shared_schema_url().await;
    let (a, b) = (PostgresStore::connect(&url).await.unwrap(), PostgresStore::connect(&url).await.unwrap());
    assert!(a.try_lease("crl/x", "replica-a", TTL).await.unwrap());
    assert!(!b.try_lease("crl/x", "replica-b", TTL).await.unwrap(), "held by a");
    // Other lease names are independent.
    assert!(b.try_lease("crl/y", "replica-b", TTL).await.unwrap());
    // Replica a dies: no renewal, no release. 14 s later its lease still holds...
    a.age_lease("crl/x", Duration::from_secs(14)).await.unwrap();
    assert!(!b.try_lease("crl/x", "replica-b", TTL).await.unwrap(), "not expired yet");
    // ...and after its TTL it is b's.
    a.age_lease("crl/x", Duration::from_secs(2)).await.unwrap();
    assert!(b.try_lease("crl/x", "replica-b", TTL).await.unwrap(), "expired: taken over");
    // If a was only cut off and comes back, its renewal fails and its release leaves b's
    // lease alone.
    assert!(!a.try_lease("crl/x", "replica-a", TTL).await.unwrap(), "a lost the lease");
    a.release_lease("crl/x", "replica-a").await.unwrap();
    assert!(!a.try_lease("crl/x", "replica-c", TTL).await.unwrap(), "still b's");
    // b renews (its expiry moves forward again), then releases: free at once.
    a.age_lease("crl/x", Duration::from_secs(14)).await.unwrap();
    assert!(b.try_lease("crl/x", "replica-b", TTL).await.unwrap());
    a.age_lease("crl/x", Duration::from_secs(14)).await.unwrap();
    assert!(!a.try_lease("crl/x", "replica-c", TTL).await.unwrap(), "the renewal restarted the TTL");
    b.release_lease("crl/x", "replica-b").await.unwrap();
    assert!(a.try_lease("crl/x", "replica-c", TTL).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_racing_for_a_free_or_expired_lease_get_one_winner() {
    let url = shared_schema_url().await;
    let mut stores = Vec::new();
    for _ in 0..4 {
        stores.push(Arc::new(PostgresStore::connect(&url).await.unwrap()));
    }
    for round in 0..2 {
        let mut tasks = Vec::new();
        for i in 0..16 {
            let store = stores[i % 4].clone();
            tasks.push(tokio::spawn(async move {
                let holder = format!("round{round}-replica{i}");
                store.try_lease("ca-keys", &holder, TTL).await.unwrap().then_some(holder)
            }));
        }
        let mut winners = BTreeSet::new();
        for task in tasks {
            winners.extend(task.await.unwrap());
        }
        assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
        // The winner dies holding it: the next round races for an expired lease.
        stores[0].age_lease("ca-keys", TTL + Duration::from_secs(1)).await.unwrap();
    }
}
