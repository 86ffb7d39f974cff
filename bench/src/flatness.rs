//! `bench flatness`: the gateway alone under wrk for many minutes, one wrk run per minute, to
//! show whether throughput and memory stay flat (the audit queue, caches and counters are
//! bounded) and whether every request still gets its audit row.
//!
//! The gateway runs in this process as in `bench proxy` (default plugins, SQLite, one agent
//! calling `openai.chat`), so the resident memory printed is this process's.
//!
//! `--connections 1 --threads 1` measures one client's per-request latency (what grows
//! when each request's work grows with the database), and `--prefill-rows N` starts from
//! an audit log of N rows (written straight to the database, as N allowed calls of the last
//! hour would have been), so an empty and a 5-million-row log compare in minutes.
//! `--fresh-queries` sends `serpapi.search` with a query no request sent before, so every
//! call misses the response cache, reaches the (mock) upstream and fills the cache, as a
//! load of distinct searches does.

use crate::wrk::{self, WrkResult};
use anyhow::{bail, Context};
use bench::gateway_under_test::{self, Options};
use bench::metrics_text::Snapshot;
use std::path::{Path, PathBuf};

/// Options of `bench flatness`.
#[derive(clap::Args)]
pub struct Args {
    /// wrk runs, back to back, a row each (ten runs of a minute: the ten-minute run).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    /// Seconds per wrk run (shorter to try the command out).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..))]
    run_seconds: u32,
    /// wrk threads.
    #[arg(long, default_value_t = 2)]
    threads: u32,
    /// wrk connections.
    #[arg(long, default_value_t = 50)]
    connections: u32,
    /// Folder with `plugins.toml` and the default plugins (built by `make plugins`).
    #[arg(long, default_value = "policies-wasm")]
    plugins_dir: PathBuf,
    /// Audit rows written before the load (0: an empty log).
    #[arg(long, default_value_t = 0)]
    prefill_rows: u64,
    /// Send `serpapi.search` with a new query each request instead of `openai.chat`.
    #[arg(long)]
    fresh_queries: bool,
}

/// Runs the load and prints one row per minute, then the verdicts; fails when a request
/// was refused or an audit row is missing.
pub fn run(args: Args) -> anyhow::Result<()> {
    wrk::ensure_installed()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let data_dir = gateway_under_test::temp_data_dir("flatness")?;
    let result = runtime.block_on(measure(&args, &data_dir));
    let _ = std::fs::remove_dir_all(&data_dir);
    result
}

