//! `bench audit-size`: what the audit log costs on disk per proxied request. The gateway
//! (default plugins, one agent calling `openai.chat`, every request through the whole
//! pipeline) serves a fixed number of requests on SQLite and on a throwaway PostgreSQL;
//! then each audit table and index is measured (SQLite's `dbstat`, PostgreSQL's relation
//! sizes) and divided by the number of requests. Then the same number of calls the agent's
//! policy denies (`openai.complete`: a request row and a policy row each) are measured the
//! same way. Last, an anonymous flood: `{}` bodies with no token from one address, as fast
//! as they are answered, for `--flood-seconds`; it reports the rows and bytes they wrote in
//! the first 5 seconds (the failure limit's burst) and per second after (the address's
//! failure limit answers the rest 429, rowless).

use anyhow::{bail, Context};
use bench::gateway_under_test::{self, Options};
use gateway::store::audit_size::ObjectSize;
use reqwest::StatusCode;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Options of `bench audit-size`.
#[derive(clap::Args)]
pub struct Args {
    /// Proxied requests per database.
    #[arg(long, default_value_t = 50_000, value_parser = clap::value_parser!(u32).range(1..))]
    requests: u32,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=1024))]
    concurrency: u32,
    /// Measure on SQLite only (no throwaway PostgreSQL server is started).
    #[arg(long)]
    sqlite_only: bool,
    /// Folder with `plugins.toml` and the default plugins (built by `make plugins`).
    #[arg(long, default_value = "policies-wasm")]
    plugins_dir: PathBuf,
    /// Seconds the anonymous flood lasts: more than a minute shows the steady rate past the
    /// failure limit's burst.
    #[arg(long, default_value_t = 70)]
    flood_seconds: u64,
}

/// Runs the requests on each database and prints a table of bytes per request.
pub fn run(args: Args) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    println!(
        "audit log on disk after {} proxied requests (openai.chat, mock, default policies)",
        args.requests
    );
    let data_dir = gateway_under_test::temp_data_dir("audit-size")?;
    let sqlite = runtime.block_on(measure(&args, &data_dir, None));
    let _ = std::fs::remove_dir_all(&data_dir);
    print_phases("SQLite", &sqlite?, args.requests);
    if !args.sqlite_only {
        let postgres = testkit::ThrowawayPostgres::start();
        let data_dir = gateway_under_test::temp_data_dir("audit-size-pg")?;
        let sizes = runtime.block_on(measure(&args, &data_dir, Some(postgres.url())));
        let _ = std::fs::remove_dir_all(&data_dir);
        print_phases("PostgreSQL", &sizes?, args.requests);
    }
    Ok(())
}

/// What the audit log grew by in each phase.
struct Phases {
    allowed: Vec<ObjectSize>,
    denied: Vec<ObjectSize>,
    anonymous: Flood,
}

/// What the anonymous flood wrote.
struct Flood {
    requests: u64,
    seconds: f64,
    /// Rows in the first [`BURST_SECONDS`].
    burst_rows: i64,
    /// Rows after them.
    steady_rows: i64,
    bytes: i64,
}

/// The start of the flood counted as its burst.
const BURST_SECONDS: u64 = 5;

fn print_phases(database: &str, phases: &Phases, requests: u32) {
    print_sizes(
        &format!("{database}, allowed calls"),
        &phases.allowed,
        requests,
    );
    print_sizes(
        &format!("{database}, denied calls"),
        &phases.denied,
        requests,
    );
    let flood = &phases.anonymous;
    let rows = flood.burst_rows + flood.steady_rows;
    let steady_seconds = flood.seconds - BURST_SECONDS as f64;
    println!();
    println!(
        "{database}, anonymous flood from one address: {} requests in {:.0} s wrote {rows} rows \
         ({} bytes, {:.0} per row): {} in the first {BURST_SECONDS} s, then {:.2} rows/s \
         ({:.0} bytes/s)",
        flood.requests,
        flood.seconds,
        flood.bytes,
        flood.bytes as f64 / rows.max(1) as f64,
        flood.burst_rows,
        flood.steady_rows as f64 / steady_seconds,
        flood.steady_rows as f64 / steady_seconds * flood.bytes as f64 / rows.max(1) as f64,
    );
}

