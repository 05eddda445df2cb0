//! The ACME state store ([`AcmeStore`]) on the same SQLite file as the inventory: writes
//! go through the group-commit writer (so a nonce consume, an account creation with its
//! EAB key use, or an order with its authorizations is one atomic, durable step), reads
//! through the read pool.
//!
//! The state is scoped per ACME endpoint: [`AcmeScopes`] hands each endpoint an
//! [`EndpointAcme`] that reads and writes only the rows of that endpoint.

mod adopt;
mod ops;
pub(crate) mod schema;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use pkiplane_acme::state::{
    Account, AccountUpdate, AcmeStateScopes, AcmeStore, Authorization, AuthorizationQuery, EabUse, NewAccountOutcome,
    NewOrderOutcome, Order,
};
use pkiplane_core::inventory::StoreError;
use pkiplane_core::model::ObjectRef;

use crate::SqliteStore;

pub use self::adopt::LegacyAcmeRows;

/// One endpoint's ACME state in a store (SQLite or PostgreSQL).
pub struct EndpointAcme<S> {
    pub(crate) store: Arc<S>,
    /// The endpoint (`namespace/name`) every row read or written belongs to.
    pub(crate) endpoint: String,
}

/// The ACME state of every endpoint in a store.
pub struct AcmeScopes<S>(Arc<S>);

impl<S> AcmeScopes<S> {
    pub fn new(store: Arc<S>) -> Self {
        Self(store)
    }
}

impl<S: Send + Sync + 'static> AcmeStateScopes for AcmeScopes<S>
where
    EndpointAcme<S>: AcmeStore,
{
    fn for_endpoint(&self, endpoint: &ObjectRef) -> Arc<dyn AcmeStore> {
        Arc::new(EndpointAcme { store: self.0.clone(), endpoint: endpoint.to_string() })
    }
}

#[async_trait]
impl AcmeStore for EndpointAcme<SqliteStore> {
    async fn add_nonce(&self, nonce: &str, expires: SystemTime) -> Result<(), StoreError> {
        let e = self.endpoint.clone();
        let nonce = nonce.to_owned();
        self.store.write(move |c| ops::add_nonce(c, &e, &nonce, expires)).await
    }

    async fn take_nonce(&self, nonce: &str, now: SystemTime) -> Result<bool, StoreError> {
        let e = self.endpoint.clone();
        let nonce = nonce.to_owned();
        self.store.write(move |c| ops::take_nonce(c, &e, &nonce, now)).await
    }

    async fn create_account(&self, account: &Account, eab: Option<&EabUse>) -> Result<NewAccountOutcome, StoreError> {
        let e = self.endpoint.clone();
        let (account, eab) = (account.clone(), eab.cloned());
        let now = SystemTime::now();
        self.store.write(move |c| ops::create_account(c, &e, &account, eab.as_ref(), now)).await
    }

    async fn account(&self, id: &str) -> Result<Option<Account>, StoreError> {
        let e = self.endpoint.clone();
        let id = id.to_owned();
        self.store.read_by_key(move |c| ops::account(c, &e, &id)).await
    }

    async fn account_by_thumbprint(&self, thumbprint: &str) -> Result<Option<Account>, StoreError> {
        let e = self.endpoint.clone();
        let t = thumbprint.to_owned();
        self.store.read_by_key(move |c| ops::account_by_thumbprint(c, &e, &t)).await
    }

    async fn update_account(&self, account: &Account) -> Result<AccountUpdate, StoreError> {
        let e = self.endpoint.clone();
        let account = account.clone();
        self.store.write(move |c| ops::update_account(c, &e, &account)).await
    }

    async fn create_order(
        &self,
        order: &Order,
        new_authorizations: &[Authorization],
    ) -> Result<NewOrderOutcome, StoreError> {
        let e = self.endpoint.clone();
        let (order, authzs) = (order.clone(), new_authorizations.to_vec());
        self.store.write(move |c| ops::create_order(c, &e, &order, &authzs)).await
    }

    async fn order(&self, id: &str) -> Result<Option<Order>, StoreError> {
        let e = self.endpoint.clone();
        let id = id.to_owned();
        self.store.read_by_key(move |c| ops::order(c, &e, &id)).await
    }

    async fn update_order(&self, order: &Order) -> Result<bool, StoreError> {
        let e = self.endpoint.clone();
        let order = order.clone();
        self.store.write(move |c| ops::update_order(c, &e, &order)).await
    }

    async fn account_orders(&self, account_id: &str, limit: usize) -> Result<Vec<String>, StoreError> {
        let e = self.endpoint.clone();
        let id = account_id.to_owned();
        self.store.read(move |c| ops::account_orders(c, &e, &id, limit)).await
    }

    async fn authorization(&self, id: &str) -> Result<Option<Authorization>, StoreError> {
        let e = self.endpoint.clone();
        let id = id.to_owned();
        self.store.read_by_key(move |c| ops::authorization(c, &e, &id)).await
    }

    async fn update_authorization(&self, authz: &Authorization) -> Result<bool, StoreError> {
        let e = self.endpoint.clone();
        let authz = authz.clone();
        self.store.write(move |c| ops::update_authorization(c, &e, &authz)).await
    }

    async fn valid_authorization(&self, query: &AuthorizationQuery) -> Result<Option<Authorization>, StoreError> {
        let (e, query) = (self.endpoint.clone(), query.clone());
        self.store.read_by_key(move |c| ops::valid_authorization(c, &e, &query)).await
    }

    async fn purge_expired(&self, now: SystemTime, retention: Duration) -> Result<u64, StoreError> {
        let e = self.endpoint.clone();
        self.store.write(move |c| ops::purge_expired(c, &e, now, retention)).await
    }
}