async fn measure(args: &Args, data_dir: &Path) -> anyhow::Result<()> {
    let options = Options::throughput(args.plugins_dir.clone(), true);
    let (url, state) = gateway_under_test::serve(&options, data_dir).await?;
    let client = reqwest::Client::new();
    // With fresh queries, the search's query is the text each request makes new.
    let (call, fresh) = if args.fresh_queries {
        let call = gateway_under_test::SERPAPI_SEARCH;
        (call, Some(call.param.1))
    } else {
        (gateway_under_test::OPENAI_CHAT, None)
    };
    let body = gateway_under_test::allowed_call_body(&client, &url, call).await?;
    let same_body = wrk::post_script(data_dir, &body)?;
    let script_of_run = |run: u32| match fresh {
        Some(query) => wrk::fresh_post_script(data_dir, &body, query, run),
        None => Ok(same_body.clone()),
    };
    let load = wrk::Load {
        threads: args.threads,
        connections: args.connections,
        seconds: args.run_seconds,
    };
    if args.prefill_rows > 0 {
        prefill(&state.store, args.prefill_rows).await?;
        println!(
            "audit log prefilled with {} rows ({:.0} MiB on disk)",
            args.prefill_rows,
            folder_mib(data_dir)
        );
    }
    let target = format!("{url}/api/proxy-request");
    println!(
        "gateway alone, {} × {} s of wrk -t{} -c{} ({}.{}{}, mock, default policies, SQLite)",
        args.runs,
        args.run_seconds,
        args.threads,
        args.connections,
        call.tool,
        call.action,
        if fresh.is_some() {
            ", a new query each request"
        } else {
            ""
        }
    );
    let unit = if args.run_seconds == 60 {
        "minute".to_string()
    } else {
        format!("run of {} s", args.run_seconds)
    };
    println!("| {unit} | req/s | p50 ms | p99 ms | non-2xx | RSS MiB | database MiB |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    let mut runs: Vec<(WrkResult, f64)> = Vec::new();
    for n in 1..=args.runs {
        let (script, target) = (script_of_run(n)?, target.clone());
        let run = tokio::task::spawn_blocking(move || load.run(&script, &target)).await??;
        let rss = resident_mib()?;
        println!(
            "| {n} | {:.0} | {:.3} | {:.2} | {} | {rss:.0} | {:.0} |",
            run.requests_per_sec,
            run.p50_ms,
            run.p99_ms,
            run.non_2xx,
            folder_mib(data_dir)
        );
        runs.push((run, rss));
    }

    // Every request the gateway counted has its audit row once the queue is written out. A
    // request counts itself just before it queues its row, so a second flush covers one
    // that was between the two when the first flush was asked for.
    let page = client
        .get(format!("{url}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    let metrics = Snapshot::parse(&page)?;
    let counted = metrics.sum("gateway_requests_total", &[]) as i64;
    let mut rows = 0;
    for _ in 0..2 {
        state.proxy.audit.flush().await;
        rows = state.store.count_request_logs().await?;
        if rows >= counted {
            break;
        }
    }
    let refused: u64 = runs.iter().map(|(r, _)| r.non_2xx).sum();
    let (first, last) = (&runs[0], &runs[runs.len() - 1]);
    let rss = runs.iter().map(|(_, rss)| *rss);
    let (rss_min, rss_max) = rss.fold((f64::MAX, 0.0_f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    println!();
    println!(
        "last / first {unit}: req/s {:.2}, RSS {:.2} (RSS {rss_min:.0}–{rss_max:.0} MiB)",
        last.0.requests_per_sec / first.0.requests_per_sec,
        last.1 / first.1
    );
    println!(
        "requests counted by the gateway: {counted}; request_logs rows: {rows}; non-2xx: {refused}; \
         response cache hits {}, misses {}",
        metrics.sum("gateway_cache_hits_total", &[]),
        metrics.sum("gateway_cache_misses_total", &[])
    );
    if rows < counted {
        bail!("audit rows missing: {counted} requests counted, {rows} rows written");
    }
    if refused > 0 {
        let codes = crate::proxy::failure_codes(&url).await?;
        bail!("the gateway refused requests under load: {codes}");
    }
    Ok(())
}

/// Writes `rows` audit rows as allowed `openai.chat` calls spread over the last hour, in
/// the audit writer's batches (one transaction each), oldest first.
async fn prefill(store: &gateway::store::Store, rows: u64) -> anyhow::Result<()> {
    use gateway::store::request_logs::RequestLogRow;
    const BATCH: u64 = 4_096;
    let start = gateway::clock::Clock::SYSTEM.now_ms() - 3_600_000;
    let step = 3_600_000.0 / rows as f64;
    let mut written = 0;
    while written < rows {
        let batch: Vec<RequestLogRow> = (written..(written + BATCH).min(rows))
            .map(|n| {
                let id = uuid::Uuid::now_v7().to_string();
                RequestLogRow {
                    correlation_id: id.clone(),
                    id,
                    agent_id: Some("00000000-0000-4000-8000-000000000000".into()),
                    tool: "openai".into(),
                    action: "chat".into(),
                    status_code: 200,
                    success: 1,
                    error_code: None,
                    response_time_ms: 0.2,
                    cached: 0,
                    policy_decision: Some("allow".into()),
                    chaos_fault: None,
                    sample_rate: None,
                    created_at: start + (n as f64 * step) as i64,
                }
            })
            .collect();
        store.insert_audit_batch(&batch, &[]).await?;
        written += batch.len() as u64;
    }
    Ok(())
}

/// This process's resident memory, MiB (Linux).
pub(crate) fn resident_mib() -> anyhow::Result<f64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS in /proc/self/status")?;
    Ok(kib / 1024.0)
}

/// Size of the files in `dir` (the database and its write-ahead log), MiB.
fn folder_mib(dir: &Path) -> f64 {
    let bytes: u64 = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum();
    bytes as f64 / (1024.0 * 1024.0)
}
