//! EST (RFC 7030) protocol state. EST is stateless per request except for one thing:
//! counting failed HTTP Basic authentication attempts, so that guessing passwords is
//! rate limited per username and per client address with exponential backoff.
//!
//! The counters live behind [`AuthFailureStore`] so replicas of one endpoint can share
//! them; [`memory::MemoryAuthFailures`] keeps them in process (what `pkiplane serve`
//! uses, and what a single replica needs). Keys are opaque strings chosen by the
//! protocol crate (e.g. `user:<endpoint>:<name>`, `ip:<endpoint>:<addr>`); the store
//! never sees passwords.

use std::time::SystemTime;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use pkiplane_core::inventory::StoreError;
use pkiplane_core::inventory::unix_seconds;

pub mod memory;

/// Consecutive failed attempts for one key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureCount {
    /// Failures since the last success (or since the count expired).
    pub failures: u32,
    /// When the latest failure happened.
    #[serde(with = "unix_seconds")]
    pub last_failure: SystemTime,
}

/// Shared counters of failed authentication attempts.
#[async_trait]
pub trait AuthFailureStore: Send + Sync {
    /// The current count for `key`, if any failure is recorded.
    async fn get(&self, key: &str) -> Result<Option<FailureCount>, StoreError>;
    /// Atomically adds one failure at `now` and returns the new count. A count whose
    /// last failure is older than `forget_after` seconds restarts at one.
    async fn record_failure(&self, key: &str, now: SystemTime, forget_after: u64) -> Result<FailureCount, StoreError>;
    /// Forgets the failures of `key` (after a successful authentication).
    async fn clear(&self, key: &str) -> Result<(), StoreError>;
}