async fn measure(
    args: &Args,
    data_dir: &Path,
    database_url: Option<String>,
) -> anyhow::Result<Phases> {
    let mut options = Options::throughput(args.plugins_dir.clone(), true);
    options.database_url = database_url;
    let (url, state) = gateway_under_test::serve(&options, data_dir).await?;
    let client = reqwest::Client::new();
    let allowed = gateway_under_test::openai_chat_body(&client, &url).await?;
    // The same agent and token, an action its policy leaves out: a policy denial.
    let mut denied: serde_json::Value = serde_json::from_str(&allowed)?;
    denied["action"] = "complete".into();
    let denied = denied.to_string();
    // The set-up requests (waiting for the policy) are audited too; measured after them.
    state.proxy.audit.flush().await;
    let start = state.store.audit_object_sizes().await?;
    send(&client, &url, &allowed, args, &[StatusCode::OK]).await?;
    state.proxy.audit.flush().await;
    let after_allowed = state.store.audit_object_sizes().await?;
    send(&client, &url, &denied, args, &[StatusCode::FORBIDDEN]).await?;
    state.proxy.audit.flush().await;
    let after_denied = state.store.audit_object_sizes().await?;
    let rows = || async {
        state.proxy.audit.flush().await;
        state.store.request_log_total().await
    };
    let before = rows().await?;
    let started = std::time::Instant::now();
    let refused = [StatusCode::BAD_REQUEST, StatusCode::TOO_MANY_REQUESTS];
    let burst = flood(
        &client,
        &url,
        args,
        Duration::from_secs(BURST_SECONDS),
        &refused,
    );
    let mut requests = burst.await?;
    let after_burst = rows().await?;
    let rest = Duration::from_secs(args.flood_seconds.saturating_sub(BURST_SECONDS).max(1));
    requests += flood(&client, &url, args, rest, &refused).await?;
    let seconds = started.elapsed().as_secs_f64();
    let after = rows().await?;
    let after_flood = state.store.audit_object_sizes().await?;
    let total = |sizes: &[ObjectSize]| sizes.iter().map(|s| s.bytes).sum::<i64>();
    Ok(Phases {
        allowed: growth(&start, &after_allowed),
        denied: growth(&after_allowed, &after_denied),
        anonymous: Flood {
            requests,
            seconds,
            burst_rows: after_burst - before,
            steady_rows: after - after_burst,
            bytes: total(&after_flood) - total(&after_denied),
        },
    })
}

/// Sends `args.requests` copies of `body`, `args.concurrency` at a time; fails on the first
/// answer not in `expected`.
async fn send(
    client: &reqwest::Client,
    url: &str,
    body: &str,
    args: &Args,
    expected: &[StatusCode],
) -> anyhow::Result<()> {
    let sent = Arc::new(AtomicU32::new(0));
    let mut workers = Vec::new();
    for _ in 0..args.concurrency {
        let (client, body, sent) = (client.clone(), body.to_string(), Arc::clone(&sent));
        let expected = expected.to_vec();
        let target = format!("{url}/api/proxy-request");
        let total = args.requests;
        workers.push(tokio::spawn(async move {
            while sent.fetch_add(1, Ordering::Relaxed) < total {
                let response = client
                    .post(&target)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await?;
                if !expected.contains(&response.status()) {
                    bail!(
                        "expected {expected:?}, got {} {}",
                        response.status(),
                        response.text().await?
                    );
                }
            }
            Ok(())
        }));
    }
    for worker in workers {
        worker.await.context("a request worker")??;
    }
    Ok(())
}

/// Sends `{}` with no token for `length`, `args.concurrency` at a time; returns how many
/// were answered (each with one of `expected`).
async fn flood(
    client: &reqwest::Client,
    url: &str,
    args: &Args,
    length: Duration,
    expected: &[StatusCode],
) -> anyhow::Result<u64> {
    let until = std::time::Instant::now() + length;
    let sent = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for _ in 0..args.concurrency {
        let (client, sent, expected) = (client.clone(), Arc::clone(&sent), expected.to_vec());
        let target = format!("{url}/api/proxy-request");
        workers.push(tokio::spawn(async move {
            while std::time::Instant::now() < until {
                let response = client
                    .post(&target)
                    .header("content-type", "application/json")
                    .body("{}")
                    .send()
                    .await?;
                if !expected.contains(&response.status()) {
                    bail!("expected {expected:?}, got {}", response.status());
                }
                sent.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        }));
    }
    for worker in workers {
        worker.await.context("a flood worker")??;
    }
    Ok(sent.load(Ordering::Relaxed))
}

/// Each object's size in `after` less its size in `before`.
fn growth(before: &[ObjectSize], after: &[ObjectSize]) -> Vec<ObjectSize> {
    after
        .iter()
        .cloned()
        .map(|mut object| {
            let earlier = before
                .iter()
                .find(|b| b.object == object.object)
                .map_or(0, |b| b.bytes);
            object.bytes -= earlier;
            object
        })
        .collect()
}

fn print_sizes(database: &str, sizes: &[ObjectSize], requests: u32) {
    let total: i64 = sizes.iter().map(|s| s.bytes).sum();
    println!();
    println!(
        "{database}: {:.0} bytes per request",
        total as f64 / requests as f64
    );
    println!("| table | object | bytes per request |");
    println!("|---|---|---:|");
    for size in sizes {
        println!(
            "| {} | {} | {:.1} |",
            size.table,
            size.object,
            size.bytes as f64 / requests as f64
        );
    }
}
