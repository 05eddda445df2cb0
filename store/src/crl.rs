//! The last CRL each issuer published ([`PublishedCrl`]): kept so the publication
//! endpoint can go on serving it, until its nextUpdate, while a new CRL cannot be made
//! (a full disk refuses the CRL number's write) and across restarts.

use pkiplane_core::inventory::unix_seconds::from_secs;
use pkiplane_core::inventory::{PublishedCrl, StoreError};
use pkiplane_core::model::ObjectRef;
use rusqlite::{Connection, OptionalExtension, params};

use crate::error::{corrupt, sql_err};
use crate::rows::{parse_object_ref, secs};

pub(crate) const V_PUBLISHED_CRLS: &str = "
CREATE TABLE published_crls (
    issuer      TEXT    PRIMARY KEY,
    this_update INTEGER NOT NULL,
    next_update INTEGER NOT NULL,
    key_id      BLOB    NOT NULL,
    serials     TEXT    NOT NULL,
    der         BLOB    NOT NULL
);
";

pub(crate) fn save(conn: &Connection, crl: &PublishedCrl) -> Result<(), StoreError> {
    let serials = serde_json::to_string(&crl.serials)
        .map_err(|e| StoreError::invalid("encoding the CRL's serials").because(e))?;
    conn.prepare_cached(
        "INSERT INTO published_crls (issuer, this_update, next_update, key_id, serials, der) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
         ON CONFLICT (issuer) DO UPDATE SET this_update = excluded.this_update, \
         next_update = excluded.next_update, key_id = excluded.key_id, serials = excluded.serials, \
         der = excluded.der WHERE excluded.this_update >= published_crls.this_update",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            crl.issuer.to_string(),
            secs(crl.this_update),
            secs(crl.next_update),
            crl.key_id,
            serials,
            crl.der
        ])
    })
    .map_err(sql_err("keeping the published CRL"))?;
    Ok(())
}

pub(crate) fn load(conn: &Connection, issuer: &ObjectRef) -> Result<Option<PublishedCrl>, StoreError> {
    type Row = (String, i64, i64, Vec<u8>, String, Vec<u8>);
    let row: Option<Row> = conn
        .prepare_cached(
            "SELECT issuer, this_update, next_update, key_id, serials, der FROM published_crls WHERE issuer = ?1",
        )
        .and_then(|mut stmt| {
            stmt.query_row(params![issuer.to_string()], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
            })
            .optional()
        })
        .map_err(sql_err("reading the published CRL"))?;
    row.map(|(issuer, this_update, next_update, key_id, serials, der)| {
        Ok(PublishedCrl {
            issuer: parse_object_ref(&issuer, "issuer")?,
            this_update: from_secs(this_update),
            next_update: from_secs(next_update),
            key_id,
            serials: serde_json::from_str(&serials).map_err(|e| corrupt("published_crls.serials").because(e))?,
            der,
        })
    })
    .transpose()
}
