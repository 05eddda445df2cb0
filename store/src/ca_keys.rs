//! Retired CA keys (kept after a CA rollover until the last certificate they signed has
//! expired) and the delegated OCSP responder of each CA key.

use std::time::SystemTime;

use pkiplane_core::inventory::unix_seconds::from_secs;
use pkiplane_core::inventory::{StoreError, StoredOcspResponder, StoredRetiredCa};
use rusqlite::{Connection, OptionalExtension, params};

use crate::error::sql_err;
use crate::rows::secs;

/// Schema step: the `ca_retired` and `ocsp_responders` tables.
pub(crate) const V_CA_KEYS: &str = "
CREATE TABLE ca_retired (
    issuer          TEXT    NOT NULL,
    key_id          BLOB    NOT NULL,
    certificate_der BLOB    NOT NULL,
    private_key     BLOB    NOT NULL,
    retired_at      INTEGER NOT NULL,
    PRIMARY KEY (issuer, key_id)
);
CREATE TABLE ocsp_responders (
    issuer          TEXT    NOT NULL,
    ca_key_id       BLOB    NOT NULL,
    certificate_der BLOB    NOT NULL,
    private_key     BLOB    NOT NULL,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (issuer, ca_key_id)
);
";

pub(crate) fn load_retired(conn: &Connection, issuer: &str) -> Result<Vec<StoredRetiredCa>, StoreError> {
    let context = "loading retired CA keys";
    let mut stmt = conn
        .prepare_cached(
            "SELECT key_id, certificate_der, private_key, retired_at FROM ca_retired WHERE issuer = ?1 \
             ORDER BY retired_at, key_id",
        )
        .map_err(sql_err(context))?;
    let rows = stmt
        .query_map(params![issuer], |r| {
            Ok(StoredRetiredCa {
                key_id: r.get(0)?,
                certificate_der: r.get(1)?,
                private_key_pkcs8: r.get::<_, Vec<u8>>(2)?.into(),
                retired_at: from_secs(r.get(3)?),
            })
        })
        .map_err(sql_err(context))?;
    rows.collect::<Result<Vec<_>, _>>().map_err(sql_err(context))
}

pub(crate) fn save_retired(conn: &Connection, issuer: &str, r: &StoredRetiredCa) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO ca_retired (issuer, key_id, certificate_der, private_key, retired_at) \
         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (issuer, key_id) DO UPDATE SET \
         certificate_der = excluded.certificate_der, private_key = excluded.private_key, \
         retired_at = excluded.retired_at",
    )
    .and_then(|mut s| {
        s.execute(params![issuer, r.key_id, r.certificate_der, r.private_key_pkcs8.as_slice(), secs(r.retired_at)])
    })
    .map_err(sql_err("saving a retired CA key"))?;
    Ok(())
}

pub(crate) fn remove_retired(conn: &Connection, issuer: &str, key_id: &[u8]) -> Result<(), StoreError> {
    let context = "removing a retired CA key";
    conn.prepare_cached("DELETE FROM ca_retired WHERE issuer = ?1 AND key_id = ?2")
        .and_then(|mut s| s.execute(params![issuer, key_id]))
        .map_err(sql_err(context))?;
    conn.prepare_cached("DELETE FROM ocsp_responders WHERE issuer = ?1 AND ca_key_id = ?2")
        .and_then(|mut s| s.execute(params![issuer, key_id]))
        .map_err(sql_err(context))?;
    Ok(())
}

pub(crate) fn load_responder(
    conn: &Connection,
    issuer: &str,
    ca_key_id: &[u8],
) -> Result<Option<StoredOcspResponder>, StoreError> {
    conn.prepare_cached("SELECT certificate_der, private_key FROM ocsp_responders WHERE issuer = ?1 AND ca_key_id = ?2")
        .and_then(|mut stmt| {
            stmt.query_row(params![issuer, ca_key_id], |r| {
                Ok(StoredOcspResponder {
                    ca_key_id: ca_key_id.to_vec(),
                    certificate_der: r.get(0)?,
                    private_key_pkcs8: r.get::<_, Vec<u8>>(1)?.into(),
                })
            })
            .optional()
        })
        .map_err(sql_err("loading an OCSP responder"))
}

pub(crate) fn save_responder(
    conn: &Connection,
    issuer: &str,
    r: &StoredOcspResponder,
    now: SystemTime,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO ocsp_responders (issuer, ca_key_id, certificate_der, private_key, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (issuer, ca_key_id) DO UPDATE SET \
         certificate_der = excluded.certificate_der, private_key = excluded.private_key, \
         updated_at = excluded.updated_at",
    )
    .and_then(|mut s| {
        s.execute(params![issuer, r.ca_key_id, r.certificate_der, r.private_key_pkcs8.as_slice(), secs(now)])
    })
    .map_err(sql_err("saving an OCSP responder"))?;
    Ok(())
}

