//! The one-time challenge API on the SCEP router:
//!
//! ```text
//! POST /scep/challenges
//! Authorization: Bearer <token from dynamicChallenges.apiSecretRef>
//! Content-Type: application/json
//! {"commonName": "device-17", "sans": ["DNS:device-17.example.com"], "ttl": "1h"}
//!
//! 201 Created
//! {"id": "...", "challenge": "<40 hex digits>", "expires": "<unix seconds>",
//!  "commonName": "device-17", "sans": ["DNS:device-17.example.com"]}
//! ```
//!
//! Every field of the request is optional; `ttl` defaults to the endpoint's and may not
//! exceed it. Tokens are compared in constant time; neither tokens nor challenges are
//! logged.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use pkiplane_core::inventory::unix_seconds::to_secs;
use serde::{Deserialize, Serialize};

use crate::ScepState;
use crate::challenge::{ChallengeBinding, mint_challenge};
use crate::error::ScepError;

/// The request body.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MintRequest {
    #[serde(default)]
    pub common_name: Option<String>,
    #[serde(default)]
    pub sans: Vec<String>,
    /// e.g. "15m", "1h"; at most the endpoint's ttl.
    #[serde(default)]
    pub ttl: Option<String>,
}

/// The response body.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MintResponse {
    pub id: String,
    pub challenge: String,
    /// Unix seconds.
    pub expires: i64,
    pub common_name: Option<String>,
    pub sans: Vec<String>,
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], serde_json::json!({ "error": message }).to_string())
        .into_response()
}

/// `POST /scep/challenges`.
pub async fn mint(State(state): State<ScepState>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let config = state.config();
    let Some(dynamic) = &config.dynamic_challenges else {
        return error(StatusCode::NOT_FOUND, "one-time challenges are not enabled on this endpoint");
    };
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim);
    let Some(client) = token.and_then(|t| dynamic.api_tokens.client_for(t.as_bytes())) else {
        tracing::warn!(endpoint = %config.endpoint, "challenge API: missing or wrong bearer token");
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer realm=\"pkiplane-scep\"")],
            "a valid bearer token is required",
        )
            .into_response();
    };
    let req: MintRequest = if body.iter().all(u8::is_ascii_whitespace) {
        MintRequest::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => return error(StatusCode::BAD_REQUEST, &format!("request body: {e}")),
        }
    };
    let ttl = match &req.ttl {
        None => dynamic.ttl,
        Some(t) => match pkiplane_core::duration::parse_duration(t) {
            Ok(d) if d <= dynamic.ttl => d,
            Ok(_) => return error(StatusCode::BAD_REQUEST, "ttl exceeds the endpoint's dynamicChallenges.ttl"),
            Err(e) => return error(StatusCode::BAD_REQUEST, &format!("ttl: {e}")),
        },
    };
    let binding = ChallengeBinding { common_name: req.common_name, sans: req.sans };
    match mint_challenge(state.store().as_ref(), &config.endpoint, ttl, binding, &client, state.now()).await {
        Ok(m) => {
            let body = MintResponse {
                id: m.challenge.id.clone(),
                challenge: m.value.to_string(),
                expires: to_secs(m.challenge.expires),
                common_name: m.challenge.common_name.clone(),
                sans: m.challenge.sans.clone(),
            };
            let json = serde_json::to_string(&body).unwrap_or_default();
            (
                StatusCode::CREATED,
                [(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "no-store")],
                json,
            )
                .into_response()
        }
        Err(ScepError::BadRequest(m)) => error(StatusCode::BAD_REQUEST, &m),
        Err(e) => {
            tracing::error!(endpoint = %config.endpoint, error = %e, "challenge API");
            error(e.http_status(), "could not mint a challenge")
        }
    }
}
