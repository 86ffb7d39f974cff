//! `bench outage`: a database outage under a steady load. A gateway on a PostgreSQL server of
//! the run's own takes `--rate` proxy requests a second (open model: sent on schedule, not
//! when the previous answer came); the server is stopped for `--outage` seconds in the middle
//! and started again. Then the run waits for the audit log to hold one row for every request
//! the gateway acknowledged, and reports what was acknowledged, what was written, what was
//! dropped, and the most rows held in memory at once.

use anyhow::{bail, Context};
use bench::gateway_under_test::{self, Options, ADMIN_KEY};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Options of `bench outage`.
#[derive(clap::Args)]
pub struct Args {
    /// Proxy requests per second, sent on schedule.
    #[arg(long, default_value_t = 1_000)]
    rate: u32,
    /// Seconds of load before the outage.
    #[arg(long, default_value_t = 10)]
    before: u64,
    /// Seconds the database is stopped.
    #[arg(long, default_value_t = 60)]
    outage: u64,
    /// Seconds of load after it is back.
    #[arg(long, default_value_t = 10)]
    after: u64,
    /// Folder with `plugins.toml` and the default plugins (built by `make plugins`).
    #[arg(long, default_value = "policies-wasm")]
    plugins_dir: PathBuf,
}

/// Answers counted by the load.
#[derive(Default)]
struct Tally {
    acknowledged: AtomicU64,
    refused: AtomicU64,
    failed: AtomicU64,
}

/// Runs the benchmark and prints its figures.
pub fn run(args: Args) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    println!("starting a PostgreSQL server of the run's own");
    let postgres = Arc::new(testkit::ThrowawayPostgres::start());
    let mut options = Options::throughput(args.plugins_dir.clone(), true);
    options.database_url = Some(postgres.url());
    let gateway = gateway_under_test::start(&options, "outage", 1)?;
    let client = reqwest::Client::new();
    let body = runtime.block_on(gateway_under_test::openai_chat_body(&client, &gateway.url))?;
    let base_rows = runtime.block_on(audit_total(&client, &gateway.url))?;
    let tally = Arc::new(Tally::default());
    let total = Duration::from_secs(args.before + args.outage + args.after);
    let (stop_at, resume_at) = (
        Duration::from_secs(args.before),
        Duration::from_secs(args.before + args.outage),
    );
    let held = gateway.state.metrics.proxy.audit_held.clone();
    let mut most_held = 0;
    let started = Instant::now();
    let mut phase = 0;
    let sender = runtime.spawn(send_on_schedule(
        client.clone(),
        format!("{}/api/proxy-request", gateway.url),
        body,
        args.rate,
        total,
        Arc::clone(&tally),
    ));
    while !sender.is_finished() {
        std::thread::sleep(Duration::from_millis(100));
        most_held = most_held.max(held.get());
        let elapsed = started.elapsed();
        if phase == 0 && elapsed >= stop_at {
            println!("{:>5.1} s: stopping PostgreSQL", elapsed.as_secs_f64());
            postgres.stop();
            phase = 1;
        } else if phase == 1 && elapsed >= resume_at {
            println!(
                "{:>5.1} s: starting PostgreSQL again ({} audit rows held)",
                elapsed.as_secs_f64(),
                held.get()
            );
            postgres.resume();
            phase = 2;
        }
    }
    runtime.block_on(sender)?;
    let acknowledged = tally.acknowledged.load(Ordering::Relaxed);
    // Each acknowledged request writes a request row and a policy-decision row; the log's
    // total counts request rows.
    let written = runtime.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let written = audit_total(&client, &gateway.url).await.unwrap_or(0) - base_rows;
            if written >= acknowledged || Instant::now() > deadline {
                return written;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let dropped = gateway.state.metrics.proxy.audit_dropped.get();
    println!(
        "{} s at {} req/s, PostgreSQL stopped for {} s:",
        total.as_secs(),
        args.rate,
        args.outage
    );
    println!(
        "  acknowledged (2xx) {acknowledged}, refused (4xx/5xx) {}, failed {}",
        tally.refused.load(Ordering::Relaxed),
        tally.failed.load(Ordering::Relaxed)
    );
    println!(
        "  request rows written {written}, rows dropped {dropped}, most rows held {most_held}"
    );
    if written < acknowledged {
        bail!(
            "{} acknowledged requests have no audit row",
            acknowledged - written
        );
    }
    Ok(())
}

/// Sends `rate` requests a second for `total`, each on its own task at its scheduled time.
async fn send_on_schedule(
    client: reqwest::Client,
    url: String,
    body: String,
    rate: u32,
    total: Duration,
    tally: Arc<Tally>,
) {
    let every = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut in_flight = tokio::task::JoinSet::new();
    while started.elapsed() < total {
        ticker.tick().await;
        let (client, url, body, tally) = (
            client.clone(),
            url.clone(),
            body.clone(),
            Arc::clone(&tally),
        );
        in_flight.spawn(async move {
            let sent = client
                .post(url)
                .header("content-type", "application/json")
                .body(body)
                .timeout(Duration::from_secs(30))
                .send()
                .await;
            let counter = match sent {
                Ok(r) if r.status().is_success() => &tally.acknowledged,
                Ok(_) => &tally.refused,
                Err(_) => &tally.failed,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        });
        while in_flight.try_join_next().is_some() {}
    }
    while in_flight.join_next().await.is_some() {}
}

/// The audit log's row total, as `GET /api/proxy/logs` reports it.
async fn audit_total(client: &reqwest::Client, base: &str) -> anyhow::Result<u64> {
    let logs: serde_json::Value = client
        .get(format!("{base}/api/proxy/logs?limit=1"))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    logs["total"].as_u64().context("the log's total")
}
