//! The Deployment `/status` the Deployment controller would write, computed from the
//! emulated pods.

use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;

/// Pod counts of one Deployment (terminating pods excluded, as the controller does).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PodCounts {
    /// Pods of any template.
    pub total: i32,
    /// Pods of the current template.
    pub updated: i32,
    /// Ready pods of any template.
    pub ready: i32,
    /// Ready pods of the current template.
    pub updated_ready: i32,
}

/// `maxUnavailable` of a RollingUpdate strategy (default 25%, rounded down), for the
/// Available condition.
pub fn max_unavailable(deploy: &Deployment, replicas: i32) -> i32 {
    let value = deploy
        .spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.rolling_update.as_ref())
        .and_then(|r| r.max_unavailable.clone())
        .unwrap_or(IntOrString::String("25%".into()));
    match value {
        IntOrString::Int(n) => n,
        IntOrString::String(s) => {
            let percent: i32 = s.trim_end_matches('%').parse().unwrap_or(25);
            replicas * percent / 100
        }
    }
}

/// The status for `deploy` given its pods; conditions keep their transition times from
/// the current status when their status did not change.
pub fn desired(deploy: &Deployment, counts: PodCounts, now: Timestamp) -> DeploymentStatus {
    let replicas = deploy.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let available = counts.ready;
    let minimum = (replicas - max_unavailable(deploy, replicas)).max(0);
    let is_available = available >= minimum;
    let complete = counts.updated == replicas && counts.total == replicas && counts.updated_ready == replicas;
    let current = deploy.status.as_ref();
    let condition = |type_: &str, ok: bool, reason: &str, message: String| {
        let status = if ok { "True" } else { "False" }.to_string();
        let previous = current.and_then(|s| s.conditions.as_ref()).and_then(|c| c.iter().find(|c| c.type_ == type_));
        let unchanged = previous.is_some_and(|p| p.status == status);
        let same_reason = previous.is_some_and(|p| unchanged && p.reason.as_deref() == Some(reason));
        DeploymentCondition {
            type_: type_.to_string(),
            status,
            reason: Some(reason.to_string()),
            message: Some(message),
            last_transition_time: if unchanged {
                previous.and_then(|p| p.last_transition_time.clone())
            } else {
                Some(Time(now))
            },
            last_update_time: if same_reason {
                previous.and_then(|p| p.last_update_time.clone())
            } else {
                Some(Time(now))
            },
        }
    };
    let name = deploy.metadata.name.clone().unwrap_or_default();
    let available_condition = if is_available {
        condition("Available", true, "MinimumReplicasAvailable", "Deployment has minimum availability.".into())
    } else {
        condition(
            "Available",
            false,
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.".into(),
        )
    };
    let progressing = if complete {
        condition(
            "Progressing",
            true,
            "NewReplicaSetAvailable",
            format!("Deployment \"{name}\" has successfully progressed."),
        )
    } else {
        condition("Progressing", true, "ReplicaSetUpdated", format!("Deployment \"{name}\" is progressing."))
    };
    DeploymentStatus {
        observed_generation: deploy.metadata.generation,
        replicas: Some(counts.total),
        updated_replicas: Some(counts.updated),
        ready_replicas: Some(counts.ready),
        available_replicas: Some(available),
        unavailable_replicas: Some((replicas - available).max(0)),
        conditions: Some(vec![available_condition, progressing]),
        ..Default::default()
    }
}

/// Whether `new` differs from the current status in anything but timestamps.
pub fn changed(current: Option<&DeploymentStatus>, new: &DeploymentStatus) -> bool {
    let Some(current) = current else { return true };
    let strip = |s: &DeploymentStatus| {
        let mut s = s.clone();
        for c in s.conditions.iter_mut().flatten() {
            c.last_transition_time = None;
            c.last_update_time = None;
        }
        s.collision_count = None;
        s.terminating_replicas = None;
        s
    };
    strip(current) != strip(new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::DeploymentSpec;
    use kube::api::ObjectMeta;

    fn deploy(replicas: i32) -> Deployment {
        Deployment {
            metadata: ObjectMeta { name: Some("est-pkiplane".into()), generation: Some(3), ..Default::default() },
            spec: Some(DeploymentSpec { replicas: Some(replicas), ..Default::default() }),
            status: None,
        }
    }

    fn conditions(s: &DeploymentStatus) -> Vec<(String, String, String)> {
        s.conditions
            .iter()
            .flatten()
            .map(|c| (c.type_.clone(), c.status.clone(), c.reason.clone().unwrap_or_default()))
            .collect()
    }

    #[test]
    fn a_ready_rollout_is_available_and_complete() {
        let now = Timestamp::UNIX_EPOCH;
        let s = desired(&deploy(1), PodCounts { total: 1, updated: 1, ready: 1, updated_ready: 1 }, now);
        assert_eq!(s.observed_generation, Some(3));
        assert_eq!((s.replicas, s.ready_replicas, s.available_replicas), (Some(1), Some(1), Some(1)));
        assert_eq!(
            conditions(&s),
            [
                ("Available".into(), "True".into(), "MinimumReplicasAvailable".into()),
                ("Progressing".into(), "True".into(), "NewReplicaSetAvailable".into())
            ]
        );
    }

    #[test]
    fn a_starting_pod_is_unavailable_and_progressing() {
        let s =
            desired(&deploy(1), PodCounts { total: 1, updated: 1, ready: 0, updated_ready: 0 }, Timestamp::UNIX_EPOCH);
        assert_eq!(s.unavailable_replicas, Some(1));
        assert_eq!(conditions(&s)[0].1, "False");
        assert_eq!(conditions(&s)[1].2, "ReplicaSetUpdated");
    }

    #[test]
    fn only_real_changes_count() {
        let d = deploy(2);
        let counts = PodCounts { total: 2, updated: 2, ready: 2, updated_ready: 2 };
        let first = desired(&d, counts, Timestamp::UNIX_EPOCH);
        let later = desired(&d, counts, Timestamp::from_second(100).unwrap());
        assert!(!changed(Some(&first), &later));
        assert!(changed(None, &later));
        let fewer = desired(&d, PodCounts { ready: 1, updated_ready: 1, ..counts }, Timestamp::UNIX_EPOCH);
        assert!(changed(Some(&first), &fewer));
    }

    #[test]
    fn max_unavailable_defaults_to_a_quarter_rounded_down() {
        assert_eq!(max_unavailable(&deploy(1), 1), 0);
        assert_eq!(max_unavailable(&deploy(8), 8), 2);
    }
}
