//! The operator against a real kube-apiserver (the e2e harness), with a fake CA service,
//! running under the chart's RBAC for its ServiceAccount:
//!
//! ```sh
//! PKIPLANE_E2E_CRDS=crds/all.yaml e2e/cluster.sh run -- \
//!   cargo test -p pkiplane-operator --test cluster -- --ignored --nocapture
//! ```
//!
//! Checks: internal CA and leaf Secrets, Lease, Issuer/Profile/Endpoint Ready with their
//! reasons, the endpoint's children (names, owner references, config-hash), drift
//! correction, counts from the summary, the Issuer finalizer, and deletion of children.

use std::future::Future;
use std::net::IpAddr;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Secret, Service};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use pkiplane_api::v1alpha1::{CertificateProfile, EnrollmentEndpoint, Issuer, is_ready};
use pkiplane_core::inventory::InventoryCounts;
use pkiplane_operator::ca_client::{
    CaServiceApi, CaServiceError, InternalCertificateRequest, InternalCertificateResponse, IssuerStatus, Summary,
};
use pkiplane_operator::context::OperatorConfig;
use pkiplane_operator::internal_ca::{InternalCa, LeafSpec};

const NS: &str = "pkiplane-system";
const APP_NS: &str = "pki";

struct FakeCa {
    ca: InternalCa,
    summary: Mutex<Summary>,
}

#[async_trait::async_trait]
impl CaServiceApi for FakeCa {
    async fn issuers(&self) -> Result<Vec<IssuerStatus>, CaServiceError> {
        Ok(vec![IssuerStatus {
            namespace: APP_NS.into(),
            name: "root".into(),
            ready: true,
            certificate_pem: Some(self.ca.certificate_pem.clone()),
            chain_pem: Some(String::new()),
            fingerprint: Some("00ff".into()),
            serial: Some("01".into()),
            not_before: Some("2026-01-01T00:00:00Z".into()),
            not_after: Some("2036-01-01T00:00:00Z".into()),
            next_certificate_pem: None,
            message: None,
        }])
    }
    async fn summary(&self, _: Duration) -> Result<Summary, CaServiceError> {
        Ok(self.summary.lock().unwrap().clone())
    }
    async fn internal_certificate(
        &self,
        request: &InternalCertificateRequest,
    ) -> Result<InternalCertificateResponse, CaServiceError> {
        let spec = LeafSpec {
            common_name: "serving".into(),
            dns_names: request.dns_names.clone(),
            ip_addresses: request.ip_addresses.iter().filter_map(|i| i.parse::<IpAddr>().ok()).collect(),
            uri: "spiffe://pkiplane.dev/test".into(),
        };
        let leaf = self.ca.issue_leaf(&spec, SystemTime::now()).unwrap();
        Ok(InternalCertificateResponse {
            certificate_pem: leaf.certificate_pem,
            chain_pem: self.ca.certificate_pem.clone(),
        })
    }
}

fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn sh(cmd: &mut Command) -> String {
    let out = cmd.output().expect("spawn");
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<String>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    let mut last = None;
    while tokio::time::Instant::now() < deadline {
        match check().await {
            None => {
                eprintln!("ok: {what}");
                return;
            }
            Some(why) => last = Some(why),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("timed out: {what}: {}", last.unwrap_or_default());
}

fn ready<T>(
    conditions: Option<&Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>>,
    _: T,
) -> Option<String> {
    let c = conditions.cloned().unwrap_or_default();
    if is_ready(&c) { None } else { Some(format!("{c:?}")) }
}

async fn apply_yaml<K>(api: &Api<K>, yaml: &str) -> K
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let obj: K = serde_yaml::from_str(yaml).unwrap();
    let name = obj.meta().name.clone().unwrap();
    api.patch(&name, &PatchParams::apply("test").force(), &Patch::Apply(&obj)).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the e2e cluster: PKIPLANE_E2E_CRDS=crds/all.yaml e2e/cluster.sh run -- cargo test ..."]
async fn operator_reconciles_against_the_real_api_server() {
    let _ = tracing_subscriber::fmt().with_env_filter("info,kube=warn").with_writer(std::io::stderr).try_init();
    let admin = Client::try_default().await.expect("KUBECONFIG of the e2e cluster");
    let namespaces: Api<Namespace> = Api::all(admin.clone());
    for ns in [NS, APP_NS] {
        let ns_obj: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": ns}})).unwrap();
        let _ = namespaces.create(&PostParams::default(), &ns_obj).await;
    }
    // The chart's RBAC for the operator, and a kubeconfig of its ServiceAccount.
    let root = repo_root();
    // Rendered by helm (the templates use the chart's helpers), RBAC kinds only.
    let rbac = sh(Command::new(root.join("e2e/render-chart.sh")).args([
        "--namespace",
        NS,
        "--kinds",
        "ClusterRole,ClusterRoleBinding,Role,RoleBinding",
    ]));
    let rbac_file = std::env::temp_dir().join(format!("rbac-operator-{}.yaml", std::process::id()));
    std::fs::write(&rbac_file, rbac).unwrap();
    sh(Command::new("kubectl").arg("apply").arg("-f").arg(&rbac_file));
    let kubeconfig = sh(Command::new(root.join("e2e/cluster.sh")).args(["sa-kubeconfig", NS, "pkiplane-operator"]));
    let kc = Kubeconfig::read_from(kubeconfig.lines().last().unwrap()).unwrap();
    let operator_client =
        Client::try_from(Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await.unwrap()).unwrap();
    // RBAC reaches the authorizer through an informer: wait for the grant.
    let sa_secrets: Api<Secret> = Api::namespaced(operator_client.clone(), NS);
    eventually("the operator's RBAC is effective", || {
        let api = sa_secrets.clone();
        async move { api.list(&Default::default()).await.err().map(|e| e.to_string()) }
    })
    .await;

    let fake = Arc::new(FakeCa { ca: InternalCa::generate(SystemTime::now()).unwrap(), summary: Mutex::default() });
    let config = OperatorConfig {
        namespace: NS.into(),
        ca_url: "https://127.0.0.1:1".into(),
        image: "ghcr.io/pkiplane/pkiplane:test".into(),
        image_pull_policy: Some("IfNotPresent".into()),
        metrics_listen: "127.0.0.1:0".parse().unwrap(),
        listener_limits: pkiplane_listen::Limits::default(),
        denial_event_threshold: 10,
        leader_elect: true,
        identity: "cluster-test-0".into(),
    };
    let operator =
        tokio::spawn(pkiplane_operator::run::run_with(operator_client.clone(), config.clone(), fake.clone()));

    // Internal CA, leaves, Lease.
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), NS);
    for name in ["pkiplane-internal-ca", "pkiplane-ca-tls", "pkiplane-webhook-tls", "pkiplane-operator-tls"] {
        eventually(&format!("Secret {NS}/{name}"), || {
            let api = secrets.clone();
            async move { api.get_opt(name).await.unwrap().is_none().then(|| "missing".to_string()) }
        })
        .await;
    }
    let lease = Api::<Lease>::namespaced(admin.clone(), NS).get("pkiplane-operator").await.unwrap();
    assert_eq!(lease.spec.unwrap().holder_identity.as_deref(), Some("cluster-test-0"));

    // The quickstart-like objects.
    let issuers: Api<Issuer> = Api::namespaced(admin.clone(), APP_NS);
    let profiles: Api<CertificateProfile> = Api::namespaced(admin.clone(), APP_NS);
    let endpoints: Api<EnrollmentEndpoint> = Api::namespaced(admin.clone(), APP_NS);
    apply_yaml(&issuers, "apiVersion: pkiplane.dev/v1alpha1\nkind: Issuer\nmetadata: {name: root, namespace: pki}\nspec: {selfSigned: {}, subject: CN=Test Root}\n").await;
    apply_yaml(
        &profiles,
        "apiVersion: pkiplane.dev/v1alpha1\nkind: CertificateProfile\nmetadata: {name: tls, namespace: pki}\nspec: {issuerRef: {name: root}, validity: {duration: 30d}}\n",
    )
    .await;
    apply_yaml(
        &endpoints,
        "apiVersion: pkiplane.dev/v1alpha1\nkind: EnrollmentEndpoint\nmetadata: {name: acme, namespace: pki}\nspec:\n  protocol: ACME\n  profiles: [{name: tls}]\n  listen: {port: 14000}\n  tls: {issuerRef: {name: root}, dnsNames: [acme.example.test]}\n",
    )
    .await;

    eventually("Issuer pki/root Ready (Issued) with the fingerprint", || {
        let api = issuers.clone();
        async move {
            let i = api.get("root").await.unwrap();
            let s = i.status.clone().unwrap_or_default();
            if s.fingerprint.as_deref() != Some("00ff") {
                return Some(format!("{s:?}"));
            }
            ready(Some(&s.conditions), ())
        }
    })
    .await;
    let root_issuer = issuers.get("root").await.unwrap();
    assert!(root_issuer.metadata.finalizers.unwrap_or_default().contains(&"pkiplane.dev/issuer-in-use".to_string()));
    eventually("CertificateProfile pki/tls Ready", || {
        let api = profiles.clone();
        async move { ready(api.get("tls").await.unwrap().status.as_ref().map(|s| &s.conditions), ()) }
    })
    .await;

    // Children of the endpoint.
    let app_secrets: Api<Secret> = Api::namespaced(admin.clone(), APP_NS);
    let deployments: Api<Deployment> = Api::namespaced(admin.clone(), APP_NS);
    let services: Api<Service> = Api::namespaced(admin.clone(), APP_NS);
    eventually("Deployment pki/acme-pkiplane", || {
        let api = deployments.clone();
        async move { api.get_opt("acme-pkiplane").await.unwrap().is_none().then(|| "missing".to_string()) }
    })
    .await;
    let service = services.get("acme-pkiplane").await.unwrap();
    let cluster_ip = service.spec.as_ref().unwrap().cluster_ip.clone().unwrap();
    for name in ["acme-pkiplane-config", "acme-pkiplane-internal", "acme-pkiplane-credentials"] {
        let s = app_secrets.get(name).await.unwrap();
        let owner = &s.metadata.owner_references.as_ref().expect("owner reference")[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str(), owner.controller),
            ("EnrollmentEndpoint", "acme", Some(true))
        );
    }
    let creds = app_secrets.get("acme-pkiplane-credentials").await.unwrap();
    let serving = String::from_utf8(creds.data.unwrap()["serving.crt"].0.clone()).unwrap();
    let out = sh(Command::new("sh")
        .arg("-c")
        .arg(format!("printf '%s' '{serving}' | openssl x509 -noout -ext subjectAltName")));
    assert!(out.contains(&format!("IP Address:{cluster_ip}")), "serving cert has the ClusterIP: {out}");
    assert!(out.contains("acme-pkiplane.pki.svc"), "{out}");
    let hash = |d: &Deployment| {
        d.spec.as_ref().unwrap().template.metadata.as_ref().unwrap().annotations.as_ref().unwrap()["pkiplane.dev/config-hash"]
            .clone()
    };
    let first_hash = hash(&deployments.get("acme-pkiplane").await.unwrap());

    // Progressing until a replica is ready; the harness has no kubelet, so write the
    // Deployment status a kubelet would (e2e/operator.sh runs the real pods on a node).
    eventually("EnrollmentEndpoint Progressing with URLs", || {
        let api = endpoints.clone();
        async move {
            let s = api.get("acme").await.unwrap().status.unwrap_or_default();
            let reason = s.conditions.first().map(|c| c.reason.clone()).unwrap_or_default();
            (reason != "Progressing"
                || s.urls.first().map(String::as_str) != Some("https://acme.example.test/directory"))
            .then(|| format!("{s:?}"))
        }
    })
    .await;
    deployments
        .patch_status(
            "acme-pkiplane",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"status": {"replicas": 1, "readyReplicas": 1, "availableReplicas": 1}})),
        )
        .await
        .unwrap();
    *fake.summary.lock().unwrap() = Summary {
        endpoints: vec![InventoryCounts { key: "pki/acme".into(), issued: 3, active: 3, ..Default::default() }],
        profiles: vec![InventoryCounts { key: "pki/tls".into(), issued: 3, active: 3, ..Default::default() }],
        endpoint_profiles: vec![InventoryCounts {
            key: "pki/acme|pki/tls".into(),
            issued: 3,
            active: 3,
            ..Default::default()
        }],
        ..Default::default()
    };
    eventually("EnrollmentEndpoint Ready (Available) with counts", || {
        let api = endpoints.clone();
        async move {
            let s = api.get("acme").await.unwrap().status.unwrap_or_default();
            (s.issued != 3 || s.ready_replicas != 1 || s.profiles.first().map(|p| p.issued) != Some(3))
                .then(|| format!("{s:?}"))
                .or_else(|| ready(Some(&s.conditions), ()))
        }
    })
    .await;
    eventually("CertificateProfile counts", || {
        let api = profiles.clone();
        async move { (api.get("tls").await.unwrap().status.unwrap_or_default().issued != 3).then(|| "issued != 3".into()) }
    })
    .await;

    // Nothing changes: no status writes (resourceVersions stay) over two ticks.
    let versions = |e: EnrollmentEndpoint, p: CertificateProfile, i: Issuer| {
        [e.metadata.resource_version, p.metadata.resource_version, i.metadata.resource_version]
    };
    let before = versions(
        endpoints.get("acme").await.unwrap(),
        profiles.get("tls").await.unwrap(),
        issuers.get("root").await.unwrap(),
    );
    tokio::time::sleep(Duration::from_secs(25)).await;
    let after = versions(
        endpoints.get("acme").await.unwrap(),
        profiles.get("tls").await.unwrap(),
        issuers.get("root").await.unwrap(),
    );
    assert_eq!(before, after, "an unchanged status is not rewritten");
    eprintln!("ok: no status writes while nothing changes (25 s)");

    // Drift: a deleted Deployment and an edited Service come back.
    deployments.delete("acme-pkiplane", &DeleteParams::default()).await.unwrap();
    services
        .patch(
            "acme-pkiplane",
            &PatchParams::default(),
            &Patch::Json::<()>(
                serde_json::from_value(serde_json::json!([
                    {"op": "replace", "path": "/spec/ports/0/port", "value": 15000}
                ]))
                .unwrap(),
            ),
        )
        .await
        .unwrap();
    eventually("the Deployment is re-created and the Service port restored", || {
        let (d, s) = (deployments.clone(), services.clone());
        async move {
            let dep = d.get_opt("acme-pkiplane").await.unwrap();
            let port = s.get("acme-pkiplane").await.unwrap().spec.unwrap().ports.unwrap()[0].port;
            (dep.is_none() || port != 443).then(|| format!("deployment present: {}, port {port}", dep.is_some()))
        }
    })
    .await;
    assert_eq!(hash(&deployments.get("acme-pkiplane").await.unwrap()), first_hash, "same config, same hash");

    // A config change rolls the pods: a new hash.
    apply_yaml(
        &endpoints,
        "apiVersion: pkiplane.dev/v1alpha1\nkind: EnrollmentEndpoint\nmetadata: {name: acme, namespace: pki}\nspec:\n  protocol: ACME\n  profiles: [{name: tls}]\n  listen: {port: 14000}\n  tls: {issuerRef: {name: root}, dnsNames: [acme.example.test]}\n  acme: {challenges: [http-01]}\n",
    )
    .await;
    eventually("config change rolls the Deployment (new config-hash)", || {
        let (d, h) = (deployments.clone(), first_hash.clone());
        async move { (hash(&d.get("acme-pkiplane").await.unwrap()) == h).then(|| "hash unchanged".into()) }
    })
    .await;

    // The Issuer is held while the profile references it.
    issuers.delete("root", &DeleteParams::default()).await.unwrap();
    eventually("Issuer deletion held with InUse naming the profile", || {
        let api = issuers.clone();
        async move {
            let i = api.get("root").await.unwrap();
            let c = i.status.unwrap_or_default().conditions;
            match c.first() {
                Some(c) if c.reason == "InUse" && c.message.contains("tls") => None,
                other => Some(format!("{other:?}")),
            }
        }
    })
    .await;
    profiles.delete("tls", &DeleteParams::default()).await.unwrap();
    eventually("Issuer released once unreferenced", || {
        let api = issuers.clone();
        async move { api.get_opt("root").await.unwrap().map(|_| "still there".into()) }
    })
    .await;

    // Deleting the endpoint removes its children (garbage collector).
    endpoints.delete("acme", &DeleteParams::default()).await.unwrap();
    eventually("children garbage-collected", || {
        let (d, s) = (deployments.clone(), app_secrets.clone());
        async move {
            let dep = d.get_opt("acme-pkiplane").await.unwrap();
            let sec = s.get_opt("acme-pkiplane-config").await.unwrap();
            (dep.is_some() || sec.is_some()).then(|| "children still present".into())
        }
    })
    .await;

    // A second replica stays passive while the first leads, and takes over when it goes.
    let second = tokio::spawn(pkiplane_operator::run::run_with(
        operator_client,
        OperatorConfig { identity: "cluster-test-1".into(), ..config },
        fake.clone(),
    ));
    let leases: Api<Lease> = Api::namespaced(admin.clone(), NS);
    tokio::time::sleep(Duration::from_secs(8)).await;
    let holder = |l: Lease| l.spec.and_then(|s| s.holder_identity).unwrap_or_default();
    assert_eq!(holder(leases.get("pkiplane-operator").await.unwrap()), "cluster-test-0", "the standby stays passive");
    eprintln!("ok: second replica passive while the first leads");
    operator.abort();
    eventually("the second replica takes the lease after the first stops", || {
        let api = leases.clone();
        async move {
            let h = holder(api.get("pkiplane-operator").await.unwrap());
            (h != "cluster-test-1").then_some(h)
        }
    })
    .await;
    second.abort();
}
