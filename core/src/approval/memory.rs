//! [`ApprovalStore`] of the in-memory inventory (tests and dry runs; nothing durable).

use async_trait::async_trait;

use super::*;
use crate::inventory::memory::MemoryInventory;

impl MemoryInventory {
    fn with_approvals<T>(&self, f: impl FnOnce(&mut std::collections::BTreeMap<String, ApprovalRequest>) -> T) -> T {
        let mut guard = self.approvals.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut guard)
    }
}

#[async_trait]
impl ApprovalStore for MemoryInventory {
    async fn insert_approval(&self, request: &ApprovalRequest) -> Result<bool, StoreError> {
        self.with_approvals(|m| {
            if m.values().any(|r| r.retry_key == request.retry_key) {
                return Ok(false);
            }
            if m.contains_key(&request.id) {
                return Err(StoreError::invalid(format!("approval request {} exists already", request.id)));
            }
            m.insert(request.id.clone(), request.clone());
            Ok(true)
        })
    }

    async fn approval(&self, id: &str) -> Result<Option<ApprovalRequest>, StoreError> {
        Ok(self.with_approvals(|m| m.get(id).cloned()))
    }

    async fn approval_by_retry_key(&self, retry_key: &str) -> Result<Option<ApprovalRequest>, StoreError> {
        Ok(self.with_approvals(|m| m.values().find(|r| r.retry_key == retry_key).cloned()))
    }

    async fn list_approvals(&self, filter: &ApprovalFilter) -> Result<Vec<ApprovalRequest>, StoreError> {
        Ok(self.with_approvals(|m| {
            let mut v: Vec<ApprovalRequest> = m.values().filter(|r| filter.matches(r)).cloned().collect();
            v.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| a.id.cmp(&b.id)));
            v.truncate(filter.limit.unwrap_or(usize::MAX));
            v
        }))
    }

    async fn decide_approval(&self, id: &str, decision: &ApprovalDecision) -> Result<DecideOutcome, StoreError> {
        Ok(self.with_approvals(|m| match m.get_mut(id) {
            None => DecideOutcome::NotFound,
            Some(r) if r.state != ApprovalState::Waiting => DecideOutcome::AlreadyDecided(Box::new(r.clone())),
            Some(r) => {
                r.state = decision.state;
                r.decision = Some(decision.clone());
                DecideOutcome::Decided(Box::new(r.clone()))
            }
        }))
    }

    async fn claim_approval_serial(&self, id: &str, expected: Option<&str>, serial: &str) -> Result<bool, StoreError> {
        Ok(self.with_approvals(|m| match m.get_mut(id) {
            Some(r) if r.state == ApprovalState::Approved && r.serial.as_deref() == expected => {
                r.serial = Some(serial.to_owned());
                true
            }
            _ => false,
        }))
    }

    async fn waiting_counts(&self) -> Result<Vec<WaitingCount>, StoreError> {
        Ok(self.with_approvals(|m| {
            let mut counts: std::collections::BTreeMap<ObjectRef, u64> = Default::default();
            for r in m.values().filter(|r| r.state == ApprovalState::Waiting) {
                *counts.entry(r.profile.clone()).or_default() += 1;
            }
            counts.into_iter().map(|(profile, waiting)| WaitingCount { profile, waiting }).collect()
        }))
    }
}
