//! The ACME state store on both backends: atomic nonce consumption (also between two
//! store handles, as two replicas), unique account keys, single-use EAB keys,
//! compare-and-set on orders and authorizations, ARI replacement links, expiry, and
//! endpoints that never see each other's state.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use pkiplane_acme::state::*;
use pkiplane_core::ObjectRef;
use pkiplane_core::inventory::unix_seconds::{from_secs, to_secs};

use crate::common::TestDb;

fn now() -> SystemTime {
    from_secs(to_secs(SystemTime::now()))
}

fn endpoint() -> ObjectRef {
    ObjectRef::new("pki", "acme")
}

/// The ACME state of the test endpoint on a new handle of `db`.
async fn open(db: &TestDb) -> Arc<dyn AcmeStore> {
    db.open_states().await.acme.for_endpoint(&endpoint())
}

pub(crate) fn account(id: &str, thumbprint: &str) -> Account {
    Account {
        id: id.into(),
        status: AccountStatus::Valid,
        jwk: format!("{{\"k\":\"{thumbprint}\"}}"),
        thumbprint: thumbprint.into(),
        contact: vec!["mailto:a@example.com".into()],
        terms_agreed: true,
        eab_kid: None,
        created_at: now(),
        version: 0,
    }
}

fn authz(id: &str, account: &str, name: &str, status: AuthzStatus, expires: SystemTime) -> Authorization {
    Authorization {
        id: id.into(),
        account_id: account.into(),
        identifier: Identifier::dns(name),
        wildcard: false,
        status,
        expires,
        challenges: vec![Challenge {
            id: format!("{id}-c"),
            kind: ChallengeType::Http01,
            token: "tok".into(),
            status: ChallengeStatus::Pending,
            validated: None,
            processing_since: None,
            error: None,
        }],
        created_at: now(),
        version: 0,
    }
}

/// A valid-authorization lookup of `account` for `a.example`.
fn a_example(account: &str, wildcard: bool, now: SystemTime) -> AuthorizationQuery {
    AuthorizationQuery { account_id: account.into(), identifier: Identifier::dns("a.example"), wildcard, now }
}

fn order(id: &str, account: &str, authzs: &[&str], expires: SystemTime) -> Order {
    Order {
        id: id.into(),
        account_id: account.into(),
        status: OrderStatus::Pending,
        expires,
        identifiers: vec![Identifier::dns("a.example")],
        profile: "tls".into(),
        not_before: None,
        not_after: Some(now() + Duration::from_secs(86_400)),
        authorizations: authzs.iter().map(|s| s.to_string()).collect(),
        error: None,
        certificate: None,
        replaces: None,
        approval: None,
        created_at: now(),
        version: 0,
    }
}

async fn a_nonce_is_accepted_once_even_when_raced(db: TestDb) {
    let store = open(&db).await;
    // A second handle: another replica on the same database.
    let replica = open(&db).await;
    let t = now();
    store.add_nonce("n1", t + Duration::from_secs(60)).await.unwrap();
    store.add_nonce("old", t - Duration::from_secs(1)).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..16 {
        let s = if i % 2 == 0 { store.clone() } else { replica.clone() };
        tasks.push(tokio::spawn(async move { s.take_nonce("n1", SystemTime::now()).await.unwrap() }));
    }
    let mut accepted = 0;
    for t in tasks {
        accepted += usize::from(t.await.unwrap());
    }
    assert_eq!(accepted, 1);
    assert!(!store.take_nonce("old", t).await.unwrap(), "expired");
    assert!(!store.take_nonce("never", t).await.unwrap());
}

