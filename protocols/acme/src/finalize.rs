//! Finalization and certificate download (RFC 8555 section 7.4, 7.4.2).
//!
//! The CSR's identifiers must equal the order's; everything else about the certificate
//! (validity, extensions, algorithms, which names the profile allows) is decided by the
//! CA core's policy for the order's profile, and its denials come back as problems
//! naming the rules.

use crate::signed::{ByAccount, Signed};
use std::collections::BTreeSet;

use crate::state::{Account, CertificateRef, Identifier, Order, OrderStatus};
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use pkiplane_core::inventory::CertStatus;
use pkiplane_core::issuance::{IssuanceRequest, IssueOutcome, exchange_key};
use pkiplane_core::model::{Protocol, Requester};
use pkiplane_core::policy::RequestedValidity;
use pkiplane_core::x509::csr::{CsrOptions, ParsedCsr};
use pkiplane_core::x509::pem;

use crate::jwk::b64_decode;
use crate::order::{order_response, owned_order, refresh};
use crate::problem::{AcmeError, ProblemType};
use crate::{AcmeState, identifier, respond};

/// Who asks, as the CA core sees it: the account URL, with the facts ACME proved.
pub fn requester(state: &AcmeState, account: &Account, identifiers: &[Identifier]) -> Requester {
    let ids: Vec<String> = identifiers.iter().map(|i| format!("{}:{}", i.kind.as_str(), i.value)).collect();
    let mut r = Requester::new(Protocol::Acme, state.account_url(&account.id))
        .at_endpoint(state.config.endpoint.clone())
        .with_claim("acme.account", account.id.clone())
        .with_claim("acme.identifiers", ids.join(","));
    if let Some(kid) = &account.eab_kid {
        r = r.with_claim("acme.eab.kid", kid.clone());
    }
    r
}

/// Checks that the CSR asks for exactly the order's identifiers.
fn check_identifiers(csr: &ParsedCsr, order: &Order) -> Result<(), AcmeError> {
    let in_csr = identifier::from_csr(csr)?;
    let in_order: BTreeSet<Identifier> = order.identifiers.iter().cloned().collect();
    if in_csr == in_order {
        return Ok(());
    }
    let show = |s: Vec<&Identifier>| s.iter().map(|i| i.value.as_str()).collect::<Vec<_>>().join(", ");
    let missing = show(in_order.difference(&in_csr).collect());
    let extra = show(in_csr.difference(&in_order).collect());
    Err(AcmeError::new(
        ProblemType::BadCsr,
        format!("the CSR's identifiers differ from the order's (missing: [{missing}], not in the order: [{extra}])"),
    ))
}

/// The serial an order renews, for the inventory's `renewed_from`: only when the new
/// certificate comes from the issuer of the one it replaces (serials are per issuer).
fn renewal_of(state: &AcmeState, order: &Order, profile: &pkiplane_core::ObjectRef) -> Option<String> {
    let r = order.replaces.as_ref()?;
    let issuer = state.ca.profile(profile)?.issuer.clone();
    if issuer == r.issuer {
        Some(r.serial.clone())
    } else {
        tracing::info!(order = %order.id, "the replaced certificate is from another issuer; not linked as a renewal");
        None
    }
}

/// Stores `order` (compare-and-set), re-reading once on a lost race.
async fn save(state: &AcmeState, order: &Order) -> Result<Order, AcmeError> {
    if state.store.update_order(order).await? {
        let mut o = order.clone();
        o.version += 1;
        return Ok(o);
    }
    Err(AcmeError::new(ProblemType::OrderNotReady, "the order changed concurrently; fetch it again"))
}

