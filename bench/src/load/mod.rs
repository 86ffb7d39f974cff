//! `bench load`: runs a scenario file's open-model load against a gateway (one it starts
//! itself, or `--target`), then writes the report folder and says where it is.

#[cfg(test)]
mod k6_port;
pub mod mix;
pub mod record;
pub mod runner;
pub mod scenario;
pub mod schedule;
pub mod setup;

use crate::gateway_under_test::{self, Options, ADMIN_KEY};
use crate::report;
use crate::report::summary::{summarise, RunInfo, Summary};
use crate::thread_cpu;
use anyhow::{bail, Context};
use gateway::config::Environment;
use scenario::Scenario;
use schedule::Schedule;
use std::path::PathBuf;
use std::time::Duration;

/// Options of `bench load`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Scenario: a name from bench/scenarios/ (journal, chaos, soak, spike) or a TOML file path.
    pub scenario: String,
    /// Multiply every duration by this (0.05 turns the 40-minute journal into 2 minutes).
    #[arg(long, default_value_t = 1.0)]
    pub time_scale: f64,
    /// Multiply every arrival rate by this.
    #[arg(long, default_value_t = 1.0)]
    pub rate_scale: f64,
    /// Load a running gateway at this base URL (loopback only) instead of starting one.
    #[arg(long)]
    pub target: Option<String>,
    /// Admin key of the --target gateway.
    #[arg(long, env = "ADMIN_API_KEY", hide_env_values = true)]
    pub admin_key: Option<String>,
    /// Folder with plugins.toml and the default plugins, for the gateway the bench starts.
    #[arg(long, default_value = "policies-wasm")]
    pub plugins_dir: PathBuf,
    /// Where report folders are written.
    #[arg(long, default_value = "bench/reports")]
    pub reports_dir: PathBuf,
    /// Seed of the traffic mix (the same seed sends the same requests).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Iterations in flight beyond which new ones are dropped and counted as such.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_in_flight: u32,
    /// Timeline bucket in seconds (default: the load's length / 120, between 0.1 and 10).
    #[arg(long)]
    pub bucket: Option<f64>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// Resolves a scenario name to its file.
pub fn scenario_path(name: &str) -> PathBuf {
    let path = PathBuf::from(name);
    if path.extension().is_some() || path.components().count() > 1 {
        return path;
    }
    for dir in ["bench/scenarios", "scenarios"] {
        let candidate = PathBuf::from(dir).join(format!("{name}.toml"));
        if candidate.exists() {
            return candidate;
        }
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("scenarios/{name}.toml"))
}

/// Only loopback targets: the bench is not a tool to load other people's servers.
fn check_loopback(url: &str) -> anyhow::Result<()> {
    let parsed = reqwest::Url::parse(url).with_context(|| format!("--target {url:?}"))?;
    let loopback = match parsed.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    if !loopback {
        bail!("--target must be a loopback address (127.0.0.1, ::1 or localhost), not {url}");
    }
    Ok(())
}

