//! Accounts (RFC 8555 section 7.3): creation and lookup by key (newAccount with
//! `onlyReturnExisting`), contact updates, deactivation (7.3.6), key rollover (7.3.5) and
//! the orders list (7.1.2.1).

use crate::payload::{AccountChange, NewAccount};
use crate::signed::{ByAccount, ByKey, Signed};
use std::time::SystemTime;

use crate::state::{Account, AccountStatus, AccountUpdate, NewAccountOutcome};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use crate::jwk::Jwk;
use crate::jws::Jws;
use crate::nonce::random_id;
use crate::problem::{AcmeError, ProblemType};
use crate::{AcmeState, eab, identifier, respond};

/// The account object (RFC 8555 section 7.1.2).
pub fn account_json(state: &AcmeState, a: &Account) -> Value {
    let status = match a.status {
        AccountStatus::Valid => "valid",
        AccountStatus::Deactivated => "deactivated",
        AccountStatus::Revoked => "revoked",
    };
    json!({
        "status": status,
        "contact": a.contact,
        "termsOfServiceAgreed": a.terms_agreed,
        "orders": state.orders_url(&a.id),
    })
}

fn account_response(state: &AcmeState, status: StatusCode, a: &Account) -> Response {
    respond::with_location(respond::json(status, &account_json(state, a)), &state.account_url(&a.id))
}

/// Checks `contact` URLs: `mailto:` with one plain address each (RFC 8555 section 7.3).
pub fn check_contacts(list: &[String]) -> Result<Vec<String>, AcmeError> {
    if list.len() > 10 {
        return Err(AcmeError::new(ProblemType::InvalidContact, "at most 10 contacts are accepted"));
    }
    let mut out = Vec::new();
    for c in list {
        let url = c.as_str();
        let Some(addr) = url.strip_prefix("mailto:") else {
            return Err(AcmeError::new(
                ProblemType::UnsupportedContact,
                format!("contact `{url}` is not a mailto: URL, the only kind supported"),
            ));
        };
        let invalid = |why: &str| AcmeError::new(ProblemType::InvalidContact, format!("contact `{url}`: {why}"));
        if addr.contains(['?', ',', ' ', '<', '>']) || addr.len() > 254 {
            return Err(invalid("one plain e-mail address without header fields is expected"));
        }
        let (local, domain) = addr.split_once('@').ok_or_else(|| invalid("the address has no @"))?;
        if local.is_empty() || domain.contains('@') {
            return Err(invalid("the address is not local@domain"));
        }
        identifier::dns_name(domain).map_err(|why| invalid(&why))?;
        out.push(url.to_owned());
    }
    Ok(out)
}

/// newAccount (RFC 8555 section 7.3, 7.3.1, 7.3.4).
pub async fn new_account(State(state): State<AcmeState>, req: Signed<ByKey>) -> Result<Response, AcmeError> {
    let url = &req.url;
    let payload: NewAccount = req.payload()?;
    let thumbprint = req.key.thumbprint();
    if let Some(existing) = state.store.account_by_thumbprint(&thumbprint).await? {
        if existing.status != AccountStatus::Valid {
            return Err(AcmeError::unauthorized("the account of this key is deactivated"));
        }
        return Ok(account_response(&state, StatusCode::OK, &existing));
    }
    if payload.only_return_existing {
        return Err(AcmeError::new(ProblemType::AccountDoesNotExist, "no account exists for this key"));
    }
    let contact = check_contacts(payload.contact.as_deref().unwrap_or_default())?;
    let agreed = payload.terms_of_service_agreed;
    if state.config.terms_of_service.is_some() && !agreed {
        return Err(AcmeError::malformed("new accounts must agree to the terms of service (termsOfServiceAgreed)"));
    }
    let eab = eab::verify(state.config.eab.as_ref(), payload.external_account_binding.as_ref(), &req.key, url)?;
    let account = Account {
        id: random_id(),
        status: AccountStatus::Valid,
        jwk: req.key.canonical_json(),
        thumbprint,
        contact,
        terms_agreed: agreed,
        eab_kid: eab.as_ref().map(|e| e.kid.clone()),
        created_at: SystemTime::now(),
        version: 0,
    };
    match state.store.create_account(&account, eab.as_ref()).await? {
        NewAccountOutcome::Created => {
            tracing::info!(account = %account.id, eab = ?account.eab_kid, "ACME account created");
            Ok(account_response(&state, StatusCode::CREATED, &account))
        }
        NewAccountOutcome::KeyExists(existing) => Ok(account_response(&state, StatusCode::OK, &existing)),
        NewAccountOutcome::EabKeyUsed => Err(AcmeError::unauthorized(format!(
            "external account key ID `{}` has already bound an account",
            eab.map(|e| e.kid).unwrap_or_default()
        ))),
    }
}