/// POST finalize (RFC 8555 section 7.4).
pub async fn finalize(
    State(state): State<AcmeState>,
    Path(id): Path<String>,
    req: Signed<ByAccount>,
) -> Result<Response, AcmeError> {
    let account = req.account()?.clone();
    let order = refresh(&state, owned_order(&state, &id, &account).await?).await?;
    if order.status != OrderStatus::Ready {
        return Err(AcmeError::new(
            ProblemType::OrderNotReady,
            format!("the order is {:?}, not ready; finalize needs every authorization valid", order.status)
                .to_lowercase(),
        ));
    }
    let payload: crate::payload::Finalize = req.payload()?;
    let der = b64_decode(&payload.csr).ok_or_else(|| AcmeError::new(ProblemType::BadCsr, "`csr` is not base64url"))?;
    let csr = ParsedCsr::from_der(&der, CsrOptions::default())
        .map_err(|e| AcmeError::new(ProblemType::BadCsr, e.to_string()))?;
    check_identifiers(&csr, &order)?;
    let exposed = state
        .config
        .profile(&order.profile)
        .ok_or_else(|| {
            AcmeError::new(ProblemType::InvalidProfile, format!("profile `{}` is no longer offered", order.profile))
        })?
        .clone();

    // One issuance per order. Replicas sharing the store claim the order by storing it
    // processing first (compare-and-set); a process serving the endpoint alone claims it
    // in memory, which saves that write.
    let (_claim, claimed) = match &state.alone {
        Some(alone) => {
            let claim = alone
                .claim_finalize(&order.id)
                .ok_or_else(|| AcmeError::new(ProblemType::OrderNotReady, "the order is being finalized"))?;
            if let Some(cert) = issued_before(&state, &order).await? {
                return complete(&state, order, cert).await;
            }
            (Some(claim), order.clone())
        }
        None => {
            let mut processing = order.clone();
            processing.status = OrderStatus::Processing;
            (None, save(&state, &processing).await?)
        }
    };
    let request = IssuanceRequest {
        csr,
        profile: exposed.profile.clone(),
        requester: requester(&state, &account, &order.identifiers),
        requested: RequestedValidity { not_before: order.not_before, not_after: order.not_after },
        renewal_of: renewal_of(&state, &order, &exposed.profile),
        exchange: Some(exchange_key(Protocol::Acme, &state.config.endpoint, &order.id)),
    };
    let outcome = match state.ca.issue(request).await {
        Ok(IssueOutcome::Issued(issued)) => Ok(issued),
        Ok(IssueOutcome::Pending(pending)) => {
            // The order stays processing, linked to its approval request; order polls
            // ask the CA about it (see `order::refresh`).
            let mut waiting = claimed;
            waiting.status = OrderStatus::Processing;
            waiting.approval = Some(pending.request_id.clone());
            let waiting = save(&state, &waiting).await?;
            tracing::info!(order = %waiting.id, request = %pending.request_id, profile = %pending.profile, "ACME order waits for approval");
            return Ok(order_response(&state, StatusCode::OK, &waiting));
        }
        Ok(IssueOutcome::Denied(denied)) => Err(AcmeError::approval_denied(&denied)),
        Err(e) => Err(AcmeError::from_core(&e, &order.identifiers)),
    };
    match outcome {
        Ok(issued) => {
            let cert = CertificateRef { issuer: issued.record.issuer.clone(), serial: issued.record.serial };
            complete(&state, claimed, cert).await
        }
        Err(problem) => {
            let mut next = claimed;
            if problem.status == StatusCode::SERVICE_UNAVAILABLE {
                next.status = OrderStatus::Ready; // temporary: the client may finalize again
            } else {
                next.status = OrderStatus::Invalid;
                next.error = Some(problem.to_json());
            }
            // Claimed in memory, the stored order never left pending or ready.
            let unchanged = state.alone.is_some() && next.status == OrderStatus::Ready;
            if !unchanged && let Err(store) = save(&state, &next).await {
                tracing::warn!(order = %next.id, error = %store, "could not record a failed finalization");
            }
            Err(problem)
        }
    }
}

/// The certificate issued for `order` by an earlier finalize whose process stopped
/// before the order recorded it (the inventory keeps it under the order's exchange key).
async fn issued_before(state: &AcmeState, order: &Order) -> Result<Option<CertificateRef>, AcmeError> {
    let exchange = exchange_key(Protocol::Acme, &state.config.endpoint, &order.id);
    let records = state.ca.exchange_certificates(&exchange).await.map_err(|e| AcmeError::from_core(&e, &[]))?;
    Ok(records.into_iter().find(|r| matches!(r.status, CertStatus::Issued | CertStatus::Revoked)).map(|r| {
        tracing::info!(order = %order.id, serial = %r.serial, "finalize delivers the certificate issued before the server stopped");
        CertificateRef { issuer: r.issuer, serial: r.serial }
    }))
}

