//! Approval requests on both backends: the store's own contract (retry key unique,
//! filters, decisions only on waiting requests, compare-and-set serial claims, waiting
//! counts) and the CA's approval flow on a real store across reopening: a request made
//! before a restart is approved after it, issued after another, and issued only once.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use pkiplane_core::approval::{
    ApprovalDecision, ApprovalFilter, ApprovalRequest, ApprovalState, DecideOutcome, WaitingCount,
};
use pkiplane_core::clock::ManualClock;
use pkiplane_core::inventory::{Inventory, InventoryFilter};
use pkiplane_core::issuance::{Ca, IssuanceRequest, IssueOutcome};
use pkiplane_core::issuer::{CaParams, Issuer, IssuerConfig, IssuerSource, NameConstraintsConfig};
use pkiplane_core::keys::KeyAlgorithm;
use pkiplane_core::model::{ObjectRef, Protocol, Requester};
use pkiplane_core::policy::RequestedValidity;
use pkiplane_core::profile::Profile;
use pkiplane_core::x509::csr::{CsrOptions, ParsedCsr};

use crate::common::*;

fn record(id: &str, profile: &str, state: ApprovalState, created_at: SystemTime) -> ApprovalRequest {
    ApprovalRequest {
        id: id.into(),
        profile: ObjectRef::new("pki", profile),
        issuer: root(),
        requester: Requester::new(Protocol::Scep, "challenge-1").at_endpoint(ObjectRef::new("pki", "scep")),
        csr_der: vec![0x30, 0x00],
        subject: "CN=device".into(),
        sans: vec!["DNS:device.example.com".into()],
        key_algorithm: "RSA 2048".into(),
        requested_not_before: None,
        requested_not_after: None,
        passed_rules: vec!["keys".into()],
        renewal_of: None,
        exchange: Some(format!("scep:pki/scep:{id}")),
        retry_key: format!("key-{id}"),
        created_at,
        state,
        decision: None,
        serial: None,
    }
}

fn decision(state: ApprovalState, by: &str) -> ApprovalDecision {
    ApprovalDecision { state, by: by.into(), at: now(), reason: Some("ticket 7".into()) }
}

async fn the_store_keeps_decides_and_claims_approval_requests(db: TestDb) {
    let store = db.open().await;
    let approvals = store.approvals().expect("the store keeps approval requests");
    let t = now();
    assert!(approvals.insert_approval(&record("a1", "p", ApprovalState::Waiting, t)).await.unwrap());
    assert!(approvals.insert_approval(&record("a2", "p", ApprovalState::Waiting, t + DAY)).await.unwrap());
    assert!(approvals.insert_approval(&record("a3", "q", ApprovalState::Waiting, t + 2 * DAY)).await.unwrap());
    // The same retry key again (a concurrent retry): refused without writing.
    let mut dup = record("a9", "p", ApprovalState::Waiting, t);
    dup.retry_key = "key-a1".into();
    assert!(!approvals.insert_approval(&dup).await.unwrap());
    assert_eq!(approvals.approval("a9").await.unwrap(), None);
    assert_eq!(approvals.approval_by_retry_key("key-a1").await.unwrap().unwrap().id, "a1");

    let ids = |v: Vec<ApprovalRequest>| v.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(ids(approvals.list_approvals(&ApprovalFilter::default()).await.unwrap()), ["a3", "a2", "a1"]);
    let of_p = ApprovalFilter { profile: Some(ObjectRef::new("pki", "p")), ..Default::default() };
    assert_eq!(ids(approvals.list_approvals(&of_p).await.unwrap()), ["a2", "a1"]);
    let by_exchange = ApprovalFilter { exchange: Some("scep:pki/scep:a2".into()), ..Default::default() };
    assert_eq!(ids(approvals.list_approvals(&by_exchange).await.unwrap()), ["a2"]);
    let limited = ApprovalFilter { limit: Some(1), protocol: Some(Protocol::Scep), ..Default::default() };
    assert_eq!(ids(approvals.list_approvals(&limited).await.unwrap()), ["a3"]);
    let other = ApprovalFilter { requester: Some("someone else".into()), ..Default::default() };
    assert!(approvals.list_approvals(&other).await.unwrap().is_empty());

    // Decisions apply to waiting requests only.
    let DecideOutcome::Decided(a1) =
        approvals.decide_approval("a1", &decision(ApprovalState::Approved, "alice")).await.unwrap()
    else {
        panic!("a1 was waiting")
    };
    assert_eq!(a1.decision.as_ref().unwrap().by, "alice");
    assert!(matches!(
        approvals.decide_approval("a1", &decision(ApprovalState::Denied, "bob")).await.unwrap(),
        DecideOutcome::AlreadyDecided(r) if r.state == ApprovalState::Approved
    ));
    assert_eq!(
        approvals.decide_approval("nope", &decision(ApprovalState::Denied, "bob")).await.unwrap(),
        DecideOutcome::NotFound
    );
    approvals.decide_approval("a2", &decision(ApprovalState::Denied, "bob")).await.unwrap();
    let waiting = ApprovalFilter::waiting();
    assert_eq!(ids(approvals.list_approvals(&waiting).await.unwrap()), ["a3"]);
    assert_eq!(
        approvals.waiting_counts().await.unwrap(),
        vec![WaitingCount { profile: ObjectRef::new("pki", "q"), waiting: 1 }]
    );

    // Serial claims: compare-and-set, approved requests only.
    assert!(!approvals.claim_approval_serial("a2", None, "0a").await.unwrap(), "a denied request is never claimed");
    assert!(approvals.claim_approval_serial("a1", None, "0a").await.unwrap());
    assert!(!approvals.claim_approval_serial("a1", None, "0b").await.unwrap(), "a second claim from None loses");
    assert!(approvals.claim_approval_serial("a1", Some("0a"), "0c").await.unwrap());
    drop(store);
    let reopened = db.open().await;
    let a1 = reopened.approvals().unwrap().approval("a1").await.unwrap().unwrap();
    assert_eq!((a1.state, a1.serial.as_deref()), (ApprovalState::Approved, Some("0c")));
    assert_eq!(a1.decision.unwrap().reason.as_deref(), Some("ticket 7"));
}

