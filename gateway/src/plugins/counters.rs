//! Counters behind the `counter-add` host import (quotas): in process, or in Redis so that
//! every gateway instance shares them (in process again while Redis is away: a quota is then
//! counted per instance until it is back).

use crate::resilience::redis_link::RedisLink;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;

/// Counters kept in process before expired ones are first swept.
const LOCAL_SWEEP_THRESHOLD: usize = 100_000;
/// Memory the in-process counters may hold (keys and an estimate of each entry's overhead):
/// about a million counters of the default policy's size, fewer of longer keys. Past it
/// (after a sweep), a new key is refused, so that a plugin cannot grow the gateway's
/// memory without end: its call fails, and a policy fails closed. Fleets larger than that
/// share their counters through Redis (`REDIS_URL`).
pub const MAX_LOCAL_COUNTER_BYTES: usize = 128 << 20;
/// Estimated memory of one counter besides its key (map slot, string header, values).
const COUNTER_OVERHEAD_BYTES: usize = 64;
/// While full, how long (of the callers' clock) before another sweep is tried: refusing a
/// key must not cost a scan of every counter each time.
const FULL_RESWEEP_MS: u64 = 1_000;
/// Longest counter key, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;
/// Longest counter window (a year); longer ones are cut to it.
pub const MAX_WINDOW_MS: u64 = 366 * 24 * 3600 * 1000;

/// Memory accounted to a counter with `key`.
fn counter_bytes(key: &str) -> usize {
    key.len() + COUNTER_OVERHEAD_BYTES
}

/// In-process counters, the memory they hold, and when to sweep expired ones next.
#[derive(Debug)]
pub struct LocalCounters {
    map: HashMap<String, LocalCounter>,
    /// Sum of [`counter_bytes`] over the map.
    bytes: usize,
    /// Size at which the next sweep runs: twice what a sweep left (at least the
    /// threshold), so that sweeping stays linear overall even when few counters expire.
    sweep_at: usize,
    /// When a sweep last left the counters full (callers' clock, ms).
    full_since_ms: Option<u64>,
}

impl Default for LocalCounters {
    fn default() -> Self {
        Self {
            map: HashMap::new(),
            bytes: 0,
            sweep_at: LOCAL_SWEEP_THRESHOLD,
            full_since_ms: None,
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
        let cost = counter_bytes(key);
        let fits = |bytes: usize| bytes + cost <= MAX_LOCAL_COUNTER_BYTES;
        if !fits(self.bytes) {
            let recently_full = self
                .full_since_ms
                .is_some_and(|since| now_ms.saturating_sub(since) < FULL_RESWEEP_MS);
            if !recently_full {
                self.sweep(now_ms);
            }
            if !fits(self.bytes) {
                self.full_since_ms.get_or_insert(now_ms);
                return Err(CounterError::Full);
            }
        } else if self.map.len() >= self.sweep_at {
            self.sweep(now_ms);
        }
        self.full_since_ms = None;
        self.bytes += cost;
        let mut counter = LocalCounter::starting(window_ms, now_ms);
        let value = counter.add(delta, window_ms, now_ms);
        self.map.insert(key.to_string(), counter);
        Ok(value)
    }

    /// Drops expired counters.
    fn sweep(&mut self, now_ms: u64) {
        let mut freed = 0;
        self.map.retain(|key, counter| {
            let live = counter.expires_at_ms > now_ms;
            if !live {
                freed += counter_bytes(key);
            }
            live
        });
        self.bytes -= freed;
        self.sweep_at = (self.map.len() * 2).max(LOCAL_SWEEP_THRESHOLD);
        self.full_since_ms = None;
    }
}

/// Where counters live.
#[derive(Clone)]
enum Store {
    /// This process only.
    Local(Arc<Mutex<LocalCounters>>),
    /// Shared through Redis; in this process while Redis is away.
    Redis {
        /// Guarded connection.
        link: RedisLink,
        /// The counters kept while Redis is away (per instance).
        fallback: Arc<Mutex<LocalCounters>>,
    },
}

/// The counters behind `counter-add`: a store, and for a dry run ([`Counters::dry_run`]) an
/// overlay that keeps the run's own additions, by namespaced key, instead of storing them.
#[derive(Clone)]
pub struct Counters {
    store: Store,
    dry_run: Option<Arc<Mutex<HashMap<String, i64>>>>,
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
    /// The key is longer than [`MAX_KEY_BYTES`].
    #[error("counter key longer than {MAX_KEY_BYTES} bytes")]
    KeyTooLong,
    /// The in-process counters hold [`MAX_LOCAL_COUNTER_BYTES`]; no new key fits.
    #[error("in-process counters full ({} MiB); no room for a new key", MAX_LOCAL_COUNTER_BYTES >> 20)]
    Full,
}

/// Redis script: for each key, add (never below zero) and set the lifetime on first use;
/// returns the new values in order. `ARGV` holds a delta and a window per key. One script
/// call is one round trip, however many counters a plugin changes at once.
const REDIS_ADD: &str = r#"
local out = {}
for i, key in ipairs(KEYS) do
  local v = redis.call('INCRBY', key, ARGV[2 * i - 1])
  if v < 0 then redis.call('SET', key, 0, 'KEEPTTL'); v = 0 end
  if redis.call('PTTL', key) < 0 then redis.call('PEXPIRE', key, ARGV[2 * i]) end
  out[i] = v
end
return out
"#;

/// The script with its SHA-1 computed once (`EVALSHA`, falling back to `EVAL` once per
/// Redis server).
static REDIS_ADD_SCRIPT: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(REDIS_ADD));

