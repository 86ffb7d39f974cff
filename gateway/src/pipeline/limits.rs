//! Step 4: the agent's rate limits (per agent, per agent and tool), with the
//! `X-RateLimit-*` headers every answer carries once they were checked.

use super::trail::Trail;
use crate::catalog::ToolName;
use crate::crypto::token::Claims;
use crate::error::{ApiError, Refusal};
use crate::resilience::rate_limit::{Limit, Scope};
use crate::state::AppState;
use axum::http::{HeaderName, HeaderValue};

const X_RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
const X_RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
const X_RATELIMIT_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

/// Counts the call against the agent's limits; refuses it past one.
pub(super) async fn rate_limit(
    state: &AppState,
    claims: &Claims,
    tool: ToolName,
    now_ms: i64,
    trail: &mut Trail,
) -> Result<(), ApiError> {
    let settings = &state.proxy.settings;
    let mut limits = Vec::with_capacity(2);
    if settings.rate_limit_per_agent > 0 {
        limits.push(Limit {
            scope: Scope::Agent,
            key: claims.sub.to_string(),
            per_minute: settings.rate_limit_per_agent,
        });
    }
    if settings.rate_limit_per_agent_tool > 0 {
        limits.push(Limit {
            scope: Scope::AgentTool,
            key: format!("{}:{tool}", claims.sub),
            per_minute: settings.rate_limit_per_agent_tool,
        });
    }
    if limits.is_empty() {
        return Ok(());
    }
    let verdict = state.proxy.limiter.check(&limits, now_ms).await;
    let reset_secs = verdict.reset.as_millis().div_ceil(1000);
    trail
        .headers
        .push((X_RATELIMIT_LIMIT, HeaderValue::from(verdict.limit)));
    trail
        .headers
        .push((X_RATELIMIT_REMAINING, HeaderValue::from(verdict.remaining)));
    trail.headers.push((
        X_RATELIMIT_RESET,
        HeaderValue::from(u64::try_from(reset_secs).unwrap_or(u64::MAX)),
    ));
    if verdict.allowed {
        return Ok(());
    }
    state
        .metrics
        .proxy
        .rate_limited
        .with_label_values(&[verdict.scope.as_str()])
        .inc();
    let retry_after = verdict.retry_after.as_millis().div_ceil(1000).max(1) as u64;
    Err(ApiError::new(Refusal::RateLimited, "Rate limit exceeded")
        .with_field("retry_after", retry_after)
        .with_field("scope", verdict.scope.as_str())
        .with_header("retry-after", retry_after))
}
