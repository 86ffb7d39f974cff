//! The policy of a fetch, asked again at every redirect hop: the call's request record with
//! the hop's URL in its parameters, judged and audited like a fetch of its own (so a hop
//! also counts against a fetch quota). A deny stops the fetch: 403 `policy_denied`, the
//! reason naming the hop.

use crate::plugins::bindings::Request;
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
    /// The call's request record.
    pub request: &'a Request,
    /// The call's parameters.
    pub params: &'a Value,
    /// The merged policy of bindings with `config_from = "policies"`.
    pub config: Option<Arc<str>>,
}

impl RedirectCheck for PolicyRedirects<'_> {
    fn check<'a>(
        &'a self,
        url: &'a Url,
    ) -> Pin<Box<dyn Future<Output = Result<(), ToolError>> + Send + 'a>> {
        Box::pin(async move {
            let mut params = self.params.clone();
            if let Some(fields) = params.as_object_mut() {
                fields.insert("url".into(), Value::String(url.to_string()));
            }
            let mut hop = self.request.clone();
            hop.params = params.to_string();
            let outcome = self
                .state
                .plugins
                .evaluate(self.set, &hop, self.config.clone())
                .await;
            super::audit_policy(self.state, &hop, &outcome).await;
            match outcome {
                PolicyOutcome::Allow => Ok(()),
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
