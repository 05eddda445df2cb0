//! The read operations, run on a read-only pooled connection.

use std::time::{Duration, SystemTime};

use pkiplane_core::inventory::{
    CertificateRecord, GroupBy, InventoryCounts, InventoryFilter, RevokedEntry, StoreError, StoredCaMaterial,
};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};

use crate::error::sql_err;
use crate::rows::{GroupCounts, record_from_row, revoked_entry_from_row, secs, secs_after};
use crate::sql::{self, CERT_COLUMNS, Dialect, Param};

/// Runs a query and decodes every row with `decode`.
fn rows_of<T>(
    conn: &Connection,
    sql: &str,
    values: impl IntoIterator<Item = Value>,
    context: &str,
    mut decode: impl FnMut(&rusqlite::Row<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(sql_err(context))?;
    let mut rows = stmt.query(params_from_iter(values)).map_err(sql_err(context))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(sql_err(context))? {
        out.push(decode(row)?);
    }
    Ok(out)
}

fn value(param: Param) -> Value {
    match param {
        Param::Text(text) => Value::Text(text),
        Param::Int(int) => Value::Integer(int),
    }
}

pub(crate) fn get(conn: &Connection, issuer: &str, serial: &str) -> Result<Option<CertificateRecord>, StoreError> {
    let sql = format!("SELECT {CERT_COLUMNS} FROM certificates WHERE issuer = ?1 AND serial = ?2");
    let values = [Value::Text(issuer.to_owned()), Value::Text(serial.to_owned())];
    Ok(rows_of(conn, &sql, values, "reading a certificate", |row| record_from_row(row))?.pop())
}

pub(crate) fn find_serial(conn: &Connection, serial: &str) -> Result<Vec<CertificateRecord>, StoreError> {
    let sql = format!("SELECT {CERT_COLUMNS} FROM certificates WHERE serial = ?1 ORDER BY issuer");
    rows_of(conn, &sql, [Value::Text(serial.to_owned())], "looking a serial up", |row| record_from_row(row))
}

pub(crate) fn list(
    conn: &Connection,
    filter: &InventoryFilter,
    now: SystemTime,
) -> Result<Vec<CertificateRecord>, StoreError> {
    let (sql, values) = sql::list_certificates(Dialect::Sqlite, filter, now);
    rows_of(conn, &sql, values.into_iter().map(value), "listing certificates", |row| record_from_row(row))
}

pub(crate) fn counts(
    conn: &Connection,
    group: GroupBy,
    now: SystemTime,
    expiring_within: Duration,
) -> Result<Vec<InventoryCounts>, StoreError> {
    let context = "counting the inventory";
    let (certificates, denials) = sql::counts(Dialect::Sqlite, group);
    // One read transaction: certificates and denials from the same snapshot.
    let tx = conn.unchecked_transaction().map_err(sql_err(context))?;
    let mut groups = GroupCounts::default();
    let window = [Value::Integer(secs(now)), Value::Integer(secs_after(now, expiring_within))];
    rows_of(&tx, &certificates, window, context, |row| groups.add_certificates(row))?;
    rows_of(&tx, &denials, [], context, |row| groups.add_denials(row))?;
    tx.commit().map_err(sql_err(context))?;
    Ok(groups.finish())
}

pub(crate) fn revoked_entries(
    conn: &Connection,
    issuer: &str,
    now: SystemTime,
) -> Result<Vec<RevokedEntry>, StoreError> {
    let values = [Value::Text(issuer.to_owned()), Value::Integer(secs(now))];
    let sql = sql::revoked_entries(Dialect::Sqlite);
    rows_of(conn, &sql, values, "listing revoked certificates", |row| revoked_entry_from_row(row))
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
