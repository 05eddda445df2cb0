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

    /// Runs `work` in a transaction committed without waiting for the WAL flush. Only
    /// for records a later synced commit covers before anything depends on their
    /// surviving a crash (the caller says why): that commit's flush reaches every earlier
    /// commit record in the WAL, whichever connection wrote it. What `work` wrote is
    /// visible to every session as soon as this returns.
    pub(crate) async fn unsynced<T>(
        &self,
        context: &str,
        work: impl AsyncFnOnce(&deadpool_postgres::Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err(context))?;
        tx.batch_execute("SET LOCAL synchronous_commit = off").await.map_err(pg_err(context))?;
        let out = work(&tx).await?;
        tx.commit().await.map_err(pg_err(context))?;
        Ok(out)
    }

    /// One statement through [`Self::unsynced`], returning its rows.
    pub(crate) async fn query_unsynced(
        &self,
        context: &str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, StoreError> {
        self.unsynced(context, async |tx| tx.query(sql, params).await.map_err(pg_err(context))).await
    }
}
