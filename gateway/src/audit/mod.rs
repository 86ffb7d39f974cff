//! The audit log: one `request_logs` row per proxy request and one `policy_logs` row per
//! policy decision, handed to a bounded queue and written in batches by one background
//! writer, never on the request path. When the queue is full (the database stalls), a
//! request waits for room up to `AUDIT_MAX_WAIT_MS` rather than lose its row; only past
//! that is the row dropped and counted. While the database is unavailable the writer keeps
//! taking rows and holds them ([`backlog`], bounded by `AUDIT_OUTAGE_BUFFER_ROWS`), then
//! writes them in order when it answers again. [`Audit::flush`] waits until everything
//! queued so far is written (or held); [`Audit::close`] drains the queue on graceful
//! shutdown.

mod backlog;
pub mod jsonl;
pub mod pruning;
pub mod sampling;

pub use pruning::{prune, spawn_pruning, Bounds};

use crate::metrics::Metrics;
use crate::resilience::retry::RetryPolicy;
use crate::store::policies::PolicyLogRow;
use crate::store::request_logs::RequestLogRow;
use crate::store::{Store, StoreError};
use backlog::{Backlog, Batch};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// Most rows written in one batch (one transaction). Large enough that under full load a
/// batch is cut by [`LINGER`], not by this: at 512 rows, 60k proxied requests a second (two
/// rows each) made ~240 commits a second, each rewriting the last pages of every table and
/// index, and SQLite's log grew by ~1,050 bytes a request; at 4,096, ~670.
const BATCH: usize = 4096;
/// How long the writer lets a batch fill before writing it. Every transaction rewrites the
/// last page of each table and index, so a few large batches cost far less than many small
/// ones. Rows become visible, and a `flush` (the log endpoints, shutdown) returns, at most
/// this much later.
const LINGER: Duration = Duration::from_millis(20);
/// A batch that takes longer than this to write is logged.
const SLOW_BATCH: Duration = Duration::from_millis(250);
/// Retries of a batch the database refused, and their backoff (~0.2, 0.4, 0.8 s): a
/// database failing over or locked for a moment gets about 1.4 s to come back before the
/// batch is given up. Meanwhile new rows wait in the queue (and then hold their requests).
/// A batch is one transaction, so a retry never writes a row twice.
const WRITE_RETRY: RetryPolicy = RetryPolicy {
    max_retries: 3,
    base_delay: Duration::from_millis(200),
    max_delay: Duration::from_secs(1),
};
/// How often held rows are tried again while the database is unavailable (~0.1 s doubling
/// to 1 s).
const OUTAGE_RETRY: RetryPolicy = RetryPolicy {
    max_retries: u32::MAX,
    base_delay: Duration::from_millis(100),
    max_delay: Duration::from_secs(1),
};

enum Message {
    Request(RequestLogRow),
    Policy(PolicyLogRow),
    Flush(oneshot::Sender<()>),
}

/// Hands audit rows to the background writer.
pub struct Audit {
    queue: mpsc::Sender<Message>,
    writer: Mutex<Option<JoinHandle<()>>>,
    metrics: Arc<Metrics>,
    /// Longest a row waits for room in a full queue before it is dropped.
    max_wait: Duration,
    /// True while the writer holds rows the database could not take.
    holding: Arc<AtomicBool>,
}

/// Where the writer sends the rows.
#[derive(Clone)]
pub struct Sinks {
    /// The database (`request_logs`, `policy_logs`): what the log endpoints read.
    pub database: bool,
    /// A rotating JSON-lines file for log pipelines.
    pub jsonl: Option<Arc<jsonl::JsonlSink>>,
}

impl Sinks {
    /// The database alone (the default).
    pub fn database() -> Self {
        Self {
            database: true,
            jsonl: None,
        }
    }
}

impl Audit {
    /// Starts the writer over `store`, with a queue of `capacity` rows; a row finding the
    /// queue full waits up to `max_wait` for room. During a database outage at most
    /// `outage_rows` rows are held (at least one batch).
    pub fn start(
        store: Store,
        capacity: usize,
        max_wait: Duration,
        outage_rows: usize,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self::start_with(
            store,
            capacity,
            max_wait,
            outage_rows,
            Sinks::database(),
            metrics,
        )
    }

