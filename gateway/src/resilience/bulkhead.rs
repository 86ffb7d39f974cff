//! Bulkhead per tool: a bounded number of upstream calls in flight, a bounded queue of
//! callers waiting for a slot, and a bounded wait. A full queue or a wait past its limit is
//! refused at once, so a slow tool cannot take every request of the gateway with it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Why a call got no slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The queue was full.
    QueueFull,
    /// The wait timed out.
    QueueTimeout,
}

/// One tool's bulkhead.
pub struct Bulkhead {
    slots: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_waiting: usize,
    max_wait: Duration,
}

/// Leaves the waiting count when dropped (also when the waiting future is cancelled).
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Bulkhead {
    /// A bulkhead of `concurrency` slots, `max_waiting` queued callers, `max_wait` each.
    pub fn new(concurrency: usize, max_waiting: usize, max_wait: Duration) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(concurrency.max(1))),
            waiting: AtomicUsize::new(0),
            max_waiting,
            max_wait,
        }
    }

    /// Takes a slot, waiting in the queue when none is free.
    pub async fn enter(&self) -> Result<OwnedSemaphorePermit, Refusal> {
        if let Ok(permit) = Arc::clone(&self.slots).try_acquire_owned() {
            return Ok(permit);
        }
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(Refusal::QueueFull);
        }
        let _waiting = Waiting(&self.waiting);
        match tokio::time::timeout(self.max_wait, Arc::clone(&self.slots).acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            // The semaphore is never closed; treat it like a timeout all the same.
            Ok(Err(_)) | Err(_) => Err(Refusal::QueueTimeout),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refuses_beyond_the_queue() {
        let b = Bulkhead::new(1, 0, Duration::from_secs(5));
        let _held = b.enter().await.unwrap();
        assert_eq!(b.enter().await.unwrap_err(), Refusal::QueueFull);
    }

    #[tokio::test]
    async fn a_queued_caller_gives_up_after_the_wait() {
        let b = Bulkhead::new(1, 4, Duration::from_millis(10));
        let _held = b.enter().await.unwrap();
        assert_eq!(b.enter().await.unwrap_err(), Refusal::QueueTimeout);
        assert_eq!(b.waiting.load(Ordering::Acquire), 0);
    }

    #[tokio::test]
    async fn a_queued_caller_gets_the_freed_slot() {
        let b = Arc::new(Bulkhead::new(1, 4, Duration::from_secs(30)));
        let held = b.enter().await.unwrap();
        let waiter = {
            let b = Arc::clone(&b);
            tokio::spawn(async move { b.enter().await.is_ok() })
        };
        while b.waiting.load(Ordering::Acquire) == 0 {
            tokio::task::yield_now().await;
        }
        drop(held);
        assert!(waiter.await.unwrap());
    }
}
