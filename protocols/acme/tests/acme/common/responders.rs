//! Challenge responders a client would run: an http-01 web server, a tls-alpn-01 TLS
//! server (RFC 8737 certificate made with rcgen) and a DNS responder for dns-01.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::routing::get;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;

type Tokens = Arc<Mutex<HashMap<String, String>>>;

#[derive(Debug, Default)]
struct SniCerts(Mutex<HashMap<String, Arc<CertifiedKey>>>);

impl ResolvesServerCert for SniCerts {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let name = hello.server_name()?.to_ascii_lowercase();
        self.0.lock().unwrap().get(&name).cloned()
    }
}

pub struct Responders {
    pub http_port: u16,
    pub tls_port: u16,
    pub dns_addr: SocketAddr,
    http_tokens: Tokens,
    tls_certs: Arc<SniCerts>,
    pub dns: super::dns::Records,
}

impl Responders {
    pub async fn start() -> Self {
        // http-01
        let http_tokens: Tokens = Arc::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http_port = listener.local_addr().unwrap().port();
        let app = axum::Router::new()
            .route(
                "/.well-known/acme-challenge/{token}",
                get(|State(t): State<Tokens>, Path(token): Path<String>| async move {
                    match t.lock().unwrap().get(&token) {
                        Some(v) => (axum::http::StatusCode::OK, v.clone()),
                        None => (axum::http::StatusCode::NOT_FOUND, "no such token".to_owned()),
                    }
                }),
            )
            .with_state(http_tokens.clone());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });

        // tls-alpn-01
        let tls_certs = Arc::new(SniCerts::default());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_cert_resolver(tls_certs.clone());
        config.alpn_protocols = vec![b"acme-tls/1".to_vec()];
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let tls_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let tls_port = tls_listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = tls_listener.accept().await else { return };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    // The validator only handshakes; nothing is exchanged after.
                    let _ = acceptor.accept(tcp).await;
                });
            }
        });

        let (dns_addr, dns) = super::dns::start().await;
        Self { http_port, tls_port, dns_addr, http_tokens, tls_certs, dns }
    }

    pub fn http01(&self, token: &str, key_authorization: &str) {
        self.http_tokens.lock().unwrap().insert(token.to_owned(), key_authorization.to_owned());
    }

    /// Presents an RFC 8737 validation certificate for `name`.
    pub fn tls_alpn01(&self, name: &str, key_authorization: &str) {
        let digest = ring::digest::digest(&ring::digest::SHA256, key_authorization.as_bytes());
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap();
        params.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(digest.as_ref())];
        let cert = params.self_signed(&key).unwrap();
        let signing = rustls::crypto::ring::sign::any_supported_type(&rustls::pki_types::PrivateKeyDer::Pkcs8(
            key.serialize_der().into(),
        ))
        .unwrap();
        let certified = CertifiedKey::new(vec![cert.der().clone()], signing);
        self.tls_certs.0.lock().unwrap().insert(name.to_ascii_lowercase(), Arc::new(certified));
    }

    pub fn dns01(&self, name: &str, value: &str) {
        self.dns.lock().unwrap().txt.entry(name.to_ascii_lowercase()).or_default().push(value.to_owned());
    }

    /// An A or AAAA record for `name` in the DNS responder.
    pub fn address(&self, name: &str, ip: std::net::IpAddr) {
        self.dns.lock().unwrap().addresses.entry(name.to_ascii_lowercase()).or_default().push(ip);
    }
}
