//! The write operations, run by the writer thread inside a batch savepoint.
//!
//! Each function sees the batch transaction as a plain connection; returning an error
//! rolls back whatever it wrote.

use std::time::SystemTime;

use pkiplane_core::inventory::{
    CertStatus, CertificateRecord, DenialRecord, Revocation, RevokeOutcome, StoreError, StoredCaMaterial,
};
use rusqlite::{Connection, OptionalExtension, params};

use crate::error::sql_err;
use crate::rows::{encode_sans, parse_status, secs, stored_revocation, to_count};

pub(crate) fn insert_pending(conn: &Connection, r: &CertificateRecord) -> Result<(), StoreError> {
    let issuer = r.issuer.to_string();
    let sans = encode_sans(&r.sans)?;
    let inserted = conn
        .prepare_cached(
            "INSERT INTO certificates (issuer, serial, profile, protocol, endpoint, requester, \
             subject, sans, key_algorithm, not_before, not_after, status, revocation_reason, \
             revoked_at, der, renewed_from, created_at, issued_at, exchange) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 'pending', NULL, NULL, NULL, \
             ?12, ?13, NULL, ?14) \
             ON CONFLICT (issuer, serial) DO NOTHING",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                issuer,
                r.serial,
                r.profile.to_string(),
                r.protocol.as_str(),
                r.endpoint.as_ref().map(ToString::to_string),
                r.requester,
                r.subject,
                sans,
                r.key_algorithm,
                secs(r.not_before),
                secs(r.not_after),
                r.renewed_from,
                secs(r.created_at),
                r.exchange,
            ])
        })
        .map_err(sql_err("recording a pending certificate"))?;
    if inserted == 0 {
        return Err(StoreError::DuplicateSerial { issuer, serial: r.serial.clone() });
    }
    Ok(())
}

/// The status of one record, if it exists.
fn status_of(conn: &Connection, issuer: &str, serial: &str) -> Result<Option<CertStatus>, StoreError> {
    let status: Option<String> = conn
        .prepare_cached("SELECT status FROM certificates WHERE issuer = ?1 AND serial = ?2")
        .and_then(|mut stmt| stmt.query_row(params![issuer, serial], |row| row.get(0)).optional())
        .map_err(sql_err("reading a certificate's status"))?;
    status.map(|s| parse_status(&s)).transpose()
}

/// Why a pending-only transition changed nothing.
fn not_pending(conn: &Connection, issuer: &str, serial: &str) -> StoreError {
    match status_of(conn, issuer, serial) {
        Ok(Some(status)) => StoreError::WrongState { serial: serial.to_owned(), status, expected: CertStatus::Pending },
        Ok(None) => StoreError::NotFound { issuer: issuer.to_owned(), serial: serial.to_owned() },
        Err(e) => e,
    }
}

pub(crate) fn mark_issued(
    conn: &Connection,
    issuer: &str,
    serial: &str,
    der: &[u8],
    now: SystemTime,
) -> Result<(), StoreError> {
    let changed = conn
        .prepare_cached(
            "UPDATE certificates SET status = 'issued', der = ?3, issued_at = ?4 \
             WHERE issuer = ?1 AND serial = ?2 AND status = 'pending'",
        )
        .and_then(|mut stmt| stmt.execute(params![issuer, serial, der, secs(now)]))
        .map_err(sql_err("recording an issued certificate"))?;
    if changed == 0 {
        return Err(not_pending(conn, issuer, serial));
    }
    Ok(())
}

pub(crate) fn mark_abandoned(conn: &Connection, issuer: &str, serial: &str) -> Result<(), StoreError> {
    let changed = conn
        .prepare_cached(
            "UPDATE certificates SET status = 'abandoned' \
             WHERE issuer = ?1 AND serial = ?2 AND status = 'pending'",
        )
        .and_then(|mut stmt| stmt.execute(params![issuer, serial]))
        .map_err(sql_err("marking a certificate abandoned"))?;
    if changed == 0 {
        return Err(not_pending(conn, issuer, serial));
    }
    Ok(())
}

