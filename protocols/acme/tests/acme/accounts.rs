//! Accounts: external account binding, key rollover, deactivation.

use instant_acme::{Account, ChallengeType, ExternalAccountKey, Identifier, NewOrder};
use pkiplane_acme::signer::AccountKey;
use serde_json::json;

use crate::common::{Env, Options, eab_config, http_client, problem, raw::Raw};
use crate::flows::issue;

const KEY_1: &[u8] = b"0123456789abcdef0123456789abcdef";
const KEY_2: &[u8] = b"fedcba9876543210fedcba9876543210";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_account_binding_is_required_checked_and_single_use() {
    let eab = eab_config(&[("kid-1", KEY_1), ("kid-2", KEY_2)], true, false);
    let env = Env::start(Options { eab: Some(eab), ..Options::default() }).await;
    let raw = Raw::new(&env.base);
    assert_eq!(raw.get("/directory").await.body["meta"]["externalAccountRequired"], true);

    let err = env.account(None).await.err().expect("an error");
    assert_eq!(problem(&err).0, "externalAccountRequired");
    // The MAC made with another key.
    let err = env.account(Some(&ExternalAccountKey::new("kid-1".into(), KEY_2))).await.err().expect("an error");
    assert_eq!(problem(&err).0, "unauthorized");
    let err = env.account(Some(&ExternalAccountKey::new("nope".into(), KEY_1))).await.err().expect("an error");
    let (kind, detail) = problem(&err);
    assert_eq!(kind, "unauthorized");
    assert!(detail.contains("nope"), "{detail}");

    let (account, _) = env.account(Some(&ExternalAccountKey::new("kid-1".into(), KEY_1))).await.unwrap();
    // The single-use key cannot bind a second account.
    let err = env.account(Some(&ExternalAccountKey::new("kid-1".into(), KEY_1))).await.err().expect("an error");
    let (kind, detail) = problem(&err);
    assert_eq!(kind, "unauthorized");
    assert!(detail.contains("already"), "{detail}");
    // The bound account works.
    let ids = [Identifier::Dns("eab.localhost".into())];
    let pem = issue(&env, &account, &NewOrder::new(&ids), ChallengeType::Http01, &["eab.localhost"]).await.unwrap();
    env.openssl_verify(&pem);
    assert_eq!(env.records().await.len(), 1, "only the bound account's certificate exists");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rollover() {
    let env = Env::start(Options::default()).await;
    let (mut account, old_credentials) = env.account(None).await.unwrap();
    let old_credentials: instant_acme::AccountCredentials =
        serde_json::from_value(serde_json::to_value(&old_credentials).unwrap()).unwrap();
    let _new_credentials = account.update_key().await.unwrap();
    // The rolled-over account issues with its new key.
    let ids = [Identifier::Dns("rolled.localhost".into())];
    let pem = issue(&env, &account, &NewOrder::new(&ids), ChallengeType::Http01, &["rolled.localhost"]).await.unwrap();
    env.openssl_verify(&pem);
    assert_eq!(env.records().await[0].requester, account.id(), "the account URL stays the same");
    // The old key no longer signs for the account.
    let old = Account::builder_with_http(Box::new(http_client())).from_credentials(old_credentials).await.unwrap();
    let err = old.new_order(&NewOrder::new(&ids)).await.err().expect("an error");
    assert_eq!(problem(&err).0, "malformed");

    // Rolling over to a key another account holds is a conflict naming that account.
    let raw = Raw::new(&env.base);
    let (a, b) = (AccountKey::generate_es256(), AccountKey::generate_ed25519());
    let a_url = raw.new_account(&a).await;
    let b_url = raw.new_account(&b).await;
    let url = raw.url("/key-change");
    let inner = b.jws(json!({"jwk": b.jwk(), "url": url}), Some(&json!({"account": a_url, "oldKey": a.jwk()})));
    let reply = raw.signed(&a, Some(&a_url), &url, Some(&inner)).await;
    assert_eq!(reply.status, 409, "{}", reply.text);
    assert_eq!(reply.location.as_deref(), Some(b_url.as_str()));
    // An inner JWS not signed by the new key is refused.
    let c = AccountKey::generate_es384();
    let forged = b.jws(json!({"jwk": c.jwk(), "url": url}), Some(&json!({"account": a_url, "oldKey": a.jwk()})));
    let reply = raw.signed(&a, Some(&a_url), &url, Some(&forged)).await;
    assert_eq!((reply.status, reply.problem()), (400, "badSignatureAlgorithm"), "{}", reply.text);
    // A proper rollover to an unused ES384 key works, and the old key is then unknown.
    let inner = c.jws(json!({"jwk": c.jwk(), "url": url}), Some(&json!({"account": a_url, "oldKey": a.jwk()})));
    let reply = raw.signed(&a, Some(&a_url), &url, Some(&inner)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let reply = raw.signed(&c, None, &raw.url("/new-account"), Some(&json!({"onlyReturnExisting": true}))).await;
    assert_eq!((reply.status, reply.location.as_deref()), (200, Some(a_url.as_str())));
    let reply = raw.signed(&a, None, &raw.url("/new-account"), Some(&json!({"onlyReturnExisting": true}))).await;
    assert_eq!(reply.problem(), "accountDoesNotExist");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deactivated_accounts_are_refused() {
    let env = Env::start(Options::default()).await;
    let (account, credentials) = env.account(None).await.unwrap();
    let credentials: instant_acme::AccountCredentials =
        serde_json::from_value(serde_json::to_value(&credentials).unwrap()).unwrap();
    account.deactivate().await.unwrap();
    let account = Account::builder_with_http(Box::new(http_client())).from_credentials(credentials).await.unwrap();
    let ids = [Identifier::Dns("after.localhost".into())];
    let err = account.new_order(&NewOrder::new(&ids)).await.err().expect("an error");
    let (kind, detail) = problem(&err);
    assert_eq!(kind, "unauthorized");
    assert!(detail.contains("deactivated"), "{detail}");
    assert!(env.records().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_are_validated_and_updated() {
    let env = Env::start(Options::default()).await;
    let raw = Raw::new(&env.base);
    let key = AccountKey::generate_es256();
    let url = raw.url("/new-account");
    let reply =
        raw.signed(&key, None, &url, Some(&json!({"contact": ["tel:+1555"], "termsOfServiceAgreed": true}))).await;
    assert_eq!(reply.problem(), "unsupportedContact");
    let reply = raw.signed(&key, None, &url, Some(&json!({"contact": ["mailto:a@b.example?subject=x"]}))).await;
    assert_eq!(reply.problem(), "invalidContact");
    let account_url = raw.new_account(&key).await;
    let reply =
        raw.signed(&key, Some(&account_url), &account_url, Some(&json!({"contact": ["mailto:new@example.com"]}))).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["contact"], json!(["mailto:new@example.com"]));
    // Another account cannot read or change this one.
    let other = AccountKey::generate_es256();
    let other_url = raw.new_account(&other).await;
    let reply = raw.signed(&other, Some(&other_url), &account_url, None).await;
    assert_eq!(reply.problem(), "unauthorized");
}
