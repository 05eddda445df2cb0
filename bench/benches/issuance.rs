//! The core issuance path (verify CSR + policy + sign + durable SQLite record), for
//! P-256 and RSA-2048 issuers, one request at a time and with many in flight (where the
//! store's group commit shares one fsync among concurrent issuances).
//!
//! Run: `cargo bench -p pkiplane-bench`

use std::sync::Arc;
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures_util::StreamExt;
use pkiplane_bench::{ca_with, issue_one, openssl_csr};
use pkiplane_core::keys::KeyAlgorithm;
use pkiplane_core::x509::csr::{CsrOptions, ParsedCsr};

const IN_FLIGHT: usize = 64;

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, alg, csr_alg) in [("p256", KeyAlgorithm::EcdsaP256, "EC"), ("rsa2048", KeyAlgorithm::Rsa2048, "RSA")] {
        let case_dir = dir.path().join(name);
        std::fs::create_dir_all(&case_dir).expect("dir");
        let ca = Arc::new(ca_with(alg, &case_dir));
        let csr = Arc::new(openssl_csr(csr_alg, &case_dir));
        let mut group = c.benchmark_group(format!("issue/{name}"));
        group.sample_size(20);

        // CSR verification alone, to compare with `openssl speed`.
        group.throughput(Throughput::Elements(1));
        group.bench_function("verify-csr", |b| {
            b.iter(|| ParsedCsr::from_der(&csr, CsrOptions::default()).expect("csr"))
        });

        for (label, threads) in [("1-thread", 1usize), ("2-threads", 2)] {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(threads)
                .enable_all()
                .build()
                .expect("runtime");
            group.throughput(Throughput::Elements(1));
            group.bench_function(format!("sequential/{label}"), |b| {
                b.iter(|| rt.block_on(issue_one(&ca, &csr)));
            });
            // A steady IN_FLIGHT issuances at all times (a new one starts as soon as one
            // ends), as a server under that many concurrent requests sees them.
            group.throughput(Throughput::Elements(IN_FLIGHT as u64));
            group.bench_function(format!("{IN_FLIGHT}-in-flight/{label}"), |b| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    rt.block_on(async {
                        let tasks = (0..iters * IN_FLIGHT as u64).map(|_| {
                            let (ca, csr) = (ca.clone(), csr.clone());
                            tokio::spawn(async move { issue_one(&ca, &csr).await })
                        });
                        let mut done = futures_util::stream::iter(tasks).buffer_unordered(IN_FLIGHT);
                        while let Some(r) = done.next().await {
                            r.expect("task");
                        }
                    });
                    start.elapsed()
                });
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
