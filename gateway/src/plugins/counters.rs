//! Counters behind the `counter-add` host import (quotas): in process, or in Redis so that
//! every gateway instance shares them.

use parking_lot::Mutex;
use redis::aio::ConnectionManager;
use std::collections::HashMap;
use std::sync::Arc;

/// Most counters kept in process before expired ones are swept.
const LOCAL_SWEEP_THRESHOLD: usize = 100_000;

/// Where counters live.
#[derive(Clone)]
pub enum Counters {
    /// This process only.
    Local(Arc<Mutex<HashMap<String, LocalCounter>>>),
    /// Shared through Redis.
    Redis {
        /// Connection.
        conn: ConnectionManager,
        /// Key prefix.
        prefix: String,
    },
}

/// A counter held in process.
#[derive(Debug, Clone, Copy)]
pub struct LocalCounter {
    value: u64,
    expires_at_ms: u64,
}

impl LocalCounter {
    /// A counter at 0 whose window starts at `now_ms`.
    fn starting(window_ms: u64, now_ms: u64) -> Self {
        LocalCounter {
            value: 0,
            expires_at_ms: now_ms + window_ms,
        }
    }

    /// Adds `delta` (saturating at 0), restarting the window first when it has expired.
    fn add(&mut self, delta: i64, window_ms: u64, now_ms: u64) -> u64 {
        if self.expires_at_ms <= now_ms {
            *self = LocalCounter::starting(window_ms, now_ms);
        }
        self.value = self.value.saturating_add_signed(delta);
        self.value
    }
}

/// A counter operation failed (Redis unreachable).
#[derive(Debug, thiserror::Error)]
#[error("counter store: {0}")]
pub struct CounterError(#[from] redis::RedisError);

/// Redis script: add, never below zero, set the lifetime on first use; returns the value.
const REDIS_ADD: &str = r#"
local v = redis.call('INCRBY', KEYS[1], ARGV[1])
if v < 0 then redis.call('SET', KEYS[1], 0, 'KEEPTTL'); v = 0 end
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return v
"#;

/// The script with its SHA-1 computed once (`EVALSHA`, falling back to `EVAL` once per
/// Redis server).
static REDIS_ADD_SCRIPT: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(REDIS_ADD));

impl Counters {
    /// In-process counters.
    pub fn local() -> Self {
        Counters::Local(Arc::default())
    }

    /// Adds `delta` to `key` (which lives `window_ms` from first use); returns the new value.
    pub async fn add(
        &self,
        key: &str,
        window_ms: u64,
        delta: i64,
        now_ms: u64,
    ) -> Result<u64, CounterError> {
        let window_ms = window_ms.max(1);
        match self {
            Counters::Local(map) => {
                let mut map = map.lock();
                if map.len() > LOCAL_SWEEP_THRESHOLD {
                    map.retain(|_, c| c.expires_at_ms > now_ms);
                }
                // Look up before inserting, so the common case allocates no key.
                if let Some(counter) = map.get_mut(key) {
                    return Ok(counter.add(delta, window_ms, now_ms));
                }
                Ok(map
                    .entry(key.to_string())
                    .or_insert(LocalCounter::starting(window_ms, now_ms))
                    .add(delta, window_ms, now_ms))
            }
            Counters::Redis { conn, prefix } => {
                let value: i64 = REDIS_ADD_SCRIPT
                    .key(format!("{prefix}counter:{key}"))
                    .arg(delta)
                    .arg(window_ms)
                    .invoke_async(&mut conn.clone())
                    .await?;
                Ok(value.max(0) as u64)
            }
        }
    }
}
