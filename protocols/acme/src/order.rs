//! Orders (RFC 8555 section 7.4): newOrder with DNS and IP identifiers, the profile
//! (ACME profiles extension), requested validity, `replaces` (RFC 9773 section 5), and
//! the order's life: pending -> ready (all authorizations valid) -> processing -> valid,
//! or invalid (an authorization failed, the order expired, issuance was refused).

use crate::signed::{ByAccount, Signed};
use std::time::SystemTime;

use crate::state::{
    Account, Authorization, AuthorizationQuery, AuthzStatus, CertificateRef, Challenge, ChallengeStatus, ChallengeType,
    Identifier, IdentifierType, NewOrderOutcome, Order, OrderStatus,
};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use pkiplane_core::error::{CoreError, ErrorKind};
use pkiplane_core::inventory::CertStatus;
use pkiplane_core::issuance::{IssueOutcome, exchange_key};
use pkiplane_core::model::Protocol;
use pkiplane_core::x509::San;
use serde_json::{Value, json};

use crate::nonce::random_id;
use crate::problem::{AcmeError, ProblemType};
use crate::{AcmeState, ari, authz, identifier, payload, respond, time};

fn status_str(s: OrderStatus) -> &'static str {
    match s {
        OrderStatus::Pending => "pending",
        OrderStatus::Ready => "ready",
        OrderStatus::Processing => "processing",
        OrderStatus::Valid => "valid",
        OrderStatus::Invalid => "invalid",
    }
}

/// The order object (RFC 8555 section 7.1.3).
pub fn order_json(state: &AcmeState, o: &Order) -> Value {
    let mut v = json!({
        "status": status_str(o.status),
        "expires": time::format(o.expires),
        "identifiers": o.identifiers,
        "authorizations": o.authorizations.iter().map(|a| state.authz_url(a)).collect::<Vec<_>>(),
        "finalize": state.finalize_url(&o.id),
        "profile": o.profile,
    });
    if let Some(nb) = o.not_before {
        v["notBefore"] = json!(time::format(nb));
    }
    if let Some(na) = o.not_after {
        v["notAfter"] = json!(time::format(na));
    }
    if o.certificate.is_some() && o.status == OrderStatus::Valid {
        v["certificate"] = json!(state.certificate_url(&o.id));
    }
    if let Some(err) = o.error.as_deref().and_then(|e| serde_json::from_str::<Value>(e).ok()) {
        v["error"] = err;
    }
    if let Some(r) = &o.replaces {
        v["replaces"] = json!(r.cert_id);
    }
    v
}

pub fn order_response(state: &AcmeState, status: StatusCode, o: &Order) -> Response {
    let mut rsp = respond::with_location(respond::json(status, &order_json(state, o)), &state.order_url(&o.id));
    // RFC 8555 section 7.4: a processing order tells the client when to poll again.
    if o.status == OrderStatus::Processing {
        let after = if o.approval.is_some() { APPROVAL_RETRY_AFTER } else { 1 };
        rsp.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from(after));
    }
    rsp
}

/// Retry-After (seconds) of an order waiting for a person's approval.
pub const APPROVAL_RETRY_AFTER: u64 = 10;

/// The challenge types offered for an identifier: wildcards only by dns-01 (RFC 8555
/// section 7.1.3), IP addresses only by http-01 (RFC 8738 section 7), tls-alpn-01 for
/// DNS names (RFC 8737 section 3).
pub fn offered(state: &AcmeState, id: &Identifier, wildcard: bool) -> Vec<ChallengeType> {
    state
        .config
        .challenges
        .iter()
        .copied()
        .filter(|c| match (id.kind, c) {
            (IdentifierType::Dns, ChallengeType::Dns01) => true,
            (IdentifierType::Dns, _) => !wildcard,
            (IdentifierType::Ip, ChallengeType::Http01) => true,
            (IdentifierType::Ip, _) => false,
        })
        .collect()
}

fn parse_time(value: Option<&str>, field: &str) -> Result<Option<SystemTime>, AcmeError> {
    value
        .map(|s| {
            time::parse(s).ok_or_else(|| AcmeError::malformed(format!("`{field}` is not an RFC 3339 date-time: `{s}`")))
        })
        .transpose()
}

