//! The one serving loop every pkiplane listener uses (`serve` endpoints and publication,
//! `ca` internal API and publication, `endpoint` protocol and health, `webhook`, the
//! operator's metrics), so that none of them can be held open by slow or idle clients:
//!
//! - a request head must be complete within [`Limits::header_read_timeout`] of its first
//!   byte: a 1 byte/s header drip is cut off;
//! - a request body must be read within [`Limits::body_read_timeout`] of its head;
//! - a connection with no request in progress that sends nothing for
//!   [`Limits::idle_timeout`] is closed (keep-alive, or a socket opened and left);
//! - at most [`Limits::max_connections`] connections per listener and
//!   [`Limits::max_connections_per_address`] per client address: when a new connection
//!   would pass either cap, the connection that has been idle longest (no request in
//!   progress) is closed to make room, and only when every connection is busy is the new
//!   one refused. A flood of idle sockets therefore cannot keep a real client out, and
//!   one address cannot take the whole listener;
//! - request heads are bounded by [`Limits::max_header_bytes`] (431 beyond);
//! - a failing `accept` (out of descriptors) is logged at most once per
//!   [`ACCEPT_WARNING_EVERY`], with the number of failures meanwhile.
//!
//! [`raise_descriptor_limit`] lifts RLIMIT_NOFILE to the hard limit at start-up.
#![forbid(unsafe_code)]

mod body;
mod conn;
mod limits;
mod registry;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub use conn::Tracked;
pub use limits::{Limits, raise_descriptor_limit};
use registry::Registry;

/// How often a failing `accept` is logged at most.
pub const ACCEPT_WARNING_EVERY: Duration = Duration::from_secs(10);

/// Sets up one accepted connection: a TLS handshake (bounded by
/// [`Limits::handshake_timeout`]), client identity, and the routes that serve it, or
/// `None` to drop the connection.
pub trait Acceptor: Send + Sync + 'static {
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    fn accept(
        &self,
        stream: Tracked<TcpStream>,
        peer: SocketAddr,
    ) -> impl Future<Output = Option<(Self::Io, Router)>> + Send;
}

/// Plain HTTP: the routes with the client's address as `ConnectInfo<SocketAddr>`.
pub struct Plain(pub Router);

impl Acceptor for Plain {
    type Io = Tracked<TcpStream>;
    async fn accept(&self, stream: Tracked<TcpStream>, peer: SocketAddr) -> Option<(Self::Io, Router)> {
        Some((stream, self.0.clone().layer(axum::Extension(axum::extract::ConnectInfo(peer)))))
    }
}

/// Serves connections from `listener` with `acceptor` under `limits` until `shutdown`
/// resolves; then stops accepting, lets requests in progress finish and closes idle
/// connections, and returns once every connection is gone (bound the wait outside).
pub async fn serve<A: Acceptor>(
    listener: TcpListener,
    limits: Limits,
    acceptor: A,
    shutdown: impl Future<Output = ()> + Send,
) {
    let local = listener.local_addr().ok();
    let acceptor = Arc::new(acceptor);
    let registry = Arc::new(Registry::new(limits.clone()));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut failures = AcceptFailures::default();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    failures.record(local, &e);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(slot) = registry.admit(peer.ip()) else {
            tracing::debug!(%peer, "every connection is busy: refused");
            continue;
        };
        let (acceptor, limits, stop) = (acceptor.clone(), limits.clone(), stop_rx.clone());
        tokio::spawn(conn::run(acceptor, tcp, peer, slot, limits, stop));
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drop(stop_rx);
    stop_tx.closed().await;
}

/// Counts failing accepts and logs them at most once per [`ACCEPT_WARNING_EVERY`].
#[derive(Default)]
struct AcceptFailures {
    last_logged: Option<Instant>,
    suppressed: u64,
}

impl AcceptFailures {
    fn record(&mut self, local: Option<SocketAddr>, error: &std::io::Error) {
        let due = self.last_logged.is_none_or(|t| t.elapsed() >= ACCEPT_WARNING_EVERY);
        if !due {
            self.suppressed += 1;
            return;
        }
        let listener = local.map(|a| a.to_string()).unwrap_or_default();
        tracing::warn!(%listener, error = %error, failures_since_last_warning = self.suppressed, "accept failed");
        self.last_logged = Some(Instant::now());
        self.suppressed = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_failures_are_logged_at_most_once_per_period() {
        let mut f = AcceptFailures::default();
        let e = std::io::Error::other("too many open files");
        f.record(None, &e);
        let first = f.last_logged;
        for _ in 0..1000 {
            f.record(None, &e);
        }
        assert_eq!(f.last_logged, first, "no second warning within the period");
        assert_eq!(f.suppressed, 1000);
        f.last_logged = Some(Instant::now() - ACCEPT_WARNING_EVERY);
        f.record(None, &e);
        assert_eq!(f.suppressed, 0, "the next warning carries the count and resets it");
    }
}
