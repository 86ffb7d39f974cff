//! Shadow candidates through the admin API: a deny-all candidate beside an allowing policy
//! changes no answer, its disagreements are counted and listed, promotion makes it live, and
//! a rollback restores the version it replaced.

use crate::common::cluster::wait_until;
use crate::common::{metric_value, proxy, wasm_base64, ApiClient, Backend, Fixture, TestGateway};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const SEARCHES: usize = 12;

/// The status of a scraper's search, the policy rule that denied it (if one did), and its
/// correlation id.
async fn search(gw: &ApiClient, token: &str) -> (StatusCode, Value, String) {
    let (status, headers, body) = proxy(
        gw,
        json!({"agent_token": token, "tool": "serpapi", "action": "search", "params": {"q": "x"}}),
    )
    .await;
    let correlation = headers["x-correlation-id"].to_str().unwrap().to_string();
    (status, body["rule"].clone(), correlation)
}

async fn shadow(gw: &TestGateway) -> Value {
    let (status, body) = gw
        .admin(Method::GET, "/api/admin/plugins/guard/shadow", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn a_shadow_candidate_is_judged_listed_promoted_and_rolled_back(backend: Backend) {
    let f = Fixture::start(backend).await;
    let gw = &f.gateway;
    let (status, body) = gw
        .admin(
            Method::PUT,
            "/api/admin/plugins/guard",
            Some(json!({
                "wasm_base64": wasm_base64("policies-wasm", "spec-policy"),
                "binding": {"tools": ["serpapi"], "config": {"scopes": ["serpapi:search"]}, "timeout_ms": 100},
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (agent, _) = gw.create_agent("shadowed", "scraper").await;
    let (token, _) = gw.mint(&agent).await;
    let (before, code, _) = search(gw, &token).await;
    assert_eq!(before, StatusCode::OK, "{code}");

    let deny_all = wasm_base64("target/plugin-fixtures", "deny-all");
    let (status, body) = gw
        .admin(
            Method::PUT,
            "/api/admin/plugins/guard/shadow",
            Some(json!({"wasm_base64": deny_all, "percent": 100})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let candidate = body["sha256"].clone();
    assert_eq!(shadow(gw).await["candidate"]["sha256"], candidate);

    // Clients see the live policy's answers only.
    let mut correlations = Vec::new();
    for _ in 0..SEARCHES {
        let (status, code, correlation) = search(gw, &token).await;
        assert_eq!(status, before, "the candidate changed an answer: {code}");
        correlations.push(correlation);
    }
    wait_until("every disagreement stored", || async {
        shadow(gw).await["stored"] == json!(SEARCHES)
    })
    .await;
    let listed = shadow(gw).await;
    assert_eq!(
        listed["evaluations"]["disagree"],
        json!(SEARCHES),
        "{listed}"
    );
    assert_eq!(listed["evaluations"]["agree"], 0, "{listed}");
    // Shadows run in tasks of their own, two at a time: rows follow the order in which the
    // candidate answered, not the order of the calls.
    let mut listed_calls: Vec<String> = listed["disagreements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["correlation_id"].as_str().unwrap().to_string())
        .collect();
    listed_calls.sort_unstable();
    correlations.sort_unstable();
    assert_eq!(listed_calls, correlations, "one row per call");
    let newest = &listed["disagreements"][0];
    assert_eq!(
        (&newest["agent_id"], &newest["tool"], &newest["action"]),
        (&json!(agent), &json!("serpapi"), &json!("search"))
    );
    assert_eq!(newest["live"], json!({"decision": "allow", "code": null}));
    assert_eq!(
        newest["candidate"],
        json!({"decision": "deny", "code": "deny_all"})
    );
    assert_eq!(newest["candidate_sha256"], candidate);
    let metrics = gw.metrics().await;
    assert_eq!(
        metric_value(
            &metrics,
            "gateway_plugin_shadow_evaluations_total{binding=\"guard\",outcome=\"disagree\"}"
        ),
        SEARCHES as f64
    );

    // Promoted: the candidate decides, and the version it replaced is one rollback away.
    let (status, body) = gw
        .admin(
            Method::POST,
            "/api/admin/plugins/guard/shadow/promote",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (&body["version"], &body["previous_version"]),
        (&json!(2), &json!(1))
    );
    let (status, code, _) = search(gw, &token).await;
    assert_eq!((status, code), (StatusCode::FORBIDDEN, json!("deny_all")));
    assert_eq!(shadow(gw).await["candidate"], Value::Null);
    let (status, body) = gw
        .admin(Method::POST, "/api/admin/plugins/guard/rollback", None)
        .await;
    assert_eq!(
        (status, &body["version"]),
        (StatusCode::OK, &json!(1)),
        "{body}"
    );
    let (status, code, _) = search(gw, &token).await;
    assert_eq!(status, before, "rolled back: {code}");

    // A candidate can be discarded, with its disagreements.
    let (status, _) = gw
        .admin(
            Method::PUT,
            "/api/admin/plugins/guard/shadow",
            Some(json!({"wasm_base64": wasm_base64("target/plugin-fixtures", "deny-all")})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(shadow(gw).await["candidate"]["percent"], 10.0);
    let (status, _) = gw
        .admin(Method::DELETE, "/api/admin/plugins/guard/shadow", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let gone = shadow(gw).await;
    assert_eq!(
        (&gone["candidate"], &gone["stored"]),
        (&Value::Null, &json!(0))
    );
    let (status, body) = gw
        .admin(Method::DELETE, "/api/admin/plugins/guard/shadow", None)
        .await;
    assert_eq!(
        (status, &body["code"]),
        (StatusCode::NOT_FOUND, &json!("no_shadow"))
    );
}

async fn bad_shadow_requests_change_nothing(backend: Backend) {
    let f = Fixture::start(backend).await;
    let gw = &f.gateway;
    let deny_all = wasm_base64("target/plugin-fixtures", "deny-all");
    let put = |name: &'static str, body: Value| {
        let path = format!("/api/admin/plugins/{name}/shadow");
        async move { gw.admin(Method::PUT, &path, Some(body)).await }
    };
    let (status, body) = put("guard", json!({"wasm_base64": deny_all})).await;
    assert_eq!(
        (status, &body["code"]),
        (StatusCode::NOT_FOUND, &json!("plugin_not_found"))
    );
    let (status, body) = gw
        .admin(
            Method::PUT,
            "/api/admin/plugins/guard",
            Some(json!({"wasm_base64": deny_all, "binding": {"tools": ["serpapi"]}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    for (body, status, code) in [
        (
            json!({"wasm_base64": deny_all, "percent": 0}),
            StatusCode::BAD_REQUEST,
            "validation_failed",
        ),
        (
            json!({"wasm_base64": deny_all, "percent": 101}),
            StatusCode::BAD_REQUEST,
            "validation_failed",
        ),
        (
            json!({"wasm_base64": "%%%"}),
            StatusCode::BAD_REQUEST,
            "validation_failed",
        ),
        (
            json!({"wasm_base64": deny_all, "colour": 1}),
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
        (
            json!({"wasm_base64": wasm_base64("policies-wasm", "chaos")}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "plugin_invalid",
        ),
    ] {
        let (got, answer) = put("guard", body.clone()).await;
        assert_eq!(
            (got, answer["code"].as_str()),
            (status, Some(code)),
            "{answer}"
        );
    }
    let (status, body) = gw
        .admin(
            Method::POST,
            "/api/admin/plugins/guard/shadow/promote",
            None,
        )
        .await;
    assert_eq!(
        (status, &body["code"]),
        (StatusCode::NOT_FOUND, &json!("no_shadow"))
    );
    assert_eq!(
        gw.admin(Method::GET, "/api/admin/plugins/guard/shadow", None)
            .await
            .1["candidate"],
        Value::Null
    );
    let (status, _) = gw
        .admin(Method::GET, "/api/admin/plugins/guard/shadow?limit=0", None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// Hostile candidates at 100 % (looping, trapping, growing memory) under 8 concurrent
/// clients: every live answer is served as the live policy says, and each sampled call is
/// either judged or skipped, never queued; the looping one runs out of its CPU budget and
/// skips. (What they cost live throughput is measured by `bench proxy --shadow`.)
async fn hostile_shadows_never_hold_live_answers(backend: Backend) {
    let f = Fixture::start(backend).await;
    let gw = &f.gateway;
    let deny_all = wasm_base64("target/plugin-fixtures", "deny-all");
    let (status, body) = gw
        .admin(
            Method::PUT,
            "/api/admin/plugins/guard",
            Some(json!({"wasm_base64": deny_all, "binding": {"tools": ["serpapi"], "timeout_ms": 100}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    for hostile in ["loop-forever", "always-trap", "grow-memory"] {
        // An agent per candidate: 200 calls each stay inside the per-agent rate limits.
        let (agent, _) = gw.create_agent(hostile, "scraper").await;
        let (token, _) = gw.mint(&agent).await;
        let (status, body) = gw
            .admin(
                Method::PUT,
                "/api/admin/plugins/guard/shadow",
                Some(json!({"wasm_base64": wasm_base64("target/plugin-fixtures", hostile), "percent": 100})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{hostile}: {body}");
        let before = accounted(gw).await;
        let clients: Vec<_> = (0..8)
            .map(|_| {
                let (gw, token) = (ApiClient::clone(gw), token.clone());
                tokio::spawn(async move {
                    let mut rules = Vec::new();
                    for _ in 0..25 {
                        rules.push(search(&gw, &token).await.1);
                    }
                    rules
                })
            })
            .collect();
        for client in clients {
            for rule in client.await.unwrap() {
                assert_eq!(rule, "deny_all", "{hostile}: a live answer changed");
            }
        }
        // Every sampled call is accounted for once its shadow task ends (or was skipped).
        wait_until("every shadow call judged or skipped", || async {
            accounted(gw).await == before + 200
        })
        .await;
        let evaluations = shadow(gw).await["evaluations"].clone();
        assert_eq!(evaluations["agree"], 0, "{hostile}: {evaluations}");
        if hostile == "loop-forever" {
            let skipped = evaluations["skipped"].as_u64().unwrap();
            assert!(
                skipped > 0,
                "a looping candidate runs out of budget: {evaluations}"
            );
        }
    }
}

/// The shadow calls of the binding this instance judged or skipped so far.
async fn accounted(gw: &TestGateway) -> u64 {
    let e = &shadow(gw).await["evaluations"];
    ["agree", "disagree", "error", "skipped"]
        .iter()
        .map(|k| e[k].as_u64().unwrap_or(0))
        .sum()
}

crate::on_both_backends!(
    a_shadow_candidate_is_judged_listed_promoted_and_rolled_back,
    bad_shadow_requests_change_nothing,
    hostile_shadows_never_hold_live_answers,
);
