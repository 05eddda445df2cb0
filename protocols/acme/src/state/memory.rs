//! An in-memory [`AcmeStore`] for unit tests and single-process experiments. One mutex
//! guards everything, so every operation is atomic.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use super::{
    Account, AccountUpdate, AcmeStore, Authorization, AuthorizationQuery, EabUse, NewAccountOutcome, NewOrderOutcome,
    Order, OrderStatus,
};
use pkiplane_core::inventory::StoreError;
use pkiplane_core::model::ObjectRef;

#[derive(Default)]
struct Inner {
    nonces: HashMap<String, SystemTime>,
    accounts: HashMap<String, Account>,
    eab_used: HashSet<String>,
    orders: HashMap<String, Order>,
    authzs: HashMap<String, Authorization>,
    /// ARI certificate id -> order id.
    replacements: HashMap<String, String>,
}

/// The in-memory ACME state.
#[derive(Default)]
pub struct MemoryAcmeStore {
    inner: Mutex<Inner>,
}

impl MemoryAcmeStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// In-memory ACME state per endpoint: each endpoint gets a [`MemoryAcmeStore`] of its own.
#[derive(Default)]
pub struct MemoryAcmeScopes {
    endpoints: Mutex<HashMap<ObjectRef, std::sync::Arc<MemoryAcmeStore>>>,
}

impl super::AcmeStateScopes for MemoryAcmeScopes {
    fn for_endpoint(&self, endpoint: &ObjectRef) -> std::sync::Arc<dyn AcmeStore> {
        let mut map = self.endpoints.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(endpoint.clone()).or_default().clone()
    }
}

#[async_trait]
impl AcmeStore for MemoryAcmeStore {
    async fn add_nonce(&self, nonce: &str, expires: SystemTime) -> Result<(), StoreError> {
        self.lock().nonces.insert(nonce.to_owned(), expires);
        Ok(())
    }

    async fn take_nonce(&self, nonce: &str, now: SystemTime) -> Result<bool, StoreError> {
        Ok(self.lock().nonces.remove(nonce).is_some_and(|exp| exp > now))
    }

    async fn create_account(&self, account: &Account, eab: Option<&EabUse>) -> Result<NewAccountOutcome, StoreError> {
        let mut g = self.lock();
        if let Some(existing) = g.accounts.values().find(|a| a.thumbprint == account.thumbprint) {
            return Ok(NewAccountOutcome::KeyExists(existing.clone()));
        }
        if let Some(eab) = eab.filter(|e| e.single_use)
            && !g.eab_used.insert(eab.kid.clone())
        {
            return Ok(NewAccountOutcome::EabKeyUsed);
        }
        g.accounts.insert(account.id.clone(), account.clone());
        Ok(NewAccountOutcome::Created)
    }

    async fn account(&self, id: &str) -> Result<Option<Account>, StoreError> {
        Ok(self.lock().accounts.get(id).cloned())
    }

    async fn account_by_thumbprint(&self, thumbprint: &str) -> Result<Option<Account>, StoreError> {
        Ok(self.lock().accounts.values().find(|a| a.thumbprint == thumbprint).cloned())
    }

    async fn update_account(&self, account: &Account) -> Result<AccountUpdate, StoreError> {
        let mut g = self.lock();
        if let Some(other) = g.accounts.values().find(|a| a.thumbprint == account.thumbprint && a.id != account.id) {
            return Ok(AccountUpdate::KeyInUse(other.id.clone()));
        }
        match g.accounts.get_mut(&account.id) {
            Some(stored) if stored.version == account.version => {
                *stored = account.clone();
                stored.version += 1;
                Ok(AccountUpdate::Done)
            }
            Some(_) => Ok(AccountUpdate::Conflict),
            None => Err(StoreError::invalid(format!("no ACME account {}", account.id))),
        }
    }

