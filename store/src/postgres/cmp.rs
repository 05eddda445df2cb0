//! The CMP state ([`CmpStore`]) on PostgreSQL: version-guarded updates, insert-if-absent
//! transactions and nonces, and expiry claims that lock the rows they take
//! (`FOR UPDATE SKIP LOCKED`), so two replicas never clean up one transaction twice.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use pkiplane_cmp::state::{CmpStore, CmpTransaction, ExpiryClaim, TransactionStart};
use pkiplane_core::inventory::StoreError;
use pkiplane_core::model::ObjectRef;
use tokio_postgres::types::ToSql;

use super::PostgresStore;
use super::error::{col, pg_err};
use crate::error::corrupt;
use crate::rows::secs;

/// The states in which a transaction still expects messages (`TransactionState::is_open`).
const OPEN: &str = "('awaitingConfirmation', 'polling')";

fn to_json(tx: &CmpTransaction) -> String {
    // Plain data: serialising cannot fail.
    serde_json::to_string(tx).unwrap_or_default()
}

fn from_row(r: &tokio_postgres::Row) -> Result<CmpTransaction, StoreError> {
    let record: String = col(r, 0, "record")?;
    let version: i64 = col(r, 1, "version")?;
    let mut tx: CmpTransaction =
        serde_json::from_str(&record).map_err(|e| corrupt("cmp_transactions.record").because(e))?;
    tx.version = u64::try_from(version).map_err(|_| corrupt("cmp_transactions.version is negative"))?;
    Ok(tx)
}

fn as_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Replaces `tx` if the stored version is `tx.version` (the stored one becomes one more).
async fn update(db: &impl GenericClient, tx: &CmpTransaction) -> Result<bool, StoreError> {
    let mut stored = tx.clone();
    stored.version = tx.version + 1;
    let n = db
        .execute(
            "UPDATE cmp_transactions SET state = $3, deadline = $4, updated_at = $5, version = $6, record = $7 \
             WHERE endpoint = $1 AND transaction_id = $2 AND version = $8",
            &[
                &tx.endpoint.to_string(),
                &tx.transaction_id,
                &stored.state.as_str(),
                &stored.deadline.map(secs),
                &secs(stored.updated_at),
                &as_i64(stored.version),
                &to_json(&stored),
                &as_i64(tx.version),
            ],
        )
        .await
        .map_err(pg_err("updating a CMP transaction"))?;
    Ok(n == 1)
}

/// Inserts a transaction unless its transactionID is in use ($1..$7: [`NewRow`]).
macro_rules! insert_transaction {
    () => {
        "INSERT INTO cmp_transactions (endpoint, transaction_id, state, deadline, updated_at, version, record) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING"
    };
}

/// The transaction, then (only when it was created) its first senderNonce ($8, $9): one
/// statement, so one round trip and one commit. Both inserts see the same snapshot; the
/// nonce insert reads the transaction insert's RETURNING rows.
const START_TRANSACTION: &str = concat!(
    "WITH created AS (",
    insert_transaction!(),
    " RETURNING 1), nonce AS (INSERT INTO cmp_nonces (endpoint, nonce, expires) \
     SELECT $1, $8::TEXT, $9::BIGINT WHERE EXISTS (SELECT 1 FROM created) ON CONFLICT DO NOTHING RETURNING 1) \
     SELECT EXISTS (SELECT 1 FROM created), EXISTS (SELECT 1 FROM nonce)"
);

/// The columns of a new transaction row, owned for the statement's parameters.
struct NewRow<'a> {
    endpoint: String,
    transaction_id: &'a str,
    state: &'static str,
    deadline: Option<i64>,
    updated_at: i64,
    version: i64,
    record: String,
}

impl<'a> NewRow<'a> {
    fn of(tx: &'a CmpTransaction) -> Self {
        Self {
            endpoint: tx.endpoint.to_string(),
            transaction_id: &tx.transaction_id,
            state: tx.state.as_str(),
            deadline: tx.deadline.map(secs),
            updated_at: secs(tx.updated_at),
            version: as_i64(tx.version),
            record: to_json(tx),
        }
    }

    /// $1..$7 of [`insert_transaction`].
    fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        vec![
            &self.endpoint,
            &self.transaction_id,
            &self.state,
            &self.deadline,
            &self.updated_at,
            &self.version,
            &self.record,
        ]
    }
}