/// The exposed profile label an order uses (ACME profiles extension).
fn choose_profile(state: &AcmeState, asked: Option<&str>) -> Result<String, AcmeError> {
    let offered = || state.config.profiles.iter().map(|p| p.label.as_str()).collect::<Vec<_>>().join(", ");
    let label = match asked {
        None => state.config.default_profile.clone().ok_or_else(|| {
            AcmeError::new(
                ProblemType::InvalidProfile,
                format!("this server has no default profile; name one of: {}", offered()),
            )
        })?,
        Some(s) => s.to_owned(),
    };
    if state.config.profile(&label).is_none() {
        return Err(AcmeError::new(
            ProblemType::InvalidProfile,
            format!("profile `{label}` is not offered by this server (offered: {})", offered()),
        ));
    }
    Ok(label)
}

/// Refuses, at newOrder, identifiers the profile behind `label` would refuse at
/// finalization (its SAN rules and requester rules, judged by the core policy engine), so
/// no challenge is ever attempted for a name the profile does not allow: a server must
/// not be made to connect to addresses that could never be certified. The problem is
/// `rejectedIdentifier` (or `unauthorized` for requester rules) naming the rules.
fn check_profile_allows(
    state: &AcmeState,
    account: &Account,
    label: &str,
    identifiers: &[Identifier],
) -> Result<(), AcmeError> {
    let exposed = state.config.profile(label).ok_or_else(|| AcmeError::internal("the profile disappeared"))?;
    let profile = state.ca.profile(&exposed.profile).ok_or_else(|| {
        AcmeError::internal(format!("the endpoint is misconfigured: profile {} is not loaded", exposed.profile))
    })?;
    let mut names = Vec::with_capacity(identifiers.len());
    for id in identifiers {
        names.push(match id.kind {
            IdentifierType::Dns => San::Dns(id.value.clone()),
            IdentifierType::Ip => San::Ip(
                id.value.parse().map_err(|_| AcmeError::malformed(format!("`{}` is not an IP address", id.value)))?,
            ),
        });
    }
    let requester = crate::finalize::requester(state, account, identifiers);
    let violations = pkiplane_core::policy::check_requested_names(&profile, &requester, &names);
    if violations.is_empty() {
        return Ok(());
    }
    let denied = CoreError::Denied { profile: profile.id.clone(), violations };
    Err(AcmeError::from_core(&denied, identifiers))
}

/// newOrder (RFC 8555 section 7.4).
pub async fn new_order(State(state): State<AcmeState>, req: Signed<ByAccount>) -> Result<Response, AcmeError> {
    let account = req.account()?.clone();
    let payload: payload::NewOrder = req.payload()?;
    let identifiers = identifier::parse_list(payload.identifiers.as_deref())?;
    let profile = choose_profile(&state, payload.profile.as_deref())?;
    check_profile_allows(&state, &account, &profile, &identifiers)?;
    let not_before = parse_time(payload.not_before.as_deref(), "notBefore")?;
    let not_after = parse_time(payload.not_after.as_deref(), "notAfter")?;
    if let (Some(nb), Some(na)) = (not_before, not_after)
        && na <= nb
    {
        return Err(AcmeError::malformed("`notAfter` must be later than `notBefore`"));
    }
    let replaces = match payload.replaces.as_deref() {
        None => None,
        Some(cert_id) => Some(ari::replaced_certificate(&state, &account, cert_id).await?),
    };

    let now = SystemTime::now();
    let expires = now + state.config.order_lifetime;
    let mut authz_ids = Vec::with_capacity(identifiers.len());
    let mut new_authzs = Vec::new();
    for id in &identifiers {
        let (authz_id, wildcard) = identifier::authz_identifier(id);
        let types = offered(&state, &authz_id, wildcard);
        if types.is_empty() {
            return Err(AcmeError::new(
                ProblemType::RejectedIdentifier,
                format!("no challenge type this endpoint offers can validate {}", id.value),
            )
            .with_subproblem(ProblemType::RejectedIdentifier, "no usable challenge type", id.clone()));
        }
        if state.config.authz_reuse.is_some() {
            let query =
                AuthorizationQuery { account_id: account.id.clone(), identifier: authz_id.clone(), wildcard, now };
            if let Some(existing) = state.store.valid_authorization(&query).await? {
                authz_ids.push(existing.id);
                continue;
            }
        }
        let authz = Authorization {
            id: random_id(),
            account_id: account.id.clone(),
            identifier: authz_id,
            wildcard,
            status: AuthzStatus::Pending,
            expires,
            challenges: types
                .into_iter()
                .map(|kind| Challenge {
                    id: random_id(),
                    kind,
                    token: random_id(),
                    status: ChallengeStatus::Pending,
                    validated: None,
                    processing_since: None,
                    error: None,
                })
                .collect(),
            created_at: now,
            version: 0,
        };
        authz_ids.push(authz.id.clone());
        new_authzs.push(authz);
    }
    let order = Order {
        id: random_id(),
        account_id: account.id.clone(),
        status: OrderStatus::Pending,
        expires,
        identifiers,
        profile,
        not_before,
        not_after,
        authorizations: authz_ids,
        error: None,
        certificate: None,
        replaces,
        approval: None,
        created_at: now,
        version: 0,
    };
    match state.store.create_order(&order, &new_authzs).await? {
        NewOrderOutcome::Created => {}
        NewOrderOutcome::AlreadyReplaced(other) => {
            return Err(AcmeError::new(
                ProblemType::AlreadyReplaced,
                format!("the certificate is already being replaced by order {}", state.order_url(&other)),
            ));
        }
    }
    // Reused authorizations can make the order ready at once.
    let order = refresh(&state, order).await?;
    Ok(order_response(&state, StatusCode::CREATED, &order))
}

