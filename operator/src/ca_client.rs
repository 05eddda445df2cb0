//! The CA service's internal API as the operator uses it: HTTPS with mutual TLS (client
//! certificate `pkiplane-operator-tls` from the internal CA), JSON bodies. Controllers see
//! only the [`CaApi`] trait, so tests use a fake.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use pkiplane_core::inventory::InventoryCounts;
use pkiplane_core::x509::pem;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;
use zeroize::Zeroizing;

/// Largest response body accepted from the CA service.
const MAX_BODY: usize = 1 << 20;
/// Time limit of one request, connection included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("no client identity yet (the internal CA has not issued pkiplane-operator-tls)")]
    NoIdentity,
    #[error("bad CA URL `{0}`")]
    BadUrl(String),
    #[error("TLS setup: {0}")]
    Tls(String),
    #[error("connecting to {url}: {message}")]
    Connect { url: String, message: String },
    #[error("{method} {path}: HTTP {status}: {body}")]
    Status { method: &'static str, path: String, status: u16, body: String },
    #[error("{path}: invalid response: {message}")]
    Decode { path: String, message: String },
    #[error("{path}: timed out")]
    Timeout { path: String },
}

/// An Issuer as the CA service reports it (`GET /v1/issuers`).
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CaIssuer {
    pub namespace: String,
    pub name: String,
    pub ready: bool,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub certificate_pem: Option<String>,
    /// Above the CA up to the root, nearest first.
    #[serde(default)]
    pub chain_pem: Option<String>,
    #[serde(default)]
    pub fingerprint: Option<String>,
    #[serde(default)]
    pub serial: Option<String>,
    /// RFC 3339.
    #[serde(default)]
    pub not_before: Option<String>,
    /// RFC 3339.
    #[serde(default)]
    pub not_after: Option<String>,
    /// The staged next CA certificate (PEM) during a key rollover.
    #[serde(default)]
    pub next_certificate_pem: Option<String>,
}

/// Inventory counts (`GET /v1/summary`). Keys: `ns/name`; `ns/name|PROTOCOL` for
/// profileProtocols; `endpointNs/endpointName|profileNs/profileName` for endpointProfiles.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Summary {
    pub issuers: Vec<InventoryCounts>,
    pub profiles: Vec<InventoryCounts>,
    pub endpoints: Vec<InventoryCounts>,
    pub profile_protocols: Vec<InventoryCounts>,
    pub endpoint_profiles: Vec<InventoryCounts>,
}

impl Summary {
    fn find<'a>(list: &'a [InventoryCounts], key: &str) -> Option<&'a InventoryCounts> {
        list.iter().find(|c| c.key == key)
    }
    pub fn issuer(&self, ns: &str, name: &str) -> Option<&InventoryCounts> {
        Self::find(&self.issuers, &format!("{ns}/{name}"))
    }
    pub fn profile(&self, ns: &str, name: &str) -> Option<&InventoryCounts> {
        Self::find(&self.profiles, &format!("{ns}/{name}"))
    }
    pub fn endpoint(&self, ns: &str, name: &str) -> Option<&InventoryCounts> {
        Self::find(&self.endpoints, &format!("{ns}/{name}"))
    }
    pub fn endpoint_profile(&self, ns: &str, endpoint: &str, profile: &str) -> Option<&InventoryCounts> {
        Self::find(&self.endpoint_profiles, &format!("{ns}/{endpoint}|{ns}/{profile}"))
    }
    /// The per-protocol counts of a profile, by protocol name.
    pub fn profile_protocols(&self, ns: &str, name: &str) -> Vec<(String, &InventoryCounts)> {
        let prefix = format!("{ns}/{name}|");
        self.profile_protocols.iter().filter_map(|c| c.key.strip_prefix(&prefix).map(|p| (p.to_string(), c))).collect()
    }
}

/// `{namespace, name}` in request bodies.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespacedName {
    pub namespace: String,
    pub name: String,
}

/// What an internal certificate is for; the CA builds the profile from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CertificateRole {
    ServingTls,
    ScepRa,
    CmpProtection,
    EstSigner,
}

/// `POST /v1/internal-certificates`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InternalCertificateRequest {
    pub role: CertificateRole,
    pub endpoint: NamespacedName,
    pub issuer: Option<NamespacedName>,
    pub csr_pem: String,
    pub dns_names: Vec<String>,
    pub ip_addresses: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InternalCertificate {
    pub certificate_pem: String,
    #[serde(default)]
    pub chain_pem: String,
}

/// The calls the operator makes to the CA service.
#[async_trait::async_trait]
pub trait CaApi: Send + Sync {
    async fn issuers(&self) -> Result<Vec<CaIssuer>, CaError>;
    async fn summary(&self, expiring_within: Duration) -> Result<Summary, CaError>;
    async fn internal_certificate(&self, request: &InternalCertificateRequest) -> Result<InternalCertificate, CaError>;
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

/// The HTTPS client. The identity is swapped in by the internal CA loop whenever
/// `pkiplane-operator-tls` is (re)issued.
#[derive(Clone)]
pub struct HttpsCaClient {
    base: Uri,
    identity: Arc<RwLock<Option<ClientIdentity>>>,
}

impl HttpsCaClient {
    pub fn new(base_url: &str) -> Result<Self, CaError> {
        let base: Uri = base_url.trim_end_matches('/').parse().map_err(|_| CaError::BadUrl(base_url.into()))?;
        if base.scheme_str() != Some("https") || base.host().is_none() {
            return Err(CaError::BadUrl(base_url.into()));
        }
        Ok(Self { base, identity: Arc::default() })
    }

