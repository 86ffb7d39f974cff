//! Prometheus metrics: one registry with the process metrics and the gateway's families.
//!
//! No label takes values that grow with the number of agents or tokens: routes are the
//! matched route templates, never raw paths.

pub mod audit;
pub mod cluster;
pub mod proxy;
pub mod server;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

/// Request duration buckets in seconds, from 100 µs to 10 s.
const HTTP_DURATION_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// The gateway's metric families.
pub struct Metrics {
    registry: Registry,
    /// Agents created.
    pub agent_creations: IntCounter,
    /// Tokens issued.
    pub token_generations: IntCounter,
    /// Token validations by result (`valid`, `malformed`, `bad_seal`, `unknown_key`,
    /// `expired`, `revoked`, `agent_not_active`).
    pub token_validations: IntCounterVec,
    /// Validations refused because the token had expired.
    pub token_expirations: IntCounter,
    /// Failed authentications refused (429) because their client was past its limit.
    pub auth_failures_limited: IntCounter,
    /// HTTP requests by route template and status code.
    pub http_requests: IntCounterVec,
    /// HTTP request duration by route template.
    pub http_duration: HistogramVec,
    /// Agent key pairs ready in the pool.
    pub key_pool_ready: IntGauge,
    /// Database connections of this instance's pool, by state (idle, in_use); set at scrape.
    pub database_connections: prometheus::IntGaugeVec,
    /// Audit rows queued for the writer now; set at scrape.
    pub audit_queue_depth: IntGauge,
    /// Plugin calls by plugin and outcome (`allow`, `deny`, `fault`, `none`, `filtered`, `failure`).
    pub plugin_evaluations: IntCounterVec,
    /// Plugin failures by plugin and kind (`trap`, `timeout`, `memory`, `invalid`).
    pub plugin_failures: IntCounterVec,
    /// Plugin call duration by plugin, from 1 µs.
    pub plugin_duration: HistogramVec,
    /// Plugin calls running now (a stuck plugin shows here before it times out).
    pub plugin_calls_in_flight: IntGauge,
    /// Plugin set reloads by result (`ok`, `error`).
    pub plugin_reloads: IntCounterVec,
    /// Uploaded plugin versions rolled back for failing calls in a row, by binding.
    pub plugin_quarantines: IntCounterVec,
    /// Shadow evaluations of a binding's candidate, by binding and outcome (agree,
    /// disagree, error, skipped).
    pub plugin_shadow_evaluations: IntCounterVec,
    /// Shadow disagreements that could not be stored (queue full, database failing), by
    /// binding.
    pub plugin_shadow_unrecorded: IntCounterVec,
    /// Policy denials by tool, action and code.
    pub policy_denials: IntCounterVec,
    /// Chaos faults injected by tool and fault.
    pub chaos_injections: IntCounterVec,
    /// The proxy pipeline's families.
    pub proxy: proxy::ProxyMetrics,
    /// The connection layer's families.
    pub server: server::ServerMetrics,
    /// The shared dependencies' families (change feed, Redis fallbacks).
    pub cluster: cluster::ClusterMetrics,
    /// The audit log's storage families.
    pub audit: audit::AuditMetrics,
}

/// Plugin call duration buckets in seconds, from 1 µs to 100 ms.
const PLUGIN_DURATION_BUCKETS: &[f64] = &[
    0.000001, 0.0000025, 0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001,
    0.0025, 0.005, 0.01, 0.025, 0.1,
];

