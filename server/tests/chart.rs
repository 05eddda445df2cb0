//! The Helm chart (charts/pkiplane) as `helm` renders it: lint, the values schema, every
//! pod against the Pod Security "restricted" rules, which Deployment a changed value
//! rolls, the webhook's and the CA replicas' availability settings (replicas only on
//! PostgreSQL), the CA volume's fate on uninstall, the
//! NetworkPolicy, the webhook configurations against `pkiplane webhook manifests`, the
//! chart's copies of the generated CRDs, and one version from Cargo to the binary, the
//! chart and the image.
//!
//! helm is the real one, built by scripts/tools/helm.sh (cached; `scripts/setup-tools`
//! builds it before the suite runs).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use pkiplane_operator::context::OperatorConfig;
use pkiplane_operator::pod_security::restricted_violations;
use serde::Deserialize;
use serde_yaml::Value;

const VERSION: &str = env!("CARGO_PKG_VERSION");
const DEPLOYMENTS: [&str; 3] = ["pkiplane-ca", "pkiplane-operator", "pkiplane-webhook"];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn chart() -> PathBuf {
    root().join("charts/pkiplane")
}

fn helm() -> &'static Path {
    static HELM: OnceLock<PathBuf> = OnceLock::new();
    HELM.get_or_init(|| {
        let out = Command::new("bash").arg(root().join("scripts/tools/helm.sh")).output().expect("run helm.sh");
        assert!(out.status.success(), "scripts/tools/helm.sh: {}", String::from_utf8_lossy(&out.stderr));
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
    })
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// `helm template` with `--set` values; the raw output.
fn try_render(namespace: &str, sets: &[&str]) -> Output {
    let mut cmd = Command::new(helm());
    cmd.args(["template", "pkiplane"]).arg(chart()).args(["--namespace", namespace, "--kube-version", "1.34.12"]);
    for s in sets {
        cmd.args(["--set", s]);
    }
    cmd.output().expect("run helm template")
}

/// The rendered objects, keyed by `Kind/name`.
fn render_in(namespace: &str, sets: &[&str]) -> BTreeMap<String, Value> {
    let out = try_render(namespace, sets);
    assert!(out.status.success(), "helm template {sets:?}: {}", text(&out));
    let mut objects = BTreeMap::new();
    for doc in serde_yaml::Deserializer::from_slice(&out.stdout) {
        let v = Value::deserialize(doc).expect("rendered YAML");
        if v.is_null() {
            continue;
        }
        let key = format!("{}/{}", v["kind"].as_str().unwrap(), v["metadata"]["name"].as_str().unwrap());
        assert!(objects.insert(key.clone(), v).is_none(), "{key} rendered twice");
    }
    objects
}

fn render(sets: &[&str]) -> BTreeMap<String, Value> {
    render_in("pkiplane-system", sets)
}

fn deployment(objects: &BTreeMap<String, Value>, name: &str) -> Deployment {
    serde_yaml::from_value(objects[&format!("Deployment/{name}")].clone()).expect("a Deployment")
}

fn template(objects: &BTreeMap<String, Value>, name: &str) -> PodTemplateSpec {
    deployment(objects, name).spec.unwrap().template
}

#[test]
fn helm_lint_strict_passes() {
    let out = Command::new(helm()).args(["lint", "--strict"]).arg(chart()).output().unwrap();
    assert!(out.status.success(), "helm lint --strict: {}", text(&out));
}

