//! Aggregate counts per group and the list filters.

use std::time::{Duration, SystemTime};

use pkiplane_core::inventory::{
    CertStatus, CertificateRecord, GroupBy, InventoryCounts, InventoryFilter, Revocation, RevocationReason,
};
use pkiplane_core::model::{ObjectRef, Protocol};

use crate::common::{DAY, Store, TestDb, denial, der, now, pending, profile};

fn device_profile() -> ObjectRef {
    ObjectRef::new("pki", "device-ldevid-1y")
}

/// Inserts records in order (each one second newer than the one before) and brings
/// each to its status. Returns the serials in insertion order.
async fn populate(store: &dyn Store, now: SystemTime) -> Vec<String> {
    let est = ObjectRef::new("pki", "est");
    let mut specs: Vec<(CertificateRecord, CertStatus)> = Vec::new();
    let acme = |serial: &str, not_after: SystemTime, status| {
        let mut r = pending(serial);
        r.not_after = not_after;
        (r, status)
    };
    specs.push(acme("a1", now + 47 * DAY, CertStatus::Issued));
    specs.push(acme("a2", now + 10 * DAY, CertStatus::Issued));
    specs.push(acme("a3", now - DAY, CertStatus::Issued)); // expired
    specs.push(acme("a4", now + 47 * DAY, CertStatus::Revoked));
    specs.push(acme("a5", now + 47 * DAY, CertStatus::Pending));
    specs.push(acme("a6", now + 47 * DAY, CertStatus::Abandoned));
    let mut e1 = pending("e1");
    e1.protocol = Protocol::Est;
    e1.endpoint = Some(est);
    e1.not_after = now + 30 * DAY; // exactly at the edge of the window: expiring soon
    specs.push((e1, CertStatus::Issued));
    let mut l1 = pending("l1");
    l1.issuer = ObjectRef::new("pki", "other-ca");
    l1.profile = device_profile();
    l1.protocol = Protocol::Local;
    l1.endpoint = None;
    l1.not_after = now + 365 * DAY;
    specs.push((l1, CertStatus::Issued));

    let mut serials = Vec::new();
    for (i, (mut record, status)) in specs.into_iter().enumerate() {
        record.created_at = now - Duration::from_secs(100 - i as u64);
        store.insert_pending(&record).await.unwrap();
        match status {
            CertStatus::Pending => {}
            CertStatus::Abandoned => store.mark_abandoned(&record.issuer, &record.serial).await.unwrap(),
            CertStatus::Issued | CertStatus::Revoked => {
                store.mark_issued(&record.issuer, &record.serial, &der(&record.serial)).await.unwrap();
            }
        }
        if status == CertStatus::Revoked {
            let reason = RevocationReason::KeyCompromise;
            store.revoke(&record.issuer, &record.serial, Revocation { reason, at: now }).await.unwrap();
        }
        serials.push(record.serial);
    }

    store.record_denial(&denial(profile(), Protocol::Acme, "san.dns-suffix")).await.unwrap();
    store.record_denial(&denial(profile(), Protocol::Acme, "san.dns-suffix")).await.unwrap();
    store.record_denial(&denial(profile(), Protocol::Acme, "key.algorithm")).await.unwrap();
    let mut orphan = denial(ObjectRef::new("pki", "only-denied"), Protocol::Scep, "requester");
    orphan.issuer = None;
    orphan.endpoint = None;
    store.record_denial(&orphan).await.unwrap();
    serials
}

/// (key, issued, active, expiring_soon, revoked, denied, has last_issued_at)
type Row = (String, u64, u64, u64, u64, u64, bool);

fn rows(counts: &[InventoryCounts]) -> Vec<Row> {
    counts
        .iter()
        .map(|c| {
            let key = c.key.clone();
            (key, c.issued, c.active, c.expiring_soon, c.revoked, c.denied, c.last_issued_at.is_some())
        })
        .collect()
}

fn row(key: &str, counts: [u64; 5], last: bool) -> Row {
    let [issued, active, soon, revoked, denied] = counts;
    (key.to_owned(), issued, active, soon, revoked, denied, last)
}

