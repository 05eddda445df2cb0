//! The OCSP responder in the core (`OcspResponder::respond`: parse, inventory read on
//! SQLite, sign or reuse, encode), for P-256 and RSA-2048 CAs: a request without a nonce
//! (answered from the pre-signed cache while the status stands), a request with a nonce
//! (signed by the delegated responder every time) and the same signed by the CA key.
//!
//! Run: `cargo bench -p pkiplane-bench --bench ocsp`

use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pkiplane_bench::{ca_and_store_with, issue_one, openssl_csr, run};
use pkiplane_core::keys::KeyAlgorithm;
use pkiplane_core::model::ObjectRef;
use pkiplane_core::ocsp::{OcspResponder, OcspResponseStatus, ResponderSigning};

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    for (name, alg) in [("p256", KeyAlgorithm::EcdsaP256), ("rsa2048", KeyAlgorithm::Rsa2048)] {
        let case_dir = dir.path().join(name);
        std::fs::create_dir_all(&case_dir).expect("dir");
        let (ca, store) = ca_and_store_with(alg, &case_dir);
        let ca = Arc::new(ca);
        let issued = rt.block_on(issue_one(&ca, &openssl_csr("EC", &case_dir)));
        let issuer = ObjectRef::new("bench", "ca");
        let path = |f: &str| case_dir.join(f).to_str().expect("path").to_string();
        std::fs::write(path("ca.pem"), ca.issuer(&issuer).expect("issuer").certificate_pem()).expect("write");
        std::fs::write(path("leaf.pem"), issued.certificate_pem()).expect("write");
        let (ca_pem, leaf_pem) = (path("ca.pem"), path("leaf.pem"));
        let request = |nonce: bool, out: &str| {
            let mut args = vec!["ocsp", "-issuer", &ca_pem, "-cert", &leaf_pem, "-reqout", out];
            if !nonce {
                args.push("-no_nonce");
            }
            run(&args);
            std::fs::read(out).expect("request")
        };
        let plain = request(false, &path("plain.der"));
        let with_nonce = request(true, &path("nonce.der"));

        let mut group = c.benchmark_group(format!("ocsp/{name}"));
        group.sample_size(50);
        group.throughput(Throughput::Elements(1));
        for (label, signing) in [("delegated", ResponderSigning::Delegated), ("ca-key", ResponderSigning::Ca)] {
            let responder = OcspResponder::new(ca.clone(), store.clone(), pkiplane_core::clock::system(), signing);
            rt.block_on(responder.prepare()).expect("responders");
            let answer = |req: &[u8]| {
                let a = rt.block_on(responder.respond(&issuer, req));
                assert_eq!(a.status, OcspResponseStatus::Successful);
                a
            };
            group.bench_function(format!("{label}/no-nonce-cached"), |b| b.iter(|| answer(&plain)));
            group.bench_function(format!("{label}/nonce-signed"), |b| b.iter(|| answer(&with_nonce)));
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
