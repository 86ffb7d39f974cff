//! `bench proxy`: proxy-request throughput and latency in mock mode, next to a bare axum
//! JSON handler under the same wrk load, in one run, rounds interleaved so that the ratio
//! holds on a noisy machine.
//!
//! Next to throughput, each run reports the process's CPU time per request (user + system,
//! from `getrusage`, divided by wrk's request count): unlike req/s it does not depend on how
//! wrk and the server happen to share the cores, so it compares runs on a noisy machine.
//!
//! The gateway runs in this process with its default plugins (`policies-wasm/`) on a
//! temporary SQLite database; the load is `openai.chat` (not cacheable, so every request
//! takes the whole pipeline: token, limits, policy plugin, tool, response filter, audit).

use crate::wrk::{self, WrkResult};
use anyhow::bail;
use bench::gateway_under_test::{self, Options, ADMIN_KEY};
use bench::temp_postgres::TempPostgres;
use serde_json::Value;
use std::path::PathBuf;

/// Options of `bench proxy`.
#[derive(clap::Args)]
pub struct Args {
    /// Seconds of load per round and target.
    #[arg(long, default_value_t = 20)]
    duration: u32,
    /// Rounds (each runs the bare handler, then the gateway).
    #[arg(long, default_value_t = 2)]
    rounds: u32,
    /// wrk threads.
    #[arg(long, default_value_t = 2)]
    threads: u32,
    /// wrk connections.
    #[arg(long, default_value_t = 50)]
    connections: u32,
    /// Run the gateway with its policy plugins off (`FF_POLICY=off`), to see their share.
    #[arg(long)]
    no_policies: bool,
    /// Folder with `plugins.toml` and the default plugins (built by `make plugins`).
    #[arg(long, default_value = "policies-wasm")]
    plugins_dir: PathBuf,
    /// Log as `gateway serve` does (one line per response at the default level, to stderr;
    /// `RUST_LOG` applies), to measure what logging costs. Off by default: no subscriber.
    #[arg(long, value_enum)]
    gateway_logs: Option<gateway::config::LogFormat>,
    /// Run the gateway on PostgreSQL, as in production: a fresh database is created on the
    /// server of this URL for the run and dropped at its end (e.g.
    /// `postgres://postgres@127.0.0.1:5432/test`). The server's CPU time is not in the
    /// "CPU µs per request" column (another process): compare req/s.
    #[arg(long, value_name = "URL")]
    postgres: Option<String>,
    /// Share rate limits, quota counters and the response cache through this Redis, as
    /// several gateway instances do (e.g. `redis://127.0.0.1:6379`; keys under a prefix of
    /// the run's own). Redis's CPU time is not in the "CPU µs per request" column.
    #[arg(long, value_name = "URL")]
    redis: Option<String>,
    /// Give the default policy a shadow candidate judging every call (100 %): a fixture of
    /// `--fixtures-dir` by name (`loop-forever`, `always-trap`, `grow-memory`,
    /// `sleep-forever`). The baseline is then the same gateway without a shadow, in place of
    /// the bare handler, and the ratio is what the shadow leaves of live throughput.
    #[arg(long, value_name = "FIXTURE")]
    shadow: Option<String>,
    /// Folder of the built test fixtures, for `--shadow`.
    #[arg(long, default_value = "target/plugin-fixtures")]
    fixtures_dir: PathBuf,
}

