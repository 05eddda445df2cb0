//! Tests of CA key rollover ([`super::rollover`]): staging, link certificates (checked with
//! `openssl verify`), promotion timing, persistence and imported CAs.

use std::process::Command;
use std::time::{Duration, SystemTime};

use futures_executor::block_on;

use super::rollover::{self, RolloverOutcome};
use super::*;
use crate::inventory::CaMaterialStore;
use crate::inventory::memory::MemoryInventory;
use crate::keys::KeyAlgorithm;
use crate::model::ObjectRef;
use crate::x509::pem;

const MIN: Duration = Duration::from_secs(60);

fn config(name: &str, source: IssuerSource) -> IssuerConfig {
    IssuerConfig { id: ObjectRef::new("pki", name), source, crl_validity: Duration::from_secs(86_400) }
}

fn params(subject: &str, validity: Duration) -> CaParams {
    CaParams {
        subject: subject.into(),
        key: KeyAlgorithm::EcdsaP256,
        validity,
        path_len: None,
        name_constraints: NameConstraintsConfig::default(),
        renew_before: None,
    }
}

fn root_config() -> IssuerConfig {
    config("root", IssuerSource::SelfSigned(params("CN=Rollover Root,O=pkiplane", 120 * MIN)))
}

/// `openssl verify -CAfile ca cert` (`-partial_chain`: `ca` may be a link, not a root).
fn openssl_verify(dir: &std::path::Path, ca: &[u8], cert: &[u8], at: SystemTime) -> Result<(), String> {
    let ca_path = dir.join("ca.pem");
    let cert_path = dir.join("cert.pem");
    std::fs::write(&ca_path, pem::encode("CERTIFICATE", ca)).map_err(|e| e.to_string())?;
    std::fs::write(&cert_path, pem::encode("CERTIFICATE", cert)).map_err(|e| e.to_string())?;
    let secs = crate::inventory::unix_seconds::to_secs(at).to_string();
    let out = Command::new("openssl")
        .args(["verify", "-partial_chain", "-attime", &secs, "-CAfile"])
        .arg(&ca_path)
        .arg(&cert_path)
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
    }
}

#[test]
fn timing_rules() {
    let t0 = SystemTime::now();
    let (root, _) = Issuer::create(&root_config(), None, t0).unwrap();
    let rb = Some(90 * MIN);
    // Lifetime is 3h (1h backdated + 2h): stage from notAfter - 1h30, promote from
    // notAfter - min(3h/12, 45m) = notAfter - 15m.
    assert_eq!(rollover::renewal_window(&root.cert, rb), 90 * MIN);
    assert_eq!(rollover::renewal_window(&root.cert, None), 30 * MIN, "default: last 1/6 of the lifetime");
    assert_eq!(rollover::promotion_margin(&root.cert, rb), 15 * MIN);
    assert_eq!(rollover::promotion_margin(&root.cert, None), 15 * MIN);
    assert!(!rollover::stage_due(&root.cert, rb, t0));
    assert!(!rollover::stage_due(&root.cert, rb, t0 + 29 * MIN));
    assert!(rollover::stage_due(&root.cert, rb, t0 + 31 * MIN));
    assert!(!rollover::stage_due(&root.cert, None, t0 + 89 * MIN));
    assert!(rollover::stage_due(&root.cert, None, t0 + 91 * MIN));
}

