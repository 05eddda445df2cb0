//! What only the PostgreSQL store has: a server shared by several store instances (CA
//! replicas), schema versions on a server, and a server that goes away mid-run.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use pkiplane_core::inventory::{CertStatus, Inventory, InventoryFilter, StoreError};
use pkiplane_store::PostgresStore;
use pkiplane_store::testing::{TestPostgres, shared_schema_url};

use crate::common::{der, pending, root};

async fn raw(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_apply_once_and_a_newer_schema_is_refused() {
    let url = shared_schema_url().await;
    let (a, b) = tokio::join!(PostgresStore::connect(&url), PostgresStore::connect(&url));
    let (a, b) = (a.unwrap(), b.unwrap());
    let version = a.schema_version().await.unwrap();
    assert!(version >= 1);
    assert_eq!(b.schema_version().await.unwrap(), version);
    crate::common::issue(&a, &pending("m1")).await;
    drop((a, b));
    let again = PostgresStore::connect(&url).await.unwrap();
    assert_eq!(again.schema_version().await.unwrap(), version);
    assert!(again.get(&root(), "m1").await.unwrap().is_some());
    raw(&url).await.execute("UPDATE pkiplane_schema SET version = 99", &[]).await.unwrap();
    let err = PostgresStore::connect(&url).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("version 99") && message.contains("newer"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_is_unavailable_and_names_it_without_the_password() {
    let url = "postgres://pkiplane:sekrit@127.0.0.1:1/postgres?connect_timeout=2&sslmode=disable";
    let err = PostgresStore::connect(url).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("127.0.0.1:1/postgres") && !message.contains("sekrit"), "{message}");
}

/// Three store instances on one database, as three CA replicas: issuances and CRL
/// numbers taken in parallel end with unique serials (a duplicate fails alone) and CRL
/// numbers that never repeat and increase in each replica's own order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_issue_in_parallel_with_unique_serials_and_monotonic_crl_numbers() {
    let url = shared_schema_url().await;
    let mut replicas = Vec::new();
    for _ in 0..3 {
        replicas.push(Arc::new(PostgresStore::connect(&url).await.unwrap()));
    }
    const TASKS: usize = 48;
    let mut tasks = Vec::new();
    for i in 0..TASKS {
        let store = Arc::clone(&replicas[i % 3]);
        tasks.push(tokio::spawn(async move {
            // Every task also tries serial "dup": exactly one wins.
            let dup = store.insert_pending(&pending("dup")).await;
            let serial = format!("{i:04x}");
            store.insert_pending(&pending(&serial)).await.unwrap();
            let first = store.next_crl_number(&root()).await.unwrap();
            store.mark_issued(&root(), &serial, &der(&serial)).await.unwrap();
            let second = store.next_crl_number(&root()).await.unwrap();
            assert!(second > first, "a replica saw CRL number {second} after {first}");
            (dup, [first, second])
        }));
    }
    let mut numbers = BTreeSet::new();
    let mut dup_wins = 0;
    for task in tasks {
        let (dup, taken) = task.await.unwrap();
        match dup {
            Ok(()) => dup_wins += 1,
            Err(StoreError::DuplicateSerial { serial, .. }) => assert_eq!(serial, "dup"),
            Err(other) => panic!("{other:?}"),
        }
        for n in taken {
            assert!(numbers.insert(n), "CRL number {n} handed out twice");
        }
    }
    assert_eq!(dup_wins, 1);
    assert_eq!(numbers, (1..=2 * TASKS as u64).collect::<BTreeSet<_>>());
    let issued =
        replicas[0].list(&InventoryFilter { status: Some(CertStatus::Issued), ..Default::default() }).await.unwrap();
    assert_eq!(issued.len(), TASKS);
    assert_eq!(replicas[2].next_crl_number(&root()).await.unwrap(), 2 * TASKS as u64 + 1);
}

/// The server crashes (immediate stop: no checkpoint) while issuances run, then comes
/// back: calls in between fail as `Unavailable`, never otherwise; every write that
/// returned success is there after recovery (durable before return); no record is
/// half-written; the same store instance works again without being reopened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_crash_mid_run_is_unavailable_then_recovers_with_every_acknowledged_write() {
    let mut server = TestPostgres::start();
    let store = Arc::new(PostgresStore::connect(&server.url()).await.unwrap());
    let runner = {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            let mut unavailable = 0;
            let mut after_outage = 0;
            // Bounded in count and time; generous for a loaded machine, where the
            // server's restart may take seconds.
            let deadline = std::time::Instant::now() + Duration::from_secs(120);
            for i in 0..100_000u32 {
                if std::time::Instant::now() > deadline {
                    break;
                }
                let serial = format!("{i:04x}");
                let outcome = async {
                    store.insert_pending(&pending(&serial)).await?;
                    store.mark_issued(&root(), &serial, &der(&serial)).await
                }
                .await;
                match outcome {
                    Ok(()) => {
                        acknowledged.push(serial);
                        after_outage += usize::from(unavailable > 0);
                    }
                    Err(StoreError::Unavailable { .. }) => unavailable += 1,
                    Err(other) => panic!("{serial}: not a retryable error: {other:?}"),
                }
                if after_outage >= 20 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (acknowledged, unavailable, after_outage)
        })
    };
    // Let some issuances land, crash the server, leave it down a moment, bring it back.
    while store.list(&InventoryFilter::default()).await.unwrap().len() < 20 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::task::block_in_place(|| server.crash());
    tokio::time::sleep(Duration::from_millis(500)).await;
    tokio::task::block_in_place(|| server.start_again());
    let (acknowledged, unavailable, after_outage) = runner.await.unwrap();
    assert!(unavailable > 0, "no call saw the server down");
    assert!(after_outage >= 20, "issuance did not resume on the same store: {after_outage} after the outage");
    for serial in &acknowledged {
        let record = store.get(&root(), serial).await.unwrap().expect("an acknowledged issuance was lost");
        assert_eq!(record.status, CertStatus::Issued);
        assert_eq!(record.der, Some(der(serial)));
    }
    // Whatever was cut off is either absent, pending (recovery abandons it) or complete.
    for record in store.list(&InventoryFilter::default()).await.unwrap() {
        match record.status {
            CertStatus::Issued => assert_eq!(record.der, Some(der(&record.serial))),
            CertStatus::Pending => assert_eq!(record.der, None),
            other => panic!("{}: {other:?}", record.serial),
        }
    }
}

