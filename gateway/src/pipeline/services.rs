//! What the proxy pipeline works with, built once at start: the tools, limits, breakers,
//! bulkheads, retry policy, response cache and audit queue.

use crate::audit::Audit;
use crate::catalog::ToolName;
use crate::config::ProxySettings;
use crate::metrics::Metrics;
use crate::resilience::agent_share::AgentShares;
use crate::resilience::breaker::{Breaker, BreakerSettings};
use crate::resilience::bulkhead::Bulkhead;
use crate::resilience::cache::ResponseCache;
use crate::resilience::destination_breakers::DestinationBreakers;
use crate::resilience::rate_limit::RateLimiter;
use crate::resilience::retry::RetryPolicy;
use crate::store::Store;
use crate::tools::credentials::Credentials;
use crate::tools::Tools;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// One value per tool.
pub struct PerTool<T>([T; 4]);

impl<T> PerTool<T> {
    fn new(make: impl Fn(ToolName) -> T) -> Self {
        Self(ToolName::ALL.map(make))
    }

    /// The value of `tool`.
    pub fn get(&self, tool: ToolName) -> &T {
        let index = ToolName::ALL.iter().position(|t| *t == tool).unwrap_or(0);
        &self.0[index]
    }
}

/// The proxy pipeline's services.
pub struct ProxyServices {
    /// Settings read at start.
    pub settings: ProxySettings,
    /// The four tools.
    pub tools: Tools,
    /// Active tool credentials.
    pub credentials: Arc<Credentials>,
    /// Rate limits.
    pub limiter: RateLimiter,
    /// Circuit breakers of the configured APIs (`http_fetch` uses `destination_breakers`).
    pub breakers: PerTool<Breaker>,
    /// Circuit breakers of `http_fetch`, one per destination.
    pub destination_breakers: DestinationBreakers,
    /// Bulkheads.
    pub bulkheads: PerTool<Bulkhead>,
    /// Each agent's share of the bulkheads.
    pub agent_shares: AgentShares,
    /// Retry policy.
    pub retry: RetryPolicy,
    /// Response cache.
    pub cache: ResponseCache,
    /// Audit queue.
    pub audit: Audit,
    shutting_down: AtomicBool,
}

impl ProxyServices {
    /// Builds the services; `redis` makes limits and the cache shared.
    pub fn new(
        settings: &ProxySettings,
        credentials: Arc<Credentials>,
        redis: Option<crate::resilience::redis_link::RedisLink>,
        store: Store,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<Self> {
        let ms = |v: u32| Duration::from_millis(u64::from(v));
        let breaker = BreakerSettings {
            consecutive_failures: settings.breaker_consecutive_failures,
            failure_ratio: settings.breaker_failure_ratio.clamp(0.0, 1.0),
            min_calls: settings.breaker_min_calls,
            window: ms(settings.breaker_window_ms),
            open_for: ms(settings.breaker_open_ms),
            half_open_probes: settings.breaker_half_open_probes,
        };
        let (limiter, cache) = match redis {
            Some(link) => (RateLimiter::redis(link.clone()), ResponseCache::Redis(link)),
            None => (
                RateLimiter::local(),
                ResponseCache::local(settings.cache_max_bytes),
            ),
        };
        let cache = if settings.cache_enabled {
            cache
        } else {
            ResponseCache::Off
        };
        create_series(&metrics);
        Ok(Self {
            tools: Tools::new(settings, Arc::clone(&credentials))?,
            credentials,
            limiter,
            breakers: PerTool::new(|_| Breaker::new(breaker)),
            destination_breakers: DestinationBreakers::new(breaker),
            agent_shares: AgentShares::new(settings.bulkhead_per_agent as usize),
            bulkheads: PerTool::new(|_| {
                Bulkhead::new(
                    settings.bulkhead_concurrency as usize,
                    settings.bulkhead_queue as usize,
                    ms(settings.bulkhead_queue_timeout_ms),
                )
            }),
            retry: RetryPolicy {
                max_retries: settings.retry_max_retries,
                base_delay: ms(settings.retry_base_delay_ms),
                max_delay: ms(settings.retry_max_delay_ms),
            },
            cache,
            audit: Audit::start_with(
                store,
                settings.audit_queue_capacity as usize,
                ms(settings.audit_max_wait_ms),
                settings.audit_outage_buffer_rows as usize,
                audit_sinks(settings)?,
                metrics,
            ),
            settings: settings.clone(),
            shutting_down: AtomicBool::new(false),
        })
    }

    /// Lifetime of a cached answer of `tool`.
    pub fn cache_ttl(&self, tool: ToolName) -> Duration {
        let ms = match tool {
            ToolName::Serpapi => self.settings.cache_ttl_serpapi_ms,
            ToolName::HttpFetch => self.settings.cache_ttl_http_fetch_ms,
            ToolName::Openai | ToolName::GmailSend => 0,
        };
        Duration::from_millis(u64::from(ms))
    }

    /// Overall deadline of one request.
    pub fn deadline(&self) -> Duration {
        Duration::from_millis(u64::from(self.settings.request_deadline_ms))
    }

    /// Marks the gateway as shutting down: new proxy requests get 503.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::Release);
    }

