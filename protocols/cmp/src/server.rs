//! One CMP exchange: decode, check the header, authenticate, run the body's handler,
//! and encode the protected response. Every failure becomes a CMP error message here.
//!
//! Header rules (RFC 9810 section 5.1.1, RFC 9483 section 3.1): pvno 2 or 3
//! (`unsupportedVersion`); a transactionID and a senderNonce of 8 to 64 bytes
//! (`badRequest`, `badSenderNonce`); messageTime, when present, within the allowed clock
//! skew (`badTime`). Replays: a message that starts a transaction with a transactionID
//! in use gets `transactionIdInUse`; a senderNonce seen before gets `badSenderNonce`; a
//! follow-up message must carry the server's last senderNonce as recipNonce
//! (`badRecipientNonce`) and the credential that started the transaction
//! (`notAuthorized`).

use std::time::{Duration, SystemTime};

use crate::state::TransactionKind;

use crate::CmpState;
use crate::auth::{self, Auth};
use crate::error::CmpError;
use crate::exchange::Exchange;
use crate::respond::{self, Envelope, Protect, Reply};
use crate::wire::FailBit;
use crate::wire::body::{self, RequestBody};
use crate::wire::message::{self, DecodeError, Incoming, tag};

/// A response that could not be DER-encoded (a bug): logged here, answered with HTTP 500
/// since no CMP message can carry it.
pub struct EncodeFailed;

fn encoded(result: Result<Vec<u8>, der::Error>) -> Result<Vec<u8>, EncodeFailed> {
    result.map_err(|e| {
        tracing::error!(error = %e, "encoding a CMP response failed");
        EncodeFailed
    })
}

/// Handles one request message and returns the encoded response.
pub async fn process(state: &CmpState, label: Option<&str>, der: &[u8]) -> Result<Vec<u8>, EncodeFailed> {
    let now = state.now();
    let server_nonce = respond::nonce();
    let profile = match label {
        Some(l) => state.config().profile(l),
        None => state.config().default(),
    };
    let issuer = profile.and_then(|p| state.ca().profile(&p.profile)).map(|p| p.issuer.clone());
    let signing = state.credential(issuer.as_ref());
    let sender = signing.as_ref().map(|c| c.name.clone()).unwrap_or_else(crate::convert::null_dn);
    let sign = || signing.clone().map(Protect::Sign).unwrap_or(Protect::None);
    let fail = |request: Option<&message::Header>, pvno: u8, protect: &Protect, e: CmpError| {
        tracing::info!(error = %e, "CMP request refused");
        let env = Envelope { request, pvno, sender: sender.clone(), sender_nonce: server_nonce.clone(), now };
        encoded(respond::encode(env, protect, Reply::error(&e)))
    };

    let msg = match message::decode(der) {
        Ok(m) => m,
        Err(DecodeError::Version(v)) => {
            let e = CmpError::new(FailBit::UnsupportedVersion, format!("pvno {v} is not supported; use 2 or 3"));
            return fail(None, 2, &sign(), e);
        }
        Err(e) => return fail(None, 2, &sign(), CmpError::bad_data_format(e.to_string())),
    };
    let pvno = msg.header.pvno;
    let Some(profile) = profile else {
        let e = CmpError::bad_request("this endpoint has no default profile: use /.well-known/cmp/p/<label>");
        return fail(Some(&msg.header), pvno, &sign(), e);
    };
    let auth = match auth::authenticate(state, &msg, now).await {
        Ok(a) => a,
        Err(e) => return fail(Some(&msg.header), pvno, &sign(), e),
    };
    let protect = match &auth {
        Auth::Mac { kid, secret, mac } => Protect::Mac { kid: kid.clone(), secret: secret.clone(), mac: mac.clone() },
        Auth::Signature(_) => sign(),
    };
    let tid = match check_header(state, &msg, now) {
        Ok(t) => t,
        Err(e) => return fail(Some(&msg.header), pvno, &protect, e),
    };
    let ex = Exchange {
        state,
        msg: &msg,
        der,
        profile,
        explicit_label: label.is_some(),
        auth: &auth,
        now,
        tid,
        server_nonce: server_nonce.clone(),
    };
    match dispatch(&ex).await {
        Ok(reply) => {
            let env = Envelope { request: Some(&msg.header), pvno, sender, sender_nonce: server_nonce, now };
            encoded(respond::encode(env, &protect, reply))
        }
        Err(e) => fail(Some(&msg.header), pvno, &protect, e),
    }
}

