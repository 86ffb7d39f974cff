//! A small HTTP client for one gateway (in process or a separate process): admin calls,
//! agents, tokens, metrics.

use super::{read, ADMIN_KEY};
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// A role no default policy names: see [`ApiClient::allow_any_hour_role`].
pub const ANY_HOUR_ROLE: &str = "collector";

/// Talks to the gateway at `base`.
#[derive(Clone)]
pub struct ApiClient {
    pub base: String,
    pub client: reqwest::Client,
}

impl ApiClient {
    /// A client of the gateway at `base` (`http://host:port`).
    pub fn new(base: String) -> Self {
        Self {
            base,
            client: reqwest::Client::new(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Sends a request with the admin key and an optional JSON body.
    pub async fn admin(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .client
            .request(method, self.url(path))
            .bearer_auth(ADMIN_KEY);
        if let Some(body) = body {
            req = req.json(&body);
        }
        read(req.send().await.expect("request sent")).await
    }

    /// Gives [`ANY_HOUR_ROLE`] a stored policy allowing `serpapi.search` with no time window
    /// or schedule, for tests through the default policy plugin that are not about the time
    /// of day (each default role's policy refuses calls at some hours).
    pub async fn allow_any_hour_role(&self) {
        let (status, body) = self
            .admin(
                Method::POST,
                "/api/policies",
                Some(serde_json::json!({
                    "name": "any hour", "role": ANY_HOUR_ROLE,
                    "spec": {"scopes": ["serpapi:search"]}
                })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    /// Creates an agent with a generated key; returns (agent_id, private key PEM).
    pub async fn create_agent(&self, name: &str, role: &str) -> (String, String) {
        let (status, body) = self
            .admin(
                Method::POST,
                "/api/create-agent",
                Some(serde_json::json!({"name": name, "created_by": "tests", "role": role})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        (
            body["agent_id"].as_str().unwrap().to_string(),
            body["private_key"].as_str().unwrap().to_string(),
        )
    }

    /// Mints a token for `agent_id` with the admin key; returns (token, token_id).
    pub async fn mint(&self, agent_id: &str) -> (String, String) {
        let (status, body) = self
            .admin(
                Method::POST,
                "/api/generate-token",
                Some(serde_json::json!({
                    "agent_id": agent_id, "tools": ["serpapi"], "permissions": ["read"], "ttl_minutes": 30
                })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        (
            body["agent_token"].as_str().unwrap().to_string(),
            body["token_id"].as_str().unwrap().to_string(),
        )
    }

    /// Mints a 30-minute token for `agent_id` granting `tools` and `permissions`, with the
    /// admin key; returns the token.
    pub async fn mint_scoped(
        &self,
        agent_id: &str,
        tools: &[&str],
        permissions: &[&str],
    ) -> String {
        let (status, body) = self
            .admin(
                Method::POST,
                "/api/generate-token",
                Some(serde_json::json!({
                    "agent_id": agent_id, "tools": tools, "permissions": permissions, "ttl_minutes": 30
                })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["agent_token"].as_str().unwrap().to_string()
    }

    /// The Prometheus text of `/metrics`.
    pub async fn metrics(&self) -> String {
        self.metrics_via(&self.client).await
    }

    /// The Prometheus text of `/metrics`, asked by `client` (one of another address, say).
    pub async fn metrics_via(&self, client: &reqwest::Client) -> String {
        client
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("metrics answered")
            .text()
            .await
            .expect("metrics text")
    }

    /// Introspects a token with the admin key.
    pub async fn introspect(&self, token: &str) -> Value {
        let (status, body) = self
            .admin(
                Method::POST,
                "/api/admin/tokens/introspect",
                Some(serde_json::json!({ "agent_token": token })),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }
}