    /// As [`Audit::start`], writing to `sinks`.
    pub fn start_with(
        store: Store,
        capacity: usize,
        max_wait: Duration,
        outage_rows: usize,
        sinks: Sinks,
        metrics: Arc<Metrics>,
    ) -> Self {
        let (queue, inbox) = mpsc::channel(capacity.max(1));
        let holding = Arc::new(AtomicBool::new(false));
        let writer = Writer {
            store,
            backlog: Backlog::new(
                outage_rows.max(BATCH),
                metrics.proxy.audit_dropped.clone(),
                metrics.proxy.audit_held.clone(),
            ),
            holding: Arc::clone(&holding),
            metrics: Arc::clone(&metrics),
            sinks,
            jsonl_failing: false,
        };
        let writer = tokio::spawn(writer.run(inbox));
        Self {
            queue,
            writer: Mutex::new(Some(writer)),
            metrics,
            max_wait,
            holding,
        }
    }

    async fn enqueue(&self, message: Message) {
        let message = match self.queue.try_send(message) {
            Ok(()) => return,
            Err(TrySendError::Full(message)) => message,
            Err(TrySendError::Closed(_)) => return self.dropped("the writer has stopped"),
        };
        if self.max_wait.is_zero() {
            return self.dropped("queue full");
        }
        // Back-pressure: the database is behind; hold this request rather than lose its row.
        self.metrics.proxy.audit_waits.inc();
        if self
            .queue
            .send_timeout(message, self.max_wait)
            .await
            .is_err()
        {
            self.dropped("queue full past AUDIT_MAX_WAIT_MS");
        }
    }

    fn dropped(&self, why: &str) {
        self.metrics.proxy.audit_dropped.inc();
        tracing::warn!(why, "audit row dropped");
    }

    /// Queues a request row (waiting for room when the queue is full).
    pub async fn request(&self, row: RequestLogRow) {
        self.enqueue(Message::Request(row)).await;
    }

    /// Queues a policy decision row (waiting for room when the queue is full).
    pub async fn policy(&self, row: PolicyLogRow) {
        self.enqueue(Message::Policy(row)).await;
    }

    /// Rows waiting in the queue now.
    pub fn queued(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }

    /// Waits until every row queued before this call is written (or given up on). While
    /// the database is unavailable, returns at once: the rows are held, not written.
    pub async fn flush(&self) {
        if self.holding.load(Ordering::Relaxed) {
            return;
        }
        let (done, written) = oneshot::channel();
        if self.queue.send(Message::Flush(done)).await.is_ok() {
            let _ = written.await;
        }
    }

    /// Writes what is queued and stops the writer. Rows queued afterwards are dropped.
    pub async fn close(&self) {
        self.flush().await;
        let writer = self.writer.lock().take();
        if let Some(writer) = writer {
            writer.abort();
            let _ = writer.await;
        }
    }
}

/// Lets rows accumulate for [`LINGER`] and adds them to `messages` (up to a batch), unless
/// the batch is already full or a flush is asked for. The writer sleeps rather than waiting
/// on the queue: waiting on it would wake this task (and often another thread) for every
/// row, a wake-up per proxied request.
async fn gather_more(inbox: &mut mpsc::Receiver<Message>, messages: &mut Vec<Message>) {
    let flush_asked =
        |messages: &[Message]| messages.iter().any(|m| matches!(m, Message::Flush(_)));
    if messages.len() >= BATCH || flush_asked(messages) {
        return;
    }
    tokio::time::sleep(LINGER).await;
    while messages.len() < BATCH {
        match inbox.try_recv() {
            Ok(message) => messages.push(message),
            Err(_) => return,
        }
    }
}

/// The background writer and what it holds.
struct Writer {
    store: Store,
    backlog: Backlog,
    holding: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
    sinks: Sinks,
    /// The JSON-lines file refused the last batch (logged once per streak).
    jsonl_failing: bool,
}