/// An error message answering no readable request (HTTP-level refusals: wrong method,
/// content type, size, unknown label), signed with the endpoint's credential.
pub fn error_message(state: &CmpState, label: Option<&str>, e: &CmpError) -> Result<Vec<u8>, EncodeFailed> {
    let profile = label.and_then(|l| state.config().profile(l)).or_else(|| state.config().default());
    let issuer = profile.and_then(|p| state.ca().profile(&p.profile)).map(|p| p.issuer.clone());
    let signing = state.credential(issuer.as_ref());
    let sender = signing.as_ref().map(|c| c.name.clone()).unwrap_or_else(crate::convert::null_dn);
    let protect = signing.map(Protect::Sign).unwrap_or(Protect::None);
    let env = Envelope { request: None, pvno: 2, sender, sender_nonce: respond::nonce(), now: state.now() };
    encoded(respond::encode(env, &protect, Reply::error(e)))
}

/// Header checks that need no state; returns the transactionID as hex.
fn check_header(state: &CmpState, msg: &Incoming, now: SystemTime) -> Result<String, CmpError> {
    let h = &msg.header;
    let tid = match h.transaction_id.as_deref() {
        Some(t) if (1..=64).contains(&t.len()) => hex::encode(t),
        _ => return Err(CmpError::bad_request("transactionID is missing or longer than 64 bytes")),
    };
    match h.sender_nonce.as_deref() {
        Some(n) if (8..=64).contains(&n.len()) => {}
        _ => return Err(CmpError::new(FailBit::BadSenderNonce, "senderNonce is missing or not 8 to 64 bytes")),
    }
    if let Some(t) = h.message_time {
        // GeneralizedTime in messages has whole seconds: compare at that resolution.
        let now =
            pkiplane_core::inventory::unix_seconds::from_secs(pkiplane_core::inventory::unix_seconds::to_secs(now));
        let skew = t.duration_since(now).or_else(|_| now.duration_since(t)).unwrap_or(Duration::MAX);
        if skew > state.config().max_clock_skew {
            return Err(CmpError::new(
                FailBit::BadTime,
                format!(
                    "messageTime is {}s away from the server's clock (at most {}s allowed)",
                    skew.as_secs(),
                    state.config().max_clock_skew.as_secs()
                ),
            ));
        }
    }
    Ok(tid)
}

/// Runs the body's handler.
async fn dispatch(ex: &Exchange<'_>) -> Result<Reply, CmpError> {
    let body_tag = ex.msg.body_tag;
    let body = body::decode_request(body_tag, &ex.msg.body)
        .map_err(|e| CmpError::bad_data_format(format!("the {} body is malformed: {e}", tag::name(body_tag))))?;
    let Some(body) = body else {
        return Err(CmpError::bad_request(format!("a server does not accept {} messages", tag::name(body_tag))));
    };
    let starts = matches!(
        body,
        RequestBody::CertRequests(_) | RequestBody::P10cr(_) | RequestBody::Rr(_) | RequestBody::Genm(_)
    );
    let kind = match &body {
        RequestBody::Rr(_) => TransactionKind::Revocation,
        RequestBody::Genm(_) => TransactionKind::General,
        _ => TransactionKind::Enrollment,
    };
    // A transaction-starting message records its transaction and senderNonce together;
    // any other message only its senderNonce.
    let tx = if starts {
        Some(ex.begin(kind).await?)
    } else {
        ex.use_nonce().await?;
        None
    };
    let started = tx.clone();
    let result = match (body, tx) {
        (RequestBody::CertRequests(items), Some(tx)) => {
            crate::enroll::certificate_requests(ex, tx, body_tag, items).await
        }
        (RequestBody::P10cr(csr), Some(tx)) => crate::enroll::p10cr(ex, tx, csr).await,
        (RequestBody::Rr(details), Some(tx)) => crate::revoke::handle(ex, tx, details).await,
        (RequestBody::Genm(itavs), Some(tx)) => crate::genm::handle(ex, tx, itavs).await,
        (RequestBody::CertConf(statuses), None) => crate::confirm::cert_conf(ex, statuses).await,
        (RequestBody::PollReq(ids), None) => crate::poll::handle(ex, ids).await,
        (RequestBody::Error(e), None) => crate::confirm::client_error(ex, e).await,
        _ => Err(CmpError::system_failure("unexpected message flow")),
    };
    if let Err(e) = &result {
        tracing::debug!(transaction = %ex.tid, error = %e, "CMP exchange failed");
        if let Some(started) = started {
            ex.settle(started).await;
        }
    }
    result
}
