//! Interrupted issuances (`--abandon-pending-after`): a replica killed between recording
//! a certificate as pending and marking it issued leaves the pending record behind. Every
//! replica marks pending records older than the limit abandoned, at start-up and then
//! periodically (a replica that died may never come back to clean up after itself); the
//! inventory then refuses to mark an abandoned record issued, so no certificate signed
//! after that leaves the CA unrecorded.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use pkiplane_core::clock::SharedClock;
use pkiplane_core::inventory::{Inventory, StoreError};

/// Marks the pending records created before `now - after` abandoned; how many.
pub(super) async fn sweep(inventory: &dyn Inventory, now: SystemTime, after: Duration) -> Result<u64, StoreError> {
    inventory.recover_pending(now.checked_sub(after).unwrap_or(SystemTime::UNIX_EPOCH)).await
}

/// How often the sweep runs for a limit of `after`.
pub(super) fn period(after: Duration) -> Duration {
    (after / 2).max(Duration::from_secs(1))
}

/// Sweeps every `period`, reading the time from `clock`.
pub(super) fn spawn_periodic(inventory: Arc<dyn Inventory>, clock: SharedClock, after: Duration, period: Duration) {
    tokio::spawn(async move {
        let mut timer = tokio::time::interval(period);
        loop {
            timer.tick().await;
            match sweep(inventory.as_ref(), clock.now(), after).await {
                Ok(0) => {}
                Ok(n) => tracing::warn!(count = n, "interrupted issuances (a replica died) were marked abandoned"),
                Err(e) => tracing::warn!(error = %e, "could not check for interrupted issuances"),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use pkiplane_core::clock::{Clock, ManualClock};
    use pkiplane_core::inventory::{CertStatus, CertificateRecord, StoreError};
    use pkiplane_core::model::{ObjectRef, Protocol};
    use pkiplane_store::PostgresStore;
    use pkiplane_store::testing::shared_schema_url;

    use super::*;

    const AFTER: Duration = Duration::from_secs(120);

    fn issuer() -> ObjectRef {
        ObjectRef::new("pki", "root")
    }

    fn pending(serial: &str, at: SystemTime) -> CertificateRecord {
        CertificateRecord {
            serial: serial.to_owned(),
            issuer: issuer(),
            profile: ObjectRef::new("pki", "devices"),
            protocol: Protocol::Est,
            endpoint: None,
            requester: "device-1".to_owned(),
            subject: "CN=device-1".to_owned(),
            sans: Vec::new(),
            key_algorithm: "ECDSA P-256".to_owned(),
            not_before: at,
            not_after: at + Duration::from_secs(86_400),
            status: CertStatus::Pending,
            revocation: None,
            der: None,
            renewed_from: None,
            created_at: at,
            exchange: None,
        }
    }

    /// Two replicas on one PostgreSQL: the first records an issuance and dies before
    /// signing; the second's sweep abandons it once it is older than the limit (not
    /// before), and the first replica's late completion is refused.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stale_pending_records_are_abandoned_after_the_limit_and_stay_unissued() {
        let url = shared_schema_url().await;
        let dead = PostgresStore::connect(&url).await.unwrap();
        let survivor: Arc<dyn Inventory> = Arc::new(PostgresStore::connect(&url).await.unwrap());
        // A fixed instant: only differences matter, whatever day the test runs.
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_900_000_000);
        let clock = ManualClock::new(t0);
        dead.insert_pending(&pending("0a01", t0)).await.unwrap();

        clock.advance(AFTER - Duration::from_secs(1));
        assert_eq!(sweep(survivor.as_ref(), clock.now(), AFTER).await.unwrap(), 0, "not stale yet");
        survivor.insert_pending(&pending("0a02", clock.now())).await.unwrap();
        clock.advance(Duration::from_secs(2));
        // The periodic sweep (every 20 ms here; every AFTER/2 in the CA) finds it.
        spawn_periodic(survivor.clone(), clock.shared(), AFTER, Duration::from_millis(20));
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while survivor.get(&issuer(), "0a01").await.unwrap().unwrap().status != CertStatus::Abandoned {
            assert!(std::time::Instant::now() < deadline, "the periodic sweep never abandoned the stale record");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The younger in-flight issuance is left alone and can complete.
        assert_eq!(survivor.get(&issuer(), "0a02").await.unwrap().unwrap().status, CertStatus::Pending);
        survivor.mark_issued(&issuer(), "0a02", b"der").await.unwrap();
        // The dead replica's signer, if it comes back, cannot record its certificate.
        let err = dead.mark_issued(&issuer(), "0a01", b"der").await.unwrap_err();
        assert!(matches!(err, StoreError::WrongState { status: CertStatus::Abandoned, .. }), "{err:?}");
        assert_eq!(period(AFTER), Duration::from_secs(60));
    }
}
