//! [`SealableRows`] on PostgreSQL.

use async_trait::async_trait;
use pkiplane_core::inventory::StoreError;
use zeroize::Zeroizing;

use super::{KeyRow, KeyTable, SealableRows};
use crate::PostgresStore;

#[async_trait]
impl SealableRows for PostgresStore {
    async fn private_key_rows(&self) -> Result<Vec<KeyRow>, StoreError> {
        let mut out = Vec::new();
        for table in KeyTable::CA.into_iter().chain([KeyTable::ScepRa]) {
            let id = table.key_id_column().unwrap_or("NULL::BYTEA");
            let sql = format!("SELECT {}, {id}, private_key FROM {}", table.owner_column(), table.name());
            for r in self.raw_query(&sql, &[]).await? {
                out.push(KeyRow {
                    table,
                    issuer: r.try_get(0).map_err(corrupt)?,
                    key_id: r.try_get(1).map_err(corrupt)?,
                    stored: Zeroizing::new(r.try_get(2).map_err(corrupt)?),
                });
            }
        }
        Ok(out)
    }

    async fn replace_private_key(&self, row: &KeyRow, value: &[u8]) -> Result<bool, StoreError> {
        let old = row.stored.as_slice();
        let owner = row.table.owner_column();
        let changed = match row.table.key_id_column() {
            None => {
                let sql =
                    format!("UPDATE {} SET private_key = $3 WHERE {owner} = $1 AND private_key = $2", row.table.name());
                self.raw_execute(&sql, &[&row.issuer, &old, &value]).await?
            }
            Some(column) => {
                let sql = format!(
                    "UPDATE {} SET private_key = $4 WHERE {owner} = $1 AND {column} = $2 AND private_key = $3",
                    row.table.name()
                );
                self.raw_execute(&sql, &[&row.issuer, &row.key_id, &old, &value]).await?
            }
        };
        Ok(changed == 1)
    }
}

fn corrupt(e: tokio_postgres::Error) -> StoreError {
    StoreError::corrupt("a stored private key row").because(e)
}

impl PostgresStore {
    /// Seals the SCEP RA keys this store keeps with `keys` from now on (run
    /// [`super::sweep`] first, so the stored ones are sealed too).
    pub fn seal_scep_ra_keys_with(&self, keys: std::sync::Arc<super::KeyEncryptionKeys>) {
        let _ = self.key_encryption.set(keys);
    }
}
