//! The plugin engine: one wasmtime engine (component model, pooling allocator with
//! copy-on-write memory images, epoch interruption driven by a 1 ms ticker thread), the one
//! linker every plugin is linked with, the bounded cache of compiled components, and the
//! executor of the `info` dry calls. A value: the binary makes one; the gateways of one
//! process (tests, the bench) may share one, so that a plugin is compiled once.

use super::contract::LoadError;
use super::sandbox::Sandbox;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ProfilingStrategy,
};

/// Length of one epoch tick: the granularity of call deadlines.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);
/// Largest linear memory any plugin may have (a binding's `memory_mb` is capped to this).
pub const MAX_MEMORY_BYTES: usize = 64 << 20;
/// Epoch ticks between two checks of a running call: at each, the call yields to the
/// executor (if within its CPU budget) or stops. Calls shorter than a tick, the usual case,
/// are never checked.
pub const CHECK_EVERY_TICKS: u64 = 1;
/// Most compiled components kept.
const MAX_COMPILED: u64 = 64;

/// The plugin host's machinery; cheap to clone (clones share it).
#[derive(Clone)]
pub struct PluginEngine(Arc<Inner>);

struct Inner {
    engine: Engine,
    linker: Linker<Sandbox>,
    /// Compiled components by SHA-256, so a plugin bound twice or reloaded unchanged is
    /// compiled once. Bounded: past [`MAX_COMPILED`], the entries least likely to be used
    /// again go first (never the whole cache at once).
    compiled: moka::sync::Cache<String, Component>,
    /// Runs plugins' `info` dry calls on one thread of its own, so a load (from a
    /// blocking-pool thread, a CLI command or a test, inside a runtime or not) neither
    /// starts a thread nor builds a runtime.
    dry_calls: Option<tokio::runtime::Runtime>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which a runtime's own thread may not do: the last
        // clone may go on one (a gateway stopping in a test).
        if let Some(runtime) = self.dry_calls.take() {
            runtime.shutdown_background();
        }
    }
}

impl std::fmt::Debug for PluginEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginEngine")
            .field("compiled", &self.0.compiled.entry_count())
            .finish()
    }
}

impl PluginEngine {
    /// A new engine with its epoch ticker (a thread that ends when the engine is dropped)
    /// and its dry-call executor.
    pub fn new() -> anyhow::Result<Self> {
        let engine = build().unwrap_or_else(|e| {
            tracing::warn!(error = %e, "pooling allocator unavailable; using on-demand allocation");
            build_on_demand()
        });
        let mut linker: Linker<Sandbox> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| anyhow::anyhow!("linking WASI for plugins: {e:#}"))?;
        super::bindings::policy_world::PolicyPlugin::add_to_linker::<Sandbox, HasSelf<Sandbox>>(
            &mut linker,
            |s| s,
        )
        .map_err(|e| anyhow::anyhow!("linking the host imports for plugins: {e:#}"))?;
        let dry_calls = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("plugin-dry-calls")
            .enable_time()
            .build()?;
        let ticker = engine.weak();
        std::thread::Builder::new()
            .name("plugin-epoch".into())
            .spawn(move || {
                while let Some(engine) = ticker.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                }
            })
            .map_err(|e| anyhow::anyhow!("starting the plugin epoch ticker: {e}"))?;
        Ok(Self(Arc::new(Inner {
            engine,
            linker,
            compiled: moka::sync::Cache::new(MAX_COMPILED),
            dry_calls: Some(dry_calls),
        })))
    }

    /// The wasmtime engine.
    pub(crate) fn engine(&self) -> &Engine {
        &self.0.engine
    }

    /// The linker with everything a plugin may import.
    pub(crate) fn linker(&self) -> &Linker<Sandbox> {
        &self.0.linker
    }

    /// The component of `bytes` (whose SHA-256 is `sha256`), compiled once.
    pub(crate) fn compile(&self, sha256: &str, bytes: &[u8]) -> Result<Component, LoadError> {
        if let Some(component) = self.0.compiled.get(sha256) {
            return Ok(component);
        }
        let component = Component::new(&self.0.engine, bytes)
            .map_err(|e| LoadError::Compile(format!("{e:#}")))?;
        self.0
            .compiled
            .insert(sha256.to_string(), component.clone());
        Ok(component)
    }

    /// Runs `call` on the dry-call executor and waits for its answer, blocking this thread.
    pub(crate) fn block_on_dry_call<T: Send + 'static>(
        &self,
        call: impl std::future::Future<Output = T> + Send + 'static,
    ) -> T {
        let (answer, answered) = std::sync::mpsc::sync_channel(1);
        let runtime = self.0.dry_calls.as_ref().expect("taken only on drop");
        runtime.spawn(async move {
            let _ = answer.send(call.await);
        });
        answered
            .recv()
            .unwrap_or_else(|_| panic!("a plugin's dry call stopped without answering"))
    }
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
