//! dns-01 (RFC 8555 section 8.4): a TXT record at `_acme-challenge.<domain>` must hold
//! base64url(SHA-256(key authorization)).

use std::net::SocketAddr;

use super::dns_client::{self, DnsError};
use crate::AcmeState;
use crate::jwk::b64;
use crate::problem::{AcmeError, ProblemType};

/// The resolver dns-01 asks: the endpoint's setting, else the system's.
async fn resolver(state: &AcmeState) -> Result<SocketAddr, AcmeError> {
    let dns = |d: String| AcmeError::new(ProblemType::Dns, d);
    match &state.config.dns_resolver {
        Some(r) => match r.parse::<SocketAddr>() {
            Ok(a) => Ok(a),
            Err(_) => tokio::net::lookup_host(r.as_str())
                .await
                .map_err(|e| dns(format!("resolver {r}: {e}")))?
                .next()
                .ok_or_else(|| dns(format!("resolver {r} has no address"))),
        },
        None => dns_client::system_resolver().ok_or_else(|| dns("no nameserver in /etc/resolv.conf".into())),
    }
}

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
    let seen: Vec<String> =
        records.iter().take(5).map(|r| format!("`{}`", r.chars().take(100).collect::<String>())).collect();
    Err(AcmeError::new(
        ProblemType::IncorrectResponse,
        format!("TXT records at {name} are {}, none is the expected digest", seen.join(", ")),
    ))
}