    async fn create_order(
        &self,
        order: &Order,
        new_authorizations: &[Authorization],
    ) -> Result<NewOrderOutcome, StoreError> {
        let mut g = self.lock();
        if let Some(r) = &order.replaces {
            if let Some(existing) = g.replacements.get(&r.cert_id).cloned() {
                let live = g.orders.get(&existing).is_some_and(|o| o.status != OrderStatus::Invalid);
                if live {
                    return Ok(NewOrderOutcome::AlreadyReplaced(existing));
                }
            }
            g.replacements.insert(r.cert_id.clone(), order.id.clone());
        }
        for a in new_authorizations {
            g.authzs.insert(a.id.clone(), a.clone());
        }
        g.orders.insert(order.id.clone(), order.clone());
        Ok(NewOrderOutcome::Created)
    }

    async fn order(&self, id: &str) -> Result<Option<Order>, StoreError> {
        Ok(self.lock().orders.get(id).cloned())
    }

    async fn update_order(&self, order: &Order) -> Result<bool, StoreError> {
        let mut g = self.lock();
        match g.orders.get_mut(&order.id) {
            Some(stored) if stored.version == order.version => {
                *stored = order.clone();
                stored.version += 1;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn account_orders(&self, account_id: &str, limit: usize) -> Result<Vec<String>, StoreError> {
        let g = self.lock();
        let mut v: Vec<&Order> = g.orders.values().filter(|o| o.account_id == account_id).collect();
        v.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| b.id.cmp(&a.id)));
        Ok(v.into_iter().take(limit).map(|o| o.id.clone()).collect())
    }

    async fn authorization(&self, id: &str) -> Result<Option<Authorization>, StoreError> {
        Ok(self.lock().authzs.get(id).cloned())
    }

    async fn update_authorization(&self, authz: &Authorization) -> Result<bool, StoreError> {
        let mut g = self.lock();
        match g.authzs.get_mut(&authz.id) {
            Some(stored) if stored.version == authz.version => {
                *stored = authz.clone();
                stored.version += 1;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn valid_authorization(&self, query: &AuthorizationQuery) -> Result<Option<Authorization>, StoreError> {
        let g = self.lock();
        let mut found: Vec<&Authorization> = g.authzs.values().filter(|a| query.matches(a)).collect();
        found.sort_by_key(|a| std::cmp::Reverse(a.expires));
        Ok(found.first().map(|a| (*a).clone()))
    }

    async fn purge_expired(&self, now: SystemTime, retention: Duration) -> Result<u64, StoreError> {
        let mut g = self.lock();
        let before = g.nonces.len();
        g.nonces.retain(|_, exp| *exp > now);
        let mut purged = (before - g.nonces.len()) as u64;
        let cutoff = now.checked_sub(retention).unwrap_or(SystemTime::UNIX_EPOCH);
        let gone: Vec<String> =
            g.orders.values().filter(|o| o.expires < cutoff && o.certificate.is_none()).map(|o| o.id.clone()).collect();
        for id in &gone {
            g.orders.remove(id);
        }
        let referenced: HashSet<String> = g.orders.values().flat_map(|o| o.authorizations.iter().cloned()).collect();
        let before = g.authzs.len();
        g.authzs.retain(|id, a| referenced.contains(id) || a.expires >= cutoff);
        purged += gone.len() as u64 + (before - g.authzs.len()) as u64;
        g.replacements.retain(|_, order| !gone.contains(order));
        Ok(purged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{AccountStatus, AuthzStatus, Challenge, ChallengeStatus, ChallengeType, Identifier, Replaces};

    fn block<F: std::future::Future>(f: F) -> F::Output {
        futures_executor::block_on(f)
    }

    fn a_example(account: &str, wildcard: bool, now: SystemTime) -> AuthorizationQuery {
        AuthorizationQuery { account_id: account.into(), identifier: Identifier::dns("a.example"), wildcard, now }
    }

    fn account(id: &str, thumb: &str) -> Account {
        Account {
            id: id.into(),
            status: AccountStatus::Valid,
            jwk: "{}".into(),
            thumbprint: thumb.into(),
            contact: vec![],
            terms_agreed: true,
            eab_kid: None,
            created_at: SystemTime::now(),
            version: 0,
        }
    }

    #[test]
    fn nonces_are_single_use_and_expire() {
        let s = MemoryAcmeStore::new();
        let now = SystemTime::now();
        block(s.add_nonce("a", now + Duration::from_secs(60))).unwrap();
        block(s.add_nonce("old", now - Duration::from_secs(1))).unwrap();
        assert!(block(s.take_nonce("a", now)).unwrap());
        assert!(!block(s.take_nonce("a", now)).unwrap());
        assert!(!block(s.take_nonce("old", now)).unwrap());
        assert!(!block(s.take_nonce("never", now)).unwrap());
    }

    #[test]
    fn accounts_keys_are_unique_and_eab_single_use() {
        let s = MemoryAcmeStore::new();
        let eab = EabUse { kid: "k".into(), single_use: true };
        assert_eq!(block(s.create_account(&account("1", "t1"), Some(&eab))).unwrap(), NewAccountOutcome::Created);
        assert!(
            matches!(block(s.create_account(&account("2", "t1"), None)).unwrap(), NewAccountOutcome::KeyExists(a) if a.id == "1")
        );
        assert_eq!(block(s.create_account(&account("3", "t3"), Some(&eab))).unwrap(), NewAccountOutcome::EabKeyUsed);
        let mut a = block(s.account("1")).unwrap().unwrap();
        a.thumbprint = "t4".into();
        assert_eq!(block(s.update_account(&a)).unwrap(), AccountUpdate::Done);
        // Stale version.
        assert_eq!(block(s.update_account(&a)).unwrap(), AccountUpdate::Conflict);
        block(s.create_account(&account("5", "t5"), None)).unwrap();
        let mut b = block(s.account("5")).unwrap().unwrap();
        b.thumbprint = "t4".into();
        assert_eq!(block(s.update_account(&b)).unwrap(), AccountUpdate::KeyInUse("1".into()));
    }

    #[test]
    fn orders_compare_and_set_and_replacements() {
        let s = MemoryAcmeStore::new();
        let now = SystemTime::now();
        let authz = Authorization {
            id: "z1".into(),
            account_id: "1".into(),
            identifier: Identifier::dns("a.example"),
            wildcard: false,
            status: AuthzStatus::Valid,
            expires: now + Duration::from_secs(60),
            challenges: vec![Challenge {
                id: "c".into(),
                kind: ChallengeType::Http01,
                token: "t".into(),
                status: ChallengeStatus::Valid,
                validated: Some(now),
                processing_since: None,
                error: None,
            }],
            created_at: now,
            version: 0,
        };
        let order = Order {
            id: "o1".into(),
            account_id: "1".into(),
            status: OrderStatus::Pending,
            expires: now + Duration::from_secs(60),
            identifiers: vec![Identifier::dns("a.example")],
            profile: "p".into(),
            not_before: None,
            not_after: None,
            authorizations: vec!["z1".into()],
            error: None,
            certificate: None,
            replaces: Some(Replaces {
                cert_id: "aki.serial".into(),
                issuer: pkiplane_core::ObjectRef::new("a", "b"),
                serial: "01".into(),
            }),
            approval: None,
            created_at: now,
            version: 0,
        };
        assert_eq!(block(s.create_order(&order, std::slice::from_ref(&authz))).unwrap(), NewOrderOutcome::Created);
        let second = Order { id: "o2".into(), ..order.clone() };
        assert_eq!(block(s.create_order(&second, &[])).unwrap(), NewOrderOutcome::AlreadyReplaced("o1".into()));
        let mut o = block(s.order("o1")).unwrap().unwrap();
        o.status = OrderStatus::Invalid;
        assert!(block(s.update_order(&o)).unwrap());
        assert!(!block(s.update_order(&o)).unwrap(), "stale version must lose");
        // The invalid order no longer holds the replacement.
        assert_eq!(block(s.create_order(&second, &[])).unwrap(), NewOrderOutcome::Created);
        let found = block(s.valid_authorization(&a_example("1", false, now))).unwrap();
        assert_eq!(found.map(|a| a.id), Some("z1".into()));
        assert!(block(s.valid_authorization(&a_example("2", false, now))).unwrap().is_none());
        assert_eq!(block(s.account_orders("1", 10)).unwrap().len(), 2);
    }
}
