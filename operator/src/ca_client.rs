//! The CA service's internal API as the operator uses it: the caservice crate's wire types
//! and client (HTTPS with mutual TLS, client certificate `pkiplane-operator-tls` from the
//! internal CA). Controllers see only the [`CaServiceApi`] trait, so tests use a fake.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use hyper::{Method, Uri};
use pkiplane_caservice::client::{ClientError, Transport};
use pkiplane_caservice::tls::Reloading;
pub use pkiplane_caservice::wire::{InternalCertificateRequest, InternalCertificateResponse, IssuerStatus, Summary};
use pkiplane_core::x509::pem;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde::Serialize;
use serde::de::DeserializeOwned;
use zeroize::Zeroizing;

#[derive(Debug, thiserror::Error)]
pub enum CaServiceError {
    #[error("no client identity yet (the internal CA has not issued pkiplane-operator-tls)")]
    NoIdentity,
    #[error("bad CA URL `{0}`")]
    BadUrl(String),
    #[error("TLS setup: {0}")]
    Tls(String),
    #[error("calling the CA service at {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: ClientError,
    },
    #[error("{method} {path}: HTTP {status}: {body}")]
    Status { method: &'static str, path: String, status: u16, body: String },
    #[error("{path}: invalid response: {source}")]
    Decode {
        path: String,
        #[source]
        source: ClientError,
    },
    #[error("{path}: timed out")]
    Timeout { path: String },
}

/// The calls the operator makes to the CA service.
#[async_trait::async_trait]
pub trait CaServiceApi: Send + Sync {
    async fn issuers(&self) -> Result<Vec<IssuerStatus>, CaServiceError>;
    async fn summary(&self, expiring_within: Duration) -> Result<Summary, CaServiceError>;
    async fn internal_certificate(
        &self,
        request: &InternalCertificateRequest,
    ) -> Result<InternalCertificateResponse, CaServiceError>;
    /// Hands the client its (re)issued mTLS identity; fakes ignore it.
    fn set_identity(&self, _identity: ClientIdentity) {}
}

/// The operator's mTLS identity: leaf certificate, its key, and the internal CA bundle
/// that must have signed the CA service's serving certificate.
#[derive(Clone)]
pub struct ClientIdentity {
    pub certificate_pem: String,
    pub key_pem: Zeroizing<String>,
    pub ca_bundle_pem: String,
}

impl std::fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientIdentity").field("key_pem", &"<redacted>").finish_non_exhaustive()
    }
}

/// The HTTPS client: the CA service's own client ([`Transport`], persistent pooled
/// connections), rebuilt with each identity the internal CA loop hands over whenever
/// `pkiplane-operator-tls` is (re)issued.
#[derive(Clone)]
pub struct HttpsCaClient {
    url: String,
    transport: Arc<RwLock<Option<Arc<Transport>>>>,
}

impl HttpsCaClient {
    pub fn new(base_url: &str) -> Result<Self, CaServiceError> {
        let url = base_url.trim_end_matches('/');
        let uri: Uri = url.parse().map_err(|_| CaServiceError::BadUrl(base_url.into()))?;
        if uri.scheme_str() != Some("https") || uri.host().is_none() {
            return Err(CaServiceError::BadUrl(base_url.into()));
        }
        Ok(Self { url: url.to_owned(), transport: Arc::default() })
    }

    fn transport(&self) -> Result<Arc<Transport>, CaServiceError> {
        self.transport.read().unwrap_or_else(|e| e.into_inner()).clone().ok_or(CaServiceError::NoIdentity)
    }

    async fn call<B: Serialize, R: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<R, CaServiceError> {
        let name: &'static str = if method == Method::POST { "POST" } else { "GET" };
        self.transport()?.call(method, path, body).await.map_err(|e| match e {
            ClientError::TimedOut => CaServiceError::Timeout { path: path.into() },
            ClientError::Status { status, body } => {
                CaServiceError::Status { method: name, path: path.into(), status: status.as_u16(), body: body.message }
            }
            source @ (ClientError::Decode(_) | ClientError::TooLarge(_)) => {
                CaServiceError::Decode { path: path.into(), source }
            }
            source => CaServiceError::Connect { url: self.url.clone(), source },
        })
    }
}

