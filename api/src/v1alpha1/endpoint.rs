//! `EnrollmentEndpoint`: a protocol server exposing profiles.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{EndpointProtocol, IssuerRef, SecretRef};
use super::endpoint_protocols::{AcmeSettings, CmpSettings, EstSettings, ScepSettings};

/// The desired state of an EnrollmentEndpoint: the protocol, the profiles it exposes, how
/// requesters authenticate, and how it is deployed.
// Each printcolumn repeats `type_ = ...`, which clippy mistakes for duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "pkiplane.dev",
    version = "v1alpha1",
    kind = "EnrollmentEndpoint",
    namespaced,
    status = "EnrollmentEndpointStatus",
    derive = "PartialEq",
    shortname = "ee",
    shortname = "enroll",
    category = "pkiplane",
    doc = "An enrollment server speaking ACME, EST, SCEP or CMP. It authenticates requesters and hands their requests to the CA service, which applies the exposed CertificateProfile's policy; the endpoint itself never holds CA keys.",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status",
        description = "Whether the endpoint is serving"
    ),
    printcolumn(name = "Protocol", type_ = "string", json_path = ".spec.protocol"),
    printcolumn(name = "URL", type_ = "string", json_path = ".status.urls[0]"),
    printcolumn(name = "Replicas", type_ = "integer", json_path = ".status.readyReplicas"),
    printcolumn(name = "Issued", type_ = "integer", json_path = ".status.issued"),
    printcolumn(name = "Denied", type_ = "integer", json_path = ".status.denied", priority = 1),
    printcolumn(name = "Profiles", type_ = "string", json_path = ".spec.profiles[*].name", priority = 1),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "self.profiles.all(p, self.profiles.exists_one(q, (has(q.label) ? q.label : q.name) == (has(p.label) ? p.label : p.name)))",
        "message": "profile labels must be unique (a profile without label is exposed under its name)",
        "fieldPath": ".profiles"
    },
    {
        "rule": "self.profiles.filter(p, has(p.default) && p.default).size() <= 1",
        "message": "at most one profile can be the default",
        "fieldPath": ".profiles"
    },
    {"rule": "!has(self.acme) || self.protocol == 'ACME'", "message": "acme settings need protocol ACME", "fieldPath": ".acme"},
    {"rule": "!has(self.est) || self.protocol == 'EST'", "message": "est settings need protocol EST", "fieldPath": ".est"},
    {"rule": "!has(self.scep) || self.protocol == 'SCEP'", "message": "scep settings need protocol SCEP", "fieldPath": ".scep"},
    {"rule": "!has(self.cmp) || self.protocol == 'CMP'", "message": "cmp settings need protocol CMP", "fieldPath": ".cmp"}
]))]
pub struct EnrollmentEndpointSpec {
    /// The enrollment protocol: ACME (RFC 8555), EST (RFC 7030), SCEP (RFC 8894) or CMP
    /// (RFC 9810 over HTTP). Fixed for the endpoint's lifetime in practice: changing it
    /// changes every URL.
    pub protocol: EndpointProtocol,

    /// The CertificateProfiles this endpoint exposes, each under a label: the ACME
    /// profile name, the EST label (/.well-known/est/<label>/...), the CMP path segment
    /// (/.well-known/cmp/p/<label>). Labels are unique; at most one profile is the
    /// default, used when a request names none (with a single profile, that profile).
    #[schemars(length(min = 1, max = 64))]
    pub profiles: Vec<ProfileBinding>,

