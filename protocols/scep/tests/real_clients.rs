//! Real SCEP clients against the server on loopback, installed by scripts/tools:
//!
//! * micromdm `scepclient` v2.3.0 built from the Go module (`scripts/tools/scepclient.sh`)
//!   enrolls with the static challenge and with a one-time challenge minted over the
//!   challenge API; a reused one-time challenge is refused. It encrypts with single
//!   DES and signs with SHA-1 (its pkcs7 library's defaults), so it needs
//!   `legacyAlgorithms`; without it the server answers badAlg.
//! * Debian's `scep` 2.1.0 client (`scripts/tools/scep-debian.sh`) enrolls; its envelope
//!   is BER (a constructed encryptedContent), which the server rewrites to DER.
//! * certmonger (Debian package, `scripts/tools/certmonger.sh`), the second independent
//!   client, enrolls through its own SCEP helper.
//!
//! Every request the clients send is kept in `tests/vectors/` when
//! `PKIPLANE_SCEP_WRITE_VECTORS=1` (golden vectors, see `golden.rs`).

mod common;

use std::path::Path;
use std::process::Command;

use common::http::request;
use common::*;

/// Runs a scepclient binary in its own directory; returns (success, output).
fn run_scepclient(bin: &str, dir: &Path, url: &str, cn: &str, challenge: &str, extra: &[&str]) -> (bool, String) {
    std::fs::create_dir_all(dir).unwrap();
    let out = Command::new(bin)
        .arg("-server-url")
        .arg(url)
        .arg("-private-key")
        .arg(dir.join("key.pem"))
        .arg("-certificate")
        .arg(dir.join("cert.pem"))
        .args(["-challenge", challenge, "-cn", cn, "-organization", "pkiplane-test"])
        .args(extra)
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success() && dir.join("cert.pem").exists(), text)
}

