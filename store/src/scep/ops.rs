//! The SCEP store's SQL, run on the writer thread (writes) or a read connection.

use std::time::SystemTime;

use pkiplane_core::inventory::StoreError;
use pkiplane_scep::state::{
    ChallengeKey, ChallengeUse, RaMaterial, RaUpdate, ScepChallenge, ScepTransaction, TransactionStatus,
};
use rusqlite::{Connection, OptionalExtension, params};

use crate::error::{corrupt, sql_err};
use crate::rows::{parse_object_ref, secs};

fn challenge_json(v: &ScepChallenge) -> String {
    // Plain data: serialising cannot fail.
    serde_json::to_string(v).unwrap_or_default()
}

fn transaction_json(v: &ScepTransaction) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn challenge_from_json(s: &str) -> Result<ScepChallenge, StoreError> {
    serde_json::from_str(s).map_err(|e| corrupt("scep_challenges.record").because(e))
}

fn transaction_from_json(s: &str) -> Result<ScepTransaction, StoreError> {
    serde_json::from_str(s).map_err(|e| corrupt("scep_transactions.record").because(e))
}

pub(crate) fn record_message(
    c: &Connection,
    endpoint: &str,
    tid: &str,
    nonce: &[u8],
    expires: SystemTime,
) -> Result<bool, StoreError> {
    let n = c
        .prepare_cached(
            "INSERT INTO scep_messages (endpoint, transaction_id, sender_nonce, expires) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT DO NOTHING",
        )
        .and_then(|mut s| s.execute(params![endpoint, tid, nonce, secs(expires)]))
        .map_err(sql_err("recording a SCEP message"))?;
    Ok(n == 1)
}

pub(crate) fn add_challenge(c: &Connection, ch: &ScepChallenge) -> Result<(), StoreError> {
    let n = c
        .prepare_cached(
            "INSERT INTO scep_challenges (endpoint, secret_sha256, expires, used_at, record) VALUES (?1, ?2, ?3, NULL, ?4) \
             ON CONFLICT DO NOTHING",
        )
        .and_then(|mut s| {
            s.execute(params![ch.endpoint.to_string(), ch.secret_sha256, secs(ch.expires), challenge_json(ch)])
        })
        .map_err(sql_err("adding a SCEP challenge"))?;
    if n == 0 {
        return Err(StoreError::invalid(format!("challenge {} exists already", ch.id)));
    }
    Ok(())
}

pub(crate) fn challenge(c: &Connection, key: &ChallengeKey) -> Result<Option<ScepChallenge>, StoreError> {
    let row: Option<(String, Option<i64>)> = c
        .prepare_cached("SELECT record, used_at FROM scep_challenges WHERE endpoint = ?1 AND secret_sha256 = ?2")
        .and_then(|mut s| {
            s.query_row(params![key.endpoint.to_string(), key.secret_sha256], |r| Ok((r.get(0)?, r.get(1)?))).optional()
        })
        .map_err(sql_err("reading a SCEP challenge"))?;
    row.map(|(json, used)| {
        let mut ch: ScepChallenge = challenge_from_json(&json)?;
        ch.used_at = used.map(pkiplane_core::inventory::unix_seconds::from_secs);
        Ok(ch)
    })
    .transpose()
}

pub(crate) fn consume_challenge(
    c: &Connection,
    key: &ChallengeKey,
    now: SystemTime,
) -> Result<ChallengeUse, StoreError> {
    let n = c
        .prepare_cached(
            "UPDATE scep_challenges SET used_at = ?3 \
             WHERE endpoint = ?1 AND secret_sha256 = ?2 AND used_at IS NULL AND expires > ?3",
        )
        .and_then(|mut s| s.execute(params![key.endpoint.to_string(), key.secret_sha256, secs(now)]))
        .map_err(sql_err("consuming a SCEP challenge"))?;
    Ok(ChallengeUse::after_consume(n == 1, challenge(c, key)?))
}

pub(crate) fn create_transaction(c: &Connection, tx: &ScepTransaction) -> Result<bool, StoreError> {
    let n = c
        .prepare_cached(
            "INSERT INTO scep_transactions (endpoint, transaction_id, status, created_at, updated_at, record) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
        )
        .and_then(|mut s| {
            s.execute(params![
                tx.endpoint.to_string(),
                tx.transaction_id,
                tx.status.as_str(),
                secs(tx.created_at),
                secs(tx.updated_at),
                transaction_json(tx)
            ])
        })
        .map_err(sql_err("creating a SCEP transaction"))?;
    Ok(n == 1)
}

