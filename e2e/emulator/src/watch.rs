//! Watches the Deployments to emulate and every Service, and drives the emulator: a
//! reconcile pass after each change and at least every `resync` (probes change pod
//! readiness without any API event).

use std::time::Duration;

use anyhow::Result;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use std::sync::Arc;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::Notify;

use crate::emulator::Emulator;
use crate::pods::Settings;

fn watch<K>(api: Api<K>, config: watcher::Config, changed: Arc<Notify>) -> Store<K>
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    let (store, writer) = reflector::store();
    let stream = reflector::reflector(writer, watcher(api, config)).default_backoff();
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            match event {
                Ok(_) => changed.notify_one(),
                Err(e) => tracing::warn!("watch: {e}"),
            }
        }
    });
    store
}

/// Runs until SIGTERM or SIGINT, then stops every pod.
pub async fn run(client: Client, settings: Settings, selector: &str, resync: Duration) -> Result<()> {
    let changed = Arc::new(Notify::new());
    let deployments =
        watch(Api::<Deployment>::all(client.clone()), watcher::Config::default().labels(selector), changed.clone());
    let services = watch(Api::<Service>::all(client.clone()), watcher::Config::default(), changed.clone());
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;

    tokio::select! {
        r = async { deployments.wait_until_ready().await?; services.wait_until_ready().await } => r?,
        _ = term.recv() => return Ok(()),
        _ = int.recv() => return Ok(()),
    }
    tracing::info!(%selector, "watching Deployments");

    let mut emulator = Emulator::new(client, settings);
    loop {
        emulator.reconcile(&deployments.state(), &services.state()).await;
        tokio::select! {
            _ = changed.notified() => {}
            _ = tokio::time::sleep(resync) => {}
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    tracing::info!("stopping every pod");
    emulator.shutdown().await;
    Ok(())
}
