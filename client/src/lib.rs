//! The agents' side of 4RUNR Gateway. An [`AgentClient`] holds the agent's id and private
//! key, mints its own tokens with the signed-request flow (no admin key), renews them before
//! they expire and when the gateway advises it (`X-Token-Rotation-Recommended`), sends each
//! call with a correlation id of its own, retries what is safe to retry (429 and 503 on
//! idempotent actions, honouring `Retry-After` with jitter) and turns refusals into typed
//! errors by their stable codes.
//!
//! ```no_run
//! # async fn run() -> Result<(), gateway_client::ClientError> {
//! let pem = std::fs::read_to_string("agent.pem").unwrap();
//! let client = gateway_client::AgentClient::builder("http://127.0.0.1:3000", "agent-id", &pem)
//!     .tools(["serpapi"])
//!     .build()?;
//! let answer = client.call("serpapi", "search", serde_json::json!({"q": "rust"})).await?;
//! println!("{}", answer.body["data"]);
//! # Ok(()) }
//! ```

mod error;
mod signing;

pub use error::{ClientError, ErrorKind, Refusal};

use serde_json::{json, Value};
use signing::{AgentKey, GENERATE_TOKEN_PATH};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::Mutex;

/// Longest wait before a retry, whatever `Retry-After` says.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(30);

/// Builds an [`AgentClient`].
pub struct Builder {
    base: String,
    agent_id: String,
    pem: String,
    tools: Vec<String>,
    permissions: Vec<String>,
    ttl_minutes: u32,
    retries: u32,
    timeout: Duration,
}

impl Builder {
    /// Tools the client's tokens ask for.
    pub fn tools<I: IntoIterator<Item = S>, S: Into<String>>(mut self, tools: I) -> Self {
        self.tools = tools.into_iter().map(Into::into).collect();
        self
    }

    /// Permissions the client's tokens ask for (default `read`).
    pub fn permissions<I: IntoIterator<Item = S>, S: Into<String>>(mut self, p: I) -> Self {
        self.permissions = p.into_iter().map(Into::into).collect();
        self
    }

    /// Lifetime of each token in minutes (default 15).
    pub fn ttl_minutes(mut self, minutes: u32) -> Self {
        self.ttl_minutes = minutes;
        self
    }

    /// Retries of a call refused with 429 or 503 (default 3; idempotent actions only).
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// Longest one HTTP exchange may take (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The client; fails when the key is not a PKCS#8 RSA key.
    pub fn build(self) -> Result<AgentClient, ClientError> {
        let key = AgentKey::from_pem(&self.pem).map_err(ClientError::Key)?;
        let http = reqwest::Client::builder()
            .timeout(self.timeout)
            .build()
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        Ok(AgentClient {
            base: self.base.trim_end_matches('/').to_string(),
            agent_id: self.agent_id,
            key,
            http,
            tools: self.tools,
            permissions: self.permissions,
            ttl_minutes: self.ttl_minutes,
            retries: self.retries,
            token: Mutex::new(None),
        })
    }
}

/// A token the client holds.
#[derive(Clone)]
struct Held {
    token: String,
    /// Unix seconds after which it is renewed before use.
    renew_after: i64,
}

/// One answer of the gateway to a call.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status (2xx).
    pub status: u16,
    /// The answer's body (`{success, data, metadata}`).
    pub body: Value,
    /// The call's correlation id, as in the gateway's audit log.
    pub correlation_id: String,
    /// Whether the answer came from the gateway's cache.
    pub cached: bool,
}

/// An agent's connection to a gateway.
pub struct AgentClient {
    base: String,
    agent_id: String,
    key: AgentKey,
    http: reqwest::Client,
    tools: Vec<String>,
    permissions: Vec<String>,
    ttl_minutes: u32,
    retries: u32,
    token: Mutex<Option<Held>>,
}

impl AgentClient {
    /// A builder for the agent `agent_id` with its private key `private_key_pem`, calling the
    /// gateway at `base_url`.
    pub fn builder(base_url: &str, agent_id: &str, private_key_pem: &str) -> Builder {
        Builder {
            base: base_url.to_string(),
            agent_id: agent_id.to_string(),
            pem: private_key_pem.to_string(),
            tools: Vec::new(),
            permissions: vec!["read".into()],
            ttl_minutes: 15,
            retries: 3,
            timeout: Duration::from_secs(30),
        }
    }

    /// The token calls are made with: the one held, or a new one when there is none, when it
    /// is in its last fifth of life (or its last 5 minutes), or when the gateway advised
    /// rotating it.
    pub async fn token(&self) -> Result<String, ClientError> {
        let mut held = self.token.lock().await;
        match held.as_ref() {
            Some(h) if now_secs() < h.renew_after => Ok(h.token.clone()),
            _ => {
                let fresh = self.mint().await?;
                let token = fresh.token.clone();
                *held = Some(fresh);
                Ok(token)
            }
        }
    }

    /// Mints a token with the agent's signature.
    async fn mint(&self) -> Result<Held, ClientError> {
        let body = json!({
            "agent_id": self.agent_id, "tools": self.tools,
            "permissions": self.permissions, "ttl_minutes": self.ttl_minutes,
        })
        .to_string();
        let timestamp = now_secs();
        let signature = self
            .key
            .sign(GENERATE_TOKEN_PATH, timestamp, body.as_bytes());
        let correlation_id = uuid::Uuid::new_v4().to_string();
        let response = self
            .http
            .post(format!("{}{GENERATE_TOKEN_PATH}", self.base))
            .header("content-type", "application/json")
            .header("x-agent-id", &self.agent_id)
            .header("x-agent-timestamp", timestamp.to_string())
            .header("x-agent-signature", signature)
            .header("x-correlation-id", &correlation_id)
            .body(body)
            .send()
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        let (status, _, body) = read(response).await?;
        if !(200..300).contains(&status) {
            return Err(refusal(status, body, correlation_id));
        }
        let token = body["agent_token"]
            .as_str()
            .ok_or_else(|| ClientError::Transport("the token answer has no agent_token".into()))?
            .to_string();
        let lifetime = i64::from(self.ttl_minutes) * 60;
        let renew_after = timestamp + (lifetime * 4 / 5).min((lifetime - 300).max(0));
        Ok(Held { token, renew_after })
    }

