//! CA key material (current, staged next, retired, OCSP responders) and the last
//! published CRL of each issuer, on PostgreSQL.

use std::time::SystemTime;

use pkiplane_core::inventory::unix_seconds::from_secs;
use pkiplane_core::inventory::{
    PublishedCrl, StoreError, StoredCaMaterial, StoredNextCa, StoredOcspResponder, StoredRetiredCa,
};
use pkiplane_core::model::ObjectRef;

use super::error::{col, pg_err};
use super::{Client, ClientTx};
use crate::rows::{parse_object_ref, secs};

pub(crate) async fn load_ca(client: &Client, issuer: &str) -> Result<Option<StoredCaMaterial>, StoreError> {
    let row = client
        .query_opt("SELECT certificate_der, private_key, spec_hash FROM ca_material WHERE issuer = $1", &[&issuer])
        .await
        .map_err(pg_err("loading CA material"))?;
    row.map(|r| {
        Ok(StoredCaMaterial {
            certificate_der: col(&r, 0, "certificate_der")?,
            private_key_pkcs8: col::<Vec<u8>>(&r, 1, "private_key")?.into(),
            spec_hash: col(&r, 2, "spec_hash")?,
        })
    })
    .transpose()
}

pub(crate) async fn save_ca(
    client: &Client,
    issuer: &str,
    m: &StoredCaMaterial,
    now: SystemTime,
) -> Result<(), StoreError> {
    client
        .execute(
            "INSERT INTO ca_material (issuer, certificate_der, private_key, spec_hash, updated_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (issuer) DO UPDATE SET \
             certificate_der = excluded.certificate_der, private_key = excluded.private_key, \
             spec_hash = excluded.spec_hash, updated_at = excluded.updated_at",
            &[&issuer, &m.certificate_der, &m.private_key_pkcs8.as_slice(), &m.spec_hash, &secs(now)],
        )
        .await
        .map_err(pg_err("saving CA material"))?;
    Ok(())
}

pub(crate) async fn load_next(client: &Client, issuer: &str) -> Result<Option<StoredNextCa>, StoreError> {
    let row = client
        .query_opt(
            "SELECT certificate_der, private_key, spec_hash, new_with_old, old_with_new FROM ca_next WHERE issuer = $1",
            &[&issuer],
        )
        .await
        .map_err(pg_err("loading the next CA"))?;
    row.map(|r| {
        Ok(StoredNextCa {
            material: StoredCaMaterial {
                certificate_der: col(&r, 0, "certificate_der")?,
                private_key_pkcs8: col::<Vec<u8>>(&r, 1, "private_key")?.into(),
                spec_hash: col(&r, 2, "spec_hash")?,
            },
            new_with_old_der: col(&r, 3, "new_with_old")?,
            old_with_new_der: col(&r, 4, "old_with_new")?,
        })
    })
    .transpose()
}

pub(crate) async fn save_next(
    client: &Client,
    issuer: &str,
    next: Option<&StoredNextCa>,
    now: SystemTime,
) -> Result<(), StoreError> {
    let result = match next {
        None => client.execute("DELETE FROM ca_next WHERE issuer = $1", &[&issuer]).await,
        Some(n) => {
            client
                .execute(
                    "INSERT INTO ca_next (issuer, certificate_der, private_key, spec_hash, new_with_old, \
                     old_with_new, staged_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                     ON CONFLICT (issuer) DO UPDATE SET certificate_der = excluded.certificate_der, \
                     private_key = excluded.private_key, spec_hash = excluded.spec_hash, \
                     new_with_old = excluded.new_with_old, old_with_new = excluded.old_with_new, \
                     staged_at = excluded.staged_at",
                    &[
                        &issuer,
                        &n.material.certificate_der,
                        &n.material.private_key_pkcs8.as_slice(),
                        &n.material.spec_hash,
                        &n.new_with_old_der,
                        &n.old_with_new_der,
                        &secs(now),
                    ],
                )
                .await
        }
    };
    result.map_err(pg_err("saving the next CA"))?;
    Ok(())
}

pub(crate) async fn load_retired(client: &Client, issuer: &str) -> Result<Vec<StoredRetiredCa>, StoreError> {
    let rows = client
        .query(
            "SELECT key_id, certificate_der, private_key, retired_at FROM ca_retired WHERE issuer = $1 \
             ORDER BY retired_at, key_id",
            &[&issuer],
        )
        .await
        .map_err(pg_err("loading retired CA keys"))?;
    rows.iter()
        .map(|r| {
            Ok(StoredRetiredCa {
                key_id: col(r, 0, "key_id")?,
                certificate_der: col(r, 1, "certificate_der")?,
                private_key_pkcs8: col::<Vec<u8>>(r, 2, "private_key")?.into(),
                retired_at: from_secs(col(r, 3, "retired_at")?),
            })
        })
        .collect()
}

