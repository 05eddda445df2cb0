//! The CA side of the internal API: routes over the in-process [`Ca`] and the stores,
//! and the mutual-TLS accept loop that tells each request who is calling.
//!
//! Authorization is by [`Identity`]: an endpoint identity acts only for its own
//! EnrollmentEndpoint (an issuance request naming another endpoint is refused with 403,
//! one naming none is attributed to the caller); the operator may ask for internal
//! certificates of any endpoint and read issuers and counts.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::{DefaultBodyLimit, Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use pkiplane_acme::state::{AcmeStateScopes, AuthorizationQuery};
use pkiplane_cmp::state::{CmpStore, ExpiryClaim};
use pkiplane_core::error::CoreError;
use pkiplane_core::inventory::{GroupBy, Inventory, InventoryFilter, RevocationReason};
use pkiplane_core::issuance::{Ca, RevocationRequest};
use pkiplane_core::model::{ObjectRef, Protocol, Requester};
use pkiplane_core::service::{Authority, InternalCertRequest, InternalRole};
use pkiplane_core::x509::csr::{CsrOptions, ParsedCsr};
use pkiplane_core::x509::pem;
use pkiplane_est::state::AuthFailureStore;
use pkiplane_scep::state::{ChallengeKey, RaUpdate, ScepStore, SeenMessage};
use serde::Deserialize;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::identity::{self, Identity};
use crate::snapshot::{Answer, SnapshotFeed};
use crate::tls::Reloading;
use crate::wire::state::*;
use crate::wire::*;

/// How long one request may take on the CA side.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// "Expiring soon" window of `/v1/summary` when the caller names none.
const DEFAULT_EXPIRING_WITHIN: Duration = Duration::from_secs(30 * 86_400);

/// What the routes serve from.
pub struct CaServiceState {
    pub ca: Arc<Ca>,
    /// Scoped to the calling endpoint on every call.
    pub acme: Arc<dyn AcmeStateScopes>,
    pub scep: Arc<dyn ScepStore>,
    pub cmp: Arc<dyn CmpStore>,
    pub est: Arc<dyn AuthFailureStore>,
    /// Issuers the CA could not load, with the reason (reported on `/v1/issuers`).
    pub issuer_problems: Arc<std::sync::RwLock<std::collections::BTreeMap<ObjectRef, String>>>,
    /// `/v1/snapshot`, kept current by [`keep_snapshot_current`].
    pub snapshots: Arc<SnapshotFeed>,
}

/// The authenticated caller of a request (set by [`serve_mtls`]).
#[derive(Clone, Debug)]
pub struct Caller(pub Identity);

type Shared = State<Arc<CaServiceState>>;

/// An error answer: status and JSON body (see [`ErrorBody`]).
pub struct ApiError(StatusCode, Box<ErrorBody>);

impl ApiError {
    fn forbidden(message: impl Into<String>) -> Self {
        ApiError(
            StatusCode::FORBIDDEN,
            Box::new(ErrorBody { kind: "forbidden".into(), message: message.into(), error: None }),
        )
    }

    fn bad_request(message: impl Into<String>) -> Self {
        ApiError(
            StatusCode::BAD_REQUEST,
            Box::new(ErrorBody { kind: "bad_request".into(), message: message.into(), error: None }),
        )
    }
}

/// The HTTP status of each core error kind.
pub fn status_of(kind: pkiplane_core::ErrorKind) -> StatusCode {
    use pkiplane_core::ErrorKind::*;
    match kind {
        BadRequest => StatusCode::BAD_REQUEST,
        Denied => StatusCode::UNPROCESSABLE_ENTITY,
        NotFound => StatusCode::NOT_FOUND,
        Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        let kind = e.kind();
        ApiError(
            status_of(kind),
            Box::new(ErrorBody {
                kind: kind.label().into(),
                message: e.to_string(),
                error: Some(CoreErrorWire::from(&e)),
            }),
        )
    }
}

impl From<pkiplane_core::inventory::StoreError> for ApiError {
    fn from(e: pkiplane_core::inventory::StoreError) -> Self {
        CoreError::Store(e).into()
    }
}

