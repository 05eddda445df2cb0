//! Validation against the quickstart as the cluster: the quickstart itself is clean, and
//! every fixture under tests/fixtures/bad is refused with its expected message.

mod common;

use common::{expectations, fixtures, quickstart, view_with};
use pkiplane_api::Manifests;
use pkiplane_webhook::{ClusterView, lint, lint_against};

#[test]
fn the_quickstart_validates_clean() {
    let findings = lint(&quickstart());
    assert_eq!(findings.len(), 3 + 4 + 4, "every Issuer, profile and endpoint is judged");
    let denied: Vec<String> = findings.iter().filter(|f| !f.verdict.is_allowed()).map(ToString::to_string).collect();
    assert!(denied.is_empty(), "the quickstart is refused:\n{}", denied.join(""));
}

#[test]
fn every_bad_fixture_is_refused_with_its_message() {
    let files = fixtures("bad");
    assert!(files.len() >= 25, "one fixture per rule, found {}", files.len());
    let mut failures = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("fixture");
        let expected = expectations(&text);
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        assert!(!expected.is_empty(), "{name} has no `# expect:` line");
        let objects = Manifests::from_yaml(&text, &name).unwrap_or_else(|e| panic!("{name}: {e}"));
        let denials: Vec<String> = lint_against(&objects, &view_with(&objects))
            .iter()
            .flat_map(|f| f.verdict.denials.iter().map(ToString::to_string))
            .collect();
        for e in &expected {
            if !denials.iter().any(|d| d.contains(e.as_str())) {
                failures.push(format!("{name}: expected `{e}`, got:\n  {}", denials.join("\n  ")));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_view_without_the_referenced_objects_refuses_the_quickstart_profiles() {
    let q = quickstart();
    let mut no_issuers = q.clone();
    no_issuers.issuers.clear();
    let findings = lint_against(&q, &ClusterView::from_manifests(&no_issuers));
    let profile_denials: Vec<String> = findings
        .iter()
        .filter(|f| f.kind == "CertificateProfile")
        .flat_map(|f| f.verdict.denials.iter().map(ToString::to_string))
        .collect();
    assert_eq!(profile_denials.len(), 4, "{profile_denials:?}");
    assert!(profile_denials.iter().all(|d| d.starts_with("spec.issuerRef.name: Issuer pki/")));
}

#[test]
fn an_issuer_status_not_after_bounds_its_profiles() {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::Timestamp;
    use pkiplane_api::v1alpha1::IssuerStatus;

    let mut q = quickstart();
    let now = Timestamp::from_second(1_900_000_000).unwrap();
    let in_30_days = Timestamp::from_second(1_900_000_000 + 30 * 86_400).unwrap();
    let intermediate =
        q.issuers.iter_mut().find(|i| i.metadata.name.as_deref() == Some("example-intermediate")).unwrap();
    intermediate.status = Some(IssuerStatus { not_after: Some(Time(in_30_days)), ..Default::default() });
    let view = ClusterView::from_manifests(&q).at(std::time::SystemTime::from(now));
    let denied: Vec<String> = lint_against(&q, &view)
        .iter()
        .flat_map(|f| f.verdict.denials.iter().map(move |d| format!("{} {}: {d}", f.kind, f.id)))
        .collect();
    // The 47-day, 90-day and 1-year profiles of the intermediate no longer fit; the
    // manufacturer root's 20-year profile still does.
    assert_eq!(denied.len(), 3, "{denied:#?}");
    assert!(denied.iter().any(|d| d.starts_with(
        "CertificateProfile pki/enterprise-tls-47d: spec.validity.duration: 47d is longer than Issuer \
         pki/example-intermediate has left (30d)"
    )));
}