#[test]
fn every_pod_is_restricted_runs_the_one_image_and_logs_json() {
    let objects = render(&[]);
    for name in DEPLOYMENTS {
        let pod = template(&objects, name).spec.unwrap();
        assert_eq!(restricted_violations(&pod), Vec::<String>::new(), "{name}");
        let c = &pod.containers[0];
        assert_eq!(c.image.as_deref(), Some(OperatorConfig::default_image().as_str()), "{name}");
        assert_eq!(c.image_pull_policy.as_deref(), Some("IfNotPresent"));
        assert_eq!(c.command.as_deref(), Some(&["pkiplane".to_string()][..]), "from PATH");
        let env: BTreeMap<String, String> =
            c.env.iter().flatten().filter_map(|e| Some((e.name.clone(), e.value.clone()?))).collect();
        assert_eq!(env.get("PKIPLANE_LOG").map(String::as_str), Some("info"), "{name}: the variable the binary reads");
        assert_eq!(env.get("PKIPLANE_LOG_FORMAT").map(String::as_str), Some("json"), "{name}");
        assert!(!env.contains_key("RUST_LOG"), "{name}");
        let resources = c.resources.clone().unwrap();
        assert!(resources.requests.is_some() && resources.limits.is_some(), "{name}");
        let ctx = pod.security_context.unwrap();
        assert_eq!((ctx.run_as_user, ctx.run_as_group), (Some(65532), Some(65532)), "the image's user");
    }
    let operator = template(&objects, "pkiplane-operator").spec.unwrap();
    let args = operator.containers[0].args.clone().unwrap();
    assert!(args.contains(&format!("--image={}", OperatorConfig::default_image())), "endpoint pods: the same image");

    let custom =
        render(&["image.repository=registry.example/pki/pkiplane", "image.tag=1.2.3", "image.pullPolicy=Never"]);
    for name in DEPLOYMENTS {
        let c = template(&custom, name).spec.unwrap().containers[0].clone();
        assert_eq!(c.image.as_deref(), Some("registry.example/pki/pkiplane:1.2.3"));
        assert_eq!(c.image_pull_policy.as_deref(), Some("Never"));
    }
    let args = template(&custom, "pkiplane-operator").spec.unwrap().containers[0].args.clone().unwrap();
    assert!(args.contains(&"--image=registry.example/pki/pkiplane:1.2.3".to_string()), "{args:?}");
    assert!(args.contains(&"--image-pull-policy=Never".to_string()), "endpoint pods pull the same way");
    let text_logs = render(&["logFormat=text", "ca.logLevel=debug"]);
    let env = template(&text_logs, "pkiplane-ca").spec.unwrap().containers[0].env.clone().unwrap();
    assert!(env.iter().any(|e| e.name == "PKIPLANE_LOG" && e.value.as_deref() == Some("debug")));
    assert!(env.iter().any(|e| e.name == "PKIPLANE_LOG_FORMAT" && e.value.as_deref() == Some("text")));
}

#[test]
fn the_values_schema_refuses_bad_values() {
    for (set, fragment) in [
        ("webhook.replicas=two", "replicas"),
        ("logFormat=xml", "logFormat"),
        ("image.pullPolicy=Sometimes", "pullPolicy"),
        ("unknownKey=1", "unknownKey"),
        ("ca.persistence.keepOnUninstall=maybe", "keepOnUninstall"),
        ("ca.resources.limits.memory=lots", "memory"),
        ("operator.caUrl=http://plain:9443", "caUrl"),
    ] {
        let out = try_render("pkiplane-system", &[set]);
        let message = text(&out);
        assert!(!out.status.success(), "--set {set} was accepted");
        assert!(message.contains("schema") && message.contains(fragment), "--set {set}: {message}");
    }
}

/// The pod template of each Deployment, to see which ones a value change rolls.
fn templates(sets: &[&str]) -> BTreeMap<&'static str, PodTemplateSpec> {
    let objects = render(sets);
    DEPLOYMENTS.iter().map(|n| (*n, template(&objects, n))).collect()
}

#[test]
fn a_changed_value_rolls_only_the_deployments_it_concerns() {
    let base = templates(&[]);
    for (set, rolled) in [
        ("ca.logLevel=debug", &["pkiplane-ca"][..]),
        ("ca.resources.limits.memory=512Mi", &["pkiplane-ca"]),
        ("ca.extraArgs[0]=--help", &["pkiplane-ca"]),
        ("operator.logLevel=debug", &["pkiplane-operator"]),
        ("operator.caUrl=https://ca.example:9443", &["pkiplane-operator"]),
        ("webhook.logLevel=debug", &["pkiplane-webhook"]),
        ("webhook.resources.requests.cpu=100m", &["pkiplane-webhook"]),
        ("logFormat=text", &DEPLOYMENTS),
        ("image.tag=9.9.9", &DEPLOYMENTS),
        ("image.pullPolicy=Always", &DEPLOYMENTS),
        ("webhook.replicas=3", &[]),
        ("operator.replicas=3", &[]),
        ("ca.persistence.size=5Gi", &[]),
        ("networkPolicy.enabled=false", &[]),
        ("webhook.caBundle=AAAA", &[]),
    ] {
        let changed = templates(&[set]);
        let differ: Vec<&str> = DEPLOYMENTS.iter().copied().filter(|n| base[n] != changed[n]).collect();
        assert_eq!(differ, rolled, "--set {set} changes the pod templates of {differ:?}");
    }
}

