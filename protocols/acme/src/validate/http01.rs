//! http-01 (RFC 8555 section 8.3): GET
//! `http://<identifier>:<port>/.well-known/acme-challenge/<token>` must answer 200 with
//! the key authorization (trailing whitespace ignored).
//!
//! Section 8.3 says the server SHOULD follow redirects; section 10.4 (server-side request
//! forgery) explains why that is dangerous: a client controls where the first request
//! goes and, by redirecting, any URL after it, and a server that quotes what it fetched
//! hands the client whatever a service on the server's network answers. So redirects
//! are followed at most [`MAX_REDIRECTS`] times, only to http or https URLs on port 80,
//! 443 or the configured http-01 port; every hop is resolved and checked again against
//! the endpoint's target ranges ([`super::target`]) on the address actually dialed; and a
//! failure reports the status, the length of the body and whether it was the key
//! authorization, never the body itself. Responses are bounded ([`MAX_BODY`],
//! [`MAX_HEAD`]) and so is each attempt (the validation timeouts).

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::Request;
use hyper::header::{HOST, LOCATION, USER_AGENT};
use hyper_util::rt::TokioIo;
use pkiplane_core::logsafe::LogSafe;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsConnector;

use super::{connect, resolve, tls};
use crate::AcmeState;
use crate::problem::{AcmeError, ProblemType};

pub const MAX_REDIRECTS: usize = 10;
/// The key authorization is ~87 bytes; anything much longer is not one.
pub const MAX_BODY: usize = 8 * 1024;
/// Bound on a response's status line and headers (hyper's smallest buffer).
pub const MAX_HEAD: usize = 8 * 1024;

#[derive(Clone, Debug, PartialEq, Eq)]
struct Target {
    https: bool,
    host: String,
    port: u16,
    path: String,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        write!(f, "{scheme}://{}:{}{}", LogSafe(&self.host), self.port, LogSafe(&self.path))
    }
}

fn host_for_url(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') { format!("[{host}]") } else { host.to_owned() }
}

/// Where a redirect leads, if it may be followed.
fn redirect(from: &Target, location: &str, configured_port: u16) -> Result<Target, AcmeError> {
    let shown = LogSafe(location);
    let refuse =
        |why: String| AcmeError::new(ProblemType::Connection, format!("{from} redirected to `{shown}`: {why}"));
    if location.starts_with('/') {
        return Ok(Target { path: location.to_owned(), ..from.clone() });
    }
    let (https, rest) = if let Some(r) = location.strip_prefix("http://") {
        (false, r)
    } else if let Some(r) = location.strip_prefix("https://") {
        (true, r)
    } else {
        return Err(refuse("only http and https redirects are followed".into()));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].to_owned()),
        None => (rest, "/".to_owned()),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, _)) if !h.ends_with(']') && h.contains(':') => (authority.to_owned(), None),
        Some((h, p)) => (h.to_owned(), Some(p.parse::<u16>().map_err(|_| refuse("bad port".into()))?)),
        None => (authority.to_owned(), None),
    };
    let port = port.unwrap_or(if https { 443 } else { 80 });
    if ![80, 443, configured_port].contains(&port) {
        return Err(refuse(format!("port {port} is not 80, 443 or {configured_port}")));
    }
    if host.is_empty() || authority.contains('@') {
        return Err(refuse("the URL has no plain host".into()));
    }
    Ok(Target { https, host: host.trim_start_matches('[').trim_end_matches(']').to_owned(), port, path })
}

