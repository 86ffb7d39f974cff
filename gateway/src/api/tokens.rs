//! Token endpoints: minting (admin key or the agent's own signature), introspection,
//! revocation and listing.

use crate::api::agents::find as find_agent;
use crate::api::json::{parse_json, read_body, JsonBody};
use crate::api::message::Message;
use crate::api::path_text::PathText;
use crate::api::query::QueryParams;
use crate::auth::{authorize_minting, Caller};
use crate::catalog::{Permission, ToolName};
use crate::clock::{iso, iso_ms};
use crate::error::ApiError;
use crate::error::Refusal;
use crate::state::AppState;
use crate::store::agents::AgentStatus;
use crate::store::tokens::TokenRecord;
use crate::tokens::rotation_recommended;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::str::FromStr;
use utoipa::ToSchema;
use uuid::Uuid;

/// Path of the mint endpoint (also part of the message an agent signs).
pub const GENERATE_TOKEN_PATH: &str = "/api/generate-token";
/// Most tokens one listing returns.
const MAX_PAGE: i64 = 1000;

/// Body of `POST /api/generate-token`. Loosely typed so each problem gets its own message.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GenerateTokenRequest {
    /// The agent the token is for.
    agent_id: Option<String>,
    /// Tools the token grants: `serpapi`, `openai`, `gmail_send`, `http_fetch`.
    #[schema(value_type = Vec<String>)]
    tools: Option<Value>,
    /// What it may do with them: `read`, `write`, `<tool>:<action>` (e.g. `serpapi:search`)
    /// or `<tool>:*`.
    #[schema(value_type = Vec<String>)]
    permissions: Option<Value>,
    /// When it expires (ISO 8601); or give `ttl_minutes`.
    expires_at: Option<String>,
    /// Its lifetime in minutes; or give `expires_at`.
    ttl_minutes: Option<i64>,
    /// Admin only: mint beyond the agent's maximum scope, on purpose.
    beyond_agent_scope: Option<bool>,
}

/// Reply of `POST /api/generate-token`.
#[derive(Debug, Serialize, ToSchema)]
pub struct GenerateTokenResponse {
    agent_token: String,
    token_id: Uuid,
    expires_at: String,
    agent_name: String,
}

/// Every refusal `POST /api/generate-token` can answer besides reading its body.
pub const GENERATE_REFUSALS: &[Refusal] = &[
    Refusal::MissingFields,
    Refusal::InvalidScope,
    Refusal::EmptyScope,
    Refusal::AmbiguousExpiry,
    Refusal::InvalidExpiry,
    Refusal::ExpiryInPast,
    Refusal::TtlTooLong,
    Refusal::AgentNotFound,
    Refusal::MintAgentNotActive,
    Refusal::ScopeNotAllowed,
    Refusal::ForbiddenAgent,
    Refusal::Unauthorized,
    Refusal::InvalidSignature,
    Refusal::StaleTimestamp,
    Refusal::ReplayedSignature,
    Refusal::TooManyAuthFailures,
    Refusal::StoreUnavailable,
];

