//! The WebAssembly side: bindings generated from `sdk/wit` and conversions between them and
//! the SDK's plain types. Used by the export macros; not part of the public API.

#![allow(missing_docs)]

#[cfg(all(feature = "policy", feature = "chaos"))]
compile_error!("a plugin implements one world: enable either the `policy` or the `chaos` feature");
#[cfg(not(any(feature = "policy", feature = "chaos")))]
compile_error!("enable the `policy` or the `chaos` feature of gateway-sdk for a wasm plugin");

/// Bindings of the `policy-plugin` world.
#[cfg(feature = "policy")]
pub mod policy {
    wit_bindgen::generate!({
        path: "wit",
        world: "policy-plugin",
        pub_export_macro: true,
        default_bindings_module: "gateway_sdk::guest::policy",
    });
}

/// Bindings of the `chaos-plugin` world.
#[cfg(feature = "chaos")]
pub mod chaos {
    wit_bindgen::generate!({
        path: "wit",
        world: "chaos-plugin",
        pub_export_macro: true,
        default_bindings_module: "gateway_sdk::guest::chaos",
    });
}

#[cfg(feature = "chaos")]
use chaos::gateway::plugin::{host as imports, types as wit_types};
#[cfg(feature = "policy")]
use policy::gateway::plugin::{host as imports, types as wit_types};

/// The call the host lends for one export call.
pub use wit_types::Call;

use crate::{CounterChange, CounterError, Host, LogLevel};

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

fn counter_error(e: imports::CounterError) -> CounterError {
    match e {
        imports::CounterError::KeyTooLong => CounterError::KeyTooLong,
        imports::CounterError::Full => CounterError::Full,
    }
}

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

    fn counter_add(&self, key: &str, window_ms: u64, delta: i64) -> Result<u64, CounterError> {
        imports::counter_add(key, window_ms, delta).map_err(counter_error)
    }

    fn counters_add(&self, changes: &[CounterChange]) -> Result<Vec<u64>, CounterError> {
        let changes: Vec<imports::CounterChange> = changes
            .iter()
            .map(|c| imports::CounterChange {
                key: c.key.clone(),
                window_ms: c.window_ms,
                delta: c.delta,
            })
            .collect();
        imports::counters_add(&changes).map_err(counter_error)
    }
}

fn info_to_wit(i: crate::PluginInfo) -> wit_types::PluginInfo {
    wit_types::PluginInfo {
        name: i.name,
        version: i.version,
        stateless: i.stateless,
    }
}

#[cfg(feature = "policy")]
pub fn policy_info(i: crate::PluginInfo) -> wit_types::PluginInfo {
    info_to_wit(i)
}

#[cfg(feature = "chaos")]
pub fn chaos_info(i: crate::PluginInfo) -> wit_types::PluginInfo {
    info_to_wit(i)
}

#[cfg(feature = "policy")]
pub fn decision_to_wit(d: crate::Decision) -> wit_types::Decision {
    match d {
        crate::Decision::Allow => wit_types::Decision::Allow,
        crate::Decision::AllowAndFilter => wit_types::Decision::AllowAndFilter,
        crate::Decision::Deny { code, reason } => {
            wit_types::Decision::Deny(wit_types::Denial { code, reason })
        }
    }
}

#[cfg(feature = "chaos")]
pub fn fault_to_wit(f: crate::Fault) -> wit_types::Fault {
    use crate::Fault;
    match f {
        Fault::None => wit_types::Fault::None,
        Fault::Delay { ms } => wit_types::Fault::Delay(ms),
        Fault::Error { status, message } => {
            wit_types::Fault::Error(wit_types::HttpError { status, message })
        }
        Fault::Timeout => wit_types::Fault::Timeout,
        Fault::DelayThenError {
            ms,
            status,
            message,
        } => wit_types::Fault::DelayThenError(wit_types::DelayedError {
            ms,
            status,
            message,
        }),
    }
}
