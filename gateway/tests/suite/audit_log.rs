//! The audit log's shape: a call's allow decision lives in its request row and is listed
//! among the policy decisions from there (no second row), the request log lists newest
//! first, and a call whose client leaves before the answer still gets its row.

use crate::common::cluster::wait_until;
use crate::common::{Backend, Fixture};
use gateway::config::Environment;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

async fn development(backend: Backend) -> Fixture {
    Fixture::with_default_plugins_and(backend, |s| s.environment = Environment::Development).await
}

async fn allows_are_listed_from_the_request_rows(backend: Backend) {
    let f = development(backend).await;
    let gw = &f.gateway;
    let (agent, _) = gw.create_agent("audited", "scraper").await;
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
    let (other, _) = gw.create_agent("quiet", "scraper").await;
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
    let (agent, _) = gw.create_agent("impatient", "scraper").await;
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

crate::on_both_backends!(
    allows_are_listed_from_the_request_rows,
    a_call_whose_client_leaves_still_gets_its_row
);
