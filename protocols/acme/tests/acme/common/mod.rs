//! Test environment: CA hierarchy, profiles, SQLite store, the ACME server and the
//! challenge responders.
#![allow(dead_code)]

pub mod dns;
pub mod raw;
pub mod ready;
pub mod responders;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use instant_acme::{Account, AccountCredentials, BodyWrapper, ExternalAccountKey, NewAccount};
use pkiplane_acme::{AcmeSettings, AcmeState, EabSettings, ExposedProfile, ValidationSettings, router};
use pkiplane_core::inventory::{CertificateRecord, Inventory, InventoryFilter};
use pkiplane_core::issuance::Ca;
use pkiplane_core::issuer::{CaParams, Issuer, IssuerConfig, IssuerSource, NameConstraintsConfig};
use pkiplane_core::keys::KeyAlgorithm;
use pkiplane_core::model::ObjectRef;
use pkiplane_core::profile::*;
use pkiplane_store::SqliteStore;
use tempfile::TempDir;

pub const DAY: Duration = Duration::from_secs(86_400);

/// A profile signed by the test intermediate: any DNS name or IP, `days` of validity.
pub fn profile(name: &str, days: u64, description: &str) -> Profile {
    Profile {
        id: ObjectRef::new("pki", name),
        description: description.into(),
        issuer: ObjectRef::new("pki", "ca"),
        keys: KeyPolicy::default(),
        validity: ValidityPolicy { duration: DAY * days as u32, max: DAY * 90, backdate: Duration::from_secs(300) },
        renewal: RenewalPolicy::RemainingFraction(1.0 / 3.0),
        subject: SubjectPolicy::default(),
        sans: SanPolicy {
            max_count: 20,
            required: true,
            dns: Some(DnsRule { suffixes: vec![], allow_wildcards: true }),
            ip: Some(IpRule::default()),
            uri: None,
            email: None,
        },
        key_usage: vec![pkiplane_core::x509::KeyUsageBit::DigitalSignature],
        extended_key_usage: vec![pkiplane_core::x509::eku_from_name("serverAuth").unwrap()],
        crl_distribution_points: vec![],
        ca_issuers_urls: vec![],
        ocsp_urls: vec![],
        csr_extensions: CsrExtensionPolicy::default(),
        requesters: RequesterPolicy::default(),
        approval_required: false,
    }
}

/// How a test wants its server.
pub struct Options {
    /// (label, profile, default)
    pub profiles: Vec<(String, Profile, bool)>,
    pub eab: Option<EabSettings>,
    pub authz_reuse: Option<Duration>,
    /// Where validation may connect: loopback by default (the responders).
    pub allowed_target_ranges: Vec<ipnet::IpNet>,
    /// The port http-01 validation connects to; default: the http-01 responder's.
    pub http01_port: Option<u16>,
    /// As `pkiplane serve` runs it: the only process serving the endpoint
    /// ([`AcmeState::served_alone`]); default: a replica sharing the store.
    pub served_alone: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            profiles: vec![("tls".into(), profile("tls", 47, "TLS server certificates, 47 days"), true)],
            eab: None,
            authz_reuse: None,
            allowed_target_ranges: vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()],
            http01_port: None,
            served_alone: false,
        }
    }
}

pub struct Env {
    pub base: String,
    pub directory: String,
    pub state: AcmeState,
    pub store: Arc<SqliteStore>,
    /// The endpoint's ACME state in `store`.
    pub acme: Arc<dyn pkiplane_acme::state::AcmeStore>,
    pub ca: Arc<Ca>,
    pub int: Arc<Issuer>,
    pub root_pem: PathBuf,
    pub int_pem: PathBuf,
    pub responders: responders::Responders,
    pub dir: TempDir,
}

fn ca_params(subject: &str, path_len: Option<u8>) -> CaParams {
    CaParams {
        subject: subject.into(),
        key: KeyAlgorithm::EcdsaP256,
        validity: DAY * 5 * 365,
        path_len,
        name_constraints: NameConstraintsConfig::default(),
        renew_before: None,
    }
}

