//! Issuance flows with instant-acme: http-01 (DNS and IP identifiers), dns-01 with a
//! wildcard, tls-alpn-01; revocation; validation failures; authorization reuse and
//! deactivation.

use std::time::Duration;

use instant_acme::{
    Account, AuthorizationStatus, ChallengeType, Identifier, NewOrder, Order, OrderStatus, RetryPolicy,
    RevocationReason, RevocationRequest,
};
use pkiplane_core::inventory::CertStatus;
use pkiplane_core::model::{ObjectRef, Protocol};
use rustls::pki_types::CertificateDer;

use crate::common::ready::answer_http01;
use crate::common::{Env, Options, csr, problem, raw::Raw};

pub fn retry() -> RetryPolicy {
    RetryPolicy::new().initial_delay(Duration::from_millis(50)).backoff(1.5).timeout(Duration::from_secs(20))
}

/// Answers the order's first authorization with `kind` (after `serve` got the token and
/// key authorization) when the validation must fail, and returns the problem wherever
/// the server reports it: in the challenge response when the validation ended within
/// the server's inline wait, else when the order is polled.
pub async fn failed_validation(
    order: &mut Order,
    kind: ChallengeType,
    serve: impl FnOnce(&str, &str),
) -> instant_acme::Error {
    let early = {
        let mut authzs = order.authorizations();
        let mut a = authzs.next().await.unwrap().unwrap();
        let mut ch = a.challenge(kind).expect("challenge type offered");
        let ka = ch.key_authorization();
        serve(&ch.token, ka.as_str());
        ch.set_ready().await.err()
    };
    match early {
        Some(e) => e,
        None => order.poll_ready(&retry()).await.expect_err("the validation must fail"),
    }
}

/// Answers every pending authorization of the order with `kind`.
pub async fn solve(env: &Env, order: &mut Order, kind: ChallengeType) {
    let mut authzs = order.authorizations();
    while let Some(a) = authzs.next().await {
        let mut a = a.unwrap();
        if a.status != AuthorizationStatus::Pending {
            continue;
        }
        let mut ch = a.challenge(kind.clone()).expect("challenge type offered");
        let ka = ch.key_authorization();
        let id = ch.identifier().to_string();
        match kind {
            ChallengeType::Http01 => env.responders.http01(&ch.token, ka.as_str()),
            ChallengeType::Dns01 => {
                env.responders.dns01(&format!("_acme-challenge.{}", id.trim_start_matches("*.")), &ka.dns_value())
            }
            ChallengeType::TlsAlpn01 => env.responders.tls_alpn01(&id, ka.as_str()),
            _ => unreachable!(),
        }
        ch.set_ready().await.unwrap();
    }
}

/// Orders, validates with `kind`, finalizes with a CSR for `names`; the PEM chain.
pub async fn issue(
    env: &Env,
    account: &Account,
    new_order: &NewOrder<'_>,
    kind: ChallengeType,
    names: &[&str],
) -> Result<String, instant_acme::Error> {
    let mut order = account.new_order(new_order).await?;
    solve(env, &mut order, kind).await;
    assert_eq!(order.poll_ready(&retry()).await?, OrderStatus::Ready);
    order.finalize_csr(&csr(names).0).await?;
    order.poll_certificate(&retry()).await
}

