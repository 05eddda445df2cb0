//! EST message framing (RFC 7030 section 4, clarified by RFC 8951): bodies are base64 of
//! DER, with or without line breaks and with or without a `Content-Transfer-Encoding`
//! header; requests are bounded in size and in reading time.
//!
//! Tolerated on input, because real clients send it: base64 with CRLF or LF line breaks,
//! spaces and missing padding; PEM (`-----BEGIN CERTIFICATE REQUEST-----`); raw DER
//! (`Content-Transfer-Encoding: binary`, or a body that is a DER SEQUENCE).
//! Produced on output: base64 in 64-character lines with `Content-Transfer-Encoding:
//! base64` (RFC 7030 4.1.3, 4.2.3; RFC 8951 section 3 keeps base64 mandatory).

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};

use crate::error::EstError;

/// `application/pkcs7-mime; smime-type=certs-only` (RFC 7030 4.1.3, 4.2.3).
pub const CERTS_ONLY: &str = "application/pkcs7-mime; smime-type=certs-only";
/// `application/csrattrs` (RFC 7030 4.5.2).
pub const CSRATTRS: &str = "application/csrattrs";
/// `application/pkcs8` (RFC 7030 4.4.2).
pub const PKCS8: &str = "application/pkcs8";
/// `application/pkcs7-mime; smime-type=server-generated-key` (RFC 7030 4.4.2).
pub const SERVER_GENERATED_KEY: &str = "application/pkcs7-mime; smime-type=server-generated-key";
const CTE: &str = "content-transfer-encoding";

/// Reads a request body of at most `max` bytes within `timeout`.
pub async fn read_body(body: Body, max: usize, timeout: Duration) -> Result<Bytes, EstError> {
    match tokio::time::timeout(timeout, axum::body::to_bytes(body, max)).await {
        Err(_) => {
            Err(EstError::bad_request(format!("the request body was not received within {}s", timeout.as_secs())))
        }
        Ok(Err(_)) => {
            Err(EstError::TooLarge(format!("the request body is larger than {max} bytes or could not be read")))
        }
        Ok(Ok(b)) => Ok(b),
    }
}

/// Decodes an EST request body into DER, whatever of base64 (with or without line
/// breaks or padding), PEM or raw DER the client sent. `what` names the content for
/// error messages; `pem_label` is the PEM label accepted.
pub fn decode_body(headers: &HeaderMap, body: &[u8], what: &str, pem_label: &str) -> Result<Vec<u8>, EstError> {
    let binary = headers
        .get(CTE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("binary") || v.trim().eq_ignore_ascii_case("8bit"));
    if body.is_empty() {
        return Err(EstError::bad_request(format!("the request body is empty; expected a base64 {what}")));
    }
    if binary || body.first() == Some(&0x30) && looks_like_der(body) {
        return Ok(body.to_vec());
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| EstError::bad_request(format!("the {what} is neither base64 text nor DER")))?;
    if text.trim_start().starts_with("-----BEGIN") {
        let blocks = pkiplane_core::x509::pem::decode_all(body)
            .map_err(|e| EstError::bad_request(format!("the {what} PEM is malformed: {e}")))?;
        return blocks
            .into_iter()
            .find(|b| b.label == pem_label || b.label == format!("NEW {pem_label}"))
            .map(|b| b.der)
            .ok_or_else(|| EstError::bad_request(format!("the PEM body holds no {pem_label}")));
    }
    decode_base64(text).ok_or_else(|| EstError::bad_request(format!("the {what} is not valid base64")))
}

/// Base64 with any ASCII whitespace removed and padding optional.
pub fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    if compact.is_empty() {
        return None;
    }
    STANDARD.decode(&compact).ok().or_else(|| STANDARD_NO_PAD.decode(compact.trim_end_matches('=')).ok())
}

/// Whether the bytes are one complete DER TLV (a cheap test to tell DER from text).
fn looks_like_der(b: &[u8]) -> bool {
    use der::{Decode, asn1::AnyRef};
    AnyRef::from_der(b).is_ok()
}

/// Base64 in lines of 64 characters, each ended by CRLF (RFC 2045 section 6.8).
pub fn encode_base64_lines(der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = String::with_capacity(b64.len() + b64.len() / 64 * 2 + 2);
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push_str("\r\n");
    }
    out
}

/// A 200 response of base64 DER with the given content type.
pub fn base64_response(content_type: &'static str, der: &[u8]) -> Response {
    let mut rsp = (StatusCode::OK, encode_base64_lines(der)).into_response();
    let h = rsp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(CTE, HeaderValue::from_static("base64"));
    rsp
}

/// One part of a `multipart/mixed` body.
pub struct Part {
    pub content_type: &'static str,
    pub der: Vec<u8>,
}

/// A 200 `multipart/mixed` response (RFC 2046 section 5.1) whose parts are base64 DER.
pub fn multipart_response(parts: &[Part]) -> Response {
    let mut nonce = [0u8; 12];
    // A boundary only has to not occur in the parts; base64 text never contains `=_`.
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut nonce);
    let boundary = format!("=_est_{}", hex::encode(nonce));
    let mut body = String::new();
    for p in parts {
        body.push_str(&format!(
            "--{boundary}\r\nContent-Type: {}\r\nContent-Transfer-Encoding: base64\r\n\r\n",
            p.content_type
        ));
        body.push_str(&encode_base64_lines(&p.der));
    }
    body.push_str(&format!("--{boundary}--\r\n"));
    let mut rsp = (StatusCode::OK, body).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("multipart/mixed; boundary=\"{boundary}\"")) {
        rsp.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    rsp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_tolerates_breaks_and_missing_padding() {
        let der = (0u8..=200).collect::<Vec<_>>();
        let lines = encode_base64_lines(&der);
        assert!(lines.lines().all(|l| l.trim_end().len() <= 64));
        assert_eq!(decode_base64(&lines).unwrap(), der);
        assert_eq!(decode_base64(&lines.replace("\r\n", "\n")).unwrap(), der);
        assert_eq!(decode_base64(STANDARD.encode(&der).trim_end_matches('=')).unwrap(), der);
        assert!(decode_base64("@@@").is_none());
        assert!(decode_base64(" \r\n").is_none());
    }

    #[test]
    fn bodies_decode_from_base64_pem_or_der() {
        let der = vec![0x30, 0x03, 0x02, 0x01, 0x05];
        let h = HeaderMap::new();
        assert_eq!(decode_body(&h, STANDARD.encode(&der).as_bytes(), "CSR", "CERTIFICATE REQUEST").unwrap(), der);
        assert_eq!(decode_body(&h, &der, "CSR", "CERTIFICATE REQUEST").unwrap(), der);
        let pem = pkiplane_core::x509::pem::encode("CERTIFICATE REQUEST", &der);
        assert_eq!(decode_body(&h, pem.as_bytes(), "CSR", "CERTIFICATE REQUEST").unwrap(), der);
        let mut bin = HeaderMap::new();
        bin.insert(CTE, HeaderValue::from_static("binary"));
        assert_eq!(decode_body(&bin, &der, "CSR", "CERTIFICATE REQUEST").unwrap(), der);
        assert!(matches!(decode_body(&h, b"", "CSR", "X"), Err(EstError::BadRequest(_))));
        assert!(matches!(decode_body(&h, b"not base64!", "CSR", "X"), Err(EstError::BadRequest(_))));
    }
}
