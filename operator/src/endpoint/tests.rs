use std::sync::Mutex;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::children::*;
use super::credentials::*;
use super::*;
use pkiplane_core::service::InternalRole;

use crate::ca_client::{
    CaServiceApi, CaServiceError, InternalCertificateRequest, InternalCertificateResponse, IssuerStatus, Summary,
};

/// A CA service that records certificate requests and answers with canned data.
#[derive(Default)]
struct FakeCa {
    requests: Mutex<Vec<InternalCertificateRequest>>,
    fail: bool,
    /// Refuse in-cluster names, as an Issuer with name constraints does.
    refuse_svc_names: bool,
}

#[async_trait::async_trait]
impl CaServiceApi for FakeCa {
    async fn issuers(&self) -> Result<Vec<IssuerStatus>, CaServiceError> {
        Ok(vec![])
    }
    async fn summary(&self, _: Duration) -> Result<Summary, CaServiceError> {
        Ok(Summary::default())
    }
    async fn internal_certificate(
        &self,
        request: &InternalCertificateRequest,
    ) -> Result<InternalCertificateResponse, CaServiceError> {
        self.requests.lock().unwrap().push(request.clone());
        if self.fail {
            return Err(CaServiceError::Timeout { path: "/v1/internal-certificates".into() });
        }
        if self.refuse_svc_names && request.dns_names.iter().any(|d| d.contains(".svc") || !d.contains('.')) {
            return Err(CaServiceError::Status {
                method: "POST",
                path: "/v1/internal-certificates".into(),
                status: 422,
                body: "nameConstraints".into(),
            });
        }
        Ok(InternalCertificateResponse { certificate_pem: "LEAF\n".into(), chain_pem: "INTERMEDIATE\n".into() })
    }
}

fn endpoint(spec_yaml: &str) -> EnrollmentEndpoint {
    let mut e: EnrollmentEndpoint = serde_yaml::from_str(&format!(
        "apiVersion: pkiplane.dev/v1alpha1\nkind: EnrollmentEndpoint\nmetadata: {{name: ep, namespace: pki, uid: u-1}}\nspec:\n{spec_yaml}"
    ))
    .unwrap();
    e.metadata.generation = Some(3);
    e
}

fn acme() -> EnrollmentEndpoint {
    endpoint(
        "  protocol: ACME\n  profiles: [{name: tls, default: true}]\n  listen: {port: 14000}\n  tls: {issuerRef: {name: int}, dnsNames: [acme.example.test]}\n",
    )
}

fn scep() -> EnrollmentEndpoint {
    endpoint("  protocol: SCEP\n  profiles: [{name: dev}]\n  scep: {staticChallenge: {secretRef: {name: scep-pw}}}\n")
}

fn est() -> EnrollmentEndpoint {
    endpoint(
        "  protocol: EST\n  profiles: [{name: dev, label: ldevid}]\n  est: {basicAuth: {secretRef: {name: users}}}\n  tls: {secretRef: {name: est-tls}}\n",
    )
}

fn cmp() -> EnrollmentEndpoint {
    endpoint("  protocol: CMP\n  profiles: [{name: dev}]\n  cmp: {sharedSecrets: {secretRef: {name: cmp-secrets}}}\n")
}

fn owner(e: &EnrollmentEndpoint) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
    e.controller_owner_ref(&()).unwrap()
}

fn ca_up() -> CaState {
    CaState { issuers: Some(vec![]), summary: Some(Summary::default()), error: None }
}

