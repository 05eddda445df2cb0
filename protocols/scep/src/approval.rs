//! A pending SCEP transaction answered from its approval record: the CA keeps the request
//! under the transaction's exchange key; CertPoll asks the CA about exactly that record,
//! so only this transaction's requester gets its certificate.

use pkiplane_core::approval::ApprovalFilter;
use pkiplane_core::issuance::{IssueOutcome, exchange_key};
use pkiplane_core::model::Protocol;

use crate::ScepState;
use crate::cms::outgoing::degenerate;
use crate::error::ScepError;
use crate::message::FailInfo;
use crate::outcome::Outcome;
use crate::state::{ScepTransaction, TransactionStatus};

/// PENDING while the record waits; SUCCESS once approved (the transaction records the
/// certificate); FAILURE (badRequest) once denied or refused by the current policy.
pub(crate) async fn answer_pending(state: &ScepState, tx: &ScepTransaction) -> Result<Outcome, ScepError> {
    let exchange = exchange_key(Protocol::Scep, &tx.endpoint, &tx.transaction_id);
    let filter = ApprovalFilter { exchange: Some(exchange), limit: Some(1), ..ApprovalFilter::default() };
    let Some(record) = state.ca().approval_requests(&filter).await?.into_iter().next() else {
        // A transaction from before approval records existed: it waits as it did.
        return Ok(Outcome::Pending);
    };
    let mut done = tx.clone();
    done.updated_at = state.now();
    match state.ca().approval_outcome(&record.id).await {
        Ok(IssueOutcome::Pending(_)) => Ok(Outcome::Pending),
        Ok(IssueOutcome::Issued(issued)) => {
            done.status = TransactionStatus::Issued;
            done.issuer = Some(issued.record.issuer.clone());
            done.serial = Some(issued.record.serial.clone());
            state.store().update_transaction(&done).await?;
            tracing::info!(endpoint = %tx.endpoint, transaction = %tx.transaction_id, request = %record.id, serial = %issued.record.serial, "SCEP certificate issued after approval");
            Ok(Outcome::Success(degenerate(&[issued.der], &[])?))
        }
        Ok(IssueOutcome::Denied(denied)) => {
            tracing::warn!(endpoint = %tx.endpoint, transaction = %tx.transaction_id, request = %denied.request_id, by = %denied.by, reason = %denied.reason, "SCEP request denied by an approver");
            fail(state, done).await?;
            Err(ScepError::BadRequest(denied.to_string()))
        }
        Err(e) => {
            let err = ScepError::from(e);
            if err.fail_info().is_some() {
                tracing::warn!(endpoint = %tx.endpoint, transaction = %tx.transaction_id, request = %record.id, error = %err, "approved SCEP request refused by the CA");
                fail(state, done).await?;
            }
            Err(err)
        }
    }
}

async fn fail(state: &ScepState, mut tx: ScepTransaction) -> Result<(), ScepError> {
    tx.status = TransactionStatus::Failed;
    tx.fail_info = Some(FailInfo::BadRequest.code());
    Ok(state.store().update_transaction(&tx).await?)
}