impl Metrics {
    /// Creates and registers every family (and the process collector on Linux).
    pub fn new() -> Self {
        let registry = Registry::new();
        let counter = |name: &str, help: &str| {
            registered(
                &registry,
                IntCounter::new(name, help).expect("valid metric name"),
            )
        };
        let counter_vec =
            |name: &str, help: &str, labels: &[&str]| counter_vec(&registry, name, help, labels);
        let agent_creations = counter("gateway_agent_creations_total", "Agents created.");
        let token_generations = counter("gateway_token_generations_total", "Tokens issued.");
        let token_validations = counter_vec(
            "gateway_token_validations_total",
            "Token validations by result.",
            &["result"],
        );
        let token_expirations = counter(
            "gateway_token_expirations_total",
            "Token validations refused because the token had expired.",
        );
        let auth_failures_limited = counter(
            "gateway_auth_failures_limited_total",
            "Failed authentications refused because their client address was past its limit.",
        );
        let http_requests = counter_vec(
            "gateway_http_requests_total",
            "HTTP requests by route template and status code.",
            &["route", "code"],
        );
        let http_duration = histogram_vec(
            &registry,
            "gateway_http_request_duration_seconds",
            "HTTP request duration by route template.",
            HTTP_DURATION_BUCKETS,
            &["route"],
        );
        let plugin_evaluations = counter_vec(
            "gateway_plugin_evaluations_total",
            "Plugin calls by plugin and outcome.",
            &["plugin", "outcome"],
        );
        let plugin_failures = counter_vec(
            "gateway_plugin_failures_total",
            "Plugin failures by plugin and kind (trap, timeout, memory, invalid).",
            &["plugin", "kind"],
        );
        let plugin_reloads = counter_vec(
            "gateway_plugin_reloads_total",
            "Plugin set reloads by result.",
            &["result"],
        );
        let plugin_quarantines = counter_vec(
            "gateway_plugin_quarantines_total",
            "Uploaded plugin versions rolled back after failing calls in a row, by binding.",
            &["plugin"],
        );
        let plugin_shadow_evaluations = counter_vec(
            "gateway_plugin_shadow_evaluations_total",
            "Calls a binding's shadow candidate also judged, off the response path, by binding and outcome (agree, disagree, error, skipped).",
            &["binding", "outcome"],
        );
        let plugin_shadow_unrecorded = counter_vec(
            "gateway_plugin_shadow_unrecorded_total",
            "Shadow disagreements counted but not stored (the queue was full or the database failed), by binding.",
            &["binding"],
        );
        let policy_denials = counter_vec(
            "gateway_policy_denials_total",
            "Policy denials by tool, action and code.",
            &["tool", "action", "code"],
        );
        let chaos_injections = counter_vec(
            "gateway_chaos_injections_total",
            "Chaos faults injected by tool and fault.",
            &["tool", "fault"],
        );
        let plugin_duration = histogram_vec(
            &registry,
            "gateway_plugin_duration_seconds",
            "Plugin call duration by plugin.",
            PLUGIN_DURATION_BUCKETS,
            &["plugin"],
        );
        let plugin_calls_in_flight = registered(
            &registry,
            IntGauge::new(
                "gateway_plugin_calls_in_flight",
                "Plugin calls running now.",
            )
            .expect("valid metric name"),
        );
        let key_pool_ready = registered(
            &registry,
            IntGauge::new(
                "gateway_agent_key_pool_ready",
                "Agent key pairs ready in the pool.",
            )
            .expect("valid metric name"),
        );
        let database_connections = registered(
            &registry,
            prometheus::IntGaugeVec::new(
                Opts::new(
                    "gateway_database_connections",
                    "Connections of this instance's database pool, by state (idle, in_use).",
                ),
                &["state"],
            )
            .expect("valid metric name"),
        );
        for state in ["idle", "in_use"] {
            database_connections.with_label_values(&[state]);
        }
        let audit_queue_depth = registered(
            &registry,
            IntGauge::new(
                "gateway_audit_queue_depth",
                "Audit rows waiting in the queue for the writer.",
            )
            .expect("valid metric name"),
        );
        let build_info = registered(
            &registry,
            prometheus::IntGaugeVec::new(
                Opts::new(
                    "gateway_build_info",
                    "Always 1, labelled with the gateway's version.",
                ),
                &["version"],
            )
            .expect("valid metric name"),
        );
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        #[cfg(target_os = "linux")]
        registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .expect("unique process collector");
        registry
            .register(Box::new(crate::store::errors::DATABASE_ERRORS.clone()))
            .expect("unique database error family");
        let proxy = proxy::ProxyMetrics::register(&registry);
        let server = server::ServerMetrics::register(&registry);
        let cluster = cluster::ClusterMetrics::register(&registry);
        let audit = audit::AuditMetrics::register(&registry);
        Self {
            registry,
            audit,
            proxy,
            server,
            cluster,
            agent_creations,
            token_generations,
            token_validations,
            token_expirations,
            auth_failures_limited,
            http_requests,
            http_duration,
            key_pool_ready,
            database_connections,
            audit_queue_depth,
            plugin_evaluations,
            plugin_failures,
            plugin_duration,
            plugin_calls_in_flight,
            plugin_reloads,
            plugin_quarantines,
            plugin_shadow_evaluations,
            plugin_shadow_unrecorded,
            policy_denials,
            chaos_injections,
        }
    }

    /// The registry, for modules that register families of their own.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Renders every family in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        // Invariant: encoding into a Vec cannot fail for well-formed families.
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("text encoding into memory");
        String::from_utf8(out).unwrap_or_default()
    }
}

/// Registers `metric` in `registry` and returns it.
/// Invariant: every family is registered once, under a name no other family uses.
fn registered<T: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    metric: T,
) -> T {
    registry
        .register(Box::new(metric.clone()))
        .expect("unique metric");
    metric
}

/// A registered counter family.
fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    registered(
        registry,
        IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric name"),
    )
}

/// A registered histogram family with `buckets`.
fn histogram_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    buckets: &[f64],
    labels: &[&str],
) -> HistogramVec {
    registered(
        registry,
        HistogramVec::new(
            HistogramOpts::new(name, help).buckets(buckets.to_vec()),
            labels,
        )
        .expect("valid histogram"),
    )
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Middleware: counts every request by route template and status, and times it.
pub async fn track_http(
    axum::extract::State(metrics): axum::extract::State<std::sync::Arc<Metrics>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let matched = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .cloned();
    let route = matched.as_ref().map_or("unmatched", |p| p.as_str());
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    metrics
        .http_duration
        .with_label_values(&[route])
        .observe(started.elapsed().as_secs_f64());
    metrics
        .http_requests
        .with_label_values(&[route, response.status().as_str()])
        .inc();
    response
}
