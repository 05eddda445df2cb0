//! Test support: a CA from manifests (root, issuing CA, profiles), the CMP router on
//! 127.0.0.1, `openssl cmp` runs, and reading responses back.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use pkiplane_api::Manifests;
use pkiplane_cmp::CmpState;
use pkiplane_cmp::state::CmpStore;
use pkiplane_cmp::wire::body::{ResponseBody, decode_response};
use pkiplane_cmp::wire::message::{self, Incoming};
use pkiplane_cmp::wire::{FailInfo, StatusInfo};
use pkiplane_core::inventory::{CertificateRecord, InventoryFilter};
use pkiplane_core::issuance::Ca;
use pkiplane_core::model::{ObjectRef, Protocol};
use pkiplane_core::x509::pem;
use pkiplane_store::SqliteStore;
use tempfile::TempDir;

pub const SECRET: &str = "device-secret-1";
pub const KID: &str = "device-1";

/// The manifests of the test PKI; `{ANCHORS}` is replaced by the external
/// manufacturer CA (PEM) the endpoint trusts.
const MANIFESTS: &str = r#"
apiVersion: pkiplane.dev/v1alpha1
kind: Issuer
metadata: {name: root, namespace: pki}
spec:
  selfSigned: {}
  subject: "CN=Test Root CA,O=Example"
  keyAlgorithm: ECDSA-P384
  validity: 10y
  pathLen: 1
---
apiVersion: pkiplane.dev/v1alpha1
kind: Issuer
metadata: {name: issuing, namespace: pki}
spec:
  parentRef: {name: root}
  subject: "CN=Test Issuing CA,O=Example"
  keyAlgorithm: ECDSA-P256
  validity: 5y
  crl: {validity: 24h}
---
apiVersion: pkiplane.dev/v1alpha1
kind: CertificateProfile
metadata: {name: tls, namespace: pki}
spec:
  issuerRef: {name: issuing}
  keys: {algorithms: [ECDSA, RSA], ecdsaCurves: [P-256, P-384]}
  validity: {duration: 47d}
  subject:
    attributes:
      - {name: CN, presence: Optional, from: FirstDNSName, mustMatchSAN: true}
    otherAttributes: Drop
  subjectAltNames:
    required: true
    dns: {suffixes: [localhost, example.com]}
  keyUsage: [digitalSignature, keyEncipherment]
  extendedKeyUsage: [serverAuth, clientAuth]
---
apiVersion: pkiplane.dev/v1alpha1
kind: CertificateProfile
metadata: {name: device, namespace: pki}
spec:
  issuerRef: {name: issuing}
  keys: {algorithms: [ECDSA], ecdsaCurves: [P-256]}
  validity: {duration: 1y}
  subject:
    attributes:
      - {name: O, value: Example Devices}
      - {name: CN, presence: Required}
      - {name: serialNumber, presence: Optional, from: Claim, claim: serialNumber}
  keyUsage: [digitalSignature]
  extendedKeyUsage: [clientAuth]
---
apiVersion: pkiplane.dev/v1alpha1
kind: CertificateProfile
metadata: {name: approval, namespace: pki}
spec:
  issuerRef: {name: issuing}
  validity: {duration: 30d}
  approval: {required: true}
  subjectAltNames:
    dns: {suffixes: [example.com]}
---
apiVersion: v1
kind: Secret
metadata: {name: cmp-secrets, namespace: pki}
stringData:
  device-1: device-secret-1
  device-2: another-secret-2
---
apiVersion: v1
kind: Secret
metadata: {name: manufacturer-ca, namespace: pki}
stringData:
  ca.crt: |
{ANCHORS}
---
apiVersion: pkiplane.dev/v1alpha1
kind: EnrollmentEndpoint
metadata: {name: cmp, namespace: pki}
spec:
  protocol: CMP
  profiles:
    - {name: tls, default: true}
    - {name: device, label: device}
    - {name: approval, label: approval}
  cmp:
    sharedSecrets: {secretRef: {name: cmp-secrets}}
    trustAnchors: {secretRef: {name: manufacturer-ca}}
    implicitConfirm: {IMPLICIT}
    confirmWaitTime: 5m
"#;

pub struct Pki {
    pub dir: TempDir,
    pub ca: Arc<Ca>,
    pub inventory: Arc<SqliteStore>,
    pub state: CmpState,
    pub url: String,
    pub root_pem: PathBuf,
    pub issuing_pem: PathBuf,
    /// The external manufacturer CA and an IDevID it issued (key, cert).
    pub idevid: (PathBuf, PathBuf),
    pub server: tokio::task::JoinHandle<()>,
}

