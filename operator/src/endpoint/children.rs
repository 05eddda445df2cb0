//! What an EnrollmentEndpoint turns into: its config Secret, Deployment and Service,
//! built as plain objects (applied by the controller with server-side apply).
//! Names and shapes follow the in-cluster contracts.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, HTTPGetAction, PodSecurityContext, PodSpec, PodTemplateSpec, Probe,
    ResourceRequirements, SeccompProfile, Secret, SecretVolumeSource, SecurityContext, Service, ServicePort,
    ServiceSpec, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;
use kube::api::ObjectMeta;
use pkiplane_api::v1alpha1::{
    ComputeResources, EndpointResources, EnrollmentEndpoint, EnrollmentEndpointSpec, ServiceType, endpoint_service_name,
};

use crate::error::{Error, Result};

pub const CONFIG_HASH_ANNOTATION: &str = "pkiplane.dev/config-hash";
pub const CONFIG_KEY: &str = "endpoint.yaml";
pub const HEALTH_PORT: i32 = 9090;
const CONFIG_DIR: &str = "/etc/pkiplane/config";
const INTERNAL_DIR: &str = "/etc/pkiplane/internal";
const CREDENTIALS_DIR: &str = "/etc/pkiplane/credentials";
/// The non-root user and group of the pkiplane image.
pub const POD_USER: i64 = 65532;

/// The names of an endpoint's children.
pub fn workload_name(endpoint: &str) -> String {
    endpoint_service_name(endpoint)
}
pub fn config_secret_name(endpoint: &str) -> String {
    format!("{endpoint}-pkiplane-config")
}
pub fn internal_secret_name(endpoint: &str) -> String {
    format!("{endpoint}-pkiplane-internal")
}
pub fn credentials_secret_name(endpoint: &str) -> String {
    format!("{endpoint}-pkiplane-credentials")
}

/// The labels of every child; the Deployment selector and Service selector use them all
/// but managed-by.
pub fn labels(endpoint: &str) -> BTreeMap<String, String> {
    let mut l = selector_labels(endpoint);
    l.insert("app.kubernetes.io/managed-by".into(), "pkiplane-operator".into());
    l
}

fn selector_labels(endpoint: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), "pkiplane".to_string()),
        ("app.kubernetes.io/component".to_string(), "endpoint".to_string()),
        ("app.kubernetes.io/instance".to_string(), endpoint.to_string()),
    ])
}

/// The container port: spec.listen.port when set, else 8443 with TLS, 8080 without
/// (high ports: the pod needs no privilege).
pub fn container_port(spec: &EnrollmentEndpointSpec) -> i32 {
    match spec.listen.as_ref().and_then(|l| l.port).filter(|p| *p > 0) {
        Some(p) => p,
        None if spec.serves_tls() => 8443,
        None => 8080,
    }
}

/// The Service port: spec.service.port when set, else 443 with TLS and 80 without (as
/// the CRD text and the webhook's defaulting say).
pub fn service_port(spec: &EnrollmentEndpointSpec) -> i32 {
    spec.service_port()
}

/// Every Secret the endpoint spec references (same namespace), sorted, no duplicates.
pub fn referenced_secrets(spec: &EnrollmentEndpointSpec) -> Vec<String> {
    let mut names = Vec::new();
    let mut add = |s: Option<&pkiplane_api::v1alpha1::SecretRef>| {
        if let Some(s) = s {
            names.push(s.name.clone());
        }
    };
    add(spec.tls.as_ref().and_then(|t| t.secret_ref.as_ref()));
    if let Some(acme) = &spec.acme {
        add(acme.external_account_binding.as_ref().and_then(|e| e.secret_ref.as_ref()));
    }
    if let Some(est) = &spec.est {
        add(est.client_certificates.as_ref().and_then(|c| c.trust_anchors.secret_ref.as_ref()));
        add(est.basic_auth.as_ref().map(|b| &b.secret_ref));
    }
    if let Some(scep) = &spec.scep {
        add(scep.static_challenge.as_ref().map(|c| &c.secret_ref));
        add(scep.dynamic_challenges.as_ref().and_then(|d| d.api_secret_ref.as_ref()));
    }
    if let Some(cmp) = &spec.cmp {
        add(cmp.shared_secrets.as_ref().map(|s| &s.secret_ref));
        add(cmp.trust_anchors.as_ref().and_then(|t| t.secret_ref.as_ref()));
    }
    names.sort();
    names.dedup();
    names
}

