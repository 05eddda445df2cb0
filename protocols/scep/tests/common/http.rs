//! A minimal HTTP/1.1 client (hyper) for the tests.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

pub struct Response {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
}

pub async fn request(method: &str, url: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Response {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut req = hyper::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = client.request(req.body(Full::new(Bytes::from(body))).unwrap()).await.unwrap();
    let status = resp.status().as_u16();
    let content_type = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let body = resp.into_body().collect().await.unwrap().to_bytes().to_vec();
    Response { status, content_type, body }
}

pub async fn get(url: &str) -> Response {
    request("GET", url, &[], Vec::new()).await
}

pub async fn post(url: &str, body: Vec<u8>) -> Response {
    request("POST", url, &[("content-type", "application/x-pki-message")], body).await
}
