//! The audit log's shape: a call's allow decision lives in its request row and is listed
//! among the policy decisions from there (no second row), the request log lists newest
//! first, a call whose client leaves before the answer still gets its row, the row bound
//! keeps the newest rows, sampling leaves out only allowed successes and records its rate,
//! and the JSON-lines sink keeps every row across rotations and a SIGTERM.

use crate::common::cluster::wait_until;
use crate::common::{Backend, Fixture, ANY_HOUR_ROLE};
use gateway::config::Environment;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

async fn development(backend: Backend) -> Fixture {
    let f =
        Fixture::with_default_plugins_and(backend, |s| s.environment = Environment::Development)
            .await;
    f.gateway.allow_any_hour_role().await;
    f
}

async fn allows_are_listed_from_the_request_rows(backend: Backend) {
    let f = development(backend).await;
    let gw = &f.gateway;
    let (agent, _) = gw.create_agent("audited", ANY_HOUR_ROLE).await;
    let (token, _) = gw.mint(&agent).await;
    for n in 0..3 {
        let response = gw
            .client
            .post(gw.url("/api/proxy-request"))
            .header("x-correlation-id", format!("call-{n}"))
            .json(
                &json!({"agent_token": token, "tool": "serpapi", "action": "search",
                          "params": {"q": format!("q{n}")}}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    let (_, requests) = gw
        .admin(Method::GET, "/api/proxy/logs?limit=10", None)
        .await;
    let requests = requests["logs"].as_array().unwrap().clone();
    let corr: Vec<&str> = requests
        .iter()
        .map(|r| r["corrId"].as_str().unwrap())
        .collect();
    assert_eq!(corr, ["call-2", "call-1", "call-0"], "newest first");

    let (status, decisions) = gw
        .admin(
            Method::GET,
            &format!("/api/policy-logs?agentId={agent}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{decisions}");
    let decisions = decisions.as_array().unwrap();
    assert_eq!(decisions.len(), 3, "{decisions:?}");
    for (decision, request) in decisions.iter().zip(&requests) {
        assert_eq!(decision["decision"], "allow");
        assert_eq!(
            decision["id"], request["id"],
            "the request row is the decision's"
        );
        assert_eq!(decision["policyId"], Value::Null);
        assert_eq!(decision["agentId"], agent.as_str());
        let data: Value = serde_json::from_str(decision["requestData"].as_str().unwrap()).unwrap();
        assert_eq!(data["correlation_id"], request["corrId"]);
    }
    // Listing one policy's decisions lists no allow (an allow names no policy).
    let (_, by_policy) = gw
        .admin(Method::GET, "/api/policy-logs?policyId=spec-policy", None)
        .await;
    assert_eq!(by_policy, json!([]));
    // Another agent's listing does not show them.
    let (other, _) = gw.create_agent("quiet", ANY_HOUR_ROLE).await;
    let (_, none) = gw
        .admin(
            Method::GET,
            &format!("/api/policy-logs?agentId={other}"),
            None,
        )
        .await;
    assert_eq!(none, json!([]));
}

async fn a_call_whose_client_leaves_still_gets_its_row(backend: Backend) {
    let f = development(backend).await;
    let gw = &f.gateway;
    let (agent, _) = gw.create_agent("impatient", ANY_HOUR_ROLE).await;
    let (token, _) = gw.mint(&agent).await;
    let (status, body) = gw
        .admin(
            Method::POST,
            "/api/admin/chaos/tool",
            Some(json!({"tool": "serpapi", "mode": "jitter", "pct": 100, "min_ms": 500, "max_ms": 500})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The client gives up long before the held call ends.
    let gave_up = gw
        .client
        .post(gw.url("/api/proxy-request"))
        .header("x-correlation-id", "left-early")
        .timeout(Duration::from_millis(50))
        .json(
            &json!({"agent_token": token, "tool": "serpapi", "action": "search",
                      "params": {"q": "slow"}}),
        )
        .send()
        .await;
    assert!(gave_up.is_err(), "the client left before the answer");
    wait_until("the left call's audit row", || async {
        let (_, logs) = gw
            .admin(Method::GET, "/api/proxy/logs?limit=10", None)
            .await;
        logs["logs"].as_array().is_some_and(|rows| {
            rows.iter()
                .any(|r| r["corrId"] == "left-early" && r["statusCode"] == 200)
        })
    })
    .await;
}

pub(crate) fn request_row(n: i64, at: i64) -> gateway::store::request_logs::RequestLogRow {
    gateway::store::request_logs::RequestLogRow {
        id: format!("r{n:05}"),
        correlation_id: format!("corr-{n}"),
        agent_id: Some("agent".into()),
        tool: "serpapi".into(),
        action: "search".into(),
        status_code: 200,
        success: 1,
        error_code: None,
        response_time_ms: 1.0,
        cached: 0,
        policy_decision: Some("allow".into()),
        chaos_fault: None,
        sample_rate: None,
        created_at: at,
    }
}

fn denial_row(id: &str, at: i64) -> gateway::store::policies::PolicyLogRow {
    gateway::store::policies::PolicyLogRow {
        id: id.into(),
        policy_id: Some("guard".into()),
        agent_id: "agent".into(),
        tool: "serpapi".into(),
        action: "search".into(),
        decision: "deny".into(),
        reason: Some("no".into()),
        request_data: None,
        response_data: None,
        created_at: at,
    }
}

/// 5,000 request rows, one a millisecond, an hour old (well inside the retention); a bound
/// of 1,000 keeps the newest 1,000 (in several batches) and the denials among them.
async fn the_row_bound_keeps_the_newest_rows(backend: Backend) {
    let f = Fixture::start(backend).await;
    let (store, metrics) = (&f.gateway.state.store, &f.gateway.state.metrics);
    let start = gateway::clock::Clock::SYSTEM.now_ms() - 3_600_000;
    let rows: Vec<_> = (0..5_000).map(|n| request_row(n, start + n)).collect();
    let denials = [
        denial_row("old", start + 10),
        denial_row("kept", start + 4_500),
    ];
    store.insert_audit_batch(&rows, &denials).await.unwrap();
    let bounds = gateway::audit::Bounds {
        retention: Some(Duration::from_secs(7 * 24 * 3600)),
        max_rows: Some(1_000),
    };

    let outcome = gateway::audit::pruning::pass(store, bounds, metrics)
        .await
        .unwrap();
    assert_eq!((outcome.by_age, outcome.by_rows), (0, 4_000 + 1));
    assert_eq!(store.request_log_total().await.unwrap(), 1_000);
    assert_eq!(store.count_request_logs().await.unwrap(), 1_000);
    let kept = store.list_request_logs(1_000).await.unwrap();
    assert_eq!(kept.first().map(|r| r.id.as_str()), Some("r04999"));
    assert_eq!(kept.last().map(|r| r.id.as_str()), Some("r04000"));
    let denials = store
        .list_policy_logs(Some("guard"), None, 100)
        .await
        .unwrap();
    assert_eq!(
        denials.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
        ["kept"]
    );

    let text = metrics.render();
    assert_eq!(
        crate::common::metric_value(&text, "gateway_audit_rows"),
        1_000.0
    );
    assert_eq!(
        crate::common::metric_value(&text, "gateway_audit_pruned_rows_total{reason=\"rows\"}"),
        4_001.0
    );
    assert!(
        crate::common::metric_value(&text, "gateway_audit_bytes") > 0.0,
        "{text}"
    );
    let age = crate::common::metric_value(&text, "gateway_audit_oldest_row_age_seconds");
    assert!(age >= 3_595.0, "the oldest row kept is ~1 h old: {age}");

    // Within the bound: nothing more goes.
    let again = gateway::audit::pruning::pass(store, bounds, metrics)
        .await
        .unwrap();
    assert_eq!((again.by_age, again.by_rows), (0, 0));
}

async fn sampled(backend: Backend, rate: f64) -> Fixture {
    let f = Fixture::with_default_plugins_and(backend, |s| {
        s.environment = Environment::Development;
        s.proxy.audit_sample_allowed = rate;
    })
    .await;
    f.gateway.allow_any_hour_role().await;
    f
}

async fn proxy_logs(f: &Fixture) -> Vec<Value> {
    let (status, body) = f
        .gateway
        .admin(Method::GET, "/api/proxy/logs?limit=100", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["logs"].as_array().unwrap().clone()
}

/// At a rate no draw meets, no allowed success is written, while a refusal, a failure and
/// a chaos fault all are, each standing for itself alone.
async fn sampling_keeps_every_refusal_failure_and_fault(backend: Backend) {
    let f = sampled(backend, 1e-15).await;
    let gw = &f.gateway;
    let (agent, _) = gw.create_agent("sampled", ANY_HOUR_ROLE).await;
    let (token, _) = gw.mint(&agent).await;
    let search = |q: &str| json!({"agent_token": token, "tool": "serpapi", "action": "search", "params": {"q": q}});
    for n in 0..5 {
        let (status, _, body) = crate::common::proxy(gw, search(&format!("ok{n}"))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, _, _) = crate::common::proxy(
        gw,
        json!({"agent_token": token, "tool": "openai", "action": "chat", "params": {"input": "x"}}),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a tool the token does not grant"
    );
    let (status, _, _) = crate::common::proxy(
        gw,
        json!({"agent_token": token, "tool": "serpapi", "action": "nope", "params": {}}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    gw.admin(
        Method::POST,
        "/api/admin/chaos/tool",
        Some(json!({"tool": "serpapi", "mode": "500", "pct": 100})),
    )
    .await;
    let (status, _, _) = crate::common::proxy(gw, search("faulted")).await;
    assert!(status.is_server_error(), "{status}");

    let rows = proxy_logs(&f).await;
    let statuses: Vec<i64> = rows
        .iter()
        .map(|r| r["statusCode"].as_i64().unwrap())
        .collect();
    assert_eq!(
        statuses.len(),
        3,
        "only the refusal, the failure and the fault: {rows:?}"
    );
    assert!(statuses.iter().all(|s| *s >= 400), "{rows:?}");
    assert!(rows.iter().any(|r| r["chaosFault"].is_string()), "{rows:?}");
    assert!(rows.iter().all(|r| r["sampleRate"] == 1.0), "{rows:?}");
    let metrics = gw.metrics().await;
    assert_eq!(
        crate::common::metric_value(&metrics, "gateway_audit_sampled_out_total"),
        5.0
    );
}

/// A sampled row records the rate it was kept at.
async fn a_sampled_row_records_its_rate(backend: Backend) {
    let rate = 1.0 - 1e-15;
    let f = sampled(backend, rate).await;
    let gw = &f.gateway;
    let (agent, _) = gw.create_agent("weighted", ANY_HOUR_ROLE).await;
    let (token, _) = gw.mint(&agent).await;
    let (status, _, _) = crate::common::proxy(
        gw,
        json!({"agent_token": token, "tool": "serpapi", "action": "search", "params": {"q": "w"}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let rows = proxy_logs(&f).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["sampleRate"].as_f64(), Some(rate));
}

/// A gateway process writing the database and a JSON-lines file that rotates every 4 KiB:
/// 300 calls sent 30 at a time, then SIGTERM as soon as the last one is answered (its row
/// may still be queued). Every call is in the files once, as it is in the database.
async fn the_jsonl_sink_keeps_every_row_across_rotations_and_sigterm(backend: Backend) {
    use crate::common::cluster::{Instance, InstanceEnv};
    const CALLS: usize = 300;
    let database = crate::common::TestDatabase::create(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("audit").join("audit.jsonl");
    let env = InstanceEnv::default()
        .with("AUDIT_SINK", "both")
        .with("AUDIT_JSONL_PATH", jsonl.display())
        .with("AUDIT_JSONL_MAX_BYTES", 4096)
        .with("AUDIT_JSONL_FILES", 1000);
    let mut instance = Instance::start(&database.url, dir.path(), &env).await;
    let (agent, _) = instance.create_agent("shipped", "scraper").await;
    let (token, _) = instance.mint(&agent).await;
    for wave in 0..CALLS / 30 {
        let mut calls = tokio::task::JoinSet::new();
        for i in 0..30 {
            let n = wave * 30 + i;
            let call = instance
                .client
                .post(instance.url("/api/proxy-request"))
                .header("x-correlation-id", format!("shipped-{n}"))
                .json(
                    &json!({"agent_token": token, "tool": "serpapi", "action": "search",
                              "params": {"q": format!("q{n}")}}),
                );
            calls.spawn(async move { call.send().await.map(|r| r.status()) });
        }
        while let Some(status) = calls.join_next().await {
            assert_eq!(status.unwrap().unwrap(), StatusCode::OK);
        }
    }
    instance.terminate();
    assert_eq!(instance.exited().await, Some(0), "{}", instance.log_text());

    let mut files = 0;
    let mut shipped = Vec::new();
    for entry in std::fs::read_dir(jsonl.parent().unwrap()).unwrap() {
        files += 1;
        for line in std::fs::read_to_string(entry.unwrap().path())
            .unwrap()
            .lines()
        {
            let line: Value = serde_json::from_str(line).expect("every line is whole JSON");
            assert_eq!(line["v"], 1);
            if line["type"] == "request" {
                shipped.push(line["correlation_id"].as_str().unwrap().to_string());
            }
        }
    }
    assert!(files > 2, "the file rotated ({files} files)");
    shipped.sort();
    let mut sent: Vec<String> = (0..CALLS).map(|n| format!("shipped-{n}")).collect();
    sent.sort();
    assert_eq!(shipped, sent, "each call once, none lost");
}

crate::on_both_backends!(
    allows_are_listed_from_the_request_rows,
    a_call_whose_client_leaves_still_gets_its_row,
    the_row_bound_keeps_the_newest_rows,
    sampling_keeps_every_refusal_failure_and_fault,
    a_sampled_row_records_its_rate,
    the_jsonl_sink_keeps_every_row_across_rotations_and_sigterm
);

/// PostgreSQL's daily partitions, with time moved forward through the pass's clock: the
/// coming days' partitions exist, a row dated past them waits in the default partition and
/// moves into its day's partition when that is created, and ten days later the retention
/// drops whole days and the row total follows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_partitions_are_created_ahead_and_dropped_past_the_retention() {
    let f = Fixture::start(Backend::Postgres).await;
    let (store, metrics) = (&f.gateway.state.store, &f.gateway.state.metrics);
    let now = gateway::clock::Clock::SYSTEM.now_ms();
    let day = 86_400_000;
    let week = gateway::audit::Bounds {
        retention: Some(Duration::from_secs(7 * 86_400)),
        max_rows: None,
    };
    gateway::audit::pruning::pass_at(store, week, metrics, now)
        .await
        .unwrap();
    let names = |partitions: Vec<gateway::store::partitions::DailyPartition>| -> Vec<String> {
        partitions.into_iter().map(|p| p.name).collect()
    };
    let today = names(store.daily_partitions().await.unwrap());
    assert_eq!(
        today.len(),
        6,
        "today and two days ahead, both tables: {today:?}"
    );

    // Today, tomorrow, and five days ahead (no partition yet: the default one takes it).
    let rows = [
        request_row(1, now),
        request_row(2, now + day),
        request_row(3, now + 5 * day),
    ];
    store
        .insert_audit_batch(&rows, &[denial_row("d", now)])
        .await
        .unwrap();
    gateway::audit::pruning::pass_at(store, week, metrics, now + 5 * day)
        .await
        .unwrap();
    assert_eq!(
        store.count_request_logs().await.unwrap(),
        3,
        "nothing lost moving a row"
    );
    let later = names(store.daily_partitions().await.unwrap());
    assert!(later.len() > today.len(), "{later:?}");

    // Ten days on: every day up to three days after `now` is past a week and goes whole.
    let outcome = gateway::audit::pruning::pass_at(store, week, metrics, now + 10 * day)
        .await
        .unwrap();
    assert_eq!(
        outcome.by_age, 3,
        "two request rows and the denial, with their days"
    );
    assert_eq!(store.count_request_logs().await.unwrap(), 1);
    assert_eq!(store.request_log_total().await.unwrap(), 1);
    let remaining = names(store.daily_partitions().await.unwrap());
    for name in &today {
        assert!(
            !remaining.contains(name),
            "{name} is past the retention: {remaining:?}"
        );
    }
}
