//! CA private keys sealed at rest.
//!
//! * [`KeyEncryptionKeys`]: the key-encryption keys (from `--kek-file`), see `envelope`.
//! * [`SealedMaterials`]: a [`CaMaterialStore`] that seals every private key it saves and
//!   opens every one it loads; it refuses an unsealed key (written without the KEK, or
//!   planted in the database).
//! * [`sweep`]: run at start-up (and by `pkiplane store rekey`): seals plaintext keys left
//!   from before sealing, rewraps keys sealed under an older KEK with the first one, and
//!   refuses to go on, naming the key id, when a key is sealed under a KEK the file does
//!   not hold (or when keys are sealed and no KEK was given).
//!
//! Covered: current, staged next and retired CA keys and OCSP responder keys, on SQLite
//! and PostgreSQL, and the SCEP RA keys kept in the SQLite store (see `sqlite`).

mod envelope;
mod postgres;
pub(crate) mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use pkiplane_core::inventory::{
    CaMaterialStore, StoreError, StoredCaMaterial, StoredNextCa, StoredOcspResponder, StoredRetiredCa,
};
use pkiplane_core::model::ObjectRef;
use zeroize::Zeroizing;

pub use envelope::{KeyEncryptionKeys, SealError, is_sealed, sealed_with};

/// The tables holding private keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyTable {
    CaMaterial,
    CaNext,
    CaRetired,
    OcspResponders,
    /// The SCEP RA keys (SQLite only: kept with the SCEP protocol state), keyed by endpoint.
    ScepRa,
}

impl KeyTable {
    /// The tables of CA key material (both backends).
    pub const CA: [KeyTable; 4] =
        [KeyTable::CaMaterial, KeyTable::CaNext, KeyTable::CaRetired, KeyTable::OcspResponders];

    pub fn name(self) -> &'static str {
        match self {
            KeyTable::CaMaterial => "ca_material",
            KeyTable::CaNext => "ca_next",
            KeyTable::CaRetired => "ca_retired",
            KeyTable::OcspResponders => "ocsp_responders",
            KeyTable::ScepRa => "scep_ra",
        }
    }

    /// The column naming the row's owner: the issuer, or the endpoint of an RA key.
    pub(crate) fn owner_column(self) -> &'static str {
        if self == KeyTable::ScepRa { "endpoint" } else { "issuer" }
    }

    /// The second key column, for the tables keyed by (issuer, key id).
    pub(crate) fn key_id_column(self) -> Option<&'static str> {
        match self {
            KeyTable::CaMaterial | KeyTable::CaNext | KeyTable::ScepRa => None,
            KeyTable::CaRetired => Some("key_id"),
            KeyTable::OcspResponders => Some("ca_key_id"),
        }
    }
}

/// One stored private key, as the database holds it (sealed or not).
pub struct KeyRow {
    pub table: KeyTable,
    /// The issuer (the endpoint for an RA key).
    pub issuer: String,
    pub key_id: Option<Vec<u8>>,
    pub stored: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for KeyRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRow")
            .field("table", &self.table)
            .field("issuer", &self.issuer)
            .field("sealed", &is_sealed(&self.stored))
            .finish()
    }
}

impl KeyRow {
    /// The associated data that binds a sealed value to this row.
    pub fn context(&self) -> String {
        context(self.table, &self.issuer, self.key_id.as_deref())
    }

