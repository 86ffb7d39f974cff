//! Bad input gets a clear JSON error with a stable code, never a 500, and changes nothing.

use crate::common::{read, Backend, Fixture, ADMIN_KEY};
use reqwest::{Method, StatusCode};
use serde_json::json;

async fn raw(
    f: &Fixture,
    method: Method,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, serde_json::Value) {
    // A fresh connection per request: after refusing an oversized body the server closes the
    // connection, and a pooled client could otherwise race that close with the next request.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let mut req = client
        .request(method, f.gateway.url(path))
        .bearer_auth(ADMIN_KEY)
        .body(body);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    read(req.send().await.unwrap()).await
}

/// One bad request: path, content type, body, expected status and code.
type BadBody = (
    &'static str,
    Option<&'static str>,
    Vec<u8>,
    StatusCode,
    &'static str,
);

async fn malformed_bodies_get_stable_codes(backend: Backend) {
    let f = Fixture::start(backend).await;
    let json_ct = Some("application/json");
    let cases: Vec<BadBody> = vec![
        (
            "/api/create-agent",
            json_ct,
            b"{not json".to_vec(),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            "/api/create-agent",
            json_ct,
            b"".to_vec(),
            StatusCode::BAD_REQUEST,
            "missing_body",
        ),
        (
            "/api/create-agent",
            None,
            b"".to_vec(),
            StatusCode::BAD_REQUEST,
            "missing_body",
        ),
        (
            "/api/create-agent",
            json_ct,
            b"[1,2]".to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
        (
            "/api/create-agent",
            json_ct,
            b"null".to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
        (
            "/api/create-agent",
            json_ct,
            b"{} trailing".to_vec(),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            "/api/create-agent",
            Some("text/plain"),
            b"{}".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            "/api/create-agent",
            json_ct,
            vec![b' '; 2 * 1024 * 1024],
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            "/api/generate-token",
            json_ct,
            b"{\xff}".to_vec(),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            "/api/generate-token",
            json_ct,
            b"{}".to_vec(),
            StatusCode::BAD_REQUEST,
            "missing_fields",
        ),
        (
            "/api/admin/tokens/introspect",
            json_ct,
            b"{\"agent_token\": 5}".to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ), // PostgreSQL stores no NUL in text: refused up front, the same on both backends.
        (
            "/api/create-agent",
            json_ct,
            br#"{"name":"a\u0000b","role":"scraper","created_by":"ops"}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_text",
        ),
        (
            "/api/policies",
            json_ct,
            br#"{"name":"p\u0000","role":"scraper","spec":{"scopes":["serpapi:search"]}}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_text",
        ),
        (
            "/api/admin/creds/set",
            json_ct,
            br#"{"tool":"serpapi","version":"v\u00001","credential":"x"}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_text",
        ),
    ];
    for (path, ct, body, status, code) in cases {
        let (got, answer) = raw(&f, Method::POST, path, ct, body).await;
        assert_eq!(
            (got, answer["code"].as_str()),
            (status, Some(code)),
            "{path} {ct:?}: {answer}"
        );
        assert!(answer["error"].is_string());
    }
}

async fn token_requests_are_validated_in_order(backend: Backend) {
    let f = Fixture::start(backend).await;
    let (agent, _) = f.gateway.create_agent("a", "scraper").await;
    let past = (chrono::Utc::now() - chrono::Duration::minutes(1)).to_rfc3339();
    let far = (chrono::Utc::now() + chrono::Duration::days(30)).to_rfc3339();
    let unknown = "00000000-0000-4000-8000-000000000000";
    let cases = vec![
        (
            json!({"agent_id": agent, "tools": "serpapi", "permissions": ["read"], "ttl_minutes": 5}),
            StatusCode::BAD_REQUEST,
            "invalid_scope",
        ),
        (
            json!({"agent_id": agent, "tools": ["teleport"], "permissions": ["read"], "ttl_minutes": 5}),
            StatusCode::BAD_REQUEST,
            "invalid_scope",
        ),
        (
            json!({"agent_id": agent, "tools": ["serpapi"], "permissions": ["admin"], "ttl_minutes": 5}),
            StatusCode::BAD_REQUEST,
            "invalid_scope",
        ),
        (
            json!({"agent_id": agent, "tools": [], "permissions": ["read"], "ttl_minutes": 5}),
            StatusCode::BAD_REQUEST,
            "empty_scope",
        ),
        (
            json!({"agent_id": agent, "tools": ["serpapi"], "permissions": ["read"]}),
            StatusCode::BAD_REQUEST,
            "missing_fields",
        ),
        (
            json!({"agent_id": agent, "tools": ["serpapi"], "permissions": ["read"], "expires_at": "tomorrow"}),
            StatusCode::BAD_REQUEST,
            "invalid_expiry",
        ),
        (
            json!({"agent_id": agent, "tools": ["serpapi"], "permissions": ["read"], "expires_at": past}),
            StatusCode::BAD_REQUEST,
            "expiry_in_past",
        ),
        (
            json!({"agent_id": agent, "tools": ["serpapi"], "permissions": ["read"], "expires_at": far}),
            StatusCode::BAD_REQUEST,
            "ttl_too_long",
        ),
        (
            json!({"agent_id": agent, "tools": ["serpapi"], "permissions": ["read"], "ttl_minutes": 0}),
            StatusCode::BAD_REQUEST,
            "expiry_in_past",
        ),
        (
            json!({"agent_id": agent, "tools": ["serpapi"], "permissions": ["read"], "ttl_minutes": 100000}),
            StatusCode::BAD_REQUEST,
            "ttl_too_long",
        ),
        (
            json!({"agent_id": agent, "tools": ["serpapi"], "permissions": ["read"], "ttl_minutes": 5, "expires_at": far}),
            StatusCode::BAD_REQUEST,
            "ambiguous_expiry",
        ),
        (
            json!({"agent_id": agent, "tools": ["serpapi"], "permissions": ["read"], "ttl_minutes": "5"}),
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
        (
            json!({"agent_id": agent, "tools": ["serpapi"], "permissions": ["read"], "ttl_minutes": 5, "scope": "all"}),
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
        (
            json!({"agent_id": unknown, "tools": ["serpapi"], "permissions": ["read"], "ttl_minutes": 5}),
            StatusCode::NOT_FOUND,
            "agent_not_found",
        ),
        (
            json!({"agent_id": "nope", "tools": ["serpapi"], "permissions": ["read"], "ttl_minutes": 5}),
            StatusCode::NOT_FOUND,
            "agent_not_found",
        ),
    ];
    for (body, status, code) in cases {
        let (got, answer) = f
            .gateway
            .admin(Method::POST, "/api/generate-token", Some(body.clone()))
            .await;
        assert_eq!(
            (got, answer["code"].as_str()),
            (status, Some(code)),
            "{body}: {answer}"
        );
    }
    let (_, listed) = f
        .gateway
        .admin(Method::GET, "/api/admin/tokens", None)
        .await;
    assert_eq!(
        listed.as_array().unwrap().len(),
        0,
        "no token issued by bad input"
    );
}

async fn unknown_routes_and_methods_answer_json(backend: Backend) {
    let f = Fixture::start(backend).await;
    let (status, body) = raw(&f, Method::GET, "/api/nothing-here", None, vec![]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "not_found");
    assert_eq!(body["error"], "Route GET:/api/nothing-here not found");
    let (status, body) = raw(&f, Method::DELETE, "/api/create-agent", None, vec![]).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body["code"], "method_not_allowed");
    let (status, body) = raw(&f, Method::GET, "/api/admin/tokens?limit=abc", None, vec![]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "invalid_query");
}

/// A NUL in a path or query (`%00`) is a 400 on both backends, where PostgreSQL would
/// otherwise fail with a 500; the text "%00" itself (`%2500`) is ordinary text.
async fn a_nul_in_a_path_or_query_is_refused(backend: Backend) {
    let f = Fixture::start(backend).await;
    for (method, path) in [
        (Method::GET, "/api/policies?agentId=a%00b"),
        (Method::GET, "/api/policy-logs?policyId=x%00"),
        (Method::GET, "/api/policies/x%00"),
        (Method::DELETE, "/api/policies/x%00"),
        (Method::DELETE, "/api/admin/creds/x%00"),
        (Method::POST, "/api/admin/plugins/x%00/rollback"),
    ] {
        let (status, body) = raw(&f, method.clone(), path, None, vec![]).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_text")),
            "{method} {path}: {body}"
        );
    }
    let (status, body) = raw(&f, Method::GET, "/api/policies/x%2500", None, vec![]).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    // Without the admin key the answer is the usual 401, whatever the path holds.
    let anonymous = reqwest::get(f.gateway.url("/api/policies/x%00"))
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}

async fn a_path_that_is_not_utf8_answers_the_envelope(backend: Backend) {
    let f = Fixture::start(backend).await;
    for (method, path) in [
        (Method::GET, "/api/agents/%FF%FE"),
        (Method::GET, "/api/policies/%C3%28"),
        (Method::POST, "/api/admin/tokens/%80/revoke"),
        (Method::DELETE, "/api/admin/plugins/%ED%A0%80"),
    ] {
        let response = reqwest::Client::new()
            .request(method, f.gateway.url(path))
            .bearer_auth(ADMIN_KEY)
            .send()
            .await
            .unwrap();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let (status, body) = read(response).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert_eq!(body["code"], "invalid_path", "{path}: {body}");
        assert!(
            content_type.starts_with("application/json"),
            "{path}: {content_type}"
        );
    }
}

/// A policy for a role no agent can have (not ASCII, upper case), or a document too large
/// for a plugin to read within its deadline, is refused and nothing is stored.
async fn policies_for_impossible_roles_or_of_200_kb_are_refused(backend: Backend) {
    let f = Fixture::start(backend).await;
    let gw = &f.gateway;
    let (_, before) = gw.admin(Method::GET, "/api/policies", None).await;
    let spec = json!({"scopes": ["serpapi:search"]});
    for role in ["ſcraper", "ｓcraper", "Scraper", ""] {
        let (status, body) = gw
            .admin(
                Method::POST,
                "/api/policies",
                Some(json!({"name": "p", "role": role, "spec": spec})),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{role:?}: {body}");
        assert_eq!(body["code"], "validation_failed", "{role:?}: {body}");
    }
    let huge = json!({"scopes": ["serpapi:search"], "intent": "x".repeat(200_000)});
    let (status, body) = gw
        .admin(
            Method::POST,
            "/api/policies",
            Some(json!({"name": "p", "role": "scraper", "spec": huge})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.to_string().contains("at most 65536"), "{body}");
    let (_, after) = gw.admin(Method::GET, "/api/policies", None).await;
    assert_eq!(before, after, "nothing stored");
}

on_both_backends!(
    policies_for_impossible_roles_or_of_200_kb_are_refused,
    a_nul_in_a_path_or_query_is_refused,
    a_path_that_is_not_utf8_answers_the_envelope,
    malformed_bodies_get_stable_codes,
    token_requests_are_validated_in_order,
    unknown_routes_and_methods_answer_json,
);
