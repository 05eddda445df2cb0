//! TLS to PostgreSQL on rustls, set by libpq's URL parameters.
//!
//! Supported: `sslmode` (`disable`, `prefer`, `require`, `verify-ca`, `verify-full`),
//! `sslrootcert` (a PEM CA bundle, or `system` for the platform's trust store), `sslcert`
//! and `sslkey` (a client certificate chain and its unencrypted key, PEM). Any other
//! `ssl*` parameter is refused by name rather than ignored: a setting silently dropped is
//! a check the operator believes in and does not get.
//!
//! As in libpq, the environment variables `PGSSLMODE`, `PGSSLROOTCERT`, `PGSSLCERT` and
//! `PGSSLKEY` stand for parameters the URL does not give (the Helm chart sets them from
//! its values; the URL, written by the database's owner, wins).
//!
//! A URL without `sslmode` (and no `PGSSLMODE`) is taken as `verify-full` (libpq's default is `prefer`, which
//! falls back to plain TCP and verifies nothing): the safe reading unless the operator says
//! otherwise. As in libpq, `prefer` and `require` verify the chain when `sslrootcert` is
//! given (as `verify-ca`) and nothing otherwise.
//!
//! The files are read again when they change (a Secret's rotation): each new connection
//! checks their modification times; a bundle that no longer loads keeps the last good one.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use pkiplane_core::inventory::StoreError;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres::config::SslMode;
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres_rustls::MakeRustlsConnect;

/// How the connection is protected, libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl TlsMode {
    fn parse(value: &str) -> Result<Self, String> {
        Ok(match value {
            "disable" => Self::Disable,
            "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            "allow" => return Err("sslmode=allow (plain TCP first) is not supported: use disable or prefer".to_owned()),
            other => {
                return Err(format!("sslmode={other} is not one of disable, prefer, require, verify-ca, verify-full"));
            }
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }
}

/// The certificates a server's chain must lead to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Roots {
    File(PathBuf),
    /// The platform's trust store (`sslrootcert=system`, as in libpq 16).
    System,
}

/// The TLS settings of a URL. Holds paths only: no key material, so `Debug` is safe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    mode: TlsMode,
    /// Whether the URL named `sslmode` (otherwise `verify-full` was assumed).
    mode_given: bool,
    roots: Option<Roots>,
    client_cert: Option<PathBuf>,
    client_key: Option<PathBuf>,
}

/// Parameters of libpq the URL may not carry: what each would have asked for.
const UNSUPPORTED: &[(&str, &str)] = &[
    ("sslpassword", "encrypted client keys are not supported: give sslkey an unencrypted PEM key"),
    ("sslcrl", "certificate revocation lists for the server's certificate are not supported"),
    ("sslcrldir", "certificate revocation lists for the server's certificate are not supported"),
    ("sslcompression", "TLS compression is not supported"),
    ("sslcertmode", "only sslcert/sslkey given or not is supported"),
    ("sslnegotiation", "only PostgreSQL's own TLS negotiation (sslnegotiation=postgres) is supported"),
    ("ssl_min_protocol_version", "the TLS versions are fixed: 1.2 and 1.3"),
    ("ssl_max_protocol_version", "the TLS versions are fixed: 1.2 and 1.3"),
    ("gssencmode", "GSSAPI encryption is not supported"),
    ("requirepeer", "Unix-socket peer checks are not supported"),
];

