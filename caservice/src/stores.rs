//! The protocol stores of an endpoint pod, kept by the CA service: every method is one
//! `POST /v1/state/<store>` call (see `wire::state`), so replicas of an endpoint share
//! their ACME, SCEP, CMP and EST state.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use hyper::Method;
use pkiplane_acme::state::*;
use pkiplane_cmp::state::{CmpStore, CmpTransaction, ExpiryClaim, TransactionStart};
use pkiplane_core::inventory::StoreError;
use pkiplane_core::model::ObjectRef;
use pkiplane_core::x509::pem;
use pkiplane_est::state::{AuthFailureStore, FailureCount};
use pkiplane_scep::state::{
    ChallengeKey, ChallengeUse, RaMaterial, RaUpdate, ScepChallenge, ScepStore, ScepTransaction, SeenMessage,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::client::Transport;
use crate::wire::state::*;

/// Remote implementations of every protocol store trait.
#[derive(Clone)]
pub struct RemoteStores {
    transport: Arc<Transport>,
}

impl RemoteStores {
    pub fn new(transport: Arc<Transport>) -> Self {
        Self { transport }
    }

    async fn call<C: Serialize, R: DeserializeOwned>(&self, store: &str, call: &C) -> Result<R, StoreError> {
        Ok(self.transport.call(Method::POST, &format!("/v1/state/{store}"), Some(call)).await?)
    }

    async fn acme<R: DeserializeOwned>(&self, call: AcmeCall) -> Result<R, StoreError> {
        self.call("acme", &call).await
    }

    async fn scep<R: DeserializeOwned>(&self, call: ScepCall) -> Result<R, StoreError> {
        self.call("scep", &call).await
    }

    async fn cmp<R: DeserializeOwned>(&self, call: CmpCall) -> Result<R, StoreError> {
        self.call("cmp", &call).await
    }
}

/// The CA service scopes ACME state by the caller's identity: this endpoint's own.
impl AcmeStateScopes for RemoteStores {
    fn for_endpoint(&self, _endpoint: &ObjectRef) -> Arc<dyn AcmeStore> {
        Arc::new(self.clone())
    }
}

#[async_trait]
impl AcmeStore for RemoteStores {
    async fn add_nonce(&self, nonce: &str, expires: SystemTime) -> Result<(), StoreError> {
        self.acme(AcmeCall::AddNonce { nonce: nonce.into(), expires }).await
    }
    async fn take_nonce(&self, nonce: &str, now: SystemTime) -> Result<bool, StoreError> {
        self.acme(AcmeCall::TakeNonce { nonce: nonce.into(), now }).await
    }
    async fn create_account(&self, account: &Account, eab: Option<&EabUse>) -> Result<NewAccountOutcome, StoreError> {
        let w: NewAccountWire =
            self.acme(AcmeCall::CreateAccount { account: account.clone(), eab: eab_to_wire(eab) }).await?;
        Ok(w.into())
    }
    async fn account(&self, id: &str) -> Result<Option<Account>, StoreError> {
        self.acme(AcmeCall::Account { id: id.into() }).await
    }
    async fn account_by_thumbprint(&self, thumbprint: &str) -> Result<Option<Account>, StoreError> {
        self.acme(AcmeCall::AccountByThumbprint { thumbprint: thumbprint.into() }).await
    }
    async fn update_account(&self, account: &Account) -> Result<AccountUpdate, StoreError> {
        let w: AccountUpdateWire = self.acme(AcmeCall::UpdateAccount { account: account.clone() }).await?;
        Ok(w.into())
    }
    async fn create_order(
        &self,
        order: &Order,
        new_authorizations: &[Authorization],
    ) -> Result<NewOrderOutcome, StoreError> {
        let w: NewOrderWire = self
            .acme(AcmeCall::CreateOrder { order: order.clone(), new_authorizations: new_authorizations.to_vec() })
            .await?;
        Ok(w.into())
    }
    async fn order(&self, id: &str) -> Result<Option<Order>, StoreError> {
        self.acme(AcmeCall::Order { id: id.into() }).await
    }
    async fn update_order(&self, order: &Order) -> Result<bool, StoreError> {
        self.acme(AcmeCall::UpdateOrder { order: order.clone() }).await
    }
    async fn account_orders(&self, account_id: &str, limit: usize) -> Result<Vec<String>, StoreError> {
        self.acme(AcmeCall::AccountOrders { account_id: account_id.into(), limit }).await
    }
    async fn authorization(&self, id: &str) -> Result<Option<Authorization>, StoreError> {
        self.acme(AcmeCall::Authorization { id: id.into() }).await
    }
    async fn update_authorization(&self, authz: &Authorization) -> Result<bool, StoreError> {
        self.acme(AcmeCall::UpdateAuthorization { authz: authz.clone() }).await
    }
    async fn valid_authorization(&self, query: &AuthorizationQuery) -> Result<Option<Authorization>, StoreError> {
        let AuthorizationQuery { account_id, identifier, wildcard, now } = query.clone();
        self.acme(AcmeCall::ValidAuthorization { account_id, identifier, wildcard, now }).await
    }
    async fn purge_expired(&self, now: SystemTime, retention: Duration) -> Result<u64, StoreError> {
        self.acme(AcmeCall::PurgeExpired { now, retention_seconds: retention.as_secs() }).await
    }
}

#[async_trait]
impl ScepStore for RemoteStores {
    async fn record_message(&self, seen: &SeenMessage) -> Result<bool, StoreError> {
        let SeenMessage { endpoint, transaction_id, sender_nonce, expires } = seen.clone();
        self.scep(ScepCall::RecordMessage { endpoint, transaction_id, sender_nonce, expires }).await
    }
    async fn add_challenge(&self, challenge: &ScepChallenge) -> Result<(), StoreError> {
        self.scep(ScepCall::AddChallenge { challenge: challenge.clone() }).await
    }
    async fn challenge(&self, key: &ChallengeKey) -> Result<Option<ScepChallenge>, StoreError> {
        let ChallengeKey { endpoint, secret_sha256 } = key.clone();
        self.scep(ScepCall::Challenge { endpoint, secret_sha256 }).await
    }
    async fn consume_challenge(&self, key: &ChallengeKey, now: SystemTime) -> Result<ChallengeUse, StoreError> {
        let ChallengeKey { endpoint, secret_sha256 } = key.clone();
        let w: ChallengeUseWire = self.scep(ScepCall::ConsumeChallenge { endpoint, secret_sha256, now }).await?;
        Ok(w.into())
    }
    async fn create_transaction(&self, tx: &ScepTransaction) -> Result<bool, StoreError> {
        self.scep(ScepCall::CreateTransaction { tx: tx.clone() }).await
    }
    async fn transaction(
        &self,
        endpoint: &ObjectRef,
        transaction_id: &str,
    ) -> Result<Option<ScepTransaction>, StoreError> {
        self.scep(ScepCall::Transaction { endpoint: endpoint.clone(), transaction_id: transaction_id.into() }).await
    }
    async fn update_transaction(&self, tx: &ScepTransaction) -> Result<(), StoreError> {
        self.scep(ScepCall::UpdateTransaction { tx: tx.clone() }).await
    }
    async fn pending_transactions(
        &self,
        endpoint: &ObjectRef,
        limit: usize,
    ) -> Result<Vec<ScepTransaction>, StoreError> {
        self.scep(ScepCall::PendingTransactions { endpoint: endpoint.clone(), limit }).await
    }
    async fn ra_material(&self, endpoint: &ObjectRef) -> Result<Option<RaMaterial>, StoreError> {
        let w: Option<RaMaterialWire> = self.scep(ScepCall::RaMaterial { endpoint: endpoint.clone() }).await?;
        Ok(w.as_ref().map(RaMaterial::from))
    }
    async fn put_ra_material(&self, update: &RaUpdate) -> Result<RaMaterial, StoreError> {
        let w: RaMaterialWire = self
            .scep(ScepCall::PutRaMaterial {
                endpoint: update.endpoint.clone(),
                material: (&update.material).into(),
                replacing: update.replacing.as_ref().map(|d| pem::encode("CERTIFICATE", d)),
            })
            .await?;
        Ok(RaMaterial::from(&w))
    }
    async fn purge_expired(&self, now: SystemTime, retention: Duration) -> Result<u64, StoreError> {
        self.scep(ScepCall::PurgeExpired { now, retention_seconds: retention.as_secs() }).await
    }
}

#[async_trait]
impl CmpStore for RemoteStores {
    /// One call to the CA service instead of two (transaction, then nonce).
    async fn start_transaction(
        &self,
        tx: &CmpTransaction,
        nonce: &str,
        nonce_expires: SystemTime,
    ) -> Result<TransactionStart, StoreError> {
        self.cmp(CmpCall::StartTransaction { tx: tx.clone(), nonce: nonce.into(), nonce_expires }).await
    }
    async fn create_transaction(&self, tx: &CmpTransaction) -> Result<bool, StoreError> {
        self.cmp(CmpCall::CreateTransaction { tx: tx.clone() }).await
    }
    async fn transaction(
        &self,
        endpoint: &ObjectRef,
        transaction_id: &str,
    ) -> Result<Option<CmpTransaction>, StoreError> {
        self.cmp(CmpCall::Transaction { endpoint: endpoint.clone(), transaction_id: transaction_id.into() }).await
    }
    async fn update_transaction(&self, tx: &CmpTransaction) -> Result<bool, StoreError> {
        self.cmp(CmpCall::UpdateTransaction { tx: tx.clone() }).await
    }
    async fn claim_expired(&self, claim: &ExpiryClaim) -> Result<Vec<CmpTransaction>, StoreError> {
        let ExpiryClaim { endpoint, now, limit } = claim.clone();
        self.cmp(CmpCall::ClaimExpired { endpoint, now, limit }).await
    }
    async fn use_nonce(&self, endpoint: &ObjectRef, nonce: &str, expires: SystemTime) -> Result<bool, StoreError> {
        self.cmp(CmpCall::UseNonce { endpoint: endpoint.clone(), nonce: nonce.into(), expires }).await
    }
    async fn purge(&self, now: SystemTime, retention: Duration) -> Result<u64, StoreError> {
        self.cmp(CmpCall::Purge { now, retention_seconds: retention.as_secs() }).await
    }
}

#[async_trait]
impl AuthFailureStore for RemoteStores {
    async fn get(&self, key: &str) -> Result<Option<FailureCount>, StoreError> {
        self.call("est", &EstCall::Get { key: key.into() }).await
    }
    async fn record_failure(&self, key: &str, now: SystemTime, forget_after: u64) -> Result<FailureCount, StoreError> {
        self.call("est", &EstCall::RecordFailure { key: key.into(), now, forget_after }).await
    }
    async fn clear(&self, key: &str) -> Result<(), StoreError> {
        self.call("est", &EstCall::Clear { key: key.into() }).await
    }
}
