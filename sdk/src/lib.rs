//! The 4RUNR Gateway plugin SDK.
//!
//! A plugin is a plain Rust type implementing [`Policy`] or [`Chaos`]. It talks to the
//! gateway only through a [`Host`] (log, config, counters, clock). Built for
//! `wasm32-wasip2`, [`export_policy!`] / [`export_chaos!`] turn it into a WebAssembly
//! component of the contract in `sdk/wit/plugin.wit`; built natively, the same code is
//! unit-tested with [`testing::MockHost`].
//!
//! ```ignore
//! use gateway_sdk::{Decision, Host, PluginInfo, Policy, Request};
//!
//! struct OnlySearch;
//! impl Policy for OnlySearch {
//!     fn info() -> PluginInfo { PluginInfo::new("only-search", "1.0.0", true) }
//!     fn evaluate(_host: &dyn Host, request: &Request) -> Decision {
//!         if request.action == "search" { Decision::Allow } else { Decision::deny("action_blocked", "only search") }
//!     }
//! }
//! gateway_sdk::export_policy!(OnlySearch);
//! ```

mod host;
mod types;

pub mod testing;

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod guest;

pub use host::{Host, LogLevel};
pub use types::{Decision, Fault, PluginInfo, Request};

/// Version of the contract (`sdk/wit/plugin.wit`) this SDK implements.
pub const CONTRACT_VERSION: &str = "1.0.0";

/// A policy plugin: allows or denies calls, and may rewrite successful responses.
pub trait Policy {
    /// Name, version and whether instances may be reused.
    fn info() -> PluginInfo;

    /// Decides whether the call may proceed.
    fn evaluate(host: &dyn Host, request: &Request) -> Decision;

    /// Rewrites the JSON of a successful response. The default leaves it unchanged.
    fn filter_response(host: &dyn Host, request: &Request, response_json: String) -> String {
        let _ = (host, request);
        response_json
    }
}

/// A chaos plugin: decides which fault, if any, to inject into a call.
pub trait Chaos {
    /// Name, version and whether instances may be reused.
    fn info() -> PluginInfo;

    /// The fault for this call ([`Fault::None`] for none). Should depend only on the request
    /// (its `seed` in particular) and the configuration, so that runs are reproducible.
    fn inject(host: &dyn Host, request: &Request) -> Fault;
}

/// Exports a [`Policy`] type as the component's `policy` world (only when built for wasm).
#[macro_export]
macro_rules! export_policy {
    ($plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct GatewayPolicyExport;
            impl $crate::guest::policy::Guest for GatewayPolicyExport {
                fn info() -> $crate::guest::policy::PluginInfo {
                    $crate::guest::report_panics();
                    $crate::guest::info_to_wit(<$plugin as $crate::Policy>::info())
                }
                fn evaluate(
                    request: $crate::guest::policy::Request,
                ) -> $crate::guest::policy::Decision {
                    $crate::guest::report_panics();
                    let request = $crate::guest::policy_request(request);
                    $crate::guest::decision_to_wit(<$plugin as $crate::Policy>::evaluate(
                        &$crate::guest::GuestHost,
                        &request,
                    ))
                }
                fn filter_response(
                    request: $crate::guest::policy::Request,
                    response_json: String,
                ) -> String {
                    $crate::guest::report_panics();
                    let request = $crate::guest::policy_request(request);
                    <$plugin as $crate::Policy>::filter_response(
                        &$crate::guest::GuestHost,
                        &request,
                        response_json,
                    )
                }
            }
    $crate::guest::policy::export!(GatewayPolicyExport with_types_in $crate::guest::policy);
        };
    };
}

/// Exports a [`Chaos`] type as the component's `chaos` world (only when built for wasm).
#[macro_export]
macro_rules! export_chaos {
    ($plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct GatewayChaosExport;
            impl $crate::guest::chaos::Guest for GatewayChaosExport {
                fn info() -> $crate::guest::chaos::PluginInfo {
                    $crate::guest::report_panics();
                    $crate::guest::chaos_info_to_wit(<$plugin as $crate::Chaos>::info())
                }
                fn inject(request: $crate::guest::chaos::Request) -> $crate::guest::chaos::Fault {
                    $crate::guest::report_panics();
                    let request = $crate::guest::chaos_request(request);
                    $crate::guest::fault_to_wit(<$plugin as $crate::Chaos>::inject(
                        &$crate::guest::GuestHost,
                        &request,
                    ))
                }
            }
    $crate::guest::chaos::export!(GatewayChaosExport with_types_in $crate::guest::chaos);
        };
    };
}
