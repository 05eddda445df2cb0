//! The ACME state's SQL, run by the writer thread (writes) or on a pooled read
//! connection (reads).

use std::time::{Duration, SystemTime};

use pkiplane_acme::state::{
    Account, AccountUpdate, Authorization, AuthorizationQuery, EabUse, NewAccountOutcome, NewOrderOutcome, Order,
};
use pkiplane_core::inventory::StoreError;
use rusqlite::{Connection, OptionalExtension, params};

use crate::error::{corrupt, sql_err};
use crate::rows::secs;

/// A record as JSON text.
macro_rules! encode {
    ($v:expr, $what:expr) => {
        serde_json::to_string($v).map_err(|e| StoreError::invalid(format!("encoding {}", $what)).because(e))
    };
}

/// The serde name of a unit enum value (`valid`, `pending`, ...).
macro_rules! name {
    ($v:expr) => {
        match serde_json::to_value($v) {
            Ok(serde_json::Value::String(s)) => s,
            _ => String::new(),
        }
    };
}

fn version(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Reads one `(body, version)` row.
fn one(conn: &Connection, sql: &str, e: &str, key: &str, what: &str) -> Result<Option<(String, u64)>, StoreError> {
    let row: Option<(String, i64)> = conn
        .prepare_cached(sql)
        .and_then(|mut s| s.query_row(params![e, key], |r| Ok((r.get(0)?, r.get(1)?))).optional())
        .map_err(sql_err(what))?;
    row.map(|(body, v)| Ok((body, u64::try_from(v).map_err(|_| corrupt(format!("{what}: negative version")))?)))
        .transpose()
}

/// Decodes a `(body, version)` row into a record with that version.
macro_rules! decode {
    ($row:expr, $ty:ty, $what:expr) => {
        $row.map(|(body, version)| {
            let mut record: $ty = serde_json::from_str(&body).map_err(|e| corrupt($what).because(e))?;
            record.version = version;
            Ok::<$ty, StoreError>(record)
        })
        .transpose()
    };
}

pub(crate) fn add_nonce(conn: &Connection, e: &str, nonce: &str, expires: SystemTime) -> Result<(), StoreError> {
    conn.prepare_cached("INSERT OR REPLACE INTO acme_nonces (endpoint, nonce, expires) VALUES (?1, ?2, ?3)")
        .and_then(|mut s| s.execute(params![e, nonce, secs(expires)]))
        .map_err(sql_err("recording a nonce"))?;
    Ok(())
}

pub(crate) fn take_nonce(conn: &Connection, e: &str, nonce: &str, now: SystemTime) -> Result<bool, StoreError> {
    let expires: Option<i64> = conn
        .prepare_cached("DELETE FROM acme_nonces WHERE endpoint = ?1 AND nonce = ?2 RETURNING expires")
        .and_then(|mut s| s.query_row(params![e, nonce], |r| r.get(0)).optional())
        .map_err(sql_err("consuming a nonce"))?;
    Ok(expires.is_some_and(|e| e > secs(now)))
}

pub(crate) fn account(conn: &Connection, e: &str, id: &str) -> Result<Option<Account>, StoreError> {
    let what = "reading an ACME account";
    decode!(
        one(conn, "SELECT body, version FROM acme_accounts WHERE endpoint = ?1 AND id = ?2", e, id, what)?,
        Account,
        what
    )
}

pub(crate) fn account_by_thumbprint(
    conn: &Connection,
    e: &str,
    thumbprint: &str,
) -> Result<Option<Account>, StoreError> {
    let what = "reading an ACME account";
    decode!(
        one(
            conn,
            "SELECT body, version FROM acme_accounts WHERE endpoint = ?1 AND thumbprint = ?2",
            e,
            thumbprint,
            what
        )?,
        Account,
        what
    )
}

pub(crate) fn create_account(
    conn: &Connection,
    e: &str,
    a: &Account,
    eab: Option<&EabUse>,
    now: SystemTime,
) -> Result<NewAccountOutcome, StoreError> {
    if let Some(existing) = account_by_thumbprint(conn, e, &a.thumbprint)? {
        return Ok(NewAccountOutcome::KeyExists(existing));
    }
    if let Some(eab) = eab.filter(|e| e.single_use) {
        let inserted = conn
            .prepare_cached(
                "INSERT INTO acme_eab_used (endpoint, kid, account_id, used_at) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (endpoint, kid) DO NOTHING",
            )
            .and_then(|mut s| s.execute(params![e, eab.kid, a.id, secs(now)]))
            .map_err(sql_err("recording an EAB key use"))?;
        if inserted == 0 {
            return Ok(NewAccountOutcome::EabKeyUsed);
        }
    }
    let body = encode!(a, "an account")?;
    conn.prepare_cached(
        "INSERT INTO acme_accounts (endpoint, id, thumbprint, body, version) VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .and_then(|mut s| s.execute(params![e, a.id, a.thumbprint, body, version(a.version)]))
    .map_err(sql_err("creating an ACME account"))?;
    Ok(NewAccountOutcome::Created)
}

pub(crate) fn update_account(conn: &Connection, e: &str, a: &Account) -> Result<AccountUpdate, StoreError> {
    let other: Option<String> = conn
        .prepare_cached("SELECT id FROM acme_accounts WHERE endpoint = ?3 AND thumbprint = ?1 AND id <> ?2")
        .and_then(|mut s| s.query_row(params![a.thumbprint, a.id, e], |r| r.get(0)).optional())
        .map_err(sql_err("checking an account key"))?;
    if let Some(other) = other {
        return Ok(AccountUpdate::KeyInUse(other));
    }
    let body = encode!(a, "an account")?;
    let changed = conn
        .prepare_cached(
            "UPDATE acme_accounts SET thumbprint = ?2, body = ?3, version = version + 1 \
             WHERE id = ?1 AND version = ?4 AND endpoint = ?5",
        )
        .and_then(|mut s| s.execute(params![a.id, a.thumbprint, body, version(a.version), e]))
        .map_err(sql_err("updating an ACME account"))?;
    Ok(if changed == 1 { AccountUpdate::Done } else { AccountUpdate::Conflict })
}

fn insert_authorization(conn: &Connection, e: &str, a: &Authorization) -> Result<(), StoreError> {
    let body = encode!(a, "an authorization")?;
    conn.prepare_cached(
        "INSERT INTO acme_authorizations (id, account_id, identifier_type, identifier_value, wildcard, \
         status, expires, body, version, endpoint) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )
    .and_then(|mut s| {
        s.execute(params![
            a.id,
            a.account_id,
            a.identifier.kind.as_str(),
            a.identifier.value,
            a.wildcard,
            name!(&a.status),
            secs(a.expires),
            body,
            version(a.version),
            e,
        ])
    })
    .map_err(sql_err("creating an ACME authorization"))?;
    Ok(())
}

pub(crate) fn create_order(
    conn: &Connection,
    e: &str,
    o: &Order,
    authorizations: &[Authorization],
) -> Result<NewOrderOutcome, StoreError> {
    if let Some(r) = &o.replaces {
        let existing: Option<(String, Option<String>)> = conn
            .prepare_cached(
                "SELECT r.order_id, o.status FROM acme_replacements r \
                 LEFT JOIN acme_orders o ON o.id = r.order_id AND o.endpoint = r.endpoint \
                 WHERE r.endpoint = ?1 AND r.cert_id = ?2",
            )
            .and_then(|mut s| s.query_row(params![e, r.cert_id], |row| Ok((row.get(0)?, row.get(1)?))).optional())
            .map_err(sql_err("reading a replacement"))?;
        if let Some((order_id, Some(status))) = existing
            && status != "invalid"
        {
            return Ok(NewOrderOutcome::AlreadyReplaced(order_id));
        }
        conn.prepare_cached(
            "INSERT OR REPLACE INTO acme_replacements (endpoint, cert_id, order_id) VALUES (?1, ?2, ?3)",
        )
        .and_then(|mut s| s.execute(params![e, r.cert_id, o.id]))
        .map_err(sql_err("recording a replacement"))?;
    }
    for a in authorizations {
        insert_authorization(conn, e, a)?;
    }
    let body = encode!(o, "an order")?;
    conn.prepare_cached(
        "INSERT INTO acme_orders (id, account_id, status, expires, has_certificate, created_at, body, version, \
         endpoint) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )
    .and_then(|mut s| {
        s.execute(params![
            o.id,
            o.account_id,
            name!(&o.status),
            secs(o.expires),
            o.certificate.is_some(),
            secs(o.created_at),
            body,
            version(o.version),
            e,
        ])
    })
    .map_err(sql_err("creating an ACME order"))?;
    Ok(NewOrderOutcome::Created)
}

pub(crate) fn order(conn: &Connection, e: &str, id: &str) -> Result<Option<Order>, StoreError> {
    let what = "reading an ACME order";
    decode!(
        one(conn, "SELECT body, version FROM acme_orders WHERE endpoint = ?1 AND id = ?2", e, id, what)?,
        Order,
        what
    )
}

pub(crate) fn update_order(conn: &Connection, e: &str, o: &Order) -> Result<bool, StoreError> {
    let body = encode!(o, "an order")?;
    let changed = conn
        .prepare_cached(
            "UPDATE acme_orders SET status = ?2, expires = ?3, has_certificate = ?4, body = ?5, \
             version = version + 1 WHERE id = ?1 AND version = ?6 AND endpoint = ?7",
        )
        .and_then(|mut s| {
            s.execute(params![
                o.id,
                name!(&o.status),
                secs(o.expires),
                o.certificate.is_some(),
                body,
                version(o.version),
                e,
            ])
        })
        .map_err(sql_err("updating an ACME order"))?;
    Ok(changed == 1)
}

pub(crate) fn account_orders(
    conn: &Connection,
    e: &str,
    account_id: &str,
    limit: usize,
) -> Result<Vec<String>, StoreError> {
    let context = "listing an account's orders";
    let mut stmt = conn
        .prepare_cached(
            "SELECT id FROM acme_orders WHERE account_id = ?1 AND endpoint = ?3 \
             ORDER BY created_at DESC, rowid DESC LIMIT ?2",
        )
        .map_err(sql_err(context))?;
    let rows = stmt
        .query_map(params![account_id, i64::try_from(limit).unwrap_or(i64::MAX), e], |r| r.get::<_, String>(0))
        .map_err(sql_err(context))?;
    rows.collect::<Result<Vec<_>, _>>().map_err(sql_err(context))
}

pub(crate) fn authorization(conn: &Connection, e: &str, id: &str) -> Result<Option<Authorization>, StoreError> {
    let what = "reading an ACME authorization";
    decode!(
        one(conn, "SELECT body, version FROM acme_authorizations WHERE endpoint = ?1 AND id = ?2", e, id, what)?,
        Authorization,
        what
    )
}

pub(crate) fn update_authorization(conn: &Connection, e: &str, a: &Authorization) -> Result<bool, StoreError> {
    let body = encode!(a, "an authorization")?;
    let changed = conn
        .prepare_cached(
            "UPDATE acme_authorizations SET status = ?2, expires = ?3, body = ?4, version = version + 1 \
             WHERE id = ?1 AND version = ?5 AND endpoint = ?6",
        )
        .and_then(|mut s| s.execute(params![a.id, name!(&a.status), secs(a.expires), body, version(a.version), e]))
        .map_err(sql_err("updating an ACME authorization"))?;
    Ok(changed == 1)
}

pub(crate) fn valid_authorization(
    conn: &Connection,
    e: &str,
    q: &AuthorizationQuery,
) -> Result<Option<Authorization>, StoreError> {
    let context = "looking up a valid authorization";
    let row: Option<(String, i64)> = conn
        .prepare_cached(
            "SELECT body, version FROM acme_authorizations WHERE account_id = ?1 AND identifier_type = ?2 \
             AND identifier_value = ?3 AND wildcard = ?4 AND status = 'valid' AND expires > ?5 AND endpoint = ?6 \
             ORDER BY expires DESC LIMIT 1",
        )
        .and_then(|mut s| {
            s.query_row(
                params![q.account_id, q.identifier.kind.as_str(), q.identifier.value, q.wildcard, secs(q.now), e],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
        })
        .map_err(sql_err(context))?;
    let row = row.map(|(body, v)| (body, u64::try_from(v).unwrap_or_default()));
    decode!(row, Authorization, context)
}

pub(crate) fn purge_expired(
    conn: &Connection,
    e: &str,
    now: SystemTime,
    retention: Duration,
) -> Result<u64, StoreError> {
    let cutoff = secs(now).saturating_sub(i64::try_from(retention.as_secs()).unwrap_or(i64::MAX));
    let run = |sql: &str, p: i64, what: &str| -> Result<usize, StoreError> {
        conn.prepare_cached(sql).and_then(|mut s| s.execute(params![p, e])).map_err(sql_err(what))
    };
    let mut n = run("DELETE FROM acme_nonces WHERE expires <= ?1 AND endpoint = ?2", secs(now), "purging nonces")?;
    n += run(
        "DELETE FROM acme_orders WHERE expires < ?1 AND has_certificate = 0 AND endpoint = ?2",
        cutoff,
        "purging orders",
    )?;
    n += run(
        "DELETE FROM acme_authorizations WHERE expires < ?1 AND endpoint = ?2 AND NOT EXISTS (SELECT 1 FROM acme_orders o, \
         json_each(o.body, '$.authorizations') j WHERE j.value = acme_authorizations.id)",
        cutoff,
        "purging authorizations",
    )?;
    conn.prepare_cached(
        "DELETE FROM acme_replacements WHERE endpoint = ?1 AND order_id NOT IN (SELECT id FROM acme_orders)",
    )
    .and_then(|mut s| s.execute(params![e]))
    .map_err(sql_err("purging replacements"))?;
    Ok(n as u64)
}
