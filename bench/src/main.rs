//! `bench`: the gateway's benchmark harness.
//!
//! `bench plugins` measures one `spec-policy` evaluation three ways, in one run so the
//! ratios hold on a noisy machine: the same logic compiled natively, the WebAssembly
//! component with a reused live instance (the default bindings' mode), and with a fresh
//! instance per call. It prints median and p99 of each and the ratios to native.
//!
//! `bench proxy` measures `/api/proxy-request` throughput and latency in mock mode next to
//! a bare axum JSON handler, both under the same wrk load, rounds interleaved.

mod plugins;
mod proxy;

use clap::{Parser, Subcommand};

/// Benchmarks of the 4RUNR Gateway.
#[derive(Parser)]
#[command(name = "bench", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Cost of one spec-policy evaluation: native, reused instance, fresh instance.
    Plugins(plugins::Args),
    /// Proxy-request throughput and latency (mock mode) next to a bare axum handler, with wrk.
    Proxy(proxy::Args),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Plugins(args) => plugins::run(args),
        Command::Proxy(args) => proxy::run(args),
    }
}
