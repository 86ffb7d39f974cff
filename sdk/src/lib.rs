//! The 4RUNR Gateway plugin SDK, for contract `gateway:plugin@2.0.0` (`sdk/wit/plugin.wit`).
//!
//! A plugin is a plain Rust type implementing [`Policy`] or [`Chaos`]. It reads the call it
//! is asked about through a [`Request`] (each value is fetched from the gateway on first
//! read) and talks to the gateway only through a [`Host`] (log, counters). Its
//! configuration is parsed by [`Policy::configure`] once per configuration id and kept (see
//! [`ConfigCache`]). Built for `wasm32-wasip2`, [`export_policy!`] / [`export_chaos!`] turn
//! it into a WebAssembly component; built natively, the same code is unit-tested with
//! [`testing::PolicyHarness`] / [`testing::ChaosHarness`], which hold answers to the
//! host's rules ([`rules`]).
//!
//! ```ignore
//! use gateway_sdk::{Decision, Host, PluginInfo, Policy, Request};
//!
//! struct OnlySearch;
//! impl Policy for OnlySearch {
//!     type Config = ();
//!     fn info() -> PluginInfo { PluginInfo::new("only-search", "1.0.0", true) }
//!     fn configure(_documents: &[String]) -> Result<(), Vec<String>> { Ok(()) }
//!     fn evaluate(_host: &dyn Host, _config: &(), request: &Request) -> Decision {
//!         if request.action() == "search" { Decision::Allow } else { Decision::deny("action_blocked", "only search") }
//!     }
//! }
//! gateway_sdk::export_policy!(OnlySearch);
//! ```

mod config_cache;
mod host;
pub mod rules;
#[doc(hidden)]
pub mod run;
mod types;

#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod guest;

pub use config_cache::{ConfigCache, KEPT_CONFIGURATIONS};
pub use host::{CounterChange, CounterError, Host, LogLevel, MAX_COUNTER_KEY_BYTES};
pub use types::{Decision, Fault, PluginInfo, Request, RequestFields};

/// Version of the contract (`sdk/wit/plugin.wit`) this SDK implements; a test checks it
/// against the WIT's package line.
pub const CONTRACT_VERSION: &str = "2.0.0";

/// A policy plugin: allows or denies calls, and may rewrite successful responses.
pub trait Policy {
    /// What [`Policy::configure`] makes of the configuration documents.
    type Config: 'static;

    /// Name, version and whether instances may be reused.
    fn info() -> PluginInfo;

    /// Parses the configuration documents (JSON, most general first: later ones win), or
    /// says what is wrong with them, one message per problem.
    fn configure(documents: &[String]) -> Result<Self::Config, Vec<String>>;

    /// Checks one document being stored (`POST`/`PATCH /api/policies`): its problems are
    /// answered to the sender as 400 `validation_failed`. The default runs
    /// [`Policy::configure`] on it alone.
    fn validate(document: &str) -> Result<(), Vec<String>> {
        Self::configure(&[document.to_string()]).map(|_| ())
    }

    /// The effective configuration as JSON, for operators. The default says nothing.
    fn describe(config: &Self::Config) -> String {
        let _ = config;
        "null".to_string()
    }

    /// Decides whether the call may proceed. [`Decision::AllowAndFilter`] asks for
    /// [`Policy::filter_response`] on the call's successful response.
    fn evaluate(host: &dyn Host, config: &Self::Config, request: &Request) -> Decision;

    /// Rewrites the JSON of a successful response (the tool's `data`); `None` leaves it
    /// unchanged. Called only after [`Decision::AllowAndFilter`].
    fn filter_response(
        host: &dyn Host,
        config: &Self::Config,
        request: &Request,
        response_json: &str,
    ) -> Option<String> {
        let _ = (host, config, request, response_json);
        None
    }
}

/// A chaos plugin: decides which fault, if any, to inject into a call.
pub trait Chaos {
    /// What [`Chaos::configure`] makes of the configuration documents.
    type Config: 'static;