/// The latest notAfter of the signed certificates of `issuer` recorded by `created_by`.
pub(crate) fn latest_not_after(
    conn: &Connection,
    issuer: &str,
    created_by: SystemTime,
) -> Result<Option<SystemTime>, StoreError> {
    let latest: Option<i64> = conn
        .prepare_cached(
            "SELECT MAX(not_after) FROM certificates WHERE issuer = ?1 AND created_at <= ?2 \
             AND status IN ('issued', 'revoked')",
        )
        .and_then(|mut stmt| stmt.query_row(params![issuer, secs(created_by)], |r| r.get(0)))
        .map_err(sql_err("finding the latest notAfter"))?;
    Ok(latest.map(from_secs))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use pkiplane_core::inventory::{CaMaterialStore, StoredOcspResponder, StoredRetiredCa};
    use pkiplane_core::model::ObjectRef;

    use crate::SqliteStore;

    #[tokio::test(flavor = "multi_thread")]
    async fn retired_keys_and_responders_round_trip_across_a_reopen_and_go_together() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pkiplane.db");
        let id = ObjectRef::new("pki", "int");
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let retired = |key: u8, secs: u64| StoredRetiredCa {
            key_id: vec![key; 20],
            certificate_der: vec![0x30, key],
            private_key_pkcs8: vec![0x30, 0x03, key].into(),
            retired_at: at + Duration::from_secs(secs),
        };
        let responder = StoredOcspResponder {
            ca_key_id: vec![1; 20],
            certificate_der: vec![0x30, 0x09],
            private_key_pkcs8: vec![0x30, 0x0a].into(),
        };
        {
            let store = SqliteStore::open(&path).unwrap();
            assert!(store.load_retired_cas(&id).await.unwrap().is_empty());
            store.save_retired_ca(&id, &retired(2, 60)).await.unwrap();
            store.save_retired_ca(&id, &retired(1, 0)).await.unwrap();
            store.save_ocsp_responder(&id, &responder).await.unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        let loaded = store.load_retired_cas(&id).await.unwrap();
        assert_eq!(loaded, vec![retired(1, 0), retired(2, 60)], "durable, oldest first");
        assert!(store.load_retired_cas(&ObjectRef::new("pki", "other")).await.unwrap().is_empty());
        assert_eq!(store.load_ocsp_responder(&id, &[1; 20]).await.unwrap(), Some(responder));
        assert_eq!(store.load_ocsp_responder(&id, &[2; 20]).await.unwrap(), None);
        // Retiring a key for good takes its responder with it.
        store.remove_retired_ca(&id, &[1; 20]).await.unwrap();
        assert_eq!(store.load_retired_cas(&id).await.unwrap(), vec![retired(2, 60)]);
        assert_eq!(store.load_ocsp_responder(&id, &[1; 20]).await.unwrap(), None);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn latest_not_after_counts_signed_certificates_recorded_by_the_time() {
        use pkiplane_core::inventory::{CertStatus, CertificateRecord, Inventory};
        use pkiplane_core::model::Protocol;
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("pkiplane.db")).unwrap();
        let id = ObjectRef::new("pki", "int");
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let day = Duration::from_secs(86_400);
        let record = |serial: &str, created: u32, lifetime: u32| CertificateRecord {
            serial: serial.into(),
            issuer: id.clone(),
            profile: ObjectRef::new("pki", "tls"),
            protocol: Protocol::Local,
            endpoint: None,
            requester: "t".into(),
            subject: "CN=x".into(),
            sans: vec![],
            key_algorithm: "ECDSA P-256".into(),
            not_before: t0 + day * created,
            not_after: t0 + day * (created + lifetime),
            status: CertStatus::Pending,
            revocation: None,
            der: None,
            renewed_from: None,
            created_at: t0 + day * created,
        };
        assert_eq!(store.latest_not_after(&id, t0 + day * 100).await.unwrap(), None);
        for (serial, created, lifetime) in [("01", 0, 30), ("02", 1, 10), ("03", 5, 90), ("04", 2, 400)] {
            store.insert_pending(&record(serial, created, lifetime)).await.unwrap();
        }
        for serial in ["01", "02", "03"] {
            store.mark_issued(&id, serial, &[0x30, 0x00]).await.unwrap();
        }
        // 04 never got signed: it does not count.
        assert_eq!(store.latest_not_after(&id, t0 + day * 4).await.unwrap(), Some(t0 + day * 30));
        assert_eq!(store.latest_not_after(&id, t0 + day * 5).await.unwrap(), Some(t0 + day * 95));
        assert_eq!(store.latest_not_after(&ObjectRef::new("pki", "other"), t0 + day * 5).await.unwrap(), None);
    }
}
