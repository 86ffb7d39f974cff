//! `bench audit-upgrade`: how long the audit log's upgrade (migrations 0014 to 0016, then
//! the first pass that creates today's partitions on PostgreSQL) takes over a large log.
//! The schema is built as migration 0013 left it, filled with the rows an older gateway
//! wrote for N calls over the last six days (a request row and a policy row each; one call in
//! a hundred a denial by a named policy), then the gateway's own migrations run to the end.

use anyhow::{bail, Context};
use bench::gateway_under_test;
use gateway::store::{Backend, Store};
use std::time::{Duration, Instant};

/// Options of `bench audit-upgrade`.
#[derive(clap::Args)]
pub struct Args {
    /// Calls in the log before the upgrade (each a request row and a policy row).
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    calls: u64,
    /// Measure on SQLite only (no throwaway PostgreSQL server is started).
    #[arg(long)]
    sqlite_only: bool,
}

/// The last migration before the audit log's upgrade.
const BEFORE_UPGRADE: i64 = 13;
/// Calls written per statement while filling.
const FILL_BATCH: u64 = 50_000;
/// How far back the filled calls go.
const SPAN_MS: i64 = 6 * 24 * 3_600_000;

/// Fills and upgrades a SQLite database, then a throwaway PostgreSQL one; prints a table.
pub fn run(args: Args) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    println!(
        "audit upgrade (migrations 0014–0016 and today's partitions) over {} calls of the last 6 days",
        args.calls
    );
    println!("| database | fill s | upgrade s | calls per s of upgrade | request rows after | policy rows after |");
    println!("|---|---:|---:|---:|---:|---:|");
    let data_dir = gateway_under_test::temp_data_dir("audit-upgrade")?;
    let url = format!("sqlite://{}", data_dir.join("upgrade.db").display());
    let sqlite = runtime.block_on(measure(&url, args.calls));
    let _ = std::fs::remove_dir_all(&data_dir);
    print_row("SQLite", &sqlite?, args.calls);
    if !args.sqlite_only {
        let postgres = testkit::ThrowawayPostgres::start();
        let figures = runtime.block_on(measure(&postgres.url(), args.calls))?;
        print_row("PostgreSQL", &figures, args.calls);
    }
    Ok(())
}

struct Figures {
    fill: Duration,
    upgrade: Duration,
    request_rows: i64,
    policy_rows: i64,
}

fn print_row(database: &str, f: &Figures, calls: u64) {
    println!(
        "| {database} | {:.1} | {:.1} | {:.0} | {} | {} |",
        f.fill.as_secs_f64(),
        f.upgrade.as_secs_f64(),
        calls as f64 / f.upgrade.as_secs_f64(),
        f.request_rows,
        f.policy_rows
    );
}

async fn measure(url: &str, calls: u64) -> anyhow::Result<Figures> {
    let store = Store::connect(url).await?;
    store.migrate_through(BEFORE_UPGRADE).await?;
    let now = gateway::clock::Clock::SYSTEM.now_ms();
    let started = Instant::now();
    let mut first = 0;
    while first < calls {
        let last = (first + FILL_BATCH).min(calls) - 1;
        for sql in fill_sql(store.backend(), first, last, calls, now) {
            sqlx::query(&sql)
                .execute(store.pool())
                .await
                .with_context(|| format!("filling rows {first}..={last}"))?;
        }
        first = last + 1;
    }
    sqlx::query(&format!(
        "UPDATE audit_totals SET row_count = {calls} WHERE table_name = 'request_logs'"
    ))
    .execute(store.pool())
    .await?;
    let fill = started.elapsed();

    let started = Instant::now();
    store.migrate().await.context("the upgrade's migrations")?;
    store.ensure_partitions(now).await?;
    let upgrade = started.elapsed();

    let request_rows = store.count_request_logs().await?;
    let policy_rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM policy_logs")
        .fetch_one(store.pool())
        .await?;
    let denials = (calls as i64 + 99) / 100;
    if request_rows != calls as i64 || policy_rows != denials {
        bail!(
            "after the upgrade: {request_rows} request rows (expected {calls}), \
             {policy_rows} policy rows (expected the {denials} denials)"
        );
    }
    store.close().await;
    Ok(Figures {
        fill,
        upgrade,
        request_rows,
        policy_rows,
    })
}

/// The statements that write calls `first..=last` of `calls` as the schema of migration
/// 0013 held them: random text ids, an allow policy row per allowed call, a denial by the
/// policy `guard` every hundredth call.
fn fill_sql(backend: Backend, first: u64, last: u64, calls: u64, now: i64) -> [String; 2] {
    let step = SPAN_MS / calls as i64;
    let start = now - SPAN_MS;
    // Each backend's number series, random text id and correlation id of call `i`.
    let (series, from, random_id, correlation) = match backend {
        Backend::Sqlite => (
            format!(
                "WITH RECURSIVE n(i) AS (SELECT {first} UNION ALL SELECT i + 1 FROM n WHERE i < {last}) "
            ),
            "FROM n".to_string(),
            "lower(hex(randomblob(18)))",
            "printf('%08x-0000-4000-8000-%012x', i, i)",
        ),
        Backend::Postgres => (
            String::new(),
            format!("FROM generate_series({first}::bigint, {last}::bigint) AS i"),
            "gen_random_uuid()::text",
            "lpad(to_hex(i), 8, '0') || '-0000-4000-8000-' || lpad(to_hex(i), 12, '0')",
        ),
    };
    let denied = "i % 100 = 0";
    [
        format!(
            "{series}INSERT INTO request_logs (id, correlation_id, agent_id, tool, action, \
             status_code, success, error_code, response_time_ms, cached, policy_decision, \
             chaos_fault, created_at) \
             SELECT {random_id}, {correlation}, 'agent-1', 'openai', 'chat', \
             CASE WHEN {denied} THEN 403 ELSE 200 END, CASE WHEN {denied} THEN 0 ELSE 1 END, \
             CASE WHEN {denied} THEN 'policy_denied' END, 0.2, 0, \
             CASE WHEN {denied} THEN 'deny' ELSE 'allow' END, NULL, {start} + i * {step} {from}"
        ),
        format!(
            "{series}INSERT INTO policy_logs (id, policy_id, agent_id, tool, action, decision, \
             reason, request_data, response_data, created_at) \
             SELECT {random_id}, CASE WHEN {denied} THEN 'guard' END, 'agent-1', 'openai', \
             'chat', CASE WHEN {denied} THEN 'deny' ELSE 'allow' END, \
             CASE WHEN {denied} THEN 'not in scope' END, \
             '{{\"correlation_id\":\"' || {correlation} || '\"}}', NULL, {start} + i * {step} {from}"
        ),
    ]
}
