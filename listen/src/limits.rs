//! The figures every listener runs under, and the process's descriptor limit.

use std::time::Duration;

/// Timeouts and caps of one listener. The defaults suit every pkiplane listener; the
/// binary exposes them as `--listener-*` flags (`PKIPLANE_LISTENER_*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// A request head must be complete this long after its first byte (silence before it
    /// is the idle timeout's).
    pub header_read_timeout: Duration,
    /// A request body must be read this long after its head.
    pub body_read_timeout: Duration,
    /// A connection with no request in progress that sends nothing this long is closed.
    pub idle_timeout: Duration,
    /// Bound on a TLS handshake (and any other connection set-up).
    pub handshake_timeout: Duration,
    /// Connections open at once on this listener.
    pub max_connections: usize,
    /// Connections open at once from one client address (0: no separate cap). Behind a
    /// proxy that hides client addresses, raise it to `max_connections`.
    pub max_connections_per_address: usize,
    /// Bound on a request head (request line and headers), in bytes; larger heads get
    /// 431. At least 8 KiB.
    pub max_header_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(5),
            handshake_timeout: Duration::from_secs(10),
            max_connections: 1024,
            max_connections_per_address: 128,
            max_header_bytes: 64 * 1024,
        }
    }
}

/// Descriptors kept aside for everything that is not a client connection (the store,
/// files, outgoing connections).
pub const RESERVED_DESCRIPTORS: u64 = 256;

impl Limits {
    /// These limits with `max_connections` lowered, if needed, so that `listeners`
    /// listeners at their cap fit in `descriptors` open files with
    /// [`RESERVED_DESCRIPTORS`] to spare: a full listener then refuses connections
    /// instead of starving the others of descriptors.
    pub fn within_descriptors(mut self, listeners: usize, descriptors: u64) -> Self {
        let share = descriptors.saturating_sub(RESERVED_DESCRIPTORS) / listeners.max(1) as u64;
        let share = usize::try_from(share).unwrap_or(usize::MAX).max(16);
        if share < self.max_connections {
            tracing::warn!(
                descriptors,
                listeners,
                configured = self.max_connections,
                lowered_to = share,
                "the open-file limit is too low for the configured connection cap; lowering it"
            );
            self.max_connections = share;
        }
        self
    }
}

/// Raises the soft RLIMIT_NOFILE to the hard limit and returns the limit now in force
/// (the process serves many sockets; distributions often default the soft limit to 1024).
pub fn raise_descriptor_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => {
            tracing::debug!(open_files = n, "open-file limit");
            n
        }
        Err(e) => {
            let current = rlimit::getrlimit(rlimit::Resource::NOFILE).map(|(soft, _)| soft).unwrap_or(1024);
            tracing::warn!(error = %e, open_files = current, "could not raise the open-file limit");
            current
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_fit_the_descriptor_limit() {
        let l = Limits::default();
        assert_eq!(l.clone().within_descriptors(5, 1_048_576).max_connections, 1024);
        assert_eq!(l.clone().within_descriptors(5, 1024).max_connections, (1024 - 256) / 5);
        assert_eq!(l.within_descriptors(100, 300).max_connections, 16, "never below a usable floor");
        assert!(raise_descriptor_limit() >= 1024);
    }
}
