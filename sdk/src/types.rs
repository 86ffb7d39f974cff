//! Plain Rust forms of the contract's records and variants.

use serde::{Deserialize, Serialize};

/// One tool call, as the gateway sees it (field names as in the WIT `request` record).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Request {
    /// Correlation id of the HTTP request.
    pub correlation_id: String,
    /// Agent id.
    pub agent_id: String,
    /// Agent name.
    pub agent_name: String,
    /// Agent role.
    pub agent_role: String,
    /// Tool name.
    pub tool: String,
    /// Action of the tool.
    pub action: String,
    /// Parameters as JSON text.
    pub params: String,
    /// Declared intent.
    #[serde(default)]
    pub intent: Option<String>,
    /// Tools the token allows.
    #[serde(default)]
    pub token_tools: Vec<String>,
    /// Permissions the token carries.
    #[serde(default)]
    pub token_permissions: Vec<String>,
    /// Current time, unix ms.
    pub now_ms: u64,
    /// Per-request random seed.
    #[serde(default)]
    pub seed: u64,
}

/// A policy's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// The call may proceed.
    Allow,
    /// The call is refused.
    Deny {
        /// Stable machine-readable code.
        code: String,
        /// Reason for the caller.
        reason: String,
    },
}

impl Decision {
    /// A denial with a code and a reason.
    pub fn deny(code: impl Into<String>, reason: impl Into<String>) -> Self {
        Decision::Deny {
            code: code.into(),
            reason: reason.into(),
        }
    }
}

/// A fault to inject into one call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "fault", rename_all = "snake_case")]
pub enum Fault {
    /// No fault.
    None,
    /// Hold the call, then go on.
    Delay {
        /// Milliseconds.
        ms: u32,
    },
    /// Answer an error without calling the tool.
    Error {
        /// HTTP status.
        status: u16,
        /// Message.
        message: String,
    },
    /// Let the call time out.
    Timeout,
    /// Hold the call, then answer an error.
    DelayThenError {
        /// Milliseconds.
        ms: u32,
        /// HTTP status.
        status: u16,
        /// Message.
        message: String,
    },
}

/// What a plugin says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginInfo {
    /// Plugin name.
    pub name: String,
    /// Plugin version.
    pub version: String,
    /// Contract version it was built against.
    pub contract: String,
    /// True when instances keep no state between calls and may be reused.
    pub stateless: bool,
}

impl PluginInfo {
    /// Info for a plugin built against this SDK's contract version.
    pub fn new(name: &str, version: &str, stateless: bool) -> Self {
        Self {
            name: name.to_string(),
            version: version.to_string(),
            contract: crate::CONTRACT_VERSION.to_string(),
            stateless,
        }
    }
}
