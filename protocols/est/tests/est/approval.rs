//! Issue 17's acceptance for EST with curl + openssl: under a profile that requires
//! approval, `/simpleenroll` answers 202 with Retry-After; the same request retried (same
//! client certificate, same key) is matched to its approval record: once approved, 200
//! with the one certificate issued for it (verified against the chain; the same one on a
//! later retry), while waiting 202 again, once denied 403 naming the approver's reason.

use std::path::PathBuf;

use pkiplane_core::approval::ApprovalFilter;
use pkiplane_core::keys::KeyAlgorithm;
use pkiplane_core::model::ObjectRef;

use crate::common::{Env, text};

struct Device {
    cert: PathBuf,
    key: PathBuf,
    csr: PathBuf,
    identity: String,
}

/// An IDevID from the manufacturer Issuer and a CSR (base64 DER, made by openssl).
async fn device(env: &Env, n: &str) -> Device {
    let serial = format!("serialNumber=SN-A{n}");
    let (cert, key) =
        env.issue_files("device-idevid-20y", KeyAlgorithm::EcdsaP256, &serial, &[], &format!("idevid-{n}")).await;
    let (new_key, der, csr) =
        (env.path(&format!("ldevid-{n}.key")), env.path(&format!("{n}.csr.der")), env.path(&format!("{n}.csr.b64")));
    let subject = format!("/CN=dev-a{n}/serialNumber=SN-A{n}");
    let out = std::process::Command::new("openssl")
        .args(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout"])
        .arg(&new_key)
        .args(["-subj", &subject, "-outform", "DER", "-out"])
        .arg(&der)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = std::process::Command::new("openssl")
        .args(["base64", "-in"])
        .arg(&der)
        .args(["-out"])
        .arg(&csr)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let identity = env.record_of(&cert).await.subject;
    Device { cert, key, csr, identity }
}

/// POST /ldevid/simpleenroll with curl: (status, headers and body).
fn enroll(env: &Env, d: &Device) -> (u16, String) {
    env.curl(&[
        "--cert",
        d.cert.to_str().unwrap(),
        "--key",
        d.key.to_str().unwrap(),
        "-H",
        "Content-Type: application/pkcs10",
        "--data-binary",
        &format!("@{}", d.csr.display()),
        &format!("{}/ldevid/simpleenroll", env.base),
    ])
}

/// The certificate of a 200 response (base64 certs-only CMS) as a PEM file, via openssl.
fn certificate(env: &Env, response: &str, name: &str) -> PathBuf {
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    let b64 = env.path(&format!("{name}.p7.b64"));
    std::fs::write(&b64, body).unwrap();
    let pem = env.path(&format!("{name}.pem"));
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl base64 -d -in '{}' | openssl pkcs7 -inform DER -print_certs -out '{}'",
            b64.display(),
            pem.display()
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    pem
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_of_the_approved_request_gets_its_certificate_and_a_denied_one_is_refused() {
    let env = Env::start(|_| {}).await;
    let id = ObjectRef::new("pki", "device-ldevid-1y");
    let mut profile = (*env.ca.profile(&id).unwrap()).clone();
    profile.approval_required = true;
    env.ca.put_profile(profile);

    let devices = [device(&env, "1").await, device(&env, "2").await, device(&env, "3").await];
    for d in &devices {
        let (status, response) = enroll(&env, d);
        assert_eq!(status, 202, "{response}");
        assert!(response.to_ascii_lowercase().contains("retry-after: "), "{response}");
    }
    // A retry before any decision: still 202, and still one record per device.
    assert_eq!(enroll(&env, &devices[1]).0, 202);
    let waiting = env.ca.approval_requests(&ApprovalFilter::waiting()).await.unwrap();
    assert_eq!(waiting.len(), 3, "{waiting:?}");
    let request_of = |d: &Device| waiting.iter().find(|r| r.requester.identity == d.identity).unwrap().id.clone();
    env.ca.approve(&request_of(&devices[0]), "alice", None).await.unwrap();
    env.ca.deny(&request_of(&devices[2]), "alice", "device not in the asset register").await.unwrap();

    let (status, response) = enroll(&env, &devices[0]);
    assert_eq!(status, 200, "{response}");
    let pem = certificate(&env, &response, "approved");
    env.openssl_verify(&pem);
    let record = env.record_of(&pem).await;
    assert_eq!(record.requester, devices[0].identity);
    // Retried again (a lost response): the same certificate, not a second one.
    let (status, again) = enroll(&env, &devices[0]);
    assert_eq!(status, 200, "{again}");
    assert_eq!(env.record_of(&certificate(&env, &again, "again")).await.serial, record.serial);

    let (status, response) = enroll(&env, &devices[1]);
    assert_eq!(status, 202, "{response}");
    let (status, response) = enroll(&env, &devices[2]);
    assert_eq!(status, 403, "{response}");
    assert!(response.contains("device not in the asset register"), "{response}");

    let ldevids: Vec<_> = env.records().await.into_iter().filter(|r| r.profile == id).collect();
    assert_eq!(ldevids.len(), 1, "only the approved request was signed: {ldevids:?}");
}