async fn account_keys_are_unique_and_single_use_eab_keys_bind_once(db: TestDb) {
    let store = open(&db).await;
    assert_eq!(store.create_account(&account("a1", "t1"), None).await.unwrap(), NewAccountOutcome::Created);
    match store.create_account(&account("a2", "t1"), None).await.unwrap() {
        NewAccountOutcome::KeyExists(a) => assert_eq!(a.id, "a1"),
        other => panic!("{other:?}"),
    }
    // Ten concurrent new accounts with one single-use key: exactly one is bound.
    let mut tasks = Vec::new();
    for i in 0..10 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut a = account(&format!("e{i}"), &format!("te{i}"));
            a.eab_kid = Some("kid".into());
            s.create_account(&a, Some(&EabUse { kid: "kid".into(), single_use: true })).await.unwrap()
        }));
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap());
    }
    assert_eq!(outcomes.iter().filter(|o| **o == NewAccountOutcome::Created).count(), 1);
    assert_eq!(outcomes.iter().filter(|o| **o == NewAccountOutcome::EabKeyUsed).count(), 9);
    // A reusable key binds many.
    for i in 0..3 {
        let eab = EabUse { kid: "shared".into(), single_use: false };
        let got = store.create_account(&account(&format!("r{i}"), &format!("tr{i}")), Some(&eab)).await.unwrap();
        assert_eq!(got, NewAccountOutcome::Created);
    }

    // Compare-and-set, and key uniqueness on update.
    let mut a = store.account("a1").await.unwrap().unwrap();
    assert_eq!(a.version, 0);
    a.thumbprint = "t1-new".into();
    assert_eq!(store.update_account(&a).await.unwrap(), AccountUpdate::Done);
    assert_eq!(store.update_account(&a).await.unwrap(), AccountUpdate::Conflict);
    let stored = store.account_by_thumbprint("t1-new").await.unwrap().unwrap();
    assert_eq!((stored.id.as_str(), stored.version), ("a1", 1));
    assert!(store.account_by_thumbprint("t1").await.unwrap().is_none());
    let mut r0 = store.account("r0").await.unwrap().unwrap();
    r0.thumbprint = "t1-new".into();
    assert_eq!(store.update_account(&r0).await.unwrap(), AccountUpdate::KeyInUse("a1".into()));
}

async fn orders_and_authorizations_compare_and_set(db: TestDb) {
    let store = open(&db).await;
    let t = now();
    let exp = t + Duration::from_secs(3600);
    let z = authz("z1", "a1", "a.example", AuthzStatus::Pending, exp);
    assert_eq!(store.create_order(&order("o1", "a1", &["z1"], exp), &[z]).await.unwrap(), NewOrderOutcome::Created);

    // Two writers with the same version: one wins.
    let o = store.order("o1").await.unwrap().unwrap();
    let (mut x, mut y) = (o.clone(), o.clone());
    x.status = OrderStatus::Ready;
    y.status = OrderStatus::Invalid;
    let (rx, ry) = tokio::join!(store.update_order(&x), store.update_order(&y));
    assert!(rx.unwrap() ^ ry.unwrap(), "exactly one update wins");
    let after = store.order("o1").await.unwrap().unwrap();
    assert_eq!(after.version, 1);

    let mut a = store.authorization("z1").await.unwrap().unwrap();
    a.status = AuthzStatus::Valid;
    a.challenges[0].status = ChallengeStatus::Valid;
    a.challenges[0].validated = Some(t);
    assert!(store.update_authorization(&a).await.unwrap());
    assert!(!store.update_authorization(&a).await.unwrap(), "stale version");
    let found = store.valid_authorization(&a_example("a1", false, t)).await.unwrap().unwrap();
    assert_eq!((found.id.as_str(), found.version, found.challenges[0].validated), ("z1", 1, Some(t)));
    assert!(store.valid_authorization(&a_example("a1", true, t)).await.unwrap().is_none());
    assert!(store.valid_authorization(&a_example("a2", false, t)).await.unwrap().is_none());
    assert!(store.valid_authorization(&a_example("a1", false, exp)).await.unwrap().is_none());

    store.create_order(&order("o2", "a1", &["z1"], exp), &[]).await.unwrap();
    assert_eq!(store.account_orders("a1", 10).await.unwrap().len(), 2);
    assert_eq!(store.account_orders("a1", 1).await.unwrap().len(), 1);

    // Everything survives a reopen.
    drop(store);
    let store = open(&db).await;
    let o = store.order("o1").await.unwrap().unwrap();
    assert_eq!((o.version, o.authorizations.clone()), (1, vec!["z1".to_owned()]));
    assert_eq!(store.authorization("z1").await.unwrap().unwrap().status, AuthzStatus::Valid);
}

async fn a_certificate_is_replaced_by_one_live_order(db: TestDb) {
    let store = open(&db).await;
    let exp = now() + Duration::from_secs(3600);
    let replaces = Replaces { cert_id: "aki.serial".into(), issuer: ObjectRef::new("pki", "ca"), serial: "0a".into() };
    let mut first = order("o1", "a1", &[], exp);
    first.replaces = Some(replaces.clone());
    assert_eq!(store.create_order(&first, &[]).await.unwrap(), NewOrderOutcome::Created);
    let mut second = order("o2", "a1", &[], exp);
    second.replaces = Some(replaces);
    assert_eq!(store.create_order(&second, &[]).await.unwrap(), NewOrderOutcome::AlreadyReplaced("o1".into()));
    assert!(store.order("o2").await.unwrap().is_none(), "the refused order was not stored");
    let mut o1 = store.order("o1").await.unwrap().unwrap();
    o1.status = OrderStatus::Invalid;
    assert!(store.update_order(&o1).await.unwrap());
    assert_eq!(store.create_order(&second, &[]).await.unwrap(), NewOrderOutcome::Created);
}