fn csr(cn: &str) -> ParsedCsr {
    let out = Command::new("openssl")
        .args(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "/dev/null"])
        .args(["-subj", &format!("/CN={cn}"), "-outform", "DER"])
        .output()
        .expect("openssl");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    ParsedCsr::from_der(&out.stdout, CsrOptions::default()).unwrap()
}

fn issuer() -> Arc<Issuer> {
    let cfg = IssuerConfig {
        id: root(),
        source: IssuerSource::SelfSigned(CaParams {
            subject: "CN=Store Approval CA".into(),
            key: KeyAlgorithm::EcdsaP256,
            validity: Duration::from_secs(365 * 86_400),
            path_len: None,
            name_constraints: NameConstraintsConfig::default(),
            renew_before: None,
        }),
        crl_validity: DAY,
    };
    Arc::new(Issuer::create(&cfg, None, now() - DAY).unwrap().0)
}

/// A CA on a (re)opened store.
fn ca(store: Box<dyn Store>, issuer: &Arc<Issuer>, clock: &ManualClock) -> Ca {
    let inventory: Arc<dyn Inventory> = Arc::from(store as Box<dyn Inventory>);
    let ca = Ca::new(inventory).with_clock(clock.shared());
    ca.put_issuer(issuer.clone());
    let mut p = Profile::internal(profile(), "approval".into(), root(), DAY, vec![], vec![]);
    p.requesters = Default::default();
    p.approval_required = true;
    ca.put_profile(p);
    ca
}

fn request(csr: &ParsedCsr, who: &str) -> IssuanceRequest {
    IssuanceRequest {
        csr: csr.clone(),
        profile: profile(),
        requester: Requester::new(Protocol::Est, who).at_endpoint(ObjectRef::new("pki", "est")),
        requested: RequestedValidity::default(),
        renewal_of: None,
        exchange: None,
    }
}

async fn approval_records_survive_restarts_and_issue_once(db: TestDb) {
    let issuer = issuer();
    let clock = ManualClock::new(now());
    let (dev1, dev2) = (csr("dev1"), csr("dev2"));
    let ca1 = ca(db.open().await, &issuer, &clock);
    let IssueOutcome::Pending(p1) = ca1.issue(request(&dev1, "dev1")).await.unwrap() else { panic!("waits") };
    let IssueOutcome::Pending(p2) = ca1.issue(request(&dev2, "dev2")).await.unwrap() else { panic!("waits") };
    drop(ca1);

    // Restart: the records are there; approve one.
    let ca2 = ca(db.open().await, &issuer, &clock);
    assert_eq!(ca2.approval_requests(&ApprovalFilter::waiting()).await.unwrap().len(), 2);
    let IssueOutcome::Pending(again) = ca2.issue(request(&dev1, "dev1")).await.unwrap() else { panic!("waits") };
    assert_eq!(again.request_id, p1.request_id, "the retry after a restart finds its record");
    ca2.approve(&p1.request_id, "alice", None).await.unwrap();
    drop(ca2);

    // Restart: the approved one is issued, the other still waits.
    let ca3 = ca(db.open().await, &issuer, &clock);
    let first = ca3.approval_outcome(&p1.request_id).await.unwrap().issued().expect("issued");
    assert!(matches!(ca3.approval_outcome(&p2.request_id).await.unwrap(), IssueOutcome::Pending(_)));
    drop(ca3);

    // Restart: the same certificate again, and only one in the inventory.
    let ca4 = ca(db.open().await, &issuer, &clock);
    let second = ca4.approval_outcome(&p1.request_id).await.unwrap().issued().expect("issued");
    assert_eq!(first.der, second.der);
    let all = ca4.inventory().list(&InventoryFilter::default()).await.unwrap();
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0].serial, first.record.serial);
}

crate::on_both_backends!(
    the_store_keeps_decides_and_claims_approval_requests,
    approval_records_survive_restarts_and_issue_once
);
