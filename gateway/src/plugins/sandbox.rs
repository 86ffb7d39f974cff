//! What a plugin instance may touch: a virtual WASI context (the call's clock and seeded
//! random; no filesystem, environment, stdio or sockets: [`super::virtual_wasi`]), a memory
//! cap, the `call` it is lent, and the host imports: `log`, `counter-add`, `counters-add`.

use super::bindings::policy_world::gateway::plugin::{host, types};
use super::bindings::{CallHandle, CounterChange, CounterError, LogLevel};
use super::call_data::CallData;
use super::counters::{self, Counters};
use super::plugin_config::PluginConfig;
use gateway_sdk::rules::{MAX_LOG_LINES_PER_CALL, MAX_LOG_MESSAGE_BYTES};
use std::sync::Arc;
use wasmtime::component::{Resource, ResourceTable};
use wasmtime::ResourceLimiter;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// What one call gives the plugin: the call's values, its configuration, the counters.
#[derive(Clone)]
pub struct CallContext {
    /// Binding name: in logs, and the namespace of the binding's counters.
    pub plugin: Arc<str>,
    /// The call behind the `call` resource (empty for `info` and the configuration
    /// exports, which get no call).
    pub call: Arc<CallData>,
    /// Upstream attempt number (chaos asks once per attempt): added to the call's seed.
    pub attempt: u32,
    /// Configuration documents behind `call.config()`, and their id.
    pub config: PluginConfig,
    /// Counters behind `counter-add`.
    pub counters: Counters,
}

impl CallContext {
    /// The call's time: what `call.now-ms` and the WASI clocks read, so a call sees one clock.
    pub fn now_ms(&self) -> u64 {
        self.call.now_ms
    }

    /// The seed of this plugin call: the call's, plus the attempt number. WASI random
    /// numbers of the call come from it.
    pub fn seed(&self) -> u64 {
        self.call.seed.wrapping_add(u64::from(self.attempt))
    }
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
        world.begin(call.now_ms(), call.seed());
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
        self.world.begin(call.now_ms(), call.seed());
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

/// The `call` getters: each reads the call this store is serving (a plugin only ever holds
/// a borrow lent for the current export call, so the handle itself carries nothing).
impl types::HostCall for Sandbox {
    fn correlation_id(&mut self, _: Resource<CallHandle>) -> wasmtime::Result<String> {
        Ok(self.call.call.correlation_id.clone())
    }

    fn agent_id(&mut self, _: Resource<CallHandle>) -> wasmtime::Result<String> {
        Ok(self.call.call.agent_id.clone())
    }

    fn agent_name(&mut self, _: Resource<CallHandle>) -> wasmtime::Result<String> {
        Ok(self.call.call.agent_name.clone())
    }

    fn agent_role(&mut self, _: Resource<CallHandle>) -> wasmtime::Result<String> {
        Ok(self.call.call.agent_role.clone())
    }

    fn tool(&mut self, _: Resource<CallHandle>) -> wasmtime::Result<String> {
        Ok(self.call.call.tool.clone())
    }

    fn action(&mut self, _: Resource<CallHandle>) -> wasmtime::Result<String> {
        Ok(self.call.call.action.clone())
    }

    fn param(&mut self, _: Resource<CallHandle>, name: String) -> wasmtime::Result<Option<String>> {
        Ok(self.call.call.param(&name))
    }

    fn params(&mut self, _: Resource<CallHandle>) -> wasmtime::Result<String> {
        Ok(self.call.call.params_text().to_string())
    }

    fn intent(&mut self, _: Resource<CallHandle>) -> wasmtime::Result<Option<String>> {
        Ok(self.call.call.intent.clone())
    }

    fn token_tools(&mut self, _: Resource<CallHandle>) -> wasmtime::Result<Vec<String>> {
        Ok(self.call.call.token_tools.clone())
    }

    fn token_permissions(&mut self, _: Resource<CallHandle>) -> wasmtime::Result<Vec<String>> {
        Ok(self.call.call.token_permissions.clone())
    }

    fn now_ms(&mut self, _: Resource<CallHandle>) -> wasmtime::Result<u64> {
        Ok(self.call.now_ms())
    }

    fn seed(&mut self, _: Resource<CallHandle>) -> wasmtime::Result<u64> {
        Ok(self.call.seed())
    }

    fn config_id(&mut self, _: Resource<CallHandle>) -> wasmtime::Result<u64> {
        Ok(self.call.config.id)
    }

    fn config(&mut self, _: Resource<CallHandle>) -> wasmtime::Result<Vec<String>> {
        Ok(self
            .call
            .config
            .documents
            .iter()
            .map(|d| d.to_string())
            .collect())
    }

    fn drop(&mut self, _: Resource<CallHandle>) -> wasmtime::Result<()> {
        // Lent, never owned by the plugin: nothing to free.
        Ok(())
    }
}

fn counter_error(e: counters::CounterError) -> CounterError {
    match e {
        counters::CounterError::KeyTooLong => CounterError::KeyTooLong,
        counters::CounterError::Full => CounterError::Full,
    }
}

impl host::Host for Sandbox {
    fn log(&mut self, level: LogLevel, message: String) -> wasmtime::Result<()> {
        self.logs_this_call += 1;
        let is_panic = matches!(level, LogLevel::Error) && message.starts_with("panicked");
        if self.logs_this_call > MAX_LOG_LINES_PER_CALL && !is_panic {
            return Ok(());
        }
        let mut message = message;
        if message.len() > MAX_LOG_MESSAGE_BYTES {
            let mut cut = MAX_LOG_MESSAGE_BYTES;
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

    async fn counter_add(
        &mut self,
        key: String,
        window_ms: u64,
        delta: i64,
    ) -> wasmtime::Result<Result<u64, CounterError>> {
        let context = &self.call;
        Ok(context
            .counters
            .add(&context.plugin, &key, window_ms, delta, context.now_ms())
            .await
            .map_err(counter_error))
    }

    async fn counters_add(
        &mut self,
        changes: Vec<CounterChange>,
    ) -> wasmtime::Result<Result<Vec<u64>, CounterError>> {
        let context = &self.call;
        let changes: Vec<counters::Change> = changes
            .into_iter()
            .map(|c| counters::Change {
                key: c.key,
                window_ms: c.window_ms,
                delta: c.delta,
            })
            .collect();
        Ok(context
            .counters
            .add_all(&context.plugin, &changes, context.now_ms())
            .await
            .map_err(counter_error))
    }
}
