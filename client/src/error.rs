//! What a call can end in besides an answer: the gateway's refusals by their stable codes,
//! and failures to reach it.

pub use gateway_wire::Refusal;
use serde_json::Value;

/// The gateway's refusals an agent handles differently, by their stable `code`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// The token is not one the gateway sealed (`invalid_token`).
    InvalidToken,
    /// The token expired (`token_expired`).
    TokenExpired,
    /// The token was revoked (`token_revoked`).
    TokenRevoked,
    /// The agent is suspended (`agent_not_active`).
    AgentNotActive,
    /// The token does not grant the tool or the action's permission (`tool_not_granted`,
    /// `permission_not_granted`).
    NotGranted,
    /// A policy said no (`policy_denied`; the rule's code is in the body's `rule`).
    PolicyDenied,
    /// Too many calls (429): wait `Retry-After`.
    RateLimited,
    /// The tool is unavailable for now (503: breaker open, bulkhead full, shutting down).
    Unavailable,
    /// The request is malformed (400).
    BadRequest,
    /// Any other code.
    Other(String),
}

impl ErrorKind {
    /// The kind of a refusal with `status` and `code` (codes as the wire crate defines them).
    pub fn from_answer(status: u16, code: &str) -> Self {
        match Refusal::from_code(code) {
            Some(Refusal::InvalidToken) => Self::InvalidToken,
            Some(Refusal::TokenExpired) => Self::TokenExpired,
            Some(Refusal::TokenRevoked) => Self::TokenRevoked,
            Some(Refusal::AgentNotActive | Refusal::MintAgentNotActive) => Self::AgentNotActive,
            Some(Refusal::ToolNotGranted | Refusal::PermissionNotGranted) => Self::NotGranted,
            Some(Refusal::PolicyDenied) => Self::PolicyDenied,
            _ if status == 429 => Self::RateLimited,
            _ if status == 503 => Self::Unavailable,
            _ if status == 400 => Self::BadRequest,
            _ => Self::Other(code.to_string()),
        }
    }
}

/// Why a call did not answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The gateway refused or failed the call.
    #[error("{status} {code}: {message} (correlation id {correlation_id})")]
    Api {
        /// What kind of refusal.
        kind: ErrorKind,
        /// HTTP status.
        status: u16,
        /// The stable code.
        code: String,
        /// The gateway's message.
        message: String,
        /// The whole answer (details, a denial's `reason` and `rule`).
        body: Box<Value>,
        /// The call's correlation id, as in the gateway's audit log.
        correlation_id: String,
    },
    /// The gateway could not be reached, or answered something that is not JSON.
    #[error("gateway unreachable or unreadable: {0}")]
    Transport(String),
    /// The agent's key could not be read.
    #[error("agent key: {0}")]
    Key(String),
}

impl ClientError {
    /// The refusal's kind, when the gateway answered.
    pub fn kind(&self) -> Option<&ErrorKind> {
        match self {
            ClientError::Api { kind, .. } => Some(kind),
            _ => None,
        }
    }
}
