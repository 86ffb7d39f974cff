//! Chaos admin endpoints: set, clear and list the fault rules at runtime, without restart;
//! a change is stored, so every instance applies it and it outlives a restart.

use crate::api::json::JsonBody;
use crate::api::path_text::PathText;
use crate::catalog::ToolName;
use crate::config::Environment;
use crate::error::ApiError;
use crate::error::Refusal;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use gateway_wire::ChaosRule;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Body of `POST /api/admin/chaos/tool`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetChaosRequest {
    /// A tool, or `*` for every tool.
    tool: String,
    /// `timeout`, `500`, `jitter` or `mock503`.
    mode: String,
    /// Share of calls hit, 0–100.
    pct: f64,
    min_ms: Option<u32>,
    max_ms: Option<u32>,
}

/// The rules in force, as `[[tool, rule], …]` (the original's `activeChaos` shape).
type ActiveChaos = Vec<(String, ChaosRule)>;

/// Reply of `GET /api/admin/chaos`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChaosList {
    /// The rules in force, as `[[tool, rule], …]`.
    #[serde(rename = "activeChaos")]
    #[schema(value_type = Vec<Vec<serde_json::Value>>)]
    active_chaos: ActiveChaos,
}

/// Reply of `POST /api/admin/chaos/tool`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChaosSet {
    message: String,
    tool: String,
    #[serde(flatten)]
    rule: ChaosRule,
    /// The rules in force, as `[[tool, rule], …]`.
    #[serde(rename = "activeChaos")]
    #[schema(value_type = Vec<Vec<serde_json::Value>>)]
    active_chaos: ActiveChaos,
}

/// Reply of `DELETE /api/admin/chaos/tool/{tool}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChaosCleared {
    message: String,
    tool: String,
    /// The rules in force, as `[[tool, rule], …]`.
    #[serde(rename = "activeChaos")]
    #[schema(value_type = Vec<Vec<serde_json::Value>>)]
    active_chaos: ActiveChaos,
}

fn active(state: &AppState) -> ActiveChaos {
    state.chaos_rules.active()
}

fn refuse_in_production(state: &AppState) -> Result<(), ApiError> {
    if state.config.settings.environment == Environment::Production {
        return Err(ApiError::new(
            Refusal::ChaosNotAllowed,
            "Chaos injection not allowed in production",
        ));
    }
    Ok(())
}

fn check_tool(tool: &str) -> Result<(), ApiError> {
    if tool == "*" || tool.parse::<ToolName>().is_ok() {
        Ok(())
    } else {
        Err(ApiError::validation(vec![format!(
            "tool: unknown tool {tool:?} (serpapi, openai, gmail_send, http_fetch or *)"
        )]))
    }
}

/// `POST /api/admin/chaos/tool`.
#[utoipa::path(
    post,
    path = "/api/admin/chaos/tool",
    tag = "chaos",
    description = "Set a tool's chaos rule (refused in production). Error codes: validation_failed, chaos_not_allowed.",
    request_body(content = SetChaosRequest, content_type = "application/json", example = json!({"tool": "serpapi", "mode": "error", "pct": 10})),
    responses(
        (status = 200, description = "OK", body = ChaosSet),
        (status = "default", description = "An error: {error, code}", body = crate::api::openapi::ErrorBody)
    )
)]
pub async fn set(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<SetChaosRequest>,
) -> Result<Json<ChaosSet>, ApiError> {
    refuse_in_production(&state)?;
    check_tool(&body.tool)?;
    let default = ChaosRule::feature_flag_default();
    let rule = ChaosRule {
        mode: body.mode,
        pct: body.pct,
        min_ms: body.min_ms.unwrap_or(default.min_ms),
        max_ms: body.max_ms.unwrap_or(default.max_ms),
    };
    rule.check().map_err(|e| ApiError::validation(vec![e]))?;
    state.store.put_chaos_rule(&body.tool, &rule, false).await?;
    state.chaos_rules.load(&state.store).await?;
    tracing::warn!(tool = %body.tool, mode = %rule.mode, pct = rule.pct, "chaos rule set");
    Ok(Json(ChaosSet {
        message: format!("Chaos enabled for {}", body.tool),
        tool: body.tool,
        rule,
        active_chaos: active(&state),
    }))
}

/// `DELETE /api/admin/chaos/tool/{tool}`.
#[utoipa::path(
    delete,
    path = "/api/admin/chaos/tool/{tool}",
    tag = "chaos",
    description = "Clear a tool's chaos rule (refused in production). Error codes: chaos_not_allowed.",
    responses(
        (status = 200, description = "OK", body = ChaosCleared),
        (status = "default", description = "An error: {error, code}", body = crate::api::openapi::ErrorBody)
    )
)]
pub async fn clear(
    State(state): State<AppState>,
    PathText(tool): PathText,
) -> Result<Json<ChaosCleared>, ApiError> {
    refuse_in_production(&state)?;
    check_tool(&tool)?;
    let removed = state.store.delete_chaos_rule(&tool).await?;
    state.chaos_rules.load(&state.store).await?;
    tracing::warn!(%tool, removed, "chaos rule cleared");
    Ok(Json(ChaosCleared {
        message: format!("Chaos cleared for {tool}"),
        active_chaos: active(&state),
        tool,
    }))
}

/// `GET /api/admin/chaos` (allowed in production too).
#[utoipa::path(
    get,
    path = "/api/admin/chaos",
    tag = "chaos",
    description = "The chaos rules.",
    responses(
        (status = 200, description = "OK", body = ChaosList),
        (status = "default", description = "An error: {error, code}", body = crate::api::openapi::ErrorBody)
    )
)]
pub async fn list(State(state): State<AppState>) -> Json<ChaosList> {
    Json(ChaosList {
        active_chaos: active(&state),
    })
}
