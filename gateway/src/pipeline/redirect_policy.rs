//! The policy of a fetch, asked again at every redirect hop: the call's request record with
//! the hop's URL in its parameters, judged and audited like a fetch of its own (so a hop
//! also counts against a fetch quota). A deny stops the fetch: 403 `policy_denied`, the
//! reason naming the hop.

use crate::plugins::call_data::CallData;
use crate::plugins::plugin_config::PluginConfig;
use crate::plugins::registry::{PluginSet, PolicyOutcome};
use crate::state::AppState;
use crate::tools::{RedirectCheck, ToolError};
use serde_json::Value;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use url::Url;

/// The policy plugins of one call, as judges of its redirects.
pub struct PolicyRedirects<'a> {
    /// Shared state.
    pub state: &'a AppState,
    /// The plugin set the call was judged with.
    pub set: &'a PluginSet,
    /// The call.
    pub call: &'a Arc<CallData>,
    /// The policy documents of bindings with `config_from = "policies"`.
    pub config: Option<PluginConfig>,
}

impl RedirectCheck for PolicyRedirects<'_> {
    fn check<'a>(
        &'a self,
        url: &'a Url,
    ) -> Pin<Box<dyn Future<Output = Result<(), ToolError>> + Send + 'a>> {
        Box::pin(async move {
            let hop = Arc::new(self.call.with_param("url", Value::String(url.to_string())));
            let outcome = self
                .state
                .plugins
                .evaluate(self.set, &hop, self.config.as_ref())
                .await;
            let subject = super::policy::AuditSubject {
                correlation_id: &hop.correlation_id,
                agent_id: &hop.agent_id,
                tool: &hop.tool,
                action: &hop.action,
                now_ms: hop.now_ms,
            };
            super::policy::audit_policy(self.state, &subject, &outcome).await;
            match outcome {
                PolicyOutcome::Allow { .. } => Ok(()),
                PolicyOutcome::Deny { code, reason, .. } => Err(ToolError::RedirectDenied {
                    url: url.to_string(),
                    code,
                    reason,
                }),
                PolicyOutcome::Failed { .. } => Err(ToolError::RedirectPolicyFailed),
            }
        })
    }
}
