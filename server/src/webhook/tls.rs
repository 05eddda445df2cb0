//! The webhook's serving certificate from `--tls-dir` (`tls.crt`, `tls.key`), reloaded
//! when the operator rotates it: the resolver checks the files' modification times at a
//! handshake at most every [`RELOAD_CHECK_INTERVAL`] and swaps in the new certificate.
//! A broken pair on disk keeps the previous certificate in use (and is logged).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, anyhow};
use pkiplane_core::x509::pem;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// How often, at most, the files are checked for a new certificate.
pub const RELOAD_CHECK_INTERVAL: Duration = Duration::from_secs(10);

#[derive(Debug)]
struct Loaded {
    key: Arc<CertifiedKey>,
    modified: (Option<SystemTime>, Option<SystemTime>),
    checked_at: Instant,
}

/// Serves the certificate in a directory, re-reading it when it changes.
#[derive(Debug)]
pub struct ReloadingCert {
    dir: PathBuf,
    provider: Arc<CryptoProvider>,
    check_interval: Duration,
    current: Mutex<Loaded>,
}

impl ReloadingCert {
    /// Loads `dir/tls.crt` and `dir/tls.key`; fails when they cannot be used.
    pub fn load(dir: &Path, provider: Arc<CryptoProvider>) -> Result<Self> {
        Self::load_checking_every(dir, provider, RELOAD_CHECK_INTERVAL)
    }

    fn load_checking_every(dir: &Path, provider: Arc<CryptoProvider>, check_interval: Duration) -> Result<Self> {
        let modified = modified_times(dir);
        let key = certified_key(dir, &provider)?;
        let current = Mutex::new(Loaded { key, modified, checked_at: Instant::now() });
        Ok(Self { dir: dir.to_path_buf(), provider, check_interval, current })
    }

    /// The certificate to present now, reloaded first when the files changed.
    pub fn current(&self) -> Arc<CertifiedKey> {
        let mut loaded = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if loaded.checked_at.elapsed() >= self.check_interval {
            loaded.checked_at = Instant::now();
            let modified = modified_times(&self.dir);
            if modified != loaded.modified {
                match certified_key(&self.dir, &self.provider) {
                    Ok(key) => {
                        tracing::info!(dir = %self.dir.display(), "serving certificate reloaded");
                        loaded.key = key;
                        loaded.modified = modified;
                    }
                    // Mid-rotation the two files may not match yet: try again next time.
                    Err(e) => {
                        tracing::warn!(dir = %self.dir.display(), error = %format!("{e:#}"), "new serving certificate not usable yet")
                    }
                }
            }
        }
        loaded.key.clone()
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

fn modified_times(dir: &Path) -> (Option<SystemTime>, Option<SystemTime>) {
    let m = |name: &str| std::fs::metadata(dir.join(name)).and_then(|m| m.modified()).ok();
    (m("tls.crt"), m("tls.key"))
}

fn certified_key(dir: &Path, provider: &CryptoProvider) -> Result<Arc<CertifiedKey>> {
    let read =
        |name: &str| std::fs::read(dir.join(name)).with_context(|| format!("reading {}", dir.join(name).display()));
    let chain: Vec<CertificateDer<'static>> =
        pem::decode_chain(&read("tls.crt")?, "CERTIFICATE")?.into_iter().map(CertificateDer::from).collect();
    if chain.is_empty() {
        return Err(anyhow!("{} holds no certificate", dir.join("tls.crt").display()));
    }
    let key_pem = String::from_utf8(read("tls.key")?).context("tls.key is not PEM text")?;
    let key = pkiplane_core::issuer::parse_private_key_pem(&key_pem).map_err(|e| anyhow!("tls.key: {e}"))?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.pkcs8_der().to_vec()));
    let certified = CertifiedKey::from_der(chain, key, provider).map_err(|e| anyhow!("tls.crt and tls.key: {e}"))?;
    Ok(Arc::new(certified))
}

/// A rustls server configuration presenting `cert`.
pub fn server_config(cert: Arc<ReloadingCert>, provider: Arc<CryptoProvider>) -> Result<Arc<rustls::ServerConfig>> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(cert);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use pkiplane_core::keys::{KeyAlgorithm, generate_key};
    use pkiplane_core::x509::csr::{CsrOptions, ParsedCsr};
    use pkiplane_core::x509::csr_build::build_csr;
    use pkiplane_core::x509::names::{SubjectAttribute, build_name};

    use super::*;

    /// Writes a self-signed certificate and its key for `cn` into `dir`.
    fn write_pair(dir: &Path, cn: &str) -> Vec<u8> {
        let key = generate_key(KeyAlgorithm::EcdsaP256).unwrap();
        let subject = build_name(&[(SubjectAttribute::CommonName, cn.to_string())]).unwrap();
        let csr = ParsedCsr::from_der(&build_csr(&key, &subject, &[]).unwrap(), CsrOptions::default()).unwrap();
        let signer = pkiplane_core::keys::CaSigner::new(&key).unwrap();
        let now = SystemTime::now();
        let fields = pkiplane_core::x509::cert::CertificateFields {
            serial: &[1],
            issuer: &subject,
            subject: &subject,
            not_before: now,
            not_after: now + Duration::from_secs(3600),
            spki: &csr.spki,
            extensions: Vec::new(),
        };
        let der = pkiplane_core::x509::cert::sign_certificate(&fields, &signer).unwrap();
        std::fs::write(dir.join("tls.crt"), pem::encode("CERTIFICATE", &der)).unwrap();
        std::fs::write(dir.join("tls.key"), key.to_pem().as_bytes()).unwrap();
        der
    }

    #[test]
    fn a_rotated_certificate_is_served_and_a_broken_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let first = write_pair(dir.path(), "first");
        let cert = ReloadingCert::load_checking_every(dir.path(), provider, Duration::ZERO).unwrap();
        assert_eq!(cert.current().cert[0].as_ref(), first.as_slice());
        std::thread::sleep(Duration::from_millis(20));
        let second = write_pair(dir.path(), "second");
        assert_eq!(cert.current().cert[0].as_ref(), second.as_slice(), "the rotated certificate is served");
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(dir.path().join("tls.key"), "not a key").unwrap();
        assert_eq!(cert.current().cert[0].as_ref(), second.as_slice(), "a broken pair keeps the previous one");
    }
}
