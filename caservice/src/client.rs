//! The endpoint side: [`RemoteAuthority`] stands in for the in-process CA ([`Authority`]) and
//! [`RemoteStores`] for the protocol stores, over the internal API with mutual TLS.
//!
//! Issuers and profiles are answered from a snapshot kept current by a conditional long
//! poll of `/v1/snapshot` (the protocols consult them on every request); everything else
//! is one HTTPS call with a timeout. A CA service that cannot be reached is `Unavailable`, which each protocol
//! maps to its own "try again later".

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use pkiplane_core::approval::{ApprovalFilter, ApprovalRequest};
use pkiplane_core::error::{Cause, CoreError};
use pkiplane_core::inventory::{CertificateRecord, RevokeOutcome, StoreError};
use pkiplane_core::issuance::{IssuanceRequest, IssueOutcome, Issued, RevocationRequest};
use pkiplane_core::issuer::IssuerInfo;
use pkiplane_core::model::ObjectRef;
use pkiplane_core::profile::Profile;
use pkiplane_core::service::{Authority, InternalCertRequest};
use rustls::pki_types::ServerName;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::tls::Reloading;
use crate::wire::*;

/// Time to connect and complete the TLS handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Time for one call, issuance included (signing waits for a durable record).
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a snapshot request may be held by the CA service waiting for a change.
pub const SNAPSHOT_WAIT: Duration = Duration::from_secs(25);
/// The pause before asking again after a failure, or after a CA service that does not
/// support the conditional long poll (no ETag) answered in full.
pub const SNAPSHOT_EVERY: Duration = Duration::from_secs(5);
/// At least this long between two snapshot requests, whatever the answers.
const SNAPSHOT_MIN_SPACING: Duration = Duration::from_secs(1);
/// The largest snapshot read (every profile of the cluster: far more than a call's body).
const MAX_SNAPSHOT_BODY: usize = 32 * 1024 * 1024;
/// Idle connections kept for reuse.
const POOL_SIZE: usize = 8;
/// How long the CA service's internal API keeps a silent connection open (at least;
/// longer when its listeners' idle timeout is set higher).
pub const API_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// A pooled connection idle longer than this is not reused: the CA service closes
/// connections silent for [`API_IDLE_TIMEOUT`], and reusing one just as it closes would
/// fail the call. Longer than the protocols' 30 s housekeeping rounds, so an endpoint
/// pod's calls reuse one connection instead of a mutual-TLS handshake each.
const POOL_IDLE: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("CA service URL `{0}`: {1}")]
    Url(String, String),
    /// Connecting, the TLS or HTTP handshake, or the exchange failed at `stage`.
    #[error("CA service unreachable: {stage}: {source}")]
    Transport {
        stage: &'static str,
        #[source]
        source: Cause,
    },
    /// No answer within the time a call may take.
    #[error("CA service unreachable: timed out")]
    TimedOut,
    #[error("CA service answered {status}: {}", .body.message)]
    Status { status: StatusCode, body: Box<ErrorBody> },
    /// The request or the answer does not (de)serialize.
    #[error("CA service answer does not decode: {0}")]
    Decode(#[source] Cause),
    #[error("CA service request of {0} bytes exceeds {MAX_BODY}")]
    TooLarge(usize),
}

impl ClientError {
    fn transport(stage: &'static str) -> impl FnOnce(Cause) -> Self {
        move |source| Self::Transport { stage, source }
    }

    fn decode(source: impl Into<Cause>) -> Self {
        Self::Decode(source.into())
    }
}

impl From<ClientError> for CoreError {
    /// A core error the CA service reported is rebuilt as it was; anything else is the
    /// CA service being unavailable (transport) or refusing (forbidden, malformed).
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Status { body, .. } if body.error.is_some() => {
                body.error.clone().map(CoreError::from).unwrap_or_else(|| CoreError::Signing(String::new().into()))
            }
            e @ (ClientError::Transport { .. } | ClientError::TimedOut) => {
                CoreError::Store(StoreError::unavailable(e.to_string()))
            }
            ClientError::Status { status, body } if status.is_server_error() => {
                CoreError::Store(StoreError::unavailable(format!("CA service {status}: {}", body.message)))
            }
            other => CoreError::Store(StoreError::invalid(other.to_string())),
        }
    }
}

