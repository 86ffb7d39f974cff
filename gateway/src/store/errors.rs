//! Counts the database's failures as they happen: every [`sqlx::Error`] the store meets
//! becomes a [`StoreError`](super::StoreError) through one conversion, which counts it here,
//! so a failing database shows in `gateway_database_errors_total` whichever part of the
//! gateway (a request, the audit writer, the change feed) met it.

use prometheus::{IntCounterVec, Opts};
use std::sync::LazyLock;

/// The kinds counted: `unavailable` (unreachable, busy, too slow: callers answer 503 and may
/// retry) and `failed` (any other failure of a query).
pub const KINDS: [&str; 2] = ["unavailable", "failed"];

/// The process's database failures by kind. One family for the process, registered in each
/// gateway's registry ([`crate::metrics::Metrics::new`]).
pub static DATABASE_ERRORS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    let family = IntCounterVec::new(
        Opts::new(
            "gateway_database_errors_total",
            "Database failures by kind (unavailable: unreachable, busy or too slow; failed: any other query failure).",
        ),
        &["kind"],
    )
    .expect("valid metric name");
    for kind in KINDS {
        family.with_label_values(&[kind]);
    }
    family
});

/// Counts one failure.
pub(super) fn count(unavailable: bool) {
    let kind = if unavailable { KINDS[0] } else { KINDS[1] };
    DATABASE_ERRORS.with_label_values(&[kind]).inc();
}