impl TlsSettings {
    /// Splits the TLS parameters off a `postgres://` URL: the URL for tokio-postgres
    /// (which knows none of them but `sslmode`) and the settings, with the process
    /// environment's `PGSSL*` variables for what the URL leaves out.
    pub fn from_url(url: &str) -> Result<(String, Self), StoreError> {
        Self::from_url_and_env(url, |name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// [`Self::from_url`] with `env` as the environment.
    pub fn from_url_and_env(url: &str, env: impl Fn(&str) -> Option<String>) -> Result<(String, Self), StoreError> {
        let (base, query) = match url.split_once('?') {
            Some((base, query)) => (base, query),
            None => (url, ""),
        };
        let mut kept = Vec::new();
        let mut mode = None;
        let mut settings =
            Self { mode: TlsMode::VerifyFull, mode_given: false, roots: None, client_cert: None, client_key: None };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, raw) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_encoding::percent_decode_str(raw)
                .decode_utf8()
                .map_err(|_| config_err(&format!("the value of {key} is not UTF-8")))?
                .into_owned();
            match key {
                "sslmode" => mode = Some(TlsMode::parse(&value).map_err(|e| config_err(&e))?),
                "sslrootcert" if value == "system" => settings.roots = Some(Roots::System),
                "sslrootcert" => settings.roots = Some(Roots::File(non_empty_path(key, &value)?)),
                "sslcert" => settings.client_cert = Some(non_empty_path(key, &value)?),
                "sslkey" => settings.client_key = Some(non_empty_path(key, &value)?),
                "sslsni" if value == "1" => {}
                "sslsni" => return Err(config_err("sslsni=0 is not supported: the server name is always sent")),
                "sslnegotiation" if value == "postgres" => {}
                _ => match UNSUPPORTED.iter().find(|(name, _)| *name == key) {
                    Some((name, why)) => return Err(config_err(&format!("{name} is not supported: {why}"))),
                    None => kept.push(pair),
                },
            }
        }
        let from_env = |name: &str| env(name).map(|v| (name.to_owned(), v));
        if mode.is_none()
            && let Some((_, value)) = from_env("PGSSLMODE")
        {
            mode = Some(TlsMode::parse(&value).map_err(|e| config_err(&format!("PGSSLMODE: {e}")))?);
        }
        if settings.roots.is_none()
            && let Some((name, value)) = from_env("PGSSLROOTCERT")
        {
            settings.roots =
                Some(if value == "system" { Roots::System } else { Roots::File(non_empty_path(&name, &value)?) });
        }
        if settings.client_cert.is_none() && settings.client_key.is_none() {
            settings.client_cert = from_env("PGSSLCERT").map(|(_, v)| PathBuf::from(v));
            settings.client_key = from_env("PGSSLKEY").map(|(_, v)| PathBuf::from(v));
        }
        if let Some(mode) = mode {
            settings.mode = mode;
            settings.mode_given = true;
        }
        settings.check()?;
        let rest = if kept.is_empty() { base.to_owned() } else { format!("{base}?{}", kept.join("&")) };
        Ok((rest, settings))
    }

    fn check(&self) -> Result<(), StoreError> {
        match (&self.client_cert, &self.client_key) {
            (Some(_), None) => return Err(config_err("sslcert needs sslkey (the client certificate's key)")),
            (None, Some(_)) => return Err(config_err("sslkey needs sslcert (the client certificate)")),
            _ => {}
        }
        let verifies = matches!(self.mode, TlsMode::VerifyCa | TlsMode::VerifyFull);
        if verifies && self.roots.is_none() {
            let assumed =
                if self.mode_given { "" } else { " (the URL sets no sslmode, which pkiplane reads as verify-full)" };
            return Err(config_err(&format!(
                "sslmode={}{assumed} needs sslrootcert=PATH (the PEM bundle of the CA that issued the server's \
                 certificate) or sslrootcert=system; on a network only the CA service reaches, sslmode=disable \
                 turns TLS off",
                self.mode.name()
            )));
        }
        Ok(())
    }

    /// The mode tokio-postgres negotiates with: verification is the connector's part.
    pub fn negotiation(&self) -> SslMode {
        match self.mode {
            TlsMode::Disable => SslMode::Disable,
            TlsMode::Prefer => SslMode::Prefer,
            TlsMode::Require | TlsMode::VerifyCa | TlsMode::VerifyFull => SslMode::Require,
        }
    }

    pub fn mode(&self) -> TlsMode {
        self.mode
    }

    /// The connector for the pool: loads the files now, so a missing or unreadable one
    /// fails the start and not the first connection.
    pub fn connector(&self) -> Result<TlsConnector, StoreError> {
        let stamp = self.stamp();
        let config = self.client_config()?;
        Ok(TlsConnector {
            settings: Arc::new(self.clone()),
            current: Arc::new(Mutex::new((stamp, MakeRustlsConnect::new(config)))),
        })
    }

    fn files(&self) -> impl Iterator<Item = &Path> {
        let roots = match &self.roots {
            Some(Roots::File(path)) => Some(path.as_path()),
            _ => None,
        };
        roots.into_iter().chain(self.client_cert.as_deref()).chain(self.client_key.as_deref())
    }

