//! Conversions between stored rows and the core's inventory types.
//!
//! Anything read back that does not parse is [`StoreError::Corrupt`], never a panic.

use std::time::{Duration, SystemTime};

use pkiplane_core::inventory::unix_seconds::{from_secs, to_secs};
use pkiplane_core::inventory::{CertStatus, CertificateRecord, Revocation, RevocationReason, RevokedEntry, StoreError};
use pkiplane_core::model::{ObjectRef, Protocol};
use rusqlite::Row;
use rusqlite::types::FromSql;

use crate::error::{corrupt, map_sql_error};

/// The certificate columns, in the order [`record_from_row`] reads them.
pub(crate) const CERT_COLUMNS: &str = "issuer, serial, profile, protocol, endpoint, requester, \
     subject, sans, key_algorithm, not_before, not_after, status, revocation_reason, \
     revoked_at, der, renewed_from, created_at, exchange";

/// Reads column `idx` (named `name` in errors); a value of the wrong type is corrupt.
pub(crate) fn col<T: FromSql>(row: &Row<'_>, idx: usize, name: &str) -> Result<T, StoreError> {
    row.get(idx).map_err(|e| map_sql_error(&format!("column `{name}`"), e))
}

pub(crate) fn secs(t: SystemTime) -> i64 {
    to_secs(t)
}

/// `now + window` in unix seconds, saturating.
pub(crate) fn secs_after(now: SystemTime, window: Duration) -> i64 {
    let w = i64::try_from(window.as_secs()).unwrap_or(i64::MAX);
    to_secs(now).saturating_add(w)
}

pub(crate) fn parse_object_ref(value: &str, column: &str) -> Result<ObjectRef, StoreError> {
    value.parse::<ObjectRef>().map_err(|e| corrupt(format!("column `{column}`: {e}")))
}

pub(crate) fn parse_protocol(value: &str) -> Result<Protocol, StoreError> {
    value.parse::<Protocol>().map_err(|e| corrupt(format!("column `protocol`: {e}")))
}

pub(crate) fn parse_status(value: &str) -> Result<CertStatus, StoreError> {
    CertStatus::parse(value).ok_or_else(|| corrupt(format!("column `status`: unknown status `{value}`")))
}

pub(crate) fn parse_reason(code: i64) -> Result<RevocationReason, StoreError> {
    u8::try_from(code)
        .ok()
        .and_then(RevocationReason::from_code)
        .ok_or_else(|| corrupt(format!("column `revocation_reason`: unknown reason code {code}")))
}

pub(crate) fn to_count(value: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| corrupt(format!("{what}: negative count {value}")))
}

pub(crate) fn encode_sans(sans: &[String]) -> Result<String, StoreError> {
    serde_json::to_string(sans).map_err(|e| StoreError::Unavailable(format!("encoding the SAN list: {e}")))
}

fn decode_sans(text: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(text).map_err(|e| corrupt(format!("column `sans`: {e}")))
}

/// The revocation facts of a row whose status is `revoked`.
pub(crate) fn stored_revocation(reason: Option<i64>, at: Option<i64>, serial: &str) -> Result<Revocation, StoreError> {
    match (reason, at) {
        (Some(reason), Some(at)) => Ok(Revocation { reason: parse_reason(reason)?, at: from_secs(at) }),
        _ => Err(corrupt(format!("certificate {serial} is revoked but its revocation reason or time is missing"))),
    }
}

/// Builds a record from a row selected with [`CERT_COLUMNS`].
pub(crate) fn record_from_row(row: &Row<'_>) -> Result<CertificateRecord, StoreError> {
    let serial: String = col(row, 1, "serial")?;
    let status = parse_status(&col::<String>(row, 11, "status")?)?;
    let revocation = if status == CertStatus::Revoked {
        Some(stored_revocation(col(row, 12, "revocation_reason")?, col(row, 13, "revoked_at")?, &serial)?)
    } else {
        None
    };
    let endpoint = col::<Option<String>>(row, 4, "endpoint")?.map(|e| parse_object_ref(&e, "endpoint")).transpose()?;
    Ok(CertificateRecord {
        issuer: parse_object_ref(&col::<String>(row, 0, "issuer")?, "issuer")?,
        profile: parse_object_ref(&col::<String>(row, 2, "profile")?, "profile")?,
        protocol: parse_protocol(&col::<String>(row, 3, "protocol")?)?,
        endpoint,
        requester: col(row, 5, "requester")?,
        subject: col(row, 6, "subject")?,
        sans: decode_sans(&col::<String>(row, 7, "sans")?)?,
        key_algorithm: col(row, 8, "key_algorithm")?,
        not_before: from_secs(col(row, 9, "not_before")?),
        not_after: from_secs(col(row, 10, "not_after")?),
        status,
        revocation,
        der: col(row, 14, "der")?,
        renewed_from: col(row, 15, "renewed_from")?,
        created_at: from_secs(col(row, 16, "created_at")?),
        exchange: col(row, 17, "exchange")?,
        serial,
    })
}

/// Builds a CRL entry from `serial, revocation_reason, revoked_at, not_after`.
pub(crate) fn revoked_entry_from_row(row: &Row<'_>) -> Result<RevokedEntry, StoreError> {
    let serial: String = col(row, 0, "serial")?;
    let revocation = stored_revocation(col(row, 1, "revocation_reason")?, col(row, 2, "revoked_at")?, &serial)?;
    Ok(RevokedEntry {
        serial,
        revoked_at: revocation.at,
        reason: revocation.reason,
        not_after: from_secs(col(row, 3, "not_after")?),
    })
}
