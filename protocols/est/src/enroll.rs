//! `/cacerts` (RFC 7030 4.1), `/simpleenroll` (4.2.1) and `/simplereenroll` (4.2.2).

use std::collections::BTreeSet;

use axum::body::Body;
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use pkiplane_core::issuance::{IssuanceRequest, IssueOutcome, Issued};
use pkiplane_core::policy::RequestedValidity;
use pkiplane_core::x509::csr::{CsrOptions, ParsedCsr};
use pkiplane_core::x509::names::{format_dn, name_attributes};
use subtle::ConstantTimeEq;

use crate::auth::{self, Authenticated};
use crate::error::EstError;
use crate::{EstState, RequestContext, cms, wire};

/// `GET /cacerts`: the chain of the label's issuer, root included, as certs-only CMS.
/// No authentication is required (RFC 7030 4.1.1). While the issuer or a CA above it has
/// a staged next CA (key rollover), its certificate follows the current chain, and for a
/// root also the link certificates newWithOld and oldWithNew (RFC 7030 4.1.3 allows the
/// root rollover certificates here).
pub fn cacerts(state: &EstState, ctx: &RequestContext) -> Result<Response, EstError> {
    let profile = state
        .ca
        .profile(&ctx.profile.profile)
        .ok_or_else(|| EstError::NotFound(format!("profile {} is not loaded", ctx.profile.profile)))?;
    let issuer = state.ca.issuer(&profile.issuer).ok_or_else(|| EstError::Unavailable {
        message: format!("issuer {} is not loaded", profile.issuer),
        retry_after: state.config.limits.retry_after_unavailable,
    })?;
    let mut certs: Vec<Vec<u8>> =
        std::iter::once(&issuer.cert).chain(issuer.chain.iter()).map(|c| c.der.clone()).collect();
    // The staged next CAs of this issuer and those above it (bounded walk up the parents).
    let mut current = Some(issuer);
    for _ in 0..16 {
        let Some(info) = current.take() else { break };
        if let Some(next) = &info.next {
            let rollover = std::iter::once(&next.cert).chain(next.new_with_old.iter()).chain(next.old_with_new.iter());
            for c in rollover {
                if !certs.contains(&c.der) {
                    certs.push(c.der.clone());
                }
            }
        }
        current = info.parent.as_ref().and_then(|p| state.ca.issuer(p));
    }
    let der = cms::certs_only(&certs).map_err(|e| EstError::internal(format!("encoding cacerts: {e}")))?;
    Ok(wire::base64_response(wire::CERTS_ONLY, &der))
}

/// Reads and verifies the CSR of an enrollment request (PKCS#10 with proof of
/// possession, RFC 7030 4.2.1).
pub async fn read_csr(state: &EstState, ctx: &RequestContext, body: Body) -> Result<ParsedCsr, EstError> {
    let limits = &state.config.limits;
    let bytes = wire::read_body(body, limits.max_body, limits.body_timeout).await?;
    let der = wire::decode_body(&ctx.headers, &bytes, "PKCS#10 request", "CERTIFICATE REQUEST")?;
    ParsedCsr::from_der(&der, CsrOptions::default()).map_err(|e| EstError::bad_request(e.to_string()))
}

/// RFC 7030 section 3.5: with channel binding required, the CSR's challengePassword
/// must be the base64 of this TLS connection's binding value (here RFC 9266
/// `tls-exporter`, the TLS 1.3 successor of `tls-unique`).
pub fn check_channel_binding(state: &EstState, ctx: &RequestContext, csr: &ParsedCsr) -> Result<(), EstError> {
    if !state.config.require_channel_binding {
        return Ok(());
    }
    let Some(binding) = ctx.peer.as_ref().and_then(|p| p.channel_binding.as_ref()) else {
        return Err(EstError::forbidden(
            "this endpoint requires the CSR to be bound to the TLS session (RFC 7030 3.5), but the request did not arrive over TLS with a channel binding",
        ));
    };
    let Some(given) = csr.challenge_password.as_ref() else {
        return Err(EstError::forbidden(
            "this endpoint requires the CSR's challengePassword to carry the base64 tls-exporter channel binding of the TLS connection (RFC 7030 3.5, RFC 9266); the CSR has no challengePassword",
        ));
    };
    let expected = STANDARD.encode(binding);
    if !bool::from(given.trim().as_bytes().ct_eq(expected.as_bytes())) {
        return Err(EstError::forbidden(
            "the CSR's challengePassword does not match this TLS connection's channel binding (RFC 7030 3.5): the CSR was made for another session",
        ));
    }
    Ok(())
}

