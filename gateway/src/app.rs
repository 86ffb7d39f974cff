//! Assembles the gateway from its configuration: storage, state, background tasks, routes
//! and the tower layers every request passes through, then serves it until shutdown.

use crate::api;
use crate::auth::admin::AdminKey;
use crate::auth::replay_guard::ReplayGuard;
use crate::config::{Config, Environment};
use crate::crypto::agent_keys::AgentKeyPool;
use crate::crypto::token::TokenSealer;
use crate::error::{ErrorCode, QuietLog};
use crate::metrics::{track_http, Metrics};
use crate::pipeline::services::ProxyServices;
use crate::pipeline::ProxyCallLog;
use crate::plugins::counters::Counters;
use crate::plugins::registry::PluginRegistry;
use crate::state::{AppState, Shared};
use crate::store::Store;
use crate::tokens::mirror::AccessMirror;
use crate::tokens::TokenService;
use crate::tools::credentials::Credentials;
use anyhow::Context;
use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderName, Request, Response, StatusCode};
use axum::Router;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::trace::TraceLayer;
use tracing::Span;

/// Header carrying the request id (kept from the client when present, generated otherwise).
/// The request id header: the client's when it sends one, else a new UUID (set before any
/// handler runs).
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A built gateway, ready to serve.
pub struct App {
    /// The complete router with its layers.
    pub router: Router,
    /// Shared state (tests and the CLI inspect it).
    pub state: AppState,
    tasks: BackgroundTasks,
    _plugin_watcher: Option<notify::RecommendedWatcher>,
}

/// Background tasks, aborted when the app is dropped.
struct BackgroundTasks(Vec<JoinHandle<()>>);

