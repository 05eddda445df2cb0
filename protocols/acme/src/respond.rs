//! Building responses: JSON resources with `Location` and `Link` headers, bounded request
//! bodies.

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::jws::MAX_BODY;
use crate::problem::AcmeError;

/// A JSON response.
pub fn json(status: StatusCode, value: &impl Serialize) -> Response {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut rsp = (status, body).into_response();
    rsp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    rsp
}

pub fn with_location(mut rsp: Response, url: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(url) {
        rsp.headers_mut().insert(header::LOCATION, v);
    }
    rsp
}

/// Adds `Link: <url>;rel="rel"`.
pub fn with_link(mut rsp: Response, url: &str, rel: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(&format!("<{url}>;rel=\"{rel}\"")) {
        rsp.headers_mut().append(header::LINK, v);
    }
    rsp
}

/// Reads a request body of at most [`MAX_BODY`] bytes.
pub async fn read_body(body: Body) -> Result<Bytes, AcmeError> {
    axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
        AcmeError::malformed(format!("the request body is larger than {MAX_BODY} bytes or could not be read"))
            .with_status(StatusCode::PAYLOAD_TOO_LARGE)
    })
}

/// Unknown paths.
pub async fn not_found() -> AcmeError {
    AcmeError::not_found("this resource")
}

/// A known path with the wrong method (ACME resources are POST, except the directory,
/// newNonce and renewalInfo).
pub async fn method_not_allowed() -> AcmeError {
    AcmeError::malformed("this resource does not accept that method").with_status(StatusCode::METHOD_NOT_ALLOWED)
}
