//! The SCEP state ([`ScepStore`]) on PostgreSQL: replay records and challenge uses are
//! single conditional statements (insert-if-absent, update-if-unused), so a message or a
//! challenge is accepted once whichever replica sees it; the RA key converges on one per
//! endpoint under a row lock.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use pkiplane_core::inventory::StoreError;
use pkiplane_core::inventory::unix_seconds::from_secs;
use pkiplane_core::model::ObjectRef;
use pkiplane_scep::state::{
    ChallengeKey, ChallengeUse, RaMaterial, RaUpdate, ScepChallenge, ScepStore, ScepTransaction, SeenMessage,
    TransactionStatus,
};

use super::error::{col, pg_err};
use super::{Client, PostgresStore};
use crate::error::corrupt;
use crate::rows::{parse_object_ref, secs};
use crate::sealing::sqlite::{open_ra, seal_ra};

fn json<T: serde::Serialize>(v: &T) -> String {
    // Plain data: serialising cannot fail.
    serde_json::to_string(v).unwrap_or_default()
}

fn transaction_from_json(s: &str) -> Result<ScepTransaction, StoreError> {
    serde_json::from_str(s).map_err(|e| corrupt("scep_transactions.record").because(e))
}

async fn challenge(client: &Client, key: &ChallengeKey) -> Result<Option<ScepChallenge>, StoreError> {
    let row = client
        .query_opt(
            "SELECT record, used_at FROM scep_challenges WHERE endpoint = $1 AND secret_sha256 = $2",
            &[&key.endpoint.to_string(), &key.secret_sha256],
        )
        .await
        .map_err(pg_err("reading a SCEP challenge"))?;
    row.map(|r| {
        let record: String = col(&r, 0, "record")?;
        let used: Option<i64> = col(&r, 1, "used_at")?;
        let mut ch: ScepChallenge =
            serde_json::from_str(&record).map_err(|e| corrupt("scep_challenges.record").because(e))?;
        ch.used_at = used.map(from_secs);
        Ok(ch)
    })
    .transpose()
}

fn ra_from_row(r: &tokio_postgres::Row) -> Result<RaMaterial, StoreError> {
    let key: Vec<u8> = col(r, 1, "private_key")?;
    Ok(RaMaterial {
        certificate_der: col(r, 0, "certificate_der")?,
        private_key_pkcs8: key.into(),
        issuer: parse_object_ref(&col::<String>(r, 2, "issuer")?, "scep_ra.issuer")?,
    })
}

#[async_trait]
impl ScepStore for PostgresStore {
    async fn record_message(&self, seen: &SeenMessage) -> Result<bool, StoreError> {
        // Not waiting for the flush, for the reasons the SQLite store gives: every answer
        // that changed anything follows a synced commit, which flushes this record too.
        let rows = self
            .query_unsynced(
                "recording a SCEP message",
                "INSERT INTO scep_messages (endpoint, transaction_id, sender_nonce, expires) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING 1",
                &[&seen.endpoint.to_string(), &seen.transaction_id, &seen.sender_nonce, &secs(seen.expires)],
            )
            .await?;
        Ok(rows.len() == 1)
    }

