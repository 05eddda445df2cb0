//! [`SealableRows`] on SQLite, and the sealing of the SCEP RA keys the SQLite store keeps
//! with the SCEP protocol state.

use async_trait::async_trait;
use pkiplane_core::inventory::StoreError;
use rusqlite::params;
use zeroize::Zeroizing;

use std::sync::Arc;

use pkiplane_core::model::ObjectRef;
use pkiplane_scep::state::RaMaterial;

use super::{KeyEncryptionKeys, KeyRow, KeyTable, SealableRows, context, is_sealed, seal_err, sealed_with};
use crate::SqliteStore;
use crate::error::sql_err;

#[async_trait]
impl SealableRows for SqliteStore {
    async fn private_key_rows(&self) -> Result<Vec<KeyRow>, StoreError> {
        self.read(|conn| {
            let mut out = Vec::new();
            for table in KeyTable::CA.into_iter().chain([KeyTable::ScepRa]) {
                let id = table.key_id_column().unwrap_or("NULL");
                let sql = format!("SELECT {}, {id}, private_key FROM {}", table.owner_column(), table.name());
                let context = "listing stored private keys";
                let mut stmt = conn.prepare(&sql).map_err(sql_err(context))?;
                let rows = stmt
                    .query_map([], |r| {
                        Ok(KeyRow { table, issuer: r.get(0)?, key_id: r.get(1)?, stored: Zeroizing::new(r.get(2)?) })
                    })
                    .map_err(sql_err(context))?;
                for row in rows {
                    out.push(row.map_err(sql_err(context))?);
                }
            }
            Ok(out)
        })
        .await
    }

    async fn replace_private_key(&self, row: &KeyRow, value: &[u8]) -> Result<bool, StoreError> {
        let (table, issuer, key_id) = (row.table, row.issuer.clone(), row.key_id.clone());
        let (old, new) = (row.stored.to_vec(), value.to_vec());
        self.write(move |conn| {
            let context = "replacing a stored private key";
            let owner = table.owner_column();
            let changed = match table.key_id_column() {
                None => conn.execute(
                    &format!("UPDATE {} SET private_key = ?3 WHERE {owner} = ?1 AND private_key = ?2", table.name()),
                    params![issuer, old, new],
                ),
                Some(column) => conn.execute(
                    &format!(
                        "UPDATE {} SET private_key = ?4 WHERE {owner} = ?1 AND {column} = ?2 AND private_key = ?3",
                        table.name()
                    ),
                    params![issuer, key_id, old, new],
                ),
            }
            .map_err(sql_err(context))?;
            Ok(changed == 1)
        })
        .await
    }
}

impl SqliteStore {
    /// Seals the SCEP RA keys this store keeps with `keys` from now on (run [`super::sweep`]
    /// first, so the stored ones are sealed too).
    pub fn seal_scep_ra_keys_with(&self, keys: Arc<KeyEncryptionKeys>) {
        let _ = self.key_encryption.set(keys);
    }

    pub(crate) fn seal_ra(&self, endpoint: &ObjectRef, m: &RaMaterial) -> Result<RaMaterial, StoreError> {
        seal_ra(self.key_encryption.get(), endpoint, m)
    }

    pub(crate) fn open_ra(&self, endpoint: &ObjectRef, m: RaMaterial) -> Result<RaMaterial, StoreError> {
        open_ra(self.key_encryption.get(), endpoint, m)
    }
}

/// Seals the private key of `m` when `keys` is set (the SCEP RA keys of either store).
pub(crate) fn seal_ra(
    keys: Option<&Arc<KeyEncryptionKeys>>,
    endpoint: &ObjectRef,
    m: &RaMaterial,
) -> Result<RaMaterial, StoreError> {
    let Some(keys) = keys else { return Ok(m.clone()) };
    let sealed = keys.seal(&m.private_key_pkcs8, &context(KeyTable::ScepRa, &endpoint.to_string(), None));
    Ok(RaMaterial { private_key_pkcs8: Zeroizing::new(sealed.map_err(seal_err)?), ..m.clone() })
}

/// Opens a stored RA key: refuses a sealed key without `keys` and a plaintext one with.
pub(crate) fn open_ra(
    keys: Option<&Arc<KeyEncryptionKeys>>,
    endpoint: &ObjectRef,
    m: RaMaterial,
) -> Result<RaMaterial, StoreError> {
    let sealed = is_sealed(&m.private_key_pkcs8);
    match keys {
        None if sealed => Err(StoreError::unavailable(format!(
            "the SCEP RA key of {endpoint} is sealed with key-encryption key `{}`: start with --kek-file",
            sealed_with(&m.private_key_pkcs8).unwrap_or("?")
        ))),
        None => Ok(m),
        Some(_) if !sealed => Err(StoreError::corrupt(format!(
            "the SCEP RA key of {endpoint} is stored unsealed; restart with --kek-file to seal it"
        ))),
        Some(keys) => {
            let key = keys
                .open(&m.private_key_pkcs8, &context(KeyTable::ScepRa, &endpoint.to_string(), None))
                .map_err(|e| StoreError::corrupt(format!("the SCEP RA key of {endpoint}: {e}")))?;
            Ok(RaMaterial { private_key_pkcs8: key, ..m })
        }
    }
}
