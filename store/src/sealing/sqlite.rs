//! [`SealableRows`] on SQLite.

use async_trait::async_trait;
use pkiplane_core::inventory::StoreError;
use rusqlite::params;
use zeroize::Zeroizing;

use super::{KeyRow, KeyTable, SealableRows};
use crate::SqliteStore;
use crate::error::sql_err;

#[async_trait]
impl SealableRows for SqliteStore {
    async fn private_key_rows(&self) -> Result<Vec<KeyRow>, StoreError> {
        self.read(|conn| {
            let mut out = Vec::new();
            for table in KeyTable::ALL {
                let id = table.key_id_column().unwrap_or("NULL");
                let sql = format!("SELECT issuer, {id}, private_key FROM {}", table.name());
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
            let changed = match table.key_id_column() {
                None => conn.execute(
                    &format!("UPDATE {} SET private_key = ?3 WHERE issuer = ?1 AND private_key = ?2", table.name()),
                    params![issuer, old, new],
                ),
                Some(column) => conn.execute(
                    &format!(
                        "UPDATE {} SET private_key = ?4 WHERE issuer = ?1 AND {column} = ?2 AND private_key = ?3",
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
