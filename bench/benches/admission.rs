//! Admission latency without the network: `review()` (validate and mutate) for each kind
//! against the quickstart as the cluster, and building that view (what the webhook does
//! once per change of its watch cache).
//!
//! Run: `cargo bench -p pkiplane-bench --bench admission`

use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionReview};
use pkiplane_api::Manifests;
use pkiplane_webhook::{AdmissionMode, ClusterView, review};
use serde_json::Value;

fn request(kind: &str, object: Value) -> AdmissionRequest<DynamicObject> {
    let review: AdmissionReview<DynamicObject> =
        serde_json::from_value(pkiplane_bench::admission_review(kind, object, "bench", false)).expect("review");
    review.try_into().expect("request")
}

fn bench(c: &mut Criterion) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/quickstart.yaml");
    let manifests = Manifests::load(path).expect("quickstart");
    let view = ClusterView::from_manifests(&manifests);
    let named = |objects: Vec<Value>, name: &str| {
        objects.into_iter().find(|o| o["metadata"]["name"] == name).expect("object in the quickstart")
    };
    let json = |objects: Vec<serde_json::Result<Value>>| objects.into_iter().map(|o| o.expect("JSON")).collect();
    let issuers: Vec<Value> = json(manifests.issuers.iter().map(serde_json::to_value).collect());
    let profiles: Vec<Value> = json(manifests.profiles.iter().map(serde_json::to_value).collect());
    let endpoints: Vec<Value> = json(manifests.endpoints.iter().map(serde_json::to_value).collect());
    let cases = [
        ("issuer", request("Issuer", named(issuers, "example-intermediate"))),
        ("profile", request("CertificateProfile", named(profiles, "enterprise-tls-47d"))),
        ("endpoint-est", request("EnrollmentEndpoint", named(endpoints.clone(), "est"))),
        ("endpoint-scep", request("EnrollmentEndpoint", named(endpoints, "scep"))),
    ];
    let mut group = c.benchmark_group("admission");
    for (name, req) in &cases {
        assert!(review(req, &view, AdmissionMode::Validate).allowed, "{name} is admitted");
        group.bench_function(format!("validate/{name}"), |b| b.iter(|| review(req, &view, AdmissionMode::Validate)));
        group.bench_function(format!("mutate/{name}"), |b| b.iter(|| review(req, &view, AdmissionMode::Mutate)));
    }
    group.bench_function("view/build-quickstart", |b| b.iter(|| ClusterView::from_manifests(&manifests)));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