    /// True once shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }
}

/// Statuses a proxied call answers with (a tool's own 4xx passes through as 502 or is one of
/// these).
const PROXY_STATUSES: &[&str] = &[
    "200", "400", "401", "403", "404", "408", "413", "415", "429", "500", "502", "503", "504",
];

/// Creates at zero the series every tool and action can count, so that a dashboard or an
/// alert reads 0 from the first scrape (a series born at its first event loses that event
/// to `rate()`): requests by tool, action and status, breaker states and refusals by tool,
/// cache hits and misses of cacheable actions, the gateway's own `policy_error` denials, and
/// both rate-limit scopes.
fn create_series(metrics: &Metrics) {
    let proxy = &metrics.proxy;
    for tool in ToolName::ALL {
        let tool = [tool.as_str()];
        proxy.breaker_state.with_label_values(&tool).set(0);
        proxy.breaker_fastfail.with_label_values(&tool);
        proxy.bulkhead_rejections.with_label_values(&tool);
    }
    for spec in crate::catalog::ACTIONS {
        let labels = [spec.tool.as_str(), spec.action];
        for status in PROXY_STATUSES {
            proxy
                .requests
                .with_label_values(&[labels[0], labels[1], status]);
        }
        if spec.cacheable {
            proxy.cache_hits.with_label_values(&labels);
            proxy.cache_misses.with_label_values(&labels);
        }
        // Only idempotent actions are retried.
        if spec.idempotent {
            for reason in crate::tools::RetryReason::ALL {
                proxy
                    .retries
                    .with_label_values(&[labels[0], labels[1], reason.as_str()]);
            }
        }
        metrics.policy_denials.with_label_values(&[
            spec.tool.as_str(),
            spec.action,
            "policy_error",
        ]);
    }
    for scope in [
        crate::resilience::rate_limit::Scope::Agent,
        crate::resilience::rate_limit::Scope::AgentTool,
    ] {
        proxy.rate_limited.with_label_values(&[scope.as_str()]);
    }
    super::refusals::create_series(metrics);
}

/// The audit sinks the settings name; the JSON-lines file is opened now, so that a path that
/// cannot be written stops the start with its reason.
fn audit_sinks(settings: &ProxySettings) -> anyhow::Result<crate::audit::Sinks> {
    use crate::config::AuditSink;
    let jsonl = match (settings.audit_sink, &settings.audit_jsonl_path) {
        (AuditSink::Database, _) => None,
        (_, None) => anyhow::bail!("AUDIT_SINK writes JSON lines but AUDIT_JSONL_PATH is not set"),
        (_, Some(path)) => Some(Arc::new(
            crate::audit::jsonl::JsonlSink::open(
                path,
                settings.audit_jsonl_max_bytes,
                settings.audit_jsonl_files as usize,
            )
            .map_err(|e| anyhow::anyhow!("opening AUDIT_JSONL_PATH {}: {e}", path.display()))?,
        )),
    };
    Ok(crate::audit::Sinks {
        database: settings.audit_sink != AuditSink::Jsonl,
        jsonl,
    })
}