    /// Name, version and whether instances may be reused.
    fn info() -> PluginInfo;

    /// Parses the configuration documents (most general first), or says what is wrong.
    fn configure(documents: &[String]) -> Result<Self::Config, Vec<String>>;

    /// The fault for this call ([`Fault::None`] for none). Should depend only on the request
    /// (its seed in particular) and the configuration, so that runs are reproducible.
    fn inject(host: &dyn Host, config: &Self::Config, request: &Request) -> Fault;
}

/// Exports a [`Policy`] type as the component's `gateway:plugin/policy` interface (only
/// when built for wasm).
#[macro_export]
macro_rules! export_policy {
    ($plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            use $crate::guest::policy::exports::gateway::plugin::policy as wit;
            struct GatewayPolicyExport;
            thread_local! {
                static CONFIGS: $crate::ConfigCache<<$plugin as $crate::Policy>::Config> =
                    $crate::ConfigCache::default();
            }
            impl wit::Guest for GatewayPolicyExport {
                fn info() -> wit::PluginInfo {
                    $crate::guest::report_panics();
                    $crate::guest::policy_info(<$plugin as $crate::Policy>::info())
                }
                fn validate_config(document: String) -> Result<(), Vec<String>> {
                    $crate::guest::report_panics();
                    $crate::run::validate::<$plugin>(document)
                }
                fn effective_config(documents: Vec<String>) -> Result<String, Vec<String>> {
                    $crate::guest::report_panics();
                    $crate::run::effective::<$plugin>(&documents)
                }
                fn evaluate(call: &wit::Call) -> wit::Decision {
                    $crate::guest::report_panics();
                    let request = $crate::Request::from_guest(call);
                    let decision = CONFIGS.with(|configs| {
                        $crate::run::evaluate::<$plugin>(
                            &$crate::guest::GuestHost,
                            configs,
                            call.config_id(),
                            || call.config(),
                            &request,
                        )
                    });
                    $crate::guest::decision_to_wit(decision)
                }
                fn filter_response(call: &wit::Call, response_json: String) -> Option<String> {
                    $crate::guest::report_panics();
                    let request = $crate::Request::from_guest(call);
                    CONFIGS.with(|configs| {
                        $crate::run::filter_response::<$plugin>(
                            &$crate::guest::GuestHost,
                            configs,
                            call.config_id(),
                            || call.config(),
                            &request,
                            &response_json,
                        )
                    })
                }
            }
    $crate::guest::policy::export!(GatewayPolicyExport with_types_in $crate::guest::policy);
        };
    };
}

/// Exports a [`Chaos`] type as the component's `gateway:plugin/chaos` interface (only when
/// built for wasm).
#[macro_export]
macro_rules! export_chaos {
    ($plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            use $crate::guest::chaos::exports::gateway::plugin::chaos as wit;
            struct GatewayChaosExport;
            thread_local! {
                static CONFIGS: $crate::ConfigCache<<$plugin as $crate::Chaos>::Config> =
                    $crate::ConfigCache::default();
            }
            impl wit::Guest for GatewayChaosExport {
                fn info() -> wit::PluginInfo {
                    $crate::guest::report_panics();
                    $crate::guest::chaos_info(<$plugin as $crate::Chaos>::info())
                }
                fn inject(call: &wit::Call) -> wit::Fault {
                    $crate::guest::report_panics();
                    let request = $crate::Request::from_guest(call);
                    let fault = CONFIGS.with(|configs| {
                        $crate::run::inject::<$plugin>(
                            &$crate::guest::GuestHost,
                            configs,
                            call.config_id(),
                            || call.config(),
                            &request,
                        )
                    });
                    $crate::guest::fault_to_wit(fault)
                }
            }
    $crate::guest::chaos::export!(GatewayChaosExport with_types_in $crate::guest::chaos);
        };
    };
}
