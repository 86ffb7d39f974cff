//! `bench hostile`: the gateway under the attacks its bounds answer, each phase next to a calm
//! baseline in the same run. `/health` is timed throughout from 127.0.0.2, a client of its
//! own (a load balancer's health check); the attackers are on 127.0.0.1.
//!
//! - `connections`: `--connections` idle connections from one client, held by child
//!   processes of this binary (so that the attacker's file limit is not the gateway's), each
//!   reconnecting a second after the gateway closes it; then the same as slowloris (headers
//!   started and never finished).
//! - `stuck plugins`: `--stuck-calls` concurrent calls into the `loop-forever` fixture at the
//!   largest budget a binding may have, each sent again when it ends.
//! - `fetch memory`: `--fetches` `http_fetch` calls of distinct URLs, each ~1 MB of JSON
//!   built to take ~12 times its size as a tree, from a local upstream (private addresses
//!   allowed for this run only); resident memory before, at its peak and after.
//!
//! Resident memory is this process's: the gateway, the probe and the upstream.

use anyhow::{bail, Context};
use bench::gateway_under_test::{self, Options, RunningGateway, ADMIN_KEY};
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Arguments of `bench hostile`.
#[derive(clap::Args)]
pub struct Args {
    /// Connections the attacker holds (split over child processes of 10,000 at most).
    #[arg(long, default_value_t = 20_000)]
    connections: usize,
    /// Concurrent calls into the stuck plugin.
    #[arg(long, default_value_t = 200)]
    stuck_calls: usize,
    /// Fetches of ~1 MB JSON bombs.
    #[arg(long, default_value_t = 300)]
    fetches: usize,
    /// Seconds each phase lasts (the baseline too).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Folder of the default plugins and of `plugins.toml`.
    #[arg(long, default_value = "policies-wasm")]
    plugins_dir: PathBuf,
    /// Folder of the built test fixtures (`loop-forever.wasm`).
    #[arg(long, default_value = "target/plugin-fixtures")]
    fixtures_dir: PathBuf,
    /// Skip the connection and stuck-plugin phases (the fetch phase's memory then starts
    /// from a process that has served nothing else).
    #[arg(long)]
    fetch_only: bool,
}

/// Arguments of the hidden `attack-connections` command (a child of `bench hostile`).
#[derive(clap::Args)]
pub struct AttackArgs {
    /// The gateway's address.
    #[arg(long)]
    to: SocketAddr,
    /// Connections to hold.
    #[arg(long)]
    count: usize,
    /// Send the start of a request's headers and never finish them.
    #[arg(long)]
    slowloris: bool,
}

/// Most connections one child process holds.
const PER_CHILD: usize = 10_000;
/// Time between two health probes.
const PROBE_EVERY: Duration = Duration::from_millis(20);

/// Runs every phase and prints a table.
pub fn run(args: Args) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    // Mock upstreams, `loop-forever` bound to openai; connection limits at their defaults,
    // as `gateway serve` runs (the bench's own gateways raise the per-client one).
    let mut rows = Vec::new();
    if !args.fetch_only {
        let mock = gateway_under_test::start(
            &Options {
                adjust: Some(|s| s.server = Default::default()),
                ..Options::throughput(stuck_plugin_dir(&args)?, true)
            },
            "hostile",
            2,
        )?;
        rows = runtime.block_on(connection_and_plugin_phases(&args, &mock))?;
    }
    // Live upstreams, private addresses allowed for this run (the bombs are served locally),
    // no plugins.
    let live = gateway_under_test::start(
        &Options {
            adjust: Some(|s| {
                s.server = Default::default();
                s.proxy.upstream_mode = gateway::config::UpstreamMode::Live;
                s.proxy.http_fetch_allow_private = true;
            }),
            ..Options::throughput(gateway_under_test::temp_data_dir("hostile-none")?, true)
        },
        "hostile-live",
        2,
    )?;
    rows.extend(runtime.block_on(fetch_phase(&args, &live))?);
    println!(
        "{:<34} {:>9} {:>9} {:>9} {:>8} {:>10}",
        "phase", "p50 ms", "p99 ms", "max ms", "probes", "RSS MiB"
    );
    for row in rows {
        println!(
            "{:<34} {:>9.2} {:>9.2} {:>9.2} {:>8} {:>10.0}",
            row.phase, row.p50_ms, row.p99_ms, row.max_ms, row.probes, row.rss_mib
        );
    }
    Ok(())
}

/// One phase's health probes and memory.
struct Row {
    phase: String,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    probes: u64,
    rss_mib: f64,
}

