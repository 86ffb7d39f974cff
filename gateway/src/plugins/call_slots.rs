//! A binding's call slots: at most [`CALLS_AT_ONCE`] of its calls run at once. A call waits
//! for a slot as long as a call may last (its wall limit), then gives up as
//! [`FailureKind::Busy`] (503 `plugin_busy` for a policy). So a stuck or slow plugin holds
//! a bounded number of instances (memory) and of runnable tasks (the serving threads
//! interleave those with everything else), and other bindings keep slots of their own.

use super::failure::{CallFailure, FailureKind};
use prometheus::IntGauge;
use std::time::Duration;
use tokio::sync::{Semaphore, SemaphorePermit};

/// Calls of one binding that run at once.
pub const CALLS_AT_ONCE: usize = 32;

/// One binding's slots.
pub struct CallSlots(Semaphore);

/// A slot held by a running call, counted in `running` (`gateway_plugin_calls_in_flight`)
/// until dropped (also when the call is cancelled with its request).
pub struct Running<'a> {
    _slot: SemaphorePermit<'a>,
    running: &'a IntGauge,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.running.dec();
    }
}

impl Default for CallSlots {
    fn default() -> Self {
        Self(Semaphore::new(CALLS_AT_ONCE))
    }
}

impl CallSlots {
    /// A slot, waiting up to `wait` for one; counted in `running` while held.
    pub async fn take<'a>(
        &'a self,
        wait: Duration,
        running: &'a IntGauge,
    ) -> Result<Running<'a>, CallFailure> {
        match tokio::time::timeout(wait, self.0.acquire()).await {
            Ok(Ok(slot)) => {
                running.inc();
                Ok(Running {
                    _slot: slot,
                    running,
                })
            }
            // The semaphore is never closed; a closed one would be as busy as a full one.
            Ok(Err(_)) | Err(_) => Err(CallFailure {
                kind: FailureKind::Busy,
                message: format!(
                    "all {CALLS_AT_ONCE} call slots stayed taken for {} ms",
                    wait.as_millis()
                ),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_binding_is_busy_and_a_freed_slot_serves_the_next_call() {
        let slots = CallSlots::default();
        let running = IntGauge::new("r", "r").unwrap();
        let wait = Duration::from_millis(10);
        let mut held = Vec::new();
        for _ in 0..CALLS_AT_ONCE {
            held.push(slots.take(wait, &running).await.unwrap());
        }
        assert_eq!(running.get(), CALLS_AT_ONCE as i64);
        let busy = slots.take(wait, &running).await.err().unwrap();
        assert_eq!(busy.kind, FailureKind::Busy);
        held.pop();
        assert_eq!(running.get(), CALLS_AT_ONCE as i64 - 1);
        assert!(slots.take(wait, &running).await.is_ok());
    }
}
