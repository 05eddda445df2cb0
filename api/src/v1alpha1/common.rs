//! Types shared by the three kinds: references, protocol names, status conditions and
//! inventory counts.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Pattern of the human durations pkiplane reads: whole numbers with units y (365 days),
/// w, d, h, m, s, e.g. `47d`, `1y`, `1h30m`.
pub const DURATION_PATTERN: &str = "^([0-9]+[ywdhms])+$";

/// A Secret in the same namespace as the referring object.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretRef {
    /// Name of the Secret, in the same namespace as this object.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// An Issuer in the same namespace as the referring object.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IssuerRef {
    /// Name of the Issuer (pkiplane.dev), in the same namespace as this object.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// Where trusted CA certificates come from: exactly one of `secretRef` or `issuerRef`.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "has(self.secretRef) != has(self.issuerRef)",
    "message": "set exactly one of secretRef or issuerRef"
}]))]
pub struct TrustAnchors {
    /// A Secret holding the trusted CA certificates as PEM under the key `ca.crt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretRef>,
    /// An Issuer whose CA certificate (and chain up to its root) is trusted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_ref: Option<IssuerRef>,
}

/// The enrollment protocol an EnrollmentEndpoint speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
pub enum EndpointProtocol {
    #[serde(rename = "ACME")]
    Acme,
    #[serde(rename = "EST")]
    Est,
    #[serde(rename = "SCEP")]
    Scep,
    #[serde(rename = "CMP")]
    Cmp,
}

impl EndpointProtocol {
    pub fn core(self) -> pkiplane_core::Protocol {
        match self {
            EndpointProtocol::Acme => pkiplane_core::Protocol::Acme,
            EndpointProtocol::Est => pkiplane_core::Protocol::Est,
            EndpointProtocol::Scep => pkiplane_core::Protocol::Scep,
            EndpointProtocol::Cmp => pkiplane_core::Protocol::Cmp,
        }
    }
}

/// A protocol (or pkiplane's own tooling) a profile may be requested through (the core
/// type, with its JSON Schema).
pub use pkiplane_core::Protocol as RequesterProtocol;

/// Certificate counts from the inventory.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InventoryCounts {
    /// Certificates issued, ever.
    #[serde(default)]
    pub issued: i64,
    /// Certificates currently valid: issued, not expired and not revoked.
    #[serde(default)]
    pub active: i64,
    /// Active certificates inside their renewal window.
    #[serde(default)]
    pub expiring_soon: i64,
    /// Certificates revoked, ever.
    #[serde(default)]
    pub revoked: i64,
    /// Requests the policy denied.
    #[serde(default)]
    pub denied: i64,
}

/// The condition type every pkiplane object reports.
pub const CONDITION_READY: &str = "Ready";

/// The condition with type `type_`, if present.
pub fn find_condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Whether the Ready condition is present and True.
pub fn is_ready(conditions: &[Condition]) -> bool {
    find_condition(conditions, CONDITION_READY).is_some_and(|c| c.status == "True")
}

/// Adds or replaces the condition of the same type. The previous `lastTransitionTime` is
/// kept when the status did not change, as Kubernetes API conventions require.
pub fn set_condition(conditions: &mut Vec<Condition>, mut new: Condition) {
    match conditions.iter_mut().find(|c| c.type_ == new.type_) {
        Some(old) => {
            if old.status == new.status {
                new.last_transition_time = old.last_transition_time.clone();
            }
            *old = new;
        }
        None => conditions.push(new),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::Timestamp;

    fn cond(status: &str, at: i64) -> Condition {
        Condition {
            type_: CONDITION_READY.into(),
            status: status.into(),
            reason: "Test".into(),
            message: String::new(),
            last_transition_time: Time(Timestamp::from_second(at).unwrap()),
            observed_generation: Some(1),
        }
    }

    #[test]
    fn transition_time_moves_only_on_status_change() {
        let mut conds = vec![cond("True", 100)];
        set_condition(&mut conds, cond("True", 200));
        assert_eq!(conds[0].last_transition_time.0.as_second(), 100);
        set_condition(&mut conds, cond("False", 300));
        assert_eq!(conds[0].last_transition_time.0.as_second(), 300);
        assert!(!is_ready(&conds));
        assert_eq!(conds.len(), 1);
    }
}
