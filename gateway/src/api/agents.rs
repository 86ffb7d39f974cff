//! Agent endpoints: create (with a new or a supplied key), list, get, change status.

use crate::api::json::JsonBody;
use crate::api::path_text::PathText;
use crate::api::query::QueryParams;
use crate::clock::iso_ms;
use crate::crypto::agent_keys::parse_public_key;
use crate::error::ApiError;
use crate::error::Refusal;
use crate::state::AppState;
use crate::store::agents::{Agent, AgentStatus};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use gateway_wire::MintScope;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

const MAX_NAME_CHARS: usize = 128;
const MAX_ROLE_CHARS: usize = 64;
/// Most agents one listing returns.
const MAX_PAGE: i64 = 1000;

/// Body of `POST /api/create-agent`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAgentRequest {
    name: Option<String>,
    created_by: Option<String>,
    role: Option<String>,
    public_key: Option<String>,
    /// The most its tokens may grant; absent: from its role.
    max_scope: Option<MintScope>,
}

/// Reply of `POST /api/create-agent`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreateAgentResponse {
    agent_id: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    private_key: Option<String>,
    public_key: String,
}

/// An agent as listed (camelCase, as the original gateway lists stored entities).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentView {
    id: Uuid,
    name: String,
    role: String,
    created_by: String,
    public_key: String,
    status: AgentStatus,
    created_at: String,
    updated_at: String,
    /// The most its tokens may grant (the operator's, or its role's).
    max_scope: MintScope,
    /// Where `max_scope` comes from: `operator` or `role`.
    max_scope_source: &'static str,
}

impl From<Agent> for AgentView {
    fn from(a: Agent) -> Self {
        Self {
            max_scope: a.mint_scope(),
            max_scope_source: if a.max_scope.is_some() {
                "operator"
            } else {
                "role"
            },
            id: a.id,
            name: a.name,
            role: a.role,
            created_by: a.created_by,
            public_key: a.public_key,
            status: a.status,
            created_at: iso_ms(a.created_at),
            updated_at: iso_ms(a.updated_at),
        }
    }
}

/// `POST /api/create-agent`.
#[utoipa::path(
    post,
    path = "/api/create-agent",
    tag = "agents",
    description = "Register an agent; answers its id and (unless it sent its own public key) a new private key, shown once. Error codes: missing_fields, validation_failed, malformed_json, invalid_body.",
    request_body(content = CreateAgentRequest, content_type = "application/json", example = json!({"name": "scout", "created_by": "ops", "role": "scraper"})),
    responses(
        (status = 201, description = "Created", body = CreateAgentResponse),
        (status = "default", description = "An error: {error, code}", body = crate::api::openapi::ErrorBody)
    )
)]
pub async fn create(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<CreateAgentRequest>,
) -> Result<(StatusCode, Json<CreateAgentResponse>), ApiError> {
    let (Some(name), Some(created_by), Some(role)) = (
        non_empty(body.name),
        non_empty(body.created_by),
        non_empty(body.role),
    ) else {
        return Err(ApiError::new(
            Refusal::MissingFields,
            "Missing required fields: name, created_by, and role are required.",
        ));
    };
    let mut problems = Vec::new();
    if name.chars().count() > MAX_NAME_CHARS {
        problems.push(format!("name: at most {MAX_NAME_CHARS} characters"));
    }
    if created_by.chars().count() > MAX_NAME_CHARS {
        problems.push(format!("created_by: at most {MAX_NAME_CHARS} characters"));
    }
    if !valid_role(&role) {
        problems.push(ROLE_RULE.to_string());
    }
    if let Some(scope) = &body.max_scope {
        if let Err(problem) = scope.validate(state.config.settings.token_max_ttl_minutes) {
            problems.push(problem);
        }
    }
    let supplied_key = match body.public_key.as_deref() {
        Some(pem) => match parse_public_key(pem) {
            Ok((_, canonical)) => Some(canonical),
            Err(e) => {
                problems.push(format!("public_key: {e}"));
                None
            }
        },
        None => None,
    };
    if !problems.is_empty() {
        return Err(ApiError::validation(problems));
    }
    let (private_key, public_key) = match supplied_key {
        Some(public) => (None, public),
        None => {
            let pair = state.key_pool.take().await;
            state
                .metrics
                .key_pool_ready
                .set(state.key_pool.ready() as i64);
            (Some(pair.private_pem.to_string()), pair.public_pem)
        }
    };
    let now = state.store.now_ms();
    let agent = Agent {
        id: Uuid::new_v4(),
        name,
        role,
        created_by,
        public_key: public_key.clone(),
        status: AgentStatus::Active,
        created_at: now,
        updated_at: now,
        max_scope: body.max_scope,
    };
    state.store.insert_agent(&agent).await?;
    state.mirror.record_agent(&agent);
    state.metrics.agent_creations.inc();
    tracing::info!(agent_id = %agent.id, role = %agent.role, own_key = private_key.is_none(), "agent created");
    Ok((
        StatusCode::CREATED,
        Json(CreateAgentResponse {
            agent_id: agent.id,
            private_key,
            public_key,
        }),
    ))
}

