//! One plugin: a compiled, validated component, and the calls into it under a deadline and
//! a memory cap. Any trap, timeout, memory exhaustion or malformed answer is a
//! [`CallFailure`]; the instance that failed is discarded and the next call starts clean.

use super::bindings::chaos_world::{ChaosPlugin, ChaosPluginPre};
use super::bindings::policy_world::{PolicyPlugin, PolicyPluginPre};
use super::bindings::{CallHandle, Decision, Fault, PluginInfo};
use super::call_clock::{wall_limit, CallClock};
use super::engine::{engine, CHECK_EVERY_TICKS};
use super::host_wait::within_wall_limit;
use super::sandbox::{CallContext, Sandbox};
use gateway_sdk::rules::{check_denial, check_fault, check_filtered_size};
use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::{Component, HasSelf, Linker, Resource};
use wasmtime::{Store, Trap, UpdateDeadline};

/// The contract version this gateway speaks: the SDK's, which a test checks against the
/// package line of `sdk/wit/plugin.wit`.
pub const CONTRACT_VERSION: &str = gateway_sdk::CONTRACT_VERSION;
/// The interface a policy plugin exports.
pub const POLICY_INTERFACE: &str = "gateway:plugin/policy@2.0.0";
/// The interface a chaos plugin exports.
pub const CHAOS_INTERFACE: &str = "gateway:plugin/chaos@2.0.0";
/// Largest plugin file accepted.
pub const MAX_PLUGIN_BYTES: usize = 32 << 20;

/// Which world a plugin implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum World {
    /// Allows or denies calls.
    Policy,
    /// Injects faults.
    Chaos,
}

impl World {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            World::Policy => "policy",
            World::Chaos => "chaos",
        }
    }
}

/// Why a plugin could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Over [`MAX_PLUGIN_BYTES`].
    #[error("plugin file is larger than {} MiB", MAX_PLUGIN_BYTES >> 20)]
    TooLarge,
    /// Not a valid WebAssembly component.
    #[error("not a valid WebAssembly component: {0}")]
    Compile(String),
    /// Imports something the gateway does not offer (another contract version, or a
    /// capability such as sockets that plugins do not get).
    #[error("plugin needs imports this gateway does not offer (built for another contract?): {0}")]
    Link(String),
    /// Imports an interface outside the contract (a filesystem, sockets, HTTP…).
    #[error("plugin imports {0}, which plugins do not get (allowed: gateway:plugin/*, and of WASI only clocks, random, io and cli, all virtual)")]
    Import(String),
    /// Exports neither interface.
    #[error("plugin exports neither {POLICY_INTERFACE} nor {CHAOS_INTERFACE}")]
    NoWorld,
    /// Built for another contract major version.
    #[error("plugin was built for contract gateway:plugin@{0}; this gateway speaks gateway:plugin@{CONTRACT_VERSION} (rebuild it with this gateway's SDK)")]
    Contract(String),
    /// The `info` dry call failed.
    #[error("plugin failed its dry call: {0}")]
    DryCall(CallFailure),
}

/// How a call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The plugin trapped (panic, unreachable, host import failure).
    Trap,
    /// It ran past its deadline.
    Timeout,
    /// It asked for more memory than its cap.
    Memory,
    /// Its answer broke the contract.
    Invalid,
    /// Every call slot of its binding stayed taken for as long as a call may last: the
    /// call was not made (overload, not a fault of the plugin's).
    Busy,
}

impl FailureKind {
    /// Every kind, for series created at zero.
    pub const ALL: [FailureKind; 5] = [
        FailureKind::Trap,
        FailureKind::Timeout,
        FailureKind::Memory,
        FailureKind::Invalid,
        FailureKind::Busy,
    ];

    /// Metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Trap => "trap",
            FailureKind::Timeout => "timeout",
            FailureKind::Memory => "memory",
            FailureKind::Invalid => "invalid",
            FailureKind::Busy => "busy",
        }
    }
}

/// A failed call: its kind and a message for logs (never for API callers).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{} ({message})", kind.as_str())]
pub struct CallFailure {
    /// What went wrong.
    pub kind: FailureKind,
    /// Detail for the log.
    pub message: String,
}

