//! Leases: named rows with a holder and an expiry, so that work which must happen once
//! across CA replicas (creating or rolling over a CA key, publishing a CRL) is done by
//! one replica at a time.
//!
//! Why a lease row and not a PostgreSQL advisory lock: a session advisory lock lives as
//! long as the connection that took it. A replica killed outright closes its socket and
//! the server releases the lock at once, but a replica whose node vanishes (power loss,
//! partition) leaves the server waiting on TCP keepalive, by default two hours on
//! Linux, and connection poolers in transaction mode do not keep sessions at all. A
//! lease expires after its TTL whatever happened to its holder, so a dead holder blocks
//! the others for one TTL at most; expiry is judged by the database's clock alone, so
//! replicas with skewed clocks agree. The holder renews while it works.

use std::time::Duration;

use pkiplane_core::inventory::StoreError;

use super::PostgresStore;
use super::error::{col, pg_err};

/// Schema step 3: the lease rows.
pub(crate) const V3_LEASES: &str = "
CREATE TABLE leases (
    name       TEXT        NOT NULL PRIMARY KEY,
    holder     TEXT        NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
";

impl PostgresStore {
    /// Takes the lease `name` for `holder` until `ttl` from now, or renews it if
    /// `holder` has it; false when another holder's lease has not expired.
    pub async fn try_lease(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, StoreError> {
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        let row = self
            .client()
            .await?
            .query_opt(
                "INSERT INTO leases (name, holder, expires_at) \
                 VALUES ($1, $2, clock_timestamp() + $3 * interval '1 millisecond') \
                 ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
                 WHERE leases.holder = excluded.holder OR leases.expires_at < clock_timestamp() \
                 RETURNING holder",
                &[&name, &holder, &(ttl_ms as f64)],
            )
            .await
            .map_err(pg_err("taking a lease"))?;
        match row {
            Some(r) => Ok(col::<String>(&r, 0, "holder")? == holder),
            None => Ok(false),
        }
    }

    /// Gives the lease up (if `holder` still has it), so others need not wait for expiry.
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        self.execute("releasing a lease", "DELETE FROM leases WHERE name = $1 AND holder = $2", &[&name, &holder])
            .await?;
        Ok(())
    }
}

#[cfg(feature = "testing")]
impl PostgresStore {
    /// Tests only: moves the expiry of lease `name` back by `by`, as if that much time had
    /// passed on the database's clock (which alone judges expiry), so a test need not wait
    /// out a TTL.
    pub async fn age_lease(&self, name: &str, by: Duration) -> Result<u64, StoreError> {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX) as f64;
        self.client()
            .await?
            .execute(
                "UPDATE leases SET expires_at = expires_at - $2 * interval '1 millisecond' WHERE name = $1",
                &[&name, &ms],
            )
            .await
            .map_err(pg_err("ageing a lease"))
    }
}