#[async_trait]
impl CmpStore for PostgresStore {
    async fn start_transaction(
        &self,
        tx: &CmpTransaction,
        nonce: &str,
        nonce_expires: SystemTime,
    ) -> Result<TransactionStart, StoreError> {
        let new = NewRow::of(tx);
        let expires = secs(nonce_expires);
        let mut params = new.params();
        params.extend([&nonce as &(dyn ToSql + Sync), &expires]);
        // Not waiting for the flush: see `CmpStore::start_transaction`.
        const WHAT: &str = "starting a CMP transaction";
        let rows = self.query_unsynced(WHAT, START_TRANSACTION, &params).await?;
        let row = rows.first().ok_or_else(|| StoreError::unavailable(format!("{WHAT}: no row returned")))?;
        let (created, recorded): (bool, bool) = (col(row, 0, "created")?, col(row, 1, "nonce")?);
        Ok(match (created, recorded) {
            (false, _) => TransactionStart::TransactionIdInUse,
            (true, true) => TransactionStart::Started,
            (true, false) => TransactionStart::NonceReused,
        })
    }

    async fn create_transaction(&self, tx: &CmpTransaction) -> Result<bool, StoreError> {
        let new = NewRow::of(tx);
        let n = self.execute("creating a CMP transaction", insert_transaction!(), &new.params()).await?;
        Ok(n == 1)
    }

    async fn transaction(
        &self,
        endpoint: &ObjectRef,
        transaction_id: &str,
    ) -> Result<Option<CmpTransaction>, StoreError> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT record, version FROM cmp_transactions WHERE endpoint = $1 AND transaction_id = $2",
                &[&endpoint.to_string(), &transaction_id],
            )
            .await
            .map_err(pg_err("reading a CMP transaction"))?;
        row.as_ref().map(from_row).transpose()
    }

    async fn update_transaction(&self, tx: &CmpTransaction) -> Result<bool, StoreError> {
        update(&self.client().await?, tx).await
    }

    async fn claim_expired(&self, claim: &ExpiryClaim) -> Result<Vec<CmpTransaction>, StoreError> {
        let what = "claiming expired CMP transactions";
        let mut client = self.client().await?;
        let db = client.transaction().await.map_err(pg_err(what))?;
        let rows = db
            .query(
                &format!(
                    "SELECT record, version FROM cmp_transactions WHERE endpoint = $1 AND state IN {OPEN} \
                     AND deadline IS NOT NULL AND deadline < $2 LIMIT $3 FOR UPDATE SKIP LOCKED"
                ),
                &[&claim.endpoint.to_string(), &secs(claim.now), &i64::try_from(claim.limit).unwrap_or(i64::MAX)],
            )
            .await
            .map_err(pg_err(what))?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let tx = from_row(row)?;
            // Locked above: the version guard cannot fail, it only keeps the rule explicit.
            if update(&db, &tx.expired_at(claim.now)).await? {
                out.push(tx);
            }
        }
        db.commit().await.map_err(pg_err(what))?;
        Ok(out)
    }

    async fn use_nonce(&self, endpoint: &ObjectRef, nonce: &str, expires: SystemTime) -> Result<bool, StoreError> {
        let n = self
            .execute(
                "recording a CMP nonce",
                "INSERT INTO cmp_nonces (endpoint, nonce, expires) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                &[&endpoint.to_string(), &nonce, &secs(expires)],
            )
            .await?;
        Ok(n == 1)
    }

    async fn purge(&self, now: SystemTime, retention: Duration) -> Result<u64, StoreError> {
        let cutoff = secs(now.checked_sub(retention).unwrap_or(SystemTime::UNIX_EPOCH));
        let client = self.client().await?;
        let nonces = client
            .execute("DELETE FROM cmp_nonces WHERE expires <= $1", &[&secs(now)])
            .await
            .map_err(pg_err("purging CMP nonces"))?;
        let txs = client
            .execute(&format!("DELETE FROM cmp_transactions WHERE state NOT IN {OPEN} AND updated_at < $1"), &[&cutoff])
            .await
            .map_err(pg_err("purging CMP transactions"))?;
        Ok(nonces + txs)
    }
}
