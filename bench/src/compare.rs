//! `bench compare`: the same open-model load (requests start on schedule, latency from the
//! intended start) against (a) the gateway's proxy-request in mock mode with the default policy
//! plugins, (b) a bare axum JSON handler, and (c) the gateway with its policy plugins off
//! (`FF_POLICY=off`), rate by rate, targets interleaved so that the ratios hold on a noisy
//! machine. Prints p50/p99 per rate, the ratios (a)/(b) and (a)/(c), and each target's
//! highest rate sustained with p99 under the bound.

use crate::gateway_under_test::{self, Options, RunningGateway};
use anyhow::Context;
use hdrhistogram::Histogram;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// Options of `bench compare`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Offered rates in requests/s, comma-separated, tried in order.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1000,2000,3000,4000,5000,6000,8000,10000,12000,16000,20000"
    )]
    pub rates: Vec<u32>,
    /// Seconds of load per rate and target.
    #[arg(long, default_value_t = 5)]
    pub duration: u64,
    /// A rate is sustained when every request succeeds, at least 95 % of the offered rate is
    /// served, and p99 stays under this many ms.
    #[arg(long, default_value_t = 10.0)]
    pub p99_bound_ms: f64,
    /// Folder with plugins.toml and the default plugins.
    #[arg(long, default_value = "policies-wasm")]
    pub plugins_dir: PathBuf,
}

/// One target at one rate.
#[derive(Debug, Clone, Copy, Default)]
pub struct Point {
    /// Offered requests/s.
    pub offered: f64,
    /// Successful responses per second of load.
    pub served: f64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
    /// Requests that failed or were not sent (too many in flight).
    pub failures: u64,
}

impl Point {
    fn sustained(&self, p99_bound_ms: f64) -> bool {
        self.failures == 0 && self.served >= 0.95 * self.offered && self.p99_ms < p99_bound_ms
    }
}

/// Requests in flight beyond which the generator stops sending and counts failures: the
/// target is saturated and only memory would grow.
const MAX_IN_FLIGHT: u64 = 20_000;

/// Runs the comparison and prints the tables.
pub fn run(args: Args) -> anyhow::Result<()> {
    let gateway_with = start_gateway(&args, true)?;
    let gateway_without = start_gateway(&args, false)?;
    let bare_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("bare")
        .enable_all()
        .build()?;
    let bare_url = bare_runtime.block_on(gateway_under_test::serve_bare())?;
    let load = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("load")
        .enable_all()
        .build()?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(MAX_IN_FLIGHT as usize)
        .build()?;
    let (body_with, body_without) = load.block_on(async {
        anyhow::Ok((
            gateway_under_test::openai_chat_body(&client, &gateway_with.url).await?,
            gateway_under_test::openai_chat_body(&client, &gateway_without.url).await?,
        ))
    })?;
    let targets = [
        (
            "(a) gateway",
            format!("{}/api/proxy-request", gateway_with.url),
            body_with,
        ),
        (
            "(b) bare axum",
            bare_url,
            r#"{"tool":"openai"}"#.to_string(),
        ),
        (
            "(c) gateway, policies off",
            format!("{}/api/proxy-request", gateway_without.url),
            body_without,
        ),
    ];
    let duration = Duration::from_secs(args.duration.max(1));
    // Warm-up, not measured: connections, live plugin instances, caches of the allocator.
    let warm_rate = f64::from(args.rates.first().copied().unwrap_or(1000));
    for (_, url, body) in &targets {
        load.block_on(open_load(
            &client,
            url,
            body,
            warm_rate,
            Duration::from_secs(2),
        ));
    }
    let mut results: Vec<Vec<Option<Point>>> = vec![Vec::new(); targets.len()];
    let mut saturated = [false; 3];
    println!("| rate req/s | (a) p50 / p99 ms | (b) p50 / p99 ms | (c) p50 / p99 ms | p50 (a)/(b) | p50 (a)/(c) |");
    println!("|---:|---|---|---|---:|---:|");
    for &rate in &args.rates {
        for (i, (_, url, body)) in targets.iter().enumerate() {
            let point = (!saturated[i])
                .then(|| load.block_on(open_load(&client, url, body, f64::from(rate), duration)));
            if let Some(p) = point {
                // It could not keep up: higher rates would only queue more.
                saturated[i] = p.served < 0.95 * p.offered;
            }
            results[i].push(point);
        }
        let cell = |p: &Option<Point>| {
            p.map_or("saturated".to_string(), |p| {
                format!(
                    "{:.2} / {:.2}{}",
                    p.p50_ms,
                    p.p99_ms,
                    if p.failures > 0 {
                        format!(" ({} failed)", p.failures)
                    } else {
                        String::new()
                    }
                )
            })
        };
        let ratio = |a: &Option<Point>, b: &Option<Point>| match (a, b) {
            (Some(a), Some(b)) if b.p50_ms > 0.0 => format!("{:.2}", a.p50_ms / b.p50_ms),
            _ => "–".into(),
        };
        let at = |i: usize| &results[i][results[i].len() - 1];
        println!(
            "| {rate} | {} | {} | {} | {} | {} |",
            cell(at(0)),
            cell(at(1)),
            cell(at(2)),
            ratio(at(0), at(1)),
            ratio(at(0), at(2))
        );
    }
    let max_rate = |i: usize| {
        results[i]
            .iter()
            .flatten()
            .filter(|p| p.sustained(args.p99_bound_ms))
            .map(|p| p.offered)
            .fold(0.0, f64::max)
    };
    let (a, b, c) = (max_rate(0), max_rate(1), max_rate(2));
    println!(
        "\nHighest rate sustained (all served, p99 < {} ms) among those tried:",
        args.p99_bound_ms
    );
    for (i, (name, _, _)) in targets.iter().enumerate() {
        println!("  {name}: {:.0} req/s", max_rate(i));
    }
    if b > 0.0 && c > 0.0 {
        println!("  (a)/(b): {:.2}   (a)/(c): {:.2}", a / b, a / c);
    }
    drop(load);
    drop(bare_runtime);
    Ok(())
}

