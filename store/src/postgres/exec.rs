//! One statement on a pooled connection: the shape of most of the PostgreSQL store's
//! writes.

use pkiplane_core::inventory::StoreError;
use tokio_postgres::types::ToSql;

use super::PostgresStore;
use super::error::pg_err;

impl PostgresStore {
    /// Runs one statement on a pooled connection and returns how many rows it changed;
    /// `context` names it in errors.
    pub(crate) async fn execute(
        &self,
        context: &str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        self.client().await?.execute(sql, params).await.map_err(pg_err(context))
    }
}
