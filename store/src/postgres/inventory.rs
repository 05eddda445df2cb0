//! The inventory's reads and writes on PostgreSQL. Every write is one statement or one
//! transaction, committed (with `synchronous_commit = on`: flushed) before it returns,
//! except the pending record (see `PostgresStore::write_pending`).

use std::time::{Duration, SystemTime};

use deadpool_postgres::GenericClient;
use pkiplane_core::inventory::unix_seconds::from_secs;
use pkiplane_core::inventory::{
    CertStatus, CertificateRecord, DenialRecord, GroupBy, InventoryCounts, InventoryFilter, Revocation, RevokeOutcome,
    RevokedEntry, StoreError,
};
use tokio_postgres::types::ToSql;

use super::error::{col, pg_err};
use super::{Client, ClientTx};
use crate::rows::{
    Columns, GroupCounts, encode_sans, parse_status, record_from_row, revoked_entry_from_row, secs, secs_after,
    stored_revocation,
};
use crate::sql::{self, CERT_COLUMNS, Dialect, Param};

pub(crate) async fn insert_pending(client: &impl GenericClient, r: &CertificateRecord) -> Result<(), StoreError> {
    let issuer = r.issuer.to_string();
    let sans = encode_sans(&r.sans)?;
    let stmt = client
        .prepare_cached(
            "INSERT INTO certificates (issuer, serial, profile, protocol, endpoint, requester, \
             subject, sans, key_algorithm, not_before, not_after, status, created_at, renewed_from, exchange) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'pending', $12, $13, $14) \
             ON CONFLICT (issuer, serial) DO NOTHING",
        )
        .await
        .map_err(pg_err("recording a pending certificate"))?;
    let inserted = client
        .execute(
            &stmt,
            &[
                &issuer,
                &r.serial,
                &r.profile.to_string(),
                &r.protocol.as_str(),
                &r.endpoint.as_ref().map(ToString::to_string),
                &r.requester,
                &r.subject,
                &sans,
                &r.key_algorithm,
                &secs(r.not_before),
                &secs(r.not_after),
                &secs(r.created_at),
                &r.renewed_from,
                &r.exchange,
            ],
        )
        .await
        .map_err(pg_err("recording a pending certificate"))?;
    if inserted == 0 {
        return Err(StoreError::DuplicateSerial { issuer, serial: r.serial.clone() });
    }
    Ok(())
}

async fn status_of(client: &Client, issuer: &str, serial: &str) -> Result<Option<CertStatus>, StoreError> {
    let row = client
        .query_opt("SELECT status FROM certificates WHERE issuer = $1 AND serial = $2", &[&issuer, &serial])
        .await
        .map_err(pg_err("reading a certificate's status"))?;
    row.map(|r| parse_status(&col::<String>(&r, 0, "status")?)).transpose()
}

/// Why a pending-only transition changed nothing.
async fn not_pending(client: &Client, issuer: &str, serial: &str) -> StoreError {
    match status_of(client, issuer, serial).await {
        Ok(Some(status)) => StoreError::WrongState { serial: serial.to_owned(), status, expected: CertStatus::Pending },
        Ok(None) => StoreError::NotFound { issuer: issuer.to_owned(), serial: serial.to_owned() },
        Err(e) => e,
    }
}

pub(crate) async fn mark_issued(
    client: &Client,
    issuer: &str,
    serial: &str,
    der: &[u8],
    now: SystemTime,
) -> Result<(), StoreError> {
    let stmt = client
        .prepare_cached(
            "UPDATE certificates SET status = 'issued', der = $3, issued_at = $4 \
             WHERE issuer = $1 AND serial = $2 AND status = 'pending'",
        )
        .await
        .map_err(pg_err("recording an issued certificate"))?;
    let changed = client
        .execute(&stmt, &[&issuer, &serial, &der, &secs(now)])
        .await
        .map_err(pg_err("recording an issued certificate"))?;
    if changed == 0 {
        return Err(not_pending(client, issuer, serial).await);
    }
    Ok(())
}

pub(crate) async fn mark_abandoned(client: &Client, issuer: &str, serial: &str) -> Result<(), StoreError> {
    let changed = client
        .execute(
            "UPDATE certificates SET status = 'abandoned' WHERE issuer = $1 AND serial = $2 AND status = 'pending'",
            &[&issuer, &serial],
        )
        .await
        .map_err(pg_err("marking a certificate abandoned"))?;
    if changed == 0 {
        return Err(not_pending(client, issuer, serial).await);
    }
    Ok(())
}

pub(crate) async fn recover_pending(client: &Client, before: SystemTime) -> Result<u64, StoreError> {
    client
        .execute(
            "UPDATE certificates SET status = 'abandoned' WHERE status = 'pending' AND created_at < $1",
            &[&secs(before)],
        )
        .await
        .map_err(pg_err("recovering pending certificates"))
}

pub(crate) async fn revoke(
    tx: &ClientTx<'_>,
    issuer: &str,
    serial: &str,
    revocation: Revocation,
) -> Result<RevokeOutcome, StoreError> {
    // FOR UPDATE: two replicas revoking at once see each other's outcome.
    let row = tx
        .query_opt(
            "SELECT status, revocation_reason, revoked_at FROM certificates \
             WHERE issuer = $1 AND serial = $2 FOR UPDATE",
            &[&issuer, &serial],
        )
        .await
        .map_err(pg_err("reading a certificate to revoke"))?;
    let Some(row) = row else { return Ok(RevokeOutcome::NotFound) };
    let status = parse_status(&col::<String>(&row, 0, "status")?)?;
    let earlier = || stored_revocation(row.opt_int(1, "revocation_reason")?, row.opt_int(2, "revoked_at")?, serial);
    if let Some(outcome) = RevokeOutcome::unless_issued(status, earlier)? {
        return Ok(outcome);
    }
    tx.execute(
        "UPDATE certificates SET status = 'revoked', revocation_reason = $3, revoked_at = $4 \
         WHERE issuer = $1 AND serial = $2 AND status = 'issued'",
        &[&issuer, &serial, &i32::from(revocation.reason.code()), &secs(revocation.at)],
    )
    .await
    .map_err(pg_err("revoking a certificate"))?;
    Ok(RevokeOutcome::Revoked)
}