/// Query of `GET /api/agents`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListAgentsQuery {
    limit: Option<i64>,
    offset: Option<i64>,
}

/// `GET /api/agents`.
#[utoipa::path(
    get,
    path = "/api/agents",
    tag = "agents",
    description = "List agents (`limit`, `offset`). Error codes: invalid_query.",
    responses(
        (status = 200, description = "OK", body = AgentList),
        (status = "default", description = "An error: {error, code}", body = crate::api::openapi::ErrorBody)
    )
)]
pub async fn list(
    State(state): State<AppState>,
    QueryParams(query): QueryParams<ListAgentsQuery>,
) -> Result<Json<AgentList>, ApiError> {
    let limit = query.limit.unwrap_or(MAX_PAGE).clamp(1, MAX_PAGE);
    let offset = query.offset.unwrap_or(0).max(0);
    let agents = state.store.list_agents(limit, offset).await?;
    let agents = agents.into_iter().map(AgentView::from).collect();
    Ok(Json(AgentList { agents }))
}

/// Reply of `GET /api/agents`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentList {
    agents: Vec<AgentView>,
}

/// Reply of `GET /api/agents/{id}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentOne {
    agent: AgentView,
}

/// Reply of `PATCH /api/agents/{id}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentUpdated {
    agent: AgentView,
    /// How many tokens the change revoked (a suspension revokes them all).
    tokens_revoked: usize,
}

/// `GET /api/agents/:id`.
#[utoipa::path(
    get,
    path = "/api/agents/{id}",
    tag = "agents",
    description = "One agent. Error codes: agent_not_found.",
    responses(
        (status = 200, description = "OK", body = AgentOne),
        (status = "default", description = "An error: {error, code}", body = crate::api::openapi::ErrorBody)
    )
)]
pub async fn get(
    State(state): State<AppState>,
    PathText(id): PathText,
) -> Result<Json<AgentOne>, ApiError> {
    let agent = find(&state, &id).await?;
    Ok(Json(AgentOne {
        agent: AgentView::from(agent),
    }))
}

/// Body of `PATCH /api/agents/:id`: at least one of the fields.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAgentRequest {
    status: Option<AgentStatus>,
    /// A new maximum token scope; `null` returns to the role's.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<MintScope>)]
    max_scope: Option<Option<MintScope>>,
}

