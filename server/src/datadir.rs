//! Who may write a data directory, and how its files are protected.
//!
//! A data directory has one owner at a time: the process holding an exclusive lock on
//! its `owner.lock` file. `serve` and `ca` take it for their whole life; the write
//! commands (`issue`, `revoke`, `scep challenge`) take it for their few seconds, and
//! refuse, naming the owner, when a server holds it. Only the owner runs start-up
//! recovery (marking interrupted issuances abandoned): another process cannot tell an
//! issuance that crashed from one a running server has in flight.
//!
//! The directory is private (0700) and so is every file in it that holds keys or
//! records (0600): the database keeps the CA private keys.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// The lock file inside a data directory.
pub const LOCK_FILE: &str = "owner.lock";

/// Mode of the data directory and of every private file in it.
const DIR_MODE: u32 = 0o700;
const FILE_MODE: u32 = 0o600;

/// Ownership of a data directory, held until dropped (the lock is released when the
/// file is closed, and by the kernel if the process dies).
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
    _lock: File,
}

impl DataDir {
    /// For `serve` and `ca`: creates the directory when missing, then takes ownership.
    pub fn create_and_own(path: &Path, role: &str) -> Result<Self> {
        if !path.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(DIR_MODE)
                .create(path)
                .map_err(|e| io_error(e, "creating the data directory", path))?;
        }
        Self::own(path, role, "stop it first")
    }

    /// For the write commands: the directory must exist (a mistyped `--data-dir` must
    /// not become a new, empty CA), and no server may own it. `instead` says what to do
    /// while a server runs.
    pub fn own_existing(path: &Path, role: &str, instead: &str) -> Result<Self> {
        if !path.is_dir() {
            bail!(
                "data directory {} does not exist (is --data-dir right? `pkiplane serve` or `pkiplane ca` \
                 creates one)",
                path.display()
            );
        }
        Self::own(path, role, instead)
    }

    fn own(path: &Path, role: &str, instead: &str) -> Result<Self> {
        let path = std::fs::canonicalize(path).with_context(|| format!("resolving {}", path.display()))?;
        make_private_dir(&path)?;
        let lock_path = path.join(LOCK_FILE);
        let mut lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(FILE_MODE)
            .open(&lock_path)
            .map_err(|e| io_error(e, "opening", &lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut owner = String::new();
                let _ = lock.read_to_string(&mut owner);
                let owner = owner.trim();
                let owner = if owner.is_empty() { "another process".to_owned() } else { owner.to_owned() };
                bail!(
                    "data directory {} is in use by {owner}: this command does not write beside the \
                     process that owns it; {instead}",
                    path.display()
                );
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io_error(e, "locking", &lock_path)),
        }
        let since = pkiplane_core::audit::rfc3339(std::time::SystemTime::now());
        let me = format!("`pkiplane {role}` (pid {}, since {since})\n", std::process::id());
        // Best effort: the lock is what counts; the text only names the owner to others.
        let _ = lock.set_len(0).and_then(|()| lock.rewind()).and_then(|()| lock.write_all(me.as_bytes()));
        make_private_file(&lock_path)?;
        Ok(Self { path, _lock: lock })
    }

    /// The directory (absolute).
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Makes an existing directory 0700 (group or others had access: tightened, with a
/// warning saying so).
pub fn make_private_dir(path: &Path) -> Result<()> {
    tighten(path, DIR_MODE).map(drop)
}

/// Makes an existing file 0600 when it is more open than that.
pub fn make_private_file(path: &Path) -> Result<()> {
    tighten(path, FILE_MODE).map(drop)
}

/// Removes group and other access; true if there was any (then also logged).
fn tighten(path: &Path, mode: u32) -> Result<bool> {
    let meta = std::fs::metadata(path).map_err(|e| io_error(e, "reading the permissions of", path))?;
    let current = meta.permissions().mode() & 0o777;
    if current & 0o077 != 0 {
        tracing::warn!(
            path = %path.display(),
            from = format!("{current:o}"),
            to = format!("{mode:o}"),
            "group or others could read a private pkiplane path; permissions tightened"
        );
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| io_error(e, "restricting the permissions of", path))?;
        return Ok(true);
    }
    Ok(false)
}

/// Creates (or truncates) a private file and writes `contents`.
pub fn write_private(path: &Path, contents: &[u8]) -> Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(FILE_MODE)
        .open(path)
        .map_err(|e| io_error(e, "creating", path))?;
    make_private_file(path)?;
    f.write_all(contents).map_err(|e| io_error(e, "writing", path))
}

/// Opens (creating it 0600) a file to append to: the audit log, opened before logging
/// is set up, so a tightening is reported on standard error directly.
pub fn open_private_append(path: &Path) -> Result<File> {
    let f = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(FILE_MODE)
        .open(path)
        .map_err(|e| io_error(e, "opening", path))?;
    if tighten(path, FILE_MODE)? {
        eprintln!("warning: {} was readable by group or others; permissions tightened to 600", path.display());
    }
    Ok(f)
}

/// An I/O error naming what was done, with "disk full" said plainly.
pub fn io_error(e: std::io::Error, doing: &str, path: &Path) -> anyhow::Error {
    if e.kind() == std::io::ErrorKind::StorageFull {
        anyhow::anyhow!("{doing} {}: disk full (no space left on the device)", path.display())
    } else {
        anyhow::anyhow!("{doing} {}: {e}", path.display())
    }
}
