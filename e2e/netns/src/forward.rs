//! A TCP forwarder from the host's loopback into a network namespace.
//!
//! The listening socket is created first, in the host's network namespace; then the
//! process moves into the target namespace (setns), so every socket it opens afterwards,
//! the upstream connections, lives there. The listener keeps accepting on the host.

use std::fs::{self, File};
use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use anyhow::{Context, ensure};
use rustix::thread::{LinkNameSpaceType, move_into_link_name_space};

/// At most this many connections are carried at once; more are closed at accept.
const MAX_CONNECTIONS: usize = 256;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(clap::Args)]
pub struct Args {
    /// The network namespace to connect into, e.g. /proc/PID/ns/net of a process in it.
    /// The forwarder exits when that path stops naming the same namespace.
    #[arg(long)]
    netns: PathBuf,
    /// Where to listen on the host: a loopback address (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Where to connect inside the namespace: IP:PORT.
    #[arg(long)]
    to: SocketAddr,
    /// Write the listening port here (atomically) once connections are carried.
    #[arg(long)]
    port_file: Option<PathBuf>,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    ensure!(
        args.listen.ip().is_loopback(),
        "--listen {} is not a loopback address: the forwarder only serves this machine",
        args.listen
    );
    let listener = TcpListener::bind(args.listen).with_context(|| format!("listen on {}", args.listen))?;
    let port = listener.local_addr()?.port();

    let netns = File::open(&args.netns).with_context(|| format!("open {}", args.netns.display()))?;
    let netns_id = fs::metadata(&args.netns)?;
    move_into_link_name_space(netns.as_fd(), Some(LinkNameSpaceType::Network))
        .with_context(|| format!("setns into {}", args.netns.display()))?;

    if let Some(file) = &args.port_file {
        write_atomically(file, &format!("{port}\n"))?;
    }
    println!("{port}");
    io::stdout().flush()?;

    let watched = args.netns.clone();
    let (dev, ino) = (netns_id.dev(), netns_id.ino());
    thread::spawn(move || exit_when_namespace_gone(&watched, dev, ino));

    let active = Arc::new(AtomicUsize::new(0));
    for client in listener.incoming() {
        let client = match client {
            Ok(c) => c,
            Err(e) => {
                eprintln!("e2e-netns forward: accept: {e}");
                continue;
            }
        };
        if active.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            active.fetch_sub(1, Ordering::SeqCst);
            eprintln!("e2e-netns forward: more than {MAX_CONNECTIONS} connections, closing one");
            continue;
        }
        let (active, to) = (Arc::clone(&active), args.to);
        thread::spawn(move || {
            if let Err(e) = carry(client, to) {
                eprintln!("e2e-netns forward: to {to}: {e}");
            }
            active.fetch_sub(1, Ordering::SeqCst);
        });
    }
    Ok(())
}

/// Copies both directions until each side has finished sending.
fn carry(client: TcpStream, to: SocketAddr) -> io::Result<()> {
    let upstream = TcpStream::connect_timeout(&to, CONNECT_TIMEOUT)?;
    client.set_nodelay(true)?;
    upstream.set_nodelay(true)?;
    let (mut client_rx, mut upstream_tx) = (client.try_clone()?, upstream.try_clone()?);
    let inbound = thread::spawn(move || {
        let r = io::copy(&mut client_rx, &mut upstream_tx);
        let _ = upstream_tx.shutdown(Shutdown::Write);
        r
    });
    let (mut upstream_rx, mut client_tx) = (upstream, client);
    let outbound = io::copy(&mut upstream_rx, &mut client_tx);
    let _ = client_tx.shutdown(Shutdown::Write);
    let inbound = inbound.join().unwrap_or_else(|_| Err(io::Error::other("copy thread panicked")));
    outbound.and(inbound).map(|_| ())
}

/// The namespace lives as long as a process in it does; once its holder is gone the
/// forwarder would be all that keeps it alive, so it leaves too.
fn exit_when_namespace_gone(path: &Path, dev: u64, ino: u64) {
    loop {
        thread::sleep(Duration::from_secs(1));
        match fs::metadata(path) {
            Ok(m) if m.dev() == dev && m.ino() == ino => {}
            _ => {
                eprintln!("e2e-netns forward: {} is gone, exiting", path.display());
                std::process::exit(0);
            }
        }
    }
}

fn write_atomically(path: &Path, contents: &str) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, contents)?;
    fs::rename(&tmp, path)
}
