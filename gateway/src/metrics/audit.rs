//! Metric families of the audit log's storage: its size, its rows, the age of its oldest
//! row (read by the pruning task on each pass, never at scrape: they ask the database),
//! what pruning removed, and the rows sampling left out.

use super::{counter_vec, registered};
use prometheus::{Gauge, IntCounterVec, IntGauge, Registry};

/// Why audit rows were pruned.
pub const PRUNE_REASONS: [&str; 2] = ["age", "rows"];

/// The audit storage families. Cheap to clone (each family is shared).
#[derive(Clone)]
pub struct AuditMetrics {
    /// Bytes the audit log occupies (see `Store::audit_bytes`).
    pub bytes: IntGauge,
    /// Request rows kept.
    pub rows: IntGauge,
    /// Seconds since the oldest request row kept was written.
    pub oldest_row_age: Gauge,
    /// Rows pruned, by reason (`age`: past `AUDIT_RETENTION_HOURS`; `rows`: past
    /// `AUDIT_MAX_ROWS`).
    pub pruned: IntCounterVec,
    /// Allowed, successful calls whose row sampling left out (`AUDIT_SAMPLE_ALLOWED`).
    pub sampled_out: prometheus::IntCounter,
}

impl AuditMetrics {
    /// Creates and registers the families; every label set exists from start.
    pub fn register(registry: &Registry) -> Self {
        let gauge = |name: &str, help: &str| {
            registered(
                registry,
                IntGauge::new(name, help).expect("valid metric name"),
            )
        };
        let metrics = Self {
            bytes: gauge(
                "gateway_audit_bytes",
                "Bytes the audit log occupies (SQLite: the database's pages in use; PostgreSQL: the audit tables with their indexes), read on each pruning pass.",
            ),
            rows: gauge(
                "gateway_audit_rows",
                "Request rows in the audit log, read on each pruning pass.",
            ),
            oldest_row_age: registered(
                registry,
                Gauge::new(
                    "gateway_audit_oldest_row_age_seconds",
                    "Seconds since the oldest request row kept was written, read on each pruning pass.",
                )
                .expect("valid metric name"),
            ),
            sampled_out: registered(
                registry,
                prometheus::IntCounter::new(
                    "gateway_audit_sampled_out_total",
                    "Allowed, successful calls whose audit row sampling left out (AUDIT_SAMPLE_ALLOWED).",
                )
                .expect("valid metric name"),
            ),
            pruned: counter_vec(
                registry,
                "gateway_audit_pruned_rows_total",
                "Audit rows deleted by reason (age: past AUDIT_RETENTION_HOURS; rows: past AUDIT_MAX_ROWS).",
                &["reason"],
            ),
        };
        for reason in PRUNE_REASONS {
            metrics.pruned.with_label_values(&[reason]);
        }
        metrics
    }
}