    fn tls_config(&self) -> Result<rustls::ClientConfig, CaError> {
        let identity = self.identity.read().unwrap_or_else(|e| e.into_inner()).clone().ok_or(CaError::NoIdentity)?;
        let tls = |e: String| CaError::Tls(e);
        let mut roots = rustls::RootCertStore::empty();
        for der in
            pem::decode_chain(identity.ca_bundle_pem.as_bytes(), "CERTIFICATE").map_err(|e| tls(e.to_string()))?
        {
            roots.add(CertificateDer::from(der)).map_err(|e| tls(e.to_string()))?;
        }
        let chain = pem::decode_chain(identity.certificate_pem.as_bytes(), "CERTIFICATE")
            .map_err(|e| tls(e.to_string()))?
            .into_iter()
            .map(CertificateDer::from)
            .collect();
        let key = Zeroizing::new(
            pem::decode_one(identity.key_pem.as_bytes(), "PRIVATE KEY").map_err(|e| tls(e.to_string()))?,
        );
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.to_vec()));
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| tls(e.to_string()))?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(|e| tls(e.to_string()))
    }

    async fn call(&self, method: Method, path_and_query: &str, body: Option<Vec<u8>>) -> Result<Bytes, CaError> {
        let path = path_and_query.to_string();
        match tokio::time::timeout(REQUEST_TIMEOUT, self.call_inner(method, path_and_query, body)).await {
            Ok(result) => result,
            Err(_) => Err(CaError::Timeout { path }),
        }
    }

    async fn call_inner(&self, method: Method, path_and_query: &str, body: Option<Vec<u8>>) -> Result<Bytes, CaError> {
        let host = self.base.host().unwrap_or_default().trim_start_matches('[').trim_end_matches(']').to_string();
        let port = self.base.port_u16().unwrap_or(443);
        let url = format!("https://{host}:{port}");
        let connect = |message: String| CaError::Connect { url: url.clone(), message };
        let server_name = ServerName::try_from(host.clone()).map_err(|e| CaError::BadUrl(e.to_string()))?;
        let connector = tokio_rustls::TlsConnector::from(Arc::new(self.tls_config()?));
        let tcp = TcpStream::connect((host.as_str(), port)).await.map_err(|e| connect(e.to_string()))?;
        let tls = connector.connect(server_name, tcp).await.map_err(|e| connect(e.to_string()))?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.map_err(|e| connect(e.to_string()))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let prefix = self.base.path().trim_end_matches('/');
        let method_name: &'static str = if method == Method::POST { "POST" } else { "GET" };
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{prefix}{path_and_query}"))
            .header(hyper::header::HOST, format!("{host}:{port}"))
            .header(hyper::header::ACCEPT, "application/json");
        if body.is_some() {
            request = request.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| CaError::BadUrl(e.to_string()))?;
        let response = sender.send_request(request).await.map_err(|e| connect(e.to_string()))?;
        let status = response.status();
        let bytes = Limited::new(response.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| CaError::Decode { path: path_and_query.into(), message: e.to_string() })?
            .to_bytes();
        if !status.is_success() {
            let text = String::from_utf8_lossy(&bytes[..bytes.len().min(512)]).into_owned();
            return Err(CaError::Status {
                method: method_name,
                path: path_and_query.into(),
                status: status.as_u16(),
                body: text,
            });
        }
        Ok(bytes)
    }
}

fn decode<T: serde::de::DeserializeOwned>(path: &str, bytes: &[u8]) -> Result<T, CaError> {
    serde_json::from_slice(bytes).map_err(|e| CaError::Decode { path: path.into(), message: e.to_string() })
}

#[async_trait::async_trait]
impl CaApi for HttpsCaClient {
    async fn issuers(&self) -> Result<Vec<CaIssuer>, CaError> {
        let bytes = self.call(Method::GET, "/v1/issuers", None).await?;
        decode("/v1/issuers", &bytes)
    }

    async fn summary(&self, expiring_within: Duration) -> Result<Summary, CaError> {
        let path = format!("/v1/summary?expiringWithinSeconds={}", expiring_within.as_secs());
        let bytes = self.call(Method::GET, &path, None).await?;
        decode("/v1/summary", &bytes)
    }

    async fn internal_certificate(&self, request: &InternalCertificateRequest) -> Result<InternalCertificate, CaError> {
        let body = serde_json::to_vec(request)
            .map_err(|e| CaError::Decode { path: "request".into(), message: e.to_string() })?;
        let bytes = self.call(Method::POST, "/v1/internal-certificates", Some(body)).await?;
        decode("/v1/internal-certificates", &bytes)
    }

    fn set_identity(&self, identity: ClientIdentity) {
        *self.identity.write().unwrap_or_else(|e| e.into_inner()) = Some(identity);
    }
}

#[cfg(test)]
mod tests {
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
            role: CertificateRole::ScepRa,
            endpoint: NamespacedName { namespace: "pki".into(), name: "scep".into() },
            issuer: None,
            csr_pem: "x".into(),
            dns_names: vec![],
            ip_addresses: vec![],
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
