//! One module per CLI command.

pub mod approvals;
pub mod backup;
pub mod crds;
pub mod inventory;
pub mod issue;
pub mod legacy_acme;
pub mod policy_check;
pub mod policy_lint;
pub mod remote;
pub mod revoke;
pub mod scep;
pub mod store;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use pkiplane_store::SqliteStore;

use crate::datadir::DataDir;

/// The inventory database inside a data directory.
pub fn db_path(data_dir: &Path) -> PathBuf {
    data_dir.join("inventory.db")
}

/// Opens the store of a data directory this process owns, and marks issuances left
/// pending by an earlier crash as abandoned (safe only for the owner: nothing else can
/// have an issuance in flight). `create`: a missing database is created (an empty
/// CA); otherwise its absence is an error.
pub async fn open_owned_store(dir: &DataDir, create: bool) -> Result<Arc<SqliteStore>> {
    use pkiplane_core::inventory::Inventory;
    let db = db_path(dir.path());
    if !create && !db.exists() {
        anyhow::bail!(
            "no inventory at {} (has the CA or `pkiplane serve` run with this data directory?)",
            db.display()
        );
    }
    let store = Arc::new(SqliteStore::open(&db).with_context(|| format!("opening {}", db.display()))?);
    for file in [db.clone(), db.with_extension("db-wal"), db.with_extension("db-shm")] {
        if file.exists() {
            crate::datadir::make_private_file(&file)?;
        }
    }
    let abandoned = store.recover_pending(std::time::SystemTime::now()).await?;
    if abandoned > 0 {
        tracing::warn!(
            count = abandoned,
            "issuances interrupted before signing (crash or kill) were marked abandoned; no certificate left the CA for them"
        );
    }
    Ok(store)
}

/// Opens the data directory's store read-only (it must exist).
pub fn open_store_ro(data_dir: &Path) -> Result<Arc<SqliteStore>> {
    let path = db_path(data_dir);
    if !path.exists() {
        anyhow::bail!("no inventory at {} (is --data-dir right?)", path.display());
    }
    Ok(Arc::new(SqliteStore::open_read_only(&path).with_context(|| format!("opening {}", path.display()))?))
}

/// Reads a file, or standard input for `-`, with a size bound.
pub fn read_input(path: &Path) -> Result<Vec<u8>> {
    use std::io::Read;
    const LIMIT: u64 = 1 << 20;
    let mut buf = Vec::new();
    if path == Path::new("-") {
        std::io::stdin().take(LIMIT + 1).read_to_end(&mut buf)?;
    } else {
        std::fs::File::open(path)
            .with_context(|| format!("reading {}", path.display()))?
            .take(LIMIT + 1)
            .read_to_end(&mut buf)?;
    }
    if buf.len() as u64 > LIMIT {
        anyhow::bail!("{} is larger than 1 MiB", path.display());
    }
    Ok(buf)
}
