//! Where the CA's configuration comes from: a current [`Manifests`] snapshot plus a
//! change notification. The file source (re-read on SIGHUP or when a file's mtime
//! changes) is what `pkiplane ca --manifests` uses; a Kubernetes watch can implement the
//! same trait later.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use anyhow::Result;
use pkiplane_api::Manifests;
use tokio::sync::watch;

/// A source of manifests that may change while the CA runs.
pub trait ConfigSource: Send + Sync {
    /// The manifests as they are now.
    fn current(&self) -> Arc<Manifests>;
    /// Ticks (the value is a generation counter) whenever `current` changed.
    fn changes(&self) -> watch::Receiver<u64>;
}

/// How often the files are checked for changes.
const POLL_EVERY: Duration = Duration::from_secs(2);

/// Manifests read from a file or directory.
pub struct FileSource {
    path: PathBuf,
    current: RwLock<Arc<Manifests>>,
    generation: watch::Sender<u64>,
}

/// The newest mtime of the file, or of every file in the directory.
fn newest_mtime(path: &Path) -> Option<SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_dir() {
        return meta.modified().ok();
    }
    let mut newest = meta.modified().ok()?;
    for entry in std::fs::read_dir(path).ok()?.flatten() {
        if let Some(t) = newest_mtime(&entry.path()) {
            newest = newest.max(t);
        }
    }
    Some(newest)
}

impl FileSource {
    /// Loads the manifests once (an error here is fatal) and watches them.
    pub fn start(path: &Path) -> Result<Arc<Self>> {
        let manifests = Manifests::load(path)?;
        for w in &manifests.warnings {
            tracing::warn!("{w}");
        }
        let (generation, _) = watch::channel(0);
        let me = Arc::new(Self { path: path.to_owned(), current: RwLock::new(Arc::new(manifests)), generation });
        let weak = Arc::downgrade(&me);
        let mut seen = newest_mtime(path);
        tokio::spawn(async move {
            let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
            let mut tick = tokio::time::interval(POLL_EVERY);
            loop {
                let forced = tokio::select! {
                    _ = tick.tick() => false,
                    Some(()) = async { match hup.as_mut() { Some(h) => h.recv().await, None => None } } => true,
                };
                let Some(me) = weak.upgrade() else { return };
                let now = newest_mtime(&me.path);
                if forced || now != seen {
                    seen = now;
                    me.reload();
                }
            }
        });
        Ok(me)
    }

    fn reload(&self) {
        match Manifests::load(&self.path) {
            Ok(m) => {
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(m);
                self.generation.send_modify(|g| *g += 1);
                tracing::info!(path = %self.path.display(), "manifests reloaded");
            }
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "manifests changed but do not load; keeping the previous")
            }
        }
    }
}

impl ConfigSource for FileSource {
    fn current(&self) -> Arc<Manifests> {
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn changes(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }
}
