//! The request record as JSON (snake_case names of the WIT `call` getters), read by
//! `gateway plugin test`, an upload's sample and the dry-run endpoint, and the JSON form of
//! plugin answers.

use super::bindings::{Decision, Fault};
use super::call_data::CallData;
use serde::Deserialize;
use serde_json::{json, Value};

/// A request record; `params` may be JSON text or an object.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestRecord {
    #[serde(default)]
    correlation_id: Option<String>,
    #[serde(default)]
    agent_id: String,
    #[serde(default)]
    agent_name: String,
    #[serde(default)]
    agent_role: String,
    tool: String,
    action: String,
    #[serde(default)]
    #[schema(value_type = Object)]
    params: Value,
    #[serde(default)]
    intent: Option<String>,
    #[serde(default)]
    token_tools: Vec<String>,
    #[serde(default)]
    token_permissions: Vec<String>,
    #[serde(default)]
    now_ms: Option<u64>,
    #[serde(default)]
    seed: Option<u64>,
}

impl RequestRecord {
    /// The call, with `now_ms` and `seed` defaulted when the record leaves them out.
    /// `params` given as JSON text is parsed (text that is not JSON stays a string).
    pub fn into_call(self, default_now_ms: u64, default_seed: u64) -> CallData {
        CallData {
            correlation_id: self.correlation_id.unwrap_or_else(|| "dry-run".into()),
            agent_id: self.agent_id,
            agent_name: self.agent_name,
            agent_role: self.agent_role,
            tool: self.tool,
            action: self.action,
            params: match self.params {
                Value::String(text) => serde_json::from_str(&text).unwrap_or(Value::String(text)),
                Value::Null => Value::Object(Default::default()),
                other => other,
            },
            intent: self.intent,
            token_tools: self.token_tools,
            token_permissions: self.token_permissions,
            now_ms: self.now_ms.unwrap_or(default_now_ms),
            seed: self.seed.unwrap_or(default_seed),
            ..CallData::default()
        }
    }
}

/// A policy decision as JSON.
pub fn decision_json(decision: &Decision) -> Value {
    match decision {
        Decision::Allow => json!({ "decision": "allow" }),
        Decision::AllowAndFilter => json!({ "decision": "allow_and_filter" }),
        Decision::Deny(d) => json!({ "decision": "deny", "code": d.code, "reason": d.reason }),
    }
}

/// A chaos fault as JSON.
pub fn fault_json(fault: &Fault) -> Value {
    match fault {
        Fault::None => json!({ "fault": "none" }),
        Fault::Delay(ms) => json!({ "fault": "delay", "ms": ms }),
        Fault::Error(e) => json!({ "fault": "error", "status": e.status, "message": e.message }),
        Fault::Timeout => json!({ "fault": "timeout" }),
        Fault::DelayThenError(e) => {
            json!({ "fault": "delay_then_error", "ms": e.ms, "status": e.status, "message": e.message })
        }
    }
}