#[test]
fn root_is_staged_with_link_certificates_and_promoted_on_time() {
    let dir = tempfile::tempdir().unwrap();
    let store = MemoryInventory::new();
    let cfg = root_config();
    let rb = Some(90 * MIN);
    let t0 = SystemTime::now();
    let (root, material) = Issuer::create(&cfg, None, t0).unwrap();
    block_on(store.save_ca(&cfg.id, &material)).unwrap();
    let old_der = root.cert.der.clone();

    // Not yet in the window: nothing happens.
    let (root, outcome) = block_on(rollover::reconcile(&cfg, root, None, &store, rb, t0)).unwrap();
    assert_eq!(outcome, RolloverOutcome::Unchanged);
    assert!(root.next.is_none());

    // In the window: a next root is staged and persisted.
    let t1 = t0 + 31 * MIN;
    let (root, outcome) = block_on(rollover::reconcile(&cfg, root, None, &store, rb, t1)).unwrap();
    assert_eq!(outcome, RolloverOutcome::Staged);
    let next = root.next.clone().expect("staged");
    assert_eq!(next.cert.subject, root.cert.subject, "same subject");
    assert_ne!(next.cert.spki_der, root.cert.spki_der, "a new key");
    let lifetime = |c: &crate::x509::cert::CertInfo| c.not_after.duration_since(c.not_before).unwrap();
    assert_eq!(lifetime(&next.cert), lifetime(&root.cert), "same validity length");
    let stored = block_on(store.load_next_ca(&cfg.id)).unwrap().expect("persisted before announced");
    assert_eq!(stored.material.certificate_der, next.cert.der);
    assert_eq!(root.cert.der, old_der, "issuance keeps using the current CA");

    // newWithOld: the new key, signed by the old key; oldWithNew: the old key, signed by the new.
    let nwo = next.new_with_old.as_ref().expect("newWithOld");
    let own = next.old_with_new.as_ref().expect("oldWithNew");
    assert_eq!(nwo.spki_der, next.cert.spki_der);
    assert_eq!(own.spki_der, root.cert.spki_der);
    let at = t1 + MIN;
    openssl_verify(dir.path(), &old_der, &nwo.der, at).expect("newWithOld verifies with the old key");
    openssl_verify(dir.path(), &next.cert.der, &own.der, at).expect("oldWithNew verifies with the new key");
    openssl_verify(dir.path(), &next.cert.der, &next.cert.der, at).expect("newWithNew is self-signed");
    assert!(
        openssl_verify(dir.path(), &next.cert.der, &nwo.der, at).is_err(),
        "newWithOld is not signed by the new key"
    );

    // A restart loads the same next CA.
    let (reloaded, _) = (Issuer::from_material(&cfg, &material, None).unwrap(), ());
    let (reloaded, outcome) = block_on(rollover::reconcile(&cfg, reloaded, None, &store, rb, t1 + MIN)).unwrap();
    assert_eq!(outcome, RolloverOutcome::Unchanged);
    assert_eq!(reloaded.next.as_ref().map(|n| n.cert.der.clone()), Some(next.cert.der.clone()));

    // Before the promotion margin (notAfter - 15m = t0 + 1h45m): still the old CA.
    let (root, outcome) = block_on(rollover::reconcile(&cfg, reloaded, None, &store, rb, t0 + 104 * MIN)).unwrap();
    assert_eq!(outcome, RolloverOutcome::Unchanged);
    assert_eq!(root.cert.der, old_der);

    // At the margin: the next CA becomes current, durably.
    let (root, outcome) = block_on(rollover::reconcile(&cfg, root, None, &store, rb, t0 + 106 * MIN)).unwrap();
    assert_eq!(outcome, RolloverOutcome::Promoted);
    assert_eq!(root.cert.der, next.cert.der);
    assert!(root.next.is_none());
    assert_eq!(block_on(store.load_ca(&cfg.id)).unwrap().unwrap().certificate_der, next.cert.der);
    assert!(block_on(store.load_next_ca(&cfg.id)).unwrap().is_none());
}

