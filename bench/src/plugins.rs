//! `bench plugins`: one spec-policy evaluation, native vs WebAssembly (reused and fresh
//! instances), with HdrHistogram percentiles.

use bench::policy_fixture::{request, scraper_spec, sdk_request};
use gateway::plugins::counters::Counters;
use gateway::plugins::plugin_config::PluginConfig;
use gateway::plugins::sandbox::CallContext;
use gateway::plugins::{CallLimits, Invoker, Plugin, PluginEngine};
use gateway_sdk::testing::PolicyHarness;
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
    /// Measure only native and the reused-instance mode (for profiling the default mode
    /// under `perf` without the fresh instances' page faults in the way).
    #[arg(long, conflicts_with = "breakdown")]
    reused_only: bool,
    /// A policy that does nothing but answer (to measure the host's fixed cost per call).
    #[arg(long, default_value = "target/plugin-fixtures/deny-all.wasm")]
    empty_plugin: PathBuf,
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
    let engine = PluginEngine::new()?;
    let spec_plugin = Arc::new(Plugin::load(&engine, "spec-policy", &bytes)?);
    let spec = PluginConfig::single(&scraper_spec());
    let req = Arc::new(request());
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
    let empty = Arc::new(Plugin::load(&engine, "deny-all", &empty_bytes)?);

    // Native: the plugin's own Rust code in the SDK's harness (configuration parsed once,
    // as a reused instance keeps it).
    let native_harness = PolicyHarness::<SpecPolicy>::new(&[&scraper_spec()]);
    let native_req: gateway_sdk::Request = sdk_request(&req).into();
    let reused_invoker = Invoker::new(Arc::clone(&spec_plugin), limits, true, 4);
    let fresh_invoker = Invoker::new(Arc::clone(&spec_plugin), limits, false, 4);
    let empty_invoker = Invoker::new(Arc::clone(&empty), limits, true, 4);
    let empty_fresh_invoker = Invoker::new(Arc::clone(&empty), limits, false, 4);
    let scopes_only = PluginConfig::single(r#"{"scopes":["http_fetch:get"]}"#);
    let no_quota = {
        let mut v: serde_json::Value = serde_json::from_str(&scraper_spec())?;
        v["quotas"] = serde_json::json!([]);
        PluginConfig::single(&v.to_string())
    };
    let context = |config: &PluginConfig| CallContext {
        plugin: Arc::from("spec-policy"),
        call: Arc::clone(&req),
        attempt: 0,
        config: config.clone(),
        counters: counters.clone(),
    };
    let (mut scopes_h, mut no_quota_h) = (histogram(), histogram());
    let (mut native, mut reused, mut fresh, mut empty_reused, mut empty_fresh) = (
        histogram(),
        histogram(),
        histogram(),
        histogram(),
        histogram(),
    );

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
                let d = native_harness.evaluate(&native_req);
                let ns = t.elapsed().as_nanos() as u64;
                anyhow::ensure!(
                    d == gateway_sdk::Decision::AllowAndFilter,
                    "native answered {d:?}"
                );
                if keep {
                    native.record(ns.max(1))?;
                }
            }
            let mut modes = vec![(&reused_invoker, &mut reused, true, &spec)];
            if !args.reused_only {
                modes.push((&fresh_invoker, &mut fresh, true, &spec));
                modes.push((&empty_invoker, &mut empty_reused, false, &spec));
                modes.push((&empty_fresh_invoker, &mut empty_fresh, false, &spec));
            }
            if args.breakdown {
                modes.push((&reused_invoker, &mut scopes_h, true, &scopes_only));
                modes.push((&reused_invoker, &mut no_quota_h, true, &no_quota));
            }
            for (invoker, histogram, expect_allow, config) in modes {
                for _ in 0..BATCH {
                    let ctx = context(config);
                    let t = Instant::now();
                    let d = invoker.evaluate(ctx).await;
                    let ns = t.elapsed().as_nanos() as u64;
                    use gateway::plugins::bindings::Decision;
                    anyhow::ensure!(
                        d.is_ok()
                            && matches!(d, Ok(Decision::Allow | Decision::AllowAndFilter))
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
    ];
    if !args.reused_only {
        rows.push(("wasm, fresh instance per call", &fresh));
        rows.push(("empty policy, reused (host cost)", &empty_reused));
        rows.push(("empty policy, fresh instance", &empty_fresh));
    }
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