impl From<WireError> for ApiError {
    fn from(e: WireError) -> Self {
        ApiError::bad_request(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.0.is_server_error() {
            tracing::warn!(status = %self.0, error = %self.1.message, "CA service request failed");
        }
        (self.0, Json(self.1)).into_response()
    }
}

type ApiResult<T> = Result<Json<T>, ApiError>;

/// The routes, with bounded bodies and a per-request timeout.
pub fn router(state: Arc<CaServiceState>) -> Router {
    Router::new()
        .route("/v1/issuers", get(issuers))
        .route("/v1/summary", get(summary))
        .route("/v1/snapshot", get(snapshot))
        .route("/v1/internal-certificates", post(internal_certificate))
        .route("/v1/issue", post(issue))
        .route("/v1/roles/issue", post(role_issue))
        .route("/v1/revoke", post(revoke))
        .route("/v1/certificates/lookup", post(lookup))
        .route("/v1/crl", post(crl))
        .route("/v1/approvals/outcome", post(approval_outcome))
        .route("/v1/approvals/list", post(approval_list))
        .route("/v1/approvals/decide", post(approval_decide))
        .route("/v1/state/{store}", post(state_call))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn(|req, next: axum::middleware::Next| async move {
            match tokio::time::timeout(REQUEST_TIMEOUT, next.run(req)).await {
                Ok(r) => r,
                Err(_) => (StatusCode::GATEWAY_TIMEOUT, "the CA service timed out\n").into_response(),
            }
        }))
        .with_state(state)
}

/// The endpoint a caller is, or 403.
fn endpoint_of(caller: &Caller) -> Result<&ObjectRef, ApiError> {
    match &caller.0 {
        Identity::Endpoint(e) => Ok(e),
        other => Err(ApiError::forbidden(format!("{other} is not an endpoint identity"))),
    }
}

/// Makes `requester` the calling endpoint `me`: a requester naming another endpoint
/// may not `verb`.
fn act_as(caller: &Caller, me: ObjectRef, requester: &mut Requester, verb: &str) -> Result<(), ApiError> {
    match &requester.endpoint {
        Some(e) if *e != me => Err(ApiError::forbidden(format!("{} may not {verb} as endpoint {e}", caller.0))),
        _ => {
            requester.endpoint = Some(me);
            Ok(())
        }
    }
}

/// The caller must be `endpoint` (or the operator, when `operator_ok`).
fn may_act_for(caller: &Caller, endpoint: &ObjectRef, operator_ok: bool) -> Result<(), ApiError> {
    match &caller.0 {
        Identity::Endpoint(e) if e == endpoint => Ok(()),
        Identity::Operator if operator_ok => Ok(()),
        other => Err(ApiError::forbidden(format!("{other} may not act for endpoint {endpoint}"))),
    }
}

fn readers_only(caller: &Caller) -> Result<(), ApiError> {
    match caller.0 {
        Identity::Ca => Err(ApiError::forbidden("the CA identity has no business calling itself")),
        _ => Ok(()),
    }
}

