//! The read operations, run on a read-only pooled connection.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use pkiplane_core::inventory::unix_seconds::from_secs;
use pkiplane_core::inventory::{
    CertificateRecord, GroupBy, InventoryCounts, InventoryFilter, RevokedEntry, StoreError, StoredCaMaterial,
};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};

use crate::error::sql_err;
use crate::rows::{CERT_COLUMNS, col, record_from_row, revoked_entry_from_row, secs, secs_after, to_count};

/// Runs a certificate query and decodes every row.
fn records(
    conn: &Connection,
    sql: &str,
    values: impl IntoIterator<Item = Value>,
    context: &str,
) -> Result<Vec<CertificateRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(sql_err(context))?;
    let mut rows = stmt.query(params_from_iter(values)).map_err(sql_err(context))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(sql_err(context))? {
        out.push(record_from_row(row)?);
    }
    Ok(out)
}

pub(crate) fn get(conn: &Connection, issuer: &str, serial: &str) -> Result<Option<CertificateRecord>, StoreError> {
    let sql = format!("SELECT {CERT_COLUMNS} FROM certificates WHERE issuer = ?1 AND serial = ?2");
    let values = [Value::Text(issuer.to_owned()), Value::Text(serial.to_owned())];
    Ok(records(conn, &sql, values, "reading a certificate")?.pop())
}

pub(crate) fn find_serial(conn: &Connection, serial: &str) -> Result<Vec<CertificateRecord>, StoreError> {
    let sql = format!("SELECT {CERT_COLUMNS} FROM certificates WHERE serial = ?1 ORDER BY issuer");
    records(conn, &sql, [Value::Text(serial.to_owned())], "looking a serial up")
}

pub(crate) fn list(
    conn: &Connection,
    filter: &InventoryFilter,
    now: SystemTime,
) -> Result<Vec<CertificateRecord>, StoreError> {
    let mut clauses: Vec<&str> = Vec::new();
    let mut values: Vec<Value> = Vec::new();
    if let Some(issuer) = &filter.issuer {
        clauses.push("issuer = ?");
        values.push(Value::Text(issuer.to_string()));
    }
    if let Some(profile) = &filter.profile {
        clauses.push("profile = ?");
        values.push(Value::Text(profile.to_string()));
    }
    if let Some(protocol) = filter.protocol {
        clauses.push("protocol = ?");
        values.push(Value::Text(protocol.as_str().to_owned()));
    }
    if let Some(endpoint) = &filter.endpoint {
        clauses.push("endpoint = ?");
        values.push(Value::Text(endpoint.to_string()));
    }
    if let Some(status) = filter.status {
        clauses.push("status = ?");
        values.push(Value::Text(status.as_str().to_owned()));
    }
    if let Some(exchange) = &filter.exchange {
        clauses.push("exchange = ?");
        values.push(Value::Text(exchange.clone()));
    }
    if let Some(before) = filter.expiring_before {
        clauses.push("status = 'issued' AND not_after < ? AND not_after > ?");
        values.push(Value::Integer(secs(before)));
        values.push(Value::Integer(secs(now)));
    }
    let mut sql = format!("SELECT {CERT_COLUMNS} FROM certificates");
    if !clauses.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&clauses.join(" AND "));
    }
    // rowid breaks ties within one second: the latest inserted first.
    sql.push_str(" ORDER BY created_at DESC, rowid DESC");
    if let Some(limit) = filter.limit {
        sql.push_str(" LIMIT ?");
        values.push(Value::Integer(i64::try_from(limit).unwrap_or(i64::MAX)));
    }
    records(conn, &sql, values, "listing certificates")
}

/// The grouping expression and extra condition, on `certificates` and on `denials`
/// (SQL both SQLite and PostgreSQL read).
pub(crate) fn group_sql(group: GroupBy) -> (&'static str, &'static str, &'static str) {
    match group {
        GroupBy::Issuer => ("issuer", "", "issuer <> ''"),
        GroupBy::Profile => ("profile", "", "true"),
        GroupBy::Endpoint => ("endpoint", " AND endpoint IS NOT NULL", "endpoint <> ''"),
        GroupBy::ProfileProtocol => ("profile || '|' || protocol", "", "true"),
        GroupBy::EndpointProfile => ("endpoint || '|' || profile", " AND endpoint IS NOT NULL", "endpoint <> ''"),
    }
}

