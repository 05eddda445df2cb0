//! HTTP routes: `/validate`, `/mutate` (AdmissionReview v1 in, AdmissionReview out),
//! `/healthz`, `/readyz`. Bodies are limited to 1 MiB and each review to
//! [`REVIEW_TIMEOUT`], well below the 5 s the configurations give the API server.

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State as AxumState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use kube::Client;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};
use pkiplane_webhook::{AdmissionMode, review};

use super::cache::Cache;
use super::references::{fetch_missing, fetch_secrets, references};

/// Largest AdmissionReview accepted.
pub const MAX_BODY: usize = 1 << 20;
/// Longest a review may take, Secret GETs included.
pub const REVIEW_TIMEOUT: Duration = Duration::from_secs(4);

#[derive(Clone)]
pub struct State {
    pub cache: Cache,
    pub client: Client,
}

pub fn router(state: State) -> axum::Router {
    axum::Router::new()
        .route("/validate", post(validate))
        .route("/mutate", post(mutate))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

async fn ready(AxumState(state): AxumState<State>) -> Response {
    match state.cache.view() {
        Some(_) => (StatusCode::OK, "ready").into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, "watch cache not synced yet").into_response(),
    }
}

async fn validate(AxumState(state): AxumState<State>, body: Bytes) -> Response {
    handle(state, body, AdmissionMode::Validate).await
}

async fn mutate(AxumState(state): AxumState<State>, body: Bytes) -> Response {
    handle(state, body, AdmissionMode::Mutate).await
}

async fn handle(state: State, body: Bytes, mode: AdmissionMode) -> Response {
    let request: AdmissionRequest<DynamicObject> = match serde_json::from_slice::<AdmissionReview<DynamicObject>>(&body)
        .map_err(|e| e.to_string())
        .and_then(|r| r.try_into().map_err(|e: kube::core::admission::ConvertAdmissionReviewError| e.to_string()))
    {
        Ok(r) => r,
        Err(e) => {
            let response = AdmissionResponse::invalid(format!("not an AdmissionReview with a request: {e}"));
            return (StatusCode::BAD_REQUEST, Json(response.into_review())).into_response();
        }
    };
    let started = std::time::Instant::now();
    let response = match tokio::time::timeout(REVIEW_TIMEOUT, answer(&state, &request, mode)).await {
        Ok(r) => r,
        Err(_) => refuse(&request, "pkiplane's webhook timed out reading the cluster; try again"),
    };
    tracing::info!(
        mode = ?mode,
        kind = %request.kind.kind,
        namespace = request.namespace.as_deref().unwrap_or(""),
        name = %request.name,
        operation = ?request.operation,
        dry_run = request.dry_run,
        allowed = response.allowed,
        elapsed_us = started.elapsed().as_micros() as u64,
        "admission review"
    );
    Json(response.into_review()).into_response()
}

async fn answer(state: &State, request: &AdmissionRequest<DynamicObject>, mode: AdmissionMode) -> AdmissionResponse {
    let Some(view) = state.cache.view() else {
        return refuse(request, "pkiplane's webhook is starting (its watch cache has not synced); try again");
    };
    if mode == AdmissionMode::Mutate {
        return review(request, &view, mode);
    }
    let refs = references(request);
    let (issuers, profiles) = fetch_missing(&state.client, &view, &refs).await;
    let view =
        if issuers.is_empty() && profiles.is_empty() { view } else { state.cache.view_with(&issuers, &profiles, &[]) };
    // Secrets are always "visible" (an object naming none gets an empty set), so the
    // webhook runs exactly the checks `pkiplane policy lint` runs.
    let view = match fetch_secrets(&state.client, &refs).await {
        Ok(secrets) => view.with_secrets(Some(std::sync::Arc::new(secrets))),
        Err(e) => return refuse(request, &e),
    };
    review(request, &view, mode)
}

fn refuse(request: &AdmissionRequest<DynamicObject>, message: &str) -> AdmissionResponse {
    let mut response = AdmissionResponse::from(request).deny(message);
    response.result.code = 503;
    response
}
