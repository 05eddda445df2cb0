//! The staged next CA of each issuer (CA key rollover, RFC 9810 section 4.4): one row per
//! issuer while a next CA is staged, deleted when it is promoted.

use std::time::SystemTime;

use pkiplane_core::inventory::{StoreError, StoredCaMaterial, StoredNextCa};
use rusqlite::{Connection, OptionalExtension, params};

use crate::error::sql_err;
use crate::rows::secs;

/// Schema step: the `ca_next` table.
pub(crate) const V_CA_NEXT: &str = "
CREATE TABLE ca_next (
    issuer          TEXT    NOT NULL PRIMARY KEY,
    certificate_der BLOB    NOT NULL,
    private_key     BLOB    NOT NULL,
    spec_hash       TEXT    NOT NULL,
    new_with_old    BLOB,
    old_with_new    BLOB,
    staged_at       INTEGER NOT NULL
);
";

pub(crate) fn load(conn: &Connection, issuer: &str) -> Result<Option<StoredNextCa>, StoreError> {
    type Row = (Vec<u8>, Vec<u8>, String, Option<Vec<u8>>, Option<Vec<u8>>);
    let row: Option<Row> = conn
        .prepare_cached(
            "SELECT certificate_der, private_key, spec_hash, new_with_old, old_with_new FROM ca_next WHERE issuer = ?1",
        )
        .and_then(|mut stmt| {
            stmt.query_row(params![issuer], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))).optional()
        })
        .map_err(sql_err("loading the next CA"))?;
    Ok(row.map(|(certificate_der, key, spec_hash, new_with_old_der, old_with_new_der)| StoredNextCa {
        material: StoredCaMaterial { certificate_der, private_key_pkcs8: key.into(), spec_hash },
        new_with_old_der,
        old_with_new_der,
    }))
}

pub(crate) fn save(
    conn: &Connection,
    issuer: &str,
    next: Option<&StoredNextCa>,
    now: SystemTime,
) -> Result<(), StoreError> {
    let result = match next {
        None => {
            conn.prepare_cached("DELETE FROM ca_next WHERE issuer = ?1").and_then(|mut s| s.execute(params![issuer]))
        }
        Some(n) => conn
            .prepare_cached(
                "INSERT INTO ca_next (issuer, certificate_der, private_key, spec_hash, new_with_old, old_with_new, \
                 staged_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
                 ON CONFLICT (issuer) DO UPDATE SET certificate_der = excluded.certificate_der, \
                 private_key = excluded.private_key, spec_hash = excluded.spec_hash, \
                 new_with_old = excluded.new_with_old, old_with_new = excluded.old_with_new, \
                 staged_at = excluded.staged_at",
            )
            .and_then(|mut s| {
                s.execute(params![
                    issuer,
                    n.material.certificate_der,
                    n.material.private_key_pkcs8.as_slice(),
                    n.material.spec_hash,
                    n.new_with_old_der,
                    n.old_with_new_der,
                    secs(now),
                ])
            }),
    };
    result.map_err(sql_err("saving the next CA"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use pkiplane_core::inventory::{CaMaterialStore, StoredCaMaterial, StoredNextCa};
    use pkiplane_core::model::ObjectRef;

    use crate::SqliteStore;

    #[tokio::test(flavor = "multi_thread")]
    async fn next_ca_round_trips_across_a_reopen_and_clears() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pkiplane.db");
        let id = ObjectRef::new("pki", "root");
        let next = StoredNextCa {
            material: StoredCaMaterial {
                certificate_der: vec![0x30, 0x01, 0x02],
                private_key_pkcs8: vec![0x30, 0x03].into(),
                spec_hash: "abc".into(),
            },
            new_with_old_der: Some(vec![0x30, 0x04]),
            old_with_new_der: None,
        };
        {
            let store = SqliteStore::open(&path).unwrap();
            assert!(store.load_next_ca(&id).await.unwrap().is_none());
            store.save_next_ca(&id, Some(&next)).await.unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        let loaded = store.load_next_ca(&id).await.unwrap().expect("durable");
        assert_eq!(loaded.material.certificate_der, next.material.certificate_der);
        assert_eq!(loaded.material.private_key_pkcs8.as_slice(), next.material.private_key_pkcs8.as_slice());
        assert_eq!(loaded.material.spec_hash, "abc");
        assert_eq!(loaded.new_with_old_der, next.new_with_old_der);
        assert_eq!(loaded.old_with_new_der, None);
        assert!(store.load_next_ca(&ObjectRef::new("pki", "other")).await.unwrap().is_none());
        store.save_next_ca(&id, None).await.unwrap();
        assert!(store.load_next_ca(&id).await.unwrap().is_none());
    }
}
