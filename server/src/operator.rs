//! `pkiplane operator`: the Kubernetes controllers (see the pkiplane-operator crate).

use std::net::SocketAddr;
use std::process::ExitCode;

use pkiplane_operator::context::OperatorConfig;

#[derive(clap::Args, Debug)]
pub struct OperatorArgs {
    /// The control-plane namespace: internal CA Secrets, the leader Lease, the CA service.
    #[arg(long, env = "POD_NAMESPACE", default_value = "pkiplane-system")]
    namespace: String,
    /// The CA service's internal API (mTLS). Default: https://pkiplane-ca.<namespace>.svc:9443.
    #[arg(long)]
    ca_url: Option<String>,
    /// Container image of the endpoint Deployments.
    #[arg(long, default_value_t = OperatorConfig::default_image())]
    image: String,
    /// imagePullPolicy of the endpoint Deployments (default: Kubernetes' own).
    #[arg(long, value_parser = ["Always", "IfNotPresent", "Never"])]
    image_pull_policy: Option<String>,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, default_value = "0.0.0.0:8081")]
    metrics_listen: SocketAddr,
    /// A Warning event when an endpoint's denied requests rise by more than this per tick.
    #[arg(long, default_value_t = 10)]
    denial_event_threshold: i64,
    /// Run controllers only while holding the Lease `pkiplane-operator` (true/false).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    leader_elect: bool,
    #[command(flatten)]
    listener: crate::listener_args::ListenerArgs,
}

pub async fn run(args: &OperatorArgs) -> anyhow::Result<ExitCode> {
    let config = OperatorConfig {
        ca_url: args.ca_url.clone().unwrap_or_else(|| format!("https://pkiplane-ca.{}.svc:9443", args.namespace)),
        namespace: args.namespace.clone(),
        image: args.image.clone(),
        image_pull_policy: args.image_pull_policy.clone(),
        metrics_listen: args.metrics_listen,
        listener_limits: args.listener.limits(1),
        denial_event_threshold: args.denial_event_threshold,
        leader_elect: args.leader_elect,
        identity: pkiplane_operator::leader::default_identity(),
    };
    match pkiplane_operator::run::run(config).await {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e @ pkiplane_operator::Error::LeadershipLost) => {
            tracing::error!("{e}; exiting so the process restarts clean");
            Ok(ExitCode::from(1))
        }
        Err(e) => Err(e.into()),
    }
}