impl CallFailure {
    fn invalid(message: impl Into<String>) -> Self {
        Self {
            kind: FailureKind::Invalid,
            message: message.into(),
        }
    }
}

enum Pre {
    Policy(PolicyPluginPre<Sandbox>),
    Chaos(ChaosPluginPre<Sandbox>),
}

enum Live {
    Policy(PolicyPlugin),
    Chaos(ChaosPlugin),
}

impl Live {
    fn policy(&self) -> Result<&PolicyPlugin, CallFailure> {
        match self {
            Live::Policy(policy) => Ok(policy),
            Live::Chaos(_) => Err(CallFailure::invalid("not a policy plugin")),
        }
    }

    fn chaos(&self) -> Result<&ChaosPlugin, CallFailure> {
        match self {
            Live::Chaos(chaos) => Ok(chaos),
            Live::Policy(_) => Err(CallFailure::invalid("not a chaos plugin")),
        }
    }
}

/// A live instance with its store, ready for another call.
type IdleInstance = (Store<Sandbox>, Live);

/// Limits of one binding's calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallLimits {
    /// Deadline of one call (instantiation included).
    pub timeout: Duration,
    /// Linear memory cap.
    pub memory_bytes: usize,
}

impl Default for CallLimits {
    fn default() -> Self {
        Self {
            timeout: Duration::from_millis(10),
            memory_bytes: 16 << 20,
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

/// The interfaces a plugin may import: the contract's, and the WASI interfaces Rust's
/// `wasm32-wasip2` standard library links, all of them virtual ([`super::virtual_wasi`]):
/// clocks, random, io streams and the cli ones (an empty environment, closed stdio). Not
/// the filesystem, sockets or HTTP.
fn offered_import(name: &str) -> bool {
    let interface = name.split('@').next().unwrap_or(name);
    const OFFERED: &[&str] = &[
        "gateway:plugin/",
        "wasi:clocks/",
        "wasi:random/",
        "wasi:io/",
        "wasi:cli/",
    ];
    OFFERED.iter().any(|prefix| interface.starts_with(prefix))
}

/// The contract version a `gateway:plugin/…@version` name carries, if it is one.
fn contract_of(name: &str) -> Option<&str> {
    let rest = name.strip_prefix("gateway:plugin/")?;
    Some(
        rest.split_once('@')
            .map_or("unversioned", |(_, version)| version),
    )
}

/// True when `version` has this gateway's major version.
fn same_major(version: &str) -> bool {
    version.split('.').next() == CONTRACT_VERSION.split('.').next()
}

/// A context for calls that are about no tool call (`info`, the configuration exports).
fn scratch_context(name: &str) -> CallContext {
    CallContext {
        plugin: Arc::from(name),
        call: Arc::default(),
        attempt: 0,
        config: super::plugin_config::PluginConfig::none(),
        counters: super::counters::Counters::local(),
    }
}

impl Plugin {
    /// Compiles and validates a plugin: component, imports, world, contract version and a
    /// dry call of `info`. Blocking (compilation): call it off the async runtime's workers.
    pub fn load(name: &str, bytes: &[u8]) -> Result<Self, LoadError> {
        if bytes.len() > MAX_PLUGIN_BYTES {
            return Err(LoadError::TooLarge);
        }
        let engine = engine();
        let sha256 = hex::encode(Sha256::digest(bytes));
        let component = compile_cached(&sha256, bytes)?;
        let component_type = component.component_type();
        let imports: Vec<String> = component_type
            .imports(engine)
            .map(|(name, _)| name.to_string())
            .collect();
        let exports: Vec<String> = component_type
            .exports(engine)
            .map(|(name, _)| name.to_string())
            .collect();
        // Another contract first: its imports would also read as "outside the contract".
        if let Some(other) = imports
            .iter()
            .chain(&exports)
            .filter_map(|name| contract_of(name))
            .find(|version| !same_major(version))
        {
            return Err(LoadError::Contract(other.to_string()));
        }
        if let Some(outside) = imports.iter().find(|name| !offered_import(name)) {
            return Err(LoadError::Import(outside.clone()));
        }
        let world = if exports.iter().any(|e| e == POLICY_INTERFACE) {
            World::Policy
        } else if exports.iter().any(|e| e == CHAOS_INTERFACE) {
            World::Chaos
        } else {
            return Err(LoadError::NoWorld);
        };
        let mut linker: Linker<Sandbox> = Linker::new(engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| LoadError::Link(format!("{e:#}")))?;
        PolicyPlugin::add_to_linker::<Sandbox, HasSelf<Sandbox>>(&mut linker, |s| s)
            .map_err(|e| LoadError::Link(format!("{e:#}")))?;
        let instance_pre = linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::Link(format!("{e:#}")))?;
        let pre = match world {
            World::Policy => PolicyPluginPre::new(instance_pre).map(Pre::Policy),
            World::Chaos => ChaosPluginPre::new(instance_pre).map(Pre::Chaos),
        }
        .map_err(|e| LoadError::Link(format!("{e:#}")))?;
        let plugin = Self {
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
            pre,
        };
        let (mut plugin, info) = dry_call_info(plugin);
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

    async fn instantiate(
        &self,
        limits: CallLimits,
        call: CallContext,
    ) -> Result<(Store<Sandbox>, Live), CallFailure> {
        let mut store = Store::new(engine(), Sandbox::new(limits.memory_bytes, call));
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

/// Compiled components by SHA-256, so a plugin bound twice, reloaded unchanged, or loaded by
/// several gateways in one process is compiled once. Bounded: past [`MAX_COMPILED`], the
/// entries least likely to be used again go first (never the whole cache at once).
static COMPILED: std::sync::LazyLock<moka::sync::Cache<String, Component>> =
    std::sync::LazyLock::new(|| moka::sync::Cache::new(MAX_COMPILED));
/// Most compiled components kept.
const MAX_COMPILED: u64 = 64;

fn compile_cached(sha256: &str, bytes: &[u8]) -> Result<Component, LoadError> {
    if let Some(component) = COMPILED.get(sha256) {
        return Ok(component);
    }
    let component =
        Component::new(engine(), bytes).map_err(|e| LoadError::Compile(format!("{e:#}")))?;
    COMPILED.insert(sha256.to_string(), component.clone());
    Ok(component)
}

/// The runtime that runs plugins' `info` dry calls: one thread for the whole process, so a
/// load (from a blocking-pool thread, a CLI command or a test, inside a runtime or not)
/// neither starts a thread nor builds a runtime of its own.
static DRY_CALLS: std::sync::LazyLock<tokio::runtime::Runtime> = std::sync::LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("plugin-dry-calls")
        .enable_time()
        .build()
        .expect("a runtime for plugin dry calls")
});

/// Calls `plugin`'s `info` on [`DRY_CALLS`] and waits for it (blocking this thread); hands
/// the plugin back with the answer.
fn dry_call_info(plugin: Plugin) -> (Plugin, Result<PluginInfo, CallFailure>) {
    let (answer, answered) = std::sync::mpsc::sync_channel(1);
    DRY_CALLS.spawn(async move {
        let info = plugin.call_info().await;
        let _ = answer.send((plugin, info));
    });
    answered
        .recv()
        .unwrap_or_else(|_| panic!("a plugin's info dry call stopped without answering"))
}

/// Maps a wasmtime error to a failure kind, using what the sandbox observed.
fn classify(error: wasmtime::Error, sandbox: &Sandbox) -> CallFailure {
    let kind = if sandbox.memory.refused {
        FailureKind::Memory
    } else if let Some(trap) = error.downcast_ref::<Trap>() {
        if *trap == Trap::Interrupt {
            FailureKind::Timeout
        } else {
            FailureKind::Trap
        }
    } else if sandbox.host_error.is_some() {
        FailureKind::Trap
    } else {
        // Lifting errors (invalid UTF-8, bad discriminants, out-of-bounds pointers) and
        // other non-trap errors mean the answer broke the contract.
        FailureKind::Invalid
    };
    // What the operator reads: the plugin's own panic message when it reported one, the
    // host import's failure, else the root cause (a trap's description), never the wasm
    // backtrace of mangled frame names that wasmtime wraps around it.
    let message = match (kind, &sandbox.panic, &sandbox.host_error) {
        (FailureKind::Trap, Some(panic), _) => format!("plugin {panic}"),
        (_, _, Some(host_error)) => format!("{}: {host_error}", error.root_cause()),
        _ => error.root_cause().to_string(),
    };
    CallFailure { kind, message }
}

/// Runs `call`, stopping it as a timeout failure once it has waited in a host call (a WASI
/// sleep or poll, a counter on Redis) for `limit`; its instance is dropped with it.
async fn limit_host_waits<T>(
    limit: Duration,
    call: impl std::future::Future<Output = Result<T, CallFailure>>,
) -> Result<T, CallFailure> {
    within_wall_limit(limit, call).await.unwrap_or_else(|| {
        Err(CallFailure {
            kind: FailureKind::Timeout,
            message: format!(
                "waited in a host call (sleep, poll or counter) past {} ms",
                limit.as_millis()
            ),
        })
    })
}

/// A plugin bound with limits and an isolation mode: what the gateway calls per request.
pub struct Invoker {
    /// The plugin.
    pub plugin: Arc<Plugin>,
    limits: CallLimits,
    reuse: Option<Mutex<Vec<IdleInstance>>>,
    max_idle: usize,
}

impl Invoker {
    /// An invoker. `reuse` keeps up to `max_idle` live instances (only honoured for plugins
    /// that declare themselves stateless); otherwise every call gets a fresh instance.
    pub fn new(plugin: Arc<Plugin>, limits: CallLimits, reuse: bool, max_idle: usize) -> Self {
        let reuse = (reuse && plugin.info.stateless).then(|| Mutex::new(Vec::new()));
        Self {
            plugin,
            limits,
            reuse,
            max_idle,
        }
    }

    /// The longest a call may last in wall time, whatever it does.
    pub fn wall_limit(&self) -> Duration {
        wall_limit(self.limits.timeout)
    }

    /// True when this invoker reuses live instances.
    pub fn reuses_instances(&self) -> bool {
        self.reuse.is_some()
    }

    async fn checkout(&self, call: CallContext) -> Result<(Store<Sandbox>, Live), CallFailure> {
        let idle = self.reuse.as_ref().and_then(|pool| pool.lock().pop());
        match idle {
            Some((mut store, live)) => {
                store.data_mut().begin_call(call);
                store.data_mut().clock = CallClock::start(self.limits.timeout);
                store.set_epoch_deadline(CHECK_EVERY_TICKS);
                Ok((store, live))
            }
            None => self.plugin.instantiate(self.limits, call).await,
        }
    }

    fn checkin(&self, store: Store<Sandbox>, live: Live) {
        if let Some(pool) = &self.reuse {
            let mut pool = pool.lock();
            if pool.len() < self.max_idle {
                pool.push((store, live));
            }
        }
    }

    /// Runs `body` on a checked-out instance, under the wall-time limit on waits in the host
    /// ([`limit_host_waits`]); the instance goes back to the pool only when `body` succeeded.
    async fn on_instance<T>(
        &self,
        call: CallContext,
        body: impl AsyncFnOnce(&mut Store<Sandbox>, &Live) -> Result<T, CallFailure>,
    ) -> Result<T, CallFailure> {
        limit_host_waits(wall_limit(self.limits.timeout), async move {
            let (mut store, live) = self.checkout(call).await?;
            let answer = body(&mut store, &live).await?;
            self.checkin(store, live);
            Ok(answer)
        })
        .await
    }

    /// Calls `evaluate` of a policy plugin on the context's call.
    pub async fn evaluate(&self, call: CallContext) -> Result<Decision, CallFailure> {
        self.on_instance(call, async |store, live| {
            let policy = live.policy()?;
            let decision = policy
                .gateway_plugin_policy()
                .call_evaluate(&mut *store, lent_call())
                .await
                .map_err(|e| classify(e, store.data()))?;
            if let Decision::Deny(denial) = &decision {
                check_denial(&denial.code, &denial.reason).map_err(CallFailure::invalid)?;
            }
            Ok(decision)
        })
        .await
    }

    /// Calls `filter-response` of a policy plugin on `response_json` (JSON). Returns the
    /// plugin's rewrite, which must be JSON, or `None` when it leaves the response as is.
    pub async fn filter_response(
        &self,
        call: CallContext,
        response_json: &str,
    ) -> Result<Option<String>, CallFailure> {
        self.on_instance(call, async |store, live| {
            let policy = live.policy()?;
            let filtered = policy
                .gateway_plugin_policy()
                .call_filter_response(&mut *store, lent_call(), response_json)
                .await
                .map_err(|e| classify(e, store.data()))?;
            if let Some(filtered) = &filtered {
                check_filtered_size(filtered).map_err(CallFailure::invalid)?;
                if serde_json::from_str::<serde::de::IgnoredAny>(filtered).is_err() {
                    return Err(CallFailure::invalid("filter-response did not return JSON"));
                }
            }
            Ok(filtered)
        })
        .await
    }

    /// Calls `inject` of a chaos plugin on the context's call.
    pub async fn inject(&self, call: CallContext) -> Result<Fault, CallFailure> {
        self.on_instance(call, async |store, live| {
            let chaos = live.chaos()?;
            let fault = chaos
                .gateway_plugin_chaos()
                .call_inject(&mut *store, lent_call())
                .await
                .map_err(|e| classify(e, store.data()))?;
            if !matches!(fault, Fault::None) {
                check_fault(&sdk_fault(&fault)).map_err(CallFailure::invalid)?;
            }
            Ok(fault)
        })
        .await
    }

    /// Calls `validate-config` of a policy plugin on one document: `Ok(Err(problems))` when
    /// the plugin finds it invalid.
    pub async fn validate_config(
        &self,
        document: &str,
    ) -> Result<Result<(), Vec<String>>, CallFailure> {
        let context = scratch_context(&self.plugin.name);
        self.on_instance(context, async |store, live| {
            let policy = live.policy()?;
            policy
                .gateway_plugin_policy()
                .call_validate_config(&mut *store, document)
                .await
                .map_err(|e| classify(e, store.data()))
        })
        .await
    }

    /// Calls `effective-config` of a policy plugin on documents (most general first).
    pub async fn effective_config(
        &self,
        documents: &[String],
    ) -> Result<Result<String, Vec<String>>, CallFailure> {
        let context = scratch_context(&self.plugin.name);
        self.on_instance(context, async |store, live| {
            let policy = live.policy()?;
            policy
                .gateway_plugin_policy()
                .call_effective_config(&mut *store, documents)
                .await
                .map_err(|e| classify(e, store.data()))
        })
        .await
    }
}

/// The `call` lent to a plugin for one export call: a borrow the plugin cannot keep, whose
/// getters read the store's current call ([`Sandbox`]).
fn lent_call() -> Resource<CallHandle> {
    Resource::new_borrow(0)
}

/// A fault in the SDK's form, for the rules the SDK and the host share.
fn sdk_fault(fault: &Fault) -> gateway_sdk::Fault {
    match fault {
        Fault::None => gateway_sdk::Fault::None,
        Fault::Delay(ms) => gateway_sdk::Fault::Delay { ms: *ms },
        Fault::Error(e) => gateway_sdk::Fault::Error {
            status: e.status,
            message: e.message.clone(),
        },
        Fault::Timeout => gateway_sdk::Fault::Timeout,
        Fault::DelayThenError(e) => gateway_sdk::Fault::DelayThenError {
            ms: e.ms,
            status: e.status,
            message: e.message.clone(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contract_version_is_the_wits() {
        let wit = include_str!("../../../sdk/wit/plugin.wit");
        let package = wit
            .lines()
            .find_map(|line| line.strip_prefix("package gateway:plugin@"))
            .expect("a package line");
        assert_eq!(package.trim_end_matches(';'), CONTRACT_VERSION);
        for interface in [POLICY_INTERFACE, CHAOS_INTERFACE] {
            assert!(
                interface.ends_with(&format!("@{CONTRACT_VERSION}")),
                "{interface}"
            );
        }
    }

    #[test]
    fn contract_versions_are_read_from_names() {
        assert_eq!(contract_of("gateway:plugin/host@1.0.0"), Some("1.0.0"));
        assert_eq!(contract_of("gateway:plugin/host"), Some("unversioned"));
        assert_eq!(contract_of("wasi:io/poll@0.2.6"), None);
        assert!(same_major("2.1.0"));
        assert!(!same_major("1.0.0"));
        assert!(!same_major("unversioned"));
    }
}
