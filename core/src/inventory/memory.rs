//! An in-memory inventory, for dry runs (`pkiplane policy check`) and unit tests.
//! Nothing here is durable: production uses the SQLite or PostgreSQL stores.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use super::*;

#[derive(Default)]
struct State {
    certs: BTreeMap<(String, String), CertificateRecord>,
    crl_numbers: BTreeMap<String, u64>,
    denials: Vec<DenialRecord>,
    ca: BTreeMap<String, StoredCaMaterial>,
    next_ca: BTreeMap<String, StoredNextCa>,
    crls: BTreeMap<String, PublishedCrl>,
    retired: BTreeMap<String, Vec<StoredRetiredCa>>,
    responders: BTreeMap<(String, Vec<u8>), StoredOcspResponder>,
}

/// A non-durable [`Inventory`] and [`CaMaterialStore`].
#[derive(Default)]
pub struct MemoryInventory {
    state: Mutex<State>,
    /// Approval requests (see [`crate::approval::memory`]).
    pub(crate) approvals: Mutex<BTreeMap<String, crate::approval::ApprovalRequest>>,
}

impl MemoryInventory {
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut guard)
    }
}

fn key(issuer: &ObjectRef, serial: &str) -> (String, String) {
    (issuer.to_string(), serial.to_string())
}

#[async_trait]
impl Inventory for MemoryInventory {
    fn approvals(&self) -> Option<&dyn crate::approval::ApprovalStore> {
        Some(self)
    }

    async fn write_pending(&self, record: &CertificateRecord) -> Result<(), StoreError> {
        self.with(|s| {
            let k = key(&record.issuer, &record.serial);
            if s.certs.contains_key(&k) {
                return Err(StoreError::DuplicateSerial { issuer: k.0, serial: k.1 });
            }
            s.certs.insert(k, record.clone());
            Ok(())
        })
    }

    async fn mark_issued(&self, issuer: &ObjectRef, serial: &str, der: &[u8]) -> Result<(), StoreError> {
        self.with(|s| {
            let rec = s
                .certs
                .get_mut(&key(issuer, serial))
                .ok_or_else(|| StoreError::NotFound { issuer: issuer.to_string(), serial: serial.into() })?;
            if rec.status != CertStatus::Pending {
                return Err(StoreError::WrongState {
                    serial: serial.into(),
                    status: rec.status,
                    expected: CertStatus::Pending,
                });
            }
            rec.status = CertStatus::Issued;
            rec.der = Some(der.to_vec());
            Ok(())
        })
    }

    async fn mark_abandoned(&self, issuer: &ObjectRef, serial: &str) -> Result<(), StoreError> {
        self.with(|s| match s.certs.get_mut(&key(issuer, serial)) {
            Some(rec) if rec.status == CertStatus::Pending => {
                rec.status = CertStatus::Abandoned;
                Ok(())
            }
            Some(rec) => {
                Err(StoreError::WrongState { serial: serial.into(), status: rec.status, expected: CertStatus::Pending })
            }
            None => Err(StoreError::NotFound { issuer: issuer.to_string(), serial: serial.into() }),
        })
    }

    async fn recover_pending(&self, before: SystemTime) -> Result<u64, StoreError> {
        Ok(self.with(|s| {
            let mut n = 0;
            for rec in s.certs.values_mut() {
                if rec.status == CertStatus::Pending && rec.created_at < before {
                    rec.status = CertStatus::Abandoned;
                    n += 1;
                }
            }
            n
        }))
    }

    async fn revoke(
        &self,
        issuer: &ObjectRef,
        serial: &str,
        revocation: Revocation,
    ) -> Result<RevokeOutcome, StoreError> {
        self.with(|s| {
            let Some(rec) = s.certs.get_mut(&key(issuer, serial)) else { return Ok(RevokeOutcome::NotFound) };
            if let Some(outcome) =
                RevokeOutcome::unless_issued(rec.status, || Ok(rec.revocation.unwrap_or(revocation)))?
            {
                return Ok(outcome);
            }
            rec.status = CertStatus::Revoked;
            rec.revocation = Some(revocation);
            Ok(RevokeOutcome::Revoked)
        })
    }

