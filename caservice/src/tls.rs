//! Mutual TLS material from a directory (`tls.crt`, `tls.key`, `ca.crt`, as a
//! kubernetes.io/tls Secret mounts it) and rustls configurations built from it, rebuilt
//! when the files change (the operator rotates internal certificates in place).

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use pkiplane_core::x509::pem;
use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;

/// How often the files are checked for changes.
pub const RELOAD_EVERY: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("client verifier: {0}")]
    Verifier(String),
}

/// The three files of a TLS directory, parsed. The key is never logged.
pub struct TlsMaterial {
    pub chain: Vec<CertificateDer<'static>>,
    key_pkcs8: zeroize::Zeroizing<Vec<u8>>,
    pub roots: Vec<CertificateDer<'static>>,
}

impl TlsMaterial {
    /// Reads `dir/tls.crt` (leaf first), `dir/tls.key` (PKCS#8, SEC1 or PKCS#1 PEM) and
    /// `dir/ca.crt` (the internal CA bundle; may hold old and new CA during rotation).
    pub fn load(dir: &Path) -> Result<Self, TlsError> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read(&path).map_err(|e| TlsError::File { path, message: e.to_string() })
        };
        let certs = |name: &str| -> Result<Vec<CertificateDer<'static>>, TlsError> {
            let bytes = read(name)?;
            let ders = pem::decode_chain(&bytes, "CERTIFICATE")
                .map_err(|e| TlsError::File { path: dir.join(name), message: e.to_string() })?;
            Ok(ders.into_iter().map(CertificateDer::from).collect())
        };
        let chain = certs("tls.crt")?;
        let roots = certs("ca.crt")?;
        let key_pem = zeroize::Zeroizing::new(read("tls.key")?);
        let key_text = std::str::from_utf8(&key_pem)
            .map_err(|_| TlsError::File { path: dir.join("tls.key"), message: "not PEM text".into() })?;
        let key = pkiplane_core::issuer::parse_private_key_pem(key_text)
            .map_err(|e| TlsError::File { path: dir.join("tls.key"), message: e })?;
        Ok(Self { chain, key_pkcs8: zeroize::Zeroizing::new(key.pkcs8_der().to_vec()), roots })
    }

    fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_pkcs8.to_vec()))
    }

    fn root_store(&self) -> Result<Arc<RootCertStore>, TlsError> {
        let mut store = RootCertStore::empty();
        for r in &self.roots {
            store.add(r.clone()).map_err(|e| TlsError::Verifier(e.to_string()))?;
        }
        Ok(Arc::new(store))
    }

    /// A server that requires a client certificate chaining to the internal CA.
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = WebPkiClientVerifier::builder_with_provider(self.root_store()?, provider.clone())
            .build()
            .map_err(|e| TlsError::Verifier(e.to_string()))?;
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(verifier)
            .with_single_cert(self.chain.clone(), self.key())?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    /// A server for people and tools (the pkiplane binary's admin API): no client
    /// certificate of the internal CA is asked for. With `client_roots`, a client may
    /// present a certificate chaining to them (verified; one without is admitted too, to
    /// authenticate with a bearer token instead).
    pub fn server_config_for_people(
        &self,
        client_roots: Option<Arc<RootCertStore>>,
    ) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder =
            rustls::ServerConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions()?;
        let builder = match client_roots {
            Some(roots) => builder.with_client_cert_verifier(
                WebPkiClientVerifier::builder_with_provider(roots, provider)
                    .allow_unauthenticated()
                    .build()
                    .map_err(|e| TlsError::Verifier(e.to_string()))?,
            ),
            None => builder.with_no_client_auth(),
        };
        let mut config = builder.with_single_cert(self.chain.clone(), self.key())?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    /// A client that presents this certificate and trusts only the internal CA.
    pub fn client_config(&self) -> Result<Arc<rustls::ClientConfig>, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        for r in &self.roots {
            roots.add(r.clone()).map_err(|e| TlsError::Verifier(e.to_string()))?;
        }
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_client_auth_cert(self.chain.clone(), self.key())?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// The newest modification time of the three files (None when one is missing).
fn stamp(dir: &Path) -> Option<SystemTime> {
    ["tls.crt", "tls.key", "ca.crt"]
        .iter()
        .map(|f| std::fs::metadata(dir.join(f)).and_then(|m| m.modified()).ok())
        .try_fold(SystemTime::UNIX_EPOCH, |acc, t| t.map(|t| acc.max(t)))
}

/// A configuration rebuilt from a TLS directory whenever its files change. Readers take
/// the current one per connection; a broken update keeps the previous configuration.
/// How a configuration is built from the material.
type Build<T> = Box<dyn Fn(&TlsMaterial) -> Result<Arc<T>, TlsError> + Send + Sync>;

pub struct Reloading<T> {
    current: RwLock<(Option<SystemTime>, Arc<T>)>,
    dir: PathBuf,
    build: Build<T>,
}

impl<T: Send + Sync + 'static> Reloading<T> {
    pub fn new(
        dir: &Path,
        build: impl Fn(&TlsMaterial) -> Result<Arc<T>, TlsError> + Send + Sync + 'static,
    ) -> Result<Arc<Self>, TlsError> {
        let stamp = stamp(dir);
        let first = build(&TlsMaterial::load(dir)?)?;
        Ok(Arc::new(Self { current: RwLock::new((stamp, first)), dir: dir.to_owned(), build: Box::new(build) }))
    }

    /// A configuration that never changes (built elsewhere, e.g. from PEM handed over in
    /// memory): [`Self::refresh`] finds no directory and keeps it.
    pub fn fixed(value: Arc<T>) -> Arc<Self> {
        let unused = |_: &TlsMaterial| -> Result<Arc<T>, TlsError> {
            Err(TlsError::File { path: PathBuf::new(), message: "a fixed configuration is not rebuilt".into() })
        };
        Arc::new(Self { current: RwLock::new((None, value)), dir: PathBuf::new(), build: Box::new(unused) })
    }

    pub fn get(&self) -> Arc<T> {
        self.current.read().unwrap_or_else(|e| e.into_inner()).1.clone()
    }

    /// Rebuilds when the files changed; true when a new configuration is in place.
    pub fn refresh(&self) -> bool {
        if self.dir.as_os_str().is_empty() {
            return false;
        }
        let now = stamp(&self.dir);
        if now.is_none() || now == self.current.read().unwrap_or_else(|e| e.into_inner()).0 {
            return false;
        }
        match TlsMaterial::load(&self.dir).and_then(|m| (self.build)(&m)) {
            Ok(cfg) => {
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = (now, cfg);
                tracing::info!(dir = %self.dir.display(), "reloaded TLS material");
                true
            }
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), error = %e, "TLS material changed but does not load; keeping the previous");
                false
            }
        }
    }

    /// Polls the files every [`RELOAD_EVERY`] for as long as the runtime lives.
    pub fn spawn_watch(self: &Arc<Self>) {
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(RELOAD_EVERY);
            loop {
                tick.tick().await;
                let Some(me) = me.upgrade() else { return };
                me.refresh();
            }
        });
    }
}

pub fn build_server(m: &TlsMaterial) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    m.server_config()
}

pub fn build_client(m: &TlsMaterial) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    m.client_config()
}
