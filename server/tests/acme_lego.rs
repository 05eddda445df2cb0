//! lego (built from the Go module by scripts/tools/lego.sh) against the ACME endpoint of
//! `pkiplane serve`: it obtains certificates (http-01 and tls-alpn-01) and renews them
//! when, and only when, the server's renewal information (ARI, RFC 9773) says so.
//!
//! The test brings its own manifests: a root and an issuing CA, a 47-day profile (the
//! default, renewal window at the last third) and `ari-now`, a 20-minute profile whose
//! renewal window opens as soon as the certificate exists (remainingFraction 0.99 of a
//! lifetime that starts 5 minutes in the past with the default backdate), and an ACME
//! endpoint whose validator uses free ports. ARI drives the renewal twice:
//!
//! * `ari-now`: with ARI disabled and lego's own schedule (`--dynamic`: renew after
//!   half of a short lifetime) lego does not renew; with ARI it renews at once.
//! * 47 days: with `--days 1` and ARI lego does not renew (the window is weeks away);
//!   after a revocation the server moves the window to now and lego renews.
//!
//! Every certificate verifies with `openssl verify` against the CA bundle, and each
//! renewal carries ARI's `replaces`, which the inventory shows as `renewedFrom`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{Server, free_port, inventory, tool_path};

fn manifests(http01: u16, alpn: u16) -> String {
    let profile = |name: &str, description: &str, validity: &str, renewal: &str, issuer: &str| {
        format!(
            r#"---
apiVersion: pkiplane.dev/v1alpha1
kind: CertificateProfile
metadata:
  name: {name}
  namespace: lego
spec:
  issuerRef:
    name: {issuer}
  description: {description}
  keys:
    algorithms: [ECDSA, RSA]
    ecdsaCurves: [P-256, P-384]
    rsaMinBits: 2048
  validity:
    duration: {validity}
  renewal:
    remainingFraction: "{renewal}"
  subject:
    attributes:
      - name: CN
        presence: Optional
        from: FirstDNSName
        mustMatchSAN: true
    otherAttributes: Drop
  subjectAltNames:
    required: true
    dns:
      suffixes: [localhost]
  keyUsage: [digitalSignature, keyEncipherment]
  extendedKeyUsage: [serverAuth, clientAuth]
"#
        )
    };
    format!(
        r#"apiVersion: v1
kind: Namespace
metadata:
  name: lego
---
apiVersion: pkiplane.dev/v1alpha1
kind: Issuer
metadata:
  name: root
  namespace: lego
spec:
  selfSigned: {{}}
  subject: "CN=lego test root,O=pkiplane tests"
  keyAlgorithm: ECDSA-P256
  validity: 10y
  pathLen: 1
---
apiVersion: pkiplane.dev/v1alpha1
kind: Issuer
metadata:
  name: issuing
  namespace: lego
spec:
  parentRef:
    name: root
  subject: "CN=lego test issuing CA,O=pkiplane tests"
  keyAlgorithm: ECDSA-P256
  validity: 1y
  pathLen: 0
{tls}{now}---
apiVersion: pkiplane.dev/v1alpha1
kind: EnrollmentEndpoint
metadata:
  name: acme
  namespace: lego
spec:
  protocol: ACME
  profiles:
    - name: tls-47d
      default: true
    - name: ari-now
  listen:
    address: 127.0.0.1
    port: 0
  tls:
    issuerRef:
      name: issuing
    dnsNames: [localhost]
    ipAddresses: [127.0.0.1]
  acme:
    challenges: [http-01, tls-alpn-01]
    http01Port: {http01}
    tlsAlpn01Port: {alpn}
    validation: {{allowedTargetRanges: [127.0.0.0/8, "::1"]}}
"#,
        tls = profile("tls-47d", "TLS certificates, 47 days, renewed in the last third", "47d", "1/3", "issuing"),
        now = profile("ari-now", "20 minutes, due for renewal at once (ARI test)", "20m", "0.99", "issuing"),
    )
}

/// One lego installation against one server: its own `--path` and account.
struct Lego {
    bin: String,
    directory: String,
    trust: String,
    path: PathBuf,
}

impl Lego {
    /// Runs `lego <global flags> <args>` and returns stdout+stderr (lego logs to stderr).
    fn run(&self, domain: &str, challenge: &[&str], args: &[&str]) -> String {
        let out: Output = Command::new(&self.bin)
            .args(["--server", &self.directory, "--accept-tos", "--email", "ops@example.com"])
            .args(["--path", self.path.to_str().unwrap(), "--domains", domain, "--key-type", "ec256"])
            .args(challenge)
            .args(args)
            .env("LEGO_CA_CERTIFICATES", &self.trust)
            .output()
            .unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "lego {args:?} for {domain} failed:\n{text}");
        eprintln!("$ lego {args:?} ({domain})\n{text}"); // shown with --nocapture or on failure
        text
    }

    fn cert(&self, domain: &str) -> PathBuf {
        self.path.join("certificates").join(format!("{domain}.crt"))
    }
}

