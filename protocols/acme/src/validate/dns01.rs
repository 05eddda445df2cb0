//! dns-01 (RFC 8555 section 8.4): a TXT record at `_acme-challenge.<domain>` must hold
//! base64url(SHA-256(key authorization)).
//!
//! The only connection is to the resolver the endpoint names (or the system's), never to
//! an address the client chose; the answer is bounded (a 4 KiB UDP answer, one TCP answer
//! of at most 64 KiB) and timed (the connect timeout). A failure reports how many records
//! were found, never their text.

use super::dns_client::{self, DnsError};
use super::resolver;
use crate::AcmeState;
use crate::jwk::b64;
use crate::problem::{AcmeError, ProblemType};

pub async fn validate(state: &AcmeState, domain: &str, key_authorization: &str) -> Result<(), AcmeError> {
    let name = format!("_acme-challenge.{domain}");
    let expected = b64(ring::digest::digest(&ring::digest::SHA256, key_authorization.as_bytes()).as_ref());
    let server = resolver(state).await?;
    let records = dns_client::txt_lookup(server, &name, state.config.validation.connect_timeout)
        .await
        .map_err(|DnsError::Failed(m)| AcmeError::new(ProblemType::Dns, format!("TXT lookup of {name}: {m}")))?;
    if records.is_empty() {
        return Err(AcmeError::unauthorized(format!("no TXT record found at {name}")));
    }
    let found = records.iter().any(|r| {
        r.len() == expected.len() && bool::from(subtle::ConstantTimeEq::ct_eq(r.as_bytes(), expected.as_bytes()))
    });
    if found {
        return Ok(());
    }
    // The records are not quoted: an internal resolver may answer for zones the client
    // cannot see.
    Err(AcmeError::new(
        ProblemType::IncorrectResponse,
        format!("none of the {} TXT records at {name} is the expected digest", records.len()),
    ))
}
