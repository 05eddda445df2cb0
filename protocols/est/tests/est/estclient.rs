//! The independent Go client `estclient` (github.com/globalsign/est), installed by
//! `scripts/tools/estclient.sh`.

use std::path::PathBuf;
use std::process::Command;

use pkiplane_core::model::Protocol;

use crate::common::{Env, repo_root, text};

fn estclient() -> PathBuf {
    let out = Command::new(repo_root().join("scripts/tools/estclient.sh")).output().expect("running estclient.sh");
    assert!(out.status.success(), "scripts/tools/estclient.sh could not install estclient:\n{}", text(&out.stderr));
    PathBuf::from(text(&out.stdout).trim())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn estclient_enrolls_and_reenrolls() {
    let bin = estclient();
    let env = Env::start(|_| {}).await;
    let server = format!("127.0.0.1:{}", env.addr.port());
    let run = |args: &[&str]| {
        let out = Command::new(&bin).args(args).current_dir(env.dir.path()).output().unwrap();
        assert!(out.status.success(), "estclient {args:?}:\n{}{}", text(&out.stdout), text(&out.stderr));
        text(&out.stdout)
    };
    let explicit = env.tls_ca.to_str().unwrap().to_owned();
    let common = ["-server", &server, "-explicit", &explicit, "-aps", "tls"];

    let cacerts = run(&[&["cacerts"][..], &common, &["-out", "ca.pem"]].concat());
    assert!(cacerts.is_empty() || !cacerts.contains("error"));
    let attrs = run(&[&["csrattrs"][..], &common].concat());
    assert!(attrs.contains("1.2.840.10045.2.1"), "{attrs}");

    // Enroll with Basic and a key and CSR estclient makes itself.
    let key = env.path("client.key");
    let out = Command::new("openssl")
        .args(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success());
    let key_s = key.to_str().unwrap().to_owned();
    run(&[
        &["enroll"][..],
        &common,
        &["-user", "device-enroller", "-pass", "est-demo-password", "-key", &key_s, "-cn", "gw.example.internal"],
        &["-dnsnames", "gw.example.internal", "-out", "client.pem"],
    ]
    .concat());
    let cert = env.path("client.pem");
    env.openssl_verify(&cert);
    let first = env.record_of(&cert).await;
    assert_eq!((first.protocol, first.requester.as_str()), (Protocol::Est, "basic:device-enroller"));
    assert_eq!(first.sans, vec!["DNS:gw.example.internal".to_owned()]);

    // Re-enroll: estclient authenticates with the certificate and key it holds.
    let cert_s = cert.to_str().unwrap().to_owned();
    run(&[&["reenroll"][..], &common, &["-certs", &cert_s, "-key", &key_s, "-out", "client2.pem"]].concat());
    let renewed = env.path("client2.pem");
    env.openssl_verify(&renewed);
    let second = env.record_of(&renewed).await;
    assert_eq!(second.renewed_from.as_deref(), Some(first.serial.as_str()));
    assert_eq!(second.requester, first.subject);
}
