//! The CMP store's SQL, run on the writer thread (writes) or a read connection.

use std::time::{Duration, SystemTime};

use pkiplane_cmp::state::{CmpTransaction, ExpiryClaim, TransactionStart};
use pkiplane_core::inventory::StoreError;
use rusqlite::{Connection, OptionalExtension, params};

use crate::error::{corrupt, sql_err};
use crate::rows::secs;

/// The states in which a transaction still expects messages (see
/// `TransactionState::is_open`).
const OPEN: &str = "('awaitingConfirmation', 'polling')";

fn to_json(tx: &CmpTransaction) -> String {
    // Plain data: serialising cannot fail.
    serde_json::to_string(tx).unwrap_or_default()
}

fn from_json(s: &str) -> Result<CmpTransaction, StoreError> {
    serde_json::from_str(s).map_err(|e| corrupt("cmp_transactions.record").because(e))
}

pub(crate) fn create_transaction(c: &Connection, tx: &CmpTransaction) -> Result<bool, StoreError> {
    let n = c
        .prepare_cached(
            "INSERT INTO cmp_transactions (endpoint, transaction_id, state, deadline, updated_at, version, record) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING",
        )
        .and_then(|mut s| {
            s.execute(params![
                tx.endpoint.to_string(),
                tx.transaction_id,
                tx.state.as_str(),
                tx.deadline.map(secs),
                secs(tx.updated_at),
                tx.version as i64,
                to_json(tx),
            ])
        })
        .map_err(sql_err("creating a CMP transaction"))?;
    Ok(n == 1)
}

pub(crate) fn transaction(c: &Connection, endpoint: &str, tid: &str) -> Result<Option<CmpTransaction>, StoreError> {
    let row: Option<(String, i64)> = c
        .prepare_cached("SELECT record, version FROM cmp_transactions WHERE endpoint = ?1 AND transaction_id = ?2")
        .and_then(|mut s| s.query_row(params![endpoint, tid], |r| Ok((r.get(0)?, r.get(1)?))).optional())
        .map_err(sql_err("reading a CMP transaction"))?;
    row.map(|(json, version)| {
        let mut tx = from_json(&json)?;
        tx.version = u64::try_from(version).map_err(|_| corrupt("cmp_transactions.version is negative"))?;
        Ok(tx)
    })
    .transpose()
}

pub(crate) fn update_transaction(c: &Connection, tx: &CmpTransaction) -> Result<bool, StoreError> {
    let mut stored = tx.clone();
    stored.version = tx.version + 1;
    let n = c
        .prepare_cached(
            "UPDATE cmp_transactions SET state = ?3, deadline = ?4, updated_at = ?5, version = ?6, record = ?7 \
             WHERE endpoint = ?1 AND transaction_id = ?2 AND version = ?8",
        )
        .and_then(|mut s| {
            s.execute(params![
                tx.endpoint.to_string(),
                tx.transaction_id,
                stored.state.as_str(),
                stored.deadline.map(secs),
                secs(stored.updated_at),
                stored.version as i64,
                to_json(&stored),
                tx.version as i64,
            ])
        })
        .map_err(sql_err("updating a CMP transaction"))?;
    Ok(n == 1)
}

/// Whether [`claim_expired`] would find anything.
pub(crate) fn any_expired(c: &Connection, claim: &ExpiryClaim) -> Result<bool, StoreError> {
    c.prepare_cached(&format!(
        "SELECT EXISTS (SELECT 1 FROM cmp_transactions \
         WHERE endpoint = ?1 AND state IN {OPEN} AND deadline IS NOT NULL AND deadline < ?2)"
    ))
    .and_then(|mut s| s.query_row(params![claim.endpoint.to_string(), secs(claim.now)], |r| r.get(0)))
    .map_err(sql_err("looking for expired CMP transactions"))
}

pub(crate) fn claim_expired(c: &Connection, claim: &ExpiryClaim) -> Result<Vec<CmpTransaction>, StoreError> {
    let rows: Vec<(String, String, i64)> = c
        .prepare_cached(&format!(
            "SELECT transaction_id, record, version FROM cmp_transactions \
             WHERE endpoint = ?1 AND state IN {OPEN} AND deadline IS NOT NULL AND deadline < ?2 LIMIT ?3"
        ))
        .and_then(|mut s| {
            let limit = i64::try_from(claim.limit).unwrap_or(i64::MAX);
            s.query_map(params![claim.endpoint.to_string(), secs(claim.now), limit], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?
            .collect::<Result<Vec<_>, _>>()
        })
        .map_err(sql_err("finding expired CMP transactions"))?;
    let mut out = Vec::with_capacity(rows.len());
    for (tid, json, version) in rows {
        let mut tx = from_json(&json)?;
        tx.version = u64::try_from(version).map_err(|_| corrupt("cmp_transactions.version is negative"))?;
        let expired = tx.expired_at(claim.now);
        // The writer thread runs one operation at a time, so the row cannot change
        // between the SELECT and this UPDATE; the version guard keeps that explicit.
        if update_transaction(c, &expired)? {
            out.push(tx);
        } else {
            tracing::debug!(transaction = %tid, "CMP transaction changed while being expired");
        }
    }
    Ok(out)
}

pub(crate) fn use_nonce(c: &Connection, endpoint: &str, nonce: &str, expires: SystemTime) -> Result<bool, StoreError> {
    let n = c
        .prepare_cached("INSERT INTO cmp_nonces (endpoint, nonce, expires) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING")
        .and_then(|mut s| s.execute(params![endpoint, nonce, secs(expires)]))
        .map_err(sql_err("recording a CMP nonce"))?;
    Ok(n == 1)
}

/// The transaction, then its first nonce, in the one write (see
/// `CmpStore::start_transaction`).
pub(crate) fn start_transaction(
    c: &Connection,
    tx: &CmpTransaction,
    nonce: &str,
    nonce_expires: SystemTime,
) -> Result<TransactionStart, StoreError> {
    if !create_transaction(c, tx)? {
        return Ok(TransactionStart::TransactionIdInUse);
    }
    Ok(if use_nonce(c, &tx.endpoint.to_string(), nonce, nonce_expires)? {
        TransactionStart::Started
    } else {
        TransactionStart::NonceReused
    })
}

pub(crate) fn purge(c: &Connection, now: SystemTime, retention: Duration) -> Result<u64, StoreError> {
    let nonces = c
        .prepare_cached("DELETE FROM cmp_nonces WHERE expires <= ?1")
        .and_then(|mut s| s.execute(params![secs(now)]))
        .map_err(sql_err("purging CMP nonces"))?;
    let cutoff = now.checked_sub(retention).unwrap_or(SystemTime::UNIX_EPOCH);
    let txs = c
        .prepare_cached(&format!("DELETE FROM cmp_transactions WHERE state NOT IN {OPEN} AND updated_at < ?1"))
        .and_then(|mut s| s.execute(params![secs(cutoff)]))
        .map_err(sql_err("purging CMP transactions"))?;
    Ok((nonces + txs) as u64)
}
