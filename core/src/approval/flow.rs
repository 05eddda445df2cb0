//! The approval state machine on the CA: record a waiting request, answer a protocol's
//! ask, and let an approver decide.

use std::time::{Instant, SystemTime};

use super::*;
use crate::audit::AuditEvent;
use crate::error::CoreError;
use crate::inventory::{CertStatus, CertificateRecord};
use crate::issuance::{ApprovalDenied, Ca, IssuanceRequest, IssueOutcome, Issued, Pending, random_serial};
use crate::issuer::Issuer;
use crate::observe::{Event, Origin};
use crate::policy::CertificateTemplate;
use crate::profile::Profile;
use crate::x509::csr::ParsedCsr;
use crate::x509::names::format_dn;

/// The rule groups of a CertificateProfile every request passes before it may wait for
/// approval (the policy engine checks them all; see [`crate::policy::evaluate`]).
const PASSED_RULES: [&str; 6] = ["requesters", "keys", "validity", "subjectAltNames", "subject", "extensions"];

/// How many times an approved request's serial claim is retried against concurrent asks.
const CLAIM_ATTEMPTS: usize = 3;

impl Ca {
    fn approval_store(&self) -> Result<&dyn ApprovalStore, CoreError> {
        self.inventory().approvals().ok_or(CoreError::Approval(ApprovalError::Unsupported))
    }

    /// `issue` under a profile that requires approval: the request's record (found by its
    /// retry key, or made now) answers.
    pub(crate) async fn await_approval(
        &self,
        req: IssuanceRequest,
        profile: &Profile,
        issuer: &Issuer,
        template: &CertificateTemplate,
        now: SystemTime,
    ) -> Result<IssueOutcome, CoreError> {
        let store = self.approval_store()?;
        let key = retry_key(
            &profile.id,
            &req.requester,
            req.exchange.as_deref(),
            req.renewal_of.as_deref(),
            &req.csr.spki_der,
        );
        if let Some(existing) = store.approval_by_retry_key(&key).await? {
            return self.answer(existing).await;
        }
        let mut passed_rules: Vec<String> = PASSED_RULES.iter().map(|r| (*r).to_owned()).collect();
        passed_rules.extend(template.notes.iter().map(|n| format!("note: {n}")));
        let record = ApprovalRequest {
            id: hex::encode(random_serial()),
            profile: profile.id.clone(),
            issuer: issuer.id.clone(),
            requester: req.requester.clone(),
            csr_der: req.csr.to_stored_der()?,
            subject: format_dn(&req.csr.subject),
            sans: req.csr.sans.iter().map(|s| s.to_string()).collect(),
            key_algorithm: req.csr.key.to_string(),
            requested_not_before: req.requested.not_before,
            requested_not_after: req.requested.not_after,
            passed_rules,
            renewal_of: req.renewal_of.clone(),
            exchange: req.exchange.clone(),
            retry_key: key.clone(),
            created_at: now,
            state: ApprovalState::Waiting,
            decision: None,
            serial: None,
        };
        let write = Instant::now();
        let inserted = store.insert_approval(&record).await;
        self.observer().emit(Event::StoreWrite { operation: "insert_approval", took: write.elapsed() });
        if !inserted? {
            // A concurrent retry of the same request made the record first.
            let existing = store
                .approval_by_retry_key(&key)
                .await?
                .ok_or_else(|| CoreError::Approval(ApprovalError::NotFound { id: key.clone() }))?;
            return self.answer(existing).await;
        }
        let mut ev = AuditEvent::new("pending-approval", &req.requester, &profile.id, now);
        ev.issuer = Some(issuer.id.to_string());
        ev.subject = Some(record.subject.clone());
        ev.sans = record.sans.clone();
        ev.reasons = vec![format!("request {}", record.id)];
        ev.emit();
        Ok(IssueOutcome::Pending(Pending { profile: profile.id.clone(), request_id: record.id }))
    }