/// Runs the scenario; returns the summary and the report folder.
pub fn run(args: &Args) -> anyhow::Result<(Summary, PathBuf)> {
    let scenario =
        Scenario::load(&scenario_path(&args.scenario))?.scaled(args.time_scale, args.rate_scale)?;
    if let Some(b) = args.bucket {
        if !(b.is_finite() && b >= 0.01) {
            bail!("--bucket must be at least 0.01 seconds");
        }
    }
    let schedule = Schedule::new(&scenario.load);
    let planned = schedule.duration();
    let started_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);

    // The gateway: given, or started here on a runtime of its own.
    let (base, admin_key, target, gateway_guard) = match &args.target {
        Some(url) => {
            check_loopback(url)?;
            let key = args
                .admin_key
                .clone()
                .context("--target needs --admin-key (or ADMIN_API_KEY)")?;
            let g = &scenario.gateway;
            let breaker = match (g.breaker_open, g.breaker_window) {
                (Some(open), Some(window)) => format!(
                    " CB_OPEN_MS={} CB_WINDOW_MS={}",
                    open.as_millis(),
                    window.as_millis()
                ),
                _ => String::new(),
            };
            eprintln!(
                "note: the scenario's [gateway] settings apply only to a gateway the bench starts; \
                 for the same conditions start yours with RATE_LIMIT_PER_AGENT={} \
                 RATE_LIMIT_PER_AGENT_TOOL={}{breaker} (otherwise expect 429s where it limits)",
                g.rate_limit_per_agent, g.rate_limit_per_agent_tool,
            );
            (
                url.trim_end_matches('/').to_string(),
                key,
                url.clone(),
                None,
            )
        }
        None => {
            let options = Options {
                rate_limit_per_agent: scenario.gateway.rate_limit_per_agent,
                rate_limit_per_agent_tool: scenario.gateway.rate_limit_per_agent_tool,
                breaker_open: scenario.gateway.breaker_open,
                breaker_window: scenario.gateway.breaker_window,
                // The chaos admin API is refused in production.
                environment: Environment::Development,
                ..Options::throughput(args.plugins_dir.clone(), true)
            };
            let gw = gateway_under_test::start(&options, "load", 2)?;
            let mut description = format!(
                "gateway started by the bench (mock upstreams, default plugins, SQLite; rate limits per agent {} and per agent+tool {} per minute, 0 = off",
                options.rate_limit_per_agent, options.rate_limit_per_agent_tool
            );
            if let (Some(open), Some(window)) = (options.breaker_open, options.breaker_window) {
                description += &format!("; breaker open {open:?}, window {window:?}");
            }
            description.push(')');
            (gw.url.clone(), ADMIN_KEY.to_string(), description, Some(gw))
        }
    };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("load")
        .enable_all()
        .build()?;
    let bucket = args.bucket.map(Duration::from_secs_f64).unwrap_or_else(|| {
        (planned / 120).clamp(Duration::from_millis(100), Duration::from_secs(10))
    });
    let output = runtime.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(scenario.load.timeout)
            .pool_max_idle_per_host(4096)
            .build()?;
        let run_id = format!("{:x}", chrono::Utc::now().timestamp_millis());
        let agents = setup::prepare(&client, &base, &admin_key, &scenario, &run_id).await?;
        // The gateway's own CPU over the load (not the set-up's agent keys).
        let cpu_before = gateway_guard
            .as_ref()
            .and_then(|_| thread_cpu::cpu_of_threads(thread_cpu::GATEWAY_THREADS));
        let driver = runner::Driver {
            client,
            base: base.clone(),
            admin_key: admin_key.clone(),
            agents,
            seed: args.seed,
            max_in_flight: args.max_in_flight as usize,
            bucket_width: bucket,
            progress: !args.quiet,
        };
        let output = runner::run(&scenario, driver).await?;
        let cpu = cpu_before
            .zip(thread_cpu::cpu_of_threads(thread_cpu::GATEWAY_THREADS))
            .map(|(before, after)| after.saturating_sub(before));
        anyhow::Ok((output, cpu))
    })?;
    let (output, gateway_cpu) = output;

    let mut planned_rate = vec![(0.0, scenario.load.start_rate)];
    let mut t = 0.0;
    for stage in &scenario.load.stages {
        t += stage.duration.as_secs_f64();
        planned_rate.push((t, stage.target));
    }
    let info = RunInfo {
        scenario: scenario.name.clone(),
        description: scenario.description.clone(),
        started_at,
        time_scale: args.time_scale,
        rate_scale: args.rate_scale,
        seed: args.seed,
        target,
        cpus: std::thread::available_parallelism().map_or(1, usize::from),
        planned_s: planned.as_secs_f64(),
        chaos_window_s: scenario
            .chaos
            .as_ref()
            .map(|c| (c.from.as_secs_f64(), c.until.as_secs_f64())),
        planned_rate,
    };
    let mut summary = summarise(info, schedule.expected_iterations(), &output);
    summary.gateway_cpu_us_per_request = gateway_cpu
        .filter(|_| summary.requests > 0)
        .map(|cpu| cpu.as_secs_f64() * 1e6 / summary.requests as f64);
    let dir = report::write(&args.reports_dir, &summary, &output.raw)?;
    drop(runtime);
    drop(gateway_guard);
    Ok((summary, dir))
}