impl From<ClientError> for StoreError {
    fn from(e: ClientError) -> Self {
        match CoreError::from(e) {
            CoreError::Store(s) => s,
            other => StoreError::invalid(other.to_string()),
        }
    }
}

/// An HTTPS/1.1 client of the internal API with client-certificate authentication.
pub struct Transport {
    host: String,
    port: u16,
    authority: String,
    server_name: ServerName<'static>,
    tls: Arc<Reloading<rustls::ClientConfig>>,
    idle: Mutex<Vec<(Instant, SendRequest<Full<Bytes>>)>>,
    /// When a call last got an answer from the CA service (readiness).
    last_ok: Mutex<Option<Instant>>,
    /// When the snapshot long poll in progress started, if one is.
    watching: Mutex<Option<Instant>>,
}

impl Transport {
    /// `url` is `https://host:port` (no path).
    pub fn new(url: &str, tls: Arc<Reloading<rustls::ClientConfig>>) -> Result<Arc<Self>, ClientError> {
        let bad = |m: &str| ClientError::Url(url.to_owned(), m.to_owned());
        let uri: Uri = url.parse().map_err(|_| bad("not a URL"))?;
        if uri.scheme_str() != Some("https") {
            return Err(bad("the scheme must be https"));
        }
        let host = uri.host().ok_or_else(|| bad("no host"))?.trim_matches(['[', ']']).to_owned();
        let port = uri.port_u16().unwrap_or(443);
        let server_name = ServerName::try_from(host.clone()).map_err(|_| bad("host is not a DNS name or IP"))?;
        Ok(Arc::new(Self {
            authority: uri.authority().map(|a| a.to_string()).unwrap_or_default(),
            host,
            port,
            server_name,
            tls,
            idle: Mutex::new(Vec::new()),
            last_ok: Mutex::new(None),
            watching: Mutex::new(None),
        }))
    }

