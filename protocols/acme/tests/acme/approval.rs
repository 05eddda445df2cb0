//! Issue 17's acceptance for ACME with instant-acme: under a profile that requires
//! approval, a finalized order stays `processing` (with Retry-After) and is linked to its
//! approval request; once that request is approved the order becomes `valid` with the
//! one certificate issued for it (verified against the chain), a waiting one stays
//! `processing`, and a denied one becomes `invalid` with a problem naming the reason.

use instant_acme::{ChallengeType, Identifier, NewOrder, Order, OrderStatus};
use pkiplane_core::approval::ApprovalFilter;
use pkiplane_core::model::ObjectRef;

use crate::common::{Env, Options, csr};
use crate::flows::{retry, solve};

/// An order for `name`, validated and finalized: processing, waiting for approval.
async fn waiting_order(env: &Env, account: &instant_acme::Account, name: &str) -> Order {
    let ids = [Identifier::Dns(name.into())];
    let mut order = account.new_order(&NewOrder::new(&ids)).await.unwrap();
    solve(env, &mut order, ChallengeType::Http01).await;
    assert_eq!(order.poll_ready(&retry()).await.unwrap(), OrderStatus::Ready);
    order.finalize_csr(&csr(&[name]).0).await.unwrap();
    assert_eq!(order.state().status, OrderStatus::Processing);
    order
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_approved_order_becomes_valid_and_a_denied_one_invalid() {
    let env = Env::start(Options::default()).await;
    let id = ObjectRef::new("pki", "tls");
    let mut profile = (*env.ca.profile(&id).unwrap()).clone();
    profile.approval_required = true;
    env.ca.put_profile(profile);
    let (account, _) = env.account(None).await.unwrap();

    let mut approved = waiting_order(&env, &account, "approved.localhost").await;
    let mut waiting = waiting_order(&env, &account, "waiting.localhost").await;
    let mut denied = waiting_order(&env, &account, "denied.localhost").await;
    let requests = env.ca.approval_requests(&ApprovalFilter::waiting()).await.unwrap();
    assert_eq!(requests.len(), 3);
    let request_of = |name: &str| requests.iter().find(|r| r.sans == [format!("DNS:{name}")]).unwrap().id.clone();
    // Still processing before any decision.
    assert_eq!(approved.refresh().await.unwrap().status, OrderStatus::Processing);

    env.ca.approve(&request_of("approved.localhost"), "alice", None).await.unwrap();
    env.ca.deny(&request_of("denied.localhost"), "alice", "not our domain").await.unwrap();

    assert_eq!(approved.refresh().await.unwrap().status, OrderStatus::Valid);
    let pem = approved.certificate().await.unwrap().expect("the certificate");
    env.openssl_verify(&pem);
    // Polled again: the same certificate.
    assert_eq!(approved.refresh().await.unwrap().status, OrderStatus::Valid);
    assert_eq!(approved.certificate().await.unwrap().unwrap(), pem);

    assert_eq!(waiting.refresh().await.unwrap().status, OrderStatus::Processing);

    let state = denied.refresh().await.unwrap();
    assert_eq!(state.status, OrderStatus::Invalid);
    let problem = state.error.clone().expect("the order's error");
    assert_eq!(problem.r#type.as_deref(), Some("urn:ietf:params:acme:error:unauthorized"));
    assert!(problem.detail.as_deref().unwrap_or_default().contains("not our domain"), "{problem:?}");

    let records = env.records().await;
    assert_eq!(records.len(), 1, "only the approved order was signed: {records:?}");
    assert_eq!(records[0].sans, vec!["DNS:approved.localhost".to_owned()]);
    assert_eq!(
        env.ca.approval_requests(&ApprovalFilter::waiting()).await.unwrap().remove(0).id,
        request_of("waiting.localhost")
    );
}