fn start_gateway(args: &Args, policies: bool) -> anyhow::Result<RunningGateway> {
    let options = Options::throughput(args.plugins_dir.clone(), policies);
    let what = if policies { "compare-a" } else { "compare-c" };
    gateway_under_test::start(&options, what, 2).context("starting a gateway")
}

/// Sends `rate` requests/s for `duration`, each at its scheduled time; returns the figures.
pub async fn open_load(
    client: &reqwest::Client,
    url: &str,
    body: &str,
    rate: f64,
    duration: Duration,
) -> Point {
    let total = (rate * duration.as_secs_f64()).round() as u64;
    let gap = Duration::from_secs_f64(1.0 / rate);
    let histogram = Arc::new(Mutex::new(
        Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid bounds"),
    ));
    let failures = Arc::new(AtomicU64::new(0));
    let in_flight = Arc::new(AtomicU64::new(0));
    // Cloned per request: a reference count, not a copy.
    let body = bytes::Bytes::from(body.to_string());
    let (done_tx, mut done_rx) = tokio::sync::mpsc::channel::<()>(1);
    let start = Instant::now() + Duration::from_millis(20);
    let mut next = 0u64;
    while next < total {
        crate::clock::wait_until(start + gap.mul_f64(next as f64)).await;
        let now = Instant::now();
        // Start every request whose time has come (several, when the generator fell behind).
        while next < total && start + gap.mul_f64(next as f64) <= now {
            let intended = start + gap.mul_f64(next as f64);
            next += 1;
            if in_flight.load(Ordering::Relaxed) >= MAX_IN_FLIGHT {
                failures.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            in_flight.fetch_add(1, Ordering::Relaxed);
            let (client, url, body, histogram, failures, in_flight, done) = (
                client.clone(),
                url.to_string(),
                body.clone(),
                Arc::clone(&histogram),
                Arc::clone(&failures),
                Arc::clone(&in_flight),
                done_tx.clone(),
            );
            tokio::spawn(async move {
                let ok = match client
                    .post(url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                {
                    Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                    Err(_) => false,
                };
                let micros = (intended.elapsed().as_micros() as u64).clamp(1, 60_000_000);
                if ok {
                    histogram.lock().unwrap().record(micros).expect("clamped");
                } else {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
                in_flight.fetch_sub(1, Ordering::Relaxed);
                drop(done);
            });
        }
    }
    drop(done_tx);
    let _ = done_rx.recv().await;
    let elapsed = start.elapsed().as_secs_f64().max(duration.as_secs_f64());
    let h = histogram.lock().unwrap();
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    Point {
        offered: rate,
        served: h.len() as f64 / elapsed,
        p50_ms: ms(0.5),
        p99_ms: ms(0.99),
        failures: failures.load(Ordering::Relaxed),
    }
}
