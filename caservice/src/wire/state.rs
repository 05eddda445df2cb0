//! Protocol state calls (`POST /v1/state/{acme,scep,cmp,est}`): one variant per store
//! trait method, so the endpoint's remote stores and the CA-side dispatcher share one
//! definition. Results travel as the method's return value in JSON.

use std::time::SystemTime;

use pkiplane_acme::state::{
    Account, AccountUpdate, Authorization, EabUse, Identifier, NewAccountOutcome, NewOrderOutcome, Order,
};
use pkiplane_cmp::state::CmpTransaction;
use pkiplane_core::model::ObjectRef;
use pkiplane_scep::state::{ChallengeUse, RaMaterial, ScepChallenge, ScepTransaction};
use serde::{Deserialize, Serialize};

use super::core_types::b64;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "camelCase")]
pub enum AcmeCall {
    AddNonce { nonce: String, expires: SystemTime },
    TakeNonce { nonce: String, now: SystemTime },
    CreateAccount { account: Account, eab: Option<(String, bool)> },
    Account { id: String },
    AccountByThumbprint { thumbprint: String },
    UpdateAccount { account: Account },
    CreateOrder { order: Order, new_authorizations: Vec<Authorization> },
    Order { id: String },
    UpdateOrder { order: Order },
    AccountOrders { account_id: String, limit: usize },
    Authorization { id: String },
    UpdateAuthorization { authz: Authorization },
    ValidAuthorization { account_id: String, identifier: Identifier, wildcard: bool, now: SystemTime },
    PurgeExpired { now: SystemTime, retention_seconds: u64 },
}

pub fn eab_to_wire(e: Option<&EabUse>) -> Option<(String, bool)> {
    e.map(|e| (e.kid.clone(), e.single_use))
}

pub fn eab_from_wire(e: Option<(String, bool)>) -> Option<EabUse> {
    e.map(|(kid, single_use)| EabUse { kid, single_use })
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "camelCase")]
pub enum NewAccountWire {
    Created,
    KeyExists { account: Account },
    EabKeyUsed,
}

impl From<NewAccountOutcome> for NewAccountWire {
    fn from(o: NewAccountOutcome) -> Self {
        match o {
            NewAccountOutcome::Created => Self::Created,
            NewAccountOutcome::KeyExists(account) => Self::KeyExists { account },
            NewAccountOutcome::EabKeyUsed => Self::EabKeyUsed,
        }
    }
}