async fn issuers(State(s): Shared, Extension(caller): Extension<Caller>) -> ApiResult<Vec<IssuerStatus>> {
    readers_only(&caller)?;
    let mut out: Vec<IssuerStatus> =
        s.ca.issuers()
            .iter()
            .filter_map(|i| s.ca.issuer_info(&i.id))
            .map(|i| IssuerStatus {
                namespace: i.id.namespace.clone(),
                name: i.id.name.clone(),
                ready: true,
                message: None,
                certificate_pem: Some(i.certificate_pem()),
                chain_pem: Some(i.parents_pem()),
                fingerprint: Some(hex::encode(ring::digest::digest(&ring::digest::SHA256, &i.cert.der))),
                serial: Some(i.cert.serial_hex.clone()),
                not_before: Some(crate::rfc3339(i.cert.not_before)),
                not_after: Some(crate::rfc3339(i.cert.not_after)),
                next_certificate_pem: i.next.as_ref().map(|n| pem::encode("CERTIFICATE", &n.cert.der)),
            })
            .collect();
    let problems = s.issuer_problems.read().unwrap_or_else(|e| e.into_inner());
    for (id, why) in problems.iter() {
        if !out.iter().any(|i| i.namespace == id.namespace && i.name == id.name) {
            out.push(IssuerStatus {
                namespace: id.namespace.clone(),
                name: id.name.clone(),
                ready: false,
                message: Some(why.clone()),
                ..IssuerStatus::default()
            });
        }
    }
    drop(problems);
    Ok(Json(out))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SummaryQuery {
    expiring_within_seconds: Option<u64>,
}

async fn summary(
    State(s): Shared,
    Extension(caller): Extension<Caller>,
    Query(q): Query<SummaryQuery>,
) -> ApiResult<Summary> {
    readers_only(&caller)?;
    let within = q.expiring_within_seconds.map(Duration::from_secs).unwrap_or(DEFAULT_EXPIRING_WITHIN);
    let inv: &Arc<dyn Inventory> = s.ca.inventory();
    let now = SystemTime::now();
    let mut profiles = inv.counts(GroupBy::Profile, now, within).await?;
    pkiplane_core::approval::add_waiting(&mut profiles, &s.ca.waiting_approvals().await?);
    Ok(Json(Summary {
        issuers: inv.counts(GroupBy::Issuer, now, within).await?,
        profiles,
        endpoints: inv.counts(GroupBy::Endpoint, now, within).await?,
        profile_protocols: inv.counts(GroupBy::ProfileProtocol, now, within).await?,
        endpoint_profiles: inv.counts(GroupBy::EndpointProfile, now, within).await?,
    }))
}

/// The issuers and profiles endpoint pods serve from, as the CA holds them now.
pub fn snapshot_of(ca: &Ca) -> SnapshotWire {
    let issuers =
        ca.issuers().iter().filter_map(|i| ca.issuer_info(&i.id)).map(|i| IssuerInfoWire::from(&*i)).collect();
    let profiles = ca.profiles().iter().map(|p| ProfileWire::from_profile(p)).collect();
    SnapshotWire { issuers, profiles }
}

/// Republishes the snapshot whenever `applied` ticks (a configuration change was applied
/// to the CA) and every `recheck` (what changes the CA without a configuration change,
/// a key rollover step, shows within that), until the feed's last user is gone.
pub fn keep_snapshot_current(
    ca: Arc<Ca>,
    feed: &Arc<SnapshotFeed>,
    mut applied: watch::Receiver<u64>,
    recheck: Duration,
) {
    let weak = Arc::downgrade(feed);
    tokio::spawn(async move {
        let mut timer = tokio::time::interval(recheck);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                changed = applied.changed() => if changed.is_err() { return },
                _ = timer.tick() => {}
            }
            let Some(feed) = weak.upgrade() else { return };
            if feed.publish(&snapshot_of(&ca)) {
                tracing::debug!(etag = %feed.current().etag, "endpoint snapshot changed");
            }
        }
    });
}

/// `GET /v1/snapshot[?wait=SECONDS]`, conditional on `If-None-Match` (see [`crate::snapshot`]).
async fn snapshot(
    State(s): Shared,
    Extension(caller): Extension<Caller>,
    headers: axum::http::HeaderMap,
    uri: axum::http::Uri,
) -> Result<Response, ApiError> {
    readers_only(&caller)?;
    let if_none_match = headers.get(axum::http::header::IF_NONE_MATCH).and_then(|v| v.to_str().ok());
    let answer = s.snapshots.answer(if_none_match, crate::snapshot::wait_of(uri.query())).await;
    let (status, etag, body) = match answer {
        Answer::Full(p) => (StatusCode::OK, p.etag.clone(), axum::body::Body::from(p.body.clone())),
        Answer::NotModified(etag) => (StatusCode::NOT_MODIFIED, etag, axum::body::Body::empty()),
    };
    Ok((
        status,
        [(axum::http::header::ETAG, etag), (axum::http::header::CONTENT_TYPE, "application/json".to_owned())],
        body,
    )
        .into_response())
}

