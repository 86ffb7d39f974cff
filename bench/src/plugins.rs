//! `bench plugins`: one spec-policy evaluation, native vs WebAssembly (reused and fresh
//! instances), with HdrHistogram percentiles.

use gateway::plugins::bindings::Request;
use gateway::plugins::counters::Counters;
use gateway::plugins::plugin::{CallLimits, Invoker, Plugin};
use gateway::plugins::sandbox::CallContext;
use gateway_sdk::testing::MockHost;
use gateway_sdk::Policy;
use hdrhistogram::Histogram;
use spec_policy::SpecPolicy;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Options of `bench plugins`.
#[derive(clap::Args)]
pub struct Args {
    /// Measured evaluations per mode (after a warm-up of a tenth as many).
    #[arg(long, default_value_t = 20_000)]
    iterations: u64,
    /// The spec-policy component (built by `make plugins`).
    #[arg(long, default_value = "policies-wasm/spec-policy.wasm")]
    plugin: PathBuf,
    /// Also measure two smaller specs (scopes only; everything but the quota) to show where
    /// the time goes.
    #[arg(long)]
    breakdown: bool,
    /// A policy that does nothing but answer (to measure the host's fixed cost per call).
    #[arg(long, default_value = "target/plugin-fixtures/deny-all.wasm")]
    empty_plugin: PathBuf,
}

/// 2026-01-05 (a Monday) 12:00 UTC: inside the scraper policy's window and schedule.
const NOW_MS: u64 = 1_767_614_400_000;

/// The default scraper policy with its quotas raised so every call takes the allow path.
fn scraper_spec() -> String {
    serde_json::json!({
        "scopes": ["serpapi:search", "http_fetch:get", "http_fetch:head"],
        "intent": "data_collection",
        "guards": {"maxRequestSize": 10000, "maxResponseSize": 1000000,
            "allowedDomains": ["google.com", "bing.com", "yahoo.com", "wikipedia.org", "linkedin.com",
                               "crunchbase.com", "github.com", "stackoverflow.com"],
            "blockedDomains": ["malicious-site.com", "phishing-example.com"],
            "timeWindow": {"start": "06:00", "end": "22:00", "timezone": "UTC"}},
        "quotas": [{"action": "http_fetch:get", "limit": 1_000_000_000u64, "window": "24h", "resetStrategy": "sliding"}],
        "schedule": {"enabled": true, "timezone": "UTC", "allowedDays": [0,1,2,3,4,5,6], "allowedHours": {"start": 6, "end": 22}},
        "responseFilters": {"redactFields": ["api_key", "password", "token"]}
    })
    .to_string()
}

fn request() -> Request {
    Request {
        correlation_id: "bench".into(),
        agent_id: "agent-1".into(),
        agent_name: "scraper-1".into(),
        agent_role: "scraper".into(),
        tool: "http_fetch".into(),
        action: "get".into(),
        params: r#"{"url":"https://www.github.com/rust-lang"}"#.into(),
        intent: None,
        token_tools: vec!["http_fetch".into()],
        token_permissions: vec!["read".into()],
        now_ms: NOW_MS,
        seed: 1,
    }
}

fn sdk_request(r: &Request) -> gateway_sdk::Request {
    gateway_sdk::Request {
        correlation_id: r.correlation_id.clone(),
        agent_id: r.agent_id.clone(),
        agent_name: r.agent_name.clone(),
        agent_role: r.agent_role.clone(),
        tool: r.tool.clone(),
        action: r.action.clone(),
        params: r.params.clone(),
        intent: r.intent.clone(),
        token_tools: r.token_tools.clone(),
        token_permissions: r.token_permissions.clone(),
        now_ms: r.now_ms,
        seed: r.seed,
    }
}

struct Summary {
    median_ns: u64,
    p99_ns: u64,
}

fn summarise(h: &Histogram<u64>) -> Summary {
    Summary {
        median_ns: h.value_at_quantile(0.5),
        p99_ns: h.value_at_quantile(0.99),
    }
}

fn histogram() -> Histogram<u64> {
    // Invariant: 3 significant figures is a valid precision.
    Histogram::new(3).expect("histogram")
}

