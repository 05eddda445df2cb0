//! `pkiplane serve` as a process: ready file, CA and CRL publication, ownership of the
//! data directory (the CLI refuses to write beside it), SIGTERM, a restart on the same
//! data directory keeping the CA, and revocations showing on the next CRL.

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

/// The data directory is 0700 and nothing in it (database, lock, bundles) is open to
/// group or others.
fn assert_private(dir: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(dir), 0o700, "{}", dir.display());
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            assert_private(&path);
        } else {
            assert_eq!(mode(&path) & 0o077, 0, "{} is open to group or others", path.display());
        }
    }
}

#[test]
fn serve_publishes_ca_and_crl_and_survives_restart() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    let ready = d.path().join("ready.json");
    let p = |n: &str| d.path().join(n);
    let manifests = quickstart_free_ports(d.path());
    let server = Server::start(&manifests, &data, &ready);
    assert_private(&data);
    let base = format!("{}/issuers/pki", server.publish_url);
    fetch(&format!("{base}/example-root/ca.crt"), &p("root.der"));
    fetch(&format!("{base}/example-intermediate/ca.pem"), &p("int.pem"));
    run(
        "openssl",
        &["x509", "-inform", "DER", "-in", p("root.der").to_str().unwrap(), "-out", p("root.pem").to_str().unwrap()],
    );

    // Issue, then revoke, through the CLI on the same data directory: refused while serve
    // owns it, done once serve has stopped.
    let csr_path = common::p256_csr(d.path(), "web", "web.localhost");
    let dd = data.to_str().unwrap();
    let leaf_path = p("leaf.pem");
    let issue_args = [
        "issue",
        "-f",
        manifests.to_str().unwrap(),
        "--data-dir",
        dd,
        "--profile",
        "enterprise-tls-47d",
        "--csr",
        csr_path.to_str().unwrap(),
        "--out",
        leaf_path.to_str().unwrap(),
    ];
    let refused = Command::new(BIN).args(issue_args).env("PKIPLANE_LOG", "warn").output().unwrap();
    assert_eq!(refused.status.code(), Some(2));
    let why = String::from_utf8_lossy(&refused.stderr);
    let owner = format!("in use by `pkiplane serve` (pid {}", server.child.id());
    assert!(why.contains(&owner), "{why}");
    assert!(!p("leaf.pem").exists());
    // Nor can a second server, or a CA service, take the directory over.
    let m = manifests.to_str().unwrap();
    for args in [
        &["serve", "-f", m, "--data-dir", dd, "--publish-listen", "127.0.0.1:0"][..],
        &["ca", "--manifests", m, "--data-dir", dd, "--tls-dir", dd, "--listen", "127.0.0.1:0"][..],
    ] {
        // Bounded: a server that did start would otherwise run on.
        let out = Command::new("timeout").args(["20", BIN]).args(args).env("PKIPLANE_LOG", "warn").output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(&owner),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    fetch(&format!("{base}/example-intermediate/crl"), &p("crl1.der"));

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
    drop(server);

    run(BIN, &issue_args);
    common::verify_chain(&p("root.pem"), &p("int.pem"), &p("leaf.pem"));
    let serial = String::from_utf8(
        run("openssl", &["x509", "-in", p("leaf.pem").to_str().unwrap(), "-noout", "-serial"]).stdout,
    )
    .unwrap();
    let serial = serial.trim().trim_start_matches("serial=").to_string();

    run(BIN, &["revoke", &serial, "--data-dir", dd, "--reason", "keyCompromise"]);

    // Restart on the same data directory: same CA, same inventory, the revocation listed.
    let server = Server::start(&manifests, &data, &ready);
    let base = format!("{}/issuers/pki", server.publish_url);
    fetch(&format!("{base}/example-root/ca.crt"), &p("root2.der"));
    assert_eq!(std::fs::read(p("root.der")).unwrap(), std::fs::read(p("root2.der")).unwrap());
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

    let flags = common::admin_flags(&data);
    let mut args = vec!["inventory", "list", "--data-dir", dd, "--status", "revoked", "-o", "json"];
    args.extend(flags.iter().map(String::as_str));
    let list = run(BIN, &args);
    let v: Vec<serde_json::Value> = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(v.len(), 1);
    assert_eq!(v[0]["serial"].as_str().unwrap().to_uppercase(), serial);
    drop(server);
}