    async fn get(&self, issuer: &ObjectRef, serial: &str) -> Result<Option<CertificateRecord>, StoreError> {
        Ok(self.with(|s| s.certs.get(&key(issuer, serial)).cloned()))
    }

    async fn find_serial(&self, serial: &str) -> Result<Vec<CertificateRecord>, StoreError> {
        Ok(self.with(|s| s.certs.values().filter(|r| r.serial == serial).cloned().collect()))
    }

    async fn list(&self, f: &InventoryFilter) -> Result<Vec<CertificateRecord>, StoreError> {
        let now = SystemTime::now();
        Ok(self.with(|s| {
            let mut v: Vec<_> = s
                .certs
                .values()
                .filter(|r| f.issuer.as_ref().is_none_or(|i| &r.issuer == i))
                .filter(|r| f.profile.as_ref().is_none_or(|p| &r.profile == p))
                .filter(|r| f.protocol.is_none_or(|p| r.protocol == p))
                .filter(|r| f.endpoint.as_ref().is_none_or(|e| r.endpoint.as_ref() == Some(e)))
                .filter(|r| f.status.is_none_or(|st| r.status == st))
                .filter(|r| f.exchange.as_ref().is_none_or(|x| r.exchange.as_ref() == Some(x)))
                .filter(|r| {
                    f.expiring_before
                        .is_none_or(|t| r.status == CertStatus::Issued && r.not_after < t && r.not_after > now)
                })
                .cloned()
                .collect();
            v.sort_by_key(|r| std::cmp::Reverse(r.created_at));
            if let Some(l) = f.limit {
                v.truncate(l);
            }
            v
        }))
    }

    async fn counts(
        &self,
        group: GroupBy,
        now: SystemTime,
        within: Duration,
    ) -> Result<Vec<InventoryCounts>, StoreError> {
        Ok(self.with(|s| {
            let mut out: BTreeMap<String, InventoryCounts> = BTreeMap::new();
            let group_key = |issuer: Option<&ObjectRef>,
                             profile: &ObjectRef,
                             endpoint: Option<&ObjectRef>,
                             proto: crate::model::Protocol|
             -> Option<String> {
                match group {
                    GroupBy::Issuer => issuer.map(|i| i.to_string()),
                    GroupBy::Profile => Some(profile.to_string()),
                    GroupBy::Endpoint => endpoint.map(|e| e.to_string()),
                    GroupBy::ProfileProtocol => Some(format!("{profile}|{proto}")),
                    GroupBy::EndpointProfile => endpoint.map(|e| format!("{e}|{profile}")),
                }
            };
            for r in s.certs.values() {
                let Some(k) = group_key(Some(&r.issuer), &r.profile, r.endpoint.as_ref(), r.protocol) else { continue };
                let c = out.entry(k.clone()).or_insert_with(|| InventoryCounts { key: k, ..Default::default() });
                if matches!(r.status, CertStatus::Issued | CertStatus::Revoked) {
                    c.issued += 1;
                    c.last_issued_at = c.last_issued_at.max(Some(r.created_at));
                }
                if r.status == CertStatus::Revoked {
                    c.revoked += 1;
                }
                if r.is_active(now) {
                    c.active += 1;
                    if r.not_after <= now + within {
                        c.expiring_soon += 1;
                    }
                }
            }
            for d in &s.denials {
                let Some(k) = group_key(d.issuer.as_ref(), &d.profile, d.endpoint.as_ref(), d.protocol) else {
                    continue;
                };
                out.entry(k.clone()).or_insert_with(|| InventoryCounts { key: k, ..Default::default() }).denied += 1;
            }
            out.into_values().collect()
        }))
    }

    async fn revoked_entries(&self, issuer: &ObjectRef, now: SystemTime) -> Result<Vec<RevokedEntry>, StoreError> {
        Ok(self.with(|s| {
            s.certs
                .values()
                .filter(|r| &r.issuer == issuer && r.status == CertStatus::Revoked && r.not_after > now)
                .filter_map(|r| {
                    r.revocation.map(|rv| RevokedEntry {
                        serial: r.serial.clone(),
                        revoked_at: rv.at,
                        reason: rv.reason,
                        not_after: r.not_after,
                    })
                })
                .collect()
        }))
    }