/// Tells a field sent as `null` (`Some(None)`) from a field left out (`None`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// `PATCH /api/agents/:id`: suspend or reactivate an agent, or set its maximum token scope.
/// Takes effect on this instance at once and on every instance sharing the database within
/// seconds.
///
/// Suspending revokes every token the agent holds (answered as `tokens_revoked`): a
/// reactivated agent starts with none, so that lifting a suspension never brings back a
/// token issued before it, perhaps the very one that caused it. A new scope bounds the
/// tokens minted from then on; tokens already issued keep their claims until they expire
/// or are revoked.
#[utoipa::path(
    patch,
    path = "/api/agents/{id}",
    tag = "agents",
    description = "Suspend or reactivate an agent; suspending revokes its tokens. Error codes: agent_not_found, validation_failed.",
    request_body(content = UpdateAgentRequest, content_type = "application/json", example = json!({"status": "suspended"})),
    responses(
        (status = 200, description = "OK", body = AgentUpdated),
        (status = "default", description = "An error: {error, code}", body = crate::api::openapi::ErrorBody)
    )
)]
pub async fn update(
    State(state): State<AppState>,
    PathText(id): PathText,
    JsonBody(body): JsonBody<UpdateAgentRequest>,
) -> Result<Json<AgentUpdated>, ApiError> {
    if body.status.is_none() && body.max_scope.is_none() {
        return Err(ApiError::new(
            Refusal::MissingFields,
            "Nothing to change: send status, max_scope or both.",
        ));
    }
    if let Some(Some(scope)) = &body.max_scope {
        scope
            .validate(state.config.settings.token_max_ttl_minutes)
            .map_err(|problem| ApiError::validation(vec![problem]))?;
    }
    let id = Uuid::parse_str(&id).map_err(|_| agent_not_found())?;
    let mut agent = find(&state, &id.to_string()).await?;
    let now = state.store.now_ms();
    if let Some(scope) = &body.max_scope {
        agent = state
            .store
            .set_agent_max_scope(id, scope.as_ref(), now)
            .await?
            .ok_or_else(agent_not_found)?;
    }
    // Tokens before the status: should the status change then fail, the agent is still
    // active and holds no token, never suspended with tokens a reactivation would revive.
    let revoked = match body.status {
        Some(AgentStatus::Suspended) => state.store.revoke_agent_tokens(id, now).await?,
        _ => Vec::new(),
    };
    for revocation in &revoked {
        state.mirror.record_revocation(*revocation);
    }
    if let Some(status) = body.status {
        agent = state
            .store
            .set_agent_status(id, status, now)
            .await?
            .ok_or_else(agent_not_found)?;
    }
    state.mirror.record_agent(&agent);
    tracing::info!(agent_id = %agent.id, status = agent.status.as_str(),
        tokens_revoked = revoked.len(), scope_changed = body.max_scope.is_some(), "agent changed");
    Ok(Json(AgentUpdated {
        agent: AgentView::from(agent),
        tokens_revoked: revoked.len(),
    }))
}

/// Loads an agent by its id as given in a path or body; unknown or malformed ids are 404.
pub async fn find(state: &AppState, id: &str) -> Result<Agent, ApiError> {
    let id = Uuid::parse_str(id.trim()).map_err(|_| agent_not_found())?;
    state.store.agent(id).await?.ok_or_else(agent_not_found)
}

/// The 404 for an unknown agent.
pub fn agent_not_found() -> ApiError {
    ApiError::new(Refusal::AgentNotFound, "Agent not found.")
}

fn non_empty(value: Option<String>) -> Option<String> {
    value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// What a role must be, as a validation problem.
pub(crate) const ROLE_RULE: &str = "role: 1 to 64 characters from a-z, 0-9, '_' and '-'";

/// Whether `role` may be an agent's role (and so a policy's).
pub(crate) fn valid_role(role: &str) -> bool {
    (1..=MAX_ROLE_CHARS).contains(&role.len())
        && role
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::valid_role;

    #[test]
    fn roles_are_lowercase_slugs() {
        assert!(valid_role("scraper"));
        assert!(valid_role("data_team-2"));
        assert!(!valid_role("Scraper"));
        assert!(!valid_role(""));
        assert!(!valid_role("a b"));
        assert!(!valid_role(&"a".repeat(65)));
    }
}
