//! SQLite specifics the rest of the suite does not see: where the write-ahead log is
//! checkpointed into the database file.

use crate::common::{Backend, TestDatabase};
use gateway::store::request_logs::RequestLogRow;
use gateway::store::Store;

fn database_file(url: &str) -> std::path::PathBuf {
    let path = url.trim_start_matches("sqlite://");
    path.split('?').next().unwrap_or(path).into()
}

fn row(n: usize) -> RequestLogRow {
    RequestLogRow {
        id: format!("{n:012}-0000-7000-8000-000000000000"),
        correlation_id: format!("correlation-{n}"),
        agent_id: Some("9f3c2a4e-0000-4000-8000-000000000000".into()),
        tool: "openai".into(),
        action: "chat".into(),
        status_code: 200,
        success: 1,
        error_code: None,
        response_time_ms: 0.5,
        cached: 0,
        policy_decision: Some("allow".into()),
        chaos_fault: None,
        sample_rate: None,
        created_at: 1_767_225_600_000 + n as i64,
    }
}

/// The audit writer's commits leave the log to the background checkpoint (they would
/// otherwise wait for the disk's sync): the database file does not grow while rows are
/// committed, and does once the checkpoint runs.
#[tokio::test]
async fn commits_leave_checkpoints_to_the_background_task() {
    let database = TestDatabase::create(Backend::Sqlite).await;
    let store = Store::connect(&database.url).await.unwrap();
    store.migrate().await.unwrap();
    store.checkpoint().await.unwrap();
    let file = database_file(&database.url);
    let before = std::fs::metadata(&file).unwrap().len();
    // 60 batches of 512 rows, about 9 MiB of log: past the 1,000 pages (4 MiB) at which
    // SQLite would by default checkpoint inside a commit.
    for batch in 0..60 {
        let rows: Vec<RequestLogRow> = (0..512).map(|i| row(batch * 512 + i)).collect();
        store.insert_audit_batch(&rows, &[]).await.unwrap();
    }
    assert_eq!(std::fs::metadata(&file).unwrap().len(), before);
    store.checkpoint().await.unwrap();
    assert!(std::fs::metadata(&file).unwrap().len() > before + (4 << 20));
    assert_eq!(store.count_request_logs().await.unwrap(), 60 * 512);
}

/// A batch the database refuses for a moment is written on the audit writer's retry, not
/// lost. The refusal is a trigger that aborts inserts while `audit_blocked` holds a row.
#[tokio::test]
async fn a_batch_refused_for_a_moment_is_written_on_a_retry() {
    use gateway::audit::Audit;
    use gateway::metrics::Metrics;
    use sqlx::Connection;
    use std::sync::Arc;

    let database = TestDatabase::create(Backend::Sqlite).await;
    let store = Store::connect(&database.url).await.unwrap();
    store.migrate().await.unwrap();
    let mut admin = sqlx::SqliteConnection::connect(&database.url)
        .await
        .unwrap();
    for sql in [
        "CREATE TABLE audit_blocked (x INTEGER)",
        "CREATE TRIGGER refuse_while_blocked BEFORE INSERT ON request_logs \
         WHEN EXISTS (SELECT 1 FROM audit_blocked) BEGIN SELECT RAISE(ABORT, 'blocked'); END",
        "INSERT INTO audit_blocked VALUES (1)",
    ] {
        sqlx::query(sql).execute(&mut admin).await.unwrap();
    }
    let metrics = Arc::new(Metrics::new());
    let audit = Audit::start(
        store.clone(),
        16,
        std::time::Duration::from_secs(5),
        1_000,
        Arc::clone(&metrics),
    );
    audit.request(row(1)).await;
    // The first attempt is refused; once its retry is counted, lift the block. (A writer
    // without retries drops the batch instead, and the assertions below say so.)
    while metrics.proxy.audit_write_retries.get() == 0 && metrics.proxy.audit_dropped.get() == 0 {
        tokio::task::yield_now().await;
    }
    sqlx::query("DELETE FROM audit_blocked")
        .execute(&mut admin)
        .await
        .unwrap();
    audit.flush().await;
    assert_eq!(store.count_request_logs().await.unwrap(), 1);
    assert_eq!(metrics.proxy.audit_dropped.get(), 0);
}
