//! The gateway's integration tests, in one binary: every module starts real gateways (SQLite
//! files, PostgreSQL databases, Redis key prefixes of its own) and talks to them over HTTP.
//! One binary links the gateway once instead of once per file, which keeps the suite's build
//! time and disk use down.

#[macro_use]
mod common;

mod access_control;
mod admin_cli;
mod agent_client;
mod agents;
mod audit_evidence;
mod audit_log;
mod audit_upgrade;
mod auth_failures;
mod bad_input;
mod cluster;
mod command_line;
mod connection_limits;
mod fuzzed_input;
mod hostile_agents;
mod mint_scope;
mod monitoring;
mod multi_instance;
mod observability;
mod openapi;
mod original_wire;
mod outages;
mod plugin_cli;
mod plugin_host;
mod plugin_quarantine;
mod plugin_shadows;
mod plugin_uploads;
mod policies_and_plugins;
mod proxy;
mod proxy_live;
mod proxy_params_schema;
mod shutdown_drain;
mod signature_auth;
mod signed_plugin_fleet;
mod signed_plugin_scope;
mod signed_plugins;
mod sqlite_storage;
mod stuck_plugins;
mod tokens;