pub fn openssl_ok(args: &[&str]) -> Output {
    let out = Command::new("openssl").args(args).output().expect("openssl must be installed");
    assert!(out.status.success(), "openssl {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    out
}

pub fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A PKCS#10 request by `openssl req` for `key`, with `dns` as CN and DNS SAN, at `out`.
pub fn pkcs10_request(key: &Path, dns: &str, out: &Path) {
    let subject = format!("/CN={dns}");
    let san = format!("subjectAltName=DNS:{dns}");
    openssl_ok(&["req", "-new", "-key", p(key), "-subj", &subject, "-addext", &san, "-out", p(out)]);
}

/// An EC P-256 key file.
pub fn ec_key(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(format!("{name}.key"));
    openssl_ok(&["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", p(&path)]);
    path
}

/// A manufacturer CA (not a pkiplane Issuer) and an IDevID with a serialNumber.
fn manufacturer(dir: &Path) -> (String, (PathBuf, PathBuf)) {
    let ca_key = ec_key(dir, "mfg-ca");
    let ca_crt = dir.join("mfg-ca.crt");
    openssl_ok(&[
        "req",
        "-x509",
        "-new",
        "-key",
        p(&ca_key),
        "-subj",
        "/CN=Manufacturer Root/O=Devices Inc",
        "-days",
        "3650",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        "-out",
        p(&ca_crt),
    ]);
    let dev_key = ec_key(dir, "idevid");
    let csr = dir.join("idevid.csr");
    openssl_ok(&["req", "-new", "-key", p(&dev_key), "-subj", "/CN=sensor/serialNumber=SN-0042", "-out", p(&csr)]);
    let ext = dir.join("idevid.ext");
    std::fs::write(&ext, "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n").unwrap();
    let dev_crt = dir.join("idevid.crt");
    openssl_ok(&[
        "x509",
        "-req",
        "-in",
        p(&csr),
        "-CA",
        p(&ca_crt),
        "-CAkey",
        p(&ca_key),
        "-CAcreateserial",
        "-days",
        "3650",
        "-extfile",
        p(&ext),
        "-out",
        p(&dev_crt),
    ]);
    let pem_text = std::fs::read_to_string(&ca_crt).unwrap();
    (pem_text, (dev_key, dev_crt))
}

pub struct Options {
    pub implicit_confirm: bool,
    pub confirm_wait: Option<Duration>,
    pub store: Option<Arc<dyn CmpStore>>,
    pub max_clock_skew: Option<Duration>,
    /// The server's clock (default: the system clock).
    pub clock: Option<pkiplane_core::clock::SharedClock>,
}

impl Default for Options {
    fn default() -> Self {
        Self { implicit_confirm: true, confirm_wait: None, store: None, max_clock_skew: None, clock: None }
    }
}

pub async fn start(opts: Options) -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let (anchor_pem, idevid) = manufacturer(dir.path());
    let anchors: String = anchor_pem.lines().map(|l| format!("    {l}\n")).collect();
    let text = MANIFESTS
        .replace("{ANCHORS}\n", &anchors)
        .replace("{IMPLICIT}", if opts.implicit_confirm { "Allowed" } else { "Never" });
    let manifests = Manifests::from_yaml(&text, "cmp-test.yaml").unwrap();
    let inventory = Arc::new(SqliteStore::open(&dir.path().join("inventory.db")).unwrap());
    let ca = Ca::new(inventory.clone());
    pkiplane_api::put_fresh(&ca, &manifests, SystemTime::now()).unwrap();
    let ca = Arc::new(ca);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let mut config = pkiplane_api::cmp_settings(&manifests.endpoints[0], &manifests, &url).unwrap();
    if let Some(w) = opts.confirm_wait {
        config.confirm_wait = w;
    }
    if let Some(s) = opts.max_clock_skew {
        config.max_clock_skew = s;
    }
    config.poll_interval = Duration::from_secs(1);
    // CMP state on the same SQLite file as the inventory, as `pkiplane serve` would.
    let store: Arc<dyn CmpStore> = opts.store.unwrap_or_else(|| inventory.clone());
    let mut state = CmpState::start(config, ca.clone(), store).await.unwrap();
    if let Some(clock) = opts.clock {
        state = state.with_clock(clock);
    }
    let router = pkiplane_cmp::router(state.clone());
    let server = tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    let issuing = ca.issuer(&ObjectRef::new("pki", "issuing")).unwrap();
    let root_pem = dir.path().join("root.pem");
    std::fs::write(&root_pem, pem::encode("CERTIFICATE", &issuing.root().der)).unwrap();
    let issuing_pem = dir.path().join("issuing.pem");
    std::fs::write(&issuing_pem, issuing.certificate_pem()).unwrap();
    Pki { dir, ca, inventory, state, url, root_pem, issuing_pem, idevid, server }
}

