//! Settings of the proxy pipeline: upstream mode and addresses, limits, resilience and cache.

use clap::{Args, ValueEnum};

/// Whether tools answer with canned payloads or call their real upstreams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum UpstreamMode {
    /// The original gateway's deterministic mock payloads; no network.
    Mock,
    /// Real upstream calls through one pooled HTTP client.
    Live,
}

/// Settings of `/api/proxy-request`, from flags or environment variables.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct ProxySettings {
    /// `mock` answers with canned payloads; `live` calls the real upstreams.
    #[arg(long, env = "UPSTREAM_MODE", value_enum, default_value_t = UpstreamMode::Mock)]
    pub upstream_mode: UpstreamMode,

    /// Added latency of every mock call, in ms (0 for none).
    #[arg(long, env = "MOCK_LATENCY_MS", default_value_t = 0,
          value_parser = clap::value_parser!(u32).range(0..=60_000))]
    pub mock_latency_ms: u32,

    /// Base URL of the search API (live mode).
    #[arg(long, env = "SERPAPI_BASE_URL", default_value = "https://serpapi.com")]
    pub serpapi_base_url: String,

    /// Base URL of the LLM API (live mode).
    #[arg(
        long,
        env = "OPENAI_BASE_URL",
        default_value = "https://api.openai.com"
    )]
    pub openai_base_url: String,

    /// Base URL of the e-mail API (live mode).
    #[arg(
        long,
        env = "GMAIL_BASE_URL",
        default_value = "https://gmail.googleapis.com"
    )]
    pub gmail_base_url: String,

    /// `on` lets `http_fetch` reach loopback and private addresses (tests only).
    #[arg(long = "http-fetch-allow-private", env = "HTTP_FETCH_ALLOW_PRIVATE",
          default_value = "off", value_parser = super::parse_switch)]
    pub http_fetch_allow_private: bool,

    /// Largest `http_fetch` response body kept, in bytes.
    #[arg(long, env = "HTTP_FETCH_MAX_BYTES", default_value_t = 1 << 20,
          value_parser = clap::value_parser!(u32).range(1..=(64 << 20)))]
    pub http_fetch_max_bytes: u32,

    /// Requests per minute per agent (0: no limit).
    #[arg(long, env = "RATE_LIMIT_PER_AGENT", default_value_t = 600)]
    pub rate_limit_per_agent: u32,

    /// Requests per minute per agent and tool (0: no limit).
    #[arg(long, env = "RATE_LIMIT_PER_AGENT_TOOL", default_value_t = 300)]
    pub rate_limit_per_agent_tool: u32,

    /// Overall deadline of one proxy request (retries and queueing included), in ms.
    #[arg(long, env = "REQUEST_DEADLINE_MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u32).range(10..=300_000))]
    pub request_deadline_ms: u32,

    /// Upstream failures in a row that open a tool's breaker.
    #[arg(long, env = "CB_CONSECUTIVE_FAILURES", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub breaker_consecutive_failures: u32,

    /// Failure ratio (0–1) over the rolling window that opens a tool's breaker.
    #[arg(long, env = "CB_FAILURE_RATIO", default_value_t = 0.5)]
    pub breaker_failure_ratio: f64,

    /// Calls the rolling window must hold before the failure ratio counts.
    #[arg(long, env = "CB_MIN_CALLS", default_value_t = 20)]
    pub breaker_min_calls: u32,

    /// Length of the breaker's rolling window, in ms.
    #[arg(long, env = "CB_WINDOW_MS", default_value_t = 60_000,
          value_parser = clap::value_parser!(u32).range(100..))]
    pub breaker_window_ms: u32,

    /// How long an open breaker fast-fails before it admits probes, in ms.
    #[arg(long, env = "CB_OPEN_MS", default_value_t = 30_000)]
    pub breaker_open_ms: u32,

    /// Probes a half-open breaker admits at once.
    #[arg(long, env = "CB_HALF_OPEN_PROBES", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub breaker_half_open_probes: u32,

    /// Upstream calls in flight per tool.
    #[arg(long, env = "BULKHEAD_CONCURRENCY", default_value_t = 64,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub bulkhead_concurrency: u32,

    /// Calls that may wait for a free slot per tool (beyond them: 503).
    #[arg(long, env = "BULKHEAD_QUEUE", default_value_t = 256)]
    pub bulkhead_queue: u32,

    /// Longest wait for a free slot, in ms.
    #[arg(long, env = "BULKHEAD_QUEUE_TIMEOUT_MS", default_value_t = 1_000)]
    pub bulkhead_queue_timeout_ms: u32,

    /// Upstream calls in flight per agent and tool (0: no limit); past them an agent's call
    /// is refused at once (429), so that one agent cannot take a tool's every slot.
    #[arg(long, env = "BULKHEAD_PER_AGENT", default_value_t = 16)]
    pub bulkhead_per_agent: u32,

    /// Retries after the first attempt (idempotent actions only).
    #[arg(long, env = "RETRY_MAX_RETRIES", default_value_t = 2,
          value_parser = clap::value_parser!(u32).range(0..=10))]
    pub retry_max_retries: u32,

    /// First backoff, in ms (doubled per retry, with ±10 % jitter).
    #[arg(long, env = "RETRY_BASE_DELAY_MS", default_value_t = 250)]
    pub retry_base_delay_ms: u32,

    /// Longest backoff, in ms.
    #[arg(long, env = "RETRY_MAX_DELAY_MS", default_value_t = 1_000)]
    pub retry_max_delay_ms: u32,

    /// `off` disables the response cache.
    #[arg(long = "cache", env = "CACHE_ENABLED", default_value = "on", value_parser = super::parse_switch)]
    pub cache_enabled: bool,

    /// Bytes of answers the in-process response cache holds (each answer weighs what it
    /// holds in memory; one over an eighth of this is not cached).
    #[arg(long, env = "CACHE_MAX_BYTES", default_value_t = 64 << 20,
          value_parser = clap::value_parser!(u64).range(1..=(1 << 40)))]
    pub cache_max_bytes: u64,

    /// Lifetime of a cached search result, in ms.
    #[arg(long, env = "CACHE_TTL_SERPAPI_MS", default_value_t = 60_000)]
    pub cache_ttl_serpapi_ms: u32,

    /// Lifetime of a cached web fetch, in ms.
    #[arg(long, env = "CACHE_TTL_HTTP_FETCH_MS", default_value_t = 30_000)]
    pub cache_ttl_http_fetch_ms: u32,

    /// `off` skips the policy plugins (for comparison runs only: nothing is then enforced
    /// beyond the token's claims).
    #[arg(long = "ff-policy", env = "FF_POLICY", default_value = "on", value_parser = super::parse_switch)]
    pub policies_enabled: bool,

    /// Audit rows that may wait to be written; beyond that, requests wait for room (see
    /// `AUDIT_MAX_WAIT_MS`).
    #[arg(long, env = "AUDIT_QUEUE_CAPACITY", default_value_t = 65_536,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub audit_queue_capacity: u32,

    /// Longest a request waits for room in a full audit queue (the database stalling)
    /// before its row is dropped and counted; 0 drops at once.
    #[arg(long, env = "AUDIT_MAX_WAIT_MS", default_value_t = 5_000)]
    pub audit_max_wait_ms: u32,

    /// Audit rows held in memory while the database is unavailable, written when it
    /// returns (~0.5 KiB each: the default holds 60 s at 2,000 rows a second in ~128 MiB).
    /// Past it, rows are dropped and counted in `gateway_audit_dropped_total`.
    #[arg(long, env = "AUDIT_OUTAGE_BUFFER_ROWS", default_value_t = 262_144,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub audit_outage_buffer_rows: u32,

    /// Hours request and policy log rows are kept (0: forever). Older rows are deleted in
    /// the background, a bounded batch at a time.
    #[arg(long, env = "AUDIT_RETENTION_HOURS", default_value_t = 168)]
    pub audit_retention_hours: u32,

    /// Most request rows the audit log keeps (0: no bound but the retention). Past it the
    /// oldest go, with the policy rows older than the oldest kept, checked every 10 s. A
    /// row is ~180 bytes on SQLite and ~290 on PostgreSQL, indexes included: 10,000,000
    /// rows is ~1.8 GB on SQLite.
    #[arg(long, env = "AUDIT_MAX_ROWS", default_value_t = 0)]
    pub audit_max_rows: u64,

    /// Share of allowed, successful calls whose audit row is written (0.1: one in ten, each
    /// row recording the rate so counts can be scaled back). Refused, failed and denied
    /// calls and chaos faults are always written. 1: every call.
    #[arg(long, env = "AUDIT_SAMPLE_ALLOWED", default_value = "1",
          value_parser = crate::audit::sampling::parse_rate)]
    pub audit_sample_allowed: f64,

    /// Where audit rows go: `database` (what the log endpoints read), `jsonl` (a rotating
    /// JSON-lines file for log pipelines; the endpoints then list nothing), or `both`.
    #[arg(long, env = "AUDIT_SINK", value_enum, default_value_t = AuditSink::Database)]
    pub audit_sink: AuditSink,

    /// The JSON-lines file (default: `<DATA_DIR>/audit/audit.jsonl`).
    #[arg(long, env = "AUDIT_JSONL_PATH")]
    pub audit_jsonl_path: Option<std::path::PathBuf>,

    /// Size past which the JSON-lines file is rotated (renamed `….1`).
    #[arg(long, env = "AUDIT_JSONL_MAX_BYTES", default_value_t = 100 << 20,
          value_parser = clap::value_parser!(u64).range(4096..))]
    pub audit_jsonl_max_bytes: u64,

    /// Rotated JSON-lines files kept (the oldest goes past it).
    #[arg(long, env = "AUDIT_JSONL_FILES", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub audit_jsonl_files: u32,
}

