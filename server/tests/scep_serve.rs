//! micromdm's scepclient against the quickstart SCEP endpoint of `pkiplane serve`: the
//! static challenge, and a one-time challenge (bound to the device's name, refused the
//! second time) minted through the running server's challenge API: `pkiplane scep
//! challenge` refuses to write beside the server that owns the data directory.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{BIN, Server, quickstart_free_ports};

fn tool(script: &str) -> String {
    let out =
        Command::new("bash").arg(format!("{}/../scripts/tools/{script}", env!("CARGO_MANIFEST_DIR"))).output().unwrap();
    assert!(out.status.success(), "{script}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().lines().last().unwrap().to_string()
}

fn scepclient(bin: &str, dir: &Path, url: &str, challenge: &str, cn: &str) -> Output {
    std::fs::create_dir_all(dir).unwrap();
    Command::new(bin)
        .current_dir(dir)
        .args(["-server-url", url, "-private-key", "key.pem", "-certificate", "cert.pem", "-challenge", challenge])
        .args(["-cn", cn, "-dnsname", cn, "-key-encipherment-selector"])
        .output()
        .unwrap()
}

fn both(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[test]
fn scepclient_enrolls_with_static_and_one_time_challenges() {
    let bin = tool("scepclient.sh");
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    let manifests = quickstart_free_ports(d.path());
    // The RA key (and the CA keys) sealed at rest: the client sees no difference.
    let kek = d.path().join("kek");
    std::fs::write(&kek, "k1:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\n").unwrap();
    let server = Server::start_with(
        &manifests,
        &data,
        &d.path().join("ready.json"),
        &["--kek-file", kek.to_str().unwrap()],
        None,
    );
    let url = server.endpoint("pki", "scep")["urls"][0].as_str().unwrap().to_string();
    let fetch = |path: &str, to: &Path| {
        let out = Command::new("curl")
            .args(["-sSf", "-o", to.to_str().unwrap(), &format!("{}{path}", server.publish_url)])
            .output()
            .unwrap();
        assert!(out.status.success());
    };
    let (root, int) = (d.path().join("root.pem"), d.path().join("int.pem"));
    fetch("/issuers/pki/example-root/ca.pem", &root);
    fetch("/issuers/pki/example-intermediate/ca.pem", &int);
    let verify = |cert: &Path| common::verify_chain(&root, &int, cert);

    // The static challenge from the quickstart Secret.
    let out = scepclient(&bin, &d.path().join("a"), &url, "scep-demo-challenge", "router-a.example.com");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    verify(&d.path().join("a/cert.pem"));

    // While serve owns the data directory the CLI refuses, naming it and the API to use.
    let refused = Command::new(BIN)
        .args(["scep", "challenge", "-f", manifests.to_str().unwrap(), "--data-dir", data.to_str().unwrap()])
        .args(["--endpoint", "pki/scep", "--ttl", "10m"])
        .env("PKIPLANE_LOG", "warn")
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    let why = both(&refused);
    assert!(why.contains("in use by `pkiplane serve` (pid ") && why.contains("POST <scep url>/challenges"), "{why}");

    // A one-time challenge bound to one name, from the running server's API.
    let minted = Command::new("curl")
        .args(["-sSf", "-H", "Authorization: Bearer scep-demo-api-token-0123456789"])
        .args(["-H", "Content-Type: application/json", "--data"])
        .arg(r#"{"commonName": "router-b.example.com", "sans": ["DNS:router-b.example.com"], "ttl": "10m"}"#)
        .arg(format!("{}/challenges", url.trim_end_matches('/')))
        .output()
        .unwrap();
    assert!(minted.status.success(), "{}", both(&minted));
    let minted: serde_json::Value = serde_json::from_slice(&minted.stdout).unwrap();
    let challenge = minted["challenge"].as_str().unwrap();
    // Bound to another name: refused, and the challenge is not spent by the refusal.
    let out = scepclient(&bin, &d.path().join("x"), &url, challenge, "intruder.example.com");
    assert!(!out.status.success());
    assert!(both(&out).contains("failInfo: badRequest"), "{}", both(&out));
    let out = scepclient(&bin, &d.path().join("b"), &url, challenge, "router-b.example.com");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    verify(&d.path().join("b/cert.pem"));
    // Used once: refused the second time.
    let out = scepclient(&bin, &d.path().join("c"), &url, challenge, "router-b.example.com");
    assert!(!out.status.success());
    assert!(both(&out).contains("failInfo: badRequest"), "{}", both(&out));

    let records = common::inventory(&data, "SCEP");
    assert_eq!(records.len(), 2, "{records:?}");
    assert!(records.iter().all(|r| r["endpoint"] == "pki/scep" && r["profile"] == "pki/scep-device-90d"));
    assert!(
        records.iter().any(|r| r["requester"].as_str().unwrap().contains(minted["id"].as_str().unwrap())),
        "{records:?}"
    );
}