/// The result of one `openssl cmp` run.
pub struct Run {
    pub ok: bool,
    pub stderr: String,
    pub responses: Vec<Incoming>,
}

impl Pki {
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn server(&self, label: Option<&str>) -> String {
        match label {
            Some(l) => format!("{}/.well-known/cmp/p/{l}", self.url),
            None => format!("{}/.well-known/cmp", self.url),
        }
    }

    /// The subject of the CMP protection certificate, as `openssl cmp -recipient` wants.
    pub fn recipient(&self) -> String {
        "/CN=pkiplane CMP pki\\/cmp".into()
    }

    /// `openssl cmp -cmd p10cr` of the PKCS#10 request `csr`, protected with the endpoint's
    /// shared secret (MAC), the certificate written to `cert`; `extra` goes after those.
    pub async fn p10cr_with_mac(&self, name: &str, csr: &Path, cert: &Path, extra: &[&str]) -> Run {
        let secret = format!("pass:{SECRET}");
        let mut args = vec!["-cmd", "p10cr", "-csr", p(csr), "-ref", KID, "-secret", &secret, "-certout", p(cert)];
        args.extend_from_slice(extra);
        self.cmp(name, None, &args).await
    }

    /// `openssl cmp -cmd ir` protected with the endpoint's shared secret (MAC): a new
    /// certificate for `key` with the DNS name `dns` (also the CN), written to `cert`;
    /// `extra` goes after those arguments.
    pub async fn ir_with_mac(
        &self,
        name: &str,
        label: Option<&str>,
        key: &Path,
        dns: &str,
        cert: &Path,
        extra: &[&str],
    ) -> Run {
        let (secret, subject) = (format!("pass:{SECRET}"), format!("/CN={dns}"));
        let mut args =
            vec!["-cmd", "ir", "-ref", KID, "-secret", &secret, "-newkey", p(key), "-subject", &subject, "-sans", dns];
        args.extend(["-certout", p(cert)]);
        args.extend_from_slice(extra);
        self.cmp(name, label, &args).await
    }

    /// Runs `openssl cmp` against the server with `args`; responses are saved (and
    /// parsed) for inspection; requests saved under `name`.req*.der.
    pub async fn cmp(&self, name: &str, label: Option<&str>, args: &[&str]) -> Run {
        let rsp: Vec<String> = (0..3).map(|i| p(&self.path(&format!("{name}.rsp{i}.der"))).to_owned()).collect();
        let req: Vec<String> = (0..3).map(|i| p(&self.path(&format!("{name}.req{i}.der"))).to_owned()).collect();
        for f in rsp.iter().chain(req.iter()) {
            let _ = std::fs::remove_file(f);
        }
        let mut all: Vec<String> = vec![
            "cmp".into(),
            "-server".into(),
            self.server(label),
            "-recipient".into(),
            self.recipient(),
            "-rspout".into(),
            rsp.join(","),
            "-reqout".into(),
            req.join(","),
            "-msg_timeout".into(),
            "20".into(),
            "-total_timeout".into(),
            "30".into(),
        ];
        all.extend(args.iter().map(|s| s.to_string()));
        let out = tokio::process::Command::new("openssl")
            .args(&all)
            .env("OPENSSL_CONF", self.openssl_conf())
            .output()
            .await
            .expect("openssl must be installed");
        let responses = rsp
            .iter()
            .filter_map(|f| std::fs::read(f).ok())
            .map(|d| message::decode(&d).expect("response decodes"))
            .collect();
        Run {
            ok: out.status.success(),
            stderr: format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
            responses,
        }
    }

