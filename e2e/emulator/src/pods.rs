//! An emulated pod: created from a Deployment's pod template (volumes materialized,
//! environment resolved, command rewritten), run as a local process, listed in
//! `$PKIPLANE_E2E_DIR/pods.json`.

use std::collections::{BTreeMap, HashSet};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ContainerPort, PodTemplateSpec};
use kube::Client;
use serde::Serialize;

use crate::env::{self, PodIdentity};
use crate::probes::ProbeSpec;
use crate::process::{Launch, PodProcess, Runtime};
use crate::rewrite::{self, MountMap};
use crate::volumes;

/// How pods are built, from the command line.
#[derive(Debug, Clone)]
pub struct Settings {
    pub state_dir: PathBuf,
    pub pkiplane_bin: PathBuf,
    pub default_entrypoint: String,
    pub max_probe_period: Duration,
    pub max_grace: Duration,
}

pub struct Pod {
    pub namespace: String,
    pub deployment: String,
    pub deployment_uid: String,
    pub name: String,
    pub template_hash: String,
    pub ip: Ipv4Addr,
    pub labels: BTreeMap<String, String>,
    pub ports: Vec<ContainerPort>,
    pub log_path: PathBuf,
    pub process: PodProcess,
}

/// One line of pods.json.
#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PodRecord {
    pub namespace: String,
    pub deployment: String,
    pub pod: String,
    pub address: Ipv4Addr,
    pub ports: Vec<PortRecord>,
    pub pid: Option<u32>,
    pub ready: bool,
    pub restarts: u32,
    pub last_exit: Option<String>,
    pub template_hash: String,
    pub log: PathBuf,
}

#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PortRecord {
    pub name: Option<String>,
    pub container_port: i32,
}

impl Pod {
    pub fn runtime(&self) -> Runtime {
        self.process.runtime()
    }

    pub fn record(&self) -> PodRecord {
        let rt = self.runtime();
        PodRecord {
            namespace: self.namespace.clone(),
            deployment: self.deployment.clone(),
            pod: self.name.clone(),
            address: self.ip,
            ports: self
                .ports
                .iter()
                .map(|p| PortRecord { name: p.name.clone(), container_port: p.container_port })
                .collect(),
            pid: rt.pid,
            ready: rt.ready,
            restarts: rt.restarts,
            last_exit: rt.last_exit,
            template_hash: self.template_hash.clone(),
            log: self.log_path.clone(),
        }
    }
}

/// A stable hash of the pod template (FNV-1a over its JSON), the stand-in for the
/// ReplicaSet's pod-template-hash: a changed template means new pods.
pub fn template_hash(template: &PodTemplateSpec) -> String {
    let json = serde_json::to_vec(template).unwrap_or_default();
    let hash = json.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3));
    format!("{:010x}", hash & 0xff_ffff_ffff)
}

/// Pod addresses from 127.64.0.0/16, each in use by one pod at a time.
pub struct IpPool {
    next: u32,
    used: HashSet<Ipv4Addr>,
}

impl IpPool {
    /// Starts at an offset derived from `seed` so that emulators of clusters running side
    /// by side rarely hand out the same addresses.
    pub fn new(seed: u32) -> Self {
        Self { next: seed.wrapping_mul(2_654_435_761) % 0xfe00, used: HashSet::new() }
    }

    pub fn allocate(&mut self) -> Result<Ipv4Addr> {
        for _ in 0..0x10000 {
            self.next = (self.next + 1) % 0x10000;
            let [_, _, hi, lo] = self.next.to_be_bytes();
            if lo == 0 || lo == 255 || (hi == 0 && lo == 1) {
                continue;
            }
            let ip = Ipv4Addr::new(127, 64, hi, lo);
            if self.used.insert(ip) {
                return Ok(ip);
            }
        }
        Err(anyhow!("no free pod address in 127.64.0.0/16"))
    }

    pub fn release(&mut self, ip: Ipv4Addr) {
        self.used.remove(&ip);
    }
}

fn pod_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut n = COUNTER.fetch_add(1, Ordering::Relaxed).wrapping_mul(7919) + u64::from(std::process::id());
    (0..5)
        .map(|_| {
            let c = ALPHABET[(n % ALPHABET.len() as u64) as usize] as char;
            n /= ALPHABET.len() as u64;
            c
        })
        .collect()
}