/// Stores `order` valid with `cert` and answers with it.
async fn complete(state: &AcmeState, order: Order, cert: CertificateRef) -> Result<Response, AcmeError> {
    let mut valid = order;
    valid.status = OrderStatus::Valid;
    valid.certificate = Some(cert);
    let valid = match save(state, &valid).await {
        Ok(v) => v,
        // A poll on another replica may have completed the order from the inventory
        // first (see `order::refresh`).
        Err(e) => match state.store.order(&valid.id).await? {
            Some(o) if o.status == OrderStatus::Valid && o.certificate == valid.certificate => o,
            _ => return Err(e),
        },
    };
    Ok(order_response(state, StatusCode::OK, &valid))
}

/// POST-as-GET of the certificate: `application/pem-certificate-chain`, leaf first
/// (RFC 8555 section 7.4.2), then the issuing CA and any intermediates above it, without
/// the root: a client trusts the root already (and cert-manager, for one, stores the
/// chain as served in `tls.crt`), so the root is offered only as the alternate chain
/// ([`certificate_with_root`]) this response links to with `rel="alternate"`.
pub async fn certificate(
    State(state): State<AcmeState>,
    Path(id): Path<String>,
    req: Signed<ByAccount>,
) -> Result<Response, AcmeError> {
    let pem = chain_pem(&state, &id, &req, false).await?;
    Ok(respond::with_link(pem_response(pem), &alternate_url(&req.url), "alternate"))
}

/// The alternate chain: the same as [`certificate`] with the root at the end, for clients
/// that want the whole path; it links back to the default chain.
pub async fn certificate_with_root(
    State(state): State<AcmeState>,
    Path(id): Path<String>,
    req: Signed<ByAccount>,
) -> Result<Response, AcmeError> {
    let pem = chain_pem(&state, &id, &req, true).await?;
    Ok(respond::with_link(pem_response(pem), &state.certificate_url(&id), "alternate"))
}

/// Where the chain with the root is, given the default chain's URL.
pub fn alternate_url(certificate_url: &str) -> String {
    format!("{certificate_url}/{WITH_ROOT}")
}

/// The last path segment of the alternate chain's URL.
pub const WITH_ROOT: &str = "with-root";

fn pem_response(pem: String) -> Response {
    let mut rsp = (StatusCode::OK, pem).into_response();
    rsp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/pem-certificate-chain"));
    rsp
}

async fn chain_pem(state: &AcmeState, id: &str, req: &Signed<ByAccount>, with_root: bool) -> Result<String, AcmeError> {
    if !req.post_as_get() {
        return Err(AcmeError::malformed("certificates are fetched with POST-as-GET (an empty payload)"));
    }
    let order = owned_order(state, id, req.account()?).await?;
    let cert = order
        .certificate
        .filter(|_| order.status == OrderStatus::Valid)
        .ok_or_else(|| AcmeError::not_found("the certificate"))?;
    let record = state
        .ca
        .certificate(&cert.issuer, &cert.serial)
        .await
        .map_err(AcmeError::from)?
        .ok_or_else(|| AcmeError::not_found("the certificate"))?;
    let der = record.der.ok_or_else(|| AcmeError::internal("the inventory record has no certificate"))?;
    let issuer = state.ca.issuer(&cert.issuer).ok_or_else(|| AcmeError::internal("the issuer is not loaded"))?;
    let mut out = pem::encode("CERTIFICATE", &der);
    for ca in issuer.intermediates() {
        out.push_str(&pem::encode("CERTIFICATE", &ca.der));
    }
    if with_root {
        out.push_str(&pem::encode("CERTIFICATE", &issuer.root().der));
    }
    Ok(out)
}