/// The order, owned by `account`.
pub async fn owned_order(state: &AcmeState, id: &str, account: &Account) -> Result<Order, AcmeError> {
    let order = state.store.order(id).await?.ok_or_else(|| AcmeError::not_found("the order"))?;
    if order.account_id != account.id {
        return Err(AcmeError::unauthorized("the order belongs to another account"));
    }
    Ok(order)
}

/// Brings a pending, ready or processing order's status up to date with its
/// authorizations, its issuance and its expiry, storing any change but pending -> ready
/// (compare-and-set, re-read on conflict).
pub async fn refresh(state: &AcmeState, mut order: Order) -> Result<Order, AcmeError> {
    for _ in 0..5 {
        let now = SystemTime::now();
        let mut certificate = None;
        let next = match order.status {
            OrderStatus::Processing => match processing_outcome(state, &order).await? {
                Processing::Issued(c) => {
                    certificate = Some(c);
                    Some((OrderStatus::Valid, None))
                }
                Processing::Abandoned => Some((OrderStatus::Ready, None)),
                Processing::Refused(problem) => Some((OrderStatus::Invalid, Some(problem))),
                Processing::InFlight if order.expires <= now => Some((
                    OrderStatus::Invalid,
                    Some(AcmeError::malformed("the order expired before its certificate was issued").to_json()),
                )),
                Processing::InFlight => None,
            },
            OrderStatus::Pending | OrderStatus::Ready if order.expires <= now => Some((
                OrderStatus::Invalid,
                Some(AcmeError::malformed("the order expired before it was finalized").to_json()),
            )),
            OrderStatus::Pending => match pending_outcome(state, &order, now).await? {
                // Ready follows from the authorizations on every read, so it is shown,
                // not stored (a durable write per order for nothing); finalize stores
                // the next state from the pending order's version.
                Some((OrderStatus::Ready, _)) => {
                    order.status = OrderStatus::Ready;
                    return Ok(finalizing_shown(state, order));
                }
                other => other,
            },
            _ => None,
        };
        let Some((status, error)) = next else {
            return Ok(finalizing_shown(state, order));
        };
        let mut updated = order.clone();
        updated.status = status;
        updated.error = error;
        if certificate.is_some() {
            updated.certificate = certificate;
        }
        if state.store.update_order(&updated).await? {
            updated.version += 1;
            return Ok(updated);
        }
        order = state.store.order(&order.id).await?.ok_or_else(|| AcmeError::not_found("the order"))?;
    }
    Ok(order)
}

/// A ready order that a request of this process is finalizing (claimed in memory, see
/// [`crate::alone`]) is shown processing, as a stored claim would be.
fn finalizing_shown(state: &AcmeState, mut order: Order) -> Order {
    if order.status == OrderStatus::Ready && state.alone.as_ref().is_some_and(|a| a.is_finalizing(&order.id)) {
        order.status = OrderStatus::Processing;
    }
    order
}

/// Where the issuance of a processing order stands, as the inventory records it under
/// the order's exchange key.
enum Processing {
    /// Issued: the server stopped before the order recorded it; the order becomes valid
    /// and the client downloads the certificate as usual.
    Issued(CertificateRef),
    /// Signing never completed (start-up recovery marked it abandoned): the order is
    /// ready again and may be finalized anew.
    Abandoned,
    /// Still being issued (or nothing recorded yet), or waiting for approval.
    InFlight,
    /// An approver denied it, or the current policy refuses it after approval: the
    /// order is invalid with this problem document.
    Refused(String),
}

