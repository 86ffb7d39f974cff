//! Remembers agent signatures already used, so a captured request cannot be replayed.
//!
//! In process (a bounded moka cache) by default; in Redis (`SET NX EX`) when `REDIS_URL`
//! is set, so every gateway instance refuses a signature any of them has seen.

use moka::future::Cache;
use redis::aio::ConnectionManager;
use std::time::Duration;

/// How long a signature is remembered: twice the accepted clock skew, so a signature is
/// refused for as long as its timestamp could be accepted.
pub const REPLAY_WINDOW: Duration = Duration::from_secs(600);
/// Most signatures remembered in process.
const LOCAL_CAPACITY: u64 = 1_000_000;

/// Where used signatures are remembered.
#[derive(Clone)]
pub enum ReplayGuard {
    /// This process only.
    Local(Cache<[u8; 32], ()>),
    /// Shared through Redis.
    Redis {
        /// Connection.
        conn: ConnectionManager,
        /// Key prefix.
        prefix: String,
    },
}

impl ReplayGuard {
    /// An in-process guard.
    pub fn local() -> Self {
        ReplayGuard::Local(
            Cache::builder()
                .max_capacity(LOCAL_CAPACITY)
                .time_to_live(REPLAY_WINDOW)
                .build(),
        )
    }

    /// Records a signature fingerprint; `Ok(true)` the first time it is seen.
    pub async fn first_use(&self, fingerprint: [u8; 32]) -> Result<bool, redis::RedisError> {
        match self {
            ReplayGuard::Local(cache) => {
                Ok(cache.entry(fingerprint).or_insert(()).await.is_fresh())
            }
            ReplayGuard::Redis { conn, prefix } => {
                let key = format!("{prefix}replay:{}", hex::encode(fingerprint));
                let set: Option<String> = redis::cmd("SET")
                    .arg(key)
                    .arg(1)
                    .arg("NX")
                    .arg("EX")
                    .arg(REPLAY_WINDOW.as_secs())
                    .query_async(&mut conn.clone())
                    .await?;
                Ok(set.is_some())
            }
        }
    }
}
