//! Host-side bindings generated from the contract in `sdk/wit` (the only definition of it).

#![allow(missing_docs)]

/// The `policy` world.
pub mod policy_world {
    wasmtime::component::bindgen!({
        path: "../sdk/wit",
        world: "policy",
        // Only counter-add can wait (on Redis); the other host functions answer at once and
        // are plain calls, which cost less than an async host call on the plugin's fiber.
        imports: {
            "gateway:plugin/host.log": trappable,
            "gateway:plugin/host.config": trappable,
            "gateway:plugin/host.now-ms": trappable,
            default: async | trappable,
        },
        exports: { default: async },
        additional_derives: [PartialEq, Eq],
    });
}

/// The `chaos` world, sharing the policy world's types and host interface.
pub mod chaos_world {
    wasmtime::component::bindgen!({
        path: "../sdk/wit",
        world: "chaos",
        // The host interface comes from the policy world (`with`), sync and async parts alike.
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "gateway:plugin/types": super::policy_world::gateway::plugin::types,
            "gateway:plugin/host": super::policy_world::gateway::plugin::host,
        },
    });
}

pub use policy_world::gateway::plugin::host::LogLevel;
pub use policy_world::gateway::plugin::types::{
    Decision, DelayedError, Denial, Fault, HttpError, PluginInfo, Request,
};
