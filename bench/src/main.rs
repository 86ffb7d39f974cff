//! `bench`: the gateway's benchmark harness.
//!
//! `bench load <scenario>` runs a scenario file of `bench/scenarios/` (the journal's 40-minute
//! profile, the chaos run, soak, spike) as an open-model load and writes a report folder with
//! `summary.json`, `summary.md` and `report.html` (charts).
//!
//! `bench compare` sends the same open-model load to the gateway (default policies), a bare
//! axum handler and the gateway with policies off, rate by rate, and prints latency ratios
//! and the highest rate each sustains with p99 under 10 ms.
//!
//! `bench plugins` measures one `spec-policy` evaluation three ways, in one run so the
//! ratios hold on a noisy machine: the same logic compiled natively, the WebAssembly
//! component with a reused live instance (the default bindings' mode), and with a fresh
//! instance per call. It prints median and p99 of each and the ratios to native.
//!
//! `bench proxy` measures `/api/proxy-request` throughput and latency in mock mode next to
//! a bare axum JSON handler, both under the same wrk load, rounds interleaved.
//!
//! `bench flatness` runs the gateway alone under wrk for minutes (ten by default), one row per
//! minute: req/s, p99, resident memory and database size; then checks that every request
//! has its audit row.
//!
//! `bench hostile` times `/health` from a client of its own while the gateway is attacked
//! (idle and slowloris connections, stuck plugin calls) and reads resident memory while an
//! agent fetches JSON bombs.
//!
//! `bench audit-size` measures the audit log's bytes per allowed and per denied call on SQLite
//! and PostgreSQL; `bench audit-upgrade` times the audit log's upgrade (migrations 0014 to
//! 0016) over a log of millions of calls.

mod audit_size;
mod audit_upgrade;
mod cluster;
mod flatness;
mod hostile;
mod outage;
mod plugins;
mod proxy;
mod wrk;

use clap::{Parser, Subcommand};

/// The gateway binary's allocator, so that the gateway measured here allocates as the one
/// users run (see `gateway/src/main.rs`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Benchmarks of the 4RUNR Gateway.
#[derive(Parser)]
#[command(name = "bench", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a load scenario (open model) and write a report with charts.
    Load(bench::load::Args),
    /// The same open-model load against the gateway, a bare axum handler and the gateway
    /// without policies: latency ratios per rate and the highest rate each sustains.
    Compare(bench::compare::Args),
    /// Cost of one spec-policy evaluation: native, reused instance, fresh instance.
    Plugins(plugins::Args),
    /// Proxy-request throughput and latency (mock mode) next to a bare axum handler, with wrk.
    Proxy(proxy::Args),
    /// The gateway alone under wrk for minutes: throughput, memory and audit rows over time.
    Flatness(flatness::Args),
    /// The gateway under attack (idle and slowloris connections, stuck plugins, JSON bombs):
    /// health latency from another client, and resident memory.
    Hostile(hostile::Args),
    /// Three gateways on one PostgreSQL and one Redis: how fast a change reaches the other
    /// instances, and proxy latency with Redis up, then killed.
    Cluster(cluster::Args),
    /// A database outage under a steady load: every acknowledged request's audit row is
    /// written once the database is back.
    Outage(outage::Args),
    /// What the audit log costs on disk per proxied request, table by table and index by
    /// index, on SQLite and PostgreSQL.
    AuditSize(audit_size::Args),
    /// How long the audit log's upgrade (migrations 0014–0016) takes over a large log, on
    /// SQLite and PostgreSQL.
    AuditUpgrade(audit_upgrade::Args),
    /// A child of `hostile`: holds connections to the gateway until killed.
    #[command(hide = true)]
    AttackConnections(hostile::AttackArgs),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Load(args) => load(&args),
        Command::Compare(args) => bench::compare::run(args),
        Command::Plugins(args) => plugins::run(args),
        Command::Proxy(args) => proxy::run(args),
        Command::Flatness(args) => flatness::run(args),
        Command::Hostile(args) => hostile::run(args),
        Command::Cluster(args) => cluster::run(args),
        Command::Outage(args) => outage::run(args),
        Command::AuditSize(args) => audit_size::run(args),
        Command::AuditUpgrade(args) => audit_upgrade::run(args),
        Command::AttackConnections(args) => hostile::attack(args),
    }
}

fn load(args: &bench::load::Args) -> anyhow::Result<()> {
    let (summary, dir) = bench::load::run(args)?;
    let v = &summary.verdicts;
    let l = &summary.latency_ms;
    println!(
        "{}: {} requests in {:.1} s ({:.1} req/s), p50 {:.2} ms p95 {:.2} ms p99 {:.2} ms",
        summary.run.scenario,
        summary.requests,
        summary.elapsed_s,
        summary.throughput_rps,
        l.p50,
        l.p95,
        l.p99
    );
    if let Some(cpu) = summary.gateway_cpu_us_per_request {
        println!("gateway CPU (its threads only): {cpu:.1} µs per request");
    }
    println!("gateway counters, after − before:");
    for (family, change) in &summary.gateway_delta {
        println!("  {family:<36} {change:>10}");
    }
    println!(
        "bench vs gateway_requests_total by tool, action and status: {}",
        if summary.cross_check.agrees {
            "equal"
        } else {
            "DIFFERENT (see the report)"
        }
    );
    println!(
        "no 5xx: {}; every request accounted for: {}; failed checks: {}",
        v.no_5xx, v.all_accounted, v.failed_checks
    );
    println!("report: {}", dir.join("report.html").display());
    if !v.all_accounted || v.failed_checks > 0 {
        anyhow::bail!(
            "the run did not pass: see {}",
            dir.join("summary.md").display()
        );
    }
    Ok(())
}
