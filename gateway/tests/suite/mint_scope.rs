//! An agent's maximum token scope: set by the operator (or derived from its role), never
//! exceeded by the agent's own signed mints, exceeded by an admin only on purpose.

use crate::common::{Backend, Fixture};
use crate::signature_auth::{send, sign};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn request(agent: &str, tools: &[&str], permissions: &[&str], ttl_minutes: i64) -> Value {
    json!({"agent_id": agent, "tools": tools, "permissions": permissions, "ttl_minutes": ttl_minutes})
}

async fn self_mint(f: &Fixture, agent: &str, key: &str, body: Value) -> (StatusCode, Value) {
    send(f, &sign(agent, key, &body, chrono::Utc::now().timestamp())).await
}

async fn an_agent_cannot_widen_its_own_tokens(backend: Backend) {
    let f = Fixture::start(backend).await;
    let (agent, key) = f.gateway.create_agent("a", "scraper").await;
    // The role's scope: a scraper searches and fetches, and only reads.
    let (status, body) = self_mint(
        &f,
        &agent,
        &key,
        request(&agent, &["serpapi", "http_fetch"], &["read"], 60),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    for wider in [
        request(&agent, &["serpapi", "gmail_send"], &["read"], 60),
        request(&agent, &["serpapi"], &["read", "write"], 60),
        request(&agent, &["openai"], &["read"], 60),
    ] {
        let (status, body) = self_mint(&f, &agent, &key, wider.clone()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{wider}: {body}");
        assert_eq!(body["code"], "scope_not_allowed", "{body}");
    }
    // The operator narrows it: one tool, ten minutes.
    let (status, body) = f
        .gateway
        .admin(
            Method::PATCH,
            &format!("/api/agents/{agent}"),
            Some(json!({"max_scope": {"tools": ["serpapi"], "permissions": ["read"], "max_ttl_minutes": 10}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["agent"]["maxScopeSource"], "operator");
    let (status, body) = self_mint(
        &f,
        &agent,
        &key,
        request(&agent, &["serpapi"], &["read"], 11),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("at most 10"),
        "{body}"
    );
    let (status, body) = self_mint(
        &f,
        &agent,
        &key,
        request(&agent, &["http_fetch"], &["read"], 10),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = self_mint(
        &f,
        &agent,
        &key,
        request(&agent, &["serpapi"], &["read"], 10),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // Back to the role's scope.
    let (status, body) = f
        .gateway
        .admin(
            Method::PATCH,
            &format!("/api/agents/{agent}"),
            Some(json!({"max_scope": null})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["agent"]["maxScopeSource"], "role");
    assert_eq!(
        body["agent"]["maxScope"]["tools"],
        json!(["serpapi", "http_fetch"])
    );
}

async fn an_admin_exceeds_an_agents_scope_only_on_purpose(backend: Backend) {
    let f = Fixture::start(backend).await;
    let (agent, key) = f.gateway.create_agent("a", "scraper").await;
    let wider = request(&agent, &["gmail_send"], &["write"], 30);
    let (status, body) = f
        .gateway
        .admin(Method::POST, "/api/generate-token", Some(wider.clone()))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["code"], "scope_not_allowed");
    let mut on_purpose = wider.clone();
    on_purpose["beyond_agent_scope"] = json!(true);
    let (status, body) = f
        .gateway
        .admin(
            Method::POST,
            "/api/generate-token",
            Some(on_purpose.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // The flag is the operator's: an agent that sends it is still bounded.
    let (status, body) = self_mint(&f, &agent, &key, on_purpose).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["code"], "scope_not_allowed");
}

async fn a_scope_is_set_at_creation_and_checked(backend: Backend) {
    let f = Fixture::start(backend).await;
    let create = |scope: Value| json!({"name": "n", "created_by": "tests", "role": "custom", "max_scope": scope});
    for bad in [
        json!({"tools": [], "permissions": ["read"]}),
        json!({"tools": ["serpapi"], "permissions": ["read"], "max_ttl_minutes": 0}),
        json!({"tools": ["serpapi"], "permissions": ["read"], "max_ttl_minutes": 100000}),
        json!({"tools": ["teleport"], "permissions": ["read"]}),
        json!({"tools": ["serpapi"], "permissions": ["read"], "extra": 1}),
    ] {
        let (status, body) = f
            .gateway
            .admin(Method::POST, "/api/create-agent", Some(create(bad.clone())))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
    let (status, body) = f
        .gateway
        .admin(
            Method::POST,
            "/api/create-agent",
            Some(create(
                json!({"tools": ["openai"], "permissions": ["read"], "max_ttl_minutes": 5}),
            )),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let agent = body["agent_id"].as_str().unwrap().to_string();
    let key = body["private_key"].as_str().unwrap().to_string();
    let (status, shown) = f
        .gateway
        .admin(Method::GET, &format!("/api/agents/{agent}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        shown["agent"]["maxScope"],
        json!({"tools": ["openai"], "permissions": ["read"], "max_ttl_minutes": 5})
    );
    let (status, body) =
        self_mint(&f, &agent, &key, request(&agent, &["openai"], &["read"], 6)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) =
        self_mint(&f, &agent, &key, request(&agent, &["openai"], &["read"], 5)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

on_both_backends!(
    an_agent_cannot_widen_its_own_tokens,
    an_admin_exceeds_an_agents_scope_only_on_purpose,
    a_scope_is_set_at_creation_and_checked,
);