/// Hands the request to the CA, bounded in time, and maps the outcome.
///
/// Under a profile that requires approval the answer is 202 with Retry-After, and the
/// client retries the same request: the CA matches the retry to its approval record by
/// the requester's identity (TLS client certificate subject or basic-auth user), the
/// endpoint, the profile, the certificate being renewed (`/simplereenroll`) and the CSR's
/// public key (see `pkiplane_core::approval::retry_key`), never by the CSR's bytes (a
/// channel-bound CSR changes with every connection). Approved: 200 with the one
/// certificate issued for it, on every retry; denied: 403 naming the approver's reason.
pub async fn issue(state: &EstState, req: IssuanceRequest) -> Result<Issued, EstError> {
    let limits = &state.config.limits;
    match tokio::time::timeout(limits.issue_timeout, state.ca.issue(req)).await {
        Err(_) => Err(EstError::Unavailable {
            message: "issuance did not complete in time".into(),
            retry_after: limits.retry_after_unavailable,
        }),
        Ok(Ok(IssueOutcome::Issued(issued))) => Ok(*issued),
        Ok(Ok(IssueOutcome::Pending(pending))) => Err(EstError::Pending {
            message: format!("{pending}; retry the same request later"),
            retry_after: limits.retry_after_approval,
        }),
        Ok(Ok(IssueOutcome::Denied(denied))) => Err(EstError::forbidden(denied.to_string())),
        Ok(Err(e)) => Err(EstError::from_core(e, limits.retry_after_unavailable)),
    }
}

/// RFC 7030 4.2.2: re-enrollment renews the TLS client certificate, which pkiplane must
/// have issued (and not revoked: checked during authentication); the CSR's subject and
/// SANs must equal the certificate's. (Profiles have no switch to relax this yet, so
/// the rule is always strict.) Returns the serial to link the renewal to, when the new
/// certificate comes from the same issuer.
pub fn check_reenrollment(
    state: &EstState,
    ctx: &RequestContext,
    who: &Authenticated,
    csr: &ParsedCsr,
) -> Result<Option<String>, EstError> {
    let Some(cert) = &who.client_cert else {
        return Err(EstError::forbidden(
            "simplereenroll renews the certificate the client authenticates with: present it as the TLS client certificate",
        ));
    };
    let Some(record) = &cert.record else {
        return Err(EstError::forbidden(format!(
            "the TLS client certificate `{}` was not issued by pkiplane, so it cannot be renewed; use simpleenroll",
            format_dn(&cert.info.subject)
        )));
    };
    let attrs = |name| -> BTreeSet<(String, String)> {
        name_attributes(name).unwrap_or_default().into_iter().map(|a| (a.oid.to_string(), a.value)).collect()
    };
    let (old_subject, new_subject) = (attrs(&cert.info.subject), attrs(&csr.subject));
    let old_sans: BTreeSet<String> = cert.sans.iter().map(|s| s.to_string().to_ascii_lowercase()).collect();
    let new_sans: BTreeSet<String> = csr.sans.iter().map(|s| s.to_string().to_ascii_lowercase()).collect();
    let mut problems = Vec::new();
    if old_subject != new_subject {
        problems.push(format!(
            "the CSR's subject `{}` differs from the certificate's `{}`",
            format_dn(&csr.subject),
            format_dn(&cert.info.subject)
        ));
    }
    if old_sans != new_sans {
        problems.push(format!(
            "the CSR's subjectAltNames [{}] differ from the certificate's [{}]",
            new_sans.into_iter().collect::<Vec<_>>().join(", "),
            old_sans.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    if !problems.is_empty() {
        return Err(EstError::forbidden(format!(
            "re-enrollment must keep the subject and SANs of the certificate being renewed (RFC 7030 4.2.2):\n- {}",
            problems.join("\n- ")
        )));
    }
    let profile_issuer = state.ca.profile(&ctx.profile.profile).map(|p| p.issuer.clone());
    Ok((profile_issuer.as_ref() == Some(&record.issuer)).then(|| record.serial.clone()))
}

/// `POST /simpleenroll` and `POST /simplereenroll`: the new certificate alone, as
/// certs-only CMS (RFC 7030 4.2.3).
pub async fn simpleenroll(
    state: &EstState,
    ctx: &RequestContext,
    body: Body,
    reenroll: bool,
) -> Result<Response, EstError> {
    let who = auth::authenticate(state, ctx).await?;
    let csr = read_csr(state, ctx, body).await?;
    check_channel_binding(state, ctx, &csr)?;
    let renewal_of = if reenroll { check_reenrollment(state, ctx, &who, &csr)? } else { None };
    let req = IssuanceRequest {
        csr,
        profile: ctx.profile.profile.clone(),
        requester: who.requester(state),
        requested: RequestedValidity::default(),
        renewal_of,
        exchange: None,
    };
    let issued = issue(state, req).await?;
    tracing::info!(
        endpoint = %state.config.endpoint,
        serial = %issued.record.serial,
        requester = %issued.record.requester,
        reenroll,
        "EST certificate issued"
    );
    let der = cms::certs_only(std::slice::from_ref(&issued.der))
        .map_err(|e| EstError::internal(format!("encoding the certificate response: {e}")))?;
    Ok(wire::base64_response(wire::CERTS_ONLY, &der))
}