pub(crate) async fn save_retired(client: &Client, issuer: &str, r: &StoredRetiredCa) -> Result<(), StoreError> {
    client
        .execute(
            "INSERT INTO ca_retired (issuer, key_id, certificate_der, private_key, retired_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (issuer, key_id) DO UPDATE SET \
             certificate_der = excluded.certificate_der, private_key = excluded.private_key, \
             retired_at = excluded.retired_at",
            &[&issuer, &r.key_id, &r.certificate_der, &r.private_key_pkcs8.as_slice(), &secs(r.retired_at)],
        )
        .await
        .map_err(pg_err("saving a retired CA key"))?;
    Ok(())
}

/// Forgets a retired key and its OCSP responder together (one transaction).
pub(crate) async fn remove_retired(tx: &ClientTx<'_>, issuer: &str, key_id: &[u8]) -> Result<(), StoreError> {
    let context = "removing a retired CA key";
    tx.execute("DELETE FROM ca_retired WHERE issuer = $1 AND key_id = $2", &[&issuer, &key_id])
        .await
        .map_err(pg_err(context))?;
    tx.execute("DELETE FROM ocsp_responders WHERE issuer = $1 AND ca_key_id = $2", &[&issuer, &key_id])
        .await
        .map_err(pg_err(context))?;
    Ok(())
}

pub(crate) async fn load_responder(
    client: &Client,
    issuer: &str,
    ca_key_id: &[u8],
) -> Result<Option<StoredOcspResponder>, StoreError> {
    let row = client
        .query_opt(
            "SELECT certificate_der, private_key FROM ocsp_responders WHERE issuer = $1 AND ca_key_id = $2",
            &[&issuer, &ca_key_id],
        )
        .await
        .map_err(pg_err("loading an OCSP responder"))?;
    row.map(|r| {
        Ok(StoredOcspResponder {
            ca_key_id: ca_key_id.to_vec(),
            certificate_der: col(&r, 0, "certificate_der")?,
            private_key_pkcs8: col::<Vec<u8>>(&r, 1, "private_key")?.into(),
        })
    })
    .transpose()
}

pub(crate) async fn save_responder(
    client: &Client,
    issuer: &str,
    r: &StoredOcspResponder,
    now: SystemTime,
) -> Result<(), StoreError> {
    client
        .execute(
            "INSERT INTO ocsp_responders (issuer, ca_key_id, certificate_der, private_key, updated_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (issuer, ca_key_id) DO UPDATE SET \
             certificate_der = excluded.certificate_der, private_key = excluded.private_key, \
             updated_at = excluded.updated_at",
            &[&issuer, &r.ca_key_id, &r.certificate_der, &r.private_key_pkcs8.as_slice(), &secs(now)],
        )
        .await
        .map_err(pg_err("saving an OCSP responder"))?;
    Ok(())
}

/// Keeps `crl` unless a newer one (a later thisUpdate, e.g. from another replica) is kept.
pub(crate) async fn save_crl(client: &Client, crl: &PublishedCrl) -> Result<(), StoreError> {
    let serials = serde_json::to_string(&crl.serials)
        .map_err(|e| StoreError::invalid("encoding the CRL's serials").because(e))?;
    client
        .execute(
            "INSERT INTO published_crls (issuer, this_update, next_update, key_id, serials, der) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (issuer) DO UPDATE SET \
             this_update = excluded.this_update, next_update = excluded.next_update, key_id = excluded.key_id, \
             serials = excluded.serials, der = excluded.der \
             WHERE excluded.this_update >= published_crls.this_update",
            &[&crl.issuer.to_string(), &secs(crl.this_update), &secs(crl.next_update), &crl.key_id, &serials, &crl.der],
        )
        .await
        .map_err(pg_err("keeping the published CRL"))?;
    Ok(())
}

pub(crate) async fn load_crl(client: &Client, issuer: &ObjectRef) -> Result<Option<PublishedCrl>, StoreError> {
    let row = client
        .query_opt(
            "SELECT issuer, this_update, next_update, key_id, serials, der FROM published_crls WHERE issuer = $1",
            &[&issuer.to_string()],
        )
        .await
        .map_err(pg_err("reading the published CRL"))?;
    row.map(|r| {
        let serials: String = col(&r, 4, "serials")?;
        Ok(PublishedCrl {
            issuer: parse_object_ref(&col::<String>(&r, 0, "issuer")?, "issuer")?,
            this_update: from_secs(col(&r, 1, "this_update")?),
            next_update: from_secs(col(&r, 2, "next_update")?),
            key_id: col(&r, 3, "key_id")?,
            serials: serde_json::from_str(&serials)
                .map_err(|e| StoreError::corrupt("published_crls.serials").because(e))?,
            der: col(&r, 5, "der")?,
        })
    })
    .transpose()
}
