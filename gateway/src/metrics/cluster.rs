//! Metric families of the shared dependencies: the change feed each instance follows, the
//! age of the copies it keeps, and the fallbacks taken while Redis is away.

use super::{counter_vec, registered};
use prometheus::{GaugeVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

/// The shared dependencies' families. Cheap to clone (each family is shared).
#[derive(Clone)]
pub struct ClusterMetrics {
    /// The last change-feed position this instance applied.
    pub change_feed_position: IntGauge,
    /// Changes applied from the feed.
    pub change_feed_applied: IntCounter,
    /// Redis calls not made or given up, by use (`rate_limit`, `cache`, `counters`) and
    /// reason (`timeout` and `error`: Redis's failures; `open`: not called, the breaker was
    /// open). Every label set exists from start.
    pub redis_fallbacks: IntCounterVec,
    /// Seconds since each in-memory copy of stored state was last known current, by state
    /// (`access`, `policies`, `credentials`, `chaos`, `plugins`); set at scrape.
    pub replicated_state_age: GaugeVec,
}

/// The uses of Redis, as the fallback family labels them.
const REDIS_USES: [&str; 3] = ["rate_limit", "cache", "counters"];
/// Why a Redis call fell back.
const REDIS_REASONS: [&str; 3] = ["timeout", "error", "open"];

impl ClusterMetrics {
    /// Creates and registers the families.
    pub fn register(registry: &Registry) -> Self {
        let metrics = Self {
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
            replicated_state_age: registered(
                registry,
                GaugeVec::new(
                    Opts::new(
                        "gateway_replicated_state_age_seconds",
                        "Seconds since each in-memory copy of stored state (access, policies, credentials, chaos, plugins) was last known to hold everything the database had.",
                    ),
                    &["state"],
                )
                .expect("valid metric name"),
            ),
        };
        for replica in crate::change_feed::freshness::Replica::ALL {
            metrics
                .replicated_state_age
                .with_label_values(&[replica.label()]);
        }
        for usage in REDIS_USES {
            for reason in REDIS_REASONS {
                metrics.redis_fallbacks.with_label_values(&[usage, reason]);
            }
        }
        metrics
    }
}