async fn internal_certificate(
    State(s): Shared,
    Extension(caller): Extension<Caller>,
    Json(req): Json<InternalCertificateRequest>,
) -> ApiResult<InternalCertificateResponse> {
    may_act_for(&caller, &req.endpoint, true)?;
    let role = InternalRole::parse(&req.role).ok_or_else(|| {
        ApiError::bad_request(format!("unknown role `{}` (serving-tls, scep-ra, cmp-protection, est-signer)", req.role))
    })?;
    let issuer = req.issuer.clone().ok_or_else(|| ApiError::bad_request("issuer is required"))?;
    let csr = ParsedCsr::from_pem_or_der(req.csr_pem.as_bytes(), CsrOptions::default()).map_err(CoreError::from)?;
    // The names the caller asked for must be the ones its CSR carries.
    if !req.dns_names.is_empty() || !req.ip_addresses.is_empty() {
        let listed: Vec<String> = req
            .dns_names
            .iter()
            .map(|d| format!("DNS:{d}"))
            .chain(req.ip_addresses.iter().map(|i| format!("IP:{i}")))
            .collect();
        if let Some(extra) = csr.sans.iter().map(|s| s.to_string()).find(|s| !listed.contains(s)) {
            return Err(ApiError::bad_request(format!("the CSR names {extra}, which dnsNames/ipAddresses do not")));
        }
    }
    let lifetime = req.lifetime_seconds.map(Duration::from_secs);
    let issued =
        s.ca.issue_internal(InternalCertRequest { role, endpoint: req.endpoint, issuer, csr, lifetime }).await?;
    Ok(Json(InternalCertificateResponse { certificate_pem: issued.certificate_pem(), chain_pem: issued.chain_pem }))
}

async fn issue(
    State(s): Shared,
    Extension(caller): Extension<Caller>,
    Json(req): Json<IssueRequestWire>,
) -> ApiResult<IssueOutcomeWire> {
    let me = endpoint_of(&caller)?.clone();
    let mut req = req.into_request()?;
    act_as(&caller, me, &mut req.requester, "issue")?;
    if req.requester.protocol == Protocol::Local {
        return Err(ApiError::forbidden("endpoints may not issue as protocol LOCAL"));
    }
    let outcome = Authority::issue(s.ca.as_ref(), req).await?;
    Ok(Json(IssueOutcomeWire::from(&outcome)))
}

async fn role_issue(
    State(s): Shared,
    Extension(caller): Extension<Caller>,
    Json(req): Json<RoleIssueWire>,
) -> ApiResult<IssuedWire> {
    may_act_for(&caller, &req.endpoint, false)?;
    let role = InternalRole::parse(&req.role).ok_or_else(|| ApiError::bad_request(format!("role `{}`", req.role)))?;
    let lifetime = req.lifetime_seconds.map(Duration::from_secs);
    let csr = req.csr.into_csr()?;
    let issued =
        s.ca.issue_internal(InternalCertRequest { role, endpoint: req.endpoint, issuer: req.issuer, csr, lifetime })
            .await?;
    Ok(Json(IssuedWire::from(&issued)))
}

async fn revoke(
    State(s): Shared,
    Extension(caller): Extension<Caller>,
    Json(mut req): Json<RevokeWire>,
) -> ApiResult<RevokeOutcomeWire> {
    let me = endpoint_of(&caller)?.clone();
    act_as(&caller, me, &mut req.requester, "revoke")?;
    let reason = RevocationReason::from_code(req.reason)
        .ok_or_else(|| ApiError::bad_request(format!("revocation reason {}", req.reason)))?;
    let outcome = s.ca.revoke(RevocationRequest::new(&req.issuer, &req.serial, reason, &req.requester)).await?;
    Ok(Json(RevokeOutcomeWire::from(&outcome)))
}

/// An endpoint asks again for one of its own requests (the operator for any).
async fn approval_outcome(
    State(s): Shared,
    Extension(caller): Extension<Caller>,
    Json(req): Json<ApprovalOutcomeWire>,
) -> ApiResult<IssueOutcomeWire> {
    let record = s.ca.approval_request(&req.request_id).await?.ok_or_else(|| {
        CoreError::Approval(pkiplane_core::approval::ApprovalError::NotFound { id: req.request_id.clone() })
    })?;
    match (&caller.0, &record.requester.endpoint) {
        (Identity::Operator, _) => {}
        (Identity::Endpoint(me), Some(e)) if me == e => {}
        // Another endpoint's request is none of the caller's business: as if unknown.
        _ => {
            return Err(
                CoreError::Approval(pkiplane_core::approval::ApprovalError::NotFound { id: req.request_id }).into()
            );
        }
    }
    let outcome = s.ca.approval_outcome(&req.request_id).await?;
    Ok(Json(IssueOutcomeWire::from(&outcome)))
}