pub async fn validate(state: &AcmeState, host: &str, token: &str, key_authorization: &str) -> Result<(), AcmeError> {
    let port = state.config.http01_port;
    let mut target =
        Target { https: false, host: host.to_owned(), port, path: format!("/.well-known/acme-challenge/{token}") };
    for _ in 0..=MAX_REDIRECTS {
        let (status, location, body) = fetch(state, &target).await?;
        if status.is_redirection() {
            let location = location.ok_or_else(|| {
                AcmeError::new(ProblemType::Connection, format!("{target} redirected without a Location"))
            })?;
            target = redirect(&target, &location, port)?;
            continue;
        }
        if status != hyper::StatusCode::OK {
            return Err(AcmeError::unauthorized(format!("{target} answered HTTP {status}, not 200")));
        }
        let seen = body.trim_ascii_end();
        if seen.len() == key_authorization.len()
            && bool::from(subtle::ConstantTimeEq::ct_eq(seen, key_authorization.as_bytes()))
        {
            return Ok(());
        }
        // The body is not quoted: it may come from a service the client cannot reach.
        return Err(AcmeError::new(
            ProblemType::IncorrectResponse,
            format!(
                "{target} answered HTTP 200 with a body of {} bytes that is not the key authorization ({} bytes)",
                body.len(),
                key_authorization.len()
            ),
        ));
    }
    Err(AcmeError::new(ProblemType::Connection, format!("more than {MAX_REDIRECTS} redirects")))
}

type Fetched = (hyper::StatusCode, Option<String>, Bytes);

async fn fetch(state: &AcmeState, target: &Target) -> Result<Fetched, AcmeError> {
    let settings = &state.config.validation;
    let addrs = resolve(state, &target.host, target.port).await?;
    let tcp = connect(&addrs, settings).await?;
    if !target.https {
        return exchange(tcp, target).await;
    }
    let config = tls::permissive_client(&[b"http/1.1"]).map_err(|e| AcmeError::internal(e.to_string()))?;
    let name = tls::server_name(&target.host)
        .ok_or_else(|| AcmeError::new(ProblemType::Tls, format!("`{}` is not a TLS server name", target.host)))?;
    let stream = TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| AcmeError::new(ProblemType::Tls, format!("TLS with {target}: {e}")))?;
    exchange(stream, target).await
}

async fn exchange<S>(io: S, target: &Target) -> Result<Fetched, AcmeError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let conn_err = |e: hyper::Error| AcmeError::new(ProblemType::Connection, format!("{target}: {e}"));
    let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
        .max_buf_size(MAX_HEAD)
        .handshake(TokioIo::new(io))
        .await
        .map_err(conn_err)?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let default_port = if target.https { 443 } else { 80 };
    let host = if target.port == default_port {
        host_for_url(&target.host)
    } else {
        format!("{}:{}", host_for_url(&target.host), target.port)
    };
    let req = Request::get(target.path.as_str())
        .header(HOST, host)
        .header(USER_AGENT, "pkiplane-acme-validator")
        .body(Empty::<Bytes>::new())
        .map_err(|e| AcmeError::internal(e.to_string()))?;
    let rsp = sender.send_request(req).await.map_err(conn_err)?;
    let status = rsp.status();
    let location = rsp.headers().get(LOCATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body = if status.is_redirection() {
        Bytes::new()
    } else {
        Limited::new(rsp.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|_| {
                AcmeError::new(
                    ProblemType::IncorrectResponse,
                    format!("{target}: the body could not be read within {MAX_BODY} bytes"),
                )
            })?
            .to_bytes()
    };
    Ok((status, location, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_only_to_http_s_on_allowed_ports() {
        let from = Target { https: false, host: "a.example".into(), port: 5002, path: "/x".into() };
        let to = redirect(&from, "/y", 5002).unwrap();
        assert_eq!((to.host.as_str(), to.port, to.path.as_str()), ("a.example", 5002, "/y"));
        let to = redirect(&from, "https://b.example/z", 5002).unwrap();
        assert_eq!((to.https, to.port, to.path.as_str()), (true, 443, "/z"));
        assert!(redirect(&from, "http://b.example:8080/z", 5002).is_err());
        assert!(redirect(&from, "ftp://b.example/z", 5002).is_err());
        assert!(redirect(&from, "file:///etc/passwd", 5002).is_err());
        assert!(redirect(&from, "http://b.example:5002/z", 5002).is_ok());
        let v6 = redirect(&from, "http://[2001:db8::1]/z", 5002).unwrap();
        assert_eq!(v6.host, "2001:db8::1");
    }
}
