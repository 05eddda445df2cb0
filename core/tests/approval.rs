//! The approval state machine in the core, on the in-memory store with a manual clock:
//! a request waits as a record, a retry finds its record, an approver decides by id, an
//! approved request is signed exactly once (and verifies with `openssl verify`), a denied
//! one answers with the approver's reason, decisions are final, and a rule changed after
//! approval denies by name. (Records surviving a restart: `store/tests/store/approvals.rs`.)

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use futures_executor::block_on;
use pkiplane_core::approval::{ApprovalError, ApprovalFilter, ApprovalState};
use pkiplane_core::clock::ManualClock;
use pkiplane_core::inventory::memory::MemoryInventory;
use pkiplane_core::inventory::{CertStatus, Inventory, InventoryFilter};
use pkiplane_core::issuance::{Ca, IssuanceRequest, IssueOutcome};
use pkiplane_core::issuer::{CaParams, Issuer, IssuerConfig, IssuerSource, NameConstraintsConfig};
use pkiplane_core::keys::{KeyAlgorithm, KeyFamily};
use pkiplane_core::model::{ObjectRef, Protocol, Requester};
use pkiplane_core::policy::RequestedValidity;
use pkiplane_core::{CoreError, ErrorKind};

/// 2026-03-01T00:00:00Z: the tests' "now", whatever day they run.
fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_772_323_200)
}

struct Env {
    ca: Ca,
    clock: ManualClock,
    inventory: Arc<MemoryInventory>,
    issuer: Arc<Issuer>,
}

fn env() -> Env {
    let clock = ManualClock::new(t0());
    let cfg = IssuerConfig {
        id: ObjectRef::new("pki", "ca"),
        source: IssuerSource::SelfSigned(CaParams {
            subject: "CN=Approval Test CA".into(),
            key: KeyAlgorithm::EcdsaP256,
            validity: Duration::from_secs(5 * 365 * 86_400),
            path_len: None,
            name_constraints: NameConstraintsConfig::default(),
            renew_before: None,
        }),
        crl_validity: Duration::from_secs(86_400),
    };
    let issuer = Arc::new(Issuer::create(&cfg, None, t0() - Duration::from_secs(3600)).unwrap().0);
    let inventory = Arc::new(MemoryInventory::new());
    let ca = Ca::new(inventory.clone()).with_clock(clock.shared());
    ca.put_issuer(issuer.clone());
    let mut p = profile();
    p.approval_required = true;
    ca.put_profile(p);
    Env { ca, clock, inventory, issuer }
}

fn request(device: &str) -> IssuanceRequest {
    IssuanceRequest {
        csr: csr(Kind::P256, &format!("/CN={device}"), &[&format!("DNS:{device}.example.com")]),
        profile: ObjectRef::new("pki", "test"),
        requester: Requester::new(Protocol::Est, device).at_endpoint(ObjectRef::new("pki", "est")),
        requested: RequestedValidity::default(),
        renewal_of: None,
        exchange: None,
    }
}

fn pending_id(outcome: IssueOutcome) -> String {
    match outcome {
        IssueOutcome::Pending(p) => p.request_id,
        other => panic!("expected pending, got {other:?}"),
    }
}

fn approval_error(e: CoreError) -> ApprovalError {
    match e {
        CoreError::Approval(a) => a,
        other => panic!("expected an approval error, got {other}"),
    }
}

