//! [`ApprovalStore`] on SQLite: writes through the group-commit writer, reads on the pool.

use async_trait::async_trait;
use pkiplane_core::approval::{
    ApprovalDecision, ApprovalFilter, ApprovalRequest, ApprovalStore, DecideOutcome, WaitingCount,
};
use pkiplane_core::inventory::StoreError;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};

use super::{Columns, claimable, decode, limit_clause, where_clause};
use crate::SqliteStore;
use crate::error::sql_err;
use crate::rows::parse_object_ref;

fn insert(conn: &Connection, r: &ApprovalRequest) -> Result<bool, StoreError> {
    let c = Columns::of(r)?;
    let n = conn
        .prepare_cached(
            "INSERT INTO approval_requests (id, retry_key, state, profile, issuer, protocol, endpoint, \
             requester, exchange, created_at, serial, body) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) ON CONFLICT (retry_key) DO NOTHING",
        )
        .and_then(|mut s| {
            s.execute(params![
                r.id,
                c.retry_key,
                c.state,
                c.profile,
                c.issuer,
                c.protocol,
                c.endpoint,
                c.requester,
                c.exchange,
                c.created_at,
                c.serial,
                c.body
            ])
        })
        .map_err(sql_err("recording an approval request"))?;
    Ok(n == 1)
}

fn update(conn: &Connection, r: &ApprovalRequest) -> Result<(), StoreError> {
    let c = Columns::of(r)?;
    conn.prepare_cached("UPDATE approval_requests SET state = ?2, serial = ?3, body = ?4 WHERE id = ?1")
        .and_then(|mut s| s.execute(params![r.id, c.state, c.serial, c.body]))
        .map_err(sql_err("updating an approval request"))?;
    Ok(())
}

fn by(conn: &Connection, column: &str, value: &str) -> Result<Option<ApprovalRequest>, StoreError> {
    let sql = format!("SELECT body FROM approval_requests WHERE {column} = ?1");
    let body: Option<String> = conn
        .prepare_cached(&sql)
        .and_then(|mut s| s.query_row(params![value], |r| r.get(0)).optional())
        .map_err(sql_err("reading an approval request"))?;
    body.as_deref().map(decode).transpose()
}

fn list(conn: &Connection, filter: &ApprovalFilter) -> Result<Vec<ApprovalRequest>, StoreError> {
    let (clause, values) = where_clause(filter, |n| format!("?{n}"));
    let sql =
        format!("SELECT body FROM approval_requests {clause} ORDER BY created_at DESC, id ASC{}", limit_clause(filter));
    let bodies: Vec<String> = conn
        .prepare(&sql)
        .and_then(|mut s| s.query_map(params_from_iter(values.iter()), |r| r.get(0))?.collect())
        .map_err(sql_err("listing approval requests"))?;
    bodies.iter().map(|b| decode(b)).collect()
}

fn decide(conn: &Connection, id: &str, decision: &ApprovalDecision) -> Result<DecideOutcome, StoreError> {
    let Some(mut r) = by(conn, "id", id)? else { return Ok(DecideOutcome::NotFound) };
    if r.state != pkiplane_core::approval::ApprovalState::Waiting {
        return Ok(DecideOutcome::AlreadyDecided(Box::new(r)));
    }
    r.state = decision.state;
    r.decision = Some(decision.clone());
    update(conn, &r)?;
    Ok(DecideOutcome::Decided(Box::new(r)))
}

fn claim(conn: &Connection, id: &str, expected: Option<&str>, serial: &str) -> Result<bool, StoreError> {
    match by(conn, "id", id)? {
        Some(mut r) if claimable(&r, expected) => {
            r.serial = Some(serial.to_owned());
            update(conn, &r)?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

fn waiting(conn: &Connection) -> Result<Vec<WaitingCount>, StoreError> {
    let rows: Vec<(String, i64)> = conn
        .prepare_cached(
            "SELECT profile, COUNT(*) FROM approval_requests WHERE state = 'waiting' GROUP BY profile ORDER BY profile",
        )
        .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
        .map_err(sql_err("counting waiting approval requests"))?;
    rows.into_iter()
        .map(|(p, n)| {
            Ok(WaitingCount { profile: parse_object_ref(&p, "profile")?, waiting: crate::rows::to_count(n, "count")? })
        })
        .collect()
}

#[async_trait]
impl ApprovalStore for SqliteStore {
    async fn insert_approval(&self, request: &ApprovalRequest) -> Result<bool, StoreError> {
        let request = request.clone();
        self.write(move |conn| insert(conn, &request)).await
    }

    async fn approval(&self, id: &str) -> Result<Option<ApprovalRequest>, StoreError> {
        let id = id.to_owned();
        self.read(move |conn| by(conn, "id", &id)).await
    }

    async fn approval_by_retry_key(&self, retry_key: &str) -> Result<Option<ApprovalRequest>, StoreError> {
        let key = retry_key.to_owned();
        self.read(move |conn| by(conn, "retry_key", &key)).await
    }

    async fn list_approvals(&self, filter: &ApprovalFilter) -> Result<Vec<ApprovalRequest>, StoreError> {
        let filter = filter.clone();
        self.read(move |conn| list(conn, &filter)).await
    }

    async fn decide_approval(&self, id: &str, decision: &ApprovalDecision) -> Result<DecideOutcome, StoreError> {
        let (id, decision) = (id.to_owned(), decision.clone());
        self.write(move |conn| decide(conn, &id, &decision)).await
    }

    async fn claim_approval_serial(&self, id: &str, expected: Option<&str>, serial: &str) -> Result<bool, StoreError> {
        let (id, expected, serial) = (id.to_owned(), expected.map(str::to_owned), serial.to_owned());
        self.write(move |conn| claim(conn, &id, expected.as_deref(), &serial)).await
    }

    async fn waiting_counts(&self) -> Result<Vec<WaitingCount>, StoreError> {
        self.read(waiting).await
    }
}
