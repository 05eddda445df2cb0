//! certbot (the Debian package) against the quickstart ACME endpoint of `pkiplane serve`:
//! obtain with http-01 in standalone mode, renew, revoke; every certificate verifies
//! against the issuer chain and the inventory records it as ACME.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{Server, quickstart_free_ports};

fn certbot_path() -> String {
    let out =
        Command::new("bash").arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/tools/certbot.sh")).output().unwrap();
    assert!(out.status.success(), "installing certbot failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().lines().last().unwrap().to_string()
}

fn certbot(bin: &str, dir: &Path, trust: &str, args: &[&str]) -> Output {
    let d = dir.to_str().unwrap();
    Command::new(bin)
        .args(args)
        .args(["--non-interactive", "--config-dir", &format!("{d}/config"), "--work-dir", &format!("{d}/work")])
        .args(["--logs-dir", &format!("{d}/logs")])
        .env("REQUESTS_CA_BUNDLE", trust)
        .output()
        .unwrap()
}

fn ok(o: &Output) -> String {
    let t = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "{t}");
    t
}

fn inventory(data: &Path) -> Vec<serde_json::Value> {
    common::inventory(data, "ACME")
}

fn verify(root: &str, chain: &Path, cert: &Path) {
    let out = Command::new("openssl")
        .args(["verify", "-CAfile", root, "-untrusted", chain.to_str().unwrap(), cert.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn certbot_obtains_renews_and_revokes() {
    let bin = certbot_path();
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    // The validator's http-01 port, free on this machine, is where certbot listens.
    let port = common::free_port().to_string();
    let manifests = quickstart_free_ports(d.path());
    let text = std::fs::read_to_string(&manifests).unwrap().replace("http01Port: 5002", &format!("http01Port: {port}"));
    std::fs::write(&manifests, text).unwrap();
    let server = Server::start(&manifests, &data, &d.path().join("ready.json"));
    let ep = server.endpoint("pki", "acme");
    let directory = ep["urls"][0].as_str().unwrap().to_string();
    let trust = ep["tlsTrustBundle"].as_str().unwrap().to_string();
    let cb = d.path().join("certbot");

    // Obtain: http-01 answered by certbot's standalone server on the validator's port.
    ok(&certbot(
        &bin,
        &cb,
        &trust,
        &[
            "certonly",
            "--standalone",
            "--http-01-port",
            &port,
            "--http-01-address",
            "127.0.0.1",
            "-d",
            "web.localhost",
            "--server",
            &directory,
            "--agree-tos",
            "-m",
            "ops@example.com",
        ],
    ));
    let live = cb.join("config/live/web.localhost");
    let root = d.path().join("root.pem");
    let root_pem = Command::new("curl")
        .args(["-sSf", &format!("{}/issuers/pki/example-root/ca.pem", server.publish_url)])
        .output()
        .unwrap();
    std::fs::write(&root, root_pem.stdout).unwrap();
    verify(root.to_str().unwrap(), &live.join("chain.pem"), &live.join("cert.pem"));
    let first = inventory(&data);
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0]["status"], "issued");
    assert_eq!(first[0]["sans"][0], "DNS:web.localhost");
    assert!(first[0]["requester"].as_str().unwrap().starts_with(&directory.replace("/directory", "/acct/")));
    assert_eq!(first[0]["endpoint"], "pki/acme");

    // Renew.
    let t = ok(&certbot(&bin, &cb, &trust, &["renew", "--force-renewal", "--no-random-sleep-on-renew"]));
    assert!(t.contains("(success)"), "{t}");
    verify(root.to_str().unwrap(), &live.join("chain.pem"), &live.join("cert.pem"));
    let renewed = inventory(&data);
    assert_eq!(renewed.len(), 2);

    // Revoke the current certificate with its account key.
    ok(&certbot(
        &bin,
        &cb,
        &trust,
        &[
            "revoke",
            "--server",
            &directory,
            "--cert-path",
            live.join("cert.pem").to_str().unwrap(),
            "--reason",
            "keycompromise",
            "--no-delete-after-revoke",
        ],
    ));
    let after = inventory(&data);
    let revoked: Vec<_> = after.iter().filter(|r| r["status"] == "revoked").collect();
    assert_eq!(revoked.len(), 1, "{after:?}");
    assert_eq!(revoked[0]["revocationReason"], "KeyCompromise");
    let serial = Command::new("openssl")
        .args(["x509", "-in", live.join("cert.pem").to_str().unwrap(), "-noout", "-serial"])
        .output()
        .unwrap();
    let serial = String::from_utf8(serial.stdout).unwrap().trim().trim_start_matches("serial=").to_lowercase();
    assert_eq!(revoked[0]["serial"], serial.as_str());
}
