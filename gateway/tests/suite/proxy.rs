//! `/api/proxy-request` end to end over HTTP: the success envelope and headers, every early
//! failure with its status and code, claims, rate limits, cache, policies, chaos at
//! runtime, and one audit row per request that survives a graceful shutdown.

use crate::common::{
    proxy, read, redis_url, secrets, settings, Backend, Fixture, TestDatabase, TestGateway,
    SIGNING_SECRET,
};
use gateway::config::{Environment, Settings};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// Mints a token with the given tools and permissions.
async fn mint(gw: &TestGateway, agent: &str, tools: &[&str], permissions: &[&str]) -> String {
    let (status, body) = gw
        .admin(
            Method::POST,
            "/api/generate-token",
            Some(json!({"agent_id": agent, "tools": tools, "permissions": permissions, "ttl_minutes": 30})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["agent_token"].as_str().unwrap().to_string()
}

fn search(token: &str, q: &str) -> Value {
    json!({"agent_token": token, "tool": "serpapi", "action": "search", "params": {"q": q}})
}

async fn logs(gw: &TestGateway) -> Value {
    let (status, body) = gw
        .admin(Method::GET, "/api/proxy/logs?limit=1000", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn mock_search_answers_the_envelope_and_caches(backend: Backend) {
    let f = Fixture::start(backend).await;
    let gw = &f.gateway;
    let (agent, _) = gw.create_agent("searcher", "tester").await;
    let token = mint(gw, &agent, &["serpapi"], &["read"]).await;

    let response = gw
        .client
        .post(gw.url("/api/proxy-request"))
        .header("x-correlation-id", "corr-123")
        .json(&search(&token, "rust gateway"))
        .send()
        .await
        .unwrap();
    let headers = response.headers().clone();
    let (status, body) = read(response).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["success"], true);
    assert_eq!(body["data"]["source"], "serpapi-mock");
    assert_eq!(body["data"]["query"], "rust gateway");
    assert_eq!(body["metadata"]["agent_id"], agent.as_str());
    assert_eq!(body["metadata"]["agent_name"], "searcher");
    assert_eq!(body["metadata"]["tool"], "serpapi");
    assert_eq!(body["metadata"]["cached"], false);
    assert_eq!(headers["x-correlation-id"], "corr-123");
    assert_eq!(headers["x-cache"], "MISS");
    assert_eq!(headers["x-ratelimit-limit"], "300");
    assert_eq!(headers["x-ratelimit-remaining"], "299");
    assert!(headers.get("x-token-rotation-recommended").is_none());

    let (status, headers, body) = proxy(gw, search(&token, "rust gateway")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["x-cache"], "HIT");
    assert_eq!(body["metadata"]["cached"], true);
    assert!(
        headers["x-correlation-id"].len() >= 32,
        "generated when absent"
    );
    // Same parameters in another key order share the entry; other parameters do not.
    let (_, headers, _) = proxy(
        gw,
        json!({"agent_token": token, "tool": "serpapi", "action": "search", "params": {"num": 10, "q": "x"}}),
    )
    .await;
    assert_eq!(headers["x-cache"], "MISS");
    let (_, headers, _) = proxy(
        gw,
        json!({"agent_token": token, "tool": "serpapi", "action": "search", "params": {"q": "x", "num": 10}}),
    )
    .await;
    assert_eq!(headers["x-cache"], "HIT");

    // A token with under five minutes left comes with rotation advice.
    let (status, body) = gw
        .admin(
            Method::POST,
            "/api/generate-token",
            Some(json!({"agent_id": agent, "tools": ["serpapi"], "permissions": ["read"], "ttl_minutes": 3})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let short = body["agent_token"].as_str().unwrap();
    let (status, headers, _) = proxy(gw, search(short, "rotate")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["x-token-rotation-recommended"], "true");
    assert!(headers["x-token-expires-at"]
        .to_str()
        .unwrap()
        .ends_with('Z'));

    let text = gw.metrics().await;
    assert!(
        text.contains(r#"gateway_cache_hits_total{action="search",tool="serpapi"} 2"#),
        "{text}"
    );
    assert!(
        text.contains(r#"gateway_requests_total{action="search",code="200",tool="serpapi"} 5"#),
        "{text}"
    );
    assert!(text.contains("gateway_request_duration_seconds_bucket"));
}

async fn every_early_failure_has_its_status_and_code(backend: Backend) {
    let f = Fixture::start(backend).await;
    let gw = &f.gateway;
    let (agent, _) = gw.create_agent("prober", "tester").await;
    let read_search = mint(gw, &agent, &["serpapi"], &["read"]).await;
    let mail_read_only = mint(gw, &agent, &["gmail_send"], &["read"]).await;
    let (revoked, revoked_id) = gw.mint(&agent).await;
    gw.admin(
        Method::POST,
        &format!("/api/admin/tokens/{revoked_id}/revoke"),
        None,
    )
    .await;

    let cases: Vec<(Value, StatusCode, &str)> = vec![
        (
            json!({"tool": "serpapi"}),
            StatusCode::BAD_REQUEST,
            "missing_fields",
        ),
        (
            json!({"agent_token": read_search, "tool": "serpapi", "action": "search", "params": "q"}),
            StatusCode::BAD_REQUEST,
            "missing_fields",
        ),
        (
            json!({"agent_token": read_search, "tool": "nope", "action": "x", "params": {}}),
            StatusCode::BAD_REQUEST,
            "unsupported_tool",
        ),
        (
            json!({"agent_token": read_search, "tool": "serpapi", "action": "x", "params": {}}),
            StatusCode::BAD_REQUEST,
            "unsupported_action",
        ),
        (
            json!({"agent_token": read_search, "tool": "serpapi", "action": "search", "params": {"num": 0}}),
            StatusCode::BAD_REQUEST,
            "invalid_params",
        ),
        (
            search("gw1.forged.token", "q"),
            StatusCode::FORBIDDEN,
            "invalid_token",
        ),
        (
            search(&revoked, "q"),
            StatusCode::FORBIDDEN,
            "token_revoked",
        ),
        (
            json!({"agent_token": read_search, "tool": "http_fetch", "action": "get", "params": {"url": "https://example.com"}}),
            StatusCode::FORBIDDEN,
            "tool_not_granted",
        ),
        (
            json!({"agent_token": mail_read_only, "tool": "gmail_send", "action": "send", "params": {"to": "a@b.co", "subject": "s", "text": "t"}}),
            StatusCode::FORBIDDEN,
            "permission_not_granted",
        ),
    ];
    for (body, status, code) in &cases {
        let (got, headers, answer) = proxy(gw, body.clone()).await;
        assert_eq!(
            (got, answer["code"].as_str()),
            (*status, Some(*code)),
            "{body} → {answer}"
        );
        assert!(answer["error"].is_string());
        assert!(headers.contains_key("x-correlation-id"));
    }
    let (status, _, answer) = proxy(gw, json!("not an object")).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("missing_fields"))
    );
    // The same request with the token as a bearer header succeeds.
    let response = gw
        .client
        .post(gw.url("/api/proxy-request"))
        .bearer_auth(&mail_read_only)
        .json(&json!({"tool": "gmail_send", "action": "profile", "params": {}}))
        .send()
        .await
        .unwrap();
    let (status, body) = read(response).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["email"], "mock@example.com");

    // One audit row per request, with its status and code.
    let logs = logs(gw).await;
    assert_eq!(logs["total"], cases.len() + 2, "{logs}");
    let rows = logs["logs"].as_array().unwrap();
    for (_, status, code) in &cases {
        assert!(
            rows.iter()
                .any(|r| r["statusCode"] == status.as_u16() && r["errorCode"] == *code),
            "no row for {code}"
        );
    }
    let text = gw.metrics().await;
    assert!(
        text.contains(r#"gateway_requests_total{action="unknown",code="400",tool="unknown"} 2"#),
        "{text}"
    );
}

async fn rate_limit_refuses_with_retry_after(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let mut s = settings(&database.url, database.data_dir());
    s.proxy.rate_limit_per_agent = 2;
    let gw = &TestGateway::start_with(s, secrets(SIGNING_SECRET)).await;
    let (agent, _) = gw.create_agent("eager", "tester").await;
    let token = mint(gw, &agent, &["serpapi"], &["read"]).await;
    for remaining in ["1", "0"] {
        let (status, headers, _) = proxy(gw, search(&token, "q")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers["x-ratelimit-remaining"], remaining);
        assert_eq!(headers["x-ratelimit-limit"], "2");
    }
    let (status, headers, body) = proxy(gw, search(&token, "q")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["code"], "rate_limited");
    assert_eq!(body["error"], "Rate limit exceeded");
    assert_eq!(body["retry_after"], 30);
    assert_eq!(headers["retry-after"], "30");
    assert!(gw
        .metrics()
        .await
        .contains(r#"gateway_rate_limited_total{scope="agent"} 1"#));
}

/// An agent policy that allows searches only, with no time window.
async fn allow_search_only(gw: &TestGateway, agent: &str) {
    let (status, body) = gw
        .admin(
            Method::POST,
            "/api/policies",
            Some(json!({"name": "search only", "agentId": agent, "spec": {"scopes": ["serpapi:search"]}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    gw.state.policies.sync(&gw.state.store).await.unwrap();
}

async fn policies_deny_and_chaos_changes_at_runtime(backend: Backend) {
    let f = Fixture::with_default_plugins_and(backend, |s| {
        s.environment = Environment::Development;
    })
    .await;
    let gw = &f.gateway;
    let (agent, _) = gw.create_agent("governed", "tester").await;
    allow_search_only(gw, &agent).await;
    let token = mint(gw, &agent, &["serpapi", "gmail_send"], &["read", "write"]).await;

    let (status, _, body) = proxy(gw, search(&token, "allowed")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let send = json!({"agent_token": token, "tool": "gmail_send", "action": "send",
                      "params": {"to": "a@b.co", "subject": "s", "text": "t"}});
    let (status, _, body) = proxy(gw, send).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"], "Policy denied");
    assert_eq!(body["code"], "policy_denied");
    assert!(
        body["reason"].as_str().unwrap().contains("gmail_send:send"),
        "{body}"
    );

    // Chaos on at runtime: every search fails upstream with an injected 500.
    let (status, body) = gw
        .admin(
            Method::POST,
            "/api/admin/chaos/tool",
            Some(json!({"tool": "serpapi", "mode": "500", "pct": 100})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _, body) = proxy(gw, search(&token, "chaos")).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(body["code"], "upstream_failed");
    // And off again.
    gw.admin(Method::DELETE, "/api/admin/chaos/tool/serpapi", None)
        .await;
    let (status, _, _) = proxy(gw, search(&token, "calm")).await;
    assert_eq!(status, StatusCode::OK);

    let rows = logs(gw).await;
    let rows = rows["logs"].as_array().unwrap();
    assert!(rows
        .iter()
        .any(|r| r["chaosFault"] == "error" && r["statusCode"] == 502));
    assert!(rows
        .iter()
        .any(|r| r["policyDecision"] == "deny" && r["errorCode"] == "policy_denied"));
    let (status, policy_logs) = gw
        .admin(
            Method::GET,
            &format!("/api/policy-logs?agentId={agent}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let decisions: Vec<&str> = policy_logs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["decision"].as_str().unwrap())
        .collect();
    assert_eq!(
        decisions.iter().filter(|d| **d == "deny").count(),
        1,
        "{policy_logs}"
    );
    assert_eq!(
        decisions.iter().filter(|d| **d == "allow").count(),
        3,
        "{policy_logs}"
    );
    let text = gw.metrics().await;
    assert!(
        text.contains(r#"gateway_chaos_injections_total{fault="error",tool="serpapi"} 1"#),
        "{text}"
    );
}

async fn no_audit_row_is_lost_across_a_graceful_shutdown(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let gw = TestGateway::start_with(
        settings(&database.url, database.data_dir()),
        secrets(SIGNING_SECRET),
    )
    .await;
    let (agent, _) = gw.create_agent("audited", "tester").await;
    let token = mint(&gw, &agent, &["serpapi"], &["read"]).await;
    let sent = 40;
    let mut calls = Vec::new();
    for i in 0..sent {
        let client = gw.client.clone();
        let url = gw.url("/api/proxy-request");
        let body = search(&token, &format!("q{}", i % 7));
        calls.push(tokio::spawn(async move {
            client.post(url).json(&body).send().await.unwrap().status()
        }));
    }
    for call in calls {
        assert_eq!(call.await.unwrap(), StatusCode::OK);
    }
    // The gateway closes its pool on shutdown; count through a new one.
    gw.stop().await;
    let store = gateway::store::Store::connect(&database.url).await.unwrap();
    assert_eq!(store.count_request_logs().await.unwrap(), sent);
}

async fn audit_rows_past_their_retention_are_pruned(backend: Backend) {
    let f = Fixture::start(backend).await;
    let gw = &f.gateway;
    let (agent, _) = gw.create_agent("old", "tester").await;
    let token = mint(gw, &agent, &["serpapi"], &["read"]).await;
    for q in ["a", "b"] {
        let (status, _, _) = proxy(gw, search(&token, q)).await;
        assert_eq!(status, StatusCode::OK);
    }
    gw.state.proxy.audit.flush().await;
    let store = &gw.state.store;
    let ten_days_ago = gateway::clock::Clock::SYSTEM.now_ms() - 10 * 86_400_000;
    store
        .insert_audit_batch(
            &[gateway::store::request_logs::RequestLogRow {
                created_at: ten_days_ago,
                ..request_row("old-request", &agent)
            }],
            &[gateway::store::policies::PolicyLogRow {
                created_at: ten_days_ago,
                ..policy_row("old-decision", &agent)
            }],
        )
        .await
        .unwrap();
    assert_eq!(store.count_request_logs().await.unwrap(), 3);
    assert_eq!(store.request_log_total().await.unwrap(), 3);
    let week = std::time::Duration::from_secs(7 * 86_400);
    assert_eq!(gateway::audit::prune(store, week).await.unwrap(), 2);
    assert_eq!(store.count_request_logs().await.unwrap(), 2);
    assert_eq!(store.request_log_total().await.unwrap(), 2);
    assert_eq!(gateway::audit::prune(store, week).await.unwrap(), 0);
    assert_eq!(store.request_log_total().await.unwrap(), 2);
    // The log endpoint answers the kept total.
    let (status, logs) = gw.admin(Method::GET, "/api/proxy/logs?limit=1", None).await;
    assert_eq!((status, &logs["total"]), (StatusCode::OK, &json!(2)));
}

/// Text the client chose reaches the audit log without breaking its batch: PostgreSQL
/// refuses NUL in text, and one such request must not cost the other rows of its batch.
async fn a_nul_in_a_tool_name_costs_no_audit_row(backend: Backend) {
    let f = Fixture::start(backend).await;
    let gw = &f.gateway;
    let (agent, _) = gw.create_agent("nul", "tester").await;
    let token = mint(gw, &agent, &["serpapi"], &["read"]).await;
    let odd = json!({"agent_token": token, "tool": "serp\u{0}api", "action": "search\u{0}",
                     "params": {"q": "x"}});
    let (status, _, _) = proxy(gw, odd).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, _) = proxy(gw, search(&token, "after")).await;
    assert_eq!(status, StatusCode::OK);
    gw.state.proxy.audit.flush().await;
    let body = logs(gw).await;
    let rows = body["logs"].as_array().expect("logs");
    assert_eq!(rows.len(), 2, "{body}");
    assert!(
        rows.iter()
            .any(|r| r["tool"] == "serp\u{fffd}api" && r["action"] == "search\u{fffd}"),
        "{body}"
    );
}

/// When the helper rows below were written: recent, so that the fixture's pruning task (it
/// runs at start and every minute) never takes them for rows past their retention.
static WRITTEN_AT: std::sync::LazyLock<i64> =
    std::sync::LazyLock::new(|| gateway::clock::Clock::SYSTEM.now_ms());

fn request_row(id: &str, agent: &str) -> gateway::store::request_logs::RequestLogRow {
    gateway::store::request_logs::RequestLogRow {
        id: id.into(),
        correlation_id: format!("corr-{id}"),
        agent_id: Some(agent.into()),
        tool: "serpapi".into(),
        action: "search".into(),
        status_code: 200,
        success: 1,
        error_code: None,
        response_time_ms: 1.25,
        cached: 0,
        policy_decision: Some("allow".into()),
        chaos_fault: None,
        sample_rate: None,
        created_at: *WRITTEN_AT,
    }
}

fn policy_row(id: &str, agent: &str) -> gateway::store::policies::PolicyLogRow {
    gateway::store::policies::PolicyLogRow {
        id: id.into(),
        policy_id: Some("spec-policy".into()),
        agent_id: agent.into(),
        tool: "serpapi".into(),
        action: "search".into(),
        decision: "allow".into(),
        reason: None,
        request_data: Some(r#"{"correlation_id":"c"}"#.into()),
        response_data: None,
        created_at: *WRITTEN_AT,
    }
}

/// The audit writer's batch (request rows and policy rows) is one transaction: a batch the
/// database refuses leaves neither table half-written, and a good one lands in both.
async fn an_audit_batch_lands_whole_or_not_at_all(backend: Backend) {
    let f = Fixture::start(backend).await;
    let store = &f.gateway.state.store;
    let agent = uuid::Uuid::new_v4().to_string();
    // The policy rows only (the request rows' allows are listed among decisions too).
    let decisions = || async {
        store
            .list_policy_logs(Some("spec-policy"), None, 100)
            .await
            .unwrap()
    };
    let before = store.count_request_logs().await.unwrap();
    // The second policy row repeats the first one's id: the database refuses the batch.
    let refused = store
        .insert_audit_batch(
            &[request_row("r1", &agent)],
            &[policy_row("p1", &agent), policy_row("p1", &agent)],
        )
        .await;
    assert!(refused.is_err());
    assert_eq!(store.count_request_logs().await.unwrap(), before);
    assert_eq!(store.request_log_total().await.unwrap(), before);
    assert!(decisions().await.is_empty());

    store
        .insert_audit_batch(
            &[request_row("r1", &agent), request_row("r2", &agent)],
            &[policy_row("p1", &agent)],
        )
        .await
        .unwrap();
    assert_eq!(store.count_request_logs().await.unwrap(), before + 2);
    assert_eq!(store.request_log_total().await.unwrap(), before + 2);
    assert_eq!(decisions().await, vec![policy_row("p1", &agent)]);
    let written = store.list_request_logs(100).await.unwrap();
    let r1 = written.iter().find(|r| r.id == "r1").expect("row r1");
    assert_eq!(r1, &request_row("r1", &agent));
}

on_both_backends!(
    audit_rows_past_their_retention_are_pruned,
    an_audit_batch_lands_whole_or_not_at_all,
    a_nul_in_a_tool_name_costs_no_audit_row,
    mock_search_answers_the_envelope_and_caches,
    every_early_failure_has_its_status_and_code,
    rate_limit_refuses_with_retry_after,
    policies_deny_and_chaos_changes_at_runtime,
    no_audit_row_is_lost_across_a_graceful_shutdown,
);

/// Two instances on one database and one Redis share one rate limit and one cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_share_limits_and_cache_through_redis() {
    let database = TestDatabase::create(Backend::Postgres).await;
    let mut first: Settings = settings(&database.url, database.data_dir());
    first.redis_url = Some(redis_url());
    first.proxy.rate_limit_per_agent = 3;
    let a = TestGateway::start_with(first.clone(), secrets(SIGNING_SECRET)).await;
    let b = TestGateway::start_with(first, secrets(SIGNING_SECRET)).await;
    let (agent, _) = a.create_agent("shared", "tester").await;
    let token = mint(&a, &agent, &["serpapi"], &["read"]).await;

    let (status, headers, _) = proxy(&a, search(&token, "shared")).await;
    assert_eq!(
        (status, &headers["x-cache"]),
        (StatusCode::OK, &"MISS".parse().unwrap())
    );
    let (status, headers, _) = proxy(&b, search(&token, "shared")).await;
    assert_eq!(
        (status, &headers["x-cache"]),
        (StatusCode::OK, &"HIT".parse().unwrap())
    );
    let (status, _, _) = proxy(&a, search(&token, "shared")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, body) = proxy(&b, search(&token, "shared")).await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "the fourth request, on either instance: {body}"
    );
    a.stop().await;
    b.stop().await;
}
