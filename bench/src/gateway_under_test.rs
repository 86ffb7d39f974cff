//! The gateway the benchmarks start in their own process: mock upstreams, the default plugins
//! of `policies-wasm/`, a temporary SQLite database (or the PostgreSQL database and Redis
//! given), on 127.0.0.1 with an ephemeral port,
//! served by a runtime of its own so that the load generator does not share its threads.

use anyhow::Context;
use gateway::config::{Config, Environment, LogFormat, ProxySettings, Secrets, Settings};
use gateway::server::ServerLimits;
use gateway::state::AppState;
use std::path::{Path, PathBuf};

/// Admin key of the gateways the bench starts.
pub const ADMIN_KEY: &str = "bench-admin-key-bench-admin-key-0001";

/// How to start the gateway.
#[derive(Debug, Clone)]
pub struct Options {
    /// Folder with `plugins.toml` and the plugins.
    pub plugins_dir: PathBuf,
    /// Policy plugins on (`FF_POLICY`).
    pub policies: bool,
    /// Requests per minute per agent (0 = off).
    pub rate_limit_per_agent: u32,
    /// Requests per minute per agent and tool (0 = off).
    pub rate_limit_per_agent_tool: u32,
    /// How long an open breaker fast-fails (default: the gateway's).
    pub breaker_open: Option<std::time::Duration>,
    /// The breaker's rolling window (default: the gateway's).
    pub breaker_window: Option<std::time::Duration>,
    /// Development allows the chaos admin API; production refuses it.
    pub environment: Environment,
    /// Database URL; `None`: a SQLite file in the run's temporary folder.
    pub database_url: Option<String>,
    /// Redis for rate limits, quota counters and the response cache; `None`: in-process.
    pub redis_url: Option<String>,
    /// Last changes to the settings (`None`: the benchmarks' own, above).
    pub adjust: Option<fn(&mut Settings)>,
}

impl Options {
    /// The throughput benchmarks' gateway: one agent sends everything, so its rate limits are
    /// lifted out of the way (still checked on every request); the gateway's breaker timings;
    /// production mode.
    pub fn throughput(plugins_dir: PathBuf, policies: bool) -> Self {
        Self {
            plugins_dir,
            policies,
            rate_limit_per_agent: u32::MAX,
            rate_limit_per_agent_tool: u32::MAX,
            breaker_open: None,
            breaker_window: None,
            environment: Environment::Production,
            database_url: None,
            redis_url: None,
            adjust: None,
        }
    }
}

/// A gateway running on its own runtime, with a temporary data folder; when dropped it
/// stops and its folder is removed.
pub struct RunningGateway {
    /// Base URL (`http://127.0.0.1:port`).
    pub url: String,
    /// Its state (policy sync, counters).
    pub state: AppState,
    runtime: Option<tokio::runtime::Runtime>,
    data_dir: PathBuf,
}

impl Drop for RunningGateway {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

/// Starts a gateway with its data in a new temporary folder named after `what`, on a new
/// runtime of `threads` workers.
pub fn start(options: &Options, what: &str, threads: usize) -> anyhow::Result<RunningGateway> {
    let data_dir = temp_data_dir(what)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .thread_name("gateway")
        .enable_all()
        .build()?;
    let (url, state) = runtime.block_on(serve(options, &data_dir))?;
    Ok(RunningGateway {
        url,
        state,
        runtime: Some(runtime),
        data_dir,
    })
}

/// Starts a gateway on the current runtime; returns its base URL and state.
pub async fn serve(options: &Options, data_dir: &Path) -> anyhow::Result<(String, AppState)> {
    let app = build(options, data_dir).await?;
    let state = app.state.clone();
    let listener = gateway::server::listen("127.0.0.1:0".parse()?)?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(app.serve(listener, std::future::pending()));
    Ok((url, state))
}

/// Builds the gateway (router and state) without serving it.
pub async fn build(options: &Options, data_dir: &Path) -> anyhow::Result<gateway::app::App> {
    std::fs::create_dir_all(data_dir)?;
    let defaults = ProxySettings::default();
    let ms = |d: Option<std::time::Duration>, default: u32| {
        d.map_or(default, |d| (d.as_millis() as u32).max(100))
    };
    let settings = Settings {
        port: 0,
        bind: "127.0.0.1".parse()?,
        database_url: options
            .database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("bench.db").display())),
        redis_url: options.redis_url.clone(),
        // A prefix of its own, so that runs sharing a Redis never share counters.
        redis_key_prefix: format!("bench:{}:", uuid::Uuid::new_v4().simple()),
        environment: options.environment,
        token_max_ttl_minutes: 1440,
        auth_failures_per_minute: 60,
        key_pool_size: 1,
        data_dir: data_dir.to_path_buf(),
        // Most tests and benches bind plugins of their own, or none.
        policy_bindings_required: false,
        plugins_dir: options.plugins_dir.clone(),
        plugin_trusted_keys: String::new(),
        // Plugins built by `make plugins` are unsigned: signatures are tested on purpose.
        plugin_signatures: Some(gateway::plugins::signing::SignatureMode::Warn),
        chaos_on_start: false,
        redis_timeout_ms: 50,
        database_max_connections: 16,
        database_timeout_ms: 1_500,
        log_format: LogFormat::Text,
        proxy: ProxySettings {
            rate_limit_per_agent: options.rate_limit_per_agent,
            rate_limit_per_agent_tool: options.rate_limit_per_agent_tool,
            policies_enabled: options.policies,
            breaker_open_ms: ms(options.breaker_open, defaults.breaker_open_ms),
            breaker_window_ms: ms(options.breaker_window, defaults.breaker_window_ms),
            // A bench agent sends a large part of the load (chaos delays keep many of its
            // calls in flight): no per-agent share, as no rate limit.
            bulkhead_per_agent: 0,
            ..defaults
        },
        // Every load generator connects from 127.0.0.1: one client to the gateway.
        server: ServerLimits {
            max_connections_per_client: ServerLimits::default().max_connections,
            shutdown_grace_ms: 0,
            ..ServerLimits::default()
        },
    };
    let mut settings = settings;
    if let Some(adjust) = options.adjust {
        adjust(&mut settings);
    }
    let secrets = Secrets::from_values(
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        "bench-signing-secret-bench-signing-secret",
        None,
        ADMIN_KEY,
        false,
    )?;
    gateway::app::build(Config { settings, secrets }, gateway::app::Host::new()?)
        .await
        .context("starting the gateway (did `make plugins` run?)")
}

