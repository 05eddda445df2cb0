//! One connection: set-up, HTTP/1.1 with the timeouts, and the ways it ends (done,
//! idle too long, evicted to make room, shutdown).

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::Router;
use axum::response::Response;
use hyper::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::body::TimedBody;
use crate::registry::{ConnState, Slot};
use crate::{Acceptor, Limits};

/// A client's stream that records when the client last sent something (the idle timeout
/// counts silence, so a client sending a request slowly is left to the header timeout).
pub struct Tracked<S> {
    inner: S,
    state: Arc<ConnState>,
}

impl<S> Tracked<S> {
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.state.touch_read();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Marks the connection busy while a request is answered.
struct Busy(Arc<ConnState>);

impl Busy {
    fn new(state: Arc<ConnState>) -> Self {
        state.begin_request();
        Self(state)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.end_request();
    }
}

/// The routes as a hyper service: bodies under the body timeout, the connection busy
/// while a request is answered.
#[derive(Clone)]
struct Routes {
    router: Router,
    state: Arc<ConnState>,
    limits: Arc<Limits>,
}

impl hyper::service::Service<Request<Incoming>> for Routes {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let busy = Busy::new(self.state.clone());
        let req = req.map(|b| axum::body::Body::new(TimedBody::new(b, self.limits.body_read_timeout)));
        let router = self.router.clone();
        Box::pin(async move {
            let _busy = busy;
            tower::ServiceExt::oneshot(router, req).await
        })
    }
}

/// Serves one accepted connection until it ends.
pub(crate) async fn run<A: Acceptor>(
    acceptor: Arc<A>,
    tcp: TcpStream,
    peer: SocketAddr,
    slot: Slot,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) {
    let state = slot.state.clone();
    let _ = tcp.set_nodelay(true);
    let tracked = Tracked { inner: tcp, state: state.clone() };
    let setup = tokio::time::timeout(limits.handshake_timeout, acceptor.accept(tracked, peer));
    let (io, router) = tokio::select! {
        set_up = setup => match set_up {
            Ok(Some(ready)) => ready,
            Ok(None) => return,
            Err(_) => {
                tracing::debug!(%peer, "connection set-up (TLS handshake) timed out");
                return;
            }
        },
        () = state.evicted.notified() => return,
        _ = stop.wait_for(|s| *s) => return,
    };
    state.ready_for_requests();
    let limits = Arc::new(limits);
    let routes = Routes { router, state: state.clone(), limits: limits.clone() };
    let mut builder = hyper::server::conn::http1::Builder::new();
    // No hyper header timer: hyper starts it as soon as a kept-alive connection waits for
    // its next request, so it would also close idle connections at the header timeout
    // (measured: a listener with a 60 s idle timeout closed them after 10 s). The loop
    // below times the head from its first byte and the silence separately.
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(io), routes);
    tokio::pin!(conn);
    let mut stopping = false;
    loop {
        let deadline = [state.idle_deadline(limits.idle_timeout), state.head_deadline(limits.header_read_timeout)]
            .into_iter()
            .flatten()
            .min();
        let idle = async move {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            ended = conn.as_mut() => {
                if let Err(e) = ended {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            () = state.changed.notified() => {}
            () = idle => {
                if state.idle_expired(limits.idle_timeout) {
                    tracing::debug!(%peer, "idle connection closed");
                    return;
                }
                if state.head_expired(limits.header_read_timeout) {
                    tracing::debug!(%peer, "request head not complete within the header timeout; closed");
                    return;
                }
            }
            () = state.evicted.notified() => {
                if state.is_idle() {
                    tracing::debug!(%peer, "idle connection closed to make room");
                    return;
                }
                conn.as_mut().graceful_shutdown();
            }
            _ = stop.wait_for(|s| *s), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}
