//! CA private keys sealed at rest, on both backends: plaintext sealed by the start-up
//! sweep, KEK rotation by rewrapping, and a clear refusal naming the missing key id.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use pkiplane_core::inventory::{
    CaMaterialStore, StoreError, StoredCaMaterial, StoredNextCa, StoredOcspResponder, StoredRetiredCa,
};
use pkiplane_core::model::ObjectRef;
use pkiplane_store::sealing::{KeyEncryptionKeys, SealedMaterials, SweepReport, is_sealed, sealed_with, sweep};
use zeroize::Zeroizing;

use crate::common::{Store, TestDb, root};

fn keys(spec: &[(&str, u8)]) -> Arc<KeyEncryptionKeys> {
    let keys = spec.iter().map(|(id, b)| (id.to_string(), Zeroizing::new(vec![*b; 32]))).collect();
    Arc::new(KeyEncryptionKeys::new(keys).unwrap())
}

fn material(tag: u8) -> StoredCaMaterial {
    StoredCaMaterial {
        certificate_der: vec![0x30, tag],
        private_key_pkcs8: vec![0x30, 0x2e, 0x02, 0x01, 0x00, tag, tag, tag].into(),
        spec_hash: format!("h{tag}"),
    }
}

async fn save_plaintext(store: &dyn Store) {
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    store.save_ca(&root(), &material(1)).await.unwrap();
    let next = StoredNextCa { material: material(2), new_with_old_der: Some(vec![0x30, 9]), old_with_new_der: None };
    store.save_next_ca(&root(), Some(&next)).await.unwrap();
    let retired = StoredRetiredCa {
        key_id: vec![3; 20],
        certificate_der: vec![0x30, 3],
        private_key_pkcs8: vec![0x30, 3, 3].into(),
        retired_at: at,
    };
    store.save_retired_ca(&root(), &retired).await.unwrap();
    let responder = StoredOcspResponder {
        ca_key_id: vec![4; 20],
        certificate_der: vec![0x30, 4],
        private_key_pkcs8: vec![0x30, 4, 4].into(),
    };
    store.save_ocsp_responder(&root(), &responder).await.unwrap();
}

/// Every stored key's KEK id, or "plain".
async fn sealed_ids(store: &dyn Store) -> Vec<String> {
    let rows = store.private_key_rows().await.unwrap();
    assert_eq!(rows.len(), 4);
    rows.iter()
        .map(|r| if is_sealed(&r.stored) { sealed_with(&r.stored).unwrap().to_owned() } else { "plain".to_owned() })
        .collect()
}

async fn loads_everything(materials: &dyn CaMaterialStore) {
    assert_eq!(materials.load_ca(&root()).await.unwrap(), Some(material(1)));
    assert_eq!(materials.load_next_ca(&root()).await.unwrap().unwrap().material, material(2));
    assert_eq!(materials.load_retired_cas(&root()).await.unwrap()[0].private_key_pkcs8.as_slice(), [0x30, 3, 3]);
    let responder = materials.load_ocsp_responder(&root(), &[4; 20]).await.unwrap().unwrap();
    assert_eq!(responder.private_key_pkcs8.as_slice(), [0x30, 4, 4]);
}