/// Applies `change` to the account and stores it, re-reading on a concurrent update.
async fn update_account(
    state: &AcmeState,
    mut account: Account,
    change: impl Fn(&mut Account),
) -> Result<Account, AcmeError> {
    for _ in 0..5 {
        change(&mut account);
        let outcome = state.store.update_account(&account).await;
        if let Some(alone) = &state.alone {
            alone.forget_account(&account.id);
        }
        match outcome? {
            AccountUpdate::Done => {
                account.version += 1;
                return Ok(account);
            }
            AccountUpdate::KeyInUse(other) => {
                let mut e = AcmeError::new(ProblemType::Malformed, "the new key belongs to another account")
                    .with_status(StatusCode::CONFLICT);
                e.location = Some(state.account_url(&other));
                return Err(e);
            }
            AccountUpdate::Conflict => {
                account = state.store.account(&account.id).await?.ok_or_else(|| AcmeError::not_found("the account"))?;
            }
        }
    }
    Err(AcmeError::unavailable("the account is being changed concurrently; retry"))
}

/// POST to the account URL: POST-as-GET, contact update or deactivation (RFC 8555
/// section 7.3.2, 7.3.6).
pub async fn account(
    State(state): State<AcmeState>,
    Path(id): Path<String>,
    req: Signed<ByAccount>,
) -> Result<Response, AcmeError> {
    let account = req.account()?.clone();
    if account.id != id {
        return Err(AcmeError::unauthorized("requests may only read or change the signing account"));
    }
    if req.post_as_get() {
        return Ok(account_response(&state, StatusCode::OK, &account));
    }
    let payload: AccountChange = req.payload()?;
    match payload.status.as_deref() {
        Some("deactivated") => {
            let account = update_account(&state, account, |a| a.status = AccountStatus::Deactivated).await?;
            tracing::info!(account = %account.id, "ACME account deactivated");
            return Ok(account_response(&state, StatusCode::OK, &account));
        }
        Some(other) if other != "valid" => {
            return Err(AcmeError::malformed(format!(
                "an account's status can only be set to deactivated, not {other}"
            )));
        }
        _ => {}
    }
    if let Some(contact) = &payload.contact {
        let contact = check_contacts(contact)?;
        let account = update_account(&state, account, |a| a.contact = contact.clone()).await?;
        return Ok(account_response(&state, StatusCode::OK, &account));
    }
    Ok(account_response(&state, StatusCode::OK, &account))
}

/// The account's orders (RFC 8555 section 7.1.2.1), newest first (at most 1000).
pub async fn orders(
    State(state): State<AcmeState>,
    Path(id): Path<String>,
    req: Signed<ByAccount>,
) -> Result<Response, AcmeError> {
    if req.account()?.id != id {
        return Err(AcmeError::unauthorized("requests may only list the signing account's orders"));
    }
    let ids = state.store.account_orders(&id, 1000).await?;
    let urls: Vec<String> = ids.iter().map(|o| state.order_url(o)).collect();
    Ok(respond::json(StatusCode::OK, &json!({ "orders": urls })))
}

/// keyChange (RFC 8555 section 7.3.5): the outer JWS is signed by the current key, the
/// inner by the new one, which must not belong to any account yet.
pub async fn key_change(State(state): State<AcmeState>, req: Signed<ByAccount>) -> Result<Response, AcmeError> {
    let url = &req.url;
    let account = req.account()?.clone();
    let inner = Jws::parse_value(&req.json()?)?;
    let h = &inner.header;
    if h.kid.is_some() || h.nonce.is_some() {
        return Err(AcmeError::malformed("the inner JWS must carry `jwk` and no `kid` or `nonce`"));
    }
    if h.url.as_deref() != Some(url.as_str()) {
        return Err(AcmeError::malformed("the inner JWS `url` must equal the outer one"));
    }
    let new_key = Jwk::from_value(h.jwk.as_ref().ok_or_else(|| AcmeError::malformed("the inner JWS has no `jwk`"))?)?;
    if !crate::jwk::ALGORITHMS.contains(&h.alg.as_str()) {
        return Err(AcmeError::new(
            ProblemType::BadSignatureAlgorithm,
            format!("algorithm {} is not supported", h.alg),
        ));
    }
    inner.verify(&new_key)?;
    let payload = inner.json()?;
    if payload.get("account").and_then(Value::as_str) != Some(state.account_url(&account.id).as_str()) {
        return Err(AcmeError::malformed("the inner payload's `account` is not the signing account"));
    }
    let old = Jwk::from_value(payload.get("oldKey").unwrap_or(&Value::Null))?;
    if old.thumbprint() != account.thumbprint {
        return Err(AcmeError::malformed("`oldKey` is not the account's current key"));
    }
    let thumbprint = new_key.thumbprint();
    if thumbprint == account.thumbprint {
        return Err(AcmeError::malformed("the new key is the current key"));
    }
    let jwk = new_key.canonical_json();
    let account = update_account(&state, account, |a| {
        a.jwk = jwk.clone();
        a.thumbprint = thumbprint.clone();
    })
    .await?;
    tracing::info!(account = %account.id, "ACME account key rolled over");
    Ok(account_response(&state, StatusCode::OK, &account))
}