pub(crate) fn counts(
    conn: &Connection,
    group: GroupBy,
    now: SystemTime,
    expiring_within: Duration,
) -> Result<Vec<InventoryCounts>, StoreError> {
    let (key, cert_cond, denial_cond) = group_sql(group);
    let context = "counting the inventory";
    // Every group with a record appears (with zeros if nothing was signed in it yet), like
    // the in-memory inventory. One read transaction: certificates and denials from the
    // same snapshot.
    let tx = conn.unchecked_transaction().map_err(sql_err(context))?;
    let mut groups: BTreeMap<String, InventoryCounts> = BTreeMap::new();
    {
        let sql = format!(
            "SELECT {key} AS k, \
             sum(status IN ('issued', 'revoked')), \
             sum(status = 'issued' AND not_after > ?1), \
             sum(status = 'issued' AND not_after > ?1 AND not_after <= ?2), \
             sum(status = 'revoked'), \
             max(CASE WHEN status IN ('issued', 'revoked') THEN coalesce(issued_at, created_at) END) \
             FROM certificates WHERE true{cert_cond} GROUP BY k"
        );
        let mut stmt = tx.prepare_cached(&sql).map_err(sql_err(context))?;
        let mut rows = stmt.query(params![secs(now), secs_after(now, expiring_within)]).map_err(sql_err(context))?;
        while let Some(row) = rows.next().map_err(sql_err(context))? {
            let key: String = col(row, 0, "group key")?;
            let last: Option<i64> = col(row, 5, "issued_at")?;
            let counts = InventoryCounts {
                issued: to_count(col(row, 1, "issued")?, "issued")?,
                active: to_count(col(row, 2, "active")?, "active")?,
                expiring_soon: to_count(col(row, 3, "expiring soon")?, "expiring soon")?,
                revoked: to_count(col(row, 4, "revoked")?, "revoked")?,
                denied: 0,
                last_issued_at: last.map(from_secs),
                waiting_approval: 0,
                key: key.clone(),
            };
            groups.insert(key, counts);
        }
    }
    {
        let sql = format!("SELECT {key} AS k, sum(count) FROM denials WHERE {denial_cond} GROUP BY k");
        let mut stmt = tx.prepare_cached(&sql).map_err(sql_err(context))?;
        let mut rows = stmt.query([]).map_err(sql_err(context))?;
        while let Some(row) = rows.next().map_err(sql_err(context))? {
            let key: String = col(row, 0, "group key")?;
            let denied = to_count(col(row, 1, "denied")?, "denied")?;
            groups.entry(key.clone()).or_insert_with(|| InventoryCounts { key, ..InventoryCounts::default() }).denied =
                denied;
        }
    }
    tx.commit().map_err(sql_err(context))?;
    Ok(groups.into_values().collect())
}

pub(crate) fn revoked_entries(
    conn: &Connection,
    issuer: &str,
    now: SystemTime,
) -> Result<Vec<RevokedEntry>, StoreError> {
    let context = "listing revoked certificates";
    let mut stmt = conn
        .prepare_cached(
            "SELECT serial, revocation_reason, revoked_at, not_after FROM certificates \
             WHERE issuer = ?1 AND status = 'revoked' AND not_after > ?2 \
             ORDER BY revoked_at, serial",
        )
        .map_err(sql_err(context))?;
    let mut rows = stmt.query(params![issuer, secs(now)]).map_err(sql_err(context))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(sql_err(context))? {
        out.push(revoked_entry_from_row(row)?);
    }
    Ok(out)
}

pub(crate) fn load_ca(conn: &Connection, issuer: &str) -> Result<Option<StoredCaMaterial>, StoreError> {
    type Row = (Vec<u8>, Vec<u8>, String);
    let row: Option<Row> = conn
        .prepare_cached("SELECT certificate_der, private_key, spec_hash FROM ca_material WHERE issuer = ?1")
        .and_then(|mut stmt| {
            stmt.query_row(params![issuer], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?))).optional()
        })
        .map_err(sql_err("loading CA material"))?;
    Ok(row.map(|(certificate_der, key, spec_hash)| StoredCaMaterial {
        certificate_der,
        private_key_pkcs8: key.into(),
        spec_hash,
    }))
}
