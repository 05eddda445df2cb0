//! Test environment: the quickstart CA hierarchy, profiles and EST endpoint `pki/est`, on a SQLite inventory, served over TLS on 127.0.0.1 with client
//! certificates requested but validated by EST (as `pkiplane serve` does).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use pkiplane_api::Manifests;
use pkiplane_core::inventory::{CertificateRecord, Inventory, InventoryFilter};
use pkiplane_core::issuance::{Ca, IssuanceRequest};
use pkiplane_core::keys::{KeyAlgorithm, SecretKey, generate_key};
use pkiplane_core::model::{ObjectRef, Protocol, Requester, TlsPeer};
use pkiplane_core::policy::RequestedValidity;
use pkiplane_core::x509::csr::{CsrOptions, ParsedCsr};
use pkiplane_core::x509::csr_build::build_csr;
use pkiplane_core::x509::names::parse_dn;
use pkiplane_core::x509::{San, pem};
use pkiplane_est::state::memory::MemoryAuthFailures;
use pkiplane_est::{EstSettings, EstState, router};
use pkiplane_store::SqliteStore;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tempfile::TempDir;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scripts")
}

pub struct Env {
    pub dir: TempDir,
    pub ca: Arc<Ca>,
    pub state: EstState,
    pub addr: SocketAddr,
    /// `https://127.0.0.1:<port>/.well-known/est`
    pub base: String,
    /// PEM trusting the server's TLS certificate.
    pub tls_ca: PathBuf,
    /// Root of the example hierarchy and the issuing intermediate (PEM files).
    pub root_pem: PathBuf,
    pub int_pem: PathBuf,
    pub manufacturer_pem: PathBuf,
}

impl Env {
    /// Starts the endpoint; `adjust` may change the configuration first.
    pub async fn start(adjust: impl FnOnce(&mut EstSettings)) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let manifests = Manifests::load(repo_root().join("examples/quickstart.yaml")).unwrap();
        let store = Arc::new(SqliteStore::open(&dir.path().join("pkiplane.db")).unwrap());
        let ca = Arc::new(Ca::new(store.clone() as Arc<dyn Inventory>));
        pkiplane_api::put_fresh(&ca, &manifests, SystemTime::now()).unwrap();
        let endpoint = manifests.endpoint("pki", "est").unwrap().clone();

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let base_url = format!("https://127.0.0.1:{}", addr.port());
        let mut config = pkiplane_api::est_settings(
            &endpoint,
            &manifests,
            &|id| pkiplane_api::convert::loaded_issuer_chain(ca.as_ref(), id),
            &base_url,
        )
        .unwrap();
        config.limits.basic_backoff = Duration::from_secs(30);
        adjust(&mut config);
        let state = EstState::new(config, ca.clone(), Arc::new(MemoryAuthFailures::new()));

        // The TLS server certificate: issued by the quickstart intermediate, like
        // `pkiplane serve` does for `tls.issuerRef`.
        let key = generate_key(KeyAlgorithm::EcdsaP256).unwrap();
        let sans = [San::Dns("localhost".into()), San::Ip("127.0.0.1".parse().unwrap())];
        let der = issue_local(&ca, "enterprise-tls-47d", &key, "", &sans).await;
        let int = ca.issuer(&ObjectRef::new("pki", "example-intermediate")).unwrap();
        let root_pem = dir.path().join("root.pem");
        std::fs::write(&root_pem, pem::encode("CERTIFICATE", &int.root().der)).unwrap();
        let int_pem = dir.path().join("int.pem");
        std::fs::write(&int_pem, int.certificate_pem()).unwrap();
        let manufacturer = ca.issuer(&ObjectRef::new("pki", "manufacturer-root")).unwrap();
        let manufacturer_pem = dir.path().join("manufacturer.pem");
        std::fs::write(&manufacturer_pem, manufacturer.certificate_pem()).unwrap();
        let chain = vec![CertificateDer::from(der), CertificateDer::from(int.cert.der.clone())];
        tokio::spawn(serve(listener, router(state.clone()), chain, key));