    /// Asks again for the approval request `request_id`: still waiting -> `Pending`;
    /// denied -> `Denied` with the approver's reason; approved -> the policy is checked
    /// against the current profile and issuer (a denial names the rule) and the
    /// certificate is signed and stored once: every later ask returns the same one.
    pub async fn approval_outcome(&self, request_id: &str) -> Result<IssueOutcome, CoreError> {
        let record = self
            .approval_store()?
            .approval(request_id)
            .await?
            .ok_or_else(|| CoreError::Approval(ApprovalError::NotFound { id: request_id.to_owned() }))?;
        self.answer(record).await
    }

    /// One approval request by id.
    pub async fn approval_request(&self, request_id: &str) -> Result<Option<ApprovalRequest>, CoreError> {
        Ok(self.approval_store()?.approval(request_id).await?)
    }

    /// Approval requests matching `filter`, newest first (`ApprovalFilter::waiting()` for
    /// the ones an approver has to look at).
    pub async fn approval_requests(&self, filter: &ApprovalFilter) -> Result<Vec<ApprovalRequest>, CoreError> {
        Ok(self.approval_store()?.list_approvals(filter).await?)
    }

    /// Waiting requests per profile.
    pub async fn waiting_approvals(&self) -> Result<Vec<WaitingCount>, CoreError> {
        match self.inventory().approvals() {
            Some(store) => Ok(store.waiting_counts().await?),
            None => Ok(vec![]),
        }
    }

    /// Approves the waiting request `request_id` as `approver`. Only that request's
    /// requester gets a certificate, at its next ask. Refused when the request is not
    /// waiting (approved or denied before).
    pub async fn approve(
        &self,
        request_id: &str,
        approver: &str,
        reason: Option<&str>,
    ) -> Result<ApprovalRequest, CoreError> {
        self.decide(request_id, ApprovalState::Approved, approver, reason.map(str::to_owned)).await
    }

    /// Denies the waiting request `request_id` as `approver`, for `reason` (required: the
    /// requester's protocol rejection carries it). Refused when the request is not waiting.
    pub async fn deny(&self, request_id: &str, approver: &str, reason: &str) -> Result<ApprovalRequest, CoreError> {
        if reason.trim().is_empty() {
            return Err(CoreError::Approval(ApprovalError::ReasonRequired));
        }
        self.decide(request_id, ApprovalState::Denied, approver, Some(reason.to_owned())).await
    }

    async fn decide(
        &self,
        request_id: &str,
        state: ApprovalState,
        approver: &str,
        reason: Option<String>,
    ) -> Result<ApprovalRequest, CoreError> {
        let now = self.now();
        let decision = ApprovalDecision { state, by: approver.to_owned(), at: now, reason };
        let write = Instant::now();
        let outcome = self.approval_store()?.decide_approval(request_id, &decision).await;
        self.observer().emit(Event::StoreWrite { operation: "decide_approval", took: write.elapsed() });
        match outcome? {
            DecideOutcome::Decided(record) => {
                let name = if state == ApprovalState::Approved { "approved" } else { "approval-denied" };
                let mut ev = AuditEvent::new(name, &record.requester, &record.profile, now);
                ev.issuer = Some(record.issuer.to_string());
                ev.subject = Some(record.subject.clone());
                ev.sans = record.sans.clone();
                ev.reasons = vec![format!("request {} by {approver}", record.id)];
                ev.reasons.extend(decision.reason.clone());
                ev.emit();
                Ok(*record)
            }
            DecideOutcome::AlreadyDecided(record) => Err(CoreError::Approval(ApprovalError::AlreadyDecided {
                id: record.id.clone(),
                state: record.state,
                by: record.decision.map(|d| d.by).unwrap_or_default(),
            })),
            DecideOutcome::NotFound => Err(CoreError::Approval(ApprovalError::NotFound { id: request_id.to_owned() })),
        }
    }

