//! The EST failed-authentication counters ([`AuthFailureStore`]) on PostgreSQL: one
//! upsert per failure, so replicas count the same attempts together.

use std::time::SystemTime;

use async_trait::async_trait;
use pkiplane_core::inventory::StoreError;
use pkiplane_core::inventory::unix_seconds::from_secs;
use pkiplane_est::state::{AuthFailureStore, FailureCount};

use super::PostgresStore;
use super::error::{col, pg_err};
use crate::est::STALE_AFTER_SECONDS;
use crate::rows::secs;

fn count(r: &tokio_postgres::Row) -> Result<FailureCount, StoreError> {
    let failures: i64 = col(r, 0, "failures")?;
    let last: i64 = col(r, 1, "last_failure")?;
    Ok(FailureCount { failures: u32::try_from(failures).unwrap_or(u32::MAX), last_failure: from_secs(last) })
}

#[async_trait]
impl AuthFailureStore for PostgresStore {
    async fn get(&self, key: &str) -> Result<Option<FailureCount>, StoreError> {
        let row = self
            .client()
            .await?
            .query_opt("SELECT failures, last_failure FROM est_auth_failures WHERE key = $1", &[&key])
            .await
            .map_err(pg_err("reading an EST failure count"))?;
        row.as_ref().map(count).transpose()
    }

    async fn record_failure(&self, key: &str, now: SystemTime, forget_after: u64) -> Result<FailureCount, StoreError> {
        let now = secs(now);
        let forget = i64::try_from(forget_after).unwrap_or(i64::MAX);
        let client = self.client().await?;
        client
            .execute(
                "DELETE FROM est_auth_failures WHERE last_failure < $1",
                &[&now.saturating_sub(STALE_AFTER_SECONDS)],
            )
            .await
            .map_err(pg_err("forgetting old EST failure counts"))?;
        let row = client
            .query_one(
                "INSERT INTO est_auth_failures (key, failures, last_failure) VALUES ($1, 1, $2) \
                 ON CONFLICT (key) DO UPDATE SET failures = CASE \
                 WHEN $2 - est_auth_failures.last_failure > $3 THEN 1 ELSE est_auth_failures.failures + 1 END, \
                 last_failure = $2 RETURNING failures, last_failure",
                &[&key, &now, &forget],
            )
            .await
            .map_err(pg_err("counting an EST authentication failure"))?;
        count(&row)
    }

    async fn clear(&self, key: &str) -> Result<(), StoreError> {
        self.execute("clearing an EST failure count", "DELETE FROM est_auth_failures WHERE key = $1", &[&key]).await?;
        Ok(())
    }
}
