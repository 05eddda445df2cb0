//! PKIOperation (RFC 8894 section 4.3): one pkiMessage in, one CertRep out.
//!
//! Order of checks, each mapped to its failInfo:
//! 1. structure (HTTP 400 when not even a transactionID and senderNonce can be read);
//! 2. algorithms (badAlg), messageDigest and signature (badMessageCheck);
//! 3. signingTime within the endpoint's window (badTime);
//! 4. transactionID + senderNonce never seen before, recorded atomically (badRequest);
//! 5. the envelope is addressed to this RA and opens (badMessageCheck), with an allowed
//!    cipher (badAlg);
//! 6. the operation itself (see [`crate::enroll`] and [`crate::query`]).
//!
//! SUCCESS replies are encrypted to the requester's signing certificate with the
//! cipher the request used; every reply is signed by the RA, echoes the transactionID
//! and sets recipientNonce to the request's senderNonce.

use crate::ScepState;
use crate::algorithms::DigestAlg;
use crate::cms::envelope;
use crate::cms::incoming::{self, Incoming};
use crate::cms::outgoing::{Signer, cert_rep};
use crate::error::ScepError;
use crate::message::{MessageType, PkiStatus};
use crate::outcome::Outcome;
use crate::state::SeenMessage;

/// Handles one pkiMessage; `Ok` is the CertRep (DER), `Err` an error to answer with an
/// HTTP status because no CertRep could be built.
pub async fn pki_operation(state: &ScepState, body: &[u8], profile: Option<&str>) -> Result<Vec<u8>, ScepError> {
    let unverified = incoming::parse(body)?;
    let reply = unverified.reply_to().cloned();
    let ra = state.ra().await?;
    let signer = Signer { cert: &ra.cert, key: ra.key() };
    let legacy = state.config().legacy_algorithms;
    let outcome = async {
        let msg = unverified.verify(legacy)?;
        let result = handle(state, &msg, profile).await;
        Ok::<_, ScepError>((msg, result))
    }
    .await;
    let (msg, result) = match outcome {
        Ok(v) => v,
        Err(e) => {
            let Some(mut reply) = reply else { return Err(e) };
            if reply.digest == DigestAlg::Sha1 && !legacy {
                reply.digest = DigestAlg::Sha256;
            }
            log_failure(state, None, &e);
            return match e.fail_info() {
                Some(f) => cert_rep(&signer, &reply, PkiStatus::Failure, Some(f), None),
                None => Err(e),
            };
        }
    };
    match result {
        Ok((Outcome::Success(content), alg)) => {
            let sealed = envelope::seal_to_der(&content, &msg.signer_der, alg)?;
            cert_rep(&signer, &msg.reply, PkiStatus::Success, None, Some(&sealed))
        }
        Ok((Outcome::Pending, _)) => cert_rep(&signer, &msg.reply, PkiStatus::Pending, None, None),
        Err(ScepError::Pending) => cert_rep(&signer, &msg.reply, PkiStatus::Pending, None, None),
        Err(e) => {
            log_failure(state, Some(&msg), &e);
            match e.fail_info() {
                Some(f) => cert_rep(&signer, &msg.reply, PkiStatus::Failure, Some(f), None),
                None => Err(e),
            }
        }
    }
}

fn log_failure(state: &ScepState, msg: Option<&Incoming>, e: &ScepError) {
    tracing::warn!(
        endpoint = %state.config().endpoint,
        transaction = msg.map(|m| m.transaction_id.as_str()).unwrap_or("?"),
        message_type = msg.map(|m| m.message_type.name()).unwrap_or("?"),
        fail_info = e.label(),
        error = %e,
        "SCEP request failed"
    );
}

async fn handle(
    state: &ScepState,
    msg: &Incoming,
    profile: Option<&str>,
) -> Result<(Outcome, crate::algorithms::ContentAlg), ScepError> {
    let config = state.config();
    let now = state.now();
    if let Some(t) = msg.signing_time {
        let skew = t.duration_since(now).or_else(|_| now.duration_since(t)).unwrap_or_default();
        if skew > config.signing_time_window {
            return Err(ScepError::BadTime(format!(
                "signingTime is {}s away from the server's clock (window {}s)",
                skew.as_secs(),
                config.signing_time_window.as_secs()
            )));
        }
    }
    let fresh = state
        .store()
        .record_message(&SeenMessage {
            endpoint: config.endpoint.clone(),
            transaction_id: msg.transaction_id.clone(),
            sender_nonce: msg.reply.sender_nonce.clone(),
            expires: now + config.replay_retention,
        })
        .await?;
    if !fresh {
        return Err(ScepError::BadRequest(format!(
            "replay: transactionID {} with this senderNonce was seen before",
            msg.transaction_id
        )));
    }
    let refused = || ScepError::BadRequest(format!("{} is not a request this server accepts", msg.message_type.name()));
    if matches!(msg.message_type, MessageType::CertRep | MessageType::UpdateReq) {
        return Err(refused());
    }
    let (content, alg) = state.open_envelope(&msg.content).await?;
    let outcome = match msg.message_type {
        MessageType::PkcsReq | MessageType::RenewalReq => crate::enroll::enroll(state, msg, &content, profile).await?,
        MessageType::CertPoll => crate::enroll::poll(state, msg, &content).await?,
        MessageType::GetCert => crate::query::get_cert(state, &content).await?,
        MessageType::GetCrl => crate::query::get_crl(state, &content).await?,
        MessageType::CertRep | MessageType::UpdateReq => return Err(refused()),
    };
    Ok((outcome, alg))
}