/// The documented PostgreSQL backup path (docs/operations/backup.md): `pg_dump -Fc`, a
/// new server, `pg_restore`, then the CRL numbers raised past any published. The CA
/// keys, the inventory and the counters come back; serials stay unique.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_dump_and_pg_restore_bring_the_store_back() {
    use pkiplane_core::inventory::{CaMaterialStore, StoredCaMaterial};
    let old = TestPostgres::start();
    let store = PostgresStore::connect(&old.url()).await.unwrap();
    let material = StoredCaMaterial {
        certificate_der: vec![0x30, 1],
        private_key_pkcs8: vec![0x30, 2].into(),
        spec_hash: "h".to_owned(),
    };
    store.save_ca(&root(), &material).await.unwrap();
    for serial in ["b1", "b2"] {
        crate::common::issue(&store, &pending(serial)).await;
    }
    for _ in 0..3 {
        store.next_crl_number(&root()).await.unwrap();
    }
    let dump = tempfile::tempdir().unwrap();
    let file = dump.path().join("pkiplane.dump");
    let bin = pkiplane_store::testing::bin_dir();
    let out = tokio::task::block_in_place(|| {
        std::process::Command::new(bin.join("pg_dump")).args(["-Fc", "-f"]).arg(&file).args(["-d", &old.url()]).output()
    })
    .unwrap();
    assert!(out.status.success(), "pg_dump: {}", String::from_utf8_lossy(&out.stderr));
    drop(store);
    drop(old);

    let new = TestPostgres::start();
    let out = tokio::task::block_in_place(|| {
        std::process::Command::new(bin.join("pg_restore"))
            .args(["--no-owner", "--exit-on-error", "-d", &new.url()])
            .arg(&file)
            .output()
    })
    .unwrap();
    assert!(out.status.success(), "pg_restore: {}", String::from_utf8_lossy(&out.stderr));
    let store = PostgresStore::connect(&new.url()).await.unwrap();
    assert_eq!(store.load_ca(&root()).await.unwrap(), Some(material));
    assert_eq!(store.get(&root(), "b2").await.unwrap().unwrap().status, CertStatus::Issued);
    let floor = pkiplane_store::backup::crl_number_floor(std::time::SystemTime::now());
    assert_eq!(store.raise_crl_numbers(floor).await.unwrap(), 1);
    assert!(store.next_crl_number(&root()).await.unwrap() > floor);
    let err = store.insert_pending(&pending("b1")).await.unwrap_err();
    assert!(matches!(err, StoreError::DuplicateSerial { .. }), "{err:?}");
}