pub(crate) fn recover_pending(conn: &Connection, before: SystemTime) -> Result<u64, StoreError> {
    let changed = conn
        .prepare_cached(
            "UPDATE certificates SET status = 'abandoned' \
             WHERE status = 'pending' AND created_at < ?1",
        )
        .and_then(|mut stmt| stmt.execute(params![secs(before)]))
        .map_err(sql_err("recovering pending certificates"))?;
    Ok(changed as u64)
}

pub(crate) fn revoke(
    conn: &Connection,
    issuer: &str,
    serial: &str,
    revocation: Revocation,
) -> Result<RevokeOutcome, StoreError> {
    type Current = (String, Option<i64>, Option<i64>);
    let current: Option<Current> = conn
        .prepare_cached(
            "SELECT status, revocation_reason, revoked_at FROM certificates \
             WHERE issuer = ?1 AND serial = ?2",
        )
        .and_then(|mut stmt| {
            stmt.query_row(params![issuer, serial], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?))).optional()
        })
        .map_err(sql_err("reading a certificate to revoke"))?;
    let Some((status, old_reason, old_at)) = current else {
        return Ok(RevokeOutcome::NotFound);
    };
    if let Some(outcome) =
        RevokeOutcome::unless_issued(parse_status(&status)?, || stored_revocation(old_reason, old_at, serial))?
    {
        return Ok(outcome);
    }
    conn.prepare_cached(
        "UPDATE certificates SET status = 'revoked', revocation_reason = ?3, revoked_at = ?4 \
         WHERE issuer = ?1 AND serial = ?2 AND status = 'issued'",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![issuer, serial, i64::from(revocation.reason.code()), secs(revocation.at)])
    })
    .map_err(sql_err("revoking a certificate"))?;
    Ok(RevokeOutcome::Revoked)
}

pub(crate) fn next_crl_number(conn: &Connection, issuer: &str) -> Result<u64, StoreError> {
    let last: i64 = conn
        .prepare_cached(
            "INSERT INTO crl_numbers (issuer, last) VALUES (?1, 1) \
             ON CONFLICT (issuer) DO UPDATE SET last = last + 1 \
             RETURNING last",
        )
        .and_then(|mut stmt| stmt.query_row(params![issuer], |row| row.get(0)))
        .map_err(sql_err("taking the next CRL number"))?;
    to_count(last, "CRL number")
}

pub(crate) fn record_denial(conn: &Connection, d: &DenialRecord) -> Result<(), StoreError> {
    let at = secs(d.at);
    conn.prepare_cached(
        "INSERT INTO denials (issuer, profile, protocol, endpoint, rules, count, first_at, \
         last_at, last_requester) VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6, ?6, ?7) \
         ON CONFLICT (issuer, profile, protocol, endpoint, rules) DO UPDATE SET \
         count = count + 1, first_at = min(first_at, excluded.first_at), \
         last_at = max(last_at, excluded.last_at), last_requester = excluded.last_requester",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            d.issuer.as_ref().map(ToString::to_string).unwrap_or_default(),
            d.profile.to_string(),
            d.protocol.as_str(),
            d.endpoint.as_ref().map(ToString::to_string).unwrap_or_default(),
            d.rules,
            at,
            d.requester,
        ])
    })
    .map_err(sql_err("recording a policy denial"))?;
    Ok(())
}

pub(crate) fn save_ca(
    conn: &Connection,
    issuer: &str,
    material: &StoredCaMaterial,
    now: SystemTime,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO ca_material (issuer, certificate_der, private_key, spec_hash, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT (issuer) DO UPDATE SET certificate_der = excluded.certificate_der, \
         private_key = excluded.private_key, spec_hash = excluded.spec_hash, \
         updated_at = excluded.updated_at",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            issuer,
            material.certificate_der,
            material.private_key_pkcs8.as_slice(),
            material.spec_hash,
            secs(now),
        ])
    })
    .map_err(sql_err("saving CA material"))?;
    Ok(())
}
