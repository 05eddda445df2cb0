//! Conditions and status writes: server-side apply on `/status`, only when the computed
//! status differs from the current one.

use std::fmt::Debug;
use std::time::SystemTime;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use pkiplane_api::v1alpha1::{API_VERSION, CONDITION_READY, set_condition};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// The field manager of every write the operator makes.
pub const FIELD_MANAGER: &str = "pkiplane-operator";

/// An RFC 3339 time as the CA service reports it; `None` when absent or unreadable.
pub fn parse_time(s: Option<&str>) -> Option<SystemTime> {
    s?.parse::<Timestamp>().ok().map(SystemTime::from)
}

/// A Kubernetes timestamp from a system time (clamped to the representable range).
pub fn time(t: SystemTime) -> Time {
    Time(Timestamp::try_from(t).unwrap_or(Timestamp::UNIX_EPOCH))
}

/// `Ready` with `status`, `reason`, `message`, for `generation`.
pub fn ready_condition(
    ready: bool,
    reason: &str,
    message: impl Into<String>,
    generation: Option<i64>,
    now: SystemTime,
) -> Condition {
    Condition {
        type_: CONDITION_READY.into(),
        status: if ready { "True" } else { "False" }.into(),
        reason: reason.into(),
        message: message.into(),
        last_transition_time: time(now),
        observed_generation: generation,
    }
}

/// The current conditions with `new` set (keeping lastTransitionTime when the status did
/// not change).
pub fn with_condition(current: &[Condition], new: Condition) -> Vec<Condition> {
    let mut out = current.to_vec();
    set_condition(&mut out, new);
    out
}

/// What a status write decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusWrite {
    Unchanged,
    Written,
}

/// True when `desired` differs from `current` and so must be written.
pub fn status_changed<S: PartialEq>(current: Option<&S>, desired: &S) -> bool {
    current != Some(desired)
}

/// Writes `desired` to the object's `/status` with server-side apply, unless it equals
/// `current`.
pub async fn apply_status<K, S>(api: &Api<K>, object: &K, current: Option<&S>, desired: &S) -> Result<StatusWrite>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
    S: Serialize + PartialEq,
{
    if !status_changed(current, desired) {
        return Ok(StatusWrite::Unchanged);
    }
    let patch = serde_json::json!({
        "apiVersion": API_VERSION,
        "kind": K::kind(&()),
        "status": desired,
    });
    api.patch_status(&object.name_any(), &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&patch))
        .await
        .map_err(Error::Kube)?;
    Ok(StatusWrite::Written)
}

/// Counts from the CA service's summary are unsigned; status fields are int64.
pub fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn unchanged_status_is_not_written() {
        let a = vec![1, 2];
        assert!(!status_changed(Some(&a), &vec![1, 2]));
        assert!(status_changed(Some(&a), &vec![1, 3]));
        assert!(status_changed(None, &a));
    }

    #[test]
    fn condition_keeps_transition_time_when_status_is_the_same() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let first = with_condition(&[], ready_condition(true, "Issued", "ok", Some(1), t0));
        let second =
            with_condition(&first, ready_condition(true, "Issued", "ok", Some(1), t0 + Duration::from_secs(60)));
        assert_eq!(first, second, "recomputing an unchanged Ready condition must not change status");
        let third =
            with_condition(&second, ready_condition(false, "WaitingForCA", "x", Some(1), t0 + Duration::from_secs(60)));
        assert_ne!(third[0].last_transition_time, first[0].last_transition_time);
    }
}