    /// What the row is, for messages.
    pub fn describe(&self) -> String {
        match &self.key_id {
            None => format!("{} of {}", self.table.name(), self.issuer),
            Some(id) => format!("{} of {} (key {})", self.table.name(), self.issuer, hex(id)),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn context(table: KeyTable, issuer: &str, key_id: Option<&[u8]>) -> String {
    match key_id {
        None => format!("{}|{issuer}", table.name()),
        Some(id) => format!("{}|{issuer}|{}", table.name(), hex(id)),
    }
}

/// Raw access to the stored private keys, for [`sweep`].
#[async_trait]
pub trait SealableRows: Send + Sync {
    /// Every stored private key.
    async fn private_key_rows(&self) -> Result<Vec<KeyRow>, StoreError>;
    /// Replaces `row`'s stored value with `value` if it still is `row.stored` (another
    /// replica may have swept it meanwhile); true when replaced.
    async fn replace_private_key(&self, row: &KeyRow, value: &[u8]) -> Result<bool, StoreError>;
}

/// What a sweep did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Plaintext keys sealed.
    pub sealed: usize,
    /// Keys rewrapped from an older KEK to the first one.
    pub rewrapped: usize,
    /// Keys already sealed under the first KEK.
    pub current: usize,
}

/// Seals and rewraps every stored private key (see the module docs). Without `keys`, only
/// checks that nothing is sealed (a CA started without `--kek-file` on sealed keys must
/// refuse, not fail later on a key it cannot parse).
pub async fn sweep(rows: &dyn SealableRows, keys: Option<&KeyEncryptionKeys>) -> Result<SweepReport, StoreError> {
    let mut report = SweepReport::default();
    let all = rows.private_key_rows().await?;
    let Some(keys) = keys else {
        if let Some(row) = all.iter().find(|r| is_sealed(&r.stored)) {
            let id = sealed_with(&row.stored).unwrap_or("?");
            return Err(StoreError::unavailable(format!(
                "the stored CA keys are sealed (the {} under key-encryption key `{id}`): start with --kek-file",
                row.describe()
            )));
        }
        return Ok(report);
    };
    // Refuse before changing anything when any key cannot be opened.
    let mut missing = Vec::new();
    for row in all.iter().filter(|r| is_sealed(&r.stored)) {
        match keys.open(&row.stored, &row.context()) {
            Ok(_) => {}
            Err(e) => missing.push(format!("the {}: {e}", row.describe())),
        }
    }
    if !missing.is_empty() {
        return Err(StoreError::unavailable(format!(
            "refusing to start: stored CA keys do not open with --kek-file: {}",
            missing.join("; ")
        )));
    }
    for row in &all {
        let context = row.context();
        let plaintext = if is_sealed(&row.stored) {
            if sealed_with(&row.stored).map_err(seal_err)? == keys.active_id() {
                report.current += 1;
                continue;
            }
            keys.open(&row.stored, &context).map_err(seal_err)?
        } else {
            row.stored.clone()
        };
        let sealed = keys.seal(&plaintext, &context).map_err(seal_err)?;
        if rows.replace_private_key(row, &sealed).await? {
            if is_sealed(&row.stored) {
                report.rewrapped += 1;
            } else {
                report.sealed += 1;
            }
        }
    }
    Ok(report)
}

pub(crate) fn seal_err(e: SealError) -> StoreError {
    StoreError::unavailable(e.to_string())
}

/// A [`CaMaterialStore`] whose private keys are sealed at rest.
pub struct SealedMaterials {
    inner: Arc<dyn CaMaterialStore>,
    keys: Arc<KeyEncryptionKeys>,
}

impl std::fmt::Debug for SealedMaterials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedMaterials").field("keys", &self.keys).finish()
    }
}

impl SealedMaterials {
    pub fn new(inner: Arc<dyn CaMaterialStore>, keys: Arc<KeyEncryptionKeys>) -> Self {
        Self { inner, keys }
    }

    fn seal(
        &self,
        key: &[u8],
        table: KeyTable,
        issuer: &ObjectRef,
        id: Option<&[u8]>,
    ) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        Ok(Zeroizing::new(self.keys.seal(key, &context(table, &issuer.to_string(), id)).map_err(seal_err)?))
    }

    fn open(
        &self,
        stored: &[u8],
        table: KeyTable,
        issuer: &ObjectRef,
        id: Option<&[u8]>,
    ) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        let issuer = issuer.to_string();
        if !is_sealed(stored) {
            return Err(StoreError::corrupt(format!(
                "the {} key of {issuer} is stored unsealed; restart with --kek-file to seal it",
                table.name()
            )));
        }
        self.keys.open(stored, &context(table, &issuer, id)).map_err(|e| match e {
            SealError::MissingKey(_) => StoreError::unavailable(format!("the {} key of {issuer}: {e}", table.name())),
            other => StoreError::corrupt(format!("the {} key of {issuer}: {other}", table.name())),
        })
    }
}