impl Writer {
    /// Appends a batch to the JSON-lines file, off the async workers. A batch the file
    /// refuses is counted as dropped when the file is the only sink.
    async fn write_jsonl(&mut self, batch: &Batch) {
        let Some(sink) = self.sinks.jsonl.clone() else {
            return;
        };
        let lines = jsonl::lines(&batch.requests, &batch.policies);
        let written = tokio::task::spawn_blocking(move || sink.append(&lines))
            .await
            .map_err(std::io::Error::other)
            .and_then(|written| written);
        match written {
            Ok(()) if self.jsonl_failing => {
                self.jsonl_failing = false;
                tracing::warn!("the audit JSON-lines file takes rows again");
            }
            Ok(()) => {}
            Err(e) => {
                if !self.sinks.database {
                    self.metrics.proxy.audit_dropped.inc_by(batch.rows() as u64);
                }
                if !self.jsonl_failing {
                    self.jsonl_failing = true;
                    tracing::error!(error = %e, rows = batch.rows(),
                        "writing the audit JSON-lines file failed (disk full, permissions?)");
                }
            }
        }
    }

    async fn run(mut self, mut inbox: mpsc::Receiver<Message>) {
        let mut messages = Vec::with_capacity(BATCH);
        let mut outage: Option<(Instant, u32)> = None;
        loop {
            // Holding rows, wake to try them again even when no new row comes.
            let closed = match outage {
                None => inbox.recv_many(&mut messages, BATCH).await == 0,
                Some((_, attempt)) => matches!(
                    tokio::time::timeout(
                        OUTAGE_RETRY.backoff(attempt),
                        inbox.recv_many(&mut messages, BATCH)
                    )
                    .await,
                    Ok(0)
                ),
            };
            if closed && self.backlog.is_empty() {
                return;
            }
            if !messages.is_empty() {
                gather_more(&mut inbox, &mut messages).await;
            }
            let mut batch = Batch::default();
            let mut acks = Vec::new();
            for message in messages.drain(..) {
                match message {
                    Message::Request(row) => batch.requests.push(row),
                    Message::Policy(row) => batch.policies.push(row),
                    Message::Flush(ack) => acks.push(ack),
                }
            }
            self.write_jsonl(&batch).await;
            if !self.sinks.database {
                for ack in acks {
                    let _ = ack.send(());
                }
                if closed {
                    return;
                }
                continue;
            }
            self.backlog.push(batch);
            outage = match (self.write_held().await, outage) {
                (Ok(()), None) => None,
                (Ok(()), Some((since, _))) => {
                    tracing::warn!(
                        seconds = since.elapsed().as_secs_f64(),
                        "the database answers again; every held audit row is written"
                    );
                    None
                }
                (Err(e), None) => {
                    tracing::error!(error = %e, held = self.backlog.rows(),
                        "the database is unavailable: audit rows are held in memory (up to AUDIT_OUTAGE_BUFFER_ROWS) and written when it returns");
                    Some((Instant::now(), 1))
                }
                (Err(_), Some((since, attempt))) => Some((since, attempt.saturating_add(1))),
            };
            self.holding.store(outage.is_some(), Ordering::Relaxed);
            self.backlog.publish();
            for ack in acks {
                let _ = ack.send(());
            }
            if closed {
                if !self.backlog.is_empty() {
                    tracing::error!(
                        rows = self.backlog.rows(),
                        "stopping with audit rows the database could not take; they are lost"
                    );
                }
                return;
            }
        }
    }

    /// Writes the held batches, oldest first. Stops at the first one the database is
    /// unavailable for (it stays held); a batch refused for another reason is dropped.
    async fn write_held(&mut self) -> Result<(), StoreError> {
        while let Some(batch) = self.backlog.front() {
            let started = Instant::now();
            let rows = batch.rows();
            match write_with_retries(&self.store, &batch.requests, &batch.policies, &self.metrics)
                .await
            {
                Ok(()) if started.elapsed() > SLOW_BATCH => tracing::warn!(
                    rows,
                    seconds = started.elapsed().as_secs_f64(),
                    "writing an audit batch was slow (the database or its disk is busy); rows wait in the queue meanwhile"
                ),
                Ok(()) => {}
                Err(e) if e.is_unavailable() => return Err(e),
                Err(e) => {
                    self.metrics.proxy.audit_dropped.inc_by(rows as u64);
                    tracing::error!(error = %e, rows, retries = WRITE_RETRY.max_retries,
                        "writing audit rows failed after retries; they are lost");
                }
            }
            self.backlog.pop();
        }
        Ok(())
    }
}

