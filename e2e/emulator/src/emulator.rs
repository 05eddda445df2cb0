//! The Deployment controller and kubelet stand-in, one reconcile pass at a time: for each
//! watched Deployment, run `spec.replicas` pods of the current template (new pods first,
//! old ones stopped as the new become ready), write its status; stop the pods of
//! Deployments that are gone; forward Service addresses; write pods.json.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::pods::{self, IpPool, Pod, PodRecord, Settings};
use crate::proxy::{self, Backend, Proxies};
use crate::status::{self, PodCounts};

/// How long to wait before retrying a pod that could not be created (a missing Secret).
const CREATE_RETRY: Duration = Duration::from_secs(2);

pub struct Emulator {
    client: Client,
    settings: Settings,
    pods: Vec<Pod>,
    /// Pods asked to stop, with their address (released once the process is gone).
    terminating: Vec<(Ipv4Addr, JoinHandle<()>)>,
    ips: IpPool,
    proxies: Proxies,
    /// Per Deployment uid: when pod creation last failed, and why.
    create_failures: HashMap<String, (Instant, String)>,
    /// Per Deployment uid: the status last written.
    written_status: HashMap<String, DeploymentStatus>,
    written_pods_json: Option<String>,
}

impl Emulator {
    pub fn new(client: Client, settings: Settings) -> Self {
        Self {
            client,
            settings,
            pods: Vec::new(),
            terminating: Vec::new(),
            ips: IpPool::new(std::process::id()),
            proxies: Proxies::default(),
            create_failures: HashMap::new(),
            written_status: HashMap::new(),
            written_pods_json: None,
        }
    }

    pub async fn reconcile(&mut self, deployments: &[Arc<Deployment>], services: &[Arc<Service>]) {
        let live: Vec<&Arc<Deployment>> =
            deployments.iter().filter(|d| d.metadata.deletion_timestamp.is_none()).collect();
        let live_uids: HashSet<&str> = live.iter().filter_map(|d| d.metadata.uid.as_deref()).collect();
        let gone: Vec<usize> =
            (0..self.pods.len()).filter(|&i| !live_uids.contains(self.pods[i].deployment_uid.as_str())).collect();
        if !gone.is_empty() {
            tracing::info!(pods = gone.len(), "Deployment gone: stopping its pods");
        }
        self.stop_pods(gone);
        self.written_status.retain(|uid, _| live_uids.contains(uid.as_str()));
        self.create_failures.retain(|uid, _| live_uids.contains(uid.as_str()));

        for deploy in live {
            self.reconcile_deployment(deploy).await;
        }

        self.reap_terminated();
        let backends: Vec<Backend> = self
            .pods
            .iter()
            .map(|p| Backend {
                namespace: p.namespace.clone(),
                labels: p.labels.clone(),
                ip: p.ip,
                ready: p.runtime().ready,
                ports: p.ports.clone(),
            })
            .collect();
        let routes = proxy::routes(services, &backends);
        self.proxies.set_backends(backends);
        self.proxies.sync(routes);
        self.write_pods_json();
    }

    async fn reconcile_deployment(&mut self, deploy: &Deployment) {
        let uid = deploy.metadata.uid.clone().unwrap_or_default();
        let Some(spec) = &deploy.spec else { return };
        let replicas = spec.replicas.unwrap_or(1).max(0) as usize;
        let hash = pods::template_hash(&spec.template);
        let mine = |pods: &[Pod], current: bool| -> Vec<usize> {
            (0..pods.len())
                .filter(|&i| pods[i].deployment_uid == uid && (pods[i].template_hash == hash) == current)
                .collect()
        };

        // Scale the current template's pods to spec.replicas.
        let current = mine(&self.pods, true);
        if current.len() < replicas {
            self.create_pods(deploy, &uid, &hash, replicas - current.len()).await;
        } else if current.len() > replicas {
            let excess = current.len() - replicas;
            self.stop_pods(self.least_ready_first(current).into_iter().take(excess).collect());
        }

        // Keep old pods only while the new ones are not all ready (a rolling update with
        // maxSurge covering the whole new set).
        let ready_current = mine(&self.pods, true).iter().filter(|&&i| self.pods[i].runtime().ready).count();
        let old = mine(&self.pods, false);
        let keep_old = replicas.saturating_sub(ready_current);
        if old.len() > keep_old {
            let stop = old.len() - keep_old;
            tracing::info!(deployment = ?deploy.metadata.name, stop, "rollout: stopping old pods");
            self.stop_pods(self.least_ready_first(old).into_iter().take(stop).collect());
        }

        let all = self.pods.iter().filter(|p| p.deployment_uid == uid);
        let mut counts = PodCounts::default();
        for pod in all {
            let ready = pod.runtime().ready;
            let updated = pod.template_hash == hash;
            counts.total += 1;
            counts.updated += i32::from(updated);
            counts.ready += i32::from(ready);
            counts.updated_ready += i32::from(ready && updated);
        }
        self.write_status(deploy, &uid, counts).await;
    }

