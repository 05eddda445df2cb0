//! ACME rows from before the state was kept per endpoint, in a database file made with
//! the old schema (the schema steps before that one): after the upgrade no endpoint sees
//! them until they are adopted, and adoption gives each account with its orders and
//! authorizations to one endpoint, except an account the endpoint has registered again.

use std::time::{Duration, SystemTime};

use pkiplane_acme::state::{
    AcmeStateScopes, Authorization, AuthzStatus, CertificateRef, Identifier, Order, OrderStatus,
};
use pkiplane_core::model::ObjectRef;
use pkiplane_store::testing::{SQLITE_VERSION_BEFORE_ACME_ENDPOINTS, sqlite_at_version};
use pkiplane_store::{AcmeScopes, LegacyAcmeRows, SqliteStore};
use rusqlite::params;

use crate::acme_state::account;

fn at() -> SystemTime {
    // Fixed: the records' times only need to be in the future of nothing.
    SystemTime::UNIX_EPOCH + Duration::from_secs(4_000_000_000)
}

/// Writes the old schema's rows (no endpoint column) of two accounts, an order of the
/// first with its authorization, a used EAB key and an ARI replacement link.
fn old_database(path: &std::path::Path) {
    let conn = sqlite_at_version(path, SQLITE_VERSION_BEFORE_ACME_ENDPOINTS);
    for a in [account("a1", "t1"), account("a2", "t2")] {
        conn.execute(
            "INSERT INTO acme_accounts (id, thumbprint, body, version) VALUES (?1, ?2, ?3, 1)",
            params![a.id, a.thumbprint, serde_json::to_string(&a).unwrap()],
        )
        .unwrap();
    }
    let authz = Authorization {
        id: "z1".into(),
        account_id: "a1".into(),
        identifier: Identifier::dns("www.example.com"),
        wildcard: false,
        status: AuthzStatus::Valid,
        expires: at(),
        challenges: Vec::new(),
        created_at: at(),
        version: 0,
    };
    conn.execute(
        "INSERT INTO acme_authorizations (id, account_id, identifier_type, identifier_value, wildcard, status, \
         expires, body, version) VALUES ('z1', 'a1', 'dns', 'www.example.com', 0, 'valid', 4000000000, ?1, 1)",
        params![serde_json::to_string(&authz).unwrap()],
    )
    .unwrap();
    let order = Order {
        id: "o1".into(),
        account_id: "a1".into(),
        status: OrderStatus::Valid,
        expires: at(),
        identifiers: vec![Identifier::dns("www.example.com")],
        profile: "tls".into(),
        not_before: None,
        not_after: None,
        authorizations: vec!["z1".into()],
        error: None,
        certificate: Some(CertificateRef { issuer: ObjectRef::new("pki", "root"), serial: "c1".into() }),
        replaces: None,
        approval: None,
        created_at: at(),
        version: 0,
    };
    conn.execute(
        "INSERT INTO acme_orders (id, account_id, status, expires, has_certificate, created_at, body, version) \
         VALUES ('o1', 'a1', 'valid', 4000000000, 1, 4000000000, ?1, 1)",
        params![serde_json::to_string(&order).unwrap()],
    )
    .unwrap();
    conn.execute("INSERT INTO acme_eab_used (kid, account_id, used_at) VALUES ('kid1', 'a1', 1)", []).unwrap();
    conn.execute("INSERT INTO acme_replacements (cert_id, order_id) VALUES ('c0', 'o1')", []).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_acme_rows_are_adopted_by_one_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inventory.db");
    old_database(&path);
    let store = std::sync::Arc::new(SqliteStore::open(&path).unwrap());
    assert_eq!(store.legacy_acme_rows().await.unwrap(), LegacyAcmeRows { accounts: 2, orders: 1, authorizations: 1 });
    let scopes = AcmeScopes::new(store.clone());
    let one = scopes.for_endpoint(&ObjectRef::new("acme", "one"));
    let two = scopes.for_endpoint(&ObjectRef::new("acme", "two"));
    assert!(one.account("a1").await.unwrap().is_none(), "unowned rows are no endpoint's");
    // After the upgrade a client of the second account registered again at `one`.
    one.create_account(&account("a3", "t2"), None).await.unwrap();

    let adopted = store.adopt_legacy_acme(&ObjectRef::new("acme", "one")).await.unwrap();
    assert_eq!(adopted, LegacyAcmeRows { accounts: 1, orders: 1, authorizations: 1 });
    let a1 = one.account("a1").await.unwrap().expect("adopted account");
    assert_eq!((a1.thumbprint.as_str(), a1.contact.as_slice()), ("t1", &["mailto:a@example.com".to_owned()][..]));
    assert_eq!(one.account_by_thumbprint("t1").await.unwrap().unwrap().id, "a1");
    let order = one.order("o1").await.unwrap().expect("adopted order");
    assert_eq!((order.status, order.certificate.map(|c| c.serial)), (OrderStatus::Valid, Some("c1".to_owned())));
    assert_eq!(one.account_orders("a1", 10).await.unwrap(), ["o1"]);
    assert_eq!(one.authorization("z1").await.unwrap().unwrap().status, AuthzStatus::Valid);
    // The re-registered key keeps its new account; the old one stays unowned.
    assert_eq!(one.account_by_thumbprint("t2").await.unwrap().unwrap().id, "a3");
    assert!(one.account("a2").await.unwrap().is_none());
    assert!(two.account("a1").await.unwrap().is_none() && two.order("o1").await.unwrap().is_none());
    drop((one, two, scopes, store));

    // Durable, and done once.
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.legacy_acme_rows().await.unwrap(), LegacyAcmeRows { accounts: 1, orders: 0, authorizations: 0 });
    assert_eq!(store.adopt_legacy_acme(&ObjectRef::new("acme", "one")).await.unwrap(), LegacyAcmeRows::default());
}
