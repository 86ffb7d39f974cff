//! The process-wide wasmtime engine: component model, pooling allocator with copy-on-write
//! memory images, and epoch interruption driven by a 1 ms ticker thread (a running call is
//! checked at every tick: see [`CHECK_EVERY_TICKS`]).

use std::sync::OnceLock;
use std::time::Duration;
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ProfilingStrategy,
};

/// Length of one epoch tick: the granularity of call deadlines.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);
/// Largest linear memory any plugin may have (a binding's `memory_mb` is capped to this).
pub const MAX_MEMORY_BYTES: usize = 64 << 20;

static ENGINE: OnceLock<Engine> = OnceLock::new();

/// The shared engine, created (with its ticker thread) on first use.
pub fn engine() -> &'static Engine {
    ENGINE.get_or_init(|| {
        let engine = build().unwrap_or_else(|e| {
            tracing::warn!(error = %e, "pooling allocator unavailable; using on-demand allocation");
            build_on_demand()
        });
        let ticker = engine.clone();
        let spawned = std::thread::Builder::new()
            .name("plugin-epoch".into())
            .spawn(move || loop {
                std::thread::sleep(EPOCH_TICK);
                ticker.increment_epoch();
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the plugin epoch ticker: plugin deadlines will not fire");
        }
        engine
    })
}

fn base_config() -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.concurrency_support(false);
    config.epoch_interruption(true);
    config.memory_init_cow(true);
    // Diagnostics: `PLUGIN_PROFILER=perfmap` writes /tmp/perf-<pid>.map so that `perf`
    // names the plugins' compiled functions instead of showing bare addresses.
    if std::env::var("PLUGIN_PROFILER").as_deref() == Ok("perfmap") {
        config.profiler(ProfilingStrategy::PerfMap);
    }
    config
}

fn build() -> wasmtime::Result<Engine> {
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(1000)
        .total_core_instances(4000)
        .total_memories(1000)
        .total_tables(4000)
        .total_stacks(1000)
        .max_memory_size(MAX_MEMORY_BYTES)
        .max_core_instances_per_component(64)
        .max_memories_per_component(4)
        .linear_memory_keep_resident(64 << 10)
        .table_keep_resident(64 << 10);
    let mut config = base_config();
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&config)
}

fn build_on_demand() -> Engine {
    // Invariant: the base configuration is valid on every supported platform.
    Engine::new(&base_config()).expect("on-demand wasmtime engine")
}

/// Epoch ticks between two checks of a running call: at each, the call yields to the
/// executor (if within its CPU budget) or stops. Calls shorter than a tick, the usual case,
/// are never checked.
pub const CHECK_EVERY_TICKS: u64 = 1;
