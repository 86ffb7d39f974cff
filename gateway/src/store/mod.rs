//! Storage: one [`Store`] over SQLite or PostgreSQL, chosen by the database URL.
//!
//! Both backends share one schema (`migrations/sqlite` and `migrations/postgres`, embedded in
//! the binary) and one set of queries: times are unix milliseconds and ids are text, so the
//! same SQL runs on both. Handlers never see SQL; they call the typed functions of the
//! submodules.

pub mod agents;
mod audit_batch;
pub mod audit_bounds;
pub mod audit_size;
pub mod changes;
pub mod chaos_rules;
pub mod credentials;
pub mod errors;
pub mod partitions;
pub mod plugin_shadows;
pub mod plugin_uploads;
pub mod policies;
pub mod request_logs;
pub mod tokens;
pub mod used_signatures;
pub mod wal_checkpoints;

use sqlx::any::{AnyArguments, AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Arguments, ConnectOptions, Executor};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/postgres");

/// A storage failure. Callers map it to a 500 and log it; its text never reaches clients.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL names no supported database.
    #[error("unsupported DATABASE_URL scheme (use sqlite:// or postgres://)")]
    UnsupportedUrl,
    /// Could not create the SQLite file's folder.
    #[error("cannot create the database folder: {0}")]
    Folder(#[from] std::io::Error),
    /// A query or connection failed (counted in `gateway_database_errors_total`).
    #[error("database: {0}")]
    Database(sqlx::Error),
    /// Applying migrations failed.
    #[error("migration: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// A stored row does not parse (corrupt or hand-edited data).
    #[error("corrupt row in {table}: {detail}")]
    Corrupt {
        /// Table of the row.
        table: &'static str,
        /// What did not parse.
        detail: String,
    },
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        let error = StoreError::Database(e);
        errors::count(error.is_unavailable());
        error
    }
}

impl StoreError {
    /// True when the database is unreachable, too slow or busy (not a fault of the query or
    /// the data): callers answer 503 `store_unavailable` and may retry.
    pub fn is_unavailable(&self) -> bool {
        let StoreError::Database(e) = self else {
            return false;
        };
        match e {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => true,
            // SQLITE_BUSY and SQLITE_LOCKED (past busy_timeout); PostgreSQL's classes 08
            // (connection), 53 (resources), 57P (shutdown, statement cancelled by timeout).
            sqlx::Error::Database(db) => db.code().is_some_and(|code| {
                matches!(code.as_ref(), "5" | "6" | "517" | "262")
                    || code.starts_with("08")
                    || code.starts_with("53")
                    || code.starts_with("57")
            }),
            _ => false,
        }
    }
}

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite file.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

/// The gateway's database. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// SQLite only: the connection that checkpoints the write-ahead log.
    checkpointer: Option<std::sync::Arc<wal_checkpoints::Checkpointer>>,
    /// PostgreSQL only: where the change feed listens for notifications.
    listen_url: Option<std::sync::Arc<str>>,
    /// What the times stamped into rows are read from.
    clock: crate::clock::Clock,
}

/// How big a [`Store`]'s pool is and how long a caller waits for one of its connections.
#[derive(Debug, Clone, Copy)]
pub struct PoolLimits {
    /// Connections at most (PostgreSQL; SQLite always uses 4).
    pub max_connections: u32,
    /// Longest wait for a connection; past it the call fails with [`StoreError::Database`]
    /// (`PoolTimedOut`), which callers answer with 503 `store_unavailable`.
    pub acquire_timeout: Duration,
}

impl Default for PoolLimits {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout: Duration::from_millis(1_500),
        }
    }
}

/// Longest a single statement may run on PostgreSQL before the server cancels it.
const STATEMENT_TIMEOUT_MS: u32 = 30_000;