/// Creates and starts a pod of `deploy` at `ip`: materializes its volumes, resolves its
/// environment, rewrites its command and starts the process.
pub async fn create(
    client: &Client,
    settings: &Settings,
    deploy: &Deployment,
    hash: &str,
    ip: Ipv4Addr,
) -> Result<Pod> {
    let namespace = deploy.metadata.namespace.clone().unwrap_or_default();
    let deployment = deploy.metadata.name.clone().unwrap_or_default();
    let template = deploy.spec.as_ref().map(|s| &s.template).ok_or_else(|| anyhow!("Deployment without spec"))?;
    let spec = template.spec.as_ref().ok_or_else(|| anyhow!("pod template without spec"))?;
    let container = spec.containers.first().ok_or_else(|| anyhow!("pod template without containers"))?;
    if spec.containers.len() > 1 || spec.init_containers.as_ref().is_some_and(|c| !c.is_empty()) {
        tracing::warn!(%namespace, %deployment, "only the first container is emulated; others and init containers are ignored");
    }
    let meta = template.metadata.clone().unwrap_or_default();
    let name = format!("{deployment}-{hash}-{}", pod_suffix());
    let pod = PodIdentity {
        namespace: namespace.clone(),
        name: name.clone(),
        ip,
        service_account: spec.service_account_name.clone().unwrap_or_else(|| "default".into()),
        labels: meta.labels.unwrap_or_default(),
        annotations: meta.annotations.unwrap_or_default(),
    };

    let pod_dir = settings.state_dir.join("pods").join(&namespace).join(&name);
    let volumes_dir = pod_dir.join("volumes");
    std::fs::create_dir_all(&volumes_dir).with_context(|| format!("creating {}", volumes_dir.display()))?;
    volumes::materialize(client, &pod, spec, &volumes_dir).await?;
    let declared: HashSet<&str> = spec.volumes.iter().flatten().map(|v| v.name.as_str()).collect();
    let mut mounts = Vec::new();
    for mount in container.volume_mounts.iter().flatten() {
        if !declared.contains(mount.name.as_str()) {
            return Err(anyhow!("volumeMount {} names no volume of the pod", mount.name));
        }
        mounts.push((mount.mount_path.clone(), volumes::mount_host_path(&volumes_dir, mount)?));
    }
    let mounts = MountMap::new(mounts);

    let env: Vec<(String, String)> = env::resolve(client, &pod, container)
        .await?
        .into_iter()
        .map(|(k, v)| (k, rewrite::rewrite_any_address(&mounts.rewrite(&v), ip)))
        .collect();
    let (program, args) = rewrite::program_and_args(
        container.command.as_deref().unwrap_or(&[]),
        container.args.as_deref().unwrap_or(&[]),
        &settings.default_entrypoint,
        &settings.pkiplane_bin,
    );
    let program = mounts.rewrite(&rewrite::expand_vars(&program, &env));
    let args: Vec<String> = args.iter().map(|a| rewrite::rewrite_value(a, &env, &mounts, ip)).collect();

    let ports = container.ports.clone().unwrap_or_default();
    let probe = |p: Option<&k8s_openapi::api::core::v1::Probe>, what: &str| -> Result<Option<ProbeSpec>> {
        p.map(|p| ProbeSpec::from_k8s(p, &ports, settings.max_probe_period).map_err(|e| anyhow!("{what} probe: {e}")))
            .transpose()
    };
    let readiness = probe(container.readiness_probe.as_ref(), "readiness")?;
    let liveness = probe(container.liveness_probe.as_ref(), "liveness")?;
    let cwd = match container.working_dir.as_deref().map(|d| mounts.rewrite(d)) {
        Some(dir) if std::path::Path::new(&dir).is_dir() => PathBuf::from(dir),
        _ => pod_dir.clone(),
    };
    let logs_dir = settings.state_dir.join("logs").join("pods");
    std::fs::create_dir_all(&logs_dir).with_context(|| format!("creating {}", logs_dir.display()))?;
    let log_path = logs_dir.join(format!("{namespace}_{name}.log"));
    let grace =
        Duration::from_secs(spec.termination_grace_period_seconds.unwrap_or(30).max(0) as u64).min(settings.max_grace);

    tracing::info!(%namespace, %deployment, pod = %name, %ip, %program, ?args, "starting pod");
    let process = PodProcess::start(Launch {
        pod: name.clone(),
        program,
        args,
        env,
        cwd,
        log_path: log_path.clone(),
        ip,
        readiness,
        liveness,
        grace,
    });
    Ok(Pod {
        namespace,
        deployment,
        deployment_uid: deploy.metadata.uid.clone().unwrap_or_default(),
        name,
        template_hash: hash.to_string(),
        ip,
        labels: pod.labels,
        ports,
        log_path,
        process,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_unique_loopback_pod_addresses() {
        let mut pool = IpPool::new(0);
        let mut seen = HashSet::new();
        for _ in 0..600 {
            let ip = pool.allocate().unwrap();
            let [a, b, _, d] = ip.octets();
            assert_eq!((a, b), (127, 64));
            assert!(d != 0 && d != 255);
            assert!(seen.insert(ip));
        }
        let first = *seen.iter().next().unwrap();
        pool.release(first);
        assert!(pool.used.len() == 599);
    }

    #[test]
    fn template_hash_follows_the_template() {
        let mut t = PodTemplateSpec::default();
        let a = template_hash(&t);
        assert_eq!(a.len(), 10);
        assert_eq!(a, template_hash(&t.clone()));
        t.metadata = Some(kube::api::ObjectMeta {
            annotations: Some([("pkiplane.dev/config-hash".to_string(), "x".to_string())].into()),
            ..Default::default()
        });
        assert_ne!(a, template_hash(&t));
    }

    #[test]
    fn pod_names_get_distinct_suffixes() {
        let a = pod_suffix();
        let b = pod_suffix();
        assert_eq!(a.len(), 5);
        assert_ne!(a, b);
    }
}
