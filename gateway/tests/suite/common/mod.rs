//! Test harness: starts the real gateway on 127.0.0.1:0 against a fresh SQLite file or a
//! fresh PostgreSQL database, and offers a small HTTP client for it.

#![allow(dead_code)]

mod api_client;
pub mod cluster;

pub use api_client::{ApiClient, ANY_HOUR_ROLE};

use gateway::config::{Config, Environment, LogFormat, ProxySettings, Secrets, Settings};
use gateway::state::AppState;
use reqwest::StatusCode;
use serde_json::Value;
use std::path::PathBuf;
use tokio::sync::oneshot;

/// Admin key of every test gateway.
pub const ADMIN_KEY: &str = "test-admin-key-0123456789abcdef";
/// Token sealing secret of every test gateway (unless a test sets another).
pub const SIGNING_SECRET: &str = "test-signing-secret-0123456789abcdef0123";

/// Where the test gateway keeps its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// PostgreSQL server used by the tests (a fresh database is created per gateway).
pub fn postgres_admin_url() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

/// Redis used by the tests (each test uses its own key prefix).
pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_string())
}

/// A database for one test: a SQLite file in a temporary folder, or a PostgreSQL database
/// dropped when this value is dropped.
pub struct TestDatabase {
    pub url: String,
    dir: tempfile::TempDir,
    postgres_name: Option<String>,
}

impl TestDatabase {
    pub async fn create(backend: Backend) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        match backend {
            Backend::Sqlite => Self {
                url: format!("sqlite://{}", dir.path().join("gateway.db").display()),
                dir,
                postgres_name: None,
            },
            Backend::Postgres => {
                let name = format!("gw_test_{}", uuid::Uuid::new_v4().simple());
                run_postgres_admin(&format!("CREATE DATABASE {name}")).await;
                let admin = postgres_admin_url();
                let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
                Self {
                    url: format!("{base}/{name}"),
                    dir,
                    postgres_name: Some(name),
                }
            }
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

async fn run_postgres_admin(sql: &str) {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(&postgres_admin_url())
        .await
        .expect("PostgreSQL must be running on 127.0.0.1:5432 (see README: make test)");
    sqlx::Executor::execute(&mut conn, sql)
        .await
        .expect("admin statement");
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some(name) = self.postgres_name.take() {
            // Drop runs outside any runtime guarantee: use a short-lived one on its own thread.
            let _ = std::thread::spawn(move || {
                if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    rt.block_on(run_postgres_admin(&format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )));
                }
            })
            .join();
        }
    }
}

/// Settings for a test gateway on `database_url`.
pub fn settings(database_url: &str, data_dir: PathBuf) -> Settings {
    Settings {
        port: 0,
        bind: "127.0.0.1".parse().unwrap(),
        database_url: database_url.to_string(),
        redis_url: None,
        redis_key_prefix: format!("gwtest:{}:", uuid::Uuid::new_v4().simple()),
        environment: Environment::Production,
        token_max_ttl_minutes: 1440,
        auth_failures_per_minute: 60,
        key_pool_size: 1,
        // Most tests and benches bind plugins of their own, or none.
        policy_bindings_required: false,
        plugins_dir: data_dir.join("plugins"),
        plugin_trusted_keys: String::new(),
        // Plugins built by `make plugins` are unsigned: signatures are tested on purpose.
        plugin_signatures: Some(gateway::plugins::signing::SignatureMode::Warn),
        chaos_on_start: false,
        // Generous: a loaded test machine must not send shared limits or the cache to the
        // per-instance fallback (outage tests set their own).
        redis_timeout_ms: 2_000,
        database_max_connections: 16,
        // Generous too: on a loaded machine a management call must not find the pool busy
        // for longer (the outage tests run processes with the default).
        database_timeout_ms: 5_000,
        data_dir,
        log_format: LogFormat::Text,
        proxy: ProxySettings::default(),
        // Tests stop their gateways at once (a grace would only add waiting).
        server: gateway::server::ServerLimits {
            shutdown_grace_ms: 0,
            ..Default::default()
        },
    }
}

/// Secrets of a test gateway, with the given sealing secret.
pub fn secrets(signing_secret: &str) -> Secrets {
    Secrets::from_values(
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        signing_secret,
        None,
        ADMIN_KEY,
        false,
    )
    .expect("valid test secrets")
}

/// The plugin engine the suite's gateways share, so that each plugin is compiled once for
/// the whole run (as the gateways of one process may).
pub fn plugin_engine() -> gateway::plugins::PluginEngine {
    static ENGINE: std::sync::LazyLock<gateway::plugins::PluginEngine> =
        std::sync::LazyLock::new(|| {
            gateway::plugins::PluginEngine::new().expect("a plugin engine")
        });
    ENGINE.clone()
}

/// What the suite's in-process gateways run on: the shared plugin engine and the system clock.
pub fn host() -> gateway::app::Host {
    gateway::app::Host {
        plugin_engine: plugin_engine(),
        clock: gateway::clock::Clock::SYSTEM,
    }
}

