//! `pkiplane store rekey`, and the sealing of stored CA keys the CA service applies at
//! start-up (`--kek-file`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use pkiplane_core::inventory::CaMaterialStore;
use pkiplane_store::sealing::{KeyEncryptionKeys, SealableRows, SealedMaterials, sweep};

#[derive(clap::Subcommand, Debug)]
pub enum StoreCommand {
    /// Seal every stored CA private key with the first key of --kek-file, rewrapping keys
    /// sealed under older ones (after which the old KEKs may be dropped from the file).
    /// Safe while the CA runs.
    Rekey(RekeyArgs),
    /// After restoring a PostgreSQL store with pg_restore: raise every CRL number counter
    /// to the current time in seconds, above any CRL published after the dump was made
    /// (`pkiplane restore` does this itself for SQLite).
    MarkRestored(MarkRestoredArgs),
}

#[derive(clap::Args, Debug)]
pub struct MarkRestoredArgs {
    /// The restored PostgreSQL store.
    #[arg(long, env = "PKIPLANE_STORE", hide_env_values = true)]
    pub store: String,
}

#[derive(clap::Args, Debug)]
pub struct RekeyArgs {
    /// The CA's data directory (its SQLite store), when --store is not given.
    #[arg(long, env = "PKIPLANE_DATA_DIR", default_value = "pkiplane-data")]
    pub data_dir: PathBuf,
    /// The CA's PostgreSQL store.
    #[arg(long, env = "PKIPLANE_STORE", hide_env_values = true)]
    pub store: Option<String>,
    /// The key-encryption keys (see `pkiplane ca --kek-file`).
    #[arg(long, env = "PKIPLANE_KEK_FILE")]
    pub kek_file: PathBuf,
}

pub async fn run(command: &StoreCommand) -> Result<()> {
    let args = match command {
        StoreCommand::Rekey(args) => args,
        StoreCommand::MarkRestored(args) => {
            let store = pkiplane_store::PostgresStore::connect(&args.store).await.context("opening --store")?;
            let floor = pkiplane_store::backup::crl_number_floor(std::time::SystemTime::now());
            let counters = store.raise_crl_numbers(floor).await?;
            println!("{counters} CRL number counters continue from {floor}");
            return Ok(());
        }
    };
    let keys = load_keys(&args.kek_file)?;
    let rows: Arc<dyn SealableRows> = match &args.store {
        Some(url) => Arc::new(pkiplane_store::PostgresStore::connect(url).await.context("opening --store")?),
        None => {
            let db = super::db_path(&args.data_dir);
            if !db.exists() {
                anyhow::bail!("no inventory at {} (is --data-dir right?)", db.display());
            }
            Arc::new(pkiplane_store::SqliteStore::open(&db).with_context(|| format!("opening {}", db.display()))?)
        }
    };
    let report = sweep(rows.as_ref(), Some(&keys)).await?;
    println!(
        "sealed {} plaintext keys, rewrapped {} keys to `{}`, {} already current",
        report.sealed,
        report.rewrapped,
        keys.active_id(),
        report.current
    );
    Ok(())
}

/// Reads a KEK file (never logging its content).
pub fn load_keys(path: &Path) -> Result<Arc<KeyEncryptionKeys>> {
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(path).with_context(|| format!("reading the KEK file {}", path.display()))?,
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)?.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(path = %path.display(), mode = format!("{:o}", mode & 0o777), "the KEK file is readable by others");
        }
    }
    Ok(Arc::new(KeyEncryptionKeys::parse(&text).with_context(|| format!("the KEK file {}", path.display()))?))
}

/// Applies `--kek-file` at start-up: seals and rewraps the stored keys of the data
/// directory's SQLite store and of the PostgreSQL store `other` when there is one (or,
/// without a KEK file, checks that none is sealed), makes the SQLite store seal the SCEP
/// RA keys it keeps, and returns the CA material store the CA must use and the keys.
pub async fn seal_materials(
    materials: Arc<dyn CaMaterialStore>,
    sqlite: &pkiplane_store::SqliteStore,
    other: Option<&dyn SealableRows>,
    kek_file: Option<&Path>,
) -> Result<(Arc<dyn CaMaterialStore>, Option<Arc<KeyEncryptionKeys>>)> {
    let keys = kek_file.map(load_keys).transpose()?;
    let stores: Vec<&dyn SealableRows> = std::iter::once(sqlite as &dyn SealableRows).chain(other).collect();
    for rows in stores {
        let report = sweep(rows, keys.as_deref()).await?;
        if let Some(keys) = &keys {
            tracing::info!(
                kek = keys.active_id(),
                sealed = report.sealed,
                rewrapped = report.rewrapped,
                current = report.current,
                "stored CA keys are sealed at rest"
            );
        }
    }
    let Some(keys) = keys else { return Ok((materials, None)) };
    sqlite.seal_scep_ra_keys_with(keys.clone());
    Ok((Arc::new(SealedMaterials::new(materials, keys.clone())), Some(keys)))
}
