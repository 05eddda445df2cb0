//! Plain-HTTP publication of CA certificates and CRLs (RFC 5280 section 4.2.2.1 and
//! 4.2.1.13: AIA caIssuers and CRL distribution points are fetched over HTTP).
//!
//! A CRL is re-made when the revoked set changes, after half its lifetime, or after a
//! CA key rollover. When a new one cannot be made (the store refuses the CRL number's
//! write: a full disk), the last good CRL, kept in the store and so across restarts,
//! is served until its nextUpdate: relying parties keep revocation data exactly when
//! the CA is in trouble. Only an expired last CRL, or none, gives 503.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use pkiplane_core::inventory::PublishedCrl;
use pkiplane_core::issuance::Ca;
use pkiplane_core::issuer::Issuer;
use pkiplane_core::model::ObjectRef;
use pkiplane_core::x509::pem;
use tokio::sync::Mutex;

#[derive(Clone)]
pub struct Publisher {
    ca: Arc<Ca>,
    /// The last CRL of each issuer (loaded from the store on first use).
    crls: Arc<Mutex<HashMap<ObjectRef, PublishedCrl>>>,
    /// Coordination with other CA replicas: one of them makes each new CRL.
    once: crate::once::Once,
}

/// How long a replica waits for another that is making the CRL it needs.
const CRL_LEASE_WAIT: Duration = Duration::from_secs(10);

impl Publisher {
    pub fn new(ca: Arc<Ca>, once: crate::once::Once) -> Self {
        Self { ca, crls: Arc::default(), once }
    }

    pub fn router(self) -> Router {
        Router::new()
            .route("/healthz", get(|| async { "ok\n" }))
            .route("/readyz", get(|| async { "ready\n" }))
            .route("/issuers/", get(index))
            .route("/issuers/{ns}/{name}/{file}", get(file))
            .with_state(self)
    }

    /// The last published CRL of `id` in the store, if it can be read.
    async fn stored(&self, id: &ObjectRef) -> Option<PublishedCrl> {
        match self.ca.inventory().last_crl(id).await {
            Ok(kept) => kept,
            Err(e) => {
                tracing::warn!(issuer = %id, error = %e, "could not read the last published CRL");
                None
            }
        }
    }

    /// `crl` if it is still the one to serve at `now`: same key, same revoked set, less
    /// than half its lifetime old, before its nextUpdate.
    fn still_current(
        crl: Option<&PublishedCrl>,
        issuer: &Issuer,
        serials: &[String],
        now: SystemTime,
    ) -> Option<Vec<u8>> {
        let c = crl.filter(|c| c.key_id == issuer.key_id)?;
        let fresh = now.duration_since(c.this_update).unwrap_or(Duration::MAX) < issuer.crl_validity / 2;
        (fresh && now < c.next_update && c.serials == serials).then(|| c.der.clone())
    }

    /// The current CRL of an issuer (DER).
    pub async fn crl(&self, id: &ObjectRef) -> Result<Vec<u8>, Response> {
        let issuer = self.ca.issuer(id).ok_or_else(|| not_found(id))?;
        let now = SystemTime::now();
        let mut cache = self.crls.lock().await;
        if !cache.contains_key(id)
            && let Some(kept) = self.stored(id).await
        {
            cache.insert(id.clone(), kept);
        }
        let revoked = self.ca.inventory().revoked_entries(id, now).await;
        let serials = revoked.as_ref().ok().map(|r| {
            let mut serials: Vec<String> = r.iter().map(|e| e.serial.clone()).collect();
            serials.sort();
            serials
        });
        if let Some(serials) = &serials
            && let Some(der) = Self::still_current(cache.get(id), &issuer, serials, now)
        {
            return Ok(der);
        }
        let made = match &serials {
            // One replica makes the new CRL; the others find it in the store.
            Some(serials) => {
                let make = async {
                    if let Some(kept) = self.stored(id).await
                        && Self::still_current(Some(&kept), &issuer, serials, now).is_some()
                    {
                        return Ok(kept);
                    }
                    self.ca.publish_crl(id).await.map_err(|e| e.to_string())
                };
                match self.once.run(&format!("crl:{id}"), CRL_LEASE_WAIT, make).await {
                    Some(made) => made,
                    None => Err("another CA replica is making this CRL; try again".to_owned()),
                }
            }
            None => Err(revoked.err().map(|e| e.to_string()).unwrap_or_default()),
        };
        match made {
            Ok(crl) => {
                let der = crl.der.clone();
                cache.insert(id.clone(), crl);
                Ok(der)
            }
            Err(why) => match cache.get(id).filter(|c| c.key_id == issuer.key_id && now < c.next_update) {
                Some(c) => {
                    tracing::warn!(issuer = %id, error = %why, next_update = %pkiplane_core::audit::rfc3339(c.next_update), "no new CRL could be made; serving the last good one until its nextUpdate");
                    Ok(c.der.clone())
                }
                None => Err(internal(why)),
            },
        }
    }
}

impl Publisher {
    /// Signs a fresh CRL of `id` now and serves it from here on (the admin API's
    /// `sign-crl`): the CRL number moves on even when no revocation changed.
    pub async fn sign_now(&self, id: &ObjectRef) -> Result<PublishedCrl, pkiplane_core::CoreError> {
        let mut cache = self.crls.lock().await;
        let crl = self.ca.publish_crl(id).await?;
        cache.insert(id.clone(), crl.clone());
        Ok(crl)
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
