//! `/metrics` of `pkiplane serve`: the exposition passes `promtool check metrics`, one
//! real EST enrollment (curl + openssl, HTTP Basic) moves the issued counter of its
//! profile by exactly one, and a request the profile's key rule refuses moves the denied
//! counter labelled with that rule by exactly one.

mod common;

use std::path::Path;
use std::process::Command;

use common::metrics::{promtool_check_metrics, sample};
use common::{Server, quickstart_free_ports, tool_path};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn scrape(server: &Server) -> String {
    let out = Command::new("curl").args(["-sSf", &format!("{}/metrics", server.metrics_url)]).output().unwrap();
    assert!(out.status.success(), "scraping /metrics: {}", text(&out.stderr));
    text(&out.stdout)
}

/// POSTs a base64 PKCS#10 request made from `key` to EST simpleenroll with HTTP Basic;
/// the HTTP status.
fn est_enroll(dir: &Path, base: &str, trust: &str, key_args: &[&str], cn: &str) -> String {
    let name = cn.replace(['/', ' '], "_");
    let key = format!("{name}.key");
    let req = Command::new("openssl")
        .current_dir(dir)
        .args(["req", "-new", "-nodes"])
        .args(key_args)
        .args(["-keyout", &key, "-subj", &format!("/CN={cn}"), "-outform", "DER", "-out", &format!("{name}.der")])
        .output()
        .unwrap();
    assert!(req.status.success(), "openssl req: {}", text(&req.stderr));
    let b64 = Command::new("openssl")
        .current_dir(dir)
        .args(["base64", "-in", &format!("{name}.der"), "-out", &format!("{name}.b64")])
        .output()
        .unwrap();
    assert!(b64.status.success());
    let out = Command::new("curl")
        .current_dir(dir)
        .args(["-s", "-o", &format!("{name}.p7"), "-w", "%{http_code}", "--cacert", trust])
        .args(["-u", "device-enroller:est-demo-password", "-H", "Content-Type: application/pkcs10"])
        .args(["--data-binary", &format!("@{name}.b64"), &format!("{base}/simpleenroll")])
        .output()
        .unwrap();
    text(&out.stdout)
}

#[test]
fn serve_metrics_pass_promtool_and_count_one_enrollment_and_one_denial() {
    // Missing promtool fails the test (tool_path asserts the build script succeeded).
    let promtool = tool_path("promtool.sh");
    let d = tempfile::tempdir().unwrap();
    let server = Server::start(&quickstart_free_ports(d.path()), &d.path().join("data"), &d.path().join("ready.json"));
    let ep = server.endpoint("pki", "est");
    let base = ep["urls"][0].as_str().unwrap().to_string();
    let trust = ep["tlsTrustBundle"].as_str().unwrap().to_string();

    let before = scrape(&server);
    promtool_check_metrics(&promtool, &before);
    // Metrics have a listener of their own: the publication listener, which relying
    // parties reach, does not serve them.
    let public = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", &format!("{}/metrics", server.publish_url)])
        .output()
        .unwrap();
    assert_eq!(text(&public.stdout), "404", "the publication listener must not serve /metrics");
    for family in
        ["pkiplane_ca_not_after_timestamp_seconds", "pkiplane_ca_next_staged", "pkiplane_certificates_expiring"]
    {
        assert!(before.contains(&format!("\n{family}{{")), "{family} has samples at start:\n{before}");
    }
    let issued = [
        ("issuer", "pki/example-intermediate"),
        ("profile", "pki/device-ldevid-1y"),
        ("protocol", "EST"),
        ("endpoint", "pki/est"),
    ];
    let denied = [("profile", "pki/device-ldevid-1y"), ("protocol", "EST"), ("rule", "keys.algorithms")];
    let issued_before = sample(&before, "pkiplane_certificates_issued_total", &issued);
    let denied_before = sample(&before, "pkiplane_certificates_denied_total", &denied);

    // One enrollment the profile allows (P-256) ...
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"];
    assert_eq!(est_enroll(d.path(), &base, &trust, &ec, "sensor-metrics"), "200");
    // ... and one its key rule refuses (the profile allows ECDSA only).
    let rsa = ["-newkey", "rsa:2048"];
    let refused = est_enroll(d.path(), &base, &trust, &rsa, "sensor-rsa");
    assert!(refused.starts_with('4'), "an RSA request is refused with a 4xx, got {refused}");

    let after = scrape(&server);
    promtool_check_metrics(&promtool, &after);
    // Every family the server exports is documented (the text format names counter
    // families with their `_total`).
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/monitoring.md")).unwrap();
    for line in after.lines().filter(|l| l.starts_with("# TYPE ")) {
        let family = line.split_whitespace().nth(2).unwrap();
        assert!(doc.contains(&format!("`{family}`")), "{family} is exported but not in docs/monitoring.md");
    }
    // Prometheus asks for OpenMetrics and gets it.
    let om = Command::new("curl")
        .args(["-sSf", "-H", "Accept: application/openmetrics-text;version=1.0.0"])
        .arg(format!("{}/metrics", server.metrics_url))
        .output()
        .unwrap();
    let om = text(&om.stdout);
    assert!(om.ends_with("# EOF\n") && om.contains("# TYPE pkiplane_certificates_issued counter"), "{om}");
    assert_eq!(sample(&after, "pkiplane_certificates_issued_total", &issued), issued_before + 1.0, "{after}");
    assert_eq!(sample(&after, "pkiplane_certificates_denied_total", &denied), denied_before + 1.0, "{after}");
    assert_eq!(sample(&after, "pkiplane_issuance_duration_seconds_count", &issued[1..3]), 1.0, "{after}");
    assert!(sample(&after, "pkiplane_store_write_duration_seconds_count", &[("operation", "mark_issued")]) >= 1.0);
    // The HTTP layer counted the endpoint's answers by class.
    let ok = [("listener", "endpoint"), ("endpoint", "pki/est"), ("code", "2xx")];
    let refused_class = format!("{}xx", &refused[..1]);
    let client_error = [("listener", "endpoint"), ("endpoint", "pki/est"), ("code", refused_class.as_str())];
    assert_eq!(sample(&after, "pkiplane_http_requests_total", &ok), 1.0, "{after}");
    assert_eq!(sample(&after, "pkiplane_http_requests_total", &client_error), 1.0, "{after}");
}
