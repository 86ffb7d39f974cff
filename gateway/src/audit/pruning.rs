//! Keeps the audit log within its bounds: rows older than `AUDIT_RETENTION_HOURS`, and the
//! oldest request rows past `AUDIT_MAX_ROWS` (with the policy rows older than the oldest
//! request row kept), are deleted in the background, a small batch per transaction, so the
//! audit writer waits at most one batch for the database. On PostgreSQL each pass first
//! creates the coming days' partitions and drops whole days past the retention (see
//! `store::partitions`). Each pass also reads the audit's size, rows and oldest row into
//! `/metrics`.

use crate::metrics::Metrics;
use crate::store::{Store, StoreError};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// Most rows deleted by one statement (per table): one short transaction, so the audit
/// writer, which shares the database's write lock on SQLite, waits little.
const PRUNE_BATCH: i64 = 2_000;
/// How often a pass runs. Rows past the row bound stay at most this long.
const PRUNE_EVERY: Duration = Duration::from_secs(10);

/// The audit log's bounds; `None`: unbounded that way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bounds {
    /// How long rows are kept.
    pub retention: Option<Duration>,
    /// Most request rows kept.
    pub max_rows: Option<u64>,
}

/// What one pass deleted, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassOutcome {
    /// Rows past the retention.
    pub by_age: u64,
    /// Rows past the row bound.
    pub by_rows: u64,
}

/// Deletes rows older than `retention` now, in batches; returns how many went.
pub async fn prune(store: &Store, retention: Duration) -> Result<u64, StoreError> {
    prune_before(store, cutoff(store.now_ms(), retention)).await
}

/// The time before which rows are past `retention`, at `now_ms`.
fn cutoff(now_ms: i64, retention: Duration) -> i64 {
    now_ms - retention.as_millis().min(i64::MAX as u128) as i64
}

/// Deletes rows older than `before` (unix ms): whole daily partitions first (PostgreSQL),
/// then the rest in batches; returns how many went.
pub async fn prune_before(store: &Store, before: i64) -> Result<u64, StoreError> {
    let mut total = store.drop_partitions_before(before).await?;
    loop {
        let deleted = store.prune_audit(before, PRUNE_BATCH).await?;
        total += deleted;
        if deleted < PRUNE_BATCH as u64 {
            // Shadow disagreements are bounded per binding; their age follows the audit's.
            return Ok(total
                + store
                    .prune_shadow_disagreements(before, PRUNE_BATCH)
                    .await?);
        }
        // Let the writer in between batches.
        tokio::task::yield_now().await;
    }
}

/// Deletes the oldest rows past `max_rows`, in batches; returns how many went.
pub async fn prune_over(store: &Store, max_rows: u64) -> Result<u64, StoreError> {
    let max_rows = i64::try_from(max_rows).unwrap_or(i64::MAX);
    let mut total = 0;
    loop {
        let pruned = store.prune_audit_over(max_rows, PRUNE_BATCH).await?;
        total += pruned.requests + pruned.decisions;
        if pruned.requests < PRUNE_BATCH as u64 && pruned.decisions < PRUNE_BATCH as u64 {
            return Ok(total);
        }
        tokio::task::yield_now().await;
    }
}

/// One pass now: see [`pass_at`].
pub async fn pass(
    store: &Store,
    bounds: Bounds,
    metrics: &Metrics,
) -> Result<PassOutcome, StoreError> {
    pass_at(store, bounds, metrics, store.now_ms()).await
}

/// One pass as at `now_ms` (tests move it forward): creates the coming days' partitions,
/// prunes by age, then by rows, then reads the audit's size into the metrics.
pub async fn pass_at(
    store: &Store,
    bounds: Bounds,
    metrics: &Metrics,
    now_ms: i64,
) -> Result<PassOutcome, StoreError> {
    let mut outcome = PassOutcome::default();
    store.ensure_partitions(now_ms).await?;
    if let Some(retention) = bounds.retention {
        outcome.by_age = prune_before(store, cutoff(now_ms, retention)).await?;
        metrics
            .audit
            .pruned
            .with_label_values(&["age"])
            .inc_by(outcome.by_age);
    }
    if let Some(max_rows) = bounds.max_rows {
        outcome.by_rows = prune_over(store, max_rows).await?;
        metrics
            .audit
            .pruned
            .with_label_values(&["rows"])
            .inc_by(outcome.by_rows);
    }
    metrics.audit.rows.set(store.request_log_total().await?);
    metrics.audit.bytes.set(store.audit_bytes().await?);
    let age = match store.oldest_request_log_ms().await? {
        Some(oldest) => (now_ms - oldest).max(0) as f64 / 1000.0,
        None => 0.0,
    };
    metrics.audit.oldest_row_age.set(age);
    Ok(outcome)
}

/// Runs a pass every [`PRUNE_EVERY`] until aborted; a failed pass is logged and retried.
pub fn spawn_pruning(store: Store, bounds: Bounds, metrics: Arc<Metrics>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(PRUNE_EVERY);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            match pass(&store, bounds, &metrics).await {
                Ok(PassOutcome {
                    by_age: 0,
                    by_rows: 0,
                }) => {}
                Ok(outcome) => tracing::info!(
                    past_retention = outcome.by_age,
                    past_row_bound = outcome.by_rows,
                    "pruned audit rows"
                ),
                Err(e) => tracing::warn!(error = %e, "pruning audit rows failed; will retry"),
            }
        }
    })
}
