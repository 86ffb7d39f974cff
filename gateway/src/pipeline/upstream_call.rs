//! Step 8 of the pipeline: breaker → bulkhead → retry → (chaos fault or) tool, all inside
//! the request's deadline. The breaker sees one outcome per request, after the retries.

use crate::catalog::ActionSpec;
use crate::error::ApiError;
use crate::error::Refusal as WireRefusal;
use crate::plugins::bindings::Fault;
use crate::plugins::call_data::CallData;
use crate::plugins::plugin_config::PluginConfig;
use crate::plugins::registry::{fault_label, PluginRegistry, PluginSet};
use crate::resilience::breaker::{Outcome, State};
use crate::resilience::bulkhead::Refusal;
use crate::resilience::destination_breakers::destination;
use crate::state::AppState;
use crate::tools::{PreparedCall, RedirectCheck, ToolError};
use serde_json::{json, Value};
use std::sync::Arc;
use tokio::time::Instant;

/// The chaos plugin's inputs, when chaos rules are active.
pub struct Chaos<'a> {
    /// The live plugin set.
    pub set: &'a PluginSet,
    /// The plugin registry.
    pub plugins: &'a PluginRegistry,
    /// The call (its seed is varied per attempt).
    pub call: &'a Arc<CallData>,
    /// The rules, as the plugin's configuration.
    pub rules: PluginConfig,
}

/// One upstream call to make: what, with which chaos, until when.
pub struct UpstreamCall<'a> {
    /// Shared state.
    pub state: &'a AppState,
    /// The calling agent.
    pub agent: uuid::Uuid,
    /// The action.
    pub spec: &'static ActionSpec,
    /// Its validated parameters.
    pub prepared: &'a PreparedCall,
    /// The chaos plugin's inputs, when rules are active.
    pub chaos: Option<Chaos<'a>>,
    /// Judges the redirects of a fetch.
    pub redirects: &'a dyn RedirectCheck,
    /// The request's deadline.
    pub deadline: Instant,
}

/// Calls the tool through the breaker, bulkhead and retries. `fault_seen` receives the
/// label of the first chaos fault injected.
pub async fn call(
    call: UpstreamCall<'_>,
    fault_seen: &mut Option<&'static str>,
) -> Result<Value, ApiError> {
    let (state, spec, deadline) = (call.state, call.spec, call.deadline);
    let proxy = &state.proxy;
    let tool = spec.tool.as_str();
    // A fetch's health is its destination's: the caller chose it.
    let destination_breaker = match call.prepared {
        PreparedCall::HttpFetch(p) => Some(proxy.destination_breakers.of(&p.url)),
        _ => None,
    };
    let breaker = destination_breaker
        .as_deref()
        .unwrap_or_else(|| proxy.breakers.get(spec.tool));
    let permit = match breaker.enter() {
        Ok(permit) => permit,
        Err(rejected) => {
            state
                .metrics
                .proxy
                .breaker_fastfail
                .with_label_values(&[tool])
                .inc();
            let failing = match call.prepared {
                PreparedCall::HttpFetch(p) => destination(&p.url),
                _ => tool.to_string(),
            };
            return Err(ApiError::new(
                WireRefusal::BreakerOpen,
                format!("{failing} is failing; calls are paused while it recovers"),
            )
            .with_field("retry_after", rejected.retry_after.as_secs().max(1))
            .with_header("retry-after", rejected.retry_after.as_secs().max(1)));
        }
    };
    let prepared = call.prepared;
    let attempts = attempts(call, fault_seen);
    let result = match tokio::time::timeout_at(deadline, attempts).await {
        Ok(result) => result,
        Err(_) => Err(Attempted::DeadlineExceeded),
    };
    let outcome = match &result {
        Ok(_) => Outcome::Success,
        Err(Attempted::Tool(e)) if e.is_upstream_fault() => Outcome::Failure,
        Err(Attempted::DeadlineExceeded) => Outcome::Failure,
        Err(_) => Outcome::Ignored,
    };
    let after = permit.record(outcome);
    if destination_breaker.is_none() {
        state
            .metrics
            .proxy
            .breaker_state
            .with_label_values(&[tool])
            .set(after.gauge());
    }
    if after == State::Open && outcome == Outcome::Failure {
        match prepared {
            PreparedCall::HttpFetch(p) => {
                tracing::warn!(tool, destination = %destination(&p.url), "circuit breaker of a destination open");
            }
            _ => tracing::warn!(tool, "circuit breaker open"),
        }
    }
    result.map_err(|e| e.into_failure(tool))
}

/// Why the attempts ended without an answer.
enum Attempted {
    Tool(ToolError),
    Bulkhead(Refusal),
    /// The agent's share of the tool's calls in flight is in use.
    AgentShare,
    DeadlineExceeded,
}

