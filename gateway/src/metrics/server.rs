//! Metric families of the connection layer: open connections, refusals and timeouts.

use super::{counter_vec, registered};
use prometheus::{IntCounterVec, IntGauge, Registry};

/// The connection layer's families. Cheap to clone (each family is shared).
#[derive(Clone)]
pub struct ServerMetrics {
    /// Client connections open now.
    pub connections_open: IntGauge,
    /// Connections refused at accept, by reason (`total`, `per_client`).
    pub connections_refused: IntCounterVec,
    /// Requests cut off for slowness, by phase (`header`: headers not sent in time, also an
    /// idle kept-alive connection closed; `body`: the body fell behind its pace).
    pub timeouts: IntCounterVec,
}

impl ServerMetrics {
    /// Creates and registers the families.
    pub fn register(registry: &Registry) -> Self {
        Self {
            connections_open: registered(
                registry,
                IntGauge::new(
                    "gateway_http_connections_open",
                    "Client connections open now.",
                )
                .expect("valid metric name"),
            ),
            connections_refused: counter_vec(
                registry,
                "gateway_http_connections_refused_total",
                "Client connections refused at accept, by reason (total, per_client).",
                &["reason"],
            ),
            timeouts: counter_vec(
                registry,
                "gateway_http_timeouts_total",
                "Requests cut off for slowness, by phase (header: headers or idle keep-alive; body).",
                &["phase"],
            ),
        }
    }
}