impl From<NewAccountWire> for NewAccountOutcome {
    fn from(o: NewAccountWire) -> Self {
        match o {
            NewAccountWire::Created => Self::Created,
            NewAccountWire::KeyExists { account } => Self::KeyExists(account),
            NewAccountWire::EabKeyUsed => Self::EabKeyUsed,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "camelCase")]
pub enum AccountUpdateWire {
    Done,
    Conflict,
    KeyInUse { account_id: String },
}

impl From<AccountUpdate> for AccountUpdateWire {
    fn from(o: AccountUpdate) -> Self {
        match o {
            AccountUpdate::Done => Self::Done,
            AccountUpdate::Conflict => Self::Conflict,
            AccountUpdate::KeyInUse(account_id) => Self::KeyInUse { account_id },
        }
    }
}

impl From<AccountUpdateWire> for AccountUpdate {
    fn from(o: AccountUpdateWire) -> Self {
        match o {
            AccountUpdateWire::Done => Self::Done,
            AccountUpdateWire::Conflict => Self::Conflict,
            AccountUpdateWire::KeyInUse { account_id } => Self::KeyInUse(account_id),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "camelCase")]
pub enum NewOrderWire {
    Created,
    AlreadyReplaced { order_id: String },
}

impl From<NewOrderOutcome> for NewOrderWire {
    fn from(o: NewOrderOutcome) -> Self {
        match o {
            NewOrderOutcome::Created => Self::Created,
            NewOrderOutcome::AlreadyReplaced(order_id) => Self::AlreadyReplaced { order_id },
        }
    }
}

impl From<NewOrderWire> for NewOrderOutcome {
    fn from(o: NewOrderWire) -> Self {
        match o {
            NewOrderWire::Created => Self::Created,
            NewOrderWire::AlreadyReplaced { order_id } => Self::AlreadyReplaced(order_id),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "camelCase")]
pub enum ScepCall {
    RecordMessage {
        endpoint: ObjectRef,
        transaction_id: String,
        #[serde(with = "b64")]
        sender_nonce: Vec<u8>,
        expires: SystemTime,
    },
    AddChallenge {
        challenge: ScepChallenge,
    },
    Challenge {
        endpoint: ObjectRef,
        secret_sha256: String,
    },
    ConsumeChallenge {
        endpoint: ObjectRef,
        secret_sha256: String,
        now: SystemTime,
    },
    CreateTransaction {
        tx: ScepTransaction,
    },
    Transaction {
        endpoint: ObjectRef,
        transaction_id: String,
    },
    UpdateTransaction {
        tx: ScepTransaction,
    },
    PendingTransactions {
        endpoint: ObjectRef,
        limit: usize,
    },
    RaMaterial {
        endpoint: ObjectRef,
    },
    PutRaMaterial {
        endpoint: ObjectRef,
        material: RaMaterialWire,
        replacing: Option<String>,
    },
    PurgeExpired {
        now: SystemTime,
        retention_seconds: u64,
    },
}

impl ScepCall {
    /// The endpoint the call acts for (None: housekeeping across endpoints).
    pub fn endpoint(&self) -> Option<&ObjectRef> {
        match self {
            ScepCall::RecordMessage { endpoint, .. }
            | ScepCall::Challenge { endpoint, .. }
            | ScepCall::ConsumeChallenge { endpoint, .. }
            | ScepCall::Transaction { endpoint, .. }
            | ScepCall::PendingTransactions { endpoint, .. }
            | ScepCall::RaMaterial { endpoint }
            | ScepCall::PutRaMaterial { endpoint, .. } => Some(endpoint),
            ScepCall::AddChallenge { challenge } => Some(&challenge.endpoint),
            ScepCall::CreateTransaction { tx } | ScepCall::UpdateTransaction { tx } => Some(&tx.endpoint),
            ScepCall::PurgeExpired { .. } => None,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "camelCase")]
pub enum ChallengeUseWire {
    Consumed { challenge: Box<ScepChallenge> },
    Unknown,
    Expired,
    AlreadyUsed,
}

impl From<ChallengeUse> for ChallengeUseWire {
    fn from(o: ChallengeUse) -> Self {
        match o {
            ChallengeUse::Consumed(challenge) => Self::Consumed { challenge },
            ChallengeUse::Unknown => Self::Unknown,
            ChallengeUse::Expired => Self::Expired,
            ChallengeUse::AlreadyUsed => Self::AlreadyUsed,
        }
    }
}

impl From<ChallengeUseWire> for ChallengeUse {
    fn from(o: ChallengeUseWire) -> Self {
        match o {
            ChallengeUseWire::Consumed { challenge } => Self::Consumed(challenge),
            ChallengeUseWire::Unknown => Self::Unknown,
            ChallengeUseWire::Expired => Self::Expired,
            ChallengeUseWire::AlreadyUsed => Self::AlreadyUsed,
        }
    }
}

/// The SCEP RA key pair of an endpoint (the RA's own key, never a CA key), kept in the
/// CA's store so the endpoint's replicas share one RA.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RaMaterialWire {
    #[serde(with = "b64")]
    pub certificate: Vec<u8>,
    #[serde(with = "b64")]
    pub private_key_pkcs8: Vec<u8>,
    pub issuer: ObjectRef,
}

impl std::fmt::Debug for RaMaterialWire {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaMaterialWire").field("issuer", &self.issuer).field("key", &"<redacted>").finish()
    }
}

impl Drop for RaMaterialWire {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.private_key_pkcs8);
    }
}

impl From<&RaMaterial> for RaMaterialWire {
    fn from(m: &RaMaterial) -> Self {
        Self {
            certificate: m.certificate_der.clone(),
            private_key_pkcs8: m.private_key_pkcs8.to_vec(),
            issuer: m.issuer.clone(),
        }
    }
}

impl From<&RaMaterialWire> for RaMaterial {
    fn from(m: &RaMaterialWire) -> Self {
        RaMaterial {
            certificate_der: m.certificate.clone(),
            private_key_pkcs8: zeroize::Zeroizing::new(m.private_key_pkcs8.clone()),
            issuer: m.issuer.clone(),
        }
    }
}

/// CMP state calls; `StartTransaction` is `CmpStore::start_transaction` (a transaction
/// and its first senderNonce) in one call.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "camelCase")]
pub enum CmpCall {
    CreateTransaction { tx: CmpTransaction },
    StartTransaction { tx: CmpTransaction, nonce: String, nonce_expires: SystemTime },
    Transaction { endpoint: ObjectRef, transaction_id: String },
    UpdateTransaction { tx: CmpTransaction },
    ClaimExpired { endpoint: ObjectRef, now: SystemTime, limit: usize },
    UseNonce { endpoint: ObjectRef, nonce: String, expires: SystemTime },
    Purge { now: SystemTime, retention_seconds: u64 },
}

impl CmpCall {
    pub fn endpoint(&self) -> Option<&ObjectRef> {
        match self {
            CmpCall::CreateTransaction { tx }
            | CmpCall::StartTransaction { tx, .. }
            | CmpCall::UpdateTransaction { tx } => Some(&tx.endpoint),
            CmpCall::Transaction { endpoint, .. }
            | CmpCall::ClaimExpired { endpoint, .. }
            | CmpCall::UseNonce { endpoint, .. } => Some(endpoint),
            CmpCall::Purge { .. } => None,
        }
    }
}

/// EST failed-login counters. Keys are scoped to the calling endpoint by the CA service.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "camelCase")]
pub enum EstCall {
    Get { key: String },
    RecordFailure { key: String, now: SystemTime, forget_after: u64 },
    Clear { key: String },
}
