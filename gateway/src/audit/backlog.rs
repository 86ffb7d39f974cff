//! Audit rows held while the database is unavailable: batches the writer could not write,
//! oldest first, up to a bound in rows (`AUDIT_OUTAGE_BUFFER_ROWS`). Requests never wait
//! on it: the writer keeps draining the queue into it during an outage and writes it out,
//! in order, when the database answers again. Past the bound, new rows are dropped,
//! counted in `gateway_audit_dropped_total` and reported once per [`REPORT_EVERY`].

use crate::store::policies::PolicyLogRow;
use crate::store::request_logs::RequestLogRow;
use prometheus::{IntCounter, IntGauge};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How often rows dropped past the bound are reported in the log (one line per interval).
const REPORT_EVERY: Duration = Duration::from_secs(10);

/// One batch of rows, written in one transaction.
#[derive(Default)]
pub struct Batch {
    /// `request_logs` rows.
    pub requests: Vec<RequestLogRow>,
    /// `policy_logs` rows.
    pub policies: Vec<PolicyLogRow>,
}

impl Batch {
    /// Rows in the batch.
    pub fn rows(&self) -> usize {
        self.requests.len() + self.policies.len()
    }
}

/// The held batches.
pub struct Backlog {
    batches: VecDeque<Batch>,
    rows: usize,
    max_rows: usize,
    dropped: IntCounter,
    held: IntGauge,
    /// Rows dropped since the last report, and when that was.
    unreported: u64,
    reported_at: Option<Instant>,
}

impl Backlog {
    /// An empty backlog of at most `max_rows` rows; drops count in `dropped`, and `held`
    /// shows the rows held while the database is away (a batch waiting for its first write
    /// is not counted).
    pub fn new(max_rows: usize, dropped: IntCounter, held: IntGauge) -> Self {
        Self {
            batches: VecDeque::new(),
            rows: 0,
            max_rows,
            dropped,
            held,
            unreported: 0,
            reported_at: None,
        }
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    /// Rows held.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Publishes the rows held to the gauge (the writer calls it after each write attempt).
    pub fn publish(&self) {
        self.held.set(self.rows as i64);
    }

    /// Holds `batch` after the others; what does not fit under the bound is dropped.
    pub fn push(&mut self, mut batch: Batch) {
        let room = self.max_rows.saturating_sub(self.rows);
        if batch.rows() > room {
            let keep_requests = batch.requests.len().min(room);
            let keep_policies = room - keep_requests;
            let before = batch.rows();
            batch.requests.truncate(keep_requests);
            batch
                .policies
                .truncate(keep_policies.min(batch.policies.len()));
            self.drop_rows((before - batch.rows()) as u64);
        }
        if batch.rows() > 0 {
            self.rows += batch.rows();
            self.batches.push_back(batch);
        }
    }

    /// The oldest batch, if any.
    pub fn front(&self) -> Option<&Batch> {
        self.batches.front()
    }

    /// Removes the oldest batch (written, or given up on).
    pub fn pop(&mut self) -> Option<Batch> {
        let batch = self.batches.pop_front()?;
        self.rows -= batch.rows();
        Some(batch)
    }

    /// Drops `rows` and counts them; logs once per [`REPORT_EVERY`].
    pub fn drop_rows(&mut self, rows: u64) {
        if rows == 0 {
            return;
        }
        self.dropped.inc_by(rows);
        self.unreported += rows;
        if self
            .reported_at
            .is_none_or(|at| at.elapsed() >= REPORT_EVERY)
        {
            tracing::error!(
                dropped = self.unreported,
                held = self.rows,
                bound = self.max_rows,
                "audit rows dropped: the database has been unavailable long enough to fill AUDIT_OUTAGE_BUFFER_ROWS"
            );
            self.unreported = 0;
            self.reported_at = Some(Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(requests: usize) -> Batch {
        let row = super::super::sample_row("r");
        Batch {
            requests: vec![row; requests],
            policies: Vec::new(),
        }
    }

    #[test]
    fn holds_batches_in_order_up_to_the_bound_and_counts_the_rest() {
        let dropped = IntCounter::new("d", "d").unwrap();
        let held = IntGauge::new("h", "h").unwrap();
        let mut backlog = Backlog::new(5, dropped.clone(), held.clone());
        backlog.push(batch(3));
        backlog.push(batch(4));
        assert_eq!(backlog.rows(), 5, "the second batch is cut at the bound");
        assert_eq!(dropped.get(), 2);
        backlog.push(batch(1));
        assert_eq!(dropped.get(), 3, "full: a new row is dropped");
        assert_eq!(backlog.pop().unwrap().rows(), 3, "oldest first");
        assert_eq!(backlog.rows(), 2);
        backlog.push(batch(2));
        assert_eq!(backlog.rows(), 4, "room again after a write");
        backlog.publish();
        assert_eq!(held.get(), 4);
    }
}
