//! The WebAssembly plugin host: policies and chaos rules as sandboxed components.
//!
//! - [`engine`]: the plugin engine (wasmtime with its pooling allocator and epoch
//!   deadlines, the linker, the compile cache, the dry-call executor), a value.
//! - [`contract`]: the contract version, the interfaces and imports a plugin may have.
//! - [`bindings`]: host-side bindings generated from `sdk/wit`.
//! - [`call_data`]: one tool call as plugins see it (the contract's `call` resource).
//! - [`plugin_config`]: a call's configuration documents and the id that names them.
//! - [`call_clock`]: a call's time budget, in CPU time.
//! - [`call_slots`]: how many calls of one binding run at once.
//! - [`sandbox`]: what a plugin instance may touch (a WASI context that grants nothing,
//!   the host imports, the memory cap).
//! - [`counters`]: the quota counters behind `counter-add`.
//! - [`plugin`]: one compiled, validated plugin and a fresh instance of it.
//! - [`invoker`]: one binding's calls into a plugin, and its pool of live instances.
//! - [`failure`]: how a call fails, by kind.
//! - [`manifest`]: `plugins.toml`, which binds plugins to tools and roles.
//! - [`registry`]: the live set, swapped atomically on reload.
//! - [`scaffold`]: `gateway plugin new`, a new plugin crate.
//! - [`signing`]: signed plugins (`gateway plugin sign`, `PLUGIN_TRUSTED_KEYS`).
//! - [`virtual_wasi`]: the WASI a plugin sees (the call's clock and seeded random only).
//! - [`watch`]: hot reload of the plugin directory.

pub mod bindings;
pub mod call_clock;
pub mod call_data;
pub mod call_slots;
pub mod cli;
pub mod contract;
pub mod counters;
pub mod engine;
pub mod failure;
pub mod host_wait;
pub mod invoker;
pub mod manifest;
pub mod plugin;
pub mod plugin_config;
pub mod record;
pub mod registry;
pub mod sandbox;
pub mod scaffold;
pub mod signed_scope;
pub mod signing;
pub mod virtual_wasi;
pub mod watch;

pub use contract::{LoadError, World};
pub use engine::PluginEngine;
pub use failure::{CallFailure, FailureKind};
pub use invoker::{CallLimits, Invoker};
pub use plugin::Plugin;
