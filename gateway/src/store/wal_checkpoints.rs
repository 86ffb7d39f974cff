//! SQLite's write-ahead-log checkpoints, kept off the writers' path.
//!
//! A checkpoint copies the log into the database file and syncs the file to disk. SQLite
//! runs one by default inside the commit that fills the log past 1,000 pages, so the audit
//! writer waited for the disk's `fsync` — up to 0.47 s at a time, measured over 100 s at 36k
//! proxied requests per second, and once long enough in a 10-minute run to fill the 65,536
//! rows of the audit queue (9,886 rows dropped). Here a commit checkpoints only past a large
//! safety limit, and a background task checkpoints every [`EVERY`] on a pool connection of
//! its own, in `PASSIVE` mode: it waits for no reader or writer, and the audit writer
//! appends to the log meanwhile.

use super::{Backend, Store, StoreError};
use std::time::Duration;
use tokio::task::JoinHandle;

/// How often the background task checkpoints.
pub const EVERY: Duration = Duration::from_secs(1);

/// Pragmas for every SQLite connection: no checkpoint inside commits below ~400 MiB of log
/// (a safety net should the background task stop), and a log cut back to 64 MiB when it
/// restarts.
pub const CONNECTION_PRAGMAS: &str =
    "PRAGMA wal_autocheckpoint = 100000; PRAGMA journal_size_limit = 67108864;";

impl Store {
    /// Copies what the write-ahead log holds into the database file, waiting for nobody.
    /// Nothing to do on PostgreSQL.
    pub async fn checkpoint(&self) -> Result<(), StoreError> {
        if self.backend() == Backend::Sqlite {
            sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(self.pool())
                .await?;
        }
        Ok(())
    }
}

/// Checkpoints every [`EVERY`] until aborted (SQLite only; `None` on PostgreSQL).
pub fn spawn(store: Store) -> Option<JoinHandle<()>> {
    (store.backend() == Backend::Sqlite).then(|| {
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(EVERY);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                if let Err(e) = store.checkpoint().await {
                    tracing::warn!(error = %e, "SQLite checkpoint failed; will retry");
                }
            }
        })
    })
}