    /// Forgets the held token: the next call mints a new one.
    pub async fn forget_token(&self) {
        *self.token.lock().await = None;
    }

    /// Calls `tool`'s `action` with `params`. Refusals of the token (expired, revoked) mint a
    /// new one and try once more; 429 and 503 are retried on idempotent actions after
    /// `Retry-After` (or a backoff) with jitter.
    pub async fn call(
        &self,
        tool: &str,
        action: &str,
        params: Value,
    ) -> Result<Answer, ClientError> {
        // Only what the catalog calls idempotent is sent twice (never an e-mail).
        let idempotent = tool
            .parse::<gateway_wire::catalog::ToolName>()
            .ok()
            .and_then(|t| gateway_wire::catalog::find(t, action))
            .is_some_and(|a| a.idempotent);
        let mut renewed = false;
        let mut attempt = 0;
        loop {
            let token = self.token().await?;
            let correlation_id = uuid::Uuid::new_v4().to_string();
            let response = self
                .http
                .post(format!("{}/api/proxy-request", self.base))
                .header("x-correlation-id", &correlation_id)
                .json(&json!({"agent_token": token, "tool": tool, "action": action, "params": params}))
                .send()
                .await
                .map_err(|e| ClientError::Transport(e.to_string()))?;
            let (status, headers, body) = read(response).await?;
            if headers.get("x-token-rotation-recommended").is_some() {
                self.forget_token().await;
            }
            if (200..300).contains(&status) {
                let cached = headers
                    .get("x-cache")
                    .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"hit"));
                return Ok(Answer {
                    status,
                    body,
                    correlation_id,
                    cached,
                });
            }
            let error = refusal(status, body, correlation_id);
            match error.kind() {
                Some(ErrorKind::TokenExpired | ErrorKind::TokenRevoked) if !renewed => {
                    renewed = true;
                    self.forget_token().await;
                    continue;
                }
                Some(ErrorKind::RateLimited | ErrorKind::Unavailable)
                    if idempotent && attempt < self.retries =>
                {
                    attempt += 1;
                    tokio::time::sleep(retry_wait(&headers, attempt)).await;
                    continue;
                }
                _ => return Err(error),
            }
        }
    }
}

/// How long to wait before retry number `attempt`: `Retry-After` when the gateway said, else
/// an exponential backoff from 200 ms; plus up to a quarter of it at random, so that agents
/// refused together do not come back together.
fn retry_wait(headers: &reqwest::header::HeaderMap, attempt: u32) -> Duration {
    let said = headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64);
    let base = said
        .unwrap_or_else(|| Duration::from_millis(200) * 2u32.saturating_pow(attempt - 1))
        .min(MAX_RETRY_WAIT);
    let jitter = base.mul_f64(rand::random::<f64>() / 4.0);
    base + jitter
}

async fn read(
    response: reqwest::Response,
) -> Result<(u16, reqwest::header::HeaderMap, Value), ClientError> {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response
        .text()
        .await
        .map_err(|e| ClientError::Transport(e.to_string()))?;
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok((status, headers, body))
}

fn refusal(status: u16, body: Value, correlation_id: String) -> ClientError {
    let code = body["code"].as_str().unwrap_or("unknown").to_string();
    ClientError::Api {
        kind: ErrorKind::from_answer(status, &code),
        status,
        message: body["error"].as_str().unwrap_or_default().to_string(),
        code,
        body: Box::new(body),
        correlation_id,
    }
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_follows_retry_after_with_at_most_a_quarter_more() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("retry-after", "2".parse().unwrap());
        for _ in 0..100 {
            let wait = retry_wait(&headers, 1);
            assert!(wait >= Duration::from_secs(2) && wait <= Duration::from_millis(2500));
        }
        headers.insert("retry-after", "86400".parse().unwrap());
        assert!(retry_wait(&headers, 1) <= MAX_RETRY_WAIT.mul_f64(1.25));
        let none = reqwest::header::HeaderMap::new();
        assert!(retry_wait(&none, 3) >= Duration::from_millis(800));
    }

    #[test]
    fn refusals_are_typed_by_their_codes() {
        let kind = |r: Refusal| ErrorKind::from_answer(r.status(), r.code());
        assert_eq!(kind(Refusal::TokenRevoked), ErrorKind::TokenRevoked);
        assert_eq!(kind(Refusal::PolicyDenied), ErrorKind::PolicyDenied);
        assert_eq!(kind(Refusal::RateLimited), ErrorKind::RateLimited);
        assert_eq!(kind(Refusal::BreakerOpen), ErrorKind::Unavailable);
        assert_eq!(kind(Refusal::MintAgentNotActive), ErrorKind::AgentNotActive);
        assert_eq!(
            ErrorKind::from_answer(418, "teapot"),
            ErrorKind::Other("teapot".into())
        );
        // Every refusal the gateway can answer has a kind other than "unknown code"
        // unless its status is one no kind groups.
        for r in Refusal::ALL {
            if matches!(r.status(), 400 | 429 | 503) {
                assert!(!matches!(kind(*r), ErrorKind::Other(_)), "{r:?}");
            }
        }
    }
}
