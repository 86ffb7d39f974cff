//! The WebAssembly side: bindings generated from `sdk/wit` and conversions between them and
//! the SDK's plain types. Used by the export macros; not part of the public API.

#![allow(missing_docs)]

#[cfg(all(feature = "policy", feature = "chaos"))]
compile_error!("a plugin implements one world: enable either the `policy` or the `chaos` feature");
#[cfg(not(any(feature = "policy", feature = "chaos")))]
compile_error!("enable the `policy` or the `chaos` feature of gateway-sdk for a wasm plugin");

/// Bindings of the `policy` world.
#[cfg(feature = "policy")]
pub mod policy {
    wit_bindgen::generate!({
        path: "wit",
        world: "policy",
        pub_export_macro: true,
        default_bindings_module: "gateway_sdk::guest::policy",
    });
    pub use gateway::plugin::types::Denial;
}

/// Bindings of the `chaos` world.
#[cfg(feature = "chaos")]
pub mod chaos {
    wit_bindgen::generate!({
        path: "wit",
        world: "chaos",
        pub_export_macro: true,
        default_bindings_module: "gateway_sdk::guest::chaos",
    });
    pub use gateway::plugin::types::{DelayedError, HttpError};
}

use crate::{Host, LogLevel, Request};
#[cfg(feature = "chaos")]
use chaos::gateway::plugin::host as imports;
#[cfg(feature = "policy")]
use policy::gateway::plugin::host as imports;

/// Makes a panic tell the host what it was (once per instance): the message and its place go
/// out through the `log` import, at error level and starting with `panicked`, before the
/// instance traps; the host then reports that line as the call's failure instead of a wasm
/// backtrace.
pub fn report_panics() {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            // The hook's text starts "panicked at <file>:<line>:<column>:".
            imports::log(imports::LogLevel::Error, &info.to_string());
        }));
    });
}

/// The host as seen from inside the component: the `host` imports.
pub struct GuestHost;

impl Host for GuestHost {
    fn log(&self, level: LogLevel, message: &str) {
        use imports::{log, LogLevel as L};
        let level = match level {
            LogLevel::Trace => L::Trace,
            LogLevel::Debug => L::Debug,
            LogLevel::Info => L::Info,
            LogLevel::Warn => L::Warn,
            LogLevel::Error => L::Error,
        };
        log(level, message);
    }

    fn config(&self) -> String {
        imports::config()
    }

    fn counter_add(&self, key: &str, window_ms: u64, delta: i64) -> u64 {
        imports::counter_add(key, window_ms, delta)
    }

    fn now_ms(&self) -> u64 {
        imports::now_ms()
    }
}

macro_rules! request_from_wit {
    ($name:ident, $module:ident) => {
        pub fn $name(r: $module::Request) -> Request {
            Request {
                correlation_id: r.correlation_id,
                agent_id: r.agent_id,
                agent_name: r.agent_name,
                agent_role: r.agent_role,
                tool: r.tool,
                action: r.action,
                params: r.params,
                intent: r.intent,
                token_tools: r.token_tools,
                token_permissions: r.token_permissions,
                now_ms: r.now_ms,
                seed: r.seed,
            }
        }
    };
}
#[cfg(feature = "policy")]
request_from_wit!(policy_request, policy);
#[cfg(feature = "chaos")]
request_from_wit!(chaos_request, chaos);

#[cfg(feature = "policy")]
pub fn info_to_wit(i: crate::PluginInfo) -> policy::PluginInfo {
    policy::PluginInfo {
        name: i.name,
        version: i.version,
        contract: i.contract,
        stateless: i.stateless,
    }
}

#[cfg(feature = "chaos")]
pub fn chaos_info_to_wit(i: crate::PluginInfo) -> chaos::PluginInfo {
    chaos::PluginInfo {
        name: i.name,
        version: i.version,
        contract: i.contract,
        stateless: i.stateless,
    }
}

#[cfg(feature = "policy")]
pub fn decision_to_wit(d: crate::Decision) -> policy::Decision {
    match d {
        crate::Decision::Allow => policy::Decision::Allow,
        crate::Decision::Deny { code, reason } => {
            policy::Decision::Deny(policy::Denial { code, reason })
        }
    }
}

#[cfg(feature = "chaos")]
pub fn fault_to_wit(f: crate::Fault) -> chaos::Fault {
    use crate::Fault;
    match f {
        Fault::None => chaos::Fault::None,
        Fault::Delay { ms } => chaos::Fault::Delay(ms),
        Fault::Error { status, message } => {
            chaos::Fault::Error(chaos::HttpError { status, message })
        }
        Fault::Timeout => chaos::Fault::Timeout,
        Fault::DelayThenError {
            ms,
            status,
            message,
        } => chaos::Fault::DelayThenError(chaos::DelayedError {
            ms,
            status,
            message,
        }),
    }
}
