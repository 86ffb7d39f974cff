//! The answer to a successful call: the tool's answer and what the gateway says of it.

use serde_json::Value;

/// The body of a successful proxy request, serialised straight from the tool's answer
/// (no copy of it into a new JSON tree).
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Success<'a> {
    /// Always true.
    pub(super) success: bool,
    /// The tool's answer (after any response filter).
    #[schema(value_type = Object)]
    pub(super) data: &'a Value,
    pub(super) metadata: SuccessMetadata<'a>,
}

/// `metadata` of a successful proxy request.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct SuccessMetadata<'a> {
    pub(super) agent_id: uuid::Uuid,
    pub(super) agent_name: &'a str,
    pub(super) tool: &'a str,
    pub(super) action: &'a str,
    pub(super) response_time_ms: f64,
    pub(super) cached: bool,
}
