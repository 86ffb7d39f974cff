//! Quarantine of an uploaded policy that keeps failing: only when it fails for several
//! agents, never below the binding's `min_version`, never deleting a version's bytes, and
//! always as an alert and an audit row. No agent can choose which version runs.

use crate::common::{metric_value, wasm_base64, Backend, Fixture, TestGateway};
use gateway::plugins::registry::{QUARANTINE_AFTER_FAILURES, QUARANTINE_DISTINCT_AGENTS};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

async fn upload(gw: &TestGateway, plugin: (&str, &str), binding: Value) -> Value {
    let (status, body) = gw
        .admin(
            Method::PUT,
            "/api/admin/plugins/guard",
            Some(json!({"wasm_base64": wasm_base64(plugin.0, plugin.1), "binding": binding})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

/// The live policies' answer to a call of `agent` (a dry run, as the proxy would ask).
async fn decision_of(gw: &TestGateway, agent: &str, intent: Option<&str>) -> Value {
    let (status, body) = gw
        .admin(
            Method::POST,
            "/api/admin/plugins/evaluate",
            Some(
                json!({"agent_id": agent, "agent_role": "scraper", "tool": "serpapi",
                        "action": "search", "params": {"q": "x"}, "intent": intent}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["policy"].clone()
}

async fn live_version(gw: &TestGateway) -> Value {
    let (_, listed) = gw.admin(Method::GET, "/api/admin/plugins", None).await;
    listed["plugins"][0]["upload_version"].clone()
}

async fn quarantines(gw: &TestGateway) -> f64 {
    metric_value(
        &gw.metrics().await,
        "gateway_plugin_quarantines_total{plugin=\"guard\"}",
    )
}

/// Fails the live version for `agents` in turn, `QUARANTINE_AFTER_FAILURES` calls in all.
async fn fail_for(gw: &TestGateway, agents: &[&str]) {
    for n in 0..QUARANTINE_AFTER_FAILURES as usize {
        let answer = decision_of(gw, agents[n % agents.len()], None).await;
        assert_eq!(answer["code"], "policy_error", "{answer}");
    }
}

/// Version 1 denies everything; version 2 traps on every call.
async fn two_versions(gw: &TestGateway, binding: Value) {
    upload(gw, ("target/plugin-fixtures", "deny-all"), binding.clone()).await;
    let body = upload(gw, ("target/plugin-fixtures", "always-trap"), binding).await;
    assert_eq!(body["version"], 2);
}

/// The attack: an agent sends an intent longer than a deny reason may be, to make the live
/// version trap until quarantine brings an older one back. The reason is cut instead, the
/// call is denied as it should be, and nothing fails.
async fn a_long_intent_is_denied_with_a_cut_reason_not_a_trap(backend: Backend) {
    let f = Fixture::start(backend).await;
    let gw = &f.gateway;
    let binding = json!({"tools": ["*"], "timeout_ms": 100,
                         "config": {"scopes": ["serpapi:search"], "intent": "research"}});
    upload(gw, ("target/plugin-fixtures", "deny-all"), binding.clone()).await;
    upload(gw, ("policies-wasm", "spec-policy"), binding).await;
    let long = "a".repeat(1_100);
    for agent in ["a", "b", "c", "d", "e", "f"] {
        let answer = decision_of(gw, agent, Some(&long)).await;
        assert_eq!(answer["code"], "intent_mismatch", "{answer}");
        let reason = answer["reason"].as_str().unwrap_or_default();
        assert!(
            reason.len() <= 1024 && reason.ends_with(" [cut]"),
            "{reason}"
        );
    }
    assert_eq!(live_version(gw).await, 2);
    assert_eq!(quarantines(gw).await, 0.0);
}

/// One agent alone, however many calls it makes fail, never quarantines a version.
async fn one_agent_cannot_quarantine_a_version(backend: Backend) {
    let f = Fixture::start(backend).await;
    let gw = &f.gateway;
    two_versions(gw, json!({"tools": ["*"], "min_version": 1})).await;
    for _ in 0..4 {
        fail_for(gw, &["rogue"]).await;
    }
    assert_eq!(quarantines(gw).await, 0.0);
    assert_eq!(live_version(gw).await, 2);
}

/// Without `min_version`, a version failing for several agents is quarantined (alert,
/// audit row, `last_quarantine`) but stays live: nothing older comes back by itself.
async fn without_a_floor_quarantine_rolls_nothing_back(backend: Backend) {
    let f = Fixture::start(backend).await;
    let gw = &f.gateway;
    two_versions(gw, json!({"tools": ["*"]})).await;
    fail_for(gw, &["a", "b", "c"][..QUARANTINE_DISTINCT_AGENTS]).await;
    assert_eq!(quarantines(gw).await, 1.0);
    let (_, listed) = gw.admin(Method::GET, "/api/admin/plugins", None).await;
    let why = listed["last_quarantine"]["error"]
        .as_str()
        .unwrap_or_default();
    assert!(
        why.contains("guard version 2") && why.contains("kept live"),
        "{listed}"
    );
    // The audit row is written off the request path: wait for it, then check the version.
    let row = quarantine_row(gw).await;
    assert_eq!(row["agentId"], "b", "the agent of the fifth failure: {row}");
    assert!(
        !gw.state.plugins.sync_uploads().await.unwrap(),
        "nothing changed"
    );
    assert_eq!(live_version(gw).await, 2);
}

/// With `min_version = 1`, the quarantine rolls back to version 1 on every instance, and
/// version 2's bytes stay stored.
async fn with_a_floor_quarantine_rolls_back_and_keeps_the_bytes(backend: Backend) {
    let f = Fixture::start(backend).await;
    let gw = &f.gateway;
    two_versions(gw, json!({"tools": ["*"], "min_version": 1})).await;
    fail_for(gw, &["a", "b", "c"]).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while decision_of(gw, "a", None).await["code"] != "deny_all" {
        assert!(
            tokio::time::Instant::now() < deadline,
            "version 1 never came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(live_version(gw).await, 1);
    quarantine_row(gw).await;
    let (bytes,): (i64,) = sqlx::query_as(
        "SELECT CAST(LENGTH(wasm) AS BIGINT) FROM plugin_uploads WHERE name = 'guard' AND version = 2",
    )
    .fetch_one(gw.state.store.pool())
    .await
    .unwrap();
    assert!(bytes > 0, "the retired version keeps its bytes");
}

/// With `min_version = 2`, version 1 is below the floor: the quarantine rolls nothing back.
async fn quarantine_never_goes_below_min_version(backend: Backend) {
    let f = Fixture::start(backend).await;
    let gw = &f.gateway;
    two_versions(gw, json!({"tools": ["*"], "min_version": 2})).await;
    fail_for(gw, &["a", "b", "c"]).await;
    quarantine_row(gw).await;
    assert!(!gw.state.plugins.sync_uploads().await.unwrap());
    assert_eq!(live_version(gw).await, 2);
}

/// The `quarantine` row of the binding's policy log, once written.
async fn quarantine_row(gw: &TestGateway) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = gw
            .admin(
                Method::GET,
                "/api/policy-logs?policyId=guard&limit=50",
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let rows = body.as_array().cloned().unwrap_or_default();
        if let Some(row) = rows.into_iter().find(|r| r["decision"] == "quarantine") {
            return row;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no quarantine row: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

on_both_backends!(
    a_long_intent_is_denied_with_a_cut_reason_not_a_trap,
    one_agent_cannot_quarantine_a_version,
    without_a_floor_quarantine_rolls_nothing_back,
    with_a_floor_quarantine_rolls_back_and_keeps_the_bytes,
    quarantine_never_goes_below_min_version,
);
