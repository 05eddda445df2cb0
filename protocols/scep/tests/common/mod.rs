//! Test support: a real CA (RSA root and intermediate) on the SQLite store, the SCEP
//! router on 127.0.0.1, profiles and the endpoint built from the same YAML resources
//! `pkiplane serve` loads, and helpers for HTTP, openssl and the inventory.
#![allow(dead_code)]

pub mod http;
pub mod identity;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use pkiplane_api::v1alpha1::{CertificateProfile, EnrollmentEndpoint};
use pkiplane_core::inventory::{CertificateRecord, Inventory, InventoryFilter};
use pkiplane_core::issuance::Ca;
use pkiplane_core::issuer::{CaParams, Issuer, IssuerConfig, IssuerSource, NameConstraintsConfig};
use pkiplane_core::keys::KeyAlgorithm;
use pkiplane_core::model::ObjectRef;
use pkiplane_core::x509::pem;
use pkiplane_scep::ScepState;
use pkiplane_store::SqliteStore;

pub const STATIC_CHALLENGE: &str = "static-secret-0123456789";
pub const API_TOKEN: &str = "mdm-token-0123456789abcdef";

/// What a test endpoint looks like.
#[derive(Clone)]
pub struct Options {
    pub legacy: bool,
    pub approval: bool,
    pub issuer_key: KeyAlgorithm,
    /// Extra YAML under `spec.scep` (e.g. `allowLongValidity: true`).
    pub validity: &'static str,
    pub allow_long_validity: bool,
    /// Keep every PKIOperation body the server receives (see [`Env::save_captured`]).
    pub capture: bool,
    /// The server's clock (the system clock when unset): recorded messages are replayed
    /// at the time they were made.
    pub clock: Option<pkiplane_core::clock::SharedClock>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            legacy: true,
            approval: false,
            issuer_key: KeyAlgorithm::Rsa2048,
            validity: "90d",
            allow_long_validity: false,
            capture: false,
            clock: None,
        }
    }
}

fn url_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b'+');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

type Captured = Arc<std::sync::Mutex<Vec<Vec<u8>>>>;

async fn capture_layer(
    axum::extract::State(captured): axum::extract::State<Captured>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
    let query = parts.uri.query().unwrap_or_default().to_owned();
    if query.contains("PKIOperation") {
        if parts.method == axum::http::Method::POST {
            captured.lock().unwrap().push(bytes.to_vec());
        } else if let Some(m) = query.split('&').find_map(|kv| kv.strip_prefix("message=")) {
            let text: String = url_decode(m);
            if let Ok(der) = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, text.trim()) {
                captured.lock().unwrap().push(der);
            }
        }
    }
    next.run(axum::extract::Request::from_parts(parts, axum::body::Body::from(bytes))).await
}

pub struct Env {
    pub dir: tempfile::TempDir,
    pub ca: Arc<Ca>,
    pub store: Arc<SqliteStore>,
    pub state: ScepState,
    pub base: String,
    pub root_pem: PathBuf,
    pub chain_pem: PathBuf,
    pub root: Arc<Issuer>,
    pub int: Arc<Issuer>,
    pub endpoint: ObjectRef,
    pub secrets: Vec<Secret>,
    pub captured: Captured,
}

