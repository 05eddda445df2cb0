//! The directory (RFC 8555 section 7.1.1): the URLs of every resource, and `meta` with the
//! terms of service, whether external account binding is required, and the exposed
//! profiles (ACME profiles extension: label -> description). `renewalInfo` is RFC 9773's.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value, json};

use crate::{AcmeState, paths, respond};

/// The directory object.
pub fn document(state: &AcmeState) -> Value {
    let mut profiles = Map::new();
    for p in &state.config.profiles {
        let description = state
            .ca
            .profile(&p.profile)
            .map(|prof| prof.description.clone())
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| format!("CertificateProfile {}", p.profile));
        profiles.insert(p.label.clone(), Value::String(description));
    }
    let mut meta = Map::new();
    if let Some(tos) = &state.config.terms_of_service {
        meta.insert("termsOfService".into(), json!(tos));
    }
    meta.insert("externalAccountRequired".into(), json!(state.config.eab.as_ref().is_some_and(|e| e.required)));
    meta.insert("profiles".into(), Value::Object(profiles));
    json!({
        "newNonce": state.url(paths::NEW_NONCE),
        "newAccount": state.url(paths::NEW_ACCOUNT),
        "newOrder": state.url(paths::NEW_ORDER),
        "revokeCert": state.url(paths::REVOKE_CERT),
        "keyChange": state.url(paths::KEY_CHANGE),
        "renewalInfo": state.url(paths::RENEWAL_INFO),
        "meta": meta,
    })
}

pub async fn directory(State(state): State<AcmeState>) -> Response {
    respond::json(StatusCode::OK, &document(&state))
}