/// `endpoint.yaml`: the EnrollmentEndpoint (name, namespace, spec) followed by the
/// Secrets it references, as multi-document YAML that `pkiplane serve -f` also reads.
pub fn config_document(endpoint: &EnrollmentEndpoint, secrets: &[Secret]) -> Result<String> {
    let head = serde_json::json!({
        "apiVersion": pkiplane_api::v1alpha1::API_VERSION,
        "kind": "EnrollmentEndpoint",
        "metadata": { "name": endpoint.name_any(), "namespace": endpoint.namespace() },
        "spec": endpoint.spec,
    });
    let mut docs = vec![serde_yaml::to_string(&head).map_err(|e| Error::yaml("endpoint config", e))?];
    for s in secrets {
        let trimmed = Secret {
            metadata: ObjectMeta {
                name: s.metadata.name.clone(),
                namespace: s.metadata.namespace.clone(),
                ..Default::default()
            },
            type_: s.type_.clone(),
            data: Some(
                pkiplane_api::manifests::secret_entries(s).into_iter().map(|(k, v)| (k, ByteString(v))).collect(),
            ),
            ..Default::default()
        };
        docs.push(serde_yaml::to_string(&trimmed).map_err(|e| Error::yaml("endpoint config", e))?);
    }
    Ok(docs.join("---\n"))
}

fn child_meta(endpoint: &EnrollmentEndpoint, name: String, owner: &OwnerReference) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: endpoint.namespace(),
        labels: Some(labels(&endpoint.name_any())),
        owner_references: Some(vec![owner.clone()]),
        ..Default::default()
    }
}

/// An Opaque Secret owned by the endpoint.
pub fn owned_secret(
    endpoint: &EnrollmentEndpoint,
    name: String,
    entries: &BTreeMap<String, Vec<u8>>,
    annotations: BTreeMap<String, String>,
    owner: &OwnerReference,
) -> Secret {
    let mut meta = child_meta(endpoint, name, owner);
    meta.annotations = (!annotations.is_empty()).then_some(annotations);
    Secret {
        metadata: meta,
        type_: Some("Opaque".into()),
        data: Some(entries.iter().map(|(k, v)| (k.clone(), ByteString(v.clone()))).collect()),
        ..Default::default()
    }
}

/// sha256 (hex) of the Secrets a pod reads at start: a change rolls the pods.
pub fn config_hash(parts: &[&BTreeMap<String, Vec<u8>>]) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for (i, part) in parts.iter().enumerate() {
        ctx.update(format!("part {i}\n").as_bytes());
        for (k, v) in part.iter() {
            ctx.update(format!("{k} {}\n", v.len()).as_bytes());
            ctx.update(v);
        }
    }
    hex::encode(ctx.finish().as_ref())
}

/// Settings of the generated pods.
#[derive(Clone, Debug)]
pub struct PodSettings {
    pub image: String,
    pub image_pull_policy: Option<String>,
    pub ca_url: String,
}

fn secret_volume(name: &str, secret: String, optional: bool) -> Volume {
    Volume {
        name: name.into(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(secret),
            default_mode: Some(0o440),
            optional: optional.then_some(true),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn mount(name: &str, path: &str) -> VolumeMount {
    VolumeMount { name: name.into(), mount_path: path.into(), read_only: Some(true), ..Default::default() }
}

fn http_probe(path: &str, period: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::Int(HEALTH_PORT),
            ..Default::default()
        }),
        period_seconds: Some(period),
        ..Default::default()
    }
}

/// Requests and limits of an endpoint container when spec.resources is not set: an
/// endpoint pod idles at a few MiB and holds no state (the CA service does).
pub fn default_resources() -> ResourceRequirements {
    let q = |s: &str| Quantity(s.to_string());
    ResourceRequirements {
        requests: Some(BTreeMap::from([("cpu".to_string(), q("50m")), ("memory".to_string(), q("64Mi"))])),
        limits: Some(BTreeMap::from([("memory".to_string(), q("256Mi"))])),
        ..Default::default()
    }
}

/// spec.resources as the container's requests and limits.
fn resource_requirements(r: &EndpointResources) -> ResourceRequirements {
    let map = |c: &Option<ComputeResources>| {
        let c = c.clone().unwrap_or_default();
        let entries: BTreeMap<String, Quantity> = [("cpu", c.cpu), ("memory", c.memory)]
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_string(), Quantity(v))))
            .collect();
        (!entries.is_empty()).then_some(entries)
    };
    ResourceRequirements { requests: map(&r.requests), limits: map(&r.limits), ..Default::default() }
}

/// Non-root as the image's user, the runtime's default seccomp profile (Pod Security
/// "restricted"). fsGroup: the kubelet gives the Secret volumes' files (mode 0440,
/// owned by root) to this group, so the process can read them.
fn pod_security_context() -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(POD_USER),
        run_as_group: Some(POD_USER),
        fs_group: Some(POD_USER),
        seccomp_profile: Some(SeccompProfile { type_: "RuntimeDefault".into(), ..Default::default() }),
        ..Default::default()
    }
}

