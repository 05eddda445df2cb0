//! The registry's exposition, the CA observer and the HTTP middleware (one process
//! registry: each test uses label values of its own).

use std::time::{Duration, UNIX_EPOCH};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use pkiplane_core::observe::{Event, Observer, Origin};
use pkiplane_core::{ObjectRef, Protocol};
use tower::ServiceExt;

use crate::ca::CaObserver;

fn line_with(text: &str, prefix: &str) -> Option<String> {
    text.lines().find(|l| l.starts_with(prefix)).map(str::to_string)
}

#[test]
fn observer_counts_issued_denied_per_rule_revoked_and_crls() {
    let (issuer, profile, endpoint) =
        (ObjectRef::new("t1", "issuer"), ObjectRef::new("t1", "profile"), ObjectRef::new("t1", "est"));
    let origin = Origin { issuer: &issuer, profile: &profile, protocol: Protocol::Est, endpoint: Some(&endpoint) };
    let o = CaObserver;
    o.observe(&Event::Issued { origin, took: Duration::from_millis(30) });
    o.observe(&Event::Issued { origin, took: Duration::from_millis(3) });
    o.observe(&Event::Denied { origin, rules: &["keys.algorithms", "subjectAltNames.dns"] });
    o.observe(&Event::Revoked { issuer: &issuer, profile: &profile });
    let next_update = UNIX_EPOCH + Duration::from_secs(1_900_000_000);
    o.observe(&Event::CrlPublished { issuer: &issuer, number: 7, next_update });
    o.observe(&Event::StoreWrite { operation: "mark_issued", took: Duration::from_millis(2) });

    let text = crate::render();
    let l = r#"{issuer="t1/issuer",profile="t1/profile",protocol="EST",endpoint="t1/est"}"#;
    assert_eq!(
        line_with(&text, &format!("pkiplane_certificates_issued_total{l}")).unwrap(),
        format!("pkiplane_certificates_issued_total{l} 2")
    );
    for rule in ["keys.algorithms", "subjectAltNames.dns"] {
        let d = format!(
            r#"pkiplane_certificates_denied_total{{issuer="t1/issuer",profile="t1/profile",protocol="EST",endpoint="t1/est",rule="{rule}"}} 1"#
        );
        assert!(text.contains(&d), "{d} in\n{text}");
    }
    assert!(text.contains(r#"pkiplane_certificates_revoked_total{issuer="t1/issuer",profile="t1/profile"} 1"#));
    assert!(
        text.contains(r#"pkiplane_issuance_duration_seconds_bucket{le="0.005",profile="t1/profile",protocol="EST"} 1"#)
            || text.contains(
                r#"pkiplane_issuance_duration_seconds_bucket{profile="t1/profile",protocol="EST",le="0.005"} 1"#
            ),
        "{text}"
    );
    assert!(text.contains(r#"pkiplane_crl_number{issuer="t1/issuer"} 7"#));
    assert!(text.contains(r#"pkiplane_crl_next_update_timestamp_seconds{issuer="t1/issuer"} 1900000000"#), "{text}");
    assert!(text.contains("# TYPE pkiplane_store_write_duration_seconds histogram"));
    assert!(text.ends_with("# EOF\n"));
    assert!(!text.lines().any(|l| l.starts_with("# HELP") && l.ends_with("..")), "help ends in one full stop:\n{text}");
}

#[tokio::test]
async fn middleware_counts_answers_by_status_class() {
    let app = axum::Router::new()
        .route("/ok", get(|| async { "ok" }))
        .route("/teapot", get(|| async { StatusCode::IM_A_TEAPOT }));
    let app = crate::http::instrument(app, "endpoint", "t2/acme");
    for path in ["/ok", "/ok", "/teapot", "/missing"] {
        let _ = app.clone().oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
    }
    let text = crate::render();
    assert!(
        text.contains(r#"pkiplane_http_requests_total{listener="endpoint",endpoint="t2/acme",code="2xx"} 2"#),
        "{text}"
    );
    assert!(
        text.contains(r#"pkiplane_http_requests_total{listener="endpoint",endpoint="t2/acme",code="4xx"} 2"#),
        "{text}"
    );
}

#[tokio::test]
async fn metrics_route_serves_openmetrics_when_asked_else_the_text_format() {
    crate::http::metrics();
    let ask = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5";
    let request = Request::get("/metrics").header("accept", ask).body(Body::empty()).unwrap();
    let response = crate::router().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], crate::CONTENT_TYPE_OPENMETRICS);
    let response = crate::router().oneshot(Request::get("/metrics").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(response.headers()["content-type"], crate::CONTENT_TYPE_TEXT);
}

#[test]
fn text_format_names_counter_families_with_total_and_drops_unit_and_eof() {
    let om = "# HELP pkiplane_x Things.\n# TYPE pkiplane_x counter\npkiplane_x_total{a=\"b\"} 1\n\
              # HELP pkiplane_d_seconds Time.\n# TYPE pkiplane_d_seconds histogram\n# UNIT pkiplane_d_seconds seconds\n\
              pkiplane_d_seconds_count 0\n# EOF\n";
    assert_eq!(
        crate::prometheus_text(om),
        "# HELP pkiplane_x_total Things.\n# TYPE pkiplane_x_total counter\npkiplane_x_total{a=\"b\"} 1\n\
         # HELP pkiplane_d_seconds Time.\n# TYPE pkiplane_d_seconds histogram\npkiplane_d_seconds_count 0\n"
    );
}

/// Every family of every group (CA, HTTP, operator: what any component may export), with
/// samples, in the text format passes `promtool check metrics`, built by
/// scripts/tools/promtool.sh (the test fails when it cannot be built).
#[test]
fn every_family_passes_promtool() {
    let (issuer, profile) = (ObjectRef::new("t3", "issuer"), ObjectRef::new("t3", "profile"));
    let origin = Origin { issuer: &issuer, profile: &profile, protocol: Protocol::Cmp, endpoint: None };
    CaObserver.observe(&Event::Issued { origin, took: Duration::from_millis(5) });
    CaObserver.observe(&Event::Denied { origin, rules: &["validity"] });
    let m = crate::ca::metrics();
    let l = crate::ca::IssuerLabels { issuer: issuer.to_string() };
    m.ca_not_after.get_or_create(&l).set(1.9e9);
    m.next_ca_staged.get_or_create(&l).set(1);
    let p = crate::ca::ProfileLabels { issuer: issuer.to_string(), profile: profile.to_string() };
    m.expiring.get_or_create(&p).set(3);
    crate::operator::metrics().reconciled("issuer", Duration::from_millis(4), Some("kube"));
    crate::operator::metrics().set_leader(true);
    crate::http::metrics();

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/tools/promtool.sh");
    let built = std::process::Command::new("bash").arg(script).output().unwrap();
    assert!(built.status.success(), "promtool.sh: {}", String::from_utf8_lossy(&built.stderr));
    let promtool = String::from_utf8(built.stdout).unwrap().trim().to_string();
    let mut child = std::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let text = crate::prometheus_text(&crate::render());
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "promtool check metrics: {said}\n--- exposition ---\n{text}");
}