    /// Modification times of the files, to notice a rotation.
    fn stamp(&self) -> Vec<Option<SystemTime>> {
        self.files().map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok()).collect()
    }

    fn client_config(&self) -> Result<ClientConfig, StoreError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier: Arc<dyn ServerCertVerifier> = match (&self.roots, self.mode) {
            (_, TlsMode::Disable) | (None, _) => Arc::new(Relaxed { provider: provider.clone(), chain: None }),
            (Some(roots), mode) => {
                let full = WebPkiServerVerifier::builder_with_provider(Arc::new(load_roots(roots)?), provider.clone())
                    .build()
                    .map_err(|e| config_err(&format!("sslrootcert: {e}")))?;
                match mode {
                    TlsMode::VerifyFull => full,
                    _ => Arc::new(Relaxed { provider: provider.clone(), chain: Some(full) }),
                }
            }
        };
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| config_err(&format!("TLS versions: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        match (&self.client_cert, &self.client_key) {
            (Some(cert), Some(key)) => {
                let chain = CertificateDer::pem_file_iter(cert)
                    .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| config_err(&format!("sslcert {}: {e}", cert.display())))?;
                if chain.is_empty() {
                    return Err(config_err(&format!("sslcert {}: no PEM certificate in it", cert.display())));
                }
                // The error names the file only: never the key's bytes.
                let key_der = PrivateKeyDer::from_pem_file(key)
                    .map_err(|e| config_err(&format!("sslkey {}: {}", key.display(), describe_pem_error(&e))))?;
                builder
                    .with_client_auth_cert(chain, key_der)
                    .map_err(|e| config_err(&format!("sslcert/sslkey: the key does not fit the certificate: {e}")))
            }
            _ => Ok(builder.with_no_client_auth()),
        }
    }
}

fn load_roots(roots: &Roots) -> Result<RootCertStore, StoreError> {
    let mut store = RootCertStore::empty();
    match roots {
        Roots::File(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| config_err(&format!("sslrootcert {}: {e}", path.display())))?;
            let (added, _) = store.add_parsable_certificates(certs);
            if added == 0 {
                return Err(config_err(&format!("sslrootcert {}: no usable CA certificate in it", path.display())));
            }
        }
        Roots::System => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(config_err(
                    "sslrootcert=system: the platform's trust store has no certificates (a container image \
                     without one? give sslrootcert=PATH, or set SSL_CERT_FILE)",
                ));
            }
        }
    }
    Ok(store)
}

fn describe_pem_error(e: &rustls::pki_types::pem::Error) -> String {
    match e {
        rustls::pki_types::pem::Error::NoItemsFound => {
            "no unencrypted PEM private key in it (PKCS#8, SEC1 or PKCS#1; encrypted keys are not supported)".to_owned()
        }
        rustls::pki_types::pem::Error::Io(io) => io.to_string(),
        _ => "not a readable PEM private key".to_owned(),
    }
}

fn non_empty_path(key: &str, value: &str) -> Result<PathBuf, StoreError> {
    if value.is_empty() {
        return Err(config_err(&format!("{key} is empty")));
    }
    Ok(PathBuf::from(value))
}

fn config_err(message: &str) -> StoreError {
    StoreError::unavailable(format!("the PostgreSQL URL's TLS settings: {message}"))
}

/// The pool's TLS connector: rustls with the settings' verification, rebuilt when the
/// files change.
#[derive(Clone)]
pub struct TlsConnector {
    settings: Arc<TlsSettings>,
    current: Arc<Mutex<(Vec<Option<SystemTime>>, MakeRustlsConnect)>>,
}

impl std::fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConnector").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl<S> MakeTlsConnect<S> for TlsConnector
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    type Stream = <MakeRustlsConnect as MakeTlsConnect<S>>::Stream;
    type TlsConnect = <MakeRustlsConnect as MakeTlsConnect<S>>::TlsConnect;
    type Error = <MakeRustlsConnect as MakeTlsConnect<S>>::Error;

    fn make_tls_connect(&mut self, domain: &str) -> Result<Self::TlsConnect, Self::Error> {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        let stamp = self.settings.stamp();
        if stamp != current.0 {
            match self.settings.client_config() {
                Ok(config) => {
                    tracing::info!("PostgreSQL TLS files changed: new connections use them");
                    *current = (stamp, MakeRustlsConnect::new(config));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "PostgreSQL TLS files changed but do not load: keeping the last good ones");
                    current.0 = stamp;
                }
            }
        }
        MakeTlsConnect::<S>::make_tls_connect(&mut current.1, domain)
    }
}

/// Every mode short of `verify-full`: `prefer`/`require` without `sslrootcert` check no
/// certificate (encryption against eavesdroppers only, libpq's behaviour); `verify-ca`
/// (and `prefer`/`require` with `sslrootcert`) check the chain but not the name: webpki
/// checks the name last, so a name mismatch means everything else passed. Handshake
/// signatures are always checked against the presented certificate's key.
#[derive(Debug)]
struct Relaxed {
    provider: Arc<CryptoProvider>,
    chain: Option<Arc<WebPkiServerVerifier>>,
}

