//! What live tools call through: one pooled HTTP client for the configured APIs, one
//! guarded client for `http_fetch`, the upstream base URLs and the credentials; and how
//! upstream answers and failures become tool results.

use super::credentials::{Credentials, Secret};
use super::ssrf::GuardedResolver;
use super::ToolError;
use crate::catalog::ToolName;
use crate::config::ProxySettings;
use reqwest::header::HeaderMap;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// Largest answer accepted from a configured API.
const MAX_API_ANSWER: u64 = 8 << 20;

/// Base URLs of the configured APIs, without a trailing slash.
#[derive(Debug, Clone)]
pub struct Bases {
    /// Search API.
    pub serpapi: String,
    /// LLM API.
    pub openai: String,
    /// E-mail API.
    pub gmail: String,
}

/// Clients, addresses and credentials of live tools.
pub struct Upstream {
    /// Client for the configured APIs.
    pub client: reqwest::Client,
    /// Client for `http_fetch`: guarded resolver, no redirects of its own, no proxy.
    pub fetch_client: reqwest::Client,
    /// Where the configured APIs live.
    pub bases: Bases,
    /// Active credentials.
    pub credentials: Arc<Credentials>,
    /// `http_fetch` may reach private addresses (tests).
    pub allow_private: bool,
    /// Cap of an `http_fetch` body.
    pub max_bytes: u64,
}

impl Upstream {
    /// Builds the clients.
    pub fn new(settings: &ProxySettings, credentials: Arc<Credentials>) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(60))
            .pool_idle_timeout(Duration::from_secs(90))
            .user_agent("4Runr-Gateway/1.0")
            .build()?;
        let fetch_client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .user_agent("4Runr-Gateway/1.0")
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver {
                allow_private: settings.http_fetch_allow_private,
            }))
            // Redirects are followed by hand, each hop checked: `super::redirects`.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let trim = |s: &str| s.trim_end_matches('/').to_string();
        Ok(Self {
            client,
            fetch_client,
            bases: Bases {
                serpapi: trim(&settings.serpapi_base_url),
                openai: trim(&settings.openai_base_url),
                gmail: trim(&settings.gmail_base_url),
            },
            credentials,
            allow_private: settings.http_fetch_allow_private,
            max_bytes: u64::from(settings.http_fetch_max_bytes),
        })
    }

    /// The active credential of `tool`.
    pub fn credential(&self, tool: ToolName) -> Result<Secret, ToolError> {
        self.credentials
            .active(tool)
            .ok_or(ToolError::NotConfigured)
    }

    /// Sends a request to a configured API and reads its JSON answer.
    pub async fn send_json(&self, request: reqwest::RequestBuilder) -> Result<Value, ToolError> {
        let response = request.send().await.map_err(client_error)?;
        let status = response.status();
        if !status.is_success() {
            return Err(ToolError::Status {
                status: status.as_u16(),
                retry_after: retry_after(response.headers()),
            });
        }
        let body = Self::read_capped(response, MAX_API_ANSWER).await?;
        serde_json::from_slice(&body)
            .map_err(|_| ToolError::BadAnswer("the upstream answer is not JSON".into()))
    }

    /// Reads a body, refusing one over `cap` bytes.
    pub async fn read_capped(
        mut response: reqwest::Response,
        cap: u64,
    ) -> Result<Vec<u8>, ToolError> {
        if response.content_length().is_some_and(|n| n > cap) {
            return Err(ToolError::TooLarge(cap));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(client_error)? {
            if body.len() as u64 + chunk.len() as u64 > cap {
                return Err(ToolError::TooLarge(cap));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

/// Maps a client failure to a tool error.
pub fn client_error(e: reqwest::Error) -> ToolError {
    if e.is_timeout() {
        ToolError::Timeout
    } else if e.is_connect() || e.is_request() {
        ToolError::Connect(without_url(&e))
    } else {
        ToolError::BadAnswer(without_url(&e))
    }
}

/// The error's text without its URL (which may carry a credential in its query).
fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(url.as_str(), "<url>");
    }
    if text.len() > 300 {
        let mut cut = 300;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}

/// `Retry-After` in seconds, when present and numeric.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}
