//! An order whose certificate the CA issued while the server stopped before recording
//! it (finalize reached step 4 of issuance, then the process died, leaving the order
//! `processing`): the next poll completes the order from the inventory, by the
//! exchange key the issuance recorded, and the client downloads that certificate. If
//! signing never completed (recovery marked the record abandoned), the order is ready
//! again and finalizes anew. The crash state is made here in-process (the real-binary
//! crash tests of the failpoint are in the server crate for CMP and SCEP).

use instant_acme::{ChallengeType, Identifier, NewOrder, OrderStatus};
use pkiplane_acme::state::OrderStatus as StoredStatus;
use pkiplane_core::inventory::Inventory;
use pkiplane_core::issuance::{IssuanceRequest, exchange_key};
use pkiplane_core::model::{ObjectRef, Protocol, Requester};
use pkiplane_core::policy::RequestedValidity;
use pkiplane_core::x509::csr::{CsrOptions, ParsedCsr};

use crate::common::{Env, Options, csr};
use crate::flows::{leaf_der, retry, solve};

/// An order for web.localhost, validated, then marked processing as finalize does
/// before it calls the CA; and the key its issuance is recorded under.
async fn processing_order(env: &Env, account: &instant_acme::Account) -> (instant_acme::Order, String) {
    let ids = [Identifier::Dns("web.localhost".into())];
    let mut order = account.new_order(&NewOrder::new(&ids)).await.unwrap();
    solve(env, &mut order, ChallengeType::Http01).await;
    assert_eq!(order.poll_ready(&retry()).await.unwrap(), OrderStatus::Ready);
    let order_id = order.url().rsplit('/').next().unwrap().to_owned();
    let mut stored = env.acme.order(&order_id).await.unwrap().unwrap();
    // Ready is shown from the authorizations, not stored.
    assert_eq!(stored.status, StoredStatus::Pending);
    stored.status = StoredStatus::Processing;
    assert!(env.acme.update_order(&stored).await.unwrap());
    (order, exchange_key(Protocol::Acme, &ObjectRef::new("pki", "acme"), &order_id))
}

pub fn request(names: &[&str], exchange: &str) -> IssuanceRequest {
    IssuanceRequest {
        csr: ParsedCsr::from_der(&csr(names).0, CsrOptions::default()).unwrap(),
        profile: ObjectRef::new("pki", "tls"),
        requester: Requester::new(Protocol::Acme, "test-account").at_endpoint(ObjectRef::new("pki", "acme")),
        requested: RequestedValidity::default(),
        renewal_of: None,
        exchange: Some(exchange.to_owned()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_processing_order_whose_certificate_was_issued_completes_on_the_next_poll() {
    let env = Env::start(Options::default()).await;
    let (account, _) = env.account(None).await.unwrap();
    // The state a crash after signing leaves: the order processing, the certificate
    // issued under the order's exchange key.
    let (mut order, exchange) = processing_order(&env, &account).await;
    let issued = env.ca.issue(request(&["web.localhost"], &exchange)).await.unwrap().issued().unwrap();

    let pem = order.poll_certificate(&retry()).await.unwrap();
    assert_eq!(order.state().status, OrderStatus::Valid);
    assert_eq!(leaf_der(&pem), issued.der, "the certificate issued before the crash");
    env.openssl_verify(&pem);
    assert_eq!(env.records().await.len(), 1, "nothing issued twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_processing_order_whose_signing_never_completed_is_ready_again() {
    let env = Env::start(Options::default()).await;
    let (account, _) = env.account(None).await.unwrap();
    let (mut order, exchange) = processing_order(&env, &account).await;
    // Step 2 happened (a pending record under the exchange), then the process died;
    // start-up recovery marked the record abandoned.
    let pending = pkiplane_core::inventory::CertificateRecord {
        serial: "0badc0ffee".into(),
        issuer: ObjectRef::new("pki", "ca"),
        profile: ObjectRef::new("pki", "tls"),
        protocol: Protocol::Acme,
        endpoint: Some(ObjectRef::new("pki", "acme")),
        requester: "test-account".into(),
        subject: String::new(),
        sans: vec!["DNS:web.localhost".into()],
        key_algorithm: "ECDSA P-256".into(),
        not_before: std::time::SystemTime::now(),
        not_after: std::time::SystemTime::now(),
        status: pkiplane_core::inventory::CertStatus::Pending,
        revocation: None,
        der: None,
        renewed_from: None,
        created_at: std::time::SystemTime::now() - std::time::Duration::from_secs(5),
        exchange: Some(exchange),
    };
    env.store.insert_pending(&pending).await.unwrap();
    assert_eq!(env.store.recover_pending(std::time::SystemTime::now()).await.unwrap(), 1);

    assert_eq!(order.refresh().await.unwrap().status, OrderStatus::Ready);
    order.finalize_csr(&csr(&["web.localhost"]).0).await.unwrap();
    let pem = order.poll_certificate(&retry()).await.unwrap();
    env.openssl_verify(&pem);
}