/// Writes one batch, retrying as [`WRITE_RETRY`] says when the database refuses it. An
/// unavailable database is not retried here: the batch is held and tried again later.
async fn write_with_retries(
    store: &Store,
    requests: &[RequestLogRow],
    policies: &[PolicyLogRow],
    metrics: &Metrics,
) -> Result<(), crate::store::StoreError> {
    let mut retry = 0;
    loop {
        match store.insert_audit_batch(requests, policies).await {
            Err(e) if retry < WRITE_RETRY.max_retries && !e.is_unavailable() => {
                retry += 1;
                metrics.proxy.audit_write_retries.inc();
                tracing::warn!(error = %e, rows = requests.len() + policies.len(), retry,
                    "writing audit rows failed; retrying");
                tokio::time::sleep(WRITE_RETRY.backoff(retry)).await;
            }
            result => return result,
        }
    }
}

/// A request row of a served `serpapi.search`, for unit tests of the audit path.
#[cfg(test)]
fn sample_row(id: &str) -> RequestLogRow {
    RequestLogRow {
        id: id.into(),
        correlation_id: id.into(),
        agent_id: None,
        tool: "serpapi".into(),
        action: "search".into(),
        status_code: 200,
        success: 1,
        error_code: None,
        response_time_ms: 1.0,
        cached: 0,
        policy_decision: None,
        chaos_fault: None,
        sample_rate: None,
        created_at: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An `Audit` whose queue nobody reads until the test does.
    fn unread_audit(
        capacity: usize,
        max_wait: Duration,
    ) -> (Audit, mpsc::Receiver<Message>, Arc<Metrics>) {
        let (queue, inbox) = mpsc::channel(capacity);
        let metrics = Arc::new(Metrics::new());
        let audit = Audit {
            queue,
            writer: Mutex::new(None),
            metrics: Arc::clone(&metrics),
            max_wait,
            holding: Arc::default(),
        };
        (audit, inbox, metrics)
    }

    async fn next_id(inbox: &mut mpsc::Receiver<Message>) -> String {
        match inbox.recv().await {
            Some(Message::Request(row)) => row.id,
            _ => panic!("a request row"),
        }
    }

    #[tokio::test]
    async fn a_full_queue_holds_the_request_until_there_is_room() {
        let (audit, mut inbox, metrics) = unread_audit(1, Duration::from_secs(60));
        audit.request(sample_row("first")).await;
        let mut second = std::pin::pin!(audit.request(sample_row("second")));
        // Polled once: the queue is full, so the request waits (nothing dropped).
        assert!(tokio::time::timeout(Duration::ZERO, &mut second)
            .await
            .is_err());
        assert_eq!(next_id(&mut inbox).await, "first");
        second.await;
        assert_eq!(next_id(&mut inbox).await, "second");
        assert_eq!(metrics.proxy.audit_waits.get(), 1);
        assert_eq!(metrics.proxy.audit_dropped.get(), 0);
    }

    #[tokio::test]
    async fn past_the_longest_wait_the_row_is_dropped_and_counted() {
        let (audit, mut inbox, metrics) = unread_audit(1, Duration::from_millis(1));
        audit.request(sample_row("first")).await;
        audit.request(sample_row("second")).await;
        assert_eq!(metrics.proxy.audit_dropped.get(), 1);
        assert_eq!(next_id(&mut inbox).await, "first");
        // With no wait allowed, a full queue drops at once.
        let (no_wait, _inbox, metrics) = unread_audit(1, Duration::ZERO);
        no_wait.request(sample_row("a")).await;
        no_wait.request(sample_row("b")).await;
        assert_eq!(metrics.proxy.audit_dropped.get(), 1);
        assert_eq!(
            metrics.proxy.audit_waits.get(),
            0,
            "dropped at once: no wait"
        );
    }
}
