//! ACME Renewal Information (RFC 9773): certificate identifiers, the `renewalInfo`
//! resource with its suggested window, and the certificate an order `replaces`.
//!
//! The window comes from the certificate's profile (its renewal policy, the same one the
//! inventory's "expiring soon" uses): it opens `renew_before` ahead of notAfter and lasts
//! a quarter of that. A revoked certificate's window is moved into the past, which tells
//! clients to renew now.

use std::time::{Duration, SystemTime};

use crate::state::{Account, Replaces};
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use der::Decode;
use pkiplane_core::inventory::{CertStatus, CertificateRecord};
use serde_json::json;
use x509_cert::Certificate;
use x509_cert::ext::pkix::AuthorityKeyIdentifier;

use crate::jwk::{b64, b64_decode};
use crate::problem::AcmeError;
use crate::{AcmeState, respond, time};

/// How long clients should wait before asking again (RFC 9773 section 4.3).
pub const RETRY_AFTER_SECS: u64 = 6 * 3600;

const AUTHORITY_KEY_IDENTIFIER: const_oid::ObjectIdentifier = const_oid::ObjectIdentifier::new_unwrap("2.5.29.35");

/// The certificate identifier (RFC 9773 section 4.1): base64url of the AKI keyIdentifier,
/// a dot, base64url of the serial number's DER content bytes.
pub fn cert_id(der: &[u8]) -> Result<String, String> {
    let cert = Certificate::from_der(der).map_err(|e| format!("the certificate does not parse: {e}"))?;
    let aki = cert
        .tbs_certificate()
        .extensions()
        .map(|e| e.as_slice())
        .unwrap_or_default()
        .iter()
        .find(|e| e.extn_id == AUTHORITY_KEY_IDENTIFIER)
        .ok_or("the certificate has no authorityKeyIdentifier")?;
    let aki = AuthorityKeyIdentifier::from_der(aki.extn_value.as_bytes()).map_err(|e| e.to_string())?;
    let key_id = aki.key_identifier.ok_or("the authorityKeyIdentifier has no keyIdentifier")?;
    Ok(format!("{}.{}", b64(key_id.as_bytes()), b64(cert.tbs_certificate().serial_number().as_bytes())))
}

/// The inventory record a certificate identifier names.
pub async fn lookup(state: &AcmeState, id: &str) -> Result<CertificateRecord, AcmeError> {
    let bad = || AcmeError::malformed(format!("`{id}` is not a certificate identifier (AKI.serial, base64url)"));
    let (aki, serial) = id.split_once('.').ok_or_else(bad)?;
    let (aki, serial) = (b64_decode(aki).ok_or_else(bad)?, b64_decode(serial).ok_or_else(bad)?);
    if aki.is_empty() || serial.is_empty() || serial.len() > 20 {
        return Err(bad());
    }
    // DER pads a serial whose first byte has the top bit set with one zero byte.
    let trimmed = if serial.len() > 1 && serial[0] == 0 { &serial[1..] } else { &serial[..] };
    let mut candidates = state.ca.find_serial(&hex::encode(trimmed)).await.map_err(AcmeError::from)?;
    if trimmed.len() != serial.len() {
        candidates.extend(state.ca.find_serial(&hex::encode(&serial)).await.map_err(AcmeError::from)?);
    }
    candidates
        .into_iter()
        .find(|r| {
            matches!(r.status, CertStatus::Issued | CertStatus::Revoked)
                && state.ca.issuer(&r.issuer).is_some_and(|i| i.key_id == aki)
        })
        .ok_or_else(|| AcmeError::not_found("the certificate"))
}

/// The suggested renewal window of a certificate at `now`.
pub fn window(state: &AcmeState, r: &CertificateRecord, now: SystemTime) -> (SystemTime, SystemTime) {
    if r.status == CertStatus::Revoked {
        return (now - Duration::from_secs(3600), now);
    }
    let lifetime = r.not_after.duration_since(r.not_before).unwrap_or_default();
    let before = match state.ca.profile(&r.profile) {
        Some(p) => p.renewal.renew_before(lifetime),
        None => lifetime / 3,
    };
    let start = r.not_after - before;
    let end = (start + (before / 4).max(Duration::from_secs(60))).min(r.not_after);
    (start, end.max(start + Duration::from_secs(1)))
}

/// GET renewalInfo/{certID} (RFC 9773 section 4.2); unauthenticated.
pub async fn renewal_info(State(state): State<AcmeState>, Path(id): Path<String>) -> Result<Response, AcmeError> {
    let record = lookup(&state, &id).await?;
    let (start, end) = window(&state, &record, SystemTime::now());
    let body = json!({"suggestedWindow": {"start": time::format(start), "end": time::format(end)}});
    let mut rsp = respond::json(StatusCode::OK, &body);
    rsp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    Ok(rsp)
}

/// The certificate a newOrder `replaces` (RFC 9773 section 5): one this account was
/// issued.
pub async fn replaced_certificate(state: &AcmeState, account: &Account, id: &str) -> Result<Replaces, AcmeError> {
    let record = lookup(state, id).await.map_err(|e| AcmeError::malformed(format!("`replaces`: {}", e.detail)))?;
    if record.requester != state.account_url(&account.id) {
        return Err(AcmeError::unauthorized("`replaces` names a certificate that was not issued to this account"));
    }
    Ok(Replaces { cert_id: id.to_owned(), issuer: record.issuer, serial: record.serial })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn openssl(args: &[&str]) -> Vec<u8> {
        let out = std::process::Command::new("openssl").args(args).output().expect("openssl");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    }

    /// The identifier of a certificate made by openssl, against openssl's own reading of
    /// its AKI; the serial 0x8001 needs DER's leading zero byte.
    #[test]
    fn cert_id_is_aki_and_der_serial_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("k.pem");
        let crt = dir.path().join("c.pem");
        let (key, crt) = (key.to_str().unwrap(), crt.to_str().unwrap());
        openssl(&["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key]);
        openssl(&[
            "req",
            "-x509",
            "-new",
            "-key",
            key,
            "-subj",
            "/CN=ari test",
            "-set_serial",
            "0x8001",
            "-days",
            "1",
            "-addext",
            "authorityKeyIdentifier=keyid:always",
            "-out",
            crt,
        ]);
        let der = openssl(&["x509", "-in", crt, "-outform", "DER"]);
        let text =
            String::from_utf8(openssl(&["x509", "-in", crt, "-noout", "-ext", "authorityKeyIdentifier"])).unwrap();
        let hex_id: String = text.lines().nth(1).unwrap().trim().trim_start_matches("keyid:").replace(':', "");
        let aki = hex::decode(hex_id).unwrap();
        assert_eq!(cert_id(&der).unwrap(), format!("{}.AIAB", b64(&aki)));
        assert!(cert_id(b"junk").is_err());
    }
}