#[test]
fn the_webhook_runs_two_ready_checked_replicas_under_a_disruption_budget() {
    let objects = render(&[]);
    let d = deployment(&objects, "pkiplane-webhook").spec.unwrap();
    assert_eq!(d.replicas, Some(2));
    let c = &d.template.spec.unwrap().containers[0];
    let probe = c.readiness_probe.clone().unwrap().http_get.unwrap();
    assert_eq!(
        (probe.path.as_deref(), probe.scheme.as_deref()),
        (Some("/readyz"), Some("HTTPS")),
        "waits for its cache"
    );
    let pdb = &objects["PodDisruptionBudget/pkiplane-webhook"];
    assert_eq!(pdb["spec"]["minAvailable"], Value::from(1));
    let selected: BTreeMap<String, String> =
        serde_yaml::from_value(pdb["spec"]["selector"]["matchLabels"].clone()).unwrap();
    let labels = d.template.metadata.unwrap().labels.unwrap();
    assert!(selected.iter().all(|(k, v)| labels.get(k) == Some(v)), "the budget selects the webhook pods");
    assert!(
        !render(&["webhook.replicas=1"]).contains_key("PodDisruptionBudget/pkiplane-webhook"),
        "1 replica: no budget"
    );
}

#[test]
fn uninstall_keeps_the_ca_volume_unless_asked() {
    let objects = render(&[]);
    let pvc = &objects["PersistentVolumeClaim/pkiplane-ca-data"];
    assert_eq!(pvc["metadata"]["annotations"]["helm.sh/resource-policy"], Value::from("keep"));
    let deleted = render(&["ca.persistence.keepOnUninstall=false"]);
    assert!(deleted["PersistentVolumeClaim/pkiplane-ca-data"]["metadata"]["annotations"].is_null());
    let existing = render(&["ca.persistence.existingClaim=my-ca-keys"]);
    assert!(!existing.contains_key("PersistentVolumeClaim/pkiplane-ca-data"));
    let volumes = template(&existing, "pkiplane-ca").spec.unwrap().volumes.unwrap();
    let data = volumes.iter().find(|v| v.name == "data").unwrap();
    assert_eq!(data.persistent_volume_claim.as_ref().unwrap().claim_name, "my-ca-keys");
}

#[test]
fn the_ca_store_url_and_key_encryption_keys_come_from_secrets() {
    let plain = template(&render(&[]), "pkiplane-ca").spec.unwrap();
    let container = &plain.containers[0];
    assert!(!container.args.clone().unwrap().iter().any(|a| a.starts_with("--kek-file")));
    assert!(!container.env.clone().unwrap().iter().any(|e| e.name == "PKIPLANE_STORE"));

    let objects = render(&["ca.store.existingSecret=ca-db", "ca.keyEncryption.existingSecret=ca-kek"]);
    let spec = template(&objects, "pkiplane-ca").spec.unwrap();
    let container = &spec.containers[0];
    let store = container.env.clone().unwrap().into_iter().find(|e| e.name == "PKIPLANE_STORE").expect("--store env");
    let secret = store.value_from.unwrap().secret_key_ref.unwrap();
    assert_eq!((secret.name.as_str(), secret.key.as_str()), ("ca-db", "url"));
    assert!(store.value.is_none(), "the URL (with its password) never in the pod spec");
    assert!(container.args.clone().unwrap().contains(&"--kek-file=/etc/pkiplane/kek/kek".to_owned()));
    let volume = spec.volumes.unwrap().into_iter().find(|v| v.name == "kek").expect("kek volume");
    let secret = volume.secret.unwrap();
    assert_eq!((secret.secret_name.as_deref(), secret.default_mode), (Some("ca-kek"), Some(0o400)));
    let mount = container.volume_mounts.clone().unwrap().into_iter().find(|m| m.name == "kek").unwrap();
    assert_eq!((mount.mount_path.as_str(), mount.read_only), ("/etc/pkiplane/kek", Some(true)));
}