        Env {
            ca,
            state,
            addr,
            base: format!("{base_url}/.well-known/est"),
            tls_ca: root_pem.clone(),
            root_pem,
            int_pem,
            manufacturer_pem,
            dir,
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Every record of the inventory, newest last.
    pub async fn records(&self) -> Vec<CertificateRecord> {
        let mut v = self.ca.inventory().list(&InventoryFilter::default()).await.unwrap();
        v.sort_by_key(|r| r.created_at);
        v
    }

    pub async fn record_of(&self, cert_pem: &Path) -> CertificateRecord {
        let der = pem::decode_chain(&std::fs::read(cert_pem).unwrap(), "CERTIFICATE").unwrap().remove(0);
        let info = pkiplane_core::x509::cert::CertInfo::from_der(&der).unwrap();
        self.ca.inventory().find_serial(&info.serial_hex).await.unwrap().pop().expect("certificate in the inventory")
    }

    /// Issues a certificate outside EST (as `pkiplane issue` would) and writes
    /// `<name>.key` and `<name>.pem`.
    pub async fn issue_files(
        &self,
        profile: &str,
        alg: KeyAlgorithm,
        subject: &str,
        sans: &[San],
        name: &str,
    ) -> (PathBuf, PathBuf) {
        let key = generate_key(alg).unwrap();
        let der = issue_local(&self.ca, profile, &key, subject, sans).await;
        let key_path = self.path(&format!("{name}.key"));
        let cert_path = self.path(&format!("{name}.pem"));
        std::fs::write(&key_path, key.to_pem().as_bytes()).unwrap();
        std::fs::write(&cert_path, pem::encode("CERTIFICATE", &der)).unwrap();
        (cert_path, key_path)
    }

    /// `openssl verify` of `cert` against the example hierarchy.
    pub fn openssl_verify(&self, cert: &Path) {
        let out = Command::new("openssl")
            .arg("verify")
            .arg("-CAfile")
            .arg(&self.root_pem)
            .arg("-untrusted")
            .arg(&self.int_pem)
            .arg(cert)
            .output()
            .unwrap();
        assert!(out.status.success(), "openssl verify {}: {}{}", cert.display(), text(&out.stdout), text(&out.stderr));
    }

    /// Runs a device script with `vars`; returns its output.
    pub fn script(&self, name: &str, vars: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new("sh");
        cmd.arg(scripts_dir().join(name)).env("EST_CA", &self.tls_ca).env("OUT", self.dir.path());
        for v in ["EST_CERT", "EST_KEY", "EST_USER", "EST_PASS", "SUBJECT", "SAN"] {
            cmd.env_remove(v);
        }
        for (k, v) in vars {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }

    /// curl with the test's TLS trust: returns (status, headers+body text).
    pub fn curl(&self, args: &[&str]) -> (u16, String) {
        let out = Command::new("curl")
            .args(["--silent", "--show-error", "--include", "--cacert"])
            .arg(&self.tls_ca)
            .args(args)
            .output()
            .unwrap();
        let body = text(&out.stdout);
        let status = body.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        (status, body + &text(&out.stderr))
    }
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Issues through the CA with protocol LOCAL (what `pkiplane issue` does).
pub async fn issue_local(ca: &Ca, profile: &str, key: &SecretKey, subject: &str, sans: &[San]) -> Vec<u8> {
    let csr = ParsedCsr::from_der(&build_csr(key, &parse_dn(subject).unwrap(), sans).unwrap(), CsrOptions::default())
        .unwrap();
    let req = IssuanceRequest {
        csr,
        profile: ObjectRef::new("pki", profile),
        requester: Requester::new(Protocol::Local, "test"),
        requested: RequestedValidity::default(),
        renewal_of: None,
        exchange: None,
    };
    ca.issue(req).await.unwrap().issued().unwrap().der
}

/// The TLS accept loop: client certificates are requested and handed to EST unvalidated
/// (with the RFC 9266 exporter), like `pkiplane serve`.
async fn serve(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    chain: Vec<CertificateDer<'static>>,
    key: SecretKey,
) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(pkiplane_est::tls::DeferredClientCertVerifier::new(&provider))
        .with_single_cert(chain, PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.pkcs8_der().to_vec())))
        .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    loop {
        let Ok((stream, peer)) = listener.accept().await else { continue };
        let acceptor = acceptor.clone();
        let router = router.clone();
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(stream).await else { return };
            let conn = tls.get_ref().1;
            let chain_der =
                conn.peer_certificates().map(|c| c.iter().map(|d| d.to_vec()).collect()).unwrap_or_default();
            let mut binding = [0u8; 32];
            let channel_binding =
                conn.export_keying_material(&mut binding, b"EXPORTER-Channel-Binding", None).ok().map(|b| b.to_vec());
            let router = router
                .layer(axum::Extension(TlsPeer { chain_der, channel_binding }))
                .layer(axum::Extension(ConnectInfo(peer)));
            let service = TowerToHyperService::new(router);
            let _ = auto::Builder::new(TokioExecutor::new()).serve_connection(TokioIo::new(tls), service).await;
        });
    }
}
