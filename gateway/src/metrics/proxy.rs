//! Metric families of the proxy pipeline, with the names the ops files (alerts, dashboards)
//! expect.

use super::{counter_vec, histogram_vec, registered};
use prometheus::{HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

/// Proxy request duration buckets in seconds, from 100 µs (the gateway answers from cache or
/// a mock in well under a millisecond) to 10 s (the default request deadline).
const REQUEST_DURATION_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// The proxy pipeline's families.
pub struct ProxyMetrics {
    /// Proxy requests by tool, action and status code, counted once per request.
    pub requests: IntCounterVec,
    /// Proxy request duration in seconds by tool and action.
    pub duration: HistogramVec,
    /// Requests refused by a rate limit, by scope (`agent`, `agent_tool`).
    pub rate_limited: IntCounterVec,
    /// Cache hits by tool and action.
    pub cache_hits: IntCounterVec,
    /// Cache misses by tool and action.
    pub cache_misses: IntCounterVec,
    /// Retries by tool, action and reason.
    pub retries: IntCounterVec,
    /// Calls refused by an open breaker, by tool.
    pub breaker_fastfail: IntCounterVec,
    /// Breaker state by tool (0 closed, 1 half-open, 2 open).
    pub breaker_state: IntGaugeVec,
    /// Calls refused by a full bulkhead, by tool.
    pub bulkhead_rejections: IntCounterVec,
    /// Audit rows dropped because the queue stayed full or the database refused them.
    pub audit_dropped: IntCounter,
    /// Audit rows that found the queue full and held their request until there was room.
    pub audit_waits: IntCounter,
    /// Audit batches written again after the database refused them.
    pub audit_write_retries: IntCounter,
    /// Audit rows held in memory because the database is unavailable.
    pub audit_held: IntGauge,
    /// Proxied calls refused, by stage (`token`, `claims`, `rate_limit`, `policy`) and code.
    pub refusals: IntCounterVec,
}

impl ProxyMetrics {
    /// Creates the families and registers them in `registry`.
    pub fn register(registry: &Registry) -> Self {
        let counter_vec =
            |name: &str, help: &str, labels: &[&str]| counter_vec(registry, name, help, labels);
        let duration = histogram_vec(
            registry,
            "gateway_request_duration_seconds",
            "Proxy request duration in seconds by tool and action (breaker, retries and upstream included).",
            REQUEST_DURATION_BUCKETS,
            &["tool", "action"],
        );
        let breaker_state = registered(
            registry,
            IntGaugeVec::new(
                Opts::new(
                    "gateway_breaker_state",
                    "Circuit breaker state by tool (0 closed, 1 half-open, 2 open).",
                ),
                &["tool"],
            )
            .expect("valid metric name"),
        );
        let audit_dropped = registered(
            registry,
            IntCounter::new(
                "gateway_audit_dropped_total",
                "Audit rows dropped (queue full past AUDIT_MAX_WAIT_MS, or database refusing writes).",
            )
            .expect("valid metric name"),
        );
        let audit_waits = registered(
            registry,
            IntCounter::new(
                "gateway_audit_waits_total",
                "Audit rows that found the queue full and held their request for room (database behind).",
            )
            .expect("valid metric name"),
        );
        let audit_write_retries = registered(
            registry,
            IntCounter::new(
                "gateway_audit_write_retries_total",
                "Audit batches retried after the database refused them (lost only when every retry fails).",
            )
            .expect("valid metric name"),
        );
        let audit_held = registered(
            registry,
            IntGauge::new(
                "gateway_audit_held_rows",
                "Audit rows held in memory while the database is unavailable (written when it returns).",
            )
            .expect("valid metric name"),
        );
        Self {
            requests: counter_vec(
                "gateway_requests_total",
                "Proxy requests by tool, action and status code.",
                &["tool", "action", "code"],
            ),
            duration,
            rate_limited: counter_vec(
                "gateway_rate_limited_total",
                "Proxy requests refused by a rate limit, by scope.",
                &["scope"],
            ),
            cache_hits: counter_vec(
                "gateway_cache_hits_total",
                "Response cache hits by tool and action.",
                &["tool", "action"],
            ),
            cache_misses: counter_vec(
                "gateway_cache_misses_total",
                "Response cache misses by tool and action.",
                &["tool", "action"],
            ),
            retries: counter_vec(
                "gateway_retries_total",
                "Upstream retries by tool, action and reason.",
                &["tool", "action", "reason"],
            ),
            breaker_fastfail: counter_vec(
                "gateway_breaker_fastfail_total",
                "Calls refused by an open circuit breaker, by tool.",
                &["tool"],
            ),
            breaker_state,
            bulkhead_rejections: counter_vec(
                "gateway_bulkhead_rejections_total",
                "Calls refused by a full bulkhead, by tool.",
                &["tool"],
            ),
            audit_dropped,
            audit_waits,
            audit_write_retries,
            audit_held,
            refusals: counter_vec(
                "gateway_refusals_total",
                "Proxied calls refused, by stage (token, claims, rate_limit, policy) and code.",
                &["stage", "code"],
            ),
        }
    }
}