/// The rustls client configuration of an identity.
fn tls_config(identity: &ClientIdentity) -> Result<rustls::ClientConfig, CaServiceError> {
    let tls = |e: String| CaServiceError::Tls(e);
    let mut roots = rustls::RootCertStore::empty();
    for der in pem::decode_chain(identity.ca_bundle_pem.as_bytes(), "CERTIFICATE").map_err(|e| tls(e.to_string()))? {
        roots.add(CertificateDer::from(der)).map_err(|e| tls(e.to_string()))?;
    }
    let chain = pem::decode_chain(identity.certificate_pem.as_bytes(), "CERTIFICATE")
        .map_err(|e| tls(e.to_string()))?
        .into_iter()
        .map(CertificateDer::from)
        .collect();
    let key =
        Zeroizing::new(pem::decode_one(identity.key_pem.as_bytes(), "PRIVATE KEY").map_err(|e| tls(e.to_string()))?);
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.to_vec()));
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(|e| tls(e.to_string()))
}

#[async_trait::async_trait]
impl CaServiceApi for HttpsCaClient {
    async fn issuers(&self) -> Result<Vec<IssuerStatus>, CaServiceError> {
        self.call::<(), _>(Method::GET, "/v1/issuers", None).await
    }

    async fn summary(&self, expiring_within: Duration) -> Result<Summary, CaServiceError> {
        let path = format!("/v1/summary?expiringWithinSeconds={}", expiring_within.as_secs());
        self.call::<(), _>(Method::GET, &path, None).await
    }

    async fn internal_certificate(
        &self,
        request: &InternalCertificateRequest,
    ) -> Result<InternalCertificateResponse, CaServiceError> {
        self.call(Method::POST, "/v1/internal-certificates", Some(request)).await
    }

    fn set_identity(&self, identity: ClientIdentity) {
        let transport = tls_config(&identity).and_then(|config| {
            Transport::new(&self.url, Reloading::fixed(Arc::new(config)))
                .map_err(|e| CaServiceError::BadUrl(e.to_string()))
        });
        match transport {
            Ok(t) => *self.transport.write().unwrap_or_else(|e| e.into_inner()) = Some(t),
            Err(e) => {
                tracing::warn!(error = %e, "the operator's CA client identity does not load; keeping the previous")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use pkiplane_core::ObjectRef;
    use pkiplane_core::service::InternalRole;

    use super::*;

    #[test]
    fn summary_keys_follow_the_contract() {
        let json = r#"{"issuers":[],"profiles":[{"key":"pki/tls","issued":3,"active":2,"expiringSoon":1,"revoked":1,"denied":4,"lastIssuedAt":1700000000}],
            "endpoints":[],"profileProtocols":[{"key":"pki/tls|ACME","issued":2,"active":2,"expiringSoon":0,"revoked":0,"denied":0}],
            "endpointProfiles":[{"key":"pki/acme|pki/tls","issued":2,"active":1,"expiringSoon":0,"revoked":1,"denied":0}]}"#;
        let summary: Summary = serde_json::from_str(json).unwrap();
        assert_eq!(summary.profile("pki", "tls").unwrap().issued, 3);
        assert_eq!(summary.profile_protocols("pki", "tls")[0].0, "ACME");
        assert_eq!(summary.endpoint_profile("pki", "acme", "tls").unwrap().revoked, 1);
    }

    #[test]
    fn request_body_matches_the_contract() {
        let req = InternalCertificateRequest {
            role: InternalRole::ScepRa.as_str().into(),
            endpoint: ObjectRef::new("pki", "scep"),
            issuer: None,
            csr_pem: "x".into(),
            dns_names: vec![],
            ip_addresses: vec![],
            lifetime_seconds: None,
        };
        let v = serde_json::to_value(&req).unwrap();
        assert_eq!(v["role"], "scep-ra");
        assert_eq!(v["csrPem"], "x");
        assert!(v["issuer"].is_null());
        assert_eq!(v["endpoint"]["namespace"], "pki");
    }

    #[test]
    fn only_https_urls_are_accepted() {
        assert!(HttpsCaClient::new("https://127.192.0.10:9443").is_ok());
        assert!(HttpsCaClient::new("http://pkiplane-ca:9443").is_err());
    }
}

/// What the CA service answers in the controllers' tests.
#[cfg(test)]
pub(crate) mod fixtures {
    use pkiplane_core::inventory::InventoryCounts;

    use super::IssuerStatus;

    /// The counts of `key` (an object, or a `|` pair): issued, active, revoked, denied.
    pub fn counts(key: &str, [issued, active, revoked, denied]: [u64; 4]) -> InventoryCounts {
        InventoryCounts { key: key.into(), issued, active, revoked, denied, ..Default::default() }
    }

    /// The Issuer pki/root, ready, valid from 2027-01-01 until `not_after` (RFC 3339).
    pub fn ready_root(not_after: &str) -> IssuerStatus {
        IssuerStatus {
            namespace: "pki".into(),
            name: "root".into(),
            ready: true,
            not_before: Some("2027-01-01T00:00:00Z".into()),
            not_after: Some(not_after.into()),
            ..Default::default()
        }
    }
}
