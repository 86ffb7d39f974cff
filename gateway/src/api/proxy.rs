//! `POST /api/proxy-request` (the pipeline) and the admin views of it:
//! `GET /api/proxy/status` and `GET /api/proxy/logs`.

use super::json::read_body;
use super::query::QueryParams;
use super::time::{iso, iso_ms};
use crate::catalog::ToolName;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::request_logs::RequestLogRow;
use crate::tools::actions;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// `POST /api/proxy-request`.
#[utoipa::path(
    post,
    path = "/api/proxy-request",
    tag = "proxy",
    description = "Call a tool with an agent token (in the body's `agent_token` or as a bearer token). Error codes: missing_fields, invalid_params, invalid_token, token_expired, token_revoked, agent_not_active, tool_not_granted, permission_not_granted, rate_limited, policy_denied, policy_error, breaker_open, upstream_error, upstream_timeout, deadline_exceeded.",
    request_body(content = serde_json::Value, content_type = "application/json", example = json!({"agent_token": "gw1.example", "tool": "serpapi", "action": "search", "params": {"q": "rust"}})),
    responses(
        (status = 200, description = "OK"),
        (status = "default", description = "An error: {error, code}", body = crate::api::openapi::ErrorBody)
    )
)]
pub async fn proxy_request(State(state): State<AppState>, request: Request) -> Response {
    let headers = request.headers().clone();
    let client = crate::server::client_address(request.extensions()).map(|a| a.ip());
    match read_body(request, &state).await {
        Ok(body) => crate::pipeline::handle(&state, client, &headers, &body).await,
        Err(e) => {
            let failure = ApiError::new(e.status(), e.code(), "Request body could not be read");
            crate::pipeline::handle_unreadable(&state, &headers, failure).await
        }
    }
}

/// `GET /api/proxy/status`: mode, configured tools, actions and breaker states.
#[utoipa::path(
    get,
    path = "/api/proxy/status",
    tag = "proxy",
    description = "Mode, configured tools, actions, breaker states.",
    responses(
        (status = 200, description = "OK"),
        (status = "default", description = "An error: {error, code}", body = crate::api::openapi::ErrorBody)
    )
)]
pub async fn status(State(state): State<AppState>) -> Json<Value> {
    let proxy = &state.proxy;
    let mut configured = Map::new();
    let mut available = Map::new();
    let mut breakers = Map::new();
    for tool in ToolName::ALL {
        configured.insert(tool.as_str().into(), json!(proxy.tools.is_configured(tool)));
        available.insert(tool.as_str().into(), json!(actions::names_of(tool)));
        breakers.insert(
            tool.as_str().into(),
            json!(proxy.breakers.get(tool).state().as_str()),
        );
    }
    Json(json!({
        "status": if proxy.is_shutting_down() { "shutting_down" } else { "operational" },
        "timestamp": iso(chrono::Utc::now()),
        "mode": format!("{:?}", proxy.tools.mode()).to_lowercase(),
        "configured_tools": configured,
        "available_actions": available,
        "breakers": breakers,
        "policies_enabled": proxy.settings.policies_enabled,
        "chaos_rules": state.chaos_rules.active().len(),
        "signing_secret": true,
        "kek_configured": true,
    }))
}

/// Query of `GET /api/proxy/logs`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogsQuery {
    limit: Option<i64>,
}

/// `GET /api/proxy/logs?limit=20`: the newest request rows (everything queued so far is
/// written first, so a caller reads its own requests).
#[utoipa::path(
    get,
    path = "/api/proxy/logs",
    tag = "proxy",
    description = "The request audit log, newest first (`limit`). Error codes: invalid_query.",
    responses(
        (status = 200, description = "OK"),
        (status = "default", description = "An error: {error, code}", body = crate::api::openapi::ErrorBody)
    )
)]
pub async fn logs(
    State(state): State<AppState>,
    QueryParams(q): QueryParams<LogsQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = q.limit.unwrap_or(20);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::validation(vec!["limit: 1 to 1000".into()]));
    }
    state.proxy.audit.flush().await;
    let rows = state.store.list_request_logs(limit).await?;
    let total = state.store.request_log_total().await?;
    Ok(Json(json!({
        "logs": rows.iter().map(view).collect::<Vec<_>>(),
        "total": total,
        "timestamp": iso(chrono::Utc::now()),
    })))
}

fn view(r: &RequestLogRow) -> Value {
    json!({
        "id": r.id,
        "corrId": r.correlation_id,
        "agentId": r.agent_id,
        "tool": r.tool,
        "action": r.action,
        "statusCode": r.status_code,
        "success": r.success == 1,
        "errorCode": r.error_code,
        "responseTime": r.response_time_ms,
        "cached": r.cached == 1,
        "policyDecision": r.policy_decision,
        "chaosFault": r.chaos_fault,
        "createdAt": iso_ms(r.created_at),
    })
}