/// Where audit rows go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuditSink {
    /// The database only.
    Database,
    /// The JSON-lines file only.
    Jsonl,
    /// Both.
    Both,
}

impl Default for ProxySettings {
    fn default() -> Self {
        Self {
            upstream_mode: UpstreamMode::Mock,
            mock_latency_ms: 0,
            serpapi_base_url: "https://serpapi.com".into(),
            openai_base_url: "https://api.openai.com".into(),
            gmail_base_url: "https://gmail.googleapis.com".into(),
            http_fetch_allow_private: false,
            http_fetch_max_bytes: 1 << 20,
            rate_limit_per_agent: 600,
            rate_limit_per_agent_tool: 300,
            request_deadline_ms: 10_000,
            breaker_consecutive_failures: 5,
            breaker_failure_ratio: 0.5,
            breaker_min_calls: 20,
            breaker_window_ms: 60_000,
            breaker_open_ms: 30_000,
            breaker_half_open_probes: 1,
            bulkhead_concurrency: 64,
            bulkhead_queue: 256,
            bulkhead_queue_timeout_ms: 1_000,
            bulkhead_per_agent: 16,
            retry_max_retries: 2,
            retry_base_delay_ms: 250,
            retry_max_delay_ms: 1_000,
            cache_enabled: true,
            cache_max_bytes: 64 << 20,
            cache_ttl_serpapi_ms: 60_000,
            cache_ttl_http_fetch_ms: 30_000,
            policies_enabled: true,
            audit_queue_capacity: 65_536,
            audit_max_wait_ms: 5_000,
            audit_outage_buffer_rows: 262_144,
            audit_retention_hours: 168,
            audit_max_rows: 0,
            audit_sample_allowed: 1.0,
            audit_sink: AuditSink::Database,
            audit_jsonl_path: None,
            audit_jsonl_max_bytes: 100 << 20,
            audit_jsonl_files: 10,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        proxy: ProxySettings,
    }

    #[test]
    fn default_matches_the_command_line_defaults() {
        let parsed = Wrapper::try_parse_from(["gateway"]).unwrap().proxy;
        // Environment variables of the machine running the test could change the parse.
        if std::env::vars().all(|(k, _)| {
            !k.starts_with("CB_")
                && !k.starts_with("RETRY_")
                && !k.starts_with("CACHE_")
                && !k.starts_with("RATE_LIMIT")
                && !k.starts_with("BULKHEAD")
                && !k.ends_with("_BASE_URL")
        }) {
            assert_eq!(parsed, ProxySettings::default());
        }
    }
}
