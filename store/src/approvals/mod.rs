//! Approval requests ([`ApprovalRequest`], see `pkiplane_core::approval`) in both stores.
//!
//! One row per request: the columns a listing filters on, and the whole record as JSON
//! (`body`) so a field added to the record needs no migration. Decisions and serial
//! claims are read-check-write under the writer (SQLite) or a row lock (PostgreSQL).

pub(crate) mod postgres;
mod sqlite;

use pkiplane_core::approval::{ApprovalFilter, ApprovalRequest, ApprovalState};
use pkiplane_core::inventory::StoreError;

use crate::error::corrupt;

/// The schema step of both stores (SQLite's integer affinity takes BIGINT): in SQLite a
/// step of `migrations`, in PostgreSQL a step of its own in `postgres::schema`, apart
/// from the inventory's and the protocols' steps.
pub(crate) const V_APPROVALS: &str = "
CREATE TABLE approval_requests (
    id         TEXT    NOT NULL PRIMARY KEY,
    retry_key  TEXT    NOT NULL UNIQUE,
    state      TEXT    NOT NULL,
    profile    TEXT    NOT NULL,
    issuer     TEXT    NOT NULL,
    protocol   TEXT    NOT NULL,
    endpoint   TEXT,
    requester  TEXT    NOT NULL,
    exchange   TEXT,
    created_at BIGINT  NOT NULL,
    serial     TEXT,
    body       TEXT    NOT NULL
);
CREATE INDEX approval_requests_state ON approval_requests (state, created_at);
CREATE INDEX approval_requests_profile ON approval_requests (profile, created_at);
CREATE INDEX approval_requests_exchange ON approval_requests (exchange) WHERE exchange IS NOT NULL;
";

pub(crate) fn encode(r: &ApprovalRequest) -> Result<String, StoreError> {
    serde_json::to_string(r).map_err(|e| StoreError::invalid(format!("approval request {}", r.id)).because(e))
}

pub(crate) fn decode(body: &str) -> Result<ApprovalRequest, StoreError> {
    serde_json::from_str(body).map_err(|e| corrupt("approval_requests.body").because(e))
}

/// The WHERE clause and text parameters of `filter`; `placeholder(n)` renders the n-th
/// (1-based) parameter (`?1` for SQLite, `$1` for PostgreSQL).
pub(crate) fn where_clause(filter: &ApprovalFilter, placeholder: impl Fn(usize) -> String) -> (String, Vec<String>) {
    let mut conditions = Vec::new();
    let mut params = Vec::new();
    let mut add = |column: &str, value: Option<String>| {
        if let Some(v) = value {
            params.push(v);
            conditions.push(format!("{column} = {}", placeholder(params.len())));
        }
    };
    add("state", filter.state.map(|s| s.as_str().to_owned()));
    add("profile", filter.profile.as_ref().map(ToString::to_string));
    add("issuer", filter.issuer.as_ref().map(ToString::to_string));
    add("protocol", filter.protocol.map(|p| p.as_str().to_owned()));
    add("endpoint", filter.endpoint.as_ref().map(ToString::to_string));
    add("requester", filter.requester.clone());
    add("exchange", filter.exchange.clone());
    let clause = if conditions.is_empty() { String::new() } else { format!("WHERE {}", conditions.join(" AND ")) };
    (clause, params)
}

/// `LIMIT n` of a filter, or nothing.
pub(crate) fn limit_clause(filter: &ApprovalFilter) -> String {
    filter.limit.map(|n| format!(" LIMIT {n}")).unwrap_or_default()
}

/// The columns of a row, in insert order after `id`, from the record.
pub(crate) struct Columns {
    pub retry_key: String,
    pub state: &'static str,
    pub profile: String,
    pub issuer: String,
    pub protocol: &'static str,
    pub endpoint: Option<String>,
    pub requester: String,
    pub exchange: Option<String>,
    pub created_at: i64,
    pub serial: Option<String>,
    pub body: String,
}

impl Columns {
    pub(crate) fn of(r: &ApprovalRequest) -> Result<Self, StoreError> {
        Ok(Self {
            retry_key: r.retry_key.clone(),
            state: r.state.as_str(),
            profile: r.profile.to_string(),
            issuer: r.issuer.to_string(),
            protocol: r.requester.protocol.as_str(),
            endpoint: r.requester.endpoint.as_ref().map(ToString::to_string),
            requester: r.requester.identity.clone(),
            exchange: r.exchange.clone(),
            created_at: crate::rows::secs(r.created_at),
            serial: r.serial.clone(),
            body: encode(r)?,
        })
    }
}

/// Whether an approved request's serial may move from `expected` to a new one.
pub(crate) fn claimable(r: &ApprovalRequest, expected: Option<&str>) -> bool {
    r.state == ApprovalState::Approved && r.serial.as_deref() == expected
}
