//! `pkiplane`: one binary for the standalone server, the in-cluster roles and the tools.
#![forbid(unsafe_code)]

mod bootstrap;
mod commands;
mod output;
mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use commands::{crds, inventory, issue, policy_check, revoke, scep};

#[derive(Parser, Debug)]
#[command(
    name = "pkiplane",
    version,
    about = "A Kubernetes-native PKI control plane: ACME, EST, SCEP and CMP on one policy engine and one inventory."
)]
struct Cli {
    /// Log format on standard error: text or json. Audit events are JSON in either.
    #[arg(long, global = true, env = "PKIPLANE_LOG_FORMAT", default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run everything in one process on an embedded store: the CA, CA/CRL publication
    /// and every EnrollmentEndpoint of the manifests. No Kubernetes needed.
    Serve(serve::ServeArgs),
    /// Print the CustomResourceDefinitions (or write them with --out).
    Crds(crds::CrdsArgs),
    /// Policy tools for GitOps pipelines.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Query the certificate inventory of a data directory.
    #[command(subcommand)]
    Inventory(inventory::InventoryCommand),
    /// Sign a CSR locally through the full policy and inventory pipeline.
    Issue(issue::IssueArgs),
    /// Revoke a certificate; the issuer's next published CRL lists it.
    Revoke(revoke::RevokeArgs),
    /// SCEP tools.
    #[command(subcommand)]
    Scep(scep::ScepCommand),
}

#[derive(Subcommand, Debug)]
enum PolicyCommand {
    /// Show what a profile would issue for a CSR, or every reason it would not.
    /// Exit status: 0 allowed, 1 denied, 2 usage or input error.
    Check(policy_check::CheckArgs),
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{EnvFilter, Layer, filter::filter_fn, fmt};

    let is_audit = |m: &tracing::Metadata<'_>| m.target() == pkiplane_core::audit::TARGET;
    let filter = EnvFilter::try_from_env("PKIPLANE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let main = match format {
        LogFormat::Json => fmt::layer().json().flatten_event(true).with_writer(std::io::stderr).boxed(),
        LogFormat::Text => fmt::layer().with_target(false).with_ansi(ansi).with_writer(std::io::stderr).boxed(),
    }
    .with_filter(filter_fn(move |m| !is_audit(m)))
    .with_filter(filter);
    // Audit events are always JSON lines: to PKIPLANE_AUDIT_LOG when set, else stderr.
    let audit_file = std::env::var_os("PKIPLANE_AUDIT_LOG").and_then(|p| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&p)
            .map_err(|e| eprintln!("warning: cannot open PKIPLANE_AUDIT_LOG {}: {e}", p.to_string_lossy()))
            .ok()
    });
    let audit = match audit_file {
        Some(f) => fmt::layer().json().flatten_event(true).with_writer(std::sync::Mutex::new(f)).boxed(),
        None => fmt::layer().json().flatten_event(true).with_writer(std::io::stderr).boxed(),
    }
    .with_filter(filter_fn(is_audit));
    tracing_subscriber::registry().with(main).with(audit).init();
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { ExitCode::from(2) } else { ExitCode::SUCCESS };
        }
    };
    init_logging(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async {
        match &cli.command {
            Command::Serve(a) => serve::run(a).await.map(|_| ExitCode::SUCCESS),
            Command::Crds(a) => crds::run(a).map(|_| ExitCode::SUCCESS),
            Command::Policy(PolicyCommand::Check(a)) => policy_check::run(a).await,
            Command::Inventory(c) => inventory::run(c).await.map(|_| ExitCode::SUCCESS),
            Command::Issue(a) => issue::run(a).await,
            Command::Revoke(a) => revoke::run(a).await,
            Command::Scep(c) => scep::run(c).await.map(|_| ExitCode::SUCCESS),
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