    /// What a request's record says now.
    async fn answer(&self, record: ApprovalRequest) -> Result<IssueOutcome, CoreError> {
        match record.state {
            ApprovalState::Waiting => {
                Ok(IssueOutcome::Pending(Pending { profile: record.profile.clone(), request_id: record.id }))
            }
            ApprovalState::Denied => {
                let decision = record.decision.unwrap_or_else(|| ApprovalDecision {
                    state: ApprovalState::Denied,
                    by: String::new(),
                    at: record.created_at,
                    reason: None,
                });
                Ok(IssueOutcome::Denied(ApprovalDenied {
                    profile: record.profile,
                    request_id: record.id,
                    by: decision.by,
                    reason: decision.reason.unwrap_or_default(),
                }))
            }
            ApprovalState::Approved => self.issue_approved(record).await,
        }
    }

    /// An approved request: its certificate if already signed, else sign it now (once).
    async fn issue_approved(&self, mut record: ApprovalRequest) -> Result<IssueOutcome, CoreError> {
        let store = self.approval_store()?;
        for _ in 0..CLAIM_ATTEMPTS {
            if let Some(serial) = record.serial.clone() {
                match self.inventory().get(&record.issuer, &serial).await? {
                    Some(cert) if matches!(cert.status, CertStatus::Issued | CertStatus::Revoked) => {
                        return Ok(IssueOutcome::Issued(Box::new(self.delivered(cert)?)));
                    }
                    // Another ask is signing it right now.
                    Some(cert) if cert.status == CertStatus::Pending => {
                        return Ok(IssueOutcome::Pending(Pending { profile: record.profile, request_id: record.id }));
                    }
                    // Abandoned by a crash (or never recorded): issue anew below.
                    _ => {}
                }
            }
            let started = Instant::now();
            let req = IssuanceRequest {
                csr: ParsedCsr::from_stored_der(&record.csr_der)?,
                profile: record.profile.clone(),
                requester: record.requester.clone(),
                requested: record.requested(),
                renewal_of: record.renewal_of.clone(),
                exchange: record.exchange.clone(),
            };
            let (profile, issuer) = self.profile_and_issuer(&record.profile)?;
            let now = self.now();
            // The current profile and issuer decide: a rule changed since the request was
            // made denies it now, by name.
            let template = self.allowed(&req, &profile, &issuer, now).await?;
            let (serial, pending) = self.persist_pending(&req, &template, now).await?;
            if !store.claim_approval_serial(&record.id, record.serial.as_deref(), &pending.serial).await? {
                // Another ask claimed first: ours is never signed.
                let _ = self.inventory().mark_abandoned(&pending.issuer, &pending.serial).await;
                record = store
                    .approval(&record.id)
                    .await?
                    .ok_or_else(|| CoreError::Approval(ApprovalError::NotFound { id: record.id.clone() }))?;
                continue;
            }
            let issued = self.sign_persisted(&req, &profile, &issuer, &template, serial, pending, now).await?;
            let origin = Origin {
                issuer: &issuer.id,
                profile: &profile.id,
                protocol: req.requester.protocol,
                endpoint: req.requester.endpoint.as_ref(),
            };
            self.observer().emit(Event::Issued { origin, took: started.elapsed() });
            return Ok(IssueOutcome::Issued(Box::new(issued)));
        }
        Ok(IssueOutcome::Pending(Pending { profile: record.profile, request_id: record.id }))
    }

    /// A certificate signed at an earlier ask, delivered again.
    fn delivered(&self, cert: CertificateRecord) -> Result<Issued, CoreError> {
        let der = cert.der.clone().ok_or_else(|| CoreError::NotFound(format!("certificate {}", cert.serial)))?;
        let chain_pem = self.issuer(&cert.issuer).map(|i| i.chain_pem()).unwrap_or_default();
        Ok(Issued { record: cert, der, chain_pem, notes: vec![] })
    }
}