    async fn create_pods(&mut self, deploy: &Deployment, uid: &str, hash: &str, count: usize) {
        if let Some((at, _)) = self.create_failures.get(uid)
            && at.elapsed() < CREATE_RETRY
        {
            return;
        }
        for _ in 0..count {
            let ip = match self.ips.allocate() {
                Ok(ip) => ip,
                Err(e) => {
                    tracing::error!("{e}");
                    return;
                }
            };
            match pods::create(&self.client, &self.settings, deploy, hash, ip).await {
                Ok(pod) => {
                    self.create_failures.remove(uid);
                    self.pods.push(pod);
                }
                Err(e) => {
                    self.ips.release(ip);
                    let message = format!("{e:#}");
                    let repeated = self.create_failures.get(uid).is_some_and(|(_, m)| *m == message);
                    if !repeated {
                        tracing::warn!(
                            namespace = ?deploy.metadata.namespace,
                            deployment = ?deploy.metadata.name,
                            "cannot create a pod yet (retrying every {}s): {message}",
                            CREATE_RETRY.as_secs()
                        );
                    }
                    self.create_failures.insert(uid.to_string(), (Instant::now(), message));
                    return;
                }
            }
        }
    }

    fn least_ready_first(&self, mut indices: Vec<usize>) -> Vec<usize> {
        // Not-ready pods first, then the newest (last created) first.
        indices.sort_by_key(|&i| (self.pods[i].runtime().ready, std::cmp::Reverse(i)));
        indices
    }

    fn stop_pods(&mut self, mut indices: Vec<usize>) {
        indices.sort_unstable();
        for i in indices.into_iter().rev() {
            let pod = self.pods.remove(i);
            tracing::info!(namespace = %pod.namespace, pod = %pod.name, "stopping pod");
            self.terminating.push((pod.ip, pod.process.stop()));
        }
    }

    fn reap_terminated(&mut self) {
        let (done, running): (Vec<_>, Vec<_>) = self.terminating.drain(..).partition(|(_, task)| task.is_finished());
        for (ip, _) in done {
            self.ips.release(ip);
        }
        self.terminating = running;
    }

    async fn write_status(&mut self, deploy: &Deployment, uid: &str, counts: PodCounts) {
        let new = status::desired(deploy, counts, Timestamp::now());
        let already_written = self.written_status.get(uid).is_some_and(|w| !status::changed(Some(w), &new));
        if !status::changed(deploy.status.as_ref(), &new) || already_written {
            return;
        }
        let namespace = deploy.metadata.namespace.as_deref().unwrap_or_default();
        let name = deploy.metadata.name.as_deref().unwrap_or_default();
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), namespace);
        let patch = serde_json::json!({ "status": new });
        match api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch)).await {
            Ok(_) => {
                tracing::info!(
                    %namespace, %name,
                    replicas = counts.total, updated = counts.updated, ready = counts.ready,
                    "status written"
                );
                self.written_status.insert(uid.to_string(), new);
            }
            Err(e) => tracing::warn!(%namespace, %name, "writing the Deployment status: {e}"),
        }
    }

    fn write_pods_json(&mut self) {
        let records: Vec<PodRecord> = self.pods.iter().map(Pod::record).collect();
        let json = serde_json::to_string_pretty(&records).unwrap_or_else(|_| "[]".into());
        if self.written_pods_json.as_deref() == Some(json.as_str()) {
            return;
        }
        let path = self.settings.state_dir.join("pods.json");
        let tmp = self.settings.state_dir.join(".pods.json.tmp");
        match std::fs::write(&tmp, format!("{json}\n")).and_then(|()| std::fs::rename(&tmp, &path)) {
            Ok(()) => self.written_pods_json = Some(json),
            Err(e) => tracing::warn!("writing {}: {e}", path.display()),
        }
    }

    /// Stops every pod and listener and waits for the processes to exit.
    pub async fn shutdown(&mut self) {
        let all = (0..self.pods.len()).collect();
        self.stop_pods(all);
        self.proxies.stop_all();
        for (_, task) in self.terminating.drain(..) {
            let _ = task.await;
        }
        self.write_pods_json();
    }
}
