//! Remembers agent signatures already used, so a captured request cannot be replayed.
//!
//! Kept in the database (`used_signatures`), so every instance sharing it refuses a
//! signature any of them has seen, with or without Redis. Minting a token writes the
//! database anyway, so the guard adds one small insert to a signed request and no new
//! dependency; expired records are pruned in the background.

use crate::store::{Store, StoreError};
use std::time::Duration;
use tokio::task::JoinHandle;

/// How long a signature is remembered: twice the accepted clock skew, so a signature is
/// refused for as long as its timestamp could be accepted.
pub const REPLAY_WINDOW: Duration = Duration::from_secs(600);
/// How often expired records are pruned, and how many at most per statement.
const PRUNE_EVERY: Duration = Duration::from_secs(60);
const PRUNE_BATCH: i64 = 10_000;

/// Where used signatures are remembered. Cheap to clone.
#[derive(Clone)]
pub struct ReplayGuard {
    store: Store,
}

impl ReplayGuard {
    /// A guard over `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// Records a signature fingerprint; `Ok(true)` the first time it is seen.
    pub async fn first_use(&self, fingerprint: [u8; 32]) -> Result<bool, StoreError> {
        let now = self.store.now_ms();
        let expires_at = now + REPLAY_WINDOW.as_millis() as i64;
        self.store
            .record_signature(&hex::encode(fingerprint), expires_at, now)
            .await
    }

    /// Prunes expired records every minute until the task is aborted.
    pub fn spawn_pruning(&self) -> JoinHandle<()> {
        let store = self.store.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(PRUNE_EVERY);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                while let Ok(pruned) = store.prune_signatures(store.now_ms(), PRUNE_BATCH).await {
                    if pruned < PRUNE_BATCH as u64 {
                        break;
                    }
                }
            }
        })
    }
}