#[async_trait]
impl CaMaterialStore for SealedMaterials {
    async fn load_ca(&self, issuer: &ObjectRef) -> Result<Option<StoredCaMaterial>, StoreError> {
        let Some(mut m) = self.inner.load_ca(issuer).await? else { return Ok(None) };
        m.private_key_pkcs8 = self.open(&m.private_key_pkcs8, KeyTable::CaMaterial, issuer, None)?;
        Ok(Some(m))
    }

    async fn save_ca(&self, issuer: &ObjectRef, material: &StoredCaMaterial) -> Result<(), StoreError> {
        let mut m = material.clone();
        m.private_key_pkcs8 = self.seal(&material.private_key_pkcs8, KeyTable::CaMaterial, issuer, None)?;
        self.inner.save_ca(issuer, &m).await
    }

    async fn load_next_ca(&self, issuer: &ObjectRef) -> Result<Option<StoredNextCa>, StoreError> {
        let Some(mut n) = self.inner.load_next_ca(issuer).await? else { return Ok(None) };
        n.material.private_key_pkcs8 = self.open(&n.material.private_key_pkcs8, KeyTable::CaNext, issuer, None)?;
        Ok(Some(n))
    }

    async fn save_next_ca(&self, issuer: &ObjectRef, next: Option<&StoredNextCa>) -> Result<(), StoreError> {
        let Some(next) = next else { return self.inner.save_next_ca(issuer, None).await };
        let mut n = next.clone();
        n.material.private_key_pkcs8 = self.seal(&next.material.private_key_pkcs8, KeyTable::CaNext, issuer, None)?;
        self.inner.save_next_ca(issuer, Some(&n)).await
    }

    async fn load_retired_cas(&self, issuer: &ObjectRef) -> Result<Vec<StoredRetiredCa>, StoreError> {
        let mut all = self.inner.load_retired_cas(issuer).await?;
        for r in &mut all {
            r.private_key_pkcs8 = self.open(&r.private_key_pkcs8, KeyTable::CaRetired, issuer, Some(&r.key_id))?;
        }
        Ok(all)
    }

    async fn save_retired_ca(&self, issuer: &ObjectRef, retired: &StoredRetiredCa) -> Result<(), StoreError> {
        let mut r = retired.clone();
        r.private_key_pkcs8 =
            self.seal(&retired.private_key_pkcs8, KeyTable::CaRetired, issuer, Some(&retired.key_id))?;
        self.inner.save_retired_ca(issuer, &r).await
    }

    async fn remove_retired_ca(&self, issuer: &ObjectRef, key_id: &[u8]) -> Result<(), StoreError> {
        self.inner.remove_retired_ca(issuer, key_id).await
    }

    async fn load_ocsp_responder(
        &self,
        issuer: &ObjectRef,
        ca_key_id: &[u8],
    ) -> Result<Option<StoredOcspResponder>, StoreError> {
        let Some(mut r) = self.inner.load_ocsp_responder(issuer, ca_key_id).await? else { return Ok(None) };
        r.private_key_pkcs8 = self.open(&r.private_key_pkcs8, KeyTable::OcspResponders, issuer, Some(ca_key_id))?;
        Ok(Some(r))
    }

    async fn save_ocsp_responder(&self, issuer: &ObjectRef, responder: &StoredOcspResponder) -> Result<(), StoreError> {
        let mut r = responder.clone();
        r.private_key_pkcs8 =
            self.seal(&responder.private_key_pkcs8, KeyTable::OcspResponders, issuer, Some(&responder.ca_key_id))?;
        self.inner.save_ocsp_responder(issuer, &r).await
    }
}
