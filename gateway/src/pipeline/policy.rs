//! Step 5: the policy plugins bound to the call judge it (allow, allow with response
//! filters, deny, or fail closed), and each refusal leaves a policy log row.

use super::input::ProxyInput;
use super::trail::Trail;
use crate::crypto::token::Claims;
use crate::error::{ApiError, Refusal};
use crate::plugins::call_data::CallData;
use crate::plugins::plugin_config::PluginConfig;
use crate::plugins::registry::{PluginSet, PolicyOutcome};
use crate::plugins::FailureKind;
use crate::state::AppState;
use crate::store::policies::PolicyLogRow;
use std::sync::Arc;

/// Judges the call; answers the response filters the policies asked for.
pub(super) async fn judge(
    state: &AppState,
    set: &PluginSet,
    call: Option<&Arc<CallData>>,
    config: Option<&PluginConfig>,
    subject: &AuditSubject<'_>,
    trail: &mut Trail,
) -> Result<Vec<usize>, ApiError> {
    let outcome = match call {
        Some(call) => state.plugins.evaluate(set, call, config).await,
        None => PolicyOutcome::Allow {
            filters: Vec::new(),
        },
    };
    // An allow is folded into the request's own audit row (`policy_decision`), which says
    // everything its row would: no policy row for it (the listing of decisions reads it
    // from there).
    if !matches!(outcome, PolicyOutcome::Allow { .. }) {
        audit_policy(state, subject, &outcome).await;
    }
    match outcome {
        PolicyOutcome::Allow { filters } => {
            trail.policy_decision = Some("allow");
            Ok(filters)
        }
        PolicyOutcome::Deny { code, reason, .. } => {
            trail.policy_decision = Some("deny");
            Err(ApiError::new(Refusal::PolicyDenied, "Policy denied")
                .with_field("reason", reason)
                .with_field("rule", code))
        }
        PolicyOutcome::Failed { kind, .. } => {
            trail.policy_decision = Some("error");
            Err(policy_failure(kind))
        }
    }
}

/// The call as plugins read it.
pub(super) fn plugin_call(
    correlation_id: &str,
    agent_id: &str,
    claims: &Claims,
    input: &ProxyInput,
    now_ms: u64,
) -> CallData {
    CallData {
        correlation_id: correlation_id.to_string(),
        agent_id: agent_id.to_string(),
        agent_name: claims.name.clone(),
        agent_role: claims.role.clone(),
        tool: input.spec.tool.as_str().to_string(),
        action: input.spec.action.to_string(),
        params: input.params.clone(),
        intent: input.intent.clone(),
        token_tools: claims
            .tools
            .iter()
            .map(|t| t.as_str().to_string())
            .collect(),
        token_permissions: claims.permissions.iter().map(|p| p.to_string()).collect(),
        now_ms,
        seed: rand::random(),
        ..CallData::default()
    }
}

/// What a policy log row says about the call it judged.
pub(crate) struct AuditSubject<'a> {
    /// Correlation id of the request.
    pub correlation_id: &'a str,
    /// The calling agent.
    pub agent_id: &'a str,
    /// Tool.
    pub tool: &'a str,
    /// Action.
    pub action: &'a str,
    /// When the call was judged, unix ms.
    pub now_ms: u64,
}

/// A policy plugin failed (fail closed): 403 without detail.
pub(super) fn policy_error() -> ApiError {
    ApiError::new(Refusal::PolicyError, "Policy denied")
}

/// The answer to a fail-closed policy that did not decide: 503 `plugin_busy` when it was
/// not called for overload (every call slot of its binding stayed taken), else
/// [`policy_error`].
pub(super) fn policy_failure(kind: FailureKind) -> ApiError {
    match kind {
        FailureKind::Busy => {
            ApiError::new(Refusal::PluginBusy, "The policy is busy; try again shortly")
                .with_field("retry_after", 1)
                .with_header("retry-after", 1)
        }
        _ => policy_error(),
    }
}

pub(crate) async fn audit_policy(
    state: &AppState,
    subject: &AuditSubject<'_>,
    outcome: &PolicyOutcome,
) {
    let (decision, reason, binding) = match outcome {
        PolicyOutcome::Allow { .. } => ("allow", None, None),
        PolicyOutcome::Deny {
            binding, reason, ..
        } => (
            "deny",
            Some(super::record::without_nul(reason)),
            Some(binding.clone()),
        ),
        PolicyOutcome::Failed { binding, kind } => (
            "error",
            Some(format!("plugin failure: {}", kind.as_str())),
            Some(binding.clone()),
        ),
    };
    state
        .proxy
        .audit
        .policy(PolicyLogRow {
            // Time-ordered ids: rows append to the primary key's index instead of landing at
            // random places in it.
            id: uuid::Uuid::now_v7().to_string(),
            policy_id: binding,
            agent_id: subject.agent_id.to_string(),
            tool: subject.tool.to_string(),
            action: subject.action.to_string(),
            decision: decision.into(),
            reason,
            request_data: serde_json::to_string(&CorrelationRef {
                correlation_id: subject.correlation_id,
            })
            .ok(),
            response_data: None,
            created_at: subject.now_ms as i64,
        })
        .await;
}

/// `request_data` of a policy log row.
#[derive(serde::Serialize)]
struct CorrelationRef<'a> {
    correlation_id: &'a str,
}
