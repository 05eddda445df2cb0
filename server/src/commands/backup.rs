//! `pkiplane backup` and `pkiplane restore` of a data directory's SQLite store (for
//! PostgreSQL see docs/operations/backup.md: pg_dump / pg_restore).

use std::path::PathBuf;
use std::time::SystemTime;

use anyhow::{Context, Result, bail};

#[derive(clap::Args, Debug)]
pub struct BackupArgs {
    /// The data directory to back up (a server may be running on it).
    #[arg(long, env = "PKIPLANE_DATA_DIR", default_value = "pkiplane-data")]
    pub data_dir: PathBuf,
    /// The backup file to write (must not exist). It holds the CA keys: keep it private.
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(clap::Args, Debug)]
pub struct RestoreArgs {
    /// A file written by `pkiplane backup`.
    #[arg(long)]
    pub from: PathBuf,
    /// The data directory to restore into (created if missing; no server may run on it).
    #[arg(long, env = "PKIPLANE_DATA_DIR", default_value = "pkiplane-data")]
    pub data_dir: PathBuf,
    /// Replace the store the data directory holds (it is kept beside, renamed
    /// `inventory.db.replaced-<unix time>`).
    #[arg(long)]
    pub force: bool,
}

pub fn backup(a: &BackupArgs) -> Result<()> {
    let db = super::db_path(&a.data_dir);
    let summary = pkiplane_store::backup::backup(&db, &a.out)
        .with_context(|| format!("backing up {} to {}", db.display(), a.out.display()))?;
    println!(
        "backed up {} ({} certificates, schema {}, {} bytes) to {}",
        db.display(),
        summary.certificates,
        summary.schema_version,
        summary.bytes,
        a.out.display()
    );
    Ok(())
}

pub async fn restore(a: &RestoreArgs) -> Result<()> {
    // Owning the directory: refused, naming the owner, while a server runs on it.
    let _owner = crate::datadir::DataDir::create_and_own(&a.data_dir, "restore")?;
    let db = super::db_path(&a.data_dir);
    if db.exists() {
        if !a.force {
            bail!(
                "{} holds a store already; restoring replaces it: pass --force (it is kept beside, renamed)",
                db.display()
            );
        }
        let now = SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let aside = db.with_extension(format!("db.replaced-{now}"));
        std::fs::rename(&db, &aside).with_context(|| format!("moving {} aside", db.display()))?;
        for ext in ["db-wal", "db-shm"] {
            let file = db.with_extension(ext);
            if file.exists() {
                std::fs::rename(&file, aside.with_extension(format!("{ext}.replaced-{now}")))?;
            }
        }
        eprintln!("the replaced store is kept as {}", aside.display());
    }
    let now = SystemTime::now();
    let summary = pkiplane_store::backup::restore(&a.from, &db, now)
        .await
        .with_context(|| format!("restoring {} into {}", a.from.display(), db.display()))?;
    crate::datadir::make_private_file(&db)?;
    println!(
        "restored {} certificates (schema {}) into {}; CRL numbers continue from {}",
        summary.certificates,
        summary.schema_version,
        db.display(),
        pkiplane_store::backup::crl_number_floor(now)
    );
    Ok(())
}