impl Store {
    /// Connects to `url` with the default [`PoolLimits`], creating a SQLite file (and its
    /// folder) when missing.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, PoolLimits::default()).await
    }

    /// Connects to `url` with `limits`, creating a SQLite file (and its folder) when missing.
    pub async fn connect_with(url: &str, limits: PoolLimits) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl);
        };
        let url = match backend {
            Backend::Sqlite => prepare_sqlite_url(url)?,
            Backend::Postgres => url.to_string(),
        };
        let options = AnyConnectOptions::from_str(&url)?
            .log_statements(log::LevelFilter::Trace)
            // sqlx's slow-statement line carries the whole SQL text (10 KB for an audit
            // batch): at debug level only; the audit writer reports its slow batches itself.
            .log_slow_statements(log::LevelFilter::Debug, Duration::from_millis(250));
        let pool = AnyPoolOptions::new()
            .max_connections(match backend {
                Backend::Sqlite => 4,
                Backend::Postgres => limits.max_connections,
            })
            .acquire_timeout(limits.acquire_timeout)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // Reads through a memory map and an 8 MiB page cache per
                        // connection: the audit writer's batches then touch the indexes'
                        // pages in memory instead of reading them back with a system call
                        // each (measured: ~0.3 `pread` per proxied request before).
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; \
                             PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL; \
                             PRAGMA temp_store = MEMORY; PRAGMA cache_size = -8192; \
                             PRAGMA mmap_size = 268435456;",
                        )
                        .await?;
                        conn.execute(wal_checkpoints::CONNECTION_PRAGMAS).await?;
                    } else {
                        conn.execute(
                            format!("SET statement_timeout = {STATEMENT_TIMEOUT_MS}").as_str(),
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options.clone())
            .await?;
        let checkpointer = (backend == Backend::Sqlite)
            .then(|| std::sync::Arc::new(wal_checkpoints::Checkpointer::new(&options)));
        let listen_url = (backend == Backend::Postgres).then(|| std::sync::Arc::from(url.as_str()));
        Ok(Self {
            pool,
            backend,
            checkpointer,
            listen_url,
            clock: crate::clock::Clock::SYSTEM,
        })
    }

    /// Applies pending migrations of this backend.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        self.migrations().run(&self.pool).await?;
        Ok(())
    }

    /// This backend's migrations, embedded at build time.
    fn migrations(&self) -> &'static Migrator {
        match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        }
    }

    /// Applies the migrations up to and including `last_version` only: the schema as an
    /// older gateway left it, which upgrade tests and `bench audit-upgrade` fill with rows
    /// before [`Store::migrate`] runs the rest.
    pub async fn migrate_through(&self, last_version: i64) -> Result<(), StoreError> {
        // sqlx has no "run up to"; its embedded migrator's fields are public for `migrate!`,
        // and the version is pinned by Cargo.lock.
        let older = Migrator {
            migrations: self
                .migrations()
                .iter()
                .filter(|m| m.version <= last_version)
                .cloned()
                .collect::<Vec<_>>()
                .into(),
            ..Migrator::DEFAULT
        };
        older.run(&self.pool).await?;
        Ok(())
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Connections of the pool now: (idle, in use).
    pub fn connections(&self) -> (usize, usize) {
        let idle = self.pool.num_idle();
        let size = self.pool.size() as usize;
        (idle, size.saturating_sub(idle))
    }

    /// The same store, stamping rows with `clock`.
    pub fn with_clock(mut self, clock: crate::clock::Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The clock rows are stamped with.
    pub fn clock(&self) -> crate::clock::Clock {
        self.clock
    }

    /// Now by [`Store::clock`], in unix milliseconds (as stamped into rows).
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Which backend this store uses.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Closes every connection (used at shutdown).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Begins a transaction that writes. On SQLite it takes the write lock up front
    /// (`BEGIN IMMEDIATE`): a transaction that read first and then tried to write could find
    /// another writer in the way and fail at once with `database is locked`, where waiting
    /// for the lock (busy_timeout) lets it go through.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    /// Begins a transaction that only reads, from one snapshot: its reads all see the same
    /// committed state (PostgreSQL `REPEATABLE READ`; on SQLite in WAL mode a deferred
    /// transaction keeps the snapshot of its first read).
    async fn begin_snapshot(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN DEFERRED").await?,
            Backend::Postgres => {
                self.pool
                    .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .await?
            }
        })
    }

    /// PostgreSQL only: the URL a notification listener connects to.
    pub fn listen_url(&self) -> Option<&str> {
        self.listen_url.as_deref()
    }

    /// The connection pool, for what the store's methods do not write: upgrade tests and
    /// `bench audit-upgrade` filling an older schema (see [`Store::migrate_through`]).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }
}

/// Creates the SQLite file's folder and asks SQLite to create the file if it is missing.
fn prepare_sqlite_url(url: &str) -> Result<String, StoreError> {
    let rest = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return Ok(url.to_string());
    }
    if let Some(parent) = Path::new(path)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent)?;
    }
    Ok(if url.contains("mode=") {
        url.to_string()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    })
}

/// Rows per multi-row INSERT (well under both databases' limits on parameters).
const ROWS_PER_INSERT: usize = 200;

/// How many names a comma-separated column list holds.
const fn column_count(columns: &str) -> usize {
    let bytes = columns.as_bytes();
    let (mut i, mut commas) = (0, 0);
    while i < bytes.len() {
        if bytes[i] == b',' {
            commas += 1;
        }
        i += 1;
    }
    commas + 1
}

/// Inserts `rows` into `table` inside `tx`, [`ROWS_PER_INSERT`] rows per statement:
/// `columns` names the columns and `bind` adds one row's values in that order. Text is best
/// added borrowed (`&str`, `Option<&str>`): sqlx's `Any` driver copies a `&String` that it is
/// given, which for an audit batch is ~17 copies a proxied request. Arguments are reserved up
/// front rather than grown value by value.
async fn insert_many_in<'r, R>(
    backend: Backend,
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    table: &str,
    columns: &str,
    rows: &'r [R],
    bind: impl Fn(&mut AnyArguments<'r>, &'r R) -> Result<(), sqlx::error::BoxDynError>,
) -> Result<(), StoreError> {
    let per_row = column_count(columns);
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let sql = format!(
            "INSERT INTO {table} ({columns}) VALUES {}",
            values_placeholders(backend, chunk.len(), per_row)
        );
        let mut arguments = AnyArguments::default();
        arguments.reserve(chunk.len() * per_row, 0);
        for row in chunk {
            bind(&mut arguments, row).map_err(sqlx::Error::Encode)?;
        }
        sqlx::query_with(&sql, arguments).execute(&mut **tx).await?;
    }
    Ok(())
}

/// `($1, …, $c), ($c+1, …), …` for `rows` rows of `columns` columns; plain `?` on SQLite,
/// whose lookup of numbered placeholders costs time quadratic in their number.
fn values_placeholders(backend: Backend, rows: usize, columns: usize) -> String {
    let mut out = String::with_capacity(rows * columns * 5);
    for row in 0..rows {
        if row > 0 {
            out.push_str(", ");
        }
        out.push('(');
        for column in 0..columns {
            if column > 0 {
                out.push_str(", ");
            }
            match backend {
                Backend::Sqlite => out.push('?'),
                Backend::Postgres => out.push_str(&format!("${}", row * columns + column + 1)),
            }
        }
        out.push(')');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::column_count;

    #[test]
    fn column_count_counts_the_names_of_a_list() {
        assert_eq!(column_count("id"), 1);
        assert_eq!(column_count("id, tool, action"), 3);
        assert_eq!(column_count("id,\n    tool"), 2);
    }
}
