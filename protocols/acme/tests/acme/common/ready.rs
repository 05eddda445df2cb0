//! The steps most raw-client tests share before their subject: an account, an order for
//! one DNS name, its http-01 challenge answered, the order ready.

use std::time::Duration;

use pkiplane_acme::jwk::Jwk;
use pkiplane_acme::signer::AccountKey;
use serde_json::{Value, json};

use super::Env;
use super::raw::{Raw, Reply};

/// An order made over [`Raw`] whose only authorization was validated by http-01.
pub struct ReadyOrder {
    pub key: AccountKey,
    /// The account URL.
    pub kid: String,
    /// The order URL.
    pub url: String,
    pub finalize_url: String,
    /// The answer to the challenge response (`{}`).
    pub challenge: Reply,
}

/// POST-as-GET of `url` until `done` holds for the body (at most 10 s).
pub async fn poll(raw: &Raw, key: &AccountKey, kid: &str, url: &str, done: impl Fn(&Value) -> bool) -> Reply {
    for _ in 0..100 {
        let r = raw.signed(key, Some(kid), url, None).await;
        if done(&r.body) {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url} did not reach the expected state");
}

/// Serves the http-01 key authorization of the authorization's challenge and answers
/// it with `{}`; returns the challenge response.
pub async fn answer_http01(env: &Env, raw: &Raw, key: &AccountKey, kid: &str, authz_url: &str) -> Reply {
    let authz = raw.signed(key, Some(kid), authz_url, None).await;
    assert_eq!(authz.status, 200, "{}", authz.text);
    let ch = authz.body["challenges"].as_array().unwrap().iter().find(|c| c["type"] == "http-01").unwrap().clone();
    let token = ch["token"].as_str().unwrap();
    let thumbprint = Jwk::from_value(&key.jwk()).unwrap().thumbprint();
    env.responders.http01(token, &format!("{token}.{thumbprint}"));
    raw.signed(key, Some(kid), ch["url"].as_str().unwrap(), Some(&json!({}))).await
}

/// A new account, an order for `name` (a `.localhost` name the responders answer for),
/// its challenge answered, and the order polled until it is ready.
pub async fn ready_order(env: &Env, raw: &Raw, name: &str) -> ReadyOrder {
    let (key, kid) = raw.account().await;
    let ids = json!({"identifiers": [{"type": "dns", "value": name}]});
    let order = raw.signed(&key, Some(&kid), &raw.url("/new-order"), Some(&ids)).await;
    assert_eq!(order.status, 201, "{}", order.text);
    let url = order.location.clone().expect("order Location");
    let finalize_url = order.body["finalize"].as_str().unwrap().to_owned();
    let challenge = answer_http01(env, raw, &key, &kid, order.body["authorizations"][0].as_str().unwrap()).await;
    assert_eq!(challenge.status, 200, "{}", challenge.text);
    poll(raw, &key, &kid, &url, |o| o["status"] == "ready").await;
    ReadyOrder { key, kid, url, finalize_url, challenge }
}
