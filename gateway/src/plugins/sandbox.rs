//! What a plugin instance may touch: a virtual WASI context (the call's clock and seeded
//! random; no filesystem, environment, stdio or sockets: [`super::virtual_wasi`]), a memory
//! cap, and the host imports: `log`, `config`, `counter-add` and `now-ms`.

use super::bindings::policy_world::gateway::plugin::{host, types};
use super::bindings::LogLevel;
use super::counters::Counters;
use std::sync::Arc;
use wasmtime::component::ResourceTable;
use wasmtime::ResourceLimiter;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// Most log lines one call may write; later ones are dropped.
const MAX_LOG_LINES_PER_CALL: u32 = 32;
/// Longest logged message, in bytes.
const MAX_LOG_MESSAGE: usize = 1024;

/// What one call gives the plugin: its configuration, the clock, the counters.
#[derive(Clone)]
pub struct CallContext {
    /// Binding name: in logs, and the namespace of the binding's counters.
    pub plugin: Arc<str>,
    /// Configuration JSON returned by `config()`.
    pub config: Arc<str>,
    /// Counters behind `counter-add`.
    pub counters: Counters,
    /// Time returned by `now-ms()` and by the WASI clocks (the request's time, so a call
    /// sees one clock).
    pub now_ms: u64,
    /// The request's seed: WASI random numbers of the call come from it.
    pub seed: u64,
}

/// Caps linear memory and records whether a growth was refused.
pub struct MemoryCap {
    max_bytes: usize,
    /// Set when the plugin asked for more than its cap.
    pub refused: bool,
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            self.refused = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// The data of a plugin's store.
pub struct Sandbox {
    wasi: WasiCtx,
    world: Arc<super::virtual_wasi::CallWorld>,
    table: ResourceTable,
    /// Memory cap of this instance.
    pub memory: MemoryCap,
    /// The current call.
    pub call: CallContext,
    logs_this_call: u32,
    /// Set when a host import failed in a way that must fail the call.
    pub host_error: Option<String>,
    /// The panic the plugin reported through `log` (the SDK's panic hook) in this call.
    pub panic: Option<String>,
    /// The current call's time budget.
    pub clock: super::call_clock::CallClock,
}

impl Sandbox {
    /// A sandbox with a memory cap and a first call context.
    pub fn new(max_memory_bytes: usize, call: CallContext) -> Self {
        let world = Arc::new(super::virtual_wasi::CallWorld::default());
        world.begin(call.now_ms, call.seed);
        Self {
            // Nothing of the machine is granted: no args, env, preopens, sockets or stdio.
            wasi: world.wasi(),
            world,
            table: ResourceTable::new(),
            memory: MemoryCap {
                max_bytes: max_memory_bytes,
                refused: false,
            },
            call,
            logs_this_call: 0,
            host_error: None,
            panic: None,
            clock: super::call_clock::CallClock::start(std::time::Duration::from_millis(10)),
        }
    }

    /// Prepares a reused instance for the next call.
    pub fn begin_call(&mut self, call: CallContext) {
        self.world.begin(call.now_ms, call.seed);
        self.call = call;
        self.logs_this_call = 0;
        self.host_error = None;
        self.panic = None;
        self.memory.refused = false;
    }
}

impl WasiView for Sandbox {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl types::Host for Sandbox {}

impl host::Host for Sandbox {
    fn log(&mut self, level: LogLevel, message: String) -> wasmtime::Result<()> {
        self.logs_this_call += 1;
        let is_panic = matches!(level, LogLevel::Error) && message.starts_with("panicked");
        if self.logs_this_call > MAX_LOG_LINES_PER_CALL && !is_panic {
            return Ok(());
        }
        let mut message = message;
        if message.len() > MAX_LOG_MESSAGE {
            let mut cut = MAX_LOG_MESSAGE;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
        }
        if is_panic {
            // Reported as the call's failure (and logged with it): not logged twice.
            self.panic = Some(message);
            return Ok(());
        }
        let plugin = &*self.call.plugin;
        match level {
            LogLevel::Trace => tracing::trace!(plugin, "{message}"),
            LogLevel::Debug => tracing::debug!(plugin, "{message}"),
            LogLevel::Info => tracing::info!(plugin, "{message}"),
            LogLevel::Warn => tracing::warn!(plugin, "{message}"),
            LogLevel::Error => tracing::error!(plugin, "{message}"),
        }
        Ok(())
    }

    fn config(&mut self) -> wasmtime::Result<String> {
        Ok(self.call.config.to_string())
    }

    async fn counter_add(
        &mut self,
        key: String,
        window_ms: u64,
        delta: i64,
    ) -> wasmtime::Result<u64> {
        match self
            .call
            .counters
            .add(&self.call.plugin, &key, window_ms, delta, self.call.now_ms)
            .await
        {
            Ok(v) => Ok(v),
            Err(e) => {
                self.host_error = Some(e.to_string());
                Err(wasmtime::format_err!("counter-add failed: {e}"))
            }
        }
    }

    fn now_ms(&mut self) -> wasmtime::Result<u64> {
        Ok(self.call.now_ms)
    }
}
