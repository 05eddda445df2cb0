//! `--listener-*`: the timeouts and connection caps every listener of the serving
//! commands runs under (see the pkiplane-listen crate for what each one does).

use std::time::Duration;

use pkiplane_core::duration::parse_duration;
use pkiplane_listen::Limits;

#[derive(clap::Args, Debug, Clone)]
pub struct ListenerArgs {
    /// A request head (request line and headers) must be complete within this long of its
    /// first byte, and a TLS handshake within this long of the connection; a slower client
    /// is disconnected.
    #[arg(long, env = "PKIPLANE_LISTENER_HEADER_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub listener_header_timeout: Duration,
    /// A request body must be received within this long of its head.
    #[arg(long, env = "PKIPLANE_LISTENER_BODY_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub listener_body_timeout: Duration,
    /// A connection with no request in progress that sends nothing for this long is closed
    /// (idle keep-alive, or a socket opened and left).
    #[arg(long, env = "PKIPLANE_LISTENER_IDLE_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub listener_idle_timeout: Duration,
    /// Connections open at once per listener; when full, the longest idle connection of
    /// the address holding the most is closed to make room (lowered at start if the
    /// open-file limit cannot hold every listener at its cap).
    #[arg(long, env = "PKIPLANE_LISTENER_MAX_CONNECTIONS", default_value_t = 1024)]
    pub listener_max_connections: usize,
    /// Connections open at once from one client address per listener (0: no separate
    /// cap). Behind a proxy that hides client addresses, raise it to the listener cap.
    #[arg(long, env = "PKIPLANE_LISTENER_MAX_CONNECTIONS_PER_ADDRESS", default_value_t = 128)]
    pub listener_max_connections_per_address: usize,
}

impl ListenerArgs {
    /// The limits for a process with `listeners` listeners, after raising the open-file
    /// limit to its hard limit.
    pub fn limits(&self, listeners: usize) -> Limits {
        let descriptors = pkiplane_listen::raise_descriptor_limit();
        Limits {
            header_read_timeout: self.listener_header_timeout,
            handshake_timeout: self.listener_header_timeout,
            body_read_timeout: self.listener_body_timeout,
            idle_timeout: self.listener_idle_timeout,
            max_connections: self.listener_max_connections,
            max_connections_per_address: self.listener_max_connections_per_address,
            ..Limits::default()
        }
        .within_descriptors(listeners, descriptors)
    }
}