#[test]
fn the_ca_database_tls_defaults_to_verify_full_and_mounts_its_certificates_from_a_secret() {
    let env = |sets: &[&str]| -> BTreeMap<String, Option<String>> {
        let spec = template(&render(sets), "pkiplane-ca").spec.unwrap();
        spec.containers[0].env.clone().unwrap().into_iter().map(|e| (e.name, e.value)).collect()
    };
    assert!(!env(&[]).contains_key("PGSSLMODE"), "no database, no TLS settings");
    let plain = env(&["ca.store.existingSecret=ca-db"]);
    assert_eq!(plain["PGSSLMODE"].as_deref(), Some("verify-full"));
    assert!(!plain.contains_key("PGSSLROOTCERT") && !plain.contains_key("PGSSLKEY"));

    let sets = ["ca.store.existingSecret=ca-db", "ca.store.tls.existingSecret=db-tls"];
    let with_ca = env(&sets);
    assert_eq!(with_ca["PGSSLROOTCERT"].as_deref(), Some("/etc/pkiplane/db-tls/ca.crt"));
    assert!(!with_ca.contains_key("PGSSLCERT"));
    let spec = template(&render(&sets), "pkiplane-ca").spec.unwrap();
    let volume = spec.volumes.unwrap().into_iter().find(|v| v.name == "db-tls").expect("db-tls volume");
    let secret = volume.secret.unwrap();
    assert_eq!((secret.secret_name.as_deref(), secret.default_mode), (Some("db-tls"), Some(0o400)));
    let keys: Vec<String> = secret.items.unwrap().into_iter().map(|i| i.key).collect();
    assert_eq!(keys, ["ca.crt"], "the client key is mounted only when used");
    let mount = spec.containers[0].volume_mounts.clone().unwrap().into_iter().find(|m| m.name == "db-tls").unwrap();
    assert_eq!((mount.mount_path.as_str(), mount.read_only), ("/etc/pkiplane/db-tls", Some(true)));

    let client = env(&[&sets[..], &["ca.store.tls.clientCertificate=true", "ca.store.tls.sslmode=verify-ca"]].concat());
    assert_eq!(client["PGSSLMODE"].as_deref(), Some("verify-ca"));
    assert_eq!(client["PGSSLCERT"].as_deref(), Some("/etc/pkiplane/db-tls/tls.crt"));
    assert_eq!(client["PGSSLKEY"].as_deref(), Some("/etc/pkiplane/db-tls/tls.key"));
    let refused = try_render("pkiplane", &["ca.store.existingSecret=ca-db", "ca.store.tls.sslmode=allow"]);
    assert!(!refused.status.success(), "sslmode=allow is not offered");
}

#[test]
fn ca_replicas_need_postgres_then_roll_one_by_one_spread_and_keep_one_serving() {
    // SQLite: one replica on the volume, replaced (never two on one file), no budget.
    let sqlite = render(&[]);
    let d = deployment(&sqlite, "pkiplane-ca").spec.unwrap();
    assert_eq!(d.replicas, Some(1));
    assert_eq!(d.strategy.unwrap().type_.as_deref(), Some("Recreate"));
    assert!(d.template.spec.unwrap().affinity.is_none());
    assert!(!sqlite.contains_key("PodDisruptionBudget/pkiplane-ca"));

    // More replicas without PostgreSQL: refused, saying why.
    let refused = try_render("pkiplane-system", &["ca.replicas=3"]);
    assert!(!refused.status.success(), "3 replicas on SQLite rendered");
    assert!(text(&refused).contains("ca.replicas > 1 needs the PostgreSQL store"), "{}", text(&refused));

    // PostgreSQL, one replica: rolled (a new pod before the old one stops), no volume.
    let one = render(&["ca.store.existingSecret=ca-db"]);
    let d = deployment(&one, "pkiplane-ca").spec.unwrap();
    let strategy = d.strategy.unwrap();
    assert_eq!(strategy.type_.as_deref(), Some("RollingUpdate"));
    let rolling = strategy.rolling_update.unwrap();
    assert_eq!(rolling.max_unavailable, Some(IntOrString::Int(0)));
    assert!(!one.contains_key("PersistentVolumeClaim/pkiplane-ca-data"), "the database holds everything");
    let data = d.template.spec.unwrap().volumes.unwrap().into_iter().find(|v| v.name == "data").unwrap();
    assert!(data.empty_dir.is_some() && data.persistent_volume_claim.is_none());
    assert!(!one.contains_key("PodDisruptionBudget/pkiplane-ca"));

    // PostgreSQL, three replicas: spread over nodes, one kept through drains.
    let three = render(&["ca.store.existingSecret=ca-db", "ca.replicas=3"]);
    let d = deployment(&three, "pkiplane-ca").spec.unwrap();
    assert_eq!(d.replicas, Some(3));
    let labels = d.template.metadata.clone().unwrap().labels.unwrap();
    let anti = d.template.spec.unwrap().affinity.unwrap().pod_anti_affinity.unwrap();
    let term = &anti.preferred_during_scheduling_ignored_during_execution.unwrap()[0].pod_affinity_term;
    assert_eq!(term.topology_key, "kubernetes.io/hostname");
    let selected = term.label_selector.clone().unwrap().match_labels.unwrap();
    assert!(selected.iter().all(|(k, v)| labels.get(k) == Some(v)), "the anti-affinity selects the CA pods");
    let pdb = &three["PodDisruptionBudget/pkiplane-ca"];
    assert_eq!(pdb["spec"]["minAvailable"], Value::from(1));
    let selected: BTreeMap<String, String> =
        serde_yaml::from_value(pdb["spec"]["selector"]["matchLabels"].clone()).unwrap();
    assert!(selected.iter().all(|(k, v)| labels.get(k) == Some(v)), "the budget selects the CA pods");
    assert!(selected.get("app.kubernetes.io/component").is_some_and(|c| c == "ca"), "only the CA pods");
}

