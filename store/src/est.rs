//! The EST failed-authentication counters ([`AuthFailureStore`]) on SQLite, so that the
//! password-guessing backoff holds across restarts and, on PostgreSQL (see
//! `postgres::est`), across CA replicas.

use std::time::SystemTime;

use async_trait::async_trait;
use pkiplane_core::inventory::StoreError;
use pkiplane_core::inventory::unix_seconds::from_secs;
use pkiplane_est::state::{AuthFailureStore, FailureCount};
use rusqlite::{OptionalExtension, params};

use crate::SqliteStore;
use crate::error::sql_err;
use crate::rows::secs;

/// Counters untouched for this long are deleted as new failures come in (a day: far
/// longer than any backoff the EST crate applies).
pub(crate) const STALE_AFTER_SECONDS: i64 = 86_400;

/// Schema step 10: one row per counted key (`<endpoint>|user:...`, `<endpoint>|ip:...`).
pub(crate) const V_EST_FAILURES: &str = "
CREATE TABLE est_auth_failures (
    key          TEXT    NOT NULL PRIMARY KEY,
    failures     INTEGER NOT NULL,
    last_failure INTEGER NOT NULL
);
CREATE INDEX est_auth_failures_last ON est_auth_failures (last_failure);
";

fn count(failures: i64, last: i64) -> FailureCount {
    FailureCount { failures: u32::try_from(failures).unwrap_or(u32::MAX), last_failure: from_secs(last) }
}

#[async_trait]
impl AuthFailureStore for SqliteStore {
    async fn get(&self, key: &str) -> Result<Option<FailureCount>, StoreError> {
        let key = key.to_owned();
        self.read_by_key(move |c| {
            c.prepare_cached("SELECT failures, last_failure FROM est_auth_failures WHERE key = ?1")
                .and_then(|mut s| s.query_row(params![key], |r| Ok(count(r.get(0)?, r.get(1)?))).optional())
                .map_err(sql_err("reading an EST failure count"))
        })
        .await
    }

    async fn record_failure(&self, key: &str, now: SystemTime, forget_after: u64) -> Result<FailureCount, StoreError> {
        let key = key.to_owned();
        let forget = i64::try_from(forget_after).unwrap_or(i64::MAX);
        self.write(move |c| {
            let now = secs(now);
            c.prepare_cached("DELETE FROM est_auth_failures WHERE last_failure < ?1")
                .and_then(|mut s| s.execute(params![now.saturating_sub(STALE_AFTER_SECONDS)]))
                .map_err(sql_err("forgetting old EST failure counts"))?;
            c.prepare_cached(
                "INSERT INTO est_auth_failures (key, failures, last_failure) VALUES (?1, 1, ?2) \
                 ON CONFLICT (key) DO UPDATE SET failures = CASE WHEN ?2 - last_failure > ?3 THEN 1 \
                 ELSE failures + 1 END, last_failure = ?2 RETURNING failures, last_failure",
            )
            .and_then(|mut s| s.query_row(params![key, now, forget], |r| Ok(count(r.get(0)?, r.get(1)?))))
            .map_err(sql_err("counting an EST authentication failure"))
        })
        .await
    }

    async fn clear(&self, key: &str) -> Result<(), StoreError> {
        let key = key.to_owned();
        self.write(move |c| {
            c.prepare_cached("DELETE FROM est_auth_failures WHERE key = ?1")
                .and_then(|mut s| s.execute(params![key]))
                .map_err(sql_err("clearing an EST failure count"))?;
            Ok(())
        })
        .await
    }
}
