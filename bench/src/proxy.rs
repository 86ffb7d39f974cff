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

use anyhow::{bail, Context};
use bench::gateway_under_test::{self, Options, ADMIN_KEY};
use bench::temp_postgres::TempPostgres;
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

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
}

/// One wrk run's figures.
#[derive(Debug, Clone, Copy, Default)]
struct WrkResult {
    requests_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    non_2xx: u64,
    /// Requests wrk completed.
    requests: u64,
    /// This process's CPU time during the run, per completed request, in µs.
    cpu_us_per_request: f64,
}

/// Runs the comparison and prints the table.
pub fn run(args: Args) -> anyhow::Result<()> {
    if Command::new("wrk").arg("--version").output().is_err() {
        bail!("wrk is not installed (Debian: apt-get install wrk)");
    }
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
        runtime.block_on(start_targets(&args, &data_dir, database_url))?;
    let script = data_dir.join("post.lua");
    std::fs::write(
        &script,
        format!(
            "wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\nwrk.body = [[{body}]]\n"
        ),
    )?;
    let mut bare = Vec::new();
    let mut gateway = Vec::new();
    for round in 1..=args.rounds {
        let b = wrk(&args, &script, &bare_url)?;
        let g = wrk(&args, &script, &format!("{gateway_url}/api/proxy-request"))?;
        println!(
            "round {round}: bare {:>9.0} req/s p50 {:.2} ms p99 {:.2} ms cpu {:.1} µs/req | gateway {:>9.0} req/s p50 {:.2} ms p99 {:.2} ms cpu {:.1} µs/req (non-2xx {})",
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
        "| bare axum JSON handler | {b_rps:.0} | {:.2} | {:.2} | {b_cpu:.1} |",
        median(&bare, |r| r.p50_ms),
        median(&bare, |r| r.p99_ms)
    );
    println!(
        "| gateway proxy-request (openai.chat, mock, {}) | {g_rps:.0} | {:.2} | {:.2} | {g_cpu:.1} |",
        storage_label(&args),
        median(&gateway, |r| r.p50_ms),
        median(&gateway, |r| r.p99_ms)
    );
    println!("\ngateway / bare throughput: {:.2}", g_rps / b_rps);
    println!("gateway / bare CPU per request: {:.2}", g_cpu / b_cpu);
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
async fn failure_codes(gateway_url: &str) -> anyhow::Result<String> {
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
    let options = Options {
        database_url,
        redis_url: args.redis.clone(),
        ..Options::throughput(args.plugins_dir.clone(), !args.no_policies)
    };
    let (gateway_url, _state) = gateway_under_test::serve(&options, data_dir).await?;
    let bare_url = gateway_under_test::serve_bare().await?;
    let body = gateway_under_test::openai_chat_body(&reqwest::Client::new(), &gateway_url).await?;
    Ok((gateway_url, bare_url, body))
}

/// CPU time (user + system) this process has used so far.
fn process_cpu_time() -> std::time::Duration {
    // SAFETY: an all-zero `rusage` is a valid value, and `getrusage` only writes into it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable `rusage`; RUSAGE_SELF cannot fail.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let time = |t: libc::timeval| {
        std::time::Duration::new(t.tv_sec.max(0) as u64, (t.tv_usec.max(0) as u32) * 1000)
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}

fn wrk(args: &Args, script: &std::path::Path, url: &str) -> anyhow::Result<WrkResult> {
    let cpu_before = process_cpu_time();
    let output = Command::new("wrk")
        .arg(format!("-t{}", args.threads))
        .arg(format!("-c{}", args.connections))
        .arg(format!("-d{}s", args.duration))
        .arg("--latency")
        .arg("-s")
        .arg(script)
        .arg(url)
        .output()
        .context("running wrk")?;
    let cpu = process_cpu_time().saturating_sub(cpu_before);
    let text = String::from_utf8_lossy(&output.stdout);
    let mut result = parse_wrk(&text).with_context(|| format!("unexpected wrk output:\n{text}"))?;
    result.cpu_us_per_request = cpu.as_secs_f64() * 1e6 / result.requests.max(1) as f64;
    Ok(result)
}

/// A wrk latency figure (`812.00us`, `1.25ms`, `2.10s`) in ms.
fn parse_latency(text: &str) -> Option<f64> {
    let (number, unit) = text.split_at(text.find(|c: char| c.is_ascii_alphabetic())?);
    let n: f64 = number.parse().ok()?;
    Some(match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        _ => return None,
    })
}

fn parse_wrk(text: &str) -> Option<WrkResult> {
    let mut r = WrkResult::default();
    for line in text.lines().map(str::trim) {
        let mut parts = line.split_whitespace();
        match (parts.next(), parts.next()) {
            (Some("Requests/sec:"), Some(v)) => r.requests_per_sec = v.parse().ok()?,
            (Some("50%"), Some(v)) => r.p50_ms = parse_latency(v)?,
            (Some("99%"), Some(v)) => r.p99_ms = parse_latency(v)?,
            (Some(n), Some("requests")) => r.requests = n.parse().ok()?,
            (Some("Non-2xx"), _) => {
                r.non_2xx = line.rsplit(' ').next()?.parse().ok()?;
            }
            _ => {}
        }
    }
    (r.requests_per_sec > 0.0).then_some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_wrk_output() {
        let text = "Running 1s test @ http://x\n  Latency Distribution\n     50%  812.00us\n     75%    1.00ms\n     90%    1.50ms\n     99%    2.10ms\n  1000 requests in 1.00s, 1.00MB read\n  Non-2xx or 3xx responses: 3\nRequests/sec:  31234.56\n";
        let r = parse_wrk(text).unwrap();
        assert_eq!(r.requests_per_sec, 31234.56);
        assert!((r.p50_ms - 0.812).abs() < 1e-9);
        assert_eq!(r.p99_ms, 2.1);
        assert_eq!(r.non_2xx, 3);
        assert_eq!(r.requests, 1000);
    }
}
