//! Token issue, introspection, expiry, revocation and agent suspension.

use crate::common::{secrets, settings, Backend, Fixture, TestGateway};
use chrono::{Duration, Utc};
use gateway::catalog::{Permission, ToolName};
use reqwest::{Method, StatusCode};
use serde_json::json;
use uuid::Uuid;

async fn issues_token_and_introspects_its_claims(backend: Backend) {
    let f = Fixture::start(backend).await;
    let (agent, _) = f.gateway.create_agent("scraper-1", "scraper").await;
    let expires = (Utc::now() + Duration::minutes(20)).to_rfc3339();
    let (status, body) = f
        .gateway
        .admin(
            Method::POST,
            "/api/generate-token",
            Some(
                json!({"agent_id": agent, "tools": ["serpapi", "http_fetch"],
                        "permissions": ["read"], "expires_at": expires}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["agent_name"], "scraper-1");
    let token = body["agent_token"].as_str().unwrap();
    assert!(token.starts_with("gw1."));
    assert!(
        !token.contains("scraper"),
        "claims are sealed, not readable"
    );
    let verdict = f.gateway.introspect(token).await;
    assert_eq!(verdict["active"], true, "{verdict}");
    assert_eq!(verdict["token_id"], body["token_id"]);
    assert_eq!(verdict["agent_id"], agent.as_str());
    assert_eq!(verdict["agent_role"], "scraper");
    assert_eq!(verdict["tools"], json!(["serpapi", "http_fetch"]));
    assert_eq!(verdict["permissions"], json!(["read"]));
    assert_eq!(verdict["rotation_recommended"], false);

    let (status, listed) = f
        .gateway
        .admin(Method::GET, "/api/admin/tokens", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed[0]["tokenId"], body["token_id"]);
    assert_eq!(listed[0]["isRevoked"], false);
    assert!(listed[0].get("agent_token").is_none() && listed[0].get("encrypted").is_none());
}

async fn tampered_token_is_invalid(backend: Backend) {
    let f = Fixture::start(backend).await;
    let (agent, _) = f.gateway.create_agent("a", "scraper").await;
    let (token, _) = f.gateway.mint(&agent).await;
    let mut bytes = token.into_bytes();
    let last = bytes.len() - 2;
    bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(bytes).unwrap();
    let verdict = f.gateway.introspect(&tampered).await;
    assert_eq!(verdict, json!({"active": false, "reason": "invalid"}));
    for garbage in ["", "x", "gw1.zzzz.AAAA", "eyJhZ2VudF9pZCI6IngifQ==.abcdef"] {
        let verdict = f.gateway.introspect(garbage).await;
        assert_eq!(verdict["reason"], "invalid", "{garbage}");
    }
}

async fn token_sealed_under_another_key_is_invalid(backend: Backend) {
    let f = Fixture::start(backend).await;
    let (agent, _) = f.gateway.create_agent("a", "scraper").await;
    // A second gateway on the same database with another sealing secret.
    let other = TestGateway::start_with(
        settings(&f.database.url, f.database.data_dir()),
        secrets("another-signing-secret-0123456789abcdef0"),
    )
    .await;
    let (foreign, _) = other.mint(&agent).await;
    assert_eq!(other.introspect(&foreign).await["active"], true);
    assert_eq!(f.gateway.introspect(&foreign).await["reason"], "invalid");
    other.stop().await;
}

/// A token sealed with the same secret by a gateway on another database names an agent this
/// one does not know: refused as `invalid_token`, exactly as a forged one, so the answer
/// does not confirm that the seal held.
async fn token_of_an_unknown_agent_is_invalid_as_a_forged_one(backend: Backend) {
    let home = Fixture::start(backend).await;
    let elsewhere = Fixture::start(backend).await;
    let (agent, _) = elsewhere.gateway.create_agent("a", "scraper").await;
    let (token, _) = elsewhere.gateway.mint(&agent).await;
    let search = |token: &str| json!({"agent_token": token, "tool": "serpapi", "action": "search", "params": {"q": "x"}});
    let (status, _, unknown) = crate::common::proxy(&home.gateway, search(&token)).await;
    let (_, _, forged) = crate::common::proxy(&home.gateway, search("gw1.forged.token")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{unknown}");
    assert_eq!(unknown, forged);
    assert_eq!(home.gateway.introspect(&token).await["reason"], "invalid");
}

async fn expired_token_is_refused_and_counted(backend: Backend) {
    let f = Fixture::start(backend).await;
    let (agent_id, _) = f.gateway.create_agent("a", "scraper").await;
    let agent = f
        .gateway
        .state
        .store
        .agent(Uuid::parse_str(&agent_id).unwrap())
        .await
        .unwrap()
        .unwrap();
    let issued_at = Utc::now() - Duration::minutes(10);
    let issued = f
        .gateway
        .state
        .tokens
        .issue(
            &agent,
            vec![ToolName::Serpapi],
            vec![Permission::Read],
            issued_at,
            issued_at + Duration::minutes(1),
        )
        .await
        .unwrap();
    let verdict = f.gateway.introspect(&issued.token).await;
    assert_eq!(verdict, json!({"active": false, "reason": "expired"}));
    assert_eq!(f.gateway.state.metrics.token_expirations.get(), 1);
}

async fn revoked_token_is_refused(backend: Backend) {
    let f = Fixture::start(backend).await;
    let (agent, _) = f.gateway.create_agent("a", "scraper").await;
    let (token, token_id) = f.gateway.mint(&agent).await;
    let (keep, _) = f.gateway.mint(&agent).await;
    // Validated once before the revocation, so that its claims are in the cache of opened
    // tokens: the revocation must still win.
    assert_eq!(f.gateway.introspect(&token).await["active"], true);
    let path = format!("/api/admin/tokens/{token_id}/revoke");
    let (status, body) = f.gateway.admin(Method::POST, &path, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["message"], "Token revoked successfully");
    assert_eq!(body["tokenId"], token_id.as_str());
    let first_time = body["revokedAt"].clone();
    assert!(first_time.is_string());
    assert_eq!(f.gateway.introspect(&token).await["reason"], "revoked");
    assert_eq!(
        f.gateway.introspect(&keep).await["active"],
        true,
        "other tokens unaffected"
    );

    let (status, again) = f.gateway.admin(Method::POST, &path, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        again["revokedAt"], first_time,
        "revoking twice keeps the first time"
    );

    let (status, body) = f
        .gateway
        .admin(
            Method::POST,
            &format!("/api/admin/tokens/{}/revoke", Uuid::new_v4()),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "token_not_found");
}

async fn suspending_an_agent_revokes_its_tokens_for_good(backend: Backend) {
    let f = Fixture::start(backend).await;
    let (agent, _) = f.gateway.create_agent("a", "scraper").await;
    let (token, _) = f.gateway.mint(&agent).await;
    let (other_agent, _) = f.gateway.create_agent("b", "scraper").await;
    let (bystander, _) = f.gateway.mint(&other_agent).await;
    assert_eq!(f.gateway.introspect(&token).await["active"], true);
    let path = format!("/api/agents/{agent}");
    let (status, body) = f
        .gateway
        .admin(Method::PATCH, &path, Some(json!({"status": "suspended"})))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["tokens_revoked"], 1);
    assert_eq!(f.gateway.introspect(&token).await["reason"], "revoked");
    let (status, body) = f
        .gateway
        .admin(
            Method::POST,
            "/api/generate-token",
            Some(json!({"agent_id": agent, "tools": ["serpapi"], "permissions": ["read"], "ttl_minutes": 5})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "agent_not_active");
    let (status, body) = f
        .gateway
        .admin(Method::PATCH, &path, Some(json!({"status": "active"})))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["tokens_revoked"], 0);
    // Reactivation brings no earlier token back; a new one works.
    assert_eq!(f.gateway.introspect(&token).await["reason"], "revoked");
    let (fresh, _) = f.gateway.mint(&agent).await;
    assert_eq!(f.gateway.introspect(&fresh).await["active"], true);
    // Another agent's tokens were never touched.
    assert_eq!(f.gateway.introspect(&bystander).await["active"], true);
}

async fn short_lived_token_carries_rotation_advice(backend: Backend) {
    let f = Fixture::start(backend).await;
    let (agent, _) = f.gateway.create_agent("a", "scraper").await;
    let (_, body) = f
        .gateway
        .admin(
            Method::POST,
            "/api/generate-token",
            Some(json!({"agent_id": agent, "tools": ["serpapi"], "permissions": ["read"], "ttl_minutes": 2})),
        )
        .await;
    let verdict = f
        .gateway
        .introspect(body["agent_token"].as_str().unwrap())
        .await;
    assert_eq!(verdict["rotation_recommended"], true);
}

on_both_backends!(
    issues_token_and_introspects_its_claims,
    tampered_token_is_invalid,
    token_sealed_under_another_key_is_invalid,
    token_of_an_unknown_agent_is_invalid_as_a_forged_one,
    expired_token_is_refused_and_counted,
    revoked_token_is_refused,
    suspending_an_agent_revokes_its_tokens_for_good,
    short_lived_token_carries_rotation_advice,
);
