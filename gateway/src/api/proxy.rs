//! `POST /api/proxy-request` (the pipeline) and the admin views of it:
//! `GET /api/proxy/status` and `GET /api/proxy/logs`.

use super::json::read_body;
use super::query::QueryParams;
use crate::catalog as actions;
use crate::catalog::ToolName;
use crate::clock::{iso, iso_ms};
use crate::error::{ApiError, Refusal};
use crate::state::AppState;
use crate::store::request_logs::RequestLogRow;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::Json;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tracing::Instrument;
use utoipa::ToSchema;

/// Every refusal `POST /api/proxy-request` can answer (the document lists them by status).
pub const REFUSALS: &[Refusal] = &[
    Refusal::InvalidJson,
    Refusal::MissingFields,
    Refusal::UnsupportedTool,
    Refusal::UnsupportedAction,
    Refusal::InvalidParams,
    Refusal::InvalidTokenId,
    Refusal::ProofPayloadRequired,
    Refusal::UnreadableBody,
    Refusal::InvalidText,
    Refusal::PayloadTooLarge,
    Refusal::BodyTimeout,
    Refusal::InvalidToken,
    Refusal::TokenExpired,
    Refusal::TokenRevoked,
    Refusal::AgentNotActive,
    Refusal::TokenMismatch,
    Refusal::TooManyAuthFailures,
    Refusal::ToolNotGranted,
    Refusal::PermissionNotGranted,
    Refusal::RateLimited,
    Refusal::AgentCallsInFlight,
    Refusal::PolicyDenied,
    Refusal::PolicyError,
    Refusal::PluginBusy,
    Refusal::ToolNotConfigured,
    Refusal::DestinationNotAllowed,
    Refusal::BreakerOpen,
    Refusal::BulkheadFull,
    Refusal::UpstreamFailed,
    Refusal::UpstreamUnreachable,
    Refusal::UpstreamBadAnswer,
    Refusal::UpstreamAnswerTooLarge,
    Refusal::UpstreamTimeout,
    Refusal::DeadlineExceeded,
    Refusal::ShuttingDown,
    Refusal::StoreUnavailable,
];

/// `POST /api/proxy-request`.
#[utoipa::path(
    post,
    operation_id = "call",
    path = "/api/proxy-request",
    tag = "proxy",
    description = "Call a tool with an agent token (in the body's `agent_token` or as a bearer token). Each error status below lists its codes.",
    security(("agent_token" = [])),
    request_body(content = super::proxy_request_schema::ProxyRequestBody, content_type = "application/json", example = json!({"agent_token": "gw1.example", "tool": "serpapi", "action": "search", "params": {"q": "rust"}})),
    responses(
        (status = 200, description = "The tool's answer", body = crate::pipeline::Success),
        (status = "default", description = "An error: {error, code}", body = crate::api::openapi::ErrorBody)
    )
)]
pub async fn proxy_request(State(state): State<AppState>, request: Request) -> Response {
    let headers = request.headers().clone();
    let client = crate::server::client_address(request.extensions()).map(|a| a.ip());
    match read_body(request, &state).await {
        // Once its body is read, a call runs to its end (bounded by its deadline) even if
        // the client leaves: the tool may already have acted, and its audit row must say so.
        Ok(body) => {
            // In the request's span, so that its log lines keep the request id.
            let call =
                async move { crate::pipeline::handle(&state, client, &headers, &body).await }
                    .instrument(tracing::Span::current());
            super::run_to_end::RunToEnd::new(call).await
        }
        Err(e) => {
            let failure = ApiError::new(e.refusal(), "Request body could not be read");
            crate::pipeline::handle_unreadable(&state, client, &headers, failure).await
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
        (status = 200, description = "OK", body = ProxyStatus),
    )
)]
pub async fn status(State(state): State<AppState>) -> Json<ProxyStatus> {
    let proxy = &state.proxy;
    let mut configured = BTreeMap::new();
    let mut available = BTreeMap::new();
    let mut breakers = BTreeMap::new();
    for tool in ToolName::ALL {
        configured.insert(tool.as_str(), proxy.tools.is_configured(tool));
        available.insert(tool.as_str(), actions::names_of(tool));
        breakers.insert(tool.as_str(), proxy.breakers.get(tool).state().as_str());
    }
    Json(ProxyStatus {
        status: if proxy.is_shutting_down() {
            "shutting_down"
        } else {
            "operational"
        },
        timestamp: iso(chrono::Utc::now()),
        mode: format!("{:?}", proxy.tools.mode()).to_lowercase(),
        configured_tools: configured,
        available_actions: available,
        breakers,
        policies_enabled: proxy.settings.policies_enabled,
        chaos_rules: state.chaos_rules.active().len(),
        signing_secret: true,
        kek_configured: true,
    })
}

