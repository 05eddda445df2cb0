//! revokeCert (RFC 8555 section 7.6): signed either by an account that was issued the
//! certificate or holds valid authorizations for all its identifiers (`kid`), or by the
//! certificate's own key (`jwk`).

use crate::payload::Revocation;
use crate::signed::{ByAccountOrKey, Signed};
use std::time::SystemTime;

use crate::state::{Account, AuthorizationQuery, Identifier};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use der::{Decode, Encode};
use pkiplane_core::inventory::{CertificateRecord, RevocationReason, RevokeOutcome};
use pkiplane_core::issuance::RevocationRequest;
use pkiplane_core::model::{Protocol, Requester};
use serde_json::Value;
use x509_cert::Certificate;

use crate::jwk::b64_decode;
use crate::problem::{AcmeError, ProblemType};
use crate::{AcmeState, identifier};

/// The inventory record of exactly this certificate.
async fn find(state: &AcmeState, der: &[u8]) -> Result<(CertificateRecord, Vec<u8>), AcmeError> {
    let cert = Certificate::from_der(der).map_err(|e| AcmeError::malformed(format!("`certificate`: {e}")))?;
    let serial = cert.tbs_certificate().serial_number().as_bytes();
    let serial = if serial.len() > 1 && serial[0] == 0 { &serial[1..] } else { serial };
    let records = state.ca.find_serial(&hex::encode(serial)).await.map_err(AcmeError::from)?;
    let record = records
        .into_iter()
        .find(|r| r.der.as_deref() == Some(der))
        .ok_or_else(|| AcmeError::not_found("a certificate issued by this server with that serial"))?;
    let spki = cert
        .tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .map_err(|e| AcmeError::malformed(format!("`certificate`: {e}")))?;
    Ok((record, spki))
}

/// Whether `account` may revoke `record`: it was issued the certificate, or it holds
/// valid authorizations for every identifier in it.
async fn account_may_revoke(
    state: &AcmeState,
    account: &Account,
    record: &CertificateRecord,
) -> Result<bool, AcmeError> {
    if record.requester == state.account_url(&account.id) {
        return Ok(true);
    }
    let now = SystemTime::now();
    for san in &record.sans {
        let id = if let Some(name) = san.strip_prefix("DNS:") {
            Identifier::dns(name.to_ascii_lowercase())
        } else if let Some(ip) = san.strip_prefix("IP:") {
            Identifier::ip(ip)
        } else {
            return Ok(false);
        };
        let (identifier, wildcard) = identifier::authz_identifier(&id);
        let query = AuthorizationQuery { account_id: account.id.clone(), identifier, wildcard, now };
        if state.store.valid_authorization(&query).await?.is_none() {
            return Ok(false);
        }
    }
    Ok(!record.sans.is_empty())
}

pub async fn revoke_cert(State(state): State<AcmeState>, req: Signed<ByAccountOrKey>) -> Result<Response, AcmeError> {
    let payload: Revocation = req.payload()?;
    let der = b64_decode(&payload.certificate)
        .ok_or_else(|| AcmeError::malformed("`certificate` must be the base64url DER certificate"))?;
    let reason = match &payload.reason {
        None | Some(Value::Null) => RevocationReason::Unspecified,
        Some(v) => {
            v.as_u64().and_then(|c| u8::try_from(c).ok()).and_then(RevocationReason::from_code).ok_or_else(|| {
                AcmeError::new(
                    ProblemType::BadRevocationReason,
                    format!("reason {v} is not a CRL reason code 0-10 other than 7"),
                )
            })?
        }
    };
    let (record, spki) = find(&state, &der).await?;
    let requester = match &req.account {
        Some(account) => {
            if !account_may_revoke(&state, account, &record).await? {
                return Err(AcmeError::unauthorized(
                    "the account was not issued this certificate and holds no valid authorization for all its names",
                ));
            }
            Requester::new(Protocol::Acme, state.account_url(&account.id)).at_endpoint(state.config.endpoint.clone())
        }
        None => {
            if !req.key.matches_spki(&spki) {
                return Err(AcmeError::unauthorized("the request is not signed by the certificate's key"));
            }
            Requester::new(Protocol::Acme, format!("certificate-key:{}", req.key.thumbprint()))
                .at_endpoint(state.config.endpoint.clone())
        }
    };
    match state.ca.revoke(RevocationRequest::new(&record.issuer, &record.serial, reason, &requester)).await {
        Ok(RevokeOutcome::Revoked) => Ok(StatusCode::OK.into_response()),
        Ok(RevokeOutcome::AlreadyRevoked(_)) => {
            Err(AcmeError::new(ProblemType::AlreadyRevoked, "the certificate is already revoked"))
        }
        Ok(RevokeOutcome::NotFound) => Err(AcmeError::not_found("the certificate")),
        Ok(RevokeOutcome::NotIssued(s)) => Err(AcmeError::malformed(format!("the certificate is {}", s.as_str()))),
        Err(e) => Err(AcmeError::from_core(&e, &[])),
    }
}