/// Runs the comparison and prints the table.
pub fn run(args: Args) -> anyhow::Result<()> {
    wrk::ensure_installed()?;
    if let Some(format) = args.gateway_logs {
        gateway::telemetry::init(format);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let data_dir = gateway_under_test::temp_data_dir("proxy")?;
    let postgres = match &args.postgres {
        Some(admin_url) => Some(runtime.block_on(TempPostgres::create(admin_url))?),
        None => None,
    };
    let database_url = postgres.as_ref().map(|db| db.url.clone());
    let (gateway_url, bare_url, body) =
        runtime.block_on(start_targets(&args, &data_dir, database_url.clone()))?;
    let script = wrk::post_script(&data_dir, &body)?;
    // With a shadow, the gateway above is the one with it and the baseline another without.
    let (bare_url, bare_script, bare_label) = match &args.shadow {
        None => (
            bare_url,
            script.clone(),
            "bare axum JSON handler".to_string(),
        ),
        Some(_) => {
            let plain_dir = gateway_under_test::temp_data_dir("proxy-plain")?;
            let options = Options {
                database_url: None,
                redis_url: args.redis.clone(),
                ..Options::throughput(args.plugins_dir.clone(), !args.no_policies)
            };
            let (url, body) = runtime.block_on(async {
                let (url, _state) = gateway_under_test::serve(&options, &plain_dir).await?;
                let body =
                    gateway_under_test::openai_chat_body(&reqwest::Client::new(), &url).await?;
                anyhow::Ok((url, body))
            })?;
            let script = wrk::post_script(&plain_dir, &body)?;
            (
                format!("{url}/api/proxy-request"),
                script,
                "gateway without a shadow".to_string(),
            )
        }
    };
    let mut bare = Vec::new();
    let mut gateway = Vec::new();
    for round in 1..=args.rounds {
        let load = wrk::Load {
            threads: args.threads,
            connections: args.connections,
            seconds: args.duration,
        };
        // Alternate which target goes first, so that neither always meets a warmer machine.
        let run_bare = || load.run(&bare_script, &bare_url);
        let run_gateway = || load.run(&script, &format!("{gateway_url}/api/proxy-request"));
        let (b, g) = if round % 2 == 1 {
            let b = run_bare()?;
            (b, run_gateway()?)
        } else {
            let g = run_gateway()?;
            (run_bare()?, g)
        };
        let (base, target) = if args.shadow.is_some() {
            ("without shadow", "with shadow")
        } else {
            ("bare", "gateway")
        };
        println!(
            "round {round}: {base} {:>9.0} req/s p50 {:.2} ms p99 {:.2} ms cpu {:.1} µs/req | {target} {:>9.0} req/s p50 {:.2} ms p99 {:.2} ms cpu {:.1} µs/req (non-2xx {})",
            b.requests_per_sec, b.p50_ms, b.p99_ms, b.cpu_us_per_request,
            g.requests_per_sec, g.p50_ms, g.p99_ms, g.cpu_us_per_request, g.non_2xx
        );
        bare.push(b);
        gateway.push(g);
    }
    let median = |runs: &[WrkResult], f: fn(&WrkResult) -> f64| {
        let mut v: Vec<f64> = runs.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (b_rps, g_rps) = (
        median(&bare, |r| r.requests_per_sec),
        median(&gateway, |r| r.requests_per_sec),
    );
    println!();
    println!(
        "| target | req/s (median of {}) | p50 ms | p99 ms | CPU µs per request |",
        args.rounds
    );
    println!("|---|---|---|---|---|");
    let (b_cpu, g_cpu) = (
        median(&bare, |r| r.cpu_us_per_request),
        median(&gateway, |r| r.cpu_us_per_request),
    );
    println!(
        "| {bare_label} | {b_rps:.0} | {:.2} | {:.2} | {b_cpu:.1} |",
        median(&bare, |r| r.p50_ms),
        median(&bare, |r| r.p99_ms)
    );
    let shadowed = match &args.shadow {
        Some(fixture) => format!(", shadow {fixture} at 100 %"),
        None => String::new(),
    };
    println!(
        "| gateway proxy-request (openai.chat, mock, {}{shadowed}) | {g_rps:.0} | {:.2} | {:.2} | {g_cpu:.1} |",
        storage_label(&args),
        median(&gateway, |r| r.p50_ms),
        median(&gateway, |r| r.p99_ms)
    );
    let pair = if args.shadow.is_some() {
        "with shadow / without"
    } else {
        "gateway / bare"
    };
    println!("\n{pair} throughput: {:.2}", g_rps / b_rps);
    println!("{pair} CPU per request: {:.2}", g_cpu / b_cpu);
    if gateway.iter().any(|g| g.non_2xx > 0) {
        let codes = runtime.block_on(failure_codes(&gateway_url))?;
        bail!("the gateway answered non-2xx responses under load: {codes}");
    }
    Ok(())
}

/// Where the gateway under test keeps its state, for the report.
fn storage_label(args: &Args) -> &'static str {
    match (&args.postgres, &args.redis) {
        (None, None) => "SQLite",
        (None, Some(_)) => "SQLite + Redis",
        (Some(_), None) => "PostgreSQL",
        (Some(_), Some(_)) => "PostgreSQL + Redis",
    }
}

/// The error codes of the newest failed requests, from the gateway's audit log.
pub(crate) async fn failure_codes(gateway_url: &str) -> anyhow::Result<String> {
    let logs: Value = reqwest::Client::new()
        .get(format!("{gateway_url}/api/proxy/logs?limit=1000"))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await?
        .json()
        .await?;
    let mut counts = std::collections::BTreeMap::<String, u64>::new();
    for row in logs["logs"].as_array().into_iter().flatten() {
        if row["statusCode"] != 200 {
            *counts
                .entry(format!("{} {}", row["statusCode"], row["errorCode"]))
                .or_default() += 1;
        }
    }
    Ok(format!("{counts:?} (among the newest 1000 requests)"))
}

/// Starts the gateway and the bare handler; creates an agent, its policy and a token.
/// Returns the gateway's base URL, the bare handler's URL and the request body.
async fn start_targets(
    args: &Args,
    data_dir: &std::path::Path,
    database_url: Option<String>,
) -> anyhow::Result<(String, String, String)> {
    let plugins_dir = match &args.shadow {
        Some(fixture) => with_shadow(&args.plugins_dir, &args.fixtures_dir, fixture, data_dir)?,
        None => args.plugins_dir.clone(),
    };
    let options = Options {
        database_url,
        redis_url: args.redis.clone(),
        ..Options::throughput(plugins_dir, !args.no_policies)
    };
    let (gateway_url, _state) = gateway_under_test::serve(&options, data_dir).await?;
    let bare_url = gateway_under_test::serve_bare().await?;
    let body = gateway_under_test::openai_chat_body(&reqwest::Client::new(), &gateway_url).await?;
    Ok((gateway_url, bare_url, body))
}

/// A copy of `plugins_dir` in `data_dir` whose first binding (the default policy) has
/// `fixture` as its shadow candidate at 100 %.
fn with_shadow(
    plugins_dir: &std::path::Path,
    fixtures_dir: &std::path::Path,
    fixture: &str,
    data_dir: &std::path::Path,
) -> anyhow::Result<PathBuf> {
    let dir = data_dir.join("plugins-with-shadow");
    std::fs::create_dir_all(&dir)?;
    let entries = std::fs::read_dir(plugins_dir)
        .map_err(|e| anyhow::anyhow!("{}: {e}", plugins_dir.display()))?;
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "wasm") {
            std::fs::copy(&path, dir.join(path.file_name().unwrap_or_default()))?;
        }
    }
    let candidate = format!("{fixture}.wasm");
    std::fs::copy(fixtures_dir.join(&candidate), dir.join(&candidate))
        .map_err(|e| anyhow::anyhow!("{candidate}: {e} (run `make plugins`)"))?;
    let manifest = std::fs::read_to_string(plugins_dir.join("plugins.toml"))?;
    let Some(second) = manifest
        .match_indices("[[binding]]")
        .nth(1)
        .map(|(at, _)| at)
    else {
        bail!("plugins.toml: expected the policy binding, then another");
    };
    let shadowed = format!(
        "{}shadow = \"{candidate}\"\nshadow_percent = 100\n\n{}",
        &manifest[..second],
        &manifest[second..]
    );
    std::fs::write(dir.join("plugins.toml"), shadowed)?;
    Ok(dir)
}