/// Reply of `GET /api/proxy/status`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProxyStatus {
    /// `operational`, or `shutting_down` while it drains.
    status: &'static str,
    timestamp: String,
    /// `mock` or `live` upstreams.
    mode: String,
    /// Per tool: whether it has what it needs to be called.
    configured_tools: BTreeMap<&'static str, bool>,
    /// Per tool: its actions.
    available_actions: BTreeMap<&'static str, Vec<&'static str>>,
    /// Per tool: its breaker's state (`closed`, `open`, `half_open`).
    breakers: BTreeMap<&'static str, &'static str>,
    policies_enabled: bool,
    /// How many chaos rules are set.
    chaos_rules: usize,
    signing_secret: bool,
    kek_configured: bool,
}

/// Query of `GET /api/proxy/logs`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LogsQuery {
    limit: Option<i64>,
    /// Only the calls with this correlation id; needs `agentId`.
    corr_id: Option<String>,
    /// The agent whose calls `corrId` names.
    agent_id: Option<String>,
    /// With `corrId`: how far back to look, in hours (default 24, at most a week).
    since_hours: Option<i64>,
}

/// `GET /api/proxy/logs?limit=20`: the newest request rows (everything queued so far is
/// written first, so a caller reads its own requests); with `corrId` and `agentId`, that
/// agent's calls with that correlation id.
#[utoipa::path(
    get,
    path = "/api/proxy/logs",
    tag = "proxy",
    description = "The request audit log, newest first (`limit`); `corrId` with `agentId` (and `sinceHours`, default 24): one agent's calls with that correlation id, which another agent's calls never join. Error codes: invalid_query, validation_failed.",
    responses(
        (status = 200, description = "OK", body = RequestLogPage),
        (status = "default", description = "An error: {error, code}", body = crate::api::openapi::ErrorBody)
    )
)]
pub async fn logs(
    State(state): State<AppState>,
    QueryParams(q): QueryParams<LogsQuery>,
) -> Result<Json<RequestLogPage>, ApiError> {
    let limit = q.limit.unwrap_or(20);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::validation(vec!["limit: 1 to 1000".into()]));
    }
    state.proxy.audit.flush().await;
    let rows = match (&q.corr_id, &q.agent_id) {
        (None, None) => state.store.list_request_logs(limit).await?,
        (Some(correlation_id), Some(agent_id)) => {
            let hours = q.since_hours.unwrap_or(24);
            if !(1..=168).contains(&hours) {
                return Err(ApiError::validation(vec!["sinceHours: 1 to 168".into()]));
            }
            let since = state.store.now_ms() - hours * 3_600_000;
            state
                .store
                .list_request_logs_of_correlation(agent_id, correlation_id, since, limit)
                .await?
        }
        // A correlation id is the client's own: it names calls only within one agent.
        _ => {
            return Err(ApiError::validation(vec![
                "corrId and agentId go together: a correlation id names calls within one agent"
                    .into(),
            ]))
        }
    };
    let total = state.store.request_log_total().await?;
    Ok(Json(RequestLogPage {
        logs: rows.iter().map(RequestLogView::from).collect(),
        total,
        timestamp: iso(chrono::Utc::now()),
    }))
}

/// Reply of `GET /api/proxy/logs`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RequestLogPage {
    logs: Vec<RequestLogView>,
    /// Rows stored in all.
    total: i64,
    timestamp: String,
}

/// One proxied call as audited.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RequestLogView {
    id: String,
    /// The call's correlation id (its `X-Correlation-ID`).
    corr_id: String,
    agent_id: Option<String>,
    tool: String,
    action: String,
    status_code: i64,
    success: bool,
    error_code: Option<String>,
    /// Milliseconds the gateway took.
    response_time: f64,
    cached: bool,
    policy_decision: Option<String>,
    chaos_fault: Option<String>,
    /// The share of such calls the row was kept from: 1 when it stands for itself alone,
    /// 0.1 when it stands for about ten allowed, successful calls (`AUDIT_SAMPLE_ALLOWED`).
    sample_rate: f64,
    created_at: String,
}

impl From<&RequestLogRow> for RequestLogView {
    fn from(r: &RequestLogRow) -> Self {
        Self {
            id: r.id.clone(),
            corr_id: r.correlation_id.clone(),
            agent_id: r.agent_id.clone(),
            tool: r.tool.clone(),
            action: r.action.clone(),
            status_code: r.status_code,
            success: r.success == 1,
            error_code: r.error_code.clone(),
            response_time: r.response_time_ms,
            cached: r.cached == 1,
            policy_decision: r.policy_decision.clone(),
            chaos_fault: r.chaos_fault.clone(),
            sample_rate: r.sample_rate.unwrap_or(1.0),
            created_at: iso_ms(r.created_at),
        }
    }
}