/// Approval requests; an endpoint sees its own only.
async fn approval_list(
    State(s): Shared,
    Extension(caller): Extension<Caller>,
    Json(mut filter): Json<pkiplane_core::approval::ApprovalFilter>,
) -> ApiResult<Vec<pkiplane_core::approval::ApprovalRequest>> {
    match &caller.0 {
        Identity::Operator => {}
        Identity::Endpoint(me) => filter.endpoint = Some(me.clone()),
        other => return Err(ApiError::forbidden(format!("{other} may not list approval requests"))),
    }
    Ok(Json(s.ca.approval_requests(&filter).await?))
}

/// Approve or deny: the operator's identity only (an endpoint never approves what it
/// asked for; people reach this through the operator or the admin API).
async fn approval_decide(
    State(s): Shared,
    Extension(caller): Extension<Caller>,
    Json(req): Json<ApprovalDecisionWire>,
) -> ApiResult<pkiplane_core::approval::ApprovalRequest> {
    if caller.0 != Identity::Operator {
        return Err(ApiError::forbidden(format!("{} may not approve or deny requests", caller.0)));
    }
    let record = if req.approve {
        s.ca.approve(&req.request_id, &req.approver, req.reason.as_deref()).await?
    } else {
        s.ca.deny(&req.request_id, &req.approver, req.reason.as_deref().unwrap_or("")).await?
    };
    Ok(Json(record))
}

async fn lookup(
    State(s): Shared,
    Extension(caller): Extension<Caller>,
    Json(req): Json<LookupWire>,
) -> ApiResult<Vec<pkiplane_core::inventory::CertificateRecord>> {
    let me = endpoint_of(&caller)?.clone();
    let inv = s.ca.inventory();
    let records = match (&req.exchange, &req.issuer) {
        // An endpoint sees the exchanges of its own requests only.
        (Some(exchange), _) => {
            let filter = InventoryFilter { exchange: Some(exchange.clone()), endpoint: Some(me), ..Default::default() };
            inv.list(&filter).await?
        }
        (None, Some(i)) => inv.get(i, &req.serial).await?.into_iter().collect(),
        (None, None) => inv.find_serial(&req.serial).await?,
    };
    Ok(Json(records))
}

async fn crl(
    State(s): Shared,
    Extension(caller): Extension<Caller>,
    Json(req): Json<CrlRequestWire>,
) -> ApiResult<CrlWire> {
    endpoint_of(&caller)?;
    Ok(Json(CrlWire { der: s.ca.generate_crl(&req.issuer).await? }))
}

fn json<T: serde::Serialize>(v: T) -> Result<Value, ApiError> {
    serde_json::to_value(v).map_err(|e| ApiError::bad_request(e.to_string()))
}

async fn state_call(
    State(s): Shared,
    Extension(caller): Extension<Caller>,
    Path(store): Path<String>,
    Json(call): Json<Value>,
) -> ApiResult<Value> {
    let me = endpoint_of(&caller)?.clone();
    let out = match store.as_str() {
        "acme" => acme_call(&s, &me, parse(&store, call)?).await?,
        "scep" => {
            let call: ScepCall = parse(&store, call)?;
            if let Some(e) = call.endpoint() {
                may_act_for(&caller, e, false)?;
            }
            scep_call(&s, call).await?
        }
        "cmp" => {
            let call: CmpCall = parse(&store, call)?;
            if let Some(e) = call.endpoint() {
                may_act_for(&caller, e, false)?;
            }
            cmp_call(&s, call).await?
        }
        "est" => est_call(&s, &me, parse(&store, call)?).await?,
        other => return Err(ApiError(StatusCode::NOT_FOUND, Box::new(not_found(format!("no state store `{other}`"))))),
    };
    Ok(Json(out))
}