/// A running gateway (its HTTP client through `Deref`).
pub struct TestGateway {
    api: ApiClient,
    pub state: AppState,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl TestGateway {
    /// Starts a gateway with `settings` and `secrets`.
    pub async fn start_with(settings: Settings, secrets: Secrets) -> Self {
        let app = gateway::app::build(Config { settings, secrets }, host())
            .await
            .expect("gateway builds");
        let state = app.state.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            app.serve(listener, async {
                let _ = rx.await;
            })
            .await
            .expect("serve");
        });
        Self {
            api: ApiClient::new(base),
            state,
            shutdown: Some(tx),
            server: Some(server),
        }
    }

    /// Asks the gateway to shut down (as SIGTERM does) without waiting for it.
    pub fn request_shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    /// Waits until the gateway has stopped serving (after [`TestGateway::request_shutdown`]).
    pub async fn stopped(&mut self) {
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }

    /// Stops serving and waits for the drain to finish.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }
}

impl std::ops::Deref for TestGateway {
    type Target = ApiClient;
    fn deref(&self) -> &ApiClient {
        &self.api
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// The value of the metric line `name` (with its labels, if any) in a Prometheus text; 0
/// when absent.
pub fn metric_value(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// Status and JSON body of a response (`Value::Null` for an empty or non-JSON body).
pub async fn read(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A gateway with its own fresh database.
pub struct Fixture {
    pub gateway: TestGateway,
    pub database: TestDatabase,
}

/// Sends `body` to `/api/proxy-request`; returns the status, headers and JSON body.
pub async fn proxy(gw: &ApiClient, body: Value) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let response = gw
        .client
        .post(gw.url("/api/proxy-request"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let headers = response.headers().clone();
    let (status, body) = read(response).await;
    (status, headers, body)
}

/// The bytes of the test fixture `name` (`target/plugin-fixtures/NAME.wasm`, built by
/// `make plugins`).
pub fn fixture_bytes(name: &str) -> Vec<u8> {
    wasm_bytes("target/plugin-fixtures", name)
}

/// The `.wasm` file `name` of folder `dir` (relative to the repository).
fn wasm_bytes(dir: &str, name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(dir)
        .join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (run `make plugins`)", path.display()))
}

/// The `.wasm` file `name` of folder `dir` (relative to the repository), in base64, as the
/// upload endpoint takes it.
pub fn wasm_base64(dir: &str, name: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(wasm_bytes(dir, name))
}

/// The live policy plugins' decision on a `serpapi.search` of a `scraper` (a dry run).
pub async fn plugin_decision(gw: &ApiClient) -> Value {
    let (status, body) = gw
        .admin(
            reqwest::Method::POST,
            "/api/admin/plugins/evaluate",
            Some(serde_json::json!({"agent_role": "scraper", "tool": "serpapi", "action": "search", "params": {}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["policy"].clone()
}

/// Copies the default plugins (built by `make plugins`) and their bindings into `dir`.
pub fn install_default_plugins(dir: &std::path::Path) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../policies-wasm");
    std::fs::create_dir_all(dir).unwrap();
    for file in ["plugins.toml", "spec-policy.wasm", "chaos.wasm"] {
        std::fs::copy(root.join(file), dir.join(file))
            .unwrap_or_else(|e| panic!("{file}: {e} (run `make plugins`)"));
    }
}

impl Fixture {
    /// A gateway with the default plugins (spec-policy and chaos) loaded.
    pub async fn with_default_plugins(backend: Backend) -> Self {
        Self::with_default_plugins_and(backend, |_| {}).await
    }

    /// Same, with settings adjusted by `tweak`.
    pub async fn with_default_plugins_and(
        backend: Backend,
        tweak: impl FnOnce(&mut Settings),
    ) -> Self {
        let database = TestDatabase::create(backend).await;
        let mut settings = settings(&database.url, database.data_dir());
        tweak(&mut settings);
        install_default_plugins(&settings.plugins_dir);
        let gateway = TestGateway::start_with(settings, secrets(SIGNING_SECRET)).await;
        Self { gateway, database }
    }

    pub async fn start(backend: Backend) -> Self {
        let database = TestDatabase::create(backend).await;
        let gateway = TestGateway::start_with(
            settings(&database.url, database.data_dir()),
            secrets(SIGNING_SECRET),
        )
        .await;
        Self { gateway, database }
    }
}

/// Declares one `#[tokio::test]` on SQLite (a module `sqlite`) for each `async fn()`
/// scenario, for areas whose behaviour does not depend on the database.
#[macro_export]
macro_rules! on_sqlite {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario().await;
                }
            )*
        }
    };
}

/// As [`on_sqlite!`], each scenario bounded by `$bound` (a `Duration`): a scenario that
/// should end by itself fails instead of hanging the suite.
#[macro_export]
macro_rules! on_sqlite_within {
    ($bound:expr; $($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    tokio::time::timeout($bound, super::$scenario())
                        .await
                        .expect("the scenario ends by itself");
                }
            )*
        }
    };
}

/// Declares one `#[tokio::test]` (a module `postgres`) for each `async fn()` scenario that
/// needs PostgreSQL (several processes on one database), each bounded by `$bound`.
#[macro_export]
macro_rules! on_postgres_within {
    ($bound:expr; $($scenario:ident),* $(,)?) => {
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    tokio::time::timeout($bound, super::$scenario())
                        .await
                        .expect("the scenario ends by itself");
                }
            )*
        }
    };
}

/// Declares one `#[tokio::test]` per backend for an `async fn(Backend)` scenario.
#[macro_export]
macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario($crate::common::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario($crate::common::Backend::Postgres).await;
                }
            )*
        }
    };
}