    /// When the CA service last answered.
    pub fn last_ok(&self) -> Option<Instant> {
        *self.last_ok.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, ClientError> {
        let t = ClientError::transport;
        let work = async {
            let tcp = TcpStream::connect((self.host.as_str(), self.port)).await.map_err(|e| t("connect")(e.into()))?;
            let _ = tcp.set_nodelay(true);
            let tls = TlsConnector::from(self.tls.get())
                .connect(self.server_name.clone(), tcp)
                .await
                .map_err(|e| t("TLS")(e.into()))?;
            let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
                .await
                .map_err(|e| t("HTTP handshake")(e.into()))?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            Ok(send)
        };
        tokio::time::timeout(CONNECT_TIMEOUT, work).await.map_err(|e| t("connect timed out")(e.into()))?
    }

    async fn sender(&self) -> Result<SendRequest<Full<Bytes>>, ClientError> {
        loop {
            let pooled = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
            match pooled {
                Some((since, mut s)) if !s.is_closed() && since.elapsed() < POOL_IDLE => {
                    if s.ready().await.is_ok() {
                        return Ok(s);
                    }
                }
                Some(_) => {}
                None => return self.connect().await,
            }
        }
    }

    /// True when the CA service answered within `within`, or a snapshot watch is held
    /// open by it (a long poll in progress on a live connection: the CA service is there,
    /// it just has nothing new to say yet).
    pub fn answered_within(&self, within: Duration) -> bool {
        let recent = |t: Option<Instant>, window: Duration| t.is_some_and(|t| t.elapsed() < window);
        recent(self.last_ok(), within)
            || recent(*self.watching.lock().unwrap_or_else(|e| e.into_inner()), SNAPSHOT_WAIT + within)
    }

    /// One exchange: `method path` with `body`, an optional `If-None-Match`, within
    /// `timeout`, reading at most `limit` bytes of the answer.
    async fn exchange(
        &self,
        method: Method,
        path: &str,
        body: Vec<u8>,
        if_none_match: Option<&str>,
        timeout: Duration,
        limit: usize,
    ) -> Result<Exchange, ClientError> {
        let work = async {
            let mut sender = self.sender().await?;
            let mut req = Request::builder()
                .method(method)
                .uri(path)
                .header(hyper::header::HOST, &self.authority)
                .header(hyper::header::CONTENT_TYPE, "application/json");
            if let Some(tag) = if_none_match {
                req = req.header(hyper::header::IF_NONE_MATCH, tag);
            }
            let req =
                req.body(Full::new(Bytes::from(body))).map_err(|e| ClientError::transport("request")(e.into()))?;
            let rsp = sender.send_request(req).await.map_err(|e| ClientError::transport("request")(e.into()))?;
            let status = rsp.status();
            let etag = rsp.headers().get(hyper::header::ETAG).and_then(|v| v.to_str().ok()).map(str::to_owned);
            let body = Limited::new(rsp.into_body(), limit)
                .collect()
                .await
                .map_err(ClientError::transport("reading the answer"))?
                .to_bytes();
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            if idle.len() < POOL_SIZE {
                idle.push((Instant::now(), sender));
            }
            Ok::<_, ClientError>(Exchange { status, etag, body })
        };
        let answer = tokio::time::timeout(timeout, work).await.map_err(|_| ClientError::TimedOut)??;
        *self.last_ok.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        Ok(answer)
    }

    /// One call: `method path` with an optional JSON body, JSON answer.
    pub async fn call<B: Serialize, R: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<R, ClientError> {
        let bytes = match body {
            Some(b) => serde_json::to_vec(b).map_err(ClientError::decode)?,
            None => Vec::new(),
        };
        if bytes.len() > MAX_BODY {
            return Err(ClientError::TooLarge(bytes.len()));
        }
        let Exchange { status, body, .. } = self.exchange(method, path, bytes, None, CALL_TIMEOUT, MAX_BODY).await?;
        if !status.is_success() || status == StatusCode::ACCEPTED {
            return Err(status_error(status, &body));
        }
        serde_json::from_slice(&body).map_err(ClientError::decode)
    }

    /// `GET /v1/snapshot`: with `held` (the ETag of the copy the caller has) and `wait`,
    /// a long poll that ends with a new snapshot or `None` (304: unchanged).
    pub async fn snapshot(
        &self,
        held: Option<&str>,
        wait: Duration,
    ) -> Result<Option<(SnapshotWire, Option<String>)>, ClientError> {
        let path = match (held, wait.as_secs()) {
            (Some(_), secs) if secs > 0 => format!("/v1/snapshot?wait={secs}"),
            _ => "/v1/snapshot".to_owned(),
        };
        let timeout = CALL_TIMEOUT + wait;
        *self.watching.lock().unwrap_or_else(|e| e.into_inner()) = held.map(|_| Instant::now());
        let answer = self.exchange(Method::GET, &path, Vec::new(), held, timeout, MAX_SNAPSHOT_BODY).await;
        *self.watching.lock().unwrap_or_else(|e| e.into_inner()) = None;
        let Exchange { status, etag, body } = answer?;
        if status == StatusCode::NOT_MODIFIED {
            return Ok(None);
        }
        if status != StatusCode::OK {
            return Err(status_error(status, &body));
        }
        Ok(Some((serde_json::from_slice(&body).map_err(ClientError::decode)?, etag)))
    }
}

/// One answer of the CA service.
struct Exchange {
    status: StatusCode,
    etag: Option<String>,
    body: Bytes,
}

/// The error of a non-success answer, from its JSON body (or its first bytes).
fn status_error(status: StatusCode, body: &[u8]) -> ClientError {
    let body = serde_json::from_slice::<ErrorBody>(body).unwrap_or_else(|_| ErrorBody {
        kind: "internal".into(),
        message: String::from_utf8_lossy(body).chars().take(200).collect(),
        error: None,
    });
    ClientError::Status { status, body: Box::new(body) }
}

#[derive(Default)]
struct Snapshot {
    issuers: HashMap<ObjectRef, Arc<IssuerInfo>>,
    profiles: HashMap<ObjectRef, Arc<Profile>>,
    /// The CA service's ETag of this content (`None`: a CA service without ETags).
    etag: Option<String>,
}

/// What one snapshot poll found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Poll {
    /// Unchanged (304).
    Unchanged,
    /// A new snapshot with an ETag: ask again at once, conditionally.
    Changed,
    /// A full answer without an ETag (a CA service from before conditional polls).
    Unconditional,
}

