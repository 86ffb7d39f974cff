//! Response cache of read-only actions: keyed by tool, action and canonical parameters
//! (object keys sorted, so `{"a":1,"b":2}` and `{"b":2,"a":1}` share an entry), with a
//! lifetime per tool; in process (moka, bounded) or in Redis (shared). Only successful
//! answers are stored.

use moka::future::Cache;
use moka::Expiry;
use redis::aio::ConnectionManager;
use redis::AsyncCommands;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A cached answer and its lifetime.
#[derive(Clone)]
pub struct Entry {
    data: Arc<Value>,
    ttl: Duration,
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
    /// In this process.
    Local(Cache<String, Entry>),
    /// In Redis, shared by every instance.
    Redis {
        /// Connection.
        conn: ConnectionManager,
        /// Key prefix.
        prefix: String,
    },
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
    /// An in-process cache of at most `max_entries` answers.
    pub fn local(max_entries: u64) -> Self {
        ResponseCache::Local(
            Cache::builder()
                .max_capacity(max_entries)
                .expire_after(PerEntryTtl)
                .build(),
        )
    }

    /// The cached answer under `key`. A Redis failure reads as a miss (and is logged).
    pub async fn get(&self, key: &str) -> Option<Arc<Value>> {
        match self {
            ResponseCache::Off => None,
            ResponseCache::Local(cache) => cache.get(key).await.map(|e| e.data),
            ResponseCache::Redis { conn, prefix } => {
                let text: Option<String> = match conn
                    .clone()
                    .get(format!("{prefix}cache:{key}"))
                    .await
                {
                    Ok(text) => text,
                    Err(e) => {
                        tracing::warn!(error = %e, "response cache read failed; treated as a miss");
                        None
                    }
                };
                text.and_then(|t| serde_json::from_str(&t).ok())
                    .map(Arc::new)
            }
        }
    }

    /// Stores an answer for `ttl`. A Redis failure is logged and otherwise ignored.
    pub async fn put(&self, key: String, data: Arc<Value>, ttl: Duration) {
        if ttl.is_zero() {
            return;
        }
        match self {
            ResponseCache::Off => {}
            ResponseCache::Local(cache) => cache.insert(key, Entry { data, ttl }).await,
            ResponseCache::Redis { conn, prefix } => {
                let ms = ttl.as_millis().min(u128::from(u64::MAX)) as u64;
                let written: Result<(), _> = conn
                    .clone()
                    .pset_ex(format!("{prefix}cache:{key}"), data.to_string(), ms)
                    .await;
                if let Err(e) = written {
                    tracing::warn!(error = %e, "response cache write failed");
                }
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

    #[tokio::test]
    async fn local_cache_returns_what_it_stored() {
        let cache = ResponseCache::local(10);
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