impl ServerCertVerifier for Relaxed {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else { return Ok(ServerCertVerified::assertion()) };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> Result<(String, TlsSettings), String> {
        TlsSettings::from_url_and_env(url, |_| None).map_err(|e| e.to_string())
    }

    #[test]
    fn the_environment_fills_in_what_the_url_leaves_out() {
        let env = |name: &str| match name {
            "PGSSLMODE" => Some("verify-ca".to_owned()),
            "PGSSLROOTCERT" => Some("/etc/db/ca.crt".to_owned()),
            "PGSSLCERT" => Some("/etc/db/tls.crt".to_owned()),
            "PGSSLKEY" => Some("/etc/db/tls.key".to_owned()),
            _ => None,
        };
        let (_, s) = TlsSettings::from_url_and_env("postgres://db/x", env).unwrap();
        assert_eq!((s.mode(), s.roots.clone()), (TlsMode::VerifyCa, Some(Roots::File("/etc/db/ca.crt".into()))));
        assert_eq!(s.client_key.as_deref(), Some(Path::new("/etc/db/tls.key")));
        let (_, s) = TlsSettings::from_url_and_env("postgres://db/x?sslmode=disable&sslrootcert=%2Fa", env).unwrap();
        assert_eq!((s.mode(), s.roots), (TlsMode::Disable, Some(Roots::File("/a".into()))));
        let err = TlsSettings::from_url_and_env("postgres://db/x", |n| (n == "PGSSLMODE").then(|| "on".to_owned()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("PGSSLMODE: sslmode=on is not one of"), "{err}");
        assert_eq!(err.matches("store unavailable").count(), 1, "{err}");
    }

    #[test]
    fn no_sslmode_is_verify_full_and_needs_a_root() {
        let err = parse("postgres://u:p@db/x").unwrap_err();
        assert!(err.contains("reads as verify-full") && err.contains("sslrootcert"), "{err}");
        let (rest, s) = parse("postgres://u:p@db/x?sslrootcert=%2Fca.pem&application_name=a").unwrap();
        assert_eq!(rest, "postgres://u:p@db/x?application_name=a");
        assert_eq!(s.mode(), TlsMode::VerifyFull);
        assert_eq!(s.roots, Some(Roots::File("/ca.pem".into())));
        assert_eq!(s.negotiation(), SslMode::Require);
    }

    #[test]
    fn modes_map_to_negotiation_and_the_rest_of_the_url_is_kept() {
        let (rest, s) = parse("postgres://u:p@db/x?options=-c%20a%3Db&sslmode=disable").unwrap();
        assert_eq!(rest, "postgres://u:p@db/x?options=-c%20a%3Db");
        assert_eq!((s.mode(), s.negotiation()), (TlsMode::Disable, SslMode::Disable));
        let (_, s) = parse("postgres://db/x?sslmode=prefer").unwrap();
        assert_eq!(s.negotiation(), SslMode::Prefer);
        let (_, s) = parse("postgres://db/x?sslmode=verify-ca&sslrootcert=system").unwrap();
        assert_eq!((s.mode(), s.roots), (TlsMode::VerifyCa, Some(Roots::System)));
    }

    #[test]
    fn unsupported_and_inconsistent_settings_are_refused_by_name() {
        for (url, expected) in [
            ("postgres://db/x?sslmode=allow", "sslmode=allow"),
            ("postgres://db/x?sslmode=verify", "sslmode=verify is not one of"),
            ("postgres://db/x?sslmode=require&sslpassword=x", "sslpassword is not supported"),
            ("postgres://db/x?sslmode=require&sslcrl=/c", "sslcrl is not supported"),
            ("postgres://db/x?sslmode=require&sslnegotiation=direct", "sslnegotiation is not supported"),
            ("postgres://db/x?sslmode=require&sslcert=/c", "sslcert needs sslkey"),
            ("postgres://db/x?sslmode=require&sslkey=/k", "sslkey needs sslcert"),
            ("postgres://db/x?sslmode=verify-ca", "sslmode=verify-ca needs sslrootcert"),
            ("postgres://db/x?sslmode=require&sslrootcert=", "sslrootcert is empty"),
        ] {
            let err = parse(url).unwrap_err();
            assert!(err.contains(expected), "{url}: {err}");
        }
    }

    #[test]
    fn missing_files_fail_when_the_connector_is_built() {
        let (_, s) = parse("postgres://db/x?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem").unwrap();
        let err = s.connector().unwrap_err().to_string();
        assert!(err.contains("sslrootcert /nonexistent/ca.pem"), "{err}");
    }
}
