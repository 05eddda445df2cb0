//! The ACME state ([`AcmeStore`]) on PostgreSQL, one endpoint's rows per
//! [`EndpointAcme`]. Every write is one statement or one transaction committed before it
//! returns; the consume-once operations are single statements (a nonce is deleted with
//! `DELETE ... RETURNING`, so of two replicas racing for it exactly one gets the row).

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use pkiplane_acme::state::{
    Account, AccountUpdate, AcmeStore, Authorization, AuthorizationQuery, EabUse, NewAccountOutcome, NewOrderOutcome,
    Order,
};
use pkiplane_core::inventory::StoreError;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_postgres::types::ToSql;

use super::error::{col, pg_err};
use super::{Client, PostgresStore};
use crate::EndpointAcme;
use crate::error::corrupt;
use crate::rows::secs;

fn encode<T: Serialize>(v: &T, what: &str) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::invalid(format!("encoding {what}")).because(e))
}

/// The serde name of a unit enum value (`valid`, `pending`, ...).
fn name<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

fn version(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A record kept as `(body, version)`; the version column is authoritative.
trait Versioned: DeserializeOwned {
    fn set_version(&mut self, v: u64);
}

impl Versioned for Account {
    fn set_version(&mut self, v: u64) {
        self.version = v;
    }
}
impl Versioned for Order {
    fn set_version(&mut self, v: u64) {
        self.version = v;
    }
}
impl Versioned for Authorization {
    fn set_version(&mut self, v: u64) {
        self.version = v;
    }
}

async fn one<T: Versioned>(
    client: &Client,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
    what: &str,
) -> Result<Option<T>, StoreError> {
    let row = client.query_opt(sql, params).await.map_err(pg_err(what))?;
    row.map(|r| {
        let body: String = col(&r, 0, "body")?;
        let v: i64 = col(&r, 1, "version")?;
        let mut record: T = serde_json::from_str(&body).map_err(|e| corrupt(what).because(e))?;
        record.set_version(u64::try_from(v).map_err(|_| corrupt(format!("{what}: negative version")))?);
        Ok(record)
    })
    .transpose()
}

impl EndpointAcme<PostgresStore> {
    async fn client(&self) -> Result<Client, StoreError> {
        self.store.client().await
    }

    async fn by_thumbprint(&self, client: &Client, thumbprint: &str) -> Result<Option<Account>, StoreError> {
        one(
            client,
            "SELECT body, version FROM acme_accounts WHERE endpoint = $1 AND thumbprint = $2",
            &[&self.endpoint, &thumbprint],
            "reading an ACME account",
        )
        .await
    }
}

#[async_trait]
impl AcmeStore for EndpointAcme<PostgresStore> {
    async fn add_nonce(&self, nonce: &str, expires: SystemTime) -> Result<(), StoreError> {
        self.store
            .execute(
                "recording a nonce",
                "INSERT INTO acme_nonces (endpoint, nonce, expires) VALUES ($1, $2, $3) \
                 ON CONFLICT (endpoint, nonce) DO UPDATE SET expires = excluded.expires",
                &[&self.endpoint, &nonce, &secs(expires)],
            )
            .await?;
        Ok(())
    }

    async fn take_nonce(&self, nonce: &str, now: SystemTime) -> Result<bool, StoreError> {
        let row = self
            .client()
            .await?
            .query_opt(
                "DELETE FROM acme_nonces WHERE endpoint = $1 AND nonce = $2 RETURNING expires",
                &[&self.endpoint, &nonce],
            )
            .await
            .map_err(pg_err("consuming a nonce"))?;
        let expires: Option<i64> = row.map(|r| col(&r, 0, "expires")).transpose()?;
        Ok(expires.is_some_and(|e| e > secs(now)))
    }

    async fn create_account(&self, a: &Account, eab: Option<&EabUse>) -> Result<NewAccountOutcome, StoreError> {
        let mut client = self.client().await?;
        if let Some(existing) = self.by_thumbprint(&client, &a.thumbprint).await? {
            return Ok(NewAccountOutcome::KeyExists(existing));
        }
        let body = encode(a, "an account")?;
        let tx = client.transaction().await.map_err(pg_err("creating an ACME account"))?;
        if let Some(eab) = eab.filter(|e| e.single_use) {
            let inserted = tx
                .execute(
                    "INSERT INTO acme_eab_used (endpoint, kid, account_id, used_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (endpoint, kid) DO NOTHING",
                    &[&self.endpoint, &eab.kid, &a.id, &secs(SystemTime::now())],
                )
                .await
                .map_err(pg_err("recording an EAB key use"))?;
            if inserted == 0 {
                return Ok(NewAccountOutcome::EabKeyUsed);
            }
        }
        let inserted = tx
            .execute(
                "INSERT INTO acme_accounts (endpoint, id, thumbprint, body, version) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT DO NOTHING",
                &[&self.endpoint, &a.id, &a.thumbprint, &body, &version(a.version)],
            )
            .await
            .map_err(pg_err("creating an ACME account"))?;
        if inserted == 0 {
            // A concurrent newAccount with the same key won (the EAB use rolls back).
            drop(tx);
            return match self.by_thumbprint(&client, &a.thumbprint).await? {
                Some(existing) => Ok(NewAccountOutcome::KeyExists(existing)),
                None => Err(StoreError::invalid(format!("ACME account id {} exists already", a.id))),
            };
        }
        tx.commit().await.map_err(pg_err("creating an ACME account"))?;
        Ok(NewAccountOutcome::Created)
    }

    async fn account(&self, id: &str) -> Result<Option<Account>, StoreError> {
        let sql = "SELECT body, version FROM acme_accounts WHERE endpoint = $1 AND id = $2";
        one(&self.client().await?, sql, &[&self.endpoint, &id], "reading an ACME account").await
    }

    async fn account_by_thumbprint(&self, thumbprint: &str) -> Result<Option<Account>, StoreError> {
        self.by_thumbprint(&self.client().await?, thumbprint).await
    }

    async fn update_account(&self, a: &Account) -> Result<AccountUpdate, StoreError> {
        let client = self.client().await?;
        let other = client
            .query_opt(
                "SELECT id FROM acme_accounts WHERE endpoint = $1 AND thumbprint = $2 AND id <> $3",
                &[&self.endpoint, &a.thumbprint, &a.id],
            )
            .await
            .map_err(pg_err("checking an account key"))?;
        if let Some(other) = other {
            return Ok(AccountUpdate::KeyInUse(col(&other, 0, "id")?));
        }
        let body = encode(a, "an account")?;
        let changed = client
            .execute(
                "UPDATE acme_accounts SET thumbprint = $3, body = $4, version = version + 1 \
                 WHERE endpoint = $1 AND id = $2 AND version = $5",
                &[&self.endpoint, &a.id, &a.thumbprint, &body, &version(a.version)],
            )
            .await;
        match changed {
            Ok(n) => Ok(if n == 1 { AccountUpdate::Done } else { AccountUpdate::Conflict }),
            // Another account took the key between the check and the update.
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) => {
                match self.by_thumbprint(&client, &a.thumbprint).await? {
                    Some(other) => Ok(AccountUpdate::KeyInUse(other.id)),
                    None => Ok(AccountUpdate::Conflict),
                }
            }
            Err(e) => Err(pg_err("updating an ACME account")(e)),
        }
    }

    async fn create_order(
        &self,
        o: &Order,
        new_authorizations: &[Authorization],
    ) -> Result<NewOrderOutcome, StoreError> {
        let mut client = self.client().await?;
        let what = "creating an ACME order";
        let tx = client.transaction().await.map_err(pg_err(what))?;
        if let Some(r) = &o.replaces {
            let inserted = tx
                .execute(
                    "INSERT INTO acme_replacements (endpoint, cert_id, order_id) VALUES ($1, $2, $3) \
                     ON CONFLICT (endpoint, cert_id) DO NOTHING",
                    &[&self.endpoint, &r.cert_id, &o.id],
                )
                .await
                .map_err(pg_err("recording a replacement"))?;
            if inserted == 0 {
                // Locked until commit: a concurrent replacement of the same certificate waits.
                let row = tx
                    .query_one(
                        "SELECT r.order_id, o.status FROM acme_replacements r \
                         LEFT JOIN acme_orders o ON o.id = r.order_id AND o.endpoint = r.endpoint \
                         WHERE r.endpoint = $1 AND r.cert_id = $2 FOR UPDATE OF r",
                        &[&self.endpoint, &r.cert_id],
                    )
                    .await
                    .map_err(pg_err("reading a replacement"))?;
                let (order_id, status): (String, Option<String>) = (col(&row, 0, "order_id")?, col(&row, 1, "status")?);
                if status.is_some_and(|s| s != "invalid") {
                    return Ok(NewOrderOutcome::AlreadyReplaced(order_id));
                }
                tx.execute(
                    "UPDATE acme_replacements SET order_id = $3 WHERE endpoint = $1 AND cert_id = $2",
                    &[&self.endpoint, &r.cert_id, &o.id],
                )
                .await
                .map_err(pg_err("recording a replacement"))?;
            }
        }
        for a in new_authorizations {
            let body = encode(a, "an authorization")?;
            tx.execute(
                "INSERT INTO acme_authorizations (endpoint, id, account_id, identifier_type, identifier_value, \
                 wildcard, status, expires, body, version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                &[
                    &self.endpoint,
                    &a.id,
                    &a.account_id,
                    &a.identifier.kind.as_str(),
                    &a.identifier.value,
                    &a.wildcard,
                    &name(&a.status),
                    &secs(a.expires),
                    &body,
                    &version(a.version),
                ],
            )
            .await
            .map_err(pg_err("creating an ACME authorization"))?;
        }
        let body = encode(o, "an order")?;
        tx.execute(
            "INSERT INTO acme_orders (endpoint, id, account_id, status, expires, has_certificate, created_at, body, \
             version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                &self.endpoint,
                &o.id,
                &o.account_id,
                &name(&o.status),
                &secs(o.expires),
                &o.certificate.is_some(),
                &secs(o.created_at),
                &body,
                &version(o.version),
            ],
        )
        .await
        .map_err(pg_err(what))?;
        tx.commit().await.map_err(pg_err(what))?;
        Ok(NewOrderOutcome::Created)
    }

    async fn order(&self, id: &str) -> Result<Option<Order>, StoreError> {
        let sql = "SELECT body, version FROM acme_orders WHERE endpoint = $1 AND id = $2";
        one(&self.client().await?, sql, &[&self.endpoint, &id], "reading an ACME order").await
    }

    async fn update_order(&self, o: &Order) -> Result<bool, StoreError> {
        let body = encode(o, "an order")?;
        let changed = self
            .store
            .execute(
                "updating an ACME order",
                "UPDATE acme_orders SET status = $3, expires = $4, has_certificate = $5, body = $6, \
                 version = version + 1 WHERE endpoint = $1 AND id = $2 AND version = $7",
                &[
                    &self.endpoint,
                    &o.id,
                    &name(&o.status),
                    &secs(o.expires),
                    &o.certificate.is_some(),
                    &body,
                    &version(o.version),
                ],
            )
            .await?;
        Ok(changed == 1)
    }

    async fn account_orders(&self, account_id: &str, limit: usize) -> Result<Vec<String>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .client()
            .await?
            .query(
                "SELECT id FROM acme_orders WHERE endpoint = $1 AND account_id = $2 \
                 ORDER BY created_at DESC, seq DESC LIMIT $3",
                &[&self.endpoint, &account_id, &limit],
            )
            .await
            .map_err(pg_err("listing an account's orders"))?;
        rows.iter().map(|r| col(r, 0, "id")).collect()
    }

    async fn authorization(&self, id: &str) -> Result<Option<Authorization>, StoreError> {
        let sql = "SELECT body, version FROM acme_authorizations WHERE endpoint = $1 AND id = $2";
        one(&self.client().await?, sql, &[&self.endpoint, &id], "reading an ACME authorization").await
    }

    async fn update_authorization(&self, a: &Authorization) -> Result<bool, StoreError> {
        let body = encode(a, "an authorization")?;
        let changed = self
            .store
            .execute(
                "updating an ACME authorization",
                "UPDATE acme_authorizations SET status = $3, expires = $4, body = $5, version = version + 1 \
                 WHERE endpoint = $1 AND id = $2 AND version = $6",
                &[&self.endpoint, &a.id, &name(&a.status), &secs(a.expires), &body, &version(a.version)],
            )
            .await?;
        Ok(changed == 1)
    }

    async fn valid_authorization(&self, q: &AuthorizationQuery) -> Result<Option<Authorization>, StoreError> {
        one(
            &self.client().await?,
            "SELECT body, version FROM acme_authorizations WHERE endpoint = $1 AND account_id = $2 \
             AND identifier_type = $3 AND identifier_value = $4 AND wildcard = $5 AND status = 'valid' \
             AND expires > $6 ORDER BY expires DESC LIMIT 1",
            &[
                &self.endpoint,
                &q.account_id,
                &q.identifier.kind.as_str(),
                &q.identifier.value,
                &q.wildcard,
                &secs(q.now),
            ],
            "looking up a valid authorization",
        )
        .await
    }

    async fn purge_expired(&self, now: SystemTime, retention: Duration) -> Result<u64, StoreError> {
        let cutoff = secs(now).saturating_sub(i64::try_from(retention.as_secs()).unwrap_or(i64::MAX));
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err("purging ACME state"))?;
        let e = &self.endpoint;
        let mut n = tx
            .execute("DELETE FROM acme_nonces WHERE endpoint = $1 AND expires <= $2", &[e, &secs(now)])
            .await
            .map_err(pg_err("purging nonces"))?;
        n += tx
            .execute(
                "DELETE FROM acme_orders WHERE endpoint = $1 AND expires < $2 AND NOT has_certificate",
                &[e, &cutoff],
            )
            .await
            .map_err(pg_err("purging orders"))?;
        n += tx
            .execute(
                "DELETE FROM acme_authorizations a WHERE a.endpoint = $1 AND a.expires < $2 AND NOT EXISTS \
                 (SELECT 1 FROM acme_orders o WHERE o.endpoint = a.endpoint \
                 AND (o.body::jsonb -> 'authorizations') @> to_jsonb(a.id))",
                &[e, &cutoff],
            )
            .await
            .map_err(pg_err("purging authorizations"))?;
        tx.execute(
            "DELETE FROM acme_replacements r WHERE r.endpoint = $1 AND NOT EXISTS \
             (SELECT 1 FROM acme_orders o WHERE o.id = r.order_id)",
            &[e],
        )
        .await
        .map_err(pg_err("purging replacements"))?;
        tx.commit().await.map_err(pg_err("purging ACME state"))?;
        Ok(n)
    }
}