/// The next CRL number of `issuer`: one row per issuer, incremented under its row lock,
/// so replicas on one database never hand out the same number or a smaller one.
pub(crate) async fn next_crl_number(client: &Client, issuer: &str) -> Result<u64, StoreError> {
    let row = client
        .query_one(
            "INSERT INTO crl_numbers (issuer, last) VALUES ($1, 1) \
             ON CONFLICT (issuer) DO UPDATE SET last = crl_numbers.last + 1 RETURNING last",
            &[&issuer],
        )
        .await
        .map_err(pg_err("taking the next CRL number"))?;
    let last: i64 = col(&row, 0, "last")?;
    crate::rows::to_count(last, "CRL number")
}

pub(crate) async fn record_denial(client: &Client, d: &DenialRecord) -> Result<(), StoreError> {
    client
        .execute(
            "INSERT INTO denials (issuer, profile, protocol, endpoint, rules, count, first_at, last_at, \
             last_requester) VALUES ($1, $2, $3, $4, $5, 1, $6, $6, $7) \
             ON CONFLICT (issuer, profile, protocol, endpoint, rules) DO UPDATE SET \
             count = denials.count + 1, first_at = LEAST(denials.first_at, excluded.first_at), \
             last_at = GREATEST(denials.last_at, excluded.last_at), last_requester = excluded.last_requester",
            &[
                &d.issuer.as_ref().map(ToString::to_string).unwrap_or_default(),
                &d.profile.to_string(),
                &d.protocol.as_str(),
                &d.endpoint.as_ref().map(ToString::to_string).unwrap_or_default(),
                &d.rules,
                &secs(d.at),
                &d.requester,
            ],
        )
        .await
        .map_err(pg_err("recording a policy denial"))?;
    Ok(())
}

async fn records(
    client: &Client,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
    context: &str,
) -> Result<Vec<CertificateRecord>, StoreError> {
    let rows = client.query(sql, params).await.map_err(pg_err(context))?;
    rows.iter().map(record_from_row).collect()
}

pub(crate) async fn get(client: &Client, issuer: &str, serial: &str) -> Result<Option<CertificateRecord>, StoreError> {
    let sql = format!("SELECT {CERT_COLUMNS} FROM certificates WHERE issuer = $1 AND serial = $2");
    Ok(records(client, &sql, &[&issuer, &serial], "reading a certificate").await?.pop())
}

pub(crate) async fn find_serial(client: &Client, serial: &str) -> Result<Vec<CertificateRecord>, StoreError> {
    let sql = format!("SELECT {CERT_COLUMNS} FROM certificates WHERE serial = $1 ORDER BY issuer");
    records(client, &sql, &[&serial], "looking a serial up").await
}

pub(crate) async fn list(
    client: &Client,
    filter: &InventoryFilter,
    now: SystemTime,
) -> Result<Vec<CertificateRecord>, StoreError> {
    let (sql, values) = sql::list_certificates(Dialect::Postgres, filter, now);
    let values: Vec<Box<dyn ToSql + Sync + Send>> = values
        .into_iter()
        .map(|v| -> Box<dyn ToSql + Sync + Send> {
            match v {
                Param::Text(text) => Box::new(text),
                Param::Int(int) => Box::new(int),
            }
        })
        .collect();
    let params: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v.as_ref() as &(dyn ToSql + Sync)).collect();
    records(client, &sql, &params, "listing certificates").await
}

pub(crate) async fn counts(
    tx: &ClientTx<'_>,
    group: GroupBy,
    now: SystemTime,
    expiring_within: Duration,
) -> Result<Vec<InventoryCounts>, StoreError> {
    let context = "counting the inventory";
    let (certificates, denials) = sql::counts(Dialect::Postgres, group);
    let mut groups = GroupCounts::default();
    let window = [secs(now), secs_after(now, expiring_within)];
    for row in tx.query(&certificates, &[&window[0], &window[1]]).await.map_err(pg_err(context))? {
        groups.add_certificates(&row)?;
    }
    for row in tx.query(&denials, &[]).await.map_err(pg_err(context))? {
        groups.add_denials(&row)?;
    }
    Ok(groups.finish())
}

pub(crate) async fn revoked_entries(
    client: &Client,
    issuer: &str,
    now: SystemTime,
) -> Result<Vec<RevokedEntry>, StoreError> {
    let rows = client
        .query(&sql::revoked_entries(Dialect::Postgres), &[&issuer, &secs(now)])
        .await
        .map_err(pg_err("listing revoked certificates"))?;
    rows.iter().map(revoked_entry_from_row).collect()
}

/// The latest notAfter of the signed certificates of `issuer` recorded by `created_by`.
pub(crate) async fn latest_not_after(
    client: &Client,
    issuer: &str,
    created_by: SystemTime,
) -> Result<Option<SystemTime>, StoreError> {
    let row = client
        .query_one(
            "SELECT MAX(not_after) FROM certificates WHERE issuer = $1 AND created_at <= $2 \
             AND status IN ('issued', 'revoked')",
            &[&issuer, &secs(created_by)],
        )
        .await
        .map_err(pg_err("finding the latest notAfter"))?;
    Ok(col::<Option<i64>>(&row, 0, "not_after")?.map(from_secs))
}