/// One change of a counter (of a batch, [`Counters::add_all`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The plugin's key.
    pub key: String,
    /// Lifetime from first use, ms.
    pub window_ms: u64,
    /// What to add.
    pub delta: i64,
}

/// `key` of `namespace` as stored: the namespace's length first, so "a/b" + "c" and
/// "a" + "b/c" stay apart.
fn namespaced(namespace: &str, key: &str) -> String {
    format!("{}:{namespace}/{key}", namespace.len())
}

impl Counters {
    /// In-process counters.
    pub fn local() -> Self {
        Self::over(Store::Local(Arc::default()))
    }

    /// Counters shared through Redis.
    pub fn redis(link: RedisLink) -> Self {
        Self::over(Store::Redis {
            link,
            fallback: Arc::default(),
        })
    }

    fn over(store: Store) -> Self {
        Self {
            store,
            dry_run: None,
        }
    }

    /// A dry run over these counters: it reads the stored values and keeps its own additions
    /// in memory, so a dry run decides as a real call would and consumes nothing.
    pub fn dry_run(&self) -> Self {
        Self {
            store: self.store.clone(),
            dry_run: Some(Arc::default()),
        }
    }

    /// True for a dry run's counters.
    pub fn is_dry_run(&self) -> bool {
        self.dry_run.is_some()
    }

    /// Adds `delta` to `key` of `namespace` (which lives `window_ms` from first use); returns
    /// the new value. Each namespace (the host uses one per binding) has keys of its own: no
    /// key of one can name a counter of another.
    pub async fn add(
        &self,
        namespace: &str,
        key: &str,
        window_ms: u64,
        delta: i64,
        now_ms: u64,
    ) -> Result<u64, CounterError> {
        let change = Change {
            key: key.to_string(),
            window_ms,
            delta,
        };
        let values = self
            .add_all(namespace, std::slice::from_ref(&change), now_ms)
            .await?;
        Ok(values.first().copied().unwrap_or(0))
    }

    /// Applies `changes` to counters of `namespace` in order (one Redis round trip); returns
    /// the new values. Every key is checked before anything changes; a change that then
    /// fails ([`CounterError::Full`]) stops the batch, the changes before it staying made.
    pub async fn add_all(
        &self,
        namespace: &str,
        changes: &[Change],
        now_ms: u64,
    ) -> Result<Vec<u64>, CounterError> {
        if changes.iter().any(|c| c.key.len() > MAX_KEY_BYTES) {
            return Err(CounterError::KeyTooLong);
        }
        let changes: Vec<Change> = changes
            .iter()
            .map(|c| Change {
                key: namespaced(namespace, &c.key),
                window_ms: c.window_ms.clamp(1, MAX_WINDOW_MS),
                delta: c.delta,
            })
            .collect();
        let Some(overlay) = &self.dry_run else {
            return self.store.add_all(&changes, now_ms).await;
        };
        let reads: Vec<Change> = changes
            .iter()
            .map(|c| Change {
                delta: 0,
                ..c.clone()
            })
            .collect();
        let stored = self.store.add_all(&reads, now_ms).await?;
        let mut overlay = overlay.lock();
        Ok(changes
            .into_iter()
            .zip(stored)
            .map(|(change, stored)| {
                let added = overlay.entry(change.key).or_insert(0);
                *added = added.saturating_add(change.delta);
                stored.saturating_add_signed(*added)
            })
            .collect())
    }
}

impl LocalCounters {
    /// Applies namespaced `changes` in order; stops at the first that fails.
    fn add_all(&mut self, changes: &[Change], now_ms: u64) -> Result<Vec<u64>, CounterError> {
        changes
            .iter()
            .map(|c| self.add(&c.key, c.window_ms, c.delta, now_ms))
            .collect()
    }
}

