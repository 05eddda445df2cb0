//! `pkiplane webhook`: the admission webhook server, and `pkiplane webhook manifests`,
//! which prints its ValidatingWebhookConfiguration and MutatingWebhookConfiguration.
//!
//! The server answers `/validate` and `/mutate` over HTTPS (certificate from `--tls-dir`,
//! reloaded when it changes) with the `pkiplane-webhook` crate's logic, judging against a
//! watch cache of the cluster's pkiplane objects. It reads Secrets only with targeted
//! GETs for the object under review. `/healthz` and `/readyz` (ready once the cache has
//! listed everything) are on the same port.

mod cache;
mod manifests;
mod references;
mod routes;
mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use manifests::ManifestsArgs;

#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct WebhookArgs {
    #[command(subcommand)]
    pub command: Option<WebhookCommand>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(clap::Subcommand, Debug)]
pub enum WebhookCommand {
    /// Print the ValidatingWebhookConfiguration and MutatingWebhookConfiguration (YAML).
    Manifests(ManifestsArgs),
}

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on (HTTPS).
    #[arg(long, default_value = "0.0.0.0:9444")]
    pub listen: SocketAddr,
    /// Directory holding the serving certificate: tls.crt (chain, leaf first) and
    /// tls.key. Re-read when the files change.
    #[arg(long, default_value = "/etc/pkiplane/webhook-tls")]
    pub tls_dir: PathBuf,
    #[command(flatten)]
    pub listener: crate::listener_args::ListenerArgs,
}

pub async fn run(args: &WebhookArgs) -> Result<()> {
    match &args.command {
        Some(WebhookCommand::Manifests(m)) => manifests::run(m),
        None => serve(&args.serve).await,
    }
}

async fn serve(args: &ServeArgs) -> Result<()> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cert = Arc::new(tls::ReloadingCert::load(&args.tls_dir, provider.clone())?);
    let config = tls::server_config(cert, provider)?;
    let client =
        kube::Client::try_default().await.context("connecting to the Kubernetes API (in-cluster or KUBECONFIG)")?;
    let cache = cache::Cache::start(client.clone());
    let router = routes::router(routes::State { cache, client }).merge(pkiplane_metrics::router());
    let router = pkiplane_metrics::http::instrument(router, "webhook", "");
    let listener = TcpListener::bind(args.listen).await.with_context(|| format!("listening on {}", args.listen))?;
    tracing::info!(listen = %listener.local_addr()?, tls_dir = %args.tls_dir.display(), "admission webhook serving /validate and /mutate");
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let limits = args.listener.limits(1);
    let server = tokio::spawn(crate::serve::tls::serve_tls(listener, limits, router, config, shutdown_rx));
    crate::serve::wait_for_signal().await;
    tracing::info!("shutting down");
    let _ = shutdown_tx.send(true);
    server.await.context("webhook server task")??;
    Ok(())
}