    /// Number of endpoint pods. Endpoints keep no state of their own, so any number
    /// works. Default 1.
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 0, max = 1000))]
    pub replicas: i32,

    /// Where the server listens. `pkiplane serve` (standalone, no Kubernetes) binds
    /// address and port. In a cluster the pods listen on every address, on port
    /// listen.port when set, else 8443 with tls and 8080 without; clients reach them
    /// through the Service (`service`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<Listen>,

    /// The Kubernetes Service in front of the endpoint pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceSettings>,

    /// The base URL clients reach this endpoint at, scheme, host and optional port, no
    /// path: e.g. "https://acme.example.com" behind a load balancer, Ingress or proxy.
    /// Every URL the endpoint hands out (the ACME directory and its order, authorization
    /// and certificate URLs; the URLs in status.urls) starts with it. Default: in a
    /// cluster, the Service: https (with tls) or http, the first tls.dnsNames entry or
    /// else <name>-pkiplane.<namespace>.svc, and service.port unless it is 443 (https)
    /// or 80 (http); `pkiplane serve`: the address and port it listens on.
    #[serde(default, rename = "externalURL", skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 8, max = 2048), pattern(EXTERNAL_URL_PATTERN))]
    pub external_url: Option<String>,

    /// CPU and memory of each endpoint pod's container. Default: requests cpu 50m and
    /// memory 64Mi, limit memory 256Mi; when set, it replaces these defaults entirely.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<EndpointResources>,

    /// The TLS server certificate. ACME and EST clients require HTTPS; SCEP and CMP
    /// messages are signed and work over plain HTTP. Absent: plain HTTP (use it for
    /// ACME and EST only behind a TLS-terminating proxy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSettings>,

    /// ACME settings (protocol ACME only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acme: Option<AcmeSettings>,

    /// EST settings (protocol EST only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub est: Option<EstSettings>,

    /// SCEP settings (protocol SCEP only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scep: Option<ScepSettings>,

    /// CMP settings (protocol CMP only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmp: Option<CmpSettings>,
}

/// `spec.externalURL`: http or https, a host (name, IPv4 or bracketed IPv6) and an
/// optional port; no path, query or fragment.
pub const EXTERNAL_URL_PATTERN: &str =
    r"^https?://([A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?/?$";

fn default_replicas() -> i32 {
    1
}

/// One exposed profile.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProfileBinding {
    /// Name of the CertificateProfile, in the same namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Name the profile is exposed under: letters, digits, ".", "_" and "-", starting and
    /// ending with a letter or digit. Default: the profile's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63), pattern("^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$"))]
    pub label: Option<String>,
    /// Use this profile when a request names none. Default false.
    #[serde(default)]
    pub default: bool,
}

impl ProfileBinding {
    /// The name this profile is exposed under.
    pub fn label(&self) -> &str {
        self.label.as_deref().unwrap_or(&self.name)
    }
}

impl EnrollmentEndpointSpec {
    /// The profile used when a request names none: the one marked default, or the only
    /// one.
    pub fn default_profile(&self) -> Option<&ProfileBinding> {
        pkiplane_core::settings::default_of(&self.profiles, |p| p.default)
    }
}

fn default_listen_address() -> String {
    "0.0.0.0".into()
}

/// A listening socket for standalone mode.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Listen {
    /// IP address to bind, e.g. "127.0.0.1" or "::". Default 0.0.0.0 (every IPv4
    /// interface).
    #[serde(default = "default_listen_address")]
    #[schemars(length(min = 1, max = 64))]
    pub address: String,
    /// TCP port. 0 or absent: a free port is picked at startup and reported in the
    /// ready file and the log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 65535))]
    pub port: Option<i32>,
}

impl Default for Listen {
    fn default() -> Self {
        Self { address: default_listen_address(), port: None }
    }
}

/// Kubernetes Service types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub enum ServiceType {
    #[default]
    ClusterIP,
    NodePort,
    LoadBalancer,
}

/// The Service in front of the endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceSettings {
    /// Service type: ClusterIP, NodePort or LoadBalancer. Default ClusterIP.
    #[serde(default, rename = "type")]
    pub type_: ServiceType,
    /// Service port, the port clients connect to (the pods' port is the target). Default
    /// 443 with tls, 80 without.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<i32>,
}

/// Pattern of a Kubernetes resource quantity, e.g. "500m", "1", "64Mi", "1.5Gi".
pub const QUANTITY_PATTERN: &str = r"^([0-9]+(\.[0-9]*)?|\.[0-9]+)([KMGTPE]i|[mkMGTPE]|[eE][0-9]+)?$";

