//! The JSON envelope of every error answer.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Every error answer: a message for people and a stable code for programs
/// ([`crate::Refusal::code`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// What went wrong, in words.
    pub error: String,
    /// The stable code (see each operation's description for the codes it answers).
    pub code: String,
    /// Specifics, where useful (the fields that failed validation, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
    /// Seconds to wait before trying again (`rate_limited`, `breaker_open`, …; also the
    /// `Retry-After` header).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// Which limit refused the call (`rate_limited`): `agent`, `agent_tool`, `tool`, `global`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Why a policy refused the call (`policy_denied`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The policy rule that refused it (`policy_denied`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
}
