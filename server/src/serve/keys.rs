//! Publication per CA key: after a CA rollover the retired key goes on signing a CRL for
//! the certificates it issued until the last of them expires (see
//! `pkiplane_core::issuer::retired`). Every key of an Issuer, current or retired, has
//! its own URLs: `/issuers/<ns>/<name>/keys/<key-id>/{ca.crt,ca.pem,crl,crl.pem}`, where
//! `<key-id>` is the key identifier in lowercase hex (the authorityKeyIdentifier of what
//! the key signed); `/issuers/<ns>/<name>/keys` lists them.
//!
//! The Issuer's own CRL URL (`/issuers/<ns>/<name>/crl`, what profiles put into CRL
//! distribution points before and after a rollover) serves the current key's CRL, which
//! lists the revoked certificates of every key of the Issuer.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use pkiplane_core::issuance::Ca;
use pkiplane_core::issuer::CaKey;
use pkiplane_core::model::ObjectRef;
use pkiplane_core::x509::pem;
use tokio::sync::Mutex;

use super::publish::Publisher;

/// A retired key's CRL, re-signed when the revoked set changes or half its life passed.
struct CachedCrl {
    der: Vec<u8>,
    serials: Vec<String>,
    made: SystemTime,
}

/// Retired keys' CRLs, by Issuer and key id.
type CrlCache = HashMap<(ObjectRef, Vec<u8>), CachedCrl>;

#[derive(Clone)]
pub struct KeyPublisher {
    ca: Arc<Ca>,
    publisher: Publisher,
    crls: Arc<Mutex<CrlCache>>,
}

impl KeyPublisher {
    pub fn new(ca: Arc<Ca>, publisher: Publisher) -> Self {
        Self { ca, publisher, crls: Arc::default() }
    }

    pub fn router(self) -> Router {
        Router::new()
            .route("/issuers/{ns}/{name}/keys", get(list))
            .route("/issuers/{ns}/{name}/keys/{key}/{file}", get(file))
            .with_state(self)
    }

    /// The CRL signed by `key` of `issuer`: the Issuer's own CRL for the current key.
    async fn crl(&self, issuer: &ObjectRef, key: &CaKey) -> Result<Vec<u8>, Response> {
        if key.is_current() {
            return self.publisher.crl(issuer).await;
        }
        let validity = self.ca.issuer(issuer).map(|i| i.crl_validity).unwrap_or(Duration::from_secs(86_400));
        let now = SystemTime::now();
        let revoked = self.ca.inventory().revoked_entries(issuer, now).await.map_err(unavailable)?;
        let mut serials: Vec<String> = revoked.into_iter().map(|r| r.serial).collect();
        serials.sort();
        let cache_key = (issuer.clone(), key.key_id().to_vec());
        let mut cache = self.crls.lock().await;
        if let Some(c) = cache.get(&cache_key)
            && c.serials == serials
            && now.duration_since(c.made).unwrap_or(Duration::MAX) < validity / 2
        {
            return Ok(c.der.clone());
        }
        let der = self.ca.generate_key_crl(issuer, key.key_id()).await.map_err(unavailable)?;
        cache.insert(cache_key, CachedCrl { der: der.clone(), serials, made: now });
        Ok(der)
    }
}

fn unavailable(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "publication failed");
    (StatusCode::SERVICE_UNAVAILABLE, "the CRL could not be produced; try again\n").into_response()
}

async fn list(State(p): State<KeyPublisher>, Path((ns, name)): Path<(String, String)>) -> Response {
    let id = ObjectRef::new(ns, name);
    let keys = p.ca.keys(&id);
    if keys.is_empty() {
        return (StatusCode::NOT_FOUND, format!("no Issuer {id}\n")).into_response();
    }
    let mut out = String::new();
    for k in keys {
        let cert = k.cert();
        out.push_str(&format!(
            "{key}: {state}, certificate serial {serial}, not after {not_after}: /issuers/{id}/keys/{key}/ca.crt \
             /issuers/{id}/keys/{key}/crl\n",
            key = hex::encode(k.key_id()),
            state = if k.is_current() { "current" } else { "retired" },
            serial = cert.serial_hex,
            not_after = httpdate::fmt_http_date(cert.not_after),
        ));
    }
    out.into_response()
}

async fn file(
    State(p): State<KeyPublisher>,
    Path((ns, name, key, file)): Path<(String, String, String, String)>,
) -> Response {
    let id = ObjectRef::new(ns, name);
    let Some(key) = p.ca.keys(&id).into_iter().find(|k| hex::encode(k.key_id()).eq_ignore_ascii_case(&key)) else {
        return (StatusCode::NOT_FOUND, format!("Issuer {id} has no key {key} (see /issuers/{id}/keys)\n"))
            .into_response();
    };
    match file.as_str() {
        "ca.crt" => ([(header::CONTENT_TYPE, "application/pkix-cert")], key.cert().der.clone()).into_response(),
        "ca.pem" => ([(header::CONTENT_TYPE, "application/x-pem-file")], pem::encode("CERTIFICATE", &key.cert().der))
            .into_response(),
        "crl" | "crl.der" => match p.crl(&id, &key).await {
            Ok(der) => ([(header::CONTENT_TYPE, "application/pkix-crl")], der).into_response(),
            Err(r) => r,
        },
        "crl.pem" => match p.crl(&id, &key).await {
            Ok(der) => {
                ([(header::CONTENT_TYPE, "application/x-pem-file")], pem::encode("X509 CRL", &der)).into_response()
            }
            Err(r) => r,
        },
        _ => (StatusCode::NOT_FOUND, "expected ca.crt, ca.pem, crl or crl.pem\n").into_response(),
    }
}