pub(crate) fn update_transaction(c: &Connection, tx: &ScepTransaction) -> Result<(), StoreError> {
    let n = c
        .prepare_cached(
            "UPDATE scep_transactions SET status = ?3, updated_at = ?4, record = ?5 \
             WHERE endpoint = ?1 AND transaction_id = ?2",
        )
        .and_then(|mut s| {
            s.execute(params![
                tx.endpoint.to_string(),
                tx.transaction_id,
                tx.status.as_str(),
                secs(tx.updated_at),
                transaction_json(tx)
            ])
        })
        .map_err(sql_err("updating a SCEP transaction"))?;
    if n == 0 {
        return Err(StoreError::invalid(format!("no SCEP transaction {}", tx.transaction_id)));
    }
    Ok(())
}

pub(crate) fn transaction(c: &Connection, endpoint: &str, tid: &str) -> Result<Option<ScepTransaction>, StoreError> {
    let json: Option<String> = c
        .prepare_cached("SELECT record FROM scep_transactions WHERE endpoint = ?1 AND transaction_id = ?2")
        .and_then(|mut s| s.query_row(params![endpoint, tid], |r| r.get(0)).optional())
        .map_err(sql_err("reading a SCEP transaction"))?;
    json.map(|j| transaction_from_json(&j)).transpose()
}

pub(crate) fn pending_transactions(
    c: &Connection,
    endpoint: &str,
    limit: usize,
) -> Result<Vec<ScepTransaction>, StoreError> {
    let mut stmt = c
        .prepare_cached(
            "SELECT record FROM scep_transactions WHERE endpoint = ?1 AND status = ?2 ORDER BY created_at LIMIT ?3",
        )
        .map_err(sql_err("listing SCEP transactions"))?;
    let rows = stmt
        .query_map(params![endpoint, TransactionStatus::Pending.as_str(), limit as i64], |r| r.get::<_, String>(0))
        .map_err(sql_err("listing SCEP transactions"))?;
    let mut out = Vec::new();
    for row in rows {
        out.push(transaction_from_json(&row.map_err(sql_err("listing SCEP transactions"))?)?);
    }
    Ok(out)
}

pub(crate) fn ra_material(c: &Connection, endpoint: &str) -> Result<Option<RaMaterial>, StoreError> {
    let row: Option<(Vec<u8>, Vec<u8>, String)> = c
        .prepare_cached("SELECT certificate_der, private_key, issuer FROM scep_ra WHERE endpoint = ?1")
        .and_then(|mut s| s.query_row(params![endpoint], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).optional())
        .map_err(sql_err("reading the SCEP RA"))?;
    row.map(|(cert, key, issuer)| {
        Ok(RaMaterial {
            certificate_der: cert,
            private_key_pkcs8: key.into(),
            issuer: parse_object_ref(&issuer, "scep_ra.issuer")?,
        })
    })
    .transpose()
}

pub(crate) fn put_ra_material(c: &Connection, update: &RaUpdate, now: SystemTime) -> Result<RaMaterial, StoreError> {
    let (endpoint, m) = (update.endpoint.to_string(), &update.material);
    let stored = ra_material(c, &endpoint)?;
    if update.replaces(stored.as_ref()) {
        c.prepare_cached(
            "INSERT INTO scep_ra (endpoint, certificate_der, private_key, issuer, updated_at) VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (endpoint) DO UPDATE SET certificate_der = excluded.certificate_der, \
             private_key = excluded.private_key, issuer = excluded.issuer, updated_at = excluded.updated_at",
        )
        .and_then(|mut s| {
            s.execute(params![endpoint, m.certificate_der, m.private_key_pkcs8.as_slice(), m.issuer.to_string(), secs(now)])
        })
        .map_err(sql_err("storing the SCEP RA"))?;
        return Ok(m.clone());
    }
    stored.ok_or_else(|| StoreError::corrupt("SCEP RA vanished"))
}

pub(crate) fn purge_expired(c: &Connection, now: SystemTime, cutoff: SystemTime) -> Result<u64, StoreError> {
    let mut n = 0;
    n += c
        .execute("DELETE FROM scep_messages WHERE expires <= ?1", params![secs(now)])
        .map_err(sql_err("purging SCEP messages"))?;
    n += c
        .execute("DELETE FROM scep_challenges WHERE expires <= ?1", params![secs(cutoff)])
        .map_err(sql_err("purging SCEP challenges"))?;
    n += c
        .execute(
            "DELETE FROM scep_transactions WHERE status <> ?1 AND updated_at <= ?2",
            params![TransactionStatus::Pending.as_str(), secs(cutoff)],
        )
        .map_err(sql_err("purging SCEP transactions"))?;
    Ok(n as u64)
}
