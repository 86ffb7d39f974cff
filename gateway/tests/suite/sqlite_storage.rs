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
