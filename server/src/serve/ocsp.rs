//! OCSP over HTTP (RFC 6960 appendix A.1, RFC 5019 sections 5 and 6) on the publication
//! listener: a responder per Issuer at `/issuers/<namespace>/<name>/ocsp`, POST with an
//! `application/ocsp-request` body, or GET with the base64 request appended to the URL.
//! The OCSP logic is in `pkiplane_core::ocsp`; this edge only reads requests, bounds
//! their size and writes the caching headers RFC 5019 section 6 asks for.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use pkiplane_core::model::ObjectRef;
use pkiplane_core::ocsp::responder::MAX_REQUEST_LEN;
use pkiplane_core::ocsp::response::error_response;
use pkiplane_core::ocsp::{OcspAnswer, OcspResponder, OcspResponseStatus};

const REQUEST_TYPE: &str = "application/ocsp-request";
const RESPONSE_TYPE: &str = "application/ocsp-response";
/// How often delegated responder certificates are checked for renewal.
pub const UPKEEP_INTERVAL: Duration = Duration::from_secs(3600);

pub fn router(responder: Arc<OcspResponder>) -> Router {
    Router::new()
        .route("/issuers/{ns}/{name}/ocsp", post(by_post).get(empty_get))
        .route("/issuers/{ns}/{name}/ocsp/{*request}", get(by_get))
        .with_state(responder)
}

/// Makes the delegated responders now, then keeps them renewed.
pub async fn start_upkeep(responder: Arc<OcspResponder>) {
    match responder.prepare().await {
        Ok(keys) => tracing::info!(keys, "OCSP responders ready"),
        Err(e) => tracing::error!(error = %e, "OCSP responders could not all be prepared; retrying on demand"),
    }
    tokio::spawn(async move {
        let mut timer = tokio::time::interval(UPKEEP_INTERVAL);
        timer.tick().await;
        loop {
            timer.tick().await;
            if let Err(e) = responder.prepare().await {
                tracing::error!(error = %e, "renewing OCSP responders failed");
            }
        }
    });
}

async fn by_post(
    State(responder): State<Arc<OcspResponder>>,
    Path((ns, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    if content_type.is_some_and(|t| !t.eq_ignore_ascii_case(REQUEST_TYPE)) {
        let message = format!("an OCSP request is sent as {REQUEST_TYPE}\n");
        return (StatusCode::UNSUPPORTED_MEDIA_TYPE, message).into_response();
    }
    let Ok(request) = to_bytes(body, MAX_REQUEST_LEN).await else {
        return too_large();
    };
    let answer = responder.respond(&ObjectRef::new(ns, name), &request).await;
    reply(&answer, &headers, false)
}

async fn by_get(
    State(responder): State<Arc<OcspResponder>>,
    Path((ns, name, encoded)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    if encoded.len() > MAX_REQUEST_LEN.div_ceil(3) * 4 + 16 {
        return too_large();
    }
    let Some(request) = decode_base64(&encoded) else {
        let answer = malformed("the URL does not end in a base64 OCSP request");
        return reply(&answer, &headers, true);
    };
    let answer = responder.respond(&ObjectRef::new(ns, name), &request).await;
    reply(&answer, &headers, true)
}

async fn empty_get(headers: HeaderMap) -> Response {
    reply(&malformed("GET needs the base64 request after /ocsp/ (RFC 5019 section 5)"), &headers, true)
}

/// The request of a GET URL (RFC 6960 appendix A.1: base64, then URL-encoded; the path is
/// percent-decoded already). The URL-safe alphabet and missing padding are accepted too.
fn decode_base64(encoded: &str) -> Option<Vec<u8>> {
    let text: String = encoded.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD].into_iter().find_map(|e| e.decode(&text).ok())
}

fn malformed(reason: &str) -> OcspAnswer {
    OcspAnswer {
        der: error_response(OcspResponseStatus::MalformedRequest),
        status: OcspResponseStatus::MalformedRequest,
        this_update: None,
        next_update: None,
        has_nonce: false,
        reason: Some(reason.into()),
    }
}

fn too_large() -> Response {
    let body = error_response(OcspResponseStatus::MalformedRequest);
    (StatusCode::PAYLOAD_TOO_LARGE, [(header::CONTENT_TYPE, RESPONSE_TYPE), (header::CACHE_CONTROL, "no-store")], body)
        .into_response()
}

/// An HTTP date (RFC 9110 section 5.6.7).
fn http_date(t: SystemTime) -> HeaderValue {
    HeaderValue::from_str(&httpdate::fmt_http_date(t)).unwrap_or_else(|_| HeaderValue::from_static("0"))
}

/// The response with RFC 5019 section 6 caching headers when it may be cached: a
/// successful answer without a nonce. A GET whose If-None-Match names the answer's ETag
/// gets 304 Not Modified.
fn reply(answer: &OcspAnswer, request_headers: &HeaderMap, get: bool) -> Response {
    match (answer.status, &answer.reason) {
        (OcspResponseStatus::Successful, _) => {}
        (OcspResponseStatus::InternalError | OcspResponseStatus::TryLater, reason) => {
            tracing::warn!(
                status = answer.status.as_str(),
                reason = reason.as_deref().unwrap_or(""),
                "OCSP request not answered"
            )
        }
        (_, reason) => {
            tracing::debug!(
                status = answer.status.as_str(),
                reason = reason.as_deref().unwrap_or(""),
                "OCSP request refused"
            )
        }
    }
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(RESPONSE_TYPE));
    let (Some(this_update), Some(next_update), true) = (answer.this_update, answer.next_update, answer.cacheable())
    else {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return (StatusCode::OK, headers, answer.der.clone()).into_response();
    };
    let now = SystemTime::now();
    let max_age = next_update.duration_since(now).unwrap_or_default().as_secs();
    let cache_control = format!("max-age={max_age}, public, no-transform, must-revalidate");
    let digest = ring::digest::digest(&ring::digest::SHA256, &answer.der);
    let etag = format!("\"{}\"", hex::encode(&digest.as_ref()[..16]));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_str(&cache_control).unwrap_or(HeaderValue::from_static("no-store")),
    );
    headers.insert(header::LAST_MODIFIED, http_date(this_update));
    headers.insert(header::EXPIRES, http_date(next_update));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, v);
    }
    let matches = request_headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if get && matches {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    (StatusCode::OK, headers, answer.der.clone()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_requests_decode_from_either_base64_alphabet_with_or_without_padding() {
        let der = [0x30, 0x03, 0xfb, 0xff, 0x3e];
        for text in ["MAP7/z4=", "MAP7/z4", "MAP7_z4=", "MAP7_z4", "MAP7/z4=\n"] {
            assert_eq!(decode_base64(text).as_deref(), Some(&der[..]), "{text}");
        }
        assert_eq!(decode_base64("not base64!"), None);
    }
}
