//! The gateway's configuration: one typed struct, read once at start.
//!
//! Every setting comes from an environment variable (a `.env` file in the working directory
//! is loaded first if present) or the matching command-line flag. Secrets are read from the
//! environment only, never from flags, so that they do not show in the process list.

mod proxy;
mod secrets;

pub use proxy::{AuditSink, ProxySettings, UpstreamMode};
pub use secrets::{generate_secret_lines, SecretError, Secrets};

use clap::{Args, ValueEnum};
use std::net::IpAddr;
use std::path::PathBuf;

/// Whether the gateway runs for a developer or in production.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Environment {
    /// Missing secrets are generated once and kept in `<DATA_DIR>/dev-secrets.env`.
    Development,
    /// Every secret must be set; a missing or malformed one stops the start.
    Production,
}

/// Settings of `gateway serve` and `gateway migrate`, from flags or environment variables.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// TCP port to listen on.
    #[arg(long, env = "PORT", default_value_t = 3000)]
    pub port: u16,

    /// Address to bind.
    #[arg(long, env = "BIND", default_value = "0.0.0.0")]
    pub bind: IpAddr,

    /// Database: `sqlite://PATH` (created if missing) or `postgres://USER@HOST:PORT/DB`.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://data/gateway.db",
        hide_env_values = true
    )]
    pub database_url: String,

    /// Redis for state shared between gateway instances; unset keeps that state in process.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,

    /// Prefix of every Redis key this gateway writes (lets several deployments share a Redis).
    #[arg(long, env = "REDIS_KEY_PREFIX", default_value = "gw:")]
    pub redis_key_prefix: String,

    /// Longest wait for one Redis call, ms. Past it (or while Redis keeps failing) rate
    /// limits and plugin counters fall back to this instance's memory and the cache is
    /// skipped, until Redis answers again.
    #[arg(long, env = "REDIS_TIMEOUT_MS", default_value_t = 50,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub redis_timeout_ms: u32,

    /// Connections in this instance's database pool (PostgreSQL; SQLite uses 4). Keep
    /// instances × this under the server's `max_connections` (100 by default) with room for
    /// one more per instance (the change-feed listener) and for maintenance.
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(1..=1_000))]
    pub database_max_connections: u32,

    /// Longest wait for a database connection, ms. Past it a management call answers 503
    /// `store_unavailable`; proxying goes on from memory.
    #[arg(long, env = "DATABASE_TIMEOUT_MS", default_value_t = 1_500,
          value_parser = clap::value_parser!(u32).range(100..=60_000))]
    pub database_timeout_ms: u32,

    /// `development` generates missing secrets; `production` requires them.
    #[arg(long, env = "GATEWAY_ENV", value_enum, default_value_t = Environment::Development)]
    pub environment: Environment,

    /// Longest token lifetime that generate-token accepts, in minutes.
    #[arg(long, env = "TOKEN_MAX_TTL_MINUTES", default_value_t = 1440,
          value_parser = clap::value_parser!(u32).range(1..=525_600))]
    pub token_max_ttl_minutes: u32,

    /// Failed authentications per minute one client address may make (a wrong admin key,
    /// an invalid token, a bad signature); past them its failures are answered 429 without
    /// an audit row or a log line each (0: no limit). Behind a load balancer every client
    /// shares its address: raise it there.
    #[arg(long, env = "AUTH_FAILURES_PER_MINUTE", default_value_t = 60)]
    pub auth_failures_per_minute: u32,

    /// Pre-generated RSA-2048 agent keys kept ready (0 generates each key on demand).
    #[arg(long, env = "KEY_POOL_SIZE", default_value_t = 8,
          value_parser = clap::value_parser!(u16).range(0..=1024))]
    pub key_pool_size: u16,

    /// Folder for local state: the development secrets file (and SQLite's default database).
    #[arg(long, env = "DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,

    /// `off` lets a production gateway start with tools that no policy plugin covers (their
    /// calls are then bounded by the token's claims alone); on, such a start is refused.
    /// Development only warns.
    #[arg(long = "policy-bindings-required", env = "POLICY_BINDINGS_REQUIRED",
          default_value = "on", value_parser = parse_switch)]
    pub policy_bindings_required: bool,

    /// Folder with `plugins.toml` and the plugin `.wasm` files; watched for changes.
    #[arg(long, env = "PLUGINS_DIR", default_value = "policies-wasm")]
    pub plugins_dir: PathBuf,

    /// Public keys whose plugin signatures are trusted, comma-separated `ed25519:<base64>`
    /// (`gateway keys generate --plugin-signing` makes a pair; `gateway plugin sign` signs).
    #[arg(long, env = "PLUGIN_TRUSTED_KEYS", default_value = "")]
    pub plugin_trusted_keys: String,

    /// What a plugin file or upload without a valid signature from a trusted key meets:
    /// `required` refuses it (the live set stays), `warn` loads it with a warning. Default:
    /// required in production, warn in development.
    #[arg(long, env = "PLUGIN_SIGNATURES", value_enum)]
    pub plugin_signatures: Option<crate::plugins::signing::SignatureMode>,

    /// `on` starts with the original's global chaos rule (20 % of calls: 300–1500 ms, then 503).
    #[arg(long = "ff-chaos", env = "FF_CHAOS", default_value = "off", value_parser = parse_switch)]
    pub chaos_on_start: bool,

    /// Log output: `text` for people, `json` for log pipelines.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Settings of the proxy pipeline.
    #[command(flatten)]
    pub proxy: ProxySettings,

    /// Bounds on client connections.
    #[command(flatten)]
    pub server: crate::server::ServerLimits,
}

/// Parses an on/off switch (`on`, `off`, `true`, `false`, `1`, `0`).
fn parse_switch(value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "1" | "yes" => Ok(true),
        "off" | "false" | "0" | "no" | "" => Ok(false),
        other => Err(format!("expected on or off, got {other:?}")),
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Everything the gateway needs to start: settings plus resolved secrets.
#[derive(Debug, Clone)]
pub struct Config {
    /// Non-secret settings.
    pub settings: Settings,
    /// Key-encryption key, token sealing secret(s) and the admin API key.
    pub secrets: Secrets,
}

impl Config {
    /// Resolves the secrets for `settings` from the environment (and, in development, from
    /// or into the development secrets file).
    pub fn resolve(settings: Settings) -> Result<Self, SecretError> {
        let secrets = Secrets::resolve(settings.environment, &settings.data_dir)?;
        Ok(Self { settings, secrets })
    }

    /// Longest accepted token lifetime.
    pub fn token_max_ttl(&self) -> chrono::Duration {
        chrono::Duration::minutes(i64::from(self.settings.token_max_ttl_minutes))
    }
}
