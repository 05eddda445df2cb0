//! The emulator against the real harness (ignored by default: it needs a cluster):
//!
//!   e2e/cluster.sh run -- cargo test -p pkiplane-kubelet-emulator --test cluster -- --ignored
//!
//! A Deployment running `python3 -m http.server` over a ConfigMap volume, behind a Service:
//! the emulator runs it (readyReplicas 1), the ClusterIP serves the ConfigMap's file, a
//! template change rolls out a new pod, replicas scale, and deleting the Deployment stops
//! its pods. Every wait has a timeout; nothing asserts on durations.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(90);

struct EmulatorProcess(Child);

impl Drop for EmulatorProcess {
    fn drop(&mut self) {
        // SIGTERM, so that it stops its pods; then make sure.
        let _ = Command::new("kill").arg("-TERM").arg(self.0.id().to_string()).status();
        for _ in 0..100 {
            if matches!(self.0.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
    }
}

fn state_dir() -> PathBuf {
    PathBuf::from(std::env::var("PKIPLANE_E2E_DIR").expect("run under e2e/cluster.sh run (PKIPLANE_E2E_DIR unset)"))
}

async fn wait_for<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out after {WAIT:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn http_get(addr: &str, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(addr).await.ok()?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await.ok()?;
    let mut body = String::new();
    stream.read_to_string(&mut body).await.ok()?;
    let (head, body) = body.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.0 200").then(|| body.to_string())
}

fn pods_of(state: &Path, deployment: &str, namespace: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(state.join("pods.json")).unwrap_or_else(|_| "[]".into());
    let pods: Vec<Value> = serde_json::from_str(&text).unwrap_or_default();
    pods.into_iter().filter(|p| p["deployment"] == deployment && p["namespace"] == namespace).collect()
}

/// A namespace of its own and an emulator of its own (state dir inside the cluster's,
/// selector `emulator-test=<name>`), so tests can run side by side.
async fn setup(name: &str) -> (Client, String, PathBuf, EmulatorProcess) {
    let client = Client::try_default().await.expect("KUBECONFIG");
    let ns = format!("emulator-{name}-{}", std::process::id());
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap())
        .await
        .expect("namespace");
    let state = state_dir().join(&ns);
    std::fs::create_dir_all(&state).unwrap();
    let log = std::fs::File::create(state_dir().join("logs").join(format!("{ns}-emulator.log"))).unwrap();
    let emulator = EmulatorProcess(
        Command::new(env!("CARGO_BIN_EXE_kubelet-emulator"))
            .args(["--selector", &format!("emulator-test={name}"), "--state-dir"])
            .arg(&state)
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("starting kubelet-emulator"),
    );
    (client, ns, state, emulator)
}

fn deployment(namespace: &str, version: &str, replicas: i32) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": namespace, "labels": {"emulator-test": "rollout"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}, "annotations": {"test/version": version}},
                "spec": {
                    "containers": [{
                        "name": "web",
                        "image": "ignored",
                        "command": ["/usr/bin/python3", "-m", "http.server"],
                        "args": ["$(PORT)", "--bind", "0.0.0.0", "--directory", "/srv/www"],
                        "env": [
                            {"name": "PORT", "value": "8000"},
                            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
                        ],
                        "ports": [{"name": "http", "containerPort": 8000}],
                        "volumeMounts": [
                            {"name": "www", "mountPath": "/srv/www"},
                            {"name": "kube-api-access", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}
                        ],
                        "readinessProbe": {"httpGet": {"path": "/index.html", "port": "http"}, "periodSeconds": 1}
                    }],
                    "volumes": [
                        {"name": "www", "configMap": {"name": format!("www-{version}")}},
                        {"name": "kube-api-access", "projected": {"sources": [
                            {"serviceAccountToken": {"path": "token", "audience": "emulator-test", "expirationSeconds": 3600}},
                            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]}}
                        ]}}
                    ]
                }
            }
        }
    }))
    .expect("deployment")
}