pub fn secret(name: &str, entries: &[(&str, &str)]) -> Secret {
    Secret {
        metadata: ObjectMeta { name: Some(name.into()), namespace: Some("pki".into()), ..Default::default() },
        string_data: Some(entries.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
        ..Default::default()
    }
}

pub fn profile_yaml(validity: &str, approval: bool) -> String {
    format!(
        r#"
apiVersion: pkiplane.dev/v1alpha1
kind: CertificateProfile
metadata: {{name: scep-device, namespace: pki}}
spec:
  issuerRef: {{name: test-intermediate}}
  description: SCEP device certificates
  keys: {{algorithms: [RSA], rsaMinBits: 2048}}
  validity: {{duration: {validity}}}
  subject:
    otherAttributes: Drop
    attributes:
      - {{name: CN, presence: Required}}
      - {{name: O, presence: Optional}}
  subjectAltNames:
    dns: {{suffixes: [example.com, localhost]}}
  keyUsage: [digitalSignature, keyEncipherment]
  extendedKeyUsage: [clientAuth]
  approval: {{required: {approval}}}
"#
    )
}

pub fn endpoint_yaml(opts: &Options) -> String {
    format!(
        r#"
apiVersion: pkiplane.dev/v1alpha1
kind: EnrollmentEndpoint
metadata: {{name: scep, namespace: pki}}
spec:
  protocol: SCEP
  profiles:
    - {{name: scep-device, label: device, default: true}}
  scep:
    staticChallenge: {{secretRef: {{name: scep-static}}}}
    dynamicChallenges: {{enabled: true, ttl: 1h, apiSecretRef: {{name: scep-api}}}}
    legacyAlgorithms: {}
    allowLongValidity: {}
"#,
        opts.legacy, opts.allow_long_validity
    )
}

fn ca_config(name: &str, source: IssuerSource) -> IssuerConfig {
    IssuerConfig { id: ObjectRef::new("pki", name), source, crl_validity: Duration::from_secs(86_400) }
}

pub fn params(subject: &str, key: KeyAlgorithm, path_len: Option<u8>) -> CaParams {
    CaParams {
        subject: subject.into(),
        key,
        validity: Duration::from_secs(10 * 365 * 86_400),
        path_len,
        name_constraints: NameConstraintsConfig::default(),
        renew_before: None,
    }
}

pub fn root_config(key: KeyAlgorithm) -> IssuerConfig {
    ca_config("test-root", IssuerSource::SelfSigned(params("CN=SCEP Test Root,O=pkiplane", key, Some(1))))
}

pub fn int_config(key: KeyAlgorithm) -> IssuerConfig {
    ca_config(
        "test-intermediate",
        IssuerSource::Intermediate {
            parent: ObjectRef::new("pki", "test-root"),
            params: params("CN=SCEP Test Issuing CA,O=pkiplane", key, None),
        },
    )
}

/// A CA with a fresh root and intermediate.
pub fn new_hierarchy(key: KeyAlgorithm) -> (Arc<Issuer>, Arc<Issuer>) {
    let now = SystemTime::now();
    let (root, _) = Issuer::create(&root_config(key), None, now).unwrap();
    let (int, _) = Issuer::create(&int_config(key), Some(&root), now).unwrap();
    (Arc::new(root), Arc::new(int))
}

/// Starts the SCEP router for `opts` on 127.0.0.1.
pub async fn start(opts: Options) -> Env {
    let (root, int) = new_hierarchy(opts.issuer_key);
    start_with(opts, root, int).await
}

pub async fn start_with(opts: Options, root: Arc<Issuer>, int: Arc<Issuer>) -> Env {
    // RUST_LOG=pkiplane_scep=debug shows the server's reasons.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("pkiplane.db")).unwrap());
    let ca = Arc::new(Ca::new(store.clone()));
    ca.put_issuer(root.clone());
    ca.put_issuer(int.clone());
    let profile: CertificateProfile = serde_yaml::from_str(&profile_yaml(opts.validity, opts.approval)).unwrap();
    ca.put_profile(pkiplane_api::profile_from_resource(&profile).unwrap());
    let endpoint: EnrollmentEndpoint = serde_yaml::from_str(&endpoint_yaml(&opts)).unwrap();
    let secrets =
        vec![secret("scep-static", &[("challenge", STATIC_CHALLENGE)]), secret("scep-api", &[("mdm", API_TOKEN)])];
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let config = pkiplane_api::scep_settings(&endpoint, &secrets, &base)
        .unwrap_or_else(|e| panic!("{}", pkiplane_api::FieldError::join(&e)));
    let mut state = ScepState::start(config, ca.clone(), store.clone()).await.unwrap();
    if let Some(clock) = opts.clock.clone() {
        state = state.with_clock(clock);
    }
    let captured = Captured::default();
    let mut router = pkiplane_scep::router(state.clone());
    if opts.capture {
        router = router.layer(axum::middleware::from_fn_with_state(captured.clone(), capture_layer));
    }
    tokio::spawn(async move { axum::serve(listener, router).await });
    let root_pem = dir.path().join("root.pem");
    std::fs::write(&root_pem, root.certificate_pem()).unwrap();
    let chain_pem = dir.path().join("intermediate.pem");
    std::fs::write(&chain_pem, int.certificate_pem()).unwrap();
    Env {
        dir,
        ca,
        store,
        state,
        base,
        root_pem,
        chain_pem,
        root,
        int,
        endpoint: ObjectRef::new("pki", "scep"),
        secrets,
        captured,
    }
}

impl Env {
    pub fn url(&self) -> String {
        format!("{}/scep", self.base)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes the captured PKIOperation bodies to tests/vectors/<prefix>-<n>.der when
    /// PKIPLANE_SCEP_WRITE_VECTORS=1 (how the golden vectors were made).
    pub fn save_captured(&self, prefix: &str) {
        if std::env::var("PKIPLANE_SCEP_WRITE_VECTORS").as_deref() != Ok("1") {
            return;
        }
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
        std::fs::create_dir_all(&dir).unwrap();
        for (i, body) in self.captured.lock().unwrap().iter().enumerate() {
            std::fs::write(dir.join(format!("{prefix}-{i}.der")), body).unwrap();
        }
    }

    /// Writes `name` under tests/vectors when PKIPLANE_SCEP_WRITE_VECTORS=1 (the golden
    /// pkiplane request/response pairs and the keys and certificates that read them).
    pub fn save_vector(&self, name: &str, bytes: &[u8]) {
        if std::env::var("PKIPLANE_SCEP_WRITE_VECTORS").as_deref() != Ok("1") {
            return;
        }
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    }

    /// Saves what an offline reader of `<prefix>-*` vectors needs: the RA certificate and
    /// PKCS#8 key (to open requests), the requester's key (to open responses), and the
    /// CA chain (root then intermediate, PEM).
    pub async fn save_keys(&self, prefix: &str, requester_key_pem: &Path) {
        if std::env::var("PKIPLANE_SCEP_WRITE_VECTORS").as_deref() != Ok("1") {
            return;
        }
        use pkiplane_scep::state::ScepStore;
        let ra = self.state.ra().await.unwrap();
        self.save_vector(&format!("{prefix}-ra.cert.der"), &ra.cert_der);
        let material = self.store.ra_material(&self.endpoint).await.unwrap().expect("the RA material is stored");
        self.save_vector(&format!("{prefix}-ra.key.der"), &material.private_key_pkcs8);
        self.save_vector(&format!("{prefix}-requester.key.pem"), &std::fs::read(requester_key_pem).unwrap());
        let chain = format!("{}{}", self.root.certificate_pem(), self.int.certificate_pem());
        self.save_vector(&format!("{prefix}-ca.pem"), chain.as_bytes());
    }

    /// Every certificate issued through the SCEP endpoint.
    pub async fn scep_records(&self) -> Vec<CertificateRecord> {
        let filter = InventoryFilter { endpoint: Some(self.endpoint.clone()), ..Default::default() };
        let mut v: Vec<_> = self
            .store
            .list(&filter)
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.protocol == pkiplane_core::Protocol::Scep)
            .collect();
        v.sort_by_key(|r| r.created_at);
        v
    }

    /// Checks a certificate (PEM or DER file) with `openssl verify` against the chain and
    /// its inventory record (protocol SCEP, the expected requester); returns the record.
    pub async fn check_issued(&self, cert_der: &[u8], requester_prefix: &str) -> CertificateRecord {
        let path = self.path(&format!("verify-{}.pem", hex_head(cert_der)));
        std::fs::write(&path, pem::encode("CERTIFICATE", cert_der)).unwrap();
        openssl_verify(&self.root_pem, &self.chain_pem, &path);
        let info = pkiplane_core::x509::cert::CertInfo::from_der(cert_der).unwrap();
        let record = self.store.get(&self.int.id, &info.serial_hex).await.unwrap().expect("inventory record");
        assert_eq!(record.protocol, pkiplane_core::Protocol::Scep);
        assert_eq!(record.endpoint.as_ref(), Some(&self.endpoint));
        assert!(
            record.requester.starts_with(requester_prefix),
            "requester {} should start with {requester_prefix}",
            record.requester
        );
        assert_eq!(record.der.as_deref(), Some(cert_der));
        record
    }
}

fn hex_head(der: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, der).as_ref())[..16].to_string()
}

pub fn openssl_verify(root: &Path, chain: &Path, cert: &Path) {
    let out = Command::new("openssl")
        .args(["verify", "-CAfile"])
        .arg(root)
        .arg("-untrusted")
        .arg(chain)
        .arg(cert)
        .output()
        .expect("openssl must be installed");
    assert!(
        out.status.success(),
        "openssl verify failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn openssl(args: &[&str]) -> std::process::Output {
    let out = Command::new("openssl").args(args).output().expect("openssl must be installed");
    assert!(out.status.success(), "openssl {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    out
}

/// Runs a tool script under scripts/tools and returns what it printed (a path). A tool
/// that cannot be installed fails the test with the script's reason.
pub fn tool(script: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/tools").join(script);
    let out = Command::new("bash").arg(&path).output().unwrap_or_else(|e| panic!("running {}: {e}", path.display()));
    assert!(
        out.status.success(),
        "{} could not provide its tool:\n{}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}
