//! Step 7: a cacheable action's answer may come from the response cache (`X-Cache: HIT` or
//! `MISS`); a fresh answer is stored under the same key after step 8.

use super::trail::Trail;
use crate::catalog::ActionSpec;
use crate::metrics::Metrics;
use crate::resilience::cache::{self, ResponseCache};
use axum::http::{HeaderName, HeaderValue};
use serde_json::Value;
use std::sync::Arc;

const X_CACHE: HeaderName = HeaderName::from_static("x-cache");

/// The key of the call's answer, when the action's answers may be cached.
pub(super) fn key(cache: &ResponseCache, action: &ActionSpec, params: &Value) -> Option<String> {
    (action.cacheable && !matches!(cache, ResponseCache::Off))
        .then(|| cache::key(action.tool.as_str(), action.action, params))
}

/// The cached answer under `key`, counted as a hit or a miss.
pub(super) async fn lookup(
    cache: &ResponseCache,
    metrics: &Metrics,
    action: &ActionSpec,
    key: &str,
    trail: &mut Trail,
) -> Option<Arc<Value>> {
    let data = cache.get(key).await;
    let (family, header) = match data {
        Some(_) => (&metrics.proxy.cache_hits, "HIT"),
        None => (&metrics.proxy.cache_misses, "MISS"),
    };
    family
        .with_label_values(&[action.tool.as_str(), action.action])
        .inc();
    trail
        .headers
        .push((X_CACHE, HeaderValue::from_static(header)));
    trail.cached = data.is_some();
    data
}
