//! One tool call as plugins see it: the values behind the contract's `call` resource, built
//! once per request (only when a plugin is bound to it) and shared, never copied, by every
//! plugin call, retry and redirect hop that reads it.

use serde_json::Value;
use std::sync::OnceLock;

/// The values a plugin may read about one call.
#[derive(Debug, Clone, Default)]
pub struct CallData {
    /// Correlation id of the HTTP request.
    pub correlation_id: String,
    /// The calling agent's id.
    pub agent_id: String,
    /// The calling agent's name.
    pub agent_name: String,
    /// The calling agent's role.
    pub agent_role: String,
    /// Tool name.
    pub tool: String,
    /// Action of the tool.
    pub action: String,
    /// The call's parameters.
    pub params: Value,
    /// The parameters as JSON text, written when a plugin first asks for it.
    pub(crate) params_text: OnceLock<String>,
    /// What the agent says it is doing.
    pub intent: Option<String>,
    /// Tools the token allows.
    pub token_tools: Vec<String>,
    /// Permissions the token carries.
    pub token_permissions: Vec<String>,
    /// The call's time, unix ms.
    pub now_ms: u64,
    /// Per-call random seed.
    pub seed: u64,
}

impl CallData {
    /// The parameters as JSON text (written once).
    pub fn params_text(&self) -> &str {
        self.params_text.get_or_init(|| self.params.to_string())
    }

    /// One top-level parameter: a JSON string's text as is, any other value as JSON text.
    pub fn param(&self, name: &str) -> Option<String> {
        match self.params.get(name)? {
            Value::String(text) => Some(text.clone()),
            other => Some(other.to_string()),
        }
    }

    /// The same call with one parameter set (a redirect hop's `url`).
    pub fn with_param(&self, name: &str, value: Value) -> CallData {
        let mut params = self.params.clone();
        if let Some(fields) = params.as_object_mut() {
            fields.insert(name.to_string(), value);
        }
        CallData {
            params,
            params_text: OnceLock::new(),
            ..self.clone()
        }
    }
}