    /// An OpenSSL configuration naming the CMP InfoTypes OpenSSL 3.0 does not know
    /// (id-it-rootCaCert, id-it-crlStatusList, id-it-crls); `-infotype X` looks up `id-it-X`.
    pub fn openssl_conf(&self) -> PathBuf {
        let path = self.path("openssl-oids.cnf");
        if !path.exists() {
            std::fs::write(
                &path,
                "openssl_conf = init\n[init]\noid_section = oids\n[oids]\n\
                 id-it-rootCaCert = 1.3.6.1.5.5.7.4.20\nid-it-crlStatusList = 1.3.6.1.5.5.7.4.22\n\
                 id-it-crls = 1.3.6.1.5.5.7.4.23\n",
            )
            .unwrap();
        }
        path
    }

    /// Verifies a certificate file against the root and issuing CA.
    pub fn verify(&self, cert: &Path) {
        let out = openssl_ok(&["verify", "-CAfile", p(&self.root_pem), "-untrusted", p(&self.issuing_pem), p(cert)]);
        assert!(String::from_utf8_lossy(&out.stdout).contains(": OK"));
    }

    /// The inventory record of a certificate file.
    pub async fn record(&self, cert: &Path) -> CertificateRecord {
        let der = pem::decode_one(&std::fs::read(cert).unwrap(), "CERTIFICATE").unwrap();
        let info = pkiplane_core::x509::cert::CertInfo::from_der(&der).unwrap();
        let mut found = self.ca.inventory().find_serial(&info.serial_hex).await.unwrap();
        assert_eq!(found.len(), 1, "one record for {}", info.serial_hex);
        found.remove(0)
    }

    /// CMP-issued certificates in the inventory (not counting protection certificates).
    pub async fn cmp_count(&self) -> usize {
        let filter = InventoryFilter { protocol: Some(Protocol::Cmp), ..Default::default() };
        self.ca.inventory().list(&filter).await.unwrap().len()
    }

    /// Serials on a fresh CRL of the issuing CA.
    pub async fn crl_serials(&self) -> String {
        let crl = self.ca.generate_crl(&ObjectRef::new("pki", "issuing")).await.unwrap();
        let path = self.path("crl.der");
        std::fs::write(&path, crl).unwrap();
        let out = openssl_ok(&["crl", "-inform", "DER", "-in", p(&path), "-noout", "-text"]);
        String::from_utf8_lossy(&out.stdout).to_lowercase()
    }
}

/// The status of the first CertResponse, or the error message's status.
pub fn status_of(msg: &Incoming) -> StatusInfo {
    match decode_response(msg.body_tag, &msg.body).expect("response body decodes") {
        ResponseBody::CertRep(_, rep) => rep.response[0].status.clone(),
        ResponseBody::Error(e) => e.status_info,
        ResponseBody::Rp(r) => r.status[0].clone(),
        other => panic!("no status in {other:?}"),
    }
}

/// The failure bits of the last response of a run.
pub fn fail_of(run: &Run) -> FailInfo {
    status_of(run.responses.last().expect("a response was saved")).fail()
}

pub fn text_of(run: &Run) -> String {
    status_of(run.responses.last().unwrap()).status_string.unwrap_or_default().join(" | ")
}

/// A raw HTTP/1.1 exchange with the server (for replays and transport errors).
pub struct HttpReply {
    pub status: u16,
    pub headers: String,
    pub body: Vec<u8>,
}

impl Pki {
    pub async fn http(&self, method: &str, path: &str, content_type: Option<&str>, body: &[u8]) -> HttpReply {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = self.url.trim_start_matches("http://");
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        if let Some(ct) = content_type {
            head.push_str(&format!("Content-Type: {ct}\r\n"));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes()).await.unwrap();
        // A peer may stop reading once it has refused the request.
        let _ = s.write_all(body).await;
        let mut raw = Vec::new();
        let _ = s.read_to_end(&mut raw).await;
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("an HTTP response");
        let headers = String::from_utf8_lossy(&raw[..split]).into_owned();
        let status = headers.split_whitespace().nth(1).unwrap().parse().unwrap();
        HttpReply { status, headers, body: raw[split + 4..].to_vec() }
    }

    /// POSTs a PKIMessage and decodes the answer.
    pub async fn post(&self, label: Option<&str>, der: &[u8]) -> Incoming {
        let path = match label {
            Some(l) => format!("/.well-known/cmp/p/{l}"),
            None => "/.well-known/cmp".to_owned(),
        };
        let r = self.http("POST", &path, Some("application/pkixcmp"), der).await;
        assert_eq!(r.status, 200, "{}", r.headers);
        message::decode(&r.body).expect("a PKIMessage")
    }
}