async fn processing_outcome(state: &AcmeState, order: &Order) -> Result<Processing, AcmeError> {
    if let Some(request) = &order.approval {
        return approval_outcome(state, order, request).await;
    }
    let exchange = exchange_key(Protocol::Acme, &state.config.endpoint, &order.id);
    let records = state.ca.exchange_certificates(&exchange).await.map_err(|e| AcmeError::from_core(&e, &[]))?;
    if let Some(r) = records.iter().find(|r| matches!(r.status, CertStatus::Issued | CertStatus::Revoked)) {
        tracing::info!(order = %order.id, serial = %r.serial, "order completed from the inventory: its certificate was issued before the server stopped");
        return Ok(Processing::Issued(CertificateRef { issuer: r.issuer.clone(), serial: r.serial.clone() }));
    }
    if !records.is_empty() && records.iter().all(|r| r.status == CertStatus::Abandoned) {
        return Ok(Processing::Abandoned);
    }
    Ok(Processing::InFlight)
}

/// Where the approval request of a processing order stands.
async fn approval_outcome(state: &AcmeState, order: &Order, request: &str) -> Result<Processing, AcmeError> {
    match state.ca.approval_outcome(request).await {
        Ok(IssueOutcome::Pending(_)) => Ok(Processing::InFlight),
        Ok(IssueOutcome::Issued(issued)) => {
            tracing::info!(order = %order.id, request, serial = %issued.record.serial, "ACME order issued after approval");
            Ok(Processing::Issued(CertificateRef {
                issuer: issued.record.issuer.clone(),
                serial: issued.record.serial,
            }))
        }
        Ok(IssueOutcome::Denied(denied)) => {
            tracing::warn!(order = %order.id, request, by = %denied.by, reason = %denied.reason, "ACME order denied by an approver");
            Ok(Processing::Refused(AcmeError::approval_denied(&denied).to_json()))
        }
        Err(e) if matches!(e.kind(), ErrorKind::Denied | ErrorKind::BadRequest) => {
            Ok(Processing::Refused(AcmeError::from_core(&e, &order.identifiers).to_json()))
        }
        Err(e) => Err(AcmeError::from_core(&e, &order.identifiers)),
    }
}

/// What a pending order becomes given its authorizations (None: still pending).
async fn pending_outcome(
    state: &AcmeState,
    order: &Order,
    now: SystemTime,
) -> Result<Option<(OrderStatus, Option<String>)>, AcmeError> {
    let mut all_valid = true;
    for id in &order.authorizations {
        let a =
            state.store.authorization(id).await?.ok_or_else(|| AcmeError::internal("an authorization is missing"))?;
        match authz::effective_status(&a, now) {
            AuthzStatus::Valid => {}
            AuthzStatus::Pending => all_valid = false,
            other => return Ok(Some((OrderStatus::Invalid, Some(failed_authz_problem(&a, other))))),
        }
    }
    Ok(all_valid.then_some((OrderStatus::Ready, None)))
}

/// The order's error when an authorization failed: the challenge's problem, with the
/// identifier as a subproblem.
fn failed_authz_problem(a: &Authorization, status: AuthzStatus) -> String {
    let from_challenge = a.challenges.iter().find_map(|c| c.error.as_deref());
    let mut doc: Value = from_challenge.and_then(|e| serde_json::from_str(e).ok()).unwrap_or_else(|| {
        serde_json::from_str(
            &AcmeError::unauthorized(format!("the authorization for {} is {}", a.identifier.value, status.as_str()))
                .to_json(),
        )
        .unwrap_or(Value::Null)
    });
    let sub = json!([{ "type": doc["type"].clone(), "detail": doc["detail"].clone(), "identifier": a.identifier }]);
    doc["subproblems"] = sub;
    doc.to_string()
}

/// POST-as-GET of an order.
pub async fn order(
    State(state): State<AcmeState>,
    Path(id): Path<String>,
    req: Signed<ByAccount>,
) -> Result<Response, AcmeError> {
    if !req.post_as_get() {
        return Err(AcmeError::malformed("orders are read with POST-as-GET (an empty payload)"));
    }
    let order = refresh(&state, owned_order(&state, &id, req.account()?).await?).await?;
    Ok(order_response(&state, StatusCode::OK, &order))
}
