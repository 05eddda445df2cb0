//! Requests that must fail, with the exact wire error and nothing issued.

use pkiplane_core::inventory::RevocationReason;
use pkiplane_core::issuance::RevocationRequest;
use pkiplane_core::keys::KeyAlgorithm;
use pkiplane_core::model::{ObjectRef, Protocol, Requester};
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair};

use crate::common::Env;

/// A CA made outside pkiplane and a client certificate it signed, valid between the
/// given years, written to `dir`; returns (leaf.pem, leaf.key) paths and the CA's DER.
fn foreign_ca(dir: &std::path::Path, name: &str, years: (i32, i32)) -> (String, String, Vec<u8>) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, format!("{name} CA"));
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(Vec::<String>::new()).unwrap();
    leaf.distinguished_name.push(DnType::CommonName, format!("{name} device"));
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    leaf.not_before = rcgen::date_time_ymd(years.0, 1, 1);
    leaf.not_after = rcgen::date_time_ymd(years.1, 1, 1);
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    let write = |file: &str, text: &str| {
        let p = dir.join(file);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_owned()
    };
    (
        write(&format!("{name}.pem"), &cert.pem()),
        write(&format!("{name}.key"), &key.serialize_pem()),
        ca_cert.der().to_vec(),
    )
}

/// The current calendar year (near enough: a certificate spans whole years around it).
fn this_year() -> i32 {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    1970 + (secs / 31_556_952) as i32
}

