//! Leader election on a coordination.k8s.io/v1 Lease: 15 s lease, renewed every 5 s.
//! Controllers run only while this replica leads; a second replica waits.

use std::time::{Duration, SystemTime};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, ObjectMeta, PostParams};
use tokio::sync::watch;

use crate::error::{Error, Result};

pub const LEASE_NAME: &str = "pkiplane-operator";
pub const LEASE_DURATION: Duration = Duration::from_secs(15);
pub const RENEW_INTERVAL: Duration = Duration::from_secs(5);

/// What to do with the Lease as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseDecision {
    /// No Lease object: create it holding it.
    Create,
    /// Free or expired (or released): take it over.
    Acquire,
    /// Ours: renew it.
    Renew,
    /// Someone else holds a live lease.
    Standby { holder: String },
}

fn to_system_time(t: &MicroTime) -> SystemTime {
    SystemTime::from(t.0)
}

fn micro_time(t: SystemTime) -> MicroTime {
    MicroTime(Timestamp::try_from(t).unwrap_or(Timestamp::UNIX_EPOCH))
}

/// Decides from the Lease, this replica's identity and the clock.
pub fn decide(lease: Option<&Lease>, identity: &str, now: SystemTime) -> LeaseDecision {
    let Some(lease) = lease else { return LeaseDecision::Create };
    let spec = lease.spec.clone().unwrap_or_default();
    let holder = spec.holder_identity.unwrap_or_default();
    if holder.is_empty() {
        return LeaseDecision::Acquire;
    }
    if holder == identity {
        return LeaseDecision::Renew;
    }
    let duration = Duration::from_secs(spec.lease_duration_seconds.unwrap_or(15).max(1) as u64);
    let renewed = spec.renew_time.as_ref().or(spec.acquire_time.as_ref()).map(to_system_time);
    match renewed {
        Some(t) if t + duration > now => LeaseDecision::Standby { holder },
        _ => LeaseDecision::Acquire,
    }
}

/// The Lease spec this replica writes when it takes or renews the lease.
pub fn held_spec(previous: Option<&LeaseSpec>, identity: &str, now: SystemTime) -> LeaseSpec {
    let previous = previous.cloned().unwrap_or_default();
    let ours = previous.holder_identity.as_deref() == Some(identity);
    LeaseSpec {
        holder_identity: Some(identity.to_string()),
        lease_duration_seconds: Some(LEASE_DURATION.as_secs() as i32),
        acquire_time: if ours { previous.acquire_time } else { Some(micro_time(now)) },
        renew_time: Some(micro_time(now)),
        lease_transitions: Some(previous.lease_transitions.unwrap_or(0) + i32::from(!ours)),
        ..Default::default()
    }
}

/// Runs the election until shutdown. `leading` goes true when the lease is won; a
/// failure to renew in time ends with [`Error::LeadershipLost`] (the process then exits
/// and restarts clean).
pub struct LeaderElector {
    api: Api<Lease>,
    identity: String,
}

impl LeaderElector {
    pub fn new(client: Client, namespace: &str, identity: String) -> Self {
        Self { api: Api::namespaced(client, namespace), identity }
    }

    /// One round: read, decide, write. Returns whether this replica now leads.
    pub async fn try_acquire_or_renew(&self) -> Result<bool> {
        let now = SystemTime::now();
        let lease = self.api.get_opt(LEASE_NAME).await?;
        match decide(lease.as_ref(), &self.identity, now) {
            LeaseDecision::Standby { .. } => Ok(false),
            LeaseDecision::Create => {
                let lease = Lease {
                    metadata: ObjectMeta { name: Some(LEASE_NAME.into()), ..Default::default() },
                    spec: Some(held_spec(None, &self.identity, now)),
                };
                match self.api.create(&PostParams::default(), &lease).await {
                    Ok(_) => Ok(true),
                    Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
                    Err(e) => Err(e.into()),
                }
            }
            LeaseDecision::Acquire | LeaseDecision::Renew => {
                let mut lease = lease.ok_or(Error::MissingField("lease"))?;
                lease.spec = Some(held_spec(lease.spec.as_ref(), &self.identity, now));
                // replace carries resourceVersion: a concurrent writer makes this fail.
                match self.api.replace(LEASE_NAME, &PostParams::default(), &lease).await {
                    Ok(_) => Ok(true),
                    Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
                    Err(e) => Err(e.into()),
                }
            }
        }
    }