fn parse<T: serde::de::DeserializeOwned>(store: &str, v: Value) -> Result<T, ApiError> {
    serde_json::from_value(v).map_err(|e| ApiError::bad_request(format!("{store} call: {e}")))
}

fn not_found(message: String) -> ErrorBody {
    ErrorBody { kind: "not_found".into(), message, error: None }
}

/// ACME state, scoped to the calling endpoint: an endpoint identity reads and writes the
/// accounts, orders, authorizations and nonces of its own endpoint only.
async fn acme_call(s: &CaServiceState, me: &ObjectRef, call: AcmeCall) -> Result<Value, ApiError> {
    let st = s.acme.for_endpoint(me);
    match call {
        AcmeCall::AddNonce { nonce, expires } => json(st.add_nonce(&nonce, expires).await?),
        AcmeCall::TakeNonce { nonce, now } => json(st.take_nonce(&nonce, now).await?),
        AcmeCall::CreateAccount { account, eab } => {
            json(NewAccountWire::from(st.create_account(&account, eab_from_wire(eab).as_ref()).await?))
        }
        AcmeCall::Account { id } => json(st.account(&id).await?),
        AcmeCall::AccountByThumbprint { thumbprint } => json(st.account_by_thumbprint(&thumbprint).await?),
        AcmeCall::UpdateAccount { account } => json(AccountUpdateWire::from(st.update_account(&account).await?)),
        AcmeCall::CreateOrder { order, new_authorizations } => {
            json(NewOrderWire::from(st.create_order(&order, &new_authorizations).await?))
        }
        AcmeCall::Order { id } => json(st.order(&id).await?),
        AcmeCall::UpdateOrder { order } => json(st.update_order(&order).await?),
        AcmeCall::AccountOrders { account_id, limit } => json(st.account_orders(&account_id, limit).await?),
        AcmeCall::Authorization { id } => json(st.authorization(&id).await?),
        AcmeCall::UpdateAuthorization { authz } => json(st.update_authorization(&authz).await?),
        AcmeCall::ValidAuthorization { account_id, identifier, wildcard, now } => {
            json(st.valid_authorization(&AuthorizationQuery { account_id, identifier, wildcard, now }).await?)
        }
        AcmeCall::PurgeExpired { now, retention_seconds } => {
            json(st.purge_expired(now, Duration::from_secs(retention_seconds)).await?)
        }
    }
}

async fn scep_call(s: &CaServiceState, call: ScepCall) -> Result<Value, ApiError> {
    let st = &s.scep;
    match call {
        ScepCall::RecordMessage { endpoint, transaction_id, sender_nonce, expires } => {
            json(st.record_message(&SeenMessage { endpoint, transaction_id, sender_nonce, expires }).await?)
        }
        ScepCall::AddChallenge { challenge } => json(st.add_challenge(&challenge).await?),
        ScepCall::Challenge { endpoint, secret_sha256 } => {
            json(st.challenge(&ChallengeKey { endpoint, secret_sha256 }).await?)
        }
        ScepCall::ConsumeChallenge { endpoint, secret_sha256, now } => {
            json(ChallengeUseWire::from(st.consume_challenge(&ChallengeKey { endpoint, secret_sha256 }, now).await?))
        }
        ScepCall::CreateTransaction { tx } => json(st.create_transaction(&tx).await?),
        ScepCall::Transaction { endpoint, transaction_id } => json(st.transaction(&endpoint, &transaction_id).await?),
        ScepCall::UpdateTransaction { tx } => json(st.update_transaction(&tx).await?),
        ScepCall::PendingTransactions { endpoint, limit } => json(st.pending_transactions(&endpoint, limit).await?),
        ScepCall::RaMaterial { endpoint } => json(st.ra_material(&endpoint).await?.as_ref().map(RaMaterialWire::from)),
        ScepCall::PutRaMaterial { endpoint, material, replacing } => {
            let replacing = replacing.map(|r| pem::decode_chain(r.as_bytes(), "CERTIFICATE"));
            let replacing = match replacing {
                Some(Ok(mut v)) if v.len() == 1 => Some(v.remove(0)),
                Some(_) => return Err(ApiError::bad_request("replacing must be one PEM certificate")),
                None => None,
            };
            let kept = st.put_ra_material(&RaUpdate { endpoint, material: (&material).into(), replacing }).await?;
            json(RaMaterialWire::from(&kept))
        }
        ScepCall::PurgeExpired { now, retention_seconds } => {
            json(st.purge_expired(now, Duration::from_secs(retention_seconds)).await?)
        }
    }
}