fn matches(selector: &Value, labels: &BTreeMap<String, String>) -> bool {
    let wanted: BTreeMap<String, String> = serde_yaml::from_value(selector["matchLabels"].clone()).unwrap_or_default();
    !wanted.is_empty() && wanted.iter().all(|(k, v)| labels.get(k) == Some(v))
}

#[test]
fn only_endpoint_pods_and_the_operator_reach_the_ca_internal_port() {
    let objects = render(&[]);
    let policy = &objects["NetworkPolicy/pkiplane-ca"];
    let ca_labels = template(&objects, "pkiplane-ca").metadata.unwrap().labels.unwrap();
    assert!(matches(&policy["spec"]["podSelector"], &ca_labels), "the policy selects the CA pod");
    let rules = policy["spec"]["ingress"].as_sequence().unwrap();
    let internal: Vec<&Value> = rules.iter().filter(|r| r["ports"][0]["port"].as_i64() == Some(9443)).collect();
    assert_eq!(internal.len(), 1);
    let peers = internal[0]["from"].as_sequence().unwrap();
    // The labels the operator puts on an endpoint pod, and the operator's own pods.
    let endpoint_pod = pkiplane_operator::endpoint::children::labels("any-endpoint");
    let operator_pod = template(&objects, "pkiplane-operator").metadata.unwrap().labels.unwrap();
    let webhook_pod = template(&objects, "pkiplane-webhook").metadata.unwrap().labels.unwrap();
    let admitted = |labels: &BTreeMap<String, String>, other_namespace: bool| {
        peers.iter().any(|p| {
            let any_namespace = p["namespaceSelector"].as_mapping().is_some_and(|m| m.is_empty());
            (any_namespace || !other_namespace) && matches(&p["podSelector"], labels)
        })
    };
    assert!(admitted(&endpoint_pod, true), "endpoint pods in any namespace");
    assert!(admitted(&operator_pod, false), "the operator in the release namespace");
    assert!(!admitted(&operator_pod, true), "not pods labelled like the operator elsewhere");
    assert!(!admitted(&webhook_pod, false), "not the webhook");
    assert!(!admitted(&ca_labels, false), "nor anything else");
    let publication = rules.iter().find(|r| r["ports"][0]["port"].as_i64() == Some(8080)).unwrap();
    assert!(publication["from"].is_null(), "CA certificates and CRLs are public");
    let metrics = rules.iter().find(|r| r["ports"][0]["port"].as_i64() == Some(9090)).unwrap();
    let scrapers = metrics["from"].as_sequence().expect("metrics are not public");
    assert!(scrapers.iter().all(|p| p["namespaceSelector"].as_mapping().is_some_and(|m| m.is_empty())));
    assert!(scrapers.iter().all(|p| p.get("ipBlock").is_none()), "pods of the cluster only");
    assert!(!render(&["networkPolicy.enabled=false"]).contains_key("NetworkPolicy/pkiplane-ca"));
}