/// `POST /api/generate-token`.
#[utoipa::path(
    post,
    path = "/api/generate-token",
    tag = "tokens",
    description = "Mint a token: with the admin key, or signed by the agent itself (X-Agent-Id, X-Agent-Timestamp, X-Agent-Signature). Error codes: missing_fields, invalid_scope, ttl_too_long, agent_not_found, agent_not_active, scope_not_allowed, invalid_signature, replayed_signature.",
    security(("admin_key" = []), ("agent_signature" = [])),
    request_body(content = GenerateTokenRequest, content_type = "application/json", example = json!({"agent_id": "00000000-0000-4000-8000-000000000000", "tools": ["serpapi"], "permissions": ["read"], "ttl_minutes": 15})),
    responses(
        (status = 201, description = "Created", body = GenerateTokenResponse),
        (status = "default", description = "An error: {error, code}", body = crate::api::openapi::ErrorBody)
    )
)]
pub async fn generate(
    State(state): State<AppState>,
    request: Request,
) -> Result<(StatusCode, Json<GenerateTokenResponse>), ApiError> {
    let headers = request.headers().clone();
    let method = request.method().as_str().to_owned();
    let client = crate::server::client_address(request.extensions()).map(|a| a.ip());
    let body = read_body(request, &state).await?;
    let caller = authorize_minting(
        &state,
        client,
        &headers,
        &method,
        GENERATE_TOKEN_PATH,
        &body,
    )
    .await?;
    let req: GenerateTokenRequest = parse_json(&headers, &body)?;

    let (Some(agent_id), Some(tools), Some(permissions)) =
        (req.agent_id, req.tools, req.permissions)
    else {
        return Err(missing_fields());
    };
    if req.expires_at.is_none() && req.ttl_minutes.is_none() {
        return Err(missing_fields());
    }
    let agent = find_agent(&state, &agent_id).await;
    if let Caller::Agent(signer) = caller {
        // Checked before the agent look-up's answer is revealed: a signer learns nothing
        // about other agents.
        if agent.as_ref().map(|a| a.id).ok() != Some(signer) {
            return Err(ApiError::new(
                Refusal::ForbiddenAgent,
                "An agent can only mint tokens for itself",
            ));
        }
    }
    let tools: Vec<ToolName> = parse_names(&tools, "tools")?;
    let permissions: Vec<Permission> = parse_names(&permissions, "permissions")?;
    if tools.is_empty() || permissions.is_empty() {
        return Err(ApiError::new(
            Refusal::EmptyScope,
            "tools and permissions must each name at least one entry",
        ));
    }
    let now = Utc::now();
    let expires_at = expiry(
        &req.expires_at,
        req.ttl_minutes,
        now,
        state.config.token_max_ttl(),
    )?;
    let agent = agent?;
    if agent.status != AgentStatus::Active {
        return Err(ApiError::new(
            Refusal::MintAgentNotActive,
            "Agent is not active.",
        ));
    }
    // One second of grace, as for the gateway's own limit: the client's clock read and ours.
    let ttl_minutes = (((expires_at - now).num_seconds() - 1).max(0) + 59) / 60;
    let excess = agent.mint_scope().excess(
        &tools,
        &permissions,
        ttl_minutes,
        state.config.settings.token_max_ttl_minutes,
    );
    let on_purpose = caller == Caller::Admin && req.beyond_agent_scope == Some(true);
    if !excess.is_empty() {
        if !on_purpose {
            return Err(ApiError::new(
                Refusal::ScopeNotAllowed,
                format!(
                    "The token asks for more than the agent's maximum scope: {}",
                    excess.describe()
                ),
            )
            .with_details(json!({ "max_scope": agent.mint_scope() })));
        }
        tracing::warn!(agent_id = %agent.id, beyond = %excess.describe(),
            "admin minted a token beyond the agent's maximum scope");
    }
    let issued = state
        .tokens
        .issue(&agent, tools, permissions, now, expires_at)
        .await?;
    tracing::info!(agent_id = %agent.id, token_id = %issued.claims.jti,
        by = if caller == Caller::Admin { "admin" } else { "agent" }, "token issued");
    Ok((
        StatusCode::CREATED,
        Json(GenerateTokenResponse {
            agent_token: issued.token,
            token_id: issued.claims.jti,
            expires_at: iso(expires_at),
            agent_name: agent.name,
        }),
    ))
}

fn missing_fields() -> ApiError {
    ApiError::new(
        Refusal::MissingFields,
        "Missing required fields: agent_id, tools, permissions, and expires_at (or ttl_minutes) are required.",
    )
}

