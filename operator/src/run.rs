//! The operator process: metrics and health, the watch cache, leader election, and
//! while leading the internal CA pass, the CA service poll and the three controllers.
//! SIGTERM / Ctrl-C stops the controllers and releases the lease.

use std::future::Future;
use std::sync::Arc;

use kube::Client;
use tokio::sync::watch;

use crate::ca_client::{CaServiceApi, HttpsCaClient};
use crate::ca_poll::{CA_POLL_EVERY, CA_POLL_SPACING, CaChanges, poll_ca, trigger};
use crate::cache::ClusterCache;
use crate::context::{Context, INTERNAL_TLS_EVERY, OperatorConfig};
use crate::error::{Error, Result};
use crate::internal_tls::reconcile_internal_tls;
use crate::leader::LeaderElector;
use crate::metrics::{self, Metrics};
use crate::{endpoint, issuer, profile};

/// A spawned task that is aborted when its handle is dropped (so dropping `run_with`'s
/// future, e.g. in tests, stops the election too).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A shutdown signal every task can wait on.
#[derive(Clone)]
struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    fn wait(&self) -> impl Future<Output = ()> + Send + Sync + 'static {
        let mut rx = self.0.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    }
}

async fn termination_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = ctrl_c => {}
            }
        }
        Err(_) => {
            let _ = ctrl_c.await;
        }
    }
}

/// Runs the operator until SIGTERM (Ok) or until the lease is lost (Err: the process
/// exits and restarts clean).
pub async fn run(config: OperatorConfig) -> Result<()> {
    let client = Client::try_default().await?;
    run_with_client(client, config).await
}

/// Runs with the HTTPS client for `config.ca_url`.
pub async fn run_with_client(client: Client, config: OperatorConfig) -> Result<()> {
    let ca_client: Arc<dyn CaServiceApi> = Arc::new(HttpsCaClient::new(&config.ca_url)?);
    run_with(client, config, ca_client).await
}

/// Runs with any CA service client (tests pass a fake).
pub async fn run_with(client: Client, config: OperatorConfig, ca_client: Arc<dyn CaServiceApi>) -> Result<()> {
    let metrics = Arc::new(Metrics::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let shutdown = Shutdown(stop_rx);
    tokio::spawn(async move {
        termination_signal().await;
        tracing::info!("termination signal received; shutting down");
        stop_tx.send_replace(true);
    });
    let mut metrics_server = AbortOnDrop(tokio::spawn(metrics::serve(
        config.metrics_listen,
        config.listener_limits.clone(),
        metrics.clone(),
        shutdown.wait(),
    )));

    let cache = ClusterCache::start(client.clone());
    let (synced_tx, mut synced) = watch::channel(false);
    {
        let cache = cache.clone();
        let metrics = metrics.clone();
        tokio::spawn(async move {
            cache.wait_synced().await;
            tracing::info!("caches synced");
            metrics.set_ready(true);
            synced_tx.send_replace(true);
        });
    }
    let ctx = Arc::new(Context::new(client.clone(), config.clone(), ca_client, cache, metrics.clone()));

    let (leading_tx, mut leading) = watch::channel(!config.leader_elect);
    let elector = Arc::new(LeaderElector::new(client, &config.namespace, config.identity.clone()));
    let mut election = {
        let elector = elector.clone();
        let leader_elect = config.leader_elect;
        AbortOnDrop(tokio::spawn(async move {
            if leader_elect { elector.run(leading_tx).await } else { futures::future::pending().await }
        }))
    };

    tracing::info!(identity = %config.identity, leader_elect = config.leader_elect, "operator started; waiting to lead");
    tokio::select! {
        _ = async { leading.wait_for(|l| *l).await.is_ok() } => {}
        _ = shutdown.wait() => {
            election.0.abort();
            let _ = (&mut metrics_server.0).await;
            return Ok(());
        }
        result = &mut election.0 => return Err(election_result(result)),
    }
    metrics.set_leader(true);
    tracing::info!("leading: starting the controllers");

    let work = async {
        // The controllers share the cache's stores and wait for them to be ready too; a
        // store's readiness wakes only its last waiter (kube's DelayedInit holds one
        // waker), so they start once the task above has seen every store ready, or that
        // task would never be woken and the pod never Ready.
        tokio::select! {
            _ = synced.wait_for(|s| *s) => {}
            _ = shutdown.wait() => return,
        }
        tokio::join!(
            background(ctx.clone(), shutdown.clone()),
            issuer::run(ctx.clone(), shutdown.wait()),
            profile::run(ctx.clone(), shutdown.wait()),
            endpoint::run(ctx.clone(), shutdown.wait()),
        );
    };
    let outcome = tokio::select! {
        _ = work => Ok(()),
        result = &mut election.0 => Err(election_result(result)),
    };
    metrics.set_leader(false);
    election.0.abort();
    if outcome.is_ok() && config.leader_elect {
        elector.release().await;
    }
    let _ = (&mut metrics_server.0).await;
    outcome
}

fn election_result(result: Result<Result<()>, tokio::task::JoinError>) -> Error {
    match result {
        Ok(Err(e)) => e,
        _ => Error::LeadershipLost,
    }
}

/// The leader's background work: the internal CA and its leaf Secrets every
/// [`INTERNAL_TLS_EVERY`] (sooner after a failure), the CA service's answers every
/// [`CA_POLL_EVERY`] or when an object asks ([`Context::poll_ca_soon`]), each poll
/// reconciling only the objects whose CA-side data changed.
async fn background(ctx: Arc<Context>, shutdown: Shutdown) {
    let stop = shutdown.wait();
    tokio::pin!(stop);
    let mut internal_tls_due = tokio::time::Instant::now();
    loop {
        if tokio::time::Instant::now() >= internal_tls_due {
            let bundle = |ctx: &Context| ctx.internal_ca().map(|ca| ca.bundle_pem);
            let before = bundle(&ctx);
            let pass = reconcile_internal_tls(&ctx).await;
            if bundle(&ctx) != before {
                // A new (or the first) internal CA: every endpoint's pod identity follows it.
                trigger(&ctx, &CaChanges { endpoints_all: true, ..Default::default() });
            }
            internal_tls_due = match pass {
                Ok(()) => tokio::time::Instant::now() + INTERNAL_TLS_EVERY,
                Err(e) => {
                    tracing::warn!(error = %e, "internal CA pass failed");
                    tokio::time::Instant::now() + CA_POLL_SPACING
                }
            };
        }
        let changes = poll_ca(&ctx).await;
        if !changes.is_empty() {
            tracing::debug!(?changes, "CA service answers changed");
            trigger(&ctx, &changes);
        }
        let unreachable = ctx.ca_state().error.is_some();
        let next_poll = tokio::time::Instant::now() + if unreachable { CA_POLL_SPACING } else { CA_POLL_EVERY };
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep_until(next_poll.min(internal_tls_due)) => {}
            _ = ctx.ca_poll_soon.notified() => {
                tokio::select! {
                    _ = &mut stop => return,
                    _ = tokio::time::sleep(CA_POLL_SPACING) => {}
                }
            }
        }
    }
}
