//! Crash windows after signing, with the real binary and real clients: the failpoint
//! `issuance-after-store:<PROTOCOL>` aborts `pkiplane serve` right after a certificate
//! is recorded issued and before its protocol has recorded or answered anything. What
//! recovery does then is one rule per protocol (see `pkiplane_core::issuance`):
//!
//! * CMP: the transaction stayed open; at confirmWaitTime the certificate, never
//!   answered nor confirmed, is revoked (cessationOfOperation) and listed on the CRL;
//! * SCEP: the client's resend of the same transactionID gets that very certificate;
//! * EST: one request, no exchange to recover: like a response lost on the network, the
//!   certificate stays issued, and the client's retry is a new enrollment.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{Server, inventory, openssl, quickstart_free_ports, text, tool_path, verify_chain};

/// The serial (lowercase hex) of a PEM certificate.
fn serial_of(cert: &Path) -> String {
    let out = openssl(&["x509", "-in", cert.to_str().unwrap(), "-noout", "-serial"]);
    String::from_utf8_lossy(&out.stdout).trim().trim_start_matches("serial=").to_ascii_lowercase()
}

/// The quickstart on free ports, with CMP's confirmWaitTime cut to 2s.
fn manifests(dir: &Path) -> PathBuf {
    let path = quickstart_free_ports(dir);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("confirmWaitTime: 5m"));
    std::fs::write(&path, text.replace("confirmWaitTime: 5m", "confirmWaitTime: 2s")).unwrap();
    path
}

