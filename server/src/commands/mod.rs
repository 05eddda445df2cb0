//! One module per CLI command.

pub mod crds;
pub mod inventory;
pub mod issue;
pub mod policy_check;
pub mod policy_lint;
pub mod revoke;
pub mod scep;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use pkiplane_store::SqliteStore;

/// The inventory database inside a data directory.
pub fn db_path(data_dir: &Path) -> PathBuf {
    data_dir.join("inventory.db")
}

/// Opens the data directory's store for writing (creating it) and marks issuances left
/// pending by an earlier crash as abandoned.
pub async fn open_store_rw(data_dir: &Path) -> Result<Arc<SqliteStore>> {
    use pkiplane_core::inventory::Inventory;
    std::fs::create_dir_all(data_dir).with_context(|| format!("creating data directory {}", data_dir.display()))?;
    let store = Arc::new(
        SqliteStore::open(&db_path(data_dir)).with_context(|| format!("opening {}", db_path(data_dir).display()))?,
    );
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
