//! Two replicas of one endpoint (same base URL, same database file, separate store
//! handles and writer threads, as two pods would have): state created through one is
//! used through the other, and a nonce is accepted once by whichever replica sees it.

use std::sync::Arc;

use pkiplane_acme::nonce::SharedNonces;
use pkiplane_acme::{AcmeState, router};
use pkiplane_store::SqliteStore;
use serde_json::json;

use crate::common::{Env, Options, raw::Raw};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_accounts_orders_and_nonces() {
    let env = Env::start(Options::default()).await;
    let store_b = crate::common::endpoint_state(Arc::new(
        SqliteStore::open(&env.dir.path().join("data").join("pkiplane.db")).unwrap(),
    ));
    let state_b = AcmeState {
        config: env.state.config.clone(),
        ca: env.ca.clone(),
        nonces: Arc::new(SharedNonces::new(store_b.clone(), env.state.config.nonce_lifetime)),
        store: store_b,
        alone: None,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_b = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router(state_b)).await.unwrap() });

    let (a, b) = (Raw::new(&env.base), Raw::new(&base_b));
    // The same resource URLs (the endpoint's base URL) reach either replica.
    let via_b = |url: &str| url.replace(&env.base, &base_b);
    let (key, kid) = a.account().await;
    let new_order = a.url("/new-order");
    let payload = json!({"identifiers": [{"type": "dns", "value": "replica.localhost"}]});

    // A nonce from replica A, spent at replica B; then replayed at A.
    let nonce = a.nonce().await;
    let body = key.jws(json!({"nonce": nonce, "url": new_order, "kid": kid}), Some(&payload));
    let created = b.post(&via_b(&new_order), &body).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let replay = a.post(&new_order, &body).await;
    assert_eq!(replay.problem(), "badNonce");

    // The order made through B is read through A, with a nonce B handed out.
    let order_url = created.location.unwrap();
    let nonce = b.nonce().await;
    let body = key.jws(json!({"nonce": nonce, "url": order_url, "kid": kid}), None);
    let read = a.post(&order_url, &body).await;
    assert_eq!((read.status, read.body["status"].as_str()), (200, Some("pending")), "{}", read.text);
    assert_eq!(read.body["identifiers"], json!([{"type": "dns", "value": "replica.localhost"}]));

    // Challenge validation started through B completes, seen through A.
    let authz_url = read.body["authorizations"][0].as_str().unwrap().to_owned();
    let authz = b.signed(&key, Some(&kid), &via_b(&authz_url), None).await;
    assert_eq!(authz.status, 403, "B checks the signed URL against the shared base URL");
    let nonce = b.nonce().await;
    let body = key.jws(json!({"nonce": nonce, "url": authz_url, "kid": kid}), None);
    let authz = b.post(&via_b(&authz_url), &body).await;
    let challenge = authz.body["challenges"].as_array().unwrap().iter().find(|c| c["type"] == "http-01").unwrap();
    let token = challenge["token"].as_str().unwrap();
    let jwk = pkiplane_acme::jwk::Jwk::from_value(&key.jwk()).unwrap();
    env.responders.http01(token, &format!("{token}.{}", jwk.thumbprint()));
    let chall_url = challenge["url"].as_str().unwrap().to_owned();
    let nonce = a.nonce().await;
    let body = key.jws(json!({"nonce": nonce, "url": chall_url, "kid": kid}), Some(&json!({})));
    assert_eq!(b.post(&via_b(&chall_url), &body).await.status, 200);
    let mut status = String::new();
    for _ in 0..100 {
        let r = a.signed(&key, Some(&kid), &order_url, None).await;
        status = r.body["status"].as_str().unwrap_or_default().to_owned();
        if status != "pending" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(status, "ready");
}
