//! The tools agents call through the gateway: one file per tool behind one [`Tool`] trait,
//! each answering with the original gateway's mock payloads or calling its real upstream.

pub mod credentials;
pub mod gmail_send;
pub mod http_fetch;
pub mod openai;
mod params;
pub mod redirects;
pub mod serpapi;
pub mod ssrf;
mod upstream;

use crate::catalog::{ActionSpec, ToolName};
use crate::config::{ProxySettings, UpstreamMode};
use credentials::Credentials;
use serde_json::Value;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

pub use upstream::Upstream;

/// Why a tool call did not produce an answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ToolError {
    /// Live mode and no active credential for the tool.
    #[error("tool not configured")]
    NotConfigured,
    /// `http_fetch` refused the destination (scheme, or a private address).
    #[error("destination refused: {0}")]
    DestinationRefused(String),
    /// The upstream did not answer in time.
    #[error("upstream timed out")]
    Timeout,
    /// The upstream could not be reached.
    #[error("upstream unreachable: {0}")]
    Connect(String),
    /// The upstream answered with an error status.
    #[error("upstream answered {status}")]
    Status {
        /// Upstream HTTP status.
        status: u16,
        /// `Retry-After` of a 429 or 503, when given.
        retry_after: Option<Duration>,
    },
    /// The upstream's answer was not what the tool expects.
    #[error("bad upstream answer: {0}")]
    BadAnswer(String),
    /// The answer was larger than the call allows (the caller's `maxSize`, or the gateway's
    /// cap for an address the caller chose): a matter of the call, not of upstream health.
    #[error("upstream answer larger than {0} bytes")]
    TooLarge(u64),
    /// The call's policy refused a redirect hop.
    #[error("redirect to {url} denied by policy: {reason}")]
    RedirectDenied {
        /// Where the redirect led.
        url: String,
        /// The policy's deny code.
        code: String,
        /// The policy's reason.
        reason: String,
    },
    /// The call's policy failed while judging a redirect hop (it fails closed).
    #[error("policy failed on a redirect")]
    RedirectPolicyFailed,
}

/// Why a failed attempt may be retried (the `reason` label of `gateway_retries_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryReason {
    /// Timed out.
    Timeout,
    /// Could not connect.
    Network,
    /// 502, 503 or 504.
    ServerError,
    /// 429.
    RateLimited,
}

impl RetryReason {
    /// Every reason.
    pub const ALL: [RetryReason; 4] = [
        RetryReason::Timeout,
        RetryReason::Network,
        RetryReason::ServerError,
        RetryReason::RateLimited,
    ];

    /// Metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            RetryReason::Timeout => "timeout",
            RetryReason::Network => "network",
            RetryReason::ServerError => "5xx",
            RetryReason::RateLimited => "rate_limit",
        }
    }
}

impl ToolError {
    /// Why this error may be retried, or `None` when retrying cannot help.
    pub fn retry_reason(&self) -> Option<RetryReason> {
        match self {
            ToolError::Timeout => Some(RetryReason::Timeout),
            ToolError::Connect(_) => Some(RetryReason::Network),
            ToolError::Status { status: 429, .. } => Some(RetryReason::RateLimited),
            ToolError::Status {
                status: 502..=504, ..
            } => Some(RetryReason::ServerError),
            _ => None,
        }
    }

    /// True when the fault lies with the upstream (what a circuit breaker counts), false
    /// when the request itself was at fault.
    pub fn is_upstream_fault(&self) -> bool {
        match self {
            ToolError::Timeout | ToolError::Connect(_) | ToolError::BadAnswer(_) => true,
            ToolError::Status { status, .. } => *status >= 500 || *status == 429,
            ToolError::NotConfigured
            | ToolError::DestinationRefused(_)
            | ToolError::TooLarge(_)
            | ToolError::RedirectDenied { .. }
            | ToolError::RedirectPolicyFailed => false,
        }
    }
}

/// Asks whether a call may follow a redirect to a URL (for `http_fetch`: the call's policy,
/// asked again for each hop). `Err` refuses the hop.
pub trait RedirectCheck: Sync {
    /// Whether the call may go on to `url`.
    fn check<'a>(
        &'a self,
        url: &'a url::Url,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<(), ToolError>> + Send + 'a>>;
}

/// Lets every redirect through (no policy runs for the call).
pub struct AnyRedirect;

impl RedirectCheck for AnyRedirect {
    fn check<'a>(
        &'a self,
        _url: &'a url::Url,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<(), ToolError>> + Send + 'a>> {
        Box::pin(std::future::ready(Ok(())))
    }
}

