//! One plugin: a compiled, validated component ([`Plugin::load`]) and a fresh instance of it
//! under a deadline and a memory cap ([`Plugin::instantiate`]). Calls into an instance are
//! the [`super::invoker`]'s.

use super::bindings::chaos_world::{ChaosPlugin, ChaosPluginPre};
use super::bindings::policy_world::{PolicyPlugin, PolicyPluginPre};
use super::bindings::PluginInfo;
use super::call_clock::CallClock;
use super::contract::{check_interfaces, LoadError, World, MAX_PLUGIN_BYTES};
use super::engine::{PluginEngine, CHECK_EVERY_TICKS};
use super::failure::{classify, limit_host_waits, CallFailure};
use super::invoker::CallLimits;
use super::sandbox::{CallContext, Sandbox};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::Component;
use wasmtime::{Engine, Store, UpdateDeadline};

/// A component linked for its world, ready to instantiate.
enum Pre {
    Policy(PolicyPluginPre<Sandbox>),
    Chaos(ChaosPluginPre<Sandbox>),
}

/// A live instance of either world.
pub(crate) enum Live {
    Policy(PolicyPlugin),
    Chaos(ChaosPlugin),
}

impl Live {
    pub(crate) fn policy(&self) -> Result<&PolicyPlugin, CallFailure> {
        match self {
            Live::Policy(policy) => Ok(policy),
            Live::Chaos(_) => Err(CallFailure::invalid("not a policy plugin")),
        }
    }

    pub(crate) fn chaos(&self) -> Result<&ChaosPlugin, CallFailure> {
        match self {
            Live::Chaos(chaos) => Ok(chaos),
            Live::Policy(_) => Err(CallFailure::invalid("not a chaos plugin")),
        }
    }
}

/// A compiled, validated plugin.
pub struct Plugin {
    /// Name (from its file or upload).
    pub name: String,
    /// What the plugin says about itself.
    pub info: PluginInfo,
    /// Which world it implements.
    pub world: World,
    /// SHA-256 of the file, hex.
    pub sha256: String,
    /// File size in bytes.
    pub size: usize,
    /// The interfaces the component imports, as named in it (`wasi:clocks/wall-clock@0.2.6`).
    pub imports: Vec<String>,
    /// The interfaces it exports (`gateway:plugin/policy@2.0.0`).
    pub exports: Vec<String>,
    engine: Engine,
    pre: Pre,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.name)
            .field("world", &self.world)
            .field("sha256", &self.sha256)
            .finish()
    }
}

/// A context for calls that are about no tool call (`info`, the configuration exports).
pub(crate) fn scratch_context(name: &str) -> CallContext {
    CallContext {
        plugin: Arc::from(name),
        call: Arc::default(),
        attempt: 0,
        config: super::plugin_config::PluginConfig::none(),
        counters: super::counters::Counters::local(),
    }
}

impl Plugin {
    /// Compiles (once per engine) and validates a plugin: component, imports, world,
    /// contract version and a dry call of `info`. Blocking (compilation): call it off the
    /// async runtime's workers.
    pub fn load(engine: &PluginEngine, name: &str, bytes: &[u8]) -> Result<Self, LoadError> {
        if bytes.len() > MAX_PLUGIN_BYTES {
            return Err(LoadError::TooLarge);
        }
        let sha256 = hex::encode(Sha256::digest(bytes));
        let component: Component = engine.compile(&sha256, bytes)?;
        let component_type = component.component_type();
        let imports: Vec<String> = component_type
            .imports(engine.engine())
            .map(|(name, _)| name.to_string())
            .collect();
        let exports: Vec<String> = component_type
            .exports(engine.engine())
            .map(|(name, _)| name.to_string())
            .collect();
        let world = check_interfaces(&imports, &exports)?;
        let link = |e: wasmtime::Error| LoadError::Link(format!("{e:#}"));
        let instance_pre = engine.linker().instantiate_pre(&component).map_err(link)?;
        let pre = match world {
            World::Policy => PolicyPluginPre::new(instance_pre).map(Pre::Policy),
            World::Chaos => ChaosPluginPre::new(instance_pre).map(Pre::Chaos),
        }
        .map_err(link)?;
        let mut plugin = Self {
            name: name.to_string(),
            info: PluginInfo {
                name: name.to_string(),
                version: String::new(),
                stateless: false,
            },
            world,
            sha256,
            size: bytes.len(),
            imports,
            exports,
            engine: engine.engine().clone(),
            pre,
        };
        let (loaded, info) = engine.block_on_dry_call(async move {
            let info = plugin.call_info().await;
            (plugin, info)
        });
        plugin = loaded;
        plugin.info = info.map_err(LoadError::DryCall)?;
        Ok(plugin)
    }

    async fn call_info(&self) -> Result<PluginInfo, CallFailure> {
        let limits = CallLimits {
            timeout: Duration::from_millis(1000),
            ..CallLimits::default()
        };
        let call = async {
            let (mut store, live) = self
                .instantiate(limits, scratch_context(&self.name))
                .await?;
            let result = match &live {
                Live::Policy(p) => p.gateway_plugin_policy().call_info(&mut store).await,
                Live::Chaos(c) => c.gateway_plugin_chaos().call_info(&mut store).await,
            };
            result.map_err(|e| classify(e, store.data()))
        };
        // `info` must answer at once: waiting in the host is allowed no longer than its
        // budget (the reload that loads the plugin waits for this call).
        limit_host_waits(limits.timeout, call).await
    }

    /// A fresh instance for `call`, under `limits`.
    pub(crate) async fn instantiate(
        &self,
        limits: CallLimits,
        call: CallContext,
    ) -> Result<(Store<Sandbox>, Live), CallFailure> {
        let mut store = Store::new(&self.engine, Sandbox::new(limits.memory_bytes, call));
        store.limiter(|s| &mut s.memory);
        store.data_mut().clock = CallClock::start(limits.timeout);
        store.set_epoch_deadline(CHECK_EVERY_TICKS);
        // At each tick past the deadline: a call within its CPU budget goes on, after
        // yielding to the executor, so that a long or stuck call never holds a
        // request-serving thread for more than a tick at a time; past its budget it stops.
        store.epoch_deadline_callback(|mut ctx| {
            let clock = &mut ctx.data_mut().clock;
            Ok(if clock.within_budget() {
                UpdateDeadline::YieldCustom(CHECK_EVERY_TICKS, Box::pin(clock.yield_now()))
            } else {
                UpdateDeadline::Interrupt
            })
        });
        let live = match &self.pre {
            Pre::Policy(p) => p.instantiate_async(&mut store).await.map(Live::Policy),
            Pre::Chaos(c) => c.instantiate_async(&mut store).await.map(Live::Chaos),
        };
        match live {
            Ok(live) => Ok((store, live)),
            Err(e) => Err(classify(e, store.data())),
        }
    }
}
