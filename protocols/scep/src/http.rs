//! The HTTP binding (RFC 8894 section 4): `GET|POST <path>?operation=<op>[&message=..]`.
//!
//! | operation      | method    | response                                             |
//! |----------------|-----------|------------------------------------------------------|
//! | GetCACaps      | GET       | `text/plain`, one capability per line                |
//! | GetCACert      | GET       | `application/x-x509-ca-ra-cert`: degenerate SignedData with the RA certificate and the CA chain |
//! | GetNextCACert  | GET       | `application/x-x509-next-ca-cert` while the core has staged a next CA (key rollover): certs-only SignedData with the next CA certificate (and the chain above it), signed by the current RA key; 404 and not advertised in GetCACaps otherwise |
//! | PKIOperation   | POST body / GET `message` (base64) | `application/x-pki-message`: a CertRep |

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::ScepState;
use crate::error::ScepError;

pub const CONTENT_CA_RA_CERT: &str = "application/x-x509-ca-ra-cert";
pub const CONTENT_PKI_MESSAGE: &str = "application/x-pki-message";
/// RFC 8894 section 4.7: the GetNextCACert response.
pub const CONTENT_NEXT_CA_CERT: &str = "application/x-x509-next-ca-cert";

/// What GetCACaps advertises: only what is implemented; `GetNextCACert` (RFC 8894
/// section 3.5.2) only while a next CA is staged.
pub fn capabilities(legacy: bool, next_ca_staged: bool) -> Vec<&'static str> {
    let mut caps = vec!["POSTPKIOperation", "Renewal", "SHA-256", "SHA-512", "AES", "SCEPStandard"];
    if next_ca_staged {
        caps.push("GetNextCACert");
    }
    if legacy {
        caps.extend(["DES3", "SHA-1"]);
    }
    caps
}

fn text(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain")], body).into_response()
}

fn error_response(e: &ScepError) -> Response {
    let body = match e {
        ScepError::Internal(detail) => pkiplane_core::logsafe::hide("SCEP", "internal error", detail),
        other => other.to_string(),
    };
    text(e.http_status(), format!("{body}\n"))
}

/// `/scep` and its aliases.
pub async fn scep_default(
    state: State<ScepState>,
    method: Method,
    query: Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    dispatch(state, None, method, query, body).await
}

/// `/scep/p/<label>`.
pub async fn scep_profile(
    state: State<ScepState>,
    Path(label): Path<String>,
    method: Method,
    query: Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    if state.config().profile(Some(&label)).is_none() {
        return text(StatusCode::NOT_FOUND, format!("no profile `{label}` on this endpoint\n"));
    }
    dispatch(state, Some(label), method, query, body).await
}

async fn dispatch(
    State(state): State<ScepState>,
    label: Option<String>,
    method: Method,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let Some(op) = query.get("operation") else {
        return text(StatusCode::BAD_REQUEST, "missing `operation` parameter\n".into());
    };
    let timeout = state.config().request_timeout;
    let work = async {
        match (op.as_str(), &method) {
            ("GetCACaps", &Method::GET) => {
                let staged = state.issuer().is_ok_and(|i| i.next.is_some());
                Ok(text(StatusCode::OK, capabilities(state.config().legacy_algorithms, staged).join("\n") + "\n"))
            }
            ("GetCACert", &Method::GET) => ca_certs(&state).await,
            ("GetNextCACert", &Method::GET) => next_ca_certs(&state).await,
            ("PKIOperation", &Method::POST) => pki_operation(&state, message_from_body(&body)?, label.as_deref()).await,
            ("PKIOperation", &Method::GET) => {
                let m =
                    query.get("message").ok_or_else(|| ScepError::Malformed("missing `message` parameter".into()))?;
                // A `+` left unescaped in a query string arrives as a space.
                let b64: String = m
                    .chars()
                    .filter(|c| !c.is_ascii_whitespace() || *c == ' ')
                    .map(|c| if c == ' ' { '+' } else { c })
                    .collect();
                let der = STANDARD
                    .decode(b64.trim_end_matches('\n'))
                    .map_err(|e| ScepError::Malformed(format!("message is not base64: {e}")))?;
                pki_operation(&state, der, label.as_deref()).await
            }
            ("GetCACaps" | "GetCACert" | "GetNextCACert", _) => {
                Ok(text(StatusCode::METHOD_NOT_ALLOWED, format!("{op} is a GET operation\n")))
            }
            _ => Ok(text(StatusCode::BAD_REQUEST, format!("unknown operation `{op}`\n"))),
        }
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            tracing::warn!(endpoint = %state.config().endpoint, operation = %op, error = %e, "SCEP request failed");
            error_response(&e)
        }
        Err(_) => text(StatusCode::SERVICE_UNAVAILABLE, "the request timed out\n".into()),
    }
}

/// A POSTed pkiMessage: raw DER, or base64 text as some clients send.
fn message_from_body(body: &Bytes) -> Result<Vec<u8>, ScepError> {
    if body.first() == Some(&0x30) {
        return Ok(body.to_vec());
    }
    let text: Vec<u8> = body.iter().copied().filter(|b| !b.is_ascii_whitespace()).collect();
    STANDARD.decode(&text).map_err(|_| ScepError::Malformed("the body is neither DER nor base64".into()))
}

async fn pki_operation(state: &ScepState, der: Vec<u8>, label: Option<&str>) -> Result<Response, ScepError> {
    let rep = crate::operation::pki_operation(state, &der, label).await?;
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, CONTENT_PKI_MESSAGE)], rep).into_response())
}

async fn ca_certs(state: &ScepState) -> Result<Response, ScepError> {
    let ra = state.ra().await?;
    let issuer = state.issuer()?;
    let mut certs = vec![ra.cert_der.clone(), issuer.cert.der.clone()];
    certs.extend(issuer.chain.iter().map(|c| c.der.clone()));
    let body = crate::cms::outgoing::degenerate(&certs, &[])?;
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, CONTENT_CA_RA_CERT)], body).into_response())
}

/// GetNextCACert (RFC 8894 section 4.7): a certs-only SignedData with the next CA
/// certificate and the chain above it, signed by the current RA key (section 4.7.1), or
/// 404 while no rollover is staged.
async fn next_ca_certs(state: &ScepState) -> Result<Response, ScepError> {
    let issuer = state.issuer()?;
    let Some(next) = &issuer.next else {
        return Ok(text(
            StatusCode::NOT_FOUND,
            "GetNextCACert: no CA rollover is staged for this endpoint's Issuer\n".into(),
        ));
    };
    let certs: Vec<Vec<u8>> = std::iter::once(&next.cert).chain(next.chain.iter()).map(|c| c.der.clone()).collect();
    let ra = state.ra().await?;
    let signer = crate::cms::outgoing::Signer { cert: &ra.cert, key: ra.key() };
    let body = crate::cms::outgoing::signed_certs_only(&signer, &certs)?;
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, CONTENT_NEXT_CA_CERT)], body).into_response())
}