#[test]
fn acme_children_follow_the_contract() {
    let e = acme();
    let d = deployment(
        &e,
        &PodSettings { image: "img:1".into(), image_pull_policy: None, ca_url: "https://10.0.0.1:9443".into() },
        "abc",
        &owner(&e),
    );
    assert_eq!(d.metadata.name.as_deref(), Some("ep-pkiplane"));
    let oref = &d.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!((oref.kind.as_str(), oref.controller), ("EnrollmentEndpoint", Some(true)));
    let labels = d.metadata.labels.clone().unwrap();
    assert_eq!(labels["app.kubernetes.io/instance"], "ep");
    assert_eq!(labels["app.kubernetes.io/managed-by"], "pkiplane-operator");
    let spec = d.spec.unwrap();
    let template = spec.template;
    assert_eq!(template.metadata.unwrap().annotations.unwrap()[CONFIG_HASH_ANNOTATION], "abc");
    let pod = template.spec.unwrap();
    let c = &pod.containers[0];
    assert_eq!(c.name, "endpoint");
    assert_eq!(c.command.as_deref(), Some(&["pkiplane".to_string()][..]));
    let args = c.args.clone().unwrap();
    assert_eq!(
        args,
        [
            "endpoint",
            "--config=/etc/pkiplane/config/endpoint.yaml",
            "--internal-tls=/etc/pkiplane/internal",
            "--credentials=/etc/pkiplane/credentials",
            "--ca-url=https://10.0.0.1:9443",
            "--listen=0.0.0.0:14000",
            "--health-listen=0.0.0.0:9090",
        ]
    );
    let secrets: Vec<_> = pod.volumes.unwrap().iter().map(|v| v.secret.clone().unwrap().secret_name.unwrap()).collect();
    assert_eq!(secrets, ["ep-pkiplane-config", "ep-pkiplane-internal", "ep-pkiplane-credentials"]);
    let readiness = c.readiness_probe.clone().unwrap().http_get.unwrap();
    assert_eq!(readiness.path.as_deref(), Some("/readyz"));

    let s = service(&e, &owner(&e));
    let port = &s.spec.as_ref().unwrap().ports.as_ref().unwrap()[0];
    assert_eq!(port.port, 443, "the Service port defaults to 443 with TLS, as the CRD says");
    assert_eq!(port.target_port, Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(14000)));
    assert!(!s.spec.unwrap().selector.unwrap().contains_key("app.kubernetes.io/managed-by"));

    assert_eq!(urls(&e), ["https://acme.example.test/directory", "https://ep-pkiplane.pki.svc/directory"]);
    let plans = credential_plans(&e, Some("127.192.0.7".parse().unwrap()), None);
    assert_eq!(plans.len(), 1);
    assert_eq!(plans[0].role, InternalRole::ServingTls);
    assert!(plans[0].dns_names.contains(&"acme.example.test".to_string()));
    assert!(plans[0].dns_names.contains(&"ep-pkiplane.pki.svc".to_string()));
    assert_eq!(plans[0].ip_addresses, ["127.192.0.7"]);
    assert!(referenced_secrets(&e.spec).is_empty());
}

#[test]
fn endpoint_pods_pass_the_restricted_pod_security_profile() {
    let pods = PodSettings { image: "img:1".into(), image_pull_policy: None, ca_url: "https://10.0.0.1:9443".into() };
    for e in [acme(), scep(), est(), cmp()] {
        let d = deployment(&e, &pods, "h", &owner(&e));
        let pod = d.spec.unwrap().template.spec.unwrap();
        assert_eq!(crate::pod_security::restricted_violations(&pod), Vec::<String>::new(), "{:?}", e.spec.protocol);
        let c = &pod.containers[0];
        assert_eq!(c.resources, Some(default_resources()), "defaults when spec.resources is not set");
        let ctx = pod.security_context.unwrap();
        assert_eq!((ctx.run_as_user, ctx.run_as_group), (Some(65532), Some(65532)), "the image's user");
        // The Secret volumes are mode 0440: readable through the group the kubelet gives them.
        assert_eq!(ctx.fs_group, Some(65532), "the Secret volumes' group");
    }
}

#[test]
fn endpoint_resources_come_from_the_spec() {
    let e = endpoint(
        "  protocol: CMP\n  profiles: [{name: dev}]\n  resources: {requests: {cpu: 200m, memory: 100Mi}, limits: {cpu: '1', memory: 1Gi}}\n",
    );
    let pods = PodSettings { image: "img:1".into(), image_pull_policy: None, ca_url: "https://10.0.0.1:9443".into() };
    let d = deployment(&e, &pods, "h", &owner(&e));
    let resources = d.spec.unwrap().template.spec.unwrap().containers[0].resources.clone().unwrap();
    let text = |m: &Option<BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>, k: &str| {
        m.as_ref().unwrap()[k].0.clone()
    };
    assert_eq!(text(&resources.requests, "cpu"), "200m");
    assert_eq!(text(&resources.requests, "memory"), "100Mi");
    assert_eq!(text(&resources.limits, "cpu"), "1");
    assert_eq!(text(&resources.limits, "memory"), "1Gi");
}