fn config_map(namespace: &str, version: &str) -> ConfigMap {
    serde_json::from_value(json!({
        "metadata": {"name": format!("www-{version}"), "namespace": namespace},
        "data": {"index.html": format!("hello from {version}\n")}
    }))
    .expect("configmap")
}

async fn status_of(api: &Api<Deployment>) -> Option<(i64, Value)> {
    let d = api.get("web").await.ok()?;
    let generation = d.metadata.generation?;
    Some((generation, serde_json::to_value(d.status?).ok()?))
}

/// Waits until the status observed the current generation with these counts.
async fn wait_status(api: &Api<Deployment>, replicas: i64, ready: i64) {
    wait_for(&format!("status replicas={replicas} ready={ready} updated={replicas}"), || async {
        let (generation, s) = status_of(api).await?;
        (s["observedGeneration"] == generation
            && s["replicas"] == replicas
            && s["readyReplicas"] == ready
            && s["updatedReplicas"] == replicas
            && s["availableReplicas"] == ready)
            .then_some(())
    })
    .await;
}

#[tokio::test]
#[ignore = "needs the e2e harness: e2e/cluster.sh run -- cargo test -p pkiplane-kubelet-emulator --test cluster -- --ignored"]
async fn runs_forwards_rolls_out_scales_and_stops_a_deployment() {
    let (client, ns, state, _emulator) = setup("rollout").await;
    let namespaces: Api<Namespace> = Api::all(client.clone());

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let services: Api<Service> = Api::namespaced(client.clone(), &ns);
    let pp = PostParams::default();
    config_maps.create(&pp, &config_map(&ns, "v1")).await.unwrap();
    deployments.create(&pp, &deployment(&ns, "v1", 1)).await.unwrap();
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": ns},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "http"}]}
    }))
    .unwrap();
    let svc = services.create(&pp, &svc).await.unwrap();
    let cluster_ip = svc.spec.unwrap().cluster_ip.unwrap();
    let service_addr = format!("{cluster_ip}:80");

    // Runs: the status says one ready replica, the Service address serves the file.
    wait_status(&deployments, 1, 1).await;
    let (_, status) = status_of(&deployments).await.unwrap();
    let conditions: Vec<(String, String)> = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["type"].as_str().unwrap().into(), c["status"].as_str().unwrap().into()))
        .collect();
    assert!(conditions.contains(&("Available".into(), "True".into())), "{conditions:?}");
    let first = pods_of(&state, "web", &ns);
    assert_eq!(first.len(), 1, "{first:?}");
    assert!(first[0]["address"].as_str().unwrap().starts_with("127.64."), "{first:?}");
    let body = wait_for("the ClusterIP to serve v1", || http_get(&service_addr, "/index.html")).await;
    assert_eq!(body, "hello from v1\n");

    // The projected volume: a TokenRequest token for the audience, the cluster CA, the namespace.
    let volume = state.join("pods").join(&ns).join(first[0]["pod"].as_str().unwrap()).join("volumes/kube-api-access");
    let token = std::fs::read_to_string(volume.join("token")).unwrap();
    let claims = token.split('.').nth(1).expect("a JWT");
    let decoded = Command::new("sh")
        .arg("-c")
        .arg("tr '_-' '/+' | { b=$(cat); while [ $(( ${#b} % 4 )) != 0 ]; do b=\"$b=\"; done; printf %s \"$b\" | base64 -d; }")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(claims.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    let claims: Value = serde_json::from_slice(&decoded.stdout).unwrap();
    assert_eq!(claims["aud"], json!(["emulator-test"]), "{claims}");
    assert_eq!(claims["sub"], format!("system:serviceaccount:{ns}:default"));
    let ca = std::fs::read_to_string(volume.join("ca.crt")).unwrap();
    assert_eq!(ca, std::fs::read_to_string(std::env::var("PKIPLANE_E2E_CA").unwrap()).unwrap());
    assert_eq!(std::fs::read_to_string(volume.join("namespace")).unwrap(), ns);

    // Rollout: a new template (new ConfigMap, new annotation) replaces the pod.
    config_maps.create(&pp, &config_map(&ns, "v2")).await.unwrap();
    let spec = serde_json::to_value(deployment(&ns, "v2", 1)).unwrap();
    deployments.patch("web", &PatchParams::default(), &Patch::Merge(json!({"spec": spec["spec"]}))).await.unwrap();
    wait_for("the old pod to be replaced", || async {
        let pods = pods_of(&state, "web", &ns);
        (pods.len() == 1 && pods[0]["pod"] != first[0]["pod"] && pods[0]["ready"] == true).then_some(())
    })
    .await;
    wait_status(&deployments, 1, 1).await;
    let body = wait_for("the ClusterIP to serve v2", || async {
        http_get(&service_addr, "/index.html").await.filter(|b| b.contains("v2"))
    })
    .await;
    assert_eq!(body, "hello from v2\n");

    // Scale to two pods on two addresses.
    deployments.patch("web", &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": 2}}))).await.unwrap();
    wait_status(&deployments, 2, 2).await;
    let pods = pods_of(&state, "web", &ns);
    assert_eq!(pods.len(), 2, "{pods:?}");
    assert_ne!(pods[0]["address"], pods[1]["address"]);
    let log = std::fs::read_to_string(pods[0]["log"].as_str().unwrap()).unwrap();
    assert!(log.contains("kubelet-emulator: starting"), "{log}");

    // Delete: the pods stop and the Service address no longer answers.
    deployments.delete("web", &DeleteParams::default()).await.unwrap();
    wait_for("the pods to stop", || async { pods_of(&state, "web", &ns).is_empty().then_some(()) }).await;
    wait_for("the ClusterIP to stop forwarding", || async {
        http_get(&service_addr, "/index.html").await.is_none().then_some(())
    })
    .await;

    namespaces.delete(&ns, &DeleteParams::default()).await.unwrap();
}

#[tokio::test]
#[ignore = "needs the e2e harness: e2e/cluster.sh run -- cargo test -p pkiplane-kubelet-emulator --test cluster -- --ignored"]
async fn restarts_exited_processes_and_failed_liveness() {
    let (client, ns, state, _emulator) = setup("restarts").await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let container = |name: &str, command: Value, liveness: Value| {
        json!({
            "metadata": {"name": name, "namespace": ns, "labels": {"emulator-test": "restarts"}},
            "spec": {
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{"name": "c", "image": "ignored", "command": command, "livenessProbe": liveness}]}
                }
            }
        })
    };
    // Exits at once: restarted with a backoff, the exit status recorded.
    let exits = container("exits", json!(["/bin/sh", "-c", "exit 3"]), Value::Null);
    // Runs, but nothing answers its liveness port: killed and restarted.
    let unhealthy = container(
        "unhealthy",
        json!(["/bin/sleep", "600"]),
        json!({"tcpSocket": {"port": 9}, "periodSeconds": 1, "failureThreshold": 2}),
    );
    for d in [exits, unhealthy] {
        deployments.create(&PostParams::default(), &serde_json::from_value(d).unwrap()).await.unwrap();
    }
    for (name, why) in [("exits", "exit status: 3"), ("unhealthy", "liveness probe failed")] {
        let pod = wait_for(&format!("{name} restarted"), || async {
            pods_of(&state, name, &ns).into_iter().find(|p| p["restarts"].as_u64().unwrap_or(0) >= 1)
        })
        .await;
        assert!(pod["lastExit"].as_str().unwrap_or_default().contains(why), "{pod}");
    }
    Api::<Namespace>::all(client).delete(&ns, &DeleteParams::default()).await.unwrap();
}
