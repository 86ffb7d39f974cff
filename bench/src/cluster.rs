//! `bench cluster`: three gateways on one PostgreSQL database and one Redis. Measures how long
//! a change made on one instance takes to apply on the two others (token revocations, through
//! the change feed), and the proxy's latency under wrk with Redis up, then killed.
//!
//! The gateways run in this process, each on a runtime of its own with its own database pool
//! and notification listener, as separate processes would; the propagation time is read off
//! their in-memory state, so it is what a request would see. Redis is a server of the run's
//! own (`redis-server` on a free port), killed for the second latency phase.

use crate::wrk::{self, WrkResult};
use anyhow::{bail, Context};
use bench::gateway_under_test::{self, Options, RunningGateway, ADMIN_KEY};
use bench::temp_postgres::TempPostgres;
use hdrhistogram::Histogram;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Options of `bench cluster`.
#[derive(clap::Args)]
pub struct Args {
    /// PostgreSQL server on which the run's database is created (and dropped at its end).
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    postgres: String,
    /// Changes (token revocations) whose propagation is timed.
    #[arg(long, default_value_t = 100)]
    changes: usize,
    /// Seconds of wrk load per latency phase (Redis up, Redis killed).
    #[arg(long, default_value_t = 15)]
    duration: u32,
    /// wrk connections.
    #[arg(long, default_value_t = 20)]
    connections: u32,
    /// Folder with `plugins.toml` and the default plugins (built by `make plugins`).
    #[arg(long, default_value = "policies-wasm")]
    plugins_dir: PathBuf,
}

/// Runs the benchmark and prints its figures.
pub fn run(args: Args) -> anyhow::Result<()> {
    wrk::ensure_installed()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let database = runtime.block_on(TempPostgres::create(&args.postgres))?;
    let mut redis = testkit::ThrowawayRedis::start();
    let mut options = Options::throughput(args.plugins_dir.clone(), true);
    options.database_url = Some(database.url.clone());
    options.redis_url = Some(redis.url());
    let gateways: Vec<RunningGateway> = (0..3)
        .map(|i| gateway_under_test::start(&options, &format!("cluster-{i}"), 1))
        .collect::<anyhow::Result<_>>()?;

    let (to_first, to_all) = runtime.block_on(propagation(&gateways, args.changes))?;
    println!(
        "propagation of {} revocations from instance 0:",
        args.changes
    );
    print_histogram("to one other instance", &to_first);
    print_histogram("to both other instances", &to_all);

    let client = reqwest::Client::new();
    let body = runtime.block_on(gateway_under_test::openai_chat_body(
        &client,
        &gateways[0].url,
    ))?;
    let data_dir = gateway_under_test::temp_data_dir("cluster")?;
    let script = wrk::post_script(&data_dir, &body)?;
    let load = wrk::Load {
        threads: 2,
        connections: args.connections,
        seconds: args.duration,
    };
    let target = format!("{}/api/proxy-request", gateways[0].url);
    let up = load.run(&script, &target)?;
    print_phase("Redis up", &up);
    redis.kill();
    let down = load.run(&script, &target)?;
    print_phase("Redis killed", &down);
    let fallbacks = gateways[0]
        .state
        .metrics
        .cluster
        .redis_fallbacks
        .with_label_values(&["rate_limit", "open"])
        .get();
    println!(
        "rate-limit checks served from memory while Redis was away (breaker open): {fallbacks}"
    );
    println!(
        "p99 ratio killed / up: {:.2} (target ≤ 2)",
        down.p99_ms / up.p99_ms.max(f64::MIN_POSITIVE)
    );
    let _ = std::fs::remove_dir_all(&data_dir);
    drop(gateways);
    drop(database);
    Ok(())
}

/// Mints `changes` tokens on instance 0, then revokes them one at a time; for each, the time
/// from sending the revocation until the first and until both other instances refuse it.
async fn propagation(
    gateways: &[RunningGateway],
    changes: usize,
) -> anyhow::Result<(Histogram<u64>, Histogram<u64>)> {
    let client = reqwest::Client::new();
    let first = &gateways[0];
    let admin = |method: reqwest::Method, path: String| {
        client
            .request(method, format!("{}{path}", first.url))
            .bearer_auth(ADMIN_KEY)
    };
    let agent: serde_json::Value = admin(reqwest::Method::POST, "/api/create-agent".into())
        .json(&serde_json::json!({"name": "cluster", "created_by": "bench", "role": "bench"}))
        .send()
        .await?
        .json()
        .await?;
    let agent_id = agent["agent_id"].as_str().context("agent id")?.to_string();
    let mut to_first = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut to_all = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    for _ in 0..changes {
        let minted: serde_json::Value = admin(reqwest::Method::POST, "/api/generate-token".into())
            .json(
                &serde_json::json!({"agent_id": agent_id, "tools": ["openai"],
                                      "permissions": ["read"], "ttl_minutes": 30}),
            )
            .send()
            .await?
            .json()
            .await?;
        let token_id = minted["token_id"].as_str().context("token id")?.to_string();
        let jti: uuid::Uuid = token_id.parse()?;
        let sent = Instant::now();
        let revoked = admin(
            reqwest::Method::POST,
            format!("/api/admin/tokens/{token_id}/revoke"),
        )
        .send()
        .await?;
        if !revoked.status().is_success() {
            bail!("revocation refused: {}", revoked.text().await?);
        }
        let mut seen = [false; 2];
        let deadline = sent + Duration::from_secs(30);
        while !seen.iter().all(|s| *s) {
            for (i, gateway) in gateways[1..].iter().enumerate() {
                if !seen[i] && gateway.state.mirror.is_revoked(&jti) {
                    seen[i] = true;
                    let us = sent.elapsed().as_micros() as u64;
                    if seen.iter().filter(|s| **s).count() == 1 {
                        to_first.record(us.max(1))?;
                    }
                    if seen.iter().all(|s| *s) {
                        to_all.record(us.max(1))?;
                    }
                }
            }
            if Instant::now() > deadline {
                bail!("a revocation did not reach every instance within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    Ok((to_first, to_all))
}

fn print_histogram(what: &str, h: &Histogram<u64>) {
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "  {what}: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} changes)",
        ms(0.5),
        ms(0.99),
        h.max() as f64 / 1000.0,
        h.len()
    );
}

fn print_phase(what: &str, r: &WrkResult) {
    println!(
        "{what}: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, non-2xx {}",
        r.requests_per_sec, r.p50_ms, r.p99_ms, r.non_2xx
    );
}