#[test]
fn service_port_and_urls_follow_the_spec() {
    let e = endpoint(
        "  protocol: ACME\n  profiles: [{name: tls}]\n  listen: {port: 14000}\n  service: {port: 8443}\n  tls: {issuerRef: {name: int}, dnsNames: [acme.example.test]}\n",
    );
    let port = service(&e, &owner(&e)).spec.unwrap().ports.unwrap()[0].clone();
    assert_eq!((port.port, port.target_port), (8443, Some(IntOrString::Int(14000))));
    assert_eq!(urls(&e)[0], "https://acme.example.test:8443/directory");
    let external = endpoint(
        "  protocol: ACME\n  profiles: [{name: tls}]\n  externalURL: https://pki.example.com\n  tls: {issuerRef: {name: int}, dnsNames: [acme.example.test]}\n",
    );
    assert_eq!(urls(&external)[0], "https://pki.example.com/directory");
}

#[test]
fn edited_service_ports_and_selector_are_replaced() {
    let e = acme();
    let desired = service(&e, &owner(&e));
    assert!(service_drift_patch(&desired, &desired).is_none());
    let mut live = desired.clone();
    let spec = live.spec.as_mut().unwrap();
    spec.ports.as_mut().unwrap()[0].port = 15000;
    spec.selector.as_mut().unwrap().insert("extra".into(), "x".into());
    let patch = service_drift_patch(&desired, &live).unwrap();
    assert_eq!(patch["spec"]["ports"][0]["port"], 443);
    assert!(patch["spec"]["selector"]["extra"].is_null());
    assert_eq!(patch["spec"]["selector"]["app.kubernetes.io/instance"], "ep");
}

#[test]
fn scep_est_cmp_children() {
    let plans = credential_plans(&scep(), None, Some("int"));
    assert_eq!(plans.iter().map(|p| p.role).collect::<Vec<_>>(), [InternalRole::ScepRa]);
    assert_eq!(plans[0].issuer.as_ref().unwrap().name, "int", "the RA is signed by the default profile's Issuer");
    assert!(credential_plans(&scep(), None, None).is_empty(), "issuer unknown yet: no request");
    assert_eq!(plans[0].key_algorithm(), pkiplane_core::keys::KeyAlgorithm::Rsa2048, "SCEP RA keys are RSA");
    assert_eq!(referenced_secrets(&scep().spec), ["scep-pw"]);
    assert_eq!(container_port(&scep().spec), 8080);
    assert_eq!(urls(&scep()), ["http://ep-pkiplane.pki.svc/scep"]);

    assert!(credential_plans(&est(), None, None).is_empty(), "a TLS secretRef is the user's certificate");
    assert_eq!(referenced_secrets(&est().spec), ["est-tls", "users"]);
    assert_eq!(urls(&est()), ["https://ep-pkiplane.pki.svc/.well-known/est"]);

    assert!(credential_plans(&cmp(), None, None).is_empty(), "CMP protection certs are self-issued by the pods");
    assert_eq!(referenced_secrets(&cmp().spec), ["cmp-secrets"]);
    assert_eq!(urls(&cmp()), ["http://ep-pkiplane.pki.svc/.well-known/cmp"]);
}

#[test]
fn config_holds_the_endpoint_and_its_secrets() {
    let e = est();
    let users: Secret = serde_yaml::from_str(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: users, namespace: pki, resourceVersion: '9'}\nstringData: {alice: pw}\n",
    )
    .unwrap();
    let text = config_document(&e, &[users]).unwrap();
    let manifests = pkiplane_api::Manifests::from_yaml(&text, "endpoint.yaml").unwrap();
    assert_eq!(manifests.endpoints.len(), 1);
    assert_eq!(manifests.endpoints[0].spec, e.spec);
    assert_eq!(manifests.secrets.len(), 1);
    assert!(!text.contains("resourceVersion"), "only name/namespace of metadata");
    assert!(!text.contains("uid"));
}

#[test]
fn config_hash_changes_with_config_or_credentials() {
    let a = BTreeMap::from([("endpoint.yaml".to_string(), b"one".to_vec())]);
    let b = BTreeMap::from([("endpoint.yaml".to_string(), b"two".to_vec())]);
    let creds = BTreeMap::from([("serving.crt".to_string(), b"x".to_vec())]);
    let empty = BTreeMap::new();
    assert_eq!(config_hash(&[&a, &creds]), config_hash(&[&a, &creds]));
    assert_ne!(config_hash(&[&a, &creds]), config_hash(&[&b, &creds]));
    assert_ne!(config_hash(&[&a, &creds]), config_hash(&[&a, &empty]));
    assert_ne!(config_hash(&[&a, &empty]), config_hash(&[&empty, &a]), "parts are not interchangeable");
}