pub fn leaf_der(pem: &str) -> Vec<u8> {
    pkiplane_core::x509::pem::decode_chain(pem.as_bytes(), "CERTIFICATE").unwrap().remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http01_with_dns_and_ip_identifiers_then_revocation() {
    let env = Env::start(Options::default()).await;
    let (account, _) = env.account(None).await.unwrap();
    let ids = [Identifier::Dns("web.localhost".into()), Identifier::Ip("127.0.0.1".parse().unwrap())];
    let pem = issue(&env, &account, &NewOrder::new(&ids), ChallengeType::Http01, &["web.localhost", "127.0.0.1"])
        .await
        .unwrap();
    env.openssl_verify(&pem);
    // The chain is leaf and intermediate (the root is the alternate chain: chain.rs).
    assert_eq!(pkiplane_core::x509::pem::decode_chain(pem.as_bytes(), "CERTIFICATE").unwrap().len(), 2);

    let records = env.records().await;
    assert_eq!(records.len(), 1);
    let r = &records[0];
    assert_eq!(r.protocol, Protocol::Acme);
    assert_eq!(r.requester, account.id());
    assert_eq!(r.endpoint, Some(ObjectRef::new("pki", "acme")));
    assert_eq!(r.profile, ObjectRef::new("pki", "tls"));
    assert_eq!(r.sans, vec!["DNS:web.localhost".to_owned(), "IP:127.0.0.1".to_owned()]);
    assert_eq!(r.status, CertStatus::Issued);

    let der = CertificateDer::from(leaf_der(&pem));
    account
        .revoke(&RevocationRequest { certificate: &der, reason: Some(RevocationReason::KeyCompromise) })
        .await
        .unwrap();
    let r = &env.records().await[0];
    assert_eq!(r.status, CertStatus::Revoked);
    assert_eq!(r.revocation.unwrap().reason, pkiplane_core::inventory::RevocationReason::KeyCompromise);
    let again = account.revoke(&RevocationRequest { certificate: &der, reason: None }).await.expect_err("an error");
    assert_eq!(problem(&again).0, "alreadyRevoked");

    // ARI moves a revoked certificate's window into the past: renew now.
    let id = pkiplane_acme::ari::cert_id(der.as_ref()).unwrap();
    let reply = Raw::new(&env.base).get(&format!("/renewal-info/{id}")).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let end = pkiplane_acme::time::parse(reply.body["suggestedWindow"]["end"].as_str().unwrap()).unwrap();
    assert!(end <= std::time::SystemTime::now() + Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns01_with_a_wildcard() {
    let env = Env::start(Options::default()).await;
    let (account, _) = env.account(None).await.unwrap();
    let ids = [Identifier::Dns("*.example.test".into()), Identifier::Dns("example.test".into())];
    let pem = issue(&env, &account, &NewOrder::new(&ids), ChallengeType::Dns01, &["*.example.test", "example.test"])
        .await
        .unwrap();
    env.openssl_verify(&pem);
    let r = &env.records().await[0];
    assert_eq!(r.sans, vec!["DNS:*.example.test".to_owned(), "DNS:example.test".to_owned()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_alpn01() {
    let env = Env::start(Options::default()).await;
    let (account, _) = env.account(None).await.unwrap();
    let ids = [Identifier::Dns("tls.localhost".into())];
    let pem = issue(&env, &account, &NewOrder::new(&ids), ChallengeType::TlsAlpn01, &["tls.localhost"]).await.unwrap();
    env.openssl_verify(&pem);
    assert_eq!(env.records().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_validation_invalidates_the_order_with_a_specific_problem() {
    let env = Env::start(Options::default()).await;
    let (account, _) = env.account(None).await.unwrap();
    // The responder serves the wrong content.
    let ids = [Identifier::Dns("wrong.localhost".into())];
    let mut order = account.new_order(&NewOrder::new(&ids)).await.unwrap();
    let err = failed_validation(&mut order, ChallengeType::Http01, |token, _| {
        env.responders.http01(token, "not-the-key-authorization")
    })
    .await;
    let (kind, detail) = problem(&err);
    assert_eq!(kind, "incorrectResponse", "{detail}");
    assert!(detail.contains("body of 25 bytes that is not the key authorization"), "{detail}");
    assert!(!detail.contains("not-the-key-authorization"), "the body is never quoted: {detail}");
    // The order's own problem names the identifier in a subproblem.
    let order_err = order.poll_ready(&retry()).await.expect_err("the order is invalid");
    let instant_acme::Error::Api(p) = &order_err else { unreachable!() };
    assert_eq!(problem(&order_err).0, "incorrectResponse");
    assert_eq!(p.subproblems.len(), 1);
    assert_eq!(p.subproblems[0].identifier, Some(Identifier::Dns("wrong.localhost".into())));

    // Nothing listens for this token: 404 is unauthorized.
    let ids = [Identifier::Dns("missing.localhost".into())];
    let mut order = account.new_order(&NewOrder::new(&ids)).await.unwrap();
    let (kind, detail) = problem(&failed_validation(&mut order, ChallengeType::Http01, |_, _| {}).await);
    assert_eq!(kind, "unauthorized");
    assert!(detail.contains("404"), "{detail}");

    // dns-01 without a record: unauthorized, naming the record looked for.
    let ids = [Identifier::Dns("nodns.example.test".into())];
    let mut order = account.new_order(&NewOrder::new(&ids)).await.unwrap();
    let (kind, detail) = problem(&failed_validation(&mut order, ChallengeType::Dns01, |_, _| {}).await);
    assert_eq!(kind, "unauthorized");
    assert!(detail.contains("_acme-challenge.nodns.example.test"), "{detail}");
    assert!(env.records().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorizations_are_reused_and_can_be_deactivated() {
    let env = Env::start(Options { authz_reuse: Some(Duration::from_secs(3600)), ..Options::default() }).await;
    let (account, _) = env.account(None).await.unwrap();
    let ids = [Identifier::Dns("reuse.localhost".into())];
    let pem = issue(&env, &account, &NewOrder::new(&ids), ChallengeType::Http01, &["reuse.localhost"]).await.unwrap();
    env.openssl_verify(&pem);
    // A second order for the same name is ready at once.
    let mut order = account.new_order(&NewOrder::new(&ids)).await.unwrap();
    assert_eq!(order.state().status, OrderStatus::Ready);

    // Deactivating a pending authorization makes its order invalid.
    let ids = [Identifier::Dns("gone.localhost".into())];
    let mut order = account.new_order(&NewOrder::new(&ids)).await.unwrap();
    {
        let mut authzs = order.authorizations();
        let mut a = authzs.next().await.unwrap().unwrap();
        assert_eq!(a.deactivate().await.unwrap().status, AuthorizationStatus::Deactivated);
    }
    let state = order.refresh().await.unwrap();
    assert_eq!(state.status, OrderStatus::Invalid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quick_validation_is_answered_in_the_challenge_response() {
    use pkiplane_acme::signer::AccountKey;
    use serde_json::json;

    let env = Env::start(Options::default()).await;
    let raw = Raw::new(&env.base);
    let key = AccountKey::generate_es256();
    let kid = raw.new_account(&key).await;
    let payload = json!({"identifiers": [{"type": "dns", "value": "inline.localhost"}]});
    let order = raw.signed(&key, Some(&kid), &raw.url("/new-order"), Some(&payload)).await;
    assert_eq!(order.status, 201, "{}", order.text);
    let authz_url = order.body["authorizations"][0].as_str().unwrap().to_owned();

    // The response to {} already carries the outcome: valid, with no poll hint.
    let answered = answer_http01(&env, &raw, &key, &kid, &authz_url).await;
    assert_eq!(answered.status, 200, "{}", answered.text);
    assert_eq!(answered.body["status"], "valid", "{}", answered.text);
    assert!(answered.body["validated"].is_string(), "{}", answered.text);
    assert_eq!(answered.retry_after, None);
    let authz = raw.signed(&key, Some(&kid), &authz_url, None).await;
    assert_eq!(authz.body["status"], "valid", "{}", authz.text);
    assert_eq!(authz.retry_after, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mistyped_order_or_finalize_field_is_malformed_naming_the_field() {
    use pkiplane_acme::signer::AccountKey;
    use serde_json::json;

    let env = Env::start(Options::default()).await;
    let raw = Raw::new(&env.base);
    let key = AccountKey::generate_es256();
    let kid = raw.new_account(&key).await;
    let new_order = raw.url("/new-order");
    let ids = json!([{"type": "dns", "value": "typed.localhost"}]);
    for (payload, field) in [
        (json!({"identifiers": ids, "notBefore": 5}), "notBefore"),
        (json!({"identifiers": ids, "profile": ["tls"]}), "profile"),
        (json!({"identifiers": ids, "replaces": {}}), "replaces"),
        (json!({"identifiers": "typed.localhost"}), "identifiers"),
    ] {
        let r = raw.signed(&key, Some(&kid), &new_order, Some(&payload)).await;
        assert_eq!((r.status, r.problem()), (400, "malformed"), "{payload}: {}", r.text);
        assert!(r.body["detail"].as_str().unwrap().contains(&format!("`{field}`")), "{payload}: {}", r.text);
    }
    let order = raw.signed(&key, Some(&kid), &new_order, Some(&json!({"identifiers": ids}))).await;
    assert_eq!(order.status, 201, "{}", order.text);
    let finalize = order.body["finalize"].as_str().unwrap().to_owned();
    let authz_url = order.body["authorizations"][0].as_str().unwrap().to_owned();
    assert_eq!(answer_http01(&env, &raw, &key, &kid, &authz_url).await.body["status"], "valid");
    for (payload, field) in [(json!({"csr": 1}), "`csr`"), (json!({}), "missing field `csr`")] {
        let r = raw.signed(&key, Some(&kid), &finalize, Some(&payload)).await;
        assert_eq!((r.status, r.problem()), (400, "malformed"), "{payload}: {}", r.text);
        assert!(r.body["detail"].as_str().unwrap().contains(field), "{payload}: {}", r.text);
    }
    assert!(env.records().await.is_empty(), "nothing was issued");
}