/// Deployment `<name>-pkiplane` running `pkiplane endpoint`.
pub fn deployment(endpoint: &EnrollmentEndpoint, pods: &PodSettings, hash: &str, owner: &OwnerReference) -> Deployment {
    let name = endpoint.name_any();
    let port = container_port(&endpoint.spec);
    let args = vec![
        "endpoint".to_string(),
        format!("--config={CONFIG_DIR}/{CONFIG_KEY}"),
        format!("--internal-tls={INTERNAL_DIR}"),
        format!("--credentials={CREDENTIALS_DIR}"),
        format!("--ca-url={}", pods.ca_url),
        format!("--listen=0.0.0.0:{port}"),
        format!("--health-listen=0.0.0.0:{HEALTH_PORT}"),
    ];
    let container = Container {
        name: "endpoint".into(),
        image: Some(pods.image.clone()),
        image_pull_policy: pods.image_pull_policy.clone(),
        command: Some(vec!["pkiplane".into()]),
        args: Some(args),
        ports: Some(vec![
            ContainerPort {
                name: Some("enroll".into()),
                container_port: port,
                protocol: Some("TCP".into()),
                ..Default::default()
            },
            ContainerPort {
                name: Some("health".into()),
                container_port: HEALTH_PORT,
                protocol: Some("TCP".into()),
                ..Default::default()
            },
        ]),
        volume_mounts: Some(vec![
            mount("config", CONFIG_DIR),
            mount("internal", INTERNAL_DIR),
            mount("credentials", CREDENTIALS_DIR),
        ]),
        readiness_probe: Some(http_probe("/readyz", 5)),
        liveness_probe: Some(http_probe("/healthz", 10)),
        resources: Some(endpoint.spec.resources.as_ref().map(resource_requirements).unwrap_or_else(default_resources)),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            capabilities: Some(Capabilities { drop: Some(vec!["ALL".into()]), ..Default::default() }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut template_meta = ObjectMeta { labels: Some(labels(&name)), ..Default::default() };
    template_meta.annotations = Some(BTreeMap::from([(CONFIG_HASH_ANNOTATION.to_string(), hash.to_string())]));
    Deployment {
        metadata: child_meta(endpoint, workload_name(&name), owner),
        spec: Some(DeploymentSpec {
            replicas: Some(endpoint.spec.replicas),
            selector: LabelSelector { match_labels: Some(selector_labels(&name)), ..Default::default() },
            template: PodTemplateSpec {
                metadata: Some(template_meta),
                spec: Some(PodSpec {
                    containers: vec![container],
                    automount_service_account_token: Some(false),
                    enable_service_links: Some(false),
                    security_context: Some(pod_security_context()),
                    volumes: Some(vec![
                        secret_volume("config", config_secret_name(&name), false),
                        secret_volume("internal", internal_secret_name(&name), false),
                        secret_volume("credentials", credentials_secret_name(&name), true),
                    ]),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        status: None,
    }
}

/// Service `<name>-pkiplane`: the Service port (spec.service.port, default 443 / 80) to
/// the container port.
pub fn service(endpoint: &EnrollmentEndpoint, owner: &OwnerReference) -> Service {
    let name = endpoint.name_any();
    let type_ = match endpoint.spec.service.as_ref().map(|s| s.type_).unwrap_or_default() {
        ServiceType::ClusterIP => "ClusterIP",
        ServiceType::NodePort => "NodePort",
        ServiceType::LoadBalancer => "LoadBalancer",
    };
    Service {
        metadata: child_meta(endpoint, workload_name(&name), owner),
        spec: Some(ServiceSpec {
            type_: Some(type_.into()),
            selector: Some(selector_labels(&name)),
            ports: Some(vec![ServicePort {
                name: Some("enroll".into()),
                port: service_port(&endpoint.spec),
                target_port: Some(IntOrString::Int(container_port(&endpoint.spec))),
                protocol: Some("TCP".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        status: None,
    }
}

/// Where clients reach the endpoint (status.urls): the URL the pods announce first,
/// then the Service's cluster DNS name and the other TLS names.
pub fn urls(endpoint: &EnrollmentEndpoint) -> Vec<String> {
    endpoint.cluster_urls()
}

/// Server-side apply keeps list items and map keys other managers added (a port someone
/// edited becomes another manager's item). When the live Service's ports or selector
/// differ from the desired ones, a JSON merge patch that replaces them outright.
pub fn service_drift_patch(desired: &Service, live: &Service) -> Option<serde_json::Value> {
    let (Some(want), Some(have)) = (desired.spec.as_ref(), live.spec.as_ref()) else { return None };
    let port_key = |p: &ServicePort| {
        (p.name.clone(), p.port, p.target_port.clone(), p.protocol.clone().unwrap_or_else(|| "TCP".into()))
    };
    let want_ports: Vec<_> = want.ports.iter().flatten().map(port_key).collect();
    let have_ports: Vec<_> = have.ports.iter().flatten().map(port_key).collect();
    let ports_drifted = want_ports != have_ports;
    let selector_drifted = want.selector != have.selector;
    if !ports_drifted && !selector_drifted {
        return None;
    }
    let mut spec = serde_json::Map::new();
    if ports_drifted {
        spec.insert("ports".into(), serde_json::to_value(&want.ports).unwrap_or_default());
    }
    if selector_drifted {
        let mut selector = serde_json::Map::new();
        for key in have.selector.iter().flatten().map(|(k, _)| k) {
            selector.insert(key.clone(), serde_json::Value::Null);
        }
        for (k, v) in want.selector.iter().flatten() {
            selector.insert(k.clone(), serde_json::Value::String(v.clone()));
        }
        spec.insert("selector".into(), serde_json::Value::Object(selector));
    }
    Some(serde_json::json!({ "spec": spec }))
}
