//! Bounds on what a client connection may hold: connections per client and in all, how
//! long headers and bodies may take, and how large headers may be; and how long a shutdown
//! keeps serving and draining.

use clap::Args;
use std::time::Duration;

/// Bounds on client connections, from flags or environment variables.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct ServerLimits {
    /// Longest a connection may take to send a request's headers, in ms, counted from when
    /// the gateway starts waiting for them: at once on a new connection, and after each
    /// answer on a kept-alive one (so it is also the idle keep-alive timeout).
    #[arg(long, env = "HTTP_HEADER_TIMEOUT_MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u32).range(100..=600_000))]
    pub header_timeout_ms: u32,

    /// Time a request body may take before it must keep up `HTTP_BODY_MIN_RATE`, in ms.
    #[arg(long, env = "HTTP_BODY_TIMEOUT_MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u32).range(100..=600_000))]
    pub body_timeout_ms: u32,

    /// Slowest accepted request body after `HTTP_BODY_TIMEOUT_MS`, in bytes per second
    /// (0: the whole body must arrive within the timeout).
    #[arg(long, env = "HTTP_BODY_MIN_RATE", default_value_t = 16_384)]
    pub body_min_rate: u32,

    /// Open client connections in all; beyond them, a new connection is answered 503 and
    /// closed.
    #[arg(long, env = "HTTP_MAX_CONNECTIONS", default_value_t = 4_096,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections: u32,

    /// Open connections per client address (an IPv6 client counts by its /64); beyond
    /// them, a new connection is answered 429 and closed.
    #[arg(long, env = "HTTP_MAX_CONNECTIONS_PER_CLIENT", default_value_t = 256,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections_per_client: u32,

    /// Largest request head (request line and headers), in bytes; beyond it: 431.
    #[arg(long, env = "HTTP_MAX_HEADER_BYTES", default_value_t = 16_384,
          value_parser = clap::value_parser!(u32).range(1_024..=1_048_576))]
    pub max_header_bytes: u32,

    /// After SIGTERM (or Ctrl-C), how long `/ready` answers 503 while the gateway still
    /// accepts and serves, in ms: the time load balancers need to notice and stop sending.
    #[arg(long, env = "SHUTDOWN_GRACE_MS", default_value_t = 5_000,
          value_parser = clap::value_parser!(u32).range(0..=600_000))]
    pub shutdown_grace_ms: u32,

    /// After the grace, how long requests in flight may take to finish before their
    /// connections are cut off, in ms.
    #[arg(long, env = "SHUTDOWN_DRAIN_MS", default_value_t = 30_000,
          value_parser = clap::value_parser!(u32).range(0..=600_000))]
    pub shutdown_drain_ms: u32,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            header_timeout_ms: 10_000,
            body_timeout_ms: 10_000,
            body_min_rate: 16_384,
            max_connections: 4_096,
            max_connections_per_client: 256,
            max_header_bytes: 16_384,
            shutdown_grace_ms: 5_000,
            shutdown_drain_ms: 30_000,
        }
    }
}

impl ServerLimits {
    /// The header-read (and idle keep-alive) timeout.
    pub fn header_timeout(&self) -> Duration {
        Duration::from_millis(u64::from(self.header_timeout_ms))
    }

    /// How long `/ready` answers 503 after shutdown is requested, the listener still open.
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_millis(u64::from(self.shutdown_grace_ms))
    }

    /// How long requests in flight may take to finish after the grace.
    pub fn shutdown_drain(&self) -> Duration {
        Duration::from_millis(u64::from(self.shutdown_drain_ms))
    }

    /// The body timeout before the minimum rate applies.
    pub fn body_timeout(&self) -> Duration {
        Duration::from_millis(u64::from(self.body_timeout_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        limits: ServerLimits,
    }

    #[test]
    fn default_matches_the_command_line_defaults() {
        if std::env::vars().all(|(k, _)| !k.starts_with("HTTP_")) {
            let parsed = Wrapper::try_parse_from(["gateway"]).unwrap().limits;
            assert_eq!(parsed, ServerLimits::default());
        }
    }
}