    async fn next_crl_number(&self, issuer: &ObjectRef) -> Result<u64, StoreError> {
        Ok(self.with(|s| {
            let n = s.crl_numbers.entry(issuer.to_string()).or_insert(0);
            *n += 1;
            *n
        }))
    }

    async fn latest_not_after(
        &self,
        issuer: &ObjectRef,
        created_by: SystemTime,
    ) -> Result<Option<SystemTime>, StoreError> {
        Ok(self.with(|s| {
            s.certs
                .values()
                .filter(|r| &r.issuer == issuer && r.created_at <= created_by)
                .filter(|r| matches!(r.status, CertStatus::Issued | CertStatus::Revoked))
                .map(|r| r.not_after)
                .max()
        }))
    }

    async fn record_denial(&self, denial: &DenialRecord) -> Result<(), StoreError> {
        self.with(|s| s.denials.push(denial.clone()));
        Ok(())
    }

    async fn save_crl(&self, crl: &PublishedCrl) -> Result<(), StoreError> {
        self.with(|s| {
            let kept = s.crls.entry(crl.issuer.to_string()).or_insert_with(|| crl.clone());
            if crl.this_update >= kept.this_update {
                *kept = crl.clone();
            }
        });
        Ok(())
    }

    async fn last_crl(&self, issuer: &ObjectRef) -> Result<Option<PublishedCrl>, StoreError> {
        Ok(self.with(|s| s.crls.get(&issuer.to_string()).cloned()))
    }
}

#[async_trait]
impl CaMaterialStore for MemoryInventory {
    async fn load_ca(&self, issuer: &ObjectRef) -> Result<Option<StoredCaMaterial>, StoreError> {
        Ok(self.with(|s| s.ca.get(&issuer.to_string()).cloned()))
    }

    async fn save_ca(&self, issuer: &ObjectRef, material: &StoredCaMaterial) -> Result<(), StoreError> {
        self.with(|s| s.ca.insert(issuer.to_string(), material.clone()));
        Ok(())
    }

    async fn load_next_ca(&self, issuer: &ObjectRef) -> Result<Option<StoredNextCa>, StoreError> {
        Ok(self.with(|s| s.next_ca.get(&issuer.to_string()).cloned()))
    }

    async fn save_next_ca(&self, issuer: &ObjectRef, next: Option<&StoredNextCa>) -> Result<(), StoreError> {
        self.with(|s| match next {
            Some(n) => s.next_ca.insert(issuer.to_string(), n.clone()),
            None => s.next_ca.remove(&issuer.to_string()),
        });
        Ok(())
    }

    async fn load_retired_cas(&self, issuer: &ObjectRef) -> Result<Vec<StoredRetiredCa>, StoreError> {
        Ok(self.with(|s| s.retired.get(&issuer.to_string()).cloned().unwrap_or_default()))
    }

    async fn save_retired_ca(&self, issuer: &ObjectRef, retired: &StoredRetiredCa) -> Result<(), StoreError> {
        self.with(|s| {
            let list = s.retired.entry(issuer.to_string()).or_default();
            list.retain(|r| r.key_id != retired.key_id);
            list.push(retired.clone());
            list.sort_by_key(|r| r.retired_at);
        });
        Ok(())
    }

    async fn remove_retired_ca(&self, issuer: &ObjectRef, key_id: &[u8]) -> Result<(), StoreError> {
        self.with(|s| {
            if let Some(list) = s.retired.get_mut(&issuer.to_string()) {
                list.retain(|r| r.key_id != key_id);
            }
            s.responders.remove(&(issuer.to_string(), key_id.to_vec()));
        });
        Ok(())
    }

    async fn load_ocsp_responder(
        &self,
        issuer: &ObjectRef,
        ca_key_id: &[u8],
    ) -> Result<Option<StoredOcspResponder>, StoreError> {
        Ok(self.with(|s| s.responders.get(&(issuer.to_string(), ca_key_id.to_vec())).cloned()))
    }

    async fn save_ocsp_responder(&self, issuer: &ObjectRef, responder: &StoredOcspResponder) -> Result<(), StoreError> {
        self.with(|s| s.responders.insert((issuer.to_string(), responder.ca_key_id.clone()), responder.clone()));
        Ok(())
    }
}
