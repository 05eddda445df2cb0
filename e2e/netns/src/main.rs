//! Namespace helpers of the e2e harness's real node (`e2e/node.sh`).
//!
//! - `e2e-netns init`: PID 1 of the node's PID namespace. It only reaps: the container
//!   shims daemonize and are re-parented to it. It handles no signal, so only SIGKILL
//!   (from the host, or through `unshare --kill-child`) ends it, and with it every
//!   process of the node.
//! - `e2e-netns forward`: carries TCP connections from the host's loopback into the
//!   node's network namespace, so host-side clients reach the API server and Services.
#![forbid(unsafe_code)]

mod forward;
mod init;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "e2e-netns", about = "Namespace helpers of the e2e real node")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Reap children forever, as PID 1 of a PID namespace.
    Init,
    /// Listen on the host's loopback and connect into a network namespace.
    Forward(forward::Args),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Init => init::run(),
        Command::Forward(args) => forward::run(&args),
    }
}
