//! A hand-made ACME client for requests real clients never send: replayed nonces, wrong
//! URLs, foreign signatures, unknown algorithms.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use pkiplane_acme::signer::AccountKey;
use serde_json::{Value, json};

pub struct Raw {
    client: Client<HttpConnector, Full<Bytes>>,
    pub base: String,
}

pub struct Reply {
    pub status: u16,
    pub location: Option<String>,
    pub nonce: Option<String>,
    pub body: Value,
    pub text: String,
    /// Every `Link` header value.
    pub links: Vec<String>,
    pub retry_after: Option<String>,
}

impl Reply {
    /// The problem type after the ACME URN prefix.
    pub fn problem(&self) -> &str {
        self.body["type"].as_str().unwrap_or("").trim_start_matches("urn:ietf:params:acme:error:")
    }
}

impl Raw {
    pub fn new(base: &str) -> Self {
        Self { client: Client::builder(TokioExecutor::new()).build_http(), base: base.to_owned() }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn send(&self, req: hyper::Request<Full<Bytes>>) -> Reply {
        let rsp = self.client.request(req).await.expect("request");
        let status = rsp.status().as_u16();
        let header = |n: &str| rsp.headers().get(n).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let (location, nonce, retry_after) = (header("location"), header("replay-nonce"), header("retry-after"));
        let links = rsp.headers().get_all("link").iter().filter_map(|v| v.to_str().ok()).map(str::to_owned).collect();
        let bytes = rsp.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply { status, location, nonce, body, text, links, retry_after }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(hyper::Request::get(self.url(path)).body(Full::default()).unwrap()).await
    }

    pub async fn nonce(&self) -> String {
        let r = self.send(hyper::Request::head(self.url("/new-nonce")).body(Full::default()).unwrap()).await;
        assert_eq!(r.status, 200);
        r.nonce.expect("Replay-Nonce")
    }

    /// POSTs a JWS body to `url` with the given content type.
    pub async fn post_with_type(&self, url: &str, body: &Value, content_type: &str) -> Reply {
        let req = hyper::Request::post(url)
            .header("content-type", content_type)
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap();
        self.send(req).await
    }

    pub async fn post(&self, url: &str, body: &Value) -> Reply {
        self.post_with_type(url, body, "application/jose+json").await
    }

    /// A JWS by `key` naming itself by `jwk` (kid None) or by account URL.
    pub async fn signed(&self, key: &AccountKey, kid: Option<&str>, url: &str, payload: Option<&Value>) -> Reply {
        let nonce = self.nonce().await;
        let mut header = json!({"nonce": nonce, "url": url});
        match kid {
            Some(k) => header["kid"] = json!(k),
            None => header["jwk"] = key.jwk(),
        }
        self.post(url, &key.jws(header, payload)).await
    }

    /// Creates an account for `key`; returns its URL.
    /// A new ES256 account key and the account created with it (its URL).
    pub async fn account(&self) -> (AccountKey, String) {
        let key = AccountKey::generate_es256();
        let kid = self.new_account(&key).await;
        (key, kid)
    }

    pub async fn new_account(&self, key: &AccountKey) -> String {
        let url = self.url("/new-account");
        let r = self.signed(key, None, &url, Some(&json!({"termsOfServiceAgreed": true}))).await;
        assert_eq!(r.status, 201, "{}", r.text);
        r.location.expect("account Location")
    }
}
