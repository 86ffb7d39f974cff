//! Calls into a plugin for one binding: its limits, the pool of live instances a stateless
//! plugin may reuse, and one method per export, each checking the answer against the
//! contract's rules (shared with the SDK).

use super::bindings::{CallHandle, Decision, Fault};
use super::call_clock::{wall_limit, CallClock};
use super::engine::CHECK_EVERY_TICKS;
use super::failure::{classify, limit_host_waits, CallFailure};
use super::plugin::{scratch_context, Live, Plugin};
use super::sandbox::{CallContext, Sandbox};
use gateway_sdk::rules::{check_denial, check_fault, check_filtered_size};
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::Resource;
use wasmtime::Store;

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