#[test]
fn intermediate_is_staged_under_the_current_parent_and_reissued_after_the_parent_rolls() {
    let dir = tempfile::tempdir().unwrap();
    let store = MemoryInventory::new();
    let t0 = SystemTime::now();
    let root_cfg = config("root", IssuerSource::SelfSigned(params("CN=Rollover Root,O=pkiplane", 1000 * MIN)));
    let int_cfg = config(
        "int",
        IssuerSource::Intermediate {
            parent: root_cfg.id.clone(),
            params: params("CN=Rollover Issuing CA,O=pkiplane", 120 * MIN),
        },
    );
    let (root, root_material) = Issuer::create(&root_cfg, None, t0).unwrap();
    block_on(store.save_ca(&root_cfg.id, &root_material)).unwrap();
    let (int, int_material) = Issuer::create(&int_cfg, Some(&root), t0).unwrap();
    block_on(store.save_ca(&int_cfg.id, &int_material)).unwrap();

    let t1 = t0 + 95 * MIN; // within the default window (last 30m of a 3h lifetime)
    let (int, outcome) = block_on(rollover::reconcile(&int_cfg, int, Some(&root), &store, None, t1)).unwrap();
    assert_eq!(outcome, RolloverOutcome::Staged);
    let next = int.next.clone().unwrap();
    assert!(next.new_with_old.is_none() && next.old_with_new.is_none(), "links are for roots");
    assert_ne!(next.cert.spki_der, int.cert.spki_der);
    openssl_verify(dir.path(), &root.cert.der, &next.cert.der, t1 + MIN).expect("signed by the current parent");

    // The parent moved to a new key: the intermediate is re-issued under it at once.
    let (new_root, _) = Issuer::create(&root_cfg, None, t1).unwrap();
    assert!(rollover::needs_reconcile(&int, Some(&new_root), None, t1));
    let (int, outcome) = block_on(rollover::reconcile(&int_cfg, int, Some(&new_root), &store, None, t1)).unwrap();
    assert_eq!(outcome, RolloverOutcome::Promoted);
    openssl_verify(dir.path(), &new_root.cert.der, &int.cert.der, t1 + MIN).expect("signed by the new parent key");
    assert!(block_on(store.load_next_ca(&int_cfg.id)).unwrap().is_none());
}

#[test]
fn intermediate_capped_by_its_parent_waits_for_the_parent() {
    let store = MemoryInventory::new();
    let t0 = SystemTime::now();
    let root_cfg = root_config(); // 2h
    let int_cfg = config(
        "int",
        IssuerSource::Intermediate {
            parent: root_cfg.id.clone(),
            params: params("CN=Rollover Issuing CA,O=pkiplane", 1000 * MIN),
        },
    );
    let (root, _) = Issuer::create(&root_cfg, None, t0).unwrap();
    let (int, _) = Issuer::create(&int_cfg, Some(&root), t0).unwrap();
    assert_eq!(int.cert.not_after, root.cert.not_after, "capped by the parent");
    let late = t0 + 110 * MIN;
    assert!(rollover::stage_due(&int.cert, None, late));
    assert!(!rollover::needs_reconcile(&int, Some(&root), None, late));
    let (int, outcome) = block_on(rollover::reconcile(&int_cfg, int, Some(&root), &store, None, late)).unwrap();
    assert_eq!(outcome, RolloverOutcome::Unchanged);
    assert!(int.next.is_none());
}

#[test]
fn imported_ca_never_stages() {
    let store = MemoryInventory::new();
    let t0 = SystemTime::now();
    let (root, material) = Issuer::create(&root_config(), None, t0).unwrap();
    let key = crate::keys::SecretKey::from_pkcs8(KeyAlgorithm::EcdsaP256, material.private_key_pkcs8.to_vec());
    let imported = ImportedCa {
        certificate_pem: root.certificate_pem(),
        private_key_pem: zeroize::Zeroizing::new(pem::encode("PRIVATE KEY", key.pkcs8_der())),
        chain_pem: String::new(),
    };
    let cfg = config("imported", IssuerSource::Imported(imported));
    let issuer = Issuer::import(&cfg).unwrap();
    let late = t0 + 119 * MIN;
    let (issuer, outcome) = block_on(rollover::reconcile(&cfg, issuer, None, &store, None, late)).unwrap();
    assert_eq!(outcome, RolloverOutcome::Unchanged);
    assert!(issuer.next.is_none());
    assert!(block_on(store.load_next_ca(&cfg.id)).unwrap().is_none());
}
