//! `pkiplane`: one binary for the standalone server, the in-cluster roles and the tools.
#![forbid(unsafe_code)]

mod admin;
mod bootstrap;
mod ca;
mod commands;
mod datadir;
mod endpoint;
mod listener_args;
mod logging;
mod once;
mod operator;
mod output;
mod serve;
mod service_args;
mod webhook;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use commands::{crds, inventory, issue, policy_check, policy_lint, revoke, scep};

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

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run everything in one process on an embedded store: the CA, CA/CRL publication
    /// and every EnrollmentEndpoint of the manifests. No Kubernetes needed.
    Serve(serve::ServeArgs),
    /// Run the CA service: issuer keys, policy and inventory behind a mutual-TLS API for
    /// endpoint pods and the operator, plus CA certificate and CRL publication.
    Ca(ca::CaArgs),
    /// Run one EnrollmentEndpoint without CA keys, against the CA service.
    Endpoint(endpoint::EndpointArgs),
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
    /// Requests waiting for approval (profiles with `approval.required`).
    #[command(subcommand)]
    Approvals(commands::approvals::ApprovalsCommand),
    /// Approve one waiting request by id: only its requester gets a certificate.
    Approve(commands::approvals::ApproveArgs),
    /// Deny one waiting request by id, with a reason the requester's protocol carries.
    Deny(commands::approvals::DenyArgs),
    /// SCEP tools.
    #[command(subcommand)]
    Scep(scep::ScepCommand),
    /// Back up a data directory's store (consistent while a server runs).
    Backup(commands::backup::BackupArgs),
    /// Restore a backup into a data directory (no server may run on it).
    Restore(commands::backup::RestoreArgs),
    /// Store maintenance: `store rekey` seals the stored CA keys with the newest KEK.
    #[command(subcommand)]
    Store(commands::store::StoreCommand),
    /// The admission webhook (HTTPS on :9444), or `webhook manifests` for its
    /// Validating/MutatingWebhookConfiguration.
    Webhook(webhook::WebhookArgs),
    /// Run the Kubernetes operator: Issuer, CertificateProfile and EnrollmentEndpoint
    /// controllers, the internal CA, leader election.
    Operator(operator::OperatorArgs),
}

#[derive(Subcommand, Debug)]
enum PolicyCommand {
    /// Show what a profile would issue for a CSR, or every reason it would not.
    /// Exit status: 0 allowed, 1 denied, 2 usage or input error.
    Check(policy_check::CheckArgs),
    /// Validate manifests as the admission webhook would, offline (for CI in GitOps
    /// repositories). Exit status: 0 clean, 1 denials, 2 input error.
    Lint(policy_lint::LintArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { ExitCode::from(2) } else { ExitCode::SUCCESS };
        }
    };
    logging::init(cli.log_format == LogFormat::Json);
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
            Command::Ca(a) => ca::run(a).await.map(|_| ExitCode::SUCCESS),
            Command::Endpoint(a) => endpoint::run(a).await.map(|_| ExitCode::SUCCESS),
            Command::Crds(a) => crds::run(a).map(|_| ExitCode::SUCCESS),
            Command::Policy(PolicyCommand::Check(a)) => policy_check::run(a).await,
            Command::Policy(PolicyCommand::Lint(a)) => policy_lint::run(a),
            Command::Inventory(c) => inventory::run(c).await.map(|_| ExitCode::SUCCESS),
            Command::Issue(a) => issue::run(a).await,
            Command::Revoke(a) => revoke::run(a).await,
            Command::Approvals(c) => commands::approvals::list(c).await.map(|_| ExitCode::SUCCESS),
            Command::Approve(a) => commands::approvals::approve(a).await.map(|_| ExitCode::SUCCESS),
            Command::Deny(a) => commands::approvals::deny(a).await.map(|_| ExitCode::SUCCESS),
            Command::Scep(c) => scep::run(c).await.map(|_| ExitCode::SUCCESS),
            Command::Backup(a) => commands::backup::backup(a).map(|_| ExitCode::SUCCESS),
            Command::Restore(a) => commands::backup::restore(a).await.map(|_| ExitCode::SUCCESS),
            Command::Store(c) => commands::store::run(c).await.map(|_| ExitCode::SUCCESS),
            Command::Webhook(a) => webhook::run(a).await.map(|_| ExitCode::SUCCESS),
            Command::Operator(a) => operator::run(a).await,
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