/// The CA as an endpoint pod sees it: the CA service over mutual TLS.
pub struct RemoteAuthority {
    transport: Arc<Transport>,
    snapshot: RwLock<Snapshot>,
}

impl RemoteAuthority {
    /// Connects, loads the first snapshot (failing when the CA service cannot be
    /// reached), and keeps the snapshot fresh in the background: a long poll the CA
    /// service answers when the snapshot changes (see [`Self::poll`]).
    pub async fn connect(transport: Arc<Transport>) -> Result<Arc<Self>, ClientError> {
        let me = Arc::new(Self { transport, snapshot: RwLock::default() });
        me.refresh().await?;
        let weak = Arc::downgrade(&me);
        tokio::spawn(async move {
            loop {
                let started = Instant::now();
                let Some(me) = weak.upgrade() else { return };
                let pause = match me.poll(SNAPSHOT_WAIT).await {
                    Ok(Poll::Unchanged | Poll::Changed) => Duration::ZERO,
                    Ok(Poll::Unconditional) => SNAPSHOT_EVERY,
                    Err(e) => {
                        tracing::warn!(error = %e, "refreshing issuers and profiles from the CA service failed");
                        SNAPSHOT_EVERY
                    }
                };
                drop(me);
                tokio::time::sleep(pause.max(SNAPSHOT_MIN_SPACING.saturating_sub(started.elapsed()))).await;
            }
        });
        Ok(me)
    }

    pub fn transport(&self) -> &Arc<Transport> {
        &self.transport
    }

    /// Re-reads issuers and profiles unconditionally.
    pub async fn refresh(&self) -> Result<(), ClientError> {
        if let Some((wire, etag)) = self.transport.snapshot(None, Duration::ZERO).await? {
            self.install(wire, etag)?;
        }
        Ok(())
    }

    /// Asks for the snapshot if it differs from the one held, letting the CA service
    /// hold the request up to `wait` for a change.
    pub async fn poll(&self, wait: Duration) -> Result<Poll, ClientError> {
        let held = self.snapshot.read().unwrap_or_else(|e| e.into_inner()).etag.clone();
        match self.transport.snapshot(held.as_deref(), wait).await? {
            None => Ok(Poll::Unchanged),
            Some((wire, etag)) => {
                let conditional = etag.is_some();
                self.install(wire, etag)?;
                Ok(if conditional { Poll::Changed } else { Poll::Unconditional })
            }
        }
    }

    /// The ETag of the snapshot held (`None` before the first or from an older CA service).
    pub fn snapshot_etag(&self) -> Option<String> {
        self.snapshot.read().unwrap_or_else(|e| e.into_inner()).etag.clone()
    }

    fn install(&self, snap: SnapshotWire, etag: Option<String>) -> Result<(), ClientError> {
        let mut next = Snapshot { etag, ..Snapshot::default() };
        for i in snap.issuers {
            let info = i.into_info().map_err(ClientError::decode)?;
            next.issuers.insert(info.id.clone(), Arc::new(info));
        }
        for p in snap.profiles {
            let p = p.into_profile().map_err(ClientError::decode)?;
            next.profiles.insert(p.id.clone(), Arc::new(p));
        }
        *self.snapshot.write().unwrap_or_else(|e| e.into_inner()) = next;
        Ok(())
    }

    /// Asks for an internal certificate through the public route (what the operator
    /// uses too): PEM CSR in, PEM certificate and chain out.
    pub async fn internal_certificate(
        &self,
        req: &InternalCertificateRequest,
    ) -> Result<InternalCertificateResponse, ClientError> {
        self.transport.call(Method::POST, "/v1/internal-certificates", Some(req)).await
    }
}

fn wire_err(e: WireError) -> CoreError {
    CoreError::Store(StoreError::invalid(e.to_string()))
}

#[async_trait]
impl Authority for RemoteAuthority {
    async fn issue(&self, req: IssuanceRequest) -> Result<IssueOutcome, CoreError> {
        let body = IssueRequestWire::from_request(&req).map_err(wire_err)?;
        let outcome: IssueOutcomeWire = self.transport.call(Method::POST, "/v1/issue", Some(&body)).await?;
        Ok(outcome.into())
    }

