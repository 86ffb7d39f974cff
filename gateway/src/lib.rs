//! 4RUNR Gateway: the library behind the `gateway` binary.
//!
//! The gateway lets AI agents call external tools without holding the tools' credentials.
//! This crate owns the HTTP API, the agents and their keys, token issue and validation,
//! storage and metrics. [`app::build`] assembles everything from a [`config::Config`].

pub mod admin_cli;
pub mod api;
pub mod app;
pub mod audit;
pub mod auth;
pub mod catalog;
pub mod change_feed;
pub mod chaos_rules;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod error;
pub mod metrics;
pub mod pipeline;
pub mod plugins;
pub mod policies;
pub mod refresh;
pub mod resilience;
pub mod server;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod tokens;
pub mod tools;