#[test]
fn a_waiting_request_is_kept_and_a_retry_finds_it() {
    let env = env();
    let id = pending_id(block_on(env.ca.issue(request("dev1"))).unwrap());
    let record = block_on(env.ca.approval_request(&id)).unwrap().expect("record kept");
    assert_eq!(record.state, ApprovalState::Waiting);
    assert_eq!(record.created_at, t0());
    assert_eq!(record.subject, "CN=dev1");
    assert_eq!(record.sans, vec!["DNS:dev1.example.com"]);
    assert_eq!(record.key_algorithm, "ECDSA P-256");
    assert_eq!(record.requester.identity, "dev1");
    assert_eq!(record.requester.endpoint, Some(ObjectRef::new("pki", "est")));
    assert_eq!(record.issuer, ObjectRef::new("pki", "ca"));
    assert!(record.passed_rules.iter().any(|r| r == "subjectAltNames"), "{:?}", record.passed_rules);
    assert!(!record.csr_der.is_empty());

    // The same request again (an EST retry): the same record, no second one.
    env.clock.advance(Duration::from_secs(60));
    assert_eq!(pending_id(block_on(env.ca.issue(request("dev1"))).unwrap()), id);
    // Another requester: another record.
    let other = pending_id(block_on(env.ca.issue(request("dev2"))).unwrap());
    assert_ne!(other, id);
    let waiting = block_on(env.ca.approval_requests(&ApprovalFilter::waiting())).unwrap();
    assert_eq!(waiting.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), vec![other.as_str(), id.as_str()]);
    let counts = block_on(env.ca.waiting_approvals()).unwrap();
    assert_eq!(counts.len(), 1);
    assert_eq!(counts[0].waiting, 2);
    // Nothing signed while waiting.
    assert!(block_on(env.inventory.list(&InventoryFilter::default())).unwrap().is_empty());
}

#[test]
fn approval_issues_exactly_once_and_only_for_that_request() {
    let env = env();
    let approved = pending_id(block_on(env.ca.issue(request("dev1"))).unwrap());
    let waiting = pending_id(block_on(env.ca.issue(request("dev2"))).unwrap());
    assert!(matches!(block_on(env.ca.approval_outcome(&approved)).unwrap(), IssueOutcome::Pending(_)));

    env.clock.advance(Duration::from_secs(600));
    let record = block_on(env.ca.approve(&approved, "alice", Some("ticket 42"))).unwrap();
    assert_eq!(record.state, ApprovalState::Approved);
    let decision = record.decision.unwrap();
    assert_eq!(
        (decision.by.as_str(), decision.at, decision.reason.as_deref()),
        ("alice", t0() + Duration::from_secs(600), Some("ticket 42"))
    );

    let first = block_on(env.ca.approval_outcome(&approved)).unwrap().issued().expect("issued after approval");
    let again = block_on(env.ca.approval_outcome(&approved)).unwrap().issued().expect("the same certificate");
    assert_eq!(first.record.serial, again.record.serial);
    assert_eq!(first.der, again.der);
    // The protocol's retry of the same request gets the same certificate, too.
    let retried = block_on(env.ca.issue(request("dev1"))).unwrap().issued().expect("retry delivers");
    assert_eq!(retried.record.serial, first.record.serial);
    let all = block_on(env.inventory.list(&InventoryFilter::default())).unwrap();
    assert_eq!(all.len(), 1, "one certificate signed: {all:?}");
    assert_eq!(all[0].status, CertStatus::Issued);
    assert_eq!(all[0].requester, "dev1");

    // The certificate verifies against the CA.
    let dir = tempfile::tempdir().unwrap();
    let (ca_pem, leaf_pem) = (dir.path().join("ca.pem"), dir.path().join("leaf.pem"));
    std::fs::write(&ca_pem, env.issuer.certificate_pem()).unwrap();
    std::fs::write(&leaf_pem, first.certificate_pem()).unwrap();
    let out = std::process::Command::new("openssl")
        .args([
            "verify",
            "-attime",
            &(t0() + Duration::from_secs(700)).duration_since(UNIX_EPOCH).unwrap().as_secs().to_string(),
        ])
        .arg("-CAfile")
        .arg(&ca_pem)
        .arg(&leaf_pem)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // The other request still waits.
    assert!(
        matches!(block_on(env.ca.approval_outcome(&waiting)).unwrap(), IssueOutcome::Pending(p) if p.request_id == waiting)
    );
}

