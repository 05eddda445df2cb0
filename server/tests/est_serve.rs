//! The Go `estclient` and a curl + openssl device against the quickstart EST endpoint of
//! `pkiplane serve`: cacerts, csrattrs, enroll with HTTP Basic, re-enroll with the
//! certificate, and an untrusted client refused.

mod common;

use std::process::Command;

use common::{Server, quickstart_free_ports};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn estclient_and_curl_enroll_through_serve() {
    let out = Command::new("bash")
        .arg(format!("{}/../scripts/tools/estclient.sh", env!("CARGO_MANIFEST_DIR")))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let bin = text(&out.stdout).trim().lines().last().unwrap().to_string();
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    let server = Server::start(&quickstart_free_ports(d.path()), &data, &d.path().join("ready.json"));
    let ep = server.endpoint("pki", "est");
    let base = ep["urls"][0].as_str().unwrap().to_string(); // https://localhost:PORT/.well-known/est
    let host = base.trim_start_matches("https://").split('/').next().unwrap().to_string();
    let trust = ep["tlsTrustBundle"].as_str().unwrap().to_string();
    let run = |args: &[&str]| {
        let out = Command::new(&bin).args(args).current_dir(d.path()).output().unwrap();
        assert!(out.status.success(), "estclient {args:?}: {}{}", text(&out.stdout), text(&out.stderr));
        text(&out.stdout)
    };
    let common = ["-server", host.as_str(), "-explicit", trust.as_str()];
    run(&[&["cacerts"][..], &common, &["-out", "ca.pem"]].concat());
    let attrs = run(&[&["csrattrs"][..], &common].concat());
    assert!(attrs.contains("1.2.840.10045.3.1.7"), "csrattrs names P-256 for the ldevid profile: {attrs}");

    let key = d.path().join("dev.key");
    assert!(
        Command::new("openssl")
            .args(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out"])
            .arg(&key)
            .status()
            .unwrap()
            .success()
    );
    let key_s = key.to_str().unwrap();
    run(&[
        &["enroll"][..],
        &common,
        &[
            "-user",
            "device-enroller",
            "-pass",
            "est-demo-password",
            "-key",
            key_s,
            "-cn",
            "sensor-7",
            "-out",
            "dev.pem",
        ],
    ]
    .concat());
    run(&[&["reenroll"][..], &common, &["-certs", "dev.pem", "-key", key_s, "-out", "dev2.pem"]].concat());

    // The chain the server publishes verifies both.
    let fetch = |path: &str, to: &str| {
        let out = Command::new("curl")
            .args(["-sSf", "-o"])
            .arg(d.path().join(to))
            .arg(format!("{}{path}", server.publish_url))
            .output()
            .unwrap();
        assert!(out.status.success());
    };
    fetch("/issuers/pki/example-root/ca.pem", "root.pem");
    fetch("/issuers/pki/example-intermediate/ca.pem", "int.pem");
    for cert in ["dev.pem", "dev2.pem"] {
        let out = Command::new("openssl")
            .current_dir(d.path())
            .args(["verify", "-CAfile", "root.pem", "-untrusted", "int.pem", cert])
            .output()
            .unwrap();
        assert!(out.status.success(), "{cert}: {}", text(&out.stderr));
    }

    // A device with a certificate from no trusted CA gets 403 from curl.
    assert!(
        Command::new("openssl")
            .current_dir(d.path())
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "rogue.key",
                "-subj",
                "/CN=rogue/serialNumber=X1",
                "-days",
                "1",
                "-out",
                "rogue.pem"
            ])
            .output()
            .unwrap()
            .status
            .success()
    );
    assert!(
        Command::new("openssl")
            .current_dir(d.path())
            .args(["req", "-new", "-key", "rogue.key", "-subj", "/CN=rogue", "-outform", "DER", "-out", "rogue.der"])
            .output()
            .unwrap()
            .status
            .success()
    );
    let b64 = Command::new("openssl")
        .current_dir(d.path())
        .args(["base64", "-in", "rogue.der", "-out", "rogue.b64"])
        .output()
        .unwrap();
    assert!(b64.status.success());
    let code = Command::new("curl")
        .current_dir(d.path())
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--cacert",
            &trust,
            "--cert",
            "rogue.pem",
            "--key",
            "rogue.key",
        ])
        .args([
            "-H",
            "Content-Type: application/pkcs10",
            "--data-binary",
            "@rogue.b64",
            &format!("{base}/simpleenroll"),
        ])
        .output()
        .unwrap();
    assert_eq!(text(&code.stdout), "403");

    let records = common::inventory(&data, "EST");
    assert_eq!(records.len(), 2, "{records:?}");
    let renewed = records
        .iter()
        .find(|r| r["renewedFrom"].is_string())
        .expect("the re-enrolled certificate links its predecessor");
    let first = records.iter().find(|r| r["renewedFrom"].is_null()).unwrap();
    assert_eq!(renewed["renewedFrom"], first["serial"]);
    assert_eq!(first["requester"], "basic:device-enroller");
    assert!(records.iter().all(|r| r["profile"] == "pki/device-ldevid-1y" && r["endpoint"] == "pki/est"));
}