/// Requests and limits of the endpoint container.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointResources {
    /// What the scheduler reserves for the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<ComputeResources>,
    /// The most the container may use (memory above the limit ends the container).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<ComputeResources>,
}

/// CPU and memory as Kubernetes quantities, written as strings.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ComputeResources {
    /// CPU, e.g. "50m" (a twentieth of a core) or "1".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 32), pattern(QUANTITY_PATTERN))]
    pub cpu: Option<String>,
    /// Memory, e.g. "64Mi" or "1Gi".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 32), pattern(QUANTITY_PATTERN))]
    pub memory: Option<String>,
}

/// Where the TLS server certificate comes from: a Secret (secretRef), or an Issuer that
/// pkiplane asks for a certificate and renews it (issuerRef with dnsNames/ipAddresses).
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "has(self.secretRef) != has(self.issuerRef)", "message": "set exactly one of secretRef or issuerRef"},
    {
        "rule": "has(self.issuerRef) || !(has(self.dnsNames) || has(self.ipAddresses))",
        "message": "dnsNames and ipAddresses apply only with issuerRef"
    },
    {
        "rule": "!has(self.issuerRef) || has(self.dnsNames) || has(self.ipAddresses)",
        "message": "a certificate from issuerRef needs dnsNames or ipAddresses"
    }
]))]
pub struct TlsSettings {
    /// A Secret of type kubernetes.io/tls (keys tls.crt with the chain, tls.key) in the
    /// same namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretRef>,
    /// An Issuer (same namespace) that signs the server certificate directly, without a
    /// CertificateProfile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_ref: Option<IssuerRef>,
    /// DNS names of the server certificate, e.g. "est.example.com".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100), inner(length(min = 1, max = 253)))]
    pub dns_names: Vec<String>,
    /// IP addresses of the server certificate, e.g. "127.0.0.1".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100), inner(length(min = 1, max = 64)))]
    pub ip_addresses: Vec<String>,
}

/// The observed state of an EnrollmentEndpoint.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnrollmentEndpointStatus {
    /// Current service state. Ready is True when the endpoint serves all its profiles.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// The metadata.generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Where clients reach the endpoint, e.g. the ACME directory URL
    /// "https://acme.example.com/directory" or the EST base
    /// "https://est.example.com/.well-known/est".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    /// Endpoint pods ready to serve.
    #[serde(default)]
    pub ready_replicas: i32,
    /// Certificates issued through this endpoint, ever.
    #[serde(default)]
    pub issued: i64,
    /// Certificates issued through this endpoint that are neither expired nor revoked.
    #[serde(default)]
    pub active: i64,
    /// Certificates issued through this endpoint and since revoked.
    #[serde(default)]
    pub revoked: i64,
    /// Requests through this endpoint the policy denied.
    #[serde(default)]
    pub denied: i64,
    /// When a certificate was last issued through this endpoint (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_issuance_time: Option<Time>,
    /// Problems that do not stop the endpoint, e.g. an exposed profile whose requester
    /// rules exclude this endpoint's protocol.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Counts per exposed profile, from the inventory: what removing a profile from this
    /// endpoint would strand.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub profiles: Vec<EndpointProfileStatus>,
}

/// Inventory counts of one profile as exposed by an endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointProfileStatus {
    /// The name the profile is exposed under (its label).
    pub name: String,
    /// The CertificateProfile, in the endpoint's namespace.
    pub profile: String,
    /// Certificates issued through this endpoint under this profile, ever.
    #[serde(default)]
    pub issued: i64,
    /// Of those, the certificates that are neither expired nor revoked.
    #[serde(default)]
    pub active: i64,
    /// Of those, the certificates since revoked.
    #[serde(default)]
    pub revoked: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantity_pattern() {
        let re = regex_lite::Regex::new(QUANTITY_PATTERN).unwrap();
        for ok in ["50m", "1", "0.5", ".5", "64Mi", "1.5Gi", "2G", "1e3"] {
            assert!(re.is_match(ok), "{ok}");
        }
        for bad in ["", "lots", "64MB", "-1", "1 Gi", "m"] {
            assert!(!re.is_match(bad), "{bad}");
        }
    }
}