#[test]
fn the_webhook_configurations_are_the_ones_pkiplane_prints() {
    let dir = tempfile::tempdir().unwrap();
    let pem = "-----BEGIN CERTIFICATE-----\nMIIBdummy\n-----END CERTIFICATE-----\n";
    std::fs::write(dir.path().join("ca.crt"), pem).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_pkiplane"))
        .args(["webhook", "manifests", "--namespace", "pki-control", "--ca-bundle"])
        .arg(dir.path().join("ca.crt"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let bundle = base64_encode(pem.as_bytes());
    let objects = render_in("pki-control", &[&format!("webhook.caBundle={bundle}")]);
    let mut printed = 0;
    for doc in serde_yaml::Deserializer::from_slice(&out.stdout) {
        let mut want = Value::deserialize(doc).unwrap();
        let key = format!("{}/{}", want["kind"].as_str().unwrap(), want["metadata"]["name"].as_str().unwrap());
        let mut got = objects.get(&key).unwrap_or_else(|| panic!("the chart has no {key}")).clone();
        // Labels differ on purpose (the chart adds its release labels).
        for v in [&mut want, &mut got] {
            v["metadata"].as_mapping_mut().unwrap().remove("labels");
        }
        assert_eq!(got, want, "{key}");
        printed += 1;
    }
    assert_eq!(printed, 2);
    let without = render(&[]);
    let webhook = &without["ValidatingWebhookConfiguration/pkiplane-validating"]["webhooks"][0];
    assert!(webhook["clientConfig"]["caBundle"].is_null(), "no caBundle value: left to the operator");
}

fn base64_encode(bytes: &[u8]) -> String {
    serde_json::to_value(k8s_openapi::ByteString(bytes.to_vec())).unwrap().as_str().unwrap().to_string()
}

#[test]
fn the_release_namespace_is_used_throughout() {
    let objects = render_in("pki-control", &[]);
    let args = template(&objects, "pkiplane-operator").spec.unwrap().containers[0].args.clone().unwrap();
    assert!(args.contains(&"--ca-url=https://pkiplane-ca.pki-control.svc:9443".to_string()), "{args:?}");
    assert!(args.contains(&"--namespace=pki-control".to_string()));
    for (key, object) in &objects {
        if let Some(ns) = object["metadata"]["namespace"].as_str() {
            // The one exception: reading the API server's client CA is granted where it lives.
            if key == "RoleBinding/pkiplane-ca-client-ca-reader" {
                assert_eq!(ns, "kube-system");
                continue;
            }
            assert_eq!(ns, "pki-control", "{key}");
        }
    }
}

/// The admin API: its own port on the CA's container and Service (never the publication
/// port), the review permissions in the CA's ClusterRole, the example roles with the
/// verbs docs/operations/admin-api.md lists, aggregated; all gone when disabled.
#[test]
fn the_admin_api_has_its_port_reviews_and_example_roles() {
    let objects = render(&[]);
    let ca = template(&objects, "pkiplane-ca").spec.unwrap().containers[0].clone();
    assert!(ca.args.unwrap().contains(&"--admin-listen=0.0.0.0:8443".to_string()));
    let ports: Vec<_> = ca.ports.unwrap().iter().map(|p| (p.name.clone().unwrap(), p.container_port)).collect();
    assert!(ports.contains(&("admin".to_string(), 8443)), "{ports:?}");
    let service = &objects["Service/pkiplane-ca"]["spec"]["ports"];
    assert!(service.as_sequence().unwrap().iter().any(|p| p["name"] == "admin" && p["port"] == 8443), "{service:?}");
    let rules = serde_yaml::to_string(&objects["ClusterRole/pkiplane-ca"]["rules"]).unwrap();
    for want in ["tokenreviews", "subjectaccessreviews", "authentication.k8s.io", "authorization.k8s.io"] {
        assert!(rules.contains(want), "{want}: {rules}");
    }
    let role = |name: &str| objects[&format!("ClusterRole/{name}")].clone();
    let viewer = role("pkiplane-viewer");
    assert_eq!(viewer["rules"][0]["resources"][0], "certificates");
    assert_eq!(viewer["rules"][0]["resources"][1], "approvalrequests");
    assert_eq!(serde_yaml::to_string(&viewer["rules"][0]["verbs"]).unwrap().trim(), "- list\n- get");
    for agg in ["view", "edit", "admin"] {
        assert_eq!(
            viewer["metadata"]["labels"][format!("rbac.authorization.k8s.io/aggregate-to-{agg}").as_str()],
            "true"
        );
    }
    let revoker = serde_yaml::to_string(&role("pkiplane-revoker")["rules"]).unwrap();
    assert!(revoker.contains("revoke") && revoker.contains("sign-crl") && revoker.contains("issuers"), "{revoker}");
    assert_eq!(
        role("pkiplane-revoker")["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"],
        Value::Null
    );
    let approver = serde_yaml::to_string(&role("pkiplane-approver")["rules"]).unwrap();
    for want in ["approvalrequests", "approve", "deny"] {
        assert!(approver.contains(want), "{want}: {approver}");
    }
    assert!(!approver.contains("revoke"), "approving is not revoking: {approver}");
    let binding = &objects["RoleBinding/pkiplane-ca-client-ca-reader"];
    assert_eq!(binding["roleRef"]["name"], "extension-apiserver-authentication-reader");

    let off = render(&["ca.adminApi.enabled=false"]);
    let args = template(&off, "pkiplane-ca").spec.unwrap().containers[0].args.clone().unwrap();
    assert!(!args.iter().any(|a| a.starts_with("--admin-listen")), "{args:?}");
    assert!(!serde_yaml::to_string(&off["ClusterRole/pkiplane-ca"]).unwrap().contains("tokenreviews"));
    assert!(
        !off.contains_key("ClusterRole/pkiplane-viewer")
            && !off.contains_key("RoleBinding/pkiplane-ca-client-ca-reader")
    );
}

/// One version: the workspace's (Cargo), `pkiplane --version`, the chart's version and
/// appVersion, the operator's default image and the chart's image.
#[test]
fn the_version_is_the_same_everywhere() {
    let chart_yaml: Value =
        serde_yaml::from_str(&std::fs::read_to_string(chart().join("Chart.yaml")).unwrap()).unwrap();
    assert_eq!(chart_yaml["version"].as_str(), Some(VERSION), "Chart.yaml version vs the workspace version");
    assert_eq!(chart_yaml["appVersion"].as_str(), Some(VERSION), "Chart.yaml appVersion vs the workspace version");
    let out = Command::new(env!("CARGO_BIN_EXE_pkiplane")).arg("--version").output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("pkiplane {VERSION}"));
    assert_eq!(OperatorConfig::default_image(), format!("ghcr.io/pkiplane/pkiplane:{VERSION}"));
    let values: Value = serde_yaml::from_str(&std::fs::read_to_string(chart().join("values.yaml")).unwrap()).unwrap();
    let image = format!("{}:{VERSION}", values["image"]["repository"].as_str().unwrap());
    assert_eq!(image, OperatorConfig::default_image(), "the chart's image is the operator's default");
    let script = std::fs::read_to_string(root().join("scripts/image.sh")).unwrap();
    assert!(script.contains("ref=${ref:-ghcr.io/pkiplane/pkiplane:$version}"), "scripts/image.sh tags the same name");
}

fn yaml_files(dir: &Path, suffix: &str) -> BTreeMap<String, String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("dir entry").path())
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.ends_with(suffix)))
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read_to_string(&p).unwrap()))
        .collect()
}

/// Helm installs `crds/` before the templates; those files are copies of the generated
/// `crds/<plural>.pkiplane.dev.yaml` (kept fresh by a test in the api crate). Fix with
/// `charts/pkiplane/sync-crds.sh`.
#[test]
fn the_chart_ships_the_generated_crds() {
    let generated = yaml_files(&root().join("crds"), ".pkiplane.dev.yaml");
    let shipped = yaml_files(&chart().join("crds"), ".yaml");
    assert!(!generated.is_empty(), "no crds/*.pkiplane.dev.yaml");
    assert_eq!(
        shipped.keys().collect::<Vec<_>>(),
        generated.keys().collect::<Vec<_>>(),
        "charts/pkiplane/crds/ has other files than crds/: run charts/pkiplane/sync-crds.sh"
    );
    for (name, text) in &generated {
        assert!(shipped[name] == *text, "charts/pkiplane/crds/{name} is stale: run charts/pkiplane/sync-crds.sh");
    }
}
