//! HTTP requests by status class, one middleware for every listener: wrap a listener's
//! routes with [`instrument`].

use std::sync::OnceLock;

use axum::Router;
use axum::extract::Request;
use axum::middleware::Next;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use crate::register;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// Which listener: `endpoint`, `publication`, `ca-api`, `webhook`, `health`.
    pub listener: String,
    /// `namespace/name` of the EnrollmentEndpoint on an endpoint listener, else empty.
    pub endpoint: String,
    /// `1xx` .. `5xx`.
    pub code: String,
}

/// HTTP requests answered, by listener, endpoint and status class.
pub fn metrics() -> &'static Family<HttpLabels, Counter> {
    static METRICS: OnceLock<Family<HttpLabels, Counter>> = OnceLock::new();
    METRICS.get_or_init(|| {
        let f = Family::default();
        register("http_requests", "HTTP requests answered, by listener, endpoint and status class", None, f.clone());
        f
    })
}

/// `router` counting each answered request under `listener` and `endpoint` (`""` when
/// the listener serves no EnrollmentEndpoint).
pub fn instrument(router: Router, listener: &'static str, endpoint: &str) -> Router {
    let family = metrics();
    let endpoint = endpoint.to_string();
    router.layer(axum::middleware::from_fn(move |req: Request, next: Next| {
        let endpoint = endpoint.clone();
        async move {
            let response = next.run(req).await;
            let code = format!("{}xx", response.status().as_u16() / 100);
            family.get_or_create(&HttpLabels { listener: listener.to_string(), endpoint, code }).inc();
            response
        }
    }))
}
