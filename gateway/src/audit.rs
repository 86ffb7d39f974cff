//! The audit log: one `request_logs` row per proxy request and one `policy_logs` row per
//! policy decision, handed to a bounded queue and written in batches by one background
//! writer, never on the request path. [`Audit::flush`] waits until everything queued so
//! far is written; [`Audit::close`] drains the queue on graceful shutdown.

use crate::metrics::Metrics;
use crate::store::policies::PolicyLogRow;
use crate::store::request_logs::RequestLogRow;
use crate::store::Store;
use parking_lot::Mutex;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// Most rows written in one batch.
const BATCH: usize = 512;
/// Most rows deleted by one pruning statement (per table).
const PRUNE_BATCH: i64 = 10_000;
/// How long the writer lets a batch fill before writing it. Every transaction rewrites the
/// last page of each table and index, so a few large batches cost far less than many small
/// ones. Rows become visible, and a `flush` (the log endpoints, shutdown) returns, at most
/// this much later.
const LINGER: std::time::Duration = std::time::Duration::from_millis(20);
/// A batch that takes longer than this to write is logged.
const SLOW_BATCH: std::time::Duration = std::time::Duration::from_millis(250);
/// How often old rows are pruned.
const PRUNE_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

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
}

impl Audit {
    /// Starts the writer over `store`, with a queue of `capacity` rows.
    pub fn start(store: Store, capacity: usize, metrics: Arc<Metrics>) -> Self {
        let (queue, inbox) = mpsc::channel(capacity.max(1));
        let writer = tokio::spawn(write_batches(store, inbox, Arc::clone(&metrics)));
        Self {
            queue,
            writer: Mutex::new(Some(writer)),
            metrics,
        }
    }

    fn enqueue(&self, message: Message) {
        if self.queue.try_send(message).is_err() {
            self.metrics.proxy.audit_dropped.inc();
            tracing::warn!("audit queue full (or closed): a row was dropped");
        }
    }

    /// Queues a request row.
    pub fn request(&self, row: RequestLogRow) {
        self.enqueue(Message::Request(row));
    }

    /// Queues a policy decision row.
    pub fn policy(&self, row: PolicyLogRow) {
        self.enqueue(Message::Policy(row));
    }

    /// Waits until every row queued before this call is written (or given up on).
    pub async fn flush(&self) {
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

/// Deletes rows older than `retention` now, in batches; returns how many went.
pub async fn prune(
    store: &Store,
    retention: std::time::Duration,
) -> Result<u64, crate::store::StoreError> {
    let before = crate::store::now_ms() - retention.as_millis().min(i64::MAX as u128) as i64;
    let mut total = 0;
    loop {
        let deleted = store.prune_audit(before, PRUNE_BATCH).await?;
        total += deleted;
        if deleted < PRUNE_BATCH as u64 {
            return Ok(total);
        }
        // Let the writer in between batches.
        tokio::task::yield_now().await;
    }
}

/// Prunes rows older than `retention` every minute until aborted.
pub fn spawn_pruning(store: Store, retention: std::time::Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(PRUNE_EVERY);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            match prune(&store, retention).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(rows = n, "pruned audit rows past their retention"),
                Err(e) => tracing::warn!(error = %e, "pruning audit rows failed; will retry"),
            }
        }
    })
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

async fn write_batches(store: Store, mut inbox: mpsc::Receiver<Message>, metrics: Arc<Metrics>) {
    let mut messages = Vec::with_capacity(BATCH);
    let mut requests = Vec::with_capacity(BATCH);
    let mut policies = Vec::new();
    loop {
        if inbox.recv_many(&mut messages, BATCH).await == 0 {
            return;
        }
        gather_more(&mut inbox, &mut messages).await;
        let mut acks = Vec::new();
        for message in messages.drain(..) {
            match message {
                Message::Request(row) => requests.push(row),
                Message::Policy(row) => policies.push(row),
                Message::Flush(ack) => acks.push(ack),
            }
        }
        let started = std::time::Instant::now();
        let rows = requests.len() + policies.len();
        match store.insert_audit_batch(&requests, &policies).await {
            Ok(()) if started.elapsed() > SLOW_BATCH => tracing::warn!(
                rows,
                seconds = started.elapsed().as_secs_f64(),
                "writing an audit batch was slow (the database or its disk is busy); rows wait in the queue meanwhile"
            ),
            Ok(()) => {}
            Err(e) => {
                metrics.proxy.audit_dropped.inc_by(rows as u64);
                tracing::error!(error = %e, rows, "writing audit rows failed; they are lost");
            }
        }
        requests.clear();
        policies.clear();
        for ack in acks {
            let _ = ack.send(());
        }
    }
}
