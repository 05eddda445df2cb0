//! One emulated pod's process: started in its own process group with its log file,
//! probed, restarted when it exits or fails its liveness probe (restartPolicy Always, with
//! a short backoff), and stopped with SIGTERM, then SIGKILL after the grace period.

use std::fs::OpenOptions;
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, sleep_until, timeout};

use crate::probes::{ProbeSpec, Thresholds};

/// Variables passed from the emulator's own environment to every pod (a container gets
/// its image's environment; these are what a local process needs to run at all).
const INHERITED_ENV: &[&str] = &["PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "RUST_LOG", "RUST_BACKTRACE"];
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Everything needed to (re)start a pod's process.
#[derive(Debug, Clone)]
pub struct Launch {
    pub pod: String,
    pub program: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
    pub log_path: PathBuf,
    pub ip: Ipv4Addr,
    pub readiness: Option<ProbeSpec>,
    pub liveness: Option<ProbeSpec>,
    pub grace: Duration,
}

/// What the emulator reports about a pod's process.
#[derive(Debug, Clone, Default)]
pub struct Runtime {
    pub pid: Option<u32>,
    pub ready: bool,
    pub restarts: u32,
    pub last_exit: Option<String>,
}

pub struct PodProcess {
    runtime: Arc<Mutex<Runtime>>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl PodProcess {
    pub fn start(launch: Launch) -> Self {
        let runtime = Arc::new(Mutex::new(Runtime::default()));
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(supervise(launch, runtime.clone(), stop_rx));
        Self { runtime, stop, task }
    }

    pub fn runtime(&self) -> Runtime {
        self.runtime.lock().expect("runtime lock").clone()
    }

    /// Asks the process to stop; the returned task finishes once it has exited.
    pub fn stop(self) -> JoinHandle<()> {
        self.runtime.lock().expect("runtime lock").ready = false;
        let _ = self.stop.send(true);
        self.task
    }
}

enum Ended {
    Stopped,
    Exited(String),
    LivenessFailed,
}

async fn supervise(launch: Launch, runtime: Arc<Mutex<Runtime>>, mut stop: watch::Receiver<bool>) {
    let mut backoff = Duration::from_secs(1);
    loop {
        let started = Instant::now();
        let ended = match spawn(&launch) {
            Ok(child) => {
                runtime.lock().expect("runtime lock").pid = child.id();
                run(&launch, child, &runtime, &mut stop).await
            }
            Err(e) => Ended::Exited(format!("failed to start {}: {e}", launch.program)),
        };
        let why = match ended {
            Ended::Stopped => return,
            Ended::Exited(why) => why,
            Ended::LivenessFailed => "liveness probe failed".to_string(),
        };
        {
            let mut rt = runtime.lock().expect("runtime lock");
            rt.pid = None;
            rt.ready = false;
            rt.last_exit = Some(why.clone());
            rt.restarts += 1;
        }
        log_line(&launch, &format!("{why}; restarting in {}s", backoff.as_secs()));
        if started.elapsed() > MAX_BACKOFF {
            backoff = Duration::from_secs(1);
        }
        tokio::select! {
            _ = sleep(backoff) => {}
            _ = stop.changed() => return,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

fn spawn(launch: &Launch) -> std::io::Result<Child> {
    let log = OpenOptions::new().create(true).append(true).open(&launch.log_path)?;
    let mut header = log.try_clone()?;
    writeln!(header, "--- kubelet-emulator: starting {} {}", launch.program, launch.args.join(" "))?;
    let mut cmd = Command::new(&launch.program);
    cmd.args(&launch.args)
        .env_clear()
        .envs(INHERITED_ENV.iter().filter_map(|k| std::env::var(k).ok().map(|v| (*k, v))))
        .env("HOSTNAME", &launch.pod)
        .envs(launch.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .current_dir(&launch.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone()?))
        .stderr(Stdio::from(log))
        .process_group(0)
        .kill_on_drop(true);
    cmd.spawn()
}

fn log_line(launch: &Launch, line: &str) {
    if let Ok(mut f) = OpenOptions::new().create(true).append(true).open(&launch.log_path) {
        let _ = writeln!(f, "--- kubelet-emulator: {line}");
    }
    tracing::info!(pod = %launch.pod, "{line}");
}

/// Waits for the process to exit, to fail liveness, or for a stop request, polling the
/// probes in between.
async fn run(launch: &Launch, mut child: Child, runtime: &Mutex<Runtime>, stop: &mut watch::Receiver<bool>) -> Ended {
    let start = Instant::now();
    let mut next_readiness = launch.readiness.as_ref().map(|p| start + p.initial_delay);
    let mut next_liveness = launch.liveness.as_ref().map(|p| start + p.initial_delay);
    let mut readiness_state = Thresholds::default();
    let mut liveness_state = Thresholds::default();
    if launch.readiness.is_none() {
        runtime.lock().expect("runtime lock").ready = true;
    }
    loop {
        let next_probe = [next_readiness, next_liveness].into_iter().flatten().min();
        let probe_due = async {
            match next_probe {
                Some(at) => sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            status = child.wait() => {
                return Ended::Exited(match status {
                    Ok(s) => format!("process exited ({s})"),
                    Err(e) => format!("waiting for the process: {e}"),
                });
            }
            _ = stop.changed() => {
                terminate(launch, &mut child).await;
                return Ended::Stopped;
            }
            _ = probe_due => {
                let now = Instant::now();
                if let (Some(probe), Some(at)) = (&launch.readiness, next_readiness)
                    && at <= now
                {
                    let ok = probe.check(launch.ip).await;
                    if let Some(ready) = readiness_state.record(probe, ok) {
                        let mut rt = runtime.lock().expect("runtime lock");
                        if rt.ready != ready {
                            tracing::info!(pod = %launch.pod, ready, "readiness changed");
                        }
                        rt.ready = ready;
                    }
                    next_readiness = Some(Instant::now() + probe.period);
                }
                if let (Some(probe), Some(at)) = (&launch.liveness, next_liveness)
                    && at <= now
                {
                    let ok = probe.check(launch.ip).await;
                    if liveness_state.record(probe, ok) == Some(false) {
                        terminate(launch, &mut child).await;
                        return Ended::LivenessFailed;
                    }
                    next_liveness = Some(Instant::now() + probe.period);
                }
            }
        }
    }
}

/// SIGTERM to the process group, then SIGKILL after the grace period.
async fn terminate(launch: &Launch, child: &mut Child) {
    let Some(pid) = child.id() else { return };
    signal_group(pid, "TERM").await;
    if timeout(launch.grace, child.wait()).await.is_err() {
        log_line(launch, &format!("still running {}s after SIGTERM; SIGKILL", launch.grace.as_secs()));
        signal_group(pid, "KILL").await;
        let _ = child.kill().await;
    }
    log_line(launch, "stopped");
}

/// Signals the process group led by `pid` (the pod's process was started as a group
/// leader), with kill(1) so that no unsafe code is needed.
async fn signal_group(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg("--")
        .arg(format!("-{pid}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await;
}