/// Runs the benchmark and prints the table.
pub fn run(args: Args) -> anyhow::Result<()> {
    let bytes = std::fs::read(&args.plugin)
        .map_err(|e| anyhow::anyhow!("{}: {e} (run `make plugins`)", args.plugin.display()))?;
    let spec_plugin = Arc::new(Plugin::load("spec-policy", &bytes)?);
    let spec: Arc<str> = Arc::from(scraper_spec());
    let req = request();
    let warmup = args.iterations / 10;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let counters = Counters::local();
    let limits = CallLimits {
        timeout: Duration::from_millis(100),
        ..CallLimits::default()
    };
    let empty_bytes = std::fs::read(&args.empty_plugin).map_err(|e| {
        anyhow::anyhow!("{}: {e} (run `make plugins`)", args.empty_plugin.display())
    })?;
    let empty = Arc::new(Plugin::load("deny-all", &empty_bytes)?);

    // Native: the plugin's own Rust code against the SDK's mock host.
    let host = MockHost::new(&spec, NOW_MS);
    let native_req = sdk_request(&req);
    let reused_invoker = Invoker::new(Arc::clone(&spec_plugin), limits, true, 4);
    let fresh_invoker = Invoker::new(Arc::clone(&spec_plugin), limits, false, 4);
    let empty_invoker = Invoker::new(Arc::clone(&empty), limits, true, 4);
    let scopes_only: Arc<str> = Arc::from(r#"{"scopes":["http_fetch:get"]}"#);
    let no_quota: Arc<str> = {
        let mut v: serde_json::Value = serde_json::from_str(&spec)?;
        v["quotas"] = serde_json::json!([]);
        Arc::from(v.to_string())
    };
    let context = |config: &Arc<str>| CallContext {
        plugin: Arc::from("spec-policy"),
        config: Arc::clone(config),
        counters: counters.clone(),
        now_ms: NOW_MS,
    };
    let (mut scopes_h, mut no_quota_h) = (histogram(), histogram());
    let (mut native, mut reused, mut fresh, mut empty_reused) =
        (histogram(), histogram(), histogram(), histogram());

    // The modes run interleaved in small batches, so that a slow spell of this shared
    // machine weighs on all of them alike and the ratios stay meaningful.
    const BATCH: u64 = 500;
    let rounds = (warmup + args.iterations).div_ceil(BATCH);
    let warmup_rounds = warmup.div_ceil(BATCH);
    runtime.block_on(async {
        for round in 0..rounds {
            let keep = round >= warmup_rounds;
            for _ in 0..BATCH {
                let t = Instant::now();
                let d = SpecPolicy::evaluate(&host, &native_req);
                let ns = t.elapsed().as_nanos() as u64;
                anyhow::ensure!(d == gateway_sdk::Decision::Allow, "native answered {d:?}");
                if keep {
                    native.record(ns.max(1))?;
                }
            }
            let mut modes = vec![
                (&reused_invoker, &mut reused, true, &spec),
                (&fresh_invoker, &mut fresh, true, &spec),
                (&empty_invoker, &mut empty_reused, false, &spec),
            ];
            if args.breakdown {
                modes.push((&reused_invoker, &mut scopes_h, true, &scopes_only));
                modes.push((&reused_invoker, &mut no_quota_h, true, &no_quota));
            }
            for (invoker, histogram, expect_allow, config) in modes {
                for _ in 0..BATCH {
                    let ctx = context(config);
                    let t = Instant::now();
                    let d = invoker.evaluate(ctx, &req).await;
                    let ns = t.elapsed().as_nanos() as u64;
                    anyhow::ensure!(
                        d.is_ok()
                            && matches!(d, Ok(gateway::plugins::bindings::Decision::Allow))
                                == expect_allow,
                        "unexpected answer {d:?}"
                    );
                    if keep {
                        histogram.record(ns.max(1))?;
                    }
                }
            }
        }
        Ok(())
    })?;

    let n = summarise(&native);
    let mut rows = vec![
        ("native (same Rust, no sandbox)", &native),
        ("wasm, reused instance (default)", &reused),
        ("wasm, fresh instance per call", &fresh),
        ("empty policy, reused (host cost)", &empty_reused),
    ];
    if args.breakdown {
        rows.push(("wasm reused, spec: scopes only", &scopes_h));
        rows.push(("wasm reused, spec without quota", &no_quota_h));
    }
    println!(
        "spec-policy evaluation, {} calls per mode (after {warmup} warm-up calls)",
        args.iterations
    );
    println!(
        "{:<34} {:>12} {:>12} {:>16}",
        "mode", "median µs", "p99 µs", "median / native"
    );
    for (name, h) in rows {
        let s = summarise(h);
        println!(
            "{:<34} {:>12.2} {:>12.2} {:>15.1}x",
            name,
            s.median_ns as f64 / 1000.0,
            s.p99_ns as f64 / 1000.0,
            s.median_ns as f64 / n.median_ns as f64
        );
    }
    Ok(())
}
