//! `kubelet-emulator`: the e2e harness's stand-in for the kubelet, the Deployment
//! controller and kube-proxy (e2e/README.md, "Pod emulation"). It runs the pods of the
//! Deployments matching `--selector` as local processes, each on its own 127.64.x.y
//! address, forwards the ClusterIP of each Service selecting them, and writes the
//! Deployments' status. Runs until SIGTERM/SIGINT, then stops its pods.
#![forbid(unsafe_code)]

mod emulator;
mod env;
mod pods;
mod probes;
mod process;
mod proxy;
mod rewrite;
mod status;
mod volumes;
mod watch;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;

#[derive(Debug, Parser)]
#[command(name = "kubelet-emulator", about = "Runs the pods of labelled Deployments as local processes (e2e harness)")]
struct Args {
    /// Label selector of the Deployments to run.
    #[arg(long, default_value = "app.kubernetes.io/managed-by=pkiplane-operator")]
    selector: String,
    /// The cluster's state dir: pods under pods/, logs under logs/pods/, pods.json.
    #[arg(long, env = "PKIPLANE_E2E_DIR")]
    state_dir: PathBuf,
    /// The binary that replaces a container command whose last path element is `pkiplane`.
    #[arg(long, env = "PKIPLANE_BIN", default_value = "target/debug/pkiplane")]
    pkiplane_bin: PathBuf,
    /// The image entrypoint, run when a container sets no `command`.
    #[arg(long, default_value = "pkiplane")]
    default_entrypoint: String,
    /// Upper bound of a probe's period (the kubelet's default is 10 s).
    #[arg(long, default_value_t = 1000)]
    max_probe_period_ms: u64,
    /// Upper bound of a pod's termination grace period (below `cluster.sh stop`'s 10 s,
    /// so that the emulator stops its pods before it is killed itself).
    #[arg(long, default_value_t = 5)]
    max_grace_seconds: u64,
    /// Reconcile at least this often (probes change readiness without API events).
    #[arg(long, default_value_t = 500)]
    resync_ms: u64,
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("EMULATOR_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(false)
        .init();
    let args = Args::parse();
    if !args.state_dir.is_dir() {
        bail!("--state-dir {} is not a directory", args.state_dir.display());
    }
    let state_dir = std::fs::canonicalize(&args.state_dir)?;
    // Pods run in their own directories: the binary's path must not be relative.
    let pkiplane_bin = std::path::absolute(&args.pkiplane_bin).context("resolving --pkiplane-bin")?;
    if !pkiplane_bin.exists() {
        tracing::warn!("{} does not exist (yet): pods running pkiplane will fail to start", pkiplane_bin.display());
    }
    let settings = pods::Settings {
        state_dir,
        pkiplane_bin,
        default_entrypoint: args.default_entrypoint,
        max_probe_period: Duration::from_millis(args.max_probe_period_ms),
        max_grace: Duration::from_secs(args.max_grace_seconds),
    };
    let client = kube::Client::try_default().await.context("connecting to the API server (KUBECONFIG)")?;
    watch::run(client, settings, &args.selector, Duration::from_millis(args.resync_ms)).await
}