impl Drop for BackgroundTasks {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// What a gateway runs on besides its configuration: the plugin engine (the gateways of one
/// process may share one, so that a plugin compiles once) and the clock rows are stamped with.
#[derive(Debug, Clone)]
pub struct Host {
    /// Compiles and runs the plugins.
    pub plugin_engine: crate::plugins::PluginEngine,
    /// Stamps the rows.
    pub clock: crate::clock::Clock,
}

impl Host {
    /// A new plugin engine and the system clock.
    pub fn new() -> anyhow::Result<Self> {
        Ok(Self {
            plugin_engine: crate::plugins::PluginEngine::new()?,
            clock: crate::clock::Clock::SYSTEM,
        })
    }
}

/// Connects storage (applying migrations), loads the in-memory state and builds the router,
/// on `host`.
pub async fn build(config: Config, host: Host) -> anyhow::Result<App> {
    let Host {
        plugin_engine,
        clock,
    } = host;
    let limits = crate::store::PoolLimits {
        max_connections: config.settings.database_max_connections,
        acquire_timeout: Duration::from_millis(u64::from(config.settings.database_timeout_ms)),
    };
    let store = Store::connect_with(&config.settings.database_url, limits)
        .await
        .context("connecting to DATABASE_URL")?
        .with_clock(clock);
    store.migrate().await.context("applying migrations")?;
    // Before any audit row is written: a partition attached while a write is routed to the
    // default partition makes that write fail (the writer would retry it, but need not).
    store
        .ensure_partitions(store.now_ms())
        .await
        .context("creating the audit log's partitions")?;
    // Read before any copy loads: a change made meanwhile is applied again, never missed.
    let feed_start = store
        .latest_change_seq()
        .await
        .context("reading the change feed's position")?;
    crate::policies::seed_defaults(&store)
        .await
        .context("seeding the default role policies")?;
    let policies = crate::policies::PolicyBook::load(&store)
        .await
        .context("loading policies")?;
    let metrics = Arc::new(Metrics::new());
    let mirror = AccessMirror::load(&store)
        .await
        .context("loading agents and revocations")?;
    let redis = match &config.settings.redis_url {
        Some(url) => Some(crate::resilience::redis_link::RedisLink::new(
            connect_redis(url, config.settings.redis_timeout_ms).await?,
            config.settings.redis_key_prefix.clone(),
            Duration::from_millis(u64::from(config.settings.redis_timeout_ms)),
            metrics.cluster.redis_fallbacks.clone(),
        )),
        None => None,
    };
    let replay_guard = ReplayGuard::new(store.clone());
    let sealer = TokenSealer::new(
        &config.secrets.signing_secret,
        config
            .secrets
            .previous_signing_secret
            .as_deref()
            .map(|s| s.as_slice()),
    );
    let tokens = TokenService::new(
        sealer,
        Arc::clone(&mirror),
        store.clone(),
        Arc::clone(&metrics),
    );
    let key_pool = AgentKeyPool::start(usize::from(config.settings.key_pool_size));
    let admin_key = AdminKey::new(&config.secrets.admin_api_key);
    let metrics_key = config
        .secrets
        .metrics_token
        .as_ref()
        .map(|token| AdminKey::new(token));
    let counters = match &redis {
        Some(link) => Counters::redis(link.clone()),
        None => Counters::local(),
    };
    let signatures = crate::plugins::signing::SignaturePolicy::new(
        &config.settings.plugin_trusted_keys,
        config
            .settings
            .plugin_signatures
            .unwrap_or(match config.settings.environment {
                Environment::Production => crate::plugins::signing::SignatureMode::Required,
                Environment::Development => crate::plugins::signing::SignatureMode::Warn,
            }),
    )
    .map_err(anyhow::Error::msg)?;
    let plugins = Arc::new(
        PluginRegistry::new(
            config.settings.plugins_dir.clone(),
            plugin_engine,
            counters,
            Arc::clone(&metrics),
        )
        .with_store(store.clone())
        .with_signatures(signatures),
    );
    plugins.reload().await.map_err(|e| {
        anyhow::anyhow!(
            "loading plugins from PLUGINS_DIR ({}): {e}",
            config.settings.plugins_dir.display()
        )
    })?;
    check_policy_coverage(&config, &plugins)?;
    let mut tasks = vec![replay_guard.spawn_pruning()];
    let plugin_watcher = if config.settings.plugins_dir.is_dir() {
        let (watcher, task) = crate::plugins::watch::spawn(Arc::clone(&plugins))
            .context("watching PLUGINS_DIR for changes")?;
        tasks.push(task);
        Some(watcher)
    } else {
        tracing::warn!(dir = %config.settings.plugins_dir.display(), "PLUGINS_DIR does not exist: no plugin file is loaded (uploaded plugins still are)");
        None
    };
    let chaos_rules = Arc::new(crate::chaos_rules::ChaosRules::default());
    if config.settings.chaos_on_start {
        crate::chaos_rules::ChaosRules::seed_feature_flag(&store)
            .await
            .context("storing the FF_CHAOS rule")?;
    }
    chaos_rules
        .load(&store)
        .await
        .context("loading the chaos rules")?;
    let credentials = Arc::new(Credentials::new(config.secrets.kek.clone()));
    credentials
        .refresh(&store)
        .await
        .context("loading the active tool credentials")?;
    let feed = crate::change_feed::ChangeFeed::new(
        store.clone(),
        crate::change_feed::Targets {
            mirror: Arc::clone(&mirror),
            policies: Arc::clone(&policies),
            plugins: Arc::clone(&plugins),
            credentials: Arc::clone(&credentials),
            chaos: Arc::clone(&chaos_rules),
        },
        Arc::clone(&metrics),
        feed_start,
    );
    tasks.push(feed.spawn());
    let mut proxy_settings = config.settings.proxy.clone();
    if proxy_settings.audit_jsonl_path.is_none() {
        proxy_settings.audit_jsonl_path =
            Some(config.settings.data_dir.join("audit").join("audit.jsonl"));
    }
    let proxy = ProxyServices::new(
        &proxy_settings,
        credentials,
        redis.clone(),
        store.clone(),
        Arc::clone(&metrics),
    )
    .context("building the proxy pipeline")?;
    tasks.extend(crate::store::wal_checkpoints::spawn(store.clone()));
    let audit_bounds = crate::audit::Bounds {
        retention: (proxy_settings.audit_retention_hours > 0)
            .then(|| Duration::from_secs(u64::from(proxy_settings.audit_retention_hours) * 3600)),
        max_rows: (proxy_settings.audit_max_rows > 0).then_some(proxy_settings.audit_max_rows),
    };
    tasks.push(crate::audit::spawn_pruning(
        store.clone(),
        audit_bounds,
        Arc::clone(&metrics),
    ));
    let auth_failures = crate::auth::failure_limit::AuthFailures::new(
        config.settings.auth_failures_per_minute,
        metrics.auth_failures_limited.clone(),
    );
    let state = AppState::new(Shared {
        config,
        store,
        metrics: Arc::clone(&metrics),
        tokens,
        mirror,
        key_pool,
        replay_guard,
        admin_key,
        metrics_key,
        auth_failures,
        plugins,
        policies,
        chaos_rules,
        proxy,
        redis,
        change_feed: feed,
        started_at: Instant::now(),
        draining: crate::server::Draining::default(),
        readiness_log: Default::default(),
    });
    let router = with_layers(api::routes(state.clone()), metrics);
    Ok(App {
        router,
        state,
        tasks: BackgroundTasks(tasks),
        _plugin_watcher: plugin_watcher,
    })
}

/// Fails closed on the policy configuration: in production, a start where some tool has no
/// policy plugin bound (a missing `PLUGINS_DIR` or `plugins.toml`, or one that binds fewer
/// tools) is refused unless `POLICY_BINDINGS_REQUIRED=off`; development warns.
fn check_policy_coverage(config: &Config, plugins: &PluginRegistry) -> anyhow::Result<()> {
    let settings = &config.settings;
    if !settings.proxy.policies_enabled {
        return Ok(());
    }
    let uncovered = plugins.current().tools_without_policy();
    if uncovered.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = uncovered.iter().map(|t| t.as_str()).collect();
    let problem = format!(
        "no policy plugin is bound to {} (PLUGINS_DIR {}): calls to them would be checked \
         against the token's claims only",
        names.join(", "),
        settings.plugins_dir.display()
    );
    if settings.environment == crate::config::Environment::Production
        && settings.policy_bindings_required
    {
        anyhow::bail!("{problem}; bind a policy to them, or set POLICY_BINDINGS_REQUIRED=off");
    }
    tracing::warn!("{problem}");
    Ok(())
}

/// Connects to Redis. Each command and each reconnection attempt is bounded by
/// `timeout_ms` inside the connection manager too, and reconnection gives up quickly, so
/// that no caller queues behind a long reconnect while Redis is away. A Redis that does not
/// answer at start is not fatal (an instance restarting during an outage must still serve):
/// the gateway starts degraded and connects when Redis is back.
async fn connect_redis(
    url: &str,
    timeout_ms: u32,
) -> anyhow::Result<redis::aio::ConnectionManager> {
    let client = redis::Client::open(url).context("REDIS_URL is not a valid Redis URL")?;
    let timeout = Duration::from_millis(u64::from(timeout_ms));
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeout.max(Duration::from_millis(250))))
        .set_response_timeout(Some(timeout))
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_millis(100));
    let manager = redis::aio::ConnectionManager::new_lazy_with_config(client, config)
        .context("REDIS_URL: cannot set up the Redis connection")?;
    let mut probe = manager.clone();
    let ping = async move { redis::cmd("PING").query_async::<String>(&mut probe).await };
    match tokio::time::timeout(Duration::from_secs(5), ping).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "Redis does not answer at start: serving degraded (limits and counters per instance, no cache) until it does"),
        Err(_) => tracing::error!("Redis did not answer within 5 s at start: serving degraded (limits and counters per instance, no cache) until it does"),
    }
    Ok(manager)
}