    /// Campaigns until elected, then renews every [`RENEW_INTERVAL`]; `leading` follows.
    pub async fn run(&self, leading: watch::Sender<bool>) -> Result<()> {
        let mut last_renewal: Option<tokio::time::Instant> = None;
        loop {
            match self.try_acquire_or_renew().await {
                Ok(true) => {
                    if last_renewal.is_none() {
                        tracing::info!(identity = %self.identity, "acquired the leader lease");
                    }
                    last_renewal = Some(tokio::time::Instant::now());
                    leading.send_replace(true);
                }
                Ok(false) if last_renewal.is_some() => return Err(Error::LeadershipLost),
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "leader election round failed"),
            }
            if let Some(t) = last_renewal
                && t.elapsed() >= LEASE_DURATION - RENEW_INTERVAL
            {
                return Err(Error::LeadershipLost);
            }
            tokio::time::sleep(RENEW_INTERVAL).await;
        }
    }

    /// Gives the lease up (on graceful shutdown) so a standby takes over at once.
    pub async fn release(&self) {
        let Ok(Some(mut lease)) = self.api.get_opt(LEASE_NAME).await else { return };
        let Some(spec) = lease.spec.as_mut() else { return };
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return;
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        match self.api.replace(LEASE_NAME, &PostParams::default(), &lease).await {
            Ok(_) => tracing::info!("released the leader lease"),
            Err(e) => tracing::warn!(error = %e, "releasing the leader lease failed"),
        }
    }
}

/// The pod name (env `POD_NAME`) or hostname, + pid.
pub fn default_identity() -> String {
    let host = std::env::var("POD_NAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()))
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok().map(|h| h.trim().to_string()))
        .unwrap_or_else(|| "pkiplane-operator".into());
    format!("{host}-{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(holder: Option<&str>, renewed: SystemTime) -> Lease {
        Lease {
            metadata: ObjectMeta { name: Some(LEASE_NAME.into()), ..Default::default() },
            spec: Some(LeaseSpec {
                holder_identity: holder.map(Into::into),
                lease_duration_seconds: Some(15),
                renew_time: Some(micro_time(renewed)),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn lease_decisions_follow_holder_and_clock() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        assert_eq!(decide(None, "a", t0), LeaseDecision::Create);
        let held_by_b = lease(Some("b"), t0);
        assert_eq!(
            decide(Some(&held_by_b), "a", t0 + Duration::from_secs(10)),
            LeaseDecision::Standby { holder: "b".into() }
        );
        assert_eq!(
            decide(Some(&held_by_b), "a", t0 + Duration::from_secs(16)),
            LeaseDecision::Acquire,
            "expired lease is taken over"
        );
        assert_eq!(decide(Some(&held_by_b), "b", t0 + Duration::from_secs(1)), LeaseDecision::Renew);
        assert_eq!(decide(Some(&lease(None, t0)), "a", t0), LeaseDecision::Acquire, "released lease is free");
    }

    #[test]
    fn takeover_counts_a_transition_and_renewal_does_not() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let taken = held_spec(lease(Some("b"), t0).spec.as_ref(), "a", t0);
        assert_eq!(taken.lease_transitions, Some(1));
        assert_eq!(taken.holder_identity.as_deref(), Some("a"));
        let renewed = held_spec(Some(&taken), "a", t0 + Duration::from_secs(5));
        assert_eq!(renewed.lease_transitions, Some(1));
        assert_eq!(renewed.acquire_time, taken.acquire_time);
    }
}
