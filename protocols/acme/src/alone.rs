//! What a process that serves an endpoint alone (`pkiplane serve`) keeps in memory, to
//! save store round trips no other process could observe:
//!
//! * accounts by id, as the store last returned them: every signed request names its
//!   account, and the only changes to one go through [`crate::account`] in this very
//!   process, which forgets the cached copy once its update is stored;
//! * the orders being finalized: finalize claims the order here instead of storing it
//!   `processing` first, so one order is never issued twice (see [`crate::finalize`]).
//!
//! Neither is sound when replicas share the store: another replica's account update or
//! finalize would go unseen. [`crate::AcmeState::served_alone`] is for a sole process.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::state::Account;

/// Accounts kept at most; beyond that the cache starts over (a cache miss is one read).
const MAX_ACCOUNTS: usize = 100_000;

#[derive(Default)]
pub struct Alone {
    accounts: Mutex<Accounts>,
    finalizing: Mutex<HashSet<String>>,
}

#[derive(Default)]
struct Accounts {
    by_id: HashMap<String, Account>,
    /// Raised by every [`Alone::forget_account`]: a copy read from the store before a
    /// change was stored must not be cached after the change forgot it.
    epoch: u64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Alone {
    /// The cached account, else the epoch to pass to [`Alone::remember_account`] with the
    /// copy about to be read from the store.
    pub fn account(&self, id: &str) -> Result<Account, u64> {
        let accounts = lock(&self.accounts);
        accounts.by_id.get(id).cloned().ok_or(accounts.epoch)
    }

    /// Caches `account`, read from the store after [`Alone::account`] returned `epoch`,
    /// unless an account changed since.
    pub fn remember_account(&self, account: &Account, epoch: u64) {
        let mut accounts = lock(&self.accounts);
        if accounts.epoch != epoch {
            return;
        }
        if accounts.by_id.len() >= MAX_ACCOUNTS {
            accounts.by_id.clear();
        }
        accounts.by_id.insert(account.id.clone(), account.clone());
    }

    /// Drops the cached copy of account `id`: called once a change to it is stored.
    pub fn forget_account(&self, id: &str) {
        let mut accounts = lock(&self.accounts);
        accounts.by_id.remove(id);
        accounts.epoch += 1;
    }

    /// Claims order `id` for finalization; None while another request finalizes it.
    pub fn claim_finalize(self: &Arc<Self>, id: &str) -> Option<FinalizeClaim> {
        lock(&self.finalizing).insert(id.to_owned()).then(|| FinalizeClaim { alone: self.clone(), id: id.to_owned() })
    }

    /// Whether a request is finalizing order `id` right now.
    pub fn is_finalizing(&self, id: &str) -> bool {
        lock(&self.finalizing).contains(id)
    }
}

/// An order claimed for finalization, released when dropped (also when the request is
/// cancelled midway).
pub struct FinalizeClaim {
    alone: Arc<Alone>,
    id: String,
}

impl Drop for FinalizeClaim {
    fn drop(&mut self) {
        lock(&self.alone.finalizing).remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::state::AccountStatus;

    fn account(id: &str) -> Account {
        Account {
            id: id.into(),
            status: AccountStatus::Valid,
            jwk: "{}".into(),
            thumbprint: "t".into(),
            contact: vec![],
            terms_agreed: true,
            eab_kid: None,
            created_at: SystemTime::UNIX_EPOCH,
            version: 0,
        }
    }

    #[test]
    fn a_copy_read_before_a_change_is_not_cached_after_it() {
        let alone = Alone::default();
        let epoch = alone.account("a").unwrap_err();
        let stale = account("a");
        alone.forget_account("a"); // the change is stored while the read was under way
        alone.remember_account(&stale, epoch);
        let epoch = alone.account("a").expect_err("the stale copy was not cached");
        alone.remember_account(&account("a"), epoch);
        assert_eq!(alone.account("a").unwrap().id, "a");
        alone.forget_account("a");
        assert!(alone.account("a").is_err());
    }

    #[test]
    fn an_order_is_claimed_once_until_released() {
        let alone = Arc::new(Alone::default());
        let claim = alone.claim_finalize("o").unwrap();
        assert!(alone.is_finalizing("o"));
        assert!(alone.claim_finalize("o").is_none());
        assert!(alone.claim_finalize("p").is_some(), "other orders are independent");
        drop(claim);
        assert!(!alone.is_finalizing("o"));
        assert!(alone.claim_finalize("o").is_some());
    }
}