async fn counts_per_group_with_an_expiry_window(db: TestDb) {
    let store = db.open().await;
    let now = now();
    populate(store.as_ref(), now).await;
    let window = 30 * DAY;

    let by_profile = store.counts(GroupBy::Profile, now, window).await.unwrap();
    assert_eq!(
        rows(&by_profile),
        [
            row("pki/device-ldevid-1y", [1, 1, 0, 0, 0], true),
            row("pki/enterprise-tls-47d", [5, 3, 2, 1, 3], true),
            row("pki/only-denied", [0, 0, 0, 0, 1], false),
        ]
    );
    let last = by_profile[1].last_issued_at.unwrap();
    assert!(last >= now && last <= SystemTime::now(), "{last:?}");

    let by_profile_protocol = store.counts(GroupBy::ProfileProtocol, now, window).await.unwrap();
    assert_eq!(
        rows(&by_profile_protocol),
        [
            row("pki/device-ldevid-1y|LOCAL", [1, 1, 0, 0, 0], true),
            row("pki/enterprise-tls-47d|ACME", [4, 2, 1, 1, 3], true),
            row("pki/enterprise-tls-47d|EST", [1, 1, 1, 0, 0], true),
            row("pki/only-denied|SCEP", [0, 0, 0, 0, 1], false),
        ]
    );

    let by_endpoint = store.counts(GroupBy::Endpoint, now, window).await.unwrap();
    assert_eq!(rows(&by_endpoint), [row("pki/acme", [4, 2, 1, 1, 3], true), row("pki/est", [1, 1, 1, 0, 0], true)]);

    let by_endpoint_profile = store.counts(GroupBy::EndpointProfile, now, window).await.unwrap();
    assert_eq!(
        rows(&by_endpoint_profile),
        [
            row("pki/acme|pki/enterprise-tls-47d", [4, 2, 1, 1, 3], true),
            row("pki/est|pki/enterprise-tls-47d", [1, 1, 1, 0, 0], true),
        ]
    );

    let by_issuer = store.counts(GroupBy::Issuer, now, window).await.unwrap();
    assert_eq!(
        rows(&by_issuer),
        [row("pki/other-ca", [1, 1, 0, 0, 0], true), row("pki/root-ca", [5, 3, 2, 1, 3], true)]
    );

    // A narrower window and a later "now".
    let narrow = store.counts(GroupBy::Issuer, now, 10 * DAY).await.unwrap();
    assert_eq!(narrow[1].expiring_soon, 1);
    let later = store.counts(GroupBy::Issuer, now + 20 * DAY, window).await.unwrap();
    assert_eq!((later[1].issued, later[1].active, later[1].expiring_soon), (5, 2, 2));

    let empty = db.fresh().await;
    assert!(empty.open().await.counts(GroupBy::Profile, now, window).await.unwrap().is_empty());
}

fn serials(records: &[CertificateRecord]) -> Vec<&str> {
    records.iter().map(|r| r.serial.as_str()).collect()
}

async fn list_applies_every_filter_newest_first(db: TestDb) {
    let store = db.open().await;
    let now = now();
    populate(store.as_ref(), now).await;
    let list = |filter: InventoryFilter| {
        let store = &store;
        async move { store.list(&filter).await.unwrap() }
    };

    let all = list(InventoryFilter::default()).await;
    assert_eq!(serials(&all), ["l1", "e1", "a6", "a5", "a4", "a3", "a2", "a1"]);
    let limited = list(InventoryFilter { limit: Some(3), ..Default::default() }).await;
    assert_eq!(serials(&limited), ["l1", "e1", "a6"]);
    assert!(list(InventoryFilter { limit: Some(0), ..Default::default() }).await.is_empty());

    let f = InventoryFilter { profile: Some(profile()), ..Default::default() };
    assert_eq!(list(f).await.len(), 7);
    let f = InventoryFilter { protocol: Some(Protocol::Est), ..Default::default() };
    assert_eq!(serials(&list(f).await), ["e1"]);
    let f = InventoryFilter { endpoint: Some(ObjectRef::new("pki", "acme")), ..Default::default() };
    assert_eq!(list(f).await.len(), 6);
    let f = InventoryFilter { status: Some(CertStatus::Pending), ..Default::default() };
    assert_eq!(serials(&list(f).await), ["a5"]);
    let f = InventoryFilter { status: Some(CertStatus::Revoked), ..Default::default() };
    let revoked = list(f).await;
    assert_eq!(serials(&revoked), ["a4"]);
    assert_eq!(revoked[0].revocation.map(|r| r.reason), Some(RevocationReason::KeyCompromise));
    let f = InventoryFilter { issuer: Some(ObjectRef::new("pki", "other-ca")), ..Default::default() };
    assert_eq!(serials(&list(f).await), ["l1"]);

    // Expiring: issued, not yet expired, notAfter before the bound.
    let soon = Some(now + 30 * DAY + Duration::from_secs(1));
    let f = InventoryFilter { expiring_before: soon, ..Default::default() };
    assert_eq!(serials(&list(f).await), ["e1", "a2"]);
    let f = InventoryFilter { expiring_before: soon, protocol: Some(Protocol::Acme), ..Default::default() };
    assert_eq!(serials(&list(f).await), ["a2"]);
    let f = InventoryFilter { expiring_before: soon, profile: Some(device_profile()), ..Default::default() };
    assert!(list(f).await.is_empty());
    let f = InventoryFilter {
        profile: Some(profile()),
        protocol: Some(Protocol::Acme),
        endpoint: Some(ObjectRef::new("pki", "acme")),
        status: Some(CertStatus::Issued),
        limit: Some(2),
        ..Default::default()
    };
    assert_eq!(serials(&list(f).await), ["a3", "a2"]);
}

async fn a_group_with_nothing_signed_counts_zero(db: TestDb) {
    let store = db.open().await;
    store.insert_pending(&pending("p1")).await.unwrap();
    store.insert_pending(&pending("p2")).await.unwrap();
    store.mark_abandoned(&crate::common::root(), "p2").await.unwrap();
    let counts = store.counts(GroupBy::ProfileProtocol, now(), DAY).await.unwrap();
    assert_eq!(rows(&counts), [row("pki/enterprise-tls-47d|ACME", [0, 0, 0, 0, 0], false)]);
}

crate::on_both_backends!(
    counts_per_group_with_an_expiry_window,
    list_applies_every_filter_newest_first,
    a_group_with_nothing_signed_counts_zero
);
