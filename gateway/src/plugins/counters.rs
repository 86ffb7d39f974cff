//! Counters behind the `counter-add` host import (quotas): in process, or in Redis so that
//! every gateway instance shares them.

use parking_lot::Mutex;
use redis::aio::ConnectionManager;
use std::collections::HashMap;
use std::sync::Arc;

/// Counters kept in process before expired ones are first swept.
const LOCAL_SWEEP_THRESHOLD: usize = 100_000;
/// Most counters kept in process: past it (after a sweep), a new key is refused, so that a
/// plugin cannot grow the gateway's memory without end (its call fails; a policy fails
/// closed).
pub const MAX_LOCAL_COUNTERS: usize = 200_000;
/// Longest counter key, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;
/// Longest counter window (a year); longer ones are cut to it.
pub const MAX_WINDOW_MS: u64 = 366 * 24 * 3600 * 1000;

/// In-process counters and when to sweep expired ones next.
#[derive(Debug)]
pub struct LocalCounters {
    map: HashMap<String, LocalCounter>,
    /// Size at which the next sweep runs: twice what a sweep left (at least the
    /// threshold), so that sweeping stays linear overall even when few counters expire.
    sweep_at: usize,
}

impl Default for LocalCounters {
    fn default() -> Self {
        Self {
            map: HashMap::new(),
            sweep_at: LOCAL_SWEEP_THRESHOLD,
        }
    }
}

impl LocalCounters {
    /// Adds `delta` to `key`; `Full` when the key is new and there is no room for it.
    fn add(
        &mut self,
        key: &str,
        window_ms: u64,
        delta: i64,
        now_ms: u64,
    ) -> Result<u64, CounterError> {
        // Look up before inserting, so the common case allocates no key.
        if let Some(counter) = self.map.get_mut(key) {
            return Ok(counter.add(delta, window_ms, now_ms));
        }
        if self.map.len() >= self.sweep_at.min(MAX_LOCAL_COUNTERS) {
            self.map.retain(|_, c| c.expires_at_ms > now_ms);
            self.sweep_at = (self.map.len() * 2).max(LOCAL_SWEEP_THRESHOLD);
            if self.map.len() >= MAX_LOCAL_COUNTERS {
                return Err(CounterError::Full);
            }
        }
        Ok(self
            .map
            .entry(key.to_string())
            .or_insert(LocalCounter::starting(window_ms, now_ms))
            .add(delta, window_ms, now_ms))
    }

    /// Number of live (possibly expired, not yet swept) counters.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when no counter is held.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// Where counters live.
#[derive(Clone)]
pub enum Counters {
    /// This process only.
    Local(Arc<Mutex<LocalCounters>>),
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
            expires_at_ms: now_ms.saturating_add(window_ms),
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

/// A counter operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CounterError {
    /// Redis did not answer or refused.
    #[error("counter store: {0}")]
    Redis(#[from] redis::RedisError),
    /// The key is longer than [`MAX_KEY_BYTES`].
    #[error("counter key longer than {MAX_KEY_BYTES} bytes")]
    KeyTooLong,
    /// [`MAX_LOCAL_COUNTERS`] unexpired counters are held; no new key fits.
    #[error("{MAX_LOCAL_COUNTERS} counters in use; no room for a new key")]
    Full,
}

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
        if key.len() > MAX_KEY_BYTES {
            return Err(CounterError::KeyTooLong);
        }
        let window_ms = window_ms.clamp(1, MAX_WINDOW_MS);
        match self {
            Counters::Local(counters) => counters.lock().add(key, window_ms, delta, now_ms),
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

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_767_614_400_000;
    const HOUR: u64 = 3_600_000;

    #[tokio::test]
    async fn counters_add_within_a_window_and_restart_after_it() {
        let counters = Counters::local();
        assert_eq!(counters.add("k", HOUR, 2, NOW).await.unwrap(), 2);
        assert_eq!(counters.add("k", HOUR, -5, NOW + 1).await.unwrap(), 0);
        assert_eq!(counters.add("k", HOUR, 1, NOW + 2).await.unwrap(), 1);
        assert_eq!(counters.add("k", HOUR, 1, NOW + HOUR).await.unwrap(), 1);
        // A window past the year's cap does not overflow the expiry.
        assert_eq!(
            counters
                .add("long", u64::MAX, 1, u64::MAX - 1)
                .await
                .unwrap(),
            1
        );
    }

    #[tokio::test]
    async fn an_overlong_key_is_refused() {
        let counters = Counters::local();
        let key = "k".repeat(MAX_KEY_BYTES + 1);
        let refused = counters.add(&key, HOUR, 1, NOW).await;
        assert!(matches!(refused, Err(CounterError::KeyTooLong)));
        let Counters::Local(local) = &counters else {
            unreachable!()
        };
        assert!(local.lock().is_empty());
    }

    #[test]
    fn a_full_set_refuses_new_keys_until_some_expire() {
        let mut local = LocalCounters::default();
        for i in 0..MAX_LOCAL_COUNTERS {
            local.add(&i.to_string(), HOUR, 1, NOW).unwrap();
        }
        assert!(matches!(
            local.add("one more", HOUR, 1, NOW),
            Err(CounterError::Full)
        ));
        // Counters already held still count.
        assert_eq!(local.add("7", HOUR, 1, NOW).unwrap(), 2);
        // Once the window is over, the sweep makes room.
        assert_eq!(local.add("one more", HOUR, 1, NOW + HOUR).unwrap(), 1);
        assert_eq!(local.len(), 1);
    }

    #[test]
    fn sweeps_are_spaced_out_when_few_counters_expire() {
        let mut local = LocalCounters::default();
        for i in 0..LOCAL_SWEEP_THRESHOLD {
            local.add(&i.to_string(), HOUR, 1, NOW).unwrap();
        }
        // The next new key sweeps and finds nothing expired: the next sweep waits until
        // the set has doubled, instead of running again on the next call.
        local.add("a", HOUR, 1, NOW).unwrap();
        assert_eq!(local.sweep_at, LOCAL_SWEEP_THRESHOLD * 2);
    }
}