async fn expired_state_is_purged(db: TestDb) {
    let store = open(&db).await;
    let t = now();
    let long_ago = t - Duration::from_secs(30 * 86_400);
    store.add_nonce("gone", t - Duration::from_secs(1)).await.unwrap();
    store.add_nonce("kept", t + Duration::from_secs(60)).await.unwrap();
    let old = authz("zold", "a1", "old.example", AuthzStatus::Pending, long_ago);
    store.create_order(&order("old", "a1", &["zold"], long_ago), &[old]).await.unwrap();
    let fresh = authz("znew", "a1", "new.example", AuthzStatus::Pending, t + Duration::from_secs(60));
    store.create_order(&order("new", "a1", &["znew"], t + Duration::from_secs(60)), &[fresh]).await.unwrap();
    let purged = store.purge_expired(t, Duration::from_secs(7 * 86_400)).await.unwrap();
    assert_eq!(purged, 3, "one nonce, one order, one authorization");
    assert!(store.order("old").await.unwrap().is_none());
    assert!(store.authorization("zold").await.unwrap().is_none());
    assert!(store.order("new").await.unwrap().is_some());
    assert!(store.authorization("znew").await.unwrap().is_some());
    assert!(store.take_nonce("kept", t).await.unwrap());
}

/// Two ACME endpoints on one store: neither reads, consumes or collides with the other's
/// accounts, orders, authorizations, nonces or EAB key uses.
async fn endpoints_do_not_share_acme_state(db: TestDb) {
    let scopes = db.open_states().await.acme;
    let (a, b) = (scopes.for_endpoint(&endpoint()), scopes.for_endpoint(&ObjectRef::new("team-b", "acme")));
    let exp = now() + Duration::from_secs(3600);
    let eab = EabUse { kid: "kid".into(), single_use: true };
    assert_eq!(a.create_account(&account("a1", "t1"), Some(&eab)).await.unwrap(), NewAccountOutcome::Created);
    assert!(b.account("a1").await.unwrap().is_none());
    assert!(b.account_by_thumbprint("t1").await.unwrap().is_none());
    // The same key and EAB key ID are a new account at the other endpoint.
    assert_eq!(b.create_account(&account("b1", "t1"), Some(&eab)).await.unwrap(), NewAccountOutcome::Created);
    let mut stolen = a.account("a1").await.unwrap().unwrap();
    stolen.contact = vec!["mailto:mallory@example.com".into()];
    assert_ne!(b.update_account(&stolen).await.unwrap(), AccountUpdate::Done, "b cannot write a's account");
    assert_eq!(a.account("a1").await.unwrap().unwrap().version, 0);

    let z = authz("z1", "a1", "a.example", AuthzStatus::Valid, exp);
    a.create_order(&order("o1", "a1", &["z1"], exp), &[z]).await.unwrap();
    assert!(b.order("o1").await.unwrap().is_none());
    assert!(b.authorization("z1").await.unwrap().is_none());
    assert!(b.account_orders("a1", 10).await.unwrap().is_empty());
    assert!(b.valid_authorization(&a_example("a1", false, now())).await.unwrap().is_none());
    let mut o = a.order("o1").await.unwrap().unwrap();
    o.status = OrderStatus::Invalid;
    assert!(!b.update_order(&o).await.unwrap(), "b cannot write a's order");
    let mut z = a.authorization("z1").await.unwrap().unwrap();
    z.status = AuthzStatus::Revoked;
    assert!(!b.update_authorization(&z).await.unwrap(), "b cannot write a's authorization");
    assert!(a.valid_authorization(&a_example("a1", false, now())).await.unwrap().is_some());

    a.add_nonce("n", exp).await.unwrap();
    assert!(!b.take_nonce("n", now()).await.unwrap(), "a nonce of a is no nonce at b");
    assert!(a.take_nonce("n", now()).await.unwrap());
}

crate::on_both_backends!(
    a_nonce_is_accepted_once_even_when_raced,
    account_keys_are_unique_and_single_use_eab_keys_bind_once,
    orders_and_authorizations_compare_and_set,
    a_certificate_is_replaced_by_one_live_order,
    expired_state_is_purged,
    endpoints_do_not_share_acme_state,
);