impl Store {
    /// Applies namespaced `changes`; returns the new values.
    async fn add_all(&self, changes: &[Change], now_ms: u64) -> Result<Vec<u64>, CounterError> {
        match self {
            Store::Local(counters) => counters.lock().add_all(changes, now_ms),
            Store::Redis { link, fallback } => {
                let mut invocation = REDIS_ADD_SCRIPT.prepare_invoke();
                for change in changes {
                    invocation
                        .key(format!("{}counter:{}", link.prefix(), change.key))
                        .arg(change.delta)
                        .arg(change.window_ms);
                }
                let values: Option<Vec<i64>> = link
                    .call("counters", |mut conn| async move {
                        invocation.invoke_async(&mut conn).await
                    })
                    .await;
                match values {
                    Some(values) if values.len() == changes.len() => {
                        Ok(values.into_iter().map(|v| v.max(0) as u64).collect())
                    }
                    _ => fallback.lock().add_all(changes, now_ms),
                }
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
        assert_eq!(counters.add("p", "k", HOUR, 2, NOW).await.unwrap(), 2);
        assert_eq!(counters.add("p", "k", HOUR, -5, NOW + 1).await.unwrap(), 0);
        assert_eq!(counters.add("p", "k", HOUR, 1, NOW + 2).await.unwrap(), 1);
        assert_eq!(
            counters.add("p", "k", HOUR, 1, NOW + HOUR).await.unwrap(),
            1
        );
        // A window past the year's cap does not overflow the expiry.
        assert_eq!(
            counters
                .add("p", "long", u64::MAX, 1, u64::MAX - 1)
                .await
                .unwrap(),
            1
        );
    }

    #[tokio::test]
    async fn an_overlong_key_is_refused() {
        let counters = Counters::local();
        let key = "k".repeat(MAX_KEY_BYTES + 1);
        let refused = counters.add("p", &key, HOUR, 1, NOW).await;
        assert!(matches!(refused, Err(CounterError::KeyTooLong)));
        let Store::Local(local) = &counters.store else {
            unreachable!()
        };
        assert!(local.lock().map.is_empty());
    }

    #[tokio::test]
    async fn each_namespace_has_keys_of_its_own() {
        let counters = Counters::local();
        assert_eq!(
            counters
                .add("spec-policy", "quota", HOUR, 1, NOW)
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            counters
                .add("thief", "quota", HOUR, 1_000, NOW)
                .await
                .unwrap(),
            1_000
        );
        assert_eq!(
            counters
                .add("spec-policy", "quota", HOUR, 1, NOW)
                .await
                .unwrap(),
            2
        );
        // A separator inside a name cannot reach another namespace's key.
        assert_eq!(counters.add("a/b", "c", HOUR, 5, NOW).await.unwrap(), 5);
        assert_eq!(counters.add("a", "b/c", HOUR, 1, NOW).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn a_dry_run_reads_the_stored_values_and_consumes_nothing() {
        let counters = Counters::local();
        counters.add("p", "quota", HOUR, 3, NOW).await.unwrap();
        let dry = counters.dry_run();
        assert_eq!(dry.add("p", "quota", HOUR, 1, NOW).await.unwrap(), 4);
        assert_eq!(
            dry.add("p", "quota", HOUR, 1, NOW).await.unwrap(),
            5,
            "its own additions count"
        );
        assert_eq!(
            counters.add("p", "quota", HOUR, 0, NOW).await.unwrap(),
            3,
            "nothing stored"
        );
    }

    /// A key of `len` bytes numbered `i`.
    fn long_key(i: usize, len: usize) -> String {
        format!("{i:0>len$}")
    }

    /// Fills `local` at `NOW` with 1 KiB keys, then 8-byte ones, until a new key of 8 bytes
    /// or more no longer fits; `window(i)` is the window of the `i`th counter.
    fn fill(local: &mut LocalCounters, window: impl Fn(usize) -> u64) {
        for len in [MAX_KEY_BYTES, 8] {
            let mut i = local.map.len();
            while local.add(&long_key(i, len), window(i), 1, NOW).is_ok() {
                i += 1;
            }
        }
    }

    #[test]
    fn a_full_set_refuses_new_keys_until_some_expire() {
        let mut local = LocalCounters::default();
        fill(&mut local, |_| HOUR);
        assert!(local.bytes <= MAX_LOCAL_COUNTER_BYTES);
        assert!(
            local.map.len() > MAX_LOCAL_COUNTER_BYTES / counter_bytes(&long_key(0, MAX_KEY_BYTES))
        );
        assert!(matches!(
            local.add("new key", HOUR, 1, NOW),
            Err(CounterError::Full)
        ));
        // Counters already held still count.
        assert_eq!(
            local
                .add(&long_key(7, MAX_KEY_BYTES), HOUR, 1, NOW)
                .unwrap(),
            2
        );
        // Once the window is over, the sweep makes room.
        assert_eq!(local.add("new key", HOUR, 1, NOW + HOUR).unwrap(), 1);
        assert_eq!(local.map.len(), 1);
        assert_eq!(local.bytes, counter_bytes("new key"));
    }

    #[test]
    fn while_full_a_refusal_does_not_sweep_again_at_once() {
        let mut local = LocalCounters::default();
        // Half the counters expire after half a second, half after an hour. Filling ends
        // with a refusal at `NOW`, after a sweep.
        fill(&mut local, |i| if i % 2 == 0 { 500 } else { HOUR });
        let held = local.map.len();
        // Half have expired by now, but the last sweep was under a second ago: refused
        // without another scan...
        assert!(local.add("new key", HOUR, 1, NOW + 900).is_err());
        assert_eq!(local.map.len(), held);
        // ...and a second after it, the sweep runs and makes room.
        assert_eq!(local.add("new key", HOUR, 1, NOW + 1_000).unwrap(), 1);
        assert!(local.map.len() < held);
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