fn cmp_ir(server: &Server, dir: &Path, name: &str) -> Output {
    let url = server.endpoint("pki", "cmp")["urls"][0].as_str().unwrap().to_string();
    let key = dir.join(format!("{name}.key"));
    openssl(&["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key.to_str().unwrap()]);
    Command::new("openssl")
        .args(["cmp", "-cmd", "ir", "-server"])
        .arg(url.trim_start_matches("http://"))
        .args(["-path", "/.well-known/cmp/p/tls", "-ref", "device-1", "-secret", "pass:quickstart-cmp-secret"])
        .args(["-recipient", "/CN=pkiplane CMP pki\\/cmp", "-implicit_confirm", "-msg_timeout", "20"])
        .args(["-newkey", key.to_str().unwrap(), "-subject", &format!("/CN={name}.example.com")])
        .args(["-sans", &format!("{name}.example.com"), "-certout"])
        .arg(dir.join(format!("{name}.pem")))
        .output()
        .unwrap()
}

#[test]
fn cmp_a_certificate_issued_but_never_answered_is_revoked_at_confirm_wait_time() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    let ready = d.path().join("ready.json");
    let manifests = manifests(d.path());

    let mut server =
        Server::start_with_env(&manifests, &data, &ready, &[("PKIPLANE_FAILPOINT", "issuance-after-store:CMP")]);
    let out = cmp_ir(&server, d.path(), "lost");
    assert!(!out.status.success(), "the server died before answering: {}", text(&out));
    assert!(!server.wait_exit().success(), "aborted at the failpoint");
    let records = inventory(&data, "CMP");
    assert_eq!(records.len(), 1, "{records:?}");
    let lost = records[0]["serial"].as_str().unwrap().to_string();
    assert_eq!(records[0]["status"], "issued", "signed and recorded before the crash");
    let exchange = records[0]["exchange"].as_str().unwrap().to_string();
    assert!(exchange.starts_with("cmp:pki/cmp:"), "{exchange}");
    drop(server);

    // After confirmWaitTime (2s) the restarted server's sweep revokes it.
    std::thread::sleep(Duration::from_millis(2500));
    let server = Server::start(&manifests, &data, &ready);
    let deadline = Instant::now() + Duration::from_secs(90);
    let record = loop {
        let r = inventory(&data, "CMP").into_iter().find(|r| r["serial"] == lost.as_str()).unwrap();
        if r["status"] == "revoked" {
            break r;
        }
        assert!(Instant::now() < deadline, "the unanswered certificate was not revoked: {r}");
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(record["revocationReason"], "CessationOfOperation", "{record}");
    let crl = d.path().join("crl.der");
    let out = Command::new("curl")
        .args(["-sSf", "-o", crl.to_str().unwrap()])
        .arg(format!("{}/issuers/pki/example-intermediate/crl", server.publish_url))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let listed = openssl(&["crl", "-inform", "DER", "-in", crl.to_str().unwrap(), "-noout", "-text"]);
    assert!(
        String::from_utf8_lossy(&listed.stdout).to_ascii_lowercase().contains(&lost),
        "the CRL lists the revoked certificate"
    );

    // The client's own retry (a new transaction) is served as usual.
    let out = cmp_ir(&server, d.path(), "again");
    assert!(out.status.success(), "{}", text(&out));
    let again = serial_of(&d.path().join("again.pem"));
    let records = inventory(&data, "CMP");
    let issued: Vec<_> = records.iter().filter(|r| r["status"] == "issued").collect();
    assert_eq!(issued.len(), 1, "{records:?}");
    assert_eq!(issued[0]["serial"], again.as_str());
}

fn scepclient(bin: &str, dir: &Path, url: &str) -> Output {
    std::fs::create_dir_all(dir).unwrap();
    Command::new(bin)
        .current_dir(dir)
        .args(["-server-url", url, "-private-key", "key.pem", "-certificate", "cert.pem"])
        .args(["-challenge", "scep-demo-challenge", "-cn", "router-z.example.com"])
        .args(["-dnsname", "router-z.example.com", "-key-encipherment-selector"])
        .output()
        .unwrap()
}

#[test]
fn scep_a_certificate_issued_before_a_crash_is_delivered_to_the_resend() {
    let bin = tool_path("scepclient.sh");
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    let ready = d.path().join("ready.json");
    let manifests = quickstart_free_ports(d.path());
    let device = d.path().join("device");

    let mut server =
        Server::start_with_env(&manifests, &data, &ready, &[("PKIPLANE_FAILPOINT", "issuance-after-store:SCEP")]);
    let url = server.endpoint("pki", "scep")["urls"][0].as_str().unwrap().to_string();
    let out = scepclient(&bin, &device, &url);
    assert!(!out.status.success(), "the server died before answering: {}", text(&out));
    assert!(!server.wait_exit().success());
    let records = inventory(&data, "SCEP");
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["status"], "issued");
    let issued = records[0]["serial"].as_str().unwrap().to_string();
    drop(server);

    // The device tries again with its key: same transactionID (scepclient derives it
    // from the key), and the certificate issued before the crash comes back.
    let server = Server::start(&manifests, &data, &ready);
    let url = server.endpoint("pki", "scep")["urls"][0].as_str().unwrap().to_string();
    let out = scepclient(&bin, &device, &url);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(serial_of(&device.join("cert.pem")), issued, "the resend got the certificate issued before");
    let records = inventory(&data, "SCEP");
    assert_eq!(records.len(), 1, "nothing issued twice: {records:?}");

    // It chains to the issuing CA.
    let (root, int) = (d.path().join("root.pem"), d.path().join("int.pem"));
    for (file, to) in [("example-root/ca.pem", &root), ("example-intermediate/ca.pem", &int)] {
        let out = Command::new("curl")
            .args(["-sSf", "-o", to.to_str().unwrap()])
            .arg(format!("{}/issuers/pki/{file}", server.publish_url))
            .output()
            .unwrap();
        assert!(out.status.success());
    }
    verify_chain(&root, &int, &device.join("cert.pem"));
}

/// `curl` simpleenroll with HTTP Basic (base64 DER body, as device scripts send it).
fn est_enroll(server: &Server, csr_b64: &Path, out: &Path) -> Output {
    let ep = server.endpoint("pki", "est");
    let base = ep["urls"][0].as_str().unwrap();
    Command::new("curl")
        .args(["-sS", "--fail", "--cacert", ep["tlsTrustBundle"].as_str().unwrap()])
        .args(["-u", "device-enroller:est-demo-password", "-H", "Content-Type: application/pkcs10"])
        .arg("--data-binary")
        .arg(format!("@{}", csr_b64.display()))
        .arg("-o")
        .arg(out)
        .arg(format!("{base}/simpleenroll"))
        .output()
        .unwrap()
}

#[test]
fn est_a_certificate_issued_before_a_crash_stays_issued() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    let ready = d.path().join("ready.json");
    let manifests = quickstart_free_ports(d.path());
    let der = common::p256_csr_with(d.path(), "dev", "/CN=sensor-9", None, common::CsrForm::Der);
    let b64 = d.path().join("dev.csr.b64");
    let encoded = openssl(&["base64", "-in", der.to_str().unwrap()]);
    std::fs::write(&b64, &encoded.stdout).unwrap();

    let mut server =
        Server::start_with_env(&manifests, &data, &ready, &[("PKIPLANE_FAILPOINT", "issuance-after-store:EST")]);
    let out = est_enroll(&server, &b64, &d.path().join("lost.p7"));
    assert!(!out.status.success(), "the server died before answering: {}", text(&out));
    assert!(!server.wait_exit().success());
    drop(server);
    let lost = inventory(&data, "EST");
    assert_eq!(lost.len(), 1, "{lost:?}");
    assert_eq!(lost[0]["status"], "issued");
    assert!(lost[0].get("exchange").is_none(), "EST has no exchange to recover");

    // Restarted: recovery leaves it issued (not abandoned, not revoked); the client's
    // retry is served as a new enrollment.
    let server = Server::start(&manifests, &data, &ready);
    let out = est_enroll(&server, &b64, &d.path().join("dev.p7"));
    assert!(out.status.success(), "{}", text(&out));
    let records = inventory(&data, "EST");
    assert_eq!(records.len(), 2, "{records:?}");
    assert!(records.iter().all(|r| r["status"] == "issued"), "{records:?}");
}