/// The layers every request passes, outermost first: secrets hidden from traces, a request
/// id, one log line per response, a JSON 500 for any panic, the body limit, and metrics.
fn with_layers(router: Router, metrics: Arc<Metrics>) -> Router {
    let trace = TraceLayer::new_for_http()
        .make_span_with(|request: &Request<Body>| {
            let request_id = request
                .headers()
                .get(&REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id)
        })
        .on_request(())
        .on_response(|response: &Response<_>, latency: Duration, _span: &Span| {
            if response.extensions().get::<QuietLog>().is_some() {
                return;
            }
            let status = response.status().as_u16();
            let latency_ms = latency.as_secs_f64() * 1000.0;
            let code = response.extensions().get::<ErrorCode>().map(|c| c.0);
            // A proxy call's line names it: correlation id (as in the audit row), agent,
            // tool and action.
            let call = response.extensions().get::<ProxyCallLog>();
            let correlation_id = call.map(|c| c.correlation_id.as_str());
            let agent = call.and_then(|c| c.agent_id.as_deref());
            let tool = call.map(|c| c.tool.as_str());
            let action = call.map(|c| c.action.as_str());
            if status >= 500 {
                tracing::warn!(status, latency_ms, code, correlation_id, agent, tool, action, "response");
            } else {
                tracing::info!(status, latency_ms, code, correlation_id, agent, tool, action, "response");
            }
        });
    // One `Router::layer` call with the whole stack: each call wraps every route in one more
    // boxed service, which the router clones (an allocation) for every request it passes.
    // The metrics middleware stays a route layer (innermost), where the matched path is known.
    router.layer(
        ServiceBuilder::new()
            .layer(SetSensitiveRequestHeadersLayer::new([
                header::AUTHORIZATION,
                HeaderName::from_static("x-agent-signature"),
            ]))
            .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
            .layer(trace)
            .layer(PropagateRequestIdLayer::new(REQUEST_ID))
            .layer(CatchPanicLayer::custom(panic_response))
            .layer(DefaultBodyLimit::max(api::json::MAX_BODY_BYTES))
            .layer(axum::middleware::from_fn_with_state(metrics, track_http)),
    )
}

fn panic_response(_panic: Box<dyn std::any::Any + Send + 'static>) -> Response<Body> {
    tracing::error!("a handler panicked; answered 500");
    let body = r#"{"error":"Internal server error","code":"internal"}"#;
    Response::builder()
        .status(StatusCode::INTERNAL_SERVER_ERROR)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .unwrap_or_default()
}

impl App {
    /// Serves on `listener`, within the configured connection bounds, until `shutdown`
    /// completes; then drains (`/ready` 503 during the grace, requests in flight within the
    /// drain time), writes the audit rows and closes the database.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let App {
            router,
            state,
            tasks,
            _plugin_watcher,
        } = self;
        crate::server::serve(
            listener,
            router,
            &state.config.settings.server,
            state.metrics.server.clone(),
            state.draining.clone(),
            shutdown,
        )
        .await?;
        // In-flight requests have finished; write their audit rows before closing.
        state.proxy.begin_shutdown();
        state.proxy.audit.close().await;
        drop(tasks);
        drop(_plugin_watcher);
        state.store.close().await;
        Ok(())
    }
}