#[tokio::test]
async fn credentials_are_requested_kept_and_survive_ca_errors() {
    let e = acme();
    let plans = credential_plans(&e, Some("127.192.0.7".parse().unwrap()), None);
    let ca = FakeCa::default();
    let now = SystemTime::now();
    let first = ensure_credentials(&ca, &e, &BTreeMap::new(), &BTreeMap::new(), &plans, now).await.unwrap();
    assert!(first.errors.is_empty());
    assert_eq!(first.entries["serving.crt"], b"LEAF\nINTERMEDIATE\n");
    assert!(String::from_utf8_lossy(&first.entries["serving.key"]).contains("PRIVATE KEY"));
    {
        let requests = ca.requests.lock().unwrap();
        assert_eq!(requests.len(), 1);
        assert_eq!(requests[0].issuer.as_ref().unwrap().name, "int");
        assert!(requests[0].csr_pem.contains("CERTIFICATE REQUEST"));
    }

    // A fresh certificate with the same names is kept (the fake's PEM does not parse, so
    // use a real one from the internal CA to exercise the lifetime check).
    let internal = crate::internal_ca::InternalCa::generate(now).unwrap();
    let leaf = internal.issue_leaf(&crate::internal_ca::LeafSpec::operator(), now).unwrap();
    let mut entries = first.entries.clone();
    entries.insert("serving.crt".into(), leaf.certificate_pem.into_bytes());
    let again = ensure_credentials(&ca, &e, &entries, &first.annotations, &plans, now).await.unwrap();
    assert_eq!(ca.requests.lock().unwrap().len(), 1, "no new request while valid and names unchanged");
    assert_eq!(again.entries, entries);

    // New ClusterIP: new names, new certificate; a failing CA keeps the old one.
    let moved = credential_plans(&e, Some("127.192.0.8".parse().unwrap()), None);
    let failing = FakeCa { fail: true, ..Default::default() };
    let kept = ensure_credentials(&failing, &e, &entries, &first.annotations, &moved, now).await.unwrap();
    assert_eq!(kept.entries, entries);
    assert_eq!(kept.errors.len(), 1);
}

#[tokio::test]
async fn scep_ra_request_has_organization_and_common_name() {
    let e = scep();
    let plans = credential_plans(&e, None, Some("int"));
    let ca = FakeCa::default();
    let out = ensure_credentials(&ca, &e, &BTreeMap::new(), &BTreeMap::new(), &plans, SystemTime::now()).await.unwrap();
    assert!(out.entries.contains_key("scep-ra.crt") && out.entries.contains_key("scep-ra.key"));
    let csr_pem = ca.requests.lock().unwrap()[0].csr_pem.clone();
    let csr = pkiplane_core::x509::csr::ParsedCsr::from_pem_or_der(csr_pem.as_bytes(), Default::default()).unwrap();
    let subject = pkiplane_core::x509::names::format_dn(&csr.subject);
    assert!(subject.contains("O=pkiplane") && subject.contains("CN=ep SCEP RA"), "{subject}");
}

#[tokio::test]
async fn refused_service_names_fall_back_to_the_spec_names_once() {
    let e = acme();
    let plans = credential_plans(&e, Some("127.192.0.7".parse().unwrap()), None);
    let ca = FakeCa { refuse_svc_names: true, ..Default::default() };
    let now = SystemTime::now();
    let first = ensure_credentials(&ca, &e, &BTreeMap::new(), &BTreeMap::new(), &plans, now).await.unwrap();
    assert!(first.errors.is_empty(), "{:?}", first.errors);
    {
        let requests = ca.requests.lock().unwrap();
        assert_eq!(requests.len(), 2);
        assert_eq!(requests[1].dns_names, ["acme.example.test".to_string()]);
        assert!(requests[1].ip_addresses.is_empty());
    }
    // The annotation records what was asked for, so the next pass does not ask again.
    let internal = crate::internal_ca::InternalCa::generate(now).unwrap();
    let leaf = internal.issue_leaf(&crate::internal_ca::LeafSpec::operator(), now).unwrap();
    let mut entries = first.entries.clone();
    entries.insert("serving.crt".into(), leaf.certificate_pem.into_bytes());
    ensure_credentials(&ca, &e, &entries, &first.annotations, &plans, now).await.unwrap();
    assert_eq!(ca.requests.lock().unwrap().len(), 2);
}

fn observed(ready: i32) -> Observed {
    Observed {
        deployment: Some(DeploymentStatus { ready_replicas: Some(ready), ..Default::default() }),
        ..Default::default()
    }
}