    async fn add_challenge(&self, ch: &ScepChallenge) -> Result<(), StoreError> {
        let n = self
            .execute(
                "adding a SCEP challenge",
                "INSERT INTO scep_challenges (endpoint, secret_sha256, expires, used_at, record) \
                 VALUES ($1, $2, $3, NULL, $4) ON CONFLICT DO NOTHING",
                &[&ch.endpoint.to_string(), &ch.secret_sha256, &secs(ch.expires), &json(ch)],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::invalid(format!("challenge {} exists already", ch.id)));
        }
        Ok(())
    }

    async fn challenge(&self, key: &ChallengeKey) -> Result<Option<ScepChallenge>, StoreError> {
        challenge(&self.client().await?, key).await
    }

    async fn consume_challenge(&self, key: &ChallengeKey, now: SystemTime) -> Result<ChallengeUse, StoreError> {
        let client = self.client().await?;
        let n = client
            .execute(
                "UPDATE scep_challenges SET used_at = $3 \
                 WHERE endpoint = $1 AND secret_sha256 = $2 AND used_at IS NULL AND expires > $3",
                &[&key.endpoint.to_string(), &key.secret_sha256, &secs(now)],
            )
            .await
            .map_err(pg_err("consuming a SCEP challenge"))?;
        Ok(ChallengeUse::after_consume(n == 1, challenge(&client, key).await?))
    }

    async fn create_transaction(&self, tx: &ScepTransaction) -> Result<bool, StoreError> {
        let n = self
            .execute(
                "creating a SCEP transaction",
                "INSERT INTO scep_transactions (endpoint, transaction_id, status, created_at, updated_at, record) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                &[
                    &tx.endpoint.to_string(),
                    &tx.transaction_id,
                    &tx.status.as_str(),
                    &secs(tx.created_at),
                    &secs(tx.updated_at),
                    &json(tx),
                ],
            )
            .await?;
        Ok(n == 1)
    }

    async fn transaction(
        &self,
        endpoint: &ObjectRef,
        transaction_id: &str,
    ) -> Result<Option<ScepTransaction>, StoreError> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT record FROM scep_transactions WHERE endpoint = $1 AND transaction_id = $2",
                &[&endpoint.to_string(), &transaction_id],
            )
            .await
            .map_err(pg_err("reading a SCEP transaction"))?;
        row.map(|r| transaction_from_json(&col::<String>(&r, 0, "record")?)).transpose()
    }

    async fn update_transaction(&self, tx: &ScepTransaction) -> Result<(), StoreError> {
        let n = self
            .execute(
                "updating a SCEP transaction",
                "UPDATE scep_transactions SET status = $3, updated_at = $4, record = $5 \
                 WHERE endpoint = $1 AND transaction_id = $2",
                &[&tx.endpoint.to_string(), &tx.transaction_id, &tx.status.as_str(), &secs(tx.updated_at), &json(tx)],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::invalid(format!("no SCEP transaction {}", tx.transaction_id)));
        }
        Ok(())
    }

    async fn pending_transactions(
        &self,
        endpoint: &ObjectRef,
        limit: usize,
    ) -> Result<Vec<ScepTransaction>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT record FROM scep_transactions WHERE endpoint = $1 AND status = $2 \
                 ORDER BY created_at LIMIT $3",
                &[
                    &endpoint.to_string(),
                    &TransactionStatus::Pending.as_str(),
                    &i64::try_from(limit).unwrap_or(i64::MAX),
                ],
            )
            .await
            .map_err(pg_err("listing SCEP transactions"))?;
        rows.iter().map(|r| transaction_from_json(&col::<String>(r, 0, "record")?)).collect()
    }

    async fn ra_material(&self, endpoint: &ObjectRef) -> Result<Option<RaMaterial>, StoreError> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT certificate_der, private_key, issuer FROM scep_ra WHERE endpoint = $1",
                &[&endpoint.to_string()],
            )
            .await
            .map_err(pg_err("reading the SCEP RA"))?;
        row.map(|r| open_ra(self.key_encryption.get(), endpoint, ra_from_row(&r)?)).transpose()
    }

    async fn put_ra_material(&self, update: &RaUpdate) -> Result<RaMaterial, StoreError> {
        let endpoint = &update.endpoint;
        let sealed = seal_ra(self.key_encryption.get(), endpoint, &update.material)?;
        let e = endpoint.to_string();
        let client = self.client().await?;
        // First writer wins; a renewal replaces only the certificate it names. What is
        // stored afterwards comes back (RETURNING), or, when this call changed nothing,
        // is read.
        let written = client
            .query_opt(
                "INSERT INTO scep_ra (endpoint, certificate_der, private_key, issuer, updated_at) \
                 VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (endpoint) DO UPDATE SET certificate_der = EXCLUDED.certificate_der, \
                 private_key = EXCLUDED.private_key, issuer = EXCLUDED.issuer, updated_at = EXCLUDED.updated_at \
                 WHERE scep_ra.certificate_der = $6 \
                 RETURNING certificate_der, private_key, issuer",
                &[
                    &e,
                    &sealed.certificate_der,
                    &sealed.private_key_pkcs8.as_slice(),
                    &sealed.issuer.to_string(),
                    &secs(SystemTime::now()),
                    &update.replacing,
                ],
            )
            .await
            .map_err(pg_err("storing the SCEP RA"))?;
        let row = match written {
            Some(row) => row,
            None => client
                .query_one("SELECT certificate_der, private_key, issuer FROM scep_ra WHERE endpoint = $1", &[&e])
                .await
                .map_err(pg_err("reading the SCEP RA"))?,
        };
        open_ra(self.key_encryption.get(), endpoint, ra_from_row(&row)?)
    }

    async fn purge_expired(&self, now: SystemTime, retention: Duration) -> Result<u64, StoreError> {
        let cutoff = secs(now.checked_sub(retention).unwrap_or(SystemTime::UNIX_EPOCH));
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err("purging SCEP state"))?;
        let mut n = tx
            .execute("DELETE FROM scep_messages WHERE expires <= $1", &[&secs(now)])
            .await
            .map_err(pg_err("purging SCEP messages"))?;
        n += tx
            .execute("DELETE FROM scep_challenges WHERE expires <= $1", &[&cutoff])
            .await
            .map_err(pg_err("purging SCEP challenges"))?;
        n += tx
            .execute(
                "DELETE FROM scep_transactions WHERE status <> $1 AND updated_at <= $2",
                &[&TransactionStatus::Pending.as_str(), &cutoff],
            )
            .await
            .map_err(pg_err("purging SCEP transactions"))?;
        tx.commit().await.map_err(pg_err("purging SCEP state"))?;
        Ok(n)
    }
}
