//! Step 9: the response filters the policies asked for rewrite the tool's answer; a
//! filter that fails withholds it.

use super::policy::{audit_policy, policy_error, policy_failure, AuditSubject};
use super::trail::Trail;
use crate::error::ApiError;
use crate::plugins::call_data::CallData;
use crate::plugins::plugin_config::PluginConfig;
use crate::plugins::registry::{PluginSet, PolicyOutcome};
use crate::plugins::FailureKind;
use crate::state::AppState;
use serde_json::Value;
use std::sync::Arc;

/// Step 9's inputs: the filters the policies asked for, and what they read.
pub(super) struct FilterStep<'a> {
    pub state: &'a AppState,
    pub set: &'a PluginSet,
    pub filters: &'a [usize],
    pub call: &'a Arc<CallData>,
    pub config: Option<&'a PluginConfig>,
    pub subject: &'a AuditSubject<'a>,
}

/// Step 9. A filter that fails closed (or answers text that is not JSON) withholds the answer
/// as a policy failure in every record: the audit row's decision becomes `error`, a policy
/// log row names the binding, and the denial is counted, as for a failed evaluation.
pub(super) async fn filter_response(
    step: FilterStep<'_>,
    data: Arc<Value>,
    trail: &mut Trail,
) -> Result<Arc<Value>, ApiError> {
    let state = step.state;
    let filtered = state
        .plugins
        .filter_response(step.set, step.filters, step.call, step.config, &data)
        .await;
    let parsed = match filtered {
        // Nothing was filtered: keep the parsed answer rather than parse it again.
        Ok(None) => return Ok(data),
        Ok(Some(text)) => serde_json::from_str(&text).map_err(|_| PolicyOutcome::Failed {
            binding: "response filter".into(),
            kind: FailureKind::Invalid,
        }),
        Err(outcome) => Err(outcome),
    };
    match parsed {
        Ok(value) => Ok(Arc::new(value)),
        Err(outcome) => {
            trail.policy_decision = Some("error");
            audit_policy(state, step.subject, &outcome).await;
            state
                .metrics
                .policy_denials
                .with_label_values(&[step.subject.tool, step.subject.action, "policy_error"])
                .inc();
            Err(match outcome {
                PolicyOutcome::Failed { kind, .. } => policy_failure(kind),
                _ => policy_error(),
            })
        }
    }
}