    async fn issue_internal(&self, req: InternalCertRequest) -> Result<Issued, CoreError> {
        let body = RoleIssueWire {
            role: req.role.as_str().to_owned(),
            endpoint: req.endpoint,
            issuer: req.issuer,
            csr: CsrWire::from_csr(&req.csr).map_err(wire_err)?,
            lifetime_seconds: req.lifetime.map(|d| d.as_secs()),
        };
        let issued: IssuedWire = self.transport.call(Method::POST, "/v1/roles/issue", Some(&body)).await?;
        Ok(issued.into())
    }

    async fn revoke(&self, req: RevocationRequest) -> Result<RevokeOutcome, CoreError> {
        let body =
            RevokeWire { issuer: req.issuer, serial: req.serial, reason: req.reason.code(), requester: req.requester };
        let out: RevokeOutcomeWire = self.transport.call(Method::POST, "/v1/revoke", Some(&body)).await?;
        Ok(out.into())
    }

    fn issuer(&self, id: &ObjectRef) -> Option<Arc<IssuerInfo>> {
        self.snapshot.read().unwrap_or_else(|e| e.into_inner()).issuers.get(id).cloned()
    }

    fn profile(&self, id: &ObjectRef) -> Option<Arc<Profile>> {
        self.snapshot.read().unwrap_or_else(|e| e.into_inner()).profiles.get(id).cloned()
    }

    async fn find_serial(&self, serial: &str) -> Result<Vec<CertificateRecord>, CoreError> {
        let body = LookupWire { serial: serial.to_owned(), issuer: None, exchange: None };
        Ok(self.transport.call(Method::POST, "/v1/certificates/lookup", Some(&body)).await?)
    }

    async fn certificate(&self, issuer: &ObjectRef, serial: &str) -> Result<Option<CertificateRecord>, CoreError> {
        let body = LookupWire { serial: serial.to_owned(), issuer: Some(issuer.clone()), exchange: None };
        let v: Vec<CertificateRecord> =
            self.transport.call(Method::POST, "/v1/certificates/lookup", Some(&body)).await?;
        Ok(v.into_iter().next())
    }

    async fn exchange_certificates(&self, exchange: &str) -> Result<Vec<CertificateRecord>, CoreError> {
        let body = LookupWire { serial: String::new(), issuer: None, exchange: Some(exchange.to_owned()) };
        Ok(self.transport.call(Method::POST, "/v1/certificates/lookup", Some(&body)).await?)
    }

    async fn generate_crl(&self, issuer: &ObjectRef) -> Result<Vec<u8>, CoreError> {
        let body = CrlRequestWire { issuer: issuer.clone() };
        let crl: CrlWire = self.transport.call(Method::POST, "/v1/crl", Some(&body)).await?;
        Ok(crl.der)
    }

    async fn approval_outcome(&self, request_id: &str) -> Result<IssueOutcome, CoreError> {
        let body = ApprovalOutcomeWire { request_id: request_id.to_owned() };
        let outcome: IssueOutcomeWire = self.transport.call(Method::POST, "/v1/approvals/outcome", Some(&body)).await?;
        Ok(outcome.into())
    }

    async fn approval_requests(&self, filter: &ApprovalFilter) -> Result<Vec<ApprovalRequest>, CoreError> {
        Ok(self.transport.call(Method::POST, "/v1/approvals/list", Some(filter)).await?)
    }

    async fn approve(
        &self,
        request_id: &str,
        approver: &str,
        reason: Option<&str>,
    ) -> Result<ApprovalRequest, CoreError> {
        self.decide(request_id, true, approver, reason).await
    }

    async fn deny(&self, request_id: &str, approver: &str, reason: &str) -> Result<ApprovalRequest, CoreError> {
        self.decide(request_id, false, approver, Some(reason)).await
    }
}

impl RemoteAuthority {
    /// `POST /v1/approvals/decide` (the CA service accepts it from the operator only).
    async fn decide(
        &self,
        request_id: &str,
        approve: bool,
        approver: &str,
        reason: Option<&str>,
    ) -> Result<ApprovalRequest, CoreError> {
        let body = ApprovalDecisionWire {
            request_id: request_id.to_owned(),
            approve,
            approver: approver.to_owned(),
            reason: reason.map(str::to_owned),
        };
        Ok(self.transport.call(Method::POST, "/v1/approvals/decide", Some(&body)).await?)
    }
}
