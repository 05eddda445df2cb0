//! ACME rows from before the state was scoped per endpoint (schema step 9 gave them the
//! endpoint '', which no endpoint reads): counting them, and giving them to one endpoint.
//!
//! Adoption moves each account to the endpoint unless the endpoint has since registered
//! the same account key (its clients registered again after the upgrade): that legacy
//! account stays unowned, and so do its orders and authorizations. Orders and
//! authorizations move with their account, replacement (ARI) links with their order, and
//! used EAB key IDs as they are (they stay used: a key ID bound an account once).

use pkiplane_core::inventory::StoreError;
use pkiplane_core::model::ObjectRef;
use rusqlite::{Connection, params};

use crate::SqliteStore;
use crate::error::sql_err;

/// How many rows of each kind belong to no endpoint (or were adopted).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LegacyAcmeRows {
    pub accounts: u64,
    pub orders: u64,
    pub authorizations: u64,
}

impl LegacyAcmeRows {
    pub fn is_empty(&self) -> bool {
        self.accounts == 0 && self.orders == 0 && self.authorizations == 0
    }
}

impl std::fmt::Display for LegacyAcmeRows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} accounts, {} orders, {} authorizations", self.accounts, self.orders, self.authorizations)
    }
}

fn count(conn: &Connection, table: &str) -> Result<u64, StoreError> {
    let n: i64 = conn
        .query_row(&format!("SELECT count(*) FROM {table} WHERE endpoint = ''"), [], |r| r.get(0))
        .map_err(sql_err("counting ACME rows of no endpoint"))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

fn legacy_rows(conn: &Connection) -> Result<LegacyAcmeRows, StoreError> {
    Ok(LegacyAcmeRows {
        accounts: count(conn, "acme_accounts")?,
        orders: count(conn, "acme_orders")?,
        authorizations: count(conn, "acme_authorizations")?,
    })
}

fn adopt(conn: &Connection, endpoint: &str) -> Result<LegacyAcmeRows, StoreError> {
    let run = |sql: &str| conn.execute(sql, params![endpoint]).map_err(sql_err("adopting ACME rows"));
    let accounts = run("UPDATE OR IGNORE acme_accounts SET endpoint = ?1 WHERE endpoint = ''")?;
    let orders = run("UPDATE acme_orders SET endpoint = ?1 WHERE endpoint = '' \
         AND account_id IN (SELECT id FROM acme_accounts WHERE endpoint = ?1)")?;
    let authorizations = run("UPDATE acme_authorizations SET endpoint = ?1 WHERE endpoint = '' \
         AND account_id IN (SELECT id FROM acme_accounts WHERE endpoint = ?1)")?;
    run("UPDATE OR IGNORE acme_eab_used SET endpoint = ?1 WHERE endpoint = ''")?;
    run("UPDATE OR IGNORE acme_replacements SET endpoint = ?1 WHERE endpoint = '' \
         AND order_id IN (SELECT id FROM acme_orders WHERE endpoint = ?1)")?;
    let as_u64 = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
    Ok(LegacyAcmeRows { accounts: as_u64(accounts), orders: as_u64(orders), authorizations: as_u64(authorizations) })
}

impl SqliteStore {
    /// The ACME rows written before the state was scoped per endpoint and not adopted.
    pub async fn legacy_acme_rows(&self) -> Result<LegacyAcmeRows, StoreError> {
        self.read(legacy_rows).await
    }

    /// Gives the ACME rows of no endpoint to `endpoint`, in one transaction; what moved.
    pub async fn adopt_legacy_acme(&self, endpoint: &ObjectRef) -> Result<LegacyAcmeRows, StoreError> {
        let endpoint = endpoint.to_string();
        self.write(move |c| adopt(c, &endpoint)).await
    }
}