async fn cmp_call(s: &CaServiceState, call: CmpCall) -> Result<Value, ApiError> {
    let st = &s.cmp;
    match call {
        CmpCall::CreateTransaction { tx } => json(st.create_transaction(&tx).await?),
        CmpCall::StartTransaction { tx, nonce, nonce_expires } => {
            json(st.start_transaction(&tx, &nonce, nonce_expires).await?)
        }
        CmpCall::Transaction { endpoint, transaction_id } => json(st.transaction(&endpoint, &transaction_id).await?),
        CmpCall::UpdateTransaction { tx } => json(st.update_transaction(&tx).await?),
        CmpCall::ClaimExpired { endpoint, now, limit } => {
            json(st.claim_expired(&ExpiryClaim { endpoint, now, limit }).await?)
        }
        CmpCall::UseNonce { endpoint, nonce, expires } => json(st.use_nonce(&endpoint, &nonce, expires).await?),
        CmpCall::Purge { now, retention_seconds } => json(st.purge(now, Duration::from_secs(retention_seconds)).await?),
    }
}

/// EST counters, scoped to the calling endpoint so endpoints cannot reset each other's.
async fn est_call(s: &CaServiceState, me: &ObjectRef, call: EstCall) -> Result<Value, ApiError> {
    let scoped = |k: &str| format!("{me}|{k}");
    match call {
        EstCall::Get { key } => json(s.est.get(&scoped(&key)).await?),
        EstCall::RecordFailure { key, now, forget_after } => {
            json(s.est.record_failure(&scoped(&key), now, forget_after).await?)
        }
        EstCall::Clear { key } => json(s.est.clear(&scoped(&key)).await?),
    }
}

/// Serves `router` over mutual TLS under `limits` until `shutdown`: every connection
/// must present a client certificate chaining to the internal CA (rustls refuses it
/// otherwise) whose URI SAN is a pkiplane identity; the identity is attached to each
/// request as [`Caller`].
pub async fn serve_mtls(
    listener: TcpListener,
    limits: pkiplane_listen::Limits,
    router: Router,
    tls: Arc<Reloading<rustls::ServerConfig>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let stop = async move {
        let _ = shutdown.wait_for(|v| *v).await;
    };
    pkiplane_listen::serve(listener, limits, Mtls { tls, router }, stop).await;
}

/// Sets up an internal API connection: the mutual TLS handshake and the caller's identity.
struct Mtls {
    tls: Arc<Reloading<rustls::ServerConfig>>,
    router: Router,
}

impl pkiplane_listen::Acceptor for Mtls {
    type Io = tokio_rustls::server::TlsStream<pkiplane_listen::Tracked<tokio::net::TcpStream>>;

    async fn accept(
        &self,
        stream: pkiplane_listen::Tracked<tokio::net::TcpStream>,
        peer: std::net::SocketAddr,
    ) -> Option<(Self::Io, Router)> {
        let stream = match TlsAcceptor::from(self.tls.get()).accept(stream).await {
            Ok(s) => s,
            Err(e) => {
                tracing::info!(%peer, error = %e, "internal API: TLS handshake refused");
                return None;
            }
        };
        let leaf = stream.get_ref().1.peer_certificates().and_then(|c| c.first()).map(|c| c.to_vec());
        let identity = match leaf.as_deref().map(identity::from_certificate) {
            Some(Ok(id)) => id,
            Some(Err(e)) => {
                tracing::info!(%peer, error = %e, "internal API: client certificate carries no pkiplane identity");
                return None;
            }
            None => return None,
        };
        tracing::debug!(%peer, %identity, "internal API connection");
        Some((stream, self.router.clone().layer(Extension(Caller(identity)))))
    }
}
