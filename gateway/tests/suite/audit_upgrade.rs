//! The audit log's upgrade (migrations 0014 to 0016) over a database that already holds
//! rows: the schema as it stood after migration 0013 is built by those migrations alone,
//! old-shape rows are written into it, and the gateway's migrations then run to the end.
//! Nothing a listing showed is lost, the allow rows the request log now answers for go, and on
//! PostgreSQL today's partition takes today's rows out of the default partition.

use crate::common::{Backend, TestDatabase};
use gateway::store::Store;

/// The last migration before the audit log's upgrade.
const BEFORE_UPGRADE: i64 = 13;

async fn schema_before_upgrade(store: &Store) {
    store.migrate_through(BEFORE_UPGRADE).await.unwrap();
    let pool = store.pool();
    let now = gateway::clock::Clock::SYSTEM.now_ms();
    for sql in [
        // Two calls, each with its allow (then a policy row too), and a denial.
        format!(
            "INSERT INTO request_logs (id, correlation_id, agent_id, tool, action, status_code, \
             success, error_code, response_time_ms, cached, policy_decision, chaos_fault, \
             created_at) VALUES \
             ('r1', 'c1', 'a1', 'serpapi', 'search', 200, 1, NULL, 1.5, 0, 'allow', NULL, {}), \
             ('r2', 'c2', 'a1', 'serpapi', 'search', 403, 0, 'policy_denied', 0.5, 0, 'deny', NULL, {now}), \
             ('r3', 'c3', 'a1', 'serpapi', 'search', 200, 1, NULL, 1.0, 1, 'allow', NULL, {now})",
            now - 3_600_000
        ),
        format!(
            "INSERT INTO policy_logs (id, policy_id, agent_id, tool, action, decision, reason, \
             request_data, response_data, created_at) VALUES \
             ('p1', NULL, 'a1', 'serpapi', 'search', 'allow', NULL, '{{\"correlation_id\":\"c1\"}}', NULL, {}), \
             ('p2', 'guard', 'a1', 'serpapi', 'search', 'deny', 'no', '{{\"correlation_id\":\"c2\"}}', NULL, {now}), \
             ('p3', NULL, 'a1', 'serpapi', 'search', 'allow', NULL, '{{\"correlation_id\":\"c3\"}}', NULL, {now})",
            now - 3_600_000
        ),
        "UPDATE audit_totals SET row_count = 3 WHERE table_name = 'request_logs'".to_string(),
    ] {
        sqlx::query(&sql).execute(pool).await.unwrap();
    }
}

async fn the_audit_upgrade_keeps_what_the_listings_showed(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let store = Store::connect(&database.url).await.unwrap();
    schema_before_upgrade(&store).await;

    store
        .migrate()
        .await
        .expect("0014 to the last apply over existing rows");
    store
        .ensure_partitions(gateway::clock::Clock::SYSTEM.now_ms())
        .await
        .expect("today's partition takes today's rows");

    assert_eq!(store.count_request_logs().await.unwrap(), 3);
    assert_eq!(store.request_log_total().await.unwrap(), 3);
    let requests = store.list_request_logs(10).await.unwrap();
    let ids: Vec<&str> = requests.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["r3", "r2", "r1"], "newest first");
    assert!(requests.iter().all(|r| r.sample_rate.is_none()));
    let decisions = store.list_policy_logs(None, Some("a1"), 10).await.unwrap();
    let listed: Vec<(&str, &str)> = decisions
        .iter()
        .map(|d| (d.id.as_str(), d.decision.as_str()))
        .collect();
    // The two allows once each (from their request rows), the denial from its policy row.
    assert_eq!(listed.len(), 3, "{listed:?}");
    assert!(
        listed.contains(&("r1", "allow")) && listed.contains(&("r3", "allow")),
        "{listed:?}"
    );
    assert!(listed.contains(&("p2", "deny")), "{listed:?}");
    // Pruning by age still finds the old row through the new key.
    let pruned = gateway::audit::prune(&store, std::time::Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(pruned, 1);
    assert_eq!(store.request_log_total().await.unwrap(), 2);
}

crate::on_both_backends!(the_audit_upgrade_keeps_what_the_listings_showed);
