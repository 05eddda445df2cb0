//! pkiplane's EST server: Enrollment over Secure Transport (RFC 7030, with the RFC 8951
//! clarifications), the protocol devices use to get and renew certificates.
//!
//! Operations, at `/.well-known/est/<op>` (the endpoint's default profile) and
//! `/.well-known/est/<label>/<op>` (RFC 7030 section 3.2.2):
//!
//! | operation | method | RFC 7030 | answer |
//! |---|---|---|---|
//! | `cacerts` | GET | 4.1 | certs-only CMS with the profile's issuer chain, then any staged next CA (and a next root's link certificates) |
//! | `simpleenroll` | POST | 4.2.1 | certs-only CMS with the new certificate |
//! | `simplereenroll` | POST | 4.2.2 | the same, renewing the TLS client certificate |
//! | `csrattrs` | GET | 4.5 | the attributes the profile wants in a CSR |
//! | `serverkeygen` | POST | 4.4 | `multipart/mixed`: the generated key and its certificate |
//! | `fullcmc` | POST | 4.3 | 501: Full CMC is not offered |
//!
//! The server is a transport: it authenticates the client (TLS client certificate and/or
//! HTTP Basic, [`auth`]) and hands (CSR, requester, profile) to the CA core
//! ([`pkiplane_core::issuance::Ca::issue`]), which alone decides validity, subject,
//! extensions and algorithms; denials come back as 403 naming every violated rule.
//!
//! The TLS layer in front of [`router`] must insert [`pkiplane_core::model::TlsPeer`]
//! (the client's chain, unvalidated, and the RFC 9266 `tls-exporter` value) and, for
//! per-address rate limiting of Basic failures,
//! `axum::extract::ConnectInfo<std::net::SocketAddr>` as request extensions.
#![forbid(unsafe_code)]

#[cfg(feature = "server")]
pub mod auth;
#[cfg(feature = "server")]
pub mod cms;
#[cfg(feature = "server")]
pub mod csrattrs;
#[cfg(feature = "server")]
pub mod enroll;
#[cfg(feature = "server")]
pub mod envelope;
#[cfg(feature = "server")]
pub mod error;
#[cfg(feature = "server")]
pub mod keygen;
pub mod settings;
#[cfg(feature = "server")]
pub mod signer;
pub mod state;
#[cfg(feature = "server")]
pub mod tls;
#[cfg(feature = "server")]
pub mod wire;

#[cfg(feature = "server")]
use std::net::SocketAddr;
#[cfg(feature = "server")]
use std::sync::Arc;

#[cfg(feature = "server")]
use crate::state::AuthFailureStore;
#[cfg(feature = "server")]
use axum::Router;
#[cfg(feature = "server")]
use axum::body::Body;
#[cfg(feature = "server")]
use axum::extract::{ConnectInfo, Path, Request, State};
#[cfg(feature = "server")]
use axum::http::{HeaderValue, Method, StatusCode, header};
#[cfg(feature = "server")]
use axum::response::{IntoResponse, Response};
#[cfg(feature = "server")]
use axum::routing::any;
#[cfg(feature = "server")]
use pkiplane_core::model::TlsPeer;
#[cfg(feature = "server")]
use pkiplane_core::service::Authority;

#[cfg(feature = "server")]
pub use error::EstError;
pub use settings::{BasicAuthConfig, ClientCertAuth, EstSettings, ExposedProfile, Limits};

/// The EST path prefix (RFC 7030 section 3.2.2, RFC 8615).
pub const WELL_KNOWN: &str = "/.well-known/est";

/// The EST operations (RFC 7030 section 3.2.2, table 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    CaCerts,
    SimpleEnroll,
    SimpleReenroll,
    FullCmc,
    ServerKeygen,
    CsrAttrs,
}

impl Operation {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "cacerts" => Operation::CaCerts,
            "simpleenroll" => Operation::SimpleEnroll,
            "simplereenroll" => Operation::SimpleReenroll,
            "fullcmc" => Operation::FullCmc,
            "serverkeygen" => Operation::ServerKeygen,
            "csrattrs" => Operation::CsrAttrs,
            _ => return None,
        })
    }

    #[cfg(feature = "server")]
    fn method(self) -> Method {
        match self {
            Operation::CaCerts | Operation::CsrAttrs => Method::GET,
            _ => Method::POST,
        }
    }
}

