//! Polling: pollReq -> pollRep, or the final ip/cp/kup (RFC 9810 section 5.3.22,
//! RFC 9483 section 4.4).
//!
//! ```text
//! PollReqContent ::= SEQUENCE OF SEQUENCE { certReqId INTEGER }
//! PollRepContent ::= SEQUENCE OF SEQUENCE {
//!     certReqId    INTEGER,
//!     checkAfter   INTEGER,  -- time in seconds
//!     reason       PKIFreeText OPTIONAL }
//! ```
//!
//! A request waits when its profile requires approval: the CA keeps it as an approval
//! record, found again by the transaction's exchange key and the request's public key.
//! Each pollReq asks the CA about that record: while it waits the answer is pollRep with
//! checkAfter; once approved, the response the original request type calls for (ip, cp,
//! kup) with the one certificate issued for it; once denied, an error message with
//! status rejection, failInfo badRequest and the approver's reason in its text.

use crate::state::TransactionState;

use crate::enroll::{self, Outcome};
use crate::error::CmpError;
use crate::exchange::Exchange;
use crate::respond::Reply;
use crate::wire::body::{PollRepItem, ResponseBody};
use crate::wire::message;

/// pollReq.
pub async fn handle(ex: &Exchange<'_>, ids: Vec<i64>) -> Result<Reply, CmpError> {
    let mut tx = ex.follow_up().await?;
    if tx.state != TransactionState::Polling {
        return Err(CmpError::bad_request(format!("the transaction is {}, nothing to poll for", tx.state.as_str())));
    }
    let stored =
        tx.pending_request.clone().ok_or_else(|| CmpError::system_failure("the polled request was not kept"))?;
    let original = message::decode(&stored).map_err(|e| CmpError::system_failure(e.to_string()))?;
    let request = enroll::stored_items(original.body_tag, &original.body)?;
    let known: Vec<i64> = match &request {
        enroll::StoredRequest::Crmf(items) => items.iter().map(|i| i.cert_req_id).collect(),
        enroll::StoredRequest::P10(_) => vec![-1],
    };
    // A p10cr's request is -1; OpenSSL 3.0 polls for it as 0.
    let waiting = |id: &i64| known.contains(id) || (known == [-1] && *id == 0);
    if let Some(id) = ids.iter().find(|id| !waiting(id)) {
        return Err(CmpError::bad_request(format!("certReqId {id} is not waiting in this transaction")));
    }
    let (rep_tag, mut outcomes) = enroll::ask_again(ex, original.body_tag, request).await;
    if let Some(i) = outcomes.iter().position(|(_, o)| matches!(o, Outcome::Rejected(_))) {
        // Denied (by an approver, or by a rule changed since): the transaction ends.
        let Outcome::Rejected(e) = outcomes.swap_remove(i).1 else { unreachable!("matched above") };
        tx.state = TransactionState::Failed;
        ex.save(&mut tx).await?;
        return Err(e);
    }
    if outcomes.iter().any(|(_, o)| matches!(o, Outcome::Waiting)) {
        let check_after = ex.state.config().poll_interval.as_secs() as i64;
        let reason = Some(vec!["waiting for approval".to_owned()]);
        let items =
            ids.iter().map(|id| PollRepItem { cert_req_id: *id, check_after, reason: reason.clone() }).collect();
        // The client's next message must answer this one.
        ex.save(&mut tx).await?;
        return Ok(Reply::new(ResponseBody::PollRep(items)));
    }
    enroll::finish(ex, tx, rep_tag, outcomes).await
}