/// One tool: validates an action's parameters, answers in mock mode, calls its upstream in
/// live mode.
pub trait Tool: Send + Sync {
    /// Parameters of one call, validated.
    type Params: Send + Sync;

    /// Checks `params` for `action` (an action of this tool) against its catalog entry;
    /// lists every problem.
    fn validate(&self, action: &ActionSpec, params: &Value) -> Result<Self::Params, Vec<String>>;

    /// The original gateway's deterministic mock payload.
    fn mock(&self, action: &str, params: &Self::Params) -> Value;

    /// Calls the real upstream.
    fn live(
        &self,
        action: &str,
        params: &Self::Params,
        upstream: &Upstream,
        redirects: &dyn RedirectCheck,
    ) -> impl Future<Output = Result<Value, ToolError>> + Send;
}

/// A validated call, ready to run (possibly several times, when retried).
#[derive(Debug)]
pub enum PreparedCall {
    /// Search.
    Serpapi(serpapi::Params),
    /// Web fetch.
    HttpFetch(http_fetch::Params),
    /// LLM.
    Openai(openai::Params),
    /// E-mail.
    GmailSend(gmail_send::Params),
}

/// The four tools, in mock or live mode.
pub struct Tools {
    mode: UpstreamMode,
    mock_latency: Duration,
    upstream: Upstream,
    serpapi: serpapi::Serpapi,
    http_fetch: http_fetch::HttpFetch,
    openai: openai::Openai,
    gmail_send: gmail_send::GmailSend,
}

impl Tools {
    /// The tools as configured.
    pub fn new(settings: &ProxySettings, credentials: Arc<Credentials>) -> anyhow::Result<Self> {
        Ok(Self {
            mode: settings.upstream_mode,
            mock_latency: Duration::from_millis(u64::from(settings.mock_latency_ms)),
            upstream: Upstream::new(settings, credentials)?,
            serpapi: serpapi::Serpapi,
            http_fetch: http_fetch::HttpFetch,
            openai: openai::Openai,
            gmail_send: gmail_send::GmailSend,
        })
    }

    /// Mock or live.
    pub fn mode(&self) -> UpstreamMode {
        self.mode
    }

    /// True when the tool can be called (always in mock mode; with an active credential in
    /// live mode, except `http_fetch`, which needs none).
    pub fn is_configured(&self, tool: ToolName) -> bool {
        self.mode == UpstreamMode::Mock
            || tool == ToolName::HttpFetch
            || self.upstream.credentials.has(tool)
    }

    /// Validates the parameters of a call of `action`.
    pub fn prepare(
        &self,
        action: &ActionSpec,
        params: &Value,
    ) -> Result<PreparedCall, Vec<String>> {
        Ok(match action.tool {
            ToolName::Serpapi => PreparedCall::Serpapi(self.serpapi.validate(action, params)?),
            ToolName::HttpFetch => {
                PreparedCall::HttpFetch(self.http_fetch.validate(action, params)?)
            }
            ToolName::Openai => PreparedCall::Openai(self.openai.validate(action, params)?),
            ToolName::GmailSend => {
                PreparedCall::GmailSend(self.gmail_send.validate(action, params)?)
            }
        })
    }

    /// Runs one attempt of a prepared call; a redirect is followed only when `redirects`
    /// lets it.
    pub async fn call(
        &self,
        action: &str,
        call: &PreparedCall,
        redirects: &dyn RedirectCheck,
    ) -> Result<Value, ToolError> {
        match self.mode {
            UpstreamMode::Mock => {
                if !self.mock_latency.is_zero() {
                    tokio::time::sleep(self.mock_latency).await;
                }
                Ok(match call {
                    PreparedCall::Serpapi(p) => self.serpapi.mock(action, p),
                    PreparedCall::HttpFetch(p) => self.http_fetch.mock(action, p),
                    PreparedCall::Openai(p) => self.openai.mock(action, p),
                    PreparedCall::GmailSend(p) => self.gmail_send.mock(action, p),
                })
            }
            UpstreamMode::Live => match call {
                PreparedCall::Serpapi(p) => {
                    self.serpapi
                        .live(action, p, &self.upstream, redirects)
                        .await
                }
                PreparedCall::HttpFetch(p) => {
                    self.http_fetch
                        .live(action, p, &self.upstream, redirects)
                        .await
                }
                PreparedCall::Openai(p) => {
                    self.openai.live(action, p, &self.upstream, redirects).await
                }
                PreparedCall::GmailSend(p) => {
                    self.gmail_send
                        .live(action, p, &self.upstream, redirects)
                        .await
                }
            },
        }
    }
}
