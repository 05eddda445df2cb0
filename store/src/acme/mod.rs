//! The ACME state store ([`AcmeStore`]) on the same SQLite file as the inventory: writes
//! go through the group-commit writer (so a nonce consume, an account creation with its
//! EAB key use, or an order with its authorizations is one atomic, durable step), reads
//! through the read pool.

mod ops;
pub(crate) mod schema;

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use pkiplane_acme::state::{
    Account, AccountUpdate, AcmeStore, Authorization, EabUse, Identifier, NewAccountOutcome, NewOrderOutcome, Order,
};
use pkiplane_core::inventory::StoreError;

use crate::SqliteStore;

#[async_trait]
impl AcmeStore for SqliteStore {
    async fn add_nonce(&self, nonce: &str, expires: SystemTime) -> Result<(), StoreError> {
        let nonce = nonce.to_owned();
        self.write(move |c| ops::add_nonce(c, &nonce, expires)).await
    }

    async fn take_nonce(&self, nonce: &str, now: SystemTime) -> Result<bool, StoreError> {
        let nonce = nonce.to_owned();
        self.write(move |c| ops::take_nonce(c, &nonce, now)).await
    }

    async fn create_account(&self, account: &Account, eab: Option<&EabUse>) -> Result<NewAccountOutcome, StoreError> {
        let (account, eab) = (account.clone(), eab.cloned());
        let now = SystemTime::now();
        self.write(move |c| ops::create_account(c, &account, eab.as_ref(), now)).await
    }

    async fn account(&self, id: &str) -> Result<Option<Account>, StoreError> {
        let id = id.to_owned();
        self.read(move |c| ops::account(c, &id)).await
    }

    async fn account_by_thumbprint(&self, thumbprint: &str) -> Result<Option<Account>, StoreError> {
        let t = thumbprint.to_owned();
        self.read(move |c| ops::account_by_thumbprint(c, &t)).await
    }

    async fn update_account(&self, account: &Account) -> Result<AccountUpdate, StoreError> {
        let account = account.clone();
        self.write(move |c| ops::update_account(c, &account)).await
    }

    async fn create_order(
        &self,
        order: &Order,
        new_authorizations: &[Authorization],
    ) -> Result<NewOrderOutcome, StoreError> {
        let (order, authzs) = (order.clone(), new_authorizations.to_vec());
        self.write(move |c| ops::create_order(c, &order, &authzs)).await
    }

    async fn order(&self, id: &str) -> Result<Option<Order>, StoreError> {
        let id = id.to_owned();
        self.read(move |c| ops::order(c, &id)).await
    }

    async fn update_order(&self, order: &Order) -> Result<bool, StoreError> {
        let order = order.clone();
        self.write(move |c| ops::update_order(c, &order)).await
    }

    async fn account_orders(&self, account_id: &str, limit: usize) -> Result<Vec<String>, StoreError> {
        let id = account_id.to_owned();
        self.read(move |c| ops::account_orders(c, &id, limit)).await
    }

    async fn authorization(&self, id: &str) -> Result<Option<Authorization>, StoreError> {
        let id = id.to_owned();
        self.read(move |c| ops::authorization(c, &id)).await
    }

    async fn update_authorization(&self, authz: &Authorization) -> Result<bool, StoreError> {
        let authz = authz.clone();
        self.write(move |c| ops::update_authorization(c, &authz)).await
    }

    async fn valid_authorization(
        &self,
        account_id: &str,
        identifier: &Identifier,
        wildcard: bool,
        now: SystemTime,
    ) -> Result<Option<Authorization>, StoreError> {
        let (account_id, identifier) = (account_id.to_owned(), identifier.clone());
        self.read(move |c| ops::valid_authorization(c, &account_id, &identifier, wildcard, now)).await
    }

    async fn purge_expired(&self, now: SystemTime, retention: Duration) -> Result<u64, StoreError> {
        self.write(move |c| ops::purge_expired(c, now, retention)).await
    }
}