/// A plugin folder with `loop-forever` bound to openai (the tool the stuck phase calls).
fn stuck_plugin_dir(args: &Args) -> anyhow::Result<PathBuf> {
    let dir = gateway_under_test::temp_data_dir("hostile-plugins")?;
    let stuck = args.fixtures_dir.join("loop-forever.wasm");
    std::fs::copy(&stuck, dir.join("loop-forever.wasm"))
        .with_context(|| format!("{} (run `make plugins`)", stuck.display()))?;
    let timeout = gateway::plugins::manifest::MAX_TIMEOUT_MS;
    std::fs::write(
        dir.join("plugins.toml"),
        format!(
            "[[binding]]\nplugin = \"loop-forever.wasm\"\ntools = [\"openai\"]\n\
             timeout_ms = {timeout}\nreuse = false\n"
        ),
    )?;
    Ok(dir)
}

async fn connection_and_plugin_phases(
    args: &Args,
    gateway: &RunningGateway,
) -> anyhow::Result<Vec<Row>> {
    let base = gateway.url.clone();
    let to: SocketAddr = base.trim_start_matches("http://").parse()?;
    let token = agent_token(&base).await?;
    let mut rows = vec![probe("calm (baseline)", &base, args.seconds).await?];
    for slowloris in [false, true] {
        let children = attackers(to, args.connections, slowloris)?;
        let name = if slowloris { "slowloris" } else { "idle" };
        let phase = format!("{} {name} connections", args.connections);
        rows.push(probe(&phase, &base, args.seconds).await?);
        drop(children);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let stuck = stuck_calls(&base, &token, args.stuck_calls, Arc::clone(&stop));
    let phase = format!("{} stuck plugin calls", args.stuck_calls);
    rows.push(probe(&phase, &base, args.seconds).await?);
    stop.store(true, Ordering::SeqCst);
    for call in stuck {
        let _ = call.await;
    }
    Ok(rows)
}

async fn fetch_phase(args: &Args, gateway: &RunningGateway) -> anyhow::Result<Vec<Row>> {
    let token = agent_token(&gateway.url).await?;
    let before = crate::flatness::resident_mib()?;
    let peak = fetch_bombs(&gateway.url, &token, args.fetches).await?;
    let after = crate::flatness::resident_mib()?;
    Ok(vec![
        Row::memory(
            format!("{} fetches of 1 MB bombs: before", args.fetches),
            before,
        ),
        Row::memory("  highest during".into(), peak),
        Row::memory("  after".into(), after),
    ])
}

impl Row {
    /// A row of memory only.
    fn memory(phase: String, rss_mib: f64) -> Self {
        Row {
            phase,
            p50_ms: 0.0,
            p99_ms: 0.0,
            max_ms: 0.0,
            probes: 0,
            rss_mib,
        }
    }
}

/// An agent of a role without policies, allowed `http_fetch` and `openai`, and its token.
async fn agent_token(base: &str) -> anyhow::Result<String> {
    let client = reqwest::Client::new();
    let created: Value = client
        .post(format!("{base}/api/create-agent"))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"name": "hostile", "created_by": "bench", "role": "bench"}))
        .send()
        .await?
        .json()
        .await?;
    let agent = created["agent_id"].as_str().context("no agent_id")?;
    let minted: Value = client
        .post(format!("{base}/api/generate-token"))
        .bearer_auth(ADMIN_KEY)
        .json(
            &json!({"agent_id": agent, "tools": ["http_fetch", "openai"],
                      "permissions": ["read"], "ttl_minutes": 120}),
        )
        .send()
        .await?
        .json()
        .await?;
    Ok(minted["agent_token"]
        .as_str()
        .context("no token")?
        .to_string())
}

/// Times `/health` from 127.0.0.2 every [`PROBE_EVERY`] for `seconds`.
async fn probe(phase: &str, base: &str, seconds: u64) -> anyhow::Result<Row> {
    let client = reqwest::Client::builder()
        .local_address(IpAddr::from([127, 0, 0, 2]))
        .timeout(Duration::from_secs(30))
        .build()?;
    let mut latencies = Histogram::<u64>::new(3)?;
    let until = Instant::now() + Duration::from_secs(seconds);
    let mut peak_rss = 0.0f64;
    while Instant::now() < until {
        let started = Instant::now();
        let status = client.get(format!("{base}/health")).send().await?.status();
        if !status.is_success() {
            bail!("{phase}: /health answered {status}");
        }
        latencies.record(started.elapsed().as_micros() as u64)?;
        peak_rss = peak_rss.max(crate::flatness::resident_mib()?);
        tokio::time::sleep(PROBE_EVERY).await;
    }
    let ms = |us: u64| us as f64 / 1000.0;
    Ok(Row {
        phase: phase.to_string(),
        p50_ms: ms(latencies.value_at_quantile(0.5)),
        p99_ms: ms(latencies.value_at_quantile(0.99)),
        max_ms: ms(latencies.max()),
        probes: latencies.len(),
        rss_mib: peak_rss,
    })
}