impl Attempted {
    fn into_failure(self, tool: &str) -> ApiError {
        match self {
            Attempted::DeadlineExceeded => ApiError::new(
                WireRefusal::DeadlineExceeded,
                "The request did not complete within its deadline",
            ),
            Attempted::Bulkhead(refusal) => ApiError::new(
                WireRefusal::BulkheadFull,
                format!("Too many calls to {tool} in flight; try again shortly"),
            )
            .with_details(json!({ "reason": match refusal {
                    Refusal::QueueFull => "queue full",
                    Refusal::QueueTimeout => "queue wait timed out",
                } }))
            .with_header("retry-after", 1),
            Attempted::AgentShare => ApiError::new(
                WireRefusal::AgentCallsInFlight,
                format!("This agent has as many calls to {tool} in flight as it may; try again when one ends"),
            )
            .with_field("retry_after", 1)
            .with_header("retry-after", 1),
            Attempted::Tool(e) => tool_failure(tool, e),
        }
    }
}

fn tool_failure(tool: &str, e: ToolError) -> ApiError {
    match e {
        ToolError::NotConfigured => ApiError::new(
            WireRefusal::ToolNotConfigured,
            format!("{tool} not configured - no active credential found"),
        ),
        ToolError::DestinationRefused(why) => ApiError::new(
            WireRefusal::DestinationNotAllowed,
            "Destination not allowed",
        )
        .with_details(json!([why])),
        ToolError::Timeout => ApiError::new(
            WireRefusal::UpstreamTimeout,
            "External API request timed out",
        ),
        ToolError::Status { status, .. } => {
            ApiError::new(WireRefusal::UpstreamFailed, "External API request failed")
                .with_details(json!({ "upstream_status": status }))
        }
        ToolError::Connect(_) => ApiError::new(
            WireRefusal::UpstreamUnreachable,
            "External API request failed",
        )
        .with_details(json!({ "reason": "upstream unreachable" })),
        ToolError::RedirectDenied { url, code, reason } => {
            ApiError::new(WireRefusal::PolicyDenied, "Policy denied")
                .with_field("reason", format!("redirect to {url}: {reason}"))
                .with_field("rule", code)
        }
        ToolError::RedirectPolicyFailed => ApiError::new(WireRefusal::PolicyError, "Policy denied"),
        ToolError::TooLarge(cap) => ApiError::new(
            WireRefusal::UpstreamAnswerTooLarge,
            "External API answer is larger than allowed",
        )
        .with_details(json!({ "max_bytes": cap })),
        ToolError::BadAnswer(why) => ApiError::new(
            WireRefusal::UpstreamBadAnswer,
            "External API request failed",
        )
        .with_details(json!({ "reason": why })),
    }
}

async fn attempts(
    call: UpstreamCall<'_>,
    fault_seen: &mut Option<&'static str>,
) -> Result<Value, Attempted> {
    let UpstreamCall {
        state,
        agent,
        spec,
        prepared,
        chaos,
        redirects,
        deadline,
    } = call;
    let proxy = &state.proxy;
    let _share = proxy
        .agent_shares
        .enter(agent, spec.tool)
        .ok_or(Attempted::AgentShare)?;
    let _slot = proxy
        .bulkheads
        .get(spec.tool)
        .enter()
        .await
        .map_err(|refusal| {
            state
                .metrics
                .proxy
                .bulkhead_rejections
                .with_label_values(&[spec.tool.as_str()])
                .inc();
            Attempted::Bulkhead(refusal)
        })?;
    let mut attempt = 0u32;
    loop {
        let fault = match &chaos {
            Some(c) => inject(c, attempt).await,
            None => None,
        };
        if let Some(f) = &fault {
            fault_seen.get_or_insert(fault_label(f));
        }
        let result = match fault_result(fault, deadline).await {
            Some(injected) => Err(injected),
            None => proxy.tools.call(spec.action, prepared, redirects).await,
        };
        let error = match result {
            Ok(value) => return Ok(value),
            Err(e) => e,
        };
        let Some((delay, reason)) = proxy.retry.next(spec.idempotent, attempt, &error, deadline)
        else {
            return Err(Attempted::Tool(error));
        };
        state
            .metrics
            .proxy
            .retries
            .with_label_values(&[spec.tool.as_str(), spec.action, reason.as_str()])
            .inc();
        tokio::time::sleep(delay).await;
        attempt += 1;
    }
}

/// The chaos plugin's fault for attempt number `attempt` (each attempt draws afresh, from
/// the request's seed plus the attempt number, so a run is reproducible).
async fn inject(chaos: &Chaos<'_>, attempt: u32) -> Option<Fault> {
    chaos
        .plugins
        .inject(chaos.set, chaos.call, &chaos.rules, attempt)
        .await
}

/// Carries out a fault: waits as it says, then returns the error it injects, if any.
async fn fault_result(fault: Option<Fault>, deadline: Instant) -> Option<ToolError> {
    let ms = |ms: u32| std::time::Duration::from_millis(u64::from(ms));
    match fault? {
        Fault::None => None,
        Fault::Delay(d) => {
            tokio::time::sleep(ms(d)).await;
            None
        }
        Fault::Error(e) => Some(ToolError::Status {
            status: e.status,
            retry_after: None,
        }),
        Fault::Timeout => {
            tokio::time::sleep_until(deadline).await;
            Some(ToolError::Timeout)
        }
        Fault::DelayThenError(e) => {
            tokio::time::sleep(ms(e.ms)).await;
            Some(ToolError::Status {
                status: e.status,
                retry_after: None,
            })
        }
    }
}
