//! The one way the gateway calls Redis: every call has a deadline (`REDIS_TIMEOUT_MS`) and
//! goes through a breaker, so a Redis that is down or frozen costs a request at most one
//! short wait, and then none while the breaker is open. A call that is not made or gives up
//! answers `None`; each user then falls back to this instance's memory (limits, counters) or
//! skips its step (cache), and counts it in `gateway_redis_fallbacks_total`. The breaker
//! probes again after a second, so everything returns to Redis by itself when it is back.

use crate::resilience::breaker::{Breaker, BreakerSettings, Outcome, State};
use prometheus::IntCounterVec;
use redis::aio::ConnectionManager;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Breaker settings of the Redis link: three failures in a row (or half of 20 calls in 5 s)
/// open it for a second; one probe at a time then.
const BREAKER: BreakerSettings = BreakerSettings {
    consecutive_failures: 3,
    failure_ratio: 0.5,
    min_calls: 20,
    window: Duration::from_secs(5),
    open_for: Duration::from_secs(1),
    half_open_probes: 1,
};

/// A guarded Redis connection. Cheap to clone.
#[derive(Clone)]
pub struct RedisLink(Arc<Inner>);

struct Inner {
    conn: ConnectionManager,
    prefix: String,
    timeout: Duration,
    breaker: Breaker,
    fallbacks: IntCounterVec,
}

impl RedisLink {
    /// Guards `conn`: keys start with `prefix`, calls wait at most `timeout`, fallbacks are
    /// counted in `fallbacks` (labels: use, reason).
    pub fn new(
        conn: ConnectionManager,
        prefix: String,
        timeout: Duration,
        fallbacks: IntCounterVec,
    ) -> Self {
        Self(Arc::new(Inner {
            conn,
            prefix,
            timeout,
            breaker: Breaker::new(BREAKER),
            fallbacks,
        }))
    }

    /// The prefix of every key.
    pub fn prefix(&self) -> &str {
        &self.0.prefix
    }

    /// True while the breaker lets calls through (Redis answered lately).
    pub fn is_available(&self) -> bool {
        self.0.breaker.state() != State::Open
    }

    /// Pings Redis within `timeout`, outside the breaker (readiness checks): `ok`, `failing`
    /// or `timeout`.
    pub async fn ping(&self, timeout: Duration) -> &'static str {
        let mut conn = self.0.conn.clone();
        let ping = async move { redis::cmd("PING").query_async::<String>(&mut conn).await };
        match tokio::time::timeout(timeout, ping).await {
            Ok(Ok(_)) => "ok",
            Ok(Err(_)) => "failing",
            Err(_) => "timeout",
        }
    }

    /// Runs `call` on a connection, for `usage` (a metric label). `None` when Redis is not
    /// called (breaker open), fails or misses the deadline: the caller falls back.
    pub async fn call<T, F, Fut>(&self, usage: &'static str, call: F) -> Option<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = Result<T, redis::RedisError>>,
    {
        let inner = &self.0;
        let Ok(permit) = inner.breaker.enter() else {
            self.fell_back(usage, "open");
            return None;
        };
        let probe = permit.is_probe();
        let (result, reason) =
            match tokio::time::timeout(inner.timeout, call(inner.conn.clone())).await {
                Ok(Ok(value)) => (Some(value), None),
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, usage, "Redis call failed");
                    (None, Some("error"))
                }
                Err(_) => (None, Some("timeout")),
            };
        let after = permit.record(if result.is_some() {
            Outcome::Success
        } else {
            Outcome::Failure
        });
        if let Some(reason) = reason {
            self.fell_back(usage, reason);
        }
        match (probe, after) {
            (false, State::Open) => tracing::error!(
                timeout_ms = inner.timeout.as_millis() as u64,
                "Redis is not answering: rate limits and plugin counters fall back to this instance's memory, the response cache is skipped; probing again every second"
            ),
            (true, State::Closed) => {
                tracing::warn!("Redis answers again: shared limits, counters and cache are back")
            }
            _ => {}
        }
        result
    }

    fn fell_back(&self, usage: &'static str, reason: &'static str) {
        self.0.fallbacks.with_label_values(&[usage, reason]).inc();
    }
}
