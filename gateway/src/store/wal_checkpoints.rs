//! SQLite's write-ahead-log checkpoints, kept off the writers' path.
//!
//! A checkpoint copies the log into the database file and syncs the file to disk. SQLite
//! runs one by default inside the commit that fills the log past 1,000 pages, so the audit
//! writer waited for the disk's `fsync` — up to 0.47 s at a time, measured over 100 s at 36k
//! proxied requests per second, and once long enough in a 10-minute run to fill the 65,536
//! rows of the audit queue (9,886 rows dropped). Here a commit checkpoints only past a large
//! safety limit, and a background task checkpoints every [`EVERY`] on a connection of its
//! own, in `PASSIVE` mode: it waits for no reader or writer, and the audit writer appends to
//! the log meanwhile.
//!
//! A passive checkpoint under steady writes rarely catches up with the log's end, and SQLite
//! starts the log over only once it has: the log would grow without end (measured: 229 MB
//! after 40 s at full load). So when the log holds more than [`RESTART_PAGES`], the task
//! follows with a `RESTART` checkpoint, which waits for the writer's current transaction and
//! holds the next one back while it copies what is left — little, the passive pass having
//! done the bulk — so that the next commit starts the log from its beginning.

use super::{Backend, Store, StoreError};
use sqlx::any::AnyConnectOptions;
use sqlx::AnyConnection;
use sqlx::{ConnectOptions, Connection};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// How often the background task checkpoints.
pub const EVERY: Duration = Duration::from_secs(1);

/// A checkpoint slower than this is logged (the disk syncs slowly; nothing is lost).
const SLOW: Duration = Duration::from_secs(1);

/// Log size (pages of 4 KiB: 256 MiB) past which a checkpoint also restarts the log. A
/// restart holds the writer back while it runs (measured up to 0.83 s, which the audit queue
/// absorbs), so it is kept rare: every ~12 s at 36k proxied requests per second.
pub const RESTART_PAGES: i64 = 65_536;

/// Pragmas for every SQLite connection: no checkpoint inside commits below ~400 MiB of log
/// (a safety net should the background task stop), and a log cut back to 256 MiB when it
/// restarts.
pub const CONNECTION_PRAGMAS: &str =
    "PRAGMA wal_autocheckpoint = 100000; PRAGMA journal_size_limit = 268435456;";

/// The connection checkpoints run on: opened on first use, reopened after a failure, and
/// without sqlx's slow-statement warning (a checkpoint waits for the disk by design; the
/// background task reports the slow ones in its own words).
pub(super) struct Checkpointer {
    options: AnyConnectOptions,
    connection: tokio::sync::Mutex<Option<AnyConnection>>,
}

impl Checkpointer {
    /// A checkpointer for the database of `options` (not connected yet).
    pub(super) fn new(options: &AnyConnectOptions) -> Self {
        Self {
            options: options
                .clone()
                .log_statements(log::LevelFilter::Off)
                .log_slow_statements(log::LevelFilter::Off, Duration::ZERO),
            connection: tokio::sync::Mutex::new(None),
        }
    }

    async fn run(&self) -> Result<(), StoreError> {
        let mut slot = self.connection.lock().await;
        let connection = match slot.as_mut() {
            Some(connection) => connection,
            None => {
                let mut connection = AnyConnection::connect_with(&self.options).await?;
                // A `RESTART` checkpoint waits this long for the writer's transaction.
                sqlx::query("PRAGMA busy_timeout = 5000")
                    .execute(&mut connection)
                    .await?;
                slot.insert(connection)
            }
        };
        let result = checkpoint(connection).await;
        if result.is_err() {
            *slot = None;
        }
        result
    }
}

/// A passive checkpoint, then a restarting one when the log has grown past [`RESTART_PAGES`].
async fn checkpoint(connection: &mut AnyConnection) -> Result<(), StoreError> {
    // Columns: busy (0/1), pages in the log, pages copied into the database.
    let (_, log_pages, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(&mut *connection)
        .await?;
    if log_pages > RESTART_PAGES {
        sqlx::query("PRAGMA wal_checkpoint(RESTART)")
            .execute(&mut *connection)
            .await?;
    }
    Ok(())
}

impl Store {
    /// Copies what the write-ahead log holds into the database file, waiting for nobody.
    /// Nothing to do on PostgreSQL.
    pub async fn checkpoint(&self) -> Result<(), StoreError> {
        match &self.checkpointer {
            Some(checkpointer) => checkpointer.run().await,
            None => Ok(()),
        }
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
                let started = Instant::now();
                match store.checkpoint().await {
                    Ok(()) if started.elapsed() > SLOW => tracing::warn!(
                        seconds = started.elapsed().as_secs_f64(),
                        "SQLite checkpoint was slow: the disk syncs slowly (audit rows keep \
                         being written meanwhile; if this lasts, the log file grows)"
                    ),
                    Ok(()) => {}
                    Err(e) => tracing::warn!(error = %e, "SQLite checkpoint failed; will retry"),
                }
            }
        })
    })
}