fn csr(env: &Env, subject: &str) -> String {
    let path = env.path("neg.csr");
    let out = std::process::Command::new("openssl")
        .args(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "/dev/null"])
        .args(["-subj", subject, "-outform", "PEM", "-out"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success());
    format!("@{}", path.display())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_untrusted_expired_or_revoked_are_refused() {
    // "old" is a CA the endpoint trusts (added to its anchors) whose device certificate
    // has expired; "rogue" is a CA nobody trusts.
    let foreign = tempfile::tempdir().unwrap();
    let (old, old_key, old_ca) = foreign_ca(foreign.path(), "old", (2020, 2021));
    // The rogue certificate is valid today (whatever day the suite runs), so that only
    // its untrusted issuer can be why it is refused.
    let this_year = this_year();
    let (rogue, rogue_key, _) = foreign_ca(foreign.path(), "rogue", (this_year - 1, this_year + 10));
    let env = Env::start(move |c| c.client_certs.as_mut().unwrap().anchors.push(old_ca)).await;

    let enroll = format!("{}/ldevid/simpleenroll", env.base);
    let body = csr(&env, "/CN=dev-x");
    let before = env.records().await.len();
    let post = |cert: &str, key: &str| {
        env.curl(&[
            "--cert",
            cert,
            "--key",
            key,
            "-H",
            "Content-Type: application/pkcs10",
            "--data-binary",
            &body,
            &enroll,
        ])
    };

    let (status, text) = post(&rogue, &rogue_key);
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("was not issued by a trusted CA"), "{text}");

    let (status, text) = post(&old, &old_key);
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("has expired"), "{text}");

    // A revoked IDevID from the trusted manufacturer Issuer.
    let (idevid, key) =
        env.issue_files("device-idevid-20y", KeyAlgorithm::EcdsaP256, "serialNumber=SN-REVOKED", &[], "revoked").await;
    let rec = env.record_of(&idevid).await;
    let requester = Requester::new(Protocol::Local, "test");
    let issuer = ObjectRef::new("pki", "manufacturer-root");
    env.ca
        .revoke(RevocationRequest::new(&issuer, &rec.serial, RevocationReason::KeyCompromise, &requester))
        .await
        .unwrap();
    let (status, text) = post(idevid.to_str().unwrap(), key.to_str().unwrap());
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("is revoked"), "{text}");

    // Without any credential: 401 with a Basic challenge.
    let (status, text) = env.curl(&["-H", "Content-Type: application/pkcs10", "--data-binary", &body, &enroll]);
    assert_eq!(status, 401, "{text}");
    assert!(text.to_ascii_lowercase().contains("www-authenticate: basic realm=\"pkiplane est pki/est\""), "{text}");

    // Nothing was issued through EST: only the revoked IDevID (LOCAL) was added.
    let records = env.records().await;
    assert_eq!(records.len(), before + 1);
    assert!(records.iter().all(|r| r.protocol != Protocol::Est));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_basic_password_is_refused_then_rate_limited() {
    let env = Env::start(|c| c.limits.basic_user_free_failures = 8).await;
    let body = csr(&env, "/CN=dev-x");
    let enroll = format!("{}/ldevid/simpleenroll", env.base);
    let from = |ip: &'static str| ["--interface", ip];
    for _ in 0..3 {
        let (status, text) = env.curl(
            &[&from("127.0.0.1")[..], &["-u", "device-enroller:wrong", "--data-binary", &body, &enroll]].concat(),
        );
        assert_eq!(status, 401, "{text}");
        assert!(text.to_ascii_lowercase().contains("www-authenticate: basic"), "{text}");
    }
    // The fourth attempt from that address waits, even with the right password.
    let right = ["-u", "device-enroller:est-demo-password", "--data-binary", &body, &enroll];
    let (status, text) = env.curl(&[&from("127.0.0.1")[..], &right].concat());
    assert_eq!(status, 429, "{text}");
    assert!(text.to_ascii_lowercase().contains("retry-after: "), "{text}");
    // The account is not locked out for everyone: another address enrolls.
    let (status, text) = env.curl(&[&from("127.0.0.2")[..], &right].concat());
    assert_eq!(status, 200, "{text}");
    // Another username from the first address is not locked by that account's failures.
    let (status, _) =
        env.curl(&[&from("127.0.0.1")[..], &["-u", "someone:else", "--data-binary", &body, &enroll]].concat());
    assert_eq!(status, 401);
    // Guessing spread over many addresses locks the account everywhere once past the
    // (much higher) per-user allowance: 8 failures here, from four more addresses.
    for ip in ["127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6"] {
        for _ in 0..2 {
            let wrong = ["-u", "device-enroller:wrong", "--data-binary", &body, &enroll];
            let (status, text) = env.curl(&[&from(ip)[..], &wrong].concat());
            assert!(status == 401 || status == 429, "{text}");
        }
    }
    let (status, text) = env.curl(&[&from("127.0.0.7")[..], &right].concat());
    assert_eq!(status, 429, "{text}");
    // One address trying many names backs off too.
    for i in 0..20 {
        let user = format!("name-{i}:pw");
        let (status, _) = env.curl(&[&from("127.0.0.8")[..], &["-u", &user, "--data-binary", &body, &enroll]].concat());
        assert_eq!(status, 401);
    }
    let (status, _) =
        env.curl(&[&from("127.0.0.8")[..], &["-u", "name-x:pw", "--data-binary", &body, &enroll]].concat());
    assert_eq!(status, 429);
    assert_eq!(
        env.records().await.iter().filter(|r| r.protocol == Protocol::Est).count(),
        1,
        "only the right password from the other address enrolled"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_success_clears_the_failures_before_it() {
    let env = Env::start(|_| {}).await;
    let body = csr(&env, "/CN=dev-y");
    let enroll = format!("{}/ldevid/simpleenroll", env.base);
    let wrong = ["--interface", "127.0.0.9", "-u", "device-enroller:wrong", "--data-binary", &body, &enroll];
    let right =
        ["--interface", "127.0.0.9", "-u", "device-enroller:est-demo-password", "--data-binary", &body, &enroll];
    // Two failures, a success, two more: never more than the three free failures in a
    // row, so the last request enrolls (without the clearing it would wait).
    for round in 0..2 {
        for _ in 0..2 {
            assert_eq!(env.curl(&wrong).0, 401, "round {round}");
        }
        let (status, text) = env.curl(&right);
        assert_eq!(status, 200, "round {round}: {text}");
    }
    assert_eq!(env.records().await.iter().filter(|r| r.protocol == Protocol::Est).count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_authorization_is_refused_with_431() {
    let env = Env::start(|_| {}).await;
    let body = csr(&env, "/CN=dev-y");
    let enroll = format!("{}/ldevid/simpleenroll", env.base);
    let user = format!("{}:pw", "u".repeat(100 * 1024));
    let (status, text) = env.curl(&["-u", &user, "--data-binary", &body, &enroll]);
    assert_eq!(status, 431, "{text}");
    let header = format!("Authorization: Basic {}", "A".repeat(1100));
    let (status, text) = env.curl(&["-H", &header, "--data-binary", &body, &enroll]);
    assert_eq!(status, 431, "{text}");
    assert!(text.contains("longer than 1024 bytes"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_unsupported_requests() {
    let env = Env::start(|_| {}).await;
    let auth = ["-u", "device-enroller:est-demo-password"];
    let url = |op: &str| format!("{}/ldevid/{op}", env.base);
    let (s, t) = env.curl(&[&auth[..], &["--data-binary", "not base64!", &url("simpleenroll")]].concat());
    assert_eq!(s, 400, "{t}");
    let (s, t) = env.curl(&[&auth[..], &["--data-binary", "MIIB", &url("simpleenroll")]].concat());
    assert_eq!(s, 400, "{t}");
    let big = "A".repeat(70 * 1024);
    let (s, t) = env.curl(&[&auth[..], &["--data-binary", &big, &url("simpleenroll")]].concat());
    assert_eq!(s, 413, "{t}");
    let (s, _) = env.curl(&[&format!("{}/nosuchlabel/cacerts", env.base)]);
    assert_eq!(s, 404);
    let (s, _) = env.curl(&[&url("nosuchop")]);
    assert_eq!(s, 404);
    let (s, t) = env.curl(&[&auth[..], &["--data-binary", "x", &url("fullcmc")]].concat());
    assert_eq!(s, 501, "{t}");
    let (s, t) = env.curl(&[&url("simpleenroll")]);
    assert_eq!(s, 405, "{t}");
    // simplereenroll needs the certificate being renewed.
    let body = csr(&env, "/CN=dev-x");
    let (s, t) = env.curl(&[&auth[..], &["--data-binary", &body, &url("simplereenroll")]].concat());
    assert_eq!(s, 403, "{t}");
    assert!(t.contains("simplereenroll renews the certificate"), "{t}");
    // A denial names the rule: P-384 is not allowed by device-ldevid-1y.
    let p384 = env.path("p384.csr");
    assert!(
        std::process::Command::new("openssl")
            .args([
                "req",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-384",
                "-nodes",
                "-keyout",
                "/dev/null",
                "-subj",
                "/CN=dev-y",
                "-out"
            ])
            .arg(&p384)
            .status()
            .unwrap()
            .success()
    );
    let (s, t) =
        env.curl(&[&auth[..], &["--data-binary", &format!("@{}", p384.display()), &url("simpleenroll")]].concat());
    assert_eq!(s, 403, "{t}");
    assert!(t.contains("keys.ecdsaCurves"), "{t}");
    assert!(env.records().await.iter().all(|r| r.protocol != Protocol::Est));
}