fn ready_reason(s: &EnrollmentEndpointStatus) -> (&str, &str) {
    (s.conditions[0].status.as_str(), s.conditions[0].reason.as_str())
}

#[test]
fn status_reasons() {
    let e = acme();
    let now = SystemTime::now();
    assert_eq!(ready_reason(&desired_status(&e, &observed(1), &ca_up(), now)), ("True", reason::AVAILABLE));
    assert_eq!(ready_reason(&desired_status(&e, &observed(0), &ca_up(), now)), ("False", reason::PROGRESSING));
    let down = CaState { error: Some("refused".into()), ..ca_up() };
    assert_eq!(ready_reason(&desired_status(&e, &observed(1), &down, now)).1, reason::CA_UNAVAILABLE);
    let mut o = observed(1);
    o.profiles_not_ready = vec!["tls".into()];
    assert_eq!(ready_reason(&desired_status(&e, &o, &down, now)).1, reason::PROFILES_NOT_READY);
    let mut o = observed(1);
    o.problems = vec!["Secret pki/x not found".into()];
    assert_eq!(ready_reason(&desired_status(&e, &o, &ca_up(), now)).1, reason::CONFIG_INCOMPLETE);

    // Scaled to zero: Ready once configured (no pod is wanted), but not with problems.
    let mut zero = acme();
    zero.spec.replicas = 0;
    assert_eq!(ready_reason(&desired_status(&zero, &observed(0), &ca_up(), now)), ("True", reason::SCALED_TO_ZERO));
    assert_eq!(ready_reason(&desired_status(&zero, &o, &ca_up(), now)).1, reason::CONFIG_INCOMPLETE);
    // Two replicas wanted, one ready: still progressing.
    let mut two = acme();
    two.spec.replicas = 2;
    assert_eq!(ready_reason(&desired_status(&two, &observed(1), &ca_up(), now)).1, reason::PROGRESSING);
}

#[test]
fn status_counts_and_no_write_when_unchanged() {
    let mut e = acme();
    let ca = CaState {
        summary: Some(Summary {
            endpoints: vec![crate::ca_client::fixtures::counts("pki/ep", [4, 3, 1, 2])],
            endpoint_profiles: vec![crate::ca_client::fixtures::counts("pki/ep|pki/tls", [4, 3, 1, 0])],
            ..Default::default()
        }),
        ..ca_up()
    };
    let now = SystemTime::now();
    let first = desired_status(&e, &observed(1), &ca, now);
    assert_eq!((first.issued, first.active, first.revoked, first.denied), (4, 3, 1, 2));
    assert_eq!(first.ready_replicas, 1);
    assert_eq!(
        first.profiles,
        [EndpointProfileStatus { name: "tls".into(), profile: "tls".into(), issued: 4, active: 3, revoked: 1 }]
    );
    e.status = Some(first.clone());
    let second = desired_status(&e, &observed(1), &ca, now + Duration::from_secs(10));
    assert!(!crate::status::status_changed(e.status.as_ref(), &second), "nothing changed: no write");
    let third = desired_status(&e, &observed(2), &ca, now + Duration::from_secs(10));
    assert!(crate::status::status_changed(e.status.as_ref(), &third));
}

#[test]
fn denial_and_not_ready_events() {
    let prev = EnrollmentEndpointStatus { denied: 5, ..Default::default() };
    assert_eq!(denied_rise(Some(&prev), &EnrollmentEndpointStatus { denied: 16, ..Default::default() }, 10), Some(11));
    assert_eq!(denied_rise(Some(&prev), &EnrollmentEndpointStatus { denied: 15, ..Default::default() }, 10), None);
    assert_eq!(denied_rise(None, &EnrollmentEndpointStatus { denied: 100, ..Default::default() }, 10), None);

    let t0 = SystemTime::now();
    let s = desired_status(&acme(), &observed(0), &ca_up(), t0);
    assert!(not_ready_since(&s, t0 + Duration::from_secs(60)).is_none());
    assert!(not_ready_since(&s, t0 + Duration::from_secs(121)).is_some());
    let ready = desired_status(&acme(), &observed(1), &ca_up(), t0);
    assert!(not_ready_since(&ready, t0 + Duration::from_secs(600)).is_none());
    // The reconcile comes back when the event is due, not on a tick.
    assert_eq!(not_ready_event_at(&ready), None);
    let at = not_ready_event_at(&s).expect("due");
    assert!(at >= t0 + NOT_READY_EVENT_AFTER - Duration::from_secs(1) && at <= t0 + NOT_READY_EVENT_AFTER);
}
