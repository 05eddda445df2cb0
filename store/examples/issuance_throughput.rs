//! Rough issuance throughput of the SQLite store: CONCURRENCY tasks each recording
//! issuances (insert_pending + mark_issued) until TOTAL are done. Not a test: numbers
//! depend on the disk's fsync latency.
//!
//! ```sh
//! cargo run --release -p pkiplane-store --example issuance_throughput -- [TOTAL] [CONCURRENCY] [DIR]
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use pkiplane_core::inventory::{CertStatus, CertificateRecord, Inventory};
use pkiplane_core::model::{ObjectRef, Protocol};
use pkiplane_store::SqliteStore;

fn record(serial: String) -> CertificateRecord {
    let now = SystemTime::now();
    CertificateRecord {
        serial,
        issuer: ObjectRef::new("bench", "root-ca"),
        profile: ObjectRef::new("bench", "tls"),
        protocol: Protocol::Acme,
        endpoint: Some(ObjectRef::new("bench", "acme")),
        requester: "bench".to_owned(),
        subject: "CN=bench.example".to_owned(),
        sans: vec!["DNS:bench.example".to_owned()],
        key_algorithm: "ECDSA P-256".to_owned(),
        not_before: now,
        not_after: now + Duration::from_secs(47 * 86_400),
        status: CertStatus::Pending,
        revocation: None,
        der: None,
        renewed_from: None,
        created_at: now,
        exchange: None,
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let total: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(20_000);
    let concurrency: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(256);
    let dir = match args.next() {
        Some(d) => std::path::PathBuf::from(d),
        None => std::env::temp_dir().join(format!("pkiplane-bench-{}", std::process::id())),
    };
    let path = dir.join("inventory.db");
    let store = Arc::new(SqliteStore::open(&path)?);
    let der = vec![0x30; 700];
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (store, next, der) = (Arc::clone(&store), Arc::clone(&next), der.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= total {
                    return Ok::<(), pkiplane_core::inventory::StoreError>(());
                }
                let r = record(format!("{n:016x}"));
                store.insert_pending(&r).await?;
                store.mark_issued(&r.issuer, &r.serial, &der).await?;
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    let elapsed = started.elapsed();
    println!(
        "{total} issuances with {concurrency} concurrent tasks in {:.2}s: {:.0} issuances/s",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );
    drop(store);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