#[test]
fn decisions_are_final() {
    let env = env();
    let id = pending_id(block_on(env.ca.issue(request("dev1"))).unwrap());
    block_on(env.ca.approve(&id, "alice", None)).unwrap();
    let twice = approval_error(block_on(env.ca.approve(&id, "bob", None)).unwrap_err());
    assert_eq!(
        twice,
        ApprovalError::AlreadyDecided { id: id.clone(), state: ApprovalState::Approved, by: "alice".into() }
    );
    let deny_after = approval_error(block_on(env.ca.deny(&id, "bob", "changed my mind")).unwrap_err());
    assert!(matches!(deny_after, ApprovalError::AlreadyDecided { state: ApprovalState::Approved, .. }));
    let unknown = block_on(env.ca.approve("00ff", "alice", None)).unwrap_err();
    assert_eq!(unknown.kind(), ErrorKind::NotFound);
    assert!(matches!(
        block_on(env.ca.approval_outcome("00ff")).unwrap_err(),
        CoreError::Approval(ApprovalError::NotFound { id: _ })
    ));
}

#[test]
fn a_denied_request_answers_with_the_reason_and_is_never_signed() {
    let env = env();
    let id = pending_id(block_on(env.ca.issue(request("dev3"))).unwrap());
    assert_eq!(approval_error(block_on(env.ca.deny(&id, "alice", " ")).unwrap_err()), ApprovalError::ReasonRequired);
    block_on(env.ca.deny(&id, "alice", "unknown device")).unwrap();
    for outcome in [block_on(env.ca.approval_outcome(&id)).unwrap(), block_on(env.ca.issue(request("dev3"))).unwrap()] {
        match outcome {
            IssueOutcome::Denied(d) => {
                assert_eq!(
                    (d.request_id.as_str(), d.by.as_str(), d.reason.as_str()),
                    (id.as_str(), "alice", "unknown device")
                );
                assert!(d.to_string().contains("unknown device"), "{d}");
            }
            other => panic!("expected denied, got {other:?}"),
        }
    }
    assert!(matches!(
        approval_error(block_on(env.ca.approve(&id, "bob", None)).unwrap_err()),
        ApprovalError::AlreadyDecided { state: ApprovalState::Denied, .. }
    ));
    assert!(block_on(env.inventory.list(&InventoryFilter::default())).unwrap().is_empty());
    assert!(block_on(env.ca.waiting_approvals()).unwrap().is_empty());
}

#[test]
fn an_approved_request_is_checked_against_the_current_profile() {
    let env = env();
    let id = pending_id(block_on(env.ca.issue(request("dev4"))).unwrap());
    block_on(env.ca.approve(&id, "alice", None)).unwrap();
    // The profile now takes RSA keys only: the approved ECDSA request is denied by name.
    let mut p = (*env.ca.profile(&ObjectRef::new("pki", "test")).unwrap()).clone();
    p.keys.families = vec![KeyFamily::Rsa];
    env.ca.put_profile(p);
    let e = block_on(env.ca.approval_outcome(&id)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Denied);
    assert!(e.violations().iter().any(|v| v.rule.starts_with("keys")), "{e}");
    assert!(block_on(env.inventory.list(&InventoryFilter::default())).unwrap().is_empty());
}

#[test]
fn an_abandoned_signing_is_replaced_by_the_next_ask() {
    let env = env();
    let id = pending_id(block_on(env.ca.issue(request("dev5"))).unwrap());
    block_on(env.ca.approve(&id, "alice", None)).unwrap();
    let first = block_on(env.ca.approval_outcome(&id)).unwrap().issued().unwrap();
    // Simulate a crash after the claim and before the signature: the claimed serial's
    // record is abandoned (what start-up recovery does to a pending record).
    let store = env.inventory.approvals().unwrap();
    let stale = pkiplane_core::inventory::CertificateRecord {
        serial: "7fff".into(),
        status: CertStatus::Pending,
        der: None,
        ..first.record.clone()
    };
    block_on(env.inventory.insert_pending(&stale)).unwrap();
    block_on(env.inventory.mark_abandoned(&stale.issuer, "7fff")).unwrap();
    assert!(block_on(store.claim_approval_serial(&id, Some(&first.record.serial), "7fff")).unwrap());
    let next = block_on(env.ca.approval_outcome(&id)).unwrap().issued().expect("issued anew");
    assert_ne!(next.record.serial, "7fff");
    assert_ne!(next.record.serial, first.record.serial);
    assert_eq!(block_on(store.approval(&id)).unwrap().unwrap().serial, Some(next.record.serial.clone()));
}
