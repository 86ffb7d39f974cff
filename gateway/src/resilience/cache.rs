//! Response cache of read-only actions: keyed by tool, action and canonical parameters
//! (object keys sorted, so `{"a":1,"b":2}` and `{"b":2,"a":1}` share an entry), with a
//! lifetime per tool; in process (moka, bounded in bytes: each entry weighs what its answer
//! holds in memory) or in Redis (shared). Only successful answers are stored, and none
//! heavier than an eighth of the cache, so that one answer cannot flush all the others.

use crate::resilience::redis_link::RedisLink;
use moka::future::Cache;
use moka::Expiry;
use redis::AsyncCommands;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A cached answer, its lifetime and its weight.
#[derive(Clone)]
pub struct Entry {
    data: Arc<Value>,
    ttl: Duration,
    /// Bytes the entry holds (key and answer), from [`weight_of`].
    bytes: u32,
}

/// What a JSON tree node costs besides its text: the `Value` itself and, in an object, the
/// map entry and key.
const NODE_BYTES: usize = 32;
const MAP_ENTRY_BYTES: usize = 64;

/// Approximate bytes `value` holds in memory (its nodes and text), saturating at `u32::MAX`.
pub fn weight_of(value: &Value) -> u32 {
    fn walk(value: &Value) -> usize {
        NODE_BYTES
            + match value {
                Value::String(s) => s.capacity(),
                Value::Array(items) => items.iter().map(walk).sum(),
                Value::Object(map) => map
                    .iter()
                    .map(|(k, v)| MAP_ENTRY_BYTES + k.capacity() + walk(v))
                    .sum(),
                Value::Null | Value::Bool(_) | Value::Number(_) => 0,
            }
    }
    u32::try_from(walk(value)).unwrap_or(u32::MAX)
}

/// Gives each entry its own lifetime.
struct PerEntryTtl;

impl Expiry<String, Entry> for PerEntryTtl {
    fn expire_after_create(&self, _key: &String, value: &Entry, _now: Instant) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// Where cached answers live.
pub enum ResponseCache {
    /// Nothing is cached.
    Off,
    /// In this process, at most `max_bytes`.
    Local {
        /// The entries.
        cache: Cache<String, Entry>,
        /// The bound.
        max_bytes: u64,
    },
    /// In Redis, shared by every instance; skipped while Redis is away.
    Redis(RedisLink),
}

/// Writes `value` with object keys sorted at every level.
fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String((*k).clone()).to_string());
                out.push(':');
                write_canonical(&map[k.as_str()], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// The cache key of `tool.action` with `params`: readable prefix, digest of the parameters.
pub fn key(tool: &str, action: &str, params: &Value) -> String {
    let mut canonical = String::new();
    write_canonical(params, &mut canonical);
    let digest = hex::encode(Sha256::digest(canonical.as_bytes()));
    format!("{tool}:{action}:{digest}")
}

impl ResponseCache {
    /// An in-process cache holding at most `max_bytes` of answers.
    pub fn local(max_bytes: u64) -> Self {
        ResponseCache::Local {
            cache: Cache::builder()
                .max_capacity(max_bytes)
                .weigher(|_key: &String, entry: &Entry| entry.bytes)
                .expire_after(PerEntryTtl)
                .build(),
            max_bytes,
        }
    }

    /// Bytes the in-process cache holds now (0 for the others), once its pending
    /// evictions have run.
    pub async fn weighed_bytes(&self) -> u64 {
        match self {
            ResponseCache::Local { cache, .. } => {
                cache.run_pending_tasks().await;
                cache.weighted_size()
            }
            _ => 0,
        }
    }

    /// The cached answer under `key`. Redis away reads as a miss.
    pub async fn get(&self, key: &str) -> Option<Arc<Value>> {
        match self {
            ResponseCache::Off => None,
            ResponseCache::Local { cache, .. } => cache.get(key).await.map(|e| e.data),
            ResponseCache::Redis(link) => {
                let key = format!("{}cache:{key}", link.prefix());
                let text: Option<String> = link
                    .call("cache", |mut conn| async move { conn.get(key).await })
                    .await
                    .flatten();
                text.and_then(|t| serde_json::from_str(&t).ok())
                    .map(Arc::new)
            }
        }
    }

    /// Stores an answer for `ttl`, unless it weighs over an eighth of the cache. Redis away,
    /// nothing is stored.
    pub async fn put(&self, key: String, data: Arc<Value>, ttl: Duration) {
        if ttl.is_zero() {
            return;
        }
        match self {
            ResponseCache::Off => {}
            ResponseCache::Local { cache, max_bytes } => {
                let bytes = weight_of(&data).saturating_add(key.len() as u32);
                if u64::from(bytes) <= max_bytes / 8 {
                    cache.insert(key, Entry { data, ttl, bytes }).await;
                }
            }
            ResponseCache::Redis(link) => {
                let ms = ttl.as_millis().min(u128::from(u64::MAX)) as u64;
                let key = format!("{}cache:{key}", link.prefix());
                link.call("cache", |mut conn| async move {
                    conn.pset_ex::<_, _, ()>(key, data.to_string(), ms).await
                })
                .await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_ignores_object_key_order() {
        let a = key(
            "t",
            "a",
            &json!({"a": 1, "b": {"x": [1, {"p": 1, "q": 2}]}}),
        );
        let b = key(
            "t",
            "a",
            &json!({"b": {"x": [1, {"q": 2, "p": 1}]}, "a": 1}),
        );
        assert_eq!(a, b);
        assert_ne!(a, key("t", "a", &json!({"a": 2, "b": {"x": [1]}})));
        assert_ne!(
            a,
            key(
                "t",
                "b",
                &json!({"a": 1, "b": {"x": [1, {"p": 1, "q": 2}]}})
            )
        );
    }

    #[test]
    fn weight_counts_nodes_and_text() {
        let empty_arrays: Value =
            serde_json::from_str(&format!("[{}[]]", "[],".repeat(999))).unwrap();
        assert_eq!(weight_of(&empty_arrays), 32 * 1001);
        let text = Value::String("x".repeat(1000));
        assert!(weight_of(&text) >= 1000);
        assert!(weight_of(&json!({"k": text})) >= weight_of(&json!({"k": 1})) + 1000);
    }

    #[tokio::test]
    async fn local_cache_stays_within_its_bytes() {
        let cache = ResponseCache::local(64 << 10);
        let answer = Arc::new(Value::String("x".repeat(4 << 10)));
        for i in 0..100 {
            cache
                .put(
                    format!("k{i}"),
                    Arc::clone(&answer),
                    Duration::from_secs(60),
                )
                .await;
        }
        let held = cache.weighed_bytes().await;
        assert!(held > 0 && held <= 64 << 10, "{held}");
        // Over an eighth of the cache: not stored.
        let heavy = Arc::new(Value::String("x".repeat(9 << 10)));
        cache
            .put("heavy".into(), heavy, Duration::from_secs(60))
            .await;
        assert!(cache.get("heavy").await.is_none());
    }

    #[tokio::test]
    async fn local_cache_returns_what_it_stored() {
        let cache = ResponseCache::local(1 << 20);
        assert!(cache.get("k").await.is_none());
        cache
            .put(
                "k".into(),
                Arc::new(json!({"v": 1})),
                Duration::from_secs(60),
            )
            .await;
        assert_eq!(*cache.get("k").await.unwrap(), json!({"v": 1}));
    }
}
