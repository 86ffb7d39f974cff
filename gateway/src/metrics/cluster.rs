//! Metric families of the shared dependencies: the change feed each instance follows, and
//! the fallbacks taken while Redis is away.

use super::{counter_vec, registered};
use prometheus::{IntCounter, IntCounterVec, IntGauge, Registry};

/// The shared dependencies' families. Cheap to clone (each family is shared).
#[derive(Clone)]
pub struct ClusterMetrics {
    /// The last change-feed position this instance applied.
    pub change_feed_position: IntGauge,
    /// Changes applied from the feed.
    pub change_feed_applied: IntCounter,
    /// Redis calls not made or given up, by use (`rate_limit`, `cache`, `counters`,
    /// `replay_guard`) and reason (`timeout`, `error`, `open`: the breaker was open).
    pub redis_fallbacks: IntCounterVec,
}

impl ClusterMetrics {
    /// Creates and registers the families.
    pub fn register(registry: &Registry) -> Self {
        Self {
            change_feed_position: registered(
                registry,
                IntGauge::new(
                    "gateway_change_feed_position",
                    "The last change-feed position this instance applied.",
                )
                .expect("valid metric name"),
            ),
            change_feed_applied: registered(
                registry,
                IntCounter::new(
                    "gateway_change_feed_applied_total",
                    "Changes applied from the change feed.",
                )
                .expect("valid metric name"),
            ),
            redis_fallbacks: counter_vec(
                registry,
                "gateway_redis_fallbacks_total",
                "Redis calls not made or given up (served from this instance's memory), by use and reason.",
                &["use", "reason"],
            ),
        }
    }
}
