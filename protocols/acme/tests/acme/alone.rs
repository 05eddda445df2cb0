//! An endpoint served by one process alone, as `pkiplane serve` runs it
//! (`AcmeState::served_alone`): accounts cached in memory, finalize claiming the order in
//! memory instead of storing it processing first, `ready` shown but not stored. What
//! must hold all the same: one certificate per order however many finalize requests
//! race, a deactivated account refused at once, a certificate issued before a stop
//! delivered instead of issued again, and the stored order ending valid.

use instant_acme::{ChallengeType, Identifier, NewOrder, OrderStatus};
use pkiplane_acme::jwk::b64;
use pkiplane_acme::state::OrderStatus as StoredStatus;
use pkiplane_core::inventory::CertStatus;
use pkiplane_core::issuance::exchange_key;
use pkiplane_core::model::{ObjectRef, Protocol};
use serde_json::json;

use crate::common::raw::Raw;
use crate::common::ready::{ReadyOrder, ready_order};
use crate::common::{Env, Options, csr};
use crate::flows::{issue, leaf_der, retry, solve};

fn alone() -> Options {
    Options { served_alone: true, ..Options::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_issuance_stores_the_order_valid_and_one_certificate() {
    let env = Env::start(alone()).await;
    let (account, _) = env.account(None).await.unwrap();
    let ids = [Identifier::Dns("alone.localhost".into())];
    let pem = issue(&env, &account, &NewOrder::new(&ids), ChallengeType::Http01, &["alone.localhost"]).await.unwrap();
    env.openssl_verify(&pem);
    let records = env.records().await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].status, CertStatus::Issued);
    assert_eq!(records[0].der.as_deref(), Some(leaf_der(&pem).as_slice()));
    let order_id = records[0].exchange.as_deref().unwrap().rsplit(':').next().unwrap().to_owned();
    let stored = env.acme.order(&order_id).await.unwrap().unwrap();
    assert_eq!(stored.status, StoredStatus::Valid);
    assert_eq!(stored.certificate.unwrap().serial, records[0].serial);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_finalize_requests_issue_one_certificate() {
    let env = Env::start(alone()).await;
    let raw = Raw::new(&env.base);
    let ReadyOrder { key, kid, url: order_url, finalize_url, challenge } =
        ready_order(&env, &raw, "race.localhost").await;
    assert_eq!(challenge.body["status"], "valid", "{}", challenge.text);

    // The same order finalized by four requests at once.
    let body = json!({"csr": b64(&csr(&["race.localhost"]).0)});
    let finalize = || raw.signed(&key, Some(&kid), &finalize_url, Some(&body));
    let (a, b, c, d) = tokio::join!(finalize(), finalize(), finalize(), finalize());
    let mut valid = 0;
    for r in [&a, &b, &c, &d] {
        match r.status {
            200 => {
                assert_eq!(r.body["status"], "valid", "{}", r.text);
                valid += 1;
            }
            _ => assert_eq!(r.problem(), "orderNotReady", "{}", r.text),
        }
    }
    assert_eq!(valid, 1, "exactly one finalize goes through");
    let records = env.records().await;
    assert_eq!(records.len(), 1, "one certificate for the order");
    let r = raw.signed(&key, Some(&kid), &order_url, None).await;
    assert_eq!(r.body["status"], "valid", "{}", r.text);
    let pem = raw.signed(&key, Some(&kid), r.body["certificate"].as_str().unwrap(), None).await;
    assert_eq!(leaf_der(&pem.text), records[0].der.clone().unwrap());
    env.openssl_verify(&pem.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_issued_before_a_stop_is_delivered_by_the_next_finalize() {
    let env = Env::start(alone()).await;
    let (account, _) = env.account(None).await.unwrap();
    let ids = [Identifier::Dns("web.localhost".into())];
    let mut order = account.new_order(&NewOrder::new(&ids)).await.unwrap();
    solve(&env, &mut order, ChallengeType::Http01).await;
    assert_eq!(order.poll_ready(&retry()).await.unwrap(), OrderStatus::Ready);
    let order_id = order.url().rsplit('/').next().unwrap().to_owned();
    // Ready is shown, not stored: the order a stop after signing leaves is as stored.
    assert_eq!(env.acme.order(&order_id).await.unwrap().unwrap().status, StoredStatus::Pending);
    let exchange = exchange_key(Protocol::Acme, &ObjectRef::new("pki", "acme"), &order_id);
    let issued = env.ca.issue(crate::recovery::request(&["web.localhost"], &exchange)).await.unwrap().issued().unwrap();

    order.finalize_csr(&csr(&["web.localhost"]).0).await.unwrap();
    let pem = order.poll_certificate(&retry()).await.unwrap();
    assert_eq!(leaf_der(&pem), issued.der, "the certificate issued before the stop");
    env.openssl_verify(&pem);
    assert_eq!(env.records().await.len(), 1, "nothing issued twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deactivated_account_is_refused_at_once_though_cached() {
    let env = Env::start(alone()).await;
    let raw = Raw::new(&env.base);
    let (key, kid) = raw.account().await;
    let new_order = raw.url("/new-order");
    let ids = json!({"identifiers": [{"type": "dns", "value": "one.localhost"}]});
    // The account is used (and cached), then deactivated, then used again.
    assert_eq!(raw.signed(&key, Some(&kid), &new_order, Some(&ids)).await.status, 201);
    let reply = raw.signed(&key, Some(&kid), &kid, Some(&json!({"status": "deactivated"}))).await;
    assert_eq!((reply.status, reply.body["status"].as_str()), (200, Some("deactivated")), "{}", reply.text);
    let reply = raw.signed(&key, Some(&kid), &new_order, Some(&ids)).await;
    assert_eq!(reply.problem(), "unauthorized", "{}", reply.text);
    assert!(reply.body["detail"].as_str().unwrap().contains("deactivated"), "{}", reply.text);
}
