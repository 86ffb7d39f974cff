//! Host-side bindings generated from the contract in `sdk/wit` (the only definition of it).

#![allow(missing_docs)]

/// The `policy` world.
pub mod policy_world {
    wasmtime::component::bindgen!({
        path: "../sdk/wit",
        world: "policy",
        imports: { default: async | trappable },
        exports: { default: async },
        additional_derives: [PartialEq, Eq],
    });
}

/// The `chaos` world, sharing the policy world's types and host interface.
pub mod chaos_world {
    wasmtime::component::bindgen!({
        path: "../sdk/wit",
        world: "chaos",
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
