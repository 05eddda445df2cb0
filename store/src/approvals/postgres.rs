//! [`ApprovalStore`] on PostgreSQL: decisions and serial claims under a row lock
//! (`SELECT ... FOR UPDATE`), so replicas deciding or claiming together serialise.

use async_trait::async_trait;
use pkiplane_core::approval::{
    ApprovalDecision, ApprovalFilter, ApprovalRequest, ApprovalState, ApprovalStore, DecideOutcome, WaitingCount,
};
use pkiplane_core::inventory::StoreError;
use tokio_postgres::types::ToSql;

use super::{Columns, claimable, decode, limit_clause, where_clause};
use crate::postgres::error::pg_err;
use crate::postgres::{Client, ClientTx, PostgresStore};
use crate::rows::parse_object_ref;

async fn by(client: &Client, column: &str, value: &str) -> Result<Option<ApprovalRequest>, StoreError> {
    let sql = format!("SELECT body FROM approval_requests WHERE {column} = $1");
    let row = client.query_opt(&sql, &[&value]).await.map_err(pg_err("reading an approval request"))?;
    row.map(|r| decode(&r.get::<_, String>(0))).transpose()
}

async fn locked(tx: &ClientTx<'_>, id: &str) -> Result<Option<ApprovalRequest>, StoreError> {
    let row = tx
        .query_opt("SELECT body FROM approval_requests WHERE id = $1 FOR UPDATE", &[&id])
        .await
        .map_err(pg_err("locking an approval request"))?;
    row.map(|r| decode(&r.get::<_, String>(0))).transpose()
}

async fn update(tx: &ClientTx<'_>, r: &ApprovalRequest) -> Result<(), StoreError> {
    let c = Columns::of(r)?;
    tx.execute(
        "UPDATE approval_requests SET state = $2, serial = $3, body = $4 WHERE id = $1",
        &[&r.id, &c.state, &c.serial, &c.body],
    )
    .await
    .map_err(pg_err("updating an approval request"))?;
    Ok(())
}

#[async_trait]
impl ApprovalStore for PostgresStore {
    async fn insert_approval(&self, r: &ApprovalRequest) -> Result<bool, StoreError> {
        let c = Columns::of(r)?;
        let n = self
            .execute(
                "recording an approval request",
                "INSERT INTO approval_requests (id, retry_key, state, profile, issuer, protocol, endpoint, \
                 requester, exchange, created_at, serial, body) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (retry_key) DO NOTHING",
                &[
                    &r.id,
                    &c.retry_key,
                    &c.state,
                    &c.profile,
                    &c.issuer,
                    &c.protocol,
                    &c.endpoint,
                    &c.requester,
                    &c.exchange,
                    &c.created_at,
                    &c.serial,
                    &c.body,
                ],
            )
            .await?;
        Ok(n == 1)
    }

    async fn approval(&self, id: &str) -> Result<Option<ApprovalRequest>, StoreError> {
        by(&self.client().await?, "id", id).await
    }

    async fn approval_by_retry_key(&self, retry_key: &str) -> Result<Option<ApprovalRequest>, StoreError> {
        by(&self.client().await?, "retry_key", retry_key).await
    }

    async fn list_approvals(&self, filter: &ApprovalFilter) -> Result<Vec<ApprovalRequest>, StoreError> {
        let (clause, values) = where_clause(filter, |n| format!("${n}"));
        let sql = format!(
            "SELECT body FROM approval_requests {clause} ORDER BY created_at DESC, id ASC{}",
            limit_clause(filter)
        );
        let params: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
        let rows = self.client().await?.query(&sql, &params).await.map_err(pg_err("listing approval requests"))?;
        rows.iter().map(|r| decode(&r.get::<_, String>(0))).collect()
    }

    async fn decide_approval(&self, id: &str, decision: &ApprovalDecision) -> Result<DecideOutcome, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err("starting an approval decision"))?;
        let Some(mut r) = locked(&tx, id).await? else { return Ok(DecideOutcome::NotFound) };
        if r.state != ApprovalState::Waiting {
            return Ok(DecideOutcome::AlreadyDecided(Box::new(r)));
        }
        r.state = decision.state;
        r.decision = Some(decision.clone());
        update(&tx, &r).await?;
        tx.commit().await.map_err(pg_err("committing an approval decision"))?;
        Ok(DecideOutcome::Decided(Box::new(r)))
    }

    async fn claim_approval_serial(&self, id: &str, expected: Option<&str>, serial: &str) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err("starting a serial claim"))?;
        match locked(&tx, id).await? {
            Some(mut r) if claimable(&r, expected) => {
                r.serial = Some(serial.to_owned());
                update(&tx, &r).await?;
                tx.commit().await.map_err(pg_err("committing a serial claim"))?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn waiting_counts(&self) -> Result<Vec<WaitingCount>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT profile, COUNT(*) FROM approval_requests WHERE state = 'waiting' GROUP BY profile ORDER BY profile",
                &[],
            )
            .await
            .map_err(pg_err("counting waiting approval requests"))?;
        rows.iter()
            .map(|r| {
                let profile: String = r.get(0);
                let n: i64 = r.get(1);
                Ok(WaitingCount {
                    profile: parse_object_ref(&profile, "profile")?,
                    waiting: crate::rows::to_count(n, "count")?,
                })
            })
            .collect()
    }
}