/// Parses an array of known names, deduplicated, in the order given.
fn parse_names<T: FromStr + PartialEq>(value: &Value, field: &str) -> Result<Vec<T>, ApiError> {
    let Some(items) = value.as_array() else {
        return Err(ApiError::new(
            Refusal::InvalidScope,
            "Tools and permissions must be arrays.",
        ));
    };
    let mut names = Vec::with_capacity(items.len());
    let mut unknown = Vec::new();
    for item in items {
        match item.as_str().map(T::from_str) {
            Some(Ok(name)) => {
                if !names.contains(&name) {
                    names.push(name);
                }
            }
            _ => unknown.push(format!("{field}: unknown entry {item}")),
        }
    }
    if !unknown.is_empty() {
        let forms = match field {
            "permissions" => crate::catalog::PERMISSION_FORMS,
            _ => "serpapi, openai, gmail_send or http_fetch",
        };
        return Err(ApiError::new(
            Refusal::InvalidScope,
            format!("Unknown {field}: use {forms}"),
        )
        .with_details(json!(unknown)));
    }
    Ok(names)
}

/// The expiry from exactly one of `expires_at` (ISO 8601) and `ttl_minutes`.
fn expiry(
    expires_at: &Option<String>,
    ttl_minutes: Option<i64>,
    now: DateTime<Utc>,
    max_ttl: Duration,
) -> Result<DateTime<Utc>, ApiError> {
    let at = match (expires_at, ttl_minutes) {
        (Some(_), Some(_)) => {
            return Err(ApiError::new(
                Refusal::AmbiguousExpiry,
                "Give either expires_at or ttl_minutes, not both",
            ))
        }
        (Some(text), None) => DateTime::parse_from_rfc3339(text.trim())
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| {
                ApiError::new(
                    Refusal::InvalidExpiry,
                    "Invalid expires_at date format. Use ISO 8601 format.",
                )
            })?,
        (None, Some(minutes)) => {
            if minutes <= 0 {
                return Err(ApiError::new(
                    Refusal::ExpiryInPast,
                    "Token expiry date must be in the future.",
                ));
            }
            now + Duration::minutes(minutes.min(max_ttl.num_minutes() + 1))
        }
        (None, None) => return Err(missing_fields()),
    };
    if at <= now {
        return Err(ApiError::new(
            Refusal::ExpiryInPast,
            "Token expiry date must be in the future.",
        ));
    }
    // One second of grace absorbs the time between the client's clock read and ours.
    if at > now + max_ttl + Duration::seconds(1) {
        return Err(ApiError::new(
            Refusal::TtlTooLong,
            format!(
                "Token lifetime may not exceed {} minutes",
                max_ttl.num_minutes()
            ),
        ));
    }
    Ok(at)
}

/// Body of `POST /api/admin/tokens/introspect`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IntrospectRequest {
    agent_token: String,
}

/// `POST /api/admin/tokens/introspect`: the validation verdict and, when valid, the claims.
#[utoipa::path(
    post,
    path = "/api/admin/tokens/introspect",
    tag = "tokens",
    description = "Whether a token is active, and its claims. Error codes: missing_fields.",
    request_body(content = IntrospectRequest, content_type = "application/json", example = json!({"agent_token": "gw1.example"})),
    responses(
        (status = 200, description = "OK", body = Introspection),
        (status = "default", description = "An error: {error, code}", body = crate::api::openapi::ErrorBody)
    )
)]
pub async fn introspect(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<IntrospectRequest>,
) -> Json<Introspection> {
    let now = Utc::now();
    match state.tokens.validate(&body.agent_token, now).await {
        Ok(c) => Json(Introspection {
            active: true,
            reason: None,
            token_id: Some(c.jti),
            agent_id: Some(c.sub),
            agent_name: Some(c.name.clone()),
            agent_role: Some(c.role.clone()),
            tools: Some(c.tools.clone()),
            permissions: Some(c.permissions.clone()),
            issued_at: Some(iso_ms(c.iat * 1000)),
            expires_at: Some(iso_ms(c.exp * 1000)),
            rotation_recommended: Some(rotation_recommended(&c, now)),
        }),
        Err(rejection) => Json(Introspection {
            reason: Some(rejection.public_reason()),
            ..Introspection::default()
        }),
    }
}