#[cfg(feature = "server")]
/// What every request handler shares.
#[derive(Clone)]
pub struct EstState {
    pub config: Arc<EstSettings>,
    pub ca: Arc<dyn Authority>,
    /// Failed Basic attempts, shared between replicas when the store is.
    pub failures: Arc<dyn AuthFailureStore>,
    /// pkiplane's own signing certificates for server-generated key packages.
    pub signers: Arc<signer::KeyPackageSigners>,
}

#[cfg(feature = "server")]
impl EstState {
    pub fn new(config: EstSettings, ca: Arc<dyn Authority>, failures: Arc<dyn AuthFailureStore>) -> Self {
        Self { config: Arc::new(config), ca, failures, signers: Arc::default() }
    }
}

#[cfg(feature = "server")]
/// What a handler knows about the request beyond its body.
pub struct RequestContext {
    pub profile: ExposedProfile,
    pub headers: axum::http::HeaderMap,
    pub peer: Option<TlsPeer>,
    pub client: Option<SocketAddr>,
}

#[cfg(feature = "server")]
/// The EST routes.
pub fn router(state: EstState) -> Router {
    Router::new()
        .route(&format!("{WELL_KNOWN}/{{op}}"), any(unlabelled))
        .route(&format!("{WELL_KNOWN}/{{label}}/{{op}}"), any(labelled))
        .fallback(|| async { EstError::NotFound("not an EST resource (see RFC 7030 section 3.2.2)".into()) })
        .with_state(state)
}

#[cfg(feature = "server")]
async fn unlabelled(State(state): State<EstState>, Path(op): Path<String>, req: Request) -> Response {
    let Some(label) = state.config.default_profile.clone() else {
        return EstError::NotFound(format!(
            "this endpoint has no default profile; use {WELL_KNOWN}/<label>/{op} with one of: {}",
            labels(&state)
        ))
        .into_response();
    };
    dispatch(state, &label, &op, req).await
}

#[cfg(feature = "server")]
async fn labelled(State(state): State<EstState>, Path((label, op)): Path<(String, String)>, req: Request) -> Response {
    dispatch(state, &label, &op, req).await
}

#[cfg(feature = "server")]
fn labels(state: &EstState) -> String {
    state.config.profiles.iter().map(|p| p.label.as_str()).collect::<Vec<_>>().join(", ")
}

#[cfg(feature = "server")]
async fn dispatch(state: EstState, label: &str, op: &str, req: Request) -> Response {
    let Some(operation) = Operation::parse(op) else {
        return EstError::NotFound(format!("`{op}` is not an EST operation")).into_response();
    };
    let Some(profile) = state.config.profile(label).cloned() else {
        return EstError::NotFound(format!(
            "no profile is exposed under the label `{label}` (labels: {})",
            labels(&state)
        ))
        .into_response();
    };
    if req.method() != operation.method() && !(operation.method() == Method::GET && req.method() == Method::HEAD) {
        let mut rsp = (StatusCode::METHOD_NOT_ALLOWED, format!("{op} takes {}\n", operation.method())).into_response();
        let allow = if operation.method() == Method::GET { "GET, HEAD" } else { "POST" };
        rsp.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allow));
        return rsp;
    }
    let (parts, body) = req.into_parts();
    let ctx = RequestContext {
        profile,
        peer: parts.extensions.get::<TlsPeer>().cloned(),
        client: parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0),
        headers: parts.headers,
    };
    let result = match operation {
        Operation::CaCerts => enroll::cacerts(&state, &ctx),
        Operation::CsrAttrs => csrattrs::csrattrs(&state, &ctx),
        Operation::SimpleEnroll => enroll::simpleenroll(&state, &ctx, body, false).await,
        Operation::SimpleReenroll => enroll::simpleenroll(&state, &ctx, body, true).await,
        Operation::ServerKeygen => keygen::serverkeygen(&state, &ctx, body).await,
        Operation::FullCmc => {
            drop::<Body>(body);
            Err(EstError::NotImplemented(
                "Full CMC (RFC 7030 4.3) is not offered; use simpleenroll or simplereenroll".into(),
            ))
        }
    };
    result.unwrap_or_else(IntoResponse::into_response)
}
