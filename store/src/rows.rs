//! Conversions between stored rows and the core's inventory types, the same for a SQLite
//! and a PostgreSQL row (through [`Columns`]).
//!
//! Anything read back that does not parse is [`StoreError::Corrupt`], never a panic.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use pkiplane_core::inventory::unix_seconds::{from_secs, to_secs};
use pkiplane_core::inventory::{
    CertStatus, CertificateRecord, InventoryCounts, Revocation, RevocationReason, RevokedEntry, StoreError,
};
use pkiplane_core::model::{ObjectRef, Protocol};
use rusqlite::Row;
use rusqlite::types::FromSql;

use crate::error::{corrupt, map_sql_error};

/// Reads column `idx` (named `name` in errors); a value of the wrong type is corrupt.
pub(crate) fn col<T: FromSql>(row: &Row<'_>, idx: usize, name: &str) -> Result<T, StoreError> {
    row.get(idx).map_err(|e| map_sql_error(&format!("column `{name}`"), e))
}

/// Typed reads of one result row, the same on SQLite and PostgreSQL, so that one function
/// decodes a row of either store. Column `idx` is named `name` in errors; a value of the
/// wrong type is corrupt.
pub(crate) trait Columns {
    fn text(&self, idx: usize, name: &str) -> Result<String, StoreError>;
    fn opt_text(&self, idx: usize, name: &str) -> Result<Option<String>, StoreError>;
    fn int(&self, idx: usize, name: &str) -> Result<i64, StoreError>;
    fn opt_int(&self, idx: usize, name: &str) -> Result<Option<i64>, StoreError>;
    fn opt_bytes(&self, idx: usize, name: &str) -> Result<Option<Vec<u8>>, StoreError>;
}

impl Columns for Row<'_> {
    fn text(&self, idx: usize, name: &str) -> Result<String, StoreError> {
        col(self, idx, name)
    }
    fn opt_text(&self, idx: usize, name: &str) -> Result<Option<String>, StoreError> {
        col(self, idx, name)
    }
    fn int(&self, idx: usize, name: &str) -> Result<i64, StoreError> {
        col(self, idx, name)
    }
    fn opt_int(&self, idx: usize, name: &str) -> Result<Option<i64>, StoreError> {
        col(self, idx, name)
    }
    fn opt_bytes(&self, idx: usize, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        col(self, idx, name)
    }
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
    value.parse::<ObjectRef>().map_err(|e| corrupt(format!("column `{column}`")).because(e))
}

pub(crate) fn parse_protocol(value: &str) -> Result<Protocol, StoreError> {
    value.parse::<Protocol>().map_err(|e| corrupt("column `protocol`").because(e))
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
    serde_json::to_string(sans).map_err(|e| StoreError::unavailable("encoding the SAN list").because(e))
}

fn decode_sans(text: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(text).map_err(|e| corrupt("column `sans`").because(e))
}

/// The revocation facts of a row whose status is `revoked`.
pub(crate) fn stored_revocation(reason: Option<i64>, at: Option<i64>, serial: &str) -> Result<Revocation, StoreError> {
    match (reason, at) {
        (Some(reason), Some(at)) => Ok(Revocation { reason: parse_reason(reason)?, at: from_secs(at) }),
        _ => Err(corrupt(format!("certificate {serial} is revoked but its revocation reason or time is missing"))),
    }
}

/// Builds a record from a row selected with [`crate::sql::CERT_COLUMNS`].
pub(crate) fn record_from_row(row: &impl Columns) -> Result<CertificateRecord, StoreError> {
    let serial = row.text(1, "serial")?;
    let status = parse_status(&row.text(11, "status")?)?;
    let revocation = if status == CertStatus::Revoked {
        Some(stored_revocation(row.opt_int(12, "revocation_reason")?, row.opt_int(13, "revoked_at")?, &serial)?)
    } else {
        None
    };
    let endpoint = row.opt_text(4, "endpoint")?.map(|e| parse_object_ref(&e, "endpoint")).transpose()?;
    Ok(CertificateRecord {
        issuer: parse_object_ref(&row.text(0, "issuer")?, "issuer")?,
        profile: parse_object_ref(&row.text(2, "profile")?, "profile")?,
        protocol: parse_protocol(&row.text(3, "protocol")?)?,
        endpoint,
        requester: row.text(5, "requester")?,
        subject: row.text(6, "subject")?,
        sans: decode_sans(&row.text(7, "sans")?)?,
        key_algorithm: row.text(8, "key_algorithm")?,
        not_before: from_secs(row.int(9, "not_before")?),
        not_after: from_secs(row.int(10, "not_after")?),
        status,
        revocation,
        der: row.opt_bytes(14, "der")?,
        renewed_from: row.opt_text(15, "renewed_from")?,
        created_at: from_secs(row.int(16, "created_at")?),
        exchange: row.opt_text(17, "exchange")?,
        serial,
    })
}

/// Builds a CRL entry from `serial, revocation_reason, revoked_at, not_after`.
pub(crate) fn revoked_entry_from_row(row: &impl Columns) -> Result<RevokedEntry, StoreError> {
    let serial = row.text(0, "serial")?;
    let revocation = stored_revocation(row.opt_int(1, "revocation_reason")?, row.opt_int(2, "revoked_at")?, &serial)?;
    Ok(RevokedEntry {
        serial,
        revoked_at: revocation.at,
        reason: revocation.reason,
        not_after: from_secs(row.int(3, "not_after")?),
    })
}

/// The counts per group, gathered from the rows of the two queries of
/// [`crate::sql::counts`]. Every group with a record appears (with zeros if nothing was
/// signed in it yet), like the in-memory inventory.
#[derive(Default)]
pub(crate) struct GroupCounts(BTreeMap<String, InventoryCounts>);

impl GroupCounts {
    /// A row of the certificate query: key, issued, active, expiring soon, revoked, last issued.
    pub(crate) fn add_certificates(&mut self, row: &impl Columns) -> Result<(), StoreError> {
        let key = row.text(0, "group key")?;
        let counts = InventoryCounts {
            issued: to_count(row.int(1, "issued")?, "issued")?,
            active: to_count(row.int(2, "active")?, "active")?,
            expiring_soon: to_count(row.int(3, "expiring soon")?, "expiring soon")?,
            revoked: to_count(row.int(4, "revoked")?, "revoked")?,
            denied: 0,
            last_issued_at: row.opt_int(5, "issued_at")?.map(from_secs),
            waiting_approval: 0,
            key: key.clone(),
        };
        self.0.insert(key, counts);
        Ok(())
    }

    /// A row of the denial query: key, denied.
    pub(crate) fn add_denials(&mut self, row: &impl Columns) -> Result<(), StoreError> {
        let key = row.text(0, "group key")?;
        let denied = to_count(row.int(1, "denied")?, "denied")?;
        self.0.entry(key.clone()).or_insert_with(|| InventoryCounts { key, ..InventoryCounts::default() }).denied =
            denied;
        Ok(())
    }

    pub(crate) fn finish(self) -> Vec<InventoryCounts> {
        self.0.into_values().collect()
    }
}