/// The serial number of the first certificate in `pem`, lowercase hex as the inventory
/// shows it.
fn serial(pem: &Path) -> String {
    let out =
        Command::new("openssl").args(["x509", "-in", pem.to_str().unwrap(), "-noout", "-serial"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().trim_start_matches("serial=").to_lowercase()
}

/// `openssl verify` of lego's bundle (leaf, then the issuing CA) against the CA bundle.
fn verify(ca_bundle: &str, lego: &Lego, domain: &str) {
    let issuer = lego.path.join("certificates").join(format!("{domain}.issuer.crt"));
    let out = Command::new("openssl")
        .args(["verify", "-CAfile", ca_bundle, "-untrusted", issuer.to_str().unwrap()])
        .arg(lego.cert(domain))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

fn record<'a>(records: &'a [serde_json::Value], serial: &str) -> &'a serde_json::Value {
    records.iter().find(|r| r["serial"] == serial).unwrap_or_else(|| panic!("serial {serial} not in {records:#?}"))
}

#[test]
fn lego_obtains_and_renews_when_ari_says_so() {
    let d = tempfile::tempdir().unwrap();
    let (http01, alpn) = (free_port(), free_port());
    let manifest = d.path().join("lego.yaml");
    std::fs::write(&manifest, manifests(http01, alpn)).unwrap();
    let data = d.path().join("data");
    let server = Server::start(&manifest, &data, &d.path().join("ready.json"));
    let ep = server.endpoint("lego", "acme");
    let ca_bundle = ep["caBundle"].as_str().unwrap().to_string();
    let lego = Lego {
        bin: tool_path("lego.sh"),
        directory: ep["urls"][0].as_str().unwrap().to_string(),
        trust: ep["tlsTrustBundle"].as_str().unwrap().to_string(),
        path: d.path().join("lego"),
    };
    let http = format!("127.0.0.1:{http01}");
    let tls = format!("127.0.0.1:{alpn}");
    let http01_flags = ["--http", "--http.port", http.as_str()];
    let alpn_flags = ["--tls", "--tls.port", tls.as_str()];

    // 1. `ari-now` over http-01: obtain.
    let short = "ari.localhost";
    lego.run(short, &http01_flags, &["run", "--profile", "ari-now"]);
    verify(&ca_bundle, &lego, short);
    let first = serial(&lego.cert(short));
    let records = inventory(&data, "ACME");
    assert_eq!(records.len(), 1, "{records:#?}");
    assert_eq!(record(&records, &first)["profile"], "lego/ari-now");

    // Without ARI, lego's own schedule says not yet (a 20-minute certificate is due after
    // half its lifetime), so nothing is renewed.
    let t = lego.run(short, &http01_flags, &["renew", "--ari-disable", "--dynamic", "--no-random-sleep"]);
    assert!(t.contains("no renewal"), "{t}");
    assert_eq!(serial(&lego.cert(short)), first, "renewed without a reason:\n{t}");
    assert_eq!(inventory(&data, "ACME").len(), 1);

    // With ARI the server's window (open since issuance) makes lego renew now; the new
    // order `replaces` the old certificate. The window may end a few seconds ahead, so
    // lego may sleep until its randomly chosen moment in it.
    let t = lego.run(
        short,
        &http01_flags,
        &["renew", "--dynamic", "--no-random-sleep", "--ari-wait-to-renew-duration", "60s", "--profile", "ari-now"],
    );
    assert!(t.contains("renewalInfo endpoint indicates that renewal is needed"), "{t}");
    let second = serial(&lego.cert(short));
    assert_ne!(second, first, "lego did not renew although ARI said so:\n{t}");
    verify(&ca_bundle, &lego, short);
    let records = inventory(&data, "ACME");
    assert_eq!(records.len(), 2, "{records:#?}");
    let renewed = record(&records, &second);
    assert_eq!(renewed["renewedFrom"], first.as_str(), "{renewed:#}");
    assert_eq!(renewed["profile"], "lego/ari-now");
    assert_eq!(renewed["status"], "issued");

    // 2. The default 47-day profile over tls-alpn-01: obtain.
    let long = "tls.localhost";
    lego.run(long, &alpn_flags, &["run"]);
    verify(&ca_bundle, &lego, long);
    let l1 = serial(&lego.cert(long));
    assert_eq!(record(&inventory(&data, "ACME"), &l1)["profile"], "lego/tls-47d");

    // ARI's window is weeks away and 47 days are more than `--days 1`: no renewal.
    let t = lego.run(long, &alpn_flags, &["renew", "--days", "1", "--no-random-sleep"]);
    assert!(t.contains("renewalInfo endpoint indicates that renewal is not needed"), "{t}");
    assert!(t.contains("no renewal"), "{t}");
    assert_eq!(serial(&lego.cert(long)), l1);

    // Revoked, the certificate's window moves to now: the same command renews.
    lego.run(long, &alpn_flags, &["revoke", "--keep", "--reason", "4"]);
    let t = lego.run(long, &alpn_flags, &["renew", "--days", "1", "--no-random-sleep"]);
    assert!(t.contains("renewalInfo endpoint indicates that renewal is needed"), "{t}");
    let l2 = serial(&lego.cert(long));
    assert_ne!(l2, l1, "lego did not renew the revoked certificate:\n{t}");
    verify(&ca_bundle, &lego, long);
    let records = inventory(&data, "ACME");
    assert_eq!(records.len(), 4, "{records:#?}");
    assert_eq!(record(&records, &l1)["status"], "revoked");
    assert_eq!(record(&records, &l1)["revocationReason"], "Superseded");
    let renewed = record(&records, &l2);
    assert_eq!(renewed["renewedFrom"], l1.as_str(), "{renewed:#}");
    assert_eq!(renewed["profile"], "lego/tls-47d");
}