/// A fresh folder under the system's temporary directory.
pub fn temp_data_dir(what: &str) -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "gateway-bench-{what}-{}-{}",
        std::process::id(),
        chrono::Utc::now().timestamp_millis()
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Starts the baseline: a bare axum handler that parses a JSON body and answers a small JSON
/// object, on the current runtime. Returns the URL to POST to.
pub async fn serve_bare() -> anyhow::Result<String> {
    let bare = axum::Router::new().route(
        "/json",
        axum::routing::post(|body: axum::Json<serde_json::Value>| async move {
            axum::Json(serde_json::json!({ "success": true, "echo": body.0["tool"] }))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/json", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, bare).await });
    Ok(url)
}

/// One tool call the benchmarks send: the agent created for it may call exactly this.
#[derive(Debug, Clone, Copy)]
pub struct BenchCall {
    /// Tool name (`openai`, `serpapi`).
    pub tool: &'static str,
    /// Action name (`chat`, `search`).
    pub action: &'static str,
    /// Its one parameter: name and text.
    pub param: (&'static str, &'static str),
}

/// `openai.chat`: not cacheable, so every request takes the whole pipeline (token, limits,
/// policy plugin, tool, response filter, audit).
pub const OPENAI_CHAT: BenchCall = BenchCall {
    tool: "openai",
    action: "chat",
    param: ("input", "Summarise the quarterly report in two lines."),
};

/// `serpapi.search`: cacheable, so a repeated query is answered from the cache; the
/// benchmarks that send it make each query new (see [`crate::wrk`]).
pub const SERPAPI_SEARCH: BenchCall = BenchCall {
    tool: "serpapi",
    action: "search",
    param: ("q", "rust gateway audit"),
};

/// Creates an agent allowed to call `openai.chat` and returns the body of one such proxy
/// request (see [`allowed_call_body`]).
pub async fn openai_chat_body(client: &reqwest::Client, base: &str) -> anyhow::Result<String> {
    allowed_call_body(client, base, OPENAI_CHAT).await
}

/// Creates an agent allowed to make `call` (a policy of its own scoped to it and a read
/// token for its tool) and returns the body of one such proxy request. Waits until the
/// gateway accepts it.
pub async fn allowed_call_body(
    client: &reqwest::Client,
    base: &str,
    call: BenchCall,
) -> anyhow::Result<String> {
    use crate::load::scenario::AgentSpec;
    use anyhow::bail;
    use serde_json::json;
    let spec = AgentSpec {
        key: "bench".into(),
        name: "bench".into(),
        role: "bench".into(),
        tools: vec![call.tool.into()],
        permissions: vec!["read".into()],
        ttl_minutes: 240,
        scopes: vec![format!("{}:{}", call.tool, call.action)],
    };
    let run_id = format!("{:x}", chrono::Utc::now().timestamp_millis());
    let agent = crate::load::setup::create(client, base, ADMIN_KEY, &spec, &run_id, 0).await?;
    let token = agent.token;
    let (name, text) = call.param;
    let body = json!({"agent_token": token, "tool": call.tool, "action": call.action,
                      "params": {name: text}})
    .to_string();
    // The policy reaches the plugins with the next refresh (every second).
    let mut last = String::new();
    for _ in 0..50 {
        let check = client
            .post(format!("{base}/api/proxy-request"))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await?;
        if check.status().is_success() {
            return Ok(body);
        }
        last = check.text().await?;
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    bail!("the gateway refused the bench request: {last}")
}
