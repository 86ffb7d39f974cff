//! Stores shadow disagreements off the request path: a bounded queue drained by one writer
//! task in batches. When the queue is full or the database fails, the disagreement is still
//! counted in the metrics but not stored (`gateway_plugin_shadow_unrecorded_total`): a
//! candidate under test never slows or fails live traffic.

use crate::store::plugin_shadows::Disagreement;
use crate::store::Store;
use prometheus::IntCounterVec;
use std::time::Duration;
use tokio::sync::mpsc;

/// Disagreements waiting to be stored.
const QUEUE: usize = 1_024;
/// Disagreements stored per transaction.
const BATCH: usize = 64;
/// Longest a batch may take to store before it is given up.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// The queue to the writer (a handle: clones share it).
#[derive(Clone)]
pub struct DisagreementLog {
    queue: mpsc::Sender<Disagreement>,
    unrecorded: IntCounterVec,
}

impl DisagreementLog {
    /// Starts the writer on `store` (on the current Tokio runtime; `None` without one). It
    /// stops when the log is dropped.
    pub fn start(store: Store, unrecorded: IntCounterVec) -> Option<Self> {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let (queue, inbox) = mpsc::channel(QUEUE);
        runtime.spawn(write(store, inbox, unrecorded.clone()));
        Some(Self { queue, unrecorded })
    }

    /// Queues `row`, or counts it unrecorded when the queue is full.
    pub fn record(&self, row: Disagreement) {
        if let Err(e) = self.queue.try_send(row) {
            self.unrecorded
                .with_label_values(&[&e.into_inner().name])
                .inc();
        }
    }
}

async fn write(store: Store, mut inbox: mpsc::Receiver<Disagreement>, unrecorded: IntCounterVec) {
    let mut batch = Vec::with_capacity(BATCH);
    while inbox.recv_many(&mut batch, BATCH).await > 0 {
        let failed =
            match tokio::time::timeout(WRITE_TIMEOUT, store.insert_shadow_disagreements(&batch))
                .await
            {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e.to_string()),
                Err(_) => Some(format!("no answer within {WRITE_TIMEOUT:?}")),
            };
        if let Some(error) = failed {
            tracing::warn!(rows = batch.len(), %error, "storing shadow disagreements failed; they are counted, not listed");
            for row in &batch {
                unrecorded.with_label_values(&[&row.name]).inc();
            }
        }
        batch.clear();
    }
}
