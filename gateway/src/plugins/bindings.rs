//! Host-side bindings generated from the contract in `sdk/wit` (the only definition of it).

#![allow(missing_docs)]

/// The `policy-plugin` world.
pub mod policy_world {
    wasmtime::component::bindgen!({
        path: "../sdk/wit",
        world: "policy-plugin",
        // Only the counters can wait (on Redis); the other host functions answer at once
        // and are plain calls, which cost less than an async host call on the plugin's fiber.
        imports: {
            "gateway:plugin/host.counter-add": async | trappable,
            "gateway:plugin/host.counters-add": async | trappable,
            default: trappable,
        },
        exports: { default: async },
        with: {
            "gateway:plugin/types.call": crate::plugins::bindings::CallHandle,
        },
        additional_derives: [PartialEq, Eq],
    });
}

/// The `chaos-plugin` world, sharing the policy world's types and host interface.
pub mod chaos_world {
    wasmtime::component::bindgen!({
        path: "../sdk/wit",
        world: "chaos-plugin",
        imports: { default: trappable },
        exports: { default: async },
        with: {
            "gateway:plugin/types": super::policy_world::gateway::plugin::types,
            "gateway:plugin/host": super::policy_world::gateway::plugin::host,
        },
    });
}

/// The host's side of the `call` resource: a plugin holds a borrow of it for one export
/// call, and its getters read the call the plugin's store is serving.
pub struct CallHandle;

pub use policy_world::gateway::plugin::host::{CounterChange, CounterError, LogLevel};
pub use policy_world::gateway::plugin::types::{
    Decision, DelayedError, Denial, Fault, HttpError, PluginInfo,
};