impl Env {
    pub async fn start(opts: Options) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(&dir.path().join("data").join("pkiplane.db")).unwrap());
        let now = SystemTime::now();
        let root_cfg = IssuerConfig {
            id: ObjectRef::new("pki", "root"),
            source: IssuerSource::SelfSigned(ca_params("CN=ACME Test Root", Some(1))),
            crl_validity: DAY,
        };
        let (root, _) = Issuer::create(&root_cfg, None, now).unwrap();
        let int_cfg = IssuerConfig {
            id: ObjectRef::new("pki", "ca"),
            source: IssuerSource::Intermediate {
                parent: root_cfg.id.clone(),
                params: ca_params("CN=ACME Test Issuing CA", None),
            },
            crl_validity: DAY,
        };
        let (int, _) = Issuer::create(&int_cfg, Some(&root), now).unwrap();
        let (root, int) = (Arc::new(root), Arc::new(int));
        let root_pem = dir.path().join("root.pem");
        let int_pem = dir.path().join("int.pem");
        std::fs::write(&root_pem, root.certificate_pem()).unwrap();
        std::fs::write(&int_pem, int.certificate_pem()).unwrap();
        let ca = Arc::new(Ca::new(store.clone() as Arc<dyn Inventory>));
        ca.put_issuer(root);
        ca.put_issuer(int.clone());
        let mut exposed = Vec::new();
        let mut default = None;
        for (label, p, is_default) in opts.profiles {
            exposed.push(ExposedProfile { label: label.clone(), profile: p.id.clone() });
            if is_default {
                default = Some(label);
            }
            ca.put_profile(p);
        }
        let responders = responders::Responders::start().await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let mut config = AcmeSettings::new(ObjectRef::new("pki", "acme"), &base, exposed);
        config.default_profile = default;
        config.http01_port = opts.http01_port.unwrap_or(responders.http_port);
        config.tls_alpn01_port = responders.tls_port;
        config.dns_resolver = Some(responders.dns_addr.to_string());
        config.eab = opts.eab;
        config.authz_reuse = opts.authz_reuse;
        config.validation = ValidationSettings {
            attempts: 2,
            backoff: Duration::from_millis(100),
            connect_timeout: Duration::from_secs(2),
            attempt_timeout: Duration::from_secs(5),
            // The responders listen on loopback.
            allowed_target_ranges: opts.allowed_target_ranges.clone(),
        };
        let acme = endpoint_state(store.clone());
        let mut state = AcmeState::new(config, ca.clone(), acme.clone());
        if opts.served_alone {
            state = state.served_alone();
        }
        let app = router(state.clone());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        let directory = format!("{base}/directory");
        Env { base, directory, state, store, acme, ca, int, root_pem, int_pem, responders, dir }
    }

    /// An instant-acme account (plain HTTP client: the test server is http://).
    pub async fn account(
        &self,
        eab: Option<&ExternalAccountKey>,
    ) -> Result<(Account, AccountCredentials), instant_acme::Error> {
        Account::builder_with_http(Box::new(http_client()))
            .create(
                &NewAccount {
                    contact: &["mailto:ops@example.com"],
                    terms_of_service_agreed: true,
                    only_return_existing: false,
                },
                self.directory.clone(),
                eab,
            )
            .await
    }

    pub async fn records(&self) -> Vec<CertificateRecord> {
        self.store.list(&InventoryFilter::default()).await.unwrap()
    }

    /// Runs `openssl verify` on the leaf (first certificate) of a PEM chain.
    pub fn openssl_verify(&self, chain_pem: &str) {
        let leaf_end = chain_pem.find("-----END CERTIFICATE-----").unwrap() + "-----END CERTIFICATE-----".len();
        let leaf = self.dir.path().join(format!("leaf-{}.pem", pkiplane_acme::nonce::random_id()));
        std::fs::write(&leaf, &chain_pem[..leaf_end]).unwrap();
        let out = Command::new("openssl")
            .args(["verify", "-CAfile"])
            .arg(&self.root_pem)
            .arg("-untrusted")
            .arg(&self.int_pem)
            .arg(&leaf)
            .output()
            .expect("openssl is installed");
        assert!(
            out.status.success(),
            "openssl verify failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

pub fn http_client() -> Client<hyper_util::client::legacy::connect::HttpConnector, BodyWrapper<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// A CSR for `names` (IP literals become IP SANs) and its key, made by rcgen.
pub fn csr(names: &[&str]) -> (Vec<u8>, rcgen::KeyPair) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    let csr = params.serialize_request(&key).unwrap();
    (csr.der().to_vec(), key)
}

/// Key/value EAB settings.
pub fn eab_config(keys: &[(&str, &[u8])], required: bool, reusable: bool) -> EabSettings {
    let keys: BTreeMap<_, _> =
        keys.iter().map(|(k, v)| (k.to_string(), pkiplane_acme::EabKey(zeroize::Zeroizing::new(v.to_vec())))).collect();
    EabSettings { required, reusable, keys }
}

/// Problem type name of an instant-acme API error.
pub fn problem(e: &instant_acme::Error) -> (String, String) {
    match e {
        instant_acme::Error::Api(p) => (
            p.r#type.clone().unwrap_or_default().trim_start_matches("urn:ietf:params:acme:error:").to_owned(),
            p.detail.clone().unwrap_or_default(),
        ),
        other => (format!("not an API error: {other}"), String::new()),
    }
}

/// The ACME state of the test endpoint (pki/acme) in `store`.
pub fn endpoint_state(store: Arc<SqliteStore>) -> Arc<dyn pkiplane_acme::state::AcmeStore> {
    use pkiplane_acme::state::AcmeStateScopes;
    pkiplane_store::AcmeScopes::new(store).for_endpoint(&ObjectRef::new("pki", "acme"))
}
