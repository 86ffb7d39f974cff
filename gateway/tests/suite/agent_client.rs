//! The agents' client crate (`client/`) against a real gateway: it mints its own tokens with
//! its key, calls tools, renews a revoked token by itself, and reports refusals (a tool not
//! granted, a suspended agent, a rate limit) by their codes.

use crate::common::{Backend, Fixture};
use gateway_client::{AgentClient, ClientError, ErrorKind};
use reqwest::Method;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_mints_calls_renews_and_reads_refusals_with_its_own_key() {
    let f = Fixture::start(Backend::Sqlite).await;
    let gw = &f.gateway;
    let (agent_id, private_key) = gw.create_agent("client", "scraper").await;
    let base = gw.url("");
    let agent = AgentClient::builder(base.trim_end_matches('/'), &agent_id, &private_key)
        .tools(["serpapi"])
        .build()
        .unwrap();

    let answer = agent
        .call("serpapi", "search", json!({"q": "x"}))
        .await
        .unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body["success"], true, "{}", answer.body);
    // The call is in the audit log under the client's correlation id.
    let (_, logs) = gw.admin(Method::GET, "/api/proxy/logs?limit=1", None).await;
    assert_eq!(logs["logs"][0]["corrId"], answer.correlation_id, "{logs}");

    // Its token is revoked behind its back: the client mints a new one and the call succeeds.
    let token = agent.token().await.unwrap();
    let seen = gw.introspect(&token).await;
    let token_id = seen["token_id"].as_str().unwrap();
    let (status, _) = gw
        .admin(
            Method::POST,
            &format!("/api/admin/tokens/{token_id}/revoke"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    agent
        .call("serpapi", "search", json!({"q": "y"}))
        .await
        .unwrap();
    assert_ne!(
        agent.token().await.unwrap(),
        token,
        "a new token was minted"
    );

    // A tool the token does not grant: a typed refusal naming the code.
    let refused = agent
        .call(
            "openai",
            "chat",
            json!({"messages": [{"role": "user", "content": "hi"}]}),
        )
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), Some(&ErrorKind::NotGranted), "{refused}");
    let ClientError::Api { status, code, .. } = &refused else {
        panic!("{refused}")
    };
    assert_eq!((*status, code.as_str()), (403, "tool_not_granted"));

    // A suspended agent cannot mint: the refusal says so.
    let (status, _) = gw
        .admin(
            Method::PATCH,
            &format!("/api/agents/{agent_id}"),
            Some(json!({"status": "suspended"})),
        )
        .await;
    assert_eq!(status, 200);
    agent.forget_token().await;
    let refused = agent
        .call("serpapi", "search", json!({"q": "z"}))
        .await
        .unwrap_err();
    assert_eq!(
        refused.kind(),
        Some(&ErrorKind::AgentNotActive),
        "{refused}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_call_is_a_typed_refusal_once_its_retries_are_spent() {
    let f = crate::common::Fixture::with_default_plugins_and(Backend::Sqlite, |s| {
        s.proxy.rate_limit_per_agent = 1;
    })
    .await;
    let gw = &f.gateway;
    gw.allow_any_hour_role().await;
    let (agent_id, private_key) = gw
        .create_agent("limited", crate::common::ANY_HOUR_ROLE)
        .await;
    let base = gw.url("");
    let limited = AgentClient::builder(base.trim_end_matches('/'), &agent_id, &private_key)
        .tools(["serpapi"])
        .retries(0)
        .build()
        .unwrap();
    limited
        .call("serpapi", "search", json!({"q": "1"}))
        .await
        .unwrap();
    let refused = limited
        .call("serpapi", "search", json!({"q": "2"}))
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), Some(&ErrorKind::RateLimited), "{refused}");
}