/// Child processes holding `count` connections to `to`; killed when dropped.
struct Attackers(Vec<Child>);

impl Drop for Attackers {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts the attackers and waits until each holds its connections.
fn attackers(to: SocketAddr, count: usize, slowloris: bool) -> anyhow::Result<Attackers> {
    let mut children = Attackers(Vec::new());
    let mut left = count;
    while left > 0 {
        let share = left.min(PER_CHILD);
        left -= share;
        let mut command = Command::new(std::env::current_exe()?);
        command
            .args([
                "attack-connections",
                "--to",
                &to.to_string(),
                "--count",
                &share.to_string(),
            ])
            .stdout(Stdio::piped());
        if slowloris {
            command.arg("--slowloris");
        }
        children.0.push(command.spawn()?);
    }
    for child in &mut children.0 {
        let stdout = child.stdout.take().context("attacker stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        if !line.starts_with("ready") {
            bail!("an attacker did not start: {line}");
        }
    }
    Ok(children)
}

/// The child: holds `count` connections from 127.0.0.1, each opened again a second after
/// the gateway closes it; prints `ready` once all were opened; runs until killed.
pub fn attack(args: AttackArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(args.count.max(1));
        for _ in 0..args.count {
            let ready = ready_tx.clone();
            tokio::spawn(hold(args.to, args.slowloris, ready));
        }
        for _ in 0..args.count {
            ready_rx.recv().await;
        }
        println!("ready");
        std::future::pending::<()>().await;
    });
    Ok(())
}

/// One connection slot of an attacker.
async fn hold(to: SocketAddr, slowloris: bool, ready: tokio::sync::mpsc::Sender<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut first = true;
    loop {
        if let Ok(mut stream) = tokio::net::TcpStream::connect(to).await {
            if slowloris {
                let _ = stream
                    .write_all(b"GET /health HTTP/1.1\r\nhost: gw\r\nx-slow: ")
                    .await;
            }
            if std::mem::take(&mut first) {
                let _ = ready.send(()).await;
            }
            let mut sink = [0u8; 512];
            while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
        } else if std::mem::take(&mut first) {
            let _ = ready.send(()).await;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// `count` concurrent `openai.chat` calls into the stuck plugin, each sent again when it
/// ends, until `stop`.
fn stuck_calls(
    base: &str,
    token: &str,
    count: usize,
    stop: Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let client = reqwest::Client::new();
    (0..count)
        .map(|_| {
            let (client, url, stop) = (
                client.clone(),
                format!("{base}/api/proxy-request"),
                Arc::clone(&stop),
            );
            let body = json!({"agent_token": token, "tool": "openai", "action": "chat",
                              "params": {"model": "gpt-4o-mini", "input": "hi"}});
            tokio::spawn(async move {
                while !stop.load(Ordering::SeqCst) {
                    let _ = client.post(&url).json(&body).send().await;
                }
            })
        })
        .collect()
}

/// Serves ~1 MB JSON bombs and fetches `count` distinct ones through the gateway, eight at a
/// time; returns the highest resident memory seen meanwhile, MiB.
async fn fetch_bombs(base: &str, token: &str, count: usize) -> anyhow::Result<f64> {
    let bomb: &'static str = Box::leak(format!("[{}[]]", "[],".repeat(333_333)).into_boxed_str());
    let upstream = axum::Router::new().route(
        "/bomb/{n}",
        axum::routing::get(move || async move { ([("content-type", "application/json")], bomb) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let upstream_url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, upstream).await });
    let client = reqwest::Client::new();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..8 {
        let (client, next) = (client.clone(), Arc::clone(&next));
        let (url, upstream_url, token) = (
            format!("{base}/api/proxy-request"),
            upstream_url.clone(),
            token.to_string(),
        );
        workers.push(tokio::spawn(async move {
            let mut peak = 0.0f64;
            loop {
                let n = next.fetch_add(1, Ordering::SeqCst);
                if n >= count {
                    return Ok::<f64, anyhow::Error>(peak);
                }
                let body = json!({"agent_token": token, "tool": "http_fetch", "action": "get",
                                  "params": {"url": format!("{upstream_url}/bomb/{n}")}});
                let answer = client.post(&url).json(&body).send().await?;
                if !answer.status().is_success() {
                    bail!("fetch {n}: {} {}", answer.status(), answer.text().await?);
                }
                let _ = answer.bytes().await?;
                peak = peak.max(crate::flatness::resident_mib()?);
            }
        }));
    }
    let mut peak = 0.0f64;
    for worker in workers {
        peak = peak.max(worker.await??);
    }
    Ok(peak)
}