fn cert_der(dir: &Path) -> Vec<u8> {
    pkiplane_core::x509::pem::decode_one(&std::fs::read(dir.join("cert.pem")).unwrap(), "CERTIFICATE").unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn micromdm_scepclient_enrolls_with_static_and_one_time_challenges() {
    let bin = tool("scepclient.sh");
    let env = start(Options { legacy: true, capture: true, ..Options::default() }).await;
    let url = env.url();
    let selector = ["-key-encipherment-selector"];

    let dir = env.path("static");
    let (ok, log) = {
        let (b, d, u) = (bin.clone(), dir.clone(), url.clone());
        tokio::task::spawn_blocking(move || {
            run_scepclient(&b, &d, &u, "static.example.com", STATIC_CHALLENGE, &selector)
        })
        .await
        .unwrap()
    };
    assert!(ok, "scepclient failed:\n{log}");
    env.check_issued(&cert_der(&dir), "scep:static-challenge").await;

    // A one-time challenge from the API, bound to the device's CN and DNS name.
    let auth = format!("Bearer {API_TOKEN}");
    let r = request(
        "POST",
        &format!("{}/scep/challenges", env.base),
        &[("authorization", &auth)],
        br#"{"commonName":"otc.example.com","sans":["DNS:otc.example.com"]}"#.to_vec(),
    )
    .await;
    assert_eq!(r.status, 201);
    let value = serde_json::from_slice::<serde_json::Value>(&r.body).unwrap()["challenge"].as_str().unwrap().to_owned();
    let dir = env.path("otc");
    let (ok, log) = {
        let (b, d, u, v) = (bin.clone(), dir.clone(), url.clone(), value.clone());
        tokio::task::spawn_blocking(move || {
            run_scepclient(
                &b,
                &d,
                &u,
                "otc.example.com",
                &v,
                &["-key-encipherment-selector", "-dnsname", "otc.example.com"],
            )
        })
        .await
        .unwrap()
    };
    assert!(ok, "scepclient failed:\n{log}");
    let rec = env.check_issued(&cert_der(&dir), "scep:challenge/").await;
    assert_eq!(rec.sans, vec!["DNS:otc.example.com".to_string()]);

    // The same one-time challenge again, from another device: refused, nothing issued.
    let before = env.scep_records().await.len();
    let dir = env.path("reuse");
    let (ok, log) = {
        let (b, d, u) = (bin.clone(), dir.clone(), url.clone());
        tokio::task::spawn_blocking(move || {
            run_scepclient(
                &b,
                &d,
                &u,
                "otc.example.com",
                &value,
                &["-key-encipherment-selector", "-dnsname", "otc.example.com"],
            )
        })
        .await
        .unwrap()
    };
    assert!(!ok, "a reused challenge must be refused:\n{log}");
    assert!(log.contains("failInfo: badRequest"), "{log}");
    assert_eq!(env.scep_records().await.len(), before);
    env.save_captured("micromdm-scepclient-2.3.0");
}

#[tokio::test(flavor = "multi_thread")]
async fn micromdm_scepclient_des_is_bad_alg_without_legacy() {
    let bin = tool("scepclient.sh");
    let env = start(Options { legacy: false, ..Options::default() }).await;
    let dir = env.path("nolegacy");
    let url = env.url();
    let (ok, log) = tokio::task::spawn_blocking(move || {
        run_scepclient(&bin, &dir, &url, "d.example.com", STATIC_CHALLENGE, &["-key-encipherment-selector"])
    })
    .await
    .unwrap();
    assert!(!ok);
    assert!(log.contains("failInfo: badAlg"), "{log}");
    assert!(env.scep_records().await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn debian_scepclient_2_1_0_enrolls_with_its_ber_envelope() {
    // Its PKCSReq's encryptedContent is a constructed [0] (BER, Go's pkcs7): the server
    // rewrites that one field to DER before opening the envelope (cms/ber.rs).
    let bin = format!("{}/scepclient", tool("scep-debian.sh"));
    let env = start(Options { legacy: true, capture: true, ..Options::default() }).await;
    let dir = env.path("debian");
    let (ok, log) = {
        let (d, u) = (dir.clone(), env.url());
        tokio::task::spawn_blocking(move || run_scepclient(&bin, &d, &u, "old.example.com", STATIC_CHALLENGE, &[]))
            .await
            .unwrap()
    };
    env.save_captured("debian-scepclient-2.1.0");
    assert!(ok, "the Debian 2.1.0 client failed:\n{log}");
    let record = env.check_issued(&cert_der(&dir), "scep:static-challenge").await;
    assert_eq!(record.subject, "O=pkiplane-test,CN=old.example.com");
    assert_eq!(env.scep_records().await.len(), 1);
}

/// certmonger's daemon on a private session bus (`dbus-run-session`, `certmonger -s`),
/// driven with `getcert add-scep-ca` and `getcert request`: its own SCEP helper
/// (scep-submit) fetches the RA certificate, builds, encrypts and signs the PKCSReq. It
/// signs with a self-signed certificate whose serial number is 33 octets, over RFC 5280's
/// limit: the server reads that certificate leniently and encrypts its reply to it.
#[tokio::test(flavor = "multi_thread")]
async fn certmonger_enrolls_over_scep() {
    let helper = tool("certmonger.sh");
    assert!(Path::new(&helper).exists());
    let env = start(Options { legacy: false, capture: true, ..Options::default() }).await;
    let home = env.path("certmonger-home");
    std::fs::create_dir_all(&home).unwrap();
    let cert = env.path("certmonger.crt");
    let key = env.path("certmonger.key");
    let script = env.path("certmonger.sh");
    std::fs::write(
        &script,
        format!(
            r#"set -u
ca="pkiplane-{id}"
getcert add-scep-ca -s -c "$ca" -u '{url}' >&2 || exit 10
getcert request -s -c "$ca" -I "$ca" -f '{cert}' -k '{key}' -N 'CN=cm.example.com' -D cm.example.com -L '{challenge}' -w -v >&2
rc=$?
getcert list -s -i "$ca" >&2
getcert stop-tracking -s -i "$ca" >&2
getcert remove-ca -s -c "$ca" >&2
exit $rc
"#,
            id = env.base.rsplit(':').next().unwrap_or("0"),
            url = env.url(),
            cert = cert.display(),
            key = key.display(),
            challenge = STATIC_CHALLENGE,
        ),
    )
    .unwrap();
    let (home2, script2) = (home.clone(), script.clone());
    let out = tokio::task::spawn_blocking(move || {
        Command::new("timeout")
            .args(["120", "dbus-run-session", "--", "certmonger", "-s", "-n", "-c"])
            .arg(format!("bash {}", script2.display()))
            .env("HOME", &home2)
            .env("XDG_CONFIG_HOME", home2.join(".config"))
            .env("XDG_DATA_HOME", home2.join(".local/share"))
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    env.save_captured("certmonger-0.79.17");
    assert!(cert.exists(), "certmonger did not get a certificate:\n{log}");
    let der = pkiplane_core::x509::pem::decode_one(&std::fs::read(&cert).unwrap(), "CERTIFICATE").unwrap();
    let rec = env.check_issued(&der, "scep:static-challenge").await;
    assert_eq!(rec.sans, vec!["DNS:cm.example.com".to_string()]);
}
