//! Requests a correct client never sends, made by hand: each gets its specific problem,
//! and nothing is issued.

use pkiplane_acme::signer::AccountKey;
use serde_json::json;

use crate::common::{Env, Options, raw::Raw};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_and_nonces() {
    let env = Env::start(Options::default()).await;
    let raw = Raw::new(&env.base);
    let dir = raw.get("/directory").await;
    assert_eq!(dir.status, 200);
    for (field, path) in [
        ("newNonce", "/new-nonce"),
        ("newAccount", "/new-account"),
        ("newOrder", "/new-order"),
        ("revokeCert", "/revoke-cert"),
        ("keyChange", "/key-change"),
        ("renewalInfo", "/renewal-info"),
    ] {
        assert_eq!(dir.body[field], json!(format!("{}{path}", env.base)), "{field}");
    }
    assert_eq!(dir.body["meta"]["profiles"]["tls"], "TLS server certificates, 47 days");
    let get = raw.get("/new-nonce").await;
    assert_eq!(get.status, 204);
    assert!(get.nonce.is_some());
    let missing = raw.get("/nothing-here").await;
    assert_eq!((missing.status, missing.problem()), (404, "malformed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_specific_problems_and_issue_nothing() {
    let env = Env::start(Options::default()).await;
    let raw = Raw::new(&env.base);
    let (key, kid) = raw.account().await;
    let new_order = raw.url("/new-order");
    let payload = json!({"identifiers": [{"type": "dns", "value": "n.localhost"}]});

    // A replayed nonce.
    let nonce = raw.nonce().await;
    let body = key.jws(json!({"nonce": nonce, "url": new_order, "kid": kid}), Some(&payload));
    assert_eq!(raw.post(&new_order, &body).await.status, 201);
    let replay = raw.post(&new_order, &body).await;
    assert_eq!((replay.status, replay.problem()), (400, "badNonce"), "{}", replay.text);
    assert!(replay.nonce.is_some(), "badNonce comes with a fresh nonce");
    // A nonce this server never issued.
    let body = key.jws(json!({"nonce": "bm90LWEtbm9uY2U", "url": new_order, "kid": kid}), Some(&payload));
    assert_eq!(raw.post(&new_order, &body).await.problem(), "badNonce");

    // The signed url is not where the request went.
    let nonce = raw.nonce().await;
    let body = key.jws(json!({"nonce": nonce, "url": raw.url("/new-account"), "kid": kid}), Some(&payload));
    let r = raw.post(&new_order, &body).await;
    assert_eq!((r.status, r.problem()), (403, "unauthorized"), "{}", r.text);

    // Signed by another key than the account's.
    let mallory = AccountKey::generate_es256();
    let r = raw.signed(&mallory, Some(&kid), &new_order, Some(&payload)).await;
    assert_eq!((r.status, r.problem()), (400, "malformed"), "{}", r.text);
    assert!(r.body["detail"].as_str().unwrap().contains("signature"));

    // Both jwk and kid.
    let nonce = raw.nonce().await;
    let body = key.jws(json!({"nonce": nonce, "url": new_order, "kid": kid, "jwk": key.jwk()}), Some(&payload));
    assert_eq!(raw.post(&new_order, &body).await.problem(), "malformed");
    // jwk where kid is required.
    let r = raw.signed(&key, None, &new_order, Some(&payload)).await;
    assert_eq!(r.problem(), "malformed");
    // alg none and a MAC algorithm.
    for alg in ["none", "HS256"] {
        let nonce = raw.nonce().await;
        let mut body = key.jws(json!({"alg": alg, "nonce": nonce, "url": new_order, "kid": kid}), Some(&payload));
        body["signature"] = json!("");
        let r = raw.post(&new_order, &body).await;
        assert_eq!((r.status, r.problem()), (400, "badSignatureAlgorithm"), "{alg}: {}", r.text);
        assert!(r.body["algorithms"].as_array().is_some_and(|a| a.contains(&json!("ES256"))));
    }
    // An unprotected header is not allowed.
    let nonce = raw.nonce().await;
    let mut body = key.jws(json!({"nonce": nonce, "url": new_order, "kid": kid}), Some(&payload));
    body["header"] = json!({"kid": kid});
    assert_eq!(raw.post(&new_order, &body).await.problem(), "malformed");
    // Wrong Content-Type.
    let nonce = raw.nonce().await;
    let body = key.jws(json!({"nonce": nonce, "url": new_order, "kid": kid}), Some(&payload));
    let r = raw.post_with_type(&new_order, &body, "application/json").await;
    assert_eq!((r.status, r.problem()), (415, "malformed"));
    // An account URL that does not exist.
    let r = raw.signed(&key, Some(&raw.url("/acct/nobody")), &new_order, Some(&payload)).await;
    assert_eq!(r.problem(), "accountDoesNotExist");
    // An oversized body.
    let big = json!({"protected": "a".repeat(70_000), "payload": "", "signature": ""});
    let r = raw.post(&new_order, &big).await;
    assert_eq!((r.status, r.problem()), (413, "malformed"));
    // Bad identifiers: one subproblem each.
    let bad = json!({"identifiers": [{"type": "dns", "value": "bad..name"}, {"type": "ip", "value": "999.1.1.1"}]});
    let r = raw.signed(&key, Some(&kid), &new_order, Some(&bad)).await;
    assert_eq!(r.problem(), "rejectedIdentifier");
    assert_eq!(r.body["subproblems"].as_array().map(Vec::len), Some(2), "{}", r.text);
    assert_eq!(r.body["subproblems"][1]["identifier"], json!({"type": "ip", "value": "999.1.1.1"}));
    // Finalizing a pending order.
    let r = raw.signed(&key, Some(&kid), &new_order, Some(&payload)).await;
    let finalize = r.body["finalize"].as_str().unwrap().to_owned();
    let r = raw.signed(&key, Some(&kid), &finalize, Some(&json!({"csr": "AAAA"}))).await;
    assert_eq!((r.status, r.problem()), (403, "orderNotReady"));
    // A revocation reason that does not exist.
    let r = raw
        .signed(&key, Some(&kid), &raw.url("/revoke-cert"), Some(&json!({"certificate": "AAAA", "reason": 7})))
        .await;
    assert_eq!(r.problem(), "badRevocationReason");

    assert!(env.records().await.is_empty(), "nothing was issued");
}