async fn plaintext_is_sealed_rotated_and_a_missing_key_is_named(db: TestDb) {
    let store: Arc<dyn Store> = Arc::from(db.open().await);
    save_plaintext(store.as_ref()).await;
    assert_eq!(sweep(store.as_ref(), None).await.unwrap(), SweepReport::default());

    // First start with a KEK: everything sealed, nothing of the keys readable in the rows.
    let k1 = keys(&[("k1", 1)]);
    let report = sweep(store.as_ref(), Some(&k1)).await.unwrap();
    assert_eq!(report, SweepReport { sealed: 4, rewrapped: 0, current: 0 });
    assert_eq!(sealed_ids(store.as_ref()).await, ["k1"; 4]);
    let raw = store.load_ca(&root()).await.unwrap().unwrap();
    assert_ne!(raw.private_key_pkcs8, material(1).private_key_pkcs8);
    let sealed = SealedMaterials::new(store.clone(), k1.clone());
    loads_everything(&sealed).await;
    assert_eq!(sweep(store.as_ref(), Some(&k1)).await.unwrap().current, 4, "idempotent");

    // Without the KEK, the start is refused (not a failure later on an unparsable key).
    let err = sweep(store.as_ref(), None).await.unwrap_err().to_string();
    assert!(err.contains("`k1`") && err.contains("--kek-file"), "{err}");

    // Rotation: the new key first, the old one kept for reading; a sweep rewraps.
    let rotated = keys(&[("k2", 2), ("k1", 1)]);
    assert_eq!(sweep(store.as_ref(), Some(&rotated)).await.unwrap().rewrapped, 4);
    assert_eq!(sealed_ids(store.as_ref()).await, ["k2"; 4]);
    loads_everything(&SealedMaterials::new(store.clone(), keys(&[("k2", 2)]))).await;

    // The old key alone, or another key under the right id, is refused by name.
    let err = sweep(store.as_ref(), Some(&k1)).await.unwrap_err().to_string();
    assert!(err.contains("key-encryption key `k2`") && err.contains("does not hold"), "{err}");
    let err = sweep(store.as_ref(), Some(&keys(&[("k2", 7)]))).await.unwrap_err().to_string();
    assert!(err.contains("`k2`") && err.contains("does not open"), "{err}");
    let err = SealedMaterials::new(store.clone(), k1).load_ca(&root()).await.unwrap_err();
    assert!(matches!(&err, StoreError::Unavailable { message: m, .. } if m.contains("`k2`")), "{err:?}");

    // A plaintext key planted in the database is refused, not used.
    let planted = ObjectRef::new("pki", "planted");
    store.save_ca(&planted, &material(5)).await.unwrap();
    let err = SealedMaterials::new(store.clone(), rotated.clone()).load_ca(&planted).await.unwrap_err();
    assert!(matches!(&err, StoreError::Corrupt { message: m, .. } if m.contains("unsealed")), "{err:?}");
    // A sealed key copied to another issuer's row does not open.
    let sealed_root = store.load_ca(&root()).await.unwrap().unwrap();
    store.save_ca(&planted, &sealed_root).await.unwrap();
    let err = SealedMaterials::new(store.clone(), rotated).load_ca(&planted).await.unwrap_err();
    assert!(matches!(&err, StoreError::Corrupt { message: m, .. } if m.contains("does not open")), "{err:?}");
}

crate::on_both_backends!(plaintext_is_sealed_rotated_and_a_missing_key_is_named);

/// The SCEP RA keys the SQLite store keeps with the SCEP state are swept and sealed too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scep_ra_key_in_the_sqlite_store_is_sealed() {
    use pkiplane_scep::state::{RaMaterial, RaUpdate, ScepStore};
    use pkiplane_store::sealing::SealableRows;
    let db = TestDb::sqlite();
    let store = Arc::new(db.open_sqlite());
    let endpoint = ObjectRef::new("pki", "scep");
    let ra = |tag: u8| RaMaterial {
        certificate_der: vec![0x30, tag],
        private_key_pkcs8: vec![0x30, 0x07, tag].into(),
        issuer: root(),
    };
    let update = |material, replacing| RaUpdate { endpoint: endpoint.clone(), material, replacing };
    store.put_ra_material(&update(ra(1), None)).await.unwrap();
    let k1 = keys(&[("k1", 1)]);
    assert_eq!(sweep(store.as_ref(), Some(&k1)).await.unwrap().sealed, 1);
    // A store not told the KEK refuses the sealed RA key by the key's id.
    let err = store.ra_material(&endpoint).await.unwrap_err();
    assert!(matches!(&err, StoreError::Unavailable { message: m, .. } if m.contains("`k1`")), "{err:?}");
    store.seal_scep_ra_keys_with(k1);
    assert_eq!(store.ra_material(&endpoint).await.unwrap(), Some(ra(1)));
    // A replacement is sealed when written, and handed back open.
    assert_eq!(store.put_ra_material(&update(ra(2), Some(vec![0x30, 1]))).await.unwrap(), ra(2));
    let rows = store.private_key_rows().await.unwrap();
    let row = rows.iter().find(|r| r.describe().starts_with("scep_ra")).unwrap();
    assert_eq!(sealed_with(&row.stored).unwrap(), "k1");
    assert_eq!(store.ra_material(&endpoint).await.unwrap(), Some(ra(2)));
}
