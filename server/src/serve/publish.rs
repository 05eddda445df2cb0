//! Plain-HTTP publication of CA certificates and CRLs (RFC 5280 section 4.2.2.1 and
//! 4.2.1.13: AIA caIssuers and CRL distribution points are fetched over HTTP).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use pkiplane_core::issuance::Ca;
use pkiplane_core::model::ObjectRef;
use pkiplane_core::x509::pem;
use tokio::sync::Mutex;

/// A CRL is re-signed when the revoked set changes, or when half its lifetime has passed.
struct CachedCrl {
    der: Vec<u8>,
    serials: Vec<String>,
    made: SystemTime,
    /// The CA key that signed it: a CA rollover makes the cached CRL stale.
    key_id: Vec<u8>,
}

#[derive(Clone)]
pub struct Publisher {
    ca: Arc<Ca>,
    crls: Arc<Mutex<HashMap<ObjectRef, CachedCrl>>>,
}

impl Publisher {
    pub fn new(ca: Arc<Ca>) -> Self {
        Self { ca, crls: Arc::default() }
    }

    pub fn router(self) -> Router {
        Router::new()
            .route("/healthz", get(|| async { "ok\n" }))
            .route("/readyz", get(|| async { "ready\n" }))
            .route("/issuers/", get(index))
            .route("/issuers/{ns}/{name}/{file}", get(file))
            .with_state(self)
    }

    /// The current CRL of an issuer (DER).
    pub async fn crl(&self, id: &ObjectRef) -> Result<Vec<u8>, Response> {
        let issuer = self.ca.issuer(id).ok_or_else(|| not_found(id))?;
        let now = SystemTime::now();
        let revoked = self.ca.inventory().revoked_entries(id, now).await.map_err(internal)?;
        let mut serials: Vec<String> = revoked.iter().map(|r| r.serial.clone()).collect();
        serials.sort();
        let mut cache = self.crls.lock().await;
        if let Some(c) = cache.get(id) {
            let fresh = now.duration_since(c.made).unwrap_or(Duration::MAX) < issuer.crl_validity / 2;
            if fresh && c.serials == serials && c.key_id == issuer.key_id {
                return Ok(c.der.clone());
            }
        }
        let der = self.ca.generate_crl(id).await.map_err(internal)?;
        cache.insert(id.clone(), CachedCrl { der: der.clone(), serials, made: now, key_id: issuer.key_id.clone() });
        Ok(der)
    }
}

fn not_found(id: &ObjectRef) -> Response {
    (StatusCode::NOT_FOUND, format!("no Issuer {id}\n")).into_response()
}

fn internal(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "publication failed");
    (StatusCode::SERVICE_UNAVAILABLE, "the CRL could not be produced; try again\n").into_response()
}

async fn index(State(p): State<Publisher>) -> String {
    let mut out = String::new();
    for i in p.ca.issuers() {
        out.push_str(&format!(
            "{id}: /issuers/{id}/ca.crt /issuers/{id}/ca.pem /issuers/{id}/chain.pem /issuers/{id}/crl{next} \
             /issuers/{id}/ocsp /issuers/{id}/keys\n",
            id = i.id,
            next = if i.next.is_some() { format!(" /issuers/{}/next.pem", i.id) } else { String::new() }
        ));
    }
    out
}

async fn file(State(p): State<Publisher>, Path((ns, name, file)): Path<(String, String, String)>) -> Response {
    let id = ObjectRef::new(ns, name);
    let Some(issuer) = p.ca.issuer(&id) else { return not_found(&id) };
    match file.as_str() {
        "ca.crt" => ([(header::CONTENT_TYPE, "application/pkix-cert")], issuer.cert.der.clone()).into_response(),
        "ca.pem" => ([(header::CONTENT_TYPE, "application/x-pem-file")], issuer.certificate_pem()).into_response(),
        "chain.pem" => ([(header::CONTENT_TYPE, "application/x-pem-file")], issuer.chain_pem()).into_response(),
        "crl" | "crl.der" => match p.crl(&id).await {
            Ok(der) => ([(header::CONTENT_TYPE, "application/pkix-crl")], der).into_response(),
            Err(r) => r,
        },
        "crl.pem" => match p.crl(&id).await {
            Ok(der) => {
                ([(header::CONTENT_TYPE, "application/x-pem-file")], pem::encode("X509 CRL", &der)).into_response()
            }
            Err(r) => r,
        },
        // The staged next CA (key rollover) and, for a root, its link certificates.
        "next.pem" => match &issuer.next {
            Some(next) => ([(header::CONTENT_TYPE, "application/x-pem-file")], next.announcement_pem()).into_response(),
            None => (StatusCode::NOT_FOUND, format!("no CA rollover is staged for Issuer {id}\n")).into_response(),
        },
        _ => (StatusCode::NOT_FOUND, "expected ca.crt, ca.pem, chain.pem, crl, crl.pem or next.pem\n").into_response(),
    }
}