/// Reply of `POST /api/admin/tokens/introspect`: `active`, then the claims when active or
/// the reason when not.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct Introspection {
    active: bool,
    /// Why the token is refused (inactive only).
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    agent_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    agent_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    agent_role: Option<String>,
    /// Tools the token grants (active only, as the rest below).
    #[serde(skip_serializing_if = "Option::is_none")]
    tools: Option<Vec<ToolName>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    permissions: Option<Vec<Permission>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    issued_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<String>,
    /// Whether the holder should mint a fresh one now.
    #[serde(skip_serializing_if = "Option::is_none")]
    rotation_recommended: Option<bool>,
}

/// `POST /api/admin/tokens/:token_id/revoke`. Revoking twice keeps the first time.
#[utoipa::path(
    post,
    path = "/api/admin/tokens/{token_id}/revoke",
    tag = "tokens",
    description = "Revoke a token, on every instance within about a second. Error codes: token_not_found.",
    responses(
        (status = 200, description = "OK", body = TokenRevoked),
        (status = "default", description = "An error: {error, code}", body = crate::api::openapi::ErrorBody)
    )
)]
pub async fn revoke(
    State(state): State<AppState>,
    PathText(token_id): PathText,
) -> Result<Json<TokenRevoked>, ApiError> {
    let not_found = || ApiError::new(Refusal::TokenNotFound, "Token not found");
    let token_id = Uuid::parse_str(token_id.trim()).map_err(|_| not_found())?;
    let record = state
        .tokens
        .revoke(token_id, Utc::now())
        .await?
        .ok_or_else(not_found)?;
    tracing::info!(token_id = %token_id, agent_id = %record.agent_id, "token revoked");
    Ok(Json(TokenRevoked {
        message: Message::new("Token revoked successfully"),
        token_id: record.token_id,
        revoked_at: record.revoked_at.map(iso_ms),
    }))
}

/// Reply of `POST /api/admin/tokens/{token_id}/revoke`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenRevoked {
    #[serde(flatten)]
    message: Message,
    token_id: Uuid,
    /// When it was first revoked (revoking twice keeps the first time).
    revoked_at: Option<String>,
}

/// Query of `GET /api/admin/tokens`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ListTokensQuery {
    agent_id: Option<Uuid>,
    limit: Option<i64>,
}

/// A token as listed: never the token string, only its record.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenView {
    id: Uuid,
    token_id: Uuid,
    agent_id: Uuid,
    tools: Vec<ToolName>,
    permissions: Vec<Permission>,
    issued_at: String,
    expires_at: String,
    is_revoked: bool,
    revoked_at: Option<String>,
}

impl From<TokenRecord> for TokenView {
    fn from(r: TokenRecord) -> Self {
        Self {
            id: r.token_id,
            token_id: r.token_id,
            agent_id: r.agent_id,
            tools: r.claims.tools,
            permissions: r.claims.permissions,
            issued_at: iso_ms(r.issued_at),
            expires_at: iso_ms(r.expires_at),
            is_revoked: r.revoked_at.is_some(),
            revoked_at: r.revoked_at.map(iso_ms),
        }
    }
}

/// `GET /api/admin/tokens`: newest first.
#[utoipa::path(
    get,
    path = "/api/admin/tokens",
    tag = "tokens",
    description = "Token records, newest first (never the tokens). Error codes: invalid_query.",
    responses(
        (status = 200, description = "OK", body = Vec<TokenView>),
        (status = "default", description = "An error: {error, code}", body = crate::api::openapi::ErrorBody)
    )
)]
pub async fn list(
    State(state): State<AppState>,
    QueryParams(query): QueryParams<ListTokensQuery>,
) -> Result<Json<Vec<TokenView>>, ApiError> {
    let limit = query.limit.unwrap_or(MAX_PAGE).clamp(1, MAX_PAGE);
    let records = state.store.list_tokens(query.agent_id, limit).await?;
    Ok(Json(records.into_iter().map(TokenView::from).collect()))
}
