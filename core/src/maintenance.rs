//! Periodic upkeep of a running enrollment endpoint (purging expired protocol state,
//! revoking unconfirmed certificates, renewing the endpoint's own credentials). Each
//! protocol says what one round does and how often; the server runs one loop per
//! endpoint and stops it on shutdown.

use std::time::Duration;

use async_trait::async_trait;

#[async_trait]
pub trait Maintenance: Send + Sync {
    /// The time between two rounds.
    fn every(&self) -> Duration;
    /// One round. Rounds are idempotent: several replicas may run them at once.
    async fn maintain(&self);
}
