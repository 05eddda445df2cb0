//! `pkiplane serve` as a process: ready file, CA and CRL publication, revocations showing
//! on the next CRL, SIGTERM, and a restart on the same data directory keeping the CA.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

mod common;

use common::{BIN, Server, quickstart_free_ports};

fn run(cmd: &str, args: &[&str]) -> Output {
    let out = Command::new(cmd).args(args).env("PKIPLANE_LOG", "warn").output().unwrap();
    assert!(out.status.success(), "{cmd} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

fn fetch(url: &str, to: &std::path::Path) {
    run("curl", &["-sSf", "-o", to.to_str().unwrap(), url]);
}

#[test]
fn serve_publishes_ca_and_crl_and_survives_restart() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    let ready = d.path().join("ready.json");
    let p = |n: &str| d.path().join(n);
    let manifests = quickstart_free_ports(d.path());
    let server = Server::start(&manifests, &data, &ready);
    let base = format!("{}/issuers/pki", server.publish_url);
    fetch(&format!("{base}/example-root/ca.crt"), &p("root.der"));
    fetch(&format!("{base}/example-intermediate/ca.pem"), &p("int.pem"));
    run(
        "openssl",
        &["x509", "-inform", "DER", "-in", p("root.der").to_str().unwrap(), "-out", p("root.pem").to_str().unwrap()],
    );

    // Issue through the CLI on the same data directory while serve runs, then revoke.
    let dd = data.to_str().unwrap();
    let csr = common::p256_csr(d.path(), "k", "web.localhost");
    let serial = common::issue_with_cli(&manifests, &data, "enterprise-tls-47d", &csr, &p("leaf.pem"));
    run(
        "openssl",
        &[
            "verify",
            "-CAfile",
            p("root.pem").to_str().unwrap(),
            "-untrusted",
            p("int.pem").to_str().unwrap(),
            p("leaf.pem").to_str().unwrap(),
        ],
    );
    fetch(&format!("{base}/example-intermediate/crl"), &p("crl1.der"));
    run(BIN, &["revoke", &serial, "--data-dir", dd, "--reason", "keyCompromise"]);
    fetch(&format!("{base}/example-intermediate/crl"), &p("crl2.der"));
    let crl_text = |f: &str| {
        String::from_utf8(
            run(
                "openssl",
                &[
                    "crl",
                    "-inform",
                    "DER",
                    "-in",
                    p(f).to_str().unwrap(),
                    "-CAfile",
                    p("int.pem").to_str().unwrap(),
                    "-noout",
                    "-text",
                ],
            )
            .stdout,
        )
        .unwrap()
    };
    assert!(!crl_text("crl1.der").contains(&serial));
    let t = crl_text("crl2.der");
    assert!(t.contains(&format!("Serial Number: {serial}")) && t.contains("Key Compromise"), "{t}");
    // The CRL's signature verifies against the intermediate.
    let verify = Command::new("openssl")
        .args([
            "crl",
            "-inform",
            "DER",
            "-in",
            p("crl2.der").to_str().unwrap(),
            "-CAfile",
            p("int.pem").to_str().unwrap(),
            "-noout",
            "-verify",
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&verify.stderr).contains("verify OK"));
    let missing = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", &format!("{base}/nope/crl")])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&missing.stdout), "404");

    // SIGTERM: a clean, prompt exit.
    let mut server = server;
    run("kill", &["-TERM", &server.child.id().to_string()]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = server.child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "serve did not exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");

    // Restart on the same data directory: same CA, same inventory.
    let server = Server::start(&manifests, &data, &ready);
    fetch(&format!("{}/issuers/pki/example-root/ca.crt", server.publish_url), &p("root2.der"));
    assert_eq!(std::fs::read(p("root.der")).unwrap(), std::fs::read(p("root2.der")).unwrap());
    let list = run(BIN, &["inventory", "list", "--data-dir", dd, "--status", "revoked", "-o", "json"]);
    let v: Vec<serde_json::Value> = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(v.len(), 1);
    assert_eq!(v[0]["serial"].as_str().unwrap().to_uppercase(), serial);
}
